//! Sending: a mailbox's `[mailboxes.<name>.smtp]` settings and the [`Sender`] that submits
//! the messages [`crate::compose`] builds, with a [`SendError`] that tells a refusal by the
//! server (its code and text, for the agent who sent the reply) from a server that could not
//! be reached.

use std::fmt;
use std::time::{Duration, SystemTime};

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use crate::compose::mailbox;
use crate::config::{ConfigError, MailboxConfig, Secret, TlsMode, resolve_password};

/// How a mailbox sends mail (`[mailboxes.<name>.smtp]`).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// SMTP server host name.
    pub host: String,
    /// SMTP server port; defaults to 465 with implicit TLS, 587 with STARTTLS, 25 plain.
    #[serde(default)]
    pub port: Option<u16>,
    /// `implicit` (default, RFC 8314), `starttls`, or `plain` (tests only).
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    /// Login name; without it no authentication is attempted.
    #[serde(default)]
    pub username: Option<String>,
    /// Password, inline (prefer `password_env`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Name of the environment variable that holds the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The mailbox's address, the `From` of everything it sends
    /// (`"Support <support@example.com>"`).
    pub from: String,
    /// The name given in `EHLO`; the domain of `from` by default.
    #[serde(default)]
    pub hello_name: Option<String>,
    /// How long one SMTP command may take.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_tls() -> TlsMode {
    TlsMode::Implicit
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand, so a future field cannot print a secret by accident: `Secret` redacts
        // itself, and the username stays out of logs too.
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port())
            .field("tls", &self.tls)
            .field("username", &self.username.as_ref().map(|_| "<set>"))
            .field("password", &self.password)
            .field("password_env", &self.password_env)
            .field("from", &self.from)
            .field("hello_name", &self.hello_name)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SmtpConfig {
    /// A server with the defaults, sending as `from`, for tests and examples.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        tls: TlsMode,
        from: impl Into<String>,
    ) -> SmtpConfig {
        SmtpConfig {
            host: host.into(),
            port: Some(port),
            tls,
            username: None,
            password: None,
            password_env: None,
            from: from.into(),
            hello_name: None,
            timeout: default_timeout(),
        }
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::Implicit => 465,
            TlsMode::Starttls => 587,
            TlsMode::Plain => 25,
        })
    }

    /// The `From` mailbox.
    pub fn from_mailbox(&self) -> Result<Mailbox, String> {
        mailbox(&self.from).map_err(|e| format!("smtp.from: {e}"))
    }

    /// The password when a username is set, from the config or its environment variable.
    pub fn credentials(&self) -> Result<Option<(String, Secret)>, String> {
        let Some(user) = &self.username else {
            return match (&self.password, &self.password_env) {
                (None, None) => Ok(None),
                _ => Err("smtp: a password without a username".into()),
            };
        };
        let password = resolve_password(&self.password, &self.password_env)
            .map_err(|e| format!("smtp.{e}"))?
            .ok_or("smtp: username needs password or password_env")?;
        Ok(Some((user.clone(), password)))
    }

    /// Checks everything that can be checked without connecting; the error names the
    /// mailbox and the `smtp` key.
    pub fn validate(&self, mailbox: &str) -> Result<(), ConfigError> {
        self.check().map_err(|reason| ConfigError {
            mailbox: mailbox.to_owned(),
            reason,
        })
    }

    fn check(&self) -> Result<(), String> {
        if self.host.trim().is_empty() {
            return Err("smtp.host is empty".into());
        }
        if self.port == Some(0) {
            return Err("smtp.port 0".into());
        }
        if self.username.as_deref().is_some_and(str::is_empty) {
            return Err("smtp.username is empty".into());
        }
        self.credentials()?;
        self.from_mailbox()?;
        if let Some(name) = &self.hello_name
            && (name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err("smtp.hello_name: one host name".into());
        }
        if self.timeout < Duration::from_secs(1) {
            return Err("smtp.timeout: at least 1s".into());
        }
        Ok(())
    }
}

impl MailboxConfig {
    /// Checks the outbound half of a mailbox (`smtp` and `acknowledge`); part of
    /// [`MailboxConfig::validate`].
    pub fn validate_outbound(&self) -> Result<(), ConfigError> {
        let error = |reason: String| ConfigError {
            mailbox: self.name.clone(),
            reason,
        };
        if let Some(smtp) = &self.smtp {
            smtp.validate(&self.name)?;
        }
        self.acknowledge.validate().map_err(error)?;
        if self.acknowledge.enabled && self.smtp.is_none() {
            return Err(error(
                "acknowledge.enabled needs [mailboxes.<name>.smtp] to send from".into(),
            ));
        }
        Ok(())
    }
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The server answered with a refusal: the message was not accepted (for example 550,
    /// an unknown recipient). `permanent` is a 5xx code; a 4xx may succeed later.
    #[error("smtp: {server} refused the message: {code} {reason}")]
    Refused {
        /// The server, `host:port`.
        server: String,
        /// The SMTP reply code (550).
        code: u16,
        /// The server's text.
        reason: String,
        /// A 5xx (permanent) rather than a 4xx (transient) refusal.
        permanent: bool,
    },
    /// The server could not be reached or spoken to (connection, TLS, timeout, protocol).
    #[error("smtp: {server}: {reason}")]
    Unreachable {
        /// The server, `host:port`.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The message has no recipient or sender the envelope can use.
    #[error("smtp: bad message: {0}")]
    Message(String),
}

/// Submits messages to one mailbox's SMTP server. Each send opens its own connection: a
/// mailbox sends a few messages a minute, and a fresh connection never finds a server that
/// dropped an idle one.
#[derive(Clone)]
pub struct Sender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
    from: Mailbox,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl Sender {
    /// A sender for `config`, which must be valid ([`SmtpConfig::validate`]); `mailbox`
    /// names the mailbox in errors. Connects to nothing yet.
    pub fn new(mailbox: &str, config: &SmtpConfig) -> Result<Sender, ConfigError> {
        let error = |reason: String| ConfigError {
            mailbox: mailbox.to_owned(),
            reason,
        };
        config.validate(mailbox)?;
        let from = config.from_mailbox().map_err(error)?;
        let builder = match config.tls {
            TlsMode::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host),
            TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host),
            TlsMode::Plain => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &config.host,
            )),
        }
        .map_err(|e| error(format!("smtp: TLS for {}: {e}", config.host)))?;
        let hello = config
            .hello_name
            .clone()
            .unwrap_or_else(|| from.email.domain().to_owned());
        let mut builder = builder
            .port(config.port())
            .timeout(Some(config.timeout))
            .hello_name(ClientId::Domain(hello));
        if let Some((user, password)) = config.credentials().map_err(error)? {
            builder = builder.credentials(Credentials::new(user, password.expose().to_owned()));
        }
        Ok(Sender {
            transport: builder.build(),
            server: format!("{}:{}", config.host, config.port()),
            from,
        })
    }

    /// The mailbox's address, the `From` to compose with.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Sends `message`; on success returns its Message-ID without angle brackets (as
    /// [`crate::parse`] keeps ids), for the conversation's record. Nothing is retried here: the caller decides
    /// (an agent's reply is reported back, an acknowledgement is dropped).
    pub async fn send(&self, message: &Message) -> Result<String, SendError> {
        let id = message
            .headers()
            .get_raw("Message-ID")
            .map(|id| {
                id.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
            .ok_or_else(|| SendError::Message("no Message-ID".into()))?;
        let started = SystemTime::now();
        match self.transport.send(message.clone()).await {
            Ok(_) => {
                tracing::debug!(server = %self.server, message_id = %id, elapsed = ?started.elapsed().unwrap_or_default(), "smtp: sent");
                Ok(id)
            }
            Err(e) => Err(self.error(&e)),
        }
    }

    fn error(&self, e: &lettre::transport::smtp::Error) -> SendError {
        let server = self.server.clone();
        if let Some(code) = e.status() {
            let code_text = code.to_string();
            let reason = std::error::Error::source(e)
                .map(|s| s.to_string())
                .unwrap_or_default();
            return SendError::Refused {
                server,
                code: code_text.parse().unwrap_or(0),
                reason,
                permanent: code_text.starts_with('5'),
            };
        }
        SendError::Unreachable {
            server,
            reason: chain(e),
        }
    }
}

/// An error and its sources, `: `-separated (lettre's own text already includes the first).
fn chain(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e).and_then(std::error::Error::source);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SmtpConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn ports_follow_the_tls_mode() {
        let c = parse("host = \"smtp.example.com\"\nfrom = \"support@example.com\"\n");
        c.validate("support").unwrap();
        assert_eq!((c.tls, c.port()), (TlsMode::Implicit, 465));
        assert_eq!(c.timeout, Duration::from_secs(30));
        let c = parse("host = \"h\"\nfrom = \"s@example.com\"\ntls = \"starttls\"\n");
        assert_eq!(c.port(), 587);
        let c = parse("host = \"h\"\nfrom = \"s@example.com\"\ntls = \"plain\"\n");
        assert_eq!(c.port(), 25);
        let c = parse("host = \"h\"\nfrom = \"s@example.com\"\nport = 2525\n");
        assert_eq!(c.port(), 2525);
    }

    #[test]
    fn secrets_and_usernames_stay_out_of_debug() {
        let c = parse(
            "host = \"h\"\nfrom = \"s@example.com\"\nusername = \"agent-login\"\npassword = \"hunter2\"\n",
        );
        c.validate("support").unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("agent-login"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let sender = Sender::new("support", &c).unwrap();
        assert!(!format!("{sender:?}").contains("hunter2"));
    }

    #[test]
    fn bad_smtp_settings_say_which_key() {
        let bad = [
            ("host = \"\"\nfrom = \"s@example.com\"", "smtp.host"),
            ("host = \"h\"\nfrom = \"not an address\"", "smtp.from"),
            (
                "host = \"h\"\nfrom = \"s@example.com\"\nusername = \"u\"",
                "password",
            ),
            (
                "host = \"h\"\nfrom = \"s@example.com\"\npassword = \"p\"",
                "without a username",
            ),
            (
                "host = \"h\"\nfrom = \"s@example.com\"\nusername = \"u\"\npassword_env = \"SWITCHBOARD_TEST_UNSET_VAR\"",
                "SWITCHBOARD_TEST_UNSET_VAR",
            ),
            (
                "host = \"h\"\nfrom = \"s@example.com\"\nport = 0",
                "smtp.port",
            ),
            (
                "host = \"h\"\nfrom = \"s@example.com\"\ntimeout = \"10ms\"",
                "smtp.timeout",
            ),
            (
                "host = \"h\"\nfrom = \"s@example.com\"\nhello_name = \"a b\"",
                "hello_name",
            ),
        ];
        for (text, reason) in bad {
            let err = parse(text).validate("support").unwrap_err();
            assert_eq!(err.mailbox, "support");
            assert!(err.to_string().contains(reason), "{text}: {err}");
        }
        let err =
            toml::from_str::<SmtpConfig>("host = \"h\"\nfrom = \"s@x.y\"\nprot = 1").unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
    }

    #[test]
    fn a_mailbox_checks_its_outbound_half() {
        let base = "host = \"imap.example.com\"\nusername = \"u\"\npassword = \"p\"\n";
        let parse = |extra: &str| {
            let mut c: MailboxConfig = toml::from_str(&format!("{base}{extra}")).unwrap();
            c.name = "support".into();
            c
        };
        let c = parse("");
        c.validate().unwrap();
        assert_eq!(c.smtp, None);
        assert!(!c.acknowledge.enabled);
        let c = parse(
            "[smtp]\nhost = \"smtp.example.com\"\nfrom = \"Support <support@example.com>\"\n[acknowledge]\nenabled = true\n[acknowledge.business_hours]\nstart = \"08:00\"\nend = \"18:00\"\nutc_offset = \"+01:00\"\n",
        );
        c.validate().unwrap();
        assert_eq!(c.acknowledge.max_per_sender_per_day, 3);
        assert_eq!(c.smtp.as_ref().map(SmtpConfig::port), Some(465));
        let err = parse("[acknowledge]\nenabled = true\n")
            .validate()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("mailbox support: acknowledge.enabled needs"),
            "{err}"
        );
        let err = parse("[smtp]\nhost = \"h\"\nfrom = \"nobody\"\n")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("smtp.from"), "{err}");
        let err = parse("[acknowledge]\nmax_per_sender_per_day = 0\n")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("max_per_sender_per_day"), "{err}");
    }

    #[test]
    fn every_tls_mode_builds_a_sender() {
        for tls in [TlsMode::Implicit, TlsMode::Starttls, TlsMode::Plain] {
            let mut c = SmtpConfig::new("smtp.example.com", 0, tls, "Support <s@example.com>");
            c.port = None;
            let sender = Sender::new("support", &c).unwrap();
            assert_eq!(sender.from().email.to_string(), "s@example.com");
            assert!(format!("{sender:?}").contains(&format!("smtp.example.com:{}", c.port())));
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_not_a_refusal() {
        // A port nothing listens on: bind one, note it, close it.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut c = SmtpConfig::new("127.0.0.1", port, TlsMode::Plain, "s@example.com");
        c.timeout = Duration::from_secs(2);
        let sender = Sender::new("support", &c).unwrap();
        let m = crate::compose::agent_reply(
            &crate::compose::ThreadHeaders::default(),
            sender.from(),
            &mailbox("ada@example.com").unwrap(),
            "hi",
            SystemTime::now(),
        )
        .unwrap();
        let err = sender.send(&m).await.unwrap_err();
        assert!(matches!(err, SendError::Unreachable { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }
}
