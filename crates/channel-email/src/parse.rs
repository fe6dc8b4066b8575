//! One raw RFC 5322 message in, one [`Inbound`] out. Pure: no I/O, no clock.
//!
//! MIME, encodings and charsets are mail-parser's job; this module decides what Switchboard
//! keeps: the dedup id, the conversation key from the thread headers, the customer, the
//! summary, the text body and the attributes an agent or a rule may want. A message that
//! cannot be parsed still becomes a contact with what could be read and a `parse_error`.

use std::collections::BTreeMap;

use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_bus::{InboundMessage, MAX_ID_LEN};
use switchboard_core::{Channel, Urgency};

use crate::Inbound;

/// Longest summary kept, in characters.
pub const MAX_SUMMARY_CHARS: usize = 200;
/// Longest body kept, in bytes; a longer body is cut (at a character boundary) and the
/// message gets `body_truncated: true`. The whole message stays in the mailbox.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How many leading bytes of an unparseable message are searched for `From:`/`Subject:`.
const FALLBACK_SCAN_BYTES: usize = 64 * 1024;

/// What contacts from one mailbox get unless the message says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// The queue contacts from this mailbox go to, as the `queue` attribute (classification
    /// rules may match on it).
    #[serde(default)]
    pub queue: Option<String>,
    /// Skills every contact from this mailbox requires.
    #[serde(default)]
    pub skills: Vec<String>,
    /// The urgency contacts from this mailbox ask for.
    #[serde(default)]
    pub urgency: Option<Urgency>,
}

/// Where a message came from: the mailbox's name and what its contacts get by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The mailbox's name in the config; the message's `source` is `imap:<mailbox>`.
    pub mailbox: String,
    /// Defaults for contacts from this mailbox.
    pub defaults: Defaults,
}

/// Turns one raw message into the inbound message to publish and the id the router
/// deduplicates on. Never panics; an unparseable message keeps what could be read.
pub fn parse(raw: &[u8], origin: &Origin) -> Inbound {
    let parsed = std::panic::catch_unwind(|| {
        MessageParser::default()
            .parse(raw)
            .filter(|m| !m.parts.is_empty())
            .map(|m| from_message(&m))
    });
    let mut read = match parsed {
        Ok(Some(read)) => read,
        Ok(None) => fallback(raw, "no header could be read"),
        Err(_) => fallback(raw, "the MIME parser failed on this message"),
    };
    let raw_hash = switchboard_channel::hex(&Sha256::digest(raw));
    let id = match &read.message_id {
        Some(mid) => key("email:", mid),
        None => format!("email:sha256:{raw_hash}"),
    };
    // The router keys conversations by channel already: the thread's root id alone.
    let conversation = match read.thread_root.take().or_else(|| read.message_id.clone()) {
        Some(root) => key("", &root),
        None => format!("sha256:{raw_hash}"),
    };
    let mut attributes = read.attributes;
    attributes.insert("mailbox".into(), json!(origin.mailbox));
    attributes.insert("raw_size".into(), json!(raw.len()));
    if let Some(queue) = &origin.defaults.queue {
        attributes.insert("queue".into(), json!(queue));
    }
    Inbound {
        id,
        message: InboundMessage {
            source: format!("imap:{}", origin.mailbox),
            channel: Channel::Email,
            conversation,
            customer: read.customer.unwrap_or_else(|| "unknown".into()),
            summary: summary(read.subject.as_deref()),
            body: read.body,
            urgency: origin.defaults.urgency,
            skills: origin.defaults.skills.clone(),
            attributes,
        },
    }
}

/// What was read from a message, before the defaults are applied.
#[derive(Debug, Default)]
struct Read {
    message_id: Option<String>,
    /// The first id of `References`, else of `In-Reply-To`.
    thread_root: Option<String>,
    customer: Option<String>,
    subject: Option<String>,
    body: Option<String>,
    attributes: BTreeMap<String, Value>,
}

fn from_message(m: &Message<'_>) -> Read {
    let mut attributes = BTreeMap::new();
    let message_id = m.message_id().and_then(normalise_id);
    let references = ids(m.references());
    let in_reply_to = ids(m.in_reply_to());
    let thread_root = references.first().or_else(|| in_reply_to.first()).cloned();
    let from = m.from().and_then(Address::first);
    let customer = from
        .and_then(|a| a.address())
        .or_else(|| {
            m.sender()
                .and_then(Address::first)
                .and_then(|a| a.address())
        })
        .map(|a| a.trim().to_lowercase())
        .filter(|a| !a.is_empty());
    if let Some(name) = from.and_then(|a| a.name()).filter(|n| !n.trim().is_empty()) {
        attributes.insert("from_name".into(), json!(name.trim()));
    }
    if let Some(address) = &customer {
        attributes.insert("from".into(), json!(address));
    }
    // Where answers go when it differs from From (acknowledgements and replies use it).
    if let Some(reply_to) = m
        .reply_to()
        .and_then(Address::first)
        .and_then(|a| a.address())
        .map(|a| a.trim().to_lowercase())
        .filter(|a| !a.is_empty() && Some(a) != customer.as_ref())
    {
        attributes.insert("reply_to".into(), json!(reply_to));
    }
    for (field, list) in [("to", m.to()), ("cc", m.cc())] {
        let addresses: Vec<String> = list
            .into_iter()
            .flat_map(|a| a.iter())
            .filter_map(|a| a.address())
            .map(str::to_lowercase)
            .collect();
        if !addresses.is_empty() {
            attributes.insert(field.into(), json!(addresses));
        }
    }
    if let Some(mid) = &message_id {
        attributes.insert("message_id".into(), json!(mid));
    }
    if !in_reply_to.is_empty() {
        attributes.insert("in_reply_to".into(), json!(in_reply_to));
    }
    if !references.is_empty() {
        attributes.insert("references".into(), json!(references));
    }
    flags(m, &mut attributes);
    let attachments: Vec<Value> = m
        .attachments()
        .map(|part| {
            let content_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".into());
            json!({
                "name": part.attachment_name().unwrap_or(""),
                "size": part.len(),
                "content_type": content_type.to_lowercase(),
            })
        })
        .collect();
    if !attachments.is_empty() {
        attributes.insert("attachments".into(), Value::Array(attachments));
    }
    if m.parts.iter().any(|p| p.is_encoding_problem) {
        attributes.insert("encoding_problem".into(), json!(true));
    }
    let mut body = m.body_text(0).map(|b| b.into_owned());
    if let Some(b) = &mut body
        && b.len() > MAX_BODY_BYTES
    {
        b.truncate(b.floor_char_boundary(MAX_BODY_BYTES));
        attributes.insert("body_truncated".into(), json!(true));
    }
    // mail-parser reads whatever it can; a message with no From and no Subject at all is
    // most likely not mail (or cut off before its headers ended): say so.
    if customer.is_none() && m.subject().is_none() && message_id.is_none() {
        attributes.insert(
            "parse_error".into(),
            json!("no From, Subject or Message-ID header"),
        );
    }
    Read {
        message_id,
        thread_root,
        customer,
        subject: m.subject().map(str::to_owned),
        body,
        attributes,
    }
}

/// Marks what an automatic reply must not answer (RFC 3834): auto-submitted, list and bulk
/// mail, and bounces.
fn flags(m: &Message<'_>, attributes: &mut BTreeMap<String, Value>) {
    let text = |name: &'static str| m.header_raw(name).map(|v| v.trim().to_owned());
    if let Some(auto) = text("Auto-Submitted")
        && !auto.eq_ignore_ascii_case("no")
    {
        attributes.insert("auto_submitted".into(), json!(auto.to_lowercase()));
    }
    let list_id = m.list_id().as_text().map(str::to_owned);
    let is_list = list_id.is_some()
        || !m.list_unsubscribe().is_empty()
        || !m.list_post().is_empty()
        || text("List-Id").is_some();
    if is_list {
        attributes.insert("list".into(), json!(true));
        if let Some(id) = list_id {
            attributes.insert("list_id".into(), json!(id));
        }
    }
    // Microsoft's opt-out from automatic replies ("All", "OOF", "AutoReply", ...).
    if let Some(suppress) = text("X-Auto-Response-Suppress").filter(|v| !v.is_empty()) {
        attributes.insert("auto_response_suppress".into(), json!(suppress));
    }
    if let Some(precedence) = text("Precedence").map(|p| p.to_lowercase())
        && matches!(precedence.as_str(), "bulk" | "list" | "junk")
    {
        attributes.insert("bulk".into(), json!(true));
    }
    let return_path = text("Return-Path");
    let from = m
        .from()
        .and_then(Address::first)
        .and_then(|a| a.address())
        .unwrap_or("")
        .to_lowercase();
    let empty_return_path = return_path.as_deref().is_some_and(|r| {
        r.trim_matches(|c: char| c == '<' || c == '>' || c.is_whitespace())
            .is_empty()
    });
    if empty_return_path || from.starts_with("mailer-daemon@") || from.starts_with("postmaster@") {
        attributes.insert("bounce".into(), json!(true));
    }
}

/// The message ids of a `References` or `In-Reply-To` header, in order.
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    value
        .as_text_list()
        .unwrap_or_default()
        .iter()
        .flat_map(|v| v.split_whitespace())
        .filter_map(normalise_id)
        .collect()
}

/// A message id without angle brackets and surrounding space; `None` when nothing is left.
fn normalise_id(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty() && !id.chars().any(char::is_control)).then(|| id.to_owned())
}

/// `prefix + value`, or `prefix + "sha256:" + hash of value` when that would be longer than
/// the bus accepts as an id.
fn key(prefix: &str, value: &str) -> String {
    if prefix.len() + value.len() <= MAX_ID_LEN {
        format!("{prefix}{value}")
    } else {
        format!(
            "{prefix}sha256:{}",
            switchboard_channel::hex(&Sha256::digest(value.as_bytes()))
        )
    }
}

fn summary(subject: Option<&str>) -> String {
    let subject = subject.map(str::trim).unwrap_or("");
    if subject.is_empty() {
        return "(no subject)".into();
    }
    subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_SUMMARY_CHARS)
        .collect()
}

/// What can be read from a message mail-parser gave up on: the first `From:` and `Subject:`
/// lines, as text, and the reason.
fn fallback(raw: &[u8], reason: &str) -> Read {
    let head = &raw[..raw.len().min(FALLBACK_SCAN_BYTES)];
    let header = |name: &str| {
        head.split(|&b| b == b'\n').find_map(|line| {
            let line = String::from_utf8_lossy(line);
            let (field, value) = line.split_once(':')?;
            field
                .trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
                .filter(|v| !v.is_empty())
        })
    };
    let customer = header("from").map(|from| {
        // "Name <a@b>" or a bare address: keep the part in brackets when there is one.
        match (from.rfind('<'), from.rfind('>')) {
            (Some(open), Some(close)) if open < close => {
                from[open + 1..close].trim().to_lowercase()
            }
            _ => from.to_lowercase(),
        }
    });
    let mut attributes = BTreeMap::new();
    attributes.insert("parse_error".into(), json!(reason));
    if let Some(from) = &customer {
        attributes.insert("from".into(), json!(from));
    }
    Read {
        customer,
        subject: header("subject"),
        attributes,
        ..Read::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            mailbox: "support".into(),
            defaults: Defaults {
                queue: Some("billing".into()),
                skills: vec!["english".into()],
                urgency: Some(Urgency::High),
            },
        }
    }

    #[test]
    fn a_plain_message_becomes_a_contact() {
        let raw = b"From: Ada Lovelace <Ada@Example.com>\r\nTo: support@example.org\r\nSubject: Refund please\r\nMessage-ID: <m1@example.com>\r\n\r\nOrder 7 arrived broken.\r\n";
        let Inbound { id, message } = parse(raw, &origin());
        assert_eq!(id, "email:m1@example.com");
        assert_eq!(message.conversation, "m1@example.com");
        assert_eq!(message.customer, "ada@example.com");
        assert_eq!(message.summary, "Refund please");
        assert_eq!(message.body.as_deref(), Some("Order 7 arrived broken.\r\n"));
        assert_eq!(message.source, "imap:support");
        assert_eq!(message.urgency, Some(Urgency::High));
        assert_eq!(message.skills, ["english"]);
        let a = &message.attributes;
        assert_eq!(a["from_name"], "Ada Lovelace");
        assert_eq!(a["to"], json!(["support@example.org"]));
        assert_eq!(a["queue"], "billing");
        assert_eq!(a["raw_size"], raw.len());
        assert!(!a.contains_key("parse_error"));
    }

    #[test]
    fn a_reply_joins_the_root_of_its_thread() {
        let raw = b"From: a@example.com\r\nSubject: Re: x\r\nMessage-ID: <m3@x>\r\nIn-Reply-To: <m2@x>\r\nReferences: <m1@x> <m2@x>\r\n\r\nhi\r\n";
        let got = parse(raw, &origin());
        assert_eq!(got.id, "email:m3@x");
        assert_eq!(got.message.conversation, "m1@x");
        assert_eq!(
            got.message.attributes["references"],
            json!(["m1@x", "m2@x"])
        );
        let raw = b"From: a@example.com\r\nSubject: Re: x\r\nMessage-ID: <m3@x>\r\nIn-Reply-To: <m2@x>\r\n\r\nhi\r\n";
        assert_eq!(parse(raw, &origin()).message.conversation, "m2@x");
    }

    #[test]
    fn without_a_message_id_the_raw_hash_is_the_id() {
        let raw = b"From: a@example.com\r\nSubject: x\r\n\r\nhi\r\n";
        let a = parse(raw, &origin());
        assert!(a.id.starts_with("email:sha256:"), "{}", a.id);
        assert_eq!(a.id, parse(raw, &origin()).id, "stable");
        assert_eq!(a.id, format!("email:{}", a.message.conversation));
    }

    #[test]
    fn html_only_mail_is_read_as_text() {
        let raw = b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hello <b>there</b></p></body></html>\r\n";
        let body = parse(raw, &origin()).message.body.unwrap();
        assert!(body.contains("Hello there"), "{body:?}");
        assert!(!body.contains('<'), "{body:?}");
    }

    #[test]
    fn automatic_list_and_bounce_mail_is_flagged() {
        let raw = b"From: MAILER-DAEMON@example.com\r\nReturn-Path: <>\r\nAuto-Submitted: auto-replied\r\nPrecedence: bulk\r\nList-Id: <news.example.com>\r\nSubject: x\r\n\r\nhi\r\n";
        let a = parse(raw, &origin()).message.attributes;
        assert_eq!(a["auto_submitted"], "auto-replied");
        assert_eq!(a["bulk"], true);
        assert_eq!(a["list"], true);
        assert_eq!(a["bounce"], true);
        let raw = b"From: a@example.com\r\nAuto-Submitted: no\r\nSubject: x\r\n\r\nhi\r\n";
        let a = parse(raw, &origin()).message.attributes;
        for k in ["auto_submitted", "bulk", "list", "bounce"] {
            assert!(!a.contains_key(k), "{k}");
        }
    }

    #[test]
    fn reply_to_and_auto_response_suppress_are_kept() {
        let raw = b"From: Ada <ada@example.com>\r\nReply-To: Team <Team@Example.com>\r\nX-Auto-Response-Suppress: DR, OOF\r\nSubject: x\r\n\r\nhi\r\n";
        let a = parse(raw, &origin()).message.attributes;
        assert_eq!(a["reply_to"], "team@example.com");
        assert_eq!(a["auto_response_suppress"], "DR, OOF");
        let raw = b"From: ada@example.com\r\nReply-To: ada@example.com\r\nSubject: x\r\n\r\nhi\r\n";
        let a = parse(raw, &origin()).message.attributes;
        assert!(!a.contains_key("reply_to"), "same as From");
        assert!(!a.contains_key("auto_response_suppress"));
    }

    #[test]
    fn very_long_ids_are_hashed_to_fit_the_bus() {
        let mid = "x".repeat(400);
        let raw =
            format!("From: a@b.c\r\nSubject: x\r\nMessage-ID: <{mid}@example.com>\r\n\r\nhi\r\n");
        let got = parse(raw.as_bytes(), &origin());
        assert!(got.id.len() <= MAX_ID_LEN);
        assert!(got.id.starts_with("email:sha256:"));
        assert!(got.message.conversation.len() <= MAX_ID_LEN);
    }

    #[test]
    fn an_empty_message_still_becomes_a_contact() {
        let got = parse(b"", &origin());
        assert_eq!(got.message.customer, "unknown");
        assert_eq!(got.message.summary, "(no subject)");
        assert!(got.message.attributes.contains_key("parse_error"));
        assert_eq!(got.message.attributes["raw_size"], 0);
    }
}
