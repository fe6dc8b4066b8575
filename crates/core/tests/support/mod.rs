//! A small world around the engine for tests: named agents and contacts, a clock in
//! seconds, and the log of decisions.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::{
    AgentId, AgentProfile, Caps, Channel, ContactId, ContactState, Decision, Engine, EngineError,
    Event, NewContact, OfferId, Policy, Presence, QueueId, SkillId, SkillSet, TeamId, TeamSet,
    Time, Urgency,
};

pub struct World {
    pub engine: Engine,
    pub log: Vec<Decision>,
    next_contact: u64,
}

pub fn skills(ids: &[u8]) -> SkillSet {
    SkillSet::of(ids.iter().map(|s| SkillId(*s)))
}

pub fn teams(ids: &[u8]) -> TeamSet {
    TeamSet::of(ids.iter().map(|t| TeamId(*t)))
}

pub fn profile(skills: &[(u8, u8)], caps: &[(Channel, u16)]) -> AgentProfile {
    AgentProfile {
        teams: TeamSet::EMPTY,
        skills: skills.iter().map(|(s, p)| (SkillId(*s), *p)).collect(),
        caps: Caps::of(caps.iter().copied()),
    }
}

impl World {
    pub fn new(policy: Policy) -> World {
        World {
            engine: Engine::new(policy).expect("valid policy"),
            log: Vec::new(),
            next_contact: 1,
        }
    }

    pub fn now(&self) -> Time {
        self.engine.now()
    }

    /// Moves the clock forward by `secs` seconds, firing timers.
    pub fn wait(&mut self, secs: u64) {
        let to = self.now() + Duration::from_secs(secs);
        self.engine.tick(to, &mut self.log);
    }

    pub fn event(&mut self, event: Event) -> Result<(), EngineError> {
        let now = self.now();
        self.engine.handle(now, event, &mut self.log)
    }

    /// Registers an available agent.
    pub fn agent_with(&mut self, id: u32, profile: AgentProfile) -> AgentId {
        let agent = AgentId(id);
        self.event(Event::UpsertAgent { agent, profile }).unwrap();
        self.presence(agent, Presence::Available);
        agent
    }

    pub fn agent(&mut self, id: u32, skills: &[(u8, u8)], caps: &[(Channel, u16)]) -> AgentId {
        self.agent_with(id, profile(skills, caps))
    }

    pub fn presence(&mut self, agent: AgentId, presence: Presence) {
        self.event(Event::SetPresence { agent, presence }).unwrap();
    }

    pub fn new_contact(&mut self, channel: Channel, required: &[u8]) -> NewContact {
        let id = self.next_contact;
        self.next_contact += 1;
        NewContact {
            id: ContactId(id),
            conversation: Arc::from(format!("conv-{id}")),
            customer: Arc::from(format!("customer-{id}")),
            channel,
            urgency: Urgency::Normal,
            queue: QueueId(0),
            required: skills(required),
            preferred: SkillSet::EMPTY,
            arrived_at: self.now(),
        }
    }

    pub fn arrive(&mut self, contact: NewContact) -> ContactId {
        let id = contact.id;
        self.event(Event::Arrive(contact)).unwrap();
        id
    }

    pub fn contact(&mut self, channel: Channel, required: &[u8]) -> ContactId {
        let c = self.new_contact(channel, required);
        self.arrive(c)
    }

    pub fn state(&self, contact: ContactId) -> Option<ContactState> {
        self.engine.contact(contact).map(|c| c.state())
    }

    /// The pending offer for `contact`, if any.
    pub fn offer(&self, contact: ContactId) -> Option<(OfferId, AgentId)> {
        match self.state(contact)? {
            ContactState::Offered { offer, agent } => Some((offer, agent)),
            _ => None,
        }
    }

    pub fn offered_to(&self, contact: ContactId) -> Option<AgentId> {
        self.offer(contact).map(|o| o.1)
    }

    pub fn accept(&mut self, contact: ContactId) -> AgentId {
        let (offer, agent) = self.offer(contact).expect("contact has an offer");
        self.event(Event::Accept { offer, agent }).unwrap();
        agent
    }

    pub fn decline(&mut self, contact: ContactId) -> AgentId {
        let (offer, agent) = self.offer(contact).expect("contact has an offer");
        self.event(Event::Decline { offer, agent }).unwrap();
        agent
    }

    pub fn close(&mut self, contact: ContactId) {
        self.event(Event::Close { contact }).unwrap();
    }

    /// Takes the decisions logged so far.
    pub fn take(&mut self) -> Vec<Decision> {
        std::mem::take(&mut self.log)
    }
}
