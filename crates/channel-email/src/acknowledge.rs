//! Automatic acknowledgements: a mailbox's `[mailboxes.<name>.acknowledge]` settings, the
//! RFC 3834 decision whether an incoming message may be answered automatically at all, the
//! business-hours check and the template text. Pure: no I/O, no clock (`now` is passed in).
//!
//! The decision refuses, in this order: mail that is automatic (`Auto-Submitted` other than
//! `no`), list or bulk mail (`List-*`, `Precedence: bulk|list|junk`), bounces (empty
//! `Return-Path`, MAILER-DAEMON), mail whose sender asked for no automatic answers
//! (Microsoft's `X-Auto-Response-Suppress`), senders that are machines by name (`noreply`,
//! `postmaster`, `owner-…`, `…-request`, RFC 3834 §2), our own address, and a sender already
//! answered `max_per_sender_per_day` times. Outside business hours it picks the
//! out-of-hours text, or refuses when configured to.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;
use switchboard_bus::InboundMessage;

/// A mailbox's automatic acknowledgement settings (`[mailboxes.<name>.acknowledge]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckSettings {
    /// Whether new mail gets an automatic acknowledgement at all (needs `smtp`).
    #[serde(default)]
    pub enabled: bool,
    /// At most this many acknowledgements to one sender per day (RFC 3834 §2 asks for a
    /// limit so two responders cannot loop).
    #[serde(default = "default_max_per_sender")]
    pub max_per_sender_per_day: u32,
    /// When the team works; without it every hour is a business hour.
    #[serde(default)]
    pub business_hours: Option<BusinessHours>,
    /// What to do outside business hours: `acknowledge` with `out_of_hours_template`
    /// (default) or `skip`.
    #[serde(default)]
    pub out_of_hours: OutOfHours,
    /// The text sent within business hours; `{expected}` becomes the expected answer time
    /// ("2 hours").
    #[serde(default = "default_template")]
    pub template: String,
    /// The text sent outside business hours; `{expected}` as above.
    #[serde(default = "default_out_of_hours_template")]
    pub out_of_hours_template: String,
}

impl Default for AckSettings {
    fn default() -> AckSettings {
        AckSettings {
            enabled: false,
            max_per_sender_per_day: default_max_per_sender(),
            business_hours: None,
            out_of_hours: OutOfHours::default(),
            template: default_template(),
            out_of_hours_template: default_out_of_hours_template(),
        }
    }
}

fn default_max_per_sender() -> u32 {
    3
}

/// The default text within business hours (lines under 76 characters, so it goes out as
/// plain 7-bit text).
pub const DEFAULT_TEMPLATE: &str = "Hello,

thank you for your message: we have received it and will answer
within {expected}.

There is no need to write again; if you have more to add, reply to
this message and it will join your request.
";
/// The default text outside business hours.
pub const DEFAULT_OUT_OF_HOURS_TEMPLATE: &str = "Hello,

thank you for your message: we have received it outside our business
hours. We expect to answer within {expected} once we are back.

There is no need to write again; if you have more to add, reply to
this message and it will join your request.
";

fn default_template() -> String {
    DEFAULT_TEMPLATE.into()
}
fn default_out_of_hours_template() -> String {
    DEFAULT_OUT_OF_HOURS_TEMPLATE.into()
}

/// What happens to mail that arrives outside business hours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutOfHours {
    /// Acknowledge with the out-of-hours text.
    #[default]
    Acknowledge,
    /// Send nothing.
    Skip,
}

/// The days and hours a team answers, in one fixed UTC offset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// Working days (`mon` … `sun`); Monday to Friday by default.
    #[serde(default = "default_days")]
    pub days: Vec<Weekday>,
    /// Start of the working day, local time (`"09:00"`).
    pub start: LocalTime,
    /// End of the working day, local time, after `start` (`"17:30"`, at most `"24:00"`).
    pub end: LocalTime,
    /// The local time's offset from UTC (`"+01:00"`, `"-05:00"`, `"Z"`). A fixed offset, not
    /// a zone: daylight saving time changes it twice a year.
    #[serde(default)]
    pub utc_offset: UtcOffset,
}

fn default_days() -> Vec<Weekday> {
    use Weekday::*;
    vec![Mon, Tue, Wed, Thu, Fri]
}

impl BusinessHours {
    /// Whether `now` falls within these hours.
    pub fn contains(&self, now: SystemTime) -> bool {
        let (day, minute) = local(now, self.utc_offset);
        self.days.contains(&day) && self.start.0 <= minute && minute < self.end.0
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// A local time of day, `"HH:MM"`, kept as minutes after midnight (`"24:00"` is 1440).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct LocalTime(pub u16);

impl TryFrom<String> for LocalTime {
    type Error = String;
    fn try_from(s: String) -> Result<LocalTime, String> {
        let bad = || format!("{s:?}: a time is \"HH:MM\", from 00:00 to 24:00");
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        if m >= 60 || h > 24 || (h == 24 && m > 0) {
            return Err(bad());
        }
        Ok(LocalTime(h * 60 + m))
    }
}

/// A fixed offset from UTC, in minutes (`"+01:00"` is 60).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct UtcOffset(pub i32);

impl TryFrom<String> for UtcOffset {
    type Error = String;
    fn try_from(s: String) -> Result<UtcOffset, String> {
        if s == "Z" || s.eq_ignore_ascii_case("utc") {
            return Ok(UtcOffset(0));
        }
        let bad = || format!("{s:?}: an offset is \"+HH:MM\" or \"-HH:MM\" (or \"Z\")");
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, &s[1..]),
            Some(b'-') => (-1, &s[1..]),
            _ => return Err(bad()),
        };
        let t = LocalTime::try_from(rest.to_owned()).map_err(|_| bad())?;
        if t.0 > 14 * 60 {
            return Err(bad());
        }
        Ok(UtcOffset(sign * i32::from(t.0)))
    }
}

/// The weekday and minute of the day of `now` at `offset`.
fn local(now: SystemTime, offset: UtcOffset) -> (Weekday, u16) {
    let secs = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX / 2),
    };
    let local = secs + i64::from(offset.0) * 60;
    let days = local.div_euclid(86_400);
    let minute = u16::try_from(local.rem_euclid(86_400) / 60).unwrap_or(0);
    // 1970-01-01 was a Thursday.
    use Weekday::*;
    let day = [Thu, Fri, Sat, Sun, Mon, Tue, Wed][usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    (day, minute)
}

impl AckSettings {
    /// Checks the settings; the reason names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_per_sender_per_day == 0 {
            return Err(
                "acknowledge.max_per_sender_per_day: at least 1 (use enabled = false)".into(),
            );
        }
        if let Some(hours) = &self.business_hours {
            if hours.start >= hours.end {
                return Err("acknowledge.business_hours: start must be before end".into());
            }
            if hours.days.is_empty() {
                return Err("acknowledge.business_hours.days: empty".into());
            }
        }
        for (key, text) in [
            ("template", &self.template),
            ("out_of_hours_template", &self.out_of_hours_template),
        ] {
            if text.trim().is_empty() {
                return Err(format!("acknowledge.{key}: empty"));
            }
            let unknown = text
                .split('{')
                .skip(1)
                .find(|rest| !rest.starts_with("expected}"));
            if unknown.is_some() {
                return Err(format!(
                    "acknowledge.{key}: the only placeholder is {{expected}}"
                ));
            }
        }
        Ok(())
    }

    /// The text for `ack`, with `{expected}` filled in from `expected` ("2 hours").
    pub fn text(&self, ack: Ack, expected: Duration) -> String {
        let template = match ack {
            Ack::InHours => &self.template,
            Ack::OutOfHours => &self.out_of_hours_template,
        };
        template.replace("{expected}", &human_duration(expected))
    }
}

/// Which acknowledgement to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Within business hours (or no business hours configured): `template`.
    InHours,
    /// Outside business hours: `out_of_hours_template`.
    OutOfHours,
}

/// Why a message gets no automatic acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAck {
    /// Acknowledgements are off for this mailbox.
    Disabled,
    /// `Auto-Submitted` says the message is automatic (the header's value).
    AutoSubmitted(String),
    /// A mailing list message (`List-Id`, `List-Unsubscribe`, `List-Post`).
    List,
    /// `Precedence: bulk`, `list` or `junk`.
    Bulk,
    /// A bounce: empty return path or a MAILER-DAEMON/postmaster sender.
    Bounce,
    /// The sender asked for no automatic answers (`X-Auto-Response-Suppress`, its value).
    Suppressed(String),
    /// The sender's address is a machine's (`noreply`, `owner-…`, `…-request`).
    MachineSender(String),
    /// No address to answer to.
    NoSender,
    /// The message comes from the mailbox itself.
    OwnAddress,
    /// This sender already got the day's limit of acknowledgements.
    DailyLimit {
        /// Acknowledgements sent to this sender today.
        sent: u32,
        /// The configured limit.
        max: u32,
    },
    /// Outside business hours, with `out_of_hours = "skip"`.
    OutOfHours,
}

impl NoAck {
    /// A short, low-cardinality reason for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            NoAck::Disabled => "disabled",
            NoAck::AutoSubmitted(_) => "auto_submitted",
            NoAck::List => "list",
            NoAck::Bulk => "bulk",
            NoAck::Bounce => "bounce",
            NoAck::Suppressed(_) => "suppressed",
            NoAck::MachineSender(_) => "machine_sender",
            NoAck::NoSender => "no_sender",
            NoAck::OwnAddress => "own_address",
            NoAck::DailyLimit { .. } => "daily_limit",
            NoAck::OutOfHours => "out_of_hours",
        }
    }
}

impl fmt::Display for NoAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoAck::Disabled => f.write_str("acknowledgements are disabled"),
            NoAck::AutoSubmitted(v) => write!(f, "auto-submitted mail ({v})"),
            NoAck::List => f.write_str("mailing list mail"),
            NoAck::Bulk => f.write_str("bulk mail (Precedence)"),
            NoAck::Bounce => f.write_str("a bounce (empty return path or mailer-daemon)"),
            NoAck::Suppressed(v) => write!(f, "X-Auto-Response-Suppress: {v}"),
            NoAck::MachineSender(_) => f.write_str("the sender is a machine address"),
            NoAck::NoSender => f.write_str("no sender address"),
            NoAck::OwnAddress => f.write_str("mail from the mailbox itself"),
            NoAck::DailyLimit { sent, max } => {
                write!(
                    f,
                    "sender already acknowledged {sent} times today (limit {max})"
                )
            }
            NoAck::OutOfHours => f.write_str("outside business hours"),
        }
    }
}

/// Whether `incoming` (as [`crate::parse`] made it) may be acknowledged, and with which text.
///
/// `sent_today_to_sender` is how many acknowledgements went to [`reply_address`] in the last
/// day (the caller counts them); `own_address` is the mailbox's address, so the mailbox never
/// answers itself.
pub fn acknowledge_decision(
    incoming: &InboundMessage,
    own_address: &str,
    sent_today_to_sender: u32,
    now: SystemTime,
    settings: &AckSettings,
) -> Result<Ack, NoAck> {
    if !settings.enabled {
        return Err(NoAck::Disabled);
    }
    let a = &incoming.attributes;
    let text = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_owned);
    let flag = |k: &str| a.get(k).and_then(Value::as_bool).unwrap_or(false);
    if let Some(auto) = text("auto_submitted") {
        return Err(NoAck::AutoSubmitted(auto));
    }
    if flag("list") {
        return Err(NoAck::List);
    }
    if flag("bulk") {
        return Err(NoAck::Bulk);
    }
    if flag("bounce") {
        return Err(NoAck::Bounce);
    }
    if let Some(v) = text("auto_response_suppress")
        && suppresses_auto_reply(&v)
    {
        return Err(NoAck::Suppressed(v));
    }
    let from = text("from").ok_or(NoAck::NoSender)?;
    let to = reply_address(incoming).ok_or(NoAck::NoSender)?;
    for address in [&from, &to] {
        if is_machine_address(address) {
            return Err(NoAck::MachineSender(address.clone()));
        }
        if address.eq_ignore_ascii_case(own_address) {
            return Err(NoAck::OwnAddress);
        }
    }
    let max = settings.max_per_sender_per_day;
    if sent_today_to_sender >= max {
        return Err(NoAck::DailyLimit {
            sent: sent_today_to_sender,
            max,
        });
    }
    match &settings.business_hours {
        Some(hours) if !hours.contains(now) => match settings.out_of_hours {
            OutOfHours::Acknowledge => Ok(Ack::OutOfHours),
            OutOfHours::Skip => Err(NoAck::OutOfHours),
        },
        _ => Ok(Ack::InHours),
    }
}

/// Where an answer to `incoming` goes: its `Reply-To`, else its `From` address.
pub fn reply_address(incoming: &InboundMessage) -> Option<String> {
    ["reply_to", "from"]
        .into_iter()
        .filter_map(|k| incoming.attributes.get(k).and_then(Value::as_str))
        .map(str::trim)
        .find(|a| a.contains('@'))
        .map(str::to_lowercase)
}

/// Microsoft's `X-Auto-Response-Suppress` is a comma-separated list; `All`, `AutoReply` and
/// `OOF` ask for no automatic replies (the others are about delivery and read receipts).
fn suppresses_auto_reply(value: &str) -> bool {
    value.split(',').map(str::trim).any(|v| {
        v.eq_ignore_ascii_case("all")
            || v.eq_ignore_ascii_case("autoreply")
            || v.eq_ignore_ascii_case("oof")
    })
}

/// Addresses of machines that must not get automatic answers (RFC 3834 §2 names
/// `owner-*` and `*-request`; the rest is common practice).
pub fn is_machine_address(address: &str) -> bool {
    let local = address
        .rsplit_once('@')
        .map_or(address, |(l, _)| l)
        .to_ascii_lowercase();
    let squeezed: String = local
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .collect();
    const EXACT: &[&str] = &[
        "mailerdaemon",
        "postmaster",
        "noreply",
        "donotreply",
        "nobody",
        "listserv",
        "majordomo",
        "bounce",
        "bounces",
    ];
    EXACT.contains(&squeezed.as_str())
        || squeezed.starts_with("noreply")
        || squeezed.starts_with("donotreply")
        || local.starts_with("owner-")
        || local.ends_with("-request")
        || local.ends_with("-owner")
        || local.ends_with("-bounces")
        || local.starts_with("bounce-")
        || local.starts_with("bounces+")
}

/// A duration as a person says it, rounded up so the promise holds: "a few minutes",
/// "15 minutes", "1 hour", "5 hours", "3 days".
pub fn human_duration(d: Duration) -> String {
    let minutes = d.as_secs().div_ceil(60);
    if minutes <= 5 {
        return "a few minutes".into();
    }
    if minutes < 60 {
        let m = minutes.div_ceil(5) * 5;
        if m < 60 {
            return format!("{m} minutes");
        }
    }
    let hours = minutes.div_ceil(60);
    match hours {
        1 => "1 hour".into(),
        2..48 => format!("{hours} hours"),
        _ => format!("{} days", hours.div_ceil(24)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_core::Channel;

    fn message(attrs: &[(&str, Value)]) -> InboundMessage {
        let mut attributes = std::collections::BTreeMap::new();
        attributes.insert("from".into(), json!("ada@example.com"));
        for (k, v) in attrs {
            attributes.insert((*k).into(), v.clone());
        }
        InboundMessage {
            source: "imap:support".into(),
            channel: Channel::Email,
            conversation: "email:m1@example.com".into(),
            customer: "ada@example.com".into(),
            summary: "Refund".into(),
            body: None,
            urgency: None,
            skills: vec![],
            attributes,
        }
    }

    fn on() -> AckSettings {
        AckSettings {
            enabled: true,
            ..AckSettings::default()
        }
    }

    /// 2026-11-24 (a Tuesday) at 10:00 UTC.
    fn tuesday_10_utc() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_478_400 + 10 * 3600)
    }

    fn decide(m: &InboundMessage, sent: u32, s: &AckSettings) -> Result<Ack, NoAck> {
        acknowledge_decision(m, "support@example.org", sent, tuesday_10_utc(), s)
    }

    #[test]
    fn a_plain_message_is_acknowledged() {
        assert_eq!(decide(&message(&[]), 0, &on()), Ok(Ack::InHours));
        assert_eq!(decide(&message(&[]), 2, &on()), Ok(Ack::InHours));
    }

    #[test]
    fn each_rfc_3834_rule_refuses() {
        let cases: Vec<(Vec<(&str, Value)>, &str)> = vec![
            (
                vec![("auto_submitted", json!("auto-replied"))],
                "auto_submitted",
            ),
            (
                vec![("auto_submitted", json!("auto-generated"))],
                "auto_submitted",
            ),
            (vec![("list", json!(true))], "list"),
            (vec![("bulk", json!(true))], "bulk"),
            (vec![("bounce", json!(true))], "bounce"),
            (vec![("auto_response_suppress", json!("All"))], "suppressed"),
            (
                vec![("auto_response_suppress", json!("DR, OOF"))],
                "suppressed",
            ),
            (
                vec![("auto_response_suppress", json!("AutoReply"))],
                "suppressed",
            ),
            (
                vec![("from", json!("MAILER-DAEMON@example.com"))],
                "machine_sender",
            ),
            (
                vec![("from", json!("postmaster@example.com"))],
                "machine_sender",
            ),
            (
                vec![("from", json!("no-reply@shop.example"))],
                "machine_sender",
            ),
            (
                vec![("from", json!("noreply.orders@shop.example"))],
                "machine_sender",
            ),
            (
                vec![("from", json!("do_not_reply@shop.example"))],
                "machine_sender",
            ),
            (
                vec![("from", json!("owner-users@lists.example"))],
                "machine_sender",
            ),
            (
                vec![("from", json!("users-request@lists.example"))],
                "machine_sender",
            ),
            (
                vec![("reply_to", json!("noreply@example.com"))],
                "machine_sender",
            ),
            (vec![("from", json!("Support@Example.org"))], "own_address"),
        ];
        for (attrs, reason) in cases {
            let m = message(&attrs);
            let got = decide(&m, 0, &on()).unwrap_err();
            assert_eq!(got.reason(), reason, "{attrs:?}: {got}");
        }
        let mut m = message(&[]);
        m.attributes.remove("from");
        assert_eq!(decide(&m, 0, &on()), Err(NoAck::NoSender));
        assert_eq!(
            decide(&message(&[]), 0, &AckSettings::default()),
            Err(NoAck::Disabled)
        );
    }

    #[test]
    fn receipts_only_suppression_does_not_refuse() {
        let m = message(&[("auto_response_suppress", json!("DR, RN, NRN"))]);
        assert_eq!(decide(&m, 0, &on()), Ok(Ack::InHours));
    }

    #[test]
    fn a_sender_gets_at_most_the_daily_limit() {
        let s = AckSettings {
            max_per_sender_per_day: 2,
            ..on()
        };
        assert!(decide(&message(&[]), 1, &s).is_ok());
        let err = decide(&message(&[]), 2, &s).unwrap_err();
        assert_eq!(err, NoAck::DailyLimit { sent: 2, max: 2 });
        assert!(err.to_string().contains("limit 2"), "{err}");
        assert!(
            decide(&message(&[]), 3, &on()).is_err(),
            "default limit is 3"
        );
    }

    #[test]
    fn ordinary_addresses_are_not_machines() {
        for a in [
            "ada@example.com",
            "noreen@example.com",
            "bouncer.bob@example.com",
            "requests@example.com",
            "owner@example.com",
        ] {
            assert!(!is_machine_address(a), "{a}");
        }
    }

    fn hours(offset: &str, skip: bool) -> AckSettings {
        let text = format!(
            "enabled = true\nout_of_hours = \"{}\"\n[business_hours]\nstart = \"09:00\"\nend = \"17:30\"\nutc_offset = \"{offset}\"\n",
            if skip { "skip" } else { "acknowledge" }
        );
        let s: AckSettings = toml::from_str(&text).unwrap();
        s.validate().unwrap();
        s
    }

    #[test]
    fn business_hours_choose_the_text_or_skip() {
        let m = message(&[]);
        let at = |h: u64, offset: &str, skip: bool| {
            acknowledge_decision(
                &m,
                "support@example.org",
                0,
                UNIX_EPOCH + Duration::from_secs(1_795_478_400 + h * 3600),
                &hours(offset, skip),
            )
        };
        // Tuesday 10:00 UTC.
        assert_eq!(at(10, "Z", false), Ok(Ack::InHours));
        // 10:00 UTC is 05:00 in New York (-05:00).
        assert_eq!(at(10, "-05:00", false), Ok(Ack::OutOfHours));
        assert_eq!(at(10, "-05:00", true), Err(NoAck::OutOfHours));
        // Tuesday 17:00 UTC is 18:00 at +01:00; 16:00 UTC is 17:00, before the 17:30 end.
        assert_eq!(at(17, "+01:00", false), Ok(Ack::OutOfHours));
        assert_eq!(at(16, "+01:00", false), Ok(Ack::InHours));
        // Saturday 10:00 UTC, four days later.
        assert_eq!(at(4 * 24 + 10, "Z", false), Ok(Ack::OutOfHours));
        // Monday 01:00 at +14:00 is still Sunday 11:00 UTC: the offset moves the day too.
        assert_eq!(at(5 * 24 + 11, "+14:00", false), Ok(Ack::OutOfHours));
        assert_eq!(at(5 * 24 + 20, "+14:00", false), Ok(Ack::InHours));
    }

    #[test]
    fn bad_settings_say_which_key() {
        let bad = [
            ("max_per_sender_per_day = 0", "max_per_sender_per_day"),
            (
                "[business_hours]\nstart = \"18:00\"\nend = \"09:00\"",
                "before end",
            ),
            (
                "[business_hours]\ndays = []\nstart = \"09:00\"\nend = \"17:00\"",
                "days",
            ),
            ("template = \"see you in {eta}\"", "{expected}"),
            ("out_of_hours_template = \" \"", "out_of_hours_template"),
        ];
        for (text, reason) in bad {
            let err = toml::from_str::<AckSettings>(text)
                .unwrap()
                .validate()
                .unwrap_err();
            assert!(err.contains(reason), "{text}: {err}");
        }
        for (text, reason) in [
            (
                "[business_hours]\nstart = \"9:00\"\nend = \"17:00\"",
                "HH:MM",
            ),
            (
                "[business_hours]\nstart = \"09:00\"\nend = \"24:01\"",
                "HH:MM",
            ),
            (
                "[business_hours]\nstart = \"09:00\"\nend = \"17:00\"\nutc_offset = \"CET\"",
                "+HH:MM",
            ),
            ("enabeld = true", "enabeld"),
        ] {
            let err = toml::from_str::<AckSettings>(text).unwrap_err().to_string();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn durations_are_rounded_up_the_way_people_say_them() {
        let cases = [
            (0, "a few minutes"),
            (299, "a few minutes"),
            (301, "10 minutes"),
            (14 * 60, "15 minutes"),
            (55 * 60 + 1, "1 hour"),
            (3600, "1 hour"),
            (3601, "2 hours"),
            (4 * 3600, "4 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600 + 1, "3 days"),
        ];
        for (secs, said) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), said, "{secs}s");
        }
    }

    #[test]
    fn templates_fill_in_the_expected_time() {
        let s = on();
        let t = s.text(Ack::InHours, Duration::from_secs(2 * 3600));
        assert!(t.contains("within 2 hours."), "{t}");
        assert!(t.lines().all(|l| l.len() < 76), "{t}");
        let t = s.text(Ack::OutOfHours, Duration::from_secs(20 * 60));
        assert!(t.contains("outside our business"), "{t}");
        assert!(t.contains("within 20 minutes"), "{t}");
        let s = AckSettings {
            template: "Got it, {expected} at most ({expected}).".into(),
            ..on()
        };
        assert_eq!(
            s.text(Ack::InHours, Duration::from_secs(90 * 60)),
            "Got it, 2 hours at most (2 hours)."
        );
        s.validate().unwrap();
    }
}
