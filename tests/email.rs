//! The email channel end to end: the real daemon watches a folder on the project's Dovecot
//! (scripts/setup-mail), is killed with `kill -9` while mail arrives, and is started again:
//! every message becomes exactly one contact, and every message ends marked.
//!
//! Without Dovecot on 127.0.0.1:10143 the test says SKIPPED loudly; under `CI=true` it
//! fails instead.

mod support;

use std::time::{Duration, Instant};

use support::{Daemon, Setup, check_store, store_count};
use switchboard_channel_email::{MailboxConfig, Secret, TlsMode, connect};

fn dovecot(test: &str) -> Option<MailboxConfig> {
    if std::net::TcpStream::connect(("127.0.0.1", 10143)).is_err() {
        let msg = "Dovecot not reachable at 127.0.0.1:10143; run `sudo scripts/setup-mail`";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("required in CI: {msg}");
        }
        eprintln!("SKIPPED {test}: {msg}");
        return None;
    }
    let mut m = MailboxConfig::new(
        "e2e",
        "127.0.0.1",
        10143,
        TlsMode::Plain,
        "switchboard",
        Secret::new("switchboard"),
    );
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    m.folder = format!("t-{test}-{}-{nanos}", std::process::id());
    Some(m)
}

fn mail(i: usize, folder: &str) -> Vec<u8> {
    format!(
        "From: Customer {i} <c{i}@example.com>\r\nTo: support@example.org\r\nSubject: Request {i}\r\nMessage-ID: <{folder}-{i}@example.com>\r\n\r\nHello, request {i}.\r\n"
    )
    .into_bytes()
}

async fn count(setup: &Setup, folder: &str) -> usize {
    store_count(
        setup,
        &format!("SELECT COUNT(*) FROM messages WHERE id LIKE 'email:{folder}-%'"),
    )
    .await
}

/// A fresh folder on Dovecot, a connection to it, and a daemon setup watching it.
async fn world(test: &str) -> Option<(MailboxConfig, connect::Session, Setup)> {
    world_with(test, Setup::embedded(test)).await
}

/// The same with a given daemon setup (the embedded default, or RabbitMQ and PostgreSQL).
async fn world_with(
    test: &str,
    mut setup: Setup,
) -> Option<(MailboxConfig, connect::Session, Setup)> {
    let mailbox = dovecot(test)?;
    let mut admin = connect::login(&mailbox).await.unwrap();
    admin.create(&mailbox.folder).await.unwrap();
    for (key, value) in [
        ("HOST", "127.0.0.1"),
        ("PORT", "10143"),
        ("TLS", "plain"),
        ("USERNAME", "switchboard"),
        ("PASSWORD", "switchboard"),
        ("FOLDER", mailbox.folder.as_str()),
    ] {
        setup.set(&format!("SWITCHBOARD__MAILBOXES__E2E__{key}"), value);
    }
    Some((mailbox, admin, setup))
}

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
