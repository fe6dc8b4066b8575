//! TwiML answers: what a Twilio-compatible provider does next with the call.
//!
//! A small typed builder over the verbs the daemon needs (<https://www.twilio.com/docs/voice/twiml>):
//! `<Say>`, `<Play>`, `<Pause>`, `<Gather>` (with `<Say>`, `<Play>` and `<Pause>` nested, the
//! only verbs TwiML allows inside it), `<Redirect>`, `<Dial>` to a `<Number>`, `<Client>` or
//! `<Sip>`, and `<Hangup>`. Attribute names are TwiML's (`voice`, `language`, `length`,
//! `numDigits`, `action`, `method`, `timeout`). Escaping is quick-xml's; characters XML 1.0
//! cannot carry at all (most C0 controls, U+FFFE, U+FFFF) are dropped, carriage returns in text
//! become line feeds, and line breaks and tabs in attribute values become spaces (an XML parser
//! would do the same to them), so what the provider reads is what was built.
//!
//! [`wait_announcement`] is the sentence a waiting caller hears about their place in line.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

/// The HTTP method the provider uses for an `action` or `<Redirect>` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST` (TwiML's default).
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// `<Say>`: text read to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Say {
    /// What is said.
    pub text: String,
    /// The `voice` attribute (`alice`, `man`, `woman`, `Polly.Joanna`, …); the provider's
    /// default when absent.
    pub voice: Option<String>,
    /// The `language` attribute (`en-US`, `de-DE`, …).
    pub language: Option<String>,
}

impl Say {
    /// Text in the provider's default voice and language.
    pub fn new(text: impl Into<String>) -> Say {
        Say {
            text: text.into(),
            voice: None,
            language: None,
        }
    }
}

/// What may be played while a `<Gather>` waits for digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// `<Say>`.
    Say(Say),
    /// `<Play>`: an audio file's URL.
    Play {
        /// The audio URL.
        url: String,
    },
    /// `<Pause length="…"/>`.
    Pause {
        /// Seconds of silence.
        seconds: u32,
    },
}

/// Whom a `<Dial>` calls: an agent's softphone, phone number or SIP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// `<Client>`: a Twilio Voice SDK identity (from `client:<name>`).
    Client(String),
    /// `<Number>`: an E.164 number (`+15551234567`).
    Number(String),
    /// `<Sip>`: a SIP URI (`sip:alice@pbx.example.com`), kept whole.
    Sip(String),
}

impl DialTarget {
    /// Reads an agent's dial address as written in configuration: `client:alice`,
    /// `+15551234567` or `sip:alice@pbx.example.com` (or `sips:`). The error says what was
    /// expected.
    pub fn parse(value: &str) -> Result<DialTarget, String> {
        let expected = || {
            format!(
                "dial target {value:?}: expected client:<name> (letters, digits, _ . - @), \
                 +<E.164 number> or sip:<user>@<host>"
            )
        };
        if let Some(name) = value.strip_prefix("client:") {
            let ok = !name.is_empty()
                && name.len() <= 128
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@'));
            return ok
                .then(|| DialTarget::Client(name.to_owned()))
                .ok_or_else(expected);
        }
        if let Some(digits) = value.strip_prefix('+') {
            // E.164: up to 15 digits, the country code never starts with 0.
            let ok = (2..=15).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0');
            return ok
                .then(|| DialTarget::Number(value.to_owned()))
                .ok_or_else(expected);
        }
        let lower = value.get(..5).map(str::to_ascii_lowercase);
        let rest = match lower.as_deref() {
            Some("sips:") => &value[5..],
            Some(l) if l.starts_with("sip:") => &value[4..],
            _ => return Err(expected()),
        };
        let ok = value.len() <= 255
            && rest
                .split_once('@')
                .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty())
            && rest
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"'));
        ok.then(|| DialTarget::Sip(value.to_owned()))
            .ok_or_else(expected)
    }
}

impl fmt::Display for DialTarget {
    /// The configuration spelling that [`DialTarget::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialTarget::Client(name) => write!(f, "client:{name}"),
            DialTarget::Number(number) | DialTarget::Sip(number) => f.write_str(number),
        }
    }
}

/// One TwiML verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// `<Say>`.
    Say(Say),
    /// `<Play>`: an audio file's URL.
    Play {
        /// The audio URL.
        url: String,
    },
    /// `<Pause length="…"/>`.
    Pause {
        /// Seconds of silence.
        seconds: u32,
    },
    /// `<Gather>`: collect keyed digits while the prompt plays; the provider requests
    /// `action` with `Digits` when done.
    Gather {
        /// `numDigits`: stop after this many digits.
        num_digits: Option<u32>,
        /// `action`: the URL requested with the digits (the current one when absent).
        action: Option<String>,
        /// `method` for `action`.
        method: Option<Method>,
        /// `timeout`: seconds of silence that end the input.
        timeout: Option<u32>,
        /// Played while waiting.
        prompt: Vec<Prompt>,
    },
    /// `<Redirect>`: fetch the next TwiML from this URL.
    Redirect {
        /// The URL.
        url: String,
        /// `method` for the URL.
        method: Option<Method>,
    },
    /// `<Dial>`: connect the caller to an agent.
    Dial {
        /// Whom to call.
        target: DialTarget,
        /// `timeout`: seconds to let it ring.
        timeout: Option<u32>,
        /// `action`: the URL requested when the dialled call ends, with `DialCallStatus`.
        action: Option<String>,
    },
    /// `<Hangup/>`.
    Hangup,
}

/// A TwiML document: `<Response>` and its verbs, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The verbs, executed in order.
    pub verbs: Vec<Verb>,
}

impl Response {
    /// An empty response (the provider hangs up after it).
    pub fn new() -> Response {
        Response::default()
    }

    /// Adds a verb.
    pub fn verb(mut self, verb: Verb) -> Response {
        self.verbs.push(verb);
        self
    }

    /// Adds `<Say>` in the default voice.
    pub fn say(self, text: impl Into<String>) -> Response {
        self.verb(Verb::Say(Say::new(text)))
    }

    /// Adds `<Pause>`.
    pub fn pause(self, seconds: u32) -> Response {
        self.verb(Verb::Pause { seconds })
    }

    /// Adds `<Redirect method="POST">`.
    pub fn redirect(self, url: impl Into<String>) -> Response {
        self.verb(Verb::Redirect {
            url: url.into(),
            method: Some(Method::Post),
        })
    }

    /// Adds `<Dial>`.
    pub fn dial(
        self,
        target: DialTarget,
        timeout: Option<u32>,
        action: Option<String>,
    ) -> Response {
        self.verb(Verb::Dial {
            target,
            timeout,
            action,
        })
    }

    /// Adds `<Hangup/>`.
    pub fn hangup(self) -> Response {
        self.verb(Verb::Hangup)
    }

    /// The waiting loop: say where the caller stands, hold for `hold_seconds`, then ask
    /// `url` again for what comes next.
    pub fn hold(announcement: &str, hold_seconds: u32, url: &str) -> Response {
        Response::new()
            .say(announcement)
            .pause(hold_seconds)
            .redirect(url)
    }

    /// The document, with its XML declaration.
    pub fn render(&self) -> String {
        let mut writer = Writer::new(Vec::new());
        let written = writer
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
            .and_then(|()| {
                writer.create_element("Response").write_inner_content(|w| {
                    for verb in &self.verbs {
                        write_verb(w, verb)?;
                    }
                    Ok(())
                })
            });
        written.expect("writing XML to memory cannot fail");
        String::from_utf8(writer.into_inner()).expect("the writer was given only UTF-8")
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

type Out = Writer<Vec<u8>>;

fn write_verb(w: &mut Out, verb: &Verb) -> std::io::Result<()> {
    match verb {
        Verb::Say(say) => write_say(w, say),
        Verb::Play { url } => write_text(w, "Play", &[], url),
        Verb::Pause { seconds } => write_pause(w, *seconds),
        Verb::Gather {
            num_digits,
            action,
            method,
            timeout,
            prompt,
        } => {
            let num_digits = num_digits.map(|n| n.to_string());
            let timeout = timeout.map(|n| n.to_string());
            let attributes = [
                ("numDigits", num_digits.as_deref()),
                ("action", action.as_deref()),
                ("method", method.map(Method::as_str)),
                ("timeout", timeout.as_deref()),
            ];
            let element = with_attributes(w.create_element("Gather"), &attributes);
            if prompt.is_empty() {
                element.write_empty()?;
            } else {
                element.write_inner_content(|w| {
                    for p in prompt {
                        match p {
                            Prompt::Say(say) => write_say(w, say)?,
                            Prompt::Play { url } => write_text(w, "Play", &[], url)?,
                            Prompt::Pause { seconds } => write_pause(w, *seconds)?,
                        }
                    }
                    Ok(())
                })?;
            }
            Ok(())
        }
        Verb::Redirect { url, method } => write_text(
            w,
            "Redirect",
            &[("method", method.map(Method::as_str))],
            url,
        ),
        Verb::Dial {
            target,
            timeout,
            action,
        } => {
            let timeout = timeout.map(|n| n.to_string());
            let attributes = [
                ("timeout", timeout.as_deref()),
                ("action", action.as_deref()),
            ];
            with_attributes(w.create_element("Dial"), &attributes).write_inner_content(|w| {
                match target {
                    DialTarget::Client(name) => write_text(w, "Client", &[], name),
                    DialTarget::Number(number) => write_text(w, "Number", &[], number),
                    DialTarget::Sip(uri) => write_text(w, "Sip", &[], uri),
                }
            })?;
            Ok(())
        }
        Verb::Hangup => {
            w.create_element("Hangup").write_empty()?;
            Ok(())
        }
    }
}

fn write_say(w: &mut Out, say: &Say) -> std::io::Result<()> {
    let attributes = [
        ("voice", say.voice.as_deref()),
        ("language", say.language.as_deref()),
    ];
    write_text(w, "Say", &attributes, &say.text)
}

fn write_pause(w: &mut Out, seconds: u32) -> std::io::Result<()> {
    let length = seconds.to_string();
    with_attributes(w.create_element("Pause"), &[("length", Some(&length))]).write_empty()?;
    Ok(())
}

fn write_text(
    w: &mut Out,
    name: &str,
    attributes: &[(&str, Option<&str>)],
    text: &str,
) -> std::io::Result<()> {
    with_attributes(w.create_element(name), attributes)
        .write_text_content(BytesText::new(&xml_text(text)))?;
    Ok(())
}

fn with_attributes<'w>(
    mut element: quick_xml::writer::ElementWriter<'w, Vec<u8>>,
    attributes: &[(&str, Option<&str>)],
) -> quick_xml::writer::ElementWriter<'w, Vec<u8>> {
    for (name, value) in attributes {
        if let Some(value) = value {
            element = element.with_attribute((*name, xml_attribute(value).as_ref()));
        }
    }
    element
}

/// Whether XML 1.0 can carry the character at all (its `Char` production).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Text content as an XML parser will read it back: characters XML cannot carry dropped,
/// line ends normalised to `\n` as parsers normalise them.
pub fn xml_text(text: &str) -> Cow<'_, str> {
    if text.chars().all(|c| xml_char(c) && c != '\r') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.replace("\r\n", "\n")
            .chars()
            .filter(|&c| xml_char(c))
            .map(|c| if c == '\r' { '\n' } else { c })
            .collect(),
    )
}

/// An attribute value as an XML parser will read it back: characters XML cannot carry
/// dropped, tabs and line breaks as spaces (attribute-value normalisation).
pub fn xml_attribute(value: &str) -> Cow<'_, str> {
    if value
        .chars()
        .all(|c| xml_char(c) && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Cow::Borrowed(value);
    }
    Cow::Owned(
        value
            .replace("\r\n", " ")
            .chars()
            .filter(|&c| xml_char(c))
            .map(|c| {
                if matches!(c, '\t' | '\n' | '\r') {
                    ' '
                } else {
                    c
                }
            })
            .collect(),
    )
}

/// The sentence a waiting caller hears: their place in line (1 is next) and, when known,
/// the expected wait, rounded as a person would say it.
///
/// - first in line with no wait: "We are finding an agent for you now.";
/// - otherwise the place ("You are next in the queue." or "You are number 3 in the
///   queue.") and, when `expected` is known, "The expected wait is less than a minute.",
///   "… about a minute.", "… about N minutes." (to the nearest minute), "… about an hour."
///   or "… more than an hour.".
///
/// A position of 0 is read as 1.
pub fn wait_announcement(position: usize, expected: Option<Duration>) -> String {
    let position = position.max(1);
    if position == 1 && expected == Some(Duration::ZERO) {
        return "We are finding an agent for you now.".into();
    }
    let place = if position == 1 {
        "You are next in the queue.".to_owned()
    } else {
        format!("You are number {position} in the queue.")
    };
    let Some(expected) = expected else {
        return place;
    };
    let seconds = expected.as_secs();
    let minutes = (seconds + 30) / 60;
    let wait = if seconds > 3600 {
        "more than an hour".to_owned()
    } else if seconds < 60 {
        "less than a minute".to_owned()
    } else if minutes == 1 {
        "about a minute".to_owned()
    } else if minutes >= 60 {
        "about an hour".to_owned()
    } else {
        format!("about {minutes} minutes")
    };
    format!("{place} The expected wait is {wait}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

    #[test]
    fn a_waiting_loop_renders_as_twiml() {
        let xml = Response::hold(
            "You are number 3 in the queue.",
            20,
            "https://sb.example.com/voice/twilio/wait?call=CA1&q=a",
        )
        .render();
        assert_eq!(
            xml,
            format!(
                "{DECL}<Response><Say>You are number 3 in the queue.</Say>\
                 <Pause length=\"20\"/>\
                 <Redirect method=\"POST\">https://sb.example.com/voice/twilio/wait?call=CA1&amp;q=a</Redirect>\
                 </Response>"
            )
        );
    }

    #[test]
    fn every_verb_has_twimls_attribute_names() {
        let xml = Response::new()
            .verb(Verb::Say(Say {
                text: "Bonjour & <bienvenue>".into(),
                voice: Some("Polly.Celine".into()),
                language: Some("fr-FR".into()),
            }))
            .verb(Verb::Gather {
                num_digits: Some(1),
                action: Some("/voice/twilio/menu".into()),
                method: Some(Method::Post),
                timeout: Some(5),
                prompt: vec![
                    Prompt::Say(Say::new("Press 1 for billing.")),
                    Prompt::Pause { seconds: 1 },
                    Prompt::Play {
                        url: "https://cdn.example.com/menu.mp3".into(),
                    },
                ],
            })
            .dial(
                DialTarget::parse("client:alice").unwrap(),
                Some(20),
                Some("/voice/twilio/dialed".into()),
            )
            .verb(Verb::Play {
                url: "https://cdn.example.com/bye.mp3".into(),
            })
            .verb(Verb::Redirect {
                url: "/voice/twilio/wait".into(),
                method: Some(Method::Get),
            })
            .hangup()
            .render();
        assert_eq!(
            xml,
            format!(
                "{DECL}<Response>\
                 <Say voice=\"Polly.Celine\" language=\"fr-FR\">Bonjour &amp; &lt;bienvenue&gt;</Say>\
                 <Gather numDigits=\"1\" action=\"/voice/twilio/menu\" method=\"POST\" timeout=\"5\">\
                 <Say>Press 1 for billing.</Say><Pause length=\"1\"/>\
                 <Play>https://cdn.example.com/menu.mp3</Play></Gather>\
                 <Dial timeout=\"20\" action=\"/voice/twilio/dialed\"><Client>alice</Client></Dial>\
                 <Play>https://cdn.example.com/bye.mp3</Play>\
                 <Redirect method=\"GET\">/voice/twilio/wait</Redirect>\
                 <Hangup/></Response>"
            )
        );
        assert_eq!(
            Response::new().render(),
            format!("{DECL}<Response></Response>")
        );
    }

    #[test]
    fn dial_targets_are_parsed_or_explained() {
        assert_eq!(
            DialTarget::parse("+15551234567"),
            Ok(DialTarget::Number("+15551234567".into()))
        );
        assert_eq!(
            DialTarget::parse("sip:alice@pbx.example.com"),
            Ok(DialTarget::Sip("sip:alice@pbx.example.com".into()))
        );
        assert_eq!(
            DialTarget::parse("sips:bob@10.0.0.2:5061;transport=tls"),
            Ok(DialTarget::Sip(
                "sips:bob@10.0.0.2:5061;transport=tls".into()
            ))
        );
        assert_eq!(
            DialTarget::parse("client:alice"),
            Ok(DialTarget::Client("alice".into()))
        );
        for bad in [
            "",
            "alice",
            "5551234567",
            "+",
            "+0123",
            "+1555123456789012",
            "+1 555",
            "client:",
            "client:al ice",
            "sip:pbx.example.com",
            "sip:@host",
            "sip:a@",
            "sip:a@b c",
            "tel:+15551234567",
        ] {
            let err = DialTarget::parse(bad).unwrap_err();
            assert!(err.contains("expected client:<name>"), "{bad}: {err}");
        }
        for ok in ["client:alice", "+15551234567", "sip:alice@pbx.example.com"] {
            assert_eq!(DialTarget::parse(ok).unwrap().to_string(), ok);
        }
    }

    #[test]
    fn what_xml_cannot_carry_is_dropped_and_line_ends_normalised() {
        assert_eq!(xml_text("a\u{0}b\u{1b}c\r\nd\re\u{FFFE}"), "abc\nd\ne");
        assert_eq!(xml_attribute("a\tb\r\nc\u{7}"), "a b c");
        assert!(matches!(xml_text("plain <&> text"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_wait_is_said_as_a_person_would() {
        let min = |m: u64| Some(Duration::from_secs(m * 60));
        assert_eq!(
            wait_announcement(1, Some(Duration::ZERO)),
            "We are finding an agent for you now."
        );
        assert_eq!(
            wait_announcement(0, Some(Duration::ZERO)),
            "We are finding an agent for you now."
        );
        assert_eq!(wait_announcement(1, None), "You are next in the queue.");
        assert_eq!(wait_announcement(3, None), "You are number 3 in the queue.");
        assert_eq!(
            wait_announcement(3, min(4)),
            "You are number 3 in the queue. The expected wait is about 4 minutes."
        );
        assert_eq!(
            wait_announcement(2, Some(Duration::ZERO)),
            "You are number 2 in the queue. The expected wait is less than a minute."
        );
        assert_eq!(
            wait_announcement(1, Some(Duration::from_secs(59))),
            "You are next in the queue. The expected wait is less than a minute."
        );
        let wait = |secs: u64| {
            wait_announcement(5, Some(Duration::from_secs(secs)))
                .trim_start_matches("You are number 5 in the queue. The expected wait is ")
                .to_owned()
        };
        assert_eq!(wait(60), "about a minute.");
        assert_eq!(wait(89), "about a minute.");
        assert_eq!(wait(90), "about 2 minutes.");
        assert_eq!(wait(4 * 60 + 29), "about 4 minutes.");
        assert_eq!(wait(59 * 60 + 29), "about 59 minutes.");
        assert_eq!(wait(59 * 60 + 30), "about an hour.");
        assert_eq!(wait(3600), "about an hour.");
        assert_eq!(wait(3601), "more than an hour.");
        assert_eq!(wait(86_400 * 365), "more than an hour.");
    }
}
