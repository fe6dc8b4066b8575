//! The channels: every adapter the daemon knows, registered here, and the webhook route
//! that serves the configured sources. A source `[sources.<name>]` with `type = "…"` is
//! served at `POST /v1/channels/<name>`; its adapter checks the request is genuine,
//! reads it, and says whether it is a message to publish, a challenge to answer, or
//! something to acknowledge and drop. Adding a channel means one crate and one line in
//! [`KINDS`] and [`receive`].

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router as Http};
use serde_json::{Map, Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;
use switchboard_bus::Envelope;
use switchboard_bus::InboundMessage;
use switchboard_channel::{ChannelError, Inbound, Incoming};
use switchboard_channel_chat::{generic, slack};

use crate::api::{AppState, problem, publish};
use crate::config::SourceConfig;
use crate::router::{Standing, now};

/// The adapters, by the `type` a source names.
pub const KINDS: &[&str] = &["chat", "slack", "twilio", "ivr", "meta"];

/// The webhook route of every configured source.
pub fn routes() -> Http<AppState> {
    Http::new().route("/v1/channels/{name}", post(webhook).get(handshake))
}

/// Runs the source's adapter over one request.
fn receive(
    source: &SourceConfig,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Incoming, ChannelError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let secret = source.secret.as_bytes();
    let now = now().as_millis() / 1000;
    match source.kind.as_str() {
        "chat" => generic::receive(
            secret,
            header(switchboard_delivery::SIGNATURE_HEADER),
            body,
            now,
            source.replay_window.as_secs(),
        ),
        "slack" => slack::receive(
            secret,
            header("x-slack-request-timestamp"),
            header("x-slack-signature"),
            body,
            now,
        ),
        "meta" => switchboard_channel_social::receive(
            secret,
            header(switchboard_channel_social::SIGNATURE_HEADER),
            body,
        ),
        other => Err(ChannelError::Malformed(format!(
            "no adapter for type {other:?}"
        ))),
    }
}

/// Whether the source's provider reads the answer, so it is worth waiting for the router
/// to place the message (a chat widget shows the position; Slack and Meta only want 200).
fn answers_customer(kind: &str) -> bool {
    kind == "chat"
}

/// The source's defaults, applied to each of its messages: the skills it requires, and its
/// urgency unless the message asks for one (the rules may still raise it).
pub(crate) fn with_defaults(source: &SourceConfig, mut m: InboundMessage) -> InboundMessage {
    for skill in &source.skills {
        if !m.skills.contains(skill) {
            m.skills.push(skill.clone());
        }
    }
    m.urgency = m.urgency.or(source.urgency);
    m
}

/// An expected wait as customers are told it: whole seconds, rounded up (a customer told
/// "0 s" while an agent is still being found would expect one this instant).
pub fn wait_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil() as u64
}

/// Where a published message's contact stands, with the names a channel tells.
#[derive(Debug, Clone)]
pub struct Placed {
    pub standing: Standing,
    /// The agent offered or holding the contact.
    pub agent: Option<String>,
    /// That agent's dial target (voice).
    pub dial: Option<String>,
}

impl Placed {
    /// As the channels answer it.
    pub fn json(&self) -> Value {
        let st = &self.standing;
        json!({
            "contact": st.contact,
            "state": st.state,
            "follow_up": st.follow_up,
            "position": st.position,
            "expected_wait_seconds": st.expected_wait.map(wait_seconds),
            "agent": self.agent,
        })
    }
}

/// Waits up to `within` for this process's router to place a published message, and
/// says where it stands. `None` on a standby (another process routes), when routing
/// takes longer, or once the contact has ended.
pub async fn standing(s: &AppState, message: &str, within: Duration) -> Option<Placed> {
    if !s.leading.load(Ordering::Acquire) {
        return None;
    }
    // Subscribed before looking, so a step that lands in between is not missed.
    let mut steps = s.hub.steps();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        {
            let mut router = s.router.lock().await;
            if let Some(standing) = router.standing(now(), message) {
                let name = standing
                    .agent
                    .and_then(|a| router.names.agent_name(a))
                    .map(str::to_owned);
                let dial = name
                    .as_ref()
                    .and_then(|n| router.settings.get(n))
                    .and_then(|s| s.dial.clone());
                return Some(Placed {
                    standing,
                    agent: name,
                    dial,
                });
            }
        }
        if tokio::time::timeout_at(deadline, steps.changed())
            .await
            .is_err()
        {
            return None;
        }
    }
}

/// Counts and answers a refused request.
pub(crate) fn refused(s: &AppState, source: &str, e: &ChannelError) -> Response {
    s.metrics.ingest_rejected(e.reason());
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    tracing::info!(%source, reason = e.reason(), error = %e, "channel request refused");
    problem(status, e.reason(), None, e.to_string())
}

/// The configured source of this name.
fn source<'a>(s: &'a AppState, name: &str) -> Result<&'a SourceConfig, Box<Response>> {
    s.loaded.config.sources.get(name).ok_or_else(|| {
        Box::new(problem(
            StatusCode::NOT_FOUND,
            "unknown source",
            None,
            format!("no source {name:?} in the configuration"),
        ))
    })
}

/// A request's query parameters, decoded.
pub(crate) fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// `GET /v1/channels/<name>`: a provider's subscription handshake (Meta: `hub.mode`,
/// `hub.verify_token`, `hub.challenge`, answered with the challenge).
async fn handshake(State(s): State<AppState>, Path(name): Path<String>, uri: Uri) -> Response {
    let source = match source(&s, &name) {
        Ok(source) => source,
        Err(response) => return *response,
    };
    if source.kind != "meta" {
        return problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "no handshake",
            None,
            format!("source {name:?} (type {}) takes POST only", source.kind),
        );
    }
    match switchboard_channel_social::verify_subscription(&query_pairs(&uri), &source.verify_token)
    {
        Ok(challenge) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            challenge,
        )
            .into_response(),
        Err(e) => {
            s.metrics.ingest_rejected(e.reason());
            let status = StatusCode::from_u16(switchboard_channel_social::handshake_status(&e))
                .unwrap_or(StatusCode::FORBIDDEN);
            tracing::info!(source = %name, error = %e, "subscription handshake refused");
            problem(status, "handshake refused", None, e.to_string())
        }
    }
}

async fn webhook(
    State(s): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let source = match source(&s, &name) {
        Ok(source) => source,
        Err(response) => return *response,
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let too_large = rejection.status() == StatusCode::PAYLOAD_TOO_LARGE;
            s.metrics.ingest_rejected(if too_large {
                "body_too_large"
            } else {
                "unreadable_body"
            });
            return problem(
                rejection.status(),
                if too_large {
                    "body too large"
                } else {
                    "unreadable body"
                },
                None,
                rejection.body_text(),
            );
        }
    };
    match source.kind.as_str() {
        "twilio" => return crate::voice::twilio(&s, &name, source, &uri, &headers, &body).await,
        "ivr" => return crate::voice::ivr(&s, &name, source, &headers, &body).await,
        _ => {}
    }
    let incoming = receive(source, &headers, &body);
    match incoming {
        Err(e) => refused(&s, &name, &e),
        Ok(Incoming::Challenge(challenge)) => challenge.into_response(),
        Ok(Incoming::Ignored(why)) => {
            Json(json!({ "status": "ignored", "reason": why })).into_response()
        }
        Ok(Incoming::Messages(messages)) => {
            let mut ids = Vec::with_capacity(messages.len());
            for Inbound { id, message } in messages {
                let envelope = Envelope::new(id.clone(), now(), with_defaults(source, message));
                if let Err(response) = publish(&s, &envelope).await {
                    return *response;
                }
                ids.push(id);
            }
            match &ids[..] {
                [id] if answers_customer(&source.kind) => {
                    let mut answer = Map::new();
                    answer.insert("id".into(), json!(id));
                    answer.insert("status".into(), json!("accepted"));
                    match standing(&s, id, source.answer_within)
                        .await
                        .map(|p| p.json())
                    {
                        Some(Value::Object(st)) => answer.extend(st),
                        _ => {
                            answer.insert("state".into(), json!("queued"));
                        }
                    }
                    Json(answer).into_response()
                }
                _ => Json(json!({ "ids": ids, "status": "accepted" })).into_response(),
            }
        }
    }
}
