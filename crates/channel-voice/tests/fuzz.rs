//! Bounded fuzzing of the parsers: arbitrary bytes and mutated real payloads never panic, a
//! mutated body is never accepted under the original signature unless it means the same, and
//! TwiML built from arbitrary text reads back as that text.

use proptest::prelude::*;
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use switchboard_channel_voice::twiml::{self, Prompt, Response, Say, Verb};
use switchboard_channel_voice::{ivr, twilio};

const TOKEN: &[u8] = b"test-auth-token";
const URL: &str = "https://switchboard.example.com/voice/twilio?queue=support";
const SECRET: &[u8] = b"ivr-secret";
const NOW: u64 = 1_700_000_000;

const FORMS: [&[u8]; 4] = [
    include_bytes!("fixtures/twilio-incoming.form"),
    include_bytes!("fixtures/twilio-gather.form"),
    include_bytes!("fixtures/twilio-status-completed.form"),
    include_bytes!("fixtures/telnyx-status-completed.form"),
];
const IVR: &[u8] = include_bytes!("fixtures/ivr-digits.json");

/// One change to a body.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
    Truncate { len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
    ]
}

fn mutate(body: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut body = body.to_vec();
    for m in mutations {
        let n = body.len().max(1);
        match *m {
            Mutation::Flip { at, bit } if !body.is_empty() => body[at % n] ^= 1 << bit,
            Mutation::Set { at, byte } if !body.is_empty() => body[at % n] = byte,
            Mutation::Insert { at, byte } => body.insert(at % (body.len() + 1), byte),
            Mutation::Remove { at } if !body.is_empty() => {
                body.remove(at % n);
            }
            Mutation::Truncate { len } => body.truncate(len % (body.len() + 1)),
            _ => {}
        }
    }
    body
}

/// What Twilio's signature covers besides the URL: names and values, sorted, concatenated.
fn signed_text(mut params: Vec<(String, String)>) -> String {
    params.sort();
    params.into_iter().map(|(n, v)| n + &v).collect()
}

/// Element name, attributes and text (for elements with text) of a TwiML document, read back
/// with quick-xml's reader.
type Read = (String, Vec<(String, String)>, Option<String>);

fn read_back(xml: &str) -> Vec<Read> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        let event = reader.read_event().expect("rendered TwiML is well-formed");
        let (e, has_text) = match &event {
            Event::Start(e) => (e.clone(), true),
            Event::Empty(e) => (e.clone(), false),
            Event::Eof => break,
            _ => continue,
        };
        let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
        let attributes = e
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                (key, a.unescape_value().unwrap().into_owned())
            })
            .collect();
        let text = if has_text && !matches!(name.as_str(), "Response" | "Gather" | "Dial") {
            let raw = reader.read_text(e.name()).unwrap();
            Some(quick_xml::escape::unescape(&raw).unwrap().into_owned())
        } else {
            None
        };
        out.push((name, attributes, text));
    }
    out
}

/// Text that XML finds awkward: markup characters, CDATA ends, quotes, controls, line ends,
/// astral characters; or anything at all.
fn awkward() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(
            prop_oneof![
                Just("<"),
                Just(">"),
                Just("&"),
                Just("&amp;"),
                Just("]]>"),
                Just("<![CDATA["),
                Just("\""),
                Just("'"),
                Just("\r\n"),
                Just("\r"),
                Just("\t"),
                Just("\u{0}"),
                Just("\u{1b}"),
                Just("\u{FFFE}"),
                Just("é"),
                Just("😀"),
                Just(" word "),
            ],
            0..24
        )
        .prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Correctly signed arbitrary bytes are never refused as unsigned and never panic; what
    /// parses re-encodes to the same parameters.
    #[test]
    fn arbitrary_twilio_bodies(body in prop::collection::vec(any::<u8>(), 0..600)) {
        match twilio::parse_form(&body) {
            Ok(params) => {
                let sig = twilio::signature(TOKEN, URL, &params);
                if let Err(e) = twilio::receive(TOKEN, URL, Some(&sig), &body) {
                    prop_assert_eq!(e.status(), 400, "{}", e);
                }
                let again: String = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&params)
                    .finish();
                prop_assert_eq!(twilio::parse_form(again.as_bytes()).unwrap(), params);
            }
            Err(e) => prop_assert_eq!(e.status(), 400),
        }
        let _ = twilio::receive(TOKEN, URL, Some("AAAA"), &body);
        let _ = twilio::receive(TOKEN, URL, None, &body);
    }

    /// Any URL, however odd its authority (user info, IPv6, ports, no scheme), is handled
    /// without panicking, and a signature made for it verifies.
    #[test]
    fn arbitrary_urls(
        url in prop_oneof![
            any::<String>(),
            "(https?|HTTPS|ftp)://([a-zé]{0,3}@)?(\\[[0-9a-f:]{0,6}\\]|[a-zé.]{0,8})(:[0-9a-z]{0,6})?([/?#][^ ]{0,8})?",
        ],
    ) {
        let params = vec![("CallSid".to_owned(), "CA1".to_owned())];
        let sig = twilio::signature(TOKEN, &url, &params);
        prop_assert!(twilio::verify(TOKEN, &url, &params, Some(&sig)).is_ok());
        prop_assert!(twilio::verify(b"other", &url, &params, Some(&sig)).is_err());
    }

    /// The same for the IVR webhook.
    #[test]
    fn arbitrary_ivr_bodies(body in prop::collection::vec(any::<u8>(), 0..600)) {
        let sig = switchboard_delivery::sign(SECRET, NOW, &body);
        if let Err(e) = ivr::receive(SECRET, Some(&sig), &body, NOW, 300) {
            prop_assert_eq!(e.status(), 400, "{}", e);
        }
        let _ = ivr::receive(SECRET, Some("t=1,v1=00"), &body, NOW, 300);
    }

    /// A real Twilio body changed by flips, insertions, removals or truncation is refused
    /// under its original signature, unless what Twilio signs is unchanged: the decoded
    /// parameters (`%2B` and `%2b` mean the same), concatenated without separators (so
    /// removing the `=` of `CallerCountry=US` gives `CallerCountryUS=`, which Twilio's scheme
    /// cannot tell apart; see the `twilio` module docs).
    #[test]
    fn mutated_twilio_bodies_are_refused(
        which in 0..FORMS.len(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let original = FORMS[which];
        let params = twilio::parse_form(original).unwrap();
        let sig = twilio::signature(TOKEN, URL, &params);
        prop_assert!(twilio::receive(TOKEN, URL, Some(&sig), original).is_ok());
        let body = mutate(original, &mutations);
        if twilio::receive(TOKEN, URL, Some(&sig), &body).is_ok() {
            let now = twilio::parse_form(&body).unwrap();
            prop_assert_eq!(signed_text(now), signed_text(params.clone()));
        }
    }

    /// A real IVR body changed in any byte is refused under its original signature.
    #[test]
    fn mutated_ivr_bodies_are_refused(mutations in prop::collection::vec(mutation(), 1..4)) {
        let sig = switchboard_delivery::sign(SECRET, NOW, IVR);
        prop_assert!(ivr::receive(SECRET, Some(&sig), IVR, NOW, 300).is_ok());
        let body = mutate(IVR, &mutations);
        let got = ivr::receive(SECRET, Some(&sig), &body, NOW, 300);
        if body == IVR {
            prop_assert!(got.is_ok());
        } else {
            prop_assert_eq!(got.unwrap_err().status(), 401);
        }
    }

    /// TwiML rendered from any text parses back, with quick-xml, to that text (less what XML
    /// cannot carry, see `xml_text` and `xml_attribute`).
    #[test]
    fn twiml_reads_back_as_built(
        text in awkward(),
        voice in awkward(),
        url in awkward(),
        action in awkward(),
    ) {
        let xml = Response::new()
            .verb(Verb::Say(Say { text: text.clone(), voice: Some(voice.clone()), language: None }))
            .verb(Verb::Gather {
                num_digits: Some(1),
                action: Some(action.clone()),
                method: None,
                timeout: None,
                prompt: vec![Prompt::Say(Say::new(text.clone())), Prompt::Play { url: url.clone() }],
            })
            .verb(Verb::Redirect { url: url.clone(), method: None })
            .render();
        prop_assert!(xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#));
        let t = twiml::xml_text(&text).into_owned();
        let u = twiml::xml_text(&url).into_owned();
        let attr = |name: &str, v: &str| (name.to_owned(), twiml::xml_attribute(v).into_owned());
        let expected: Vec<Read> = vec![
            ("Response".into(), vec![], None),
            ("Say".into(), vec![attr("voice", &voice)], Some(t.clone())),
            ("Gather".into(), vec![attr("numDigits", "1"), attr("action", &action)], None),
            ("Say".into(), vec![], Some(t)),
            ("Play".into(), vec![], Some(u.clone())),
            ("Redirect".into(), vec![], Some(u)),
        ];
        prop_assert_eq!(read_back(&xml), expected);
    }
}
