//! Voice channels: what a telephony provider sends when a call comes in, moves through an
//! IVR or ends, checked and turned into the bus's [`InboundMessage`](switchboard_channel::InboundMessage),
//! and what the caller hears back. The HTTP side (routes, answers, the adapter registration)
//! lives with the daemon; this crate is the part that must be exact: signatures, payload
//! shapes, call states and the XML the provider executes. Pure: no I/O, no clock (the caller
//! passes `now`).
//!
//! Modules:
//! - [`twilio`]: Twilio-compatible voice webhooks (`X-Twilio-Signature`, form bodies, call
//!   statuses), also spoken by SignalWire, Telnyx TeXML and other "TwiML" providers;
//! - [`twiml`]: a typed TwiML answer builder and the queue announcement a waiting caller hears;
//! - [`ivr`]: the generic JSON IVR webhook for Asterisk, FreeSWITCH and carriers, signed like
//!   Switchboard's own webhooks, and the JSON answer the daemon sends back.
//!
//! How the daemon is meant to use a call's events: the first event of a call becomes a voice
//! contact keyed by the call (`inbound()` gives the message; the router deduplicates on its
//! id, so a provider's retry or a later event of the same call creates nothing new); a final
//! status ([`twilio::CallStatus::is_final`], [`ivr::IvrEvent::is_final`]) while the contact
//! still waits means the caller gave up (abandon), and while an agent owns it means the call
//! is over (close, freeing the agent's voice slot).

pub mod ivr;
pub mod twilio;
pub mod twiml;

use std::collections::BTreeMap;

pub use switchboard_channel::{ChannelError, Inbound, Incoming};

/// The voice contact a call becomes: one id for every request of the call (the router
/// deduplicates on it), the call as the conversation and the caller as the customer
/// (`tel:anonymous` when the number is withheld).
pub(crate) fn call_inbound(
    source: &str,
    call: &str,
    caller: &str,
    attributes: BTreeMap<String, serde_json::Value>,
) -> Inbound {
    let caller = if caller.trim().is_empty() {
        "anonymous"
    } else {
        caller
    };
    let key = format!("{source}:{call}");
    Inbound {
        id: key.clone(),
        message: switchboard_channel::InboundMessage {
            source: source.into(),
            channel: switchboard_core::Channel::Voice,
            conversation: key,
            customer: format!("tel:{caller}"),
            summary: format!("Call from {caller}"),
            body: None,
            urgency: None,
            skills: Vec::new(),
            attributes,
        },
    }
}

/// Characters a caller can key in: DTMF digits, `*` and `#`, plus `w`/`W` (the half-second
/// waits some providers echo back in `Digits`).
pub(crate) fn is_dtmf(digits: &str) -> bool {
    digits
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'w' | 'W'))
}

/// Refuses a field that is longer than `max` bytes, or empty when `required`.
pub(crate) fn bounded(
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<(), ChannelError> {
    if (required && value.trim().is_empty()) || value.len() > max {
        let least = if required { 1 } else { 0 };
        return Err(ChannelError::Malformed(format!(
            "{field}: {least} to {max} bytes expected"
        )));
    }
    Ok(())
}
