//! Chat channels: what web chat widgets, in-house chat and Slack send, checked and turned
//! into the bus's [`InboundMessage`]. The HTTP side (routes, answers, the adapter
//! registration) lives with the daemon; this crate is the part that must be exact:
//! signatures, replay windows, payload shapes, and which events are not contacts.
//!
//! Modules:
//! - [`generic`]: the generic chat webhook, signed like Switchboard's own webhooks;
//! - [`slack`]: the Slack Events API (URL verification, `X-Slack-Signature` v0, retries,
//!   threads, bot messages ignored).

pub mod generic;
pub mod slack;

use switchboard_bus::InboundMessage;

/// Why a request was refused. Each maps to one HTTP status and one counted reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// 401: the signature is missing, malformed, stale or wrong.
    #[error("signature: {0}")]
    Signature(String),
    /// 400: the body is not what the provider sends.
    #[error("malformed body: {0}")]
    Malformed(String),
}

impl ChatError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            ChatError::Signature(_) => 401,
            ChatError::Malformed(_) => 400,
        }
    }

    /// A short, low-cardinality reason for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ChatError::Signature(_) => "bad_signature",
            ChatError::Malformed(_) => "malformed",
        }
    }
}

/// What a webhook request amounts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A customer message: publish it under this id (the router deduplicates on it).
    Message { id: String, message: InboundMessage },
    /// Answer the provider with this body and publish nothing (Slack's URL verification).
    Challenge(String),
    /// Acknowledge and publish nothing (bot messages, edits, events that are not contacts).
    Ignored(&'static str),
}
