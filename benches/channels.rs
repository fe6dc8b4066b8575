//! What a channel webhook costs a customer, end to end on the embedded default: a signed
//! request checked, published with the bus's confirm, routed and persisted, and answered
//! with the customer's place and expected wait.
//!
//! - chat: a new web chat session per request; the answer carries position and wait.
//! - twilio: an incoming call (no menu); the answer is TwiML with the caller's place.
//! - meta: a WhatsApp webhook carrying 10 messages (Meta batches them); answered once all
//!   are published.
//!
//! `cargo bench --bench channels`. Options: `--requests N` (per channel), `--clients C`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Daemon, Setup, sign};

const SECRET: &str = "bench-secret";
const PUBLIC: &str = "https://switchboard.example.com/v1/channels/phone";

/// One request of the channel, numbered: (path, content type, headers, body).
fn request(channel: &str, i: usize) -> (String, &'static str, Vec<(&'static str, String)>, String) {
    match channel {
        "chat" => {
            let body = json!({ "message_id": format!("b-{i}"), "session": format!("s-{i}"),
                               "customer": format!("c-{i}"), "text": "Where is my parcel?" })
            .to_string();
            let sig = sign::switchboard(SECRET, &body);
            (
                "/v1/channels/webchat".into(),
                "application/json",
                vec![("switchboard-signature", sig)],
                body,
            )
        }
        "twilio" => {
            let sid = format!("CA{i:032}");
            let params = [
                ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
                ("CallSid", sid.as_str()),
                ("CallStatus", "ringing"),
                ("Direction", "inbound"),
                ("From", "+14155551234"),
                ("To", "+15005550006"),
            ];
            let sig = sign::twilio(SECRET, PUBLIC, &params);
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            (
                "/v1/channels/phone".into(),
                "application/x-www-form-urlencoded",
                vec![("x-twilio-signature", sig)],
                body,
            )
        }
        _ => {
            let messages: Vec<_> = (0..10)
                .map(|k| {
                    json!({ "from": format!("1650555{i:04}"), "id": format!("wamid.b{i}.{k}"),
                                 "timestamp": "1749416383", "type": "text",
                                 "text": { "body": "Does it come in another color?" } })
                })
                .collect();
            let body = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "102290129340398",
                "changes": [{ "field": "messages", "value": { "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
                    "messages": messages } }] }] })
            .to_string();
            let sig = sign::meta(SECRET, &body);
            (
                "/v1/channels/meta".into(),
                "application/json",
                vec![("x-hub-signature-256", sig)],
                body,
            )
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

async fn measure(d: &Daemon, channel: &str, requests: usize, clients: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, base) = (d.http.clone(), d.url(""));
        let (next, failed, channel) = (next.clone(), failed.clone(), channel.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return latencies;
                }
                let (path, content_type, headers, body) = request(&channel, i);
                let mut req = http
                    .post(format!("{base}{path}"))
                    .header("content-type", content_type)
                    .body(body);
                for (k, v) in headers {
                    req = req.header(k, v);
                }
                let sent = Instant::now();
                let r = req.send().await;
                latencies.push(sent.elapsed());
                if !r.is_ok_and(|r| r.status().is_success()) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let messages = if channel == "meta" {
        requests * 10
    } else {
        requests
    };
    println!(
        "{channel:>7} {requests:>9} {clients:>8} {:>10.0} {:>10.0} {:>9.2} {:>9.2} {:>7}",
        requests as f64 / elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        failed.load(Ordering::Relaxed),
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let requests = support::arg(&args, "--requests", 2000);
    let clients = support::arg(&args, "--clients", 16);
    let mut setup = Setup::embedded("bench-channels");
    setup.add_config(&format!(
        r#"
[sources.webchat]
type = "chat"
secret = "{SECRET}"

[sources.phone]
type = "twilio"
secret = "{SECRET}"
public_url = "{PUBLIC}"

[sources.meta]
type = "meta"
secret = "{SECRET}"
verify_token = "bench"
"#
    ));
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    println!("embedded (in-process bus, SQLite), release build, {clients} concurrent clients");
    println!("channel  requests  clients  requests/s  messages/s  p50 ms   p99 ms   failed");
    for channel in ["chat", "twilio", "meta"] {
        measure(&d, channel, requests, clients).await;
    }
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    setup.cleanup().await;
}
