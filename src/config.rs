//! The configuration file: loaded with the `config` crate from TOML, overridden by
//! `SWITCHBOARD__SECTION__KEY` environment variables, unknown keys rejected, then validated
//! into the engine's [`Policy`]. Every error names the file, the key and the reason.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use switchboard_core::{
    Channel, ChannelPolicy, OfflineBehaviour, Policy, QueuePolicy, StickyPolicy, TeamId, TeamSet,
    Urgency,
};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Where the embedded default keeps its files.
    #[serde(default)]
    pub data: DataConfig,
    /// The message bus between adapters and the router.
    #[serde(default)]
    pub bus: BusConfig,
    /// Where state is persisted.
    #[serde(default)]
    pub store: StoreConfig,
    /// The router loop.
    #[serde(default)]
    pub router: RouterConfig,
    /// Agents declared in the file.
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
    /// Classification rules, applied in order to every new contact.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Who may call the API.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Getting offers and updates to agents' tools.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// Channel webhooks, by name: each served at `POST /v1/channels/<name>`.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Engine-wide routing rules.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// Per-channel rules; a channel left out keeps its defaults.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// The queues contacts wait in; the first is the default queue.
    #[serde(default)]
    pub queues: Vec<QueueConfig>,
    /// What `GET /metrics` exports.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// IMAP mailboxes watched for new mail, by name (`[mailboxes.<name>]`).
    #[serde(default)]
    pub mailboxes: BTreeMap<String, switchboard_channel_email::MailboxConfig>,
}

/// `[metrics]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Export a series per agent (`switchboard_agent_load_ratio{agent=…}`): one series per
    /// agent, so off by default.
    pub per_agent: bool,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP server listens on (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Ingest requests handled at once; more wait (backpressure).
    pub max_concurrent_ingest: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 64 * 1024,
            max_concurrent_ingest: 256,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `switchboard=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Human,
    Json,
}

/// `[data]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Directory for the embedded default's files (SQLite store and in-process bus),
    /// relative to the working directory.
    pub dir: PathBuf,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dir: PathBuf::from("data"),
        }
    }
}

/// `[bus]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// `in_process` (embedded default: a durable queue in the data directory) or `amqp`.
    pub kind: BusKind,
    /// The broker, for `amqp`.
    pub url: String,
    /// Prefix of exchange and queue names: `{prefix}.inbound`, `{prefix}.dead`,
    /// `{prefix}.assignments`.
    pub prefix: String,
    /// Deliveries of one message before it is dead-lettered.
    pub delivery_limit: u32,
    /// Unacknowledged deliveries the router holds at once.
    pub prefetch: u16,
    /// How long a publish may take, reconnects included, before the source is told to
    /// retry (HTTP 503).
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            kind: BusKind::InProcess,
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            prefix: "switchboard".into(),
            delivery_limit: 5,
            prefetch: 256,
            publish_timeout: Duration::from_secs(5),
        }
    }
}

/// Which bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusKind {
    InProcess,
    Amqp,
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite` (embedded default: a file in the data directory) or `postgres`.
    pub kind: StoreKind,
    /// The database, for `postgres`.
    pub url: String,
    /// The PostgreSQL schema to use (created if missing); empty: the user's default.
    pub schema: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Sqlite,
            url: "postgres://postgres@127.0.0.1:5432/switchboard".into(),
            schema: String::new(),
        }
    }
}

/// Which store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// `[router]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterConfig {
    /// Most messages routed and persisted in one transaction.
    pub batch_size: usize,
    /// How long to wait for more messages once one has arrived.
    #[serde(with = "humantime_serde")]
    pub batch_linger: Duration,
    /// How long shutdown may take before the process exits anyway.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            batch_size: 100,
            batch_linger: Duration::from_millis(5),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// `[[agents]]`: an agent declared in the file (the agent API can manage them too).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Unique name; the API and logs use it.
    pub name: String,
    /// Teams the agent belongs to.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Skills with proficiency 1..=10.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Concurrent contacts per channel; a channel left out is one the agent does not serve.
    #[serde(default)]
    pub caps: BTreeMap<String, u16>,
    /// Concurrent contacts across all channels, if limited.
    pub total_cap: Option<u16>,
    /// Presence when the agent is first created.
    #[serde(default = "available")]
    pub presence: switchboard_core::Presence,
    /// The agent's bearer token: it reaches only this agent's stream, presence and work.
    #[serde(default)]
    pub token: Option<String>,
    /// Where to POST the agent's events (signed; see `[delivery]`).
    #[serde(default)]
    pub webhook: Option<String>,
    /// Accept this agent's offers at once (for tools that cannot accept).
    #[serde(default)]
    pub auto_accept: bool,
    /// Where accepted voice calls are put through: `client:<name>` (a Twilio Client),
    /// a `+E.164` number or a `sip:` URI.
    #[serde(default)]
    pub dial: Option<String>,
}

fn available() -> switchboard_core::Presence {
    switchboard_core::Presence::Available
}

/// `[auth]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Bearer token for agent management, queues and every agent's routes. Empty: the API
    /// is open to anyone who reaches it (fine on a laptop, never in production). Prefer
    /// `SWITCHBOARD__AUTH__ADMIN_TOKEN` to writing it here.
    pub admin_token: String,
}

/// `[sources.<name>]`: one channel webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The adapter: one of `crate::channels::KINDS`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The signing secret (chat, ivr: the HMAC key; slack: the app's signing secret;
    /// twilio: the account's auth token; meta: the app secret). Prefer
    /// `SWITCHBOARD__SOURCES__<NAME>__SECRET`.
    #[serde(default)]
    pub secret: String,
    /// How old a signature may be before it is refused as a replay (chat, ivr; Slack's
    /// window is five minutes).
    #[serde(default = "replay_window", with = "humantime_serde")]
    pub replay_window: Duration,
    /// How long an answer waits for the router to place a message before answering
    /// without its position (chat, twilio, ivr).
    #[serde(default = "answer_within", with = "humantime_serde")]
    pub answer_within: Duration,
    /// Skills every contact from this source requires (for example a senior skill for
    /// public social messages), beside what the rules add.
    #[serde(default)]
    pub skills: Vec<String>,
    /// The urgency of contacts from this source, unless the rules say otherwise.
    #[serde(default)]
    pub urgency: Option<Urgency>,
    /// meta: the verify token of the webhook subscription handshake.
    #[serde(default)]
    pub verify_token: String,
    /// twilio: the URL the provider calls for this source, as it sees it (behind proxies
    /// and TLS terminators), e.g. `https://switchboard.example.com/v1/channels/phone`.
    /// Signatures are computed over it, and TwiML points back to it.
    #[serde(default)]
    pub public_url: String,
    /// twilio, ivr: what the caller hears first; with `menu_digits`, the menu prompt.
    #[serde(default)]
    pub greeting: String,
    /// twilio: how many keys a menu choice takes; 0 (the default) queues calls without a
    /// menu. What the caller keys in becomes the contact's `digits` attribute, which the
    /// `[[rules]]` map to queues, skills and urgency.
    #[serde(default)]
    pub menu_digits: u32,
    /// twilio: the pause between wait announcements.
    #[serde(default = "hold_for", with = "humantime_serde")]
    pub hold_for: Duration,
    /// twilio: music played while holding instead of silence (an audio URL).
    #[serde(default)]
    pub hold_music: String,
    /// twilio: `<Say>` voice and language (Twilio's names, e.g. "Polly.Amy", "en-GB").
    #[serde(default)]
    pub voice: String,
    #[serde(default)]
    pub language: String,
}

fn answer_within() -> Duration {
    Duration::from_secs(2)
}

fn hold_for() -> Duration {
    Duration::from_secs(20)
}

fn replay_window() -> Duration {
    Duration::from_secs(300)
}

/// `[delivery]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// HMAC-SHA256 key of the webhook signature header. Prefer
    /// `SWITCHBOARD__DELIVERY__WEBHOOK_SECRET`. Webhooks are sent only when it is set.
    pub webhook_secret: String,
    /// Attempts per webhook event, the first included.
    pub webhook_attempts: u32,
    /// Time allowed for one webhook attempt.
    #[serde(with = "humantime_serde")]
    pub webhook_timeout: Duration,
    /// Delay before the first retry; it doubles (with jitter) up to a minute.
    #[serde(with = "humantime_serde")]
    pub webhook_backoff: Duration,
    /// Publish every agent event to the bus's assignments exchange (routing keys
    /// `agent.<name>.<event>` and `team.<team>.<event>`).
    pub publish_events: bool,
    /// Teams whose agents' tools cannot accept: their offers are accepted at once.
    pub auto_accept_teams: Vec<String>,
    /// Webhooks per team, for agents without a webhook of their own (team name → URL).
    pub team_webhooks: BTreeMap<String, String>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            webhook_secret: String::new(),
            webhook_attempts: 5,
            webhook_timeout: Duration::from_secs(5),
            webhook_backoff: Duration::from_millis(500),
            publish_events: true,
            auto_accept_teams: Vec::new(),
            team_webhooks: BTreeMap::new(),
        }
    }
}

/// `[[rules]]`: when every given condition holds, the actions apply. The queue comes from
/// the first matching rule that names one; urgency is the highest asked for; skills add up.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Condition: the contact's channel.
    pub channel: Option<String>,
    /// Condition: attributes equal to these values (IVR `digits`, mailbox `to`, `tier`).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Condition: any of these words in the summary or body (case-insensitive).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Action: the queue.
    pub queue: Option<String>,
    /// Action: at least this urgency.
    pub urgency: Option<Urgency>,
    /// Action: required skills to add.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Action: preferred skills to add.
    #[serde(default)]
    pub preferred_skills: Vec<String>,
}

/// `[routing]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// After this many offers in a row expire unanswered, the agent is set away (0: never).
    pub max_missed_offers: u32,
    /// `keep` or `requeue`: what happens to an agent's conversations when they go offline.
    pub on_offline: OfflineBehaviour,
    /// Sticky routing of returning customers.
    pub sticky: StickyConfig,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        let p = Policy::default();
        RoutingConfig {
            max_missed_offers: p.max_missed_offers,
            on_offline: p.on_offline,
            sticky: StickyConfig {
                remember_for: p.sticky.remember_for,
                wait: p.sticky.wait,
            },
        }
    }
}

/// `[routing.sticky]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickyConfig {
    /// How long a closed conversation's owner is remembered for the customer.
    #[serde(with = "humantime_serde")]
    pub remember_for: Duration,
    /// How long a returning customer's contact waits for that owner (0s: off).
    #[serde(with = "humantime_serde")]
    pub wait: Duration,
}

/// `[channels.<name>]`; every key is optional and defaults to the built-in value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Service-level targets (time to first assignment) by urgency.
    #[serde(default)]
    pub targets: Targets,
    /// How long an agent has to accept an offer.
    #[serde(default, with = "humantime_serde::option")]
    pub offer_timeout: Option<Duration>,
    /// Whether an agent with work on this channel is offered nothing else.
    pub exclusive: Option<bool>,
    /// How long wrap-up holds the agent's slot.
    #[serde(default, with = "humantime_serde::option")]
    pub wrap_up: Option<Duration>,
    /// The queue contacts on this channel go to when no rule names one.
    pub queue: Option<String>,
    /// The urgency contacts on this channel get when neither source nor rule says.
    pub urgency: Option<Urgency>,
}

/// Targets by urgency; a missing one keeps the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default, with = "humantime_serde::option")]
    pub low: Option<Duration>,
    #[serde(default, with = "humantime_serde::option")]
    pub normal: Option<Duration>,
    #[serde(default, with = "humantime_serde::option")]
    pub high: Option<Duration>,
    #[serde(default, with = "humantime_serde::option")]
    pub urgent: Option<Duration>,
}

impl Targets {
    fn get(&self, urgency: Urgency) -> Option<Duration> {
        match urgency {
            Urgency::Low => self.low,
            Urgency::Normal => self.normal,
            Urgency::High => self.high,
            Urgency::Urgent => self.urgent,
        }
    }
}

/// `[[queues]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Unique name, used in the API and metric labels.
    pub name: String,
    /// Teams whose agents may serve the queue; empty: every team.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Teams that may serve it once a contact has waited `overflow_after`.
    #[serde(default)]
    pub overflow_teams: Vec<String>,
    /// Wait before the overflow teams become eligible.
    #[serde(default, with = "humantime_serde")]
    pub overflow_after: Duration,
    /// How long preferred skills are required before only required skills count.
    #[serde(default, with = "humantime_serde")]
    pub preferred_for: Duration,
    /// Per channel, targets that replace the channel's own.
    #[serde(default)]
    pub targets: BTreeMap<String, Targets>,
}

/// A configuration problem: where it is and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {source}")]
    Load {
        file: PathBuf,
        #[source]
        source: config::ConfigError,
    },
    #[error("{file}: {key}: {reason}")]
    Invalid {
        file: PathBuf,
        key: String,
        reason: String,
    },
}

/// Names mapped to the engine's small numbers, in order of first appearance.
#[derive(Debug, Clone, Default)]
pub struct Names {
    by_id: Vec<Option<String>>,
    by_name: HashMap<String, usize>,
}

impl Names {
    /// The number for `name`, allocating the next free one; `None` past `limit`.
    pub fn intern(&mut self, name: &str, limit: usize) -> Option<usize> {
        if let Some(i) = self.get(name) {
            return Some(i);
        }
        let id = self
            .by_id
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.by_id.len());
        (id < limit).then(|| {
            self.insert_at(name, id);
            id
        })
    }

    /// Records that `name` has number `id` (as read back from the store).
    pub fn insert_at(&mut self, name: &str, id: usize) {
        if self.by_id.len() <= id {
            self.by_id.resize(id + 1, None);
        }
        self.by_id[id] = Some(name.to_owned());
        self.by_name.insert(name.to_owned(), id);
    }

    /// The number of `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The name of number `i`.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.by_id.get(i).and_then(|n| n.as_deref())
    }
}

/// A loaded and validated configuration.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file it came from.
    pub file: PathBuf,
    /// The raw settings.
    pub config: Config,
    /// The engine's policy built from them.
    pub policy: Policy,
    /// Team names and their numbers.
    pub teams: Names,
}

impl Config {
    /// Reads `file`, applies `SWITCHBOARD__…` environment overrides, and validates.
    pub fn load(file: &Path) -> Result<Loaded, ConfigError> {
        let load = |source| ConfigError::Load {
            file: file.to_owned(),
            source,
        };
        let config: Config = config::Config::builder()
            .add_source(config::File::from(file).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("SWITCHBOARD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .map_err(load)?
            .try_deserialize()
            .map_err(load)?;
        config.validate(file)
    }

    /// Checks what the types cannot and builds the engine's policy.
    pub fn validate(self, file: &Path) -> Result<Loaded, ConfigError> {
        let invalid = |(key, reason): (String, String)| ConfigError::Invalid {
            file: file.to_owned(),
            key,
            reason,
        };
        let mut teams = Names::default();
        let policy = self.build_policy(&mut teams).map_err(invalid)?;
        self.check(&policy).map_err(invalid)?;
        Ok(Loaded {
            file: file.to_owned(),
            config: self,
            policy,
            teams,
        })
    }

    /// Builds the engine's policy, numbering team names with `teams` (the daemon passes
    /// the numbering persisted in its store, so numbers stay stable across restarts).
    pub fn build_policy(&self, teams: &mut Names) -> Result<Policy, (String, String)> {
        let invalid = |key: String, reason: String| (key, reason);
        let mut policy = Policy {
            max_missed_offers: self.routing.max_missed_offers,
            on_offline: self.routing.on_offline,
            sticky: StickyPolicy {
                remember_for: self.routing.sticky.remember_for,
                wait: self.routing.sticky.wait,
            },
            ..Policy::default()
        };
        if !policy.sticky.wait.is_zero() && policy.sticky.remember_for.is_zero() {
            return Err(invalid(
                "routing.sticky.remember_for".into(),
                "must be above zero when routing.sticky.wait is set".into(),
            ));
        }
        for (name, ch) in &self.channels {
            let channel = parse_channel(name)
                .map_err(|reason| invalid(format!("channels.{name}"), reason))?;
            let target = &mut policy.channels[channel.index()];
            apply_channel(target, ch)
                .map_err(|(key, reason)| invalid(format!("channels.{name}.{key}"), reason))?;
        }
        if !self.queues.is_empty() {
            policy.queues.clear();
        }
        for (i, q) in self.queues.iter().enumerate() {
            let key = |k: &str| format!("queues[{i}].{k}");
            if q.name.trim().is_empty() {
                return Err(invalid(key("name"), "must not be empty".into()));
            }
            if self.queues[..i].iter().any(|p| p.name == q.name) {
                return Err(invalid(
                    key("name"),
                    format!("queue {:?} is defined twice", q.name),
                ));
            }
            let mut queue = QueuePolicy::open(q.name.clone());
            queue.teams = team_set(teams, &q.teams).map_err(|r| invalid(key("teams"), r))?;
            queue.overflow_teams = team_set(teams, &q.overflow_teams)
                .map_err(|r| invalid(key("overflow_teams"), r))?;
            if !queue.overflow_teams.is_empty() && queue.teams.is_empty() {
                return Err(invalid(
                    key("overflow_teams"),
                    "needs `teams` to be set: a queue open to every team has nothing to overflow to"
                        .into(),
                ));
            }
            queue.overflow_after = q.overflow_after;
            queue.preferred_for = q.preferred_for;
            for (name, targets) in &q.targets {
                let channel = parse_channel(name)
                    .map_err(|reason| invalid(key(&format!("targets.{name}")), reason))?;
                for u in Urgency::ALL {
                    if let Some(t) = targets.get(u) {
                        if t.is_zero() {
                            return Err(invalid(
                                key(&format!("targets.{name}.{u}")),
                                "must be above zero".into(),
                            ));
                        }
                        queue.targets[channel.index()][u.index()] = Some(t);
                    }
                }
            }
            policy.queues.push(queue);
        }
        policy
            .validate()
            .map_err(|e| invalid("queues".into(), e.to_string()))?;
        Ok(policy)
    }

    /// Checks the sections the policy does not cover: server, bus, store, agents, rules.
    fn check(&self, policy: &Policy) -> Result<(), (String, String)> {
        let invalid = |key: &str, reason: String| (key.to_owned(), reason);
        self.server
            .listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| invalid("server.listen", format!("not an address:port: {e}")))?;
        if self.server.max_body_bytes < 1024 {
            return Err(invalid(
                "server.max_body_bytes",
                "must be at least 1024".into(),
            ));
        }
        if self.server.max_concurrent_ingest == 0 {
            return Err(invalid(
                "server.max_concurrent_ingest",
                "must be above zero".into(),
            ));
        }
        if self.bus.kind == BusKind::Amqp && !self.bus.url.starts_with("amqp") {
            return Err(invalid(
                "bus.url",
                "must be an amqp:// or amqps:// URL".into(),
            ));
        }
        if self.bus.prefix.is_empty() {
            return Err(invalid("bus.prefix", "must not be empty".into()));
        }
        if self.bus.delivery_limit == 0 {
            return Err(invalid("bus.delivery_limit", "must be above zero".into()));
        }
        if self.bus.prefetch == 0 {
            return Err(invalid("bus.prefetch", "must be above zero".into()));
        }
        if self.store.kind == StoreKind::Postgres && !self.store.url.starts_with("postgres") {
            return Err(invalid(
                "store.url",
                "must be a postgres:// or postgresql:// URL".into(),
            ));
        }
        if self.router.batch_size == 0 {
            return Err(invalid("router.batch_size", "must be above zero".into()));
        }
        for (name, ch) in &self.channels {
            if let Some(q) = &ch.queue
                && policy.queue_id(q).is_none()
            {
                return Err(invalid(
                    &format!("channels.{name}.queue"),
                    unknown_queue(q, policy),
                ));
            }
        }
        let mut skills = Names::default();
        for (i, a) in self.agents.iter().enumerate() {
            let key = |k: &str| format!("agents[{i}].{k}");
            if a.name.trim().is_empty() {
                return Err(invalid(&key("name"), "must not be empty".into()));
            }
            if self.agents[..i].iter().any(|b| b.name == a.name) {
                return Err(invalid(
                    &key("name"),
                    format!("agent {:?} is defined twice", a.name),
                ));
            }
            for (skill, p) in &a.skills {
                if !(1..=10).contains(p) {
                    return Err(invalid(
                        &key(&format!("skills.{skill}")),
                        format!("proficiency {p} is outside 1..=10"),
                    ));
                }
                skills
                    .intern(skill, switchboard_core::SkillId::LIMIT)
                    .ok_or_else(|| {
                        invalid(&key("skills"), "more than 128 distinct skills".into())
                    })?;
            }
            for channel in a.caps.keys() {
                parse_channel(channel).map_err(|r| invalid(&key(&format!("caps.{channel}")), r))?;
            }
            team_set(&mut Names::default(), &a.teams).map_err(|r| invalid(&key("teams"), r))?;
            if let Some(dial) = &a.dial {
                crate::voice::dial_target(dial).map_err(|r| invalid(&key("dial"), r))?;
            }
        }
        for (name, source) in &self.sources {
            let key = |k: &str| format!("sources.{name}.{k}");
            if !crate::channels::KINDS.contains(&source.kind.as_str()) {
                return Err(invalid(
                    &key("type"),
                    format!(
                        "unknown type {:?}; known types: {}",
                        source.kind,
                        crate::channels::KINDS.join(", ")
                    ),
                ));
            }
            if source.secret.is_empty() {
                return Err(invalid(
                    &key("secret"),
                    "is required: requests are checked against it".into(),
                ));
            }
            if source.kind == "meta" && source.verify_token.is_empty() {
                return Err(invalid(
                    &key("verify_token"),
                    "is required: Meta's subscription handshake sends it".into(),
                ));
            }
            if source.kind == "twilio"
                && !(source.public_url.starts_with("https://")
                    || source.public_url.starts_with("http://"))
            {
                return Err(invalid(
                    &key("public_url"),
                    "is required: the http(s) URL the provider calls for this source (signatures cover it)".into(),
                ));
            }
            if source.public_url.contains(['?', '#']) {
                return Err(invalid(
                    &key("public_url"),
                    "must not have a query or fragment: the call's steps are added as a query"
                        .into(),
                ));
            }
            if source.menu_digits > 8 {
                return Err(invalid(
                    &key("menu_digits"),
                    "a menu choice is at most 8 keys".into(),
                ));
            }
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    &format!("sources.{name}"),
                    "names are letters, digits, - and _ (they are URL paths)".into(),
                ));
            }
        }
        crate::email::check(self, policy)?;
        for (i, r) in self.rules.iter().enumerate() {
            let key = |k: &str| format!("rules[{i}].{k}");
            if let Some(c) = &r.channel {
                parse_channel(c).map_err(|e| invalid(&key("channel"), e))?;
            }
            if let Some(q) = &r.queue
                && policy.queue_id(q).is_none()
            {
                return Err(invalid(&key("queue"), unknown_queue(q, policy)));
            }
            if r.queue.is_none()
                && r.urgency.is_none()
                && r.skills.is_empty()
                && r.preferred_skills.is_empty()
            {
                return Err(invalid(
                    &format!("rules[{i}]"),
                    "does nothing: give a queue, urgency, skills or preferred_skills".into(),
                ));
            }
        }
        Ok(())
    }
}

fn unknown_queue(name: &str, policy: &Policy) -> String {
    let known: Vec<&str> = policy.queues.iter().map(|q| q.name.as_str()).collect();
    format!("unknown queue {name:?}; queues: {}", known.join(", "))
}

fn parse_channel(name: &str) -> Result<Channel, String> {
    Channel::parse(name).ok_or_else(|| {
        let known: Vec<_> = Channel::ALL.iter().map(|c| c.as_str()).collect();
        format!(
            "unknown channel {name:?}; known channels: {}",
            known.join(", ")
        )
    })
}

fn apply_channel(target: &mut ChannelPolicy, ch: &ChannelConfig) -> Result<(), (String, String)> {
    for u in Urgency::ALL {
        if let Some(t) = ch.targets.get(u) {
            if t.is_zero() {
                return Err((format!("targets.{u}"), "must be above zero".into()));
            }
            target.targets[u.index()] = t;
        }
    }
    if let Some(t) = ch.offer_timeout {
        if t.is_zero() {
            return Err(("offer_timeout".into(), "must be above zero".into()));
        }
        target.offer_timeout = t;
    }
    if let Some(e) = ch.exclusive {
        target.exclusive = e;
    }
    if let Some(w) = ch.wrap_up {
        target.wrap_up = w;
    }
    Ok(())
}

fn team_set(teams: &mut Names, names: &[String]) -> Result<TeamSet, String> {
    let mut ids = Vec::with_capacity(names.len());
    for n in names {
        let id = teams.intern(n, TeamId::LIMIT).ok_or_else(|| {
            format!(
                "team {n:?} is one more than the {} supported",
                TeamId::LIMIT
            )
        })?;
        ids.push(TeamId(id as u8));
    }
    Ok(TeamSet::of(ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<Loaded, ConfigError> {
        // A file of its own per call: tests run side by side.
        let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(file.path(), toml).unwrap();
        Config::load(file.path())
    }

    #[test]
    fn every_shipped_config_file_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
                seen += 1;
            }
        }
        assert!(seen > 0, "no config files in {}", dir.display());
    }

    #[test]
    fn an_unknown_key_is_named() {
        let err = parse("[routing]\nmax_missed = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_missed"), "{err}");
        assert!(err.contains(".toml"), "{err}");
    }

    #[test]
    fn an_unknown_channel_lists_the_known_ones() {
        let err = parse("[channels.fax]\nexclusive = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("channels.fax"), "{err}");
        assert!(err.contains("email, chat, voice, social, sms"), "{err}");
    }

    #[test]
    fn a_bad_duration_is_named() {
        let err = parse("[channels.chat]\noffer_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("offer_timeout"), "{err}");
    }

    #[test]
    fn queues_become_the_policy() {
        let loaded = parse(
            r#"
[channels.chat]
targets = { normal = "45s" }
[[queues]]
name = "billing"
teams = ["billing"]
overflow_teams = ["support"]
overflow_after = "2m"
[queues.targets.email]
normal = "1h"
"#,
        )
        .unwrap();
        let p = &loaded.policy;
        assert_eq!(p.queues.len(), 1);
        assert_eq!(p.queues[0].teams, TeamSet::of([TeamId(0)]));
        assert_eq!(p.queues[0].overflow_teams, TeamSet::of([TeamId(1)]));
        assert_eq!(p.channel(Channel::Chat).targets[1], Duration::from_secs(45));
        assert_eq!(
            p.target(
                switchboard_core::QueueId(0),
                Channel::Email,
                Urgency::Normal
            ),
            Duration::from_secs(3600)
        );
        assert_eq!(loaded.teams.name(1), Some("support"));
    }

    #[test]
    fn duplicate_queues_and_lonely_overflow_are_refused() {
        let err = parse("[[queues]]\nname = \"a\"\n[[queues]]\nname = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("queues[1].name"), "{err}");
        let err = parse("[[queues]]\nname = \"a\"\noverflow_teams = [\"x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("queues[0].overflow_teams"), "{err}");
    }

    #[test]
    fn agents_and_rules_are_checked_with_their_key() {
        let err = parse("[[agents]]\nname = \"a\"\nskills = { billing = 11 }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("agents[0].skills.billing"), "{err}");
        let err = parse("[[agents]]\nname = \"a\"\ncaps = { fax = 1 }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("agents[0].caps.fax"), "{err}");
        let err = parse("[[rules]]\nkeywords = [\"x\"]\nqueue = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rules[0].queue"), "{err}");
        assert!(err.contains("queues: default"), "{err}");
        let err = parse("[[rules]]\nkeywords = [\"x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("does nothing"), "{err}");
    }

    #[test]
    fn server_bus_and_store_are_checked() {
        let err = parse("[server]\nlisten = \"localhost\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.listen"), "{err}");
        let err = parse("[bus]\nkind = \"amqp\"\nurl = \"http://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bus.url"), "{err}");
        let err = parse("[store]\nkind = \"mysql\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql"), "{err}");
    }
}
