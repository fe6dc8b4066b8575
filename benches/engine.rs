//! The routing engine's benchmark: decision latency (p50, p99), decisions per second and
//! memory per waiting contact, for 100 to 20k agents and 1k to 500k waiting contacts, with
//! the naive scanning router side by side where it finishes in reasonable time.
//!
//! `cargo bench --bench engine` prints the full table; `-- --quick` the smaller sizes.
//!
//! Workload: 30 skills, 2–3 per agent (proficiency 1..=10) and 2–3 required per contact,
//! each contact's skills and channel those of some agent (so every contact is servable and
//! waits only because its agents are busy); mixed channels (email 40 %, chat 30 %, voice
//! 15 %, social 15 %) and urgencies; agents with voice 1 (exclusive), chat 1–3, email 2–5,
//! social 0–2. Setup fills every agent to
//! its caps and leaves the given number of contacts waiting. Then each step closes a random
//! assigned contact (the agent's freed slot pulls the earliest-deadline contact it can
//! serve: a decision), accepts whatever was offered, and brings in a new contact (routed
//! or left waiting with its reason: a decision), so the waiting population stays put. A
//! decision's latency is the whole `Engine::handle` call for that event.

use std::alloc::System;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use switchboard_core::oracle::naive_dispatch;
use switchboard_core::{
    AgentId, AgentProfile, Caps, Channel, ContactId, Decision, Engine, Event, NewContact, Policy,
    Presence, QueueId, SkillId, SkillSet, TeamSet, Time, Urgency,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SKILLS: u8 = 30;

struct Bench {
    engine: Engine,
    /// Every agent's skills and caps, to draw contacts that some agent can serve.
    staff: Vec<(Vec<SkillId>, Caps)>,
    rng: fastrand::Rng,
    now: Time,
    next_id: u64,
    /// Assigned contacts, for picking one to close at random.
    assigned: Vec<ContactId>,
    log: Vec<Decision>,
}

fn skill_set(rng: &mut fastrand::Rng) -> Vec<SkillId> {
    let n = rng.usize(2..=3);
    let mut skills: Vec<SkillId> = Vec::with_capacity(n);
    while skills.len() < n {
        let s = SkillId(rng.u8(0..SKILLS));
        if !skills.contains(&s) {
            skills.push(s);
        }
    }
    skills
}

fn agent_profile(rng: &mut fastrand::Rng) -> AgentProfile {
    AgentProfile {
        teams: TeamSet::EMPTY,
        skills: skill_set(rng)
            .into_iter()
            .map(|s| (s, rng.u8(1..=10)))
            .collect(),
        caps: Caps::of([
            (Channel::Voice, 1),
            (Channel::Chat, rng.u16(1..=3)),
            (Channel::Email, rng.u16(2..=5)),
            (Channel::Social, rng.u16(0..=2)),
        ]),
    }
}

impl Bench {
    fn new(agents: u32, seed: u64, available: bool) -> Bench {
        let mut b = Bench {
            engine: Engine::new(Policy::default()).expect("default policy is valid"),
            staff: Vec::new(),
            rng: fastrand::Rng::with_seed(seed),
            now: Time::from_millis(1_700_000_000_000),
            next_id: 1,
            assigned: Vec::new(),
            log: Vec::new(),
        };
        for i in 0..agents {
            let profile = agent_profile(&mut b.rng);
            b.staff.push((
                profile.skills.iter().map(|(s, _)| *s).collect(),
                profile.caps,
            ));
            let agent = AgentId(i);
            b.handle(Event::UpsertAgent { agent, profile });
            if available {
                let presence = Presence::Available;
                b.handle(Event::SetPresence { agent, presence });
            }
        }
        b
    }

    fn handle(&mut self, event: Event) {
        self.engine
            .handle(self.now, event, &mut self.log)
            .expect("benchmark events are valid");
    }

    fn new_contact(&mut self) -> NewContact {
        let id = self.next_id;
        self.next_id += 1;
        let (required, channel) = self.required();
        NewContact {
            id: ContactId(id),
            conversation: Arc::from(format!("conversation-{id}")),
            customer: Arc::from(format!("customer-{}", id % 100_000)),
            channel,
            urgency: Urgency::ALL[self.rng.usize(0..Urgency::COUNT)],
            queue: QueueId(0),
            required: SkillSet::of(required),
            preferred: SkillSet::EMPTY,
            arrived_at: self.now,
        }
    }

    /// A contact that at least one agent can serve: the skills (all, or two of three) and
    /// a channel of a random agent, the channel drawn from the mix until the agent serves
    /// it. Without agents: random skills, any channel.
    fn required(&mut self) -> (Vec<SkillId>, Channel) {
        let mix = |rng: &mut fastrand::Rng| match rng.u8(0..20) {
            0..8 => Channel::Email,
            8..14 => Channel::Chat,
            14..17 => Channel::Voice,
            _ => Channel::Social,
        };
        if self.staff.is_empty() {
            return (skill_set(&mut self.rng), mix(&mut self.rng));
        }
        let (mut skills, caps) = self.staff[self.rng.usize(0..self.staff.len())].clone();
        if skills.len() > 2 && self.rng.bool() {
            skills.swap_remove(self.rng.usize(0..skills.len()));
        }
        loop {
            let channel = mix(&mut self.rng);
            if caps.get(channel) > 0 {
                return (skills, channel);
            }
        }
    }

    /// Accepts every offer made since the log was last drained, and any made meanwhile.
    fn accept_offers(&mut self) {
        while !self.log.is_empty() {
            let offers: Vec<_> = self
                .log
                .drain(..)
                .filter_map(|d| match d {
                    Decision::Offered {
                        offer,
                        agent,
                        contact,
                        ..
                    } => Some((offer, agent, contact)),
                    _ => None,
                })
                .collect();
            for (offer, agent, contact) in offers {
                self.handle(Event::Accept { offer, agent });
                self.assigned.push(contact);
            }
        }
    }

    /// Brings contacts in until `waiting` of them wait, accepting every offer on the way.
    fn fill(&mut self, waiting: usize) {
        while self.engine.waiting_len() < waiting {
            let c = self.new_contact();
            self.handle(Event::Arrive(c));
            self.accept_offers();
        }
    }

    /// A random assigned contact, to close.
    fn pick_assigned(&mut self) -> ContactId {
        let i = self.rng.usize(0..self.assigned.len());
        self.assigned.swap_remove(i)
    }

    /// One step: a close and an arrival, both timed. Returns their latencies in ns.
    fn step(&mut self) -> [u64; 2] {
        self.now = self.now + Duration::from_millis(10);
        let contact = self.pick_assigned();
        let start = Instant::now();
        self.handle(Event::Close { contact });
        let close = start.elapsed().as_nanos() as u64;
        self.accept_offers();
        let c = self.new_contact();
        let start = Instant::now();
        self.handle(Event::Arrive(c));
        let arrive = start.elapsed().as_nanos() as u64;
        self.accept_offers();
        [close, arrive]
    }

    /// The same step where every decision is made by the naive router instead: the time
    /// is that of scanning for the offers the engine's state calls for.
    fn naive_step(&mut self) -> [u64; 2] {
        self.now = self.now + Duration::from_millis(10);
        let contact = self.pick_assigned();
        let mut timed = [0u64; 2];
        for (k, slot) in timed.iter_mut().enumerate() {
            let event = if k == 0 {
                Event::Close { contact }
            } else {
                Event::Arrive(self.new_contact())
            };
            self.engine
                .apply(self.now, event, &mut self.log)
                .expect("benchmark events are valid");
            let start = Instant::now();
            let offers = naive_dispatch(&self.engine);
            *slot = start.elapsed().as_nanos() as u64;
            std::hint::black_box(&offers);
            self.engine.dispatch(&mut self.log);
            self.accept_offers();
        }
        timed
    }
}

struct Figures {
    p50_us: f64,
    p99_us: f64,
    per_sec: f64,
}

fn figures(mut ns: Vec<u64>) -> Figures {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    let total: u64 = ns.iter().sum();
    Figures {
        p50_us: at(0.50),
        p99_us: at(0.99),
        per_sec: ns.len() as f64 / (total as f64 / 1e9),
    }
}

fn measure(agents: u32, waiting: usize, steps: usize, naive_steps: usize) -> String {
    let setup = Instant::now();
    let mut b = Bench::new(agents, 7, true);
    b.fill(waiting);
    let setup = setup.elapsed();
    for _ in 0..steps / 10 {
        b.step();
    }
    let mut ns = Vec::with_capacity(steps * 2);
    for _ in 0..steps {
        ns.extend(b.step());
    }
    let engine = figures(ns);
    let naive = if naive_steps > 0 {
        let mut ns = Vec::with_capacity(naive_steps * 2);
        for _ in 0..naive_steps {
            ns.extend(b.naive_step());
        }
        let f = figures(ns);
        format!("{:>10.1} {:>10.1} {:>12.0}", f.p50_us, f.p99_us, f.per_sec)
    } else {
        format!("{:>10} {:>10} {:>12}", "-", "-", "-")
    };
    format!(
        "{:>7} {:>8} {:>9.2} {:>9.2} {:>12.0} {} {:>8.1}s",
        agents,
        waiting,
        engine.p50_us,
        engine.p99_us,
        engine.per_sec,
        naive,
        setup.as_secs_f64()
    )
}

/// Net heap bytes the engine holds per waiting contact, with every agent offline so that
/// all contacts wait.
fn memory(agents: u32, waiting: usize) -> (f64, usize) {
    let mut b = Bench::new(agents, 11, false);
    let contacts: Vec<NewContact> = (0..waiting).map(|_| b.new_contact()).collect();
    let region = Region::new(GLOBAL);
    for c in contacts {
        b.handle(Event::Arrive(c));
        b.log.clear();
    }
    let change = region.change();
    let net = change.bytes_allocated as isize - change.bytes_deallocated as isize
        + change.bytes_reallocated;
    assert_eq!(b.engine.waiting_len(), waiting);
    (net as f64 / waiting as f64, b.engine.waiting_len())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches` runs bench targets without `--bench`: keep that fast.
        println!("engine benchmark: run with `cargo bench --bench engine`");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let agent_sizes: &[u32] = if quick {
        &[100, 1_000, 10_000]
    } else {
        &[100, 1_000, 10_000, 20_000]
    };
    let waiting_sizes: &[usize] = if quick {
        &[1_000, 100_000]
    } else {
        &[1_000, 100_000, 500_000]
    };
    println!("decision latency per routed event (a close that frees a slot, or an arrival)");
    println!(
        "{:>7} {:>8} {:>9} {:>9} {:>12} {:>10} {:>10} {:>12} {:>9}",
        "agents",
        "waiting",
        "p50 µs",
        "p99 µs",
        "decisions/s",
        "naive p50",
        "naive p99",
        "naive dec/s",
        "setup"
    );
    // `--only AGENTS:WAITING` measures one size and `--engine-only` skips the naive
    // router, for profiling.
    let engine_only = args.iter().any(|a| a == "--engine-only");
    let only: Option<(u32, usize)> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.split_once(':'))
        .and_then(|(a, w)| Some((a.parse().ok()?, w.parse().ok()?)));
    for &waiting in waiting_sizes {
        for &agents in agent_sizes {
            if only.is_some_and(|o| o != (agents, waiting)) {
                continue;
            }
            // The naive router scans contacts × agents per decision: run it where that
            // stays under about 10^8 pair checks per step.
            let pairs = waiting as u64 * u64::from(agents);
            let naive_steps = match pairs {
                _ if engine_only => 0,
                0..=1_000_000 => 500,
                1_000_001..=20_000_000 => 40,
                20_000_001..=100_000_000 => 5,
                _ => 0,
            };
            println!("{}", measure(agents, waiting, 20_000, naive_steps));
        }
    }
    if only.is_some() {
        return;
    }
    println!();
    println!("engine heap per waiting contact (all agents offline, so every contact waits)");
    for &(agents, waiting) in &[(1_000u32, 100_000usize), (20_000, 500_000)] {
        if quick && agents > 10_000 {
            continue;
        }
        let (per, n) = memory(agents, waiting);
        println!("{agents:>7} agents {n:>8} waiting: {per:>7.0} bytes per waiting contact");
    }
}
