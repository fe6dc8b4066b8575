//! Bus throughput: confirmed publishes per second with 1 and 64 concurrent publishers, and
//! consumed+acked messages per second with batch acks, for RabbitMQ and the in-process bus.
//!
//! `cargo bench -p switchboard-bus --bench publish` (does nothing without `--bench`, so
//! `cargo test --all-targets` stays fast). RabbitMQ from SWITCHBOARD_TEST_AMQP_URL, default
//! the local one; skipped with a note when unreachable.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use switchboard_bus::{
    AmqpBus, AmqpConfig, Bus, Envelope, InProcessBus, InProcessConfig, InboundMessage, Names,
};
use switchboard_core::model::{Channel, Time};

const SEQUENTIAL: usize = 2_000;
const CONCURRENT: usize = 20_000;
const PUBLISHERS: usize = 64;
const BATCH: usize = 256;
const PREFETCH: u16 = 512;

fn envelope(id: String) -> Envelope {
    Envelope::new(
        id,
        Time::from_millis(1_700_000_000_000),
        InboundMessage {
            source: "bench".to_owned(),
            channel: Channel::Chat,
            conversation: "conv-1".to_owned(),
            customer: "cust-1".to_owned(),
            summary: "Where is my order? It was due on Monday.".to_owned(),
            body: Some(
                "Hello, I ordered a kettle two weeks ago and it has not arrived.".to_owned(),
            ),
            urgency: None,
            skills: vec!["shipping".to_owned()],
            attributes: Default::default(),
        },
    )
}

fn report(what: &str, n: usize, elapsed: Duration) {
    println!(
        "{what:<78} {n:>6} msgs in {:>7.3} s = {:>8.0} msgs/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
}

async fn publish_sequential<B: Bus + Clone>(bus: &B, n: usize, tag: &str) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        bus.publish(&envelope(format!("{tag}-seq-{i}")))
            .await
            .unwrap();
    }
    start.elapsed()
}

async fn publish_concurrent<B: Bus + Clone>(bus: &B, n: usize, tag: &str) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let bus = bus.clone();
            let tag = tag.to_owned();
            tokio::spawn(async move {
                for i in (p..n).step_by(PUBLISHERS) {
                    bus.publish(&envelope(format!("{tag}-conc-{i}")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

async fn consume_all<B: Bus>(bus: &B, n: usize) -> Duration {
    let mut sub = bus.subscribe(PREFETCH).await.unwrap();
    let start = Instant::now();
    let mut got = 0;
    while got < n {
        let batch = sub
            .next_batch(BATCH, Duration::from_millis(5))
            .await
            .unwrap();
        got += batch.len();
        sub.ack_through(batch.last().unwrap().tag).await.unwrap();
    }
    start.elapsed()
}

async fn run<B: Bus + Clone>(name: &str, bus: &B) {
    let d = publish_sequential(bus, SEQUENTIAL, name).await;
    report(
        &format!("{name}: confirmed publish, 1 publisher"),
        SEQUENTIAL,
        d,
    );
    let d = publish_concurrent(bus, CONCURRENT, name).await;
    report(
        &format!("{name}: confirmed publish, {PUBLISHERS} publishers"),
        CONCURRENT,
        d,
    );
    let total = SEQUENTIAL + CONCURRENT;
    let d = consume_all(bus, total).await;
    report(
        &format!("{name}: consume + ack (batches of {BATCH}, prefetch {PREFETCH})"),
        total,
        d,
    );
}

async fn delete_topology(url: &str, names: &Names) -> Result<(), lapin::Error> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    for q in [&names.inbound, &names.dead] {
        channel
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await?;
    }
    for x in [&names.inbound, &names.dead, &names.assignments] {
        channel
            .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await?;
    }
    connection.close(200, "bench done".into()).await
}

async fn bench() {
    let url = std::env::var("SWITCHBOARD_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut config = AmqpConfig::new(url.clone());
    config.prefix = format!("sbbench-{}-{}", std::process::id(), nanos % 1_000_000_000);
    config.connection_name = config.prefix.clone();
    config.publish_timeout = Duration::from_secs(60);
    match AmqpBus::connect(config).await {
        Ok(bus) => {
            run("amqp (quorum queue)", &bus).await;
            bus.close().await;
            if let Err(e) = delete_topology(&url, bus.names()).await {
                eprintln!("warning: could not delete the bench topology: {e}");
            }
        }
        Err(e) => println!("amqp: SKIPPED, RabbitMQ not reachable: {e}"),
    }

    for (name, sync_full) in [
        ("in-process (sqlite, synchronous=FULL)", true),
        ("in-process (sqlite, synchronous=NORMAL)", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = InProcessConfig::new(dir.path().join("bus.db"));
        config.sync_full = sync_full;
        let bus = InProcessBus::open_with(config).await.unwrap();
        run(name, &bus).await;
        bus.close().await;
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "switchboard-bus publish benchmark ({} cores, envelope {} bytes)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        envelope("x".repeat(12)).to_json().len()
    );
    runtime.block_on(bench());
}
