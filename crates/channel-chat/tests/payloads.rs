//! Real payload shapes from Slack's Events API documentation, signed in the test with an
//! HMAC computed here (independently of the crate's verifier); and arbitrary bytes never
//! make a parser panic.

use hmac::{Hmac, Mac};
use proptest::prelude::*;
use sha2::Sha256;
use switchboard_channel_chat::{Inbound, Incoming, generic, slack};

const SECRET: &[u8] = b"test-signing-secret";
const NOW: u64 = 1_355_517_600;

fn slack_sign(ts: &str, body: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    m.update(format!("v0:{ts}:{body}").as_bytes());
    let hex: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v0={hex}")
}

fn slack_receive(body: &str) -> Incoming {
    let ts = NOW.to_string();
    slack::receive(
        SECRET,
        Some(&ts),
        Some(&slack_sign(&ts, body)),
        body.as_bytes(),
        NOW,
    )
    .unwrap()
}

#[test]
fn url_verification_echoes_the_challenge() {
    let body = r#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    assert_eq!(
        slack_receive(body),
        Incoming::Challenge("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P".into())
    );
}

const MESSAGE: &str = r#"{
    "token": "one-long-verification-token",
    "team_id": "T061EG9R6",
    "api_app_id": "A0PNCHHK2",
    "event": {
        "type": "message",
        "channel": "C024BE91L",
        "user": "U2147483697",
        "text": "Live long and prospect.",
        "ts": "1355517523.000005",
        "event_ts": "1355517523.000005",
        "channel_type": "channel"
    },
    "type": "event_callback",
    "authed_teams": ["T061EG9R6"],
    "event_id": "Ev0PV52K21",
    "event_time": 1355517523
}"#;

#[test]
fn a_message_event_becomes_a_contact_keyed_by_its_thread() {
    let Incoming::Messages(got) = slack_receive(MESSAGE) else {
        panic!("expected a message");
    };
    let [Inbound { id, message }] = &got[..] else {
        panic!("expected one message");
    };
    assert_eq!(id, "slack:Ev0PV52K21", "retries carry the same event id");
    assert_eq!(message.conversation, "slack:C024BE91L:1355517523.000005");
    assert_eq!(message.customer, "slack:U2147483697");
    assert_eq!(message.summary, "Live long and prospect.");
    // A reply in the thread belongs to the same conversation.
    let reply = MESSAGE
        .replace(
            "\"ts\": \"1355517523.000005\"",
            "\"ts\": \"1355517600.000100\", \"thread_ts\": \"1355517523.000005\"",
        )
        .replace("Ev0PV52K21", "Ev0PV52K22");
    let Incoming::Messages(got2) = slack_receive(&reply) else {
        panic!("expected a message");
    };
    assert_eq!(got2[0].message.conversation, message.conversation);
}

#[test]
fn bot_messages_and_edits_are_not_contacts() {
    let bot = MESSAGE.replace(
        "\"channel_type\": \"channel\"",
        "\"channel_type\": \"channel\", \"subtype\": \"bot_message\", \"bot_id\": \"B0123\"",
    );
    assert_eq!(slack_receive(&bot), Incoming::Ignored("bot message"));
    let edit = MESSAGE.replace(
        "\"channel_type\": \"channel\"",
        "\"channel_type\": \"channel\", \"subtype\": \"message_changed\"",
    );
    assert!(matches!(slack_receive(&edit), Incoming::Ignored(_)));
    let reaction = MESSAGE.replace("\"type\": \"message\"", "\"type\": \"reaction_added\"");
    assert!(matches!(slack_receive(&reaction), Incoming::Ignored(_)));
}

#[test]
fn a_wrong_signature_is_refused_before_parsing() {
    let ts = NOW.to_string();
    let err = slack::receive(SECRET, Some(&ts), Some("v0=00"), b"not even json", NOW).unwrap_err();
    assert_eq!(err.status(), 401);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_signed_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let ts = NOW.to_string();
        let text = String::from_utf8_lossy(&body).into_owned();
        let sig = slack_sign(&ts, &text);
        let _ = slack::receive(SECRET, Some(&ts), Some(&sig), text.as_bytes(), NOW);
        let generic_sig = switchboard_delivery::sign(SECRET, NOW, &body);
        let _ = generic::receive(SECRET, Some(&generic_sig), &body, NOW, 300);
    }

    #[test]
    fn mutated_real_payloads_never_panic(cut in 0usize..400, byte in any::<u8>()) {
        let mut body = MESSAGE.as_bytes().to_vec();
        let at = cut.min(body.len().saturating_sub(1));
        body[at] = byte;
        let text = String::from_utf8_lossy(&body).into_owned();
        let ts = NOW.to_string();
        let sig = slack_sign(&ts, &text);
        let _ = slack::receive(SECRET, Some(&ts), Some(&sig), text.as_bytes(), NOW);
    }
}
