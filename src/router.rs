//! The router: consumes inbound messages in batches, threads each into its conversation,
//! classifies and routes new contacts with the engine, persists the whole step in one
//! transaction, and only then acknowledges the bus. Timers (offer expiry, relaxation,
//! wrap-up) drive the engine between batches.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;
use serde_json::json;
use switchboard_bus::{Bus, Delivery, Envelope, EnvelopeKind, Subscription};
use switchboard_core::{
    AgentId, AgentProfile, AgentSnapshot, AssignExplanation, Caps, Channel, CloseReason, ContactId,
    ContactSnapshot, ContactState, Decision, Engine, Event, NewContact, Policy, Snapshot, Time,
};
use switchboard_store::{
    AgentRow, AuditRow, Batch, ContactRow, MessageRow, OwnerRow, State, Store, StoreError,
};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::classify::{Classifier, Subject};
use crate::config::Loaded;
use crate::names::Registry;

/// The current wall-clock time for the engine.
pub fn now() -> Time {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Time::from_millis(ms)
}

/// What the router keeps beside the engine for each open contact: what the rows and the
/// API need that the engine does not hold.
#[derive(Debug, Clone)]
pub struct OpenContact {
    pub public_id: String,
    pub conversation: String,
    pub customer: String,
    pub channel: Channel,
    pub queue: String,
    pub summary: String,
    pub attributes: String,
    pub arrived_at: Time,
    /// Why the contact's latest offer went to its agent.
    pub last_offer: Option<AssignExplanation>,
    /// The first expected wait the customer was told, checked against the wait seen.
    pub told: Option<Told>,
}

/// An expected wait told to a customer, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Told {
    pub at: Time,
    pub estimate: Duration,
}

/// Where a message's contact stands, as a channel tells its customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The contact's public id.
    pub contact: String,
    /// The message joined an open contact instead of starting one.
    pub follow_up: bool,
    /// `waiting`, `offered`, `assigned` or `wrap_up`.
    pub state: &'static str,
    /// Contacts that would be served first (waiting contacts only).
    pub position: Option<usize>,
    /// The engine's expected wait (zero once an agent is being offered the contact).
    pub expected_wait: Option<Duration>,
    /// The agent offered or holding the contact.
    pub agent: Option<AgentId>,
    /// When the contact is due by its service-level target.
    pub deadline: Time,
}

/// Which contact each recently processed message went to, for answering the channel that
/// sent it; the oldest entries go first once it holds [`Recent::HELD`].
#[derive(Debug, Default)]
struct Recent {
    order: std::collections::VecDeque<String>,
    contact: HashMap<String, ContactId>,
}

impl Recent {
    const HELD: usize = 16_384;

    fn insert(&mut self, message: &str, contact: ContactId) {
        if self.contact.insert(message.to_owned(), contact).is_none() {
            self.order.push_back(message.to_owned());
        }
        while self.order.len() > Self::HELD {
            if let Some(old) = self.order.pop_front() {
                self.contact.remove(&old);
            }
        }
    }
}

/// The engine and everything around it; shared with the HTTP API behind a mutex.
#[derive(Debug)]
pub struct Router {
    pub engine: Engine,
    pub names: Registry,
    classifier: Classifier,
    next_seq: i64,
    pub open: FxHashMap<ContactId, OpenContact>,
    pub by_public: HashMap<String, ContactId>,
    /// What the steps since the last commit observed, for the metrics.
    pub pending: crate::metrics::Pending,
    /// Agent API settings (token digests) by agent name.
    pub settings: HashMap<String, crate::agents::AgentSettings>,
    follow_ups: Vec<FollowUp>,
    /// Public ids of the contacts that ended in the last step, for delivering their end.
    just_ended: HashMap<ContactId, String>,
    /// Teams whose offers are accepted at once.
    auto_accept_teams: Vec<String>,
    /// Team webhooks, for agents without their own.
    team_webhooks: std::collections::BTreeMap<String, String>,
    /// Recently processed messages and their contacts.
    recent: Recent,
}

/// A message that joined an open conversation, to deliver to its owner.
#[derive(Debug, Clone)]
pub struct FollowUp {
    pub contact: ContactId,
    pub owner: Option<AgentId>,
    pub message: String,
    pub summary: String,
}

/// A message the router cannot process: it goes to the dead-letter queue with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Poison(pub String);

/// What one step collects before it becomes a [`Batch`].
#[derive(Debug, Default)]
struct Step {
    messages: Vec<MessageRow>,
    audit: Vec<AuditRow>,
    touched_contacts: Vec<ContactId>,
    touched_agents: Vec<AgentId>,
}

/// A failure of the router loop; the loop recovers from it by reloading from the store.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] switchboard_bus::BusError),
    #[error("router: restore: {0}")]
    Restore(String),
}

impl Router {
    /// Rebuilds the router from the store's state and applies the config's agents. The
    /// returned batch (new names, agents, and any decisions) must be committed.
    pub fn restore(loaded: &Loaded, state: State) -> Result<(Router, Batch), RouterError> {
        let config = &loaded.config;
        let mut names = Registry::from_rows(&state.names);
        let policy = config
            .build_policy(&mut names.teams)
            .map_err(|(k, r)| RouterError::Restore(format!("{k}: {r}")))?;
        let bad = |what: &str, e: serde_json::Error| {
            RouterError::Restore(format!("stored {what} is not readable: {e}"))
        };
        let mut agents = Vec::with_capacity(state.agents.len());
        for row in &state.agents {
            agents.push(
                serde_json::from_str::<AgentSnapshot>(&row.snapshot)
                    .map_err(|e| bad("agent", e))?,
            );
        }
        let mut contacts = Vec::with_capacity(state.contacts.len());
        let mut open = FxHashMap::default();
        let mut by_public = HashMap::new();
        for row in &state.contacts {
            let Some(snapshot) = &row.snapshot else {
                continue;
            };
            let mut c: ContactSnapshot =
                serde_json::from_str(snapshot).map_err(|e| bad("contact", e))?;
            // Queues are matched by name: the config may have reordered them.
            c.contact.queue = policy.queue_id(&row.queue).unwrap_or_else(|| {
                warn!(contact = %row.id, queue = %row.queue, "queue no longer configured; using the default queue");
                switchboard_core::QueueId(0)
            });
            let id = c.contact.id;
            open.insert(
                id,
                OpenContact {
                    public_id: row.id.clone(),
                    conversation: row.conversation.clone(),
                    customer: row.customer.clone(),
                    channel: c.contact.channel,
                    queue: policy
                        .queue(c.contact.queue)
                        .map_or_else(|| row.queue.clone(), |q| q.name.clone()),
                    summary: row.summary.clone(),
                    attributes: row.attributes.clone(),
                    arrived_at: c.contact.arrived_at,
                    last_offer: None,
                    told: None,
                },
            );
            by_public.insert(row.id.clone(), id);
            contacts.push(c);
        }
        // Recent handling times, by queue name (the config may have reordered queues).
        let handling: Vec<(String, Channel, u64)> = state
            .meta("handling")
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
        let handling = handling
            .into_iter()
            .filter_map(|(q, c, ms)| Some((policy.queue_id(&q)?, c, ms)))
            .collect();
        let snapshot = Snapshot {
            handling,
            now: now(),
            next_offer: state
                .meta("next_offer")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            agents,
            contacts,
            owners: state
                .owners
                .iter()
                .map(|o| {
                    (
                        Arc::<str>::from(o.customer.as_str()),
                        AgentId(o.agent as u32),
                        Time::from_millis(o.closed_at as u64),
                    )
                })
                .collect(),
        };
        let engine = Engine::restore(policy.clone(), snapshot)
            .map_err(|e| RouterError::Restore(e.to_string()))?;
        let mut router = Router {
            engine,
            names,
            classifier: Classifier::new(config, &policy),
            next_seq: state.max_seq + 1,
            open,
            by_public,
            pending: Default::default(),
            settings: state
                .agent_settings
                .iter()
                .filter_map(|(name, json)| Some((name.clone(), serde_json::from_str(json).ok()?)))
                .collect(),
            follow_ups: Vec::new(),
            just_ended: HashMap::new(),
            auto_accept_teams: config.delivery.auto_accept_teams.clone(),
            team_webhooks: config.delivery.team_webhooks.clone(),
            recent: Recent::default(),
        };
        let t = now();
        let mut out = Vec::new();
        let mut step = Step::default();
        for a in &config.agents {
            router
                .declare_agent(t, a, &mut step, &mut out)
                .map_err(RouterError::Restore)?;
        }
        router.engine.dispatch(&mut out);
        router.auto_accept(t, &mut out);
        let batch = router.finish(t, &out, step);
        info!(
            agents = router.engine.agents().count(),
            open = router.engine.open_len(),
            waiting = router.engine.waiting_len(),
            "state restored"
        );
        Ok((router, batch))
    }

    /// Creates or updates an agent declared in the config. A new agent gets the configured
    /// presence; an existing one keeps its presence and gets the new profile.
    fn declare_agent(
        &mut self,
        now: Time,
        a: &crate::config::AgentConfig,
        step: &mut Step,
        out: &mut Vec<Decision>,
    ) -> Result<(), String> {
        let id = self.names.agent(&a.name).map_err(|e| e.to_string())?;
        let mut skills = Vec::new();
        for (name, p) in &a.skills {
            skills.push((self.names.skill(name).map_err(|e| e.to_string())?, *p));
        }
        let mut caps = Caps::default();
        for (channel, n) in &a.caps {
            let c = Channel::parse(channel).ok_or_else(|| format!("unknown channel {channel}"))?;
            caps.per_channel[c.index()] = *n;
        }
        caps.total = a.total_cap;
        let profile = AgentProfile {
            teams: self.names.team_set(&a.teams).map_err(|e| e.to_string())?,
            skills,
            caps,
        };
        // What the config sets wins on every start, as the profile does.
        let settings = self.settings.entry(a.name.clone()).or_default();
        if let Some(token) = &a.token {
            settings.token_sha256 = Some(crate::agents::token_digest(token));
        }
        if let Some(url) = &a.webhook {
            settings.webhook = Some(url.clone());
        }
        if let Some(dial) = &a.dial {
            settings.dial = Some(dial.clone());
        }
        settings.auto_accept |= a.auto_accept;
        let new = self.engine.agent(id).is_none();
        self.engine
            .apply(now, Event::UpsertAgent { agent: id, profile }, out)
            .map_err(|e| e.to_string())?;
        if new {
            self.engine
                .apply(
                    now,
                    Event::SetPresence {
                        agent: id,
                        presence: a.presence,
                    },
                    out,
                )
                .map_err(|e| e.to_string())?;
        }
        step.touched_agents.push(id);
        Ok(())
    }

    /// Threads, classifies and applies one inbound message (without dispatching).
    fn ingest(
        &mut self,
        now: Time,
        env: &Envelope,
        step: &mut Step,
        out: &mut Vec<Decision>,
    ) -> Result<(), Poison> {
        let m = &env.message;
        if m.conversation.trim().is_empty() {
            return Err(Poison("conversation is empty".into()));
        }
        if m.customer.trim().is_empty() {
            return Err(Poison("customer is empty".into()));
        }
        let key = format!("{}:{}", m.channel, m.conversation);
        let received_at = env.received_at.min(now);
        if env.kind == EnvelopeKind::End {
            self.end_conversation(now, env, &key, step, out);
            return Ok(());
        }
        if let Some(c) = self.engine.conversation(&key) {
            // A follow-up goes to the conversation's owner; it is not routed again.
            let seq = c.id().0 as i64;
            let owner = c.state().agent();
            self.recent.insert(&env.id, c.id());
            step.messages
                .push(message_row(env, Some(seq), "follow_up", None, now));
            self.follow_ups.push(FollowUp {
                contact: c.id(),
                owner,
                message: env.id.clone(),
                summary: m.summary.clone(),
            });
            step.audit.push(AuditRow {
                seq: 0,
                at: now.as_millis() as i64,
                contact_seq: Some(seq),
                agent: owner.map(|a| i64::from(a.0)),
                kind: "follow_up".into(),
                detail: json!({ "message": env.id, "source": m.source, "summary": m.summary })
                    .to_string(),
            });
            return Ok(());
        }
        let class = self.classifier.classify(&Subject::of(m));
        let required = self
            .names
            .skill_set(&class.skills)
            .map_err(|e| Poison(e.to_string()))?;
        let preferred = self
            .names
            .skill_set(&class.preferred)
            .map_err(|e| Poison(e.to_string()))?;
        let seq = self.next_seq;
        let id = ContactId(seq as u64);
        self.engine
            .apply(
                now,
                Event::Arrive(NewContact {
                    id,
                    conversation: Arc::from(key.as_str()),
                    customer: Arc::from(m.customer.as_str()),
                    channel: m.channel,
                    urgency: class.urgency,
                    queue: class.queue,
                    required,
                    preferred,
                    arrived_at: received_at,
                }),
                out,
            )
            .map_err(|e| Poison(e.to_string()))?;
        self.next_seq += 1;
        let queue = self
            .engine
            .policy()
            .queue(class.queue)
            .map_or_else(String::new, |q| q.name.clone());
        self.open.insert(
            id,
            OpenContact {
                public_id: env.id.clone(),
                conversation: m.conversation.clone(),
                customer: m.customer.clone(),
                channel: m.channel,
                queue: queue.clone(),
                summary: m.summary.clone(),
                attributes: serde_json::to_string(&m.attributes).unwrap_or_else(|_| "{}".into()),
                arrived_at: received_at,
                last_offer: None,
                told: None,
            },
        );
        self.by_public.insert(env.id.clone(), id);
        self.recent.insert(&env.id, id);
        step.touched_contacts.push(id);
        step.messages
            .push(message_row(env, Some(seq), "contact", None, now));
        step.audit.push(AuditRow {
            seq: 0,
            at: now.as_millis() as i64,
            contact_seq: Some(seq),
            agent: None,
            kind: "arrived".into(),
            detail: json!({
                "message": env.id,
                "source": m.source,
                "channel": m.channel,
                "queue": queue,
                "urgency": class.urgency,
                "skills": class.skills,
                "preferred_skills": class.preferred,
                "rules": class.matched,
            })
            .to_string(),
        });
        Ok(())
    }

    /// The customer ended the conversation: a contact still waiting or offered is
    /// abandoned (never offered again), one an agent holds goes to wrap-up (its slot is
    /// freed when wrap-up ends), and an end without an open conversation opens nothing.
    fn end_conversation(
        &mut self,
        now: Time,
        env: &Envelope,
        key: &str,
        step: &mut Step,
        out: &mut Vec<Decision>,
    ) {
        let Some(c) = self.engine.conversation(key) else {
            step.messages
                .push(message_row(env, None, "ended", None, now));
            return;
        };
        let (id, state) = (c.id(), c.state());
        let event = match state {
            ContactState::Waiting | ContactState::Offered { .. } => {
                Some(Event::Abandon { contact: id })
            }
            ContactState::Assigned { .. } => Some(Event::WrapUp { contact: id }),
            ContactState::WrapUp { .. } => None,
        };
        if let Some(event) = event {
            // The state was just read: the event fits it and cannot be refused.
            let _ = self.engine.apply(now, event, out);
        }
        self.recent.insert(&env.id, id);
        step.touched_contacts.push(id);
        step.messages
            .push(message_row(env, Some(id.0 as i64), "ended", None, now));
        step.audit.push(AuditRow {
            seq: 0,
            at: now.as_millis() as i64,
            contact_seq: Some(id.0 as i64),
            agent: state.agent().map(|a| i64::from(a.0)),
            kind: "customer_ended".into(),
            detail:
                json!({ "message": env.id, "source": env.message.source, "state": state.as_str() })
                    .to_string(),
        });
    }

    /// Turns the decisions of a step into the rows that persist it.
    fn finish(&mut self, now: Time, decisions: &[Decision], mut step: Step) -> Batch {
        let at = now.as_millis() as i64;
        let (open, engine) = (&self.open, &self.engine);
        self.pending.observe(now, decisions, &step.messages, &|id| {
            crate::metrics::labels(open, engine, id)
        });
        self.just_ended.clear();
        let mut ended: HashMap<ContactId, (&'static str, String, Option<AgentId>)> = HashMap::new();
        let mut owners = Vec::new();
        for d in decisions {
            let (contact, agent) = decision_subjects(d);
            if let Some(c) = contact {
                step.touched_contacts.push(c);
            }
            if let Some(a) = agent {
                step.touched_agents.push(a);
            }
            match d {
                Decision::Offered {
                    contact,
                    explanation,
                    ..
                } => {
                    if let Some(o) = self.open.get_mut(contact) {
                        o.last_offer = Some((**explanation).clone());
                    }
                }
                Decision::Closed {
                    contact,
                    agent,
                    reason,
                } => {
                    ended.insert(*contact, ("closed", close_reason(*reason).into(), *agent));
                    if let (Some(a), Some(o)) = (agent, self.open.get(contact))
                        && let Some((owner, closed_at)) = self.engine.previous_owner(&o.customer)
                        && owner == *a
                    {
                        owners.push(OwnerRow {
                            customer: o.customer.clone(),
                            agent: i64::from(owner.0),
                            closed_at: closed_at.as_millis() as i64,
                        });
                    }
                }
                Decision::Abandoned { contact, .. } => {
                    ended.insert(*contact, ("abandoned", "customer_left".into(), None));
                }
                Decision::Assigned { contact, .. } => {
                    // How close the wait the customer was told came to the wait they saw.
                    if let Some(o) = self.open.get_mut(contact)
                        && let Some(told) = o.told.take()
                    {
                        self.pending.estimate_checked(
                            o.channel,
                            o.queue.clone(),
                            told.estimate,
                            now.since(told.at),
                        );
                    }
                }
                _ => {}
            }
            step.audit.push(AuditRow {
                seq: 0,
                at,
                contact_seq: contact.map(|c| c.0 as i64),
                agent: agent.map(|a| i64::from(a.0)),
                kind: decision_kind(d).into(),
                detail: serde_json::to_string(d).unwrap_or_else(|_| "{}".into()),
            });
        }
        let mut contacts = Vec::new();
        let mut seen = HashSet::new();
        for id in step.touched_contacts {
            if !seen.insert(id) {
                continue;
            }
            let Some(meta) = self.open.get(&id) else {
                continue;
            };
            let mut row = ContactRow {
                seq: id.0 as i64,
                id: meta.public_id.clone(),
                conversation: meta.conversation.clone(),
                customer: meta.customer.clone(),
                channel: meta.channel.as_str().into(),
                queue: meta.queue.clone(),
                summary: meta.summary.clone(),
                attributes: meta.attributes.clone(),
                state: String::new(),
                agent: None,
                arrived_at: meta.arrived_at.as_millis() as i64,
                snapshot: None,
                ended_at: None,
                end_reason: None,
                updated_at: at,
            };
            if let Some(s) = self.engine.snapshot_contact(id) {
                row.state = s.state.as_str().into();
                row.agent = s.state.agent().map(|a| i64::from(a.0));
                row.snapshot = Some(serde_json::to_string(&s).expect("snapshots serialise"));
            } else if let Some((state, reason, agent)) = ended.remove(&id) {
                row.state = state.into();
                row.agent = agent.map(|a| i64::from(a.0));
                row.ended_at = Some(at);
                row.end_reason = Some(reason);
                if let Some(meta) = self.open.remove(&id) {
                    self.by_public.remove(&meta.public_id);
                    self.just_ended.insert(id, meta.public_id);
                }
            }
            contacts.push(row);
        }
        let mut agents = Vec::new();
        let mut seen = HashSet::new();
        for id in step.touched_agents {
            if !seen.insert(id) {
                continue;
            }
            if let Some(s) = self.engine.snapshot_agent(id) {
                agents.push(AgentRow {
                    id: i64::from(id.0),
                    name: self.names.agent_name(id).unwrap_or_default().to_owned(),
                    snapshot: serde_json::to_string(&s).expect("snapshots serialise"),
                    updated_at: at,
                });
            }
        }
        Batch {
            names: self.names.take_pending(),
            messages: step.messages,
            contacts,
            agents,
            owners,
            audit: step.audit,
            meta: vec![
                ("next_offer".into(), self.engine.next_offer_id().to_string()),
                ("handling".into(), self.handling_json()),
            ],
            agent_settings: Vec::new(),
        }
    }

    /// Recent handling times by queue name, as stored in the meta table.
    fn handling_json(&self) -> String {
        let policy = self.engine.policy();
        let named: Vec<(String, Channel, u64)> = self
            .engine
            .handling()
            .into_iter()
            .filter_map(|(q, c, ms)| Some((policy.queue(q)?.name.clone(), c, ms)))
            .collect();
        serde_json::to_string(&named).unwrap_or_else(|_| "[]".into())
    }

    /// Fires due timers and dispatches; the batch persists what they decided.
    pub fn tick(&mut self, now: Time) -> (Batch, Vec<Decision>) {
        let mut out = Vec::new();
        self.engine.tick(now, &mut out);
        if out.is_empty() {
            // Nothing happened: nothing to write (an idle router does not commit).
            return (Batch::default(), out);
        }
        self.auto_accept(now, &mut out);
        let batch = self.finish(now, &out, Step::default());
        (batch, out)
    }

    /// Applies commands from the agent API (fired timers first) and dispatches. Returns
    /// what to persist and the decisions to deliver, and the refusal, if a command was
    /// refused (commands after it are not applied; what timers decided still counts).
    pub fn command(
        &mut self,
        now: Time,
        events: Vec<Event>,
    ) -> (Batch, Vec<Decision>, Option<switchboard_core::EngineError>) {
        let mut out = Vec::new();
        self.engine.tick(now, &mut out);
        let mut step = Step::default();
        let mut refused = None;
        for event in events {
            let agent = match &event {
                Event::UpsertAgent { agent, .. } | Event::SetPresence { agent, .. } => Some(*agent),
                _ => None,
            };
            if let Err(e) = self.engine.apply(now, event, &mut out) {
                refused = Some(e);
                break;
            }
            step.touched_agents.extend(agent);
        }
        self.engine.dispatch(&mut out);
        self.auto_accept(now, &mut out);
        let batch = self.finish(now, &out, step);
        (batch, out, refused)
    }

    /// Accepts at once the offers made to agents whose tools cannot accept (auto-accept
    /// per agent, or per team in `delivery.auto_accept_teams`).
    fn auto_accept(&mut self, now: Time, out: &mut Vec<Decision>) {
        let teams = self
            .names
            .team_set(&self.auto_accept_teams)
            .unwrap_or_default();
        let mut accepts = Vec::new();
        for d in out.iter() {
            if let Decision::Offered { offer, agent, .. } = d {
                let by_setting = self
                    .names
                    .agent_name(*agent)
                    .and_then(|n| self.settings.get(n))
                    .is_some_and(|s| s.auto_accept);
                let by_team = self
                    .engine
                    .agent(*agent)
                    .is_some_and(|a| a.teams().intersects(teams));
                if by_setting || by_team {
                    accepts.push(Event::Accept {
                        offer: *offer,
                        agent: *agent,
                    });
                }
            }
        }
        for accept in accepts {
            // An offer made in this step is pending: accepting it cannot be refused.
            let _ = self.engine.apply(now, accept, out);
        }
    }

    /// Where an agent's events are POSTed: its own webhook, else its first team's.
    pub fn webhook_of(&self, agent: AgentId) -> Option<String> {
        let name = self.names.agent_name(agent)?;
        if let Some(url) = self.settings.get(name).and_then(|s| s.webhook.clone()) {
            return Some(url);
        }
        let teams = self.names.team_names(self.engine.agent(agent)?.teams());
        teams
            .iter()
            .find_map(|t| self.team_webhooks.get(t).cloned())
    }

    /// A contact's public id: open, or ended in the last step.
    pub fn public_id(&self, contact: ContactId) -> Option<&str> {
        self.open
            .get(&contact)
            .map(|o| o.public_id.as_str())
            .or_else(|| self.just_ended.get(&contact).map(String::as_str))
    }

    /// Where the contact of a processed message stands; `None` while the message has not
    /// been processed here, or once its contact has ended. The first expected wait given
    /// out is remembered, to measure against the wait the customer sees.
    pub fn standing(&mut self, now: Time, message: &str) -> Option<Standing> {
        let id = *self.recent.contact.get(message)?;
        let c = self.engine.contact(id)?;
        let meta = self.open.get_mut(&id)?;
        let state = c.state();
        let (position, expected_wait) = match state {
            ContactState::Waiting => match self.engine.expected_wait(id) {
                Some(w) => (Some(w.position), w.estimate),
                None => (self.engine.position(id), None),
            },
            ContactState::Offered { .. } => (Some(0), Some(Duration::ZERO)),
            ContactState::Assigned { .. } | ContactState::WrapUp { .. } => (None, None),
        };
        if let Some(estimate) = expected_wait
            && meta.told.is_none()
        {
            meta.told = Some(Told { at: now, estimate });
        }
        Some(Standing {
            contact: meta.public_id.clone(),
            follow_up: meta.public_id != message,
            state: state.as_str(),
            position,
            expected_wait,
            agent: state.agent(),
            deadline: c.deadline(),
        })
    }

    /// The follow-up messages of the last step, for delivery to their owners.
    pub fn take_follow_ups(&mut self) -> Vec<FollowUp> {
        std::mem::take(&mut self.follow_ups)
    }

    /// The engine's policy.
    pub fn policy(&self) -> &Policy {
        self.engine.policy()
    }
}

/// The deduplication record of a processed message.
fn message_row(
    env: &Envelope,
    contact_seq: Option<i64>,
    outcome: &str,
    reason: Option<String>,
    now: Time,
) -> MessageRow {
    MessageRow {
        id: env.id.clone(),
        contact_seq,
        outcome: outcome.into(),
        reason,
        received_at: env.received_at.min(now).as_millis() as i64,
        processed_at: now.as_millis() as i64,
    }
}

/// The contact and agent a decision is about.
fn decision_subjects(d: &Decision) -> (Option<ContactId>, Option<AgentId>) {
    match d {
        Decision::Offered { contact, agent, .. }
        | Decision::OfferEnded { contact, agent, .. }
        | Decision::Assigned { contact, agent, .. }
        | Decision::Requeued { contact, agent, .. }
        | Decision::WrapUpStarted { contact, agent, .. } => (Some(*contact), Some(*agent)),
        Decision::Transferred { contact, from, .. } => (Some(*contact), Some(*from)),
        Decision::Closed { contact, agent, .. } => (Some(*contact), *agent),
        Decision::Waiting { contact, .. } | Decision::Abandoned { contact, .. } => {
            (Some(*contact), None)
        }
        Decision::PresenceChanged { agent, .. } => (None, Some(*agent)),
    }
}

/// The audit kind of a decision: its serialised tag.
fn decision_kind(d: &Decision) -> &'static str {
    match d {
        Decision::Offered { .. } => "offered",
        Decision::OfferEnded { .. } => "offer_ended",
        Decision::Assigned { .. } => "assigned",
        Decision::Waiting { .. } => "waiting",
        Decision::PresenceChanged { .. } => "presence_changed",
        Decision::Requeued { .. } => "requeued",
        Decision::Transferred { .. } => "transferred",
        Decision::WrapUpStarted { .. } => "wrap_up_started",
        Decision::Closed { .. } => "closed",
        Decision::Abandoned { .. } => "abandoned",
    }
}

fn close_reason(r: CloseReason) -> &'static str {
    match r {
        CloseReason::Closed => "closed",
        CloseReason::WrapUpEnded => "wrap_up_ended",
        CloseReason::AgentOffline => "agent_offline",
    }
}

/// Everything the router loop needs.
pub struct RouterTask {
    pub shared: Arc<Mutex<Router>>,
    pub loaded: Arc<Loaded>,
    pub bus: Arc<dyn Bus>,
    pub store: Arc<dyn Store>,
    pub shutdown: CancellationToken,
    /// Whether this process leads (consumes and writes) or stands by.
    pub leading: Arc<std::sync::atomic::AtomicBool>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where agents' live streams get their events.
    pub hub: Arc<crate::hub::Hub>,
}

impl RouterTask {
    /// Runs until shutdown: take the lead (a standby waits here), reload from the store,
    /// then consume, route, persist, ack, and fire timers in between. A failed step is not
    /// acked: the loop takes the lead again, reloads, subscribes again, and the bus
    /// redelivers what was not persisted.
    pub async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        while !self.shutdown.is_cancelled() {
            let epoch = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                epoch = self.store.lead() => epoch,
            };
            let result = match epoch {
                Ok(epoch) => {
                    info!(epoch, "leading: loading state from the store");
                    match self.reload().await {
                        Ok(()) => {
                            // Leading only once the state is the store's, not before.
                            self.leading
                                .store(true, std::sync::atomic::Ordering::Release);
                            self.consume().await
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e.into()),
            };
            self.leading
                .store(false, std::sync::atomic::Ordering::Release);
            match result {
                Ok(()) => break,
                Err(e) => {
                    self.metrics.router_error(&e);
                    error!(error = %e, retry_in = ?backoff, "router step failed; reloading from the store");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        info!("router stopped");
    }

    /// Replaces the in-memory state with what the store holds, and persists what the
    /// config's agents change.
    async fn reload(&self) -> Result<(), RouterError> {
        // Under the lock: agent commands and this commit must not interleave.
        let mut shared = self.shared.lock().await;
        let state = self.store.load().await?;
        let (mut router, batch) = Router::restore(&self.loaded, state)?;
        let started = std::time::Instant::now();
        self.store.commit(&batch).await?;
        self.metrics
            .committed("reload", started, &mut router.pending);
        *shared = router;
        Ok(())
    }

    async fn consume(&self) -> Result<(), RouterError> {
        let cfg = &self.loaded.config;
        let mut sub = self.bus.subscribe(cfg.bus.prefetch).await?;
        loop {
            // The batch future lives across timer ticks: cancelling it in the middle of a
            // reconnect would start the reconnect over at every tick.
            let mut next = sub.next_batch(cfg.router.batch_size, cfg.router.batch_linger);
            let batch = loop {
                let sleep_for = {
                    let router = self.shared.lock().await;
                    router
                        .engine
                        .next_timer()
                        .map_or(Duration::from_secs(1), |t| {
                            t.since(now()).min(Duration::from_secs(1))
                        })
                };
                tokio::select! {
                    _ = self.shutdown.cancelled() => return Ok(()),
                    batch = &mut next => break batch?,
                    _ = tokio::time::sleep(sleep_for) => {
                        let mut router = self.shared.lock().await;
                        let (batch, decisions) = router.tick(now());
                        if !batch.is_empty() {
                            let started = std::time::Instant::now();
                            self.store.commit(&batch).await?;
                            self.metrics.committed("timers", started, &mut router.pending);
                            self.hub.publish(&router, &decisions, &[]);
                        }
                    }
                }
            };
            drop(next);
            if batch.is_empty() {
                continue;
            }
            self.step(sub.as_mut(), batch).await?;
        }
    }

    async fn step(
        &self,
        sub: &mut dyn Subscription,
        deliveries: Vec<Delivery>,
    ) -> Result<(), RouterError> {
        self.metrics.received(&deliveries);
        let ids: Vec<String> = deliveries
            .iter()
            .filter_map(|d| d.envelope.as_ref().ok().map(|e| e.id.clone()))
            .collect();
        let seen: HashSet<String> = self.store.seen(&ids).await?.into_iter().collect();
        let mut router = self.shared.lock().await;
        let now = now();
        let mut out = Vec::new();
        let mut step = Step::default();
        let mut in_batch = HashSet::new();
        let mut poison = Vec::new();
        for d in &deliveries {
            match &d.envelope {
                Err(e) => poison.push((d, e.to_string(), None)),
                Ok(env) if seen.contains(&env.id) || !in_batch.insert(env.id.as_str()) => {
                    debug!(message = %env.id, "duplicate delivery skipped");
                    self.metrics.duplicate();
                }
                Ok(env) => {
                    if let Err(Poison(reason)) = router.ingest(now, env, &mut step, &mut out) {
                        step.messages.push(message_row(
                            env,
                            None,
                            "dead_lettered",
                            Some(reason.clone()),
                            now,
                        ));
                        poison.push((d, reason, Some(env.id.clone())));
                    }
                }
            }
        }
        router.engine.dispatch(&mut out);
        router.auto_accept(now, &mut out);
        let batch = router.finish(now, &out, step);
        // The dead-letter queue keeps the message itself; do that before recording it.
        for (d, reason, id) in &poison {
            warn!(message = id.as_deref().unwrap_or("?"), %reason, "message dead-lettered");
            sub.dead_letter(d, reason).await?;
            self.metrics.dead_lettered(id.is_none());
        }
        let started = std::time::Instant::now();
        if let Err(e) = self.store.commit(&batch).await {
            drop(router);
            return Err(e.into());
        }
        self.metrics
            .committed("batch", started, &mut router.pending);
        let follow_ups = router.take_follow_ups();
        self.hub.publish(&router, &out, &follow_ups);
        if let Some(last) = deliveries.iter().map(|d| d.tag).max() {
            sub.ack_through(last).await?;
        }
        debug!(
            messages = deliveries.len(),
            contacts = batch.contacts.len(),
            "batch persisted and acked"
        );
        Ok(())
    }
}

impl std::fmt::Debug for RouterTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterTask").finish_non_exhaustive()
    }
}

/// Loads state and builds the router, writing nothing: only the leader writes, once it
/// has taken the lead.
pub async fn start(loaded: &Loaded, store: &dyn Store) -> Result<Router, RouterError> {
    let state = store.load().await?;
    let (router, _) = Router::restore(loaded, state)?;
    Ok(router)
}
