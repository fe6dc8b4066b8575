//! Switchboard's routing engine: a deterministic state machine over contacts, agents and
//! time. It does no I/O, spawns nothing and reads no clock: callers pass every event with
//! the current [`Time`] and get back [`Decision`]s. The same events at the same times give
//! the same decisions, which is what lets the daemon replay, the simulator run it in
//! virtual time, and the tests compare it with a naive oracle.
//!
//! Modules:
//! - [`model`]: identifiers, channels, urgency, presence, skill and team bitsets, time;
//! - [`policy`]: service-level targets, offer timeouts, queues, relaxation, stickiness;
//! - [`event`]: what goes in ([`Event`]) and what comes out ([`Decision`]), with the
//!   explanation of every decision;
//! - [`engine`]: the [`Engine`] and its indexes (how it avoids scanning);
//! - `oracle` (feature `oracle`): the naive scanning router the tests and benchmark compare
//!   the engine with.
//!
//! The routing rules, in the order they apply:
//! 1. waiting contacts are served earliest deadline first, where the deadline is arrival
//!    plus the target for their queue, channel and urgency;
//! 2. an agent is eligible if available, holding every required skill (and, for a while,
//!    every preferred skill), in an admitted team (overflow teams join after a wait), with
//!    a free slot under every cap (per channel, total, and exclusive channels such as
//!    voice), and has not declined or missed the contact;
//! 3. among eligible agents: highest proficiency over the contact's skills, then lowest
//!    load ratio, then longest idle, then lowest id;
//! 4. a returning customer's previous owner, while available, has the contact to
//!    themselves for a short window; a transfer to an agent reserves it likewise.
//!
//! ```
//! use std::sync::Arc;
//! use switchboard_core::*;
//!
//! let mut engine = Engine::new(Policy::default()).unwrap();
//! let mut decisions = Vec::new();
//! let now = Time::from_millis(1_700_000_000_000);
//! let ana = AgentId(1);
//! let profile = AgentProfile {
//!     skills: vec![(SkillId(0), 8)],
//!     caps: Caps::of([(Channel::Chat, 3)]),
//!     ..AgentProfile::default()
//! };
//! engine.handle(now, Event::UpsertAgent { agent: ana, profile }, &mut decisions).unwrap();
//! let presence = Presence::Available;
//! engine.handle(now, Event::SetPresence { agent: ana, presence }, &mut decisions).unwrap();
//! let contact = NewContact {
//!     id: ContactId(1),
//!     conversation: Arc::from("chat-session-42"),
//!     customer: Arc::from("customer-7"),
//!     channel: Channel::Chat,
//!     urgency: Urgency::Normal,
//!     queue: QueueId(0),
//!     required: SkillSet::of([SkillId(0)]),
//!     preferred: SkillSet::EMPTY,
//!     arrived_at: now,
//! };
//! engine.handle(now, Event::Arrive(contact), &mut decisions).unwrap();
//! let Some(Decision::Offered { offer, agent, explanation, .. }) = decisions.last() else {
//!     panic!("expected an offer");
//! };
//! assert_eq!(*agent, ana);
//! assert_eq!(explanation.decided_by, Criterion::OnlyCandidate);
//! engine.handle(now, Event::Accept { offer: *offer, agent: ana }, &mut decisions).unwrap();
//! assert_eq!(engine.contact(ContactId(1)).unwrap().state(), ContactState::Assigned { agent: ana });
//! ```

pub mod engine;
pub mod event;
pub mod model;
#[cfg(any(test, feature = "oracle"))]
pub mod oracle;
pub mod policy;

pub use engine::{
    Agent, AgentSnapshot, Contact, ContactSnapshot, ContactState, Engine, EngineError,
    ExpectedWait, RestoreError, Snapshot,
};
pub use event::{
    AgentProfile, AssignExplanation, Candidate, Caps, CloseReason, Criterion, Decision, Event,
    NewContact, OfferOutcome, PresenceReason, RequeueReason, Route, TransferTarget, WaitKind,
    WaitReason,
};
pub use model::{
    AgentId, Channel, ContactId, OfferId, Presence, QueueId, SkillId, SkillSet, TeamId, TeamSet,
    Time, Urgency,
};
pub use policy::{ChannelPolicy, OfflineBehaviour, Policy, PolicyError, QueuePolicy, StickyPolicy};
