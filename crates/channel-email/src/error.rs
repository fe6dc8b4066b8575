//! What can go wrong while watching a mailbox. Every error ends the current IMAP session;
//! the watcher reconnects with backoff and resumes from the last recorded UID.

use std::time::Duration;

/// Why a mailbox session ended.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The mailbox's configuration cannot be used (a missing password variable).
    #[error("config: {0}")]
    Config(String),
    /// The TCP connection could not be made or broke.
    #[error("imap: connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (certificate, protocol).
    #[error("imap: tls handshake with {host}: {source}")]
    Tls {
        /// The server name checked against its certificate.
        host: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The server refused the login.
    #[error("imap: login to {addr} as {username} failed: {source}")]
    Login {
        /// `host:port`.
        addr: String,
        /// The login name.
        username: String,
        /// The server's answer.
        #[source]
        source: async_imap::error::Error,
    },
    /// An IMAP command failed or the connection dropped during it.
    #[error("imap: {op} on {addr}: {source}")]
    Imap {
        /// The command.
        op: &'static str,
        /// `host:port`.
        addr: String,
        /// The cause.
        #[source]
        source: async_imap::error::Error,
    },
    /// The server said something the watcher cannot work with.
    #[error("imap: {0}")]
    Protocol(String),
    /// An operation took too long; the connection is assumed dead.
    #[error("imap: {what} timed out after {after:?}")]
    Timeout {
        /// What was being done.
        what: String,
        /// The limit.
        after: Duration,
    },
    /// The checkpoint could not be read or written (the store is down).
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The sink did not take a message (the bus is down).
    #[error("publish {id}: {reason}")]
    Sink {
        /// The message's id.
        id: String,
        /// The sink's reason.
        reason: String,
    },
}
