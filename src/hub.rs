//! Live feeds of agents: every persisted decision that concerns an agent becomes an event
//! in that agent's feed, in decision order (so an agent's tool never sees an update for a
//! contact before its offer). Streams subscribe here; a reconnecting stream resumes from
//! its `Last-Event-ID` while the event is still held, and is told to resync otherwise.

use std::collections::VecDeque;
use std::sync::Arc;

use dashmap::DashMap;
use serde_json::{Value, json};
use switchboard_core::{AgentId, ContactId, ContactState, Decision};
use tokio::sync::broadcast;

use crate::router::{FollowUp, Router};

/// Events held per agent for resuming streams.
const HELD: usize = 512;

/// One event of an agent's feed.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    /// `{boot}-{n}`: increasing within one run of the process.
    pub id: String,
    pub seq: u64,
    /// The SSE event name: `offer`, `offer_ended`, `assigned`, `message`, ...
    pub kind: &'static str,
    pub data: Arc<str>,
}

#[derive(Debug)]
struct Feed {
    next: u64,
    held: VecDeque<FeedEvent>,
    tx: broadcast::Sender<FeedEvent>,
}

/// All agents' feeds (a concurrent map: streams subscribe while the router publishes),
/// and where else each event goes: the agent's webhook, the bus's assignments exchange.
#[derive(Debug)]
pub struct Hub {
    boot: String,
    feeds: DashMap<AgentId, Feed>,
    webhooks: Option<switchboard_delivery::Webhooks>,
    /// (routing key, body) for the assignments exchange, sent in order by one task.
    events: Option<tokio::sync::mpsc::UnboundedSender<(String, Vec<u8>)>>,
    /// Bumped after every persisted step: channels waiting to tell a customer where their
    /// message stands look again.
    steps: tokio::sync::watch::Sender<u64>,
}

/// What a subscriber gets: the events it missed (if it can resume), whether it must
/// resync from a snapshot, and the live receiver.
#[derive(Debug)]
pub struct Subscription {
    pub missed: Vec<FeedEvent>,
    pub resync: bool,
    pub live: broadcast::Receiver<FeedEvent>,
}

impl Hub {
    /// A hub that also sends webhooks (when given a sender) and bus events (when given a
    /// channel to the task that publishes them).
    pub fn new(
        webhooks: Option<switchboard_delivery::Webhooks>,
        events: Option<tokio::sync::mpsc::UnboundedSender<(String, Vec<u8>)>>,
    ) -> Hub {
        Hub {
            boot: format!("{:x}", crate::router::now().as_millis()),
            feeds: DashMap::new(),
            webhooks,
            events,
            steps: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Changes after every persisted step.
    pub fn steps(&self) -> tokio::sync::watch::Receiver<u64> {
        self.steps.subscribe()
    }

    fn push(&self, router: &Router, agent: AgentId, kind: &'static str, data: Value) {
        let id = self.append(agent, kind, &data);
        if self.webhooks.is_none() && self.events.is_none() {
            return;
        }
        let name = router.names.agent_name(agent).unwrap_or_default();
        let body = json!({
            "id": id,
            "event": kind,
            "agent": name,
            "at": crate::router::now().as_millis(),
            "data": data,
        })
        .to_string()
        .into_bytes();
        if let Some(hooks) = &self.webhooks
            && let Some(url) = router.webhook_of(agent)
        {
            hooks.send(name, &url, body.clone());
        }
        if let Some(events) = &self.events {
            // Routing-key words are separated by dots: keep names to one word.
            let word = |s: &str| s.replace(['.', '*', '#'], "_");
            let _ = events.send((format!("agent.{}.{kind}", word(name)), body.clone()));
            if let Some(a) = router.engine.agent(agent) {
                for team in router.names.team_names(a.teams()) {
                    let _ = events.send((format!("team.{}.{kind}", word(&team)), body.clone()));
                }
            }
        }
    }

    /// Appends an event to the agent's feed and returns its id.
    fn append(&self, agent: AgentId, kind: &'static str, data: &Value) -> String {
        let mut feed = self.feeds.entry(agent).or_insert_with(|| Feed {
            next: 1,
            held: VecDeque::new(),
            tx: broadcast::channel(HELD).0,
        });
        let seq = feed.next;
        feed.next += 1;
        let event = FeedEvent {
            id: format!("{}-{seq}", self.boot),
            seq,
            kind,
            data: Arc::from(data.to_string()),
        };
        if feed.held.len() == HELD {
            feed.held.pop_front();
        }
        feed.held.push_back(event.clone());
        let id = event.id.clone();
        // Nobody listening is fine: the event is held for a reconnect.
        let _ = feed.tx.send(event);
        id
    }

    /// Subscribes to an agent's feed, resuming after `last_event_id` when possible.
    pub fn subscribe(&self, agent: AgentId, last_event_id: Option<&str>) -> Subscription {
        let feed = self.feeds.entry(agent).or_insert_with(|| Feed {
            next: 1,
            held: VecDeque::new(),
            tx: broadcast::channel(HELD).0,
        });
        let live = feed.tx.subscribe();
        let after = last_event_id
            .and_then(|id| id.split_once('-'))
            .filter(|(boot, _)| *boot == self.boot)
            .and_then(|(_, n)| n.parse::<u64>().ok());
        let oldest = feed.held.front().map_or(feed.next, |e| e.seq);
        match after {
            // Everything after `n` is still held: replay it, no snapshot needed.
            Some(n) if n + 1 >= oldest => Subscription {
                missed: feed.held.iter().filter(|e| e.seq > n).cloned().collect(),
                resync: false,
                live,
            },
            _ => Subscription {
                missed: Vec::new(),
                resync: true,
                live,
            },
        }
    }

    /// Turns persisted decisions (and follow-up messages) into agents' events.
    pub fn publish(&self, router: &Router, decisions: &[Decision], follow_ups: &[FollowUp]) {
        self.steps.send_modify(|n| *n += 1);
        let public = |c: &ContactId| router.public_id(*c).unwrap_or_default().to_owned();
        for d in decisions {
            match d {
                Decision::Offered {
                    offer,
                    contact,
                    agent,
                    expires_at,
                    ..
                } => {
                    let meta = router.open.get(contact);
                    self.push(
                        router,
                        *agent,
                        "offer",
                        json!({
                            "offer": offer.0,
                            "contact": public(contact),
                            "channel": meta.map(|m| m.channel.as_str()),
                            "queue": meta.map(|m| m.queue.as_str()),
                            "summary": meta.map(|m| m.summary.as_str()),
                            "customer": meta.map(|m| m.customer.as_str()),
                            // What the source said about the contact (a bot's transcript,
                            // IVR digits, the customer's profile name).
                            "attributes": meta.and_then(|m| serde_json::from_str::<Value>(&m.attributes).ok()),
                            "expires_at": expires_at.as_millis(),
                        }),
                    );
                }
                Decision::OfferEnded {
                    offer,
                    contact,
                    agent,
                    outcome,
                } => self.push(
                    router,
                    *agent,
                    "offer_ended",
                    json!({ "offer": offer.0, "contact": public(contact), "outcome": outcome }),
                ),
                Decision::Assigned {
                    contact,
                    agent,
                    offer,
                    ..
                } => self.push(
                    router,
                    *agent,
                    "assigned",
                    json!({ "offer": offer.0, "contact": public(contact) }),
                ),
                Decision::Transferred { contact, from, .. } => self.push(
                    router,
                    *from,
                    "transferred_out",
                    json!({ "contact": public(contact) }),
                ),
                Decision::Requeued { contact, agent, .. } => self.push(
                    router,
                    *agent,
                    "requeued",
                    json!({ "contact": public(contact) }),
                ),
                Decision::WrapUpStarted {
                    contact,
                    agent,
                    until,
                } => self.push(
                    router,
                    *agent,
                    "wrap_up",
                    json!({ "contact": public(contact), "until": until.as_millis() }),
                ),
                Decision::Closed {
                    contact,
                    agent: Some(agent),
                    reason,
                } => self.push(
                    router,
                    *agent,
                    "closed",
                    json!({ "contact": public(contact), "reason": reason }),
                ),
                Decision::PresenceChanged {
                    agent,
                    presence,
                    reason,
                } => self.push(
                    router,
                    *agent,
                    "presence",
                    json!({ "presence": presence, "reason": reason }),
                ),
                Decision::Closed { agent: None, .. }
                | Decision::Waiting { .. }
                | Decision::Abandoned { .. } => {}
            }
        }
        for f in follow_ups {
            if let Some(owner) = f.owner {
                self.push(router, owner,
                    "message",
                    json!({ "contact": public(&f.contact), "message": f.message, "summary": f.summary }),
                );
            }
        }
    }
}

/// The agent's state right now, sent first to a stream that cannot resume.
pub fn snapshot(router: &Router, agent: AgentId) -> Value {
    let Some(a) = router.engine.agent(agent) else {
        return json!({ "presence": null, "offers": [], "contacts": [] });
    };
    let mut offers = Vec::new();
    let mut contacts = Vec::new();
    for c in a.held() {
        let Some(contact) = router.engine.contact(*c) else {
            continue;
        };
        let meta = router.open.get(c);
        let public = meta.map(|m| m.public_id.as_str());
        match contact.state() {
            ContactState::Offered { offer, .. } => offers.push(json!({
                "offer": offer.0,
                "contact": public,
                "channel": contact.channel(),
                "summary": meta.map(|m| m.summary.as_str()),
                "expires_at": router.engine.offer(offer).map(|o| o.2.as_millis()),
            })),
            state => contacts.push(json!({
                "contact": public,
                "state": state.as_str(),
                "channel": contact.channel(),
                "summary": meta.map(|m| m.summary.as_str()),
            })),
        }
    }
    json!({ "presence": a.presence(), "offers": offers, "contacts": contacts })
}
