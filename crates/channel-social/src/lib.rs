//! Social channels: Meta's webhooks for the WhatsApp Cloud API, Messenger and Instagram
//! messaging, checked and turned into the bus's [`InboundMessage`]s. The HTTP side (routes,
//! answers, the adapter registration) lives with the daemon; this crate is the part that must
//! be exact: the subscription handshake, `X-Hub-Signature-256`, payload shapes, and which
//! notifications are not customer messages. Pure: no I/O, no clock.
//!
//! The daemon serves one endpoint per configured source:
//! - `GET` answers Meta's handshake with [`verify_subscription`];
//! - `POST` hands the raw body and `X-Hub-Signature-256` to [`receive`].
//!
//! Modules:
//! - [`whatsapp`]: `object: "whatsapp_business_account"`, `entry[].changes[].value.messages[]`;
//! - [`messenger`]: `object: "page"` (Messenger) and `"instagram"`, `entry[].messaging[]`.
//!
//! What is routed and what is not:
//! - customer messages (text, media, location, interactive and button replies, postbacks) are
//!   routed, in the order Meta sent them, under ids that a redelivery repeats
//!   (`whatsapp:<wamid>`, `messenger:<mid>`, `instagram:<mid>`), so the router deduplicates;
//! - delivery and read receipts, WhatsApp statuses, echoes of the business's own messages,
//!   reactions, deleted messages and standby events are not: a request carrying only those is
//!   [`Incoming::Ignored`].

pub mod messenger;
pub mod whatsapp;

use std::collections::BTreeMap;

use serde::Deserialize;
pub use switchboard_channel::{ChannelError, Inbound, InboundMessage, Incoming};
use switchboard_channel::{hmac_sha256_hex, same};
use switchboard_core::Channel;

/// Longest provider id accepted (message ids, sender ids, page and phone number ids), in
/// bytes; longer ones are refused as malformed, so every bus id and key stays short.
pub const MAX_ID_LEN: usize = 200;

/// Length of a message's summary, in characters; the body keeps the whole text.
pub const SUMMARY_CHARS: usize = 200;

/// Longest `hub.challenge` echoed back, in bytes (Meta sends a short number).
pub const MAX_CHALLENGE_LEN: usize = 1024;

/// The header Meta signs every notification with.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// Answers Meta's subscription handshake: `GET ?hub.mode=subscribe&hub.verify_token=…&
/// hub.challenge=…`. Returns the challenge, to echo verbatim as the response body.
///
/// Errors: a wrong or missing token is [`ChannelError::Signature`], the rest (mode other than
/// `subscribe`, no challenge) [`ChannelError::Malformed`]. On this `GET` the daemon answers
/// with [`handshake_status`], which makes the wrong token a 403 as Meta expects, not the 401
/// of a bad `POST` signature. An empty configured token never verifies.
pub fn verify_subscription(
    query: &[(String, String)],
    expected_verify_token: &str,
) -> Result<String, ChannelError> {
    let get = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    match get("hub.mode") {
        Some("subscribe") => {}
        Some(_) => return Err(malformed("hub.mode is not subscribe")),
        None => return Err(malformed("missing hub.mode")),
    }
    let token = get("hub.verify_token")
        .ok_or_else(|| ChannelError::Signature("missing hub.verify_token".into()))?;
    if expected_verify_token.is_empty() || !same(expected_verify_token, token) {
        return Err(ChannelError::Signature(
            "hub.verify_token does not match the configured verify token".into(),
        ));
    }
    let challenge = get("hub.challenge").ok_or_else(|| malformed("missing hub.challenge"))?;
    if challenge.is_empty() || challenge.len() > MAX_CHALLENGE_LEN {
        return Err(malformed(
            "hub.challenge is empty or longer than 1024 bytes",
        ));
    }
    Ok(challenge.to_owned())
}

/// The HTTP status for a refused handshake: 403 for a wrong or missing verify token, 400
/// otherwise.
pub fn handshake_status(error: &ChannelError) -> u16 {
    match error {
        ChannelError::Signature(_) => 403,
        ChannelError::Malformed(_) => 400,
    }
}

/// Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`, in constant
/// time. Hex digits may be of either case. An empty app secret verifies nothing.
pub fn verify(app_secret: &[u8], header: Option<&str>, body: &[u8]) -> Result<(), ChannelError> {
    let bad = |why: &str| ChannelError::Signature(why.to_owned());
    if app_secret.is_empty() {
        return Err(bad("no app secret configured"));
    }
    let header = header.ok_or_else(|| bad("missing X-Hub-Signature-256"))?;
    let hex = header
        .strip_prefix("sha256=")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| bad("X-Hub-Signature-256 is not sha256=<64 hex digits>"))?;
    let expected = hmac_sha256_hex(app_secret, &[body]);
    if same(&expected, &hex.to_ascii_lowercase()) {
        Ok(())
    } else {
        Err(bad("X-Hub-Signature-256 does not match the body"))
    }
}

/// Checks the signature, then reads one notification: every customer message it carries, in
/// order, or [`Incoming::Ignored`] with the reason when it carries none.
pub fn receive(
    app_secret: &[u8],
    signature_header: Option<&str>,
    body: &[u8],
) -> Result<Incoming, ChannelError> {
    verify(app_secret, signature_header, body)?;
    #[derive(Deserialize)]
    struct Head {
        object: String,
    }
    let head: Head = parse("notification", body)?;
    match head.object.as_str() {
        "whatsapp_business_account" => whatsapp::parse_notification(body),
        "page" => messenger::parse_notification(body, messenger::Platform::Messenger),
        "instagram" => messenger::parse_notification(body, messenger::Platform::Instagram),
        _ => Ok(Incoming::Ignored(
            "object is not whatsapp, page or instagram",
        )),
    }
}

/// Deserialises `bytes`, naming `what` in the error.
fn parse<'a, T: Deserialize<'a>>(what: &str, bytes: &'a [u8]) -> Result<T, ChannelError> {
    serde_json::from_slice(bytes).map_err(|e| malformed(&format!("{what}: {e}")))
}

/// Deserialises one part of a notification, naming its path (`entry[0].messaging[2]`) in the
/// error.
fn parse_at<T: serde::de::DeserializeOwned>(
    at: &str,
    value: serde_json::Value,
) -> Result<T, ChannelError> {
    serde_json::from_value(value).map_err(|e| malformed(&format!("{at}: {e}")))
}

fn malformed(why: &str) -> ChannelError {
    ChannelError::Malformed(why.to_owned())
}

/// Checks a provider id is present and short: `field` names it in the error.
fn id<'a>(field: &str, value: &'a str) -> Result<&'a str, ChannelError> {
    if value.is_empty() {
        Err(malformed(&format!("{field} is empty")))
    } else if value.len() > MAX_ID_LEN {
        Err(malformed(&format!(
            "{field} is longer than {MAX_ID_LEN} bytes"
        )))
    } else {
        Ok(value)
    }
}

/// What a message says, as the agent should first see it.
#[derive(Debug, Default)]
struct Content {
    /// `[image]`, `[location]`…; none for plain text.
    label: Option<String>,
    /// The text, caption or reply title.
    text: Option<String>,
}

impl Content {
    fn text(text: Option<String>) -> Content {
        Content { label: None, text }
    }

    fn labelled(label: &str, text: Option<String>) -> Content {
        Content {
            label: Some(label.to_owned()),
            text: text.filter(|t| !t.is_empty()),
        }
    }

    fn summary(&self) -> String {
        let full = match (&self.label, &self.text) {
            (Some(l), Some(t)) => format!("[{l}] {t}"),
            (Some(l), None) => format!("[{l}]"),
            (None, Some(t)) => t.clone(),
            (None, None) => String::new(),
        };
        full.chars().take(SUMMARY_CHARS).collect()
    }
}

/// One routed message under construction, shared by the platforms.
struct Routed {
    platform: &'static str,
    message_id: String,
    business: String,
    customer: String,
    content: Content,
    attributes: BTreeMap<String, serde_json::Value>,
}

impl Routed {
    fn into_inbound(self) -> Inbound {
        let Routed {
            platform,
            message_id,
            business,
            customer,
            content,
            mut attributes,
        } = self;
        attributes.insert("platform".into(), platform.into());
        Inbound {
            id: format!("{platform}:{message_id}"),
            message: InboundMessage {
                source: platform.into(),
                channel: Channel::Social,
                conversation: format!("{platform}:{business}:{customer}"),
                customer: format!("{platform}:{customer}"),
                summary: content.summary(),
                body: content.text,
                urgency: None,
                skills: Vec::new(),
                attributes,
            },
        }
    }
}

/// The outcome of a notification: its messages, or why there are none.
fn outcome(messages: Vec<Inbound>, skipped: Option<&'static str>) -> Incoming {
    if messages.is_empty() {
        Incoming::Ignored(skipped.unwrap_or("no customer messages in the notification"))
    } else {
        Incoming::Messages(messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_bounded_in_characters_not_bytes() {
        let c = Content::text(Some("é".repeat(300)));
        assert_eq!(c.summary().chars().count(), SUMMARY_CHARS);
        assert_eq!(c.text.as_deref().map(|t| t.chars().count()), Some(300));
        assert_eq!(
            Content::labelled("image", Some(String::new())).summary(),
            "[image]"
        );
    }

    #[test]
    fn ids_are_bounded() {
        assert!(id("mid", &"m".repeat(MAX_ID_LEN)).is_ok());
        assert!(id("mid", &"m".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(id("mid", "").is_err());
    }
}
