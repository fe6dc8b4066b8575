//! Switchboard's message bus: how adapters hand inbound messages to the router, durably and
//! at least once, and how assignment events leave for integrations. One trait, [`Bus`], with
//! two implementations: RabbitMQ for production and a SQLite-backed queue for the embedded
//! default. The router consumes through a [`Subscription`] in batches, acks a batch with one
//! multiple-ack once its decisions are persisted, and dedups redeliveries by envelope id.
//!
//! Modules:
//! - [`envelope`]: the [`Envelope`] adapters publish, its stable JSON and version check;
//! - [`amqp`]: [`AmqpBus`], RabbitMQ via lapin: topology (durable quorum queue with a
//!   delivery limit, dead-letter exchange and queue, assignments topic exchange), pipelined
//!   publisher confirms, batched acks, reconnect with backoff, single active consumer;
//! - [`inprocess`]: [`InProcessBus`], the embedded default: a SQLite file in WAL mode with
//!   group commit, the same delivery limit, dead-lettering and single-consumer semantics;
//! - [`backoff`]: exponential backoff with jitter used by reconnects;
//! - [`error`]: the error type, [`BusError`].
//!
//! Guarantees common to both implementations:
//! - [`Bus::publish`] returns `Ok` only once the message is safe (broker confirm, or SQLite
//!   commit); a caller that sees an error must not acknowledge its source.
//! - A delivery is redelivered (with [`Delivery::redelivered`] set) until acked; after
//!   `delivery_limit` returns it is dead-lettered instead.
//! - Tags carry the generation of the channel they came from: acking a tag from before a
//!   reconnect does nothing (those deliveries come back), it never touches the new channel.
//!
//! ```no_run
//! use std::time::Duration;
//! use switchboard_bus::{Bus, BusError, Envelope, InProcessBus};
//!
//! async fn adapter(bus: &dyn Bus, envelope: Envelope) -> Result<(), BusError> {
//!     bus.publish(&envelope).await?; // only now acknowledge the source (HTTP 200, IMAP seen)
//!     Ok(())
//! }
//!
//! async fn router(bus: &dyn Bus) -> Result<(), BusError> {
//!     let mut subscription = bus.subscribe(256).await?;
//!     loop {
//!         let batch = subscription.next_batch(128, Duration::from_millis(20)).await?;
//!         for delivery in &batch {
//!             match &delivery.envelope {
//!                 Ok(envelope) => { /* dedup on envelope.id, thread, route, persist */ }
//!                 Err(why) => subscription.dead_letter(delivery, &why.to_string()).await?,
//!             }
//!         }
//!         // Once the batch's decisions are persisted: one multiple-ack for the batch.
//!         if let Some(last) = batch.last() {
//!             subscription.ack_through(last.tag).await?;
//!         }
//!     }
//! }
//!
//! # async fn run() -> Result<(), BusError> {
//! let bus = InProcessBus::open("data/bus.db").await?;
//! router(&bus).await
//! # }
//! ```

#![warn(missing_docs)]

pub mod amqp;
pub mod backoff;
pub mod envelope;
pub mod error;
pub mod inprocess;
mod outstanding;

use std::time::Duration;

pub use amqp::{AmqpBus, AmqpConfig, AmqpSubscription, Names};
pub use backoff::Backoff;
pub use envelope::{
    DecodeError, ENVELOPE_VERSION, Envelope, EnvelopeKind, InboundMessage, MAX_ID_LEN,
};
pub use error::BusError;
pub use inprocess::{BusEvent, InProcessBus, InProcessConfig, InProcessSubscription};

// The router holds the bus as `Arc<dyn Bus>`: keep the traits dyn-compatible.
const _: Option<&dyn Bus> = None;
const _: Option<&dyn Subscription> = None;

/// Header that carries the reason a message was dead-lettered by Switchboard.
pub const REASON_HEADER: &str = "x-switchboard-reason";

/// The message bus, as adapters and the router see it.
#[async_trait::async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes one inbound message durably; returns only once it is safe (AMQP publisher
    /// confirm received; in-process: committed to disk). Concurrent callers are pipelined.
    /// On a lost connection it reconnects and republishes, up to a deadline, then errors.
    async fn publish(&self, envelope: &Envelope) -> Result<(), BusError>;

    /// Publishes an assignment event (JSON body) with this routing key, confirmed like
    /// [`Bus::publish`]. An event nobody listens to is dropped, as a topic exchange does.
    async fn publish_event(&self, routing_key: &str, body: &[u8]) -> Result<(), BusError>;

    /// Starts consuming the inbound queue; only one subscription at a time receives
    /// deliveries (single active consumer), the others wait as hot standbys.
    async fn subscribe(&self, prefetch: u16) -> Result<Box<dyn Subscription>, BusError>;

    /// Reads up to `max` dead-lettered messages without removing them, oldest first where the
    /// implementation can tell.
    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, BusError>;

    /// Whether the bus is reachable now (for `/readyz`).
    async fn health(&self) -> Result<(), BusError>;

    /// Closes connections cleanly (shutdown); later calls fail with [`BusError::Closed`].
    /// Drop subscriptions first: an AMQP subscription has its own connection, closed when it
    /// is dropped; an in-process one waiting in `next_batch` returns `Closed`.
    async fn close(&self);
}

/// A consumer of the inbound queue. Dropping it returns its unacked deliveries to the queue
/// (they come back redelivered) and lets a waiting standby take over.
#[async_trait::async_trait]
pub trait Subscription: Send {
    /// Waits for at least one delivery, then returns up to `max`, waiting at most `linger`
    /// more to fill the batch. Reconnects with backoff when the connection is lost (unacked
    /// deliveries come back redelivered; the router dedups). Cancel-safe: deliveries received
    /// by a cancelled call are returned by the next one. With `prefetch` deliveries unacked
    /// nothing more can arrive, so ack before asking again.
    async fn next_batch(&mut self, max: usize, linger: Duration)
    -> Result<Vec<Delivery>, BusError>;

    /// Acknowledges every delivery up to and including `tag` in one multiple-ack. A tag from
    /// before a reconnect is ignored (those deliveries will be redelivered), never sent on the
    /// new channel; acking the same range twice is a no-op.
    async fn ack_through(&mut self, tag: DeliveryTag) -> Result<(), BusError>;

    /// Moves one delivery to the dead-letter queue with `reason` attached (header
    /// [`REASON_HEADER`]), then acks it. A delivery from before a reconnect, or one already
    /// acked, is left alone. At least once: if the connection is lost between the two steps
    /// the message comes back and may be dead-lettered twice.
    async fn dead_letter(&mut self, delivery: &Delivery, reason: &str) -> Result<(), BusError>;
}

/// Identifies a delivery on the channel generation that delivered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeliveryTag {
    generation: u64,
    value: u64,
}

impl DeliveryTag {
    /// Builds a tag; generations are never reused within a process.
    pub(crate) fn new(generation: u64, value: u64) -> Self {
        DeliveryTag { generation, value }
    }

    /// The channel generation (bumped by every reconnect or new subscription).
    pub fn generation(self) -> u64 {
        self.generation
    }

    /// The tag within its generation; increases with every delivery.
    pub fn value(self) -> u64 {
        self.value
    }
}

/// One message handed to the consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// What to ack it with.
    pub tag: DeliveryTag,
    /// Whether it may have been delivered before (to this or another consumer).
    pub redelivered: bool,
    /// The raw body, kept so an undecodable message can be dead-lettered as it came.
    pub body: Vec<u8>,
    /// The decoded envelope, or why decoding failed (dead-letter those).
    pub envelope: Result<Envelope, DecodeError>,
}

impl Delivery {
    fn decode(tag: DeliveryTag, redelivered: bool, body: Vec<u8>) -> Self {
        let envelope = Envelope::from_json(&body);
        Delivery {
            tag,
            redelivered,
            body,
            envelope,
        }
    }
}

/// A dead-lettered message, as read back from the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message id, when known.
    pub id: Option<String>,
    /// The body as it was published.
    pub body: Vec<u8>,
    /// Why it was dead-lettered: Switchboard's reason, or `broker: <reason>` (for example
    /// `broker: delivery_limit`) when RabbitMQ dead-lettered it.
    pub reason: String,
}
