//! The channels: every adapter the daemon knows, registered here, and the webhook route
//! that serves the configured sources. A source `[sources.<name>]` with `type = "…"` is
//! served at `POST /v1/channels/<name>`; its adapter checks the request is genuine,
//! reads it, and says whether it is a message to publish, a challenge to answer, or
//! something to acknowledge and drop. Adding a channel means one crate and one line in
//! [`KINDS`] and [`receive`].

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router as Http};
use serde_json::json;
use switchboard_bus::Envelope;
use switchboard_channel::{ChannelError, Inbound, Incoming};
use switchboard_channel_chat::{generic, slack};

use crate::api::{AppState, problem, publish};
use crate::router::now;

/// The adapters, by the `type` a source names.
pub const KINDS: &[&str] = &["chat", "slack"];

/// The webhook route of every configured source.
pub fn routes() -> Http<AppState> {
    Http::new().route("/v1/channels/{name}", post(webhook))
}

/// Runs the source's adapter over one request.
fn receive(
    kind: &str,
    secret: &[u8],
    replay_window: u64,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Incoming, ChannelError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = now().as_millis() / 1000;
    match kind {
        "chat" => generic::receive(
            secret,
            header(switchboard_delivery::SIGNATURE_HEADER),
            body,
            now,
            replay_window,
        ),
        "slack" => slack::receive(
            secret,
            header("x-slack-request-timestamp"),
            header("x-slack-signature"),
            body,
            now,
        ),
        other => Err(ChannelError::Malformed(format!(
            "no adapter for type {other:?}"
        ))),
    }
}

async fn webhook(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(source) = s.loaded.config.sources.get(&name) else {
        return problem(
            StatusCode::NOT_FOUND,
            "unknown source",
            None,
            format!("no source {name:?} in the configuration"),
        );
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
    let incoming = receive(
        &source.kind,
        source.secret.as_bytes(),
        source.replay_window.as_secs(),
        &headers,
        &body,
    );
    match incoming {
        Err(e) => {
            s.metrics.ingest_rejected(e.reason());
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            tracing::info!(source = %name, reason = e.reason(), "channel request refused");
            problem(status, e.reason(), None, e.to_string())
        }
        Ok(Incoming::Challenge(challenge)) => challenge.into_response(),
        Ok(Incoming::Ignored(why)) => {
            Json(json!({ "status": "ignored", "reason": why })).into_response()
        }
        Ok(Incoming::Messages(messages)) => {
            let mut ids = Vec::with_capacity(messages.len());
            for Inbound { id, message } in messages {
                let envelope = Envelope::new(id.clone(), now(), message);
                if let Err(response) = publish(&s, &envelope).await {
                    return *response;
                }
                ids.push(id);
            }
            match &ids[..] {
                [id] => Json(json!({ "id": id, "status": "accepted" })).into_response(),
                _ => Json(json!({ "ids": ids, "status": "accepted" })).into_response(),
            }
        }
    }
}
