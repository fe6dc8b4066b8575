//! The Slack Events API, for teams that serve customers in shared Slack channels.
//!
//! - Requests are signed: `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret,
//!   "v0:<X-Slack-Request-Timestamp>:<raw body>")>`; a timestamp more than five minutes
//!   from now is refused (replays).
//! - `{"type": "url_verification", "challenge": …}` is answered with the challenge.
//! - `{"type": "event_callback", "event_id": …, "event": {"type": "message", …}}` is a
//!   customer message. Slack retries (with `X-Slack-Retry-Num`) carry the same `event_id`,
//!   which becomes the message id, so a retry never makes a second contact.
//! - The conversation is the thread: `channel` + `thread_ts` (or the message's own `ts`
//!   when it starts a thread). Bot messages, edits and other subtypes are ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use switchboard_bus::InboundMessage;
use switchboard_core::Channel;

use switchboard_channel::{hmac_sha256_hex, same};

use crate::{ChannelError, Incoming};

/// How far a request's timestamp may be from now, in seconds (Slack's own advice).
pub const WINDOW: u64 = 5 * 60;

/// Checks `X-Slack-Signature` against the raw body and `X-Slack-Request-Timestamp`.
pub fn verify(
    signing_secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: u64,
) -> Result<(), ChannelError> {
    let bad = |why: &str| ChannelError::Signature(why.to_owned());
    let timestamp = timestamp.ok_or_else(|| bad("missing X-Slack-Request-Timestamp"))?;
    let signature = signature.ok_or_else(|| bad("missing X-Slack-Signature"))?;
    let t: u64 = timestamp
        .parse()
        .map_err(|_| bad("X-Slack-Request-Timestamp is not a number"))?;
    if now.abs_diff(t) > WINDOW {
        return Err(bad(
            "request timestamp is more than five minutes away (a replay?)",
        ));
    }
    let expected = format!(
        "v0={}",
        hmac_sha256_hex(signing_secret, &[b"v0:", timestamp.as_bytes(), b":", body])
    );
    if same(&expected, signature) {
        Ok(())
    } else {
        Err(bad("X-Slack-Signature does not match"))
    }
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    challenge: Option<String>,
    event_id: Option<String>,
    team_id: Option<String>,
    event: Option<Event>,
}

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    subtype: Option<String>,
    bot_id: Option<String>,
    user: Option<String>,
    text: Option<String>,
    channel: Option<String>,
    ts: Option<String>,
    thread_ts: Option<String>,
}

/// Checks the signature and parses one Events API request.
pub fn receive(
    signing_secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: u64,
) -> Result<Incoming, ChannelError> {
    verify(signing_secret, timestamp, signature, body, now)?;
    let e: Envelope =
        serde_json::from_slice(body).map_err(|e| ChannelError::Malformed(e.to_string()))?;
    match e.kind.as_str() {
        "url_verification" => e
            .challenge
            .map(Incoming::Challenge)
            .ok_or_else(|| ChannelError::Malformed("url_verification without a challenge".into())),
        "event_callback" => {
            let event = e
                .event
                .ok_or_else(|| ChannelError::Malformed("event_callback without an event".into()))?;
            let event_id = e
                .event_id
                .ok_or_else(|| ChannelError::Malformed("event_callback without event_id".into()))?;
            if event.kind != "message" {
                return Ok(Incoming::Ignored("not a message event"));
            }
            if event.bot_id.is_some() || event.subtype.as_deref() == Some("bot_message") {
                return Ok(Incoming::Ignored("bot message"));
            }
            if event.subtype.is_some() {
                return Ok(Incoming::Ignored("message subtype (edit, join, …)"));
            }
            let missing = |f: &str| ChannelError::Malformed(format!("message event without {f}"));
            let channel = event.channel.ok_or_else(|| missing("channel"))?;
            let ts = event.ts.ok_or_else(|| missing("ts"))?;
            let user = event.user.ok_or_else(|| missing("user"))?;
            let text = event.text.unwrap_or_default();
            let thread = event.thread_ts.unwrap_or(ts);
            let mut attributes = BTreeMap::new();
            attributes.insert("slack_channel".into(), channel.clone().into());
            if let Some(team) = e.team_id {
                attributes.insert("slack_team".into(), team.into());
            }
            Ok(Incoming::message(
                format!("slack:{event_id}"),
                InboundMessage {
                    source: "slack".into(),
                    channel: Channel::Chat,
                    conversation: format!("slack:{channel}:{thread}"),
                    customer: format!("slack:{user}"),
                    summary: text.chars().take(200).collect(),
                    body: Some(text),
                    urgency: None,
                    skills: Vec::new(),
                    attributes,
                },
            ))
        }
        other => Ok(Incoming::Ignored(if other == "app_rate_limited" {
            "rate-limit notice"
        } else {
            "not an event callback"
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slack's published example: signing secret, timestamp, a slash-command body and the
    /// signature Slack computed for it.
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_published_example_verifies() {
        let now = 1_531_420_618 + 10;
        assert_eq!(
            verify(
                SECRET,
                Some(TIMESTAMP),
                Some(SIGNATURE),
                BODY.as_bytes(),
                now
            ),
            Ok(())
        );
        let tampered = BODY.replace("roadrunner", "coyote");
        assert!(
            verify(
                SECRET,
                Some(TIMESTAMP),
                Some(SIGNATURE),
                tampered.as_bytes(),
                now
            )
            .is_err()
        );
        let later = 1_531_420_618 + 301;
        assert!(
            verify(
                SECRET,
                Some(TIMESTAMP),
                Some(SIGNATURE),
                BODY.as_bytes(),
                later
            )
            .is_err()
        );
        assert!(verify(SECRET, None, Some(SIGNATURE), BODY.as_bytes(), now).is_err());
    }
}
