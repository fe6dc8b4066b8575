//! Voice calls against the running daemon, signed as Twilio signs them (computed here,
//! apart from the code under test): a whole call (incoming, keypad menu, waiting with the
//! caller's place, the agent accepts, `<Dial>`, completed and the slot freed), a caller
//! who hangs up while waiting (abandoned, never offered), forged requests, and the generic
//! JSON IVR webhook.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Daemon, Setup, sign};

const TOKEN: &str = "twilio-account-auth-token";
const PUBLIC: &str = "https://switchboard.example.com/v1/channels/phone";
const IVR_SECRET: &str = "asterisk-ivr-shared-secret";

fn setup(name: &str) -> Setup {
    let mut s = Setup::embedded(name);
    s.add_config(&format!(
        r#"
[sources.phone]
type = "twilio"
secret = "{TOKEN}"
public_url = "{PUBLIC}"
skills = ["telephony"]
greeting = "Thanks for calling. For billing press 1, for anything else press 2."
hold_for = "15s"
menu_digits = 1

# The menu's choices, routed by rules on the digits pressed.
[[rules]]
channel = "voice"
attributes = {{ digits = "1" }}
skills = ["billing"]

[[rules]]
channel = "voice"
attributes = {{ digits = "2" }}
urgency = "high"

[sources.pbx]
type = "ivr"
secret = "{IVR_SECRET}"
skills = ["telephony"]

[[agents]]
name = "vic"
teams = ["billing"]
skills = {{ billing = 8, telephony = 8 }}
caps = {{ voice = 1 }}
presence = "away"
auto_accept = true
dial = "client:vic"
"#
    ));
    // The slot is freed as soon as the call completes.
    s.set("SWITCHBOARD__CHANNELS__VOICE__WRAP_UP", "0s");
    s
}

/// The parameters of Twilio's voice webhook request for a call.
fn call(sid: &str, status: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AccountSid", "AC0123456789abcdef0123456789abcdef".into()),
        ("ApiVersion", "2010-04-01".into()),
        ("CallSid", sid.into()),
        ("CallStatus", status.into()),
        ("Called", "+15005550006".into()),
        ("Caller", "+14155551234".into()),
        ("Direction", "inbound".into()),
        ("From", "+14155551234".into()),
        ("FromCountry", "US".into()),
        ("To", "+15005550006".into()),
    ]
}

/// Posts a signed Twilio request for `step` (none: the incoming call).
async fn twilio(
    d: &Daemon,
    query: &str,
    params: &[(&'static str, String)],
    token_ok: bool,
) -> (u16, String) {
    let public = if query.is_empty() {
        PUBLIC.to_owned()
    } else {
        format!("{PUBLIC}?{query}")
    };
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut signature = sign::twilio(TOKEN, &public, &pairs);
    if !token_ok {
        signature = sign::twilio(TOKEN, &format!("{public}x"), &pairs);
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let local = if query.is_empty() {
        d.url("/v1/channels/phone")
    } else {
        d.url(&format!("/v1/channels/phone?{query}"))
    };
    let r = d
        .http
        .post(local)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn presence(d: &Daemon, agent: &str, presence: &str) {
    let r = d
        .http
        .put(d.url(&format!("/v1/agents/{agent}/presence")))
        .json(&json!({ "presence": presence }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
}

/// The voice load of an agent.
async fn voice_load(d: &Daemon, agent: &str) -> u64 {
    let (status, a) = d.get(&format!("/v1/agents/{agent}")).await;
    assert_eq!(status, 200, "{a}");
    a["load"]["voice"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn a_call_waits_hears_its_place_is_put_through_and_frees_the_slot() {
    let setup = setup("voice-call");
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    let sid = "CA11111111111111111111111111111111";

    // The incoming call gets the keypad menu.
    let (status, twiml) = twilio(&d, "", &call(sid, "ringing"), true).await;
    assert_eq!(status, 200, "{twiml}");
    assert!(twiml.contains("<Gather"), "{twiml}");
    assert!(twiml.contains("For billing press 1"), "{twiml}");
    assert!(
        twiml.contains(&format!("action=\"{PUBLIC}?step=queue\"")),
        "{twiml}"
    );

    // The caller presses 1: a billing contact; nobody is available, so they wait.
    let mut digits = call(sid, "in-progress");
    digits.push(("Digits", "1".into()));
    let (status, twiml) = twilio(&d, "step=queue", &digits, true).await;
    assert_eq!(status, 200, "{twiml}");
    assert!(twiml.contains("You are next in the queue."), "{twiml}");
    assert!(twiml.contains("<Pause length=\"15\"/>"), "{twiml}");
    assert!(
        twiml.contains(&format!(
            "<Redirect method=\"POST\">{PUBLIC}?step=wait</Redirect>"
        )),
        "{twiml}"
    );
    let id = format!("twilio:{sid}");
    let (_, view) = d.get(&format!("/v1/contacts/{id}")).await;
    assert_eq!(view["state"], "waiting", "{view}");
    assert_eq!(view["skills"], json!(["billing", "telephony"]), "{view}");
    assert_eq!(view["channel"], "voice", "{view}");

    // Twilio retries the same request: still one contact.
    let (status, _) = twilio(&d, "step=queue", &digits, true).await;
    assert_eq!(status, 200);

    // The wait loop comes back: still waiting.
    let (_, twiml) = twilio(&d, "step=wait", &call(sid, "in-progress"), true).await;
    assert!(twiml.contains("You are next in the queue."), "{twiml}");

    // Vic becomes available and accepts at once: the next wait request dials vic.
    presence(&d, "vic", "available").await;
    d.wait_contact(&id, |v| v["state"] == "assigned").await;
    let (_, twiml) = twilio(&d, "step=wait", &call(sid, "in-progress"), true).await;
    assert!(twiml.contains("<Client>vic</Client>"), "{twiml}");
    assert!(
        twiml.contains(&format!("action=\"{PUBLIC}?step=dialed\"")),
        "{twiml}"
    );
    assert_eq!(voice_load(&d, "vic").await, 1);

    // The call completes: the contact closes and vic's voice slot is free.
    let (status, body) = twilio(&d, "step=status", &call(sid, "completed"), true).await;
    assert_eq!(status, 204, "{body}");
    let done = d.wait_contact(&id, |v| v["state"] == "closed").await;
    assert_eq!(done["owner"], "vic", "{done}");
    assert_eq!(voice_load(&d, "vic").await, 0);

    // A forged request is refused and counted.
    let (status, body) = twilio(&d, "", &call("CA2", "ringing"), false).await;
    assert_eq!(status, 401, "{body}");
    let metrics = d.metrics().await;
    assert!(
        metrics.contains("switchboard_ingest_rejected_total{reason=\"bad_signature\"} 1"),
        "refusals are counted by reason"
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    setup.cleanup().await;
}

#[tokio::test]
async fn a_caller_who_hangs_up_while_waiting_is_never_offered() {
    let setup = setup("voice-hangup");
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    let sid = "CA22222222222222222222222222222222";
    let mut digits = call(sid, "in-progress");
    digits.push(("Digits", "2".into()));
    let (status, twiml) = twilio(&d, "step=queue", &digits, true).await;
    assert_eq!(status, 200, "{twiml}");
    let id = format!("twilio:{sid}");
    let (_, view) = d.get(&format!("/v1/contacts/{id}")).await;
    assert_eq!(view["urgency"], "high", "digit 2 is urgent: {view}");

    // The caller hangs up: Twilio's status callback says so.
    let (status, _) = twilio(&d, "step=status", &call(sid, "completed"), true).await;
    assert_eq!(status, 204);
    let gone = d.wait_contact(&id, |v| v["state"] == "abandoned").await;
    assert_eq!(gone["end_reason"], "customer_left", "{gone}");

    // An agent arrives: nothing is offered, nothing is held.
    presence(&d, "vic", "available").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(voice_load(&d, "vic").await, 0);
    let (_, twiml) = twilio(&d, "step=wait", &call(sid, "completed"), true).await;
    assert!(twiml.contains("<Hangup/>"), "{twiml}");
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    setup.cleanup().await;
}

/// Posts to the generic IVR webhook, signed like Switchboard's own webhooks.
async fn ivr(d: &Daemon, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let signature = sign::switchboard(IVR_SECRET, &body);
    let r = d
        .http
        .post(d.url("/v1/channels/pbx"))
        .header("content-type", "application/json")
        .header("switchboard-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn the_generic_ivr_gets_position_wait_and_agent_as_json() {
    let setup = setup("voice-ivr");
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    let (status, a) = ivr(
        &d,
        &json!({ "call_id": "1700000000.42", "caller": "+4930123456", "event": "digits", "digits": "1" }),
    )
    .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["state"], "waiting", "{a}");
    assert_eq!(a["position"], 1, "next in line: {a}");
    assert!(
        a["announcement"]
            .as_str()
            .unwrap()
            .contains("next in the queue"),
        "{a}"
    );
    let contact = a["contact"].as_str().unwrap().to_owned();

    presence(&d, "vic", "available").await;
    d.wait_contact(&contact, |v| v["state"] == "assigned").await;
    let (_, a) = ivr(
        &d,
        &json!({ "call_id": "1700000000.42", "caller": "+4930123456", "event": "wait" }),
    )
    .await;
    assert_eq!(a["state"], "connect", "{a}");
    assert_eq!(a["agent"]["name"], "vic", "{a}");
    assert_eq!(a["agent"]["dial"], "client:vic", "{a}");

    let (_, a) = ivr(
        &d,
        &json!({ "call_id": "1700000000.42", "caller": "+4930123456", "event": "completed" }),
    )
    .await;
    assert_eq!(a["state"], "ended", "{a}");
    d.wait_contact(&contact, |v| v["state"] == "closed").await;
    assert_eq!(voice_load(&d, "vic").await, 0);

    // Unsigned or malformed requests are refused with the reason.
    let r = d
        .http
        .post(d.url("/v1/channels/pbx"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (status, a) = ivr(&d, &json!({ "call_id": "x", "event": "dance" })).await;
    assert_eq!(status, 400, "{a}");
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    setup.cleanup().await;
}
