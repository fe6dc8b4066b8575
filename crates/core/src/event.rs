//! What goes into the engine ([`Event`]) and what comes out ([`Decision`]), with the reasons
//! a user sees for each decision.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{
    AgentId, Channel, ContactId, OfferId, Presence, QueueId, SkillId, SkillSet, TeamId, TeamSet,
    Time, Urgency,
};

/// An input to the engine. Each is applied at the instant passed with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Creates an agent (offline) or replaces an existing agent's profile.
    UpsertAgent {
        agent: AgentId,
        profile: AgentProfile,
    },
    /// An agent changes presence.
    SetPresence { agent: AgentId, presence: Presence },
    /// A new contact arrives (threading happened before: its conversation is not open).
    Arrive(NewContact),
    /// The offered agent accepts and becomes the owner.
    Accept { offer: OfferId, agent: AgentId },
    /// The offered agent declines; the contact is never offered to them again.
    Decline { offer: OfferId, agent: AgentId },
    /// The owner hands the contact on; it waits again with its original arrival.
    Transfer {
        contact: ContactId,
        to: TransferTarget,
    },
    /// The owner is done with the customer; the slot stays held for the channel's wrap-up.
    WrapUp { contact: ContactId },
    /// The contact is finished, from any open state.
    Close { contact: ContactId },
    /// The customer left before an agent took the contact.
    Abandon { contact: ContactId },
}

/// Who an agent is and what they can take.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AgentProfile {
    /// Teams the agent belongs to.
    pub teams: TeamSet,
    /// Skills with proficiency 1..=10.
    pub skills: Vec<(SkillId, u8)>,
    /// How much concurrent work the agent takes.
    pub caps: Caps,
}

/// Concurrency caps. A channel with cap 0 is one the agent does not serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Caps {
    /// Per channel, indexed by [`Channel::index`].
    pub per_channel: [u16; Channel::COUNT],
    /// Across all channels, if set.
    pub total: Option<u16>,
}

impl Caps {
    /// Caps with `cap` on each listed channel and no total.
    pub fn of(caps: impl IntoIterator<Item = (Channel, u16)>) -> Caps {
        let mut out = Caps::default();
        for (c, n) in caps {
            out.per_channel[c.index()] = n;
        }
        out
    }

    /// The cap for one channel.
    pub fn get(&self, channel: Channel) -> u16 {
        self.per_channel[channel.index()]
    }
}

/// A contact as classified by the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewContact {
    /// Unique, increasing in arrival order.
    pub id: ContactId,
    /// The conversation key (email thread, chat session, caller, social thread).
    pub conversation: Arc<str>,
    /// The customer key, for sticky routing.
    pub customer: Arc<str>,
    pub channel: Channel,
    pub urgency: Urgency,
    pub queue: QueueId,
    /// Skills every eligible agent must have.
    pub required: SkillSet,
    /// Skills required only until the queue's `preferred_for` has passed.
    pub preferred: SkillSet,
    /// When the contact reached Switchboard; the deadline counts from here.
    pub arrived_at: Time,
}

/// Where a transferred contact goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "to", rename_all = "snake_case")]
pub enum TransferTarget {
    /// Reserved for that agent until they take it, decline it or stop being available.
    Agent(AgentId),
    /// Any agent of the team, whatever their skills.
    Team(TeamId),
    /// Any agent with these skills, whatever their team.
    Skills(SkillSet),
}

/// An output of the engine, in the order things happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Decision {
    /// The contact is proposed to one agent until `expires_at`; the slot is held meanwhile.
    Offered {
        offer: OfferId,
        contact: ContactId,
        agent: AgentId,
        expires_at: Time,
        explanation: Box<AssignExplanation>,
    },
    /// An offer ended without acceptance; the contact waits again.
    OfferEnded {
        offer: OfferId,
        contact: ContactId,
        agent: AgentId,
        outcome: OfferOutcome,
    },
    /// The agent accepted and owns the contact.
    Assigned {
        contact: ContactId,
        agent: AgentId,
        offer: OfferId,
        /// From arrival to acceptance.
        waited: Duration,
        /// Whether it was accepted by its deadline.
        within_target: bool,
    },
    /// The contact waits, and why no agent could take it now.
    Waiting {
        contact: ContactId,
        reason: WaitReason,
    },
    /// The engine changed an agent's presence.
    PresenceChanged {
        agent: AgentId,
        presence: Presence,
        reason: PresenceReason,
    },
    /// An owned contact went back to waiting.
    Requeued {
        contact: ContactId,
        agent: AgentId,
        reason: RequeueReason,
    },
    /// Ownership left `from`; the contact waits for `to`.
    Transferred {
        contact: ContactId,
        from: AgentId,
        to: TransferTarget,
    },
    /// The owner is wrapping up until `until`.
    WrapUpStarted {
        contact: ContactId,
        agent: AgentId,
        until: Time,
    },
    /// Terminal: the contact is done.
    Closed {
        contact: ContactId,
        agent: Option<AgentId>,
        reason: CloseReason,
    },
    /// Terminal: the customer left before anyone took the contact.
    Abandoned {
        contact: ContactId,
        waited: Duration,
    },
}

/// How an offer ended, other than by acceptance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferOutcome {
    /// The agent said no.
    Declined,
    /// The agent did not answer in time.
    Expired,
    /// The engine took it back: the agent left, or the contact was abandoned or closed.
    Withdrawn,
}

/// Why the engine changed a presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceReason {
    /// Too many offers in a row expired unanswered.
    MissedOffers,
}

/// Why an owned contact went back to waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequeueReason {
    /// The owner went offline and the policy re-queues their work.
    AgentOffline,
}

/// Why a contact closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Someone closed it.
    Closed,
    /// Its wrap-up time ran out.
    WrapUpEnded,
    /// Its owner went offline during wrap-up and the policy re-queues work.
    AgentOffline,
}

/// Why a contact is waiting. `relaxes_at` says when its eligibility widens next, if ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitReason {
    pub kind: WaitKind,
    pub relaxes_at: Option<Time>,
}

/// The cause of a wait, from the most to the least fundamental.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitKind {
    /// Reserved for one agent (returning customer, or a transfer to an agent) who has no
    /// free slot.
    ReservedFor { agent: AgentId, until: Option<Time> },
    /// No agent at all has these skills.
    NoAgentWithSkills { missing: SkillSet },
    /// Agents have the skills, but none of them is in an admitted team and serves the channel.
    NoAgentInTeams { teams: TeamSet, channel: Channel },
    /// Matching agents exist but none is available; `unavailable_skills` are skills no
    /// available agent has.
    NoAgentAvailable {
        matching: u32,
        unavailable_skills: SkillSet,
    },
    /// Every available matching agent is at a cap.
    AllAtCapacity { available: u32 },
    /// Every matching agent with a free slot has declined or missed this contact.
    AllDeclined { free: u32 },
}

/// Why an agent got an offer: the candidates considered and what decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignExplanation {
    /// How the contact was routed.
    pub route: Route,
    /// Free, eligible agents at the moment of the decision.
    pub eligible: u32,
    /// The agent chosen and their ranking.
    pub winner: Candidate,
    /// The next best agents (at most two), best first.
    pub runners_up: Vec<Candidate>,
    /// The first rule of the ranking that separated the winner from the next best.
    pub decided_by: Criterion,
}

/// How a contact found its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Route {
    /// By skills and teams at the contact's current relaxation step.
    Skills { skills: SkillSet, teams: TeamSet },
    /// Reserved for one agent (sticky routing or transfer).
    Reserved,
}

/// An agent's standing in a ranking: higher proficiency, then lower load, then longer idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub agent: AgentId,
    /// Sum of the agent's proficiency over the contact's skills.
    pub proficiency: u16,
    /// Share of capacity in use, in millionths, summed over channels.
    pub load_ppm: u32,
    /// When the agent last received an offer or became available.
    pub idle_since: Time,
}

/// The rule that decided an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// Nobody else was eligible.
    OnlyCandidate,
    /// The contact was reserved for this agent.
    Reserved,
    Proficiency,
    LoadRatio,
    LongestIdle,
    /// Everything else equal: the lower agent id.
    AgentId,
}

/// Ordering of agents: smaller is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RankKey {
    pub(crate) proficiency: std::cmp::Reverse<u16>,
    pub(crate) load_ppm: u32,
    pub(crate) idle_since: Time,
    pub(crate) agent: AgentId,
}

impl RankKey {
    pub(crate) fn candidate(&self) -> Candidate {
        Candidate {
            agent: self.agent,
            proficiency: self.proficiency.0,
            load_ppm: self.load_ppm,
            idle_since: self.idle_since,
        }
    }
}

impl Criterion {
    /// The first ranking rule by which `winner` beats `next`.
    pub fn between(winner: &Candidate, next: &Candidate) -> Criterion {
        if winner.proficiency != next.proficiency {
            Criterion::Proficiency
        } else if winner.load_ppm != next.load_ppm {
            Criterion::LoadRatio
        } else if winner.idle_since != next.idle_since {
            Criterion::LongestIdle
        } else {
            Criterion::AgentId
        }
    }
}
