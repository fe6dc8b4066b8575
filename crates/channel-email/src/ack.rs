//! Automatic acknowledgements (RFC 3834): whether a message may be answered automatically,
//! the answer itself (threaded, `Auto-Submitted: auto-replied`), a per-sender daily limit,
//! and sending it over SMTP with lettre.
//!
//! When to acknowledge (business hours, per mailbox) and the expected time (from the
//! queue's target and backlog) are decided by the daemon; this module is the part that
//! must be exact.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;
use switchboard_bus::InboundMessage;

use crate::config::{Secret, TlsMode, resolve_password};

/// Why a message gets no automatic answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// It was itself sent automatically (`Auto-Submitted` other than `no`).
    #[error("auto-submitted")]
    AutoSubmitted,
    /// It came through a mailing list.
    #[error("list mail")]
    List,
    /// It is bulk or junk (`Precedence`).
    #[error("bulk mail")]
    Bulk,
    /// It is a bounce (empty return path, mailer-daemon, postmaster).
    #[error("bounce")]
    Bounce,
    /// No sender address could be read.
    #[error("no sender address")]
    NoSender,
    /// It comes from one of the mailbox's own addresses (a loop).
    #[error("sent from our own address")]
    OwnAddress,
    /// The sender had their acknowledgements for today.
    #[error("daily limit for this sender reached")]
    Limit,
}

impl Skip {
    /// A short, low-cardinality reason for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Skip::AutoSubmitted => "auto_submitted",
            Skip::List => "list",
            Skip::Bulk => "bulk",
            Skip::Bounce => "bounce",
            Skip::NoSender => "no_sender",
            Skip::OwnAddress => "own_address",
            Skip::Limit => "limit",
        }
    }
}

/// Whether RFC 3834 lets this message be answered automatically; `own` are the mailbox's
/// own addresses (lower case). The per-sender limit is [`SenderLimit`]'s.
pub fn may_acknowledge(m: &InboundMessage, own: &[String]) -> Result<(), Skip> {
    let flag = |k: &str| m.attributes.get(k).is_some_and(|v| !v.is_null());
    if flag("auto_submitted") {
        return Err(Skip::AutoSubmitted);
    }
    if flag("list") {
        return Err(Skip::List);
    }
    if flag("bulk") {
        return Err(Skip::Bulk);
    }
    if flag("bounce") {
        return Err(Skip::Bounce);
    }
    let Some(sender) = m.attributes.get("from").and_then(|v| v.as_str()) else {
        return Err(Skip::NoSender);
    };
    if own.iter().any(|o| o.eq_ignore_ascii_case(sender)) {
        return Err(Skip::OwnAddress);
    }
    Ok(())
}

/// At most `per_day` acknowledgements per sender per day (days counted by the caller, for
/// example days since the epoch in the mailbox's time zone). Kept in memory: a restart
/// forgets today's counts.
#[derive(Debug)]
pub struct SenderLimit {
    per_day: u32,
    counts: Mutex<HashMap<String, (u64, u32)>>,
}

impl SenderLimit {
    /// A limit of `per_day` acknowledgements per sender.
    pub fn new(per_day: u32) -> SenderLimit {
        SenderLimit {
            per_day,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one of `sender`'s acknowledgements for `day`; `Err(Skip::Limit)` when none is
    /// left.
    pub fn take(&self, sender: &str, day: u64) -> Result<(), Skip> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        // Yesterday's counts are of no use: keep the map small.
        counts.retain(|_, (d, _)| *d >= day);
        let entry = counts.entry(sender.to_lowercase()).or_insert((day, 0));
        if entry.1 >= self.per_day {
            return Err(Skip::Limit);
        }
        entry.1 += 1;
        Ok(())
    }
}

/// `Auto-Submitted: auto-replied` (RFC 3834), so the answer starts no loop.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-replied".into())
    }
}

/// "within 3 hours", "within 20 minutes", "within 2 days": how long an answer should take.
pub fn expected_text(expected: Duration) -> String {
    let minutes = expected.as_secs().div_ceil(60).max(1);
    let (n, unit) = if minutes < 120 {
        (minutes, "minute")
    } else if minutes < 48 * 60 {
        (minutes.div_ceil(60), "hour")
    } else {
        (minutes.div_ceil(24 * 60), "day")
    };
    format!("within {n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The acknowledgement of `original`, from `from`, with `body` (where `{expected}` becomes
/// [`expected_text`] and `{subject}` the original subject). Threaded under the original
/// (`In-Reply-To`, `References`) and marked `Auto-Submitted: auto-replied`.
pub fn acknowledgement(
    original: &InboundMessage,
    from: &Mailbox,
    body: &str,
    expected: Duration,
) -> Result<Message, String> {
    let to = original
        .attributes
        .get("from")
        .and_then(|v| v.as_str())
        .ok_or("the message has no sender address")?;
    let to: Mailbox = to
        .parse()
        .map_err(|e| format!("sender address {to:?}: {e}"))?;
    let subject = if original.summary.to_lowercase().starts_with("re:") {
        original.summary.clone()
    } else {
        format!("Re: {}", original.summary)
    };
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .header(AutoSubmitted);
    if let Some(id) = original
        .attributes
        .get("message_id")
        .and_then(|v| v.as_str())
    {
        let mut references: Vec<String> = original
            .attributes
            .get("references")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str())
            .map(|r| format!("<{r}>"))
            .collect();
        references.push(format!("<{id}>"));
        builder = builder
            .in_reply_to(format!("<{id}>"))
            .references(references.join(" "));
    }
    let text = body
        .replace("{expected}", &expected_text(expected))
        .replace("{subject}", &original.summary);
    builder
        .body(text)
        .map_err(|e| format!("building the acknowledgement: {e}"))
}

/// The SMTP server acknowledgements and replies go through (`[mailboxes.<name>.smtp]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// SMTP server host name.
    pub host: String,
    /// Port; defaults to 465 with implicit TLS, 587 with STARTTLS, 25 plain.
    #[serde(default)]
    pub port: Option<u16>,
    /// `implicit`, `starttls` (default), or `plain` (tests only).
    #[serde(default = "default_smtp_tls")]
    pub tls: TlsMode,
    /// A PEM file of CA certificates the server's certificate may also chain to.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Login name; none: no authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// Password, inline (prefer `password_env`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Name of the environment variable that holds the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// How long one delivery may take.
    #[serde(default = "default_smtp_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_smtp_tls() -> TlsMode {
    TlsMode::Starttls
}
fn default_smtp_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Sends mail through one SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .finish()
    }
}

impl Mailer {
    /// A mailer for `config`; fails on a bad CA file or an unset password variable.
    pub fn new(config: &SmtpConfig) -> Result<Mailer, String> {
        let port = config.port.unwrap_or(match config.tls {
            TlsMode::Implicit => 465,
            TlsMode::Starttls => 587,
            TlsMode::Plain => 25,
        });
        let tls = || -> Result<TlsParameters, String> {
            let mut params = TlsParameters::builder(config.host.clone());
            if let Some(path) = &config.ca_file {
                let pem =
                    std::fs::read(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                params = params.add_root_certificate(cert);
            }
            params.build().map_err(|e| format!("tls: {e}"))
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
                .port(port)
                .timeout(Some(config.timeout))
                .tls(match config.tls {
                    TlsMode::Plain => Tls::None,
                    TlsMode::Starttls => Tls::Required(tls()?),
                    TlsMode::Implicit => Tls::Wrapper(tls()?),
                });
        if let Some(user) = &config.username {
            let password = resolve_password(&config.password, &config.password_env)?
                .ok_or("username without password or password_env")?;
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Mailer {
            transport: builder.build(),
            server: format!("{}:{port}", config.host),
        })
    }

    /// Sends one message; the error says what the server answered (or why it could not be
    /// reached), and nothing counts as sent.
    pub async fn send(&self, message: Message) -> Result<(), String> {
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| format!("smtp: sending through {}: {e}", self.server))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_core::Channel;

    fn message(attributes: serde_json::Value) -> InboundMessage {
        InboundMessage {
            source: "imap:support".into(),
            channel: Channel::Email,
            conversation: "m1@example.com".into(),
            customer: "ada@example.com".into(),
            summary: "Order 7".into(),
            body: None,
            urgency: None,
            skills: Vec::new(),
            attributes: serde_json::from_value(attributes).unwrap(),
        }
    }

    #[test]
    fn automatic_list_bulk_and_bounce_mail_is_never_answered() {
        let own = vec!["support@example.org".to_owned()];
        let ok = message(json!({"from": "ada@example.com"}));
        assert_eq!(may_acknowledge(&ok, &own), Ok(()));
        for (attrs, skip) in [
            (
                json!({"from": "a@b.c", "auto_submitted": "auto-replied"}),
                Skip::AutoSubmitted,
            ),
            (json!({"from": "a@b.c", "list": true}), Skip::List),
            (json!({"from": "a@b.c", "bulk": true}), Skip::Bulk),
            (
                json!({"from": "mailer-daemon@b.c", "bounce": true}),
                Skip::Bounce,
            ),
            (json!({}), Skip::NoSender),
            (json!({"from": "Support@Example.org"}), Skip::OwnAddress),
        ] {
            assert_eq!(may_acknowledge(&message(attrs), &own), Err(skip));
        }
    }

    #[test]
    fn each_sender_gets_a_limited_number_per_day() {
        let limit = SenderLimit::new(2);
        assert_eq!(limit.take("ada@example.com", 10), Ok(()));
        assert_eq!(limit.take("ADA@example.com", 10), Ok(()));
        assert_eq!(limit.take("ada@example.com", 10), Err(Skip::Limit));
        assert_eq!(limit.take("bob@example.com", 10), Ok(()));
        assert_eq!(limit.take("ada@example.com", 11), Ok(()), "a new day");
    }

    #[test]
    fn expected_times_read_naturally() {
        assert_eq!(expected_text(Duration::from_secs(30)), "within 1 minute");
        assert_eq!(
            expected_text(Duration::from_secs(20 * 60)),
            "within 20 minutes"
        );
        assert_eq!(
            expected_text(Duration::from_secs(4 * 3600)),
            "within 4 hours"
        );
        assert_eq!(
            expected_text(Duration::from_secs(3 * 86400)),
            "within 3 days"
        );
    }

    #[test]
    fn the_acknowledgement_threads_and_says_it_is_automatic() {
        let m = message(json!({
            "from": "ada@example.com",
            "message_id": "m2@example.com",
            "references": ["m1@example.com"],
        }));
        let from: Mailbox = "Support <support@example.org>".parse().unwrap();
        let ack = acknowledgement(
            &m,
            &from,
            "We got \"{subject}\"; expect an answer {expected}.",
            Duration::from_secs(7200),
        )
        .unwrap();
        let text = String::from_utf8(ack.formatted()).unwrap();
        assert!(text.contains("Auto-Submitted: auto-replied\r\n"), "{text}");
        assert!(text.contains("In-Reply-To: <m2@example.com>\r\n"), "{text}");
        assert!(
            text.contains("References: <m1@example.com> <m2@example.com>\r\n"),
            "{text}"
        );
        assert!(text.contains("Subject: Re: Order 7\r\n"), "{text}");
        assert!(text.contains("To: ada@example.com\r\n"), "{text}");
        assert!(text.contains("expect an answer within 2 hours."), "{text}");
    }
}
