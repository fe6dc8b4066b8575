//! Classification: a new contact's queue, urgency, required and preferred skills, from the
//! channel's defaults, what the source asked for, and the configured rules.

use std::collections::BTreeMap;

use switchboard_core::{Channel, Policy, QueueId, Urgency};

use crate::config::{Config, RuleConfig};

/// What classification looks at.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub channel: Channel,
    pub summary: &'a str,
    pub body: Option<&'a str>,
    /// The urgency the source asked for.
    pub urgency: Option<Urgency>,
    /// Skill names the source asked for.
    pub skills: &'a [String],
    pub attributes: &'a BTreeMap<String, serde_json::Value>,
}

impl<'a> Subject<'a> {
    /// What classification looks at in an inbound message.
    pub fn of(m: &'a switchboard_bus::InboundMessage) -> Subject<'a> {
        Subject {
            channel: m.channel,
            summary: &m.summary,
            body: m.body.as_deref(),
            urgency: m.urgency,
            skills: &m.skills,
            attributes: &m.attributes,
        }
    }
}

/// What classification decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    pub queue: QueueId,
    pub urgency: Urgency,
    pub skills: Vec<String>,
    pub preferred: Vec<String>,
    /// Indexes of the rules that matched, for the audit log.
    pub matched: Vec<usize>,
}

/// The rules, prepared once.
#[derive(Debug, Clone)]
pub struct Classifier {
    rules: Vec<Rule>,
    defaults: [(Option<QueueId>, Option<Urgency>); Channel::COUNT],
}

#[derive(Debug, Clone)]
struct Rule {
    channel: Option<Channel>,
    /// (key, wanted text, the same text read as JSON when it is a number or boolean).
    attributes: Vec<(String, String, Option<serde_json::Value>)>,
    keywords: Vec<String>,
    queue: Option<QueueId>,
    urgency: Option<Urgency>,
    skills: Vec<String>,
    preferred: Vec<String>,
}

impl Classifier {
    /// Prepares the rules of a validated config against its policy.
    pub fn new(config: &Config, policy: &Policy) -> Classifier {
        let mut defaults = [(None, None); Channel::COUNT];
        for (name, ch) in &config.channels {
            if let Some(channel) = Channel::parse(name) {
                defaults[channel.index()] = (
                    ch.queue.as_deref().and_then(|q| policy.queue_id(q)),
                    ch.urgency,
                );
            }
        }
        let mut rules: Vec<Rule> = config
            .rules
            .iter()
            .map(|r: &RuleConfig| Rule {
                channel: r.channel.as_deref().and_then(Channel::parse),
                attributes: r
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone(), serde_json::from_str(v).ok()))
                    .collect(),
                keywords: r.keywords.iter().map(|k| k.to_lowercase()).collect(),
                queue: r.queue.as_deref().and_then(|q| policy.queue_id(q)),
                urgency: r.urgency,
                skills: r.skills.clone(),
                preferred: r.preferred_skills.clone(),
            })
            .collect();
        // A mailbox's queue is one more rule after the configured ones (which decide first);
        // the audit log numbers it after them.
        for (name, m) in &config.mailboxes {
            if let Some(queue) = m.contacts.queue.as_deref().and_then(|q| policy.queue_id(q)) {
                rules.push(Rule {
                    channel: Some(Channel::Email),
                    attributes: vec![("mailbox".into(), name.clone(), None)],
                    keywords: Vec::new(),
                    queue: Some(queue),
                    urgency: None,
                    skills: Vec::new(),
                    preferred: Vec::new(),
                });
            }
        }
        Classifier { rules, defaults }
    }

    /// Classifies one new contact.
    pub fn classify(&self, s: &Subject<'_>) -> Class {
        let (default_queue, default_urgency) = self.defaults[s.channel.index()];
        let mut class = Class {
            queue: default_queue.unwrap_or(QueueId(0)),
            urgency: s.urgency.or(default_urgency).unwrap_or(Urgency::Normal),
            skills: s.skills.to_vec(),
            preferred: Vec::new(),
            matched: Vec::new(),
        };
        let text = format!("{}\n{}", s.summary, s.body.unwrap_or("")).to_lowercase();
        let mut queue_set = false;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matches(s, &text) {
                continue;
            }
            class.matched.push(i);
            if let Some(q) = rule.queue
                && !queue_set
            {
                class.queue = q;
                queue_set = true;
            }
            if let Some(u) = rule.urgency {
                class.urgency = class.urgency.max(u);
            }
            for skill in &rule.skills {
                if !class.skills.contains(skill) {
                    class.skills.push(skill.clone());
                }
            }
            for skill in &rule.preferred {
                if !class.preferred.contains(skill) {
                    class.preferred.push(skill.clone());
                }
            }
        }
        class
    }
}

impl Rule {
    fn matches(&self, s: &Subject<'_>, text: &str) -> bool {
        if self.channel.is_some_and(|c| c != s.channel) {
            return false;
        }
        let attributes_hold = self.attributes.iter().all(|(k, want, as_json)| {
            s.attributes.get(k).is_some_and(|v| match v {
                serde_json::Value::String(got) => got == want,
                other => as_json.as_ref() == Some(other),
            })
        });
        let keyword_holds =
            self.keywords.is_empty() || self.keywords.iter().any(|k| text.contains(k.as_str()));
        attributes_hold && keyword_holds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn classifier() -> (Classifier, Policy) {
        let loaded =
            Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.toml"))
                .unwrap();
        (
            Classifier::new(&loaded.config, &loaded.policy),
            loaded.policy,
        )
    }

    fn subject<'a>(
        channel: Channel,
        summary: &'a str,
        attributes: &'a BTreeMap<String, serde_json::Value>,
    ) -> Subject<'a> {
        Subject {
            channel,
            summary,
            body: None,
            urgency: None,
            skills: &[],
            attributes,
        }
    }

    #[test]
    fn keywords_choose_the_queue_and_add_skills() {
        let (c, policy) = classifier();
        let none = BTreeMap::new();
        let class = c.classify(&subject(Channel::Email, "I was CHARGED twice", &none));
        assert_eq!(class.queue, policy.queue_id("billing").unwrap());
        assert_eq!(class.skills, vec!["billing".to_owned()]);
        assert_eq!(class.urgency, Urgency::Normal);
        let class = c.classify(&subject(Channel::Email, "hello", &none));
        assert_eq!(class.queue, QueueId(0));
        assert!(class.matched.is_empty());
    }

    #[test]
    fn the_first_queue_wins_and_the_highest_urgency_wins() {
        let (c, policy) = classifier();
        let mut gold = BTreeMap::new();
        gold.insert("tier".to_owned(), serde_json::json!("gold"));
        let class = c.classify(&subject(Channel::Chat, "refund please", &gold));
        assert_eq!(
            class.queue,
            policy.queue_id("billing").unwrap(),
            "first rule"
        );
        assert_eq!(class.urgency, Urgency::High, "from the gold rule");
        assert_eq!(class.matched, vec![0, 1]);
    }

    #[test]
    fn ivr_digits_match_as_numbers_or_strings() {
        let (c, policy) = classifier();
        for digits in [serde_json::json!("2"), serde_json::json!(2)] {
            let mut attributes = BTreeMap::new();
            attributes.insert("digits".to_owned(), digits);
            let class = c.classify(&subject(Channel::Voice, "call", &attributes));
            assert_eq!(class.queue, policy.queue_id("billing").unwrap());
        }
    }
}
