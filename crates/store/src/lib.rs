//! Switchboard's persistence, behind one trait ([`Store`]) with two implementations:
//! SQLite in a data directory (the embedded default, WAL mode) and PostgreSQL. The store
//! decides nothing: the router hands it a [`Batch`] of rows to write in one transaction,
//! and reads back what it needs to resume ([`State`]) and to answer the API.
//!
//! Modules:
//! - [`records`]: the rows that go in and come out;
//! - `sql`: the two implementations, generated from one body so the SQL is written once.
//!
//! Schema migrations live in `migrations/sqlite` and `migrations/postgres` and run on open.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use switchboard_store::{Batch, SqliteStore, Store};
//!
//! let dir = std::env::temp_dir().join(format!("store-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let store = SqliteStore::open(&dir.join("state.db")).await.unwrap();
//! let batch = Batch {
//!     meta: vec![("next_offer".into(), "1".into())],
//!     ..Batch::default()
//! };
//! store.commit(&batch).await.unwrap();
//! assert_eq!(store.load().await.unwrap().meta("next_offer"), Some("1"));
//! # store.close().await;
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # });
//! ```

pub mod records;
mod sql;

pub use records::{
    AgentRow, AuditRow, Batch, ContactRecord, ContactRow, Counts, MessageRow, NameRow, OwnerRow,
    State,
};
pub use sql::{PgStore, SqliteStore};

/// A storage failure: which operation, on which store, and why.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: open {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("store: migrate {url}: {source}")]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error(
        "store: another router took the lead (epoch {current}, this one has {mine}); not writing"
    )]
    Fenced { mine: i64, current: i64 },
    #[error("store: {operation}: {source}")]
    Query {
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

/// Persistence for the router. Every method is safe to call concurrently.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Everything needed to restore the router: names, agents, open contacts, the
    /// sticky-routing memory and counters.
    async fn load(&self) -> Result<State, StoreError>;

    /// Which of these message ids were already processed (for deduplication).
    async fn seen(&self, ids: &[String]) -> Result<Vec<String>, StoreError>;

    /// Waits until this process may write (PostgreSQL: it holds the schema's advisory
    /// lock; SQLite: at once), takes the next epoch and returns it. From then on every
    /// commit checks the epoch in its transaction and fails with [`StoreError::Fenced`]
    /// once another process has taken the lead, so a router that lost it cannot write.
    async fn lead(&self) -> Result<i64, StoreError>;

    /// Writes a batch in one transaction: all of it or nothing.
    async fn commit(&self, batch: &Batch) -> Result<(), StoreError>;

    /// A contact by public id, open or ended.
    async fn contact(&self, id: &str) -> Result<Option<ContactRecord>, StoreError>;

    /// The contact a message created or joined, by message id.
    async fn contact_of_message(&self, message: &str) -> Result<Option<String>, StoreError>;

    /// What became of a message, by message id.
    async fn message(&self, id: &str) -> Result<Option<MessageRow>, StoreError>;

    /// Contacts that arrived in `[from, to)` (milliseconds since the epoch), by arrival.
    async fn contacts_arrived(&self, from: i64, to: i64) -> Result<Vec<ContactRecord>, StoreError>;

    /// A contact's audit trail, oldest first.
    async fn audit(&self, contact_seq: i64) -> Result<Vec<AuditRow>, StoreError>;

    /// The whole audit log from `after` (exclusive), oldest first, at most `limit` rows.
    async fn audit_since(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError>;

    /// Counters for reconciliation: contacts by state, messages by outcome.
    async fn counts(&self) -> Result<Counts, StoreError>;

    /// How far an IMAP mailbox was ingested: `(uidvalidity, last_uid)`, if ever.
    async fn mailbox_checkpoint(&self, mailbox: &str) -> Result<Option<(u32, u32)>, StoreError>;

    /// Records that a mailbox's messages up to `uid` under `uidvalidity` were published.
    /// Not fenced by the epoch: adapters write it, and the checkpoint only moves forward
    /// within one uidvalidity.
    async fn record_mailbox_uid(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        uid: u32,
    ) -> Result<(), StoreError>;

    /// Takes one of the `max` automatic acknowledgements a mailbox may send `recipient` on
    /// `day` (days since the Unix epoch): `true` if one was left (and is now used), `false`
    /// if all are. Atomic, so two senders never both take the last one; days before
    /// yesterday are forgotten.
    async fn take_acknowledgement(
        &self,
        mailbox: &str,
        recipient: &str,
        day: i64,
        max: u32,
    ) -> Result<bool, StoreError>;

    /// Whether the store answers now (for `/readyz`).
    async fn health(&self) -> Result<(), StoreError>;

    /// Closes the connection pool.
    async fn close(&self);
}
