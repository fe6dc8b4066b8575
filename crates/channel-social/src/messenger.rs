//! Messenger (`object: "page"`) and Instagram messaging (`object: "instagram"`) webhooks,
//! which share one shape: `entry[].messaging[]` events with `sender`, `recipient`,
//! `timestamp` and one of `message`, `postback`, `delivery`, `read`, `reaction`…
//!
//! - A `message` from a customer is routed under `messenger:<mid>` / `instagram:<mid>`; its
//!   conversation is the customer's thread with that Page or Instagram account,
//!   `messenger:<page id>:<PSID>` / `instagram:<account id>:<IGSID>`.
//! - A `postback` (a button, Get Started or menu item the customer tapped) is a customer
//!   action: it is routed with its title as the text and its payload as an attribute, under
//!   its `mid`, or, where an older version sends none, under sender and timestamp (both
//!   repeated by a redelivery).
//! - Echoes (`message.is_echo`, the business's own messages), deleted messages, `delivery`,
//!   `read`, `reaction`, edits, `standby` (another app holds the thread) and `changes`
//!   (comments, mentions) are not routed.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{ChannelError, Content, Incoming, Routed, id, malformed, outcome, parse, parse_at};

/// Which Meta product a `messaging` notification came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// `object: "page"`: Messenger, keyed by Page-scoped ids (PSIDs).
    Messenger,
    /// `object: "instagram"`: Instagram messaging, keyed by Instagram-scoped ids (IGSIDs).
    Instagram,
}

impl Platform {
    /// The prefix of ids and keys, and the message's `source`.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Messenger => "messenger",
            Platform::Instagram => "instagram",
        }
    }
}

#[derive(Debug, Deserialize)]
struct Notification {
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    id: String,
    /// Read one by one, so an error names the event.
    #[serde(default)]
    messaging: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Event {
    sender: Option<Party>,
    /// Milliseconds since the epoch; a string in some test notifications.
    timestamp: Option<serde_json::Value>,
    message: Option<Message>,
    postback: Option<Postback>,
}

#[derive(Debug, Deserialize)]
struct Party {
    id: Option<String>,
    /// Set instead of `id` for people reached through the checkbox plugin.
    user_ref: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    mid: String,
    text: Option<String>,
    #[serde(default)]
    is_echo: bool,
    #[serde(default)]
    is_deleted: bool,
    #[serde(default)]
    is_unsupported: bool,
    #[serde(default)]
    attachments: Vec<Attachment>,
    quick_reply: Option<QuickReply>,
    reply_to: Option<ReplyTo>,
}

#[derive(Debug, Deserialize)]
struct Attachment {
    #[serde(rename = "type")]
    kind: String,
    payload: Option<AttachmentPayload>,
}

#[derive(Debug, Deserialize)]
struct AttachmentPayload {
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct QuickReply {
    payload: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReplyTo {
    mid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Postback {
    mid: Option<String>,
    title: Option<String>,
    payload: Option<String>,
}

/// Reads a verified Messenger or Instagram notification.
pub(crate) fn parse_notification(
    body: &[u8],
    platform: Platform,
) -> Result<Incoming, ChannelError> {
    let n: Notification = parse(&format!("{} notification", platform.name()), body)?;
    let mut routed = Vec::new();
    let mut skipped = None;
    for (e, entry) in n.entry.into_iter().enumerate() {
        let business = id(&format!("entry[{e}].id"), &entry.id)?;
        for (i, event) in entry.messaging.into_iter().enumerate() {
            let at = format!("entry[{e}].messaging[{i}]");
            let event: Event = parse_at(&at, event)?;
            match route(&at, platform, business, &event)? {
                Ok(r) => routed.push(r.into_inbound()),
                Err(why) => {
                    skipped.get_or_insert(why);
                }
            }
        }
    }
    Ok(outcome(routed, skipped))
}

/// The event as a routed message, or why it is not one.
fn route(
    at: &str,
    platform: Platform,
    business: &str,
    event: &Event,
) -> Result<Result<Routed, &'static str>, ChannelError> {
    let mut attributes = BTreeMap::new();
    let (message_id, content) = match (&event.message, &event.postback) {
        (Some(m), _) => {
            if m.is_echo {
                return Ok(Err("echoes of the business's own messages only"));
            }
            if m.is_deleted {
                return Ok(Err("deleted messages only"));
            }
            let mid = id(&format!("{at}.message.mid"), &m.mid)?.to_owned();
            if let Some(p) = m.quick_reply.as_ref().and_then(|q| q.payload.as_deref()) {
                attributes.insert("quick_reply_payload".into(), p.into());
            }
            if let Some(r) = m.reply_to.as_ref().and_then(|r| r.mid.as_deref()) {
                attributes.insert("reply_to".into(), r.into());
            }
            if !m.attachments.is_empty() {
                let list: Vec<serde_json::Value> = m
                    .attachments
                    .iter()
                    .map(|a| {
                        let url = a.payload.as_ref().and_then(|p| p.url.as_deref());
                        serde_json::json!({ "type": a.kind, "url": url })
                    })
                    .collect();
                attributes.insert("attachments".into(), list.into());
            }
            let content = match (m.attachments.first(), m.is_unsupported) {
                (Some(first), _) => Content::labelled(&first.kind, m.text.clone()),
                (None, true) => Content::labelled("unsupported", m.text.clone()),
                (None, false) => Content::text(m.text.clone()),
            };
            (mid, content)
        }
        (None, Some(p)) => {
            let mid = match (&p.mid, &event.timestamp) {
                (Some(mid), _) => id(&format!("{at}.postback.mid"), mid)?.to_owned(),
                (None, Some(ts)) => {
                    let sender = sender(at, event)?;
                    let ts = match ts {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    id(
                        &format!("{at}.postback id from sender and timestamp"),
                        &format!("postback:{sender}:{ts}"),
                    )?
                    .to_owned()
                }
                (None, None) => {
                    return Err(malformed(&format!(
                        "{at}.postback has neither mid nor timestamp"
                    )));
                }
            };
            if let Some(payload) = &p.payload {
                attributes.insert("postback_payload".into(), payload.as_str().into());
            }
            (mid, Content::text(p.title.clone().or(p.payload.clone())))
        }
        (None, None) => return Ok(Err("receipts, reactions or other events only")),
    };
    let customer = sender(at, event)?.to_owned();
    attributes.insert("business_account".into(), business.into());
    if let Some(ts) = &event.timestamp {
        attributes.insert("timestamp".into(), ts.clone());
    }
    Ok(Ok(Routed {
        platform: platform.name(),
        message_id,
        business: business.to_owned(),
        customer,
        content,
        attributes,
    }))
}

/// The customer's id: the PSID or IGSID, or the `user_ref` where Meta sends that instead.
fn sender<'a>(at: &str, event: &'a Event) -> Result<&'a str, ChannelError> {
    let party = event
        .sender
        .as_ref()
        .ok_or_else(|| malformed(&format!("{at}.sender is missing")))?;
    match (&party.id, &party.user_ref) {
        (Some(psid), _) => id(&format!("{at}.sender.id"), psid),
        (None, Some(r)) => id(&format!("{at}.sender.user_ref"), r),
        (None, None) => Err(malformed(&format!("{at}.sender has no id"))),
    }
}
