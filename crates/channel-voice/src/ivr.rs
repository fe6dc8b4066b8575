//! The generic JSON IVR webhook, for telephony that does not speak TwiML: an Asterisk AGI or
//! ARI script, a FreeSWITCH Lua or ESL handler, a carrier's call-control webhooks.
//!
//! The IVR `POST`s one JSON object per call event, signed like Switchboard's own webhooks:
//! `Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; a
//! signature older than the configured window is refused as a replay.
//!
//! ```json
//! { "call_id": "1700000000.42", "caller": "+15551234567", "called": "+15557654321",
//!   "event": "digits", "digits": "2", "attributes": { "language": "de" } }
//! ```
//!
//! Events: `incoming` (a call arrived), `digits` (the caller keyed a menu choice; `digits` is
//! then required), `wait` (the IVR asks again where the caller stands), `hangup` (the caller
//! hung up) and `completed` (the call ended normally, for example after the agent hung up).
//! The daemon answers with an [`IvrAnswer`]: keep the caller waiting (with what to say), ring
//! an agent, or end.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ChannelError, Inbound, bounded, call_inbound, is_dtmf};

/// The largest body read.
pub const MAX_BODY: usize = 32 * 1024;

/// The most attributes one request may carry.
pub const MAX_ATTRIBUTES: usize = 32;

/// What happened on the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IvrEvent {
    /// A call arrived.
    Incoming,
    /// The caller keyed digits (a menu choice).
    Digits,
    /// The IVR asks again where the caller stands (its hold loop came round).
    Wait,
    /// The caller hung up.
    Hangup,
    /// The call ended normally.
    Completed,
}

impl IvrEvent {
    /// The call is over: while its contact waits, the caller gave up (abandon); while an
    /// agent owns it, the call is done (close, freeing the agent's voice slot).
    pub fn is_final(self) -> bool {
        matches!(self, IvrEvent::Hangup | IvrEvent::Completed)
    }
}

/// One IVR request, checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrRequest {
    /// The call, stable across all of its events (Asterisk's `UNIQUEID`, FreeSWITCH's
    /// call UUID, a carrier's call id); 1 to 128 bytes.
    pub call_id: String,
    /// The caller's number or address; up to 256 bytes, empty when withheld.
    pub caller: String,
    /// The number or address called, when the IVR knows it.
    #[serde(default)]
    pub called: Option<String>,
    /// What happened.
    pub event: IvrEvent,
    /// What the caller keyed (0-9, `*`, `#`); required with `"event": "digits"`.
    #[serde(default)]
    pub digits: Option<String>,
    /// Anything else the IVR knows (language, account number, a menu path), for
    /// classification rules; at most 32 entries.
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// Checks the signature and reads one request; `now` and `window` in unix seconds.
pub fn receive(
    secret: &[u8],
    signature: Option<&str>,
    body: &[u8],
    now: u64,
    window: u64,
) -> Result<IvrRequest, ChannelError> {
    switchboard_channel::verify_signed(secret, signature, body, now, window)?;
    if body.len() > MAX_BODY {
        return Err(ChannelError::Malformed(format!(
            "body of {} bytes, more than the {MAX_BODY} allowed",
            body.len()
        )));
    }
    let request: IvrRequest =
        serde_json::from_slice(body).map_err(|e| ChannelError::Malformed(e.to_string()))?;
    bounded("call_id", &request.call_id, 128, true)?;
    bounded("caller", &request.caller, 256, false)?;
    bounded(
        "called",
        request.called.as_deref().unwrap_or(""),
        256,
        false,
    )?;
    match (&request.digits, request.event) {
        (Some(d), _) if d.is_empty() || d.len() > 64 || !is_dtmf(d) => {
            return Err(ChannelError::Malformed(
                "digits: 1 to 64 of 0-9, *, # expected".into(),
            ));
        }
        (None, IvrEvent::Digits) => {
            return Err(ChannelError::Malformed(
                "digits: required with \"event\": \"digits\"".into(),
            ));
        }
        _ => {}
    }
    if request.attributes.len() > MAX_ATTRIBUTES {
        return Err(ChannelError::Malformed(format!(
            "attributes: at most {MAX_ATTRIBUTES} expected"
        )));
    }
    Ok(request)
}

impl IvrRequest {
    /// The voice contact this call becomes, under an id that is the same for every event of
    /// the call (the router deduplicates on it). The caller is the customer and the call the
    /// conversation; `called`, the digits and the IVR's attributes go into the attributes.
    pub fn inbound(&self) -> Inbound {
        let mut attributes = self.attributes.clone();
        if let Some(called) = &self.called {
            attributes.insert("to".into(), called.clone().into());
        }
        if let Some(d) = &self.digits {
            attributes.insert("digits".into(), d.clone().into());
        }
        call_inbound("ivr", &self.call_id, &self.caller, attributes)
    }
}

/// What the IVR should do with the caller now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IvrState {
    /// Keep the caller on hold: play `announcement`, ask again after
    /// `retry_after_seconds` (a `wait` event).
    Waiting,
    /// An agent is being offered the call and has not accepted yet: keep holding, ask again
    /// after `retry_after_seconds`.
    Offered,
    /// An agent accepted: bridge the caller to `agent.dial`.
    Connect,
    /// Nothing more to do for this call (it ended, or cannot be routed): hang up or end the
    /// IVR script.
    Ended,
}

/// The agent to bridge the caller to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IvrAgent {
    /// The agent's display name, for a whisper or the IVR's logs.
    pub name: String,
    /// Where to dial them, as configured for the agent: `client:<name>`, `+<E.164 number>`
    /// or `sip:<user>@<host>` (see [`crate::twiml::DialTarget::parse`]).
    pub dial: String,
}

/// The JSON the daemon answers an IVR request with. Every field is always present (`null`
/// when it does not apply), so a script can read them without checking for keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IvrAnswer {
    /// The call this answers, echoed from the request.
    pub call_id: String,
    /// The Switchboard contact id the call became, once routed (`null` before, or when
    /// the call is not a contact).
    pub contact: Option<String>,
    /// What to do now.
    pub state: IvrState,
    /// The caller's place in line, 1 being next; `null` unless waiting.
    pub position: Option<usize>,
    /// The expected wait in whole seconds, when the engine can estimate it.
    pub expected_wait_seconds: Option<u64>,
    /// A sentence to say or synthesise for the caller (see
    /// [`crate::twiml::wait_announcement`]); `null` for nothing.
    pub announcement: Option<String>,
    /// The agent to connect to; set when `state` is `connect`.
    pub agent: Option<IvrAgent>,
    /// When to send the next `wait` event, in seconds; set while `waiting` or `offered`.
    pub retry_after_seconds: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::Channel;

    const SECRET: &[u8] = b"ivr-secret";

    fn call(body: &str) -> Result<IvrRequest, ChannelError> {
        let sig = switchboard_delivery::sign(SECRET, 1000, body.as_bytes());
        receive(SECRET, Some(&sig), body.as_bytes(), 1005, 300)
    }

    #[test]
    fn an_incoming_call_becomes_a_voice_contact() {
        let req = call(
            r#"{"call_id":"1700000000.42","caller":"+15551234567","called":"+15557654321",
                "event":"incoming","attributes":{"language":"de"}}"#,
        )
        .unwrap();
        assert_eq!(req.event, IvrEvent::Incoming);
        assert!(!req.event.is_final());
        let Inbound { id, message } = req.inbound();
        assert_eq!(id, "ivr:1700000000.42");
        assert_eq!(message.channel, Channel::Voice);
        assert_eq!(message.customer, "tel:+15551234567");
        assert_eq!(message.attributes["language"], "de");
        assert_eq!(message.attributes["to"], "+15557654321");
    }

    #[test]
    fn digits_are_required_with_a_digits_event_and_checked() {
        let err = call(r#"{"call_id":"c","caller":"","event":"digits"}"#).unwrap_err();
        assert!(err.to_string().contains("required"), "{err}");
        let err =
            call(r#"{"call_id":"c","caller":"","event":"digits","digits":"1;"}"#).unwrap_err();
        assert_eq!(err.status(), 400);
        let req = call(r#"{"call_id":"c","caller":"","event":"digits","digits":"2#"}"#).unwrap();
        assert_eq!(req.inbound().message.attributes["digits"], "2#");
        assert_eq!(req.inbound().message.customer, "tel:anonymous");
    }

    #[test]
    fn unknown_fields_events_and_long_ids_are_refused() {
        for body in [
            r#"{"call_id":"c","caller":"x","event":"incoming","extra":1}"#,
            r#"{"call_id":"c","caller":"x","event":"ringing"}"#,
            r#"{"call_id":"","caller":"x","event":"incoming"}"#,
            r#"{"caller":"x","event":"incoming"}"#,
        ] {
            assert_eq!(call(body).unwrap_err().status(), 400, "{body}");
        }
        let long = format!(
            r#"{{"call_id":"{}","caller":"x","event":"wait"}}"#,
            "c".repeat(129)
        );
        assert!(call(&long).unwrap_err().to_string().contains("call_id"));
    }

    #[test]
    fn signatures_are_checked_before_the_body_and_replays_refused() {
        let body = br#"{"call_id":"c","caller":"x","event":"hangup"}"#;
        assert_eq!(
            receive(SECRET, None, body, 0, 300).unwrap_err().status(),
            401
        );
        let sig = switchboard_delivery::sign(SECRET, 1000, body);
        let err = receive(SECRET, Some(&sig), body, 5000, 300).unwrap_err();
        assert_eq!(err.reason(), "bad_signature");
        let err = receive(b"other", Some(&sig), b"not json", 1000, 300).unwrap_err();
        assert_eq!(err.status(), 401);
        assert!(
            receive(SECRET, Some(&sig), body, 1000, 300)
                .unwrap()
                .event
                .is_final()
        );
    }

    #[test]
    fn an_answer_has_every_field() {
        let answer = IvrAnswer {
            call_id: "c".into(),
            contact: Some("k-1".into()),
            state: IvrState::Connect,
            position: None,
            expected_wait_seconds: None,
            announcement: None,
            agent: Some(IvrAgent {
                name: "Alice".into(),
                dial: "sip:alice@pbx.example.com".into(),
            }),
            retry_after_seconds: None,
        };
        let json = serde_json::to_value(&answer).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "call_id": "c", "contact": "k-1", "state": "connect", "position": null,
                "expected_wait_seconds": null, "announcement": null,
                "agent": {"name": "Alice", "dial": "sip:alice@pbx.example.com"},
                "retry_after_seconds": null
            })
        );
        let back: IvrAnswer = serde_json::from_value(json).unwrap();
        assert_eq!(back, answer);
    }
}
