//! Channel webhooks against the running daemon, configured from the environment alone:
//! a signed web chat session whose second message joins its contact, Slack's URL
//! verification, a Slack message and its retries (one contact), and bad signatures that
//! publish nothing.

mod support;

use serde_json::{Value, json};
use support::sign::unix_now;
use support::{Daemon, Setup, sign};

const CHAT_SECRET: &str = "web-chat-widget-secret";
const SLACK_SECRET: &str = "slack-app-signing-secret";

fn setup(name: &str) -> Setup {
    let mut s = Setup::embedded(name);
    s.set("SWITCHBOARD__SOURCES__WEBCHAT__TYPE", "chat");
    s.set("SWITCHBOARD__SOURCES__WEBCHAT__SECRET", CHAT_SECRET);
    s.set("SWITCHBOARD__SOURCES__SLACK__TYPE", "slack");
    s.set("SWITCHBOARD__SOURCES__SLACK__SECRET", SLACK_SECRET);
    s
}

async fn post(d: &Daemon, path: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
    let mut req = d.http.post(d.url(path)).body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn chat(d: &Daemon, body: &Value, secret: &str) -> (u16, String) {
    let body = body.to_string();
    let sig = sign::switchboard(secret, &body);
    post(
        d,
        "/v1/channels/webchat",
        &[("switchboard-signature", sig)],
        &body,
    )
    .await
}

async fn slack(d: &Daemon, body: &str, retry: Option<u32>) -> (u16, String) {
    let ts = unix_now().to_string();
    let sig = sign::slack(SLACK_SECRET, &ts, body);
    let mut headers = vec![
        ("x-slack-request-timestamp", ts),
        ("x-slack-signature", sig),
    ];
    if let Some(n) = retry {
        headers.push(("x-slack-retry-num", n.to_string()));
        headers.push(("x-slack-retry-reason", "http_timeout".to_owned()));
    }
    post(d, "/v1/channels/slack", &headers, body).await
}

#[tokio::test]
async fn a_web_chat_session_is_one_conversation() {
    let setup = setup("channel-chat");
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    let first = json!({
        "message_id": "w-1", "session": "sess-9", "customer": "visitor-3",
        "text": "Hi, my invoice is wrong", "escalated_from_bot": true,
        "transcript": [{"from": "bot", "text": "Did you try turning it off and on?"}]
    });
    let (status, body) = chat(&d, &first, CHAT_SECRET).await;
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(id, "chat:w-1");
    let view = d.wait_contact(&id, |v| v["state"] == "offered").await;
    assert_eq!(view["queue"], "billing", "classified by its text: {view}");
    assert_eq!(
        view["urgency"], "high",
        "a bot's escalation is urgent: {view}"
    );
    // The second message of the session joins the contact.
    let second = json!({ "message_id": "w-2", "session": "sess-9", "customer": "visitor-3", "text": "hello?" });
    assert_eq!(chat(&d, &second, CHAT_SECRET).await.0, 200);
    let joined = d.wait_contact("chat:w-2", |_| true).await;
    assert_eq!(joined["id"], id.as_str());
    // A wrong secret is refused and publishes nothing.
    let forged = json!({ "message_id": "w-3", "session": "sess-10", "customer": "x", "text": "x" });
    let (status, body) = chat(&d, &forged, "not-the-secret").await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = post(&d, "/v1/channels/webchat", &[], &forged.to_string()).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = post(&d, "/v1/channels/nowhere", &[], "{}").await;
    assert_eq!(status, 404);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, _) = d.get("/v1/contacts/chat:w-3").await;
    assert_eq!(status, 404, "nothing was published for the forged message");
    let (_, metrics) = {
        let r = d.http.get(d.url("/metrics")).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert!(
        metrics.contains("switchboard_ingest_rejected_total{reason=\"bad_signature\"} 2"),
        "refusals are counted by reason"
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    setup.cleanup().await;
}

#[tokio::test]
async fn slack_events_become_contacts_once() {
    let setup = setup("channel-slack");
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    let (status, body) = slack(
        &d,
        r#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#,
        None,
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    );
    let message = r#"{"token":"one-long-verification-token","team_id":"T061EG9R6","api_app_id":"A0PNCHHK2","event":{"type":"message","channel":"C024BE91L","user":"U2147483697","text":"Live long and prospect.","ts":"1355517523.000005","event_ts":"1355517523.000005","channel_type":"channel"},"type":"event_callback","authed_teams":["T061EG9R6"],"event_id":"Ev0PV52K21","event_time":1355517523}"#;
    let (status, body) = slack(&d, message, None).await;
    assert_eq!(status, 200, "{body}");
    // Slack retries the same event: the same id, and still one contact.
    for n in 1..=2 {
        let (status, _) = slack(&d, message, Some(n)).await;
        assert_eq!(status, 200);
    }
    let view = d
        .wait_contact("slack:Ev0PV52K21", |v| v["state"].is_string())
        .await;
    assert_eq!(view["channel"], "chat");
    // A bot's message is acknowledged and not routed.
    let bot = message
        .replace(
            "\"channel_type\":\"channel\"",
            "\"channel_type\":\"channel\",\"bot_id\":\"B1\",\"subtype\":\"bot_message\"",
        )
        .replace("Ev0PV52K21", "Ev0PV52K99");
    let (status, body) = slack(&d, &bot, None).await;
    assert_eq!(status, 200);
    assert!(body.contains("ignored"), "{body}");
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let rows = support::check_store(&setup).await;
    assert_eq!(
        rows.len(),
        1,
        "one contact for the message and its retries: {rows:?}"
    );
    setup.cleanup().await;
}

/// A web chat customer is told where they stand: their place among contacts the same
/// agents serve and the expected wait from the agents' recent handling times. Once they
/// are assigned, the gap between the wait told and the wait seen is exported.
#[tokio::test]
async fn a_chat_customer_is_told_position_and_expected_wait() {
    let mut setup = Setup::embedded("channel-chat-wait");
    // Only dirk speaks Dutch, one chat at a time; the source requires Dutch.
    setup.add_config(&format!(
        r#"
[sources.dutch]
type = "chat"
secret = "{CHAT_SECRET}"
skills = ["dutch"]

[[agents]]
name = "dirk"
teams = ["support"]
skills = {{ dutch = 8 }}
caps = {{ chat = 1 }}
presence = "available"
auto_accept = true
"#
    ));
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    // The first goes straight to dirk: nothing to wait for.
    let first = send_dutch(&d, 1).await;
    assert_eq!(first["contact"], "chat:nl-1", "{first}");
    assert_eq!(first["state"], "assigned", "{first}");
    assert_eq!(first["agent"], "dirk", "{first}");
    // Dirk handles it for about a second: the queue's handling time.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    close(&d, "chat:nl-1").await;
    let second = send_dutch(&d, 2).await;
    assert_eq!(second["state"], "assigned", "{second}");
    // Dirk is busy: the next two wait, one behind the other.
    let third = send_dutch(&d, 3).await;
    let fourth = send_dutch(&d, 4).await;
    assert_eq!(third["state"], "waiting", "{third}");
    assert_eq!(third["position"], 0, "{third}");
    assert_eq!(fourth["position"], 1, "{fourth}");
    let (w3, w4) = (
        third["expected_wait_seconds"]
            .as_u64()
            .expect("an estimate"),
        fourth["expected_wait_seconds"]
            .as_u64()
            .expect("an estimate"),
    );
    assert!((1..=3).contains(&w3), "one handling time ahead: {third}");
    assert!(w4 > w3, "two handling times ahead: {fourth}");
    // The contact view gives the same estimate.
    let (_, view) = d.get("/v1/contacts/chat:nl-4").await;
    assert_eq!(view["position"], 1, "{view}");
    assert!(view["expected_wait_seconds"].as_u64().is_some(), "{view}");
    // A follow-up in a waiting session says where that contact stands.
    let again = json!({ "message_id": "nl-3b", "session": "nl-sess-3", "customer": "klant-3", "text": "nog daar?" });
    let (status, body) = chat_to(&d, "/v1/channels/dutch", &again).await;
    assert_eq!(status, 200, "{body}");
    let again: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (again["contact"].as_str(), again["follow_up"].as_bool()),
        (Some("chat:nl-3"), Some(true)),
        "{again}"
    );
    // Dirk closes the second after a while; the third is assigned: its wait is measured.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    close(&d, "chat:nl-2").await;
    d.wait_contact("chat:nl-3", |v| v["state"] == "assigned")
        .await;
    let metrics = d.metrics().await;
    let value = |name: &str| -> f64 {
        let series = format!("{name}{{channel=\"chat\",queue=\"support\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no {series} in the metrics"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("switchboard_wait_estimate_error_seconds_count"), 1.0);
    let told = value("switchboard_wait_told_seconds_sum");
    // The customer hears it rounded up to the second.
    assert_eq!(
        told.ceil(),
        w3 as f64,
        "the told wait is the one the customer got"
    );
    let abs = value("switchboard_wait_estimate_abs_error_seconds_sum");
    assert!(abs < 5.0, "seen about 1 s against told {w3} s: error {abs}");
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    setup.cleanup().await;
}

async fn chat_to(d: &Daemon, path: &str, body: &Value) -> (u16, String) {
    let body = body.to_string();
    let sig = sign::switchboard(CHAT_SECRET, &body);
    post(d, path, &[("switchboard-signature", sig)], &body).await
}

async fn send_dutch(d: &Daemon, n: u32) -> Value {
    let body = json!({ "message_id": format!("nl-{n}"), "session": format!("nl-sess-{n}"),
                       "customer": format!("klant-{n}"), "text": "Goedendag" });
    let (status, answer) = chat_to(d, "/v1/channels/dutch", &body).await;
    assert_eq!(status, 200, "{answer}");
    serde_json::from_str(&answer).unwrap()
}

async fn close(d: &Daemon, contact: &str) {
    let r = d
        .http
        .post(d.url(&format!("/v1/contacts/{contact}/close")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
}
