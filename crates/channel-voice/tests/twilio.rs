//! Twilio's published signature test vector, and voice request bodies with the parameters
//! Twilio documents, signed with signatures computed outside this crate.
//!
//! The vector (auth token `12345`, URL `https://mycompany.com/myapp.php?foo=1&bar=2`,
//! expected `RSOYDt4T1cUTdK1PDd93/VVr8B8=`) is the one in twilio-python's
//! `tests/unit/test_request_validator.py` and TwilioDevEd/api-snippets'
//! `security/signature_validation/signature_validation.2.x.js`; the port vectors are from the
//! same python test. Every expected signature here was also recomputed independently with
//! Python's standard library:
//!
//! ```text
//! python3 -c 'import hmac,hashlib,base64; p={"CallSid":"CA1234567890ABCDE","Caller":"+14158675309",
//!   "Digits":"1234","From":"+14158675309","To":"+18005551212"};
//!   s="https://mycompany.com/myapp.php?foo=1&bar=2"+"".join(k+p[k] for k in sorted(p));
//!   print(base64.b64encode(hmac.new(b"12345",s.encode(),hashlib.sha1).digest()).decode())'
//! RSOYDt4T1cUTdK1PDd93/VVr8B8=
//! ```
//!
//! and likewise for the fixtures, with `urllib.parse.parse_qsl(body, keep_blank_values=True)`.

use switchboard_channel_voice::twilio::{self, CallStatus, Direction};

const VECTOR_TOKEN: &[u8] = b"12345";
const VECTOR_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

fn vector_params(caller: &str) -> Vec<(String, String)> {
    [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", caller),
        ("Digits", "1234"),
        ("From", caller),
        ("To", "+18005551212"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn twilios_published_vector() {
    let params = vector_params("+14158675309");
    assert_eq!(
        twilio::signature(VECTOR_TOKEN, VECTOR_URL, &params),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
    twilio::verify(
        VECTOR_TOKEN,
        VECTOR_URL,
        &params,
        Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    )
    .unwrap();
    // The api-snippets 3.x example uses another caller number.
    assert_eq!(
        twilio::signature(VECTOR_TOKEN, VECTOR_URL, &vector_params("+14158675310")),
        "GvWf1cFY/Q7PnoempGyD5oXAezc="
    );
    // Parameter order in the body does not matter: they are sorted by name.
    let mut reversed = params.clone();
    reversed.reverse();
    assert_eq!(
        twilio::signature(VECTOR_TOKEN, VECTOR_URL, &reversed),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
}

#[test]
fn ports_are_tried_with_and_without_as_the_sdks_do() {
    let params = vector_params("+14158675309");
    let check = |url: &str, signature: &str| {
        twilio::verify(VECTOR_TOKEN, url, &params, Some(signature))
            .unwrap_or_else(|e| panic!("{url} {signature}: {e}"));
    };
    // Signed without the port, received on a non-default port (a proxy in between).
    check(
        "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
    );
    // Signed with the non-default port, on http.
    check(
        "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
        "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
    );
    // Signed with the scheme's default port spelled out.
    check(VECTOR_URL, "kvajT1Ptam85bY51eRf/AJRuM3w=");
    check(
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        "0ZXoZLH/DfblKGATFgpif+LLRf4=",
    );
    // The query string is signed: another one is refused.
    let err = twilio::verify(
        VECTOR_TOKEN,
        "https://mycompany.com/myapp.php?foo=1&bar=3",
        &params,
        Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    )
    .unwrap_err();
    assert_eq!(err.status(), 401);
}

const URL: &str = "https://switchboard.example.com/voice/twilio?queue=support";
const TOKEN: &[u8] = b"test-auth-token";
const INCOMING: &[u8] = include_bytes!("fixtures/twilio-incoming.form");
const GATHER: &[u8] = include_bytes!("fixtures/twilio-gather.form");
const STATUS: &[u8] = include_bytes!("fixtures/twilio-status-completed.form");
const TELNYX: &[u8] = include_bytes!("fixtures/telnyx-status-completed.form");

#[test]
fn an_incoming_call_becomes_a_voice_contact() {
    let call = twilio::receive(TOKEN, URL, Some("+4Y7IvDDtVmPY4QPz3e9lC/CUUU="), INCOMING).unwrap();
    assert_eq!(call.call_sid, "CA1234567890ABCDE1234567890ABCDE12");
    assert_eq!(call.account_sid, "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX");
    assert_eq!(call.from, "+14158675309");
    assert_eq!(call.to, "+18005551212");
    assert_eq!(call.status, CallStatus::Ringing);
    assert_eq!(call.direction, Direction::Inbound);
    assert_eq!(call.digits, None);
    assert_eq!(call.others["FromCity"], "SAN FRANCISCO");
    let inbound = call.inbound();
    assert_eq!(inbound.id, "twilio:CA1234567890ABCDE1234567890ABCDE12");
    assert_eq!(inbound.message.channel, switchboard_core::Channel::Voice);
    assert_eq!(inbound.message.customer, "tel:+14158675309");
    assert_eq!(inbound.message.conversation, inbound.id);
    assert_eq!(inbound.message.attributes["from_country"], "US");
}

#[test]
fn a_gather_result_carries_the_digits_of_the_same_call() {
    let call = twilio::receive(TOKEN, URL, Some("4h6RgLl5kfFEmA473Uu3Z/I7N0M="), GATHER).unwrap();
    assert_eq!(call.status, CallStatus::InProgress);
    assert_eq!(call.digits.as_deref(), Some("2"));
    let inbound = call.inbound();
    assert_eq!(inbound.id, "twilio:CA1234567890ABCDE1234567890ABCDE12");
    assert_eq!(inbound.message.attributes["digits"], "2");
}

#[test]
fn status_callbacks_say_the_call_is_over() {
    let call = twilio::receive(TOKEN, URL, Some("AYsz3KDUFmWC3URh3EU3CY5ZrXw="), STATUS).unwrap();
    assert_eq!(call.status, CallStatus::Completed);
    assert!(call.status.is_final() && call.status.answered_then_ended());
    assert_eq!(call.call_duration, Some(87));
    assert_eq!(call.sequence_number, Some(3));
    assert_eq!(call.others["CallbackSource"], "call-progress-events");
    // Telnyx TeXML's documented callback: longer call ids, no Direction.
    let call = twilio::receive(TOKEN, URL, Some("Cs5SCc9HJshPkHj64iEVt+1uDxA="), TELNYX).unwrap();
    assert_eq!(
        call.call_sid,
        "v2:7V3r4VFCGLTzKLOveE0-7vM9dX17-NRQgU1byo-uuOIX9JcDadLLKw"
    );
    assert_eq!(call.direction, Direction::Unknown);
    assert_eq!(call.call_duration, Some(2));
    assert!(call.status.is_final());
}

#[test]
fn a_signature_for_another_body_or_url_is_refused() {
    // The incoming call's signature does not cover the gather request.
    let err =
        twilio::receive(TOKEN, URL, Some("+4Y7IvDDtVmPY4QPz3e9lC/CUUU="), GATHER).unwrap_err();
    assert_eq!(err.status(), 401);
    let err = twilio::receive(
        TOKEN,
        "https://switchboard.example.com/voice/twilio",
        Some("+4Y7IvDDtVmPY4QPz3e9lC/CUUU="),
        INCOMING,
    )
    .unwrap_err();
    assert_eq!(err.status(), 401);
    let err = twilio::receive(TOKEN, URL, None, INCOMING).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn a_signed_body_without_call_sid_is_a_400_naming_it() {
    let body = b"AccountSid=AC1&CallStatus=ringing&From=%2B1555";
    let params = twilio::parse_form(body).unwrap();
    let sig = twilio::signature(TOKEN, URL, &params);
    let err = twilio::receive(TOKEN, URL, Some(&sig), body).unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(err.to_string(), "malformed body: CallSid is missing");
}

#[test]
fn moved_separators_verify_as_in_twilios_own_scheme() {
    // Twilio signs names and values concatenated: removing the `=` of `CallerCountry=US`
    // leaves the signed text unchanged, so the original signature still verifies (as it
    // would with Twilio's SDKs). What the call says is unchanged, and the field the `=`
    // belonged to is gone rather than altered.
    let original =
        twilio::receive(TOKEN, URL, Some("+4Y7IvDDtVmPY4QPz3e9lC/CUUU="), INCOMING).unwrap();
    let body = String::from_utf8(INCOMING.to_vec())
        .unwrap()
        .replace("CallerCountry=US", "CallerCountryUS");
    let moved = twilio::receive(
        TOKEN,
        URL,
        Some("+4Y7IvDDtVmPY4QPz3e9lC/CUUU="),
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(moved.others.get("CallerCountry"), None);
    assert_eq!(moved.others["CallerCountryUS"], "");
    assert_eq!(
        (moved.call_sid, moved.status, moved.from),
        (original.call_sid, original.status, original.from)
    );
}
