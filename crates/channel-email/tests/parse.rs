//! The parser against a corpus of real-shaped and malformed mail (tests/fixtures), two
//! large messages made here (a 100 kB header line, an 8 MiB attachment), and fuzzing over
//! arbitrary bytes and mutated fixtures: every input becomes a contact, nothing panics.

use std::path::Path;

use proptest::prelude::*;
use serde_json::json;
use switchboard_channel_email::{Defaults, Inbound, Origin, parse};

fn origin() -> Origin {
    Origin {
        mailbox: "support".into(),
        defaults: Defaults::default(),
    }
}

fn fixture(path: &str) -> Vec<u8> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&full)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", full.display());
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// What every contact must satisfy, whatever the input.
fn check_invariants(raw: &[u8], got: &Inbound) {
    assert!(got.id.starts_with("email:"), "{}", got.id);
    assert!(got.id.len() <= switchboard_bus::MAX_ID_LEN, "{}", got.id);
    assert!(!got.message.conversation.is_empty());
    assert!(got.message.conversation.len() <= switchboard_bus::MAX_ID_LEN);
    assert!(!got.message.customer.is_empty());
    assert!(!got.message.summary.is_empty());
    assert!(got.message.summary.chars().count() <= 200);
    assert!(
        got.message
            .body
            .as_ref()
            .is_none_or(|b| b.len() <= 64 * 1024),
        "body is bounded"
    );
    assert_eq!(got.message.attributes["raw_size"], json!(raw.len()));
    assert_eq!(got.message.source, "imap:support");
    // The same bytes always give the same id: redelivery is deduplicated.
    assert_eq!(parse(raw, &origin()).id, got.id);
}

#[test]
fn real_shaped_mail_is_read_fully() {
    let plain = parse(&fixture("good/plain.eml"), &origin());
    assert_eq!(plain.id, "email:order7-1@mail.example.com");
    assert_eq!(plain.message.customer, "ada@example.com");
    assert!(plain.message.body.as_deref().unwrap().contains("teapot"));

    let alt = parse(&fixture("good/alternative.eml"), &origin());
    assert_eq!(alt.message.summary, "Rechnung für März");
    assert_eq!(
        alt.message.body.as_deref().unwrap().trim(),
        "Die Rechnung für März fehlt."
    );
    assert_eq!(
        alt.message.attributes["cc"],
        json!(["billing@example.org", "team@example.org"])
    );
    assert_eq!(alt.message.attributes["from_name"], "Grace Hopper");

    let html = parse(&fixture("good/html-only.eml"), &origin());
    let body = html.message.body.unwrap();
    assert!(body.contains("Café prices down"), "{body:?}");
    assert!(!body.contains("color"), "style is not text: {body:?}");
    assert_eq!(html.message.attributes["list"], true);
    assert_eq!(html.message.attributes["bulk"], true);

    let reply = parse(&fixture("good/reply.eml"), &origin());
    assert_eq!(
        reply.message.conversation, plain.message.conversation,
        "same thread"
    );
    assert_ne!(reply.id, plain.id);

    let att = parse(&fixture("good/attachment.eml"), &origin());
    let attachments = att.message.attributes["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2);
    assert_eq!(attachments[0]["name"], "error.png");
    assert_eq!(attachments[0]["content_type"], "image/png");
    assert_eq!(attachments[0]["size"], 70, "decoded size");
    assert_eq!(attachments[1]["name"], "résumé.log");
    assert!(att.message.body.as_deref().unwrap().contains("screenshot"));

    let ooo = parse(&fixture("good/auto-reply.eml"), &origin());
    assert_eq!(ooo.message.attributes["auto_submitted"], "auto-replied");
    assert_eq!(
        ooo.message.conversation,
        "agent-reply-2@switchboard.example.org"
    );

    let bounce = parse(&fixture("good/bounce.eml"), &origin());
    assert_eq!(bounce.message.attributes["bounce"], true);
    assert_eq!(bounce.message.customer, "mailer-daemon@mx.example.org");

    for (name, raw) in corpus("good") {
        let got = parse(&raw, &origin());
        check_invariants(&raw, &got);
        assert!(
            !got.message.attributes.contains_key("parse_error"),
            "{name}: {:?}",
            got.message.attributes
        );
    }
}

#[test]
fn malformed_mail_still_becomes_a_contact() {
    for (name, raw) in corpus("malformed") {
        let got = parse(&raw, &origin());
        check_invariants(&raw, &got);
        eprintln!(
            "{name}: id {} customer {} summary {:?}",
            got.id, got.message.customer, got.message.summary
        );
    }
    let broken = parse(&fixture("malformed/broken-mime.eml"), &origin());
    assert_eq!(broken.id, "email:broken-mime-1@example.com");
    assert_eq!(broken.message.customer, "broken@example.com");
    assert_eq!(broken.message.summary, "Boundary never closes");

    let charset = parse(&fixture("malformed/unknown-charset.eml"), &origin());
    assert_eq!(charset.message.customer, "charset@example.com");
    assert!(
        charset
            .message
            .body
            .as_deref()
            .unwrap()
            .contains("Nirgendwo")
    );

    let headless = parse(&fixture("malformed/missing-headers.eml"), &origin());
    assert!(headless.id.starts_with("email:sha256:"));
    assert_eq!(headless.message.customer, "unknown");
    assert!(headless.message.attributes.contains_key("parse_error"));

    let anonymous = parse(&fixture("malformed/no-from-no-id.eml"), &origin());
    assert_eq!(anonymous.message.summary, "who sent this?");
    assert!(anonymous.id.starts_with("email:sha256:"));
}

#[test]
fn a_100_kb_header_line_is_survived() {
    let mut raw =
        b"From: long@example.com\r\nMessage-ID: <long-1@example.com>\r\nX-Long: ".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 100 * 1024));
    raw.extend_from_slice(b"\r\nSubject: ");
    raw.extend(std::iter::repeat_n(b'S', 100 * 1024));
    raw.extend_from_slice(b"\r\n\r\nbody\r\n");
    let got = parse(&raw, &origin());
    check_invariants(&raw, &got);
    assert_eq!(got.id, "email:long-1@example.com");
    assert_eq!(got.message.customer, "long@example.com");
    assert_eq!(got.message.summary, "S".repeat(200));
}

/// An 8 MiB attachment, base64 in 76-column lines, as mail clients send it.
pub fn with_attachment(size: usize) -> Vec<u8> {
    use std::fmt::Write;
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::with_capacity(size * 4 / 3 + size / 40);
    let mut line = 0;
    for i in 0..size.div_ceil(3) * 4 {
        encoded.push(B64[(i * 7 + i / 5) % 64] as char);
        line += 1;
        if line == 76 {
            encoded.push_str("\r\n");
            line = 0;
        }
    }
    let mut raw = String::new();
    let _ = write!(
        raw,
        "From: big@example.com\r\nTo: support@example.org\r\nSubject: Big log\r\nMessage-ID: <big-1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nThe log is attached.\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--B--\r\n"
    );
    raw.into_bytes()
}

#[test]
fn an_8_mib_attachment_is_described_not_carried() {
    let raw = with_attachment(8 * 1024 * 1024);
    let got = parse(&raw, &origin());
    check_invariants(&raw, &got);
    let attachments = got.message.attributes["attachments"].as_array().unwrap();
    assert_eq!(attachments[0]["name"], "big.bin");
    // Unpadded base64 of 8 MiB decodes to a byte or two more.
    let size = attachments[0]["size"].as_u64().unwrap();
    assert!((8 << 20..(8 << 20) + 3).contains(&size), "{size}");
    let json = serde_json::to_vec(&got.message).unwrap();
    assert!(
        json.len() < 4096,
        "the attachment's bytes are not in the message: {}",
        json.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let got = parse(&raw, &origin());
        check_invariants(&raw, &got);
    }

    #[test]
    fn header_like_noise_never_panics(lines in proptest::collection::vec(
        "(From|To|Cc|Subject|Message-ID|In-Reply-To|References|Content-Type|Content-Transfer-Encoding|Auto-Submitted|List-Id|Return-Path): [ -~]{0,80}", 0..12),
        body in "[ -~\r\n]{0,300}")
    {
        let raw = format!("{}\r\n\r\n{body}", lines.join("\r\n"));
        let got = parse(raw.as_bytes(), &origin());
        check_invariants(raw.as_bytes(), &got);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..14,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..24),
    ) {
        let mut all = corpus("good");
        all.extend(corpus("malformed"));
        let mut raw = all[which % all.len()].1.clone();
        for (at, byte, op) in edits {
            if raw.is_empty() { raw.push(byte); continue; }
            let i = at.index(raw.len());
            match op {
                0 => raw[i] = byte,
                1 => raw.insert(i, byte),
                _ => { raw.remove(i); }
            }
        }
        let got = parse(&raw, &origin());
        check_invariants(&raw, &got);
    }
}
