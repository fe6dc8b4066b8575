//! Prometheus metrics, served at `GET /metrics`.
//!
//! Two kinds of figures, kept apart so neither can drift from the truth:
//! - **Counters and histograms of what happened** (contacts ingested, offers and their
//!   outcomes, assignments within target, abandons, dead letters, bus and ingest outcomes).
//!   Routing figures are gathered while a step's decisions become store rows
//!   ([`Pending::observe`]) and added to the registry only once that step's store commit
//!   succeeded ([`Metrics::committed`]): a step that fails is reloaded and redone, and is
//!   counted once, when it is persisted.
//! - **Gauges of how things are now** (waiting contacts, oldest wait, contacts past their
//!   target, agents by presence, slots and occupancy): computed at scrape time from the
//!   engine's state under the router mutex ([`Snapshot::of`]), never incremented, so they
//!   are exactly the engine's state at the scrape.
//!
//! Labels are low-cardinality only (`channel`, `queue`, `urgency`, `state`, `outcome`,
//! `reason`, `presence`); agent names appear only in `switchboard_agent_load_ratio`, which
//! exists only when `metrics.per_agent` is on. No contact or customer id is ever a label.
//! The README's "Metrics" section lists every metric.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use switchboard_core::{
    Channel, CloseReason, ContactId, ContactState, Decision, OfferId, OfferOutcome, Policy,
    Presence, PresenceReason, RequeueReason, Time, Urgency, WaitKind,
};
use switchboard_store::MessageRow;

use crate::api::AppState;
use crate::config::Loaded;
use crate::router::{OpenContact, Router, now};

/// Buckets for contact-centre times, from a second to a day: a 5 s voice target and an
/// 8 h email target both fall between two buckets.
pub const WAIT_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
    7200.0, 14400.0, 28800.0, 86400.0,
];

/// Buckets for an agent's time to answer an offer (offer timeouts are seconds to minutes).
const ACCEPT_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Buckets for the error of a told wait (seen minus told): late answers are positive.
const ESTIMATE_ERROR_BUCKETS: &[f64] = &[
    -3600.0, -1800.0, -600.0, -300.0, -120.0, -60.0, -30.0, -10.0, -5.0, 0.0, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Buckets for internal latencies (bus confirms, store commits): a millisecond to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const PRESENCES: [Presence; 3] = [Presence::Available, Presence::Away, Presence::Offline];

fn presence_str(p: Presence) -> &'static str {
    match p {
        Presence::Available => "available",
        Presence::Away => "away",
        Presence::Offline => "offline",
    }
}

/// The registry and every metric the daemon exports. One per process, passed as context.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    per_agent: bool,
    /// Serialises scrapes: a scrape resets and refills the state gauges.
    scrape: std::sync::Mutex<()>,

    // Routing, counted after the store commit.
    ingested: IntCounterVec,
    follow_ups: IntCounterVec,
    offers: IntCounterVec,
    offer_outcomes: IntCounterVec,
    assigned: IntCounterVec,
    assigned_within: IntCounterVec,
    time_to_assignment: HistogramVec,
    time_to_accept: HistogramVec,
    wait_told: HistogramVec,
    wait_error: HistogramVec,
    wait_error_abs: HistogramVec,
    waits: IntCounterVec,
    abandoned: IntCounterVec,
    time_to_abandon: HistogramVec,
    closed: IntCounterVec,
    requeued: IntCounterVec,
    transferred: IntCounterVec,
    presence_changes: IntCounterVec,

    // Router, bus and store.
    dead_letters: IntCounterVec,
    deliveries: IntCounter,
    redeliveries: IntCounter,
    duplicates: IntCounter,
    router_errors: IntCounterVec,
    commit_seconds: HistogramVec,
    publishes: IntCounterVec,
    publish_seconds: HistogramVec,

    // Email sent: acknowledgements and agent replies.
    email_outbound: IntCounterVec,

    // Ingest endpoint.
    ingest_accepted: IntCounterVec,
    ingest_rejected: IntCounterVec,

    // State at scrape time.
    waiting: IntGaugeVec,
    open: IntGaugeVec,
    oldest_wait: GaugeVec,
    past_target: IntGaugeVec,
    target: GaugeVec,
    agents: IntGaugeVec,
    slots: IntGaugeVec,
    slots_used: IntGaugeVec,
    occupancy: Gauge,
    agent_load: GaugeVec,
    bus_up: IntGauge,
    store_up: IntGauge,
    leader: IntGauge,
    ready: IntGauge,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("valid metric");
    registry
        .register(Box::new(h.clone()))
        .expect("unique metric");
    h
}

fn int_gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

fn scalar(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

fn plain_counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

impl Metrics {
    /// Registers every metric. Series for each configured queue and channel start at zero,
    /// so a rate or an alert sees 0 rather than nothing before the first contact.
    pub fn new(loaded: &Loaded) -> Metrics {
        let r = Registry::new();
        let cq = &["channel", "queue"];
        let m = Metrics {
            per_agent: loaded.config.metrics.per_agent,
            scrape: std::sync::Mutex::new(()),
            ingested: counter(
                &r,
                "switchboard_contacts_ingested_total",
                "New contacts the router persisted (follow-ups not included).",
                &["channel", "queue", "urgency"],
            ),
            follow_ups: counter(
                &r,
                "switchboard_follow_ups_total",
                "Messages threaded into an open contact instead of becoming a new one.",
                &["channel"],
            ),
            offers: counter(&r, "switchboard_offers_total", "Offers made to agents.", cq),
            offer_outcomes: counter(
                &r,
                "switchboard_offer_outcomes_total",
                "Offers that ended, by outcome: accepted, declined, expired, withdrawn.",
                &["channel", "queue", "outcome"],
            ),
            assigned: counter(
                &r,
                "switchboard_contacts_assigned_total",
                "Contacts accepted by an agent (the denominator of service level).",
                cq,
            ),
            assigned_within: counter(
                &r,
                "switchboard_contacts_assigned_within_target_total",
                "Contacts accepted by their service-level deadline (the numerator of service level).",
                cq,
            ),
            time_to_assignment: histogram(
                &r,
                "switchboard_time_to_assignment_seconds",
                "From a contact's arrival to an agent's acceptance.",
                cq,
                WAIT_BUCKETS,
            ),
            time_to_accept: histogram(
                &r,
                "switchboard_time_to_accept_seconds",
                "From an offer to its acceptance (offers made before a restart are not timed).",
                &["channel"],
                ACCEPT_BUCKETS,
            ),
            wait_told: histogram(
                &r,
                "switchboard_wait_told_seconds",
                "The expected wait first told to a customer (chat, voice and IVR answers), counted once the contact is assigned.",
                cq,
                WAIT_BUCKETS,
            ),
            wait_error: histogram(
                &r,
                "switchboard_wait_estimate_error_seconds",
                "The wait a customer saw (told to assigned) minus the expected wait they were told: _sum/_count is the bias.",
                cq,
                ESTIMATE_ERROR_BUCKETS,
            ),
            wait_error_abs: histogram(
                &r,
                "switchboard_wait_estimate_abs_error_seconds",
                "How far the wait a customer saw was from the wait they were told, either way: _sum/_count is the mean absolute error.",
                cq,
                WAIT_BUCKETS,
            ),
            waits: counter(
                &r,
                "switchboard_waits_total",
                "Times the engine kept a contact waiting, by why no agent could take it.",
                &["channel", "queue", "reason"],
            ),
            abandoned: counter(
                &r,
                "switchboard_contacts_abandoned_total",
                "Contacts whose customer left before an agent took them.",
                cq,
            ),
            time_to_abandon: histogram(
                &r,
                "switchboard_time_to_abandon_seconds",
                "How long abandoned contacts waited.",
                cq,
                WAIT_BUCKETS,
            ),
            closed: counter(
                &r,
                "switchboard_contacts_closed_total",
                "Contacts closed, by reason: closed, wrap_up_ended, agent_offline.",
                &["channel", "queue", "reason"],
            ),
            requeued: counter(
                &r,
                "switchboard_contacts_requeued_total",
                "Owned contacts sent back to waiting, by reason.",
                &["channel", "queue", "reason"],
            ),
            transferred: counter(
                &r,
                "switchboard_contacts_transferred_total",
                "Contacts transferred by their owner.",
                cq,
            ),
            presence_changes: counter(
                &r,
                "switchboard_agent_presence_changes_total",
                "Presence changes the engine made itself, by new presence and reason.",
                &["presence", "reason"],
            ),
            dead_letters: counter(
                &r,
                "switchboard_dead_letters_total",
                "Messages the router sent to the dead-letter queue, by reason: undecodable (not a valid envelope), unroutable (the router refused it). Broker-side dead letters (delivery limit) are RabbitMQ's own metrics.",
                &["reason"],
            ),
            deliveries: plain_counter(
                &r,
                "switchboard_bus_deliveries_total",
                "Messages the router received from the bus.",
            ),
            redeliveries: plain_counter(
                &r,
                "switchboard_bus_redeliveries_total",
                "Deliveries flagged as possibly delivered before (after a reconnect, restart or failed step).",
            ),
            duplicates: plain_counter(
                &r,
                "switchboard_bus_duplicates_total",
                "Deliveries skipped because the message was already processed.",
            ),
            router_errors: counter(
                &r,
                "switchboard_router_errors_total",
                "Failed router steps, by what failed: store, bus, restore. The router reloads from the store and carries on.",
                &["kind"],
            ),
            commit_seconds: histogram(
                &r,
                "switchboard_store_commit_seconds",
                "Duration of successful store commits, by what committed: batch, timers, reload.",
                &["step"],
                LATENCY_BUCKETS,
            ),
            publishes: counter(
                &r,
                "switchboard_bus_publishes_total",
                "Inbound publishes by result: confirmed, failed (the bus refused or lost the connection), timeout (no confirm in bus.publish_timeout).",
                &["result"],
            ),
            publish_seconds: histogram(
                &r,
                "switchboard_bus_publish_seconds",
                "Time from publish to the bus's confirm, by result.",
                &["result"],
                LATENCY_BUCKETS,
            ),
            email_outbound: counter(
                &r,
                "switchboard_email_outbound_total",
                "Email the daemon sent or chose not to send, by kind (acknowledgement, reply) and outcome: sent, failed, refused, unreachable, or why no acknowledgement went out (auto_submitted, list, bulk, bounce, daily_limit, ...).",
                &["kind", "outcome"],
            ),
            ingest_accepted: counter(
                &r,
                "switchboard_ingest_accepted_total",
                "Contacts accepted by POST /v1/contacts (202, confirmed by the bus).",
                &["channel"],
            ),
            ingest_rejected: counter(
                &r,
                "switchboard_ingest_rejected_total",
                "Requests to POST /v1/contacts refused, by reason: malformed_json, invalid_field, body_too_large, unreadable_body, bus_unavailable, shutting_down.",
                &["reason"],
            ),
            waiting: int_gauge(
                &r,
                "switchboard_contacts_waiting",
                "Contacts waiting for an offer now.",
                cq,
            ),
            open: int_gauge(
                &r,
                "switchboard_contacts_open",
                "Open contacts now, by state: waiting, offered, assigned, wrap_up.",
                &["channel", "queue", "state"],
            ),
            oldest_wait: gauge(
                &r,
                "switchboard_oldest_wait_seconds",
                "How long the oldest unanswered contact (waiting or offered, not yet accepted) has waited; 0 when none.",
                cq,
            ),
            past_target: int_gauge(
                &r,
                "switchboard_contacts_past_target",
                "Unanswered contacts (waiting or offered) whose service-level deadline has passed.",
                cq,
            ),
            target: gauge(
                &r,
                "switchboard_target_seconds",
                "The configured service-level target (time to assignment).",
                &["channel", "queue", "urgency"],
            ),
            agents: int_gauge(
                &r,
                "switchboard_agents",
                "Agents by presence now.",
                &["presence"],
            ),
            slots: int_gauge(
                &r,
                "switchboard_agent_slots",
                "Concurrent contacts agents may hold (their caps), by channel and presence.",
                &["channel", "presence"],
            ),
            slots_used: int_gauge(
                &r,
                "switchboard_agent_slots_used",
                "Slots in use (offered, assigned, wrap-up), by channel and presence.",
                &["channel", "presence"],
            ),
            occupancy: {
                let g = Gauge::new(
                    "switchboard_agent_occupancy_ratio",
                    "Mean load of logged-in (available or away) agents: each agent's share of capacity in use, at most 1; 0 with nobody logged in.",
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            agent_load: gauge(
                &r,
                "switchboard_agent_load_ratio",
                "Per agent (only with metrics.per_agent): share of capacity in use, summed over channels.",
                &["agent", "presence"],
            ),
            bus_up: scalar(
                &r,
                "switchboard_bus_up",
                "1 when the bus answered at scrape time, else 0.",
            ),
            store_up: scalar(
                &r,
                "switchboard_store_up",
                "1 when the store answered at scrape time, else 0.",
            ),
            leader: scalar(
                &r,
                "switchboard_router_leader",
                "1 when this process's router leads (consumes and writes), 0 on a standby.",
            ),
            ready: scalar(
                &r,
                "switchboard_ready",
                "1 when state is loaded and the process serves (as /readyz without the health checks).",
            ),
            registry: r,
        };
        let cfg = &loaded.config;
        let info = IntGaugeVec::new(
            Opts::new(
                "switchboard_build_info",
                "Always 1; the labels say which build runs with which bus and store.",
            ),
            &["version", "bus", "store"],
        )
        .expect("valid metric");
        info.with_label_values(&[
            env!("CARGO_PKG_VERSION"),
            match cfg.bus.kind {
                crate::config::BusKind::InProcess => "in_process",
                crate::config::BusKind::Amqp => "amqp",
            },
            match cfg.store.kind {
                crate::config::StoreKind::Sqlite => "sqlite",
                crate::config::StoreKind::Postgres => "postgres",
            },
        ])
        .set(1);
        m.registry.register(Box::new(info)).expect("unique metric");
        m.zero_series(&loaded.policy);
        m
    }

    /// Creates the series of every configured queue and channel at zero.
    fn zero_series(&self, policy: &Policy) {
        for q in &policy.queues {
            for c in Channel::ALL {
                let cq = [c.as_str(), q.name.as_str()];
                for u in Urgency::ALL {
                    self.ingested
                        .with_label_values(&[c.as_str(), &q.name, u.as_str()]);
                }
                for vec in [
                    &self.offers,
                    &self.assigned,
                    &self.assigned_within,
                    &self.abandoned,
                ] {
                    vec.with_label_values(&cq);
                }
                for outcome in ["accepted", "declined", "expired", "withdrawn"] {
                    self.offer_outcomes
                        .with_label_values(&[c.as_str(), &q.name, outcome]);
                }
                self.time_to_assignment.with_label_values(&cq);
                self.time_to_abandon.with_label_values(&cq);
                self.wait_told.with_label_values(&cq);
                self.wait_error.with_label_values(&cq);
                self.wait_error_abs.with_label_values(&cq);
            }
        }
        for c in Channel::ALL {
            self.time_to_accept.with_label_values(&[c.as_str()]);
        }
        for reason in ["undecodable", "unroutable"] {
            self.dead_letters.with_label_values(&[reason]);
        }
        for kind in ["store", "bus", "restore"] {
            self.router_errors.with_label_values(&[kind]);
        }
        for result in ["confirmed", "failed", "timeout"] {
            self.publishes.with_label_values(&[result]);
        }
        for reason in REJECTIONS {
            self.ingest_rejected.with_label_values(&[reason]);
        }
    }

    /// Adds what a step observed, once the store has committed it; `started` is when the
    /// commit began, `step` names what committed (batch, timers, reload).
    pub fn committed(&self, step: &str, started: Instant, pending: &mut Pending) {
        self.commit_seconds
            .with_label_values(&[step])
            .observe(started.elapsed().as_secs_f64());
        for o in pending.observations.drain(..) {
            self.record(o);
        }
    }

    fn record(&self, o: Observation) {
        match o {
            Observation::Ingested {
                channel,
                queue,
                urgency,
            } => self
                .ingested
                .with_label_values(&[channel.as_str(), &queue, urgency.as_str()])
                .inc(),
            Observation::FollowUp { channel } => {
                self.follow_ups.with_label_values(&[channel.as_str()]).inc()
            }
            Observation::Offered { channel, queue } => self
                .offers
                .with_label_values(&[channel.as_str(), &queue])
                .inc(),
            Observation::OfferEnded {
                channel,
                queue,
                outcome,
            } => self
                .offer_outcomes
                .with_label_values(&[channel.as_str(), &queue, outcome])
                .inc(),
            Observation::Assigned {
                channel,
                queue,
                waited,
                within_target,
                answered_in,
            } => {
                let cq = [channel.as_str(), queue.as_str()];
                self.assigned.with_label_values(&cq).inc();
                if within_target {
                    self.assigned_within.with_label_values(&cq).inc();
                }
                self.time_to_assignment
                    .with_label_values(&cq)
                    .observe(waited.as_secs_f64());
                self.offer_outcomes
                    .with_label_values(&[channel.as_str(), &queue, "accepted"])
                    .inc();
                if let Some(d) = answered_in {
                    self.time_to_accept
                        .with_label_values(&[channel.as_str()])
                        .observe(d.as_secs_f64());
                }
            }
            Observation::Waiting {
                channel,
                queue,
                reason,
            } => self
                .waits
                .with_label_values(&[channel.as_str(), &queue, reason])
                .inc(),
            Observation::Abandoned {
                channel,
                queue,
                waited,
            } => {
                let cq = [channel.as_str(), queue.as_str()];
                self.abandoned.with_label_values(&cq).inc();
                self.time_to_abandon
                    .with_label_values(&cq)
                    .observe(waited.as_secs_f64());
            }
            Observation::Closed {
                channel,
                queue,
                reason,
            } => self
                .closed
                .with_label_values(&[channel.as_str(), &queue, reason])
                .inc(),
            Observation::Requeued {
                channel,
                queue,
                reason,
            } => self
                .requeued
                .with_label_values(&[channel.as_str(), &queue, reason])
                .inc(),
            Observation::Transferred { channel, queue } => self
                .transferred
                .with_label_values(&[channel.as_str(), &queue])
                .inc(),
            Observation::Presence { presence, reason } => self
                .presence_changes
                .with_label_values(&[presence, reason])
                .inc(),
            Observation::Estimate {
                channel,
                queue,
                told,
                seen,
            } => {
                let cq = [channel.as_str(), queue.as_str()];
                let error = seen.as_secs_f64() - told.as_secs_f64();
                self.wait_told
                    .with_label_values(&cq)
                    .observe(told.as_secs_f64());
                self.wait_error.with_label_values(&cq).observe(error);
                self.wait_error_abs
                    .with_label_values(&cq)
                    .observe(error.abs());
            }
        }
    }

    /// Counts a batch of deliveries from the bus, and those flagged as redelivered.
    pub fn received(&self, deliveries: &[switchboard_bus::Delivery]) {
        self.deliveries.inc_by(deliveries.len() as u64);
        let again = deliveries.iter().filter(|d| d.redelivered).count();
        self.redeliveries.inc_by(again as u64);
    }

    /// Counts a delivery skipped because its message was already processed.
    pub fn duplicate(&self) {
        self.duplicates.inc();
    }

    /// Counts a message moved to the dead-letter queue; `undecodable` when it was not a
    /// valid envelope, else the router refused it.
    pub fn dead_lettered(&self, undecodable: bool) {
        let reason = if undecodable {
            "undecodable"
        } else {
            "unroutable"
        };
        self.dead_letters.with_label_values(&[reason]).inc();
    }

    /// Counts a failed router step by what failed.
    pub fn router_error(&self, e: &crate::router::RouterError) {
        let kind = match e {
            crate::router::RouterError::Store(_) => "store",
            crate::router::RouterError::Bus(_) => "bus",
            crate::router::RouterError::Restore(_) => "restore",
        };
        self.router_errors.with_label_values(&[kind]).inc();
    }

    /// Counts one publish to the inbound queue: `result` is confirmed, failed or timeout.
    pub fn published(&self, result: &'static str, took: Duration) {
        self.publishes.with_label_values(&[result]).inc();
        self.publish_seconds
            .with_label_values(&[result])
            .observe(took.as_secs_f64());
    }

    /// Counts an email sent or not sent.
    pub fn email_outbound(&self, kind: &str, outcome: &str) {
        self.email_outbound
            .with_label_values(&[kind, outcome])
            .inc();
    }

    /// Counts a contact accepted by the ingest endpoint.
    pub fn ingest_accepted(&self, channel: Channel) {
        self.ingest_accepted
            .with_label_values(&[channel.as_str()])
            .inc();
    }

    /// Counts a refused ingest request; `reason` is one of [`REJECTIONS`].
    pub fn ingest_rejected(&self, reason: &'static str) {
        debug_assert!(REJECTIONS.contains(&reason), "{reason}");
        self.ingest_rejected.with_label_values(&[reason]).inc();
    }

    /// Sets the state gauges from `snap` and the health figures, and renders the registry
    /// in Prometheus' text format. With `snap` absent (a standby, whose engine is not the
    /// truth) the queue and agent gauges are left out rather than shown stale.
    pub fn render(&self, snap: Option<&Snapshot>, health: Health) -> String {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        for g in [&self.waiting, &self.open, &self.past_target] {
            g.reset();
        }
        for g in [&self.agents, &self.slots, &self.slots_used] {
            g.reset();
        }
        self.oldest_wait.reset();
        self.target.reset();
        self.agent_load.reset();
        self.occupancy.set(0.0);
        if let Some(s) = snap {
            self.set_state(s);
        }
        self.bus_up.set(i64::from(health.bus));
        self.store_up.set(i64::from(health.store));
        self.leader.set(i64::from(health.leader));
        self.ready.set(i64::from(health.ready));
        let mut families = self.registry.gather();
        if snap.is_none() {
            // Leave the state gauges out altogether, not at zero: a standby knows nothing.
            families.retain(|f| !STATE_GAUGES.contains(&f.name()));
        }
        let mut out = String::new();
        TextEncoder::new()
            .encode_utf8(&families, &mut out)
            .expect("text encoding cannot fail");
        out
    }

    fn set_state(&self, s: &Snapshot) {
        for ((channel, queue), q) in &s.queues {
            let cq = [channel.as_str(), queue.as_str()];
            self.waiting.with_label_values(&cq).set(q.waiting);
            for (i, state) in STATES.iter().enumerate() {
                self.open
                    .with_label_values(&[channel.as_str(), queue, state])
                    .set(q.open[i]);
            }
            self.oldest_wait
                .with_label_values(&cq)
                .set(q.oldest_wait.as_secs_f64());
            self.past_target.with_label_values(&cq).set(q.past_target);
        }
        for (channel, queue, urgency, target) in &s.targets {
            self.target
                .with_label_values(&[channel.as_str(), queue, urgency.as_str()])
                .set(target.as_secs_f64());
        }
        for (i, p) in PRESENCES.iter().enumerate() {
            let p = presence_str(*p);
            self.agents.with_label_values(&[p]).set(s.agents[i]);
            for c in Channel::ALL {
                self.slots
                    .with_label_values(&[c.as_str(), p])
                    .set(s.slots[i][c.index()]);
                self.slots_used
                    .with_label_values(&[c.as_str(), p])
                    .set(s.slots_used[i][c.index()]);
            }
        }
        self.occupancy.set(s.occupancy);
        if self.per_agent {
            for (name, presence, load) in &s.per_agent {
                self.agent_load
                    .with_label_values(&[name, presence_str(*presence)])
                    .set(*load);
            }
        }
    }

    /// Whether per-agent series are exported.
    pub fn per_agent(&self) -> bool {
        self.per_agent
    }
}

/// The reasons an ingest request is refused, as labels.
pub const REJECTIONS: [&str; 8] = [
    "malformed_json",
    "invalid_field",
    "body_too_large",
    "unreadable_body",
    "bus_unavailable",
    "shutting_down",
    "bad_signature",
    "malformed",
];

const STATES: [&str; 4] = ["waiting", "offered", "assigned", "wrap_up"];

/// The gauges computed from the engine at scrape time.
const STATE_GAUGES: &[&str] = &[
    "switchboard_contacts_waiting",
    "switchboard_contacts_open",
    "switchboard_oldest_wait_seconds",
    "switchboard_contacts_past_target",
    "switchboard_target_seconds",
    "switchboard_agents",
    "switchboard_agent_slots",
    "switchboard_agent_slots_used",
    "switchboard_agent_occupancy_ratio",
    "switchboard_agent_load_ratio",
];

/// Health as seen at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Health {
    pub bus: bool,
    pub store: bool,
    pub leader: bool,
    pub ready: bool,
}

/// One queue and channel at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueState {
    pub waiting: i64,
    /// By state, in the order of [`STATES`].
    pub open: [i64; 4],
    pub oldest_wait: Duration,
    pub past_target: i64,
}

/// The engine's state at one instant, reduced to what the gauges show.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every configured queue with every channel, also when empty.
    pub queues: HashMap<(Channel, String), QueueState>,
    pub targets: Vec<(Channel, String, Urgency, Duration)>,
    /// Agents by presence, in the order of `PRESENCES`.
    pub agents: [i64; 3],
    /// Caps by presence and channel.
    pub slots: [[i64; Channel::COUNT]; 3],
    /// Load by presence and channel.
    pub slots_used: [[i64; Channel::COUNT]; 3],
    pub occupancy: f64,
    pub per_agent: Vec<(String, Presence, f64)>,
}

impl Snapshot {
    /// Reads the router's engine at `now`: one pass over the open contacts and one over the
    /// agents (the engine keeps no per-queue index; scrapes are rare).
    pub fn of(router: &Router, now: Time) -> Snapshot {
        let policy = router.engine.policy();
        let mut s = Snapshot::default();
        for q in &policy.queues {
            for c in Channel::ALL {
                s.queues.insert((c, q.name.clone()), QueueState::default());
            }
        }
        for (i, q) in policy.queues.iter().enumerate() {
            for c in Channel::ALL {
                for u in Urgency::ALL {
                    let target = policy.target(switchboard_core::QueueId(i as u16), c, u);
                    s.targets.push((c, q.name.clone(), u, target));
                }
            }
        }
        let mut by_queue: Vec<[QueueState; Channel::COUNT]> =
            vec![Default::default(); policy.queues.len()];
        for c in router.engine.contacts() {
            let Some(q) = by_queue.get_mut(c.queue().0 as usize) else {
                continue;
            };
            let q = &mut q[c.channel().index()];
            let state = c.state();
            let i = match state {
                ContactState::Waiting => 0,
                ContactState::Offered { .. } => 1,
                ContactState::Assigned { .. } => 2,
                ContactState::WrapUp { .. } => 3,
            };
            q.open[i] += 1;
            if i <= 1 {
                q.waiting += i64::from(i == 0);
                q.oldest_wait = q.oldest_wait.max(now.since(c.arrived_at()));
                if now > c.deadline() {
                    q.past_target += 1;
                }
            }
        }
        for (qi, per_channel) in by_queue.into_iter().enumerate() {
            let name = &policy.queues[qi].name;
            for (ci, state) in per_channel.into_iter().enumerate() {
                s.queues.insert((Channel::ALL[ci], name.clone()), state);
            }
        }
        let (mut load_sum, mut logged_in) = (0.0, 0u32);
        for a in router.engine.agents() {
            let p = PRESENCES
                .iter()
                .position(|p| *p == a.presence())
                .expect("every presence is listed");
            s.agents[p] += 1;
            for c in Channel::ALL {
                s.slots[p][c.index()] += i64::from(a.caps().get(c));
                s.slots_used[p][c.index()] += i64::from(a.load(c));
            }
            let load = f64::from(a.load_ppm()) / 1e6;
            if a.presence() != Presence::Offline {
                load_sum += load.min(1.0);
                logged_in += 1;
            }
            if let Some(name) = router.names.agent_name(a.id()) {
                s.per_agent.push((name.to_owned(), a.presence(), load));
            }
        }
        if logged_in > 0 {
            s.occupancy = load_sum / f64::from(logged_in);
        }
        s
    }
}

/// `GET /metrics`: the Prometheus text format.
pub async fn scrape(State(s): State<AppState>) -> Response {
    let leader = s.leading.load(Ordering::Acquire);
    let snapshot = if leader {
        let router = s.router.lock().await;
        Some(Snapshot::of(&router, now()))
    } else {
        None
    };
    // A hung dependency must not hang the scrape: it counts as down.
    let probe = Duration::from_secs(2);
    let (bus, store) = tokio::join!(
        tokio::time::timeout(probe, s.bus.health()),
        tokio::time::timeout(probe, s.store.health()),
    );
    let health = Health {
        bus: matches!(bus, Ok(Ok(()))),
        store: matches!(store, Ok(Ok(()))),
        leader,
        ready: s.ready.load(Ordering::Acquire),
    };
    let body = s.metrics.render(snapshot.as_ref(), health);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// One thing a step decided, with its labels resolved while the contact is still known.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    Ingested {
        channel: Channel,
        queue: String,
        urgency: Urgency,
    },
    FollowUp {
        channel: Channel,
    },
    Offered {
        channel: Channel,
        queue: String,
    },
    OfferEnded {
        channel: Channel,
        queue: String,
        outcome: &'static str,
    },
    Assigned {
        channel: Channel,
        queue: String,
        waited: Duration,
        within_target: bool,
        /// From the offer to its acceptance, when the offer was made by this process.
        answered_in: Option<Duration>,
    },
    Waiting {
        channel: Channel,
        queue: String,
        reason: &'static str,
    },
    Abandoned {
        channel: Channel,
        queue: String,
        waited: Duration,
    },
    Closed {
        channel: Channel,
        queue: String,
        reason: &'static str,
    },
    Requeued {
        channel: Channel,
        queue: String,
        reason: &'static str,
    },
    Transferred {
        channel: Channel,
        queue: String,
    },
    Presence {
        presence: &'static str,
        reason: &'static str,
    },
    /// A contact told an expected wait was assigned after `seen`.
    Estimate {
        channel: Channel,
        queue: String,
        told: Duration,
        seen: Duration,
    },
}

/// What the router observed since its last commit, kept beside the engine and added to the
/// registry only once the store has the step ([`Metrics::committed`]). A failed step
/// replaces the router, and this with it: nothing uncommitted is ever counted.
#[derive(Debug, Default)]
pub struct Pending {
    observations: Vec<Observation>,
    /// When each open offer was made, for the time to accept.
    offered_at: HashMap<OfferId, Time>,
}

impl Pending {
    /// Notes the wait a customer was told beside the wait they saw.
    pub fn estimate_checked(
        &mut self,
        channel: Channel,
        queue: String,
        told: Duration,
        seen: Duration,
    ) {
        self.observations.push(Observation::Estimate {
            channel,
            queue,
            told,
            seen,
        });
    }

    /// Notes a step's decisions and processed messages. Call it before the rows are built:
    /// a contact that ends in this step is still in `open`, with its labels.
    pub fn observe(
        &mut self,
        now: Time,
        decisions: &[Decision],
        messages: &[MessageRow],
        open: &impl Fn(ContactId) -> Option<(Channel, String, Urgency)>,
    ) {
        for m in messages {
            let Some(seq) = m.contact_seq else { continue };
            let Some((channel, queue, urgency)) = open(ContactId(seq as u64)) else {
                continue;
            };
            match m.outcome.as_str() {
                "contact" => self.observations.push(Observation::Ingested {
                    channel,
                    queue,
                    urgency,
                }),
                "follow_up" => self.observations.push(Observation::FollowUp { channel }),
                _ => {}
            }
        }
        for d in decisions {
            let o = match d {
                Decision::Offered { offer, contact, .. } => {
                    self.offered_at.insert(*offer, now);
                    open(*contact)
                        .map(|(channel, queue, _)| Observation::Offered { channel, queue })
                }
                Decision::OfferEnded {
                    offer,
                    contact,
                    outcome,
                    ..
                } => {
                    self.offered_at.remove(offer);
                    open(*contact).map(|(channel, queue, _)| Observation::OfferEnded {
                        channel,
                        queue,
                        outcome: match outcome {
                            OfferOutcome::Declined => "declined",
                            OfferOutcome::Expired => "expired",
                            OfferOutcome::Withdrawn => "withdrawn",
                        },
                    })
                }
                Decision::Assigned {
                    contact,
                    offer,
                    waited,
                    within_target,
                    ..
                } => {
                    let answered_in = self.offered_at.remove(offer).map(|t| now.since(t));
                    open(*contact).map(|(channel, queue, _)| Observation::Assigned {
                        channel,
                        queue,
                        waited: *waited,
                        within_target: *within_target,
                        answered_in,
                    })
                }
                Decision::Waiting { contact, reason } => {
                    open(*contact).map(|(channel, queue, _)| Observation::Waiting {
                        channel,
                        queue,
                        reason: wait_reason(&reason.kind),
                    })
                }
                Decision::Abandoned { contact, waited } => {
                    open(*contact).map(|(channel, queue, _)| Observation::Abandoned {
                        channel,
                        queue,
                        waited: *waited,
                    })
                }
                Decision::Closed {
                    contact, reason, ..
                } => open(*contact).map(|(channel, queue, _)| Observation::Closed {
                    channel,
                    queue,
                    reason: match reason {
                        CloseReason::Closed => "closed",
                        CloseReason::WrapUpEnded => "wrap_up_ended",
                        CloseReason::AgentOffline => "agent_offline",
                    },
                }),
                Decision::Requeued {
                    contact, reason, ..
                } => open(*contact).map(|(channel, queue, _)| Observation::Requeued {
                    channel,
                    queue,
                    reason: match reason {
                        RequeueReason::AgentOffline => "agent_offline",
                    },
                }),
                Decision::Transferred { contact, .. } => open(*contact)
                    .map(|(channel, queue, _)| Observation::Transferred { channel, queue }),
                Decision::PresenceChanged {
                    presence, reason, ..
                } => Some(Observation::Presence {
                    presence: presence_str(*presence),
                    reason: match reason {
                        PresenceReason::MissedOffers => "missed_offers",
                    },
                }),
                Decision::WrapUpStarted { .. } => None,
            };
            self.observations.extend(o);
        }
    }

    /// The observations not yet committed.
    pub fn observations(&self) -> &[Observation] {
        &self.observations
    }
}

/// The label of a wait's cause.
pub fn wait_reason(kind: &WaitKind) -> &'static str {
    match kind {
        WaitKind::ReservedFor { .. } => "reserved_for_agent",
        WaitKind::NoAgentWithSkills { .. } => "no_agent_with_skills",
        WaitKind::NoAgentInTeams { .. } => "no_agent_in_teams",
        WaitKind::NoAgentAvailable { .. } => "no_agent_available",
        WaitKind::AllAtCapacity { .. } => "all_at_capacity",
        WaitKind::AllDeclined { .. } => "all_declined",
    }
}

/// The labels of an open contact, for [`Pending::observe`].
pub fn labels(
    router_open: &rustc_hash::FxHashMap<ContactId, OpenContact>,
    engine: &switchboard_core::Engine,
    id: ContactId,
) -> Option<(Channel, String, Urgency)> {
    let meta = router_open.get(&id)?;
    let urgency = engine.contact(id).map_or(Urgency::Normal, |c| c.urgency());
    Some((meta.channel, meta.queue.clone(), urgency))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use switchboard_core::{
        AgentId, AgentProfile, Caps, Engine, Event, NewContact, QueueId, SkillSet,
    };

    use super::*;

    fn metrics() -> Metrics {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.toml");
        Metrics::new(&crate::config::Config::load(&file).unwrap())
    }

    /// The value of one series in the text format, by its exact name and labels.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    }

    fn offer_of(out: &[Decision], contact: ContactId) -> OfferId {
        out.iter()
            .find_map(|d| match d {
                Decision::Offered {
                    offer, contact: c, ..
                } if *c == contact => Some(*offer),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no offer for {contact}: {out:?}"))
    }

    /// An engine driven through accepts, a late assignment and an abandon (what the agent
    /// API will do): the counters say what happened, and only once committed.
    #[test]
    fn decisions_are_counted_once_committed() {
        let m = metrics();
        let mut engine = Engine::new(switchboard_core::Policy::default()).unwrap();
        let t0 = Time::from_millis(1_000_000);
        let s = |secs| t0 + Duration::from_secs(secs);
        let agent = AgentId(1);
        let labels = |_| Some((Channel::Chat, "support".to_owned(), Urgency::Normal));
        let mut pending = Pending::default();
        let mut step = |engine: &mut Engine, at: Time, events: Vec<Event>| {
            let mut out = Vec::new();
            for e in events {
                engine.apply(at, e, &mut out).unwrap();
            }
            engine.dispatch(&mut out);
            pending.observe(at, &out, &[], &labels);
            out
        };
        let arrive = |id, at| {
            Event::Arrive(NewContact {
                id: ContactId(id),
                conversation: format!("conv-{id}").into(),
                customer: format!("cust-{id}").into(),
                channel: Channel::Chat,
                urgency: Urgency::Normal,
                queue: QueueId(0),
                required: SkillSet::EMPTY,
                preferred: SkillSet::EMPTY,
                arrived_at: at,
            })
        };
        let profile = AgentProfile {
            caps: Caps::of([(Channel::Chat, 1)]),
            ..AgentProfile::default()
        };
        step(
            &mut engine,
            t0,
            vec![
                Event::UpsertAgent { agent, profile },
                Event::SetPresence {
                    agent,
                    presence: Presence::Available,
                },
            ],
        );
        // Contact 1 is offered at once and accepted 10 s later (chat target: 60 s).
        let out = step(&mut engine, t0, vec![arrive(1, t0), arrive(2, t0)]);
        let o1 = offer_of(&out, ContactId(1));
        let out = step(&mut engine, s(10), vec![Event::Accept { offer: o1, agent }]);
        assert!(matches!(out[0], Decision::Assigned { .. }), "{out:?}");
        // Contact 2 waits for the slot, is offered when contact 1 closes at 100 s, and
        // accepted at 125 s (its offer expires at 130 s): past its target.
        let out = step(
            &mut engine,
            s(100),
            vec![Event::Close {
                contact: ContactId(1),
            }],
        );
        let o2 = offer_of(&out, ContactId(2));
        step(
            &mut engine,
            s(125),
            vec![Event::Accept { offer: o2, agent }],
        );
        // Contact 3 waits and its customer leaves after 60 s.
        step(&mut engine, s(125), vec![arrive(3, s(125))]);
        step(
            &mut engine,
            s(185),
            vec![Event::Abandon {
                contact: ContactId(3),
            }],
        );

        let cq = r#"{channel="chat",queue="support"}"#;
        let before = m.render(None, Health::default());
        assert_eq!(
            value(&before, &format!("switchboard_contacts_assigned_total{cq}")),
            Some(0.0),
            "nothing counted before the commit"
        );
        m.committed("batch", Instant::now(), &mut pending);
        assert!(pending.observations().is_empty());
        let text = m.render(None, Health::default());
        let v = |name: &str, labels: &str| value(&text, &format!("{name}{labels}"));
        assert_eq!(v("switchboard_contacts_assigned_total", cq), Some(2.0));
        assert_eq!(
            v("switchboard_contacts_assigned_within_target_total", cq),
            Some(1.0)
        );
        assert_eq!(v("switchboard_contacts_abandoned_total", cq), Some(1.0));
        assert_eq!(v("switchboard_time_to_abandon_seconds_sum", cq), Some(60.0));
        assert_eq!(v("switchboard_offers_total", cq), Some(2.0));
        assert_eq!(
            v(
                "switchboard_offer_outcomes_total",
                r#"{channel="chat",outcome="accepted",queue="support"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            v("switchboard_time_to_assignment_seconds_sum", cq),
            Some(135.0)
        );
        assert_eq!(
            v(
                "switchboard_time_to_assignment_seconds_bucket",
                r#"{channel="chat",queue="support",le="60"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            v(
                "switchboard_time_to_accept_seconds_sum",
                r#"{channel="chat"}"#
            ),
            Some(35.0)
        );
        assert_eq!(
            v(
                "switchboard_contacts_closed_total",
                r#"{channel="chat",queue="support",reason="closed"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            v(
                "switchboard_waits_total",
                r#"{channel="chat",queue="support",reason="all_at_capacity"}"#
            ),
            Some(2.0)
        );
        // A second commit of the same (now empty) pending adds nothing.
        m.committed("batch", Instant::now(), &mut pending);
        let again = m.render(None, Health::default());
        assert_eq!(
            value(&again, &format!("switchboard_contacts_assigned_total{cq}")),
            Some(2.0)
        );
    }

    /// Agent names appear only when an operator turns per-agent metrics on.
    #[test]
    fn per_agent_series_only_when_asked() {
        let snap = Snapshot {
            per_agent: vec![("ana".into(), Presence::Available, 0.5)],
            ..Snapshot::default()
        };
        let off = metrics();
        assert!(!off.per_agent());
        let text = off.render(Some(&snap), Health::default());
        assert!(!text.contains("agent=\""), "{text}");
        let mut on = metrics();
        on.per_agent = true;
        let text = on.render(Some(&snap), Health::default());
        assert_eq!(
            value(
                &text,
                r#"switchboard_agent_load_ratio{agent="ana",presence="available"}"#
            ),
            Some(0.5)
        );
    }

    /// The scrape-time gauges of a standby are left out, not shown stale or at zero.
    #[test]
    fn a_standby_exports_no_queue_gauges() {
        let m = metrics();
        let text = m.render(
            None,
            Health {
                bus: true,
                store: true,
                leader: false,
                ready: true,
            },
        );
        assert!(!text.contains("switchboard_contacts_waiting"), "{text}");
        assert!(!text.contains("switchboard_agents{"), "{text}");
        assert_eq!(value(&text, "switchboard_router_leader"), Some(0.0));
        assert_eq!(value(&text, "switchboard_bus_up"), Some(1.0));
        let leader = m.render(Some(&Snapshot::default()), Health::default());
        assert!(
            leader.contains("switchboard_agent_occupancy_ratio 0"),
            "{leader}"
        );
    }
}
