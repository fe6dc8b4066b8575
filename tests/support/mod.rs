//! Starts the real `switchboard` binary on `127.0.0.1:0` with a private data directory (or
//! a private broker prefix and database schema), and talks to it over real HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where the daemon keeps state, so a restarted daemon finds it again.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Environment overrides (`SWITCHBOARD__…`) for every start.
    pub env: Vec<(String, String)>,
    pub data: PathBuf,
    /// TOML added to the end of `config/switchboard.toml` (sources, agents, ...).
    pub extra_config: String,
}

impl Setup {
    /// The embedded default in a fresh data directory.
    pub fn embedded(name: &str) -> Setup {
        let data = scratch(name);
        Setup {
            env: vec![("SWITCHBOARD__DATA__DIR".into(), data.display().to_string())],
            data,
            extra_config: String::new(),
        }
    }

    /// RabbitMQ and PostgreSQL, each test with its own queue prefix and schema. Returns
    /// `None` (after saying so loudly) when they are not reachable, and panics instead
    /// under `CI=true`.
    pub fn production(name: &str) -> Option<Setup> {
        let amqp = amqp_url();
        let pg = pg_url();
        let missing: Vec<String> = [
            ("RabbitMQ", "127.0.0.1:5672"),
            ("PostgreSQL", "127.0.0.1:5432"),
        ]
        .into_iter()
        .filter(|(_, addr)| std::net::TcpStream::connect(addr).is_err())
        .map(|(what, addr)| format!("{what} at {addr}"))
        .collect();
        if !missing.is_empty() {
            let msg = format!(
                "{} not reachable; run `sudo scripts/setup-services`",
                missing.join(" and ")
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("required in CI: {msg}");
            }
            eprintln!("SKIPPED {name}: {msg}");
            return None;
        }
        let unique = format!("{name}_{}_{}", std::process::id(), nanos());
        let mut setup = Setup::embedded(name);
        setup.env.extend([
            ("SWITCHBOARD__BUS__KIND".into(), "amqp".into()),
            ("SWITCHBOARD__BUS__URL".into(), amqp),
            ("SWITCHBOARD__BUS__PREFIX".into(), format!("t.{unique}")),
            ("SWITCHBOARD__STORE__KIND".into(), "postgres".into()),
            ("SWITCHBOARD__STORE__URL".into(), pg),
            ("SWITCHBOARD__STORE__SCHEMA".into(), format!("t_{unique}")),
        ]);
        Some(setup)
    }

    /// An override value, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Adds TOML to the end of the example config for every start.
    pub fn add_config(&mut self, toml: &str) {
        self.extra_config.push('\n');
        self.extra_config.push_str(toml);
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    fn amqp_prefix(&self) -> Option<&str> {
        (self.get("SWITCHBOARD__BUS__KIND") == Some("amqp"))
            .then(|| self.get("SWITCHBOARD__BUS__PREFIX"))
            .flatten()
    }

    /// What sits in the dead-letter queue (read with the daemon stopped).
    pub async fn dead_letters(&self) -> Vec<switchboard_bus::DeadLetter> {
        use switchboard_bus::Bus;
        if let Some(prefix) = self.amqp_prefix() {
            let mut config = switchboard_bus::AmqpConfig::new(amqp_url());
            config.prefix = prefix.to_owned();
            let bus = switchboard_bus::AmqpBus::connect(config).await.unwrap();
            let letters = bus.dead_letters(100).await.unwrap();
            bus.close().await;
            letters
        } else {
            let bus = switchboard_bus::InProcessBus::open(self.data.join("bus.db"))
                .await
                .unwrap();
            let letters = bus.dead_letters(100).await.unwrap();
            bus.close().await;
            letters
        }
    }

    /// Removes what a production-shaped test left in the broker and the database.
    pub async fn cleanup(&self) {
        if let Some(prefix) = self.amqp_prefix() {
            // Only a test's own names: never a real deployment's default topology.
            assert!(
                prefix.starts_with("t."),
                "cleanup of the broker refused for prefix {prefix:?}: tests use t.<name>"
            );
            let conn =
                lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
                    .await
                    .unwrap();
            let ch = conn.create_channel().await.unwrap();
            for q in ["inbound", "dead"] {
                let _ = ch
                    .queue_delete(format!("{prefix}.{q}").as_str().into(), Default::default())
                    .await;
            }
            for x in ["inbound", "dead", "assignments"] {
                let _ = ch
                    .exchange_delete(format!("{prefix}.{x}").as_str().into(), Default::default())
                    .await;
            }
            let _ = conn.close(200, "test done".into()).await;
        }
        if let Some(schema) = self.get("SWITCHBOARD__STORE__SCHEMA") {
            let pool = sqlx::PgPool::connect(&pg_url()).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{schema}\" CASCADE"
            )))
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

pub fn amqp_url() -> String {
    std::env::var("SWITCHBOARD_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub fn pg_url() -> String {
    std::env::var("SWITCHBOARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://switchboard:switchboard@127.0.0.1:5432/test".into())
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000
}

/// A fresh directory under the target dir's tmp.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running daemon.
pub struct Daemon {
    child: Child,
    pub base: String,
    pub http: reqwest::Client,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Daemon {
    /// Starts the daemon with the example config and `setup`'s overrides; waits until it
    /// listens.
    pub fn start(setup: &Setup) -> Daemon {
        let mut config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.toml");
        if !setup.extra_config.is_empty() {
            let base = std::fs::read_to_string(&config).unwrap();
            std::fs::create_dir_all(&setup.data).unwrap();
            config = setup.data.join("switchboard.toml");
            std::fs::write(&config, base + &setup.extra_config).unwrap();
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .env("SWITCHBOARD__SERVER__LISTEN", "127.0.0.1:0")
            .env(
                "RUST_LOG",
                std::env::var("SWITCHBOARD_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &setup.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start switchboard");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("switchboard: listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let log = stderr.join().unwrap_or_default();
                panic!("switchboard did not start listening; its log:\n{log}");
            }
        };
        Daemon {
            child,
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            stderr: Some(stderr),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a contact; returns the status and the JSON body.
    pub async fn post(&self, body: &Value) -> (u16, Value) {
        self.post_raw(body.to_string().into_bytes()).await
    }

    pub async fn post_raw(&self, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(self.url("/v1/contacts"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST /v1/contacts");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// One scrape of `/metrics`.
    pub async fn metrics(&self) -> String {
        let r = self.http.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.text().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Polls `GET /v1/contacts/{id}` until `done` holds for the body (or fails after 20 s).
    pub async fn wait_contact(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get(&format!("/v1/contacts/{id}")).await;
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "contact {id} never reached the expected state; last answer {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until this daemon's router leads (it has taken the lead and loaded state).
    pub async fn wait_leader(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, body) = self.get("/readyz").await;
            if body["router"] == "leader" {
                return;
            }
            assert!(Instant::now() < deadline, "never became leader: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then waits for a clean exit; returns the exit code and the log.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "switchboard did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = self.stderr.take().unwrap().join().unwrap_or_default();
        (status.code(), log)
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows the end of the daemon's log.
        if std::thread::panicking()
            && let Some(log) = self.stderr.take().and_then(|h| h.join().ok())
        {
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(80)..];
            eprintln!("--- switchboard log (last {} lines) ---", tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

/// A contact body with a fresh conversation.
pub fn contact(channel: &str, conversation: &str, summary: &str) -> Value {
    json!({
        "channel": channel,
        "conversation": conversation,
        "customer": format!("customer-{conversation}"),
        "summary": summary,
    })
}

/// Rows of a query against the daemon's store (SQLite file or PostgreSQL schema).
async fn store_rows<T: Send + Unpin>(
    setup: &Setup,
    sql: &str,
    pg: impl Fn(&sqlx::postgres::PgRow) -> T,
    lite: impl Fn(&sqlx::sqlite::SqliteRow) -> T,
) -> Vec<T> {
    if setup.get("SWITCHBOARD__STORE__KIND") == Some("postgres") {
        let schema = setup.get("SWITCHBOARD__STORE__SCHEMA").unwrap();
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .after_connect({
                let schema = schema.to_owned();
                move |conn, _| {
                    let schema = schema.clone();
                    Box::pin(async move {
                        use sqlx::Executor;
                        conn.execute(sqlx::AssertSqlSafe(format!(
                            "SET search_path TO \"{schema}\""
                        )))
                        .await
                        .map(|_| ())
                    })
                }
            })
            .connect(&pg_url())
            .await
            .unwrap();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(pg)
            .collect();
        pool.close().await;
        rows
    } else {
        let path = setup.data.join("state.db");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(lite)
            .collect();
        pool.close().await;
        rows
    }
}

/// A single count from the daemon's store.
pub async fn store_count(setup: &Setup, sql: &str) -> usize {
    use sqlx::Row;
    store_rows(setup, sql, |r| r.get::<i64, _>(0), |r| r.get::<i64, _>(0))
        .await
        .first()
        .copied()
        .unwrap_or(0) as usize
}

/// Checks the store directly: every contact is open (with a snapshot) or ended, never
/// both; an offered, assigned or wrapping-up contact names its agent. Then replays the
/// audit log (not the daemon's counters): no contact is ever held by two agents at once,
/// and no agent ever holds more than its configured caps. Returns (id, state, agent).
pub async fn check_store(setup: &Setup) -> Vec<(String, String, Option<i64>)> {
    use sqlx::Row;
    let rows: Vec<(String, String, Option<i64>, Option<String>)> = store_rows(
        setup,
        "SELECT id, state, agent, snapshot FROM contacts ORDER BY seq",
        |r| (r.get(0), r.get(1), r.get(2), r.get(3)),
        |r| (r.get(0), r.get(1), r.get(2), r.get(3)),
    )
    .await;
    for (id, state, agent, snapshot) in &rows {
        let open = snapshot.is_some();
        let terminal = matches!(state.as_str(), "closed" | "abandoned");
        assert!(
            open != terminal,
            "contact {id} is {state} with snapshot {open}"
        );
        if matches!(state.as_str(), "offered" | "assigned" | "wrap_up") {
            assert!(agent.is_some(), "contact {id} is {state} without an agent");
        }
    }
    check_audit(setup).await;
    rows.into_iter().map(|(i, s, a, _)| (i, s, a)).collect()
}

/// Replays the audit log: one holder per contact at any time, no agent ever over its
/// caps (per channel and total, read from the agents' stored profiles), and no contact
/// ever offered again to an agent who declined or missed it (unless transferred to them
/// by name).
async fn check_audit(setup: &Setup) {
    use sqlx::Row;
    use std::collections::{HashMap, HashSet};
    const CHANNELS: [&str; 5] = ["email", "chat", "voice", "social", "sms"];
    let channels: HashMap<i64, String> = store_rows(
        setup,
        "SELECT seq, channel FROM contacts",
        |r| (r.get(0), r.get(1)),
        |r| (r.get(0), r.get(1)),
    )
    .await
    .into_iter()
    .collect();
    let agents: HashMap<i64, (String, Value)> = store_rows(
        setup,
        "SELECT id, name, snapshot FROM agents",
        |r| {
            (
                r.get::<i64, _>(0),
                r.get::<String, _>(1),
                r.get::<String, _>(2),
            )
        },
        |r| {
            (
                r.get::<i64, _>(0),
                r.get::<String, _>(1),
                r.get::<String, _>(2),
            )
        },
    )
    .await
    .into_iter()
    .map(|(id, name, snap)| (id, (name, serde_json::from_str(&snap).unwrap())))
    .collect();
    let audit: Vec<(Option<i64>, Option<i64>, String, String)> = store_rows(
        setup,
        "SELECT contact_seq, agent, kind, detail FROM audit ORDER BY seq",
        |r| (r.get(0), r.get(1), r.get(2), r.get(3)),
        |r| (r.get(0), r.get(1), r.get(2), r.get(3)),
    )
    .await;
    let caps = |agent: i64, channel: &str| -> (u64, u64) {
        let Some((_, snap)) = agents.get(&agent) else {
            return (0, 0);
        };
        let c = &snap["profile"]["caps"];
        let i = CHANNELS.iter().position(|x| *x == channel).unwrap_or(0);
        let per = c["per_channel"][i].as_u64().unwrap_or(0);
        (per, c["total"].as_u64().unwrap_or(u64::MAX))
    };
    let mut holder: HashMap<i64, i64> = HashMap::new();
    let mut load: HashMap<(i64, String), u64> = HashMap::new();
    let mut total: HashMap<i64, u64> = HashMap::new();
    let mut refused: HashSet<(i64, i64)> = HashSet::new();
    for (contact, agent, kind, detail) in audit {
        let (Some(c), Some(a)) = (contact, agent) else {
            continue;
        };
        let channel = channels.get(&c).cloned().unwrap_or_default();
        let detail: Value = serde_json::from_str(&detail).unwrap_or(Value::Null);
        let name = agents.get(&a).map_or("?", |(n, _)| n.as_str()).to_owned();
        match kind.as_str() {
            "offered" => {
                assert!(
                    holder.insert(c, a).is_none(),
                    "contact {c} offered to {name} while held by another agent"
                );
                assert!(
                    !refused.contains(&(c, a)),
                    "contact {c} offered again to {name}, who had declined or missed it"
                );
                let l = load.entry((a, channel.clone())).or_default();
                *l += 1;
                let t = total.entry(a).or_default();
                *t += 1;
                let (cap, total_cap) = caps(a, &channel);
                assert!(*l <= cap, "{name} holds {l} {channel} contacts, cap {cap}");
                assert!(
                    *t <= total_cap,
                    "{name} holds {t} contacts, total cap {total_cap}"
                );
            }
            "offer_ended" | "requeued" | "transferred" | "closed" if holder.get(&c) == Some(&a) => {
                holder.remove(&c);
                *load.entry((a, channel)).or_default() -= 1;
                *total.entry(a).or_default() -= 1;
                // Declined, missed, or handed on: never offered to them again.
                if (kind == "offer_ended" && detail["outcome"] != "withdrawn")
                    || kind == "transferred"
                {
                    refused.insert((c, a));
                }
                if kind == "transferred"
                    && let Some(to) = detail["to"]["to"].as_i64()
                    && detail["to"]["kind"] == "agent"
                {
                    refused.remove(&(c, to));
                }
            }
            _ => {}
        }
    }
}

/// Signatures as each provider computes them, written here apart from the code under test.
pub mod sign {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};

    pub fn unix_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// Lower-case hex HMAC-SHA256.
    pub fn hmac_hex(secret: &str, message: &[u8]) -> String {
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(message);
        m.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// `Switchboard-Signature` (generic chat and IVR webhooks), signed now.
    pub fn switchboard(secret: &str, body: &str) -> String {
        let t = unix_now();
        format!(
            "t={t},v1={}",
            hmac_hex(secret, format!("{t}.{body}").as_bytes())
        )
    }

    /// `X-Slack-Signature` v0 for a timestamp.
    pub fn slack(secret: &str, timestamp: &str, body: &str) -> String {
        format!(
            "v0={}",
            hmac_hex(secret, format!("v0:{timestamp}:{body}").as_bytes())
        )
    }

    /// `X-Hub-Signature-256` (Meta): HMAC-SHA256 of the raw body with the app secret.
    pub fn meta(app_secret: &str, body: &str) -> String {
        format!("sha256={}", hmac_hex(app_secret, body.as_bytes()))
    }

    /// `X-Twilio-Signature`: HMAC-SHA1 over the URL and the POST parameters sorted by name,
    /// each name followed by its value, in base64.
    pub fn twilio(token: &str, url: &str, params: &[(&str, &str)]) -> String {
        let mut sorted = params.to_vec();
        sorted.sort();
        let mut data = url.to_owned();
        for (k, v) in sorted {
            data.push_str(k);
            data.push_str(v);
        }
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
        mac.update(data.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }
}

/// A benchmark's numeric option (`--name N`), or its default.
pub fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A private folder on the project's Dovecot (scripts/setup-mail) for a daemon to watch.
pub mod mail {
    use switchboard_channel_email::{MailboxConfig, Secret, TlsMode, connect};

    use super::{Setup, store_count};

    pub fn dovecot(test: &str) -> Option<MailboxConfig> {
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

    pub fn mail(i: usize, folder: &str) -> Vec<u8> {
        format!(
            "From: Customer {i} <c{i}@example.com>\r\nTo: support@example.org\r\nSubject: Request {i}\r\nMessage-ID: <{folder}-{i}@example.com>\r\n\r\nHello, request {i}.\r\n"
        )
        .into_bytes()
    }

    pub async fn count(setup: &Setup, folder: &str) -> usize {
        store_count(
            setup,
            &format!("SELECT COUNT(*) FROM messages WHERE id LIKE 'email:{folder}-%'"),
        )
        .await
    }

    /// A fresh folder on Dovecot, a connection to it, and a daemon setup watching it.
    pub async fn world(test: &str) -> Option<(MailboxConfig, connect::Session, Setup)> {
        world_with(test, Setup::embedded(test)).await
    }

    /// The same with a given daemon setup (the embedded default, or RabbitMQ and PostgreSQL).
    pub async fn world_with(
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
}
