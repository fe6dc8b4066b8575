//! The agent side of the HTTP API: agent management and presence, the live stream
//! (Server-Sent Events), offers (accept, decline), the contact's life cycle (transfer,
//! wrap-up, close), queue and agent snapshots, and bearer-token auth.
//!
//! Auth: the admin token (`auth.admin_token`) reaches everything; an agent's token reaches
//! only that agent's stream, presence, offers and contacts. No token: 401; a token that
//! may not do this: 403. Tokens are compared as SHA-256 digests in constant time.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router as Http};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_core::{
    AgentId, AgentProfile, Caps, Channel, ContactState, EngineError, Event, OfferId, Presence,
    TeamId, TransferTarget,
};
use tokio_stream::wrappers::BroadcastStream;

use crate::api::AppState;
use crate::router::{Router, now};
use switchboard_store::AuditRow;

/// What the agent API keeps about an agent beside the engine's profile (persisted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSettings {
    /// Hex SHA-256 of the agent's bearer token.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Where the agent's events are POSTed.
    #[serde(default)]
    pub webhook: Option<String>,
    /// Offers are accepted at once (for tools that cannot accept).
    #[serde(default)]
    pub auto_accept: bool,
    /// Where voice calls are put through when the agent accepts: `client:<name>`, a
    /// `+E.164` number, or a `sip:` URI.
    #[serde(default)]
    pub dial: Option<String>,
}

/// The hex SHA-256 of a token.
pub fn token_digest(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The agent routes (merged into the API).
pub fn routes() -> Http<AppState> {
    Http::new()
        .route("/v1/agents", get(list_agents))
        .route("/v1/agents/{name}", put(upsert_agent).get(get_agent))
        .route("/v1/agents/{name}/presence", put(set_presence))
        .route("/v1/agents/{name}/stream", get(stream))
        .route("/v1/offers/{offer}/accept", post(accept))
        .route("/v1/offers/{offer}/decline", post(decline))
        .route("/v1/contacts/{id}/transfer", post(transfer))
        .route("/v1/contacts/{id}/wrap-up", post(wrap_up))
        .route("/v1/contacts/{id}/close", post(close))
        .route("/v1/contacts/{id}/reply", post(reply))
        .route("/v1/queues", get(queues))
}

fn error(status: StatusCode, error: &str, detail: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": error, "problem": detail.into() })),
    )
        .into_response()
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    Admin,
    Agent(String),
}

impl Caller {
    fn may_act_for(&self, agent: &str) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Agent(name) => name == agent,
        }
    }
}

/// Identifies the caller from `Authorization: Bearer …`. With no admin token configured,
/// auth is off and every caller is admin.
fn caller(s: &AppState, router: &Router, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
    let admin = &s.loaded.config.auth.admin_token;
    if admin.is_empty() {
        return Ok(Caller::Admin);
    }
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer <token>",
        )));
    };
    let presented = token_digest(token);
    let same = |digest: &str| bool::from(presented.as_bytes().ct_eq(digest.as_bytes()));
    if same(&token_digest(admin)) {
        return Ok(Caller::Admin);
    }
    let agent = router
        .settings
        .iter()
        .find(|(_, settings)| settings.token_sha256.as_deref().is_some_and(same));
    match agent {
        Some((name, _)) => Ok(Caller::Agent(name.clone())),
        None => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the token is not known",
        ))),
    }
}

/// Lets the call through if the caller is the admin, or (with `agent`) that agent.
fn authorize(
    s: &AppState,
    router: &Router,
    headers: &HeaderMap,
    agent: Option<&str>,
) -> Result<(), Box<Response>> {
    let who = caller(s, router, headers)?;
    if agent.is_some_and(|a| who.may_act_for(a)) || who == Caller::Admin {
        Ok(())
    } else {
        Err(Box::new(forbidden()))
    }
}

fn forbidden() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "forbidden",
        "this token may not do that",
    )
}

fn engine_error(e: EngineError) -> Response {
    let status = match &e {
        EngineError::UnknownContact(_)
        | EngineError::UnknownAgent(_)
        | EngineError::UnknownQueue(_) => StatusCode::NOT_FOUND,
        EngineError::OfferNotForAgent { .. } => StatusCode::FORBIDDEN,
        EngineError::OfferNotPending(_)
        | EngineError::InvalidState { .. }
        | EngineError::AgentUnavailable(_)
        | EngineError::TransferToOwner { .. }
        | EngineError::ConversationOpen { .. }
        | EngineError::DuplicateContact(_) => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, "refused", e.to_string())
}

/// Applies agent-API commands, persists what they decided, delivers the events. Only the
/// leading router writes: a standby answers 503.
async fn command(
    s: &AppState,
    router: &mut Router,
    events: Vec<Event>,
    settings: Vec<(String, String)>,
) -> Result<(), Response> {
    if !s.leading.load(Ordering::Acquire) {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "standby",
            "this router stands by; send agent commands to the leader",
        ));
    }
    let (mut batch, decisions, refused) = router.command(now(), events);
    batch.agent_settings = settings;
    let started = std::time::Instant::now();
    if !batch.is_empty()
        && let Err(e) = s.store.commit(&batch).await
    {
        // The engine moved ahead of the store: go back to what the store holds.
        if let Ok(state) = s.store.load().await
            && let Ok((fresh, _)) = Router::restore(&s.loaded, state)
        {
            *router = fresh;
        }
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store unavailable",
            e.to_string(),
        ));
    }
    s.metrics.committed("agent", started, &mut router.pending);
    s.hub.publish(router, &decisions, &[]);
    match refused {
        Some(e) => Err(engine_error(e)),
        None => Ok(()),
    }
}

/// `PUT /v1/agents/{name}`: what an agent is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentBody {
    #[serde(default)]
    teams: Vec<String>,
    #[serde(default)]
    skills: BTreeMap<String, u8>,
    #[serde(default)]
    caps: BTreeMap<String, u16>,
    total_cap: Option<u16>,
    /// A new token for the agent (stored as its SHA-256).
    token: Option<String>,
    /// Where to POST the agent's events; `""` removes it.
    webhook: Option<String>,
    /// Accept the agent's offers at once.
    auto_accept: Option<bool>,
    /// Where accepted voice calls are put through; `""` removes it.
    dial: Option<String>,
}

async fn upsert_agent(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<AgentBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let mut router = s.router.lock().await;
    if let Err(r) = authorize(&s, &router, &headers, None) {
        return *r;
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid agent", e.body_text()),
    };
    if name.trim().is_empty() || name.len() > 128 {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid agent",
            "name must be 1 to 128 bytes",
        );
    }
    let mut skills = Vec::new();
    for (skill, p) in &body.skills {
        if !(1..=10).contains(p) {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid agent",
                format!("skills.{skill}: proficiency {p} is outside 1..=10"),
            );
        }
        match router.names.skill(skill) {
            Ok(id) => skills.push((id, *p)),
            Err(e) => return error(StatusCode::BAD_REQUEST, "invalid agent", e.to_string()),
        }
    }
    let mut caps = Caps::default();
    for (channel, n) in &body.caps {
        let Some(c) = Channel::parse(channel) else {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid agent",
                format!("caps.{channel}: unknown channel"),
            );
        };
        caps.per_channel[c.index()] = *n;
    }
    caps.total = body.total_cap;
    let teams = match router.names.team_set(&body.teams) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid agent", e.to_string()),
    };
    let agent = match router.names.agent(&name) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid agent", e.to_string()),
    };
    let mut settings = Vec::new();
    if let Some(token) = &body.token
        && token.len() < 16
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid agent",
            "token: at least 16 characters",
        );
    }
    if let Some(url) = body.webhook.as_deref().filter(|u| !u.is_empty())
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid agent",
            "webhook: an http:// or https:// URL",
        );
    }
    if let Some(dial) = body.dial.as_deref().filter(|d| !d.is_empty())
        && let Err(reason) = crate::voice::dial_target(dial)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid agent",
            format!("dial: {reason}"),
        );
    }
    if body.token.is_some()
        || body.webhook.is_some()
        || body.auto_accept.is_some()
        || body.dial.is_some()
    {
        let entry = router.settings.entry(name.clone()).or_default();
        if let Some(token) = &body.token {
            entry.token_sha256 = Some(token_digest(token));
        }
        if let Some(url) = &body.webhook {
            entry.webhook = (!url.is_empty()).then(|| url.clone());
        }
        if let Some(auto) = body.auto_accept {
            entry.auto_accept = auto;
        }
        if let Some(dial) = &body.dial {
            entry.dial = (!dial.is_empty()).then(|| dial.clone());
        }
        settings.push((
            name.clone(),
            serde_json::to_string(entry).unwrap_or_default(),
        ));
    }
    let profile = AgentProfile {
        teams,
        skills,
        caps,
    };
    let event = Event::UpsertAgent { agent, profile };
    if let Err(r) = command(&s, &mut router, vec![event], settings).await {
        return r;
    }
    Json(agent_json(&router, agent)).into_response()
}

fn agent_json(router: &Router, agent: AgentId) -> Value {
    let Some(a) = router.engine.agent(agent) else {
        return Value::Null;
    };
    let names = &router.names;
    let load: BTreeMap<&str, u16> = Channel::ALL
        .iter()
        .filter(|c| a.caps().get(**c) > 0 || a.load(**c) > 0)
        .map(|c| (c.as_str(), a.load(*c)))
        .collect();
    let caps: BTreeMap<&str, u16> = Channel::ALL
        .iter()
        .filter(|c| a.caps().get(**c) > 0)
        .map(|c| (c.as_str(), a.caps().get(*c)))
        .collect();
    let skills: BTreeMap<String, u8> = a
        .proficiency()
        .iter()
        .filter_map(|(s, p)| names.skills.name(s.0 as usize).map(|n| (n.to_owned(), *p)))
        .collect();
    json!({
        "name": names.agent_name(agent),
        "presence": a.presence(),
        "teams": names.team_names(a.teams()),
        "skills": skills,
        "caps": caps,
        "total_cap": a.caps().total,
        "load": load,
        "load_ratio": f64::from(a.load_ppm()) / 1e6,
        "idle_since": a.idle_since().as_millis(),
    })
}

async fn get_agent(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let router = s.router.lock().await;
    if let Err(r) = authorize(&s, &router, &headers, Some(&name)) {
        return *r;
    }
    match router.names.agents.get(&name) {
        Some(id) => Json(agent_json(&router, AgentId(id as u32))).into_response(),
        None => error(StatusCode::NOT_FOUND, "unknown agent", name),
    }
}

async fn list_agents(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let router = s.router.lock().await;
    if let Err(r) = authorize(&s, &router, &headers, None) {
        return *r;
    }
    let mut ids: Vec<AgentId> = router.engine.agents().map(|a| a.id()).collect();
    ids.sort();
    let agents: Vec<Value> = ids.into_iter().map(|a| agent_json(&router, a)).collect();
    Json(json!({ "agents": agents })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceBody {
    presence: Presence,
}

async fn set_presence(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<PresenceBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let mut router = s.router.lock().await;
    if let Err(r) = authorize(&s, &router, &headers, Some(&name)) {
        return *r;
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid presence",
                format!(
                    "{}; expected {{\"presence\": \"available\" | \"away\" | \"offline\"}}",
                    e.body_text()
                ),
            );
        }
    };
    let Some(id) = router.names.agents.get(&name) else {
        return error(StatusCode::NOT_FOUND, "unknown agent", name);
    };
    let agent = AgentId(id as u32);
    let event = Event::SetPresence {
        agent,
        presence: body.presence,
    };
    if let Err(r) = command(&s, &mut router, vec![event], Vec::new()).await {
        return r;
    }
    Json(agent_json(&router, agent)).into_response()
}

/// `GET /v1/agents/{name}/stream`: Server-Sent Events. A stream that cannot resume from
/// `Last-Event-ID` starts with a `snapshot` event (presence, pending offers, open
/// contacts); then every event of the agent's feed, each with its id.
async fn stream(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let router = s.router.lock().await;
    if let Err(r) = authorize(&s, &router, &headers, Some(&name)) {
        return *r;
    }
    let Some(id) = router.names.agents.get(&name) else {
        return error(StatusCode::NOT_FOUND, "unknown agent", name);
    };
    let agent = AgentId(id as u32);
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Under the router lock: nothing is published between the snapshot and the
    // subscription, so the stream misses nothing and repeats nothing.
    let sub = s.hub.subscribe(agent, last.as_deref());
    let first = sub.resync.then(|| {
        SseEvent::default()
            .event("snapshot")
            .data(crate::hub::snapshot(&router, agent).to_string())
    });
    drop(router);
    let to_sse =
        |e: crate::hub::FeedEvent| SseEvent::default().id(e.id).event(e.kind).data(&*e.data);
    let missed = sub.missed.into_iter().map(to_sse);
    // A stream that falls too far behind ends; its client reconnects and resyncs.
    let live = BroadcastStream::new(sub.live)
        .take_while(|e| std::future::ready(e.is_ok()))
        .filter_map(move |e| std::future::ready(e.ok().map(to_sse)));
    // Streams end at shutdown, so the server drains instead of waiting out its grace.
    let events = futures_util::stream::iter(first.into_iter().chain(missed))
        .chain(live)
        .take_until(s.shutdown.clone().cancelled_owned())
        .map(Ok::<_, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The agent an offer was made to, if pending.
fn offer_agent(router: &Router, offer: u64) -> Option<AgentId> {
    router
        .engine
        .offer(OfferId(offer))
        .map(|(_, agent, _)| agent)
}

async fn answer(s: AppState, offer: u64, headers: HeaderMap, accept: bool) -> Response {
    let mut router = s.router.lock().await;
    let who = match caller(&s, &router, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(agent) = offer_agent(&router, offer) else {
        return error(
            StatusCode::CONFLICT,
            "refused",
            format!("offer {offer} is not pending: accepted, declined, expired or withdrawn"),
        );
    };
    let name = router
        .names
        .agent_name(agent)
        .unwrap_or_default()
        .to_owned();
    if !who.may_act_for(&name) {
        return forbidden();
    }
    let offer = OfferId(offer);
    let event = if accept {
        Event::Accept { offer, agent }
    } else {
        Event::Decline { offer, agent }
    };
    if let Err(r) = command(&s, &mut router, vec![event], Vec::new()).await {
        return r;
    }
    Json(json!({ "offer": offer.0, "status": if accept { "accepted" } else { "declined" } }))
        .into_response()
}

async fn accept(State(s): State<AppState>, Path(offer): Path<u64>, headers: HeaderMap) -> Response {
    answer(s, offer, headers, true).await
}

async fn decline(
    State(s): State<AppState>,
    Path(offer): Path<u64>,
    headers: HeaderMap,
) -> Response {
    answer(s, offer, headers, false).await
}

/// Resolves a contact's public id and checks the caller may act on it: the admin, or the
/// agent holding it.
fn owned_contact(
    s: &AppState,
    router: &Router,
    headers: &HeaderMap,
    id: &str,
) -> Result<switchboard_core::ContactId, Box<Response>> {
    let who = caller(s, router, headers)?;
    let Some(contact) = router.by_public.get(id).copied() else {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "unknown contact",
            format!("no open contact {id:?}"),
        )));
    };
    if who != Caller::Admin {
        let holder = router
            .engine
            .contact(contact)
            .and_then(|c| c.state().agent())
            .and_then(|a| router.names.agent_name(a));
        if !holder.is_some_and(|h| who.may_act_for(h)) {
            return Err(Box::new(forbidden()));
        }
    }
    Ok(contact)
}

/// `POST /v1/contacts/{id}/transfer`: `{"agent": name}`, `{"team": name}` or
/// `{"skills": [..]}`.
async fn transfer(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<HashMap<String, Value>>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let mut router = s.router.lock().await;
    let contact = match owned_contact(&s, &router, &headers, &id) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Ok(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid transfer",
            "expected {\"agent\": name}, {\"team\": name} or {\"skills\": [names]}",
        );
    };
    let to = match (body.get("agent"), body.get("team"), body.get("skills")) {
        (Some(Value::String(a)), None, None) => match router.names.agents.get(a) {
            Some(i) => TransferTarget::Agent(AgentId(i as u32)),
            None => return error(StatusCode::NOT_FOUND, "unknown agent", a.clone()),
        },
        (None, Some(Value::String(t)), None) => match router.names.teams.get(t) {
            Some(i) => TransferTarget::Team(TeamId(i as u8)),
            None => return error(StatusCode::NOT_FOUND, "unknown team", t.clone()),
        },
        (None, None, Some(Value::Array(items))) => {
            let names: Vec<String> = items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            if names.len() != items.len() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid transfer",
                    "skills: strings only",
                );
            }
            match router.names.skill_set(&names) {
                Ok(set) => TransferTarget::Skills(set),
                Err(e) => return error(StatusCode::BAD_REQUEST, "invalid transfer", e.to_string()),
            }
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid transfer",
                "give exactly one of agent, team, skills",
            );
        }
    };
    if let Err(r) = command(
        &s,
        &mut router,
        vec![Event::Transfer { contact, to }],
        Vec::new(),
    )
    .await
    {
        return r;
    }
    Json(json!({ "contact": id, "status": "transferred" })).into_response()
}

async fn lifecycle(s: AppState, id: String, headers: HeaderMap, wrap: bool) -> Response {
    let mut router = s.router.lock().await;
    let contact = match owned_contact(&s, &router, &headers, &id) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let event = if wrap {
        Event::WrapUp { contact }
    } else {
        Event::Close { contact }
    };
    if let Err(r) = command(&s, &mut router, vec![event], Vec::new()).await {
        return r;
    }
    let state = router
        .engine
        .contact(contact)
        .map_or("closed", |c| c.state().as_str());
    Json(json!({ "contact": id, "state": state })).into_response()
}

async fn wrap_up(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    lifecycle(s, id, headers, true).await
}

async fn close(State(s): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    lifecycle(s, id, headers, false).await
}

/// `POST /v1/contacts/{id}/reply`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyBody {
    /// The reply's text.
    text: String,
}

/// `POST /v1/contacts/{id}/reply`: the owner answers an email contact. The reply goes out
/// from the contact's mailbox, threaded under the customer's message; it is recorded on
/// the conversation (the audit log) only once the SMTP server accepted it, and the owner
/// keeps the contact. A refusal answers 502 with the server's reason.
async fn reply(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<ReplyBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid reply", e.body_text()),
    };
    if body.text.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "invalid reply", "text: empty");
    }
    if !s.leading.load(Ordering::Acquire) {
        // A standby's view of who owns what is not current: nothing is sent from it.
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "standby",
            "this router stands by; send replies to the leader",
        );
    }
    let (contact, meta) = {
        let router = s.router.lock().await;
        let contact = match owned_contact(&s, &router, &headers, &id) {
            Ok(c) => c,
            Err(r) => return *r,
        };
        let owned = router.engine.contact(contact).is_some_and(|c| {
            matches!(
                c.state(),
                ContactState::Assigned { .. } | ContactState::WrapUp { .. }
            )
        });
        let Some(meta) = router.open.get(&contact).cloned() else {
            return error(
                StatusCode::NOT_FOUND,
                "unknown contact",
                format!("no open contact {id:?}"),
            );
        };
        if !owned {
            return error(
                StatusCode::CONFLICT,
                "cannot reply",
                "only the agent who accepted the contact replies to it",
            );
        }
        if meta.channel != Channel::Email {
            return error(
                StatusCode::CONFLICT,
                "cannot reply",
                format!(
                    "{} contacts are answered in their own channel",
                    meta.channel
                ),
            );
        }
        (contact, meta)
    };
    // Sent without the router's lock: an SMTP server may take seconds.
    let (message_id, to) = match crate::email::reply(&s, &meta, &body.text).await {
        Ok(sent) => sent,
        Err(response) => return *response,
    };
    let mut router = s.router.lock().await;
    let agent = router
        .engine
        .contact(contact)
        .and_then(|c| c.state().agent());
    let recorded = record(
        &s,
        &mut router,
        AuditRow {
            seq: 0,
            at: now().as_millis() as i64,
            contact_seq: Some(contact.0 as i64),
            agent: agent.map(|a| i64::from(a.0)),
            kind: "reply_sent".into(),
            detail: json!({ "message_id": message_id, "to": to, "text": body.text }).to_string(),
        },
    )
    .await;
    Json(json!({ "contact": id, "message_id": message_id, "to": to, "recorded": recorded }))
        .into_response()
}

/// Persists an audit row about something done outside the engine (a reply sent), under
/// the router's lock so it lands in order with the router's own commits. Only the leader
/// writes; a failure is logged and reported as `false`.
async fn record(s: &AppState, _router: &mut Router, row: AuditRow) -> bool {
    if !s.leading.load(Ordering::Acquire) {
        tracing::warn!(kind = %row.kind, "not recorded: this router stands by");
        return false;
    }
    let batch = switchboard_store::Batch {
        audit: vec![row],
        ..Default::default()
    };
    match s.store.commit(&batch).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "a sent reply was not recorded");
            false
        }
    }
}

/// `GET /v1/queues`: per queue, waiting contacts, the oldest wait, and agents available
/// and at a cap for the queue's teams.
async fn queues(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let router = s.router.lock().await;
    if let Err(r) = authorize(&s, &router, &headers, None) {
        return *r;
    }
    let t = now();
    let policy = router.engine.policy();
    let mut waiting = vec![0usize; policy.queues.len()];
    let mut oldest = vec![None::<u64>; policy.queues.len()];
    for c in router.engine.contacts() {
        if c.state() == ContactState::Waiting {
            let q = c.queue().0 as usize;
            waiting[q] += 1;
            let wait = t.since(c.arrived_at()).as_millis() as u64;
            oldest[q] = Some(oldest[q].map_or(wait, |o| o.max(wait)));
        }
    }
    let list: Vec<Value> = policy
        .queues
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let serves = |a: &switchboard_core::Agent| q.teams.admits(a.teams());
            let available: Vec<&switchboard_core::Agent> = router
                .engine
                .agents()
                .filter(|a| serves(a) && a.presence() == Presence::Available)
                .collect();
            let free = available
                .iter()
                .filter(|a| {
                    Channel::ALL
                        .iter()
                        .any(|c| router.engine.is_free(a.id(), *c))
                })
                .count();
            json!({
                "queue": q.name,
                "waiting": waiting[i],
                "oldest_wait_seconds": oldest[i].map(|ms| ms as f64 / 1000.0),
                "agents_available": available.len(),
                "agents_at_cap": available.len() - free,
            })
        })
        .collect();
    Json(json!({ "queues": list })).into_response()
}
