//! Random event sequences through the engine, checked step by step against the naive
//! oracle and the invariants: same offers as the oracle, caps never exceeded by new work,
//! one owner per contact, no eligible agent idle while an eligible contact waits, every
//! contact accounted for, and the same decisions when the same events are replayed.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use rustc_hash::FxHashMap;
use switchboard_core::oracle::{check_invariants, naive_dispatch};
use switchboard_core::{
    AgentId, AgentProfile, Caps, Channel, ContactId, ContactState, Decision, Engine, Event,
    NewContact, OfflineBehaviour, Policy, Presence, QueueId, QueuePolicy, SkillId, SkillSet,
    StickyPolicy, TeamId, TeamSet, Time, TransferTarget, Urgency,
};

const CHANNELS: [Channel; 3] = [Channel::Email, Channel::Chat, Channel::Voice];

#[derive(Debug, Clone)]
struct Knobs {
    sticky: bool,
    requeue: bool,
    wrap_up: u64,
    max_missed: u32,
}

#[derive(Debug, Clone)]
enum Op {
    Wait(u64),
    Arrive {
        channel: usize,
        required: u8,
        preferred: u8,
        urgency: usize,
        queue: u16,
        customer: u8,
    },
    Accept(usize),
    Decline(usize),
    Presence(u32, usize),
    Close(usize),
    WrapUp(usize),
    Abandon(usize),
    Transfer(usize, u8, u8),
    Upsert(u32, AgentProfile),
}

fn skills_of(mask: u8) -> SkillSet {
    SkillSet::of((0..5).filter(|i| mask & (1 << i) != 0).map(SkillId))
}

fn profile() -> impl Strategy<Value = AgentProfile> {
    (
        prop::collection::vec((0u8..5, 1u8..=10), 0..4),
        0u64..8,
        prop::array::uniform3(0u16..4),
        prop::option::weighted(0.3, 1u16..5),
    )
        .prop_map(|(skills, teams, caps, total)| AgentProfile {
            teams: TeamSet::of((0..3).filter(|i| teams & (1 << i) != 0).map(TeamId)),
            skills: skills.into_iter().map(|(s, p)| (SkillId(s), p)).collect(),
            caps: Caps {
                per_channel: [caps[0], caps[1], caps[2], 0, 0],
                total,
            },
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..90).prop_map(Op::Wait),
        5 => (0..3usize, 0u8..32, 0u8..32, 0..4usize, 0u16..2, 0u8..6).prop_map(
            |(channel, required, preferred, urgency, queue, customer)| {
                // Mostly few required skills, so that many contacts find agents.
                Op::Arrive {
                    channel,
                    required: required & 0b101,
                    preferred: preferred & 0b110,
                    urgency,
                    queue,
                    customer,
                }
            }
        ),
        4 => any::<usize>().prop_map(Op::Accept),
        2 => any::<usize>().prop_map(Op::Decline),
        2 => (0u32..6, 0..3usize).prop_map(|(a, p)| Op::Presence(a, p)),
        3 => any::<usize>().prop_map(Op::Close),
        1 => any::<usize>().prop_map(Op::WrapUp),
        1 => any::<usize>().prop_map(Op::Abandon),
        1 => (any::<usize>(), 0u8..3, 0u8..6).prop_map(|(c, k, x)| Op::Transfer(c, k, x)),
        1 => (0u32..6, profile()).prop_map(|(a, p)| Op::Upsert(a, p)),
    ]
}

fn policy(knobs: &Knobs) -> Policy {
    let s = Duration::from_secs;
    let mut policy = Policy {
        sticky: StickyPolicy {
            remember_for: s(600),
            wait: if knobs.sticky { s(40) } else { Duration::ZERO },
        },
        on_offline: if knobs.requeue {
            OfflineBehaviour::Requeue
        } else {
            OfflineBehaviour::Keep
        },
        max_missed_offers: knobs.max_missed,
        ..Policy::default()
    };
    for c in CHANNELS {
        policy.channels[c.index()].wrap_up = s(knobs.wrap_up);
    }
    let mut restricted = QueuePolicy::open("restricted");
    restricted.teams = TeamSet::of([TeamId(0)]);
    restricted.overflow_teams = TeamSet::of([TeamId(1)]);
    restricted.overflow_after = s(60);
    restricted.preferred_for = s(20);
    policy.queues.push(restricted);
    policy.queues[0].preferred_for = s(45);
    policy
}

/// Picks the `i`-th (modulo) open contact matching `filter`, in id order.
fn pick(engine: &Engine, i: usize, filter: impl Fn(ContactState) -> bool) -> Option<ContactId> {
    let mut ids: Vec<ContactId> = engine
        .contacts()
        .filter(|c| filter(c.state()))
        .map(|c| c.id())
        .collect();
    if ids.is_empty() {
        return None;
    }
    ids.sort();
    Some(ids[i % ids.len()])
}

/// Everything a run produced, for the determinism check.
#[derive(Debug, PartialEq)]
struct Trace {
    decisions: Vec<Decision>,
}

struct Run {
    engine: Engine,
    now: Time,
    log: Vec<Decision>,
    next_id: u64,
    arrived: usize,
    /// Load an agent already had above a cap that was lowered under it; new work may never
    /// push load above `max(cap, allowance)`, and the allowance shrinks with the load.
    allowance: FxHashMap<AgentId, [u16; Channel::COUNT]>,
}

impl Run {
    /// Dispatches and checks the offers against the oracle, then every invariant.
    fn dispatch_and_check(&mut self) -> Result<(), TestCaseError> {
        let expected = naive_dispatch(&self.engine);
        let start = self.log.len();
        self.engine.dispatch(&mut self.log);
        let got: Vec<(ContactId, AgentId)> = self.log[start..]
            .iter()
            .filter_map(|d| match d {
                Decision::Offered { contact, agent, .. } => Some((*contact, *agent)),
                _ => None,
            })
            .collect();
        prop_assert_eq!(&got, &expected, "engine and oracle disagree");
        let left = naive_dispatch(&self.engine);
        prop_assert!(
            left.is_empty(),
            "after dispatch an eligible agent is idle while a contact waits: {:?}",
            left
        );
        self.check_state()
    }

    fn check_state(&mut self) -> Result<(), TestCaseError> {
        check_invariants(&self.engine).map_err(TestCaseError::fail)?;
        for a in self.engine.agents() {
            let allowance = self.allowance.entry(a.id()).or_default();
            let caps = a.caps();
            let total: u16 = Channel::ALL.iter().map(|c| a.load(*c)).sum();
            for c in Channel::ALL {
                let i = c.index();
                allowance[i] = allowance[i].min(a.load(c));
                prop_assert!(
                    a.load(c) <= caps.get(c).max(allowance[i]),
                    "{} exceeds its {} cap: {} > {}",
                    a.id(),
                    c,
                    a.load(c),
                    caps.get(c)
                );
            }
            if let Some(t) = caps.total {
                let lowered: u16 = allowance.iter().sum();
                prop_assert!(total <= t.max(lowered), "{} exceeds its total cap", a.id());
            }
        }
        let ended = self
            .log
            .iter()
            .filter(|d| matches!(d, Decision::Closed { .. } | Decision::Abandoned { .. }))
            .count();
        prop_assert_eq!(
            self.arrived,
            self.engine.open_len() + ended,
            "arrived contacts are not all open, closed or abandoned"
        );
        Ok(())
    }

    fn event(&self, op: &Op) -> Option<Event> {
        let e = &self.engine;
        Some(match op {
            Op::Wait(_) => return None,
            Op::Arrive {
                channel,
                required,
                preferred,
                urgency,
                queue,
                customer,
            } => Event::Arrive(NewContact {
                id: ContactId(self.next_id),
                conversation: Arc::from(format!("c{}", self.next_id)),
                customer: Arc::from(format!("cust{customer}")),
                channel: CHANNELS[*channel],
                urgency: Urgency::ALL[*urgency],
                queue: QueueId(*queue),
                required: skills_of(*required),
                preferred: skills_of(*preferred),
                arrived_at: self.now,
            }),
            Op::Accept(i) | Op::Decline(i) => {
                let c = pick(e, *i, |s| matches!(s, ContactState::Offered { .. }))?;
                let ContactState::Offered { offer, agent } = e.contact(c)?.state() else {
                    return None;
                };
                if matches!(op, Op::Accept(_)) {
                    Event::Accept { offer, agent }
                } else {
                    Event::Decline { offer, agent }
                }
            }
            Op::Presence(a, p) => Event::SetPresence {
                agent: AgentId(*a),
                presence: [Presence::Available, Presence::Away, Presence::Offline][*p],
            },
            Op::Close(i) => Event::Close {
                contact: pick(e, *i, |_| true)?,
            },
            Op::WrapUp(i) => Event::WrapUp {
                contact: pick(e, *i, |s| matches!(s, ContactState::Assigned { .. }))?,
            },
            Op::Abandon(i) => Event::Abandon {
                contact: pick(e, *i, |s| {
                    matches!(s, ContactState::Waiting | ContactState::Offered { .. })
                })?,
            },
            Op::Transfer(i, kind, x) => Event::Transfer {
                contact: pick(e, *i, |s| matches!(s, ContactState::Assigned { .. }))?,
                to: match kind {
                    0 => TransferTarget::Agent(AgentId(u32::from(*x))),
                    1 => TransferTarget::Team(TeamId(x % 3)),
                    _ => TransferTarget::Skills(skills_of(*x)),
                },
            },
            Op::Upsert(a, p) => Event::UpsertAgent {
                agent: AgentId(*a),
                profile: p.clone(),
            },
        })
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        if let Op::Wait(secs) = op {
            let to = self.now + Duration::from_secs(*secs);
            while let Some(t) = self.engine.next_timer().filter(|t| *t <= to) {
                self.engine.advance(t, &mut self.log);
                self.dispatch_and_check()?;
            }
            self.now = to;
            self.engine.advance(to, &mut self.log);
            return self.dispatch_and_check();
        }
        let Some(event) = self.event(op) else {
            return Ok(());
        };
        let arrival = matches!(event, Event::Arrive(_));
        let upserted = match event {
            Event::UpsertAgent { agent, .. } => Some(agent),
            _ => None,
        };
        let before = self.log.len();
        match self.engine.apply(self.now, event, &mut self.log) {
            Ok(()) if arrival => {
                self.arrived += 1;
                self.next_id += 1;
            }
            Ok(()) => {
                // A new profile may lower caps under the work the agent already holds.
                if let Some(a) = upserted.and_then(|a| self.engine.agent(a)) {
                    self.allowance
                        .insert(a.id(), Channel::ALL.map(|c| a.load(c)));
                }
            }
            Err(_) => prop_assert_eq!(self.log.len(), before, "a refused event decided something"),
        }
        self.dispatch_and_check()
    }
}

fn run(knobs: &Knobs, agents: &[AgentProfile], ops: &[Op]) -> Result<Trace, TestCaseError> {
    let mut r = start(knobs, agents)?;
    for op in ops {
        r.step(op)?;
    }
    Ok(Trace { decisions: r.log })
}

/// Runs `ops[..split]`, restores a second engine from the first one's snapshot, runs the
/// rest on both, and checks they decide the same and end in the same state.
fn run_restored(
    knobs: &Knobs,
    agents: &[AgentProfile],
    ops: &[Op],
    split: usize,
) -> Result<(), TestCaseError> {
    let mut a = start(knobs, agents)?;
    let split = split.min(ops.len());
    for op in &ops[..split] {
        a.step(op)?;
    }
    let snapshot = a.engine.snapshot();
    let restored = Engine::restore(policy(knobs), snapshot.clone())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&restored.snapshot(), &snapshot, "restore changed the state");
    let mut b = Run {
        engine: restored,
        now: a.now,
        log: Vec::new(),
        next_id: a.next_id,
        // Accounting restarts from the contacts open at the split.
        arrived: snapshot.contacts.len(),
        allowance: a.allowance.clone(),
    };
    b.dispatch_and_check()?;
    prop_assert!(
        b.log.is_empty(),
        "a restored engine decided something: {:?}",
        b.log
    );
    a.log.clear();
    let ended = |r: &Run| {
        r.log
            .iter()
            .filter(|d| matches!(d, Decision::Closed { .. } | Decision::Abandoned { .. }))
            .count()
    };
    a.arrived = a.engine.open_len();
    for op in &ops[split..] {
        a.step(op)?;
        b.step(op)?;
    }
    prop_assert_eq!(&a.log, &b.log, "the restored engine decided differently");
    prop_assert_eq!(ended(&a), ended(&b));
    prop_assert_eq!(a.engine.snapshot(), b.engine.snapshot());
    Ok(())
}

fn start(knobs: &Knobs, agents: &[AgentProfile]) -> Result<Run, TestCaseError> {
    let mut r = Run {
        engine: Engine::new(policy(knobs)).expect("valid policy"),
        now: Time::from_millis(1_000_000),
        log: Vec::new(),
        next_id: 1,
        arrived: 0,
        allowance: FxHashMap::default(),
    };
    for (i, p) in agents.iter().enumerate() {
        let agent = AgentId(i as u32);
        r.engine
            .apply(
                r.now,
                Event::UpsertAgent {
                    agent,
                    profile: p.clone(),
                },
                &mut r.log,
            )
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        r.engine
            .apply(
                r.now,
                Event::SetPresence {
                    agent,
                    presence: Presence::Available,
                },
                &mut r.log,
            )
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        r.dispatch_and_check()?;
    }
    Ok(r)
}

fn knobs() -> impl Strategy<Value = Knobs> {
    (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(0u64), Just(15)],
        0u32..3,
    )
        .prop_map(|(sticky, requeue, wrap_up, max_missed)| Knobs {
            sticky,
            requeue,
            wrap_up,
            max_missed,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_decides_as_the_oracle_and_keeps_every_invariant(
        knobs in knobs(),
        agents in prop::collection::vec(profile(), 1..6),
        ops in prop::collection::vec(op(), 1..150),
    ) {
        let first = run(&knobs, &agents, &ops)?;
        let again = run(&knobs, &agents, &ops)?;
        prop_assert_eq!(first, again, "replaying the same events gave other decisions");
    }

    #[test]
    fn a_restored_engine_carries_on_exactly_as_the_original(
        knobs in knobs(),
        agents in prop::collection::vec(profile(), 1..6),
        ops in prop::collection::vec(op(), 1..150),
        split in 0usize..150,
    ) {
        run_restored(&knobs, &agents, &ops, split)?;
    }
}
