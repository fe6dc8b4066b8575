//! Scenario files: what a simulation runs. A TOML file (documented in
//! `config/scenarios/`) is parsed with unknown keys refused, then [`ScenarioFile::validate`]
//! checks what the types cannot and builds a [`Model`]: the engine's [`Policy`], the agents
//! with their skills, caps and shifts, the arrival streams, and the behaviour of agents and
//! customers. Every error names the file, the key and the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use switchboard_core::{
    AgentProfile, Caps, Channel, ChannelPolicy, OfflineBehaviour, Policy, QueueId, QueuePolicy,
    SkillId, SkillSet, TeamId, TeamSet, Urgency,
};

use crate::SimError;
use crate::arrivals::{self, ReplayRow};
use crate::dist::{Dist, DistConfig};

/// A scenario file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Length, seed and replications.
    #[serde(default)]
    pub simulation: SimulationConfig,
    /// Engine-wide routing rules.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// Per-channel routing rules, as in the daemon's configuration.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// The queues, as in the daemon's configuration; the first is the default.
    #[serde(default)]
    pub queues: Vec<QueueConfig>,
    /// Handling time per channel: from acceptance to wrap-up.
    #[serde(default)]
    pub handling: BTreeMap<String, DistConfig>,
    /// Customer patience per channel: how long they wait before leaving (none: never).
    #[serde(default)]
    pub patience: BTreeMap<String, DistConfig>,
    /// Poisson arrival streams.
    #[serde(default)]
    pub arrivals: Vec<StreamConfig>,
    /// Arrivals replayed from a CSV file.
    pub replay: Option<ReplayConfig>,
    /// How agents answer offers.
    #[serde(default)]
    pub behaviour: BehaviourConfig,
    /// The work-queue baseline.
    #[serde(default)]
    pub baseline: BaselineConfig,
    /// The agents, in groups of identical agents.
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
}

/// `[simulation]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulationConfig {
    /// Simulated time over which contacts arrive (the day); the run continues until the
    /// work in hand is done.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Independent replications, for confidence intervals.
    pub replications: u32,
    /// Seed of every random draw.
    pub seed: u64,
    /// Interval of the time series (waiting contacts, service level) in reports and plots.
    #[serde(with = "humantime_serde")]
    pub sample_every: Duration,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            duration: Duration::from_secs(24 * 3600),
            replications: 5,
            seed: 1,
            sample_every: Duration::from_secs(15 * 60),
        }
    }
}

/// `[routing]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// After this many offers in a row expire unanswered, the agent is set away (0: never).
    pub max_missed_offers: u32,
    /// `keep` or `requeue`: what happens to an agent's work when their shift ends.
    pub on_offline: OfflineBehaviour,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        let p = Policy::default();
        RoutingConfig {
            max_missed_offers: p.max_missed_offers,
            on_offline: p.on_offline,
        }
    }
}

/// `[channels.<name>]`, as in the daemon's configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Service-level targets by urgency.
    #[serde(default)]
    pub targets: Targets,
    /// How long an agent has to accept an offer.
    #[serde(default, with = "humantime_serde::option")]
    pub offer_timeout: Option<Duration>,
    /// Whether an agent with work on this channel is offered nothing else.
    pub exclusive: Option<bool>,
    /// How long wrap-up holds the agent's slot after handling.
    #[serde(default, with = "humantime_serde::option")]
    pub wrap_up: Option<Duration>,
}

/// Targets by urgency; a missing one keeps the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default, with = "humantime_serde::option")]
    pub low: Option<Duration>,
    #[serde(default, with = "humantime_serde::option")]
    pub normal: Option<Duration>,
    #[serde(default, with = "humantime_serde::option")]
    pub high: Option<Duration>,
    #[serde(default, with = "humantime_serde::option")]
    pub urgent: Option<Duration>,
}

impl Targets {
    fn get(&self, urgency: Urgency) -> Option<Duration> {
        match urgency {
            Urgency::Low => self.low,
            Urgency::Normal => self.normal,
            Urgency::High => self.high,
            Urgency::Urgent => self.urgent,
        }
    }
}

/// `[[queues]]`, as in the daemon's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Unique name.
    pub name: String,
    /// Teams whose agents may serve the queue; empty: every team.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Teams that may serve it once a contact has waited `overflow_after`.
    #[serde(default)]
    pub overflow_teams: Vec<String>,
    /// Wait before the overflow teams become eligible.
    #[serde(default, with = "humantime_serde")]
    pub overflow_after: Duration,
    /// Per channel, targets that replace the channel's own.
    #[serde(default)]
    pub targets: BTreeMap<String, Targets>,
}

/// `[[arrivals]]`: a Poisson stream of contacts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// The queue the contacts go to.
    pub queue: String,
    /// Their channel.
    pub channel: String,
    /// Their urgency.
    #[serde(default = "normal")]
    pub urgency: Urgency,
    /// Skills an agent must hold to take them.
    #[serde(default)]
    pub skills: Vec<String>,
    /// The arrival rate over the day: from each `from`, `per_hour` contacts an hour on
    /// average, until the next entry (the first entry starts at 0s, implied if left out).
    pub rates: Vec<RateConfig>,
}

fn normal() -> Urgency {
    Urgency::Normal
}

/// One step of a rate table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// From this time of the simulated day.
    #[serde(with = "humantime_serde")]
    pub from: Duration,
    /// Contacts an hour on average.
    pub per_hour: f64,
}

/// `[replay]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// The CSV file, relative to the scenario file (format in `config/scenarios/README.md`).
    pub file: PathBuf,
}

/// `[behaviour]`: how agents answer offers (the same for the engine and the baseline).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BehaviourConfig {
    /// Time from an offer to the agent's answer.
    pub accept_delay: DistConfig,
    /// Probability that an agent declines an offer.
    pub decline: f64,
    /// Probability that an agent does not answer at all (the offer expires).
    pub no_answer: f64,
    /// How long an agent the engine set away (missed offers) stays away.
    #[serde(with = "humantime_serde")]
    pub away_for: Duration,
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        BehaviourConfig {
            accept_delay: DistConfig::Constant {
                value: Duration::ZERO,
            },
            decline: 0.0,
            no_answer: 0.0,
            away_for: Duration::from_secs(300),
        }
    }
}

/// `[baseline]`: the plain work queue the engine is compared with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Unacknowledged contacts a consumer (agent) holds at most, whatever the channel.
    pub prefetch: u16,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig { prefetch: 1 }
    }
}

/// `[[agents]]`: a group of identical agents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The group's name; agents are named `<name>-1`, `<name>-2`, …
    pub name: String,
    /// How many agents.
    #[serde(default = "one")]
    pub count: u32,
    /// Teams they belong to.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Skills with proficiency 1..=10.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Concurrent contacts per channel; a channel left out is not served.
    pub caps: BTreeMap<String, u16>,
    /// Concurrent contacts across channels, if limited.
    pub total_cap: Option<u16>,
    /// When they work; left out: the whole simulated day.
    #[serde(default)]
    pub shifts: Vec<ShiftConfig>,
    /// Baseline only: the work queues they consume from; empty: every queue.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Baseline only: their prefetch, overriding `baseline.prefetch`.
    pub prefetch: Option<u16>,
}

fn one() -> u32 {
    1
}

/// One shift.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftConfig {
    /// Start, as time of the simulated day.
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    /// End.
    #[serde(with = "humantime_serde")]
    pub end: Duration,
}

/// An agent ready to simulate.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// `<group>-<n>`.
    pub name: String,
    /// Index into [`Model::groups`].
    pub group: usize,
    /// Skills, teams and caps, as the engine takes them.
    pub profile: AgentProfile,
    /// Shifts in milliseconds of simulated time, sorted, not overlapping.
    pub shifts: Vec<(u64, u64)>,
    /// Baseline: the queues consumed from.
    pub queues: Vec<QueueId>,
    /// Baseline: the prefetch.
    pub prefetch: u16,
}

/// How agents answer offers, ready to sample.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub accept_delay: Dist,
    pub decline: f64,
    pub no_answer: f64,
    pub away_for_ms: u64,
}

/// A Poisson stream ready to draw from.
#[derive(Debug, Clone)]
pub struct Stream {
    pub queue: QueueId,
    pub channel: Channel,
    pub urgency: Urgency,
    pub required: SkillSet,
    /// (from, contacts per millisecond), sorted by `from`.
    pub rates: Vec<(u64, f64)>,
}

/// A validated scenario: everything a run needs.
#[derive(Debug, Clone)]
pub struct Model {
    /// The scenario's name (its file name without extension).
    pub name: String,
    /// The engine's policy.
    pub policy: Policy,
    /// Skill names by number.
    pub skills: Vec<String>,
    /// Agent group names.
    pub groups: Vec<String>,
    pub agents: Vec<AgentSpec>,
    pub behaviour: Behaviour,
    pub streams: Vec<Stream>,
    /// Replayed arrivals, sorted by time; handling and patience filled per replication
    /// where the file leaves them out.
    pub replay: Vec<ReplayRow>,
    /// Handling time per channel.
    pub handling: [Option<Dist>; Channel::COUNT],
    /// Patience per channel (none: customers never leave).
    pub patience: [Option<Dist>; Channel::COUNT],
    pub duration_ms: u64,
    pub sample_every_ms: u64,
    pub replications: u32,
    pub seed: u64,
}

impl Model {
    /// The queue names, by [`QueueId`].
    pub fn queue_names(&self) -> impl Iterator<Item = &str> {
        self.policy.queues.iter().map(|q| q.name.as_str())
    }

    /// The service-level target of a contact, in milliseconds.
    pub fn target_ms(&self, queue: QueueId, channel: Channel, urgency: Urgency) -> u64 {
        self.policy.target(queue, channel, urgency).as_millis() as u64
    }
}

/// Names mapped to small numbers, in order of first appearance.
#[derive(Debug, Default)]
struct Names(Vec<String>);

impl Names {
    fn intern(&mut self, name: &str, limit: usize) -> Option<usize> {
        if let Some(i) = self.0.iter().position(|n| n == name) {
            return Some(i);
        }
        (self.0.len() < limit).then(|| {
            self.0.push(name.to_owned());
            self.0.len() - 1
        })
    }

    fn get(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|n| n == name)
    }
}

/// Reads and validates a scenario file.
pub fn load(file: &Path) -> Result<Model, SimError> {
    let text = std::fs::read_to_string(file).map_err(|source| SimError::Read {
        file: file.to_owned(),
        source,
    })?;
    parse(&text, file)
}

/// Parses and validates scenario text; `file` names it in errors and anchors the replay
/// file's relative path.
pub fn parse(text: &str, file: &Path) -> Result<Model, SimError> {
    let parsed: ScenarioFile = toml::from_str(text).map_err(|e| SimError::Parse {
        file: file.to_owned(),
        reason: e.to_string(),
    })?;
    parsed.validate(file)
}

fn parse_channel(name: &str) -> Result<Channel, String> {
    Channel::parse(name).ok_or_else(|| {
        let known: Vec<_> = Channel::ALL.iter().map(|c| c.as_str()).collect();
        format!(
            "unknown channel {name:?}; known channels: {}",
            known.join(", ")
        )
    })
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl ScenarioFile {
    /// Checks what the types cannot and builds the [`Model`]. `file` names the scenario in
    /// errors and anchors the replay file's relative path.
    pub fn validate(self, file: &Path) -> Result<Model, SimError> {
        let invalid = |key: String, reason: String| SimError::Invalid {
            file: file.to_owned(),
            key,
            reason,
        };
        let sim = &self.simulation;
        if sim.duration.is_zero() {
            return Err(invalid(
                "simulation.duration".into(),
                "must be above zero".into(),
            ));
        }
        if sim.replications == 0 {
            return Err(invalid(
                "simulation.replications".into(),
                "must be at least 1".into(),
            ));
        }
        if sim.sample_every.is_zero() {
            return Err(invalid(
                "simulation.sample_every".into(),
                "must be above zero".into(),
            ));
        }

        // The engine's policy, built the way the daemon builds it from its config.
        let mut policy = Policy {
            max_missed_offers: self.routing.max_missed_offers,
            on_offline: self.routing.on_offline,
            ..Policy::default()
        };
        for (name, ch) in &self.channels {
            let key = |k: &str| format!("channels.{name}{k}");
            let channel = parse_channel(name).map_err(|r| invalid(key(""), r))?;
            let target = &mut policy.channels[channel.index()];
            apply_channel(target, ch).map_err(|(k, r)| invalid(key(&format!(".{k}")), r))?;
        }
        let mut teams = Names::default();
        let mut team_set = |names: &[String], key: String| -> Result<TeamSet, SimError> {
            let mut set = Vec::new();
            for n in names {
                let id = teams.intern(n, TeamId::LIMIT).ok_or_else(|| {
                    invalid(
                        key.clone(),
                        format!(
                            "team {n:?} is one more than the {} supported",
                            TeamId::LIMIT
                        ),
                    )
                })?;
                set.push(TeamId(id as u8));
            }
            Ok(TeamSet::of(set))
        };
        if !self.queues.is_empty() {
            policy.queues.clear();
        }
        for (i, q) in self.queues.iter().enumerate() {
            let key = |k: &str| format!("queues[{i}].{k}");
            if q.name.trim().is_empty() {
                return Err(invalid(key("name"), "must not be empty".into()));
            }
            if self.queues[..i].iter().any(|p| p.name == q.name) {
                return Err(invalid(
                    key("name"),
                    format!("queue {:?} is defined twice", q.name),
                ));
            }
            let mut queue = QueuePolicy::open(q.name.clone());
            queue.teams = team_set(&q.teams, key("teams"))?;
            queue.overflow_teams = team_set(&q.overflow_teams, key("overflow_teams"))?;
            if !queue.overflow_teams.is_empty() && queue.teams.is_empty() {
                return Err(invalid(
                    key("overflow_teams"),
                    "needs `teams` to be set".into(),
                ));
            }
            queue.overflow_after = q.overflow_after;
            for (name, targets) in &q.targets {
                let channel =
                    parse_channel(name).map_err(|r| invalid(key(&format!("targets.{name}")), r))?;
                for u in Urgency::ALL {
                    if let Some(t) = targets.get(u) {
                        if t.is_zero() {
                            return Err(invalid(
                                key(&format!("targets.{name}.{u}")),
                                "must be above zero".into(),
                            ));
                        }
                        queue.targets[channel.index()][u.index()] = Some(t);
                    }
                }
            }
            policy.queues.push(queue);
        }
        policy
            .validate()
            .map_err(|e| invalid("queues".into(), e.to_string()))?;
        let queue_id = |name: &str, key: String| {
            policy.queue_id(name).ok_or_else(|| {
                let known: Vec<_> = policy.queues.iter().map(|q| q.name.as_str()).collect();
                invalid(
                    key,
                    format!("unknown queue {name:?}; queues: {}", known.join(", ")),
                )
            })
        };

        // Agents first: they declare the skills.
        let mut skills = Names::default();
        let mut groups = Vec::new();
        let mut agents = Vec::new();
        let duration_ms = ms(sim.duration);
        for (g, a) in self.agents.iter().enumerate() {
            let key = |k: &str| format!("agents[{g}].{k}");
            if a.name.trim().is_empty() {
                return Err(invalid(key("name"), "must not be empty".into()));
            }
            if self.agents[..g].iter().any(|b| b.name == a.name) {
                return Err(invalid(
                    key("name"),
                    format!("agent group {:?} is defined twice", a.name),
                ));
            }
            let mut profile = AgentProfile {
                teams: team_set(&a.teams, key("teams"))?,
                ..AgentProfile::default()
            };
            for (s, &p) in &a.skills {
                if !(1..=10).contains(&p) {
                    return Err(invalid(
                        key(&format!("skills.{s}")),
                        format!("proficiency {p} is outside 1..=10"),
                    ));
                }
                let id = skills.intern(s, SkillId::LIMIT).ok_or_else(|| {
                    invalid(
                        key(&format!("skills.{s}")),
                        format!("more than {} skills", SkillId::LIMIT),
                    )
                })?;
                profile.skills.push((SkillId(id as u8), p));
            }
            let mut caps = Caps::default();
            for (c, &n) in &a.caps {
                let channel =
                    parse_channel(c).map_err(|r| invalid(key(&format!("caps.{c}")), r))?;
                caps.per_channel[channel.index()] = n;
            }
            if caps.per_channel.iter().all(|&c| c == 0) {
                return Err(invalid(
                    key("caps"),
                    "serves no channel: give at least one channel a cap above zero".into(),
                ));
            }
            caps.total = a.total_cap;
            profile.caps = caps;
            let mut shifts: Vec<(u64, u64)> =
                a.shifts.iter().map(|s| (ms(s.start), ms(s.end))).collect();
            if shifts.is_empty() {
                shifts.push((0, duration_ms));
            }
            shifts.sort_unstable();
            for (j, &(start, end)) in shifts.iter().enumerate() {
                if start >= end {
                    return Err(invalid(
                        key(&format!("shifts[{j}]")),
                        "start must be before end".into(),
                    ));
                }
                if j > 0 && shifts[j - 1].1 > start {
                    return Err(invalid(key("shifts"), "shifts overlap".into()));
                }
            }
            let mut queues = Vec::new();
            for (j, q) in a.queues.iter().enumerate() {
                queues.push(queue_id(q, key(&format!("queues[{j}]")))?);
            }
            if queues.is_empty() {
                queues = (0..policy.queues.len() as u16).map(QueueId).collect();
            }
            let prefetch = a.prefetch.unwrap_or(self.baseline.prefetch);
            if prefetch == 0 {
                return Err(invalid(key("prefetch"), "must be at least 1".into()));
            }
            groups.push(a.name.clone());
            for n in 1..=a.count {
                agents.push(AgentSpec {
                    name: format!("{}-{n}", a.name),
                    group: g,
                    profile: profile.clone(),
                    shifts: shifts.clone(),
                    queues: queues.clone(),
                    prefetch,
                });
            }
        }
        if self.baseline.prefetch == 0 {
            return Err(invalid(
                "baseline.prefetch".into(),
                "must be at least 1".into(),
            ));
        }
        if agents.is_empty() {
            return Err(invalid(
                "agents".into(),
                "no agents: add at least one [[agents]] group with count above zero".into(),
            ));
        }
        let required = |names: &[String], key: &dyn Fn(usize) -> String| {
            let mut set = SkillSet::EMPTY;
            for (j, s) in names.iter().enumerate() {
                let id = skills.get(s).ok_or_else(|| {
                    invalid(
                        key(j),
                        format!("skill {s:?} is held by no agent group (a typo?)"),
                    )
                })?;
                set.insert(SkillId(id as u8));
            }
            Ok::<_, SimError>(set)
        };

        let mut handling: [Option<Dist>; Channel::COUNT] = Default::default();
        for (c, d) in &self.handling {
            let key = format!("handling.{c}");
            let channel = parse_channel(c).map_err(|r| invalid(key.clone(), r))?;
            handling[channel.index()] = Some(d.build().map_err(|r| invalid(key, r))?);
        }
        let mut patience: [Option<Dist>; Channel::COUNT] = Default::default();
        for (c, d) in &self.patience {
            let key = format!("patience.{c}");
            let channel = parse_channel(c).map_err(|r| invalid(key.clone(), r))?;
            if channel == Channel::Email {
                return Err(invalid(
                    key,
                    "email customers do not abandon; leave patience.email out".into(),
                ));
            }
            patience[channel.index()] = Some(d.build().map_err(|r| invalid(key, r))?);
        }

        let mut streams = Vec::new();
        for (i, s) in self.arrivals.iter().enumerate() {
            let key = |k: &str| format!("arrivals[{i}].{k}");
            let channel = parse_channel(&s.channel).map_err(|r| invalid(key("channel"), r))?;
            if handling[channel.index()].is_none() {
                return Err(invalid(
                    format!("handling.{channel}"),
                    format!("missing: arrivals[{i}] brings {channel} contacts"),
                ));
            }
            let queue = queue_id(&s.queue, key("queue"))?;
            let required = required(&s.skills, &|j| key(&format!("skills[{j}]")))?;
            if s.rates.is_empty() {
                return Err(invalid(key("rates"), "needs at least one entry".into()));
            }
            let mut rates = Vec::new();
            for (j, r) in s.rates.iter().enumerate() {
                if !(r.per_hour.is_finite() && r.per_hour >= 0.0) {
                    return Err(invalid(
                        key(&format!("rates[{j}].per_hour")),
                        "must be a number at or above zero".into(),
                    ));
                }
                if j > 0 && r.from <= s.rates[j - 1].from {
                    return Err(invalid(
                        key(&format!("rates[{j}].from")),
                        "must be later than the entry before".into(),
                    ));
                }
                rates.push((ms(r.from), r.per_hour / 3_600_000.0));
            }
            if rates[0].0 > 0 {
                rates.insert(0, (0, 0.0));
            }
            streams.push(Stream {
                queue,
                channel,
                urgency: s.urgency,
                required,
                rates,
            });
        }

        let mut replay = Vec::new();
        if let Some(r) = &self.replay {
            let path = file.parent().unwrap_or(Path::new(".")).join(&r.file);
            replay = arrivals::read_replay(&path, &|q| policy.queue_id(q), &|s| skills.get(s))?;
            for a in &replay {
                if a.handle_ms.is_none() && handling[a.channel.index()].is_none() {
                    return Err(invalid(
                        format!("handling.{}", a.channel),
                        format!(
                            "missing: {} has {} contacts without a handling time",
                            path.display(),
                            a.channel
                        ),
                    ));
                }
            }
        }
        if streams.is_empty() && replay.is_empty() {
            return Err(invalid(
                "arrivals".into(),
                "no contacts: add [[arrivals]] streams or a [replay] file".into(),
            ));
        }

        let b = &self.behaviour;
        for (k, p) in [("decline", b.decline), ("no_answer", b.no_answer)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid(
                    format!("behaviour.{k}"),
                    "must be a probability in 0..=1".into(),
                ));
            }
        }
        if b.decline + b.no_answer > 1.0 {
            return Err(invalid(
                "behaviour.no_answer".into(),
                "decline + no_answer must not exceed 1".into(),
            ));
        }
        let behaviour = Behaviour {
            accept_delay: b
                .accept_delay
                .build()
                .map_err(|r| invalid("behaviour.accept_delay".into(), r))?,
            decline: b.decline,
            no_answer: b.no_answer,
            away_for_ms: ms(b.away_for).max(1),
        };

        Ok(Model {
            name: file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into()),
            policy,
            skills: skills.0,
            groups,
            agents,
            behaviour,
            streams,
            replay,
            handling,
            patience,
            duration_ms,
            sample_every_ms: ms(sim.sample_every),
            replications: sim.replications,
            seed: sim.seed,
        })
    }
}

fn apply_channel(target: &mut ChannelPolicy, ch: &ChannelConfig) -> Result<(), (String, String)> {
    for u in Urgency::ALL {
        if let Some(t) = ch.targets.get(u) {
            if t.is_zero() {
                return Err((format!("targets.{u}"), "must be above zero".into()));
            }
            target.targets[u.index()] = t;
        }
    }
    if let Some(t) = ch.offer_timeout {
        if t.is_zero() {
            return Err(("offer_timeout".into(), "must be above zero".into()));
        }
        target.offer_timeout = t;
    }
    if let Some(e) = ch.exclusive {
        target.exclusive = e;
    }
    if let Some(w) = ch.wrap_up {
        target.wrap_up = w;
    }
    Ok(())
}
