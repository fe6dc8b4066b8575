//! The `switchboard` daemon: configuration, command line and (as it grows) the wiring of
//! bus, store, router, channels and delivery around the engine in `switchboard-core`.
//!
//! Modules:
//! - [`config`]: the configuration file, environment overrides and their validation;
//! - [`cli`]: the command line;
//! - [`simulate`]: the `simulate` command, around `switchboard-sim`.

pub mod cli;
pub mod config;
pub mod simulate;
