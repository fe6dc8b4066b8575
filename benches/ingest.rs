//! End-to-end throughput of the daemon: contacts posted over HTTP by concurrent clients,
//! confirmed by the bus, routed and persisted by the router, on the embedded default
//! (in-process bus, SQLite) and on RabbitMQ + PostgreSQL.
//!
//! `cargo bench --bench ingest` (RabbitMQ and PostgreSQL from `scripts/setup-services`;
//! without them only the embedded figures are printed). Options: `--contacts N`,
//! `--clients C`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::{Daemon, Setup, contact};

/// Counts contacts the router has persisted, from the store itself.
async fn routed(setup: &Setup) -> usize {
    support::store_count(setup, "SELECT COUNT(*) FROM messages").await
}

async fn measure(name: &str, setup: Setup, contacts: usize, clients: usize) {
    let d = Daemon::start(&setup);
    // Warm up: the first requests open connections and create the classes.
    for i in 0..20 {
        d.post(&contact("email", &format!("warm-{i}"), "warm up"))
            .await;
    }
    let before = routed(&setup).await;
    let next = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url) = (d.http.clone(), d.url("/v1/contacts"));
        let (next, refused) = (next.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= contacts {
                    return;
                }
                let channel = ["email", "chat", "social", "voice"][i % 4];
                let body = contact(channel, &format!("bench-{i}"), "throughput");
                let r = http.post(&url).json(&body).send().await;
                if !r.is_ok_and(|r| r.status().as_u16() == 202) {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let confirmed_in = start.elapsed();
    let target = before + contacts - refused.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(300);
    while routed(&setup).await < target {
        assert!(Instant::now() < deadline, "routing did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let routed_in = start.elapsed();
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    println!(
        "{name:<28} {contacts:>7} contacts {clients:>4} clients  confirmed {:>8.0}/s  routed+persisted {:>8.0}/s  (not accepted: {})",
        contacts as f64 / confirmed_in.as_secs_f64(),
        contacts as f64 / routed_in.as_secs_f64(),
        refused.load(Ordering::Relaxed),
    );
    setup.cleanup().await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("ingest benchmark: run with `cargo bench --bench ingest`");
        return;
    }
    let contacts = support::arg(&args, "--contacts", 20_000);
    let clients = support::arg(&args, "--clients", 64);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        println!("end to end: HTTP POST -> bus confirm -> router -> store commit -> ack");
        measure(
            "in-process bus + SQLite",
            Setup::embedded("bench-embedded"),
            contacts,
            clients,
        )
        .await;
        match Setup::production("bench_production") {
            Some(setup) => {
                measure("RabbitMQ + PostgreSQL", setup, contacts, clients).await;
            }
            None => println!("RabbitMQ + PostgreSQL: not reachable, skipped"),
        }
    });
}
