//! The engine's state as data: what the store persists and what a router (or a standby
//! taking over) restores from. A restored engine decides exactly as the original would
//! have from that point on.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Agent, Contact, ContactState, Engine, EngineError, Timer};
use crate::event::{AgentProfile, NewContact};
use crate::model::{AgentId, Channel, ContactId, Presence, QueueId, TeamSet, Time};
use crate::policy::Policy;

/// An agent as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSnapshot {
    pub id: AgentId,
    pub profile: AgentProfile,
    pub presence: Presence,
    /// When the agent last received an offer or became available.
    pub idle_since: Time,
    /// Offers in a row that expired unanswered.
    pub missed: u32,
}

/// An open contact as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactSnapshot {
    /// The contact as it arrived, with its current required and preferred skills.
    pub contact: NewContact,
    pub deadline: Time,
    pub teams: TeamSet,
    pub overflow_teams: TeamSet,
    pub overflow_at: Option<Time>,
    pub preferred_until: Time,
    pub target: Option<AgentId>,
    pub sticky: Option<(AgentId, Time)>,
    pub declined: Vec<AgentId>,
    pub state: ContactState,
    /// For an offered contact, when the offer expires.
    pub offer_expires_at: Option<Time>,
    /// When its current owner accepted it.
    #[serde(default)]
    pub assigned_at: Option<Time>,
}

/// Everything the engine needs to carry on after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub now: Time,
    /// The next offer id to hand out.
    pub next_offer: u64,
    /// Agents, by id.
    pub agents: Vec<AgentSnapshot>,
    /// Open contacts, by id.
    pub contacts: Vec<ContactSnapshot>,
    /// Sticky routing memory: (customer, previous owner, closed at), oldest first.
    pub owners: Vec<(Arc<str>, AgentId, Time)>,
    /// Recent handling time per queue and channel, in milliseconds.
    #[serde(default)]
    pub handling: Vec<(QueueId, Channel, u64)>,
}

impl Agent {
    fn profile(&self) -> AgentProfile {
        AgentProfile {
            teams: self.teams,
            skills: self.proficiency.clone(),
            caps: self.caps,
        }
    }
}

impl Engine {
    /// One agent's persisted form.
    pub fn snapshot_agent(&self, id: AgentId) -> Option<AgentSnapshot> {
        let a = self.agents.get(&id)?;
        Some(AgentSnapshot {
            id,
            profile: a.profile(),
            presence: a.presence,
            idle_since: a.idle_since,
            missed: a.missed,
        })
    }

    /// One open contact's persisted form.
    pub fn snapshot_contact(&self, id: ContactId) -> Option<ContactSnapshot> {
        let c = self.contacts.get(&id)?;
        let offer_expires_at = match c.state {
            ContactState::Offered { offer, .. } => self.offers.get(&offer).map(|o| o.expires_at),
            _ => None,
        };
        Some(ContactSnapshot {
            contact: NewContact {
                id,
                conversation: c.conversation.clone(),
                customer: c.customer.clone(),
                channel: c.channel,
                urgency: c.urgency,
                queue: c.queue,
                required: c.required,
                preferred: c.preferred,
                arrived_at: c.arrived_at,
            },
            deadline: c.deadline,
            teams: c.teams,
            overflow_teams: c.overflow_teams,
            overflow_at: c.overflow_at,
            preferred_until: c.preferred_until,
            target: c.target,
            sticky: c.sticky,
            declined: c.declined.clone(),
            state: c.state,
            offer_expires_at,
            assigned_at: c.assigned_at,
        })
    }

    /// The previous owner remembered for a customer, and when their conversation closed.
    pub fn previous_owner(&self, customer: &str) -> Option<(AgentId, Time)> {
        self.last_owner.get(customer).copied()
    }

    /// Recent handling time per queue and channel (ms), for persisting.
    pub fn handling(&self) -> Vec<(QueueId, Channel, u64)> {
        let mut h: Vec<_> = self
            .handling
            .iter()
            .map(|((q, c), ms)| (*q, *c, *ms))
            .collect();
        h.sort();
        h
    }

    /// The next offer id the engine will hand out.
    pub fn next_offer_id(&self) -> u64 {
        self.next_offer
    }

    /// The whole state, sorted by id so that equal states give equal snapshots.
    pub fn snapshot(&self) -> Snapshot {
        let mut agents: Vec<AgentId> = self.agents.keys().copied().collect();
        agents.sort();
        let mut contacts: Vec<ContactId> = self.contacts.keys().copied().collect();
        contacts.sort();
        Snapshot {
            now: self.now,
            next_offer: self.next_offer,
            agents: agents
                .into_iter()
                .filter_map(|a| self.snapshot_agent(a))
                .collect(),
            contacts: contacts
                .into_iter()
                .filter_map(|c| self.snapshot_contact(c))
                .collect(),
            owners: self
                .forget
                .iter()
                .filter(|(at, customer)| self.last_owner.get(customer).is_some_and(|e| e.1 == *at))
                .map(|(at, customer)| (customer.clone(), self.last_owner[customer].0, *at))
                .collect(),
            handling: self.handling(),
        }
    }

    /// Rebuilds an engine from a snapshot under `policy` (which may differ from the one the
    /// snapshot was taken under: deadlines already given are kept). Call
    /// [`Engine::dispatch`] afterwards: a changed policy or lost decisions may make offers.
    pub fn restore(policy: Policy, snapshot: Snapshot) -> Result<Engine, RestoreError> {
        let mut engine = Engine::new(policy).map_err(RestoreError::Policy)?;
        engine.now = snapshot.now;
        engine.next_offer = snapshot.next_offer.max(1);
        let mut sink = Vec::new();
        for a in snapshot.agents {
            engine
                .upsert_agent(a.id, a.profile)
                .map_err(RestoreError::Engine)?;
            engine.set_presence(a.id, a.presence, &mut sink);
            let agent = engine.agents.get_mut(&a.id).expect("just inserted");
            agent.idle_since = a.idle_since;
            agent.missed = a.missed;
            engine.refresh(a.id);
        }
        for c in snapshot.contacts {
            engine.restore_contact(c)?;
        }
        for (queue, channel, ms) in snapshot.handling {
            engine.handling.insert((queue, channel), ms);
        }
        for (customer, agent, closed_at) in snapshot.owners {
            engine
                .last_owner
                .insert(customer.clone(), (agent, closed_at));
            engine.forget.push_back((closed_at, customer));
        }
        engine.forget.make_contiguous().sort_by_key(|(at, _)| *at);
        Ok(engine)
    }

    fn restore_contact(&mut self, s: ContactSnapshot) -> Result<(), RestoreError> {
        let id = s.contact.id;
        if self.contacts.contains_key(&id) {
            return Err(RestoreError::Engine(EngineError::DuplicateContact(id)));
        }
        if let Some(open) = self.conversations.get(&s.contact.conversation) {
            return Err(RestoreError::Engine(EngineError::ConversationOpen {
                conversation: s.contact.conversation.to_string(),
                contact: *open,
            }));
        }
        if self.policy.queue(s.contact.queue).is_none() {
            return Err(RestoreError::Engine(EngineError::UnknownQueue(
                s.contact.queue.0,
            )));
        }
        if let Some(agent) = s.state.agent()
            && !self.agents.contains_key(&agent)
        {
            return Err(RestoreError::UnknownHolder { contact: id, agent });
        }
        let n = s.contact;
        self.conversations.insert(n.conversation.clone(), id);
        self.contacts.insert(
            id,
            Contact {
                id,
                conversation: n.conversation,
                customer: n.customer,
                channel: n.channel,
                urgency: n.urgency,
                queue: n.queue,
                required: n.required,
                preferred: n.preferred,
                teams: s.teams,
                overflow_teams: s.overflow_teams,
                preferred_until: s.preferred_until,
                overflow_at: s.overflow_at,
                arrived_at: n.arrived_at,
                deadline: s.deadline,
                target: s.target,
                sticky: s.sticky,
                declined: s.declined,
                state: s.state,
                assigned_at: s.assigned_at,
                pool: None,
                announce: false,
            },
        );
        match s.state {
            ContactState::Waiting => self.enter_waiting(id),
            ContactState::Offered { offer, agent } => {
                let expires_at = s
                    .offer_expires_at
                    .unwrap_or(self.now + self.policy.channel(n.channel).offer_timeout);
                self.hold_offer(offer, id, agent, expires_at);
                self.next_offer = self.next_offer.max(offer.0 + 1);
            }
            ContactState::Assigned { agent } => self.take_slot(agent, id),
            ContactState::WrapUp { agent, until } => {
                self.take_slot(agent, id);
                self.timers.insert((until, Timer::WrapUpEnd(id)));
            }
        }
        Ok(())
    }
}

/// A snapshot the engine cannot restore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("restore: {0}")]
    Policy(crate::policy::PolicyError),
    #[error("restore: {0}")]
    Engine(EngineError),
    #[error("restore: {contact} is held by {agent}, who is not in the snapshot")]
    UnknownHolder { contact: ContactId, agent: AgentId },
}
