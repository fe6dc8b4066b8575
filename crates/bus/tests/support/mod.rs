//! Test support: the RabbitMQ under test, unique names, clean-up, broker-side actions.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use switchboard_bus::{AmqpConfig, Backoff, Envelope, InboundMessage, Names};
use switchboard_core::model::{Channel, Time, Urgency};

/// The broker URL under test.
pub fn amqp_url() -> String {
    std::env::var("SWITCHBOARD_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A name no other test run uses.
pub fn unique(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "sbtest-{test}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000
    )
}

/// A config for a fresh prefix on the broker under test, or `None` (after saying so loudly)
/// when RabbitMQ is not reachable. Under `CI=true` an unreachable broker fails the test.
pub async fn amqp_config(test: &str) -> Option<AmqpConfig> {
    let url = amqp_url();
    let reachable = tokio::time::timeout(
        Duration::from_secs(3),
        Connection::connect(&url, ConnectionProperties::default()),
    )
    .await;
    let reason = match reachable {
        Ok(Ok(connection)) => {
            let _ = connection.close(200, "probe".into()).await;
            None
        }
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("timed out after 3 s".to_owned()),
    };
    if let Some(reason) = reason {
        // Where, without the password.
        let at = match url.parse::<lapin::uri::AMQPUri>() {
            Ok(uri) => format!("{}:{}", uri.authority.host, uri.authority.port),
            Err(_) => "SWITCHBOARD_TEST_AMQP_URL (unparsable)".to_owned(),
        };
        let message = format!("SKIPPED: RabbitMQ not reachable at {at}: {reason}");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{message}");
        }
        // Straight to the process's stderr: libtest captures eprintln! of passing tests,
        // and a skip must be seen.
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "\n=== {message} ===\n");
        return None;
    }
    let prefix = unique(test);
    let mut config = AmqpConfig::new(url);
    config.prefix = prefix.clone();
    config.connection_name = prefix;
    config.delivery_limit = 3;
    config.publish_timeout = Duration::from_secs(15);
    config.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    };
    Some(config)
}

/// Deletes a prefix's queues and exchanges when dropped, even when the test panicked.
pub struct Cleanup {
    pub names: Names,
    pub extra_queues: Vec<String>,
}

impl Cleanup {
    pub fn new(config: &AmqpConfig) -> Self {
        Cleanup {
            names: Names::new(&config.prefix),
            extra_queues: Vec::new(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let names = self.names.clone();
        let extra = std::mem::take(&mut self.extra_queues);
        // Drop cannot await, and may run inside a runtime: clean up from a thread of its own.
        let cleaned = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let connection =
                    Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
                let channel = connection.create_channel().await?;
                for queue in [&names.inbound, &names.dead]
                    .into_iter()
                    .chain(extra.iter())
                {
                    channel
                        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                        .await?;
                }
                for exchange in [&names.inbound, &names.dead, &names.assignments] {
                    channel
                        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                        .await?;
                }
                connection.close(200, "cleanup".into()).await
            })
        })
        .join();
        if !matches!(cleaned, Ok(Ok(()))) {
            eprintln!(
                "warning: clean-up of {} failed: {cleaned:?}",
                self.names.inbound
            );
        }
    }
}

/// Ready messages in a queue, by passive declare.
pub async fn ready_count(queue: &str) -> u32 {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let q = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;
    q.message_count()
}

/// Runs `rabbitmqctl` and returns its standard output.
pub fn rabbitmqctl(args: &[&str]) -> String {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Closes, from the broker side, every connection whose name contains `name`; returns how
/// many it closed. Only this test's connections: other people use the broker too.
pub fn close_connections_named(name: &str) -> usize {
    let listing = rabbitmqctl(&[
        "-q",
        "list_connections",
        "--no-table-headers",
        "pid",
        "client_properties",
    ]);
    let pids: Vec<&str> = listing
        .lines()
        .filter(|line| line.contains(name))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    for pid in &pids {
        rabbitmqctl(&["close_connection", pid, "test"]);
    }
    pids.len()
}

/// An envelope with id `id`.
pub fn envelope(id: &str) -> Envelope {
    Envelope::new(
        id,
        Time::from_millis(1_700_000_000_000),
        InboundMessage {
            source: "api".to_owned(),
            channel: Channel::Chat,
            conversation: format!("conv-{id}"),
            customer: "cust-1".to_owned(),
            summary: "hello".to_owned(),
            body: Some("I need help".to_owned()),
            urgency: Some(Urgency::Normal),
            skills: vec!["billing".to_owned()],
            attributes: Default::default(),
        },
    )
}

/// The id of a delivery's envelope (panics on undecodable bodies).
pub fn id_of(delivery: &switchboard_bus::Delivery) -> String {
    delivery.envelope.as_ref().expect("decodable").id.clone()
}

/// A TCP proxy in front of the broker, so a test can make "the broker" go away and come back
/// on the same port without touching the broker that other people share.
pub struct Proxy {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on 127.0.0.1:`port` (0: any free port) and forwards to the broker under test.
    pub async fn start(port: u16) -> Proxy {
        let uri: lapin::uri::AMQPUri = amqp_url().parse().unwrap();
        let upstream = format!("{}:{}", uri.authority.host, uri.authority.port);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    break;
                };
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
            // Dropping the set aborts every forwarded connection (on stop, below).
        });
        Proxy { port, task }
    }

    /// The broker URL through this proxy.
    pub fn url(&self) -> String {
        let mut uri: lapin::uri::AMQPUri = amqp_url().parse().unwrap();
        format!(
            "amqp://{}:{}@127.0.0.1:{}/{}",
            uri.authority.userinfo.username,
            std::mem::take(&mut uri.authority.userinfo.password),
            self.port,
            if uri.vhost == "/" {
                "%2f".to_owned()
            } else {
                uri.vhost
            }
        )
    }

    /// Stops listening and cuts every forwarded connection, like a broker going down.
    pub async fn stop(self) -> u16 {
        self.task.abort();
        let _ = self.task.await;
        self.port
    }
}
