//! Switchboard's simulator: the routing engine of `switchboard-core` (the very engine, not
//! a copy of its rules) driven in virtual time, for what-if staffing, replay of recorded
//! traffic, comparison with a plain work-queue baseline, and a check against queueing
//! theory. A day of a 500-agent centre runs in well under a second.
//!
//! Modules:
//! - [`scenario`]: scenario files (TOML), their validation, and the [`Model`] they become;
//! - [`dist`]: duration distributions and the seeded generators;
//! - [`arrivals`]: Poisson streams with rates that change over the day, CSV replay;
//! - [`driver`]: the discrete-event loop around the engine;
//! - [`baseline`]: the work-queue policy (FIFO per queue, prefetch as the only cap);
//! - [`stats`]: what a run records;
//! - [`report`]: means and confidence intervals over replications, tables, JSON;
//! - [`erlang`]: Erlang B and C, ASA and service level;
//! - [`mmc`]: the M/M/c mode checked against Erlang C;
//! - [`plot`]: SVG pictures of waiting contacts and service level over the day.
//!
//! ```no_run
//! let model = switchboard_sim::scenario::load("config/scenarios/centre.toml".as_ref())?;
//! let report = switchboard_sim::run(&model, switchboard_sim::Router::Engine)?;
//! println!("{}", report.table());
//! # Ok::<(), switchboard_sim::SimError>(())
//! ```

use std::path::PathBuf;

pub mod arrivals;
pub mod baseline;
pub mod dist;
pub mod driver;
pub mod erlang;
pub mod mmc;
pub mod plot;
pub mod report;
pub mod scenario;
pub mod stats;

pub use report::Report;
pub use scenario::Model;

/// What went wrong, with the file, key or line involved.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{file}: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {reason}")]
    Parse { file: PathBuf, reason: String },
    #[error("{file}: {key}: {reason}")]
    Invalid {
        file: PathBuf,
        key: String,
        reason: String,
    },
    #[error("{file}: line {line}: {reason}")]
    Replay {
        file: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("engine refused an event: {0}")]
    Engine(String),
    #[error("{file}: cannot draw the plot: {reason}")]
    Plot { file: PathBuf, reason: String },
}

/// Who routes: the engine, or the work-queue baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Router {
    Engine,
    Baseline,
}

impl Router {
    /// `engine` or `baseline`.
    pub fn as_str(self) -> &'static str {
        match self {
            Router::Engine => "engine",
            Router::Baseline => "baseline",
        }
    }
}

/// Runs every replication of `model` under `router` and summarises them. The arrivals of
/// replication `r` depend only on the scenario's arrival sections, its seed and `r`, so two
/// routers, or two scenarios that differ only in staffing or policy, see the same contacts.
pub fn run(model: &Model, router: Router) -> Result<Report, SimError> {
    let mut runs = Vec::with_capacity(model.replications as usize);
    for rep in 0..u64::from(model.replications) {
        runs.push(run_once(model, router, rep)?);
    }
    Ok(Report::build(model, router.as_str(), &runs))
}

/// One replication, as recorded.
pub fn run_once(
    model: &Model,
    router: Router,
    replication: u64,
) -> Result<stats::Recorder, SimError> {
    let arrivals = arrivals::generate(model, replication);
    let rec = stats::Recorder::new(
        model.policy.queues.len(),
        model.agents.len(),
        model.sample_every_ms,
    );
    match router {
        Router::Engine => driver::run_engine(model, arrivals.into_iter(), replication, rec),
        Router::Baseline => baseline::run_baseline(model, arrivals.into_iter(), replication, rec),
    }
}
