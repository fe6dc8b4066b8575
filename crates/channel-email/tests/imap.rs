//! The watcher against a real Dovecot (scripts/setup-mail: 127.0.0.1:10143, user
//! switchboard/switchboard), each test in a folder of its own, with an in-memory checkpoint
//! and sink that can be told to fail (the store or the bus down).
//!
//! Without Dovecot these tests say SKIPPED loudly, and fail under `CI=true`.
//! The ingest rate (APPEND to sink) is printed by `two_hundred_messages_arrive_once`:
//! `cargo test -p switchboard-channel-email --test imap -- --nocapture --test-threads 1
//! two_hundred backlog` (and the drain rate of a 500-message backlog by `a_backlog_drains_once`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_bus::Backoff;
use switchboard_channel_email::connect::{self, Session};
use switchboard_channel_email::{
    Checkpoint, InboundMessage, MailboxConfig, Secret, Sink, TlsMode, Watcher,
};
use tokio_util::sync::CancellationToken;

const ADDR: (&str, u16) = ("127.0.0.1", 10143);

/// The test's folder on the running Dovecot, or `None` (after saying so) without one.
fn dovecot(test: &str) -> Option<MailboxConfig> {
    if std::net::TcpStream::connect(ADDR).is_err() {
        let msg = format!(
            "Dovecot not reachable at {}:{}; run `sudo scripts/setup-mail`",
            ADDR.0, ADDR.1
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("required in CI: {msg}");
        }
        eprintln!("SKIPPED {test}: {msg}");
        return None;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut config = MailboxConfig::new(
        test.replace('_', "-"),
        ADDR.0,
        ADDR.1,
        TlsMode::Plain,
        "switchboard",
        Secret::new("switchboard"),
    );
    config.folder = format!("t-{test}-{}-{nanos}", std::process::id());
    config.validate().unwrap();
    Some(config)
}

/// A test's world: its folder (created), a second connection to append and look with,
/// `preload` messages already appended, and a fresh checkpoint and sink.
struct World {
    config: MailboxConfig,
    admin: Session,
    checkpoint: Arc<MemCheckpoint>,
    sink: Arc<MemSink>,
}

async fn world(test: &str, preload: usize) -> Option<World> {
    let config = dovecot(test)?;
    let mut admin = admin(&config).await;
    admin.create(&config.folder).await.unwrap();
    for i in 0..preload {
        append(&mut admin, &config.folder, &mail(test, i)).await;
    }
    Some(World {
        config,
        admin,
        checkpoint: Arc::new(MemCheckpoint::default()),
        sink: Arc::new(MemSink::default()),
    })
}

fn ids(test: &str, n: usize) -> HashSet<String> {
    (0..n)
        .map(|i| format!("email:{test}-{i}@example.com"))
        .collect()
}

/// A second connection, for appending and looking.
async fn admin(config: &MailboxConfig) -> Session {
    connect::login(config).await.unwrap()
}

async fn append(s: &mut Session, folder: &str, raw: &[u8]) {
    s.append(folder, None, None, raw)
        .await
        .unwrap_or_else(|e| panic!("APPEND of {} bytes: {e}", raw.len()));
}

async fn unseen(s: &mut Session, folder: &str) -> usize {
    s.select(folder).await.unwrap();
    s.uid_search("UNSEEN").await.unwrap().len()
}

fn mail(tag: &str, i: usize) -> Vec<u8> {
    format!(
        "From: Customer {i} <c{i}@example.com>\r\nTo: support@example.org\r\nSubject: Request {i}\r\nMessage-ID: <{tag}-{i}@example.com>\r\nDate: Tue, 24 Nov 2026 09:00:00 +0000\r\n\r\nHello, this is request {i}.\r\n"
    )
    .into_bytes()
}

#[derive(Default)]
struct MemCheckpoint {
    map: Mutex<HashMap<String, (u32, u32)>>,
    down: AtomicBool,
}

#[async_trait::async_trait]
impl Checkpoint for MemCheckpoint {
    async fn load(&self, mailbox: &str) -> Result<Option<(u32, u32)>, String> {
        if self.down.load(Ordering::SeqCst) {
            return Err("store down".into());
        }
        Ok(self.map.lock().unwrap().get(mailbox).copied())
    }

    async fn record(&self, mailbox: &str, uidvalidity: u32, uid: u32) -> Result<(), String> {
        if self.down.load(Ordering::SeqCst) {
            return Err("store down".into());
        }
        let mut map = self.map.lock().unwrap();
        let entry = map.entry(mailbox.to_owned()).or_insert((uidvalidity, 0));
        assert!(
            entry.0 != uidvalidity || uid > entry.1,
            "UIDs are recorded in ascending order"
        );
        *entry = (uidvalidity, uid);
        Ok(())
    }
}

#[derive(Default)]
struct MemSink {
    got: Mutex<Vec<(String, InboundMessage, Instant)>>,
    down: AtomicBool,
    refused: AtomicUsize,
    /// Slows every publish, so a cancellation can land mid-flight.
    delay: Mutex<Duration>,
}

#[async_trait::async_trait]
impl Sink for MemSink {
    async fn publish(&self, id: String, message: InboundMessage) -> Result<(), String> {
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err("bus down".into());
        }
        self.got.lock().unwrap().push((id, message, Instant::now()));
        Ok(())
    }
}

impl MemSink {
    fn ids(&self) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(id, ..)| id.clone())
            .collect()
    }
    fn unique(&self) -> HashSet<String> {
        self.ids().into_iter().collect()
    }
}

fn start(
    config: &MailboxConfig,
    checkpoint: &Arc<MemCheckpoint>,
    sink: &Arc<MemSink>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    // The watcher's logs, with RUST_LOG=switchboard_channel_email=debug.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let cancel = CancellationToken::new();
    let watcher =
        Watcher::new(config.clone(), checkpoint.clone(), sink.clone()).with_backoff(Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(400),
        });
    let task = tokio::spawn(watcher.run(cancel.clone()));
    (cancel, task)
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn stop(cancel: CancellationToken, task: tokio::task::JoinHandle<()>) {
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the watcher stops when cancelled")
        .unwrap();
}

async fn cleanup(s: &mut Session, folder: &str) {
    let _ = s.close().await;
    let _ = s.delete(folder).await;
    let _ = s.logout().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_messages_arrive_once() {
    let Some(World {
        config,
        mut admin,
        checkpoint,
        sink,
    }) = world("two_hundred", 0).await
    else {
        return;
    };
    let (cancel, task) = start(&config, &checkpoint, &sink);
    // Let the watcher reach IDLE, so this measures APPEND → sink, not the first login.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let n = 200;
    let begin = Instant::now();
    let mut appended_at = Vec::with_capacity(n);
    for i in 0..n {
        appended_at.push(Instant::now());
        append(&mut admin, &config.folder, &mail("two_hundred", i)).await;
    }
    let appended = begin.elapsed();
    wait_for("200 messages in the sink", Duration::from_secs(60), || {
        sink.ids().len() >= n
    })
    .await;
    let total = sink.got.lock().unwrap().last().unwrap().2 - begin;
    // Any late duplicate would show up now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop(cancel, task).await;

    assert_eq!(sink.ids().len(), n, "each message exactly once");
    assert_eq!(sink.unique(), ids("two_hundred", n));
    assert_eq!(
        unseen(&mut admin, &config.folder).await,
        0,
        "every message marked \\Seen"
    );
    assert_eq!(checkpoint.map.lock().unwrap()[&config.name].1, n as u32);

    let mut latencies: Vec<Duration> = {
        let got = sink.got.lock().unwrap();
        let by_id: HashMap<&str, Instant> =
            got.iter().map(|(id, _, t)| (id.as_str(), *t)).collect();
        (0..n)
            .map(|i| by_id[format!("email:two_hundred-{i}@example.com").as_str()] - appended_at[i])
            .collect()
    };
    latencies.sort();
    println!(
        "ingest: {n} messages appended in {:.3} s; all in the sink {:.3} s after the first APPEND = {:.0} messages/s; latency APPEND→sink p50 {:?} p99 {:?} max {:?}",
        appended.as_secs_f64(),
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        latencies[n / 2],
        latencies[n * 99 / 100],
        latencies[n - 1],
    );
    cleanup(&mut admin, &config.folder).await;
}

/// How fast a backlog drains: messages already in the folder when the watcher starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_drains_once() {
    let n = 500;
    let Some(World {
        config,
        mut admin,
        checkpoint,
        sink,
    }) = world("backlog", n).await
    else {
        return;
    };
    let begin = Instant::now();
    let (cancel, task) = start(&config, &checkpoint, &sink);
    wait_for("the backlog", Duration::from_secs(60), || {
        sink.ids().len() >= n
    })
    .await;
    let took = begin.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(cancel, task).await;
    assert_eq!(sink.ids().len(), n);
    assert_eq!(sink.unique(), ids("backlog", n));
    assert_eq!(unseen(&mut admin, &config.folder).await, 0);
    println!(
        "backlog: {n} messages drained in {:.3} s (login included) = {:.0} messages/s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    cleanup(&mut admin, &config.folder).await;
}

/// The test CA scripts/setup-mail made for Dovecot's certificate.
fn test_ca() -> std::path::PathBuf {
    let dir = std::env::var("SWITCHBOARD_MAIL_DIR")
        .unwrap_or_else(|_| "/var/tmp/switchboard-mail".into());
    Path::new(&dir).join("tls/ca.pem")
}

/// Implicit TLS (10993) and STARTTLS (10143), checked against a private CA given as
/// `ca_file`; without it the server's certificate is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_starttls_check_the_certificate() {
    let Some(World {
        config: plain,
        mut admin,
        checkpoint,
        sink,
    }) = world("tls", 3).await
    else {
        return;
    };
    let ca = test_ca();
    assert!(
        ca.exists(),
        "{} is missing; run `sudo scripts/setup-mail`",
        ca.display()
    );
    let mut implicit = plain.clone();
    implicit.tls = TlsMode::Implicit;
    implicit.port = Some(10993);
    implicit.ca_file = Some(ca.clone());
    implicit.validate().unwrap();
    let mut starttls = implicit.clone();
    starttls.tls = TlsMode::Starttls;
    starttls.port = Some(10143);

    let mut s = connect::login(&starttls)
        .await
        .expect("STARTTLS with the private CA");
    s.select(&starttls.folder).await.unwrap();
    let _ = s.logout().await;

    let (cancel, task) = start(&implicit, &checkpoint, &sink);
    wait_for("the mail over TLS", Duration::from_secs(10), || {
        sink.unique() == ids("tls", 3)
    })
    .await;
    stop(cancel, task).await;

    for mut untrusted in [implicit, starttls] {
        untrusted.ca_file = None;
        let err = connect::login(&untrusted)
            .await
            .expect_err("an unknown CA is refused");
        let text = format!("{err}: {:?}", std::error::Error::source(&err));
        assert!(
            matches!(err, switchboard_channel_email::Error::Tls { .. }),
            "{text}"
        );
        assert!(text.to_lowercase().contains("certificate"), "{text}");
    }
    cleanup(&mut admin, &plain.folder).await;
}

/// Watched for the first time, a folder's already-read mail is not taken; later mail is,
/// read or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_run_skips_mail_already_marked() {
    let Some(World {
        config,
        mut admin,
        checkpoint,
        sink,
    }) = world("first_run", 0).await
    else {
        return;
    };
    for i in 0..6 {
        let flags = (i % 2 == 0).then_some("(\\Seen)");
        admin
            .append(&config.folder, flags, None, mail("first_run", i))
            .await
            .unwrap();
    }
    let (cancel, task) = start(&config, &checkpoint, &sink);
    let unread: HashSet<String> = [1, 3, 5]
        .map(|i| format!("email:first_run-{i}@example.com"))
        .into();
    wait_for("the unread mail", Duration::from_secs(10), || {
        sink.unique() == unread
    })
    .await;
    // Read mail arriving from now on is taken: people may read it before the watcher does.
    admin
        .append(&config.folder, Some("(\\Seen)"), None, mail("first_run", 6))
        .await
        .unwrap();
    wait_for("the later mail", Duration::from_secs(10), || {
        sink.ids().len() == 4
    })
    .await;
    stop(cancel, task).await;
    assert!(sink.unique().contains("email:first_run-6@example.com"));
    assert_eq!(checkpoint.map.lock().unwrap()[&config.name].1, 7);
    cleanup(&mut admin, &config.folder).await;
}

/// With `move_to`, processed mail leaves the watched folder for another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_mail_can_be_moved() {
    let Some(World {
        mut config,
        mut admin,
        checkpoint,
        sink,
    }) = world("moved", 5).await
    else {
        return;
    };
    let done = format!("{}-done", config.folder);
    admin.create(&done).await.unwrap();
    config.move_to = Some(done.clone());
    config.validate().unwrap();
    let (cancel, task) = start(&config, &checkpoint, &sink);
    wait_for("the mail", Duration::from_secs(10), || {
        sink.unique() == ids("moved", 5)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop(cancel, task).await;
    assert_eq!(
        admin.select(&config.folder).await.unwrap().exists,
        0,
        "the folder is empty"
    );
    assert_eq!(admin.select(&done).await.unwrap().exists, 5, "all moved");
    let _ = admin.close().await;
    let _ = admin.delete(&done).await;
    cleanup(&mut admin, &config.folder).await;
}

/// Without IDLE (the server lacks it, or the config turns it off) the folder is polled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idle_the_folder_is_polled() {
    let Some(World {
        mut config,
        mut admin,
        checkpoint,
        sink,
    }) = world("polled", 0).await
    else {
        return;
    };
    config.idle = false;
    config.poll_interval = Duration::from_secs(1);
    let (cancel, task) = start(&config, &checkpoint, &sink);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        append(&mut admin, &config.folder, &mail("polled", i)).await;
    }
    wait_for("the next poll", Duration::from_secs(5), || {
        sink.unique() == ids("polled", 5)
    })
    .await;
    stop(cancel, task).await;
    assert_eq!(sink.ids().len(), 5);
    cleanup(&mut admin, &config.folder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_outage_loses_and_marks_nothing() {
    let n = 20;
    let Some(World {
        config,
        mut admin,
        checkpoint,
        sink,
    }) = world("outage", n).await
    else {
        return;
    };
    sink.down.store(true, Ordering::SeqCst);
    let (cancel, task) = start(&config, &checkpoint, &sink);
    wait_for(
        "several refused publishes (retries)",
        Duration::from_secs(20),
        || sink.refused.load(Ordering::SeqCst) >= 4,
    )
    .await;
    assert!(sink.ids().is_empty());
    assert_eq!(
        checkpoint.map.lock().unwrap().get(&config.name),
        None,
        "nothing recorded"
    );
    assert_eq!(
        unseen(&mut admin, &config.folder).await,
        n,
        "nothing marked while the bus is down"
    );

    // The store goes down too, then the bus comes back: messages may be published again
    // (their ids are stable) but nothing is marked until the store is back.
    checkpoint.down.store(true, Ordering::SeqCst);
    sink.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        unseen(&mut admin, &config.folder).await,
        n,
        "nothing marked while the store is down"
    );
    checkpoint.down.store(false, Ordering::SeqCst);

    let want = ids("outage", n);
    wait_for("all after the outage", Duration::from_secs(30), || {
        sink.unique() == want
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(unseen(&mut admin, &config.folder).await, 0);
    stop(cancel, task).await;
    cleanup(&mut admin, &config.folder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_watcher_resumes_after_the_last_recorded_uid() {
    let n = 100;
    let Some(World {
        config,
        mut admin,
        checkpoint,
        sink,
    }) = world("restart", n).await
    else {
        return;
    };
    *sink.delay.lock().unwrap() = Duration::from_millis(3);
    let (cancel, task) = start(&config, &checkpoint, &sink);
    wait_for("a third of the messages", Duration::from_secs(30), || {
        sink.ids().len() >= n / 3
    })
    .await;
    stop(cancel, task).await;
    let before = sink.ids().len();
    assert!(before < n, "stopped midway ({before})");
    // A stop is graceful: what was recorded is marked before the watcher logs out.
    let recorded = checkpoint.map.lock().unwrap()[&config.name].1 as usize;
    assert_eq!(recorded, before, "every published message recorded");
    assert_eq!(
        unseen(&mut admin, &config.folder).await,
        n - recorded,
        "and marked"
    );

    let (cancel, task) = start(&config, &checkpoint, &sink);
    let want = ids("restart", n);
    wait_for(
        "every message after the restart",
        Duration::from_secs(30),
        || sink.unique() == want,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(cancel, task).await;
    let deliveries = sink.ids().len();
    // At most the one message in flight at the stop comes again (published, not recorded).
    assert!(
        (n..=n + 1).contains(&deliveries),
        "{deliveries} deliveries for {n} messages"
    );
    assert_eq!(
        unseen(&mut admin, &config.folder).await,
        0,
        "what was recorded before the stop is marked too"
    );
    cleanup(&mut admin, &config.folder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_mail_does_not_stop_the_mailbox() {
    let Some(World {
        config,
        mut admin,
        checkpoint,
        sink,
    }) = world("malformed", 1).await
    else {
        return;
    };
    let (cancel, task) = start(&config, &checkpoint, &sink);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/malformed");
    let mut corpus: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    let mut long_header = b"From: long@example.com\r\nSubject: long\r\nX-Long: ".to_vec();
    long_header.extend(std::iter::repeat_n(b'a', 100 * 1024));
    long_header.extend_from_slice(b"\r\n\r\nbody\r\n");
    corpus.push(long_header);
    corpus.push(big_mail(8 << 20));

    let mut appended = 1;
    let mut refused = Vec::new();
    for raw in &corpus {
        // IMAP has no room for NUL bytes in a literal; a server may refuse such an APPEND,
        // which is the server's business, not the watcher's.
        match admin.append(&config.folder, None, None, raw).await {
            Ok(()) => appended += 1,
            Err(e) => refused.push(format!("{} bytes: {e}", raw.len())),
        }
    }
    append(&mut admin, &config.folder, &mail("malformed", 1)).await;
    appended += 1;
    println!("appended {appended}; refused by the server: {refused:?}");
    wait_for("every appended message", Duration::from_secs(60), || {
        sink.ids().len() >= appended
    })
    .await;
    let got = sink.unique();
    assert!(
        got.is_superset(&ids("malformed", 2)),
        "the mail before and after the corpus"
    );
    assert!(
        sink.got
            .lock()
            .unwrap()
            .iter()
            .any(|(_, m, _)| m.attributes.contains_key("attachments")),
        "the 8 MiB message arrived"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.ids().len(), appended, "each exactly once");
    stop(cancel, task).await;
    cleanup(&mut admin, &config.folder).await;
}

fn big_mail(size: usize) -> Vec<u8> {
    let mut raw = b"From: big@example.com\r\nSubject: big\r\nMessage-ID: <malformed-big@example.com>\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    let line = [b'Q'; 76];
    for _ in 0..size.div_ceil(57) {
        raw.extend_from_slice(&line);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"--B--\r\n");
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uidvalidity_change_produces_no_new_ids() {
    let n = 10;
    let Some(World {
        config,
        mut admin,
        checkpoint,
        sink,
    }) = world("uidvalidity", n).await
    else {
        return;
    };
    let (cancel, task) = start(&config, &checkpoint, &sink);
    wait_for("the first pass", Duration::from_secs(30), || {
        sink.ids().len() >= n
    })
    .await;
    stop(cancel, task).await;
    assert_eq!(sink.unique(), ids("uidvalidity", n));
    let (old_validity, _) = checkpoint.map.lock().unwrap()[&config.name];

    // The folder is recreated (as a server restore or migration does): new UIDVALIDITY,
    // same messages.
    admin.delete(&config.folder).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    admin.create(&config.folder).await.unwrap();
    for i in 0..n {
        append(&mut admin, &config.folder, &mail("uidvalidity", i)).await;
    }
    let new_validity = admin
        .select(&config.folder)
        .await
        .unwrap()
        .uid_validity
        .unwrap();
    assert_ne!(
        old_validity, new_validity,
        "the server gave the folder a new UIDVALIDITY"
    );

    let (cancel, task) = start(&config, &checkpoint, &sink);
    wait_for("the rescan", Duration::from_secs(30), || {
        sink.ids().len() >= 2 * n
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(cancel, task).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for id in sink.ids() {
        *counts.entry(id).or_default() += 1;
    }
    assert_eq!(
        sink.unique(),
        ids("uidvalidity", n),
        "the rescan produced no new ids"
    );
    assert!(
        counts.values().all(|&c| c == 2),
        "each seen once per UIDVALIDITY: {counts:?}"
    );
    assert_eq!(
        checkpoint.map.lock().unwrap()[&config.name],
        (new_validity, n as u32)
    );
    cleanup(&mut admin, &config.folder).await;
}
