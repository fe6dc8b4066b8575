//! The email channel end to end: the real daemon watches a folder on the project's Dovecot
//! (scripts/setup-mail), is killed with `kill -9` while mail arrives, and is started again:
//! every message becomes exactly one contact, and every message ends marked.
//!
//! Without Dovecot on 127.0.0.1:10143 the test says SKIPPED loudly; under `CI=true` it
//! fails instead.

mod support;

use std::time::{Duration, Instant};

use support::mail::{count, mail, world, world_with};
use support::{Daemon, Setup, check_store, store_count};
use switchboard_channel_email::{MailboxConfig, connect};

/// The ingest rate from APPEND to a stored contact, printed:
/// `cargo test --release --test email -- --nocapture rate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_rate_append_to_contact() {
    if let Some(world) = world("e2e-rate").await {
        ingest_rate(world, "embedded bus and store").await;
    }
}

/// The same with RabbitMQ (publisher confirms) and PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_rate_append_to_contact_in_production() {
    let Some(setup) = Setup::production("email_rate") else {
        return;
    };
    if let Some(world) = world_with("e2e-rate-prod", setup).await {
        ingest_rate(world, "RabbitMQ and PostgreSQL").await;
    }
}

async fn ingest_rate(
    (mailbox, mut admin, setup): (MailboxConfig, connect::Session, Setup),
    what: &str,
) {
    let folder = mailbox.folder.clone();
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    let n = 200;
    let begin = Instant::now();
    for i in 0..n {
        admin
            .append(&folder, None, None, mail(i, &folder))
            .await
            .unwrap();
    }
    let appended = begin.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&setup, &folder).await < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n}",
            count(&setup, &folder).await
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = begin.elapsed();
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    println!(
        "email ingest ({what}): {n} messages appended in {:.3} s, all stored as contacts {:.3} s after the first APPEND = {:.0} messages/s",
        appended.as_secs_f64(),
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    let _ = admin.delete(&folder).await;
    let _ = admin.logout().await;
    setup.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_survives_kill_9_exactly_once() {
    if let Some(world) = world("e2e-kill").await {
        kill_9_midway(world).await;
    }
}

/// The same with RabbitMQ as the bus and PostgreSQL keeping the checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_survives_kill_9_exactly_once_in_production() {
    let Some(setup) = Setup::production("email_kill9") else {
        return;
    };
    if let Some(world) = world_with("e2e-kill-prod", setup).await {
        kill_9_midway(world).await;
    }
}

async fn kill_9_midway((mailbox, mut admin, setup): (MailboxConfig, connect::Session, Setup)) {
    let folder = mailbox.folder.clone();
    let d = Daemon::start(&setup);

    let n = 200;
    let appender = {
        let mailbox = mailbox.clone();
        tokio::spawn(async move {
            let mut s = connect::login(&mailbox).await.unwrap();
            for i in 0..n {
                s.append(&mailbox.folder, None, None, mail(i, &mailbox.folder))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let _ = s.logout().await;
        })
    };
    // Kill the daemon once part of the mail is in, while more keeps arriving.
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&setup, &folder).await < n / 4 {
        assert!(Instant::now() < deadline, "no mail ingested");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.kill9();
    let at_kill = count(&setup, &folder).await;
    appender.await.unwrap();

    let d = Daemon::start(&setup);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&setup, &folder).await < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} messages after the restart",
            count(&setup, &folder).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Everything recorded is marked before the daemon stops; a late duplicate would be
    // counted now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));

    assert_eq!(count(&setup, &folder).await, n, "each message once");
    let contacts = store_count(
        &setup,
        &format!(
            "SELECT COUNT(DISTINCT conversation) FROM contacts WHERE conversation LIKE '{folder}-%'"
        ),
    )
    .await;
    assert_eq!(contacts, n, "each message its own contact");
    check_store(&setup).await;
    admin.select(&folder).await.unwrap();
    let unseen = admin.uid_search("UNSEEN").await.unwrap();
    assert!(unseen.is_empty(), "{} messages left unmarked", unseen.len());
    println!("killed with {at_kill} of {n} messages ingested; all {n} once after the restart");

    let _ = admin.delete(&folder).await;
    let _ = admin.logout().await;
    setup.cleanup().await;
}

/// A customer's reply (its `References` name the first message) joins the open contact as
/// a follow-up instead of becoming a new contact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_joins_its_thread() {
    let Some((mailbox, mut admin, setup)) = world("e2e-thread").await else {
        return;
    };
    let folder = mailbox.folder.clone();
    let d = Daemon::start(&setup);
    admin
        .append(&folder, None, None, mail(0, &folder))
        .await
        .unwrap();
    let reply = format!(
        "From: Customer 0 <c0@example.com>\r\nTo: support@example.org\r\nSubject: Re: Request 0\r\nMessage-ID: <{folder}-reply@example.com>\r\nIn-Reply-To: <{folder}-0@example.com>\r\nReferences: <{folder}-0@example.com>\r\n\r\nAny news?\r\n"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&setup, &folder).await < 1 {
        assert!(Instant::now() < deadline, "the first message never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    admin.append(&folder, None, None, reply).await.unwrap();
    let outcome = format!(
        "SELECT COUNT(*) FROM messages WHERE id = 'email:{folder}-reply@example.com' AND outcome = 'follow_up'"
    );
    while store_count(&setup, &outcome).await < 1 {
        assert!(
            Instant::now() < deadline,
            "the reply was not taken as a follow-up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let contacts = store_count(
        &setup,
        &format!("SELECT COUNT(*) FROM contacts WHERE conversation = '{folder}-0@example.com'"),
    )
    .await;
    assert_eq!(contacts, 1, "one contact for the thread");
    let _ = admin.delete(&folder).await;
    let _ = admin.logout().await;
    setup.cleanup().await;
}

/// The SMTP sink's messages (scripts/setup-mail) that contain `needle`.
fn sunk(needle: &str) -> Vec<String> {
    let dir = std::env::var("SWITCHBOARD_MAIL_DIR")
        .unwrap_or_else(|_| "/var/tmp/switchboard-mail".into());
    let Ok(entries) = std::fs::read_dir(format!("{dir}/smtp")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter(|text| text.contains(needle))
        .collect()
}

/// Waits for the sink to hold a message containing `needle`.
async fn wait_sunk(needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(m) = sunk(needle).pop() {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "nothing in the SMTP sink with {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A new mail is acknowledged with threading headers and the expected time, an
/// auto-submitted one is not; the owner's reply goes out threaded and is recorded, and a
/// reply the SMTP server refuses answers 502 with the reason and is not recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_and_agent_replies_go_out_threaded() {
    let Some((mailbox, mut admin, mut setup)) = world("e2e-smtp").await else {
        return;
    };
    if std::net::TcpStream::connect(("127.0.0.1", 10025)).is_err() {
        let msg =
            "the SMTP sink is not reachable at 127.0.0.1:10025; run `sudo scripts/setup-mail`";
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "required in CI: {msg}"
        );
        eprintln!("SKIPPED acknowledgements: {msg}");
        return;
    }
    setup.add_config(
        r#"
[mailboxes.e2e.smtp]
host = "127.0.0.1"
port = 10025
tls = "plain"
from = "Support <support@example.org>"

[mailboxes.e2e.acknowledge]
enabled = true
max_per_sender_per_day = 1

[mailboxes.e2e.contacts]
skills = ["mail_e2e"]

[[agents]]
name = "erin"
teams = ["support"]
skills = { mail_e2e = 5 }
caps = { email = 5 }
presence = "available"
auto_accept = true
token = "erin-token-0123456789"

[[agents]]
name = "fay"
teams = ["support"]
skills = { english = 5 }
caps = { chat = 1 }
presence = "available"
token = "fay-token-0123456789"
"#,
    );
    // With an admin token, agents' tokens reach only their own work.
    setup.set("SWITCHBOARD__AUTH__ADMIN_TOKEN", "admin-token-0123456789");
    let folder = mailbox.folder.clone();
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    let original = format!("{folder}-1@example.com");
    admin
        .append(&folder, None, None, mail(1, &folder))
        .await
        .unwrap();

    // The acknowledgement: threaded under the customer's mail, marked auto-replied, with
    // the expected time (the email target: the contact is already with erin).
    let ack = wait_sunk(&format!("In-Reply-To: <{original}>")).await;
    assert!(ack.contains("Auto-Submitted: auto-replied"), "{ack}");
    assert!(ack.contains(&format!("References: <{original}>")), "{ack}");
    assert!(ack.contains("X-Sink-Rcpt-To: c1@example.com"), "{ack}");
    assert!(ack.contains("Subject: Re: Request 1"), "{ack}");
    assert!(
        ack.contains("hours"),
        "the expected time is in the text: {ack}"
    );

    // An auto-reply from the customer's side gets no acknowledgement (no mail loop).
    let auto = format!(
        "From: Customer 2 <c2@example.com>\r\nTo: support@example.org\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <{folder}-2@example.com>\r\n\r\nI am away.\r\n"
    );
    admin.append(&folder, None, None, auto).await.unwrap();
    let id2 = format!("email:{folder}-2@example.com");
    d.wait_contact(&id2, |v| v["state"] == "assigned").await;

    // The owner replies: threaded, not auto-submitted, recorded on the conversation.
    let id1 = format!("email:{original}");
    d.wait_contact(&id1, |v| v["owner"] == "erin").await;
    let post = |id: &str, token: &str, text: &str| {
        d.http
            .post(d.url(&format!("/v1/contacts/{id}/reply")))
            .bearer_auth(token)
            .json(&serde_json::json!({ "text": text }))
            .send()
    };
    let r = post(&id1, "fay-token-0123456789", "not mine")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "only the owner replies");
    // The sink keeps every run's mail: the text names this run's folder.
    let text = format!("Your parcel ships today ({folder}).");
    let r = post(&id1, "erin-token-0123456789", &text).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["to"], "c1@example.com", "{answer}");
    assert_eq!(answer["recorded"], true, "{answer}");
    let sent = wait_sunk(&text).await;
    assert!(
        sent.contains(&format!("In-Reply-To: <{original}>")),
        "{sent}"
    );
    assert!(!sent.contains("Auto-Submitted"), "{sent}");
    let message_id = answer["message_id"].as_str().unwrap();
    assert!(
        sent.contains(&format!("Message-ID: <{message_id}>")),
        "{sent}"
    );
    let (_, view) = d.get(&format!("/v1/contacts/{id1}")).await;
    assert_eq!(view["owner"], "erin", "the owner keeps the contact: {view}");

    // A reply the server refuses: 502 with its reason, nothing recorded.
    let refused = format!(
        "From: Refuse <refuse@example.com>\r\nTo: support@example.org\r\nSubject: Help\r\nMessage-ID: <{folder}-3@example.com>\r\n\r\nHelp me.\r\n"
    );
    admin.append(&folder, None, None, refused).await.unwrap();
    let id3 = format!("email:{folder}-3@example.com");
    d.wait_contact(&id3, |v| v["owner"] == "erin").await;
    let r = post(&id3, "erin-token-0123456789", "We are on it.")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 502);
    let problem: serde_json::Value = r.json().await.unwrap();
    assert!(
        problem["problem"].as_str().unwrap().contains("550"),
        "{problem}"
    );

    // The same customer writes a new mail: over the daily limit, no acknowledgement.
    let again = |n: usize| {
        format!(
            "From: Customer 1 <c1@example.com>\r\nTo: support@example.org\r\nSubject: Another {n}\r\nMessage-ID: <{folder}-again-{n}@example.com>\r\n\r\nOne more thing.\r\n"
        )
    };
    admin.append(&folder, None, None, again(1)).await.unwrap();
    let limited =
        "switchboard_email_outbound_total{kind=\"acknowledgement\",outcome=\"daily_limit\"} 1";
    let deadline = Instant::now() + Duration::from_secs(15);
    while !d.metrics().await.contains(limited) {
        assert!(Instant::now() < deadline, "{limited} missing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let metrics = d.metrics().await;
    for line in [
        "switchboard_email_outbound_total{kind=\"acknowledgement\",outcome=\"sent\"} 1",
        "switchboard_email_outbound_total{kind=\"acknowledgement\",outcome=\"auto_submitted\"} 1",
        "switchboard_email_outbound_total{kind=\"reply\",outcome=\"sent\"} 1",
        "switchboard_email_outbound_total{kind=\"reply\",outcome=\"refused\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing");
    }
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let replies = store_count(
        &setup,
        "SELECT COUNT(*) FROM audit WHERE kind = 'reply_sent'",
    )
    .await;
    assert_eq!(replies, 1, "only the reply the server took is recorded");

    // The limit is kept in the store: after a restart the customer still gets none today.
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    admin.append(&folder, None, None, again(2)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !d.metrics().await.contains(limited) {
        assert!(
            Instant::now() < deadline,
            "{limited} missing after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sunk(&format!("{folder}-again-")).len(),
        0,
        "no acknowledgement over the limit"
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let _ = admin.delete(&folder).await;
    let _ = admin.logout().await;
    setup.cleanup().await;
}
