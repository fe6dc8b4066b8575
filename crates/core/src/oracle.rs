//! The naive router: the routing policy written as directly as possible, by scanning every
//! waiting contact against every agent. It shares no code with the engine's indexes and
//! reads the engine only through its public accessors, so the property tests can check the
//! engine's decisions against it, and the benchmark can show what the indexes save.

use crate::engine::{Agent, Contact, ContactState, Engine};
use crate::model::{AgentId, Channel, ContactId, Presence, SkillSet, Time};
use crate::policy::Policy;

/// An agent's state as the naive router tracks it while it simulates a dispatch.
#[derive(Debug, Clone)]
struct Seat<'a> {
    agent: &'a Agent,
    load: [u16; Channel::COUNT],
    idle_since: Time,
}

impl Seat<'_> {
    fn has_slot(&self, policy: &Policy, channel: Channel) -> bool {
        let caps = self.agent.caps();
        let total: u16 = self.load.iter().sum();
        let on_exclusive = Channel::ALL
            .into_iter()
            .any(|c| policy.channel(c).exclusive && self.load[c.index()] > 0);
        self.agent.presence() == Presence::Available
            && self.load[channel.index()] < caps.get(channel)
            && caps.total.is_none_or(|t| total < t)
            && !on_exclusive
    }

    fn load_ppm(&self) -> u32 {
        let caps = self.agent.caps();
        Channel::ALL
            .into_iter()
            .map(|c| {
                let (l, cap) = (u32::from(self.load[c.index()]), u32::from(caps.get(c)));
                let units = l * 1_000_000;
                units.checked_div(cap).unwrap_or(units)
            })
            .sum()
    }
}

/// Who may serve a waiting contact right now, by the policy's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// Only this agent (transfer target or previous owner).
    Only(AgentId),
    /// Anyone with these skills in an admitted team.
    Matching(SkillSet, crate::model::TeamSet),
}

fn wanted(engine: &Engine, c: &Contact) -> Wanted {
    let now = engine.now();
    let holds = |agent: AgentId| {
        !c.declined().contains(&agent)
            && engine.agent(agent).is_some_and(|a| {
                a.presence() == Presence::Available && a.caps().get(c.channel()) > 0
            })
    };
    if let Some(t) = c.target().filter(|t| holds(*t)) {
        return Wanted::Only(t);
    }
    if let Some((owner, until)) = c.sticky()
        && now < until
        && holds(owner)
    {
        return Wanted::Only(owner);
    }
    let skills = if now < c.preferred_until() {
        c.required().union(c.preferred())
    } else {
        c.required()
    };
    let teams = match c.overflow_at() {
        Some(at) if now >= at => c.teams().union(c.overflow_teams()),
        _ => c.teams(),
    };
    Wanted::Matching(skills, teams)
}

fn eligible(policy: &Policy, c: &Contact, want: Wanted, seat: &Seat<'_>) -> bool {
    let a = seat.agent;
    if c.declined().contains(&a.id()) || !seat.has_slot(policy, c.channel()) {
        return false;
    }
    match want {
        Wanted::Only(agent) => a.id() == agent,
        Wanted::Matching(skills, teams) => {
            a.skills().is_superset(skills) && (teams.is_empty() || teams.intersects(a.teams()))
        }
    }
}

/// Ranking key, smaller is better: proficiency (descending), load ratio, idle since, id.
fn rank(want: Wanted, seat: &Seat<'_>) -> (std::cmp::Reverse<u16>, u32, Time, AgentId) {
    let score = match want {
        Wanted::Only(_) => 0,
        Wanted::Matching(skills, _) => seat.agent.score(skills),
    };
    (
        std::cmp::Reverse(score),
        seat.load_ppm(),
        seat.idle_since,
        seat.agent.id(),
    )
}

/// The offers a dispatch should make from the engine's current state, in order: repeatedly
/// the earliest-deadline waiting contact that has any eligible agent, to its best one.
pub fn naive_dispatch(engine: &Engine) -> Vec<(ContactId, AgentId)> {
    let policy = engine.policy();
    let mut seats: Vec<Seat<'_>> = engine
        .agents()
        .map(|a| Seat {
            agent: a,
            load: Channel::ALL.map(|c| a.load(c)),
            idle_since: a.idle_since(),
        })
        .collect();
    seats.sort_by_key(|s| s.agent.id());
    let mut waiting: Vec<(&Contact, Wanted)> = engine
        .contacts()
        .filter(|c| c.state() == ContactState::Waiting)
        .map(|c| (c, wanted(engine, c)))
        .collect();
    waiting.sort_by_key(|(c, _)| (c.deadline(), c.id()));
    let mut offers = Vec::new();
    loop {
        let mut pick = None;
        for (i, (c, want)) in waiting.iter().enumerate() {
            let best = seats
                .iter()
                .enumerate()
                .filter(|(_, s)| eligible(policy, c, *want, s))
                .min_by_key(|(_, s)| rank(*want, s));
            if let Some((seat, _)) = best {
                pick = Some((i, seat));
                break;
            }
        }
        let Some((i, seat)) = pick else {
            return offers;
        };
        let (c, _) = waiting.remove(i);
        let s = &mut seats[seat];
        s.load[c.channel().index()] += 1;
        s.idle_since = engine.now();
        offers.push((c.id(), s.agent.id()));
    }
}

/// Checks what must hold in every state; returns the first violation found.
///
/// - every slot an agent holds belongs to exactly one open contact in a state that names
///   that agent, and every offered, assigned or wrapping-up contact is held by its agent
///   (one owner per contact);
/// - per-channel load equals the contacts held on that channel;
/// - the engine's waiting count equals the contacts in state waiting;
/// - every open contact is found by its conversation key.
pub fn check_invariants(engine: &Engine) -> Result<(), String> {
    let mut waiting = 0;
    for c in engine.contacts() {
        match c.state().agent() {
            None => waiting += 1,
            Some(agent) => {
                let a = engine
                    .agent(agent)
                    .ok_or_else(|| format!("{} is held by unknown {agent}", c.id()))?;
                let n = a.held().iter().filter(|h| **h == c.id()).count();
                if n != 1 {
                    return Err(format!("{} is held {n} times by {agent}", c.id()));
                }
                let others = engine
                    .agents()
                    .filter(|o| o.id() != agent && o.held().contains(&c.id()))
                    .count();
                if others > 0 {
                    return Err(format!("{} is also held by {others} other agents", c.id()));
                }
            }
        }
        if engine.conversation(c.conversation()).map(Contact::id) != Some(c.id()) {
            return Err(format!("{} is not found by its conversation", c.id()));
        }
    }
    if waiting != engine.waiting_len() {
        return Err(format!(
            "{waiting} contacts are waiting but the engine counts {}",
            engine.waiting_len()
        ));
    }
    for a in engine.agents() {
        let mut load = [0u16; Channel::COUNT];
        for h in a.held() {
            let c = engine
                .contact(*h)
                .ok_or_else(|| format!("{} holds closed {h}", a.id()))?;
            if c.state().agent() != Some(a.id()) {
                return Err(format!("{} holds {h} which is {:?}", a.id(), c.state()));
            }
            load[c.channel().index()] += 1;
        }
        for ch in Channel::ALL {
            if load[ch.index()] != a.load(ch) {
                return Err(format!(
                    "{} has load {} on {ch} but holds {}",
                    a.id(),
                    a.load(ch),
                    load[ch.index()]
                ));
            }
        }
    }
    Ok(())
}
