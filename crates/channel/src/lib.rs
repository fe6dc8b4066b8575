//! What every channel adapter shares. An adapter crate (`channel-chat`, `channel-voice`,
//! `channel-social`, `channel-email`) turns what a provider sends into the bus's
//! [`InboundMessage`]s; the daemon's registry (`src/channels.rs`) serves it over HTTP.
//! Adapters are pure: no I/O, no clock (the caller passes `now`).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
pub use switchboard_bus::InboundMessage;

/// Why a request was refused. Each maps to one HTTP status and one counted reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// 401: the signature is missing, malformed, stale or wrong.
    #[error("signature: {0}")]
    Signature(String),
    /// 400: the body is not what the provider sends.
    #[error("malformed body: {0}")]
    Malformed(String),
}

impl ChannelError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            ChannelError::Signature(_) => 401,
            ChannelError::Malformed(_) => 400,
        }
    }

    /// A short, low-cardinality reason for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ChannelError::Signature(_) => "bad_signature",
            ChannelError::Malformed(_) => "malformed",
        }
    }
}

/// One customer message to publish, under an id the router deduplicates on: a
/// provider's redelivery of the same message must give the same id.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub id: String,
    pub message: InboundMessage,
}

/// What a webhook request amounts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Customer messages to publish, in the order the provider sent them (one request may
    /// carry several, as Meta's batched webhooks do).
    Messages(Vec<Inbound>),
    /// Answer the provider with this body and publish nothing (a verification handshake).
    Challenge(String),
    /// Acknowledge and publish nothing (bot messages, edits, delivery statuses).
    Ignored(&'static str),
}

impl Incoming {
    /// One message.
    pub fn message(id: String, message: InboundMessage) -> Incoming {
        Incoming::Messages(vec![Inbound { id, message }])
    }
}

/// Checks Switchboard's own signature scheme, which the generic webhooks (chat, IVR) use as
/// the daemon's outbound webhooks do: `Switchboard-Signature: t=<unix seconds>,v1=<hex
/// HMAC-SHA256(secret, "<t>.<body>")>`, refused when `t` is more than `window` seconds
/// from `now`.
pub fn verify_signed(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: u64,
    window: u64,
) -> Result<(), ChannelError> {
    let header = header.ok_or_else(|| ChannelError::Signature("missing".into()))?;
    switchboard_delivery::verify(secret, header, body, now, window)
        .map_err(|e| ChannelError::Signature(e.to_string()))
}

/// Lower-case hex of HMAC-SHA256(key, the parts in order).
pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    hex(&mac.finalize().into_bytes())
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Compares a received signature with the expected one in constant time.
pub fn same(expected: &str, received: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(received.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn same_is_exact() {
        assert!(same("v0=ab", "v0=ab"));
        assert!(!same("v0=ab", "v0=aB"));
        assert!(!same("v0=ab", "v0=a"));
    }
}
