//! From runs to answers: each replication's figures, their mean and 95 % confidence
//! interval across replications (Student t), the terminal tables and the JSON.
//!
//! Definitions (the same for the engine and the baseline):
//! - answered: an agent took the contact (accepted it; for the baseline, started on it);
//! - wait: arrival to answer; P(wait): share of answered contacts that found no agent
//!   free when they arrived (their first offer came later; for the baseline, their first
//!   delivery came later or they sat in the agent's inbox);
//!   ASA: mean wait of answered contacts; percentiles and max over answered contacts;
//! - service level: contacts answered within their target over all contacts that arrived
//!   (abandoned and never-answered contacts count as misses);
//! - occupancy of an agent: share of their logged-in time (shifts, plus time after a shift
//!   spent finishing work) holding at least one contact (handling or wrap-up);
//! - occupancy of a queue row: the agent capacity its contacts used (time held divided by
//!   the agent's cap on the channel, so a chat held by an agent with 3 chat slots counts a
//!   third) over all agents' logged-in time; the rows add up to the centre's figure.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};
use switchboard_core::{Channel, Urgency};

use crate::scenario::Model;
use crate::stats::{GroupAcc, Recorder, group_key};

/// A figure across replications: its mean and the half-width of its 95 % confidence
/// interval (`NaN` with a single replication).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub mean: f64,
    pub ci95: f64,
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom.
pub fn t975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        _ => {
            // Cornish-Fisher expansion around the normal quantile; error below 1e-3 here.
            let z: f64 = 1.959_964;
            let d = df as f64;
            z + (z.powi(3) + z) / (4.0 * d)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
        }
    }
}

/// Mean and 95 % confidence half-width of independent observations (NaNs skipped).
pub fn estimate(xs: &[f64]) -> Estimate {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return Estimate {
            mean: f64::NAN,
            ci95: f64::NAN,
        };
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Estimate {
            mean,
            ci95: f64::NAN,
        };
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Estimate {
        mean,
        ci95: t975(n - 1) * (var / n as f64).sqrt(),
    }
}

/// The figures of one row (a queue, channel and urgency; or everything) in one run.
#[derive(Debug, Clone, Copy, Default)]
struct RowRun {
    contacts: f64,
    answered: f64,
    abandoned: f64,
    unanswered: f64,
    misrouted: f64,
    p_wait: f64,
    asa: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    service_level: f64,
    occupancy: f64,
    wait_mae: f64,
    wait_bias: f64,
}

/// The figures of a row, by their JSON names.
pub const ROW_FIELDS: [&str; 15] = [
    "contacts",
    "answered",
    "abandoned",
    "unanswered",
    "misrouted",
    "p_wait",
    "asa_seconds",
    "p50_wait_seconds",
    "p90_wait_seconds",
    "p99_wait_seconds",
    "max_wait_seconds",
    "service_level",
    "occupancy",
    "expected_wait_mae_seconds",
    "expected_wait_bias_seconds",
];

impl RowRun {
    fn of(groups: &[&GroupAcc], staffed_ms: f64) -> RowRun {
        let sum = |f: fn(&GroupAcc) -> u64| groups.iter().map(|g| f(g)).sum::<u64>() as f64;
        let mut waits: Vec<u32> = groups
            .iter()
            .flat_map(|g| g.waits.iter().copied())
            .collect();
        waits.sort_unstable();
        let pct = |p: f64| {
            if waits.is_empty() {
                return f64::NAN;
            }
            let i = ((p * waits.len() as f64).ceil() as usize).clamp(1, waits.len()) - 1;
            f64::from(waits[i]) / 1000.0
        };
        let answered = sum(|g| g.answered);
        let contacts = sum(|g| g.contacts);
        RowRun {
            contacts,
            answered,
            abandoned: sum(|g| g.abandoned),
            unanswered: sum(|g| g.unanswered),
            misrouted: sum(|g| g.misrouted),
            p_wait: sum(|g| g.waited) / answered,
            asa: sum(|g| g.sum_wait_ms) / answered / 1000.0,
            p50: pct(0.5),
            p90: pct(0.9),
            p99: pct(0.99),
            max: waits.last().map_or(f64::NAN, |w| f64::from(*w) / 1000.0),
            service_level: sum(|g| g.within) / contacts,
            occupancy: groups.iter().map(|g| g.capacity_ms).sum::<f64>() / staffed_ms,
            // Of the contacts told an expected wait on arrival: how far the wait they saw
            // was from it (NaN where nobody was told, as in the baseline).
            wait_mae: groups.iter().map(|g| g.told_abs_error_ms).sum::<f64>()
                / sum(|g| g.told)
                / 1000.0,
            wait_bias: groups.iter().map(|g| g.told_error_ms).sum::<f64>()
                / sum(|g| g.told)
                / 1000.0,
        }
    }

    fn values(&self) -> [f64; 15] {
        [
            self.contacts,
            self.answered,
            self.abandoned,
            self.unanswered,
            self.misrouted,
            self.p_wait,
            self.asa,
            self.p50,
            self.p90,
            self.p99,
            self.max,
            self.service_level,
            self.occupancy,
            self.wait_mae,
            self.wait_bias,
        ]
    }
}

/// A row of the report: every figure of [`ROW_FIELDS`] as an [`Estimate`].
#[derive(Debug, Clone)]
pub struct Row {
    /// Queue name, or `all`.
    pub queue: String,
    pub channel: Option<Channel>,
    pub urgency: Option<Urgency>,
    pub target_seconds: Option<f64>,
    /// In the order of `ROW_FIELDS`.
    values: Vec<Estimate>,
}

impl Row {
    /// A figure by its JSON name, for example `service_level`.
    pub fn get(&self, name: &str) -> Estimate {
        let i = ROW_FIELDS
            .iter()
            .position(|f| *f == name)
            .unwrap_or_else(|| panic!("no figure named {name}"));
        self.values[i]
    }

    fn build(queue: String, key: Option<(Channel, Urgency, f64)>, runs: &[RowRun]) -> Row {
        let values = (0..ROW_FIELDS.len())
            .map(|i| estimate(&runs.iter().map(|r| r.values()[i]).collect::<Vec<_>>()))
            .collect();
        Row {
            queue,
            channel: key.map(|k| k.0),
            urgency: key.map(|k| k.1),
            target_seconds: key.map(|k| k.2),
            values,
        }
    }

    fn json(&self) -> Value {
        let mut m = Map::new();
        m.insert("queue".into(), json!(self.queue));
        m.insert("channel".into(), json!(self.channel.map(|c| c.as_str())));
        m.insert("urgency".into(), json!(self.urgency.map(|u| u.as_str())));
        m.insert("target_seconds".into(), json!(self.target_seconds));
        for (name, e) in ROW_FIELDS.iter().zip(&self.values) {
            put(&mut m, name, *e);
        }
        Value::Object(m)
    }
}

/// Inserts `name` and `name_ci95` (JSON `null` where not a number).
pub fn put(m: &mut Map<String, Value>, name: &str, e: Estimate) {
    let num = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    m.insert(name.into(), num(e.mean));
    m.insert(format!("{name}_ci95"), num(e.ci95));
}

/// Per agent group: how busy its agents were.
#[derive(Debug, Clone)]
pub struct AgentRow {
    pub group: String,
    pub agents: usize,
    /// Mean over the group's agents of their occupancy.
    pub occupancy: Estimate,
    /// Contacts handled per agent.
    pub handled: Estimate,
}

/// The time series of a run, averaged over replications.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub every_seconds: f64,
    /// Contacts waiting (arrived, not yet answered) at each sample instant.
    pub waiting: Vec<f64>,
    /// Service level of the contacts that arrived in each interval.
    pub service_level: Vec<f64>,
}

/// Everything one scenario under one policy gave.
#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: String,
    /// `engine` or `baseline`.
    pub policy: String,
    pub replications: u32,
    pub seed: u64,
    /// Per queue, channel and urgency that had contacts.
    pub rows: Vec<Row>,
    /// Every contact together.
    pub total: Row,
    pub agent_groups: Vec<AgentRow>,
    /// Per agent: name, occupancy, contacts handled.
    pub agents: Vec<(String, Estimate, Estimate)>,
    pub series: Series,
}

impl Report {
    /// Summarises the replications `runs` of `model` under `policy`.
    pub fn build(model: &Model, policy: &str, runs: &[Recorder]) -> Report {
        let logged = |r: &Recorder| r.agents.iter().map(|a| a.logged_ms as f64).sum::<f64>();
        let queues: Vec<&str> = model.queue_names().collect();
        let groups = runs.first().map_or(0, |r| r.groups.len());
        let mut rows = Vec::new();
        for g in 0..groups {
            if runs.iter().all(|r| r.groups[g].contacts == 0) {
                continue;
            }
            let (q, c, u) = group_key(g);
            let per_run: Vec<RowRun> = runs
                .iter()
                .map(|r| RowRun::of(&[&r.groups[g]], logged(r)))
                .collect();
            let target = model.target_ms(q, c, u) as f64 / 1000.0;
            rows.push(Row::build(
                queues[q.0 as usize].to_owned(),
                Some((c, u, target)),
                &per_run,
            ));
        }
        let per_run: Vec<RowRun> = runs
            .iter()
            .map(|r| RowRun::of(&r.groups.iter().collect::<Vec<_>>(), logged(r)))
            .collect();
        let total = Row::build("all".into(), None, &per_run);

        let occupancy =
            |r: &Recorder, i: usize| r.agents[i].busy_ms as f64 / r.agents[i].logged_ms as f64;
        let mut agent_groups = Vec::new();
        for (gi, name) in model.groups.iter().enumerate() {
            let members: Vec<usize> = (0..model.agents.len())
                .filter(|&i| model.agents[i].group == gi)
                .collect();
            if members.is_empty() {
                continue;
            }
            let n = members.len() as f64;
            let occ: Vec<f64> = runs
                .iter()
                .map(|r| members.iter().map(|&i| occupancy(r, i)).sum::<f64>() / n)
                .collect();
            let handled: Vec<f64> = runs
                .iter()
                .map(|r| {
                    members
                        .iter()
                        .map(|&i| r.agents[i].handled as f64)
                        .sum::<f64>()
                        / n
                })
                .collect();
            agent_groups.push(AgentRow {
                group: name.clone(),
                agents: members.len(),
                occupancy: estimate(&occ),
                handled: estimate(&handled),
            });
        }
        let agents = model
            .agents
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let occ: Vec<f64> = runs.iter().map(|r| occupancy(r, i)).collect();
                let handled: Vec<f64> = runs.iter().map(|r| r.agents[i].handled as f64).collect();
                (a.name.clone(), estimate(&occ), estimate(&handled))
            })
            .collect();

        let bins = (model.duration_ms / model.sample_every_ms.max(1)) as usize + 1;
        let mean_of = |f: &dyn Fn(&Recorder) -> Option<f64>| {
            let v: Vec<f64> = runs.iter().filter_map(f).collect();
            if v.is_empty() {
                f64::NAN
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let series = Series {
            every_seconds: model.sample_every_ms as f64 / 1000.0,
            waiting: (0..bins)
                .map(|i| mean_of(&|r| r.waiting.get(i).map(|w| f64::from(*w))))
                .collect(),
            service_level: (0..bins)
                .map(|i| {
                    mean_of(&|r| {
                        r.sl_bins
                            .get(i)
                            .filter(|b| b.1 > 0)
                            .map(|b| f64::from(b.0) / f64::from(b.1))
                    })
                })
                .collect(),
        };
        Report {
            scenario: model.name.clone(),
            policy: policy.into(),
            replications: runs.len() as u32,
            seed: model.seed,
            rows,
            total,
            agent_groups,
            agents,
            series,
        }
    }

    /// The report as JSON.
    pub fn json(&self) -> Value {
        let num = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
        json!({
            "scenario": self.scenario,
            "policy": self.policy,
            "replications": self.replications,
            "seed": self.seed,
            "queues": self.rows.iter().map(Row::json).collect::<Vec<_>>(),
            "total": self.total.json(),
            "agent_groups": self.agent_groups.iter().map(|g| {
                let mut m = Map::new();
                m.insert("group".into(), json!(g.group));
                m.insert("agents".into(), json!(g.agents));
                put(&mut m, "occupancy", g.occupancy);
                put(&mut m, "handled_per_agent", g.handled);
                Value::Object(m)
            }).collect::<Vec<_>>(),
            "agents": self.agents.iter().map(|(name, occ, handled)| {
                let mut m = Map::new();
                m.insert("agent".into(), json!(name));
                put(&mut m, "occupancy", *occ);
                put(&mut m, "handled", *handled);
                Value::Object(m)
            }).collect::<Vec<_>>(),
            "series": {
                "every_seconds": self.series.every_seconds,
                "waiting": self.series.waiting.iter().map(|x| num(*x)).collect::<Vec<_>>(),
                "service_level": self.series.service_level.iter().map(|x| num(*x)).collect::<Vec<_>>(),
            },
        })
    }

    /// The report as terminal tables.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} under the {} policy: {} replication(s), seed {}; figures are means ± 95 % CI",
            self.scenario, self.policy, self.replications, self.seed
        );
        let _ = writeln!(
            s,
            "{:<10} {:<7} {:<7} {:>7} {:>8} {:>8} {:>7} {:>7} {:>6} {:>14} {:>7} {:>7} {:>7} {:>7} {:>14} {:>6} {:>9} {:>9}",
            "queue",
            "channel",
            "urgency",
            "target",
            "contacts",
            "answered",
            "abandon",
            "unansw",
            "P(wait)",
            "ASA s",
            "p50 s",
            "p90 s",
            "p99 s",
            "max s",
            "service level",
            "occup",
            "told MAE",
            "told bias"
        );
        for r in self.rows.iter().chain(std::iter::once(&self.total)) {
            let _ = writeln!(
                s,
                "{:<10} {:<7} {:<7} {:>7} {:>8.0} {:>8.0} {:>7.0} {:>7.0} {:>6.1}% {:>14} {:>7.0} {:>7.0} {:>7.0} {:>7.0} {:>14} {:>5.1}% {:>9.1} {:>9.1}",
                r.queue,
                r.channel.map_or("all", |c| c.as_str()),
                r.urgency.map_or("", |u| u.as_str()),
                r.target_seconds.map_or(String::new(), secs),
                r.get("contacts").mean,
                r.get("answered").mean,
                r.get("abandoned").mean,
                r.get("unanswered").mean,
                100.0 * r.get("p_wait").mean,
                pm(r.get("asa_seconds"), 1.0, 1),
                r.get("p50_wait_seconds").mean,
                r.get("p90_wait_seconds").mean,
                r.get("p99_wait_seconds").mean,
                r.get("max_wait_seconds").mean,
                pm(r.get("service_level"), 100.0, 1) + "%",
                100.0 * r.get("occupancy").mean,
                r.get("expected_wait_mae_seconds").mean,
                r.get("expected_wait_bias_seconds").mean,
            );
        }
        let misrouted = self.total.get("misrouted").mean;
        if misrouted > 0.0 {
            let _ = writeln!(
                s,
                "{misrouted:.0} contacts were worked by an agent without a required skill"
            );
        }
        let _ = writeln!(
            s,
            "\n{:<16} {:>6} {:>16} {:>18}",
            "agent group", "agents", "occupancy", "handled per agent"
        );
        for g in &self.agent_groups {
            let _ = writeln!(
                s,
                "{:<16} {:>6} {:>16} {:>18}",
                g.group,
                g.agents,
                pm(g.occupancy, 100.0, 1) + "%",
                pm(g.handled, 1.0, 1)
            );
        }
        s
    }
}

/// `mean ± ci` scaled by `k`.
fn pm(e: Estimate, k: f64, decimals: usize) -> String {
    if e.ci95.is_finite() {
        format!("{:.*} ± {:.*}", decimals, k * e.mean, decimals, k * e.ci95)
    } else {
        format!("{:.*}", decimals, k * e.mean)
    }
}

fn secs(s: f64) -> String {
    if s >= 3600.0 && s % 3600.0 == 0.0 {
        format!("{}h", s / 3600.0)
    } else if s >= 60.0 && s % 60.0 == 0.0 {
        format!("{}m", s / 60.0)
    } else {
        format!("{s}s")
    }
}

/// The rows of two reports matched by (queue, channel, urgency), the totals last.
fn paired(a: &Report, b: &Report) -> Vec<(Option<Row>, Option<Row>)> {
    let key = |r: &Row| (r.queue.clone(), r.channel, r.urgency);
    let mut keys: Vec<_> = a.rows.iter().map(key).collect();
    for r in &b.rows {
        if !keys.contains(&key(r)) {
            keys.push(key(r));
        }
    }
    let find = |rep: &Report, k: &(String, Option<Channel>, Option<Urgency>)| {
        rep.rows.iter().find(|r| key(r) == *k).cloned()
    };
    let mut lines: Vec<(Option<Row>, Option<Row>)> =
        keys.iter().map(|k| (find(a, k), find(b, k))).collect();
    lines.push((Some(a.total.clone()), Some(b.total.clone())));
    lines
}

/// The figures compared side by side.
const COMPARED: [&str; 5] = [
    "service_level",
    "asa_seconds",
    "p90_wait_seconds",
    "abandoned",
    "occupancy",
];

fn figure(r: &Option<Row>, f: &str) -> f64 {
    r.as_ref().map_or(f64::NAN, |r| r.get(f).mean)
}

/// Two reports side by side: for every row of either, the key figures of each and their
/// difference (B − A).
pub fn compare_table(a: &Report, b: &Report) -> String {
    let mut s = String::new();
    let name = |r: &Report| format!("{} ({})", r.scenario, r.policy);
    let _ = writeln!(s, "A = {}\nB = {}", name(a), name(b));
    let _ = writeln!(
        s,
        "{:<10} {:<7} {:<7} {:>26} {:>26} {:>22} {:>22}",
        "queue",
        "channel",
        "urgency",
        "service level A → B",
        "ASA s A → B",
        "p90 wait s A → B",
        "abandoned A → B"
    );
    for (ra, rb) in paired(a, b) {
        let any = ra.as_ref().or(rb.as_ref()).expect("one side has the row");
        let cell = |f: &str, k: f64, d: usize| {
            let (x, y) = (k * figure(&ra, f), k * figure(&rb, f));
            format!("{x:.d$} → {y:.d$} ({:+.d$})", y - x)
        };
        let _ = writeln!(
            s,
            "{:<10} {:<7} {:<7} {:>26} {:>26} {:>22} {:>22}",
            any.queue,
            any.channel.map_or("all", |c| c.as_str()),
            any.urgency.map_or("", |u| u.as_str()),
            cell("service_level", 100.0, 1),
            cell("asa_seconds", 1.0, 1),
            cell("p90_wait_seconds", 1.0, 0),
            cell("abandoned", 1.0, 0),
        );
    }
    s
}

/// Two reports as JSON: both in full under `runs`, and under `differences` the key figures
/// of every row as B − A.
pub fn compare_json(a: &Report, b: &Report) -> Value {
    let num = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    let differences: Vec<Value> = paired(a, b)
        .into_iter()
        .map(|(ra, rb)| {
            let any = ra.as_ref().or(rb.as_ref()).expect("one side has the row");
            let mut m = Map::new();
            m.insert("queue".into(), json!(any.queue));
            m.insert("channel".into(), json!(any.channel.map(|c| c.as_str())));
            m.insert("urgency".into(), json!(any.urgency.map(|u| u.as_str())));
            for f in COMPARED {
                m.insert(f.into(), num(figure(&rb, f) - figure(&ra, f)));
            }
            Value::Object(m)
        })
        .collect();
    json!({
        "a": format!("{} ({})", a.scenario, a.policy),
        "b": format!("{} ({})", b.scenario, b.policy),
        "runs": [a.json(), b.json()],
        "differences": differences,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        assert_eq!(t975(4), 2.776);
        assert!((t975(40) - 2.021).abs() < 1e-3, "{}", t975(40));
        assert!((t975(120) - 1.980).abs() < 1e-3, "{}", t975(120));
    }

    #[test]
    fn an_estimate_has_the_textbook_interval() {
        let e = estimate(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(e.mean, 3.0);
        // s = sqrt(2.5), n = 5, t = 2.776.
        assert!((e.ci95 - 2.776 * (2.5f64 / 5.0).sqrt()).abs() < 1e-12);
        assert!(estimate(&[7.0]).ci95.is_nan());
        assert_eq!(estimate(&[f64::NAN, 2.0, 4.0]).mean, 3.0);
    }
}
