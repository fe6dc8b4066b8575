//! One mailbox's configuration (`[mailboxes.<name>]`), its validation, and the secret it
//! holds (never printed: `Debug` redacts it).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::acknowledge::AckSettings;
use crate::parse::Defaults;
use crate::smtp::SmtpConfig;

/// How the connection to the IMAP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plain connection upgraded with `STARTTLS` before login (port 143).
    Starttls,
    /// No encryption at all: for tests on loopback only.
    Plain,
}

/// A password, kept out of logs: `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the login command only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What is done to a message once it is safely published and its UID recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// Add this flag or keyword (`\Seen`, `$Switchboard`).
    Flag(String),
    /// Move the message to this folder.
    Move(String),
}

/// One watched mailbox folder.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// The mailbox's name (the key of `[mailboxes.<name>]`); messages get the source
    /// `imap:<name>` and checkpoints are kept under it.
    #[serde(default)]
    pub name: String,
    /// IMAP server host name.
    pub host: String,
    /// IMAP server port; defaults to 993 with implicit TLS, else 143.
    #[serde(default)]
    pub port: Option<u16>,
    /// `implicit` (default), `starttls`, or `plain` (tests only).
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    /// A PEM file of CA certificates the server's certificate may also chain to (a
    /// private CA), beside the webpki roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Login name.
    pub username: String,
    /// Password, inline (prefer `password_env`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Name of the environment variable that holds the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Folder to watch.
    #[serde(default = "default_folder")]
    pub folder: String,
    /// Flag or keyword added to a message once it is published (`\Seen`, `$Switchboard`).
    #[serde(default = "default_mark")]
    pub mark: String,
    /// Move processed messages to this folder instead of flagging them.
    #[serde(default)]
    pub move_to: Option<String>,
    /// Wait for new mail with IDLE when the server has it; `false` polls instead (for
    /// servers whose IDLE misbehaves).
    #[serde(default = "default_true")]
    pub idle: bool,
    /// How often to look for new mail without IDLE.
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long one IDLE lasts before it is re-issued (under RFC 2177's 29 minutes).
    #[serde(default = "default_idle", with = "humantime_serde")]
    pub idle_refresh: Duration,
    /// What contacts from this mailbox get (`[mailboxes.<name>.contacts]`: queue, skills,
    /// urgency).
    #[serde(default)]
    pub contacts: Defaults,
    /// How this mailbox sends acknowledgements and agent replies (`[mailboxes.<name>.smtp]`);
    /// without it the mailbox only receives.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// Automatic acknowledgements (`[mailboxes.<name>.acknowledge]`); off by default.
    #[serde(default)]
    pub acknowledge: AckSettings,
}

fn default_tls() -> TlsMode {
    TlsMode::Implicit
}
fn default_true() -> bool {
    true
}
fn default_folder() -> String {
    "INBOX".into()
}
fn default_mark() -> String {
    "\\Seen".into()
}
fn default_poll() -> Duration {
    Duration::from_secs(60)
}
fn default_idle() -> Duration {
    Duration::from_secs(25 * 60)
}

/// A mailbox that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mailbox {mailbox}: {reason}")]
pub struct ConfigError {
    /// The mailbox's name.
    pub mailbox: String,
    /// What is wrong.
    pub reason: String,
}

impl MailboxConfig {
    /// A mailbox with the defaults, for tests and examples.
    pub fn new(
        name: impl Into<String>,
        host: impl Into<String>,
        port: u16,
        tls: TlsMode,
        username: impl Into<String>,
        password: Secret,
    ) -> MailboxConfig {
        MailboxConfig {
            name: name.into(),
            host: host.into(),
            port: Some(port),
            tls,
            ca_file: None,
            username: username.into(),
            password: Some(password),
            password_env: None,
            folder: default_folder(),
            mark: default_mark(),
            move_to: None,
            idle: true,
            poll_interval: default_poll(),
            idle_refresh: default_idle(),
            contacts: Defaults::default(),
            smtp: None,
            acknowledge: AckSettings::default(),
        }
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::Implicit => 993,
            TlsMode::Starttls | TlsMode::Plain => 143,
        })
    }

    /// What a processed message gets.
    pub fn mark(&self) -> Mark {
        match &self.move_to {
            Some(folder) => Mark::Move(folder.clone()),
            None => Mark::Flag(self.mark.clone()),
        }
    }

    /// The password, from the config or its environment variable.
    pub fn password(&self) -> Result<Secret, ConfigError> {
        resolve_password(&self.password, &self.password_env)
            .map_err(|e| self.error(e))?
            .ok_or_else(|| self.error("password or password_env is required"))
    }

    /// Checks everything that can be checked without connecting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(self.error("name: letters, digits, '-', '_' and '.' only"));
        }
        if self.host.trim().is_empty() {
            return Err(self.error("host is empty"));
        }
        if self.port == Some(0) {
            return Err(self.error("port 0"));
        }
        if self.username.is_empty() {
            return Err(self.error("username is empty"));
        }
        self.password()?;
        if let Some(path) = &self.ca_file {
            crate::connect::read_ca_file(path)
                .map_err(|e| self.error(format!("ca_file {}: {e}", path.display())))?;
        }
        check_folder(&self.folder).map_err(|r| self.error(format!("folder: {r}")))?;
        if let Some(to) = &self.move_to {
            check_folder(to).map_err(|r| self.error(format!("move_to: {r}")))?;
            if to == &self.folder {
                return Err(self.error("move_to is the watched folder"));
            }
        } else {
            check_flag(&self.mark).map_err(|r| self.error(format!("mark: {r}")))?;
        }
        if self.poll_interval < Duration::from_secs(1) {
            return Err(self.error("poll_interval: at least 1s"));
        }
        if self.idle_refresh < Duration::from_secs(1)
            || self.idle_refresh > Duration::from_secs(29 * 60)
        {
            return Err(self.error("idle_refresh: between 1s and 29m (RFC 2177)"));
        }
        self.validate_outbound()?;
        Ok(())
    }

    fn error(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            mailbox: self.name.clone(),
            reason: reason.into(),
        }
    }
}

/// A password from the config or from the environment variable it names; `None` when
/// neither is set.
pub fn resolve_password(
    password: &Option<Secret>,
    password_env: &Option<String>,
) -> Result<Option<Secret>, String> {
    match (password, password_env) {
        (Some(p), None) => Ok(Some(p.clone())),
        (None, Some(var)) => std::env::var(var)
            .map(|p| Some(Secret(p)))
            .map_err(|e| format!("password_env {var}: {e}")),
        (Some(_), Some(_)) => Err("set password or password_env, not both".into()),
        (None, None) => Ok(None),
    }
}

/// Folder names go into commands quoted: no quotes, backslashes or line breaks.
fn check_folder(folder: &str) -> Result<(), &'static str> {
    if folder.is_empty() {
        return Err("empty");
    }
    if folder
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err("no control characters, quotes or backslashes");
    }
    Ok(())
}

/// A system flag (`\Seen`, `\Flagged`, `\Answered`) or a keyword atom (RFC 3501).
fn check_flag(flag: &str) -> Result<(), &'static str> {
    if let Some(system) = flag.strip_prefix('\\') {
        return match system.to_ascii_lowercase().as_str() {
            "seen" | "flagged" | "answered" => Ok(()),
            "deleted" => Err("\\Deleted would have messages expunged; use move_to"),
            _ => Err("system flags: \\Seen, \\Flagged or \\Answered"),
        };
    }
    let atom = !flag.is_empty()
        && flag
            .chars()
            .all(|c| c.is_ascii_graphic() && !"(){%*\"\\]".contains(c));
    if atom {
        Ok(())
    } else {
        Err("a keyword is one IMAP atom, like $Switchboard")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::Urgency;

    fn parse(toml_text: &str) -> MailboxConfig {
        let mut c: MailboxConfig = toml::from_str(toml_text).unwrap();
        c.name = "support".into();
        c
    }

    #[test]
    fn a_minimal_mailbox_gets_the_defaults() {
        let c = parse("host = \"imap.example.com\"\nusername = \"u\"\npassword = \"p\"\n");
        c.validate().unwrap();
        assert_eq!(c.port(), 993);
        assert_eq!(c.tls, TlsMode::Implicit);
        assert_eq!(c.folder, "INBOX");
        assert_eq!(c.mark(), Mark::Flag("\\Seen".into()));
        assert_eq!(c.idle_refresh, Duration::from_secs(25 * 60));
    }

    #[test]
    fn the_password_never_shows_in_debug() {
        let c = parse("host = \"h\"\nusername = \"u\"\npassword = \"hunter2\"\n");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn bad_mailboxes_say_which_and_why() {
        let bad = [
            ("host = \"h\"\nusername = \"u\"\n", "password"),
            (
                "host = \"h\"\nusername = \"u\"\npassword = \"p\"\npassword_env = \"X\"\n",
                "not both",
            ),
            (
                "host = \"h\"\nusername = \"u\"\npassword_env = \"SWITCHBOARD_TEST_UNSET_VAR\"\n",
                "SWITCHBOARD_TEST_UNSET_VAR",
            ),
            ("host = \"\"\nusername = \"u\"\npassword = \"p\"\n", "host"),
            (
                "host = \"h\"\nusername = \"u\"\npassword = \"p\"\nmark = \"\\\\Deleted\"\n",
                "move_to",
            ),
            (
                "host = \"h\"\nusername = \"u\"\npassword = \"p\"\nmark = \"two words\"\n",
                "keyword",
            ),
            (
                "host = \"h\"\nusername = \"u\"\npassword = \"p\"\nidle_refresh = \"30m\"\n",
                "29m",
            ),
            (
                "host = \"h\"\nusername = \"u\"\npassword = \"p\"\nmove_to = \"INBOX\"\n",
                "watched",
            ),
        ];
        for (text, reason) in bad {
            let err = parse(text).validate().unwrap_err();
            assert_eq!(err.mailbox, "support");
            assert!(
                err.to_string().contains(reason),
                "{err} should say {reason}"
            );
        }
        let err = toml::from_str::<MailboxConfig>("host = \"h\"\nusername = \"u\"\nhots = 1\n")
            .unwrap_err();
        assert!(err.to_string().contains("hots"), "{err}");
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let err = parse(
            "host = \"h\"\nusername = \"u\"\npassword = \"p\"\nca_file = \"/nonexistent/ca.pem\"\n",
        )
        .validate()
        .unwrap_err();
        assert!(err.reason.contains("/nonexistent/ca.pem"), "{err}");
        let empty = std::env::temp_dir().join(format!("empty-ca-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let text = format!(
            "host = \"h\"\nusername = \"u\"\npassword = \"p\"\nca_file = {:?}\n",
            empty.display().to_string()
        );
        let err = parse(&text).validate().unwrap_err();
        assert!(err.reason.contains("no certificate"), "{err}");
        std::fs::remove_file(&empty).unwrap();
    }

    #[test]
    fn keywords_and_moves_are_marks() {
        let c = parse(
            "host = \"h\"\nusername = \"u\"\npassword = \"p\"\nmark = \"$Switchboard\"\n[contacts]\nqueue = \"billing\"\nurgency = \"high\"\n",
        );
        c.validate().unwrap();
        assert_eq!(c.mark(), Mark::Flag("$Switchboard".into()));
        assert_eq!(c.contacts.urgency, Some(Urgency::High));
        assert_eq!(c.contacts.queue.as_deref(), Some("billing"));
        let c = parse("host = \"h\"\nusername = \"u\"\npassword = \"p\"\nmove_to = \"Done\"\n");
        assert_eq!(c.mark(), Mark::Move("Done".into()));
    }
}
