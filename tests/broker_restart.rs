//! RabbitMQ restarts under a running daemon. In a test binary of its own, because it
//! stops the broker every other test uses (test binaries run one after another).

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::mail::{count, mail, world_with};
use support::{Daemon, Setup, check_store, contact};

/// One broker restart at a time: the tests of this binary run side by side.
static BROKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether rabbitmqctl controls the local broker; says so loudly (and fails in CI) if not.
fn broker_controllable(test: &str) -> bool {
    if rabbitmqctl(&["status"]) {
        return true;
    }
    let msg = "rabbitmqctl cannot control the local broker";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("required in CI: {msg}");
    }
    eprintln!("SKIPPED {test}: {msg}");
    false
}

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
    if !broker_controllable("every_confirmed_contact_survives_a_broker_restart") {
        return;
    }
    let _broker = BROKER.lock().await;
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

/// Mail that arrives while the broker is down waits in the mailbox, unmarked, and becomes
/// a contact once the broker is back: none lost, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_that_arrives_while_the_broker_is_down_is_ingested_after() {
    let Some(setup) = Setup::production("broker_mail") else {
        return;
    };
    if !broker_controllable("mail_that_arrives_while_the_broker_is_down_is_ingested_after") {
        return;
    }
    let Some((mailbox, mut admin, setup)) = world_with("broker-mail", setup).await else {
        return;
    };
    let _broker = BROKER.lock().await;
    let folder = mailbox.folder.clone();
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    let wait_for = |n: usize, what: &'static str| {
        let setup = setup.clone();
        let folder = folder.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(90);
            while count(&setup, &folder).await < n {
                assert!(
                    Instant::now() < deadline,
                    "{what}: only {} of {n}",
                    count(&setup, &folder).await
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    for i in 0..20 {
        admin
            .append(&folder, None, None, mail(i, &folder))
            .await
            .unwrap();
    }
    wait_for(20, "before the outage").await;

    assert!(rabbitmqctl(&["stop_app"]), "rabbitmqctl stop_app");
    for i in 20..50 {
        admin
            .append(&folder, None, None, mail(i, &folder))
            .await
            .unwrap();
    }
    // The watcher tries, the bus refuses: nothing more is stored, nothing is marked.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        count(&setup, &folder).await,
        20,
        "nothing got through a stopped broker"
    );
    admin.select(&folder).await.unwrap();
    let unseen = admin.uid_search("UNSEEN").await.unwrap();
    assert_eq!(unseen.len(), 30, "mail not published stays unmarked");
    assert!(rabbitmqctl(&["start_app"]), "rabbitmqctl start_app");

    wait_for(50, "after the broker came back").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(count(&setup, &folder).await, 50, "each message once");
    check_store(&setup).await;
    admin.select(&folder).await.unwrap();
    let unseen = admin.uid_search("UNSEEN").await.unwrap();
    assert!(unseen.is_empty(), "{} messages left unmarked", unseen.len());
    let _ = admin.delete(&folder).await;
    let _ = admin.logout().await;
    setup.cleanup().await;
}
