//! Webhooks to a real local HTTP server: signatures verified on the receiving side, order
//! kept per agent, retries while the receiver fails, and giving up after the last attempt.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use switchboard_delivery::{SIGNATURE_HEADER, WebhookConfig, Webhooks, verify};

const SECRET: &[u8] = b"webhook-secret-for-tests";

#[derive(Default)]
struct Receiver {
    /// Answer 503 to this many requests first.
    fail_first: AtomicU32,
    received: Mutex<Vec<String>>,
    refused_signatures: AtomicU32,
}

async fn serve(receiver: Arc<Receiver>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let r = receiver.clone();
            async move {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let header = headers
                    .get(SIGNATURE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if verify(SECRET, header, &body, now, 300).is_err() {
                    r.refused_signatures.fetch_add(1, Ordering::SeqCst);
                    return StatusCode::UNAUTHORIZED;
                }
                if r.fail_first
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                r.received
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

fn config(max_attempts: u32) -> WebhookConfig {
    WebhookConfig {
        secret: SECRET.to_vec(),
        max_attempts,
        timeout: Duration::from_secs(2),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    }
}

async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn signed_events_arrive_in_order_through_failures() {
    let receiver = Arc::new(Receiver::default());
    receiver.fail_first.store(3, Ordering::SeqCst);
    let url = serve(receiver.clone()).await;
    let hooks = Webhooks::new(config(6));
    for i in 0..5 {
        hooks.send("carol", &url, format!(r#"{{"event":"e{i}"}}"#).into_bytes());
    }
    until("five events", || {
        receiver.received.lock().unwrap().len() == 5
    })
    .await;
    let got = receiver.received.lock().unwrap().clone();
    let want: Vec<String> = (0..5).map(|i| format!(r#"{{"event":"e{i}"}}"#)).collect();
    assert_eq!(
        got, want,
        "in order, each once, despite three failures first"
    );
    assert_eq!(hooks.stats.failures.load(Ordering::SeqCst), 3);
    assert_eq!(hooks.stats.delivered.load(Ordering::SeqCst), 5);
    assert_eq!(receiver.refused_signatures.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_is_given_up_on() {
    let receiver = Arc::new(Receiver::default());
    receiver.fail_first.store(u32::MAX, Ordering::SeqCst);
    let url = serve(receiver.clone()).await;
    let hooks = Webhooks::new(config(3));
    hooks.send("dan", &url, br#"{"event":"offer"}"#.to_vec());
    until("the event dropped", || {
        hooks.stats.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(hooks.stats.attempts.load(Ordering::SeqCst), 3);
    assert!(receiver.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_receiver() {
    let receiver = Arc::new(Receiver::default());
    let url = serve(receiver.clone()).await;
    let mut wrong = config(1);
    wrong.secret = b"not-the-secret".to_vec();
    let hooks = Webhooks::new(wrong);
    hooks.send("eve", &url, br#"{"event":"offer"}"#.to_vec());
    until("the refusal", || {
        receiver.refused_signatures.load(Ordering::SeqCst) == 1
    })
    .await;
    until("the drop", || {
        hooks.stats.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_receiver_is_retried_then_given_up() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    let hooks = Webhooks::new(config(2));
    hooks.send("fay", &url, b"{}".to_vec());
    until("the drop", || {
        hooks.stats.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(hooks.stats.failures.load(Ordering::SeqCst), 2);
}
