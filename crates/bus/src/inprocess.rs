//! [`InProcessBus`]: the embedded default, a durable queue in one SQLite file.
//!
//! - A publish returns once its row is committed (WAL mode, `synchronous=FULL` by default),
//!   so it survives `kill -9` and, with FULL, a power cut. Concurrent publishes are group
//!   committed: one writer task takes every waiting publish into one transaction.
//! - The inbound table holds every unacked message in publish order. A subscription hands
//!   rows out past its cursor and counts each hand-out in the row; acking deletes the rows.
//!   Rows handed out but not acked come back (redelivered) to the next subscription, in this
//!   process after the subscription is dropped, or after a restart.
//! - A row returned more than `delivery_limit` times is moved to the dead table instead of
//!   being delivered again, like RabbitMQ's quorum queue delivery limit.
//! - One subscription at a time is active; the others wait in `next_batch`. That holds
//!   within one process: one process per file (the embedded default is one process).
//! - Assignment events go to in-process listeners ([`InProcessBus::subscribe_events`]) and
//!   are not stored: like a topic exchange with no queue bound, nobody listening means dropped.

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::Row;
use sqlx::sqlite::SqliteSynchronous;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tokio::sync::{Notify, OwnedMutexGuard, broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::outstanding::Outstanding;
use crate::{Bus, BusError, DeadLetter, Delivery, DeliveryTag, Envelope, Subscription};

/// Schema version stored in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inbound (
    -- AUTOINCREMENT: sequence numbers are never reused, even after the newest rows are acked,
    -- so a new row always lands past every subscription's cursor.
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   TEXT    NOT NULL,
    body         BLOB    NOT NULL,
    -- how many times the row was handed to a subscription
    deliveries   INTEGER NOT NULL DEFAULT 0,
    published_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT,
    body       BLOB    NOT NULL,
    reason     TEXT    NOT NULL,
    dead_at    INTEGER NOT NULL
);
PRAGMA user_version = 1;
";

/// Where the embedded bus keeps its file, and how it behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InProcessConfig {
    /// The SQLite file (created if missing; `-wal` and `-shm` files live beside it).
    pub path: PathBuf,
    /// Returns after which a message is dead-lettered instead of delivered again.
    pub delivery_limit: u32,
    /// `synchronous=FULL` (fsync on every commit: safe against power loss) when true;
    /// `NORMAL` when false (safe against process crashes, not power loss; faster).
    pub sync_full: bool,
    /// Most publishes committed in one transaction.
    pub max_commit_batch: usize,
}

impl InProcessConfig {
    /// The defaults for `path`: delivery limit 5, `synchronous=FULL`, batches of 256.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        InProcessConfig {
            path: path.into(),
            delivery_limit: 5,
            sync_full: true,
            max_commit_batch: 256,
        }
    }
}

/// An assignment event published on the in-process bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusEvent {
    /// The routing key it was published with.
    pub routing_key: String,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// A publish waiting for the writer task.
struct Write {
    id: String,
    body: Vec<u8>,
    done: oneshot::Sender<Result<(), String>>,
}

struct Inner {
    config: InProcessConfig,
    path: String,
    pool: SqlitePool,
    writer: mpsc::Sender<Write>,
    /// Woken on every commit of new rows and on close.
    notify: Arc<Notify>,
    /// Held by the active subscription.
    active: Arc<tokio::sync::Mutex<()>>,
    generations: AtomicU64,
    events: broadcast::Sender<BusEvent>,
    closed: AtomicBool,
}

impl Inner {
    fn sqlite_error(&self, operation: impl Into<String>, e: impl fmt::Display) -> BusError {
        BusError::Sqlite {
            operation: operation.into(),
            path: self.path.clone(),
            source: e.to_string().into(),
        }
    }

    fn check_open(&self, operation: &str) -> Result<(), BusError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BusError::Closed {
                operation: operation.to_owned(),
            });
        }
        Ok(())
    }

    /// Waits until the bus is closed.
    async fn wait_closed(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The embedded bus: a durable queue in a SQLite file. Cheap to clone; clones share it.
#[derive(Clone)]
pub struct InProcessBus {
    inner: Arc<Inner>,
}

impl fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessBus")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl InProcessBus {
    /// Opens (or creates) the bus file at `path` with the default configuration.
    pub async fn open(path: impl AsRef<Path>) -> Result<InProcessBus, BusError> {
        Self::open_with(InProcessConfig::new(path.as_ref())).await
    }

    /// Opens (or creates) the bus file described by `config`.
    pub async fn open_with(config: InProcessConfig) -> Result<InProcessBus, BusError> {
        let path = config.path.display().to_string();
        let failed = |operation: &str, e: sqlx::Error| BusError::Sqlite {
            operation: operation.to_owned(),
            path: path.clone(),
            source: Box::new(e),
        };
        let options = SqliteConnectOptions::new()
            .filename(&config.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if config.sync_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| failed("open", e))?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&pool)
            .await
            .map_err(|e| failed("read schema version", e))?;
        if version > SCHEMA_VERSION {
            return Err(BusError::Sqlite {
                operation: "open".to_owned(),
                path,
                source: format!(
                    "schema version {version} was written by a newer Switchboard (this one knows {SCHEMA_VERSION})"
                )
                .into(),
            });
        }
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .map_err(|e| failed("create schema", e))?;

        let notify = Arc::new(Notify::new());
        let (writer, requests) = mpsc::channel(config.max_commit_batch.max(1) * 4);
        tokio::spawn(write_loop(
            pool.clone(),
            path.clone(),
            notify.clone(),
            requests,
            config.max_commit_batch.max(1),
        ));
        let (events, _) = broadcast::channel(1024);
        info!(%path, "in-process bus opened");
        Ok(InProcessBus {
            inner: Arc::new(Inner {
                config,
                path,
                pool,
                writer,
                notify,
                active: Arc::new(tokio::sync::Mutex::new(())),
                generations: AtomicU64::new(0),
                events,
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Receives the assignment events published from now on.
    pub fn subscribe_events(&self) -> broadcast::Receiver<BusEvent> {
        self.inner.events.subscribe()
    }

    /// Opens a subscription (see [`Bus::subscribe`]); it becomes active in `next_batch`.
    pub fn subscribe_local(&self, prefetch: u16) -> Result<InProcessSubscription, BusError> {
        self.inner.check_open("subscribe")?;
        if prefetch == 0 {
            return Err(BusError::Invalid {
                what: "prefetch 0".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(InProcessSubscription {
            inner: self.inner.clone(),
            prefetch,
            active: None,
            cursor: 0,
            outstanding: Outstanding::default(),
            pending: VecDeque::new(),
        })
    }
}

/// Commits waiting publishes in batches until every sender is gone.
async fn write_loop(
    pool: SqlitePool,
    path: String,
    notify: Arc<Notify>,
    mut requests: mpsc::Receiver<Write>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while requests.recv_many(&mut batch, max_batch).await > 0 {
        let result = commit(&pool, &batch).await;
        if let Err(e) = &result {
            warn!(%path, publishes = batch.len(), error = %e, "in-process bus: commit failed");
        } else {
            notify.notify_waiters();
        }
        let result = result.map_err(|e| e.to_string());
        for write in batch.drain(..) {
            // A publisher that stopped waiting does not need the answer.
            let _ = write.done.send(result.clone());
        }
    }
    debug!(%path, "in-process bus: writer stopped");
}

async fn commit(pool: &SqlitePool, batch: &[Write]) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for write in batch {
        sqlx::query("INSERT INTO inbound (message_id, body, published_at) VALUES (?1, ?2, ?3)")
            .bind(write.id.as_str())
            .bind(write.body.as_slice())
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Moves row `seq` of the inbound table to the dead table with `reason`.
async fn move_to_dead(inner: &Inner, seq: i64, reason: &str) -> Result<(), BusError> {
    let failed = |e: sqlx::Error| inner.sqlite_error(format!("dead-letter of row {seq}"), e);
    let mut tx = inner
        .pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(failed)?;
    sqlx::query(
        "INSERT INTO dead (message_id, body, reason, dead_at)
         SELECT message_id, body, ?2, ?3 FROM inbound WHERE seq = ?1",
    )
    .bind(seq)
    .bind(reason)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    sqlx::query("DELETE FROM inbound WHERE seq = ?1")
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    tx.commit().await.map_err(failed)
}

#[async_trait::async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, envelope: &Envelope) -> Result<(), BusError> {
        let operation = || format!("publish of message {}", envelope.id);
        self.inner.check_open(&operation())?;
        envelope.check_id().map_err(|reason| BusError::Invalid {
            what: format!("envelope {:?}", envelope.id),
            reason,
        })?;
        let (done, committed) = oneshot::channel();
        let write = Write {
            id: envelope.id.clone(),
            body: envelope.to_json(),
            done,
        };
        let stopped = || BusError::Closed {
            operation: operation(),
        };
        self.inner.writer.send(write).await.map_err(|_| stopped())?;
        match committed.await.map_err(|_| stopped())? {
            Ok(()) => Ok(()),
            Err(e) => Err(self.inner.sqlite_error(operation(), e)),
        }
    }

    async fn publish_event(&self, routing_key: &str, body: &[u8]) -> Result<(), BusError> {
        self.inner
            .check_open(&format!("publish of event {routing_key}"))?;
        // No receiver is not an error: the event is dropped, as by an exchange with no queue.
        let _ = self.inner.events.send(BusEvent {
            routing_key: routing_key.to_owned(),
            body: body.to_vec(),
        });
        Ok(())
    }

    async fn subscribe(&self, prefetch: u16) -> Result<Box<dyn Subscription>, BusError> {
        Ok(Box::new(self.subscribe_local(prefetch)?))
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, BusError> {
        self.inner.check_open("read dead letters")?;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = sqlx::query("SELECT message_id, body, reason FROM dead ORDER BY seq LIMIT ?1")
            .bind(limit)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|e| self.inner.sqlite_error("read dead letters", e))?;
        rows.iter()
            .map(|row| {
                Ok(DeadLetter {
                    id: row.try_get("message_id")?,
                    body: row.try_get("body")?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.inner.sqlite_error("read dead letters", e))
    }

    async fn health(&self) -> Result<(), BusError> {
        self.inner.check_open("health check")?;
        sqlx::query("SELECT 1")
            .execute(&self.inner.pool)
            .await
            .map_err(|e| self.inner.sqlite_error("health check", e))?;
        Ok(())
    }

    async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.notify.notify_waiters();
        self.inner.pool.close().await;
        info!(path = %self.inner.path, "in-process bus closed");
    }
}

/// A consumer of the in-process inbound queue.
pub struct InProcessSubscription {
    inner: Arc<Inner>,
    prefetch: u16,
    /// Held while this subscription is the active one.
    active: Option<OwnedMutexGuard<()>>,
    /// Highest sequence number handed out by this activation.
    cursor: i64,
    outstanding: Outstanding,
    /// Deliveries fetched but not yet returned (see [`crate::amqp::AmqpSubscription`]).
    pending: VecDeque<Delivery>,
}

impl fmt::Debug for InProcessSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessSubscription")
            .field("path", &self.inner.path)
            .field("prefetch", &self.prefetch)
            .field("active", &self.active.is_some())
            .field("cursor", &self.cursor)
            .field("unacked", &self.outstanding.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl InProcessSubscription {
    /// Becomes the active subscription, waiting for the current one to go away.
    async fn activate(&mut self) -> Result<(), BusError> {
        if self.active.is_some() {
            return Ok(());
        }
        let lock = self.inner.active.clone();
        let guard = tokio::select! {
            guard = lock.lock_owned() => guard,
            () = self.inner.wait_closed() => {
                return Err(BusError::Closed { operation: "consume".to_owned() });
            }
        };
        let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed) + 1;
        self.active = Some(guard);
        self.cursor = 0;
        self.outstanding.reset(Some(generation));
        debug!(path = %self.inner.path, generation, "in-process bus: subscription active");
        Ok(())
    }

    /// Hands out up to `want` rows past the cursor, within the prefetch window; returns how
    /// many rows it asked for (0 when the window is full) and how many it got.
    async fn fetch(&mut self, want: usize) -> Result<(usize, usize), BusError> {
        self.inner.check_open("consume")?;
        let window = usize::from(self.prefetch).saturating_sub(self.outstanding.len());
        let limit = want.min(window);
        if limit == 0 {
            return Ok((0, 0));
        }
        let mut rows = sqlx::query(
            "UPDATE inbound SET deliveries = deliveries + 1
             WHERE seq IN (SELECT seq FROM inbound WHERE seq > ?1 ORDER BY seq LIMIT ?2)
             RETURNING seq, body, deliveries",
        )
        .bind(self.cursor)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.inner.pool)
        .await
        .map_err(|e| self.inner.sqlite_error("fetch of unacked messages", e))?
        .into_iter()
        .map(|row| {
            Ok((
                row.try_get::<i64, _>("seq")?,
                row.try_get::<Vec<u8>, _>("body")?,
                row.try_get::<i64, _>("deliveries")?,
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(|e| self.inner.sqlite_error("fetch of unacked messages", e))?;
        rows.sort_unstable_by_key(|(seq, _, _)| *seq);
        let got = rows.len();
        let generation = self.outstanding.generation().unwrap_or(0);
        let limit_returns = i64::from(self.inner.config.delivery_limit);
        for (seq, body, deliveries) in rows {
            self.cursor = self.cursor.max(seq);
            // Every earlier hand-out came back unacked (a row is handed out once per
            // activation), so `deliveries - 1` is the number of returns.
            let returns = deliveries - 1;
            if returns > limit_returns {
                let reason =
                    format!("delivery_limit: returned {returns} times, limit {limit_returns}");
                move_to_dead(&self.inner, seq, &reason).await?;
                warn!(path = %self.inner.path, seq, %reason, "in-process bus: message dead-lettered");
                continue;
            }
            let value = u64::try_from(seq).unwrap_or(0);
            self.outstanding.insert(value);
            self.pending.push_back(Delivery::decode(
                DeliveryTag::new(generation, value),
                deliveries > 1,
                body,
            ));
        }
        Ok((limit, got))
    }

    /// Waits for a commit notification, at most until `until` when given; false on timeout.
    async fn wait_for_rows(
        &self,
        notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
        until: Option<Instant>,
    ) -> bool {
        match until {
            Some(until) => tokio::time::timeout_at(until, notified).await.is_ok(),
            None => {
                notified.await;
                true
            }
        }
    }
}

#[async_trait::async_trait]
impl Subscription for InProcessSubscription {
    async fn next_batch(
        &mut self,
        max: usize,
        linger: Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        let max = max.max(1);
        self.activate().await?;
        let inner = self.inner.clone();
        let mut until = None;
        loop {
            if self.pending.len() >= max {
                break;
            }
            // Register for the wake-up before looking, so a commit in between is not missed.
            let notified = inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (asked, got) = self.fetch(max - self.pending.len()).await?;
            if self.pending.len() >= max {
                break;
            }
            if !self.pending.is_empty() {
                if asked == 0 {
                    // The prefetch window is full: nothing more can come before an ack.
                    break;
                }
                until.get_or_insert_with(|| Instant::now() + linger);
            }
            if got > 0 && got == asked {
                // A full fetch that still left room (rows dead-lettered on the way): more
                // rows may be waiting already.
                continue;
            }
            if !self.wait_for_rows(notified, until).await {
                break;
            }
            inner.check_open("consume")?;
        }
        let n = max.min(self.pending.len());
        Ok(self.pending.drain(..n).collect())
    }

    async fn ack_through(&mut self, tag: DeliveryTag) -> Result<(), BusError> {
        let Some(value) = self.outstanding.take_through(tag) else {
            debug!(
                ?tag,
                "in-process bus: ack of a stale or already acked tag ignored"
            );
            return Ok(());
        };
        // Every row at or below a handed-out tag was handed out by this activation.
        sqlx::query("DELETE FROM inbound WHERE seq <= ?1")
            .bind(i64::try_from(value).unwrap_or(i64::MAX))
            .execute(&self.inner.pool)
            .await
            .map_err(|e| {
                self.inner
                    .sqlite_error(format!("ack through row {value}"), e)
            })?;
        Ok(())
    }

    async fn dead_letter(&mut self, delivery: &Delivery, reason: &str) -> Result<(), BusError> {
        let tag = delivery.tag;
        if !self.outstanding.take_one(tag) {
            debug!(
                ?tag,
                "in-process bus: dead-letter of a stale or already acked delivery ignored"
            );
            return Ok(());
        }
        let seq = i64::try_from(tag.value()).unwrap_or(i64::MAX);
        if let Err(e) = move_to_dead(&self.inner, seq, reason).await {
            self.outstanding.restore(tag);
            return Err(e);
        }
        let id = delivery.envelope.as_ref().map(|e| e.id.as_str()).ok();
        warn!(message_id = id.unwrap_or("<undecodable>"), %reason, "in-process bus: message dead-lettered");
        Ok(())
    }
}
