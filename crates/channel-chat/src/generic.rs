//! The generic chat webhook, for web chat widgets and in-house chat.
//!
//! `POST` a JSON body, signed like Switchboard's outbound webhooks:
//! `Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`;
//! a signature older than the configured window is refused as a replay.
//!
//! ```json
//! { "message_id": "m-1", "session": "s-42", "customer": "c-7", "text": "Hello",
//!   "attributes": { "page": "/pricing" },
//!   "escalated_from_bot": true, "transcript": [{"from": "bot", "text": "…"}] }
//! ```
//!
//! The session is the conversation: later messages of the session go to its owner.
//! `message_id` makes retries safe (the router deduplicates on it).

use std::collections::BTreeMap;

use serde::Deserialize;
use switchboard_bus::InboundMessage;
use switchboard_core::Channel;

use crate::{ChannelError, Incoming};

/// A chat message as posted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Posted {
    message_id: String,
    session: String,
    customer: String,
    text: String,
    #[serde(default)]
    attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    escalated_from_bot: bool,
    #[serde(default)]
    transcript: Vec<serde_json::Value>,
}

/// Checks the signature and parses one request; `now` and `window` in unix seconds.
pub fn receive(
    secret: &[u8],
    signature: Option<&str>,
    body: &[u8],
    now: u64,
    window: u64,
) -> Result<Incoming, ChannelError> {
    switchboard_channel::verify_signed(secret, signature, body, now, window)?;
    let p: Posted =
        serde_json::from_slice(body).map_err(|e| ChannelError::Malformed(e.to_string()))?;
    for (field, value) in [
        ("message_id", &p.message_id),
        ("session", &p.session),
        ("customer", &p.customer),
    ] {
        if value.trim().is_empty() || value.len() > 200 {
            return Err(ChannelError::Malformed(format!(
                "{field}: 1 to 200 bytes expected"
            )));
        }
    }
    let mut attributes = p.attributes;
    if p.escalated_from_bot {
        // The agent sees what the bot already discussed.
        attributes.insert("escalated_from_bot".into(), serde_json::Value::Bool(true));
        attributes.insert("transcript".into(), serde_json::Value::Array(p.transcript));
    }
    let summary: String = p.text.chars().take(200).collect();
    Ok(Incoming::message(
        format!("chat:{}", p.message_id),
        InboundMessage {
            source: "chat".into(),
            channel: Channel::Chat,
            conversation: p.session,
            customer: p.customer,
            summary,
            body: Some(p.text),
            urgency: None,
            skills: Vec::new(),
            attributes,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Inbound;

    const SECRET: &[u8] = b"chat-widget-secret";

    fn signed(body: &str, t: u64) -> String {
        switchboard_delivery::sign(SECRET, t, body.as_bytes())
    }

    #[test]
    fn a_signed_message_becomes_an_inbound_message() {
        let body = r#"{"message_id":"m-1","session":"s-42","customer":"c-7","text":"Hello there","escalated_from_bot":true,"transcript":[{"from":"bot","text":"How can I help?"}]}"#;
        let got = receive(
            SECRET,
            Some(&signed(body, 1000)),
            body.as_bytes(),
            1010,
            300,
        )
        .unwrap();
        let Incoming::Messages(mut got) = got else {
            panic!("expected a message");
        };
        let Inbound { id, message } = got.remove(0);
        assert_eq!(id, "chat:m-1");
        assert_eq!(message.conversation, "s-42");
        assert_eq!(message.channel, Channel::Chat);
        assert_eq!(message.attributes["escalated_from_bot"], true);
        assert_eq!(
            message.attributes["transcript"][0]["text"],
            "How can I help?"
        );
    }

    #[test]
    fn bad_signatures_and_replays_are_refused() {
        let body = r#"{"message_id":"m-1","session":"s","customer":"c","text":"x"}"#;
        let err = receive(SECRET, None, body.as_bytes(), 0, 300).unwrap_err();
        assert_eq!(err.status(), 401);
        let err = receive(
            b"other",
            Some(&signed(body, 1000)),
            body.as_bytes(),
            1000,
            300,
        )
        .unwrap_err();
        assert_eq!(err.reason(), "bad_signature");
        let err = receive(
            SECRET,
            Some(&signed(body, 1000)),
            body.as_bytes(),
            2000,
            300,
        )
        .unwrap_err();
        assert!(err.to_string().contains("old"), "{err}");
    }

    #[test]
    fn a_malformed_body_names_the_problem() {
        let body = r#"{"session":"s","customer":"c","text":"x"}"#;
        let err = receive(SECRET, Some(&signed(body, 5)), body.as_bytes(), 5, 300).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.to_string().contains("message_id"), "{err}");
    }
}
