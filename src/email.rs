//! The email channel's wiring: every `[mailboxes.<name>]` is watched by a
//! [`switchboard_channel_email::Watcher`] that publishes to the bus (waiting for the
//! confirm, like the webhooks do) and keeps its UID checkpoint in the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use switchboard_bus::{Envelope, InboundMessage};
use switchboard_channel_email::acknowledge::reply_address;
use switchboard_channel_email::compose::{self, ThreadHeaders};
use switchboard_channel_email::{
    Checkpoint, ConfigError, MailboxConfig, SendError, Sender, Sink, Watcher, acknowledge_decision,
    acknowledgement, agent_reply,
};
use switchboard_core::{Channel, Policy};
use switchboard_store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::api::{AppState, problem};
use crate::channels::standing;
use crate::config::Config;
use crate::router::OpenContact;

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

/// Each mailbox's SMTP sender, by mailbox name (mailboxes without `[mailboxes.<name>.smtp]`
/// send nothing).
pub fn senders(config: &Config) -> Result<HashMap<String, Arc<Sender>>, ConfigError> {
    let mut senders = HashMap::new();
    for m in mailboxes(config) {
        if let Some(smtp) = &m.smtp {
            senders.insert(m.name.clone(), Arc::new(Sender::new(&m.name, smtp)?));
        }
    }
    Ok(senders)
}

/// Starts one watcher per mailbox; each stops when `shutdown` fires.
pub fn start(state: &AppState, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
    let config = &state.loaded.config;
    let checkpoint: Arc<dyn Checkpoint> = Arc::new(StoreCheckpoint(state.store.clone()));
    let boxes = mailboxes(config);
    let sink: Arc<dyn Sink> = Arc::new(BusSink {
        state: state.clone(),
        timeout: config.bus.publish_timeout,
        mailboxes: boxes
            .iter()
            .map(|m| (m.name.clone(), Arc::new(m.clone())))
            .collect(),
    });
    boxes
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

/// Publishes to the bus and waits for its confirm, counted like the webhooks' ingest; then
/// acknowledges the new contact where the mailbox says so.
struct BusSink {
    state: AppState,
    timeout: Duration,
    mailboxes: HashMap<String, Arc<MailboxConfig>>,
}

#[async_trait::async_trait]
impl Sink for BusSink {
    async fn publish(&self, id: String, message: InboundMessage) -> Result<(), String> {
        let envelope = Envelope::new(id, crate::router::now(), message);
        let metrics = &self.state.metrics;
        let started = std::time::Instant::now();
        let published = tokio::time::timeout(self.timeout, self.state.bus.publish(&envelope)).await;
        let (result, outcome) = match published {
            Ok(Ok(())) => ("confirmed", Ok(())),
            Ok(Err(e)) => ("failed", Err(e.to_string())),
            Err(_) => (
                "timeout",
                Err(format!("no confirm within {:?}", self.timeout)),
            ),
        };
        metrics.published(result, started.elapsed());
        match &outcome {
            Ok(()) => metrics.ingest_accepted(envelope.message.channel),
            Err(_) => metrics.ingest_rejected("bus_unavailable"),
        }
        if outcome.is_ok() {
            let name = envelope
                .message
                .attributes
                .get("mailbox")
                .and_then(Value::as_str);
            if let Some(mailbox) = name.and_then(|n| self.mailboxes.get(n))
                && mailbox.acknowledge.enabled
                && let Some(sender) = self.state.senders.get(&mailbox.name)
            {
                tokio::spawn(acknowledge(
                    self.state.clone(),
                    mailbox.clone(),
                    sender.clone(),
                    envelope,
                ));
            }
        }
        outcome
    }
}

/// Sends the automatic acknowledgement of a new contact, unless RFC 3834's rules, the
/// business hours or the sender's daily limit say not to. Only a contact this process
/// placed as new is acknowledged: a reply in an open thread, a message the router already
/// had (redelivered after a restart) and a standby's publish get none.
async fn acknowledge(
    s: AppState,
    mailbox: Arc<MailboxConfig>,
    sender: Arc<Sender>,
    envelope: Envelope,
) {
    let Some(placed) = standing(&s, &envelope.id, Duration::from_secs(10)).await else {
        return;
    };
    if placed.standing.follow_up {
        return;
    }
    let message = &envelope.message;
    let now = SystemTime::now();
    let day = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    let to = reply_address(message).unwrap_or_default();
    let own = sender.from().email.to_string();
    let settings = &mailbox.acknowledge;
    // The daily limit is counted in the store (below), so it holds across restarts.
    let ack = match acknowledge_decision(message, &own, 0, now, settings) {
        Ok(ack) => ack,
        Err(no) => {
            debug!(message = %envelope.id, reason = %no, "no acknowledgement");
            s.metrics.email_outbound("acknowledgement", no.reason());
            return;
        }
    };
    // Taken before sending: a send that fails still counts, so a sender never gets more
    // than the limit, even when the daemon stops between the two.
    let max = settings.max_per_sender_per_day;
    match s
        .store
        .take_acknowledgement(&mailbox.name, &to, day, max)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            debug!(message = %envelope.id, %to, max, "no acknowledgement: daily limit");
            s.metrics.email_outbound("acknowledgement", "daily_limit");
            return;
        }
        Err(e) => {
            warn!(message = %envelope.id, error = %e, "no acknowledgement: the daily count is unavailable");
            s.metrics.email_outbound("acknowledgement", "failed");
            return;
        }
    }
    // The queue's current estimate when there is one, else what its target promises.
    let expected = placed
        .standing
        .expected_wait
        .unwrap_or_else(|| placed.standing.deadline.since(crate::router::now()));
    let mail = match acknowledgement(
        message,
        sender.from(),
        &mailbox.acknowledge,
        ack,
        expected,
        now,
    ) {
        Ok(mail) => mail,
        Err(e) => {
            warn!(message = %envelope.id, error = %e, "acknowledgement not composed");
            s.metrics.email_outbound("acknowledgement", "failed");
            return;
        }
    };
    match sender.send(&mail).await {
        Ok(id) => {
            info!(message = %envelope.id, acknowledgement = %id, "acknowledged");
            s.metrics.email_outbound("acknowledgement", "sent");
        }
        Err(e) => {
            warn!(message = %envelope.id, error = %e, "acknowledgement not sent");
            s.metrics.email_outbound("acknowledgement", "failed");
        }
    }
}

/// Sends an agent's reply to an email contact from its mailbox, threaded under the
/// customer's message. Returns the reply's Message-ID and recipient, or the answer to give:
/// 409 when the contact cannot be answered by mail, 502 with the server's reason when the
/// SMTP server refused or could not be reached (nothing was sent).
pub async fn reply(
    s: &AppState,
    contact: &OpenContact,
    text: &str,
) -> Result<(String, String), Box<Response>> {
    let conflict = |why: String| Box::new(problem(StatusCode::CONFLICT, "cannot reply", None, why));
    let attributes: BTreeMap<String, Value> =
        serde_json::from_str(&contact.attributes).unwrap_or_default();
    let Some(name) = attributes
        .get("mailbox")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err(conflict("the contact did not come from a mailbox".into()));
    };
    let Some(sender) = s.senders.get(&name) else {
        return Err(conflict(format!(
            "mailbox {name:?} has no [mailboxes.{name}.smtp] to send from"
        )));
    };
    let original = InboundMessage {
        source: format!("imap:{name}"),
        channel: Channel::Email,
        conversation: contact.conversation.clone(),
        customer: contact.customer.clone(),
        summary: contact.summary.clone(),
        body: None,
        urgency: None,
        skills: Vec::new(),
        attributes,
    };
    let Some(to) = reply_address(&original) else {
        return Err(conflict(
            "the customer's message has no address to reply to".into(),
        ));
    };
    let mail = compose::mailbox(&to)
        .and_then(|to| {
            agent_reply(
                &ThreadHeaders::of(&original),
                sender.from(),
                &to,
                text,
                SystemTime::now(),
            )
        })
        .map_err(|e| conflict(e.to_string()))?;
    match sender.send(&mail).await {
        Ok(id) => {
            s.metrics.email_outbound("reply", "sent");
            Ok((id, to))
        }
        Err(e) => {
            let (outcome, permanent) = match &e {
                SendError::Refused { permanent, .. } => ("refused", *permanent),
                SendError::Unreachable { .. } => ("unreachable", false),
                SendError::Message(_) => ("refused", true),
            };
            s.metrics.email_outbound("reply", outcome);
            warn!(contact = %contact.public_id, error = %e, "reply not sent");
            let mut response = problem(
                StatusCode::BAD_GATEWAY,
                "reply not sent",
                None,
                e.to_string(),
            );
            if !permanent {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            Err(Box::new(response))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{ConfigError, Loaded};

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
