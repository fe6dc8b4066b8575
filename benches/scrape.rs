//! What a `GET /metrics` scrape costs the router: the queue and agent gauges are computed
//! from the engine under the router lock, one pass over the open contacts and the agents.
//! Prints, for the example config's queues and agents and 1k to 200k open contacts, the
//! time the lock is held (`Snapshot::of`) and the time to render the text (outside the
//! lock).
//!
//! `cargo bench --bench scrape`

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::config::Config;
use switchboard::metrics::{Health, Metrics, Snapshot};
use switchboard::router::Router;
use switchboard_core::{Channel, ContactId, Event, NewContact, QueueId, SkillSet, Time, Urgency};

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.toml");
    let loaded = Config::load(&file).expect("example config");
    let metrics = Metrics::new(&loaded);
    println!("{:>9}  {:>14}  {:>12}", "contacts", "lock held", "render");
    for n in [1_000u64, 10_000, 100_000, 200_000] {
        let (mut router, _) =
            Router::restore(&loaded, switchboard_store::State::default()).expect("restore");
        let t0 = Time::from_millis(1_800_000_000_000);
        let mut out = Vec::new();
        for i in 0..n {
            let channel = Channel::ALL[(i % 5) as usize];
            router
                .engine
                .apply(
                    t0,
                    Event::Arrive(NewContact {
                        id: ContactId(i + 1),
                        conversation: Arc::from(format!("c-{i}")),
                        customer: Arc::from(format!("k-{i}")),
                        channel,
                        urgency: Urgency::ALL[(i % 4) as usize],
                        queue: QueueId((i % 3) as u16),
                        required: SkillSet::EMPTY,
                        preferred: SkillSet::EMPTY,
                        arrived_at: t0,
                    }),
                    &mut out,
                )
                .expect("arrive");
        }
        router.engine.dispatch(&mut out);
        let now = Time::from_millis(1_800_000_060_000);
        let (mut held, mut rendered) = (Vec::new(), Vec::new());
        for _ in 0..9 {
            let start = Instant::now();
            let snap = Snapshot::of(&router, now);
            held.push(start.elapsed());
            let start = Instant::now();
            let text = metrics.render(Some(&snap), Health::default());
            rendered.push(start.elapsed());
            assert!(text.contains("switchboard_contacts_waiting"));
        }
        println!(
            "{n:>9}  {:>14.2?}  {:>12.2?}",
            median(held),
            median(rendered)
        );
    }
}
