//! The WhatsApp Cloud API `messages` webhook (`object: "whatsapp_business_account"`).
//!
//! - Each `entry` is a WhatsApp Business Account; each of its `changes` with
//!   `field == "messages"` carries a `value` with the business number (`metadata`), the
//!   senders' profiles (`contacts`), customer `messages` and `statuses` of the business's own
//!   messages.
//! - A message is routed under `whatsapp:<wamid>`; its conversation is the customer's thread
//!   with that business number, `whatsapp:<phone_number_id>:<wa_id>`.
//! - Statuses (sent, delivered, read, failed), reactions, `system` notices (a customer changed
//!   number) and `request_welcome` (a customer opened the chat) are not routed. Other
//!   changes (`account_update`, template reviews…) are not read at all.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::{ChannelError, Content, Incoming, Routed, id, malformed, outcome, parse, parse_at};

/// Message types that are not a customer asking something.
const NOT_ROUTED: &[&str] = &["reaction", "system", "request_welcome"];

#[derive(Debug, Deserialize)]
struct Notification {
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    id: String,
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
struct Change {
    field: String,
    /// Read only for `messages`: other fields have other shapes.
    value: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Value {
    metadata: Metadata,
    #[serde(default)]
    contacts: Vec<Contact>,
    /// Read one by one, so an error names the message.
    #[serde(default)]
    messages: Vec<serde_json::Value>,
    #[serde(default)]
    statuses: Vec<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    phone_number_id: String,
    display_phone_number: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Contact {
    wa_id: Option<String>,
    profile: Option<Profile>,
}

#[derive(Debug, Deserialize)]
struct Profile {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    id: String,
    from: String,
    timestamp: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    text: Option<Text>,
    image: Option<Media>,
    audio: Option<Media>,
    video: Option<Media>,
    document: Option<Media>,
    sticker: Option<Media>,
    location: Option<Location>,
    interactive: Option<Interactive>,
    button: Option<Button>,
    context: Option<Context>,
}

#[derive(Debug, Deserialize)]
struct Text {
    body: String,
}

#[derive(Debug, Deserialize)]
struct Media {
    id: Option<String>,
    mime_type: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
    name: Option<String>,
    address: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Interactive {
    button_reply: Option<Reply>,
    list_reply: Option<Reply>,
}

#[derive(Debug, Deserialize)]
struct Reply {
    id: Option<String>,
    title: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Button {
    text: Option<String>,
    payload: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Context {
    id: Option<String>,
}

/// Reads a verified WhatsApp notification.
pub(crate) fn parse_notification(body: &[u8]) -> Result<Incoming, ChannelError> {
    let n: Notification = parse("whatsapp notification", body)?;
    let mut routed = Vec::new();
    let mut skipped = None;
    for (e, entry) in n.entry.into_iter().enumerate() {
        let account = id(&format!("entry[{e}].id"), &entry.id)?.to_owned();
        for (c, change) in entry.changes.into_iter().enumerate() {
            if change.field != "messages" {
                skipped.get_or_insert("not a messages change");
                continue;
            }
            let at = format!("entry[{e}].changes[{c}].value");
            let value = change
                .value
                .ok_or_else(|| malformed(&format!("{at} is missing")))?;
            let value: Value =
                serde_json::from_value(value).map_err(|err| malformed(&format!("{at}: {err}")))?;
            if !value.statuses.is_empty() {
                skipped.get_or_insert("delivery statuses only");
            }
            let phone = id(
                &format!("{at}.metadata.phone_number_id"),
                &value.metadata.phone_number_id,
            )?;
            for (m, message) in value.messages.iter().enumerate() {
                let at = format!("{at}.messages[{m}]");
                let message: Message = parse_at(&at, message.clone())?;
                if NOT_ROUTED.contains(&message.kind.as_str()) {
                    skipped.get_or_insert("reactions or system notices only");
                    continue;
                }
                let r = route(&at, &account, phone, &value, &message)?;
                routed.push(r.into_inbound());
            }
        }
    }
    Ok(outcome(routed, skipped))
}

fn route(
    at: &str,
    account: &str,
    phone: &str,
    value: &Value,
    message: &Message,
) -> Result<Routed, ChannelError> {
    let wamid = id(&format!("{at}.id"), &message.id)?;
    let from = id(&format!("{at}.from"), &message.from)?;
    let mut attributes = BTreeMap::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            attributes.insert(k.to_owned(), serde_json::Value::from(v));
        }
    };
    put("business_account", Some(account));
    put("phone_number_id", Some(phone));
    put(
        "display_phone_number",
        value.metadata.display_phone_number.as_deref(),
    );
    put("message_type", Some(&message.kind));
    put("timestamp", message.timestamp.as_deref());
    put(
        "reply_to",
        message.context.as_ref().and_then(|c| c.id.as_deref()),
    );
    // The sender's profile, matched by WhatsApp id: a batch may carry several customers.
    let profile = value
        .contacts
        .iter()
        .find(|c| c.wa_id.as_deref() == Some(from))
        .and_then(|c| c.profile.as_ref())
        .and_then(|p| p.name.as_deref());
    put("profile_name", profile);

    let media = [
        ("image", &message.image),
        ("audio", &message.audio),
        ("video", &message.video),
        ("document", &message.document),
        ("sticker", &message.sticker),
    ]
    .into_iter()
    .find(|(kind, _)| *kind == message.kind)
    .and_then(|(_, m)| m.as_ref());

    let content = match message.kind.as_str() {
        "text" => Content::text(Some(
            message
                .text
                .as_ref()
                .ok_or_else(|| malformed(&format!("{at}.text is missing")))?
                .body
                .clone(),
        )),
        "image" | "audio" | "video" | "document" | "sticker" => {
            let m = media.ok_or_else(|| malformed(&format!("{at}.{} is missing", message.kind)))?;
            put("media_id", m.id.as_deref());
            put("mime_type", m.mime_type.as_deref());
            put("filename", m.filename.as_deref());
            Content::labelled(&message.kind, m.caption.clone().or(m.filename.clone()))
        }
        "location" => {
            let l = message
                .location
                .as_ref()
                .ok_or_else(|| malformed(&format!("{at}.location is missing")))?;
            if let (Some(lat), Some(long)) = (l.latitude, l.longitude) {
                attributes.insert("latitude".into(), lat.into());
                attributes.insert("longitude".into(), long.into());
            }
            let place: Vec<&str> = [&l.name, &l.address]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            Content::labelled("location", Some(place.join(", ")))
        }
        "interactive" => {
            let reply = message
                .interactive
                .as_ref()
                .and_then(|i| i.button_reply.as_ref().or(i.list_reply.as_ref()));
            put("reply_id", reply.and_then(|r| r.id.as_deref()));
            Content::text(reply.and_then(|r| r.title.clone()))
        }
        "button" => {
            let b = message.button.as_ref();
            put("button_payload", b.and_then(|b| b.payload.as_deref()));
            Content::text(b.and_then(|b| b.text.clone()))
        }
        other => Content::labelled(other, None),
    };
    Ok(Routed {
        platform: "whatsapp",
        message_id: wamid.to_owned(),
        business: phone.to_owned(),
        customer: from.to_owned(),
        content,
        attributes,
    })
}
