//! The whole daemon, started as its binary, driven over HTTP: on the embedded default
//! (in-process bus, SQLite) and in production shape (RabbitMQ, PostgreSQL).

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::{Daemon, Setup, check_store, contact};

// ----- scenarios, run on both setups ------------------------------------------------------

/// Contacts are offered to the agents from the config, follow-ups join their contact, and
/// a restarted daemon shows the same state.
async fn assigned_then_restarted(setup: Setup) {
    let d = Daemon::start(&setup);
    let (status, body) = d
        .post(&contact("chat", "session-1", "my invoice is wrong"))
        .await;
    assert_eq!(status, 202, "{body}");
    let billing = body["id"].as_str().unwrap().to_owned();
    let (status, body) = d.post(&contact("email", "thread-1", "hello there")).await;
    assert_eq!(status, 202, "{body}");
    let email = body["id"].as_str().unwrap().to_owned();

    // The invoice chat goes to the billing queue, which only the billing team serves.
    let view = d.wait_contact(&billing, |v| v["state"] == "offered").await;
    assert_eq!(view["offered_to"], "bo", "{view}");
    assert_eq!(view["queue"], "billing");
    assert_eq!(view["skills"], json!(["billing"]));
    let why = &view["explanation"];
    assert_eq!(why["decided_by"], "only_candidate", "{view}");
    assert_eq!(why["route"]["teams"], json!(["billing"]));
    assert_eq!(why["winner"]["agent"], "bo");
    assert_eq!(why["winner"]["proficiency"], 9);
    let view = d.wait_contact(&email, |v| v["state"] == "offered").await;
    assert_eq!(view["offered_to"], "ana", "less loaded than bo: {view}");

    // A follow-up in the same chat session joins the contact.
    let (status, body) = d.post(&contact("chat", "session-1", "still waiting")).await;
    assert_eq!(status, 202);
    let follow_up = body["id"].as_str().unwrap().to_owned();
    let view = d
        .wait_contact(&follow_up, |v| v.get("message").is_some())
        .await;
    assert_eq!(view["id"], billing.as_str(), "{view}");

    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "clean exit on SIGTERM; log:\n{log}");

    let d = Daemon::start(&setup);
    let view = d.wait_contact(&billing, |_| true).await;
    assert_eq!(view["state"], "offered", "{view}");
    assert_eq!(view["offered_to"], "bo");
    let view = d.wait_contact(&email, |_| true).await;
    assert_eq!(view["offered_to"], "ana");
    let (status, ready) = d.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    let rows = check_store(&setup).await;
    assert_eq!(
        rows.len(),
        2,
        "two contacts, the follow-up joined one: {rows:?}"
    );
}

/// The same idempotency key gives the same id and one contact.
async fn idempotent(setup: Setup) {
    let d = Daemon::start(&setup);
    let mut body = contact("social", "dm-7", "where is my parcel");
    body["idempotency_key"] = json!("order-7-first-message");
    let (s1, b1) = d.post(&body).await;
    let (s2, b2) = d.post(&body).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(b1["id"], b2["id"]);
    let id = b1["id"].as_str().unwrap();
    d.wait_contact(id, |v| v["state"] == "waiting").await;
    // A third post after routing still names the same contact and adds nothing.
    let (_, b3) = d.post(&body).await;
    assert_eq!(b3["id"], b1["id"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let rows = check_store(&setup).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
}

/// A message the router cannot process is dead-lettered with its reason, and the router
/// carries on with the next one.
async fn poison_dead_lettered(setup: Setup) {
    let d = Daemon::start(&setup);
    // More distinct skills than the engine can number: routing this contact is impossible.
    let skills: Vec<String> = (0..130).map(|i| format!("rare-skill-{i}")).collect();
    let mut poison = contact("email", "poison-1", "too many skills");
    poison["skills"] = json!(skills);
    let (status, body) = d.post(&poison).await;
    assert_eq!(status, 202, "{body}");
    let poison_id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = d.post(&contact("email", "after-poison", "next one")).await;
    assert_eq!(status, 202);
    let next = body["id"].as_str().unwrap().to_owned();
    let view = d
        .wait_contact(&poison_id, |v| v["state"] == "dead_lettered")
        .await;
    assert!(
        view["reason"].as_str().unwrap().contains("skill"),
        "the reason is kept: {view}"
    );
    d.wait_contact(&next, |v| v["state"] == "offered").await;
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let letters = setup.dead_letters().await;
    let letter = letters
        .iter()
        .find(|l| l.id.as_deref() == Some(poison_id.as_str()))
        .unwrap_or_else(|| panic!("{poison_id} is not in the dead-letter queue: {letters:?}"));
    assert!(letter.reason.contains("skill"), "{letter:?}");
    assert!(
        String::from_utf8_lossy(&letter.body).contains("too many skills"),
        "the message itself is kept"
    );
}

/// Malformed JSON, wrong types, oversized bodies and unknown channels each get a clear 4xx.
async fn bad_input(setup: Setup) {
    let d = Daemon::start(&setup);
    let (status, body) = d.post_raw(b"{\"channel\": ".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "malformed JSON", "{body}");
    let (status, body) = d
        .post(&json!({"channel": "chat", "conversation": 5, "customer": "c", "summary": "s"}))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("conversation")),
        "{body}"
    );
    let (status, body) = d
        .post(&json!({"channel": "pigeon", "conversation": "x", "customer": "c", "summary": "s"}))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("channel")),
        "{body}"
    );
    assert!(body["problem"].as_str().unwrap().contains("email, chat"));
    let mut big = contact("email", "big", "large");
    big["body"] = json!("x".repeat(100_000));
    let (status, body) = d.post(&big).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], "body too large");
    let (status, _) = d.get("/v1/contacts/nothing-like-this").await;
    assert_eq!(status, 404);
    // None of it reached the router.
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    assert!(check_store(&setup).await.is_empty());
}

/// `kill -9` in the middle of a stream: every contact whose ingest was confirmed exists
/// exactly once after a restart, and no contact has two owners.
async fn crash_mid_stream(setup: Setup) {
    let d = Daemon::start(&setup);
    let confirmed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut posts = Vec::new();
    for worker in 0..8 {
        let (http, url) = (d.http.clone(), d.url("/v1/contacts"));
        let confirmed = confirmed.clone();
        posts.push(tokio::spawn(async move {
            for i in 0.. {
                let conv = format!("stream-{worker}-{i}");
                let body = contact(["chat", "email"][i % 2], &conv, "stream");
                let Ok(r) = http.post(&url).json(&body).send().await else {
                    return;
                };
                if r.status().as_u16() == 202
                    && let Ok(v) = r.json::<serde_json::Value>().await
                {
                    confirmed
                        .lock()
                        .unwrap()
                        .push(v["id"].as_str().unwrap().to_owned());
                }
            }
        }));
    }
    // Let the stream run, then kill the daemon without warning.
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if confirmed.lock().unwrap().len() >= 150 {
            break;
        }
    }
    d.kill9();
    for p in posts {
        let _ = p.await;
    }
    let confirmed = confirmed.lock().unwrap().clone();
    assert!(confirmed.len() >= 150);

    let d = Daemon::start(&setup);
    for id in &confirmed {
        d.wait_contact(id, |v| v["state"].is_string()).await;
    }
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let rows = check_store(&setup).await;
    let ids: HashSet<&str> = rows.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "a contact exists twice");
    for id in &confirmed {
        assert!(ids.contains(id.as_str()), "confirmed contact {id} was lost");
    }
}

// ----- the embedded default ---------------------------------------------------------------

async fn embedded(name: &str, scenario: impl AsyncFnOnce(Setup)) {
    let setup = Setup::embedded(name);
    scenario(setup.clone()).await;
    setup.cleanup().await;
}

#[tokio::test]
async fn embedded_assigns_and_survives_a_restart() {
    embedded("embedded-restart", assigned_then_restarted).await;
}

#[tokio::test]
async fn embedded_idempotency() {
    embedded("embedded-idem", idempotent).await;
}

#[tokio::test]
async fn embedded_poison() {
    embedded("embedded-poison", poison_dead_lettered).await;
}

#[tokio::test]
async fn embedded_bad_input() {
    embedded("embedded-bad", bad_input).await;
}

#[tokio::test]
async fn embedded_crash() {
    embedded("embedded-crash", crash_mid_stream).await;
}

// ----- RabbitMQ and PostgreSQL -------------------------------------------------------------

#[tokio::test]
async fn production_assigns_and_survives_a_restart() {
    let Some(setup) = Setup::production("prod_restart") else {
        return;
    };
    assigned_then_restarted(setup.clone()).await;
    // The topology really exists in the broker.
    let prefix = setup.get("SWITCHBOARD__BUS__PREFIX").unwrap();
    let out = std::process::Command::new("rabbitmqctl")
        .args(["list_queues", "-q", "name", "type", "arguments"])
        .output();
    if let Some(out) = out.ok().filter(|o| o.status.success()) {
        let text = String::from_utf8_lossy(&out.stdout);
        let inbound = text
            .lines()
            .find(|l| l.starts_with(&format!("{prefix}.inbound")))
            .unwrap_or_else(|| panic!("no {prefix}.inbound queue in:\n{text}"));
        assert!(inbound.contains("quorum"), "{inbound}");
        assert!(inbound.contains("x-delivery-limit"), "{inbound}");
        assert!(inbound.contains("x-single-active-consumer"), "{inbound}");
        assert!(text.contains(&format!("{prefix}.dead")), "{text}");
    } else {
        eprintln!("NOTE: rabbitmqctl not usable here; topology checked through the daemon only");
    }
    setup.cleanup().await;
}

#[tokio::test]
async fn production_idempotency() {
    if let Some(setup) = Setup::production("prod_idem") {
        idempotent(setup.clone()).await;
        setup.cleanup().await;
    }
}

#[tokio::test]
async fn production_poison() {
    if let Some(setup) = Setup::production("prod_poison") {
        poison_dead_lettered(setup.clone()).await;
        setup.cleanup().await;
    }
}

#[tokio::test]
async fn production_bad_input() {
    if let Some(setup) = Setup::production("prod_bad") {
        bad_input(setup.clone()).await;
        setup.cleanup().await;
    }
}

#[tokio::test]
async fn production_crash() {
    if let Some(setup) = Setup::production("prod_crash") {
        crash_mid_stream(setup.clone()).await;
        setup.cleanup().await;
    }
}

/// Two routers on one broker and one database: the second stands by, writes nothing,
/// and takes over when the first is killed; every confirmed contact is routed once.
#[tokio::test]
async fn production_standby_takes_over() {
    let Some(setup) = Setup::production("prod_standby") else {
        return;
    };
    let a = Daemon::start(&setup);
    let wait_role = |d: &Daemon, role: &'static str| {
        let url = d.url("/readyz");
        let http = d.http.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let body: serde_json::Value =
                    http.get(&url).send().await.unwrap().json().await.unwrap();
                if body["router"] == role {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "never became {role}: {body}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    a.wait_leader().await;
    let b = Daemon::start(&setup);
    wait_role(&b, "standby").await;
    let mut ids = Vec::new();
    for i in 0..40 {
        let (status, body) = b
            .post(&contact("email", &format!("ha-{i}"), "before"))
            .await;
        assert_eq!(status, 202);
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        a.wait_contact(id, |v| v["state"].is_string()).await;
    }
    a.kill9();
    b.wait_leader().await;
    for i in 40..80 {
        let (status, body) = b.post(&contact("email", &format!("ha-{i}"), "after")).await;
        assert_eq!(status, 202);
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        b.wait_contact(id, |v| v["state"].is_string()).await;
    }
    let (code, log) = b.terminate();
    assert_eq!(code, Some(0), "{log}");
    let rows = check_store(&setup).await;
    assert_eq!(rows.len(), 80, "every confirmed contact once");
    setup.cleanup().await;
}

/// A day of real traffic exported from the store replays in the simulator.
#[tokio::test]
async fn embedded_export_replay() {
    let setup = Setup::embedded("embedded-export");
    let d = Daemon::start(&setup);
    let mut ids = Vec::new();
    for (channel, conv, summary) in [
        ("email", "x-1", "hello"),
        ("chat", "x-2", "my invoice is wrong"),
        ("voice", "x-3", "call"),
    ] {
        let (status, body) = d.post(&contact(channel, conv, summary)).await;
        assert_eq!(status, 202);
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        d.wait_contact(id, |v| v["state"].is_string()).await;
    }
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let out = setup.data.join("replay.csv");
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.toml");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(["export-replay", "--day", "today", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out);
    for (k, v) in &setup.env {
        cmd.env(k, v);
    }
    let result = cmd.output().unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(String::from_utf8_lossy(&result.stdout).contains("3 contacts"));
    let queues = ["support", "billing", "vip"];
    let skills = ["billing", "english"];
    let rows = switchboard_sim::arrivals::read_replay(
        &out,
        &|q| {
            queues
                .iter()
                .position(|x| *x == q)
                .map(|i| switchboard_core::QueueId(i as u16))
        },
        &|s| skills.iter().position(|x| *x == s),
    )
    .unwrap();
    assert_eq!(rows.len(), 3);
    let billing = rows
        .iter()
        .find(|r| r.channel == switchboard_core::Channel::Chat)
        .unwrap();
    assert_eq!(
        billing.queue,
        switchboard_core::QueueId(1),
        "the chat went to billing"
    );
    assert!(billing.required.contains(switchboard_core::SkillId(0)));
    setup.cleanup().await;
}
