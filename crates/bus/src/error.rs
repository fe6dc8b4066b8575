//! The crate's error type.

use std::time::Duration;

/// A boxed underlying error, so the public API does not expose lapin's or sqlx's types.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong talking to the bus. Messages say what failed with which input; credentials
/// are never part of them (endpoints are printed as `host:port`, plus the vhost unless `/`).
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Opening a connection (TCP, AMQP handshake, login) failed.
    #[error("amqp: connect to {endpoint} failed: {source}")]
    Connect {
        /// Broker endpoint, without credentials.
        endpoint: String,
        /// The underlying error.
        source: Source,
    },
    /// Declaring or checking the topology failed; usually an existing queue with other arguments.
    #[error("amqp: declare {object} on {endpoint} failed: {source}")]
    Topology {
        /// Which object, e.g. "quorum queue sb.inbound".
        object: String,
        /// Broker endpoint, without credentials.
        endpoint: String,
        /// The underlying error.
        source: Source,
    },
    /// An AMQP operation on an open connection failed (the connection or channel was lost).
    #[error("amqp: {operation} on {endpoint} failed: {source}")]
    Amqp {
        /// What was being done, e.g. "basic.ack of tag 7".
        operation: String,
        /// Broker endpoint, without credentials.
        endpoint: String,
        /// The underlying error.
        source: Source,
    },
    /// A publish was not confirmed before its deadline (connection down or broker too slow).
    #[error(
        "amqp: publish of {what} to exchange {exchange} not confirmed within {timeout:?}: {last}"
    )]
    PublishTimeout {
        /// What was published: "message <id>" or "event <routing key>".
        what: String,
        /// The exchange it was published to.
        exchange: String,
        /// The deadline that passed.
        timeout: Duration,
        /// The last failure seen while retrying, or "no confirm yet".
        last: String,
    },
    /// The broker refused a publish (negative confirm, or returned as unroutable).
    #[error("amqp: broker refused {what} on exchange {exchange}: {reason}")]
    Refused {
        /// What was published.
        what: String,
        /// The exchange it was published to.
        exchange: String,
        /// Why, as far as the broker said.
        reason: String,
    },
    /// A SQLite operation of the in-process bus failed.
    #[error("in-process bus: {operation} on {path} failed: {source}")]
    Sqlite {
        /// What was being done, e.g. "commit of 12 publishes".
        operation: String,
        /// The database file.
        path: String,
        /// The underlying error.
        source: Source,
    },
    /// An input cannot be used as it is (an envelope id, a routing key, a prefetch).
    #[error("bus: {what} refused: {reason}")]
    Invalid {
        /// What was refused, e.g. `envelope "m-1"`.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// [`crate::Bus::close`] was called; nothing more goes through this bus.
    #[error("bus: {operation} refused: the bus is closed")]
    Closed {
        /// What was attempted.
        operation: String,
    },
}
