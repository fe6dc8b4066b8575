//! Domain vocabulary: identifiers, channels, urgency, presence, skill and team sets, time.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A contact's identifier, given by the caller (the daemon allocates them monotonically, so
/// the identifier also breaks ties between contacts with the same deadline: older first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContactId(pub u64);

/// An agent's identifier, given by the caller; the daemon maps its own agent names to these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(pub u32);

/// An offer's identifier, allocated by the engine in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OfferId(pub u64);

/// Index of a queue in [`crate::Policy::queues`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QueueId(pub u16);

impl fmt::Display for ContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "contact {}", self.0)
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "agent {}", self.0)
    }
}

impl fmt::Display for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "offer {}", self.0)
    }
}

/// A point in time: milliseconds since the Unix epoch. The engine never reads a clock; every
/// call carries the current `Time`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Time(pub u64);

impl Time {
    /// The instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Time(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, rhs: Duration) -> Time {
        let ms = u64::try_from(rhs.as_millis()).unwrap_or(u64::MAX);
        Time(self.0.saturating_add(ms))
    }
}

impl Sub<Duration> for Time {
    type Output = Time;
    fn sub(self, rhs: Duration) -> Time {
        let ms = u64::try_from(rhs.as_millis()).unwrap_or(u64::MAX);
        Time(self.0.saturating_sub(ms))
    }
}

/// The medium a contact arrives on. Each has its own caps, targets and offer timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Chat,
    Voice,
    Social,
    Sms,
}

impl Channel {
    /// Number of channels; arrays indexed by channel have this length.
    pub const COUNT: usize = 5;
    /// Every channel, in index order.
    pub const ALL: [Channel; Channel::COUNT] = [
        Channel::Email,
        Channel::Chat,
        Channel::Voice,
        Channel::Social,
        Channel::Sms,
    ];

    /// Position of this channel in per-channel arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The lower-case name used in configs, APIs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Chat => "chat",
            Channel::Voice => "voice",
            Channel::Social => "social",
            Channel::Sms => "sms",
        }
    }

    /// Parses a lower-case channel name.
    pub fn parse(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent a contact is; with the channel and queue it selects the service-level target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Low,
    Normal,
    High,
    Urgent,
}

impl Urgency {
    /// Number of urgency levels.
    pub const COUNT: usize = 4;
    /// Every urgency, least urgent first.
    pub const ALL: [Urgency; Urgency::COUNT] = [
        Urgency::Low,
        Urgency::Normal,
        Urgency::High,
        Urgency::Urgent,
    ];

    /// Position of this urgency in per-urgency arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The lower-case name used in configs, APIs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
            Urgency::Urgent => "urgent",
        }
    }
}

impl fmt::Display for Urgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an agent takes new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    /// Takes offers up to their caps.
    Available,
    /// Keeps their open work but is offered nothing new.
    Away,
    /// Gone; their open work is kept or re-queued as the policy says.
    Offline,
}

/// A skill's number. The daemon maps skill names to numbers below [`SkillId::LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SkillId(pub u8);

impl SkillId {
    /// How many distinct skills the engine can hold.
    pub const LIMIT: usize = 128;
}

/// A team's number. The daemon maps team names to numbers below [`TeamId::LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TeamId(pub u8);

impl TeamId {
    /// How many distinct teams the engine can hold.
    pub const LIMIT: usize = 64;
}

/// A set of skills as a bitset, so subset tests cost one instruction.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SkillSet(pub u128);

impl SkillSet {
    /// The empty set.
    pub const EMPTY: SkillSet = SkillSet(0);

    /// Builds a set from skill numbers; numbers at or above [`SkillId::LIMIT`] are a caller
    /// bug and are rejected by the engine's validation, so here they are ignored.
    pub fn of(skills: impl IntoIterator<Item = SkillId>) -> SkillSet {
        let mut set = SkillSet::EMPTY;
        for s in skills {
            set.insert(s);
        }
        set
    }

    /// Adds a skill.
    pub fn insert(&mut self, skill: SkillId) {
        if (skill.0 as usize) < SkillId::LIMIT {
            self.0 |= 1u128 << skill.0;
        }
    }

    /// Whether the set holds `skill`.
    pub fn contains(self, skill: SkillId) -> bool {
        (skill.0 as usize) < SkillId::LIMIT && self.0 & (1u128 << skill.0) != 0
    }

    /// Whether every skill of `other` is in `self`.
    pub fn is_superset(self, other: SkillSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// The skills in either set.
    pub fn union(self, other: SkillSet) -> SkillSet {
        SkillSet(self.0 | other.0)
    }

    /// The skills of `self` that are not in `other`.
    pub fn difference(self, other: SkillSet) -> SkillSet {
        SkillSet(self.0 & !other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of skills in the set.
    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// The skills in increasing order.
    pub fn iter(self) -> impl Iterator<Item = SkillId> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros();
            bits &= bits - 1;
            Some(SkillId(i as u8))
        })
    }
}

/// A set of teams as a bitset. For a contact, the empty set means "any team".
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct TeamSet(pub u64);

impl TeamSet {
    /// The empty set.
    pub const EMPTY: TeamSet = TeamSet(0);

    /// Builds a set from team numbers (numbers at or above [`TeamId::LIMIT`] are ignored).
    pub fn of(teams: impl IntoIterator<Item = TeamId>) -> TeamSet {
        let mut set = TeamSet::EMPTY;
        for t in teams {
            if (t.0 as usize) < TeamId::LIMIT {
                set.0 |= 1u64 << t.0;
            }
        }
        set
    }

    /// Whether the set holds `team`.
    pub fn contains(self, team: TeamId) -> bool {
        (team.0 as usize) < TeamId::LIMIT && self.0 & (1u64 << team.0) != 0
    }

    /// Whether the sets share a team.
    pub fn intersects(self, other: TeamSet) -> bool {
        self.0 & other.0 != 0
    }

    /// The teams in either set.
    pub fn union(self, other: TeamSet) -> TeamSet {
        TeamSet(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// A contact restricted to `self` (empty: unrestricted) may go to an agent in `agent`.
    pub fn admits(self, agent: TeamSet) -> bool {
        self.is_empty() || self.intersects(agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skill_sets_compare_as_sets() {
        let ab = SkillSet::of([SkillId(1), SkillId(100)]);
        let a = SkillSet::of([SkillId(1)]);
        assert!(ab.is_superset(a));
        assert!(!a.is_superset(ab));
        assert!(ab.is_superset(SkillSet::EMPTY));
        assert_eq!(
            ab.iter().collect::<Vec<_>>(),
            vec![SkillId(1), SkillId(100)]
        );
        assert_eq!(ab.difference(a), SkillSet::of([SkillId(100)]));
        assert_eq!(ab.len(), 2);
    }

    #[test]
    fn an_empty_team_restriction_admits_everyone() {
        let support = TeamSet::of([TeamId(3)]);
        assert!(TeamSet::EMPTY.admits(support));
        assert!(TeamSet::EMPTY.admits(TeamSet::EMPTY));
        assert!(support.admits(TeamSet::of([TeamId(3), TeamId(4)])));
        assert!(!support.admits(TeamSet::of([TeamId(4)])));
    }

    #[test]
    fn time_arithmetic_saturates() {
        let t = Time::from_millis(1_000);
        assert_eq!(t + Duration::from_secs(2), Time(3_000));
        assert_eq!(t - Duration::from_secs(2), Time(0));
        assert_eq!(t.since(Time(4_000)), Duration::ZERO);
        assert_eq!(Time(4_000).since(t), Duration::from_secs(3));
    }

    #[test]
    fn channel_names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
            assert_eq!(Channel::ALL[c.index()], c);
        }
        assert_eq!(Channel::parse("fax"), None);
    }
}
