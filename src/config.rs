//! The configuration file: loaded with the `config` crate from TOML, overridden by
//! `SWITCHBOARD__SECTION__KEY` environment variables, unknown keys rejected, then validated
//! into the engine's [`Policy`]. Every error names the file, the key and the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use switchboard_core::{
    Channel, ChannelPolicy, OfflineBehaviour, Policy, QueuePolicy, StickyPolicy, TeamId, TeamSet,
    Urgency,
};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Engine-wide routing rules.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// Per-channel rules; a channel left out keeps its defaults.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// The queues contacts wait in; the first is the default queue.
    #[serde(default)]
    pub queues: Vec<QueueConfig>,
}

/// `[routing]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// After this many offers in a row expire unanswered, the agent is set away (0: never).
    pub max_missed_offers: u32,
    /// `keep` or `requeue`: what happens to an agent's conversations when they go offline.
    pub on_offline: OfflineBehaviour,
    /// Sticky routing of returning customers.
    pub sticky: StickyConfig,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        let p = Policy::default();
        RoutingConfig {
            max_missed_offers: p.max_missed_offers,
            on_offline: p.on_offline,
            sticky: StickyConfig {
                remember_for: p.sticky.remember_for,
                wait: p.sticky.wait,
            },
        }
    }
}

/// `[routing.sticky]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickyConfig {
    /// How long a closed conversation's owner is remembered for the customer.
    #[serde(with = "humantime_serde")]
    pub remember_for: Duration,
    /// How long a returning customer's contact waits for that owner (0s: off).
    #[serde(with = "humantime_serde")]
    pub wait: Duration,
}

/// `[channels.<name>]`; every key is optional and defaults to the built-in value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Service-level targets (time to first assignment) by urgency.
    #[serde(default)]
    pub targets: Targets,
    /// How long an agent has to accept an offer.
    #[serde(default, with = "humantime_serde::option")]
    pub offer_timeout: Option<Duration>,
    /// Whether an agent with work on this channel is offered nothing else.
    pub exclusive: Option<bool>,
    /// How long wrap-up holds the agent's slot.
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

/// `[[queues]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Unique name, used in the API and metric labels.
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
    /// How long preferred skills are required before only required skills count.
    #[serde(default, with = "humantime_serde")]
    pub preferred_for: Duration,
    /// Per channel, targets that replace the channel's own.
    #[serde(default)]
    pub targets: BTreeMap<String, Targets>,
}

/// A configuration problem: where it is and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {source}")]
    Load {
        file: PathBuf,
        #[source]
        source: config::ConfigError,
    },
    #[error("{file}: {key}: {reason}")]
    Invalid {
        file: PathBuf,
        key: String,
        reason: String,
    },
}

/// Names mapped to the engine's small numbers, in order of first appearance.
#[derive(Debug, Clone, Default)]
pub struct Names {
    names: Vec<String>,
}

impl Names {
    /// The number for `name`, allocating the next one; `None` past `limit`.
    pub fn intern(&mut self, name: &str, limit: usize) -> Option<usize> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return Some(i);
        }
        (self.names.len() < limit).then(|| {
            self.names.push(name.to_owned());
            self.names.len() - 1
        })
    }

    /// The name of number `i`.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.names.get(i).map(String::as_str)
    }
}

/// A loaded and validated configuration.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file it came from.
    pub file: PathBuf,
    /// The raw settings.
    pub config: Config,
    /// The engine's policy built from them.
    pub policy: Policy,
    /// Team names and their numbers.
    pub teams: Names,
}

impl Config {
    /// Reads `file`, applies `SWITCHBOARD__…` environment overrides, and validates.
    pub fn load(file: &Path) -> Result<Loaded, ConfigError> {
        let load = |source| ConfigError::Load {
            file: file.to_owned(),
            source,
        };
        let config: Config = config::Config::builder()
            .add_source(config::File::from(file).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("SWITCHBOARD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .map_err(load)?
            .try_deserialize()
            .map_err(load)?;
        config.validate(file)
    }

    /// Checks what the types cannot and builds the engine's policy.
    pub fn validate(self, file: &Path) -> Result<Loaded, ConfigError> {
        let invalid = |key: String, reason: String| ConfigError::Invalid {
            file: file.to_owned(),
            key,
            reason,
        };
        let mut policy = Policy {
            max_missed_offers: self.routing.max_missed_offers,
            on_offline: self.routing.on_offline,
            sticky: StickyPolicy {
                remember_for: self.routing.sticky.remember_for,
                wait: self.routing.sticky.wait,
            },
            ..Policy::default()
        };
        if !policy.sticky.wait.is_zero() && policy.sticky.remember_for.is_zero() {
            return Err(invalid(
                "routing.sticky.remember_for".into(),
                "must be above zero when routing.sticky.wait is set".into(),
            ));
        }
        for (name, ch) in &self.channels {
            let channel = parse_channel(name)
                .map_err(|reason| invalid(format!("channels.{name}"), reason))?;
            let target = &mut policy.channels[channel.index()];
            apply_channel(target, ch)
                .map_err(|(key, reason)| invalid(format!("channels.{name}.{key}"), reason))?;
        }
        let mut teams = Names::default();
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
            queue.teams = team_set(&mut teams, &q.teams).map_err(|r| invalid(key("teams"), r))?;
            queue.overflow_teams = team_set(&mut teams, &q.overflow_teams)
                .map_err(|r| invalid(key("overflow_teams"), r))?;
            if !queue.overflow_teams.is_empty() && queue.teams.is_empty() {
                return Err(invalid(
                    key("overflow_teams"),
                    "needs `teams` to be set: a queue open to every team has nothing to overflow to"
                        .into(),
                ));
            }
            queue.overflow_after = q.overflow_after;
            queue.preferred_for = q.preferred_for;
            for (name, targets) in &q.targets {
                let channel = parse_channel(name)
                    .map_err(|reason| invalid(key(&format!("targets.{name}")), reason))?;
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
        Ok(Loaded {
            file: file.to_owned(),
            config: self,
            policy,
            teams,
        })
    }
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

fn team_set(teams: &mut Names, names: &[String]) -> Result<TeamSet, String> {
    let mut ids = Vec::with_capacity(names.len());
    for n in names {
        let id = teams.intern(n, TeamId::LIMIT).ok_or_else(|| {
            format!(
                "team {n:?} is one more than the {} supported",
                TeamId::LIMIT
            )
        })?;
        ids.push(TeamId(id as u8));
    }
    Ok(TeamSet::of(ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<Loaded, ConfigError> {
        let dir = std::env::temp_dir().join(format!("switchboard-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!(
            "{:x}.toml",
            toml.len() * 31 + toml.as_bytes()[0] as usize
        ));
        std::fs::write(&file, toml).unwrap();
        Config::load(&file)
    }

    #[test]
    fn every_shipped_config_file_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
                seen += 1;
            }
        }
        assert!(seen > 0, "no config files in {}", dir.display());
    }

    #[test]
    fn an_unknown_key_is_named() {
        let err = parse("[routing]\nmax_missed = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_missed"), "{err}");
        assert!(err.contains(".toml"), "{err}");
    }

    #[test]
    fn an_unknown_channel_lists_the_known_ones() {
        let err = parse("[channels.fax]\nexclusive = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("channels.fax"), "{err}");
        assert!(err.contains("email, chat, voice, social, sms"), "{err}");
    }

    #[test]
    fn a_bad_duration_is_named() {
        let err = parse("[channels.chat]\noffer_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("offer_timeout"), "{err}");
    }

    #[test]
    fn queues_become_the_policy() {
        let loaded = parse(
            r#"
[channels.chat]
targets = { normal = "45s" }
[[queues]]
name = "billing"
teams = ["billing"]
overflow_teams = ["support"]
overflow_after = "2m"
[queues.targets.email]
normal = "1h"
"#,
        )
        .unwrap();
        let p = &loaded.policy;
        assert_eq!(p.queues.len(), 1);
        assert_eq!(p.queues[0].teams, TeamSet::of([TeamId(0)]));
        assert_eq!(p.queues[0].overflow_teams, TeamSet::of([TeamId(1)]));
        assert_eq!(p.channel(Channel::Chat).targets[1], Duration::from_secs(45));
        assert_eq!(
            p.target(
                switchboard_core::QueueId(0),
                Channel::Email,
                Urgency::Normal
            ),
            Duration::from_secs(3600)
        );
        assert_eq!(loaded.teams.name(1), Some("support"));
    }

    #[test]
    fn duplicate_queues_and_lonely_overflow_are_refused() {
        let err = parse("[[queues]]\nname = \"a\"\n[[queues]]\nname = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("queues[1].name"), "{err}");
        let err = parse("[[queues]]\nname = \"a\"\noverflow_teams = [\"x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("queues[0].overflow_teams"), "{err}");
    }
}
