//! Where contacts come from: non-homogeneous Poisson streams (a piecewise-constant rate
//! over the day) and replayed CSV files, merged into one time-ordered list per replication,
//! with each contact's handling time and patience drawn up front. Drawing them up front,
//! each stream from its own generator, is what lets the engine and the baseline (or two
//! staffing plans) see exactly the same contacts.
//!
//! # Replay CSV format
//!
//! One contact a row, with a header row; columns in any order:
//!
//! | column | meaning |
//! |---|---|
//! | `arrived_at` | seconds from the start of the simulated day (decimals allowed) |
//! | `channel` | `email`, `chat`, `voice`, `social` or `sms` |
//! | `queue` | a queue of the scenario |
//! | `urgency` | `low`, `normal`, `high` or `urgent`; empty: `normal` |
//! | `skills` | required skills separated by `;` or spaces; may be empty |
//! | `handling` | seconds of handling if known; empty: drawn from `handling.<channel>` |
//! | `patience` | seconds the customer would wait if known; empty: drawn from `patience.<channel>` (never leaves if that is not set) |
//!
//! [`replay_from_audit`] turns an audit log (what went into the engine and what came out)
//! into these rows and [`write_replay`] writes them: the store's export command, when the
//! store lands, is those two calls over its log.

use std::path::Path;

use rustc_hash::FxHashMap;
use serde::Deserialize;
use switchboard_core::{
    Channel, ContactId, Decision, Event, QueueId, SkillId, SkillSet, Time, Urgency,
};

use crate::SimError;
use crate::dist::{self, Dist, SimRng};
use crate::scenario::Model;

/// One contact as the simulator feeds it, identical for every policy it is run under.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// Milliseconds of simulated time.
    pub at: u64,
    pub queue: QueueId,
    pub channel: Channel,
    pub urgency: Urgency,
    pub required: SkillSet,
    /// Handling time, from acceptance to wrap-up, in milliseconds.
    pub handle_ms: u64,
    /// How long the customer waits before leaving, if ever.
    pub patience_ms: Option<u64>,
}

/// One row of a replay file; what it leaves out is drawn per replication.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayRow {
    pub at: u64,
    pub queue: QueueId,
    pub channel: Channel,
    pub urgency: Urgency,
    pub required: SkillSet,
    pub handle_ms: Option<u64>,
    pub patience_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct CsvRow {
    arrived_at: f64,
    channel: String,
    queue: String,
    #[serde(default)]
    urgency: String,
    #[serde(default)]
    skills: String,
    handling: Option<f64>,
    patience: Option<f64>,
}

/// Reads a replay file; `queue` and `skill` map names to the scenario's numbers.
pub fn read_replay(
    path: &Path,
    queue: &dyn Fn(&str) -> Option<QueueId>,
    skill: &dyn Fn(&str) -> Option<usize>,
) -> Result<Vec<ReplayRow>, SimError> {
    let bad = |line: u64, reason: String| SimError::Replay {
        file: path.to_owned(),
        line,
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| bad(0, e.to_string()))?;
    let mut rows = Vec::new();
    for record in reader.deserialize::<CsvRow>() {
        let line_of = |e: &csv::Error| e.position().map_or(0, |p| p.line());
        let r = record.map_err(|e| bad(line_of(&e), e.to_string()))?;
        let line = rows.len() as u64 + 2;
        let secs = |v: f64, what: &str| {
            if v.is_finite() && v >= 0.0 {
                Ok((v * 1000.0).round() as u64)
            } else {
                Err(bad(
                    line,
                    format!("{what} must be seconds at or above zero"),
                ))
            }
        };
        let channel = Channel::parse(&r.channel)
            .ok_or_else(|| bad(line, format!("unknown channel {:?}", r.channel)))?;
        let queue =
            queue(&r.queue).ok_or_else(|| bad(line, format!("unknown queue {:?}", r.queue)))?;
        let urgency = match r.urgency.as_str() {
            "" => Urgency::Normal,
            u => Urgency::ALL
                .into_iter()
                .find(|x| x.as_str() == u)
                .ok_or_else(|| bad(line, format!("unknown urgency {u:?}")))?,
        };
        let mut required = SkillSet::EMPTY;
        for s in r.skills.split([';', ' ']).filter(|s| !s.is_empty()) {
            let id = skill(s)
                .ok_or_else(|| bad(line, format!("skill {s:?} is held by no agent group")))?;
            required.insert(SkillId(id as u8));
        }
        if channel == Channel::Email && r.patience.is_some() {
            return Err(bad(line, "email customers do not abandon".into()));
        }
        rows.push(ReplayRow {
            at: secs(r.arrived_at, "arrived_at")?,
            queue,
            channel,
            urgency,
            required,
            handle_ms: r.handling.map(|h| secs(h, "handling")).transpose()?,
            patience_ms: r.patience.map(|p| secs(p, "patience")).transpose()?,
        });
    }
    rows.sort_by_key(|r| r.at);
    Ok(rows)
}

/// One entry of an audit log: an input the engine took, or a decision it made.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditEntry {
    Event(Event),
    Decision(Decision),
}

/// The contacts of an audit log as replay rows, in arrival order: each arrival with its
/// attributes; the handling time where the log shows both the assignment and the start of
/// wrap-up; the patience where the customer left (they waited exactly that long). An
/// answered customer's patience is unknown (only that it exceeded their wait), so it is
/// left out and drawn from the scenario.
pub fn replay_from_audit(entries: impl IntoIterator<Item = (Time, AuditEntry)>) -> Vec<ReplayRow> {
    let mut rows: Vec<ReplayRow> = Vec::new();
    let mut index: FxHashMap<ContactId, (usize, Option<Time>)> = FxHashMap::default();
    for (at, entry) in entries {
        match entry {
            AuditEntry::Event(Event::Arrive(c)) => {
                index.insert(c.id, (rows.len(), None));
                rows.push(ReplayRow {
                    at: c.arrived_at.as_millis(),
                    queue: c.queue,
                    channel: c.channel,
                    urgency: c.urgency,
                    required: c.required,
                    handle_ms: None,
                    patience_ms: None,
                });
            }
            AuditEntry::Decision(Decision::Assigned { contact, .. }) => {
                if let Some((_, assigned)) = index.get_mut(&contact) {
                    assigned.get_or_insert(at);
                }
            }
            AuditEntry::Decision(Decision::WrapUpStarted { contact, .. }) => {
                if let Some(&(i, Some(assigned))) = index.get(&contact) {
                    rows[i]
                        .handle_ms
                        .get_or_insert(at.since(assigned).as_millis() as u64);
                }
            }
            AuditEntry::Decision(Decision::Abandoned { contact, waited }) => {
                if let Some(&(i, _)) = index.get(&contact) {
                    rows[i].patience_ms = Some(waited.as_millis() as u64);
                }
            }
            AuditEntry::Event(_) | AuditEntry::Decision(_) => {}
        }
    }
    rows.sort_by_key(|r| r.at);
    rows
}

/// Writes replay rows as a CSV file in the format above, naming queues and skills as
/// `model` does.
pub fn write_replay(rows: &[ReplayRow], model: &Model, path: &Path) -> Result<(), SimError> {
    let fail = |reason: String| SimError::Replay {
        file: path.to_owned(),
        line: 0,
        reason,
    };
    let secs = |ms: u64| format!("{}.{:03}", ms / 1000, ms % 1000);
    let mut w = csv::Writer::from_path(path).map_err(|e| fail(e.to_string()))?;
    w.write_record([
        "arrived_at",
        "channel",
        "queue",
        "urgency",
        "skills",
        "handling",
        "patience",
    ])
    .map_err(|e| fail(e.to_string()))?;
    for r in rows {
        let skills: Vec<&str> = r
            .required
            .iter()
            .map(|s| model.skills[s.0 as usize].as_str())
            .collect();
        w.write_record([
            secs(r.at),
            r.channel.to_string(),
            model.policy.queues[r.queue.0 as usize].name.clone(),
            r.urgency.to_string(),
            skills.join(";"),
            r.handle_ms.map(secs).unwrap_or_default(),
            r.patience_ms.map(secs).unwrap_or_default(),
        ])
        .map_err(|e| fail(e.to_string()))?;
    }
    w.flush().map_err(|e| fail(e.to_string()))
}

// Generator streams: one per arrival stream for times and one for handling and patience,
// one for the replay file's missing values.
const REPLAY_STREAM: u64 = 1;
fn stream_times(i: usize) -> u64 {
    1000 + 2 * i as u64
}
fn stream_work(i: usize) -> u64 {
    1001 + 2 * i as u64
}

fn draw(dist: &Option<Dist>, rng: &mut SimRng) -> Option<u64> {
    dist.as_ref().map(|d| d.sample_ms(rng))
}

/// Every contact of one replication of `model`, in time order.
pub fn generate(model: &Model, replication: u64) -> Vec<Arrival> {
    let mut all: Vec<Arrival> = Vec::new();
    let mut rng = dist::rng(model.seed, replication, REPLAY_STREAM);
    for r in &model.replay {
        let c = r.channel.index();
        all.push(Arrival {
            at: r.at,
            queue: r.queue,
            channel: r.channel,
            urgency: r.urgency,
            required: r.required,
            handle_ms: r
                .handle_ms
                .or_else(|| draw(&model.handling[c], &mut rng))
                .expect("validated: handling known or drawable"),
            patience_ms: r.patience_ms.or_else(|| draw(&model.patience[c], &mut rng)),
        });
    }
    for (i, s) in model.streams.iter().enumerate() {
        let mut times = dist::rng(model.seed, replication, stream_times(i));
        let mut work = dist::rng(model.seed, replication, stream_work(i));
        let handling = model.handling[s.channel.index()]
            .as_ref()
            .expect("validated: handling for every stream's channel");
        let patience = &model.patience[s.channel.index()];
        for at in poisson_times(&s.rates, model.duration_ms, &mut times) {
            all.push(Arrival {
                at,
                queue: s.queue,
                channel: s.channel,
                urgency: s.urgency,
                required: s.required,
                handle_ms: handling.sample_ms(&mut work),
                patience_ms: draw(patience, &mut work),
            });
        }
    }
    // Stable: equal times keep replay first, then stream order.
    all.sort_by_key(|a| a.at);
    all
}

/// Arrival instants (ms) of a Poisson process whose rate (per ms) is `rates[i].1` from
/// `rates[i].0` until the next step, over `[0, end)`. Exact, not thinned: the process is
/// memoryless, so at each step boundary the next gap is drawn afresh at the new rate.
pub fn poisson_times(rates: &[(u64, f64)], end: u64, rng: &mut SimRng) -> Vec<u64> {
    let mut out = Vec::new();
    for (i, &(from, rate)) in rates.iter().enumerate() {
        let until = rates.get(i + 1).map_or(end, |r| r.0).min(end) as f64;
        let mut t = from as f64;
        if rate <= 0.0 || t >= until {
            continue;
        }
        let gap = Dist::exponential_ms(1.0 / rate);
        loop {
            // Continuous time, rounded only on output, so rounding never accumulates.
            t += gap.sample_ms_f64(rng);
            if t >= until {
                break;
            }
            out.push(t.round() as u64);
        }
    }
    out
}

/// An endless Poisson stream for the M/M/c mode: arrivals at `rate_per_ms` on one queue and
/// channel with exponential handling, drawn lazily so ten million contacts need no memory.
#[derive(Debug)]
pub struct PoissonSource {
    t: f64,
    gap: Dist,
    handling: Dist,
    channel: Channel,
    times: SimRng,
    work: SimRng,
    left: u64,
}

impl PoissonSource {
    /// `count` contacts on `channel` of queue 0.
    pub fn new(
        rate_per_ms: f64,
        mean_handle_ms: f64,
        channel: Channel,
        count: u64,
        seed: u64,
    ) -> PoissonSource {
        PoissonSource {
            t: 0.0,
            gap: Dist::exponential_ms(1.0 / rate_per_ms),
            handling: Dist::exponential_ms(mean_handle_ms),
            channel,
            times: dist::rng(seed, 0, stream_times(0)),
            work: dist::rng(seed, 0, stream_work(0)),
            left: count,
        }
    }
}

impl Iterator for PoissonSource {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.t += self.gap.sample_ms_f64(&mut self.times);
        Some(Arrival {
            at: self.t.round() as u64,
            queue: QueueId(0),
            channel: self.channel,
            urgency: Urgency::Normal,
            required: SkillSet::EMPTY,
            handle_ms: self.handling.sample_ms(&mut self.work),
            patience_ms: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_counts_follow_the_rate_table() {
        let hour = 3_600_000;
        // 100/h for 8 h, nothing for 8 h, 400/h for 8 h.
        let rates = [
            (0, 100.0 / hour as f64),
            (8 * hour, 0.0),
            (16 * hour, 400.0 / hour as f64),
        ];
        let mut rng = dist::rng(3, 0, 0);
        let t = poisson_times(&rates, 24 * hour, &mut rng);
        let count = |a: u64, b: u64| {
            t.iter()
                .filter(|x| (a * hour..b * hour).contains(*x))
                .count()
        };
        // Means 800, 0 and 3200, standard deviations about 28 and 57.
        assert!((700..900).contains(&count(0, 8)), "{}", count(0, 8));
        assert_eq!(count(8, 16), 0);
        assert!((3000..3400).contains(&count(16, 24)), "{}", count(16, 24));
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn the_lazy_source_has_the_asked_rate_and_length() {
        let src = PoissonSource::new(0.001, 5000.0, Channel::Voice, 50_000, 9);
        let v: Vec<Arrival> = src.collect();
        assert_eq!(v.len(), 50_000);
        let rate = v.len() as f64 / v.last().unwrap().at as f64;
        assert!((rate - 0.001).abs() < 0.00003, "{rate}");
        let mean = v.iter().map(|a| a.handle_ms as f64).sum::<f64>() / v.len() as f64;
        assert!((mean - 5000.0).abs() < 100.0, "{mean}");
    }
}
