//! [`AmqpBus`]: the bus on RabbitMQ, through lapin.
//!
//! Topology (declared on every connect, idempotently; `{prefix}` from [`AmqpConfig::prefix`]):
//! - `{prefix}.inbound`: a durable direct exchange, bound with key [`INBOUND_ROUTING_KEY`] to
//!   the durable quorum queue `{prefix}.inbound` with `x-delivery-limit`,
//!   `x-dead-letter-exchange={prefix}.dead`, at-least-once dead-lettering and
//!   `x-single-active-consumer`;
//! - `{prefix}.dead`: a durable fanout exchange and the durable quorum queue behind it;
//! - `{prefix}.assignments`: a durable topic exchange for assignment events.
//!
//! Publishing uses one connection with one channel in confirm mode. Concurrent publishes
//! share it: each writes its frames and awaits its own confirm, so the broker sees a pipeline
//! and never one round trip per message. When the connection is lost, every publish whose
//! confirm did not arrive reconnects (one reconnect for all, with backoff and jitter) and
//! publishes again, until its deadline. A subscription has its own connection, so publisher
//! flow control never delays acks.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery as AmqpDelivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
    ExchangeKind,
};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::error::Source;
use crate::outstanding::Outstanding;
use crate::{
    Backoff, Bus, BusError, DeadLetter, Delivery, DeliveryTag, Envelope, REASON_HEADER,
    Subscription,
};

/// Routing key inbound messages are published with (the binding key of the inbound queue).
pub const INBOUND_ROUTING_KEY: &str = "inbound";

/// Header RabbitMQ sets on messages it dead-lettered itself (delivery limit, rejection).
const FIRST_DEATH_REASON: &str = "x-first-death-reason";

/// How to reach RabbitMQ and what to call things there.
#[derive(Clone, PartialEq, Eq)]
pub struct AmqpConfig {
    /// Broker URL, `amqp://user:password@host:port/vhost` (vhost `/` is `%2f`). Add
    /// `?heartbeat=10` to notice a silently dead connection within about 20 s instead of the
    /// broker's default 60 s heartbeat.
    pub url: String,
    /// Prefix of every queue and exchange name (see [`Names`]).
    pub prefix: String,
    /// Returns after which RabbitMQ dead-letters a message (`x-delivery-limit`; RabbitMQ 3.10
    /// has no default). Changing it for an existing queue needs a policy or a new queue.
    pub delivery_limit: u32,
    /// How long [`Bus::publish`] keeps reconnecting and republishing before it errors.
    pub publish_timeout: Duration,
    /// How long one connection attempt (TCP, handshake, topology) may take.
    pub connect_timeout: Duration,
    /// Delays between reconnect attempts.
    pub backoff: Backoff,
    /// Connection name shown by `rabbitmqctl list_connections client_properties`, followed by
    /// the connection's role ("publisher" or "consumer").
    pub connection_name: String,
}

impl fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: show only where it points.
        f.debug_struct("AmqpConfig")
            .field("endpoint", &endpoint(&self.url))
            .field("prefix", &self.prefix)
            .field("delivery_limit", &self.delivery_limit)
            .field("publish_timeout", &self.publish_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("backoff", &self.backoff)
            .field("connection_name", &self.connection_name)
            .finish()
    }
}

impl AmqpConfig {
    /// A configuration for `url` with the defaults: prefix `switchboard`, delivery limit 5,
    /// publish timeout 10 s, connect timeout 5 s, backoff from 100 ms to 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        AmqpConfig {
            url: url.into(),
            prefix: "switchboard".to_owned(),
            delivery_limit: 5,
            publish_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            backoff: Backoff::default(),
            connection_name: "switchboard".to_owned(),
        }
    }
}

/// The names of the queues and exchanges for one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// `{prefix}.inbound`: the inbound exchange and the quorum queue bound to it.
    pub inbound: String,
    /// `{prefix}.dead`: the dead-letter exchange and queue.
    pub dead: String,
    /// `{prefix}.assignments`: the topic exchange for assignment events.
    pub assignments: String,
}

impl Names {
    /// The names for `prefix`.
    pub fn new(prefix: &str) -> Self {
        Names {
            inbound: format!("{prefix}.inbound"),
            dead: format!("{prefix}.dead"),
            assignments: format!("{prefix}.assignments"),
        }
    }
}

/// `host:port` (and the vhost unless `/`) of an AMQP URL, never its credentials.
fn endpoint(url: &str) -> String {
    match url.parse::<lapin::uri::AMQPUri>() {
        Ok(uri) if uri.vhost == "/" => format!("{}:{}", uri.authority.host, uri.authority.port),
        Ok(uri) => format!(
            "{}:{} vhost {}",
            uri.authority.host, uri.authority.port, uri.vhost
        ),
        Err(_) => "<unparsable amqp url>".to_owned(),
    }
}

fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> Source {
    Box::new(e)
}

fn short(s: &str, what: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(s).map_err(|e| BusError::Invalid {
        what: what.to_owned(),
        reason: e.to_string(),
    })
}

/// One publishing connection and its confirm-mode channel.
struct Link {
    generation: u64,
    connection: Connection,
    channel: Channel,
}

impl Link {
    fn usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

/// State shared by the bus and its subscriptions (which publish dead letters through it).
struct Shared {
    config: AmqpConfig,
    names: Names,
    endpoint: String,
    link: Mutex<Option<Arc<Link>>>,
    /// Held while reconnecting, so concurrent publishers wait for one reconnect.
    reconnect: tokio::sync::Mutex<()>,
    /// Consecutive failed publisher connects, for the backoff.
    failures: AtomicU32,
    /// Source of link and subscription generations; never reused within the process.
    generations: AtomicU64,
    closed: AtomicBool,
}

/// What to publish and how to name it in errors.
struct Outgoing<'a> {
    what: String,
    exchange: &'a str,
    routing_key: ShortString,
    body: &'a [u8],
    properties: BasicProperties,
    /// Ask the broker to return it if no queue takes it (inbound and dead letters must land).
    mandatory: bool,
}

enum Failure {
    /// Give up now with this error.
    Fatal(BusError),
    /// The link broke before the confirm arrived: reconnect and publish again.
    Retry,
}

impl Shared {
    fn check_open(&self, operation: &str) -> Result<(), BusError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BusError::Closed {
                operation: operation.to_owned(),
            });
        }
        Ok(())
    }

    fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn amqp_error(&self, operation: impl Into<String>, e: lapin::Error) -> BusError {
        BusError::Amqp {
            operation: operation.into(),
            endpoint: self.endpoint.clone(),
            source: boxed(e),
        }
    }

    /// Runs one connection step (connect, declare, open a consumer) within the connect
    /// timeout, so a broker that accepts TCP but never answers cannot hang a reconnect.
    async fn within_connect_timeout<T>(
        &self,
        step: impl Future<Output = Result<T, BusError>>,
    ) -> Result<T, BusError> {
        match tokio::time::timeout(self.config.connect_timeout, step).await {
            Ok(result) => result,
            Err(_) => Err(BusError::Connect {
                endpoint: self.endpoint.clone(),
                source: format!("timed out after {:?}", self.config.connect_timeout).into(),
            }),
        }
    }

    /// Opens a connection and a channel, and declares the topology on it.
    async fn open_channel(&self, role: &str) -> Result<(Connection, Channel), BusError> {
        let connect_error = |source: Source| BusError::Connect {
            endpoint: self.endpoint.clone(),
            source,
        };
        let properties = ConnectionProperties::default().with_connection_name(LongString::from(
            format!("{} {role}", self.config.connection_name),
        ));
        let connection = Connection::connect(&self.config.url, properties)
            .await
            .map_err(|e| connect_error(boxed(e)))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| connect_error(boxed(e)))?;
        self.declare_topology(&channel).await?;
        Ok((connection, channel))
    }

    /// Declares every exchange, queue and binding; declaring what exists with the same
    /// arguments is a no-op, and different arguments fail with the broker's explanation.
    async fn declare_topology(&self, channel: &Channel) -> Result<(), BusError> {
        let names = &self.names;
        let durable_exchange = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let durable_queue = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let failed = |object: String| {
            let endpoint = self.endpoint.clone();
            move |e: lapin::Error| BusError::Topology {
                object,
                endpoint,
                source: boxed(e),
            }
        };

        channel
            .exchange_declare(
                names.dead.as_str().into(),
                ExchangeKind::Fanout,
                durable_exchange,
                FieldTable::default(),
            )
            .await
            .map_err(failed(format!("fanout exchange {}", names.dead)))?;
        let mut dead_args = FieldTable::default();
        dead_args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        channel
            .queue_declare(names.dead.as_str().into(), durable_queue, dead_args)
            .await
            .map_err(failed(format!("quorum queue {}", names.dead)))?;
        channel
            .queue_bind(
                names.dead.as_str().into(),
                names.dead.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(failed(format!("binding {0} -> {0}", names.dead)))?;

        channel
            .exchange_declare(
                names.inbound.as_str().into(),
                ExchangeKind::Direct,
                durable_exchange,
                FieldTable::default(),
            )
            .await
            .map_err(failed(format!("direct exchange {}", names.inbound)))?;
        let mut inbound_args = FieldTable::default();
        inbound_args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        inbound_args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(self.config.delivery_limit)),
        );
        inbound_args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(names.dead.as_str().into()),
        );
        // At-most-once (the default) drops a message if dead-lettering fails; every confirmed
        // message must end somewhere, so ask for at-least-once (which needs reject-publish).
        inbound_args.insert(
            "x-dead-letter-strategy".into(),
            AMQPValue::LongString("at-least-once".into()),
        );
        inbound_args.insert(
            "x-overflow".into(),
            AMQPValue::LongString("reject-publish".into()),
        );
        inbound_args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        channel
            .queue_declare(names.inbound.as_str().into(), durable_queue, inbound_args)
            .await
            .map_err(failed(format!("quorum queue {}", names.inbound)))?;
        channel
            .queue_bind(
                names.inbound.as_str().into(),
                names.inbound.as_str().into(),
                INBOUND_ROUTING_KEY.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(failed(format!("binding {0} -> {0}", names.inbound)))?;

        channel
            .exchange_declare(
                names.assignments.as_str().into(),
                ExchangeKind::Topic,
                durable_exchange,
                FieldTable::default(),
            )
            .await
            .map_err(failed(format!("topic exchange {}", names.assignments)))?;
        Ok(())
    }

    async fn open_link(&self) -> Result<Arc<Link>, BusError> {
        let (connection, channel) = self
            .within_connect_timeout(async {
                let (connection, channel) = self.open_channel("publisher").await?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(|e| self.amqp_error("confirm.select", e))?;
                Ok((connection, channel))
            })
            .await?;
        Ok(Arc::new(Link {
            generation: self.next_generation(),
            connection,
            channel,
        }))
    }

    fn current(&self) -> Option<Arc<Link>> {
        let link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        link.as_ref().filter(|l| l.usable()).cloned()
    }

    /// Forgets `link` if it is still the current one (another caller may have replaced it).
    fn invalidate(&self, link: &Link) {
        let old = {
            let mut current = self.link.lock().unwrap_or_else(|p| p.into_inner());
            if current.as_ref().map(|l| l.generation) == Some(link.generation) {
                current.take()
            } else {
                None
            }
        };
        if old.is_some() {
            warn!(endpoint = %self.endpoint, generation = link.generation, "amqp: publisher connection lost");
        }
    }

    /// The usable publishing link, reconnecting with backoff as long as the caller waits.
    /// Errors only when the bus is closed or the topology cannot be declared; `last` gets the
    /// latest connect failure for the caller's timeout message.
    async fn link(&self, last: &mut String) -> Result<Arc<Link>, BusError> {
        loop {
            self.check_open("connect")?;
            if let Some(link) = self.current() {
                return Ok(link);
            }
            let _reconnecting = self.reconnect.lock().await;
            if let Some(link) = self.current() {
                return Ok(link);
            }
            let failures = self.failures.load(Ordering::Relaxed);
            if failures > 0 {
                tokio::time::sleep(self.config.backoff.delay(failures - 1)).await;
            }
            self.check_open("connect")?;
            match self.open_link().await {
                Ok(link) => {
                    self.failures.store(0, Ordering::Relaxed);
                    info!(endpoint = %self.endpoint, generation = link.generation, "amqp: publisher connected");
                    *self.link.lock().unwrap_or_else(|p| p.into_inner()) = Some(link.clone());
                    return Ok(link);
                }
                Err(e @ BusError::Topology { .. }) => return Err(e),
                Err(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    warn!(endpoint = %self.endpoint, failures = failures + 1, error = %e, "amqp: publisher connect failed");
                    *last = e.to_string();
                }
            }
        }
    }

    /// Publishes and waits for the confirm, reconnecting and publishing again on a lost
    /// connection until the publish timeout.
    async fn publish_confirmed(&self, out: Outgoing<'_>) -> Result<(), BusError> {
        self.check_open(&format!("publish of {}", out.what))?;
        let deadline = Instant::now() + self.config.publish_timeout;
        let mut last = "no confirm yet".to_owned();
        let mut used = None;
        loop {
            let attempt = self.try_publish(&out, &mut last, &mut used);
            match tokio::time::timeout_at(deadline, attempt).await {
                Err(_elapsed) => {
                    // A confirm that never came suggests a connection that died silently
                    // (heartbeats notice only later): let the next publish start afresh.
                    if let Some(link) = used {
                        self.invalidate(&link);
                    }
                    return Err(BusError::PublishTimeout {
                        what: out.what,
                        exchange: out.exchange.to_owned(),
                        timeout: self.config.publish_timeout,
                        last,
                    });
                }
                Ok(Ok(())) => return Ok(()),
                Ok(Err(Failure::Fatal(e))) => return Err(e),
                Ok(Err(Failure::Retry)) => {
                    debug!(what = %out.what, "amqp: publishing again after a lost connection");
                }
            }
        }
    }

    async fn try_publish(
        &self,
        out: &Outgoing<'_>,
        last: &mut String,
        used: &mut Option<Arc<Link>>,
    ) -> Result<(), Failure> {
        let link = self.link(last).await.map_err(Failure::Fatal)?;
        *used = Some(link.clone());
        let options = BasicPublishOptions {
            mandatory: out.mandatory,
            immediate: false,
        };
        let confirm = match link
            .channel
            .basic_publish(
                out.exchange.into(),
                out.routing_key.clone(),
                options,
                out.body,
                out.properties.clone(),
            )
            .await
        {
            Ok(confirm) => confirm,
            Err(e) => {
                *last = format!("basic.publish failed: {e}");
                self.invalidate(&link);
                return Err(Failure::Retry);
            }
        };
        let refused = |reason: String| {
            Failure::Fatal(BusError::Refused {
                what: out.what.clone(),
                exchange: out.exchange.to_owned(),
                reason,
            })
        };
        match confirm.await {
            Ok(Confirmation::Ack(None)) => Ok(()),
            Ok(Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned))) => {
                Err(refused(format!(
                    "returned as unroutable: {} {}",
                    returned.reply_code, returned.reply_text
                )))
            }
            Ok(Confirmation::Nack(None)) => Err(refused("negative confirm (nack)".to_owned())),
            Ok(Confirmation::NotRequested) => {
                Err(refused("channel is not in confirm mode".to_owned()))
            }
            Err(e) => {
                *last = format!("waiting for the confirm failed: {e}");
                self.invalidate(&link);
                Err(Failure::Retry)
            }
        }
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, BusError> {
        let mut last = String::new();
        let link =
            match tokio::time::timeout(self.config.connect_timeout, self.link(&mut last)).await {
                Ok(link) => link?,
                Err(_) => {
                    return Err(BusError::Connect {
                        endpoint: self.endpoint.clone(),
                        source: last.into(),
                    });
                }
            };
        // A channel of its own: messages got without ack go back to the queue, in their
        // order, when it closes, which makes this a peek.
        let channel = link
            .connection
            .create_channel()
            .await
            .map_err(|e| self.amqp_error("channel.open", e))?;
        let mut letters = Vec::new();
        while letters.len() < max {
            let got = channel
                .basic_get(
                    self.names.dead.as_str().into(),
                    BasicGetOptions { no_ack: false },
                )
                .await
                .map_err(|e| self.amqp_error(format!("basic.get from {}", self.names.dead), e))?;
            let Some(message) = got else { break };
            letters.push(dead_letter_of(&message.delivery));
        }
        if let Err(e) = channel.close(200, "peek done".into()).await {
            debug!(error = %e, "amqp: closing the dead-letter peek channel failed");
        }
        Ok(letters)
    }
}

fn header_text(headers: &FieldTable, key: &str) -> Option<String> {
    match headers.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn dead_letter_of(delivery: &AmqpDelivery) -> DeadLetter {
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    let reason = header_text(&headers, REASON_HEADER)
        .or_else(|| header_text(&headers, FIRST_DEATH_REASON).map(|r| format!("broker: {r}")))
        .unwrap_or_else(|| "unknown".to_owned());
    DeadLetter {
        id: delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str().to_owned()),
        body: delivery.data.clone(),
        reason,
    }
}

/// The bus on RabbitMQ. Cheap to clone; clones share the publishing connection.
#[derive(Clone)]
pub struct AmqpBus {
    shared: Arc<Shared>,
}

impl fmt::Debug for AmqpBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpBus")
            .field("endpoint", &self.shared.endpoint)
            .field("names", &self.shared.names)
            .finish()
    }
}

impl AmqpBus {
    /// Connects once (no retry: a broker missing at start-up is reported at once), declares
    /// the topology and opens the confirm-mode publishing channel.
    pub async fn connect(config: AmqpConfig) -> Result<AmqpBus, BusError> {
        if config.prefix.is_empty() || config.prefix.len() > 200 {
            return Err(BusError::Invalid {
                what: format!("amqp prefix {:?}", config.prefix),
                reason: "must be 1 to 200 bytes".to_owned(),
            });
        }
        let shared = Arc::new(Shared {
            names: Names::new(&config.prefix),
            endpoint: endpoint(&config.url),
            config,
            link: Mutex::new(None),
            reconnect: tokio::sync::Mutex::new(()),
            failures: AtomicU32::new(0),
            generations: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        let link = shared.open_link().await?;
        info!(endpoint = %shared.endpoint, prefix = %shared.config.prefix, "amqp: connected, topology declared");
        *shared.link.lock().unwrap_or_else(|p| p.into_inner()) = Some(link);
        Ok(AmqpBus { shared })
    }

    /// The queue and exchange names in use.
    pub fn names(&self) -> &Names {
        &self.shared.names
    }

    /// The configuration this bus was connected with.
    pub fn config(&self) -> &AmqpConfig {
        &self.shared.config
    }

    /// Opens a subscription with its own connection (see [`Bus::subscribe`]).
    pub async fn subscribe_amqp(&self, prefetch: u16) -> Result<AmqpSubscription, BusError> {
        self.shared.check_open("subscribe")?;
        if prefetch == 0 {
            return Err(BusError::Invalid {
                what: "prefetch 0".to_owned(),
                reason: "must be at least 1 (0 would mean unlimited)".to_owned(),
            });
        }
        let mut subscription = AmqpSubscription {
            shared: self.shared.clone(),
            prefetch,
            consumer: None,
            outstanding: Outstanding::default(),
            pending: VecDeque::new(),
            failures: 0,
        };
        subscription.open().await?;
        Ok(subscription)
    }
}

#[async_trait::async_trait]
impl Bus for AmqpBus {
    async fn publish(&self, envelope: &Envelope) -> Result<(), BusError> {
        envelope.check_id().map_err(|reason| BusError::Invalid {
            what: format!("envelope {:?}", envelope.id),
            reason,
        })?;
        let body = envelope.to_json();
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(envelope.id.as_str().into())
            .with_timestamp(envelope.received_at.as_millis() / 1000)
            .with_app_id("switchboard".into());
        self.shared
            .publish_confirmed(Outgoing {
                what: format!("message {}", envelope.id),
                exchange: &self.shared.names.inbound,
                routing_key: INBOUND_ROUTING_KEY.into(),
                body: &body,
                properties,
                mandatory: true,
            })
            .await
    }

    async fn publish_event(&self, routing_key: &str, body: &[u8]) -> Result<(), BusError> {
        let what = format!("event {routing_key}");
        let routing_key = short(routing_key, &what)?;
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_app_id("switchboard".into());
        self.shared
            .publish_confirmed(Outgoing {
                what,
                exchange: &self.shared.names.assignments,
                routing_key,
                body,
                properties,
                mandatory: false,
            })
            .await
    }

    async fn subscribe(&self, prefetch: u16) -> Result<Box<dyn Subscription>, BusError> {
        Ok(Box::new(self.subscribe_amqp(prefetch).await?))
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, BusError> {
        self.shared.check_open("read dead letters")?;
        self.shared.dead_letters(max).await
    }

    async fn health(&self) -> Result<(), BusError> {
        self.shared.check_open("health check")?;
        let mut last = "no connection yet".to_owned();
        match tokio::time::timeout(
            self.shared.config.connect_timeout,
            self.shared.link(&mut last),
        )
        .await
        {
            Ok(link) => link.map(|_| ()),
            Err(_) => Err(BusError::Connect {
                endpoint: self.shared.endpoint.clone(),
                source: last.into(),
            }),
        }
    }

    async fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        let link = self
            .shared
            .link
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(link) = link
            && link.usable()
            && let Err(e) = link.connection.close(200, "shutdown".into()).await
        {
            debug!(error = %e, "amqp: closing the publisher connection failed");
        }
    }
}

/// The consuming side of one subscription.
struct ConsumerLink {
    generation: u64,
    // Kept so the connection stays open as long as the consumer; dropped together.
    _connection: Connection,
    channel: Channel,
    consumer: Consumer,
}

/// A consumer of the inbound queue on RabbitMQ, with its own connection.
pub struct AmqpSubscription {
    shared: Arc<Shared>,
    prefetch: u16,
    consumer: Option<ConsumerLink>,
    outstanding: Outstanding,
    /// Deliveries received but not yet returned (kept here so cancelling `next_batch` loses
    /// none, which would otherwise let a later multiple-ack ack them unseen).
    pending: VecDeque<Delivery>,
    failures: u32,
}

impl fmt::Debug for AmqpSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpSubscription")
            .field("queue", &self.shared.names.inbound)
            .field("prefetch", &self.prefetch)
            .field("generation", &self.outstanding.generation())
            .field("unacked", &self.outstanding.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl AmqpSubscription {
    /// Opens the consumer connection once.
    async fn open(&mut self) -> Result<(), BusError> {
        let shared = &self.shared;
        let queue = &shared.names.inbound;
        let prefetch = self.prefetch;
        let (connection, channel, consumer) = shared
            .within_connect_timeout(async {
                let (connection, channel) = shared.open_channel("consumer").await?;
                channel
                    .basic_qos(prefetch, BasicQosOptions { global: false })
                    .await
                    .map_err(|e| shared.amqp_error(format!("basic.qos {prefetch}"), e))?;
                let consumer = channel
                    .basic_consume(
                        queue.as_str().into(),
                        "".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|e| shared.amqp_error(format!("basic.consume from {queue}"), e))?;
                Ok((connection, channel, consumer))
            })
            .await?;
        let generation = self.shared.next_generation();
        self.outstanding.reset(Some(generation));
        info!(queue = %queue, generation, consumer_tag = %consumer.tag(), "amqp: consuming");
        self.consumer = Some(ConsumerLink {
            generation,
            _connection: connection,
            channel,
            consumer,
        });
        Ok(())
    }

    /// Reopens the consumer, with backoff, until it works or the bus is closed.
    async fn reopen(&mut self) -> Result<(), BusError> {
        loop {
            self.shared.check_open("consume")?;
            if self.failures > 0 {
                tokio::time::sleep(self.shared.config.backoff.delay(self.failures - 1)).await;
            }
            match self.open().await {
                Ok(()) => {
                    self.failures = 0;
                    return Ok(());
                }
                Err(e) => {
                    self.failures += 1;
                    warn!(endpoint = %self.shared.endpoint, failures = self.failures, error = %e, "amqp: consumer reconnect failed");
                }
            }
        }
    }

    fn lost(&mut self, error: Option<lapin::Error>) {
        if let Some(link) = self.consumer.take() {
            match error {
                Some(e) => {
                    warn!(generation = link.generation, error = %e, "amqp: consumer connection lost")
                }
                None => warn!(
                    generation = link.generation,
                    "amqp: consumer cancelled or closed"
                ),
            }
        }
        // Unacked deliveries return to the queue with the channel: their tags are void now.
        self.outstanding.reset(None);
    }

    fn accept(&mut self, generation: u64, delivery: AmqpDelivery) {
        self.outstanding.insert(delivery.delivery_tag);
        self.pending.push_back(Delivery::decode(
            DeliveryTag::new(generation, delivery.delivery_tag),
            delivery.redelivered,
            delivery.data,
        ));
    }

    /// Receives one delivery, or notes the loss of the connection; `None` means lost.
    async fn receive(&mut self) -> Option<()> {
        let link = self.consumer.as_mut()?;
        let generation = link.generation;
        match link.consumer.next().await {
            Some(Ok(delivery)) => {
                self.accept(generation, delivery);
                Some(())
            }
            Some(Err(e)) => {
                self.lost(Some(e));
                None
            }
            None => {
                self.lost(None);
                None
            }
        }
    }
}

#[async_trait::async_trait]
impl Subscription for AmqpSubscription {
    async fn next_batch(
        &mut self,
        max: usize,
        linger: Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        let max = max.max(1);
        while self.pending.is_empty() {
            if self.consumer.is_none() {
                self.reopen().await?;
            }
            self.receive().await;
        }
        let until = Instant::now() + linger;
        while self.pending.len() < max && self.consumer.is_some() {
            // The timeout polls the consumer before looking at the clock, so a zero linger
            // still takes whatever has already arrived.
            match tokio::time::timeout_at(until, self.receive()).await {
                Ok(Some(())) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let n = max.min(self.pending.len());
        Ok(self.pending.drain(..n).collect())
    }

    async fn ack_through(&mut self, tag: DeliveryTag) -> Result<(), BusError> {
        let Some(value) = self.outstanding.take_through(tag) else {
            debug!(?tag, "amqp: ack of a stale or already acked tag ignored");
            return Ok(());
        };
        let Some(link) = &self.consumer else {
            return Ok(());
        };
        if let Err(e) = link
            .channel
            .basic_ack(value, BasicAckOptions { multiple: true })
            .await
        {
            let error = self
                .shared
                .amqp_error(format!("basic.ack through tag {value}"), e);
            self.lost(None);
            return Err(error);
        }
        Ok(())
    }

    async fn dead_letter(&mut self, delivery: &Delivery, reason: &str) -> Result<(), BusError> {
        let tag = delivery.tag;
        if !self.outstanding.take_one(tag) {
            debug!(
                ?tag,
                "amqp: dead-letter of a stale or already acked delivery ignored"
            );
            return Ok(());
        }
        let id = delivery.envelope.as_ref().ok().map(|e| e.id.clone());
        let mut headers = FieldTable::default();
        headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
        let mut properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_headers(headers);
        if let Some(id) = &id {
            properties = properties.with_message_id(id.as_str().into());
        }
        let what = match &id {
            Some(id) => format!("dead letter of message {id}"),
            None => format!("dead letter of delivery {}", tag.value()),
        };
        let published = self
            .shared
            .publish_confirmed(Outgoing {
                what,
                exchange: &self.shared.names.dead,
                routing_key: "".into(),
                body: &delivery.body,
                properties,
                mandatory: true,
            })
            .await;
        if let Err(e) = published {
            self.outstanding.restore(tag);
            return Err(e);
        }
        warn!(message_id = id.as_deref().unwrap_or("<undecodable>"), %reason, "amqp: message dead-lettered");
        let Some(link) = &self.consumer else {
            return Ok(());
        };
        if link.generation != tag.generation() {
            return Ok(());
        }
        if let Err(e) = link
            .channel
            .basic_ack(tag.value(), BasicAckOptions { multiple: false })
            .await
        {
            let error = self
                .shared
                .amqp_error(format!("basic.ack of dead-lettered tag {}", tag.value()), e);
            self.lost(None);
            return Err(error);
        }
        Ok(())
    }
}
