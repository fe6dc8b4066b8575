//! The baseline: a plain work queue, the way teams wire RabbitMQ by hand. One FIFO work
//! queue per scenario queue and channel (`support.voice`, `support.chat`, …); an agent
//! consumes from the work queues of the queues it is bound to, on the channels it serves,
//! and the broker pushes round-robin with a prefetch (unacknowledged contacts held,
//! whatever the channel) as the only cap. Skills, urgency and deadlines play no part: a
//! contact needing a skill the agent lacks is still pushed to them (counted as misrouted).
//!
//! The people are the same as in the engine run: an agent still cannot work two calls at
//! once, so a delivered contact that does not fit the agent's channel caps right now sits
//! in their inbox (unacknowledged, blocking a prefetch slot) until it does. The wait that
//! counts is from arrival until the agent starts working on it. A decline is a nack with
//! requeue (back to the head of its queue); an unanswered delivery is requeued after the
//! channel's offer timeout, as if the team had added one. Agents leaving at the end of a
//! shift close their consumer, which requeues whatever they had not started.

use std::collections::VecDeque;

use rand::RngExt;
use rustc_hash::FxHashMap;
use switchboard_core::engine::has_free_slot;
use switchboard_core::{Channel, ContactId, Presence};

use crate::SimError;
use crate::arrivals::Arrival;
use crate::dist::{self, SimRng};
use crate::driver::Agenda;
use crate::scenario::Model;
use crate::stats::{Recorder, group_of};

/// The work queue of a scenario queue and channel.
fn work_queue(queue: u16, channel: Channel) -> usize {
    queue as usize * Channel::COUNT + channel.index()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// The agent looks at a delivered contact.
    Open {
        contact: ContactId,
        delivery: u32,
    },
    /// The agent nacks it (declined, or never answered until the timeout).
    Nack {
        contact: ContactId,
        delivery: u32,
    },
    EndHandling {
        contact: ContactId,
    },
    Close {
        contact: ContactId,
    },
    Patience {
        contact: ContactId,
    },
    Shift {
        agent: usize,
        on: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Queued,
    /// Pushed to the agent, not yet looked at.
    Delivered {
        agent: usize,
    },
    /// Looked at, waiting for the agent to have room.
    Inbox {
        agent: usize,
    },
    /// Being worked on (handling or wrap-up).
    Working {
        agent: usize,
    },
}

#[derive(Debug)]
struct Contact {
    seq: u64,
    arrival: Arrival,
    group: usize,
    state: State,
    /// Increases at every delivery, so a stale Open or Nack is ignored.
    delivery: u32,
    /// Whether the first delivery came later than the arrival.
    queued: Option<bool>,
    started_at: u64,
}

#[derive(Debug)]
struct Agent {
    consuming: bool,
    /// Delivered and not yet acknowledged (acknowledged when closed).
    unacked: u16,
    inbox: Vec<ContactId>,
    load: [u16; Channel::COUNT],
}

/// One run of the work-queue baseline over `arrivals` with `model`'s agents and behaviour.
pub fn run_baseline(
    model: &Model,
    arrivals: impl Iterator<Item = Arrival>,
    replication: u64,
    rec: Recorder,
) -> Result<Recorder, SimError> {
    let queues = model.policy.queues.len() * Channel::COUNT;
    let mut consumers = vec![Vec::new(); queues];
    for (i, a) in model.agents.iter().enumerate() {
        for q in &a.queues {
            for c in Channel::ALL {
                if a.profile.caps.get(c) > 0 {
                    consumers[work_queue(q.0, c)].push(i);
                }
            }
        }
    }
    let mut b = Baseline {
        model,
        agenda: Agenda::default(),
        queues: vec![VecDeque::new(); queues],
        consumers,
        next_consumer: vec![0; queues],
        agents: model
            .agents
            .iter()
            .map(|_| Agent {
                consuming: false,
                unacked: 0,
                inbox: Vec::new(),
                load: [0; Channel::COUNT],
            })
            .collect(),
        contacts: FxHashMap::default(),
        rng: dist::rng(model.seed, replication, 2),
        rec,
        unanswered: 0,
    };
    b.run(arrivals);
    Ok(b.rec)
}

struct Baseline<'m> {
    model: &'m Model,
    agenda: Agenda<Ev>,
    queues: Vec<VecDeque<ContactId>>,
    consumers: Vec<Vec<usize>>,
    next_consumer: Vec<usize>,
    agents: Vec<Agent>,
    contacts: FxHashMap<ContactId, Contact>,
    rng: SimRng,
    rec: Recorder,
    unanswered: u32,
}

impl Baseline<'_> {
    fn run(&mut self, arrivals: impl Iterator<Item = Arrival>) {
        for (i, a) in self.model.agents.iter().enumerate() {
            for &(start, end) in &a.shifts {
                self.agenda.push(start, Ev::Shift { agent: i, on: true });
                self.agenda.push(
                    end,
                    Ev::Shift {
                        agent: i,
                        on: false,
                    },
                );
            }
        }
        let mut arrivals = arrivals.peekable();
        let mut seq = 0;
        loop {
            let next_arrival = arrivals.peek().map(|a| a.at);
            let next_event = self.agenda.next_at();
            let Some(now) = [next_arrival, next_event].into_iter().flatten().min() else {
                break;
            };
            self.rec.observe(now, self.unanswered);
            if next_event == Some(now) {
                let (_, ev) = self.agenda.pop().expect("peeked");
                self.event(now, ev);
            } else {
                let a = arrivals.next().expect("peeked");
                self.arrive(now, seq, a);
                seq += 1;
            }
            self.rec.end_ms = now;
        }
        for c in self.contacts.values() {
            if !matches!(c.state, State::Working { .. }) {
                self.rec.unanswered(c.seq, c.group, c.arrival.at);
            }
        }
        let end = self.rec.end_ms;
        self.rec.close(end);
    }

    fn arrive(&mut self, now: u64, seq: u64, a: Arrival) {
        let id = ContactId(seq + 1);
        let group = group_of(a.queue, a.channel, a.urgency);
        let target = self.model.target_ms(a.queue, a.channel, a.urgency);
        self.rec.arrive(seq, group, target, now, a.handle_ms);
        if let Some(p) = a.patience_ms {
            self.agenda.push(now + p, Ev::Patience { contact: id });
        }
        let q = work_queue(a.queue.0, a.channel);
        self.contacts.insert(
            id,
            Contact {
                seq,
                arrival: a,
                group,
                state: State::Queued,
                delivery: 0,
                queued: None,
                started_at: 0,
            },
        );
        self.unanswered += 1;
        self.queues[q].push_back(id);
        self.push_queue(now, q);
    }

    /// The broker pushes the head of queue `q` to consumers with credit, round-robin.
    fn push_queue(&mut self, now: u64, q: usize) {
        loop {
            let Some(head) = self.head(q) else { return };
            let n = self.consumers[q].len();
            let start = self.next_consumer[q];
            let Some(k) = (0..n)
                .map(|k| (start + k) % n)
                .find(|&k| self.has_credit(self.consumers[q][k]))
            else {
                return;
            };
            self.next_consumer[q] = (k + 1) % n;
            let agent = self.consumers[q][k];
            self.queues[q].pop_front();
            self.deliver(now, head, agent);
        }
    }

    /// The live head of queue `q` (contacts that left are dropped lazily).
    fn head(&mut self, q: usize) -> Option<ContactId> {
        while let Some(&id) = self.queues[q].front() {
            if self
                .contacts
                .get(&id)
                .is_some_and(|c| c.state == State::Queued)
            {
                return Some(id);
            }
            self.queues[q].pop_front();
        }
        None
    }

    fn has_credit(&self, agent: usize) -> bool {
        let a = &self.agents[agent];
        a.consuming && a.unacked < self.model.agents[agent].prefetch
    }

    fn deliver(&mut self, now: u64, id: ContactId, agent: usize) {
        let c = self.contacts.get_mut(&id).expect("queued contact");
        c.state = State::Delivered { agent };
        c.queued.get_or_insert(now > c.arrival.at);
        c.delivery += 1;
        let delivery = c.delivery;
        let timeout = self.model.policy.channel(c.arrival.channel).offer_timeout;
        self.agents[agent].unacked += 1;
        let b = &self.model.behaviour;
        let u: f64 = self.rng.random();
        if u < b.no_answer {
            let at = now + timeout.as_millis() as u64;
            self.agenda.push(
                at,
                Ev::Nack {
                    contact: id,
                    delivery,
                },
            );
            return;
        }
        let at = now + b.accept_delay.sample_ms(&mut self.rng);
        if u < b.no_answer + b.decline {
            self.agenda.push(
                at,
                Ev::Nack {
                    contact: id,
                    delivery,
                },
            );
        } else {
            self.agenda.push(
                at,
                Ev::Open {
                    contact: id,
                    delivery,
                },
            );
        }
    }

    /// Agent `agent` has credit again: every queue it consumes from may push to it.
    fn pull(&mut self, now: u64, agent: usize) {
        while self.has_credit(agent) {
            // The oldest head among its queues; the generous reading of several queues
            // pushing to one consumer.
            let mut best: Option<(u64, usize, ContactId)> = None;
            let spec = &self.model.agents[agent];
            let mine: Vec<usize> = spec
                .queues
                .iter()
                .flat_map(|q| {
                    Channel::ALL
                        .into_iter()
                        .filter(|c| spec.profile.caps.get(*c) > 0)
                        .map(|c| work_queue(q.0, c))
                })
                .collect();
            for q in mine {
                if let Some(h) = self.head(q) {
                    let seq = self.contacts[&h].seq;
                    if best.is_none_or(|b| seq < b.0) {
                        best = Some((seq, q, h));
                    }
                }
            }
            let Some((_, q, id)) = best else { return };
            self.queues[q].pop_front();
            self.deliver(now, id, agent);
        }
    }

    /// The agent starts whatever in its inbox fits its caps now, oldest delivery first.
    fn start_work(&mut self, now: u64, agent: usize) {
        let mut i = 0;
        while i < self.agents[agent].inbox.len() {
            let id = self.agents[agent].inbox[i];
            let c = &self.contacts[&id];
            let channel = c.arrival.channel;
            let spec = &self.model.agents[agent];
            let a = &self.agents[agent];
            let fits = has_free_slot(
                &self.model.policy,
                Presence::Available,
                &spec.profile.caps,
                &a.load,
                channel,
            );
            if !fits {
                i += 1;
                continue;
            }
            self.agents[agent].inbox.remove(i);
            self.agents[agent].load[channel.index()] += 1;
            let c = self.contacts.get_mut(&id).expect("inbox contact");
            c.state = State::Working { agent };
            c.started_at = now;
            self.unanswered -= 1;
            let wait = now - c.arrival.at;
            let (seq, g, arrived) = (c.seq, c.group, c.arrival.at);
            let queued = c.queued.unwrap_or(true);
            let skills = spec.profile.skills.iter().map(|(s, _)| *s);
            if !switchboard_core::SkillSet::of(skills).is_superset(c.arrival.required) {
                self.rec.misrouted(seq, g);
            }
            self.agenda
                .push(now + c.arrival.handle_ms, Ev::EndHandling { contact: id });
            self.rec.answer(seq, g, arrived, wait, queued);
            self.rec.hold(agent, now, 1);
        }
    }

    fn requeue(&mut self, now: u64, id: ContactId, agent: usize) {
        let c = self.contacts.get_mut(&id).expect("delivered contact");
        c.state = State::Queued;
        let q = work_queue(c.arrival.queue.0, c.arrival.channel);
        self.agents[agent].unacked -= 1;
        self.queues[q].push_front(id);
        self.push_queue(now, q);
    }

    fn event(&mut self, now: u64, ev: Ev) {
        match ev {
            Ev::Open { contact, delivery } | Ev::Nack { contact, delivery } => {
                let Some(c) = self.contacts.get_mut(&contact) else {
                    return;
                };
                let State::Delivered { agent } = c.state else {
                    return;
                };
                if c.delivery != delivery {
                    return;
                }
                if matches!(ev, Ev::Open { .. }) {
                    c.state = State::Inbox { agent };
                    self.agents[agent].inbox.push(contact);
                    self.start_work(now, agent);
                    // Pushed to an agent who cannot work on it yet: it queues in the inbox.
                    let c = self.contacts.get_mut(&contact).expect("opened contact");
                    if c.state == (State::Inbox { agent }) {
                        c.queued = Some(true);
                    }
                } else {
                    self.requeue(now, contact, agent);
                    self.pull(now, agent);
                }
            }
            Ev::EndHandling { contact } => {
                let c = &self.contacts[&contact];
                let wrap = self.model.policy.channel(c.arrival.channel).wrap_up;
                self.agenda
                    .push(now + wrap.as_millis() as u64, Ev::Close { contact });
            }
            Ev::Close { contact } => {
                let c = self.contacts.remove(&contact).expect("working contact");
                let State::Working { agent } = c.state else {
                    unreachable!("only worked contacts close")
                };
                let a = &mut self.agents[agent];
                a.load[c.arrival.channel.index()] -= 1;
                a.unacked -= 1;
                self.rec.hold(agent, now, -1);
                let cap = self.model.agents[agent].profile.caps.get(c.arrival.channel);
                self.rec
                    .release(c.seq, c.group, agent, now - c.started_at, cap);
                self.start_work(now, agent);
                self.pull(now, agent);
            }
            Ev::Patience { contact } => {
                let Some(c) = self.contacts.get(&contact) else {
                    return;
                };
                let agent = match c.state {
                    State::Working { .. } => return,
                    State::Queued => None,
                    State::Delivered { agent } => Some(agent),
                    State::Inbox { agent } => {
                        self.agents[agent].inbox.retain(|x| *x != contact);
                        Some(agent)
                    }
                };
                let c = self.contacts.remove(&contact).expect("checked");
                self.unanswered -= 1;
                self.rec.abandon(c.seq, c.group, c.arrival.at);
                if let Some(agent) = agent {
                    self.agents[agent].unacked -= 1;
                    self.pull(now, agent);
                }
            }
            Ev::Shift { agent, on } => {
                self.agents[agent].consuming = on;
                self.rec.shift(agent, now, on);
                if on {
                    self.pull(now, agent);
                    return;
                }
                // Closing the consumer requeues every unacknowledged contact not started.
                let mut back: Vec<(u64, ContactId)> = self
                    .contacts
                    .iter()
                    .filter(|(_, c)| {
                        matches!(c.state, State::Delivered { agent: a } | State::Inbox { agent: a } if a == agent)
                    })
                    .map(|(id, c)| (c.seq, *id))
                    .collect();
                back.sort_unstable();
                self.agents[agent].inbox.clear();
                for (_, id) in back.into_iter().rev() {
                    self.requeue(now, id, agent);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use switchboard_core::{Channel, QueueId, Urgency};

    use super::*;
    use crate::driver::tests::{call, voice_team};
    use crate::stats::group_of;

    #[test]
    fn the_prefetch_pushes_work_to_a_busy_agent_while_another_is_idle() {
        // Two agents with prefetch 2. Call A (long) goes to agent 1, call B (short) to
        // agent 2, round-robin. Call C comes when agent 2 is free again, but round-robin
        // pushes it to agent 1, who has credit left and is on a call: C waits in their
        // inbox until A and its wrap-up are over, at 90 s.
        let model = voice_team(2, r#"{ start = "0s", end = "4h" }"#, 2);
        let calls = vec![call(0, 60, None), call(1, 5, None), call(50, 60, None)];
        let g = group_of(QueueId(0), Channel::Voice, Urgency::Normal);
        let rec = Recorder::new(1, 2, 0);
        let rec = run_baseline(&model, calls.clone().into_iter(), 0, rec).unwrap();
        assert_eq!(rec.groups[g].waits, vec![0, 0, 40_000]);
        assert_eq!(rec.groups[g].waited, 1, "C sat in an inbox");
        // The engine offers C to the free agent at once.
        let rec = Recorder::new(1, 2, 0);
        let rec = crate::driver::run_engine(&model, calls.into_iter(), 0, rec).unwrap();
        assert_eq!(rec.groups[g].waits, vec![0, 0, 0]);
    }

    #[test]
    fn with_prefetch_one_it_is_a_plain_fifo_queue() {
        let model = voice_team(1, r#"{ start = "0s", end = "4h" }"#, 1);
        let calls = vec![call(0, 60, None), call(1, 60, None), call(2, 60, Some(5))];
        let g = group_of(QueueId(0), Channel::Voice, Urgency::Normal);
        let rec = run_baseline(&model, calls.into_iter(), 0, Recorder::new(1, 1, 0)).unwrap();
        // The second call waits for the first and its wrap-up; the third leaves.
        assert_eq!(rec.groups[g].waits, vec![0, 89_000]);
        assert_eq!(rec.groups[g].abandoned, 1);
    }
}
