//! The SQLite and PostgreSQL stores. Both speak the same SQL (`$n` placeholders, which
//! SQLite also accepts, and `ON CONFLICT` upserts), so one body, expanded per backend by
//! `sql_store!`, serves both.

use std::str::FromStr;
use std::time::Duration;

use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row};
use tokio::sync::Mutex;

use crate::records::{AuditRow, Batch, ContactRow, Counts, MessageRow, NameRow, OwnerRow, State};
use crate::{AgentRow, Store, StoreError};

/// The embedded default: one SQLite file in WAL mode.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The epoch this process leads with, once it leads.
    epoch: Arc<Mutex<Option<i64>>>,
}

/// The production store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The epoch this process leads with, once it leads.
    epoch: Arc<Mutex<Option<i64>>>,
    /// The connection holding the advisory lock while this process leads.
    lock: Arc<Mutex<Option<sqlx::PgConnection>>>,
    /// How to open that connection.
    options: PgConnectOptions,
}

fn query_err(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { operation, source }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub async fn open(path: &std::path::Path) -> Result<SqliteStore, StoreError> {
        let url = path.display().to_string();
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL survives a process crash (kill -9); a power cut may lose the
            // last transactions, which FULL would keep at a cost per commit.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                url: url.clone(),
                source,
            })?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { url, source })?;
        Ok(SqliteStore {
            pool,
            epoch: Arc::default(),
        })
    }
}

impl PgStore {
    /// Connects to `url`, using `schema` (created if missing) when given, and migrates it.
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<PgStore, StoreError> {
        let open = |source| StoreError::Open {
            url: redact(url),
            source,
        };
        let mut options = PgConnectOptions::from_str(url).map_err(open)?;
        if let Some(schema) = schema {
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await
                .map_err(open)?;
            // The schema name comes from the operator's config, quoted as an identifier.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{}\"",
                schema.replace('"', "")
            )))
            .execute(&admin)
            .await
            .map_err(open)?;
            admin.close().await;
            options = options.options([("search_path", schema)]);
        }
        let lock_options = options.clone();
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open)?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: redact(url),
                source,
            })?;
        Ok(PgStore {
            pool,
            epoch: Arc::default(),
            lock: Arc::default(),
            options: lock_options,
        })
    }
}

impl SqliteStore {
    /// One process per SQLite file: there is nobody to wait for.
    async fn take_lock(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn release_lock(&self) {}
}

impl PgStore {
    /// Waits for the schema's advisory lock, held on a connection of its own for as long
    /// as this process leads (a process that dies releases it with its session).
    async fn take_lock(&self) -> Result<(), StoreError> {
        let mut held = self.lock.lock().await;
        if let Some(conn) = held.as_mut() {
            if sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok() {
                return Ok(());
            }
            *held = None;
        }
        let mut conn = sqlx::PgConnection::connect_with(&self.options)
            .await
            .map_err(query_err("open the lock connection"))?;
        let mut waited = false;
        loop {
            let got: bool = sqlx::query("SELECT pg_try_advisory_lock(hashtext(current_schema()))")
                .fetch_one(&mut conn)
                .await
                .and_then(|r| r.try_get(0))
                .map_err(query_err("take the leader lock"))?;
            if got {
                break;
            }
            if !waited {
                tracing::info!("another router leads; standing by for the leader lock");
                waited = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        *held = Some(conn);
        Ok(())
    }

    async fn release_lock(&self) {
        if let Some(conn) = self.lock.lock().await.take() {
            let _ = conn.close().await;
        }
    }
}

/// A connection URL without its password, for messages and logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Rows per multi-row INSERT: 15 columns × 200 rows stays far below both backends'
/// limits on bound parameters.
const ROWS_PER_STATEMENT: usize = 200;

/// The contacts table's columns, as a literal so queries stay `&'static str`.
macro_rules! contact_columns {
    () => {
        "seq, id, conversation, customer, channel, queue, summary, attributes, state, agent, \
         arrived_at, snapshot, ended_at, end_reason, updated_at"
    };
}

fn contact_row<R: Row>(row: &R) -> Result<ContactRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database>,
{
    Ok(ContactRow {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        conversation: row.try_get("conversation")?,
        customer: row.try_get("customer")?,
        channel: row.try_get("channel")?,
        queue: row.try_get("queue")?,
        summary: row.try_get("summary")?,
        attributes: row.try_get("attributes")?,
        state: row.try_get("state")?,
        agent: row.try_get("agent")?,
        arrived_at: row.try_get("arrived_at")?,
        snapshot: row.try_get("snapshot")?,
        ended_at: row.try_get("ended_at")?,
        end_reason: row.try_get("end_reason")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn audit_row<R: Row>(row: &R) -> Result<AuditRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database>,
{
    Ok(AuditRow {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        contact_seq: row.try_get("contact_seq")?,
        agent: row.try_get("agent")?,
        kind: row.try_get("kind")?,
        detail: row.try_get("detail")?,
    })
}

macro_rules! sql_store {
    ($store:ty, $db:ty, $begin:literal, $lock_row:literal) => {
        impl $store {
            /// The epoch in `meta` (0 before anyone led), read inside `tx`.
            async fn epoch_in(tx: &mut sqlx::Transaction<'_, $db>) -> Result<i64, StoreError> {
                let current: Option<String> = sqlx::query(concat!(
                    "SELECT value FROM meta WHERE key = 'epoch'",
                    $lock_row
                ))
                .fetch_optional(&mut **tx)
                .await
                .map_err(query_err("read epoch"))?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(query_err("read epoch"))?;
                Ok(current.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0))
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            async fn load(&self) -> Result<State, StoreError> {
                let p = &self.pool;
                let names = sqlx::query("SELECT kind, name, id FROM names ORDER BY kind, id")
                    .fetch_all(p)
                    .await
                    .map_err(query_err("load names"))?
                    .iter()
                    .map(|r| {
                        Ok(NameRow {
                            kind: r.try_get(0)?,
                            name: r.try_get(1)?,
                            id: r.try_get(2)?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(query_err("load names"))?;
                let agents = sqlx::query(
                    "SELECT id, name, snapshot, updated_at FROM agents ORDER BY id",
                )
                .fetch_all(p)
                .await
                .map_err(query_err("load agents"))?
                .iter()
                .map(|r| {
                    Ok(AgentRow {
                        id: r.try_get(0)?,
                        name: r.try_get(1)?,
                        snapshot: r.try_get(2)?,
                        updated_at: r.try_get(3)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(query_err("load agents"))?;
                let contacts = sqlx::query(concat!(
                    "SELECT ",
                    contact_columns!(),
                    " FROM contacts WHERE snapshot IS NOT NULL ORDER BY seq"
                ))
                .fetch_all(p)
                .await
                .map_err(query_err("load contacts"))?
                .iter()
                .map(contact_row)
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_err("load contacts"))?;
                let owners = sqlx::query(
                    "SELECT customer, agent, closed_at FROM owners ORDER BY closed_at, customer",
                )
                .fetch_all(p)
                .await
                .map_err(query_err("load owners"))?
                .iter()
                .map(|r| {
                    Ok(OwnerRow {
                        customer: r.try_get(0)?,
                        agent: r.try_get(1)?,
                        closed_at: r.try_get(2)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(query_err("load owners"))?;
                let meta = sqlx::query("SELECT key, value FROM meta ORDER BY key")
                    .fetch_all(p)
                    .await
                    .map_err(query_err("load meta"))?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(query_err("load meta"))?;
                let agent_settings = sqlx::query("SELECT name, settings FROM agent_settings ORDER BY name")
                    .fetch_all(p)
                    .await
                    .map_err(query_err("load agent settings"))?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(query_err("load agent settings"))?;
                let max_seq: Option<i64> = sqlx::query("SELECT MAX(seq) FROM contacts")
                    .fetch_one(p)
                    .await
                    .and_then(|r| r.try_get(0))
                    .map_err(query_err("load max seq"))?;
                Ok(State {
                    names,
                    agents,
                    contacts,
                    owners,
                    meta,
                    agent_settings,
                    max_seq: max_seq.unwrap_or(0),
                })
            }

            async fn seen(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
                let mut seen = Vec::new();
                // Bounded IN lists keep every backend's parameter limit far away.
                for chunk in ids.chunks(500) {
                    let placeholders: Vec<String> =
                        (1..=chunk.len()).map(|i| format!("${i}")).collect();
                    let sql = format!(
                        "SELECT id FROM messages WHERE id IN ({})",
                        placeholders.join(", ")
                    );
                    // Only numbered placeholders are formatted in; the ids are bound.
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(id);
                    }
                    for row in q.fetch_all(&self.pool).await.map_err(query_err("dedup"))? {
                        seen.push(row.try_get(0).map_err(query_err("dedup"))?);
                    }
                }
                Ok(seen)
            }

            async fn lead(&self) -> Result<i64, StoreError> {
                self.take_lock().await?;
                let mut tx = self.pool.begin_with($begin).await.map_err(query_err("begin"))?;
                let epoch = Self::epoch_in(&mut tx).await? + 1;
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ('epoch', $1) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(epoch.to_string())
                .execute(&mut *tx)
                .await
                .map_err(query_err("write epoch"))?;
                tx.commit().await.map_err(query_err("commit epoch"))?;
                *self.epoch.lock().await = Some(epoch);
                Ok(epoch)
            }

            async fn commit(&self, b: &Batch) -> Result<(), StoreError> {
                let err = query_err("commit batch");
                let mut tx = self.pool.begin_with($begin).await.map_err(query_err("begin"))?;
                // Fencing: a process that lost the lead may not write any more.
                if let Some(mine) = *self.epoch.lock().await {
                    let current = Self::epoch_in(&mut tx).await?;
                    if current != mine {
                        return Err(StoreError::Fenced { mine, current });
                    }
                }
                for n in &b.names {
                    sqlx::query(
                        "INSERT INTO names (kind, name, id) VALUES ($1, $2, $3) \
                         ON CONFLICT (kind, name) DO NOTHING",
                    )
                    .bind(&n.kind)
                    .bind(&n.name)
                    .bind(n.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("commit names"))?;
                }
                for a in &b.agents {
                    sqlx::query(
                        "INSERT INTO agents (id, name, snapshot, updated_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                         snapshot = excluded.snapshot, updated_at = excluded.updated_at",
                    )
                    .bind(a.id)
                    .bind(&a.name)
                    .bind(&a.snapshot)
                    .bind(a.updated_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("commit agents"))?;
                }
                // Multi-row statements: one round trip per chunk instead of per row.
                for chunk in b.contacts.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(concat!(
                        "INSERT INTO contacts (",
                        contact_columns!(),
                        ") "
                    ));
                    q.push_values(chunk, |mut row, c| {
                        row.push_bind(c.seq)
                            .push_bind(&c.id)
                            .push_bind(&c.conversation)
                            .push_bind(&c.customer)
                            .push_bind(&c.channel)
                            .push_bind(&c.queue)
                            .push_bind(&c.summary)
                            .push_bind(&c.attributes)
                            .push_bind(&c.state)
                            .push_bind(c.agent)
                            .push_bind(c.arrived_at)
                            .push_bind(&c.snapshot)
                            .push_bind(c.ended_at)
                            .push_bind(&c.end_reason)
                            .push_bind(c.updated_at);
                    });
                    q.push(
                        " ON CONFLICT (seq) DO UPDATE SET state = excluded.state, \
                         agent = excluded.agent, queue = excluded.queue, \
                         snapshot = excluded.snapshot, ended_at = excluded.ended_at, \
                         end_reason = excluded.end_reason, updated_at = excluded.updated_at",
                    );
                    q.build()
                        .execute(&mut *tx)
                        .await
                        .map_err(query_err("commit contacts"))?;
                }
                for chunk in b.messages.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO messages (id, contact_seq, outcome, reason, received_at, processed_at) ",
                    );
                    q.push_values(chunk, |mut row, m| {
                        row.push_bind(&m.id)
                            .push_bind(m.contact_seq)
                            .push_bind(&m.outcome)
                            .push_bind(&m.reason)
                            .push_bind(m.received_at)
                            .push_bind(m.processed_at);
                    });
                    q.build()
                        .execute(&mut *tx)
                        .await
                        .map_err(query_err("commit messages"))?;
                }
                for o in &b.owners {
                    sqlx::query(
                        "INSERT INTO owners (customer, agent, closed_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (customer) DO UPDATE SET agent = excluded.agent, \
                         closed_at = excluded.closed_at",
                    )
                    .bind(&o.customer)
                    .bind(o.agent)
                    .bind(o.closed_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("commit owners"))?;
                }
                for chunk in b.audit.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO audit (at, contact_seq, agent, kind, detail) ",
                    );
                    q.push_values(chunk, |mut row, a| {
                        row.push_bind(a.at)
                            .push_bind(a.contact_seq)
                            .push_bind(a.agent)
                            .push_bind(&a.kind)
                            .push_bind(&a.detail);
                    });
                    q.build()
                        .execute(&mut *tx)
                        .await
                        .map_err(query_err("commit audit"))?;
                }
                for (k, v) in &b.meta {
                    sqlx::query(
                        "INSERT INTO meta (key, value) VALUES ($1, $2) \
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(k)
                    .bind(v)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("commit meta"))?;
                }
                for (name, settings) in &b.agent_settings {
                    sqlx::query(
                        "INSERT INTO agent_settings (name, settings) VALUES ($1, $2) \
                         ON CONFLICT (name) DO UPDATE SET settings = excluded.settings",
                    )
                    .bind(name)
                    .bind(settings)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("commit agent settings"))?;
                }
                tx.commit().await.map_err(err)
            }

            async fn contact(&self, id: &str) -> Result<Option<ContactRow>, StoreError> {
                sqlx::query(concat!("SELECT ", contact_columns!(), " FROM contacts WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(query_err("read contact"))?
                    .map(|r| contact_row(&r))
                    .transpose()
                    .map_err(query_err("read contact"))
            }

            async fn contact_of_message(&self, message: &str) -> Result<Option<String>, StoreError> {
                let row = sqlx::query(
                    "SELECT c.id FROM messages m JOIN contacts c ON c.seq = m.contact_seq \
                     WHERE m.id = $1",
                )
                .bind(message)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("read message"))?;
                row.map(|r| r.try_get(0))
                    .transpose()
                    .map_err(query_err("read message"))
            }

            async fn message(&self, id: &str) -> Result<Option<MessageRow>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, contact_seq, outcome, reason, received_at, processed_at \
                     FROM messages WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("read message"))?;
                row.map(|r| {
                    Ok(MessageRow {
                        id: r.try_get(0)?,
                        contact_seq: r.try_get(1)?,
                        outcome: r.try_get(2)?,
                        reason: r.try_get(3)?,
                        received_at: r.try_get(4)?,
                        processed_at: r.try_get(5)?,
                    })
                })
                .transpose()
                .map_err(query_err("read message"))
            }

            async fn contacts_arrived(&self, from: i64, to: i64) -> Result<Vec<ContactRow>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    contact_columns!(),
                    " FROM contacts WHERE arrived_at >= $1 AND arrived_at < $2 ORDER BY arrived_at, seq"
                ))
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await
                .map_err(query_err("read contacts"))?
                .iter()
                .map(contact_row)
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_err("read contacts"))
            }

            async fn audit(&self, contact_seq: i64) -> Result<Vec<AuditRow>, StoreError> {
                sqlx::query(
                    "SELECT seq, at, contact_seq, agent, kind, detail FROM audit \
                     WHERE contact_seq = $1 ORDER BY seq",
                )
                .bind(contact_seq)
                .fetch_all(&self.pool)
                .await
                .map_err(query_err("read audit"))?
                .iter()
                .map(audit_row)
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_err("read audit"))
            }

            async fn audit_since(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
                sqlx::query(
                    "SELECT seq, at, contact_seq, agent, kind, detail FROM audit \
                     WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(query_err("read audit"))?
                .iter()
                .map(audit_row)
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_err("read audit"))
            }

            async fn counts(&self) -> Result<Counts, StoreError> {
                let pairs = |rows: Vec<_>| -> Result<Vec<(String, i64)>, sqlx::Error> {
                    rows.iter()
                        .map(|r: &_| Ok((Row::try_get(r, 0)?, Row::try_get(r, 1)?)))
                        .collect()
                };
                let contacts = sqlx::query(
                    "SELECT state, COUNT(*) FROM contacts GROUP BY state ORDER BY state",
                )
                .fetch_all(&self.pool)
                .await
                .and_then(pairs)
                .map_err(query_err("count contacts"))?;
                let messages = sqlx::query(
                    "SELECT outcome, COUNT(*) FROM messages GROUP BY outcome ORDER BY outcome",
                )
                .fetch_all(&self.pool)
                .await
                .and_then(pairs)
                .map_err(query_err("count messages"))?;
                Ok(Counts { contacts, messages })
            }

            async fn mailbox_checkpoint(
                &self,
                mailbox: &str,
            ) -> Result<Option<(u32, u32)>, StoreError> {
                let row = sqlx::query(
                    "SELECT uidvalidity, last_uid FROM mailbox_checkpoints WHERE mailbox = $1",
                )
                .bind(mailbox)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("read mailbox checkpoint"))?;
                let Some(row) = row else { return Ok(None) };
                let read = |i: usize| -> Result<u32, StoreError> {
                    let v: i64 = row.try_get(i).map_err(query_err("read mailbox checkpoint"))?;
                    u32::try_from(v).map_err(|e| StoreError::Query {
                        operation: "read mailbox checkpoint",
                        source: sqlx::Error::Decode(Box::new(e)),
                    })
                };
                Ok(Some((read(0)?, read(1)?)))
            }

            async fn record_mailbox_uid(
                &self,
                mailbox: &str,
                uidvalidity: u32,
                uid: u32,
            ) -> Result<(), StoreError> {
                // Within one uidvalidity the checkpoint never moves back (a late writer of
                // an older UID loses); a new uidvalidity replaces it.
                sqlx::query(
                    "INSERT INTO mailbox_checkpoints (mailbox, uidvalidity, last_uid) \
                     VALUES ($1, $2, $3) \
                     ON CONFLICT (mailbox) DO UPDATE SET \
                     uidvalidity = excluded.uidvalidity, \
                     last_uid = CASE WHEN mailbox_checkpoints.uidvalidity = excluded.uidvalidity \
                     AND mailbox_checkpoints.last_uid > excluded.last_uid \
                     THEN mailbox_checkpoints.last_uid ELSE excluded.last_uid END",
                )
                .bind(mailbox)
                .bind(i64::from(uidvalidity))
                .bind(i64::from(uid))
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(query_err("record mailbox uid"))
            }

            async fn take_acknowledgement(
                &self,
                mailbox: &str,
                recipient: &str,
                day: i64,
                max: u32,
            ) -> Result<bool, StoreError> {
                sqlx::query("DELETE FROM acknowledgements WHERE day < $1")
                    .bind(day - 1)
                    .execute(&self.pool)
                    .await
                    .map_err(query_err("forget old acknowledgements"))?;
                // The update only happens below the limit: no row back means none left.
                let taken = sqlx::query(
                    "INSERT INTO acknowledgements (mailbox, recipient, day, sent) \
                     SELECT $1, $2, $3, 1 WHERE $4 > 0 \
                     ON CONFLICT (mailbox, recipient, day) DO UPDATE SET \
                     sent = acknowledgements.sent + 1 WHERE acknowledgements.sent < $4 \
                     RETURNING sent",
                )
                .bind(mailbox)
                .bind(recipient)
                .bind(day)
                .bind(i64::from(max))
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("take an acknowledgement"))?;
                Ok(taken.is_some())
            }

            async fn health(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(query_err("health check"))
            }

            async fn close(&self) {
                self.release_lock().await;
                self.pool.close().await;
            }
        }
    };
}

// SQLite takes its one write lock when a writing transaction begins (a read that later
// upgrades to a write fails at once if another connection wrote meanwhile); PostgreSQL
// locks the epoch row so a takeover and a commit of the previous leader are ordered.
sql_store!(SqliteStore, sqlx::Sqlite, "BEGIN IMMEDIATE", "");
sql_store!(PgStore, sqlx::Postgres, "BEGIN", " FOR UPDATE");

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            super::redact("postgres://app:secret@db:5432/switchboard"),
            "postgres://app@db:5432/switchboard"
        );
        assert_eq!(super::redact("postgres://db/x"), "postgres://db/x");
    }
}
