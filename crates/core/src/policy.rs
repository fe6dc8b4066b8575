//! The routing policy: service-level targets, offer timeouts, exclusivity, wrap-up, queues,
//! relaxation, sticky routing and what happens when an agent goes offline.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Channel, QueueId, TeamSet, Urgency};

/// Everything the engine needs to know to route; the daemon builds it from the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Per-channel rules, indexed by [`Channel::index`].
    pub channels: [ChannelPolicy; Channel::COUNT],
    /// The queues, indexed by [`QueueId`]. There is always at least one.
    pub queues: Vec<QueuePolicy>,
    /// Returning customers and their previous owner.
    pub sticky: StickyPolicy,
    /// After this many offers in a row expire unanswered, the agent is set away (0: never).
    pub max_missed_offers: u32,
    /// What happens to an agent's open conversations when they go offline.
    pub on_offline: OfflineBehaviour,
}

/// Rules for one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelPolicy {
    /// Time to first assignment, per urgency (indexed by [`Urgency::index`]).
    pub targets: [Duration; Urgency::COUNT],
    /// How long an agent has to accept an offer before it goes to someone else.
    pub offer_timeout: Duration,
    /// An agent with work on an exclusive channel (voice) is offered nothing else.
    pub exclusive: bool,
    /// How long wrap-up holds the agent's slot before the contact closes by itself.
    pub wrap_up: Duration,
}

/// A named line of contacts with its own targets and the teams it may use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuePolicy {
    /// The queue's name, used in reports.
    pub name: String,
    /// Per channel and urgency, a target that replaces the channel's own.
    pub targets: [[Option<Duration>; Urgency::COUNT]; Channel::COUNT],
    /// The teams whose agents may serve this queue; empty means every team.
    pub teams: TeamSet,
    /// Teams that become eligible once a contact has waited `overflow_after`.
    pub overflow_teams: TeamSet,
    /// How long a contact waits before the overflow teams may take it.
    pub overflow_after: Duration,
    /// How long a contact's preferred skills are required before only required skills count.
    pub preferred_for: Duration,
}

/// Sticky routing: a returning customer waits a short while for the agent who served them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StickyPolicy {
    /// How long after a conversation closes its owner is remembered for the customer.
    pub remember_for: Duration,
    /// How long a new contact is reserved for that owner before anyone else may have it
    /// (zero turns sticky routing off).
    pub wait: Duration,
}

/// What happens to an agent's open conversations when they go offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflineBehaviour {
    /// The agent keeps ownership; follow-ups wait for them.
    Keep,
    /// Assigned contacts go back to waiting with their original arrival; wrap-ups close.
    Requeue,
}

impl Policy {
    /// The service-level target for a contact: the queue's override if it has one, else the
    /// channel's.
    pub fn target(&self, queue: QueueId, channel: Channel, urgency: Urgency) -> Duration {
        self.queues
            .get(queue.0 as usize)
            .and_then(|q| q.targets[channel.index()][urgency.index()])
            .unwrap_or(self.channels[channel.index()].targets[urgency.index()])
    }

    /// The rules for `channel`.
    pub fn channel(&self, channel: Channel) -> &ChannelPolicy {
        &self.channels[channel.index()]
    }

    /// The queue `id`, if it exists.
    pub fn queue(&self, id: QueueId) -> Option<&QueuePolicy> {
        self.queues.get(id.0 as usize)
    }

    /// Looks a queue up by name.
    pub fn queue_id(&self, name: &str) -> Option<QueueId> {
        self.queues
            .iter()
            .position(|q| q.name == name)
            .map(|i| QueueId(i as u16))
    }
}

/// A policy the engine cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy has no queue; at least one is needed")]
    NoQueues,
    #[error("the policy has {0} queues; at most 65535 are supported")]
    TooManyQueues(usize),
    #[error("queue names must be unique: {0:?} appears twice")]
    DuplicateQueue(String),
    #[error("channel {0}: offer_timeout must be greater than zero")]
    ZeroOfferTimeout(Channel),
}

impl Policy {
    /// Checks what the types cannot: at least one queue, unique names, non-zero timeouts.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.queues.is_empty() {
            return Err(PolicyError::NoQueues);
        }
        if self.queues.len() > u16::MAX as usize {
            return Err(PolicyError::TooManyQueues(self.queues.len()));
        }
        for (i, q) in self.queues.iter().enumerate() {
            if self.queues[..i].iter().any(|p| p.name == q.name) {
                return Err(PolicyError::DuplicateQueue(q.name.clone()));
            }
        }
        for c in Channel::ALL {
            if self.channel(c).offer_timeout.is_zero() {
                return Err(PolicyError::ZeroOfferTimeout(c));
            }
        }
        Ok(())
    }
}

impl ChannelPolicy {
    /// A channel whose targets are `normal` scaled per urgency: low ×2, high ÷2, urgent ÷4.
    pub fn scaled(normal: Duration, offer_timeout: Duration, exclusive: bool) -> ChannelPolicy {
        ChannelPolicy {
            targets: [normal * 2, normal, normal / 2, normal / 4],
            offer_timeout,
            exclusive,
            wrap_up: Duration::ZERO,
        }
    }
}

impl QueuePolicy {
    /// A queue open to every team with the channels' own targets and no relaxation steps.
    pub fn open(name: impl Into<String>) -> QueuePolicy {
        QueuePolicy {
            name: name.into(),
            targets: [[None; Urgency::COUNT]; Channel::COUNT],
            teams: TeamSet::EMPTY,
            overflow_teams: TeamSet::EMPTY,
            overflow_after: Duration::ZERO,
            preferred_for: Duration::ZERO,
        }
    }
}

impl Default for Policy {
    /// Contact-centre defaults: voice answered in 20 s and exclusive, chat in 60 s, social in
    /// 15 min, SMS in 15 min, email in 4 h; one open queue; no stickiness; agents set away
    /// after 3 missed offers; offline agents keep their conversations.
    fn default() -> Self {
        let s = Duration::from_secs;
        let mut voice = ChannelPolicy::scaled(s(20), s(15), true);
        voice.wrap_up = s(30);
        Policy {
            channels: [
                ChannelPolicy::scaled(s(4 * 3600), s(120), false),
                ChannelPolicy::scaled(s(60), s(30), false),
                voice,
                ChannelPolicy::scaled(s(15 * 60), s(60), false),
                ChannelPolicy::scaled(s(15 * 60), s(60), false),
            ],
            queues: vec![QueuePolicy::open("default")],
            sticky: StickyPolicy {
                remember_for: s(24 * 3600),
                wait: Duration::ZERO,
            },
            max_missed_offers: 3,
            on_offline: OfflineBehaviour::Keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_override_replaces_the_channel_target() {
        let mut policy = Policy::default();
        let mut vip = QueuePolicy::open("vip");
        vip.targets[Channel::Email.index()][Urgency::Normal.index()] =
            Some(Duration::from_secs(600));
        policy.queues.push(vip);
        let vip = policy.queue_id("vip").unwrap();
        assert_eq!(
            policy.target(vip, Channel::Email, Urgency::Normal),
            Duration::from_secs(600)
        );
        assert_eq!(
            policy.target(vip, Channel::Email, Urgency::High),
            Duration::from_secs(2 * 3600)
        );
        assert_eq!(
            policy.target(QueueId(0), Channel::Voice, Urgency::Normal),
            Duration::from_secs(20)
        );
    }
}
