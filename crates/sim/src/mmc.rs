//! The M/M/c mode: one queue of identical agents (cap 1 on one channel), Poisson arrivals,
//! exponential handling, every offer accepted at the instant it is made, one urgency (so
//! the engine's earliest-deadline-first order is first come, first served), no
//! abandonment. Run through the real engine, its P(wait), ASA, service level and
//! occupancy can be held against Erlang C ([`crate::erlang`]).
//!
//! Confidence intervals come from batch means: the first tenth of the contacts is
//! discarded as warm-up and the rest split into consecutive batches, each batch giving one
//! observation of every figure.

use std::time::Duration;

use switchboard_core::{AgentProfile, Caps, Channel, OfflineBehaviour, Policy};

use crate::SimError;
use crate::arrivals::PoissonSource;
use crate::dist::Dist;
use crate::driver::run_engine;
use crate::erlang::Mmc;
use crate::report::{Estimate, estimate, put};
use crate::scenario::{AgentSpec, Behaviour, Model};
use crate::stats::Recorder;

/// What to simulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MmcParams {
    /// Contacts a second.
    pub rate: f64,
    /// Mean handling time, seconds.
    pub aht: f64,
    pub agents: u32,
    /// Service-level target, seconds.
    pub target: f64,
    /// Contacts to simulate, warm-up included.
    pub contacts: u64,
    pub seed: u64,
    /// Batches for the batch means.
    pub batches: u32,
}

/// The simulated figures with their 95 % intervals, and Erlang C's.
#[derive(Debug, Clone)]
pub struct MmcReport {
    pub params: MmcParams,
    pub warmup_contacts: u64,
    pub p_wait: Estimate,
    pub asa_seconds: Estimate,
    pub service_level: Estimate,
    pub occupancy: Estimate,
    /// `None` if the load reaches the agents (no steady state to compare with).
    pub erlang_c: Option<Mmc>,
}

const CHANNEL: Channel = Channel::Chat;

fn model(p: &MmcParams) -> Result<Model, SimError> {
    let invalid = |key: &str, reason: &str| SimError::Invalid {
        file: "--mmc".into(),
        key: key.into(),
        reason: reason.into(),
    };
    if !(p.rate.is_finite() && p.rate > 0.0) {
        return Err(invalid("--rate", "must be above zero"));
    }
    if !(p.aht.is_finite() && p.aht > 0.0) {
        return Err(invalid("--aht", "must be above zero"));
    }
    if !(p.target.is_finite() && p.target > 0.0) {
        return Err(invalid("--target", "must be above zero"));
    }
    if p.agents == 0 {
        return Err(invalid("--agents", "must be at least 1"));
    }
    if p.batches < 2 || p.contacts < 10 * u64::from(p.batches) {
        return Err(invalid(
            "--contacts",
            "must be at least ten per batch, with at least two batches",
        ));
    }
    let mut policy = Policy::default();
    let ch = &mut policy.channels[CHANNEL.index()];
    ch.targets = [Duration::from_secs_f64(p.target); 4];
    // Offers are accepted at once; a timeout can never fire.
    ch.offer_timeout = Duration::from_secs(365 * 24 * 3600);
    ch.wrap_up = Duration::ZERO;
    ch.exclusive = false;
    policy.max_missed_offers = 0;
    policy.on_offline = OfflineBehaviour::Keep;
    let profile = AgentProfile {
        caps: Caps::of([(CHANNEL, 1)]),
        ..AgentProfile::default()
    };
    Ok(Model {
        name: "mmc".into(),
        policy,
        skills: Vec::new(),
        groups: vec!["agents".into()],
        agents: (0..p.agents)
            .map(|i| AgentSpec {
                name: format!("agent-{}", i + 1),
                group: 0,
                profile: profile.clone(),
                shifts: vec![(0, u64::MAX)],
                queues: Vec::new(),
                prefetch: 1,
            })
            .collect(),
        behaviour: Behaviour {
            accept_delay: Dist::constant_ms(0),
            decline: 0.0,
            no_answer: 0.0,
            away_for_ms: 1,
        },
        streams: Vec::new(),
        replay: Vec::new(),
        handling: Default::default(),
        patience: Default::default(),
        duration_ms: u64::MAX,
        sample_every_ms: 0,
        replications: 1,
        seed: p.seed,
    })
}

/// Runs the M/M/c mode.
pub fn run_mmc(p: MmcParams) -> Result<MmcReport, SimError> {
    let m = model(&p)?;
    let warmup = p.contacts / 10;
    let batch_len = (p.contacts - warmup) / u64::from(p.batches);
    let rec = Recorder::new(1, p.agents as usize, 0).with_batches(warmup, batch_len);
    let source = PoissonSource::new(p.rate / 1000.0, p.aht * 1000.0, CHANNEL, p.contacts, p.seed);
    let rec = run_engine(&m, source, 0, rec)?;
    // A last, shorter batch (from the rounding of the split) is dropped.
    let batches = &rec.batches[..p.batches as usize];
    let per = |f: &dyn Fn(&crate::stats::BatchAcc) -> f64| {
        estimate(&batches.iter().map(f).collect::<Vec<_>>())
    };
    let c = f64::from(p.agents);
    Ok(MmcReport {
        params: p,
        warmup_contacts: warmup,
        p_wait: per(&|b| b.waited as f64 / b.answered as f64),
        asa_seconds: per(&|b| b.sum_wait_ms as f64 / b.answered as f64 / 1000.0),
        service_level: per(&|b| b.within as f64 / b.answered as f64),
        occupancy: per(&|b| b.work_ms as f64 / (c * (b.last_at - b.first_at) as f64)),
        erlang_c: Mmc::new(p.rate, p.aht, p.agents, p.target),
    })
}

impl MmcReport {
    /// As JSON: `p_wait`, `asa_seconds`, `service_level`, `occupancy`, each with a
    /// `_ci95` half-width, and Erlang C's figures under `erlang_c`.
    pub fn json(&self) -> serde_json::Value {
        let p = &self.params;
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("rate", serde_json::json!(p.rate)),
            ("aht_seconds", serde_json::json!(p.aht)),
            ("agents", serde_json::json!(p.agents)),
            ("target_seconds", serde_json::json!(p.target)),
            ("contacts", serde_json::json!(p.contacts)),
            ("seed", serde_json::json!(p.seed)),
            ("warmup_contacts", serde_json::json!(self.warmup_contacts)),
            ("batches", serde_json::json!(p.batches)),
        ] {
            m.insert(k.into(), v);
        }
        put(&mut m, "p_wait", self.p_wait);
        put(&mut m, "asa_seconds", self.asa_seconds);
        put(&mut m, "service_level", self.service_level);
        put(&mut m, "occupancy", self.occupancy);
        m.insert("erlang_c".into(), serde_json::json!(self.erlang_c));
        serde_json::Value::Object(m)
    }

    /// As a terminal table: simulated against Erlang C.
    pub fn table(&self) -> String {
        let p = &self.params;
        let mut s = format!(
            "M/M/c: {} contacts/s, {} s mean handling, {} agents, target {} s; {} contacts \
             ({} warm-up), {} batches, seed {}\n",
            p.rate, p.aht, p.agents, p.target, p.contacts, self.warmup_contacts, p.batches, p.seed
        );
        s += &format!(
            "{:<14} {:>22} {:>12} {:>8}\n",
            "figure", "simulated ± 95% CI", "Erlang C", "in CI"
        );
        let theory = self.erlang_c;
        for (name, e, t) in [
            ("P(wait)", self.p_wait, theory.map(|t| t.p_wait)),
            ("ASA (s)", self.asa_seconds, theory.map(|t| t.asa_seconds)),
            (
                "service level",
                self.service_level,
                theory.map(|t| t.service_level),
            ),
            ("occupancy", self.occupancy, theory.map(|t| t.occupancy)),
        ] {
            let inside = t.map_or("-".to_owned(), |t| {
                if (e.mean - t).abs() <= e.ci95 {
                    "yes"
                } else {
                    "no"
                }
                .to_owned()
            });
            s += &format!(
                "{:<14} {:>22} {:>12} {:>8}\n",
                name,
                format!("{:.5} ± {:.5}", e.mean, e.ci95),
                t.map_or("-".to_owned(), |t| format!("{t:.5}")),
                inside
            );
        }
        s
    }
}
