//! Meta's own example payloads (tests/fixtures, sources in its README), signed in the test
//! with an HMAC computed here, independently of the crate's verifier; the handshake; and
//! bounded fuzzing: arbitrary and mutated bodies never panic, and every refusal is a
//! signature or malformed-body error.

use hmac::{Hmac, Mac};
use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_channel_social::{
    ChannelError, Inbound, Incoming, MAX_ID_LEN, SUMMARY_CHARS, handshake_status, receive, verify,
    verify_subscription,
};
use switchboard_core::Channel;

const SECRET: &[u8] = b"meta-app-secret";

const WHATSAPP_TEXT: &str = include_str!("fixtures/whatsapp_text.json");
const WHATSAPP_IMAGE: &str = include_str!("fixtures/whatsapp_image.json");
const WHATSAPP_STATUS: &str = include_str!("fixtures/whatsapp_status.json");
const MESSENGER_TEXT: &str = include_str!("fixtures/messenger_text.json");
const MESSENGER_ATTACHMENT: &str = include_str!("fixtures/messenger_attachment.json");
const MESSENGER_ECHO_AND_DELIVERY: &str = include_str!("fixtures/messenger_echo_and_delivery.json");
const MESSENGER_POSTBACK: &str = include_str!("fixtures/messenger_postback.json");
const INSTAGRAM_TEXT: &str = include_str!("fixtures/instagram_text.json");

const FIXTURES: [&str; 8] = [
    WHATSAPP_TEXT,
    WHATSAPP_IMAGE,
    WHATSAPP_STATUS,
    MESSENGER_TEXT,
    MESSENGER_ATTACHMENT,
    MESSENGER_ECHO_AND_DELIVERY,
    MESSENGER_POSTBACK,
    INSTAGRAM_TEXT,
];

/// `X-Hub-Signature-256` for a body, with the `hmac` crate rather than the verifier's code
/// (the hex encoding is pinned by [`PYTHON_VECTOR`]).
fn sign(body: &[u8]) -> String {
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
    m.update(body);
    format!(
        "sha256={}",
        switchboard_channel::hex(&m.finalize().into_bytes())
    )
}

fn signed(body: &str) -> Incoming {
    receive(SECRET, Some(&sign(body.as_bytes())), body.as_bytes()).unwrap()
}

fn messages(body: &str) -> Vec<Inbound> {
    match signed(body) {
        Incoming::Messages(m) => m,
        other => panic!("expected messages, got {other:?}"),
    }
}

fn one(body: &str) -> Inbound {
    let mut m = messages(body);
    assert_eq!(m.len(), 1, "expected one message: {m:?}");
    m.remove(0)
}

fn attr<'a>(m: &'a Inbound, key: &str) -> Option<&'a Value> {
    m.message.attributes.get(key)
}

// --- signatures -------------------------------------------------------------------------

/// HMAC-SHA256("meta-app-secret", tests/fixtures/whatsapp_text.json), computed apart from
/// this crate with Python:
/// `python3 -c "import hmac,hashlib;print(hmac.new(b'meta-app-secret',
///  open('tests/fixtures/whatsapp_text.json','rb').read(), hashlib.sha256).hexdigest())"`.
/// and again with `openssl dgst -sha256 -hmac meta-app-secret tests/fixtures/whatsapp_text.json`.
/// Meta's pages give no test vector of their own.
const PYTHON_VECTOR: &str =
    "sha256=fb9ed03f67f3e716a1d54cbd07eecf07c48d9665cbb1b008cf17c41de052fe0f";

#[test]
fn signature_matches_an_independently_computed_hmac() {
    let body = WHATSAPP_TEXT.as_bytes();
    assert_eq!(sign(body), PYTHON_VECTOR);
    assert_eq!(verify(SECRET, Some(PYTHON_VECTOR), body), Ok(()));
    // Hex digits of either case.
    let upper = format!("sha256={}", PYTHON_VECTOR[7..].to_ascii_uppercase());
    assert_eq!(verify(SECRET, Some(&upper), body), Ok(()));
}

#[test]
fn wrong_missing_and_malformed_signatures_are_refused() {
    let body = WHATSAPP_TEXT.as_bytes();
    let hex = &PYTHON_VECTOR[7..];
    let flipped = format!("sha256=0{}", &hex[1..]);
    let refused = |secret: &[u8], header: Option<&str>, body: &[u8]| {
        matches!(
            verify(secret, header, body),
            Err(ChannelError::Signature(_))
        )
    };
    assert!(refused(SECRET, Some(&flipped), body), "wrong digest");
    assert!(
        refused(b"another-secret", Some(PYTHON_VECTOR), body),
        "wrong secret"
    );
    assert!(
        refused(b"", Some(PYTHON_VECTOR), body),
        "no secret configured"
    );
    let tampered = WHATSAPP_TEXT.replace("another color", "another colour");
    assert!(
        refused(SECRET, Some(PYTHON_VECTOR), tampered.as_bytes()),
        "tampered body"
    );
    assert!(refused(SECRET, None, body), "missing header");
    for header in [
        hex.to_owned(),                   // no sha256= prefix
        format!("sha1={hex}"),            // the old X-Hub-Signature scheme
        format!("sha256={}", &hex[1..]),  // 63 digits
        format!("sha256={hex}0"),         // 65 digits
        format!("sha256=z{}", &hex[1..]), // not hex
        format!("sha256= {}", &hex[1..]),
        String::new(),
    ] {
        assert!(refused(SECRET, Some(&header), body), "{header:?}");
    }
}

#[test]
fn a_bad_signature_is_refused_before_the_body_is_read() {
    let err = receive(SECRET, Some("sha256=00"), b"not even json").unwrap_err();
    assert_eq!(err.status(), 401);
    assert!(matches!(err, ChannelError::Signature(_)));
}

// --- the subscription handshake ---------------------------------------------------------

fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn the_handshake_echoes_the_challenge_for_the_right_token() {
    let q = query(&[
        ("hub.mode", "subscribe"),
        ("hub.challenge", "1158201444"),
        ("hub.verify_token", "meatyhamhock"),
    ]);
    assert_eq!(
        verify_subscription(&q, "meatyhamhock"),
        Ok("1158201444".to_owned())
    );
}

#[test]
fn the_handshake_refuses_a_wrong_token_with_403_and_a_wrong_mode_with_400() {
    let wrong_token = query(&[
        ("hub.mode", "subscribe"),
        ("hub.challenge", "1158201444"),
        ("hub.verify_token", "meatyhamhocks"),
    ]);
    let err = verify_subscription(&wrong_token, "meatyhamhock").unwrap_err();
    assert!(matches!(err, ChannelError::Signature(_)));
    assert_eq!(handshake_status(&err), 403);

    let no_token = query(&[("hub.mode", "subscribe"), ("hub.challenge", "1")]);
    let err = verify_subscription(&no_token, "meatyhamhock").unwrap_err();
    assert_eq!(handshake_status(&err), 403);

    let wrong_mode = query(&[
        ("hub.mode", "unsubscribe"),
        ("hub.challenge", "1158201444"),
        ("hub.verify_token", "meatyhamhock"),
    ]);
    let err = verify_subscription(&wrong_mode, "meatyhamhock").unwrap_err();
    assert!(matches!(err, ChannelError::Malformed(_)));
    assert_eq!(handshake_status(&err), 400);

    // A verify token left empty in the config never verifies, even an empty one.
    let empty = query(&[
        ("hub.mode", "subscribe"),
        ("hub.challenge", "1"),
        ("hub.verify_token", ""),
    ]);
    assert_eq!(
        handshake_status(&verify_subscription(&empty, "").unwrap_err()),
        403
    );

    let no_challenge = query(&[
        ("hub.mode", "subscribe"),
        ("hub.verify_token", "meatyhamhock"),
    ]);
    let err = verify_subscription(&no_challenge, "meatyhamhock").unwrap_err();
    assert_eq!(handshake_status(&err), 400);
}

// --- Meta's example payloads ------------------------------------------------------------

#[test]
fn a_whatsapp_text_message_is_keyed_by_business_number_and_customer() {
    let m = one(WHATSAPP_TEXT);
    assert_eq!(
        m.id,
        "whatsapp:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    );
    let msg = &m.message;
    assert_eq!(msg.source, "whatsapp");
    assert_eq!(msg.channel, Channel::Social);
    assert_eq!(msg.conversation, "whatsapp:106540352242922:16505551234");
    assert_eq!(msg.customer, "whatsapp:16505551234");
    assert_eq!(msg.summary, "Does it come in another color?");
    assert_eq!(msg.body.as_deref(), Some("Does it come in another color?"));
    assert_eq!(msg.urgency, None);
    assert!(msg.skills.is_empty());
    assert_eq!(attr(&m, "platform"), Some(&json!("whatsapp")));
    assert_eq!(attr(&m, "profile_name"), Some(&json!("Sheena Nelson")));
    assert_eq!(
        attr(&m, "business_account"),
        Some(&json!("102290129340398"))
    );
    assert_eq!(attr(&m, "phone_number_id"), Some(&json!("106540352242922")));
    assert_eq!(attr(&m, "message_type"), Some(&json!("text")));
}

#[test]
fn a_whatsapp_image_is_summarised_with_its_caption_and_media_id() {
    let m = one(WHATSAPP_IMAGE);
    assert_eq!(
        m.message.summary,
        "[image] Black and white, and the price tag"
    );
    assert_eq!(
        m.message.body.as_deref(),
        Some("Black and white, and the price tag")
    );
    assert_eq!(attr(&m, "media_id"), Some(&json!("1003383421387256")));
    assert_eq!(attr(&m, "mime_type"), Some(&json!("image/jpeg")));
    assert_eq!(
        m.message.conversation,
        "whatsapp:106540352242922:16505551234"
    );
}

#[test]
fn whatsapp_statuses_alone_are_ignored() {
    assert_eq!(
        signed(WHATSAPP_STATUS),
        Incoming::Ignored("delivery statuses only")
    );
}

#[test]
fn a_messenger_text_is_keyed_by_page_and_psid() {
    let m = one(MESSENGER_TEXT);
    assert_eq!(m.id, "messenger:mid.1457764197618:41d102a3e1ae206a38");
    assert_eq!(m.message.source, "messenger");
    assert_eq!(m.message.channel, Channel::Social);
    assert_eq!(m.message.conversation, "messenger:<PAGE_ID>:<PSID>");
    assert_eq!(m.message.customer, "messenger:<PSID>");
    assert_eq!(m.message.summary, "hello, world!");
    assert_eq!(
        attr(&m, "quick_reply_payload"),
        Some(&json!("<DEVELOPER_DEFINED_PAYLOAD>"))
    );
    assert_eq!(attr(&m, "timestamp"), Some(&json!(1458692752478_u64)));
}

#[test]
fn a_messenger_attachment_is_summarised_by_its_type() {
    let m = one(MESSENGER_ATTACHMENT);
    assert_eq!(m.id, "messenger:mid.$cAAJdkrCd2ORnva8ErFhjGm0X_Q_c");
    assert_eq!(m.message.conversation, "messenger:682498302938465:<PSID>");
    assert_eq!(m.message.summary, "[image]");
    assert_eq!(m.message.body, None);
    assert_eq!(
        attr(&m, "attachments"),
        Some(&json!([{ "type": "image", "url": "<ATTACHMENT_URL>" }]))
    );
}

#[test]
fn echoes_deliveries_and_reads_are_not_routed() {
    assert_eq!(
        signed(MESSENGER_ECHO_AND_DELIVERY),
        Incoming::Ignored("echoes of the business's own messages only")
    );
}

#[test]
fn a_postback_is_routed_with_its_title_as_text() {
    let m = one(MESSENGER_POSTBACK);
    assert_eq!(m.id, "messenger:m_MESSAGE-ID");
    assert_eq!(m.message.summary, "TITLE-FOR-THE-CTA");
    assert_eq!(m.message.body.as_deref(), Some("TITLE-FOR-THE-CTA"));
    assert_eq!(
        attr(&m, "postback_payload"),
        Some(&json!("USER-DEFINED-PAYLOAD"))
    );
    // Without a mid (older API versions), the id is still the same on every redelivery.
    let old = MESSENGER_POSTBACK.replace("\"mid\": \"m_MESSAGE-ID\",", "");
    assert_eq!(one(&old).id, "messenger:postback:<PSID>:1527459824");
    assert_eq!(one(&old).id, one(&old).id);
}

#[test]
fn an_instagram_message_is_keyed_by_account_and_igsid() {
    let m = one(INSTAGRAM_TEXT);
    assert_eq!(m.id, "instagram:MESSAGE-ID");
    assert_eq!(m.message.source, "instagram");
    assert_eq!(m.message.conversation, "instagram:IGID:IGSID");
    assert_eq!(m.message.customer, "instagram:IGSID");
    assert_eq!(m.message.summary, "MESSAGE-TEXT");
    assert_eq!(attr(&m, "platform"), Some(&json!("instagram")));
    assert_eq!(attr(&m, "business_account"), Some(&json!("IGID")));
    // Instagram sends echoes in the same `messages` field.
    let echo = INSTAGRAM_TEXT.replace("\"mid\"", "\"is_echo\": true, \"mid\"");
    assert!(matches!(signed(&echo), Incoming::Ignored(_)));
}

/// A WhatsApp notification carrying these messages, in the envelope of Meta's text example.
fn whatsapp_with(messages: Value) -> String {
    let mut n = fixture(WHATSAPP_TEXT);
    n["entry"][0]["changes"][0]["value"]["messages"] = messages;
    n.to_string()
}

#[test]
fn whatsapp_message_types_are_summarised_for_the_agent() {
    // Shapes from the messages webhook reference pages (location, interactive, button,
    // document, unsupported); values are samples.
    let base = |id: &str, kind: &str, key: &str, content: Value| {
        let mut m =
            json!({ "from": "16505551234", "id": id, "timestamp": "1750090702", "type": kind });
        if !key.is_empty() {
            m[key] = content;
        }
        m
    };
    let body = whatsapp_with(json!([
        base(
            "wamid.loc",
            "location",
            "location",
            json!({
            "latitude": 37.44216, "longitude": -122.16501,
            "name": "Philz Coffee", "address": "101 Forest Ave, Palo Alto, CA 94301" })
        ),
        base(
            "wamid.btn",
            "interactive",
            "interactive",
            json!({
            "type": "button_reply", "button_reply": { "id": "change-button", "title": "Change" } })
        ),
        base(
            "wamid.list",
            "interactive",
            "interactive",
            json!({
            "type": "list_reply",
            "list_reply": { "id": "priority-express", "title": "Express", "description": "Next day" } })
        ),
        base(
            "wamid.tpl",
            "button",
            "button",
            json!({ "payload": "Unsubscribe", "text": "Stop promotions" })
        ),
        base(
            "wamid.doc",
            "document",
            "document",
            json!({
            "filename": "invoice.pdf", "mime_type": "application/pdf",
            "sha256": "abc", "id": "3325318014397349" })
        ),
        base(
            "wamid.unsup",
            "unsupported",
            "errors",
            json!([{ "code": 131051, "title": "Message type unknown" }])
        ),
        base(
            "wamid.react",
            "reaction",
            "reaction",
            json!({ "message_id": "wamid.x", "emoji": "\u{1F44D}" })
        ),
    ]));
    let got = messages(&body);
    let summaries: Vec<&str> = got.iter().map(|m| m.message.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "[location] Philz Coffee, 101 Forest Ave, Palo Alto, CA 94301",
            "Change",
            "Express",
            "Stop promotions",
            "[document] invoice.pdf",
            "[unsupported]",
        ],
        "the reaction is not routed"
    );
    assert_eq!(attr(&got[0], "latitude"), Some(&json!(37.44216)));
    assert_eq!(attr(&got[1], "reply_id"), Some(&json!("change-button")));
    assert_eq!(attr(&got[2], "reply_id"), Some(&json!("priority-express")));
    assert_eq!(attr(&got[3], "button_payload"), Some(&json!("Unsubscribe")));
    assert_eq!(attr(&got[4], "mime_type"), Some(&json!("application/pdf")));
    assert_eq!(attr(&got[4], "media_id"), Some(&json!("3325318014397349")));
    assert_eq!(got[5].message.body, None);
    // Reactions alone are acknowledged and not routed.
    let only_reaction = whatsapp_with(json!([base(
        "wamid.r",
        "reaction",
        "reaction",
        json!({ "emoji": "" })
    )]));
    assert!(matches!(signed(&only_reaction), Incoming::Ignored(_)));
}

#[test]
fn each_whatsapp_sender_gets_their_own_profile_and_thread() {
    let mut n = fixture(WHATSAPP_TEXT);
    let value = &mut n["entry"][0]["changes"][0]["value"];
    value["contacts"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "profile": { "name": "Kerry" }, "wa_id": "16315551181" }));
    let mut second = value["messages"][0].clone();
    second["from"] = json!("16315551181");
    second["id"] = json!("wamid.second");
    value["messages"].as_array_mut().unwrap().insert(0, second);
    let got = messages(&n.to_string());
    assert_eq!(attr(&got[0], "profile_name"), Some(&json!("Kerry")));
    assert_eq!(
        got[0].message.conversation,
        "whatsapp:106540352242922:16315551181"
    );
    assert_eq!(attr(&got[1], "profile_name"), Some(&json!("Sheena Nelson")));
    assert_eq!(
        got[1].message.conversation,
        "whatsapp:106540352242922:16505551234"
    );
}

// --- batches, redeliveries and refusals -------------------------------------------------

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn a_mixed_whatsapp_batch_routes_only_the_messages_in_order() {
    let mut batch = fixture(WHATSAPP_TEXT);
    // Statuses in the same value as the text, a second entry with a reaction and an image.
    let status = fixture(WHATSAPP_STATUS)["entry"][0]["changes"][0]["value"]["statuses"].clone();
    batch["entry"][0]["changes"][0]["value"]["statuses"] = status;
    let mut second = fixture(WHATSAPP_IMAGE)["entry"][0].clone();
    let reaction = json!({
        "from": "16505551234", "id": "wamid.reaction", "timestamp": "1750090703",
        "type": "reaction", "reaction": { "message_id": "wamid.x", "emoji": "\u{1F44D}" }
    });
    second["changes"][0]["value"]["messages"]
        .as_array_mut()
        .unwrap()
        .insert(0, reaction);
    batch["entry"].as_array_mut().unwrap().push(second);
    let body = batch.to_string();
    let ids: Vec<String> = messages(&body).into_iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        [
            "whatsapp:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
            "whatsapp:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzN0Q1NTc2RjFDQUU2NTk3RjU0RgA=",
        ]
    );
}

#[test]
fn a_mixed_messenger_batch_routes_messages_and_postbacks_in_order() {
    let mut batch = fixture(MESSENGER_ECHO_AND_DELIVERY);
    let events = batch["entry"][0]["messaging"].as_array_mut().unwrap();
    events.insert(
        1,
        fixture(MESSENGER_TEXT)["entry"][0]["messaging"][0].clone(),
    );
    events.push(fixture(MESSENGER_POSTBACK)["entry"][0]["messaging"][0].clone());
    let mut second = fixture(MESSENGER_ATTACHMENT)["entry"][0].clone();
    second["standby"] = second["messaging"].clone();
    batch["entry"].as_array_mut().unwrap().push(second);
    let ids: Vec<String> = messages(&batch.to_string())
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(
        ids,
        [
            "messenger:mid.1457764197618:41d102a3e1ae206a38",
            "messenger:m_MESSAGE-ID",
            "messenger:mid.$cAAJdkrCd2ORnva8ErFhjGm0X_Q_c",
        ]
    );
}

#[test]
fn a_redelivery_gives_the_same_ids() {
    for text in FIXTURES {
        // Meta redelivers the same notification; whitespace may differ, the ids may not.
        let compact = fixture(text).to_string();
        assert_eq!(signed(text), signed(text));
        assert_eq!(signed(text), signed(&compact));
    }
}

#[test]
fn unknown_objects_are_ignored_and_bad_bodies_are_malformed() {
    let other = r#"{"object":"user","entry":[{"id":"1","changes":[]}]}"#;
    assert!(matches!(signed(other), Incoming::Ignored(_)));
    let malformed =
        |body: &str| match receive(SECRET, Some(&sign(body.as_bytes())), body.as_bytes()) {
            Err(ChannelError::Malformed(why)) => why,
            other => panic!("expected a malformed body for {body}, got {other:?}"),
        };
    assert!(malformed("not json").contains("notification"));
    assert!(malformed(r#"{"entry":[]}"#).contains("object"));
    assert!(malformed(r#"{"object":"page"}"#).contains("entry"));
    let no_from = WHATSAPP_TEXT.replace("\"from\": \"16505551234\",", "");
    let why = malformed(&no_from);
    assert!(why.contains("messages[0]") && why.contains("from"), "{why}");
    let no_metadata = fixture(WHATSAPP_TEXT)
        .to_string()
        .replace("metadata", "meta");
    assert!(malformed(&no_metadata).contains("metadata"));
    let long_mid = MESSENGER_TEXT.replace(
        "mid.1457764197618:41d102a3e1ae206a38",
        &"m".repeat(MAX_ID_LEN + 1),
    );
    assert!(malformed(&long_mid).contains("message.mid"));
    let no_sender = fixture(MESSENGER_TEXT)
        .to_string()
        .replace("\"sender\"", "\"sendr\"");
    assert!(malformed(&no_sender).contains("sender"));
}

#[test]
fn a_long_text_is_kept_whole_with_a_short_summary() {
    let long = "x".repeat(5000);
    let m = one(&MESSENGER_TEXT.replace("hello, world!", &long));
    assert_eq!(m.message.summary.chars().count(), SUMMARY_CHARS);
    assert_eq!(m.message.body.as_deref(), Some(long.as_str()));
}

// --- bounded fuzzing --------------------------------------------------------------------

/// What must hold of any answer to a correctly signed body.
fn check(answer: Result<Incoming, ChannelError>) -> Result<(), TestCaseError> {
    match answer {
        Ok(Incoming::Messages(ms)) => {
            prop_assert!(!ms.is_empty());
            for m in ms {
                prop_assert!(!m.id.is_empty() && m.id.len() <= 255, "id {:?}", m.id);
                prop_assert!(m.message.summary.chars().count() <= SUMMARY_CHARS);
                prop_assert_eq!(m.message.channel, Channel::Social);
            }
        }
        Ok(Incoming::Ignored(_)) => {}
        Ok(Incoming::Challenge(_)) => prop_assert!(false, "a POST is never a challenge"),
        Err(e) => prop_assert!(matches!(e, ChannelError::Malformed(_)), "{e:?}"),
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut body = text.as_bytes().to_vec();
    for m in mutations {
        match *m {
            Mutation::Flip(at, b) if !body.is_empty() => {
                let at = at % body.len();
                body[at] ^= b.max(1);
            }
            Mutation::Insert(at, b) => {
                let at = at % (body.len() + 1);
                body.insert(at, b);
            }
            Mutation::Truncate(at) => body.truncate(at % (body.len() + 1)),
            Mutation::Flip(..) => {}
        }
    }
    body
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_signed_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        check(receive(SECRET, Some(&sign(&body)), &body))?;
    }

    #[test]
    fn arbitrary_unsigned_bytes_are_refused(
        body in prop::collection::vec(any::<u8>(), 0..512),
        header in prop::option::of("sha256=[0-9a-f]{0,70}"),
    ) {
        let err = receive(SECRET, header.as_deref(), &body).unwrap_err();
        prop_assert!(matches!(err, ChannelError::Signature(_)));
    }

    #[test]
    fn mutated_fixtures_resigned_reach_the_parser_and_never_panic(
        which in 0..FIXTURES.len(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let body = mutate(FIXTURES[which], &mutations);
        check(receive(SECRET, Some(&sign(&body)), &body))?;
    }

    #[test]
    fn mutated_fixtures_not_resigned_are_refused(
        which in 0..FIXTURES.len(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let original = FIXTURES[which].as_bytes();
        let body = mutate(FIXTURES[which], &mutations);
        let answer = receive(SECRET, Some(&sign(original)), &body);
        if body == original {
            prop_assert!(answer.is_ok());
        } else {
            prop_assert!(matches!(answer, Err(ChannelError::Signature(_))));
        }
    }
}
