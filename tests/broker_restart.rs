//! RabbitMQ restarts under a running daemon. In a test binary of its own, because it
//! stops the broker every other test uses (test binaries run one after another).

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Daemon, Setup, check_store, contact};

fn rabbitmqctl(args: &[&str]) -> bool {
    Command::new("rabbitmqctl")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Every contact confirmed before, during and after a broker restart is routed exactly
/// once; while the broker is down, ingest answers 503 instead of accepting.
#[tokio::test]
async fn every_confirmed_contact_survives_a_broker_restart() {
    let Some(setup) = Setup::production("broker_restart") else {
        return;
    };
    if !rabbitmqctl(&["status"]) {
        let msg = "rabbitmqctl cannot control the local broker";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("required in CI: {msg}");
        }
        eprintln!("SKIPPED every_confirmed_contact_survives_a_broker_restart: {msg}");
        return;
    }
    let d = Daemon::start(&setup);
    let confirmed = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(Mutex::new(0usize));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (http, url) = (d.http.clone(), d.url("/v1/contacts"));
        let (confirmed, refused, stop) = (confirmed.clone(), refused.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let body = contact("email", &format!("restart-{w}-{i}"), "during a restart");
                match http.post(&url).json(&body).send().await {
                    Ok(r) if r.status().as_u16() == 202 => {
                        let v: serde_json::Value = r.json().await.unwrap();
                        confirmed
                            .lock()
                            .unwrap()
                            .push(v["id"].as_str().unwrap().into());
                    }
                    Ok(r) => {
                        assert_eq!(r.status().as_u16(), 503, "only 503 while the bus is down");
                        *refused.lock().unwrap() += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("the daemon stopped answering: {e}"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = confirmed.lock().unwrap().len();
    assert!(before > 0, "nothing was accepted before the restart");
    assert!(rabbitmqctl(&["stop_app"]), "rabbitmqctl stop_app");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(rabbitmqctl(&["start_app"]), "rabbitmqctl start_app");
    // Wait until ingest is accepted again, then let it run a little longer.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mark = confirmed.lock().unwrap().len();
    while confirmed.lock().unwrap().len() < mark + 50 {
        assert!(
            Instant::now() < deadline,
            "ingest did not recover after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let confirmed = confirmed.lock().unwrap().clone();
    for id in &confirmed {
        d.wait_contact(id, |v| v["state"].is_string()).await;
    }
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    let rows = check_store(&setup).await;
    let ids: HashSet<&str> = rows.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "a contact exists twice");
    for id in &confirmed {
        assert!(ids.contains(id.as_str()), "confirmed contact {id} was lost");
    }
    eprintln!(
        "broker restart: {} confirmed ({} before the stop), {} refused with 503",
        confirmed.len(),
        before,
        refused.lock().unwrap()
    );
    setup.cleanup().await;
}
