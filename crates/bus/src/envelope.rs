//! The message envelope: what adapters publish and the router consumes, with its stable JSON
//! encoding and version check.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_core::model::{Channel, Time, Urgency};

/// The envelope version this build writes and the only one it reads.
pub const ENVELOPE_VERSION: u16 = 1;

/// Longest message id accepted, in bytes: AMQP carries it in `message_id`, a short string.
pub const MAX_ID_LEN: usize = 255;

/// The message envelope: what adapters publish and the router consumes.
///
/// The JSON encoding is stable: field names never change within a version, and a change that
/// an older router could misread bumps [`ENVELOPE_VERSION`]. Unknown fields are ignored, so a
/// newer adapter may add optional fields without a version bump.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Envelope format version; always [`ENVELOPE_VERSION`] when built by this crate.
    pub version: u16,
    /// Unique message id (at most [`MAX_ID_LEN`] bytes); the router dedups on it, so a source
    /// retrying the same input must produce the same id.
    pub id: String,
    /// When the adapter received the message, in milliseconds since the Unix epoch.
    pub received_at: Time,
    /// The normalised inbound message.
    pub message: InboundMessage,
    /// What the message is: a customer's message (the default, left out of the JSON) or
    /// the end of their conversation. Added within version 1: a router that predates it
    /// reads an end as a follow-up message, which routes nothing new.
    #[serde(default, skip_serializing_if = "EnvelopeKind::is_message")]
    pub kind: EnvelopeKind,
}

/// What an envelope carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeKind {
    /// A customer's message: a new contact, or a follow-up in an open conversation.
    #[default]
    Message,
    /// The customer ended the conversation (a caller hung up): a contact still waiting
    /// is abandoned, one an agent holds goes to wrap-up, and nothing new is opened.
    End,
}

impl EnvelopeKind {
    fn is_message(&self) -> bool {
        *self == EnvelopeKind::Message
    }
}

/// A normalised inbound message, as every adapter produces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// Which adapter produced it: "api", "imap:support", "twilio", ...
    pub source: String,
    /// The medium the customer used.
    pub channel: Channel,
    /// Conversation key: follow-ups carry the same key.
    pub conversation: String,
    /// Customer key.
    pub customer: String,
    /// Subject or first line.
    pub summary: String,
    /// Full text, when the channel has one.
    #[serde(default)]
    pub body: Option<String>,
    /// Urgency the source asked for, if any; classification decides otherwise.
    #[serde(default)]
    pub urgency: Option<Urgency>,
    /// Skill names the source asked for.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Channel-specific attributes (IVR digits, mailbox address, customer tier, ...).
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// Why a body could not be read as an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not JSON, or not a JSON object with a numeric `version`.
    #[error("envelope: not a JSON object with a numeric version: {0}")]
    Json(String),
    /// The body has no `version` field.
    #[error("envelope: no version field")]
    MissingVersion,
    /// The body is an envelope of a version this build cannot read.
    #[error("envelope: version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version found in the body.
        found: u64,
        /// The version this build reads.
        supported: u16,
    },
    /// The body claims the supported version but does not match its schema.
    #[error("envelope version {version}: {reason}")]
    Invalid {
        /// The version found in the body.
        version: u16,
        /// What is wrong with it.
        reason: String,
    },
}

impl Envelope {
    /// Builds a current-version envelope.
    pub fn new(id: impl Into<String>, received_at: Time, message: InboundMessage) -> Self {
        Envelope {
            version: ENVELOPE_VERSION,
            id: id.into(),
            received_at,
            message,
            kind: EnvelopeKind::Message,
        }
    }

    /// Builds the envelope of a conversation's end.
    pub fn end(id: impl Into<String>, received_at: Time, message: InboundMessage) -> Self {
        Envelope {
            kind: EnvelopeKind::End,
            ..Envelope::new(id, received_at, message)
        }
    }

    /// Encodes the envelope as compact JSON, fields in declaration order.
    pub fn to_json(&self) -> Vec<u8> {
        // Every field is a string, number, enum or JSON value with string keys: this cannot fail.
        serde_json::to_vec(self).expect("an envelope always serialises to JSON")
    }

    /// Decodes an envelope, refusing versions other than [`ENVELOPE_VERSION`] and ids that are
    /// empty or longer than [`MAX_ID_LEN`] bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        // Read the version first, so a future format is refused by its version rather than by
        // whichever field happened to change.
        #[derive(Deserialize)]
        struct Probe {
            version: Option<u64>,
        }
        let probe: Probe =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
        let version = probe.version.ok_or(DecodeError::MissingVersion)?;
        if version != u64::from(ENVELOPE_VERSION) {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                supported: ENVELOPE_VERSION,
            });
        }
        let invalid = |reason: String| DecodeError::Invalid {
            version: ENVELOPE_VERSION,
            reason,
        };
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        envelope.check_id().map_err(invalid)?;
        Ok(envelope)
    }

    /// Checks the id is usable: non-empty and short enough for AMQP's `message_id`.
    pub(crate) fn check_id(&self) -> Result<(), String> {
        if self.id.is_empty() {
            return Err("id is empty".to_owned());
        }
        if self.id.len() > MAX_ID_LEN {
            return Err(format!(
                "id is {} bytes, longer than {MAX_ID_LEN}",
                self.id.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        let mut attributes = BTreeMap::new();
        attributes.insert("tier".to_owned(), serde_json::json!("gold"));
        attributes.insert("digits".to_owned(), serde_json::json!([1, 2]));
        Envelope::new(
            "m-1",
            Time::from_millis(1_700_000_000_123),
            InboundMessage {
                source: "imap:support".to_owned(),
                channel: Channel::Email,
                conversation: "<a@example.com>".to_owned(),
                customer: "c-42".to_owned(),
                summary: "Refund".to_owned(),
                body: Some("Please refund order 7".to_owned()),
                urgency: Some(Urgency::High),
                skills: vec!["billing".to_owned()],
                attributes,
            },
        )
    }

    #[test]
    fn round_trips() {
        let e = sample();
        assert_eq!(Envelope::from_json(&e.to_json()), Ok(e));
    }

    #[test]
    fn encoding_is_stable() {
        let json = String::from_utf8(sample().to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"version":1,"id":"m-1","received_at":1700000000123,"message":{"source":"imap:support","channel":"email","conversation":"<a@example.com>","customer":"c-42","summary":"Refund","body":"Please refund order 7","urgency":"high","skills":["billing"],"attributes":{"digits":[1,2],"tier":"gold"}}}"#
        );
    }

    #[test]
    fn an_end_says_so_and_round_trips() {
        let e = sample();
        let end = Envelope::end(e.id.clone(), e.received_at, e.message.clone());
        let json = String::from_utf8(end.to_json()).unwrap();
        assert!(json.ends_with(r#","kind":"end"}"#), "{json}");
        assert_eq!(Envelope::from_json(json.as_bytes()), Ok(end));
    }

    #[test]
    fn refuses_other_versions_and_bad_ids() {
        let mut e = sample();
        e.version = 2;
        assert_eq!(
            Envelope::from_json(&e.to_json()),
            Err(DecodeError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        );
        assert_eq!(
            Envelope::from_json(br#"{"id":"x"}"#),
            Err(DecodeError::MissingVersion)
        );
        assert!(matches!(
            Envelope::from_json(b"not json"),
            Err(DecodeError::Json(_))
        ));
        let mut e = sample();
        e.id = String::new();
        assert!(matches!(
            Envelope::from_json(&e.to_json()),
            Err(DecodeError::Invalid { .. })
        ));
        e.id = "x".repeat(MAX_ID_LEN + 1);
        assert!(matches!(
            Envelope::from_json(&e.to_json()),
            Err(DecodeError::Invalid { .. })
        ));
        e.id = "x".repeat(MAX_ID_LEN);
        assert!(Envelope::from_json(&e.to_json()).is_ok());
    }
}
