//! The agent's side over real HTTP: an agent registers, goes available, opens the stream,
//! gets an offer, accepts, gets a follow-up, closes, and the next contact arrives; decline
//! goes to the next agent; the stream resumes from Last-Event-ID; auth on every route.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use support::{Daemon, Setup, contact};

const ADMIN: &str = "admin-secret-token-0001";
const CAROL: &str = "carol-secret-token-0001";
const DAN: &str = "dan-secret-token-000001";

/// One Server-Sent Event.
#[derive(Debug, Clone)]
struct Sse {
    id: Option<String>,
    event: String,
    data: Value,
}

/// An open event stream.
struct Stream {
    events: tokio::sync::mpsc::UnboundedReceiver<Sse>,
}

impl Stream {
    async fn open(d: &Daemon, agent: &str, token: &str, last: Option<&str>) -> Stream {
        let mut req = d
            .http
            .get(d.url(&format!("/v1/agents/{agent}/stream")))
            .bearer_auth(token)
            .timeout(Duration::from_secs(3600));
        if let Some(last) = last {
            req = req.header("last-event-id", last);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let mut body = r.bytes_stream();
        tokio::spawn(async move {
            let mut buf = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let (mut id, mut event, mut data) = (None, String::new(), String::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id:") {
                            id = Some(v.trim().to_owned());
                        } else if let Some(v) = line.strip_prefix("event:") {
                            event = v.trim().to_owned();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim());
                        }
                    }
                    if !event.is_empty() {
                        let data = serde_json::from_str(&data).unwrap_or(Value::Null);
                        if tx.send(Sse { id, event, data }).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Stream { events }
    }

    /// The next event, skipping none; fails after 10 s.
    async fn next(&mut self) -> Sse {
        tokio::time::timeout(Duration::from_secs(10), self.events.recv())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
    }

    /// The next event of this kind (others are skipped).
    async fn next_of(&mut self, kind: &str) -> Sse {
        loop {
            let e = self.next().await;
            if e.event == kind {
                return e;
            }
        }
    }
}

async fn call(
    d: &Daemon,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let url = d.url(path);
    let mut req = match method {
        "PUT" => d.http.put(url),
        "POST" => d.http.post(url),
        _ => d.http.get(url),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if !body.is_null() {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn setup(name: &str) -> Setup {
    let mut s = Setup::embedded(name);
    s.set("SWITCHBOARD__AUTH__ADMIN_TOKEN", ADMIN);
    s
}

/// Registers carol and dan (chat, cap 1 each) and sends the config's agents offline, so
/// the test controls who can take work.
async fn team(d: &Daemon) {
    d.wait_leader().await;
    for (name, token, proficiency) in [("carol", CAROL, 9), ("dan", DAN, 5)] {
        let (status, body) = call(
            d,
            "PUT",
            &format!("/v1/agents/{name}"),
            Some(ADMIN),
            json!({ "skills": { "english": proficiency }, "caps": { "chat": 1 }, "teams": ["support"], "token": token }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["presence"], "offline", "new agents start offline");
    }
    for name in ["ana", "bo"] {
        let (status, _) = call(
            d,
            "PUT",
            &format!("/v1/agents/{name}/presence"),
            Some(ADMIN),
            json!({ "presence": "offline" }),
        )
        .await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn an_agent_works_a_contact_through_its_whole_life() {
    let setup = setup("agent-life");
    life(&setup).await;
    setup.cleanup().await;
}

/// The same on RabbitMQ and PostgreSQL, where carol's events also reach an integration
/// bound to the assignments exchange.
#[tokio::test]
async fn an_agent_works_a_contact_through_its_whole_life_on_rabbitmq_and_postgres() {
    let Some(mut setup) = Setup::production("agent_life") else {
        return;
    };
    setup.set("SWITCHBOARD__AUTH__ADMIN_TOKEN", ADMIN);
    let prefix = setup.get("SWITCHBOARD__BUS__PREFIX").unwrap().to_owned();
    // An integration's queue for carol's events, bound before the daemon publishes any.
    let conn =
        lapin::Connection::connect(&support::amqp_url(), lapin::ConnectionProperties::default())
            .await
            .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let exchange = format!("{prefix}.assignments");
    ch.exchange_declare(
        exchange.as_str().into(),
        lapin::ExchangeKind::Topic,
        lapin::options::ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        Default::default(),
    )
    .await
    .unwrap();
    let queue = format!("{prefix}.crm");
    ch.queue_declare(
        queue.as_str().into(),
        Default::default(),
        Default::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        queue.as_str().into(),
        exchange.as_str().into(),
        "agent.carol.#".into(),
        Default::default(),
        Default::default(),
    )
    .await
    .unwrap();
    life(&setup).await;
    let mut kinds = Vec::new();
    while let Some(m) = ch
        .basic_get(
            queue.as_str().into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
    {
        let v: Value = serde_json::from_slice(&m.delivery.data).unwrap();
        assert_eq!(v["agent"], "carol");
        kinds.push(v["event"].as_str().unwrap().to_owned());
    }
    let offer = kinds
        .iter()
        .position(|k| k == "offer")
        .expect("offers on the bus");
    let assigned = kinds
        .iter()
        .position(|k| k == "assigned")
        .expect("assigned on the bus");
    assert!(offer < assigned, "{kinds:?}");
    let _ = ch
        .queue_delete(queue.as_str().into(), Default::default())
        .await;
    let _ = conn.close(200, "done".into()).await;
    setup.cleanup().await;
}

async fn life(setup: &Setup) {
    let d = Daemon::start(setup);
    team(&d).await;
    let mut carol = Stream::open(&d, "carol", CAROL, None).await;
    let snapshot = carol.next().await;
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(snapshot.data["presence"], "offline");
    let (status, _) = call(
        &d,
        "PUT",
        "/v1/agents/carol/presence",
        Some(CAROL),
        json!({ "presence": "available" }),
    )
    .await;
    assert_eq!(status, 200);

    let mut first = contact("chat", "life-1", "hello, I need help");
    first["skills"] = json!(["english"]);
    let (_, body) = d.post(&first).await;
    let c1 = body["id"].as_str().unwrap().to_owned();
    let offer = carol.next_of("offer").await;
    assert_eq!(offer.data["contact"], c1.as_str());
    assert!(offer.id.is_some(), "events carry ids for resuming");
    let offer_id = offer.data["offer"].as_u64().unwrap();

    // Dan may not answer carol's offer.
    let (status, _) = call(
        &d,
        "POST",
        &format!("/v1/offers/{offer_id}/accept"),
        Some(DAN),
        Value::Null,
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = call(
        &d,
        "POST",
        &format!("/v1/offers/{offer_id}/accept"),
        Some(CAROL),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(carol.next_of("assigned").await.data["contact"], c1.as_str());
    let view = d.wait_contact(&c1, |v| v["owner"] == "carol").await;
    assert_eq!(view["state"], "assigned");
    // Accepting twice is a conflict, not a second owner.
    let (status, _) = call(
        &d,
        "POST",
        &format!("/v1/offers/{offer_id}/accept"),
        Some(CAROL),
        Value::Null,
    )
    .await;
    assert_eq!(status, 409);

    // A follow-up in the conversation goes to carol's stream.
    d.post(&contact("chat", "life-1", "any news?")).await;
    let message = carol.next_of("message").await;
    assert_eq!(message.data["contact"], c1.as_str());
    assert_eq!(message.data["summary"], "any news?");

    // Carol is at her chat cap: the next chat waits (dan is offline) until she closes.
    let mut second = contact("chat", "life-2", "second customer");
    second["skills"] = json!(["english"]);
    let (_, body) = d.post(&second).await;
    let c2 = body["id"].as_str().unwrap().to_owned();
    d.wait_contact(&c2, |v| v["state"] == "waiting").await;
    let (status, body) = call(
        &d,
        "POST",
        &format!("/v1/contacts/{c1}/close"),
        Some(CAROL),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(carol.next_of("closed").await.data["contact"], c1.as_str());
    let next = carol.next_of("offer").await;
    assert_eq!(
        next.data["contact"],
        c2.as_str(),
        "capacity freed, the next contact arrives"
    );

    // Carol declines; dan, now available, gets it; it never goes back to carol.
    let mut dan = Stream::open(&d, "dan", DAN, None).await;
    call(
        &d,
        "PUT",
        "/v1/agents/dan/presence",
        Some(DAN),
        json!({ "presence": "available" }),
    )
    .await;
    let declined = next.data["offer"].as_u64().unwrap();
    let (status, _) = call(
        &d,
        "POST",
        &format!("/v1/offers/{declined}/decline"),
        Some(CAROL),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        carol.next_of("offer_ended").await.data["outcome"],
        "declined"
    );
    let to_dan = dan.next_of("offer").await;
    assert_eq!(to_dan.data["contact"], c2.as_str());
    let (status, _) = call(
        &d,
        "POST",
        &format!("/v1/offers/{}/accept", to_dan.data["offer"]),
        Some(DAN),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);

    // Transfer from dan to carol: ownership moves, carol gets the offer.
    let (status, body) = call(
        &d,
        "POST",
        &format!("/v1/contacts/{c2}/transfer"),
        Some(DAN),
        json!({ "agent": "carol" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        dan.next_of("transferred_out").await.data["contact"],
        c2.as_str()
    );
    let back = carol.next_of("offer").await;
    assert_eq!(back.data["contact"], c2.as_str());
    let (status, _) = call(
        &d,
        "POST",
        &format!("/v1/offers/{}/accept", back.data["offer"]),
        Some(CAROL),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    // The conversation's follow-ups follow the new owner.
    d.post(&contact("chat", "life-2", "are you still there?"))
        .await;
    let follow = carol.next_of("message").await;
    assert_eq!(follow.data["contact"], c2.as_str());
    assert_eq!(follow.data["summary"], "are you still there?");

    let (status, queues) = call(&d, "GET", "/v1/queues", Some(ADMIN), Value::Null).await;
    assert_eq!(status, 200);
    assert!(
        queues["queues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["queue"] == "support")
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    support::check_store(setup).await;
}

/// An agent whose tool cannot accept gets its offers accepted at once.
#[tokio::test]
async fn auto_accept_takes_the_offer_for_the_agent() {
    let setup = setup("agent-auto");
    let d = Daemon::start(&setup);
    team(&d).await;
    let (status, body) = call(
        &d,
        "PUT",
        "/v1/agents/ida",
        Some(ADMIN),
        json!({ "skills": { "english": 3 }, "caps": { "email": 2 }, "auto_accept": true }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    call(
        &d,
        "PUT",
        "/v1/agents/ida/presence",
        Some(ADMIN),
        json!({ "presence": "available" }),
    )
    .await;
    let mut c = contact("email", "auto-1", "no one clicks accept here");
    c["skills"] = json!(["english"]);
    let (_, body) = d.post(&c).await;
    let view = d
        .wait_contact(body["id"].as_str().unwrap(), |v| v["state"] == "assigned")
        .await;
    assert_eq!(view["owner"], "ida");
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    setup.cleanup().await;
}

#[tokio::test]
async fn a_reconnecting_stream_resumes_without_losing_events() {
    let setup = setup("agent-resume");
    let d = Daemon::start(&setup);
    team(&d).await;
    call(
        &d,
        "PUT",
        "/v1/agents/carol/presence",
        Some(CAROL),
        json!({ "presence": "available" }),
    )
    .await;
    let mut stream = Stream::open(&d, "carol", CAROL, None).await;
    assert_eq!(stream.next().await.event, "snapshot");
    let mut c = contact("chat", "resume-1", "one");
    c["skills"] = json!(["english"]);
    d.post(&c).await;
    let offer = stream.next_of("offer").await;
    let last = offer.id.clone().unwrap();
    drop(stream);
    // While disconnected, the offer is declined (by the admin, for carol) and expires
    // nothing else; the event is held for her.
    let (status, _) = call(
        &d,
        "POST",
        &format!("/v1/offers/{}/decline", offer.data["offer"]),
        Some(ADMIN),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    let mut resumed = Stream::open(&d, "carol", CAROL, Some(&last)).await;
    let e = resumed.next().await;
    assert_eq!(
        e.event, "offer_ended",
        "no snapshot: the missed event comes first"
    );
    assert_eq!(e.data["outcome"], "declined");
    // An unknown Last-Event-ID (another run) gets a snapshot instead.
    let mut fresh = Stream::open(&d, "carol", CAROL, Some("0-1")).await;
    assert_eq!(fresh.next().await.event, "snapshot");
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    setup.cleanup().await;
}

#[tokio::test]
async fn every_agent_route_checks_its_token() {
    let setup = setup("agent-auth");
    let d = Daemon::start(&setup);
    team(&d).await;
    let routes: [(&str, &str, Value); 6] = [
        ("GET", "/v1/agents", Value::Null),
        ("GET", "/v1/queues", Value::Null),
        ("PUT", "/v1/agents/eve", json!({ "caps": { "chat": 1 } })),
        (
            "PUT",
            "/v1/agents/dan/presence",
            json!({ "presence": "away" }),
        ),
        ("GET", "/v1/agents/dan", Value::Null),
        ("GET", "/v1/agents/dan/stream", Value::Null),
    ];
    for (method, path, body) in &routes {
        let (status, _) = call(&d, method, path, None, body.clone()).await;
        assert_eq!(status, 401, "{method} {path} without a token");
        let (status, _) = call(&d, method, path, Some("not-a-token-at-all"), body.clone()).await;
        assert_eq!(status, 401, "{method} {path} with an unknown token");
        let (status, _) = call(&d, method, path, Some(CAROL), body.clone()).await;
        assert_eq!(status, 403, "{method} {path} with another agent's token");
    }
    // The right tokens.
    let (status, _) = call(
        &d,
        "PUT",
        "/v1/agents/dan/presence",
        Some(DAN),
        json!({ "presence": "away" }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(&d, "GET", "/v1/agents/dan", Some(DAN), Value::Null).await;
    assert_eq!(status, 200);
    let (status, body) = call(&d, "GET", "/v1/agents", Some(ADMIN), Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(body["agents"].as_array().unwrap().len(), 4);
    // Work routes: an unknown offer or contact is refused even to the admin.
    let (status, _) = call(
        &d,
        "POST",
        "/v1/offers/999/accept",
        Some(ADMIN),
        Value::Null,
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = call(&d, "POST", "/v1/contacts/nope/close", None, Value::Null).await;
    assert_eq!(status, 401);
    let (status, _) = call(
        &d,
        "POST",
        "/v1/contacts/nope/close",
        Some(ADMIN),
        Value::Null,
    )
    .await;
    assert_eq!(status, 404);
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    setup.cleanup().await;
}

/// A local agent tool receiving webhooks: verifies each signature independently, answers
/// 503 to the first `fail` requests (or to all with `u32::MAX`).
async fn receiver(
    fail: u32,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    std::sync::Arc<std::sync::atomic::AtomicU32>,
) {
    use std::sync::atomic::{AtomicU32, Ordering};
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let attempts = std::sync::Arc::new(AtomicU32::new(0));
    let (g, a) = (got.clone(), attempts.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (got, attempts) = (g.clone(), a.clone());
                async move {
                    let n = attempts.fetch_add(1, Ordering::SeqCst);
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                    let sig = headers
                        .get(switchboard_delivery::SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    if switchboard_delivery::verify(WEBHOOK_SECRET.as_bytes(), sig, &body, now, 300)
                        .is_err()
                    {
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    if n < fail {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    got.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got, attempts)
}

const WEBHOOK_SECRET: &str = "webhook-secret-for-the-test";

#[tokio::test]
async fn signed_webhooks_reach_the_agent_tool_through_failures_and_a_dead_tool_loses_the_offer() {
    let mut setup = setup("agent-webhooks");
    setup.set("SWITCHBOARD__DELIVERY__WEBHOOK_SECRET", WEBHOOK_SECRET);
    setup.set("SWITCHBOARD__DELIVERY__WEBHOOK_BACKOFF", "20ms");
    setup.set("SWITCHBOARD__DELIVERY__WEBHOOK_ATTEMPTS", "4");
    setup.set("SWITCHBOARD__CHANNELS__CHAT__OFFER_TIMEOUT", "2s");
    // The nights team's tool, for its agents without a webhook of their own.
    let (team_url, team_got, _) = receiver(0).await;
    setup.set("SWITCHBOARD__DELIVERY__TEAM_WEBHOOKS__NIGHTS", team_url);
    let d = Daemon::start(&setup);
    team(&d).await;
    // Gil's tool fails twice, then works: the offer arrives, signed, then the assignment.
    let (url, got, attempts) = receiver(2).await;
    let (status, body) = call(
        &d,
        "PUT",
        "/v1/agents/gil",
        Some(ADMIN),
        json!({ "skills": { "english": 10 }, "caps": { "chat": 1 }, "webhook": url }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    call(
        &d,
        "PUT",
        "/v1/agents/gil/presence",
        Some(ADMIN),
        json!({ "presence": "available" }),
    )
    .await;
    let mut c = contact("chat", "hook-1", "hello");
    c["skills"] = json!(["english"]);
    let (_, body) = d.post(&c).await;
    let id = body["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let offer = loop {
        if let Some(e) = got
            .lock()
            .unwrap()
            .iter()
            .find(|e| e["event"] == "offer")
            .cloned()
        {
            break e;
        }
        assert!(std::time::Instant::now() < deadline, "no offer by webhook");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(offer["agent"], "gil");
    assert_eq!(offer["data"]["contact"], id.as_str());
    assert!(
        attempts.load(std::sync::atomic::Ordering::SeqCst) >= 3,
        "two failures, then delivered"
    );
    let (status, _) = call(
        &d,
        "POST",
        &format!("/v1/offers/{}/accept", offer["data"]["offer"]),
        Some(ADMIN),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events: Vec<String> = got
            .lock()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_owned())
            .collect();
        if events.contains(&"assigned".to_owned()) {
            let offer_at = events.iter().position(|e| e == "offer").unwrap();
            let assigned_at = events.iter().position(|e| e == "assigned").unwrap();
            assert!(offer_at < assigned_at, "the offer comes first: {events:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no assignment by webhook: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Hal's tool never answers: the offer expires and the contact goes to carol.
    let (dead_url, _, dead_attempts) = receiver(u32::MAX).await;
    call(
        &d,
        "PUT",
        "/v1/agents/hal",
        Some(ADMIN),
        json!({ "skills": { "english": 10 }, "caps": { "chat": 1 }, "webhook": dead_url }),
    )
    .await;
    call(
        &d,
        "PUT",
        "/v1/agents/hal/presence",
        Some(ADMIN),
        json!({ "presence": "available" }),
    )
    .await;
    let mut c = contact("chat", "hook-2", "anyone?");
    c["skills"] = json!(["english"]);
    let (_, body) = d.post(&c).await;
    let id2 = body["id"].as_str().unwrap().to_owned();
    d.wait_contact(&id2, |v| v["offered_to"] == "hal").await;
    let mut carol = Stream::open(&d, "carol", CAROL, None).await;
    call(
        &d,
        "PUT",
        "/v1/agents/carol/presence",
        Some(CAROL),
        json!({ "presence": "available" }),
    )
    .await;
    let offer = carol.next_of("offer").await;
    assert_eq!(
        offer.data["contact"],
        id2.as_str(),
        "after hal's offer expired"
    );
    assert!(dead_attempts.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    // Jo has no webhook; the nights team's receives jo's events.
    call(
        &d,
        "PUT",
        "/v1/agents/jo",
        Some(ADMIN),
        json!({ "teams": ["nights"], "caps": { "email": 1 } }),
    )
    .await;
    call(
        &d,
        "PUT",
        "/v1/agents/jo/presence",
        Some(ADMIN),
        json!({ "presence": "available" }),
    )
    .await;
    let (_, body) = d.post(&contact("email", "hook-3", "late mail")).await;
    let id3 = body["id"].as_str().unwrap().to_owned();
    d.wait_contact(&id3, |v| v["offered_to"] == "jo").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !team_got
        .lock()
        .unwrap()
        .iter()
        .any(|e| e["agent"] == "jo" && e["event"] == "offer")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no offer on the team webhook"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    setup.cleanup().await;
}

/// 1,000 contacts across 50 agents with mixed caps; simulated agents accept, decline and
/// close at random from their streams. Afterwards every contact is closed or waiting, and
/// the audit log (not the daemon's counters) shows no contact ever had two holders, no
/// agent ever exceeded a cap, and no contact went back to an agent who declined it.
#[tokio::test]
async fn a_thousand_contacts_across_fifty_agents_keep_every_promise() {
    let setup = setup("agent-load");
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    for name in ["ana", "bo"] {
        call(
            &d,
            "PUT",
            &format!("/v1/agents/{name}/presence"),
            Some(ADMIN),
            json!({ "presence": "offline" }),
        )
        .await;
    }
    let mut rng = fastrand::Rng::with_seed(42);
    let mut agents = Vec::new();
    for i in 0..50 {
        let name = format!("agent{i:02}");
        let token = format!("{name}-token-0123456789");
        let body = json!({
            "skills": { "english": rng.u8(1..=10) },
            "caps": { "chat": rng.u16(1..=3), "email": rng.u16(2..=5) },
            "total_cap": rng.u16(2..=6),
            "token": token,
        });
        let (status, body) =
            call(&d, "PUT", &format!("/v1/agents/{name}"), Some(ADMIN), body).await;
        assert_eq!(status, 200, "{body}");
        agents.push((name, token));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for (i, (name, token)) in agents.iter().enumerate() {
        let mut stream = Stream::open(&d, name, token, None).await;
        let (http, base, token, stop) =
            (d.http.clone(), d.base.clone(), token.clone(), stop.clone());
        call(
            &d,
            "PUT",
            &format!("/v1/agents/{name}/presence"),
            Some(&token),
            json!({ "presence": "available" }),
        )
        .await;
        workers.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(i as u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(Some(e)) =
                    tokio::time::timeout(Duration::from_millis(200), stream.events.recv()).await
                else {
                    continue;
                };
                let post = |path: String| {
                    http.post(format!("{base}{path}"))
                        .bearer_auth(&token)
                        .send()
                };
                match e.event.as_str() {
                    "offer" => {
                        let verb = if rng.u8(0..4) == 0 {
                            "decline"
                        } else {
                            "accept"
                        };
                        let _ = post(format!("/v1/offers/{}/{verb}", e.data["offer"])).await;
                    }
                    "assigned" => {
                        tokio::time::sleep(Duration::from_millis(rng.u64(0..20))).await;
                        let contact = e.data["contact"].as_str().unwrap().to_owned();
                        let _ = post(format!("/v1/contacts/{contact}/close")).await;
                    }
                    _ => {}
                }
            }
        }));
    }
    let mut posts = Vec::new();
    for p in 0..16 {
        let (http, url) = (d.http.clone(), d.url("/v1/contacts"));
        posts.push(tokio::spawn(async move {
            for i in (p..1000).step_by(16) {
                let mut c = contact(["chat", "email"][i % 2], &format!("load-{i}"), "load");
                c["skills"] = json!(["english"]);
                let r = http.post(&url).json(&c).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 202);
            }
        }));
    }
    for p in posts {
        p.await.unwrap();
    }
    // Every contact ends closed, or waits because every agent able to take it declined it.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let closed = support::store_count(
            &setup,
            "SELECT COUNT(*) FROM contacts WHERE state = 'closed'",
        )
        .await;
        let waiting = support::store_count(
            &setup,
            "SELECT COUNT(*) FROM contacts WHERE state = 'waiting'",
        )
        .await;
        if closed + waiting == 1000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{closed} closed and {waiting} waiting of 1000"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let rows = support::check_store(&setup).await;
    assert_eq!(rows.len(), 1000);
    let closed = rows.iter().filter(|(_, s, _)| s == "closed").count();
    assert!(closed > 900, "most contacts were worked: {closed} closed");
    eprintln!("load: {closed} closed, {} waiting", 1000 - closed);
    setup.cleanup().await;
}

/// The OpenAPI document describes exactly the routes the server has: every route the
/// source registers is in the document, and every operation of the document is served
/// (the live server answers it with something other than "no such route").
#[tokio::test]
async fn the_openapi_document_matches_the_server() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("docs/openapi.json")).unwrap())
            .unwrap();
    let mut documented = std::collections::BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    // The routes as the source registers them: `.route("PATH", get(h).put(h))`.
    let mut served = std::collections::BTreeSet::new();
    for file in [
        "src/api.rs",
        "src/agents.rs",
        "src/channels.rs",
        "src/metrics.rs",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for (at, _) in text.match_indices(".route(\"") {
            let line = text[at..].lines().next().unwrap_or_default();
            let path = line.split('"').nth(1).unwrap().to_owned();
            for method in ["get", "post", "put", "delete", "patch"] {
                if line.contains(&format!("{method}(")) {
                    served.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    assert!(
        served.len() >= 14,
        "the route scan found too little: {served:?}"
    );
    assert_eq!(
        served, documented,
        "routes in the source vs the OpenAPI document"
    );

    // And the live server answers every documented operation.
    let setup = setup("agent-openapi");
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    for (method, path) in &documented {
        let concrete = path
            .replace("{name}", "ana")
            .replace("{id}", "no-such-contact")
            .replace("{offer}", "1");
        let url = d.url(&concrete);
        let req = match method.as_str() {
            "PUT" => d.http.put(url),
            "POST" => d.http.post(url),
            _ => d.http.get(url),
        };
        let r = req
            .bearer_auth(ADMIN)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let streaming = r
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
        // A stream never ends by itself: its status and type are the answer.
        let body: Value = if streaming {
            json!({ "error": "stream" })
        } else {
            r.json().await.unwrap_or(Value::Null)
        };
        assert_ne!(status, 405, "{method} {path} is not served");
        assert!(
            status != 404 || body.get("error").is_some(),
            "{method} {path} has no route (a bare 404)"
        );
    }
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    setup.cleanup().await;
}
