//! Sending against a real SMTP server: the aiosmtpd sink that `scripts/setup-mail` starts on
//! 127.0.0.1:10025 (`SWITCHBOARD_SMTP_PORT`), which stores every message it accepts as an
//! `.eml` file under `$SWITCHBOARD_MAIL_DIR/smtp` and refuses recipients named `refuse…`.
//!
//! The sink is started through the script when it is absent and we are root. When it cannot
//! be reached the tests fail under `CI=true` and are skipped, loudly, elsewhere.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mail_parser::MessageParser;
use switchboard_channel_email::compose::{ThreadHeaders, mailbox};
use switchboard_channel_email::{
    Ack, AckSettings, Defaults, Origin, SendError, Sender, SmtpConfig, TlsMode,
    acknowledge_decision, acknowledgement, agent_reply, parse,
};

struct Sink {
    port: u16,
    dir: PathBuf,
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The sink, started through `scripts/setup-mail` if it is not running; `None` (after a
/// loud message) when it cannot be had outside CI.
fn sink() -> Option<Sink> {
    let port = std::env::var("SWITCHBOARD_SMTP_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(10025);
    let dir = PathBuf::from(
        std::env::var("SWITCHBOARD_MAIL_DIR")
            .unwrap_or_else(|_| "/var/tmp/switchboard-mail".into()),
    )
    .join("smtp");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/setup-mail");
    let mut why = format!("nothing listens on 127.0.0.1:{port}");
    if !port_open(port) {
        if is_root() {
            match std::process::Command::new(&script).status() {
                Ok(s) if s.success() => {}
                Ok(s) => why = format!("{why}, and {} exited with {s}", script.display()),
                Err(e) => why = format!("{why}, and {} did not run: {e}", script.display()),
            }
        } else {
            why = format!("{why}; run `sudo {}`", script.display());
        }
    }
    if port_open(port) {
        return Some(Sink { port, dir });
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the SMTP sink is required under CI: {why}");
    }
    eprintln!("\n*** SKIPPED: SMTP sink tests: {why} ***\n");
    None
}

fn sender(sink: &Sink) -> Sender {
    let config = SmtpConfig::new(
        "127.0.0.1",
        sink.port,
        TlsMode::Plain,
        "Support <support@switchboard.test>",
    );
    Sender::new("support", &config).unwrap()
}

/// A token no other test run uses.
fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos}.{}.{:x}", std::process::id(), next_count())
}

fn next_count() -> u32 {
    // Enough to tell two tests of one run apart.
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The stored file holding the message with `message_id`, waiting a little for the sink to
/// write it.
fn stored(sink: &Sink, message_id: &str) -> Vec<u8> {
    assert!(
        !message_id.starts_with('<'),
        "ids are kept without brackets"
    );
    let needle = format!("Message-ID: <{message_id}>");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(entries) = std::fs::read_dir(&sink.dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "eml") {
                    continue;
                }
                if let Ok(raw) = std::fs::read(&path)
                    && String::from_utf8_lossy(&raw).contains(&needle)
                {
                    return raw;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no message with {message_id} in {}",
            sink.dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A header's value, unfolded (long `References` are folded over lines).
fn header(raw: &[u8], name: &str) -> Option<String> {
    let m = MessageParser::default().parse(raw).unwrap();
    m.header_raw(name)
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn origin() -> Origin {
    Origin {
        mailbox: "support".into(),
        defaults: Defaults::default(),
    }
}

#[tokio::test]
async fn an_acknowledgement_arrives_threaded_with_the_expected_time() {
    let Some(sink) = sink() else { return };
    let token = unique();
    let raw = format!(
        "From: Ada <ada.{token}@example.com>\r\nTo: support@switchboard.test\r\n\
         Subject: Broken order {token}\r\nMessage-ID: <m2.{token}@example.com>\r\n\
         In-Reply-To: <m1.{token}@example.com>\r\nReferences: <m1.{token}@example.com>\r\n\
         Return-Path: <ada.{token}@example.com>\r\n\r\nIt arrived broken.\r\n"
    );
    let incoming = parse(raw.as_bytes(), &origin()).message;
    let settings = AckSettings {
        enabled: true,
        ..AckSettings::default()
    };
    let now = SystemTime::now();
    let ack = acknowledge_decision(&incoming, "support@switchboard.test", 0, now, &settings)
        .expect("a plain message is acknowledged");
    assert_eq!(ack, Ack::InHours);
    let sender = sender(&sink);
    let message = acknowledgement(
        &incoming,
        sender.from(),
        &settings,
        ack,
        Duration::from_secs(2 * 3600 + 60),
        now,
    )
    .unwrap();
    let id = sender.send(&message).await.unwrap();

    let stored = stored(&sink, &id);
    let h = |name| header(&stored, name);
    assert_eq!(
        h("X-Sink-Rcpt-To").as_deref(),
        Some(format!("ada.{token}@example.com").as_str())
    );
    assert_eq!(
        h("X-Sink-Mail-From").as_deref(),
        Some("support@switchboard.test")
    );
    assert_eq!(h("Auto-Submitted").as_deref(), Some("auto-replied"));
    assert_eq!(h("In-Reply-To"), Some(format!("<m2.{token}@example.com>")));
    assert_eq!(
        h("References"),
        Some(format!("<m1.{token}@example.com> <m2.{token}@example.com>"))
    );
    assert_eq!(h("Subject"), Some(format!("Re: Broken order {token}")));
    let parsed = MessageParser::default().parse(&stored).unwrap();
    let body = parsed.body_text(0).unwrap();
    assert!(body.contains("within 3 hours."), "{body}");

    // What the mailbox receives back (a customer's reply to the acknowledgement) joins the
    // same conversation as the original.
    let reply = parse(&stored, &origin()).message;
    assert_eq!(reply.conversation, incoming.conversation);
    // And an acknowledgement is never acknowledged in turn.
    let again = acknowledge_decision(&reply, "support@switchboard.test", 0, now, &settings);
    assert_eq!(again.unwrap_err().reason(), "auto_submitted");
}

#[tokio::test]
async fn an_agent_reply_arrives_threaded_without_auto_submitted() {
    let Some(sink) = sink() else { return };
    let token = unique();
    let raw = format!(
        "From: Ada <ada.{token}@example.com>\r\nSubject: Re: Refund {token}\r\n\
         Message-ID: <m3.{token}@example.com>\r\nReferences: <m1.{token}@example.com> \
         <m2.{token}@example.com>\r\n\r\nStill waiting.\r\n"
    );
    let incoming = parse(raw.as_bytes(), &origin()).message;
    let thread = ThreadHeaders::of(&incoming);
    let sender = sender(&sink);
    let to = mailbox(&format!("Ada <ada.{token}@example.com>")).unwrap();
    let text = format!("Hello Ada, your refund {token} is on its way.\n");
    let message = agent_reply(&thread, sender.from(), &to, &text, SystemTime::now()).unwrap();
    let id = sender.send(&message).await.unwrap();

    let stored = stored(&sink, &id);
    let h = |name| header(&stored, name);
    assert_eq!(h("Auto-Submitted"), None);
    assert_eq!(h("In-Reply-To"), Some(format!("<m3.{token}@example.com>")));
    assert_eq!(
        h("References"),
        Some(format!(
            "<m1.{token}@example.com> <m2.{token}@example.com> <m3.{token}@example.com>"
        ))
    );
    assert_eq!(h("Subject"), Some(format!("Re: Refund {token}")));
    let parsed = MessageParser::default().parse(&stored).unwrap();
    assert!(
        parsed
            .body_text(0)
            .unwrap()
            .contains(&text.trim_end().to_owned())
    );
}

/// Sends an agent reply to `local.<token>@example.com`, which the sink must refuse.
async fn refused(sink: &Sink, local: &str) -> SendError {
    let token = unique();
    let sender = sender(sink);
    let to = mailbox(&format!("{local}.{token}@example.com")).unwrap();
    let message = agent_reply(
        &ThreadHeaders {
            subject: format!("refusal {token}"),
            ..ThreadHeaders::default()
        },
        sender.from(),
        &to,
        "this never arrives",
        SystemTime::now(),
    )
    .unwrap();
    match sender.send(&message).await {
        Err(e) => e,
        Ok(id) => panic!(
            "the sink on port {} accepted {to} ({id}): it predates the refusal rules of \
             scripts/smtp-sink.py; restart it (scripts/setup-mail stop, then scripts/setup-mail)",
            sink.port
        ),
    }
}

#[tokio::test]
async fn a_refused_recipient_reports_the_code_and_reason() {
    let Some(sink) = sink() else { return };
    let err = refused(&sink, "refuse").await;
    match &err {
        SendError::Refused {
            code,
            reason,
            permanent,
            server,
        } => {
            assert_eq!(*code, 550, "{err}");
            assert!(*permanent);
            assert!(reason.contains("recipient refused"), "{err}");
            assert_eq!(server, &format!("127.0.0.1:{}", sink.port));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(
        shown.contains("550") && shown.contains("refused"),
        "{shown}"
    );

    let err = refused(&sink, "defer").await;
    match &err {
        SendError::Refused {
            code,
            reason,
            permanent,
            ..
        } => {
            assert_eq!(*code, 451, "{err}");
            assert!(!*permanent, "a 4xx may succeed later");
            assert!(reason.contains("try again later"), "{err}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
