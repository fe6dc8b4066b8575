//! InProcessBus against real SQLite files, including a publisher killed with SIGKILL.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{envelope, id_of};
use switchboard_bus::{
    Bus, BusError, DecodeError, Delivery, InProcessBus, InProcessConfig, Subscription,
};

const NONE_WITHIN: Duration = Duration::from_millis(300);

async fn stays_empty(sub: &mut dyn Subscription) -> bool {
    tokio::time::timeout(NONE_WITHIN, sub.next_batch(10, Duration::ZERO))
        .await
        .is_err()
}

async fn take(sub: &mut dyn Subscription, n: usize) -> Vec<Delivery> {
    let mut got = Vec::new();
    while got.len() < n {
        let batch = tokio::time::timeout(
            Duration::from_secs(5),
            sub.next_batch(n - got.len(), Duration::from_millis(50)),
        )
        .await
        .expect("deliveries within 5 s")
        .unwrap();
        got.extend(batch);
    }
    got
}

async fn open(path: &Path, delivery_limit: u32) -> InProcessBus {
    let mut config = InProcessConfig::new(path);
    config.delivery_limit = delivery_limit;
    InProcessBus::open_with(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_publish_survives_reopening_and_an_ack_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.db");
    let bus = open(&path, 5).await;
    for id in ["a", "b", "c"] {
        bus.publish(&envelope(id)).await.unwrap();
    }
    bus.close().await;
    drop(bus);

    let bus = open(&path, 5).await;
    let mut sub = bus.subscribe(10).await.unwrap();
    let got = take(sub.as_mut(), 3).await;
    assert_eq!(got.iter().map(id_of).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert!(got.iter().all(|d| !d.redelivered));
    assert_eq!(got[1].envelope.as_ref(), Ok(&envelope("b")));
    sub.ack_through(got[2].tag).await.unwrap();
    drop(sub);
    bus.close().await;
    drop(bus);

    let bus = open(&path, 5).await;
    let mut sub = bus.subscribe(10).await.unwrap();
    assert!(stays_empty(sub.as_mut()).await);
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_delivery_is_redelivered_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.db");
    let bus = open(&path, 5).await;
    bus.publish(&envelope("x")).await.unwrap();
    bus.publish(&envelope("y")).await.unwrap();
    let mut sub = bus.subscribe(10).await.unwrap();
    let got = take(sub.as_mut(), 2).await;
    sub.ack_through(got[0].tag).await.unwrap();
    // No clean shutdown: the subscription and the bus just go away.
    drop(sub);
    drop(bus);

    let bus = open(&path, 5).await;
    let mut sub = bus.subscribe(10).await.unwrap();
    let got = take(sub.as_mut(), 1).await;
    assert_eq!(id_of(&got[0]), "y");
    assert!(got[0].redelivered);
    assert!(stays_empty(sub.as_mut()).await);
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_acked_at_once_and_unacked_ones_come_back_after_the_subscription_goes() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir.path().join("bus.db"), 5).await;
    let ids: Vec<String> = (0..50).map(|i| format!("m-{i:02}")).collect();
    let publishes = ids.iter().map(|id| {
        let bus = bus.clone();
        let e = envelope(id);
        async move { bus.publish(&e).await }
    });
    for result in futures_util::future::join_all(publishes).await {
        result.unwrap();
    }
    let mut sub = bus.subscribe(64).await.unwrap();
    let got = take(sub.as_mut(), 50).await;
    let seen: BTreeSet<String> = got.iter().map(id_of).collect();
    assert_eq!(seen, ids.iter().cloned().collect());
    // Delivered in publish (commit) order.
    assert!(got.windows(2).all(|w| w[0].tag < w[1].tag));
    sub.ack_through(got[39].tag).await.unwrap();
    drop(sub);

    let mut sub = bus.subscribe(64).await.unwrap();
    let again = take(sub.as_mut(), 10).await;
    assert_eq!(
        again.iter().map(id_of).collect::<Vec<_>>(),
        got[40..].iter().map(id_of).collect::<Vec<_>>()
    );
    assert!(again.iter().all(|d| d.redelivered));
    assert!(stays_empty(sub.as_mut()).await);
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_bounds_the_unacked_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir.path().join("bus.db"), 5).await;
    for i in 0..5 {
        bus.publish(&envelope(&format!("p-{i}"))).await.unwrap();
    }
    let mut sub = bus.subscribe(2).await.unwrap();
    let first = sub.next_batch(10, Duration::from_millis(50)).await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(stays_empty(sub.as_mut()).await);
    sub.ack_through(first[1].tag).await.unwrap();
    let second = sub.next_batch(10, Duration::from_millis(50)).await.unwrap();
    assert_eq!(second.iter().map(id_of).collect::<Vec<_>>(), ["p-2", "p-3"]);
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_is_dead_lettered_with_its_reason_and_stale_tags_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir.path().join("bus.db"), 5).await;
    let mut future = envelope("v9");
    future.version = 9;
    // Publishing does not check the version: a forged one stands for a newer writer.
    bus.publish(&future).await.unwrap();
    bus.publish(&envelope("ok")).await.unwrap();

    let mut first = bus.subscribe(10).await.unwrap();
    let stale = take(first.as_mut(), 2).await;
    drop(first);
    let mut sub = bus.subscribe(10).await.unwrap();
    let got = take(sub.as_mut(), 2).await;
    assert_eq!(
        got[0].envelope,
        Err(DecodeError::UnsupportedVersion {
            found: 9,
            supported: 1
        })
    );
    // Tags from the previous subscription do nothing.
    sub.ack_through(stale[1].tag).await.unwrap();
    sub.dead_letter(&stale[0], "stale").await.unwrap();
    assert!(bus.dead_letters(10).await.unwrap().is_empty());

    let reason = got[0].envelope.as_ref().unwrap_err().to_string();
    sub.dead_letter(&got[0], &reason).await.unwrap();
    sub.dead_letter(&got[0], &reason).await.unwrap();
    sub.ack_through(got[1].tag).await.unwrap();
    drop(sub);

    let letters = bus.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].reason, reason);
    assert_eq!(letters[0].body, future.to_json());
    assert_eq!(letters[0].id.as_deref(), Some("v9"));
    let mut sub = bus.subscribe(10).await.unwrap();
    assert!(stays_empty(sub.as_mut()).await);
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_limit_dead_letters_a_message_that_is_never_acked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.db");
    let bus = open(&path, 1).await;
    bus.publish(&envelope("never-acked")).await.unwrap();
    bus.publish(&envelope("fine")).await.unwrap();

    // First delivery in this process, second after a restart: both returned unacked.
    let mut sub = bus.subscribe(10).await.unwrap();
    let got = take(sub.as_mut(), 2).await;
    sub.dead_letter(&got[1], "not this one").await.unwrap();
    drop(sub);
    drop(bus);
    let bus = open(&path, 1).await;
    let mut sub = bus.subscribe(10).await.unwrap();
    let got = take(sub.as_mut(), 1).await;
    assert_eq!(id_of(&got[0]), "never-acked");
    assert!(got[0].redelivered);
    drop(sub);

    let mut sub = bus.subscribe(10).await.unwrap();
    assert!(stays_empty(sub.as_mut()).await);
    let letters = bus.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(letters[0].reason, "not this one");
    assert_eq!(letters[1].id.as_deref(), Some("never-acked"));
    assert!(
        letters[1].reason.starts_with("delivery_limit:"),
        "{}",
        letters[1].reason
    );
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_subscriber_waits_until_the_first_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir.path().join("bus.db"), 5).await;
    let mut active = bus.subscribe(10).await.unwrap();
    let mut standby = bus.subscribe(10).await.unwrap();
    bus.publish(&envelope("s-1")).await.unwrap();
    let got = take(active.as_mut(), 1).await;
    assert!(stays_empty(standby.as_mut()).await);
    bus.publish(&envelope("s-2")).await.unwrap();
    assert!(stays_empty(standby.as_mut()).await);
    let more = take(active.as_mut(), 1).await;
    active.ack_through(got[0].tag).await.unwrap();
    let _ = more;
    drop(active);

    let got = take(standby.as_mut(), 1).await;
    assert_eq!(id_of(&got[0]), "s-2");
    assert!(got[0].redelivered);
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_in_process_listeners_and_close_stops_everything() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir.path().join("bus.db"), 5).await;
    // Nobody listening yet: dropped, not an error.
    bus.publish_event("agent.1.offer", b"{}").await.unwrap();
    let mut events = bus.subscribe_events();
    bus.publish_event("agent.7.offer", br#"{"contact":1}"#)
        .await
        .unwrap();
    let event = events.recv().await.unwrap();
    assert_eq!(event.routing_key, "agent.7.offer");
    assert_eq!(event.body, br#"{"contact":1}"#);

    bus.health().await.unwrap();
    let mut waiting = bus.subscribe(10).await.unwrap();
    let consumer = tokio::spawn(async move { waiting.next_batch(10, Duration::ZERO).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    bus.close().await;
    let woke = tokio::time::timeout(Duration::from_secs(2), consumer)
        .await
        .expect("a waiting consumer wakes on close")
        .unwrap();
    assert!(matches!(woke, Err(BusError::Closed { .. })), "{woke:?}");
    assert!(matches!(bus.health().await, Err(BusError::Closed { .. })));
    let err = bus.publish(&envelope("late")).await.unwrap_err();
    assert!(matches!(err, BusError::Closed { .. }), "{err}");
}

#[tokio::test]
async fn an_empty_or_oversized_id_is_refused_at_publish() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir.path().join("bus.db"), 5).await;
    let err = bus.publish(&envelope("")).await.unwrap_err();
    assert!(matches!(err, BusError::Invalid { .. }), "{err}");
    let err = bus.publish(&envelope(&"x".repeat(256))).await.unwrap_err();
    assert!(err.to_string().contains("longer than 255"), "{err}");
    bus.close().await;
}

/// Environment variable that turns [`killed_publisher`] into the child process.
const CHILD_DB: &str = "SWITCHBOARD_BUS_TEST_CHILD_DB";

/// The child of [`every_confirmed_publish_survives_kill_9`]: publishes from 16 tasks and
/// prints each confirmed id, until it is killed. Ignored unless run by that test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by every_confirmed_publish_survives_kill_9"]
async fn killed_publisher() {
    let path = std::env::var(CHILD_DB).expect("run by every_confirmed_publish_survives_kill_9");
    let bus = InProcessBus::open(&path).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for task in 0..16 {
        let bus = bus.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let id = format!("k{task}-{i}");
                bus.publish(&envelope(&id)).await.unwrap();
                tx.send(id).unwrap();
            }
        });
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    while let Some(id) = rx.recv().await {
        writeln!(out, "confirmed {id}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_confirmed_publish_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "killed_publisher", "--ignored", "--nocapture"])
        .env(CHILD_DB, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut confirmed = BTreeSet::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while confirmed.len() < 500 {
        let line = lines
            .next()
            .expect("the child publishes until killed")
            .unwrap();
        if let Some(id) = line.strip_prefix("confirmed ") {
            confirmed.insert(id.to_owned());
        }
    }
    // SIGKILL, while the 16 publishers are still going.
    child.kill().unwrap();
    child.wait().unwrap();
    // Lines already written before the kill were confirmed too.
    for line in lines.map_while(Result::ok) {
        if let Some(id) = line.strip_prefix("confirmed ") {
            confirmed.insert(id.to_owned());
        }
    }

    let bus = InProcessBus::open(&path).await.unwrap();
    let mut sub = bus.subscribe(1000).await.unwrap();
    let mut stored = BTreeSet::new();
    while let Ok(batch) =
        tokio::time::timeout(NONE_WITHIN, sub.next_batch(1000, Duration::ZERO)).await
    {
        let batch = batch.unwrap();
        stored.extend(batch.iter().map(id_of));
        sub.ack_through(batch.last().unwrap().tag).await.unwrap();
    }
    let missing: Vec<_> = confirmed.difference(&stored).collect();
    assert!(missing.is_empty(), "confirmed but lost: {missing:?}");
    eprintln!(
        "{} confirmed before SIGKILL, {} stored",
        confirmed.len(),
        stored.len()
    );
    bus.close().await;
}
