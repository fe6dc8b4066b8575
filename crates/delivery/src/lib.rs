//! Getting offers and updates to the tools agents already use: signed webhooks.
//!
//! Every event is POSTed as JSON to the agent's URL with a signature header,
//!
//! ```text
//! Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//! ```
//!
//! so a receiver can check it came from Switchboard ([`verify`]) and refuse replays (a
//! `t` older than its tolerance). Each agent's events go out one at a time, in order: an
//! agent's tool never sees an update for a contact before its offer. A failed delivery
//! (connection error, timeout, non-2xx answer) is retried with exponential backoff and
//! jitter; after the last attempt the event is dropped and counted, and the offer it
//! carried expires in the engine as any unanswered offer does, going to the next agent.
//!
//! Modules: this file only — [`sign`] / [`verify`] and the [`Webhooks`] sender.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Switchboard-Signature";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signature header value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex(&mac(secret, timestamp, body)))
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header is malformed: expected t=<unix seconds>,v1=<hex>")]
    Malformed,
    #[error("signature is {age} s old, more than the {tolerance} s allowed (a replay?)")]
    TooOld { age: u64, tolerance: u64 },
    #[error("signature does not match the body")]
    Mismatch,
}

/// Checks a signature header against `body` at `now` (unix seconds), refusing those older
/// than `tolerance` seconds. The comparison is constant-time.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: u64,
    tolerance: u64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(SignatureError::Malformed);
    };
    let age = now.saturating_sub(t);
    if age > tolerance {
        return Err(SignatureError::TooOld { age, tolerance });
    }
    let expected = hex(&mac(secret, t, body));
    if bool::from(expected.as_bytes().ct_eq(v1.as_bytes())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// How webhooks are sent.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The HMAC key.
    pub secret: Vec<u8>,
    /// Attempts per event, the first included.
    pub max_attempts: u32,
    /// Time allowed for one attempt.
    pub timeout: Duration,
    /// Delay before the first retry; doubles with each retry (with jitter), up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

/// Counters, for metrics and tests.
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Attempts made.
    pub attempts: AtomicU64,
    /// Events delivered (a 2xx answer).
    pub delivered: AtomicU64,
    /// Attempts that failed.
    pub failures: AtomicU64,
    /// Events dropped after the last attempt.
    pub dropped: AtomicU64,
}

/// One event for one agent's URL.
#[derive(Debug, Clone)]
struct Outgoing {
    url: String,
    body: Arc<[u8]>,
}

/// Sends each agent's events in order, one at a time, with retries.
#[derive(Debug, Clone)]
pub struct Webhooks {
    config: Arc<WebhookConfig>,
    client: reqwest::Client,
    queues: Arc<DashMap<String, mpsc::UnboundedSender<Outgoing>>>,
    /// What happened so far.
    pub stats: Arc<WebhookStats>,
}

impl Webhooks {
    /// A sender; nothing is sent until [`Webhooks::send`].
    pub fn new(config: WebhookConfig) -> Webhooks {
        Webhooks {
            client: reqwest::Client::builder()
                .timeout(config.timeout)
                .build()
                .expect("an HTTP client without TLS builds"),
            config: Arc::new(config),
            queues: Arc::new(DashMap::new()),
            stats: Arc::default(),
        }
    }

    /// Queues `body` for `agent`'s `url`; events of one agent leave in the order queued.
    pub fn send(&self, agent: &str, url: &str, body: Vec<u8>) {
        let outgoing = Outgoing {
            url: url.to_owned(),
            body: body.into(),
        };
        let tx = self
            .queues
            .entry(agent.to_owned())
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(self.clone().worker(agent.to_owned(), rx));
                tx
            })
            .clone();
        let _ = tx.send(outgoing);
    }

    async fn worker(self, agent: String, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
        while let Some(event) = rx.recv().await {
            self.deliver(&agent, &event).await;
        }
    }

    async fn deliver(&self, agent: &str, event: &Outgoing) {
        let c = &self.config;
        let mut backoff = c.initial_backoff;
        for attempt in 1..=c.max_attempts.max(1) {
            self.stats.attempts.fetch_add(1, Ordering::Relaxed);
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let result = self
                .client
                .post(&event.url)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, sign(&c.secret, now, &event.body))
                .body(event.body.to_vec())
                .send()
                .await;
            let failure = match result {
                Ok(r) if r.status().is_success() => {
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    debug!(agent, attempt, "webhook delivered");
                    return;
                }
                Ok(r) => format!("answered {}", r.status()),
                Err(e) => e.to_string(),
            };
            self.stats.failures.fetch_add(1, Ordering::Relaxed);
            if attempt == c.max_attempts.max(1) {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                warn!(agent, attempts = attempt, reason = %failure, "webhook given up; the offer will expire and go to the next agent");
                return;
            }
            warn!(agent, attempt, reason = %failure, retry_in = ?backoff, "webhook failed");
            // Full jitter between half and all of the backoff, so receivers that come back
            // are not hit by every sender at once.
            let half = backoff / 2;
            let jitter = Duration::from_millis(fastrand::u64(0..=half.as_millis() as u64));
            tokio::time::sleep(half + jitter).await;
            backoff = (backoff * 2).min(c.max_backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_tampered_one_does_not() {
        let body = br#"{"event":"offer"}"#;
        let header = sign(b"secret", 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(verify(b"secret", &header, body, 1_700_000_010, 300), Ok(()));
        assert_eq!(
            verify(
                b"secret",
                &header,
                br#"{"event":"offer!"}"#,
                1_700_000_010,
                300
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", &header, body, 1_700_000_010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", &header, body, 1_700_001_000, 300),
            Err(SignatureError::TooOld {
                age: 1000,
                tolerance: 300
            })
        );
        assert_eq!(
            verify(b"secret", "v1=abc", body, 0, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Independently known: HMAC-SHA256(key="key", "The quick brown fox jumps over
        // the lazy dog") = f7bc83f4…; here the message is "<t>.<body>".
        let header = sign(b"key", 1, b"x");
        let v1 = header.split("v1=").nth(1).unwrap();
        assert_eq!(v1.len(), 64);
        let mut m = HmacSha256::new_from_slice(b"key").unwrap();
        m.update(b"1.x");
        assert_eq!(v1, hex(&m.finalize().into_bytes()));
        let mut m = HmacSha256::new_from_slice(b"key").unwrap();
        m.update(b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            hex(&m.finalize().into_bytes()),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
}
