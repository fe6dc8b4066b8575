//! Meta webhooks (WhatsApp, Messenger, Instagram) against the running daemon, with the
//! providers' example payloads, signed here apart from the code under test: the
//! subscription handshake, a WhatsApp conversation whose second message goes to its
//! owner, redeliveries and status updates that route nothing, the social default skill,
//! and forged requests.

mod support;

use serde_json::Value;
use support::{Daemon, Setup, sign};

const APP_SECRET: &str = "meta-app-secret-for-tests";
const VERIFY_TOKEN: &str = "meta-verify-token-for-tests";
const WHATSAPP_TEXT: &str =
    include_str!("../crates/channel-social/tests/fixtures/whatsapp_text.json");
const WHATSAPP_STATUS: &str =
    include_str!("../crates/channel-social/tests/fixtures/whatsapp_status.json");
const MESSENGER_TEXT: &str =
    include_str!("../crates/channel-social/tests/fixtures/messenger_text.json");

fn setup(name: &str) -> Setup {
    let mut s = Setup::embedded(name);
    // Social messages are public: only senior staff take them.
    s.add_config(&format!(
        r#"
[sources.meta]
type = "meta"
secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
skills = ["senior"]

[[agents]]
name = "sam"
teams = ["support"]
skills = {{ senior = 9, english = 9 }}
caps = {{ social = 2 }}
presence = "available"
auto_accept = true
"#
    ));
    s
}

async fn post(d: &Daemon, body: &str, secret: &str) -> (u16, String) {
    let r = d
        .http
        .post(d.url("/v1/channels/meta"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign::meta(secret, body))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_subscription_handshake_echoes_the_challenge_for_the_right_token_only() {
    let setup = setup("social-handshake");
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    let get = |token: &str| {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("hub.mode", "subscribe"),
                ("hub.verify_token", token),
                ("hub.challenge", "1158201444"),
            ])
            .finish();
        d.http
            .get(d.url(&format!("/v1/channels/meta?{query}")))
            .send()
    };
    let r = get(VERIFY_TOKEN).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "1158201444");
    let r = get("guessed").await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    setup.cleanup().await;
}

#[tokio::test]
async fn a_whatsapp_conversation_stays_with_its_owner() {
    let setup = setup("social-whatsapp");
    let d = Daemon::start(&setup);
    d.wait_leader().await;

    // Meta's example message: a contact for senior staff, taken by sam.
    let (status, body) = post(&d, WHATSAPP_TEXT, APP_SECRET).await;
    assert_eq!(status, 200, "{body}");
    let id = "whatsapp:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";
    let view = d.wait_contact(id, |v| v["state"] == "assigned").await;
    assert_eq!(view["channel"], "social", "{view}");
    assert_eq!(view["owner"], "sam", "{view}");
    assert_eq!(view["skills"], serde_json::json!(["senior"]), "{view}");
    assert_eq!(
        view["conversation"], "whatsapp:106540352242922:16505551234",
        "{view}"
    );

    // Meta redelivers it: still one contact.
    let (status, _) = post(&d, WHATSAPP_TEXT, APP_SECRET).await;
    assert_eq!(status, 200);

    // The customer writes again in the same thread: it joins the contact sam owns.
    let second = WHATSAPP_TEXT
        .replace(
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
            "wamid.second",
        )
        .replace("Does it come in another color?", "And in blue?");
    let (status, body) = post(&d, &second, APP_SECRET).await;
    assert_eq!(status, 200, "{body}");
    let joined = d.wait_contact("whatsapp:wamid.second", |_| true).await;
    assert_eq!(
        joined["id"], id,
        "the follow-up joins the owned contact: {joined}"
    );
    assert_eq!(joined["owner"], "sam", "{joined}");

    // A delivery status is acknowledged and routes nothing.
    let (status, body) = post(&d, WHATSAPP_STATUS, APP_SECRET).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["status"], "ignored", "{answer}");

    // A Messenger message is its own conversation.
    let (status, body) = post(&d, MESSENGER_TEXT, APP_SECRET).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let messenger = answer["ids"][0]
        .as_str()
        .expect("one message id")
        .to_owned();
    let view = d
        .wait_contact(&messenger, |v| v["state"] == "assigned")
        .await;
    assert!(
        view["conversation"]
            .as_str()
            .unwrap()
            .starts_with("messenger:"),
        "{view}"
    );

    // Forged, unsigned and malformed requests are refused and publish nothing.
    let forged = WHATSAPP_TEXT.replace("wamid.HBgL", "wamid.FORGED");
    let (status, _) = post(&d, &forged, "not-the-app-secret").await;
    assert_eq!(status, 401);
    let (status, body) = post(&d, "{\"object\": \"page\", \"entry\": [{}]}", APP_SECRET).await;
    assert_eq!(status, 400, "{body}");
    let r = d
        .http
        .post(d.url("/v1/channels/meta"))
        .body(vec![b'x'; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);

    let (_, contacts) = d.get("/v1/queues").await;
    let metrics = d.metrics().await;
    for line in [
        "switchboard_ingest_rejected_total{reason=\"bad_signature\"} 1",
        "switchboard_ingest_rejected_total{reason=\"malformed\"} 1",
        "switchboard_ingest_rejected_total{reason=\"body_too_large\"} 1",
        "switchboard_contacts_ingested_total{channel=\"social\",queue=\"support\",urgency=\"normal\"} 2",
        "switchboard_follow_ups_total{channel=\"social\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing; queues: {contacts}");
    }
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    setup.cleanup().await;
}
