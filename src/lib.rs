//! The `switchboard` daemon: configuration, command line, and the wiring of bus, store,
//! router and HTTP API around the engine in `switchboard-core`.
//!
//! Modules:
//! - [`config`]: the configuration file, environment overrides and their validation;
//! - [`names`]: skill, team and agent names numbered for the engine, stable across restarts;
//! - [`classify`]: classification rules that give a new contact its queue, urgency, skills;
//! - [`router`]: the router loop: consume, thread, classify, route, persist, then ack;
//! - [`api`]: the HTTP API (health, readiness, ingest, contact view);
//! - [`metrics`]: the Prometheus registry and `GET /metrics`;
//! - [`agents`]: the agent API (agents, presence, live stream, offers, contact life cycle,
//!   queues) and its bearer-token auth;
//! - [`hub`]: agents' live feeds, resumable by `Last-Event-ID`;
//! - [`channels`]: the channel adapters' registry and their webhook route;
//! - [`email`]: the IMAP mailboxes' watchers, publishing to the bus, checkpoints in the store;
//! - [`daemon`]: `switchboard run`, wiring and shutdown;
//! - [`simulate`]: the `simulate` command, around `switchboard-sim`;
//! - [`export`]: `export-replay`, a day of the store's traffic as a replay file;
//! - [`cli`]: the command line.

pub mod agents;
pub mod api;
pub mod channels;
pub mod classify;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod email;
pub mod export;
pub mod hub;
pub mod metrics;
pub mod names;
pub mod router;
pub mod simulate;
pub mod voice;
