//! The mailbox watcher: the loop that takes new mail from one IMAP folder to the bus.
//!
//! ```text
//! login → SELECT (UIDVALIDITY, UIDNEXT) → load checkpoint → UID FETCH last+1:* sizes
//!   → per chunk: UID FETCH BODY.PEEK[] → parse → sink.publish (waits for the bus confirm)
//!       → checkpoint.record(uid) → mark the chunk (flag/keyword or move)
//!   → SELECT again until a pass finds nothing new (mail announced during a pass is not
//!     announced again by IDLE) → IDLE (re-issued every `idle_refresh`) or poll → …
//! ```
//!
//! The first time a mailbox is watched (no checkpoint), only messages without the mark are
//! taken: what is already marked (read, with the default `\Seen`) counts as handled.
//! The checkpoint is the truth about what was ingested; the mark is for people reading the
//! mailbox. Any error ends the session without marking what was not recorded, and the
//! watcher reconnects with exponential backoff and jitter, resuming after the last
//! recorded UID; on connecting it first marks what was recorded but not yet marked (a stop
//! between the two). When UIDVALIDITY changes the folder is scanned again from UID 1: ids are
//! stable (Message-ID, else a hash of the raw message), so the router drops the repeats.

use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use futures_util::TryStreamExt;
use switchboard_bus::{Backoff, InboundMessage};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::{MailboxConfig, Mark};
use crate::connect::{self, Session};
use crate::error::Error;
use crate::parse::{self, Origin};

/// How long one command (or one chunk's fetch) may take before the connection is
/// assumed dead.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a cancelled watcher may take to finish its message in flight and log out.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// At most this many messages are fetched at once …
const CHUNK_MESSAGES: usize = 50;
/// … and at most this many bytes (a larger message is fetched alone).
const CHUNK_BYTES: u64 = 16 * 1024 * 1024;

/// Where the watcher keeps, per mailbox, the UIDVALIDITY and the last UID whose message
/// was safely published. The daemon implements it with its store.
#[async_trait::async_trait]
pub trait Checkpoint: Send + Sync {
    /// The last recorded `(uidvalidity, uid)` of the mailbox, if any.
    async fn load(&self, mailbox: &str) -> Result<Option<(u32, u32)>, String>;
    /// Records that every message up to `uid` under `uidvalidity` was published.
    async fn record(&self, mailbox: &str, uidvalidity: u32, uid: u32) -> Result<(), String>;
}

/// Where parsed messages go. `publish` returns only once the message is safe (the bus
/// confirmed it); an error leaves the message unrecorded and unmarked, to be retried.
#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// Publishes one message under the id the router deduplicates on.
    async fn publish(&self, id: String, message: InboundMessage) -> Result<(), String>;
}

/// Watches one mailbox folder until cancelled.
#[derive(Clone)]
pub struct Watcher {
    config: Arc<MailboxConfig>,
    checkpoint: Arc<dyn Checkpoint>,
    sink: Arc<dyn Sink>,
    backoff: Backoff,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("mailbox", &self.config.name)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl Watcher {
    /// A watcher for a validated mailbox; reconnects wait from 1 s up to 60 s.
    pub fn new(
        config: MailboxConfig,
        checkpoint: Arc<dyn Checkpoint>,
        sink: Arc<dyn Sink>,
    ) -> Watcher {
        Watcher {
            config: Arc::new(config),
            checkpoint,
            sink,
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
        }
    }

    /// Replaces the reconnect backoff.
    pub fn with_backoff(mut self, backoff: Backoff) -> Watcher {
        self.backoff = backoff;
        self
    }

    /// Runs until `cancel` fires: connects, ingests, waits for new mail, and on any error
    /// reconnects with backoff. Once cancelled it finishes the message in flight, marks what
    /// was recorded and logs out (within [`STOP_GRACE`]); a message it could not finish is
    /// neither recorded nor marked, and comes again.
    pub async fn run(self, cancel: CancellationToken) {
        let name = self.config.name.clone();
        let mut failures: u32 = 0;
        loop {
            let mut progressed = false;
            // On cancellation the session stops at its next message, marks what it
            // recorded and logs out; one that cannot (a publish hanging) is dropped.
            let outcome = tokio::select! {
                r = self.session(&cancel, &mut progressed) => r,
                () = async {
                    cancel.cancelled().await;
                    tokio::time::sleep(STOP_GRACE).await;
                } => Ok(()),
            };
            if cancel.is_cancelled() {
                info!(mailbox = %name, "imap: watcher stopped");
                return;
            }
            if progressed {
                failures = 0;
            }
            let delay = self.backoff.delay(failures);
            match outcome {
                Ok(()) => warn!(mailbox = %name, "imap: session ended; reconnecting"),
                Err(e) => warn!(
                    mailbox = %name,
                    error = %e,
                    retry_in_ms = delay.as_millis() as u64,
                    failures,
                    "imap: mailbox session failed; retrying"
                ),
            }
            failures = failures.saturating_add(1);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cancel.cancelled() => {
                    info!(mailbox = %name, "imap: watcher stopped");
                    return;
                }
            }
        }
    }

    /// One connection's life. Returns `Ok` only when cancelled.
    async fn session(
        &self,
        cancel: &CancellationToken,
        progressed: &mut bool,
    ) -> Result<(), Error> {
        let config = &*self.config;
        let addr = format!("{}:{}", config.host, config.port());
        let imap = |op: &'static str| {
            let addr = addr.clone();
            move |source| Error::Imap { op, addr, source }
        };
        let mut session = connect::login(config).await?;
        let capabilities = timed("CAPABILITY", session.capabilities())
            .await?
            .map_err(imap("CAPABILITY"))?;
        let idle = config.idle && capabilities.has_str("IDLE");
        if matches!(config.mark(), Mark::Move(_)) && !capabilities.has_str("MOVE") {
            return Err(Error::Protocol(format!(
                "{addr} has no MOVE (RFC 6851); use a mark flag instead of move_to"
            )));
        }
        info!(mailbox = %config.name, idle, "imap: logged in");
        let origin = Origin {
            mailbox: config.name.clone(),
            defaults: config.contacts.clone(),
        };
        let mut first_pass = true;
        loop {
            let mailbox = timed("SELECT", session.select(&config.folder))
                .await?
                .map_err(imap("SELECT"))?;
            let uidvalidity = mailbox.uid_validity.ok_or_else(|| {
                Error::Protocol(format!(
                    "{addr}: SELECT {} gave no UIDVALIDITY",
                    config.folder
                ))
            })?;
            debug!(
                mailbox = %config.name, uidvalidity, uid_next = ?mailbox.uid_next,
                exists = mailbox.exists, "imap: selected"
            );
            let pass = Pass {
                uidvalidity,
                uid_next: mailbox.uid_next,
                repair: first_pass,
            };
            let taken = self
                .sync(&mut session, &origin, pass, &addr, cancel)
                .await?;
            first_pass = false;
            *progressed = true;
            // What arrived during the sync was announced then (and read with it); IDLE
            // would not announce it again: wait only once a pass finds nothing new.
            while session.unsolicited_responses.try_recv().is_ok() {}
            if cancel.is_cancelled() {
                break;
            }
            if taken > 0 {
                continue;
            }
            if idle {
                let handle = session.idle();
                let (s, stopped) = wait_idle(handle, config.idle_refresh, cancel, &addr).await?;
                session = s;
                if stopped {
                    break;
                }
            } else {
                tokio::select! {
                    () = tokio::time::sleep(config.poll_interval) => {}
                    () = cancel.cancelled() => break,
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
        Ok(())
    }

    /// Publishes, records and marks every message after the checkpoint; returns how many.
    async fn sync(
        &self,
        session: &mut Session,
        origin: &Origin,
        pass: Pass,
        addr: &str,
        cancel: &CancellationToken,
    ) -> Result<usize, Error> {
        let Pass {
            uidvalidity,
            uid_next,
            repair,
        } = pass;
        let config = &*self.config;
        let imap = |op: &'static str| {
            let addr = addr.to_owned();
            move |source| Error::Imap { op, addr, source }
        };
        let checkpoint = self
            .checkpoint
            .load(&config.name)
            .await
            .map_err(Error::Checkpoint)?;
        let first = match checkpoint {
            Some((v, last)) if v == uidvalidity => {
                if repair && last > 0 {
                    self.repair(session, last, addr).await?;
                }
                last.saturating_add(1)
            }
            Some((v, last)) => {
                info!(
                    mailbox = %config.name, old = v, new = uidvalidity, last_uid = last,
                    "imap: UIDVALIDITY changed; scanning the folder again (repeats keep their ids)"
                );
                1
            }
            None => 1,
        };
        if uid_next.is_some_and(|next| next <= first) {
            return Ok(0);
        }
        // UIDs and sizes first, so bodies can be fetched in bounded chunks.
        let mut pending: Vec<(u32, u64)> = timed("UID FETCH sizes", async {
            let stream = session
                .uid_fetch(format!("{first}:*"), "(UID RFC822.SIZE)")
                .await?;
            stream
                .try_filter_map(|f| async move {
                    Ok(f.uid.map(|u| (u, u64::from(f.size.unwrap_or(0)))))
                })
                .try_collect::<Vec<_>>()
                .await
        })
        .await?
        .map_err(imap("UID FETCH sizes"))?;
        // `n:*` also returns the last message when n is above every UID.
        pending.retain(|&(uid, _)| uid >= first);
        pending.sort_unstable();
        pending.dedup_by_key(|(uid, _)| *uid);
        // The first time a mailbox is watched, what already carries the mark counts as
        // handled (a mailbox with years of read mail does not become years of contacts).
        let highest = pending.last().map(|&(uid, _)| uid);
        if checkpoint.is_none()
            && let Some(key) = self.unmarked_key()
        {
            let unmarked = timed("UID SEARCH", session.uid_search(&key))
                .await?
                .map_err(imap("UID SEARCH"))?;
            let before = pending.len();
            pending.retain(|(uid, _)| unmarked.contains(uid));
            info!(
                mailbox = %config.name, taken = pending.len(), skipped = before - pending.len(),
                "imap: first run: taking the messages not marked yet"
            );
        }
        if pending.is_empty() {
            if checkpoint.is_none()
                && let Some(highest) = highest
            {
                self.checkpoint
                    .record(&config.name, uidvalidity, highest)
                    .await
                    .map_err(Error::Checkpoint)?;
            }
            return Ok(0);
        }
        debug!(mailbox = %config.name, count = pending.len(), first, "imap: new messages");
        for chunk in chunks(&pending) {
            let set = chunk
                .iter()
                .map(|(u, _)| u.to_string())
                .collect::<Vec<_>>()
                .join(",");
            let mut fetched: Vec<(u32, Vec<u8>)> = timed("UID FETCH bodies", async {
                let stream = session.uid_fetch(&set, "(UID BODY.PEEK[])").await?;
                stream
                    .try_filter_map(|f| async move {
                        Ok(f.uid
                            .map(|u| (u, f.body().map(<[u8]>::to_vec).unwrap_or_default())))
                    })
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await?
            .map_err(imap("UID FETCH bodies"))?;
            fetched.sort_unstable_by_key(|(u, _)| *u);
            let mut done = Vec::with_capacity(fetched.len());
            let mut failed = None;
            for (uid, raw) in fetched {
                if cancel.is_cancelled() {
                    break;
                }
                if let Err(e) = self.ingest(origin, uidvalidity, uid, raw).await {
                    failed = Some(e);
                    break;
                }
                done.push(uid);
            }
            // What was recorded is marked even when a later message failed.
            if !done.is_empty() {
                self.mark(session, &done, addr).await?;
            }
            if let Some(e) = failed {
                return Err(e);
            }
            if cancel.is_cancelled() {
                return Ok(done.len());
            }
        }
        if checkpoint.is_none()
            && let Some(highest) = highest
            && pending.last().is_some_and(|&(uid, _)| uid < highest)
        {
            // Marked messages after the last one taken were skipped: past them too.
            self.checkpoint
                .record(&config.name, uidvalidity, highest)
                .await
                .map_err(Error::Checkpoint)?;
        }
        Ok(pending.len())
    }

    /// Parses one message, publishes it and records its UID.
    async fn ingest(
        &self,
        origin: &Origin,
        uidvalidity: u32,
        uid: u32,
        raw: Vec<u8>,
    ) -> Result<(), Error> {
        let o = origin.clone();
        // Parsing a large message takes milliseconds: off the runtime's threads.
        let inbound = tokio::task::spawn_blocking(move || parse::parse(&raw, &o))
            .await
            .map_err(|e| Error::Protocol(format!("parsing UID {uid}: {e}")))?;
        if let Some(reason) = inbound.message.attributes.get("parse_error") {
            warn!(mailbox = %origin.mailbox, uid, reason = %reason, "imap: message only partly readable; publishing what could be read");
        }
        let id = inbound.id.clone();
        self.sink
            .publish(inbound.id, inbound.message)
            .await
            .map_err(|reason| Error::Sink {
                id: id.clone(),
                reason,
            })?;
        self.checkpoint
            .record(&origin.mailbox, uidvalidity, uid)
            .await
            .map_err(Error::Checkpoint)?;
        debug!(mailbox = %origin.mailbox, uid, id = %id, "imap: message published");
        Ok(())
    }

    /// Marks what was recorded but not marked: a process stopped (or killed, or cut off)
    /// between recording a chunk and marking it. Once per connection. With `\Seen` as the
    /// mark, a processed message a person marked unread again is marked read again here;
    /// a keyword (`$Switchboard`) avoids that.
    async fn repair(&self, session: &mut Session, last: u32, addr: &str) -> Result<(), Error> {
        let imap = |op: &'static str| {
            let addr = addr.to_owned();
            move |source| Error::Imap { op, addr, source }
        };
        let criteria = match self.unmarked_key() {
            Some(key) => format!("UID 1:{last} {key}"),
            // Whatever is still in the folder at or below the checkpoint was processed.
            None => format!("UID 1:{last}"),
        };
        let mut uids: Vec<u32> = timed("UID SEARCH", session.uid_search(&criteria))
            .await?
            .map_err(imap("UID SEARCH"))?
            .into_iter()
            .filter(|&u| u <= last)
            .collect();
        if uids.is_empty() {
            return Ok(());
        }
        uids.sort_unstable();
        info!(mailbox = %self.config.name, count = uids.len(), "imap: marking messages recorded before an interruption");
        for chunk in uids.chunks(500) {
            self.mark(session, chunk, addr).await?;
        }
        Ok(())
    }

    /// The search key for messages without the mark; `None` with `move_to` (every message
    /// still in the folder lacks it).
    fn unmarked_key(&self) -> Option<String> {
        match self.config.mark() {
            Mark::Move(_) => None,
            Mark::Flag(flag) => Some(match flag.to_ascii_lowercase().as_str() {
                "\\seen" => "UNSEEN".into(),
                "\\flagged" => "UNFLAGGED".into(),
                "\\answered" => "UNANSWERED".into(),
                _ => format!("UNKEYWORD {flag}"),
            }),
        }
    }

    async fn mark(&self, session: &mut Session, uids: &[u32], addr: &str) -> Result<(), Error> {
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let imap = |op: &'static str| {
            let addr = addr.to_owned();
            move |source| Error::Imap { op, addr, source }
        };
        match self.config.mark() {
            Mark::Flag(flag) => {
                timed("UID STORE", async {
                    let stream = session
                        .uid_store(&set, format!("+FLAGS.SILENT ({flag})"))
                        .await?;
                    stream.try_collect::<Vec<_>>().await.map(drop)
                })
                .await?
                .map_err(imap("UID STORE"))?;
            }
            Mark::Move(folder) => {
                timed("UID MOVE", session.uid_mv(&set, &folder))
                    .await?
                    .map_err(imap("UID MOVE"))?;
            }
        }
        Ok(())
    }
}

/// What one pass over the folder starts from.
#[derive(Debug, Clone, Copy)]
struct Pass {
    /// The folder's UIDVALIDITY, from SELECT.
    uidvalidity: u32,
    /// The folder's UIDNEXT, from SELECT, when the server said.
    uid_next: Option<u32>,
    /// Whether to mark first what was recorded but not marked (once per connection).
    repair: bool,
}

/// Waits in IDLE until the server reports a change, the refresh interval passes or
/// `cancel` fires; returns the session and whether it was cancelled.
async fn wait_idle(
    mut handle: async_imap::extensions::idle::Handle<connect::Stream>,
    refresh: Duration,
    cancel: &CancellationToken,
    addr: &str,
) -> Result<(Session, bool), Error> {
    let imap = |op: &'static str| {
        let addr = addr.to_owned();
        move |source| Error::Imap { op, addr, source }
    };
    timed("IDLE", handle.init()).await?.map_err(imap("IDLE"))?;
    debug!("imap: idling");
    let stopped = {
        let (wait, _stop) = handle.wait_with_timeout(refresh);
        // Servers send keepalives during IDLE, which restart the library's own timer: the
        // outer timeout is what re-issues IDLE on time (RFC 2177).
        tokio::select! {
            r = tokio::time::timeout(refresh, wait) => {
                debug!(timed_out = r.is_err(), "imap: idle ended");
                match r {
                    Ok(Ok(IdleResponse::NewData(_))) | Ok(Ok(IdleResponse::Timeout)) | Err(_) => {}
                    Ok(Ok(IdleResponse::ManualInterrupt)) => {}
                    Ok(Err(e)) => return Err(imap("IDLE")(e)),
                }
                false
            }
            () = cancel.cancelled() => true,
        }
    };
    let session = timed("DONE", handle.done()).await?.map_err(imap("DONE"))?;
    Ok((session, stopped))
}

/// Splits the pending UIDs into chunks of at most [`CHUNK_MESSAGES`] messages and
/// [`CHUNK_BYTES`] bytes (a larger message alone).
fn chunks(pending: &[(u32, u64)]) -> Vec<&[(u32, u64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, &(_, size)) in pending.iter().enumerate() {
        let count = i - start;
        if count > 0 && (count >= CHUNK_MESSAGES || bytes + size > CHUNK_BYTES) {
            out.push(&pending[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < pending.len() {
        out.push(&pending[start..]);
    }
    out
}

async fn timed<T>(what: &str, f: impl std::future::Future<Output = T>) -> Result<T, Error> {
    tokio::time::timeout(COMMAND_TIMEOUT, f)
        .await
        .map_err(|_| Error::Timeout {
            what: what.to_owned(),
            after: COMMAND_TIMEOUT,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_bounded_by_count_and_bytes() {
        let small: Vec<(u32, u64)> = (1..=120).map(|u| (u, 1000)).collect();
        let c = chunks(&small);
        assert_eq!(c.iter().map(|c| c.len()).collect::<Vec<_>>(), [50, 50, 20]);
        let big = [(1, 10), (2, CHUNK_BYTES + 1), (3, 10), (4, 10)];
        let c = chunks(&big);
        assert_eq!(c.iter().map(|c| c.len()).collect::<Vec<_>>(), [1, 1, 2]);
        assert!(chunks(&[]).is_empty());
    }
}
