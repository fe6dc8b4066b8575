//! Chat channels: what web chat widgets, in-house chat and Slack send, checked and turned
//! into the bus's [`InboundMessage`]. The HTTP side (routes, answers, the adapter
//! registration) lives with the daemon; this crate is the part that must be exact:
//! signatures, replay windows, payload shapes, and which events are not contacts.
//!
//! Modules:
//! - [`generic`]: the generic chat webhook, signed like Switchboard's own webhooks;
//! - [`slack`]: the Slack Events API (URL verification, `X-Slack-Signature` v0, retries,
//!   threads, bot messages ignored).

pub mod generic;
pub mod slack;

pub use switchboard_channel::{ChannelError, Inbound, Incoming};
