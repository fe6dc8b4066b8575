//! The envelope's JSON is a contract between processes of different versions: a committed
//! fixture must keep decoding, and other versions must be refused by their version.

use std::collections::BTreeMap;

use switchboard_bus::{DecodeError, Envelope, EnvelopeKind, InboundMessage};
use switchboard_core::model::{Channel, Time, Urgency};

const FIXTURE: &str = include_str!("fixtures/envelope-v1.json");

fn expected() -> Envelope {
    let mut attributes = BTreeMap::new();
    attributes.insert(
        "mailbox".to_owned(),
        serde_json::json!("support@example.com"),
    );
    attributes.insert("tier".to_owned(), serde_json::json!(2));
    Envelope {
        version: 1,
        id: "imap:support:4711".to_owned(),
        received_at: Time::from_millis(1_700_000_123_456),
        message: InboundMessage {
            source: "imap:support".to_owned(),
            channel: Channel::Email,
            conversation: "<CAF=x1@mail.example.com>".to_owned(),
            customer: "cust-9".to_owned(),
            summary: "My order never arrived".to_owned(),
            body: None,
            urgency: Some(Urgency::Urgent),
            skills: vec!["shipping".to_owned(), "de".to_owned()],
            attributes,
        },
        kind: EnvelopeKind::Message,
    }
}

#[test]
fn the_committed_v1_fixture_decodes_in_any_field_order_with_optional_fields_missing() {
    assert_eq!(Envelope::from_json(FIXTURE.as_bytes()), Ok(expected()));
}

#[test]
fn encoding_round_trips_and_is_byte_stable() {
    let e = expected();
    let json = e.to_json();
    assert_eq!(Envelope::from_json(&json), Ok(e.clone()));
    assert_eq!(json, e.to_json());
    assert_eq!(
        String::from_utf8(json).unwrap(),
        r#"{"version":1,"id":"imap:support:4711","received_at":1700000123456,"message":{"source":"imap:support","channel":"email","conversation":"<CAF=x1@mail.example.com>","customer":"cust-9","summary":"My order never arrived","body":null,"urgency":"urgent","skills":["shipping","de"],"attributes":{"mailbox":"support@example.com","tier":2}}}"#
    );
}

#[test]
fn other_versions_are_refused_with_a_clear_error() {
    let v2 = FIXTURE.replace("\"version\": 1", "\"version\": 2");
    let err = Envelope::from_json(v2.as_bytes()).unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnsupportedVersion {
            found: 2,
            supported: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "envelope: version 2 is not supported (this build reads version 1)"
    );
    let v0 = FIXTURE.replace("\"version\": 1", "\"version\": 0");
    assert!(matches!(
        Envelope::from_json(v0.as_bytes()),
        Err(DecodeError::UnsupportedVersion { found: 0, .. })
    ));
}

#[test]
fn a_v1_envelope_with_a_bad_field_says_which() {
    let bad = FIXTURE.replace("\"email\"", "\"fax\"");
    let err = Envelope::from_json(bad.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, DecodeError::Invalid { version: 1, reason } if reason.contains("fax")),
        "{err}"
    );
}
