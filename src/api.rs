//! The HTTP API: health and readiness, the ingest endpoint for custom sources, and the
//! contact view with the engine's explanation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router as Http};
use serde_json::{Map, Value, json};
use switchboard_bus::{Bus, Envelope, InboundMessage, MAX_ID_LEN};
use switchboard_core::{
    AssignExplanation, Channel, ContactState, Route, Urgency, WaitKind, WaitReason,
};
use switchboard_store::Store;
use tokio::sync::{Mutex, Semaphore};
use tracing::warn;

use crate::config::Loaded;
use crate::names::Registry;
use crate::router::{Router, now};

/// Namespace of ids derived from idempotency keys (UUID v5), fixed forever.
const IDEMPOTENCY_NAMESPACE: uuid::Uuid = uuid::uuid!("5b0e2f4e-4d0c-4a53-9a8f-6c1f3f0b7d21");

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub router: Arc<Mutex<Router>>,
    pub bus: Arc<dyn Bus>,
    pub store: Arc<dyn Store>,
    pub loaded: Arc<Loaded>,
    pub ingest_slots: Arc<Semaphore>,
    /// Set once state is loaded and the router runs.
    pub ready: Arc<AtomicBool>,
    /// Whether this process's router leads or stands by.
    pub leading: Arc<AtomicBool>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Agents' live feeds.
    pub hub: Arc<crate::hub::Hub>,
    /// Cancelled at shutdown: live streams end so the server can drain.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Each mailbox's SMTP sender (acknowledgements, agent replies), by mailbox name.
    pub senders: Arc<std::collections::HashMap<String, Arc<switchboard_channel_email::Sender>>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// The routes.
pub fn routes(state: AppState) -> Http {
    let limit = state.loaded.config.server.max_body_bytes;
    Http::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::scrape))
        .route("/v1/contacts", post(ingest))
        .route("/v1/contacts/{id}", get(contact))
        .merge(crate::agents::routes())
        .merge(crate::channels::routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// A JSON error: `{"error": "...", "field": "...", "problem": "..."}`.
pub(crate) fn problem(
    status: StatusCode,
    error: &str,
    field: Option<&str>,
    detail: String,
) -> Response {
    let mut body = json!({ "error": error, "problem": detail });
    if let Some(f) = field {
        body["field"] = json!(f);
    }
    (status, Json(body)).into_response()
}

/// Why a posted contact was refused (always a 400).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rejection {
    error: &'static str,
    field: Option<String>,
    detail: String,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        problem(
            StatusCode::BAD_REQUEST,
            self.error,
            self.field.as_deref(),
            self.detail,
        )
    }
}

fn bad_field(field: &str, detail: impl Into<String>) -> Rejection {
    Rejection {
        error: "invalid contact",
        field: Some(field.to_owned()),
        detail: detail.into(),
    }
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(s): State<AppState>) -> Response {
    let loaded = s.ready.load(Ordering::Acquire);
    let bus = s.bus.health().await.map_err(|e| e.to_string());
    let store = s.store.health().await.map_err(|e| e.to_string());
    let role = if s.leading.load(Ordering::Acquire) {
        "leader"
    } else {
        "standby"
    };
    let body = json!({
        "state_loaded": loaded,
        "router": role,
        "bus": bus.as_ref().err().map_or("ok", String::as_str),
        "store": store.as_ref().err().map_or("ok", String::as_str),
    });
    let status = if loaded && bus.is_ok() && store.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// A contact posted to the ingest endpoint, checked field by field.
#[derive(Debug)]
struct Posted {
    channel: Channel,
    conversation: String,
    customer: String,
    summary: String,
    body: Option<String>,
    urgency: Option<Urgency>,
    skills: Vec<String>,
    attributes: BTreeMap<String, Value>,
    idempotency_key: Option<String>,
}

const FIELDS: &[&str] = &[
    "channel",
    "conversation",
    "customer",
    "summary",
    "body",
    "urgency",
    "skills",
    "attributes",
    "idempotency_key",
];

fn parse_posted(bytes: &[u8]) -> Result<Posted, Rejection> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Rejection {
        error: "malformed JSON",
        field: None,
        detail: e.to_string(),
    })?;
    let Value::Object(obj) = value else {
        return Err(Rejection {
            error: "invalid contact",
            field: None,
            detail: "the body must be a JSON object".into(),
        });
    };
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(bad_field(
            unknown,
            format!("unknown field; known fields: {}", FIELDS.join(", ")),
        ));
    }
    let text = |field: &str, required: bool, max: usize| -> Result<Option<String>, Rejection> {
        match obj.get(field) {
            None | Some(Value::Null) if required => Err(bad_field(field, "is required")),
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if required && s.trim().is_empty() => {
                Err(bad_field(field, "must not be empty"))
            }
            Some(Value::String(s)) if s.len() > max => Err(bad_field(
                field,
                format!("is {} bytes; at most {max}", s.len()),
            )),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad_field(
                field,
                format!("must be a string, not {}", kind(other)),
            )),
        }
    };
    let channel_name = text("channel", true, 32)?.unwrap_or_default();
    let channel = Channel::parse(&channel_name).ok_or_else(|| {
        let known: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
        bad_field(
            "channel",
            format!(
                "unknown channel {channel_name:?}; known channels: {}",
                known.join(", ")
            ),
        )
    })?;
    let urgency = match text("urgency", false, 32)? {
        None => None,
        Some(u) => Some(
            Urgency::ALL
                .into_iter()
                .find(|x| x.as_str() == u)
                .ok_or_else(|| {
                    bad_field(
                        "urgency",
                        format!("unknown urgency {u:?}; known: low, normal, high, urgent"),
                    )
                })?,
        ),
    };
    let skills = match obj.get("skills") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut skills = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if !s.trim().is_empty() && s.len() <= 64 => {
                        skills.push(s.clone())
                    }
                    _ => {
                        return Err(bad_field(
                            &format!("skills[{i}]"),
                            "must be a non-empty string of at most 64 bytes",
                        ));
                    }
                }
            }
            skills
        }
        Some(other) => {
            return Err(bad_field(
                "skills",
                format!("must be an array of strings, not {}", kind(other)),
            ));
        }
    };
    let attributes = match obj.get("attributes") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => map.clone().into_iter().collect(),
        Some(other) => {
            return Err(bad_field(
                "attributes",
                format!("must be an object, not {}", kind(other)),
            ));
        }
    };
    let idempotency_key = text("idempotency_key", false, 200)?;
    if idempotency_key.as_deref().is_some_and(str::is_empty) {
        return Err(bad_field("idempotency_key", "must not be empty"));
    }
    Ok(Posted {
        channel,
        conversation: text("conversation", true, 512)?.unwrap_or_default(),
        customer: text("customer", true, 512)?.unwrap_or_default(),
        summary: text("summary", true, 2048)?.unwrap_or_default(),
        body: text("body", false, usize::MAX)?,
        urgency,
        skills,
        attributes,
        idempotency_key,
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `POST /v1/contacts`: answers 202 with the contact's id once the bus confirmed it.
async fn ingest(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let bytes = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            let (error, reason) = if status == StatusCode::PAYLOAD_TOO_LARGE {
                ("body too large", "body_too_large")
            } else {
                ("unreadable body", "unreadable_body")
            };
            s.metrics.ingest_rejected(reason);
            return problem(
                status,
                error,
                None,
                format!(
                    "{}; the limit is {} bytes",
                    rejection.body_text(),
                    s.loaded.config.server.max_body_bytes
                ),
            );
        }
    };
    let posted = match parse_posted(&bytes) {
        Ok(p) => p,
        Err(rejection) => {
            s.metrics
                .ingest_rejected(if rejection.error == "malformed JSON" {
                    "malformed_json"
                } else {
                    "invalid_field"
                });
            return rejection.into_response();
        }
    };
    let id = match &posted.idempotency_key {
        // The same key always gives the same id, so a retry is deduplicated by the router.
        Some(key) => uuid::Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, key.as_bytes()).to_string(),
        None => uuid::Uuid::now_v7().to_string(),
    };
    debug_assert!(id.len() <= MAX_ID_LEN);
    let envelope = Envelope::new(
        id.clone(),
        now(),
        InboundMessage {
            source: "api".into(),
            channel: posted.channel,
            conversation: posted.conversation,
            customer: posted.customer,
            summary: posted.summary,
            body: posted.body,
            urgency: posted.urgency,
            skills: posted.skills,
            attributes: posted.attributes,
        },
    );
    let Ok(_slot) = s.ingest_slots.acquire().await else {
        s.metrics.ingest_rejected("shutting_down");
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down",
            None,
            "the server is stopping; retry elsewhere".into(),
        );
    };
    match publish(&s, &envelope).await {
        Ok(()) => {
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&format!("/v1/contacts/{id}")) {
                headers.insert(header::LOCATION, v);
            }
            (
                StatusCode::ACCEPTED,
                headers,
                Json(json!({ "id": id, "status": "accepted" })),
            )
                .into_response()
        }
        Err(response) => *response,
    }
}

/// Publishes an inbound message and waits for the bus's confirm, counting the outcome.
/// On failure the answer is a 503 that tells the source to retry (with the same id).
pub async fn publish(s: &AppState, envelope: &Envelope) -> Result<(), Box<Response>> {
    let timeout = s.loaded.config.bus.publish_timeout;
    let started = std::time::Instant::now();
    let published = tokio::time::timeout(timeout, s.bus.publish(envelope)).await;
    s.metrics.published(
        match &published {
            Ok(Ok(())) => "confirmed",
            Ok(Err(_)) => "failed",
            Err(_) => "timeout",
        },
        started.elapsed(),
    );
    match published {
        Ok(Ok(())) => {
            s.metrics.ingest_accepted(envelope.message.channel);
            Ok(())
        }
        failed => {
            let reason = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no confirm within {timeout:?}"),
            };
            warn!(message = %envelope.id, %reason, "inbound message not confirmed by the bus");
            s.metrics.ingest_rejected("bus_unavailable");
            let mut response = problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "bus unavailable",
                None,
                format!("{reason}; nothing was accepted, retry with the same id"),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Err(Box::new(response))
        }
    }
}

/// `GET /v1/contacts/{id}`: state, owner, queue position and the latest explanation.
async fn contact(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    {
        let router = s.router.lock().await;
        if let Some(view) = live_view(&router, &id) {
            return Json(view).into_response();
        }
    }
    let record = match s.store.contact(&id).await {
        Ok(Some(r)) => Some(r),
        Ok(None) => match s.store.contact_of_message(&id).await {
            Ok(Some(contact)) => {
                let router = s.router.lock().await;
                if let Some(mut view) = live_view(&router, &contact) {
                    view["message"] = json!(id);
                    return Json(view).into_response();
                }
                drop(router);
                match s.store.contact(&contact).await {
                    Ok(r) => r,
                    Err(e) => return store_failed(e),
                }
            }
            Ok(None) => None,
            Err(e) => return store_failed(e),
        },
        Err(e) => return store_failed(e),
    };
    if record.is_none() {
        match s.store.message(&id).await {
            Ok(Some(m)) if m.outcome == "dead_lettered" => {
                return Json(json!({
                    "id": id,
                    "state": "dead_lettered",
                    "reason": m.reason,
                    "received_at": m.received_at,
                }))
                .into_response();
            }
            Ok(_) => {}
            Err(e) => return store_failed(e),
        }
    }
    let Some(r) = record else {
        return problem(
            StatusCode::NOT_FOUND,
            "unknown contact",
            None,
            format!(
                "no contact or message {id:?}; a contact accepted moments ago may still be on its way to the router"
            ),
        );
    };
    let router = s.router.lock().await;
    let agent = r
        .agent
        .and_then(|a| router.names.agent_name(switchboard_core::AgentId(a as u32)))
        .map(str::to_owned);
    Json(json!({
        "id": r.id,
        "state": r.state,
        "channel": r.channel,
        "queue": r.queue,
        "conversation": r.conversation,
        "owner": agent,
        "arrived_at": r.arrived_at,
        "ended_at": r.ended_at,
        "end_reason": r.end_reason,
    }))
    .into_response()
}

fn store_failed(e: switchboard_store::StoreError) -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "store unavailable",
        None,
        e.to_string(),
    )
}

/// The view of an open contact, from the engine.
fn live_view(router: &Router, public_id: &str) -> Option<Value> {
    let id = *router.by_public.get(public_id)?;
    let c = router.engine.contact(id)?;
    let meta = router.open.get(&id)?;
    let names = &router.names;
    let agent_name = |a| names.agent_name(a).map(str::to_owned);
    let (owner, offered_to) = match c.state() {
        ContactState::Offered { agent, .. } => (None, agent_name(agent)),
        ContactState::Assigned { agent } | ContactState::WrapUp { agent, .. } => {
            (agent_name(agent), None)
        }
        ContactState::Waiting => (None, None),
    };
    let mut view = json!({
        "id": public_id,
        "state": c.state().as_str(),
        "channel": c.channel(),
        "urgency": c.urgency(),
        "queue": meta.queue,
        "conversation": meta.conversation,
        "skills": names.skill_names(c.required()),
        "preferred_skills": names.skill_names(c.preferred()),
        "arrived_at": c.arrived_at().as_millis(),
        "deadline": c.deadline().as_millis(),
        "owner": owner,
        "offered_to": offered_to,
        "attributes": serde_json::from_str::<Value>(&meta.attributes).ok(),
    });
    if c.state() == ContactState::Waiting {
        match router.engine.expected_wait(id) {
            Some(w) => {
                view["position"] = json!(w.position);
                view["expected_wait_seconds"] =
                    json!(w.estimate.map(crate::channels::wait_seconds));
            }
            None => view["position"] = json!(router.engine.position(id)),
        }
        if let Some(reason) = router.engine.wait_reason(id) {
            view["waiting_because"] = wait_json(names, &reason);
        }
    }
    if let Some(e) = &meta.last_offer {
        view["explanation"] = offer_json(names, e);
    }
    Some(view)
}

fn wait_json(names: &Registry, r: &WaitReason) -> Value {
    let agent = |a| names.agent_name(a).map(str::to_owned);
    let mut v = match &r.kind {
        WaitKind::ReservedFor { agent: a, until } => json!({
            "reason": "reserved_for_agent", "agent": agent(*a), "until": until.map(|t| t.as_millis()),
            "text": format!("reserved for {} (returning customer or transfer)", agent(*a).unwrap_or_default()),
        }),
        WaitKind::NoAgentWithSkills { missing } => json!({
            "reason": "no_agent_with_skills", "skills": names.skill_names(*missing),
            "text": format!("no agent has skill {}", names.skill_names(*missing).join(", ")),
        }),
        WaitKind::NoAgentInTeams { teams, channel } => json!({
            "reason": "no_agent_in_teams", "teams": names.team_names(*teams), "channel": channel,
            "text": format!("no agent with these skills serves {channel} in the admitted teams"),
        }),
        WaitKind::NoAgentAvailable {
            matching,
            unavailable_skills,
        } => json!({
            "reason": "no_agent_available", "matching_agents": matching,
            "skills_without_available_agent": names.skill_names(*unavailable_skills),
            "text": format!("{matching} matching agents, none available"),
        }),
        WaitKind::AllAtCapacity { available } => json!({
            "reason": "all_at_capacity", "available_agents": available,
            "text": format!("all {available} available matching agents are at a cap"),
        }),
        WaitKind::AllDeclined { free } => json!({
            "reason": "all_declined", "free_agents": free,
            "text": format!("the {free} free matching agents declined or missed it"),
        }),
    };
    v["relaxes_at"] = json!(r.relaxes_at.map(|t| t.as_millis()));
    v
}

fn offer_json(names: &Registry, e: &AssignExplanation) -> Value {
    let candidate = |c: &switchboard_core::Candidate| {
        json!({
            "agent": names.agent_name(c.agent),
            "proficiency": c.proficiency,
            "load_ratio": f64::from(c.load_ppm) / 1e6,
            "idle_since": c.idle_since.as_millis(),
        })
    };
    let mut route = Map::new();
    match e.route {
        Route::Skills { skills, teams } => {
            route.insert("skills".into(), json!(names.skill_names(skills)));
            route.insert("teams".into(), json!(names.team_names(teams)));
        }
        Route::Reserved => {
            route.insert("reserved".into(), json!(true));
        }
    }
    json!({
        "route": route,
        "eligible_agents": e.eligible,
        "winner": candidate(&e.winner),
        "runners_up": e.runners_up.iter().map(candidate).collect::<Vec<_>>(),
        "decided_by": e.decided_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_contact_parses() {
        let p = parse_posted(
            br#"{"channel":"chat","conversation":"s1","customer":"c1","summary":"hi","skills":["billing"],"urgency":"high","attributes":{"tier":"gold"},"idempotency_key":"k"}"#,
        )
        .unwrap();
        assert_eq!(p.channel, Channel::Chat);
        assert_eq!(p.urgency, Some(Urgency::High));
        assert_eq!(p.skills, vec!["billing".to_owned()]);
        assert_eq!(p.attributes["tier"], json!("gold"));
    }

    #[test]
    fn each_bad_field_is_named() {
        for (body, field) in [
            (
                r#"{"conversation":"s","customer":"c","summary":"x"}"#,
                "channel",
            ),
            (
                r#"{"channel":"fax","conversation":"s","customer":"c","summary":"x"}"#,
                "channel",
            ),
            (
                r#"{"channel":"chat","conversation":7,"customer":"c","summary":"x"}"#,
                "conversation",
            ),
            (
                r#"{"channel":"chat","conversation":"s","customer":"","summary":"x"}"#,
                "customer",
            ),
            (
                r#"{"channel":"chat","conversation":"s","customer":"c","summary":"x","skills":"b"}"#,
                "skills",
            ),
            (
                r#"{"channel":"chat","conversation":"s","customer":"c","summary":"x","skills":[1]}"#,
                "skills[0]",
            ),
            (
                r#"{"channel":"chat","conversation":"s","customer":"c","summary":"x","urgency":"asap"}"#,
                "urgency",
            ),
            (
                r#"{"channel":"chat","conversation":"s","customer":"c","summary":"x","color":"red"}"#,
                "color",
            ),
        ] {
            let err = parse_posted(body.as_bytes()).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{body}: {err:?}");
            assert!(!err.detail.is_empty());
        }
    }

    #[test]
    fn malformed_json_and_non_objects_are_refused() {
        assert_eq!(
            parse_posted(b"{not json").unwrap_err().error,
            "malformed JSON"
        );
        let err = parse_posted(b"[1,2]").unwrap_err();
        assert_eq!((err.error, err.field), ("invalid contact", None));
    }
}
