//! The engine in virtual time: a discrete-event loop over a heap of future events
//! (arrivals, agents' answers, ends of handling, customers leaving, shifts), interleaved
//! with the engine's own timers ([`Engine::next_timer`]). Every routing decision is the
//! real engine's; the driver only plays the agents and customers around it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use rand::RngExt;
use rustc_hash::FxHashMap;
use switchboard_core::{
    AgentId, ContactId, Decision, Engine, EngineError, Event, NewContact, OfferId, Presence, Time,
};

use crate::SimError;
use crate::arrivals::{Arrival, AuditEntry};
use crate::dist::{self, SimRng};
use crate::scenario::Model;
use crate::stats::{Recorder, group_of};

/// Something the world does at a future instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// The offered agent answers.
    Answer {
        offer: OfferId,
        agent: AgentId,
        accept: bool,
    },
    /// The owner is done with the customer (generation guards against stale ends).
    EndHandling { contact: ContactId, generation: u32 },
    /// The customer's patience runs out.
    Patience { contact: ContactId },
    /// A shift starts (`on`) or ends.
    Shift { agent: AgentId, on: bool },
    /// An agent the engine set away comes back.
    Return { agent: AgentId },
}

/// A contact the driver is following.
#[derive(Debug)]
struct Open {
    seq: u64,
    arrival: Arrival,
    group: usize,
    answered: bool,
    /// Whether the first offer came later than the arrival.
    queued: Option<bool>,
    assigned_at: u64,
    generation: u32,
    /// The expected wait the engine gave on arrival, ms, if it had one.
    told: Option<u64>,
}

/// The future-event set: a min-heap on (time, insertion order), so events at the same
/// instant happen in the order they were scheduled and runs are deterministic.
#[derive(Debug)]
pub(crate) struct Agenda<E: Ord> {
    heap: BinaryHeap<Reverse<(u64, u64, E)>>,
    seq: u64,
}

impl<E: Ord> Default for Agenda<E> {
    fn default() -> Self {
        Agenda {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<E: Ord + Copy> Agenda<E> {
    pub(crate) fn push(&mut self, at: u64, e: E) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, e)));
    }

    pub(crate) fn next_at(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    pub(crate) fn pop(&mut self) -> Option<(u64, E)> {
        self.heap.pop().map(|Reverse((t, _, e))| (t, e))
    }
}

/// One run of the engine over `arrivals` (time-ordered) with `model`'s agents and
/// behaviour; `replication` selects the agents' random stream.
pub fn run_engine(
    model: &Model,
    arrivals: impl Iterator<Item = Arrival>,
    replication: u64,
    rec: Recorder,
) -> Result<Recorder, SimError> {
    run_engine_logged(model, arrivals, replication, rec, None)
}

/// [`run_engine`], also appending to `log` every arrival fed to the engine and every
/// decision it made, with its instant: the audit log the daemon's store will keep.
pub fn run_engine_logged(
    model: &Model,
    arrivals: impl Iterator<Item = Arrival>,
    replication: u64,
    rec: Recorder,
    log: Option<&mut Vec<(Time, AuditEntry)>>,
) -> Result<Recorder, SimError> {
    let engine = Engine::new(model.policy.clone()).map_err(|e| SimError::Engine(e.to_string()))?;
    let mut d = Driver {
        model,
        engine,
        agenda: Agenda::default(),
        open: FxHashMap::default(),
        on_shift: vec![false; model.agents.len()],
        rng: dist::rng(model.seed, replication, 2),
        rec,
        out: Vec::new(),
        unanswered: 0,
        log,
    };
    d.run(arrivals)?;
    Ok(d.rec)
}

struct Driver<'m, 'l> {
    model: &'m Model,
    engine: Engine,
    agenda: Agenda<Ev>,
    open: FxHashMap<ContactId, Open>,
    on_shift: Vec<bool>,
    rng: SimRng,
    rec: Recorder,
    out: Vec<Decision>,
    /// Contacts arrived and not yet answered or abandoned.
    unanswered: u32,
    log: Option<&'l mut Vec<(Time, AuditEntry)>>,
}

impl Driver<'_, '_> {
    fn run(&mut self, arrivals: impl Iterator<Item = Arrival>) -> Result<(), SimError> {
        for (i, a) in self.model.agents.iter().enumerate() {
            let agent = AgentId(i as u32);
            let profile = a.profile.clone();
            self.handle(0, Event::UpsertAgent { agent, profile })?;
            for &(start, end) in &a.shifts {
                self.agenda.push(start, Ev::Shift { agent, on: true });
                if end < u64::MAX {
                    self.agenda.push(end, Ev::Shift { agent, on: false });
                }
            }
        }
        let mut arrivals = arrivals.peekable();
        let mut seq = 0u64;
        loop {
            let next_arrival = arrivals.peek().map(|a| a.at);
            let next_event = self.agenda.next_at();
            let next_timer = self.engine.next_timer().map(Time::as_millis);
            let Some(now) = [next_arrival, next_event, next_timer]
                .into_iter()
                .flatten()
                .min()
            else {
                break;
            };
            self.rec.observe(now, self.unanswered);
            if next_event == Some(now) {
                let (_, ev) = self.agenda.pop().expect("peeked");
                self.event(now, ev)?;
            } else if next_arrival == Some(now) {
                let a = arrivals.next().expect("peeked");
                self.arrive(now, seq, a)?;
                seq += 1;
            } else {
                self.engine.tick(Time::from_millis(now), &mut self.out);
                self.absorb(now);
            }
            self.rec.end_ms = now;
        }
        // Whatever is left never found an agent (everyone went home).
        for o in self.open.values().filter(|o| !o.answered) {
            self.rec.unanswered(o.seq, o.group, o.arrival.at);
        }
        let end = self.rec.end_ms;
        self.rec.close(end);
        Ok(())
    }

    /// Feeds one event to the engine and reacts to its decisions.
    fn handle(&mut self, now: u64, event: Event) -> Result<(), SimError> {
        let r = self
            .engine
            .handle(Time::from_millis(now), event, &mut self.out);
        self.absorb(now);
        match r {
            Ok(()) => Ok(()),
            Err(e) => Err(SimError::Engine(e.to_string())),
        }
    }

    fn arrive(&mut self, now: u64, seq: u64, a: Arrival) -> Result<(), SimError> {
        let id = ContactId(seq + 1);
        let key: Arc<str> = Arc::from(format!("c{}", id.0));
        let group = group_of(a.queue, a.channel, a.urgency);
        let target = self.model.target_ms(a.queue, a.channel, a.urgency);
        self.rec.arrive(seq, group, target, now, a.handle_ms);
        if let Some(p) = a.patience_ms {
            self.agenda.push(now + p, Ev::Patience { contact: id });
        }
        let new = NewContact {
            id,
            conversation: key.clone(),
            customer: key,
            channel: a.channel,
            urgency: a.urgency,
            queue: a.queue,
            required: a.required,
            preferred: Default::default(),
            arrived_at: Time::from_millis(a.at),
        };
        self.open.insert(
            id,
            Open {
                seq,
                arrival: a,
                group,
                answered: false,
                queued: None,
                assigned_at: 0,
                generation: 0,
                told: None,
            },
        );
        self.unanswered += 1;
        if let Some(log) = self.log.as_deref_mut() {
            log.push((
                Time::from_millis(now),
                AuditEntry::Event(Event::Arrive(new.clone())),
            ));
        }
        self.handle(now, Event::Arrive(new))?;
        // What a chat or voice customer would be told now, from the one estimate.
        let told = match self.engine.contact(id).map(|c| c.state()) {
            Some(switchboard_core::ContactState::Offered { .. }) => Some(0),
            _ => self
                .engine
                .expected_wait(id)
                .and_then(|w| w.estimate)
                .map(|est| est.as_millis() as u64),
        };
        if let Some(o) = self.open.get_mut(&id) {
            o.told = told;
        }
        Ok(())
    }

    fn event(&mut self, now: u64, ev: Ev) -> Result<(), SimError> {
        match ev {
            Ev::Answer {
                offer,
                agent,
                accept,
            } => {
                let event = if accept {
                    Event::Accept { offer, agent }
                } else {
                    Event::Decline { offer, agent }
                };
                let r = self
                    .engine
                    .handle(Time::from_millis(now), event, &mut self.out);
                self.absorb(now);
                match r {
                    // The offer expired, or was withdrawn (customer left, shift ended)
                    // before the agent answered: what happens to real agents too.
                    Ok(()) | Err(EngineError::OfferNotPending(_)) => Ok(()),
                    Err(e) => Err(SimError::Engine(e.to_string())),
                }
            }
            Ev::EndHandling {
                contact,
                generation,
            } => {
                let current = self
                    .open
                    .get(&contact)
                    .is_some_and(|o| o.generation == generation);
                if current {
                    self.handle(now, Event::WrapUp { contact })?;
                }
                Ok(())
            }
            Ev::Patience { contact } => {
                if self.open.get(&contact).is_some_and(|o| !o.answered) {
                    self.handle(now, Event::Abandon { contact })?;
                }
                Ok(())
            }
            Ev::Shift { agent, on } => {
                self.on_shift[agent.0 as usize] = on;
                self.rec.shift(agent.0 as usize, now, on);
                let presence = if on {
                    Presence::Available
                } else {
                    Presence::Offline
                };
                self.handle(now, Event::SetPresence { agent, presence })
            }
            Ev::Return { agent } => {
                let away = self
                    .engine
                    .agent(agent)
                    .is_some_and(|a| a.presence() == Presence::Away);
                if self.on_shift[agent.0 as usize] && away {
                    let presence = Presence::Available;
                    self.handle(now, Event::SetPresence { agent, presence })?;
                }
                Ok(())
            }
        }
    }

    fn cap(&self, agent: AgentId, channel: switchboard_core::Channel) -> u16 {
        self.model.agents[agent.0 as usize]
            .profile
            .caps
            .get(channel)
    }

    /// Plays the agents' and customers' side of the engine's decisions.
    fn absorb(&mut self, now: u64) {
        let mut out = std::mem::take(&mut self.out);
        if let Some(log) = self.log.as_deref_mut() {
            let at = Time::from_millis(now);
            log.extend(out.iter().map(|d| (at, AuditEntry::Decision(d.clone()))));
        }
        for d in out.drain(..) {
            match d {
                Decision::Offered {
                    offer,
                    agent,
                    contact,
                    ..
                } => {
                    if let Some(o) = self.open.get_mut(&contact) {
                        o.queued.get_or_insert(now > o.arrival.at);
                    }
                    let b = &self.model.behaviour;
                    let u: f64 = self.rng.random();
                    if u < b.no_answer {
                        continue; // the engine's offer timeout takes over
                    }
                    let delay = b.accept_delay.sample_ms(&mut self.rng);
                    let accept = u >= b.no_answer + b.decline;
                    self.agenda.push(
                        now + delay,
                        Ev::Answer {
                            offer,
                            agent,
                            accept,
                        },
                    );
                }
                Decision::Assigned { contact, agent, .. } => {
                    let o = self
                        .open
                        .get_mut(&contact)
                        .expect("assigned contact is open");
                    if !o.answered {
                        o.answered = true;
                        self.unanswered -= 1;
                        let wait = now - o.arrival.at;
                        let queued = o.queued.unwrap_or(true);
                        self.rec.answer(o.seq, o.group, o.arrival.at, wait, queued);
                        if let Some(told) = o.told {
                            self.rec.told(o.seq, o.group, told, wait);
                        }
                    }
                    o.assigned_at = now;
                    o.generation += 1;
                    let ev = Ev::EndHandling {
                        contact,
                        generation: o.generation,
                    };
                    self.agenda.push(now + o.arrival.handle_ms, ev);
                    self.rec.hold(agent.0 as usize, now, 1);
                }
                Decision::Requeued { contact, agent, .. } => {
                    // The owner went offline and the policy re-queues: the work so far is
                    // lost, and it waits for the next agent.
                    let o = self
                        .open
                        .get_mut(&contact)
                        .expect("requeued contact is open");
                    o.generation += 1;
                    let (seq, g, held) = (o.seq, o.group, now - o.assigned_at);
                    let channel = o.arrival.channel;
                    let cap = self.cap(agent, channel);
                    self.rec.hold(agent.0 as usize, now, -1);
                    self.rec.release(seq, g, agent.0 as usize, held, cap);
                }
                Decision::Closed {
                    contact,
                    agent: Some(agent),
                    ..
                } => {
                    let o = self.open.remove(&contact).expect("closed contact was open");
                    let cap = self.cap(agent, o.arrival.channel);
                    self.rec.hold(agent.0 as usize, now, -1);
                    let held = now - o.assigned_at;
                    self.rec
                        .release(o.seq, o.group, agent.0 as usize, held, cap);
                }
                Decision::Closed { contact, .. } => {
                    self.open.remove(&contact);
                }
                Decision::Abandoned { contact, .. } => {
                    let o = self
                        .open
                        .remove(&contact)
                        .expect("abandoned contact was open");
                    self.unanswered -= 1;
                    self.rec.abandon(o.seq, o.group, o.arrival.at);
                }
                Decision::PresenceChanged { agent, .. } => {
                    let back = now + self.model.behaviour.away_for_ms;
                    self.agenda.push(back, Ev::Return { agent });
                }
                Decision::OfferEnded { .. }
                | Decision::Waiting { .. }
                | Decision::WrapUpStarted { .. }
                | Decision::Transferred { .. } => {}
            }
        }
        self.out = out;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use switchboard_core::{Channel, QueueId, SkillSet, Urgency};

    use super::*;
    use crate::scenario;

    /// `agents` voice agents with the given shift; offers accepted at once.
    pub(crate) fn voice_team(agents: u32, shift: &str, prefetch: u16) -> Model {
        let text = format!(
            r#"
[simulation]
duration = "4h"
[channels.voice]
wrap_up = "30s"
[handling]
voice = {{ dist = "constant", value = "1m" }}
[[arrivals]]
queue = "default"
channel = "voice"
rates = [{{ from = "0h", per_hour = 0 }}]
[baseline]
prefetch = {prefetch}
[[agents]]
name = "a"
count = {agents}
caps = {{ voice = 1, chat = 1 }}
shifts = [{shift}]
"#
        );
        scenario::parse(&text, Path::new("test.toml")).unwrap()
    }

    pub(crate) fn call(at_s: u64, handle_s: u64, patience_s: Option<u64>) -> Arrival {
        Arrival {
            at: at_s * 1000,
            queue: QueueId(0),
            channel: Channel::Voice,
            urgency: Urgency::Normal,
            required: SkillSet::EMPTY,
            handle_ms: handle_s * 1000,
            patience_ms: patience_s.map(|p| p * 1000),
        }
    }

    fn run(model: &Model, calls: Vec<Arrival>) -> Recorder {
        let rec = Recorder::new(1, model.agents.len(), 0);
        run_engine(model, calls.into_iter(), 0, rec).unwrap()
    }

    #[test]
    fn wrap_up_holds_the_slot_and_waits_are_measured_from_arrival() {
        let model = voice_team(1, r#"{ start = "0s", end = "4h" }"#, 1);
        // The second call waits for 60 s of handling and 30 s of wrap-up, less its 1 s.
        let rec = run(&model, vec![call(0, 60, None), call(1, 60, None)]);
        let g = &rec.groups[crate::stats::group_of(QueueId(0), Channel::Voice, Urgency::Normal)];
        assert_eq!(g.answered, 2);
        assert_eq!(g.waits, vec![0, 89_000]);
        assert_eq!(g.waited, 1);
        assert_eq!(rec.agents[0].handled, 2);
        // Busy from 0 to 180 s (two calls of 60 s, each with 30 s of wrap-up).
        assert_eq!(rec.agents[0].busy_ms, 180_000);
    }

    #[test]
    fn an_impatient_customer_leaves_and_is_counted() {
        let model = voice_team(1, r#"{ start = "0s", end = "4h" }"#, 1);
        let rec = run(&model, vec![call(0, 60, None), call(1, 60, Some(10))]);
        let g = &rec.groups[crate::stats::group_of(QueueId(0), Channel::Voice, Urgency::Normal)];
        assert_eq!((g.contacts, g.answered, g.abandoned), (2, 1, 1));
        assert_eq!(rec.agents[0].handled, 1);
    }

    #[test]
    fn work_waits_for_the_shift_and_is_lost_when_nobody_comes() {
        let model = voice_team(1, r#"{ start = "1h", end = "2h" }"#, 1);
        let rec = run(&model, vec![call(0, 60, None), call(3 * 3600, 60, None)]);
        let g = &rec.groups[crate::stats::group_of(QueueId(0), Channel::Voice, Urgency::Normal)];
        assert_eq!(g.waits, vec![3_600_000]);
        assert_eq!((g.answered, g.unanswered), (1, 1));
        // Logged in for the shift only: one hour.
        assert_eq!(rec.agents[0].logged_ms, 3_600_000);
    }
}
