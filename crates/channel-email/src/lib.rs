//! The email channel: new mail in an IMAP folder becomes [`InboundMessage`]s on the bus,
//! each published (and confirmed) before its UID is recorded and the message marked, so a
//! bus, store or IMAP outage loses nothing.
//!
//! Modules:
//! - [`parse`]: one raw message to one inbound message (mail-parser does the MIME): the
//!   dedup id, the thread's conversation key, customer, summary, text body, attributes;
//!   unparseable mail still yields a contact with a `parse_error`;
//! - [`config`]: a mailbox's `[mailboxes.<name>]` settings and their validation;
//! - [`connect`]: TCP, TLS (implicit, STARTTLS, or plain for tests) and login;
//! - [`watch`]: the [`Watcher`] loop (UID checkpoints, IDLE or polling, backoff) and the
//!   [`Checkpoint`] and [`Sink`] traits the daemon implements with its store and bus;
//! - [`error`]: why a mailbox session ended;
//! - [`acknowledge`]: whether a new message may get an automatic acknowledgement (RFC 3834,
//!   business hours, a daily limit per sender) and its text;
//! - [`compose`]: the acknowledgement and agent reply messages, threaded under the
//!   customer's mail;
//! - [`smtp`]: a mailbox's SMTP settings and the [`Sender`] that submits those messages.

pub mod acknowledge;
pub mod compose;
pub mod config;
pub mod connect;
pub mod error;
pub mod parse;
pub mod smtp;
pub mod watch;

pub use config::{ConfigError, MailboxConfig, Mark, Secret, TlsMode};
pub use error::Error;
pub use parse::{Defaults, Origin, parse};
pub use switchboard_bus::InboundMessage;
pub use switchboard_channel::Inbound;
pub use watch::{Checkpoint, Sink, Watcher};

pub use acknowledge::{Ack, AckSettings, NoAck, acknowledge_decision};
pub use compose::{ComposeError, ThreadHeaders, acknowledgement, agent_reply};
pub use smtp::{SendError, Sender, SmtpConfig};
