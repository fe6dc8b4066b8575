//! Acknowledgements sent through the project's SMTP sink (scripts/setup-mail:
//! 127.0.0.1:10025, every message kept as a file under $SWITCHBOARD_MAIL_DIR/smtp), read
//! back and checked header by header. Without the sink these tests say SKIPPED loudly, and
//! fail under `CI=true`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lettre::message::Mailbox;
use mail_parser::MessageParser;
use switchboard_channel_email::ack::{Mailer, SmtpConfig, acknowledgement, may_acknowledge};
use switchboard_channel_email::{Defaults, Origin, TlsMode, parse};

fn sink(test: &str) -> Option<PathBuf> {
    if std::net::TcpStream::connect(("127.0.0.1", 10025)).is_err() {
        let msg = "SMTP sink not reachable at 127.0.0.1:10025; run `sudo scripts/setup-mail`";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("required in CI: {msg}");
        }
        eprintln!("SKIPPED {test}: {msg}");
        return None;
    }
    let dir = std::env::var("SWITCHBOARD_MAIL_DIR")
        .unwrap_or_else(|_| "/var/tmp/switchboard-mail".into());
    Some(Path::new(&dir).join("smtp"))
}

fn config(port: u16) -> SmtpConfig {
    toml::from_str(&format!(
        "host = \"127.0.0.1\"\nport = {port}\ntls = \"plain\"\n"
    ))
    .unwrap()
}

/// The message the sink stored for `rcpt`, waiting for it.
fn received(dir: &Path, rcpt: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "eml") {
                continue;
            }
            let raw = std::fs::read(&path).unwrap();
            if raw.starts_with(b"X-Sink-Mail-From:")
                && String::from_utf8_lossy(&raw[..raw.len().min(500)])
                    .contains(&format!("X-Sink-Rcpt-To: {rcpt}"))
            {
                let _ = std::fs::remove_file(&path);
                return raw;
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing for {rcpt} in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn an_acknowledgement_arrives_threaded_and_marked_automatic() {
    let Some(dir) = sink("ack") else { return };
    let customer = format!("ack-{}@example.com", std::process::id());
    let raw = format!(
        "From: Ada <{customer}>\r\nTo: support@example.org\r\nSubject: Order 7 arrived broken\r\nMessage-ID: <order7-2@example.com>\r\nReferences: <order7-1@example.com>\r\n\r\nHelp!\r\n"
    );
    let origin = Origin {
        mailbox: "support".into(),
        defaults: Defaults::default(),
    };
    let inbound = parse(raw.as_bytes(), &origin);
    may_acknowledge(&inbound.message, &["support@example.org".into()]).unwrap();
    let from: Mailbox = "Support <support@example.org>".parse().unwrap();
    let ack = acknowledgement(
        &inbound.message,
        &from,
        "We received \"{subject}\" and will answer {expected}.",
        Duration::from_secs(3 * 3600),
    )
    .unwrap();
    Mailer::new(&config(10025))
        .unwrap()
        .send(ack)
        .await
        .unwrap();

    let stored = received(&dir, &customer);
    let m = MessageParser::default().parse(&stored).unwrap();
    assert_eq!(m.subject(), Some("Re: Order 7 arrived broken"));
    assert_eq!(m.in_reply_to().as_text(), Some("order7-2@example.com"));
    assert_eq!(
        m.references().as_text_list().map(|l| l.to_vec()),
        Some(vec![
            "order7-1@example.com".into(),
            "order7-2@example.com".into()
        ])
    );
    assert_eq!(
        m.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );
    assert_eq!(
        m.from().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("support@example.org")
    );
    let body = m.body_text(0).unwrap();
    assert!(body.contains("will answer within 3 hours."), "{body}");

    // Our own acknowledgement, read back as mail, is never answered in turn.
    let again = parse(&stored, &origin);
    assert!(may_acknowledge(&again.message, &[]).is_err(), "no loop");
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_that_says_where() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = config(port);
    c.tls = TlsMode::Plain;
    c.timeout = Duration::from_secs(2);
    let from: Mailbox = "support@example.org".parse().unwrap();
    let message = lettre::Message::builder()
        .from(from.clone())
        .to(from)
        .subject("x")
        .body(String::from("x"))
        .unwrap();
    let err = Mailer::new(&c).unwrap().send(message).await.unwrap_err();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}
