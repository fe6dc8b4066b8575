//! What one run records: per (queue, channel, urgency) the contacts, answers, abandons and
//! every wait; per agent the busy time and contacts handled; the time series for plots;
//! and, for the M/M/c mode, batch means. Both the engine driver and the baseline feed the
//! same [`Recorder`], so their figures mean the same thing.

use switchboard_core::{Channel, QueueId, Urgency};

/// Index of a (queue, channel, urgency) group.
pub fn group_of(queue: QueueId, channel: Channel, urgency: Urgency) -> usize {
    (queue.0 as usize * Channel::COUNT + channel.index()) * Urgency::COUNT + urgency.index()
}

/// The (queue, channel, urgency) of a group index.
pub fn group_key(g: usize) -> (QueueId, Channel, Urgency) {
    let u = g % Urgency::COUNT;
    let c = (g / Urgency::COUNT) % Channel::COUNT;
    let q = g / Urgency::COUNT / Channel::COUNT;
    (QueueId(q as u16), Channel::ALL[c], Urgency::ALL[u])
}

/// Counts for one group in one run.
#[derive(Debug, Clone, Default)]
pub struct GroupAcc {
    /// The service-level target, in milliseconds.
    pub target_ms: u64,
    /// Contacts that arrived.
    pub contacts: u64,
    /// Contacts an agent took (accepted, or for the baseline started working on).
    pub answered: u64,
    /// Contacts whose customer left first.
    pub abandoned: u64,
    /// Contacts neither answered nor abandoned when the run ended (no agent left).
    pub unanswered: u64,
    /// Answered contacts that found no agent free when they arrived (queued).
    pub waited: u64,
    /// Answered within the target.
    pub within: u64,
    /// Sum of the waits of answered contacts, ms.
    pub sum_wait_ms: u64,
    /// Every answered contact's wait, ms.
    pub waits: Vec<u32>,
    /// Agent capacity these contacts used: time held (handling and wrap-up) divided by the
    /// agent's cap on the channel, ms.
    pub capacity_ms: f64,
    /// Baseline only: contacts worked by an agent lacking a required skill.
    pub misrouted: u64,
    /// Answered contacts that were told an expected wait on arrival (the engine's
    /// `expected_wait`, as a chat or voice customer hears it).
    pub told: u64,
    /// Sum over those of |wait seen − wait told|, ms.
    pub told_abs_error_ms: f64,
    /// Sum over those of (wait seen − wait told), ms.
    pub told_error_ms: f64,
}

/// Counts for one agent in one run.
#[derive(Debug, Clone, Default)]
pub struct AgentAcc {
    /// Contacts held right now.
    held: u32,
    busy_since: u64,
    /// Time holding at least one contact, ms.
    pub busy_ms: u64,
    /// Contacts finished.
    pub handled: u64,
    on_shift: bool,
    /// Since when the agent is logged in, if they are.
    logged_since: Option<u64>,
    /// Time logged in: on shift, plus any time after a shift spent finishing work, ms.
    pub logged_ms: u64,
}

/// One batch of the M/M/c mode's batch means.
#[derive(Debug, Clone, Default)]
pub struct BatchAcc {
    pub arrived: u64,
    pub answered: u64,
    pub waited: u64,
    pub within: u64,
    pub sum_wait_ms: u64,
    /// Handling time of the batch's contacts, ms.
    pub work_ms: u64,
    /// First and last arrival of the batch, ms.
    pub first_at: u64,
    pub last_at: u64,
}

/// What a run records; see the module doc.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub groups: Vec<GroupAcc>,
    pub agents: Vec<AgentAcc>,
    /// Interval of the time series, ms (0: no series).
    pub every_ms: u64,
    next_sample: u64,
    /// Contacts arrived and not yet answered, abandoned or given up, at each sample instant.
    pub waiting: Vec<u32>,
    /// Per interval of arrival: (answered within target, resolved).
    pub sl_bins: Vec<(u32, u32)>,
    /// Contacts (in arrival order) before this one are not measured.
    pub warmup: u64,
    /// Contacts per batch (0: no batches).
    pub batch_len: u64,
    pub batches: Vec<BatchAcc>,
    /// When the last event happened, ms.
    pub end_ms: u64,
}

impl Recorder {
    /// A recorder for `queues` queues and `agents` agents.
    pub fn new(queues: usize, agents: usize, every_ms: u64) -> Recorder {
        Recorder {
            groups: vec![GroupAcc::default(); queues * Channel::COUNT * Urgency::COUNT],
            agents: vec![AgentAcc::default(); agents],
            every_ms,
            next_sample: 0,
            waiting: Vec::new(),
            sl_bins: Vec::new(),
            warmup: 0,
            batch_len: 0,
            batches: Vec::new(),
            end_ms: 0,
        }
    }

    /// Discards the first `warmup` contacts and groups the rest in batches of `len`.
    pub fn with_batches(mut self, warmup: u64, len: u64) -> Recorder {
        self.warmup = warmup;
        self.batch_len = len;
        self
    }

    fn measured(&self, seq: u64) -> bool {
        seq >= self.warmup
    }

    fn batch(&mut self, seq: u64) -> Option<&mut BatchAcc> {
        if self.batch_len == 0 || seq < self.warmup {
            return None;
        }
        let b = ((seq - self.warmup) / self.batch_len) as usize;
        if self.batches.len() <= b {
            self.batches.resize(b + 1, BatchAcc::default());
        }
        Some(&mut self.batches[b])
    }

    /// Time moves to `now` with `waiting` contacts not yet answered: fills the samples due.
    pub fn observe(&mut self, now: u64, waiting: u32) {
        if self.every_ms == 0 {
            return;
        }
        while self.next_sample <= now {
            self.waiting.push(waiting);
            self.next_sample += self.every_ms;
        }
    }

    fn resolve(&mut self, arrived: u64, within: bool) {
        if self.every_ms == 0 {
            return;
        }
        let bin = (arrived / self.every_ms) as usize;
        if self.sl_bins.len() <= bin {
            self.sl_bins.resize(bin + 1, (0, 0));
        }
        self.sl_bins[bin].0 += u32::from(within);
        self.sl_bins[bin].1 += 1;
    }

    /// Contact number `seq` (0-based, in arrival order) of group `g` arrived.
    pub fn arrive(&mut self, seq: u64, g: usize, target_ms: u64, at: u64, handle_ms: u64) {
        if !self.measured(seq) {
            return;
        }
        let acc = &mut self.groups[g];
        acc.contacts += 1;
        acc.target_ms = target_ms;
        if let Some(b) = self.batch(seq) {
            if b.arrived == 0 {
                b.first_at = at;
            }
            b.arrived += 1;
            b.last_at = at;
            b.work_ms += handle_ms;
        }
    }

    /// An agent took the contact after waiting `wait` ms; `queued` if no agent was free
    /// when it arrived.
    pub fn answer(&mut self, seq: u64, g: usize, arrived: u64, wait: u64, queued: bool) {
        if !self.measured(seq) {
            return;
        }
        let acc = &mut self.groups[g];
        let within = wait <= acc.target_ms;
        acc.answered += 1;
        acc.waited += u64::from(queued);
        acc.within += u64::from(within);
        acc.sum_wait_ms += wait;
        acc.waits.push(wait.min(u64::from(u32::MAX)) as u32);
        if let Some(b) = self.batch(seq) {
            b.answered += 1;
            b.waited += u64::from(queued);
            b.within += u64::from(within);
            b.sum_wait_ms += wait;
        }
        self.resolve(arrived, within);
    }

    /// An answered contact was told `told` ms on arrival and waited `wait` ms.
    pub fn told(&mut self, seq: u64, g: usize, told: u64, wait: u64) {
        if !self.measured(seq) {
            return;
        }
        let acc = &mut self.groups[g];
        let error = wait as f64 - told as f64;
        acc.told += 1;
        acc.told_abs_error_ms += error.abs();
        acc.told_error_ms += error;
    }

    /// The customer left.
    pub fn abandon(&mut self, seq: u64, g: usize, arrived: u64) {
        if !self.measured(seq) {
            return;
        }
        self.groups[g].abandoned += 1;
        self.resolve(arrived, false);
    }

    /// The run ended with the contact still unanswered.
    pub fn unanswered(&mut self, seq: u64, g: usize, arrived: u64) {
        if !self.measured(seq) {
            return;
        }
        self.groups[g].unanswered += 1;
        self.resolve(arrived, false);
    }

    /// Baseline: an agent without a required skill worked the contact.
    pub fn misrouted(&mut self, seq: u64, g: usize) {
        if self.measured(seq) {
            self.groups[g].misrouted += 1;
        }
    }

    /// Agent `a`'s shift starts (`on`) or ends at `now`. An agent still holding work at
    /// the end of a shift stays logged in until it is done.
    pub fn shift(&mut self, a: usize, now: u64, on: bool) {
        let acc = &mut self.agents[a];
        acc.on_shift = on;
        if on {
            acc.logged_since.get_or_insert(now);
        } else if acc.held == 0
            && let Some(since) = acc.logged_since.take()
        {
            acc.logged_ms += now - since;
        }
    }

    /// Agent `a` took (`+1`) or let go of (`-1`) a contact at `now`.
    pub fn hold(&mut self, a: usize, now: u64, delta: i32) {
        let acc = &mut self.agents[a];
        if delta > 0 {
            if acc.held == 0 {
                acc.busy_since = now;
            }
            acc.held += 1;
            acc.logged_since.get_or_insert(now);
        } else {
            acc.held -= 1;
            if acc.held == 0 {
                acc.busy_ms += now - acc.busy_since;
                if !acc.on_shift
                    && let Some(since) = acc.logged_since.take()
                {
                    acc.logged_ms += now - since;
                }
            }
        }
    }

    /// Agent `a` finished a contact of group `g` that it held for `held_ms`, with `cap`
    /// slots on the contact's channel.
    pub fn release(&mut self, seq: u64, g: usize, a: usize, held_ms: u64, cap: u16) {
        self.agents[a].handled += 1;
        if self.measured(seq) {
            self.groups[g].capacity_ms += held_ms as f64 / f64::from(cap.max(1));
        }
    }

    /// The run is over at `now`: closes the logged-in time of agents still on shift.
    pub fn close(&mut self, now: u64) {
        self.end_ms = now;
        for acc in &mut self.agents {
            if let Some(since) = acc.logged_since.take() {
                acc.logged_ms += now.max(since) - since;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_indexes_round_trip() {
        for q in 0..3 {
            for c in Channel::ALL {
                for u in Urgency::ALL {
                    let g = group_of(QueueId(q), c, u);
                    assert_eq!(group_key(g), (QueueId(q), c, u));
                }
            }
        }
    }

    #[test]
    fn busy_time_counts_overlapping_contacts_once() {
        let mut r = Recorder::new(1, 1, 0);
        r.hold(0, 100, 1);
        r.hold(0, 150, 1);
        r.hold(0, 200, -1);
        r.hold(0, 300, -1);
        r.hold(0, 1000, 1);
        r.hold(0, 1010, -1);
        assert_eq!(r.agents[0].busy_ms, 210);
    }

    #[test]
    fn work_finished_after_a_shift_counts_as_logged_in() {
        let mut r = Recorder::new(1, 2, 0);
        r.shift(0, 0, true);
        r.shift(1, 0, true);
        r.hold(0, 50, 1);
        r.shift(0, 100, false);
        r.shift(1, 100, false);
        r.hold(0, 130, -1);
        r.close(500);
        assert_eq!(r.agents[0].logged_ms, 130);
        assert_eq!(r.agents[0].busy_ms, 80);
        assert_eq!(r.agents[1].logged_ms, 100);
    }

    #[test]
    fn warm_up_contacts_are_not_counted_and_batches_split() {
        let mut r = Recorder::new(1, 1, 0).with_batches(2, 3);
        for seq in 0..8 {
            r.arrive(seq, 0, 1000, seq * 10, 5);
            r.answer(seq, 0, seq * 10, seq * 100, seq % 2 == 0);
        }
        assert_eq!(r.groups[0].answered, 6);
        assert_eq!(r.batches.len(), 2);
        assert_eq!(r.batches[0].answered, 3);
        assert_eq!(r.batches[0].first_at, 20);
        assert_eq!(r.batches[0].last_at, 40);
        // Waits 200, 300, 400 ms against a 1000 ms target; 600 and 700 in batch 2.
        assert_eq!(r.batches[0].within, 3);
        assert_eq!(r.batches[0].waited, 2);
        assert_eq!(r.batches[0].sum_wait_ms, 900);
    }
}
