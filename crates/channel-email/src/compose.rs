//! The messages the mailbox sends, built with lettre: the automatic acknowledgement of a new
//! message and an agent's reply, each threaded under the customer's message
//! (`In-Reply-To`, `References`, `Re:` subject) so the customer's mail program and our own
//! ingest ([`crate::parse`]) put them in the same conversation. Pure apart from the random
//! part of each new Message-ID.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MessageBuilder};
use serde_json::Value;
use switchboard_bus::InboundMessage;

use crate::acknowledge::{Ack, AckSettings, reply_address};

/// Most message ids kept in `References`: the thread's root (our conversation key) and the
/// latest ones, so a long thread does not grow the header without bound.
pub const MAX_REFERENCES: usize = 20;

/// What a reply needs from the message it answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadHeaders {
    /// The answered message's Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// Its `In-Reply-To` ids, without angle brackets.
    pub in_reply_to: Vec<String>,
    /// Its `References` ids, in order, without angle brackets.
    pub references: Vec<String>,
    /// Its subject.
    pub subject: String,
}

impl ThreadHeaders {
    /// The thread headers of a message [`crate::parse`] produced (its `message_id`,
    /// `in_reply_to` and `references` attributes, its summary as the subject).
    pub fn of(message: &InboundMessage) -> ThreadHeaders {
        let a = &message.attributes;
        let list = |k: &str| -> Vec<String> {
            a.get(k)
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        ThreadHeaders {
            message_id: a
                .get("message_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            in_reply_to: list("in_reply_to"),
            references: list("references"),
            subject: message.summary.clone(),
        }
    }

    /// The `References` of a reply (RFC 5322 §3.6.4): the parent's `References` (or its
    /// single `In-Reply-To` when it has none) followed by the parent's Message-ID, the root
    /// and the latest [`MAX_REFERENCES`] - 1 kept.
    pub fn reply_references(&self) -> Vec<String> {
        let mut ids = if !self.references.is_empty() {
            self.references.clone()
        } else if self.in_reply_to.len() == 1 {
            self.in_reply_to.clone()
        } else {
            Vec::new()
        };
        ids.extend(self.message_id.clone());
        ids.dedup();
        if ids.len() > MAX_REFERENCES {
            ids.drain(1..ids.len() - (MAX_REFERENCES - 1));
        }
        ids
    }
}

/// Why a message could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    /// The message to answer has no usable sender address.
    #[error("compose: no address to reply to")]
    NoRecipient,
    /// An address does not parse (the address and why).
    #[error("compose: bad address {0:?}: {1}")]
    BadAddress(String, String),
    /// lettre refused the message.
    #[error("compose: {0}")]
    Build(String),
}

/// `Re: subject`, without doubling an existing `Re:` (`RE:`, `re :`, `Re[2]:`).
pub fn reply_subject(subject: &str) -> String {
    let subject: String = subject
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if has_reply_prefix(&subject) {
        subject
    } else if subject.is_empty() {
        "Re: (no subject)".into()
    } else {
        format!("Re: {subject}")
    }
}

fn has_reply_prefix(subject: &str) -> bool {
    if !subject
        .get(..2)
        .is_some_and(|p| p.eq_ignore_ascii_case("re"))
    {
        return false;
    }
    let rest = subject[2..].trim_start();
    let rest = match rest.strip_prefix('[') {
        Some(r) => match r.split_once(']') {
            Some((n, after)) if n.chars().all(|c| c.is_ascii_digit()) => after.trim_start(),
            _ => return false,
        },
        None => rest,
    };
    rest.starts_with(':')
}

/// The automatic acknowledgement of `original`: `Auto-Submitted: auto-replied` (RFC 3834)
/// and `X-Auto-Response-Suppress: All` (so Exchange's own responders do not answer it),
/// threaded under `original`, from the mailbox's address to the sender (its `Reply-To` when
/// it has one), with `settings`' text for `ack` saying when to expect an answer.
pub fn acknowledgement(
    original: &InboundMessage,
    from: &Mailbox,
    settings: &AckSettings,
    ack: Ack,
    expected: Duration,
    now: SystemTime,
) -> Result<Message, ComposeError> {
    let to = reply_address(original).ok_or(ComposeError::NoRecipient)?;
    let to = mailbox(&to)?;
    let thread = ThreadHeaders::of(original);
    let builder = threaded(&thread, from, to, now)
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-replied".into(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".into(),
        ));
    builder
        .body(settings.text(ack, expected))
        .map_err(|e| ComposeError::Build(e.to_string()))
}

/// An agent's reply in `thread`: from the mailbox's address to `to`, `Re:` the thread's
/// subject, threaded under the message `thread` describes; no `Auto-Submitted` (a person
/// wrote it).
pub fn agent_reply(
    thread: &ThreadHeaders,
    from: &Mailbox,
    to: &Mailbox,
    text: &str,
    now: SystemTime,
) -> Result<Message, ComposeError> {
    threaded(thread, from, to.clone(), now)
        .body(text.to_owned())
        .map_err(|e| ComposeError::Build(e.to_string()))
}

/// Parses `"Name <a@b>"` or `"a@b"`.
pub fn mailbox(address: &str) -> Result<Mailbox, ComposeError> {
    address.parse().map_err(|e: lettre::address::AddressError| {
        ComposeError::BadAddress(address.to_owned(), e.to_string())
    })
}

/// A new Message-ID under `from`'s domain: the time in milliseconds and 64 random bits.
pub fn new_message_id(from: &Mailbox, now: SystemTime) -> String {
    let millis = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!(
        "<{millis}.{:016x}.switchboard@{}>",
        fastrand::u64(..),
        from.email.domain()
    )
}

fn threaded(
    thread: &ThreadHeaders,
    from: &Mailbox,
    to: Mailbox,
    now: SystemTime,
) -> MessageBuilder {
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(reply_subject(&thread.subject))
        .date(now)
        .message_id(Some(new_message_id(from, now)))
        .header(ContentType::TEXT_PLAIN);
    if let Some(parent) = &thread.message_id {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    let references = thread.reply_references();
    if !references.is_empty() {
        let joined = references
            .iter()
            .map(|id| format!("<{id}>"))
            .collect::<Vec<_>>()
            .join(" ");
        builder = builder.references(joined);
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_core::Channel;

    fn original(attrs: serde_json::Value) -> InboundMessage {
        let serde_json::Value::Object(map) = attrs else {
            panic!("an object")
        };
        InboundMessage {
            source: "imap:support".into(),
            channel: Channel::Email,
            conversation: "email:m1@x".into(),
            customer: "ada@example.com".into(),
            summary: "Refund please".into(),
            body: None,
            urgency: None,
            skills: vec![],
            attributes: map.into_iter().collect(),
        }
    }

    fn from() -> Mailbox {
        mailbox("Support <support@example.org>").unwrap()
    }

    /// The decoded text body.
    fn text(m: &Message) -> String {
        let raw = m.formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        parsed.body_text(0).unwrap().into_owned()
    }

    fn header<'a>(m: &'a Message, name: &str) -> Option<&'a str> {
        m.headers().get_raw(name)
    }

    #[test]
    fn subjects_get_one_re() {
        assert_eq!(reply_subject("Refund please"), "Re: Refund please");
        assert_eq!(reply_subject("Re: Refund"), "Re: Refund");
        assert_eq!(reply_subject("RE: Refund"), "RE: Refund");
        assert_eq!(reply_subject("re : Refund"), "re : Refund");
        assert_eq!(reply_subject("Re[2]: Refund"), "Re[2]: Refund");
        assert_eq!(
            reply_subject("Regarding my order"),
            "Re: Regarding my order"
        );
        assert_eq!(reply_subject("Re"), "Re: Re");
        assert_eq!(reply_subject("  "), "Re: (no subject)");
        assert_eq!(reply_subject("a\r\nBcc: x@y"), "Re: a  Bcc: x@y");
    }

    #[test]
    fn references_follow_rfc_5322() {
        let t = ThreadHeaders {
            message_id: Some("m3@x".into()),
            in_reply_to: vec!["m2@x".into()],
            references: vec!["m1@x".into(), "m2@x".into()],
            subject: "s".into(),
        };
        assert_eq!(t.reply_references(), ["m1@x", "m2@x", "m3@x"]);
        let t = ThreadHeaders {
            references: vec![],
            ..t
        };
        assert_eq!(
            t.reply_references(),
            ["m2@x", "m3@x"],
            "In-Reply-To stands in"
        );
        let t = ThreadHeaders {
            in_reply_to: vec![],
            ..t
        };
        assert_eq!(t.reply_references(), ["m3@x"]);
        let long = ThreadHeaders {
            message_id: Some("last@x".into()),
            references: (0..30).map(|i| format!("r{i}@x")).collect(),
            ..ThreadHeaders::default()
        };
        let refs = long.reply_references();
        assert_eq!(refs.len(), MAX_REFERENCES);
        assert_eq!(refs[0], "r0@x", "the root is kept");
        assert_eq!(refs[1], "r12@x", "r1 to r11 dropped");
        assert_eq!(refs.last().unwrap(), "last@x");
    }

    #[test]
    fn an_acknowledgement_threads_and_says_it_is_automatic() {
        let o = original(json!({
            "from": "ada@example.com",
            "from_name": "Ada",
            "message_id": "m2@example.com",
            "in_reply_to": ["m1@example.com"],
            "references": ["m1@example.com"],
        }));
        let s = AckSettings {
            enabled: true,
            ..AckSettings::default()
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_795_478_400);
        let m = acknowledgement(
            &o,
            &from(),
            &s,
            Ack::InHours,
            Duration::from_secs(3 * 3600),
            now,
        )
        .unwrap();
        assert_eq!(header(&m, "In-Reply-To"), Some("<m2@example.com>"));
        assert_eq!(
            header(&m, "References"),
            Some("<m1@example.com> <m2@example.com>")
        );
        assert_eq!(header(&m, "Auto-Submitted"), Some("auto-replied"));
        assert_eq!(header(&m, "X-Auto-Response-Suppress"), Some("All"));
        assert_eq!(header(&m, "Subject"), Some("Re: Refund please"));
        assert_eq!(header(&m, "To"), Some("ada@example.com"));
        assert_eq!(header(&m, "From"), Some("Support <support@example.org>"));
        let mid = header(&m, "Message-ID").unwrap();
        assert!(
            mid.starts_with('<') && mid.ends_with("@example.org>"),
            "{mid}"
        );
        assert!(text(&m).contains("within 3 hours"), "{}", text(&m));
        let envelope = m.envelope();
        assert_eq!(envelope.to().len(), 1);
        assert_eq!(envelope.to()[0].to_string(), "ada@example.com");
    }

    #[test]
    fn an_acknowledgement_goes_to_reply_to() {
        let o = original(json!({"from": "ada@example.com", "reply_to": "team@example.com"}));
        let m = acknowledgement(
            &o,
            &from(),
            &AckSettings::default(),
            Ack::OutOfHours,
            Duration::from_secs(600),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(header(&m, "To"), Some("team@example.com"));
        assert_eq!(header(&m, "In-Reply-To"), None, "no Message-ID to answer");
        assert!(text(&m).contains("outside our business"));
        let o = original(json!({}));
        let err = acknowledgement(
            &o,
            &from(),
            &AckSettings::default(),
            Ack::InHours,
            Duration::ZERO,
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(err, ComposeError::NoRecipient);
    }

    #[test]
    fn an_agent_reply_threads_without_auto_submitted() {
        let thread = ThreadHeaders {
            message_id: Some("m2@example.com".into()),
            in_reply_to: vec![],
            references: vec!["m1@example.com".into()],
            subject: "Re: Refund please".into(),
        };
        let to = mailbox("Ada <ada@example.com>").unwrap();
        let m = agent_reply(&thread, &from(), &to, "Refunded, Ada.\n", SystemTime::now()).unwrap();
        assert_eq!(header(&m, "In-Reply-To"), Some("<m2@example.com>"));
        assert_eq!(
            header(&m, "References"),
            Some("<m1@example.com> <m2@example.com>")
        );
        assert_eq!(header(&m, "Subject"), Some("Re: Refund please"));
        assert_eq!(header(&m, "Auto-Submitted"), None);
        assert!(text(&m).contains("Refunded, Ada."));
        let a = header(&m, "Message-ID").unwrap().to_owned();
        let b = agent_reply(&thread, &from(), &to, "x", SystemTime::now()).unwrap();
        assert_ne!(Some(a.as_str()), header(&b, "Message-ID"), "fresh ids");
    }

    #[test]
    fn bad_addresses_are_named() {
        let err = mailbox("not an address").unwrap_err();
        assert!(err.to_string().contains("not an address"), "{err}");
    }
}
