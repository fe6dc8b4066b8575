//! The email channel's wiring: every `[mailboxes.<name>]` is watched by a
//! [`switchboard_channel_email::Watcher`] that publishes to the bus (waiting for the
//! confirm, like the webhooks do) and keeps its UID checkpoint in the store.

use std::sync::Arc;
use std::time::Duration;

use switchboard_bus::{Bus, Envelope, InboundMessage};
use switchboard_channel_email::{Checkpoint, MailboxConfig, Sink, Watcher};
use switchboard_core::Policy;
use switchboard_store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::{Config, Loaded};
use crate::metrics::Metrics;

/// The configured mailboxes, each named after its key.
pub fn mailboxes(config: &Config) -> Vec<MailboxConfig> {
    config
        .mailboxes
        .iter()
        .map(|(name, m)| MailboxConfig {
            name: name.clone(),
            ..m.clone()
        })
        .collect()
}

/// Checks every mailbox: `(key, reason)` of the first bad one.
pub fn check(config: &Config, policy: &Policy) -> Result<(), (String, String)> {
    for m in mailboxes(config) {
        let key = format!("mailboxes.{}", m.name);
        m.validate().map_err(|e| (key.clone(), e.reason))?;
        if let Some(q) = &m.contacts.queue
            && policy.queue_id(q).is_none()
        {
            return Err((
                format!("{key}.contacts.queue"),
                format!("unknown queue {q:?}"),
            ));
        }
    }
    Ok(())
}

/// Starts one watcher per mailbox; each stops when `shutdown` fires.
pub fn start(
    loaded: &Loaded,
    bus: Arc<dyn Bus>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let checkpoint: Arc<dyn Checkpoint> = Arc::new(StoreCheckpoint(store));
    let sink: Arc<dyn Sink> = Arc::new(BusSink {
        bus,
        metrics,
        timeout: loaded.config.bus.publish_timeout,
    });
    mailboxes(&loaded.config)
        .into_iter()
        .map(|m| {
            info!(mailbox = %m.name, host = %m.host, folder = %m.folder, "imap: watching");
            let watcher = Watcher::new(m, checkpoint.clone(), sink.clone());
            tokio::spawn(watcher.run(shutdown.clone()))
        })
        .collect()
}

/// UID checkpoints in the store.
struct StoreCheckpoint(Arc<dyn Store>);

#[async_trait::async_trait]
impl Checkpoint for StoreCheckpoint {
    async fn load(&self, mailbox: &str) -> Result<Option<(u32, u32)>, String> {
        self.0
            .mailbox_checkpoint(mailbox)
            .await
            .map_err(|e| e.to_string())
    }

    async fn record(&self, mailbox: &str, uidvalidity: u32, uid: u32) -> Result<(), String> {
        self.0
            .record_mailbox_uid(mailbox, uidvalidity, uid)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Publishes to the bus and waits for its confirm, counted like the webhooks' ingest.
struct BusSink {
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    timeout: Duration,
}

#[async_trait::async_trait]
impl Sink for BusSink {
    async fn publish(&self, id: String, message: InboundMessage) -> Result<(), String> {
        let envelope = Envelope::new(id, crate::router::now(), message);
        let started = std::time::Instant::now();
        let published = tokio::time::timeout(self.timeout, self.bus.publish(&envelope)).await;
        let (result, outcome) = match published {
            Ok(Ok(())) => ("confirmed", Ok(())),
            Ok(Err(e)) => ("failed", Err(e.to_string())),
            Err(_) => (
                "timeout",
                Err(format!("no confirm within {:?}", self.timeout)),
            ),
        };
        self.metrics.published(result, started.elapsed());
        match &outcome {
            Ok(()) => self.metrics.ingest_accepted(envelope.message.channel),
            Err(_) => self.metrics.ingest_rejected("bus_unavailable"),
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::ConfigError;

    use super::*;

    fn load(text: &str) -> Result<Loaded, ConfigError> {
        let config: Config = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|source| ConfigError::Load {
                file: "test.toml".into(),
                source,
            })?;
        config.validate(Path::new("test.toml"))
    }

    const MAILBOX: &str = "[mailboxes.support]\nhost = \"imap.example.com\"\nusername = \"support@example.com\"\npassword = \"hunter2-xyz\"\n";

    #[test]
    fn a_mailbox_is_named_after_its_key() {
        let loaded = load(&format!(
            "{MAILBOX}[mailboxes.support.contacts]\nurgency = \"high\"\n"
        ))
        .unwrap();
        let m = mailboxes(&loaded.config);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].name, "support");
        assert_eq!(m[0].port(), 993);
        assert!(
            !format!("{:?}", loaded.config).contains("hunter2-xyz"),
            "the password is redacted"
        );
    }

    #[test]
    fn a_bad_mailbox_stops_start_up_with_its_name_and_reason() {
        let no_password = "[mailboxes.sales]\nhost = \"h\"\nusername = \"u\"\n";
        let err = load(no_password).unwrap_err().to_string();
        assert!(
            err.contains("mailboxes.sales") && err.contains("password"),
            "{err}"
        );

        let unset = "[mailboxes.sales]\nhost = \"h\"\nusername = \"u\"\npassword_env = \"SWITCHBOARD_TEST_NO_SUCH_VAR\"\n";
        let err = load(unset).unwrap_err().to_string();
        assert!(err.contains("SWITCHBOARD_TEST_NO_SUCH_VAR"), "{err}");

        let queue = format!("{MAILBOX}[mailboxes.support.contacts]\nqueue = \"nowhere\"\n");
        let err = load(&queue).unwrap_err().to_string();
        assert!(
            err.contains("mailboxes.support.contacts.queue") && err.contains("nowhere"),
            "{err}"
        );

        let typo = format!("{MAILBOX}folderr = \"INBOX\"\n");
        let err = load(&typo).unwrap_err().to_string();
        assert!(err.contains("folderr"), "{err}");
    }

    #[test]
    fn a_mailbox_queue_classifies_its_contacts() {
        let text = format!(
            "[[queues]]\nname = \"support\"\n[[queues]]\nname = \"billing\"\n{MAILBOX}[mailboxes.support.contacts]\nqueue = \"billing\"\n"
        );
        let loaded = load(&text).unwrap();
        let classifier = crate::classify::Classifier::new(&loaded.config, &loaded.policy);
        let raw = b"From: a@example.com\r\nSubject: hello\r\n\r\nhi\r\n";
        let origin = switchboard_channel_email::Origin {
            mailbox: "support".into(),
            defaults: loaded.config.mailboxes["support"].contacts.clone(),
        };
        let m = switchboard_channel_email::parse(raw, &origin).message;
        let subject = crate::classify::Subject::of(&m);
        let class = classifier.classify(&subject);
        assert_eq!(class.queue, loaded.policy.queue_id("billing").unwrap());
    }
}
