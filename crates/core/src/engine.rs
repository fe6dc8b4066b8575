//! The routing engine: a deterministic state machine over contacts, agents and time.
//!
//! # How a decision is found without scanning
//!
//! A waiting contact sits in exactly one *pool*: either reserved for one agent (sticky
//! routing, transfer to an agent) or in a *class*, the triple (channel, skills, teams) that
//! decides which agents may serve it. Classes are few (contacts share skill sets), and each
//! class keeps two ordered sets:
//!
//! - `waiting`: its contacts, ordered by (deadline, id), so the most urgent is first;
//! - `free`: the agents who match the class and have a free slot on its channel right now,
//!   ordered by the policy's ranking (proficiency over the class's skills, load, idle time).
//!
//! Every agent knows the classes it matches. A decision therefore costs one ordered-set
//! lookup per class involved: a new contact looks at the first entry of its class's `free`
//! set; an agent with a newly free slot looks at the first `waiting` entry of each of its
//! classes. The engine keeps the invariant that after [`Engine::dispatch`] no waiting
//! contact has an eligible free agent, so only agents and contacts whose situation changed
//! (the *dirty* ones) need looking at, and they are served earliest deadline first.

use std::time::Duration;

use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};
use std::sync::Arc;

use crate::event::{
    AgentProfile, AssignExplanation, Caps, CloseReason, Criterion, Decision, Event, NewContact,
    OfferOutcome, PresenceReason, RankKey, RequeueReason, Route, TransferTarget, WaitKind,
    WaitReason,
};
use crate::model::{
    AgentId, Channel, ContactId, OfferId, Presence, QueueId, SkillId, SkillSet, TeamId, TeamSet,
    Time, Urgency,
};
use crate::policy::{OfflineBehaviour, Policy, PolicyError};

mod snapshot;
pub use snapshot::{AgentSnapshot, ContactSnapshot, RestoreError, Snapshot};

/// A command the engine refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("{0} is unknown")]
    UnknownContact(ContactId),
    #[error("{0} is unknown")]
    UnknownAgent(AgentId),
    #[error("{0} is not pending: it was accepted, declined, expired or withdrawn")]
    OfferNotPending(OfferId),
    #[error("{offer} was made to {to}, not to {agent}")]
    OfferNotForAgent {
        offer: OfferId,
        to: AgentId,
        agent: AgentId,
    },
    #[error("{0} already exists")]
    DuplicateContact(ContactId),
    #[error("conversation {conversation:?} is already open as {contact}")]
    ConversationOpen {
        conversation: String,
        contact: ContactId,
    },
    #[error("queue {0} is not in the policy")]
    UnknownQueue(u16),
    #[error("skill {skill} has proficiency {proficiency}, expected 1..=10")]
    InvalidProficiency { skill: u8, proficiency: u8 },
    #[error("skill {0} is out of range (the limit is 128 skills)")]
    SkillOutOfRange(u8),
    #[error("team {0} is out of range (the limit is 64 teams)")]
    TeamOutOfRange(u8),
    #[error("{contact} is {state}; cannot {action} it")]
    InvalidState {
        contact: ContactId,
        state: &'static str,
        action: &'static str,
    },
    #[error("{0} is not available")]
    AgentUnavailable(AgentId),
    #[error("{agent} does not serve {channel} (cap 0)")]
    AgentCannotServe { agent: AgentId, channel: Channel },
    #[error("{contact} is already owned by {agent}")]
    TransferToOwner { contact: ContactId, agent: AgentId },
}

/// A waiting contact's expected wait and what it is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExpectedWait {
    /// Contacts of the same pool served before this one.
    pub position: usize,
    /// Slots on the contact's channel of the available agents who can take it.
    pub slots: u32,
    /// Recent handling time of the contact's queue on its channel, if any has finished.
    pub handling: Option<Duration>,
    /// The expected wait; `None` without an available agent or any handling history.
    pub estimate: Option<Duration>,
}

/// Where a contact is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ContactState {
    Waiting,
    Offered { offer: OfferId, agent: AgentId },
    Assigned { agent: AgentId },
    WrapUp { agent: AgentId, until: Time },
}

impl ContactState {
    /// The lower-case name used in APIs and errors.
    pub fn as_str(&self) -> &'static str {
        match self {
            ContactState::Waiting => "waiting",
            ContactState::Offered { .. } => "offered",
            ContactState::Assigned { .. } => "assigned",
            ContactState::WrapUp { .. } => "wrap_up",
        }
    }

    /// The agent holding a slot for this contact, if any.
    pub fn agent(&self) -> Option<AgentId> {
        match *self {
            ContactState::Waiting => None,
            ContactState::Offered { agent, .. }
            | ContactState::Assigned { agent }
            | ContactState::WrapUp { agent, .. } => Some(agent),
        }
    }
}

/// An open contact as the engine holds it.
#[derive(Debug, Clone)]
pub struct Contact {
    id: ContactId,
    conversation: Arc<str>,
    customer: Arc<str>,
    channel: Channel,
    urgency: Urgency,
    queue: QueueId,
    required: SkillSet,
    preferred: SkillSet,
    teams: TeamSet,
    overflow_teams: TeamSet,
    preferred_until: Time,
    overflow_at: Option<Time>,
    arrived_at: Time,
    deadline: Time,
    target: Option<AgentId>,
    sticky: Option<(AgentId, Time)>,
    declined: Vec<AgentId>,
    state: ContactState,
    /// When its current owner accepted it.
    assigned_at: Option<Time>,
    pool: Option<Pool>,
    announce: bool,
}

impl Contact {
    pub fn id(&self) -> ContactId {
        self.id
    }
    pub fn conversation(&self) -> &str {
        &self.conversation
    }
    pub fn customer(&self) -> &str {
        &self.customer
    }
    pub fn channel(&self) -> Channel {
        self.channel
    }
    pub fn urgency(&self) -> Urgency {
        self.urgency
    }
    pub fn queue(&self) -> QueueId {
        self.queue
    }
    /// Skills every eligible agent must have.
    pub fn required(&self) -> SkillSet {
        self.required
    }
    /// Skills also required until [`Contact::preferred_until`].
    pub fn preferred(&self) -> SkillSet {
        self.preferred
    }
    pub fn preferred_until(&self) -> Time {
        self.preferred_until
    }
    /// Teams admitted (empty: any team).
    pub fn teams(&self) -> TeamSet {
        self.teams
    }
    /// Teams admitted from [`Contact::overflow_at`] on.
    pub fn overflow_teams(&self) -> TeamSet {
        self.overflow_teams
    }
    pub fn overflow_at(&self) -> Option<Time> {
        self.overflow_at
    }
    pub fn arrived_at(&self) -> Time {
        self.arrived_at
    }
    /// Arrival plus the service-level target: the key contacts are served by.
    pub fn deadline(&self) -> Time {
        self.deadline
    }
    /// The agent a transfer reserved this contact for.
    pub fn target(&self) -> Option<AgentId> {
        self.target
    }
    /// The previous owner this contact is reserved for, and until when.
    pub fn sticky(&self) -> Option<(AgentId, Time)> {
        self.sticky
    }
    /// Agents who declined or missed this contact; it is never offered to them again.
    pub fn declined(&self) -> &[AgentId] {
        &self.declined
    }
    pub fn state(&self) -> ContactState {
        self.state
    }
}

/// An agent as the engine holds it.
#[derive(Debug, Clone)]
pub struct Agent {
    id: AgentId,
    teams: TeamSet,
    skills: SkillSet,
    proficiency: Vec<(SkillId, u8)>,
    caps: Caps,
    presence: Presence,
    load: [u16; Channel::COUNT],
    total_load: u16,
    exclusive_load: u16,
    idle_since: Time,
    missed: u32,
    held: Vec<ContactId>,
    /// Classes this agent matches, with its proficiency score in each.
    classes: Vec<(ClassId, u16)>,
    /// What the agent is currently indexed under in the classes' `free` sets.
    indexed: Indexed,
    /// Contacts waiting for this agent only, by (deadline, id).
    reserved: BTreeSet<(Time, ContactId)>,
    dirty: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Indexed {
    free: [bool; Channel::COUNT],
    load_ppm: u32,
    idle_since: Time,
}

impl Agent {
    pub fn id(&self) -> AgentId {
        self.id
    }
    pub fn teams(&self) -> TeamSet {
        self.teams
    }
    pub fn skills(&self) -> SkillSet {
        self.skills
    }
    /// Skills with proficiency, sorted by skill.
    pub fn proficiency(&self) -> &[(SkillId, u8)] {
        &self.proficiency
    }
    /// Sum of proficiency over `skills` (skills the agent lacks count 0).
    pub fn score(&self, skills: SkillSet) -> u16 {
        self.proficiency
            .iter()
            .filter(|(s, _)| skills.contains(*s))
            .map(|&(_, p)| u16::from(p))
            .sum()
    }
    pub fn caps(&self) -> Caps {
        self.caps
    }
    pub fn presence(&self) -> Presence {
        self.presence
    }
    /// Slots in use on `channel`: offered, assigned and wrapping up.
    pub fn load(&self, channel: Channel) -> u16 {
        self.load[channel.index()]
    }
    pub fn total_load(&self) -> u16 {
        self.total_load
    }
    /// Share of capacity in use, in millionths, summed over channels.
    pub fn load_ppm(&self) -> u32 {
        load_ppm(&self.load, &self.caps)
    }
    /// When the agent last received an offer or became available.
    pub fn idle_since(&self) -> Time {
        self.idle_since
    }
    /// Offers in a row that expired unanswered.
    pub fn missed(&self) -> u32 {
        self.missed
    }
    /// The contacts holding a slot of this agent.
    pub fn held(&self) -> &[ContactId] {
        &self.held
    }
}

/// Share of capacity in use, in millionths, summed over channels: each unit of work counts
/// as the fraction of its channel's cap it uses (an agent holding 1 of 3 chats and 1 of 5
/// emails is at 333_333 + 200_000).
pub fn load_ppm(load: &[u16; Channel::COUNT], caps: &Caps) -> u32 {
    load.iter()
        .zip(caps.per_channel)
        .map(|(&l, c)| {
            let l = u32::from(l) * 1_000_000;
            l.checked_div(u32::from(c)).unwrap_or(l)
        })
        .sum()
}

/// Whether an agent with this state may take one more contact on `channel` under every cap.
pub fn has_free_slot(
    policy: &Policy,
    presence: Presence,
    caps: &Caps,
    load: &[u16; Channel::COUNT],
    channel: Channel,
) -> bool {
    let total: u16 = load.iter().sum();
    let exclusive_busy = Channel::ALL
        .iter()
        .any(|c| policy.channel(*c).exclusive && load[c.index()] > 0);
    presence == Presence::Available
        && load[channel.index()] < caps.get(channel)
        && caps.total.is_none_or(|t| total < t)
        && !exclusive_busy
}

type ClassId = u32;

/// What decides class membership: (skills, teams, bitmask of channels served).
type GroupKey = (SkillSet, TeamSet, u8);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ClassKey {
    channel: Channel,
    skills: SkillSet,
    teams: TeamSet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    Reserved(AgentId),
    Class(ClassId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteKey {
    Reserved(AgentId),
    Class(ClassKey),
}

#[derive(Debug)]
struct Class {
    key: ClassKey,
    waiting: BTreeSet<(Time, ContactId)>,
    free: BTreeSet<RankKey>,
    members: u32,
    available: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    OfferExpiry(OfferId),
    Reclass(ContactId),
    WrapUpEnd(ContactId),
}

#[derive(Debug, Clone, Copy)]
struct PendingOffer {
    contact: ContactId,
    agent: AgentId,
    expires_at: Time,
}

/// The routing engine. Feed it events with the current time; read its decisions.
///
/// - [`Engine::handle`] does everything for one event: fires due timers, applies the event,
///   and dispatches.
/// - For batches, call [`Engine::apply`] per event and [`Engine::dispatch`] once.
/// - Drive time with [`Engine::tick`] at [`Engine::next_timer`].
#[derive(Debug)]
pub struct Engine {
    policy: Policy,
    now: Time,
    contacts: FxHashMap<ContactId, Contact>,
    conversations: FxHashMap<Arc<str>, ContactId>,
    agents: FxHashMap<AgentId, Agent>,
    offers: FxHashMap<OfferId, PendingOffer>,
    next_offer: u64,
    timers: BTreeSet<(Time, Timer)>,
    classes: Vec<Class>,
    class_ids: FxHashMap<ClassKey, ClassId>,
    /// Agents grouped by what decides class membership: (skills, teams, channels served).
    groups: FxHashMap<GroupKey, Vec<AgentId>>,
    /// Per skill, the groups holding it, so creating a class visits only groups that can
    /// match it.
    skill_groups: Vec<Vec<GroupKey>>,
    /// Per skill: agents holding it, and available agents holding it.
    skill_counts: Box<[[u32; 2]; SkillId::LIMIT]>,
    last_owner: FxHashMap<Arc<str>, (AgentId, Time)>,
    forget: VecDeque<(Time, Arc<str>)>,
    dirty_agents: Vec<AgentId>,
    dirty_contacts: Vec<ContactId>,
    waiting: usize,
    /// Recent handling time per (queue, channel), in milliseconds (exponentially weighted).
    handling: FxHashMap<(QueueId, Channel), u64>,
}

impl Engine {
    /// An engine with no agents and no contacts, at time zero.
    pub fn new(policy: Policy) -> Result<Engine, PolicyError> {
        policy.validate()?;
        Ok(Engine {
            policy,
            now: Time::default(),
            contacts: FxHashMap::default(),
            conversations: FxHashMap::default(),
            agents: FxHashMap::default(),
            offers: FxHashMap::default(),
            next_offer: 1,
            timers: BTreeSet::new(),
            classes: Vec::new(),
            class_ids: FxHashMap::default(),
            groups: FxHashMap::default(),
            skill_groups: vec![Vec::new(); SkillId::LIMIT],
            skill_counts: Box::new([[0; 2]; SkillId::LIMIT]),
            last_owner: FxHashMap::default(),
            forget: VecDeque::new(),
            dirty_agents: Vec::new(),
            dirty_contacts: Vec::new(),
            waiting: 0,
            handling: FxHashMap::default(),
        })
    }

    // ----- queries -------------------------------------------------------------------

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The latest instant the engine has seen.
    pub fn now(&self) -> Time {
        self.now
    }

    /// An open contact.
    pub fn contact(&self, id: ContactId) -> Option<&Contact> {
        self.contacts.get(&id)
    }

    /// Every open contact, in no particular order.
    pub fn contacts(&self) -> impl Iterator<Item = &Contact> {
        self.contacts.values()
    }

    /// An agent.
    pub fn agent(&self, id: AgentId) -> Option<&Agent> {
        self.agents.get(&id)
    }

    /// Every agent, in no particular order.
    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values()
    }

    /// The open contact of a conversation, for threading follow-ups to their owner.
    pub fn conversation(&self, key: &str) -> Option<&Contact> {
        self.conversations
            .get(key)
            .and_then(|id| self.contacts.get(id))
    }

    /// The pending offer `id`: its contact, agent and expiry.
    pub fn offer(&self, id: OfferId) -> Option<(ContactId, AgentId, Time)> {
        self.offers
            .get(&id)
            .map(|o| (o.contact, o.agent, o.expires_at))
    }

    /// How many contacts are waiting.
    pub fn waiting_len(&self) -> usize {
        self.waiting
    }

    /// How many contacts are open (waiting, offered, assigned or wrapping up).
    pub fn open_len(&self) -> usize {
        self.contacts.len()
    }

    /// The next instant a timer (offer expiry, relaxation, wrap-up end) fires.
    pub fn next_timer(&self) -> Option<Time> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Whether `agent` could take one more contact on `channel` right now.
    pub fn is_free(&self, agent: AgentId, channel: Channel) -> bool {
        self.agents
            .get(&agent)
            .is_some_and(|a| self.agent_free(a, channel))
    }

    /// Why a waiting contact is waiting; `None` if it is not waiting.
    pub fn wait_reason(&self, id: ContactId) -> Option<WaitReason> {
        let c = self.contacts.get(&id)?;
        let pool = c.pool?;
        let relaxes_at = self.next_relax(c);
        let kind = match pool {
            Pool::Reserved(agent) => WaitKind::ReservedFor {
                agent,
                until: c
                    .sticky
                    .filter(|(a, _)| *a == agent && c.target != Some(agent))
                    .map(|(_, t)| t),
            },
            Pool::Class(k) => {
                let class = &self.classes[k as usize];
                let skills = class.key.skills;
                let lacking = |column: usize| {
                    SkillSet::of(
                        skills
                            .iter()
                            .filter(|s| self.skill_counts[s.0 as usize][column] == 0),
                    )
                };
                if class.members == 0 {
                    let missing = lacking(0);
                    if missing.is_empty() {
                        WaitKind::NoAgentInTeams {
                            teams: class.key.teams,
                            channel: class.key.channel,
                        }
                    } else {
                        WaitKind::NoAgentWithSkills { missing }
                    }
                } else if class.available == 0 {
                    WaitKind::NoAgentAvailable {
                        matching: class.members,
                        unavailable_skills: lacking(1),
                    }
                } else if class.free.is_empty() {
                    WaitKind::AllAtCapacity {
                        available: class.available,
                    }
                } else {
                    WaitKind::AllDeclined {
                        free: class.free.len() as u32,
                    }
                }
            }
        };
        Some(WaitReason { kind, relaxes_at })
    }

    /// How many waiting contacts of the same pool would be served before this one.
    /// Costs a walk of that pool; meant for API calls, not for the routing path.
    pub fn position(&self, id: ContactId) -> Option<usize> {
        let c = self.contacts.get(&id)?;
        let key = (c.deadline, c.id);
        let set = match c.pool? {
            Pool::Reserved(a) => &self.agents[&a].reserved,
            Pool::Class(k) => &self.classes[k as usize].waiting,
        };
        Some(set.range(..key).count())
    }

    /// How long a waiting contact can expect to wait, from one place: its position among
    /// the contacts the same agents serve (its pool), the slots of the available agents
    /// who can take it, and the recent handling time of its queue on its channel.
    ///
    /// `estimate = 0` while a matching agent has a free slot and nobody is ahead;
    /// otherwise `(ahead + 1) × handling / slots`: every slot frees once per handling time
    /// on average, and the contact is served when `ahead + 1` slots have freed. Without
    /// an available matching agent or any handling history there is no estimate.
    /// Costs a walk of the pool and of the agents; meant for answering customers.
    pub fn expected_wait(&self, id: ContactId) -> Option<ExpectedWait> {
        let c = self.contacts.get(&id)?;
        let pool = c.pool?;
        let ahead = self.position(id)?;
        let handling = self
            .handling
            .get(&(c.queue, c.channel))
            .map(|ms| Duration::from_millis(*ms));
        let (slots, free) = match pool {
            Pool::Reserved(a) => {
                let agent = &self.agents[&a];
                let slots = if agent.presence == Presence::Available {
                    u32::from(agent.caps.get(c.channel))
                } else {
                    0
                };
                (slots, self.agent_free(agent, c.channel))
            }
            Pool::Class(k) => {
                let class = &self.classes[k as usize];
                let slots = self
                    .agents
                    .values()
                    .filter(|a| a.presence == Presence::Available)
                    .filter(|a| a.classes.iter().any(|(ci, _)| *ci == k))
                    .map(|a| u32::from(a.caps.get(c.channel)))
                    .sum();
                (slots, !class.free.is_empty())
            }
        };
        let estimate = if free && ahead == 0 {
            Some(Duration::ZERO)
        } else if slots == 0 {
            None
        } else {
            handling.map(|h| h * (ahead as u32 + 1) / slots)
        };
        Some(ExpectedWait {
            position: ahead,
            slots,
            handling,
            estimate,
        })
    }

    // ----- driving ---------------------------------------------------------------------

    /// Fires due timers, applies `event` and dispatches: everything one event causes.
    pub fn handle(
        &mut self,
        now: Time,
        event: Event,
        out: &mut Vec<Decision>,
    ) -> Result<(), EngineError> {
        self.tick(now, out);
        let result = self.apply(now, event, out);
        self.dispatch(out);
        result
    }

    /// Fires every timer due at or before `now`, dispatching after each instant, so the
    /// outcome is the same however coarsely time is driven.
    pub fn tick(&mut self, now: Time, out: &mut Vec<Decision>) {
        while let Some(t) = self.next_timer().filter(|t| *t <= now) {
            self.advance(t, out);
            self.dispatch(out);
        }
        self.advance(now, out);
        self.dispatch(out);
    }

    /// Moves time to `now` and fires the timers due by then, without dispatching.
    pub fn advance(&mut self, now: Time, out: &mut Vec<Decision>) {
        self.fire_due(now, out);
    }

    /// Applies one event at `now` without dispatching (timers due by then fire first).
    /// Call [`Engine::dispatch`] after a batch. On error nothing changed.
    pub fn apply(
        &mut self,
        now: Time,
        event: Event,
        out: &mut Vec<Decision>,
    ) -> Result<(), EngineError> {
        self.fire_due(now, out);
        match event {
            Event::UpsertAgent { agent, profile } => self.upsert_agent(agent, profile),
            Event::SetPresence { agent, presence } => {
                if !self.agents.contains_key(&agent) {
                    return Err(EngineError::UnknownAgent(agent));
                }
                self.set_presence(agent, presence, out);
                Ok(())
            }
            Event::Arrive(contact) => self.arrive(contact),
            Event::Accept { offer, agent } => self.accept(offer, agent, out),
            Event::Decline { offer, agent } => {
                self.check_offer(offer, agent)?;
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.missed = 0;
                }
                self.end_offer(offer, OfferOutcome::Declined, true, out);
                Ok(())
            }
            Event::Transfer { contact, to } => self.transfer(contact, to, out),
            Event::WrapUp { contact } => self.wrap_up(contact, out),
            Event::Close { contact } => {
                if !self.contacts.contains_key(&contact) {
                    return Err(EngineError::UnknownContact(contact));
                }
                self.close(contact, CloseReason::Closed, out);
                Ok(())
            }
            Event::Abandon { contact } => self.abandon(contact, out),
        }
    }

    /// Offers waiting contacts to free agents until no waiting contact has an eligible
    /// free agent: earliest deadline first, each to the best eligible agent.
    pub fn dispatch(&mut self, out: &mut Vec<Decision>) {
        let mut heap: BinaryHeap<Reverse<(Time, ContactId, Option<AgentId>)>> = BinaryHeap::new();
        for id in std::mem::take(&mut self.dirty_contacts) {
            if let Some(c) = self.contacts.get(&id).filter(|c| c.pool.is_some()) {
                heap.push(Reverse((c.deadline, id, None)));
            }
        }
        for id in std::mem::take(&mut self.dirty_agents) {
            let Some(a) = self.agents.get_mut(&id) else {
                continue;
            };
            a.dirty = false;
            if let Some((deadline, c)) = self.best_contact_for(id) {
                heap.push(Reverse((deadline, c, Some(id))));
            }
        }
        while let Some(Reverse((_, contact, source))) = heap.pop() {
            let mut offered = false;
            if self
                .contacts
                .get(&contact)
                .is_some_and(|c| c.pool.is_some())
            {
                match self.best_agent_for(contact) {
                    Some(agent) => {
                        self.make_offer(contact, agent, out);
                        offered = true;
                    }
                    None if source.is_none() => self.announce_wait(contact, out),
                    None => {}
                }
            }
            if let Some(agent) = source
                && let Some((deadline, next)) = self.best_contact_for(agent)
            {
                // Without an offer the same pair would come back forever; eligibility on
                // both sides is computed by the same rules, so this cannot happen.
                debug_assert!(offered || next != contact, "inconsistent eligibility");
                if offered || next != contact {
                    heap.push(Reverse((deadline, next, Some(agent))));
                }
            }
        }
    }

    // ----- events ----------------------------------------------------------------------

    fn upsert_agent(&mut self, id: AgentId, profile: AgentProfile) -> Result<(), EngineError> {
        let mut proficiency = profile.skills;
        for &(s, p) in &proficiency {
            if s.0 as usize >= SkillId::LIMIT {
                return Err(EngineError::SkillOutOfRange(s.0));
            }
            if !(1..=10).contains(&p) {
                return Err(EngineError::InvalidProficiency {
                    skill: s.0,
                    proficiency: p,
                });
            }
        }
        proficiency.sort_unstable();
        proficiency.dedup_by_key(|(s, _)| *s);
        let skills = SkillSet::of(proficiency.iter().map(|(s, _)| *s));
        if let Some(agent) = self.agents.get(&id) {
            self.leave_classes(id, agent.presence);
            let agent = self.agents.get_mut(&id).expect("agent exists");
            agent.teams = profile.teams;
            agent.skills = skills;
            agent.proficiency = proficiency;
            agent.caps = profile.caps;
        } else {
            self.agents.insert(
                id,
                Agent {
                    id,
                    teams: profile.teams,
                    skills,
                    proficiency,
                    caps: profile.caps,
                    presence: Presence::Offline,
                    load: [0; Channel::COUNT],
                    total_load: 0,
                    exclusive_load: 0,
                    idle_since: self.now,
                    missed: 0,
                    held: Vec::new(),
                    classes: Vec::new(),
                    indexed: Indexed::default(),
                    reserved: BTreeSet::new(),
                    dirty: false,
                },
            );
        }
        self.join_classes(id);
        self.refresh(id);
        self.mark_agent(id);
        // Contacts reserved for this agent may no longer fit its new profile.
        let reserved: Vec<ContactId> = self.agents[&id].reserved.iter().map(|e| e.1).collect();
        for c in reserved {
            self.repool(c);
        }
        Ok(())
    }

    fn arrive(&mut self, new: NewContact) -> Result<(), EngineError> {
        if self.contacts.contains_key(&new.id) {
            return Err(EngineError::DuplicateContact(new.id));
        }
        if let Some(open) = self.conversations.get(&new.conversation) {
            return Err(EngineError::ConversationOpen {
                conversation: new.conversation.to_string(),
                contact: *open,
            });
        }
        let queue = self
            .policy
            .queue(new.queue)
            .ok_or(EngineError::UnknownQueue(new.queue.0))?;
        let deadline = new.arrived_at + self.policy.target(new.queue, new.channel, new.urgency);
        let overflow_at = (!queue.teams.is_empty() && !queue.overflow_teams.is_empty())
            .then(|| new.arrived_at + queue.overflow_after);
        let preferred_until = new.arrived_at + queue.preferred_for;
        let (teams, overflow_teams) = (queue.teams, queue.overflow_teams);
        let sticky = self.sticky_owner(&new);
        let id = new.id;
        self.conversations.insert(new.conversation.clone(), id);
        self.contacts.insert(
            id,
            Contact {
                id,
                conversation: new.conversation,
                customer: new.customer,
                channel: new.channel,
                urgency: new.urgency,
                queue: new.queue,
                required: new.required,
                preferred: new.preferred,
                teams,
                overflow_teams,
                preferred_until,
                overflow_at,
                arrived_at: new.arrived_at,
                deadline,
                target: None,
                sticky,
                declined: Vec::new(),
                state: ContactState::Waiting,
                assigned_at: None,
                pool: None,
                announce: true,
            },
        );
        self.enter_waiting(id);
        Ok(())
    }

    /// The previous owner a returning customer waits for, if sticky routing applies.
    fn sticky_owner(&self, new: &NewContact) -> Option<(AgentId, Time)> {
        let sticky = &self.policy.sticky;
        if sticky.wait.is_zero() {
            return None;
        }
        let &(owner, closed_at) = self.last_owner.get(&new.customer)?;
        let until = new.arrived_at + sticky.wait;
        let agent = self.agents.get(&owner)?;
        (self.now < closed_at + sticky.remember_for
            && self.now < until
            && agent.presence == Presence::Available
            && agent.caps.get(new.channel) > 0
            && agent.skills.is_superset(new.required))
        .then_some((owner, until))
    }

    fn check_offer(&self, offer: OfferId, agent: AgentId) -> Result<PendingOffer, EngineError> {
        let pending = *self
            .offers
            .get(&offer)
            .ok_or(EngineError::OfferNotPending(offer))?;
        if pending.agent != agent {
            return Err(EngineError::OfferNotForAgent {
                offer,
                to: pending.agent,
                agent,
            });
        }
        Ok(pending)
    }

    fn accept(
        &mut self,
        offer: OfferId,
        agent: AgentId,
        out: &mut Vec<Decision>,
    ) -> Result<(), EngineError> {
        let pending = self.check_offer(offer, agent)?;
        self.offers.remove(&offer);
        let now = self.now;
        let c = self
            .contacts
            .get_mut(&pending.contact)
            .expect("offered contact");
        c.state = ContactState::Assigned { agent };
        c.assigned_at = Some(now);
        let (waited, within_target) = (now.since(c.arrived_at), now <= c.deadline);
        if let Some(a) = self.agents.get_mut(&agent) {
            a.missed = 0;
        }
        out.push(Decision::Assigned {
            contact: pending.contact,
            agent,
            offer,
            waited,
            within_target,
        });
        Ok(())
    }

    fn transfer(
        &mut self,
        id: ContactId,
        to: TransferTarget,
        out: &mut Vec<Decision>,
    ) -> Result<(), EngineError> {
        let c = self
            .contacts
            .get(&id)
            .ok_or(EngineError::UnknownContact(id))?;
        let ContactState::Assigned { agent: from } = c.state else {
            return Err(EngineError::InvalidState {
                contact: id,
                state: c.state.as_str(),
                action: "transfer",
            });
        };
        match to {
            TransferTarget::Agent(target) => {
                let a = self
                    .agents
                    .get(&target)
                    .ok_or(EngineError::UnknownAgent(target))?;
                if target == from {
                    return Err(EngineError::TransferToOwner {
                        contact: id,
                        agent: from,
                    });
                }
                if a.presence != Presence::Available {
                    return Err(EngineError::AgentUnavailable(target));
                }
                if a.caps.get(c.channel) == 0 {
                    return Err(EngineError::AgentCannotServe {
                        agent: target,
                        channel: c.channel,
                    });
                }
            }
            TransferTarget::Team(team) if team.0 as usize >= TeamId::LIMIT => {
                return Err(EngineError::TeamOutOfRange(team.0));
            }
            TransferTarget::Team(_) | TransferTarget::Skills(_) => {}
        }
        self.release_slot(from, id);
        let c = self.contacts.get_mut(&id).expect("checked above");
        c.declined.push(from);
        c.sticky = None;
        c.preferred = SkillSet::EMPTY;
        c.overflow_teams = TeamSet::EMPTY;
        c.overflow_at = None;
        match to {
            TransferTarget::Agent(target) => {
                // A transfer to a named agent is deliberate: it overrides their earlier
                // decline of this contact.
                c.declined.retain(|a| *a != target);
                c.target = Some(target);
            }
            TransferTarget::Team(team) => {
                c.teams = TeamSet::of([team]);
                c.required = SkillSet::EMPTY;
            }
            TransferTarget::Skills(skills) => {
                c.teams = TeamSet::EMPTY;
                c.required = skills;
            }
        }
        c.state = ContactState::Waiting;
        c.announce = true;
        out.push(Decision::Transferred {
            contact: id,
            from,
            to,
        });
        self.enter_waiting(id);
        Ok(())
    }

    fn wrap_up(&mut self, id: ContactId, out: &mut Vec<Decision>) -> Result<(), EngineError> {
        let c = self
            .contacts
            .get_mut(&id)
            .ok_or(EngineError::UnknownContact(id))?;
        let ContactState::Assigned { agent } = c.state else {
            return Err(EngineError::InvalidState {
                contact: id,
                state: c.state.as_str(),
                action: "wrap up",
            });
        };
        let until = self.now + self.policy.channel(c.channel).wrap_up;
        c.state = ContactState::WrapUp { agent, until };
        self.record_handling(id);
        out.push(Decision::WrapUpStarted {
            contact: id,
            agent,
            until,
        });
        if until <= self.now {
            self.close(id, CloseReason::WrapUpEnded, out);
        } else {
            self.timers.insert((until, Timer::WrapUpEnd(id)));
        }
        Ok(())
    }

    fn abandon(&mut self, id: ContactId, out: &mut Vec<Decision>) -> Result<(), EngineError> {
        let c = self
            .contacts
            .get(&id)
            .ok_or(EngineError::UnknownContact(id))?;
        match c.state {
            ContactState::Waiting => self.leave_waiting(id),
            ContactState::Offered { offer, .. } => {
                self.end_offer(offer, OfferOutcome::Withdrawn, false, out)
            }
            state => {
                return Err(EngineError::InvalidState {
                    contact: id,
                    state: state.as_str(),
                    action: "abandon",
                });
            }
        }
        let c = self.remove_contact(id);
        out.push(Decision::Abandoned {
            contact: id,
            waited: self.now.since(c.arrived_at),
        });
        Ok(())
    }

    /// Closes an open contact from whatever state it is in.
    fn close(&mut self, id: ContactId, reason: CloseReason, out: &mut Vec<Decision>) {
        let owner = match self.contacts[&id].state {
            ContactState::Waiting => {
                self.leave_waiting(id);
                None
            }
            ContactState::Offered { offer, .. } => {
                self.end_offer(offer, OfferOutcome::Withdrawn, false, out);
                None
            }
            ContactState::Assigned { agent } => {
                self.record_handling(id);
                self.release_slot(agent, id);
                Some(agent)
            }
            ContactState::WrapUp { agent, .. } => {
                self.release_slot(agent, id);
                Some(agent)
            }
        };
        let c = self.remove_contact(id);
        if let Some(agent) = owner
            && !self.policy.sticky.wait.is_zero()
        {
            self.last_owner
                .insert(c.customer.clone(), (agent, self.now));
            self.forget.push_back((self.now, c.customer));
        }
        out.push(Decision::Closed {
            contact: id,
            agent: owner,
            reason,
        });
    }

    fn remove_contact(&mut self, id: ContactId) -> Contact {
        let c = self.contacts.remove(&id).expect("open contact");
        self.conversations.remove(&c.conversation);
        c
    }

    fn set_presence(&mut self, id: AgentId, presence: Presence, out: &mut Vec<Decision>) {
        let agent = &self.agents[&id];
        let old = agent.presence;
        if old == presence {
            return;
        }
        let was_available = old == Presence::Available;
        let now_available = presence == Presence::Available;
        if was_available != now_available {
            let delta = if now_available { 1i64 } else { -1 };
            let skills = agent.skills;
            let classes: Vec<ClassId> = agent.classes.iter().map(|(c, _)| *c).collect();
            for c in classes {
                let class = &mut self.classes[c as usize];
                class.available = (i64::from(class.available) + delta) as u32;
            }
            for s in skills.iter() {
                let n = &mut self.skill_counts[s.0 as usize][1];
                *n = (i64::from(*n) + delta) as u32;
            }
        }
        let agent = self.agents.get_mut(&id).expect("agent exists");
        agent.presence = presence;
        if now_available {
            agent.idle_since = self.now;
            agent.missed = 0;
            self.refresh(id);
            self.mark_agent(id);
            return;
        }
        self.refresh(id);
        // Offers and reservations only stand while the agent is available.
        // In contact order, not the order slots were taken: a restored engine holds the
        // same contacts in another order and must decide the same.
        let mut held = self.agents[&id].held.clone();
        held.sort_unstable();
        for c in &held {
            if let ContactState::Offered { offer, .. } = self.contacts[c].state {
                self.end_offer(offer, OfferOutcome::Withdrawn, true, out);
            }
        }
        let reserved: Vec<ContactId> = self.agents[&id].reserved.iter().map(|e| e.1).collect();
        for c in reserved {
            self.repool(c);
        }
        if presence == Presence::Offline && self.policy.on_offline == OfflineBehaviour::Requeue {
            for c in held {
                match self.contacts.get(&c).map(|c| c.state) {
                    Some(ContactState::Assigned { .. }) => {
                        self.release_slot(id, c);
                        let contact = self.contacts.get_mut(&c).expect("held contact");
                        contact.state = ContactState::Waiting;
                        contact.announce = true;
                        out.push(Decision::Requeued {
                            contact: c,
                            agent: id,
                            reason: RequeueReason::AgentOffline,
                        });
                        self.enter_waiting(c);
                    }
                    Some(ContactState::WrapUp { .. }) => {
                        self.close(c, CloseReason::AgentOffline, out)
                    }
                    _ => {}
                }
            }
        }
    }

    // ----- time ------------------------------------------------------------------------

    fn set_now(&mut self, now: Time) {
        if now > self.now {
            self.now = now;
        }
        let horizon = self.policy.sticky.remember_for;
        while let Some((closed_at, _)) = self.forget.front() {
            if *closed_at + horizon > self.now {
                break;
            }
            let (closed_at, customer) = self.forget.pop_front().expect("front exists");
            if self
                .last_owner
                .get(&customer)
                .is_some_and(|e| e.1 == closed_at)
            {
                self.last_owner.remove(&customer);
            }
        }
    }

    /// Fires timers due at or before `now`, in order, each at its own instant.
    fn fire_due(&mut self, now: Time, out: &mut Vec<Decision>) {
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.set_now(at);
            match timer {
                Timer::OfferExpiry(offer) => {
                    if let Some(pending) = self.offers.get(&offer).copied() {
                        self.end_offer(offer, OfferOutcome::Expired, true, out);
                        self.count_miss(pending.agent, out);
                    }
                }
                Timer::Reclass(c) => {
                    if self.contacts.get(&c).is_some_and(|c| c.pool.is_some()) {
                        self.repool(c);
                    }
                }
                Timer::WrapUpEnd(c) => {
                    let due = self.contacts.get(&c).is_some_and(
                        |c| matches!(c.state, ContactState::WrapUp { until, .. } if until == at),
                    );
                    if due {
                        self.close(c, CloseReason::WrapUpEnded, out);
                    }
                }
            }
        }
        self.set_now(now);
    }

    fn count_miss(&mut self, id: AgentId, out: &mut Vec<Decision>) {
        let limit = self.policy.max_missed_offers;
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        agent.missed += 1;
        if limit > 0 && agent.missed >= limit && agent.presence == Presence::Available {
            out.push(Decision::PresenceChanged {
                agent: id,
                presence: Presence::Away,
                reason: PresenceReason::MissedOffers,
            });
            self.set_presence(id, Presence::Away, out);
        }
    }

    /// When the contact's eligibility next widens: sticky reservation ends, preferred
    /// skills stop counting, or overflow teams join.
    fn next_relax(&self, c: &Contact) -> Option<Time> {
        let now = self.now;
        let sticky = c.sticky.map(|(_, until)| until);
        let preferred = (!c.preferred.is_empty()).then_some(c.preferred_until);
        [sticky, preferred, c.overflow_at]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .min()
    }

    // ----- pools -----------------------------------------------------------------------

    /// Where a waiting contact belongs at the current instant.
    fn route(&self, c: &Contact) -> RouteKey {
        let now = self.now;
        let reserved_ok = |agent: AgentId| {
            !c.declined.contains(&agent)
                && self
                    .agents
                    .get(&agent)
                    .is_some_and(|a| a.presence == Presence::Available && a.caps.get(c.channel) > 0)
        };
        if let Some(agent) = c.target.filter(|a| reserved_ok(*a)) {
            return RouteKey::Reserved(agent);
        }
        if let Some((agent, _)) = c
            .sticky
            .filter(|(a, until)| now < *until && reserved_ok(*a))
        {
            return RouteKey::Reserved(agent);
        }
        let mut skills = c.required;
        if now < c.preferred_until {
            skills = skills.union(c.preferred);
        }
        let mut teams = c.teams;
        if c.overflow_at.is_some_and(|at| now >= at) {
            teams = teams.union(c.overflow_teams);
        }
        RouteKey::Class(ClassKey {
            channel: c.channel,
            skills,
            teams,
        })
    }

    /// Puts a contact whose state is `Waiting` into its pool and schedules its next
    /// relaxation.
    fn enter_waiting(&mut self, id: ContactId) {
        let c = &self.contacts[&id];
        let route = self.route(c);
        // A reservation that no longer holds is dropped for good.
        let keep = |a: AgentId| route == RouteKey::Reserved(a);
        let (target, sticky) = (
            c.target.filter(|a| keep(*a)),
            c.sticky.filter(|(a, _)| keep(*a)),
        );
        let key = (c.deadline, id);
        let pool = match route {
            RouteKey::Reserved(agent) => {
                self.agents
                    .get_mut(&agent)
                    .expect("reserved agent")
                    .reserved
                    .insert(key);
                Pool::Reserved(agent)
            }
            RouteKey::Class(k) => {
                let class = self.class_id(k);
                self.classes[class as usize].waiting.insert(key);
                Pool::Class(class)
            }
        };
        let c = self.contacts.get_mut(&id).expect("contact exists");
        c.target = target;
        c.sticky = sticky;
        c.pool = Some(pool);
        c.state = ContactState::Waiting;
        self.waiting += 1;
        let c = &self.contacts[&id];
        if let Some(at) = self.next_relax(c) {
            self.timers.insert((at, Timer::Reclass(id)));
        }
        self.dirty_contacts.push(id);
    }

    /// Takes a waiting contact out of its pool.
    fn leave_waiting(&mut self, id: ContactId) {
        let c = self.contacts.get_mut(&id).expect("contact exists");
        let key = (c.deadline, id);
        match c.pool.take() {
            Some(Pool::Reserved(agent)) => {
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.reserved.remove(&key);
                }
            }
            Some(Pool::Class(class)) => {
                self.classes[class as usize].waiting.remove(&key);
            }
            None => return,
        }
        self.waiting -= 1;
    }

    /// Moves a waiting contact to the pool it belongs in now, if that changed.
    fn repool(&mut self, id: ContactId) {
        let c = &self.contacts[&id];
        let current = match c.pool {
            Some(Pool::Reserved(a)) => RouteKey::Reserved(a),
            Some(Pool::Class(k)) => RouteKey::Class(self.classes[k as usize].key),
            None => return,
        };
        if self.route(c) != current {
            self.leave_waiting(id);
            self.contacts.get_mut(&id).expect("contact exists").announce = true;
            self.enter_waiting(id);
        } else if let Some(at) = self.next_relax(c) {
            self.timers.insert((at, Timer::Reclass(id)));
        }
    }

    /// The class for `key`, created on first use with every matching agent indexed.
    fn class_id(&mut self, key: ClassKey) -> ClassId {
        if let Some(id) = self.class_ids.get(&key) {
            return *id;
        }
        let id = self.classes.len() as ClassId;
        let mut class = Class {
            key,
            waiting: BTreeSet::new(),
            free: BTreeSet::new(),
            members: 0,
            available: 0,
        };
        // Only groups holding the class's rarest skill can match.
        let rarest = key
            .skills
            .iter()
            .min_by_key(|s| self.skill_groups[s.0 as usize].len());
        let candidates: Box<dyn Iterator<Item = &GroupKey>> = match rarest {
            Some(s) => Box::new(self.skill_groups[s.0 as usize].iter()),
            None => Box::new(self.groups.keys()),
        };
        for group in candidates {
            let (skills, teams, channels) = *group;
            if !class_admits(&key, skills, teams, channels) {
                continue;
            }
            for m in &self.groups[group] {
                let agent = self.agents.get_mut(m).expect("grouped agent");
                let score = agent.score(key.skills);
                agent.classes.push((id, score));
                class.members += 1;
                if agent.presence == Presence::Available {
                    class.available += 1;
                }
                if agent.indexed.free[key.channel.index()] {
                    class.free.insert(rank(agent.id, score, &agent.indexed));
                }
            }
        }
        self.classes.push(class);
        self.class_ids.insert(key, id);
        id
    }

    /// Adds an agent to the classes and counters its profile matches.
    fn join_classes(&mut self, id: AgentId) {
        let agent = self.agents.get_mut(&id).expect("agent exists");
        let channels = served(&agent.caps);
        let available = agent.presence == Presence::Available;
        let group = (agent.skills, agent.teams, channels);
        let members = self.groups.entry(group).or_default();
        if members.is_empty() {
            for s in agent.skills.iter() {
                self.skill_groups[s.0 as usize].push(group);
            }
        }
        members.push(id);
        for s in agent.skills.iter() {
            self.skill_counts[s.0 as usize][0] += 1;
            self.skill_counts[s.0 as usize][1] += u32::from(available);
        }
        agent.classes.clear();
        for (i, class) in self.classes.iter_mut().enumerate() {
            if class_admits(&class.key, agent.skills, agent.teams, channels) {
                agent
                    .classes
                    .push((i as ClassId, agent.score(class.key.skills)));
                class.members += 1;
                class.available += u32::from(available);
            }
        }
    }

    /// Removes an agent from its classes, group and counters (before a profile change).
    fn leave_classes(&mut self, id: AgentId, presence: Presence) {
        let agent = self.agents.get_mut(&id).expect("agent exists");
        let old = agent.indexed;
        agent.indexed = Indexed::default();
        let available = u32::from(presence == Presence::Available);
        for &(c, score) in &agent.classes {
            let class = &mut self.classes[c as usize];
            if old.free[class.key.channel.index()] {
                class.free.remove(&rank(id, score, &old));
            }
            class.members -= 1;
            class.available -= available;
        }
        agent.classes.clear();
        for s in agent.skills.iter() {
            self.skill_counts[s.0 as usize][0] -= 1;
            self.skill_counts[s.0 as usize][1] -= available;
        }
        let group = (agent.skills, agent.teams, served(&agent.caps));
        if let Some(members) = self.groups.get_mut(&group) {
            members.retain(|m| *m != id);
            if members.is_empty() {
                self.groups.remove(&group);
                for s in group.0.iter() {
                    self.skill_groups[s.0 as usize].retain(|g| *g != group);
                }
            }
        }
    }

    /// Brings the agent's entries in the classes' `free` sets in line with its state.
    fn refresh(&mut self, id: AgentId) {
        let policy = &self.policy;
        let agent = self.agents.get_mut(&id).expect("agent exists");
        let mut now = Indexed {
            free: [false; Channel::COUNT],
            load_ppm: load_ppm(&agent.load, &agent.caps),
            idle_since: agent.idle_since,
        };
        for c in Channel::ALL {
            now.free[c.index()] =
                has_free_slot(policy, agent.presence, &agent.caps, &agent.load, c);
        }
        let old = agent.indexed;
        if old == now {
            return;
        }
        for &(c, score) in &agent.classes {
            let class = &mut self.classes[c as usize];
            let ch = class.key.channel.index();
            let (was, is) = (old.free[ch], now.free[ch]);
            if was && is && old.load_ppm == now.load_ppm && old.idle_since == now.idle_since {
                continue;
            }
            if was {
                class.free.remove(&rank(id, score, &old));
            }
            if is {
                class.free.insert(rank(id, score, &now));
            }
        }
        agent.indexed = now;
    }

    fn mark_agent(&mut self, id: AgentId) {
        let agent = self.agents.get_mut(&id).expect("agent exists");
        if !agent.dirty {
            agent.dirty = true;
            self.dirty_agents.push(id);
        }
    }

    fn agent_free(&self, agent: &Agent, channel: Channel) -> bool {
        agent.indexed.free[channel.index()]
    }

    // ----- matching ----------------------------------------------------------------------

    /// The earliest-deadline waiting contact this agent may take now.
    fn best_contact_for(&self, id: AgentId) -> Option<(Time, ContactId)> {
        let agent = self.agents.get(&id)?;
        if agent.presence != Presence::Available {
            return None;
        }
        let mut best: Option<(Time, ContactId)> = agent
            .reserved
            .iter()
            .find(|(_, c)| self.agent_free(agent, self.contacts[c].channel))
            .copied();
        for &(c, _) in &agent.classes {
            let class = &self.classes[c as usize];
            if !self.agent_free(agent, class.key.channel) {
                continue;
            }
            let first = class
                .waiting
                .iter()
                .take_while(|entry| best.is_none_or(|b| **entry < b))
                .find(|(_, c)| !self.contacts[c].declined.contains(&id));
            if let Some(entry) = first {
                best = Some(*entry);
            }
        }
        best
    }

    /// The best eligible free agent for a waiting contact.
    fn best_agent_for(&self, id: ContactId) -> Option<AgentId> {
        let c = &self.contacts[&id];
        match c.pool? {
            Pool::Reserved(agent) => {
                let a = &self.agents[&agent];
                self.agent_free(a, c.channel).then_some(agent)
            }
            Pool::Class(k) => self.classes[k as usize]
                .free
                .iter()
                .find(|r| !c.declined.contains(&r.agent))
                .map(|r| r.agent),
        }
    }

    fn explain(&self, id: ContactId, winner: AgentId) -> AssignExplanation {
        let c = &self.contacts[&id];
        let a = &self.agents[&winner];
        match c.pool.expect("waiting contact") {
            Pool::Reserved(_) => AssignExplanation {
                route: Route::Reserved,
                eligible: 1,
                winner: rank(winner, a.score(c.required), &a.indexed).candidate(),
                runners_up: Vec::new(),
                decided_by: Criterion::Reserved,
            },
            Pool::Class(k) => {
                let class = &self.classes[k as usize];
                let mut eligible = class
                    .free
                    .iter()
                    .filter(|r| !c.declined.contains(&r.agent))
                    .map(RankKey::candidate);
                let winner = eligible.next().expect("winner is eligible");
                let runners_up: Vec<_> = eligible.by_ref().take(2).collect();
                let excluded = c
                    .declined
                    .iter()
                    .filter(|d| {
                        self.agents.get(d).is_some_and(|a| {
                            a.indexed.free[class.key.channel.index()]
                                && a.classes.iter().any(|(ci, _)| *ci == k)
                        })
                    })
                    .count();
                AssignExplanation {
                    route: Route::Skills {
                        skills: class.key.skills,
                        teams: class.key.teams,
                    },
                    eligible: (class.free.len() - excluded) as u32,
                    decided_by: runners_up.first().map_or(Criterion::OnlyCandidate, |next| {
                        Criterion::between(&winner, next)
                    }),
                    winner,
                    runners_up,
                }
            }
        }
    }

    fn make_offer(&mut self, id: ContactId, agent: AgentId, out: &mut Vec<Decision>) {
        let explanation = Box::new(self.explain(id, agent));
        self.leave_waiting(id);
        let offer = OfferId(self.next_offer);
        self.next_offer += 1;
        let now = self.now;
        let c = self.contacts.get_mut(&id).expect("contact exists");
        c.state = ContactState::Offered { offer, agent };
        c.announce = false;
        let expires_at = now + self.policy.channel(c.channel).offer_timeout;
        self.agents
            .get_mut(&agent)
            .expect("agent exists")
            .idle_since = now;
        self.hold_offer(offer, id, agent, expires_at);
        out.push(Decision::Offered {
            offer,
            contact: id,
            agent,
            expires_at,
            explanation,
        });
    }

    /// Ends a pending offer and frees the agent's slot. With `requeue` the contact waits
    /// again; without, the caller is closing or abandoning it.
    fn end_offer(
        &mut self,
        offer: OfferId,
        outcome: OfferOutcome,
        requeue: bool,
        out: &mut Vec<Decision>,
    ) {
        let pending = self.offers.remove(&offer).expect("pending offer");
        let (id, agent) = (pending.contact, pending.agent);
        self.release_slot(agent, id);
        let c = self.contacts.get_mut(&id).expect("offered contact");
        if outcome != OfferOutcome::Withdrawn {
            c.declined.push(agent);
        }
        c.state = ContactState::Waiting;
        c.announce = true;
        out.push(Decision::OfferEnded {
            offer,
            contact: id,
            agent,
            outcome,
        });
        if requeue {
            self.enter_waiting(id);
        }
    }

    /// Folds a finished handling (acceptance to wrap-up or close) into its queue and
    /// channel's recent handling time.
    fn record_handling(&mut self, id: ContactId) {
        let c = &self.contacts[&id];
        let Some(at) = c.assigned_at else {
            return;
        };
        let took = self.now.since(at).as_millis() as u64;
        self.handling
            .entry((c.queue, c.channel))
            .and_modify(|mean| *mean = (*mean * 9 + took) / 10)
            .or_insert(took);
    }

    /// Records a pending offer: the agent's slot, the offer, its expiry timer.
    fn hold_offer(&mut self, offer: OfferId, contact: ContactId, agent: AgentId, expires_at: Time) {
        self.take_slot(agent, contact);
        self.offers.insert(
            offer,
            PendingOffer {
                contact,
                agent,
                expires_at,
            },
        );
        self.timers.insert((expires_at, Timer::OfferExpiry(offer)));
    }

    /// Gives `contact` a slot of `agent`.
    fn take_slot(&mut self, agent: AgentId, contact: ContactId) {
        let channel = self.contacts[&contact].channel;
        let exclusive = self.policy.channel(channel).exclusive;
        let a = self.agents.get_mut(&agent).expect("agent exists");
        a.load[channel.index()] += 1;
        a.total_load += 1;
        a.exclusive_load += u16::from(exclusive);
        a.held.push(contact);
        self.refresh(agent);
    }

    /// Frees the slot `contact` held with `agent`.
    fn release_slot(&mut self, agent: AgentId, contact: ContactId) {
        let channel = self.contacts[&contact].channel;
        let exclusive = self.policy.channel(channel).exclusive;
        let a = self.agents.get_mut(&agent).expect("agent exists");
        a.load[channel.index()] -= 1;
        a.total_load -= 1;
        a.exclusive_load -= u16::from(exclusive);
        a.held.retain(|c| *c != contact);
        self.refresh(agent);
        self.mark_agent(agent);
    }

    fn announce_wait(&mut self, id: ContactId, out: &mut Vec<Decision>) {
        let c = self.contacts.get_mut(&id).expect("contact exists");
        if !std::mem::take(&mut c.announce) {
            return;
        }
        if let Some(reason) = self.wait_reason(id) {
            out.push(Decision::Waiting {
                contact: id,
                reason,
            });
        }
    }
}

fn rank(agent: AgentId, score: u16, indexed: &Indexed) -> RankKey {
    RankKey {
        proficiency: Reverse(score),
        load_ppm: indexed.load_ppm,
        idle_since: indexed.idle_since,
        agent,
    }
}

/// Bitmask of the channels an agent serves (cap above zero).
fn served(caps: &Caps) -> u8 {
    Channel::ALL
        .iter()
        .filter(|c| caps.get(**c) > 0)
        .fold(0, |mask, c| mask | 1 << c.index())
}

fn class_admits(key: &ClassKey, skills: SkillSet, teams: TeamSet, channels: u8) -> bool {
    skills.is_superset(key.skills)
        && key.teams.admits(teams)
        && channels & (1 << key.channel.index()) != 0
}
