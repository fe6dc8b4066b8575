//! `switchboard simulate`: the command line of the simulator in `switchboard-sim`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use switchboard_sim::mmc::{MmcParams, run_mmc};
use switchboard_sim::report::{compare_json, compare_table};
use switchboard_sim::{Report, Router, SimError, plot, scenario};

/// Run the routing engine in virtual time on a scenario (what-if staffing, replay, the
/// work-queue baseline), or check it against Erlang C with `--mmc`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The scenario file (see config/scenarios/).
    #[arg(required_unless_present = "mmc")]
    pub scenario: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also run the plain work-queue baseline on the same arrivals, and compare.
    #[arg(long, conflicts_with = "compare")]
    pub baseline: bool,
    /// Run this second scenario on the same arrivals (same seed and replications), and
    /// compare.
    #[arg(long, value_name = "OTHER.toml")]
    pub compare: Option<PathBuf>,
    /// Independent replications (overrides the scenario's).
    #[arg(long)]
    pub replications: Option<u32>,
    /// Seed of every random draw (overrides the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Draw waiting contacts and service level over the day into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// M/M/c mode: one queue of identical agents, FIFO, no abandonment, against Erlang C.
    #[arg(long, conflicts_with_all = ["scenario", "baseline", "compare", "plot"],
          requires_all = ["rate", "aht", "agents", "target"])]
    pub mmc: bool,
    /// M/M/c: contacts a second.
    #[arg(long)]
    pub rate: Option<f64>,
    /// M/M/c: mean handling time, seconds.
    #[arg(long)]
    pub aht: Option<f64>,
    /// M/M/c: agents.
    #[arg(long)]
    pub agents: Option<u32>,
    /// M/M/c: service-level target, seconds.
    #[arg(long)]
    pub target: Option<f64>,
    /// M/M/c: contacts to simulate (the first tenth is warm-up).
    #[arg(long, default_value_t = 1_000_000)]
    pub contacts: u64,
    /// M/M/c: batches for the confidence intervals (batch means).
    #[arg(long, default_value_t = 20)]
    pub batches: u32,
}

/// Runs `switchboard simulate`; returns the exit code (2 for a bad scenario or argument).
pub fn main(args: SimulateArgs) -> ExitCode {
    match run(args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchboard: simulate: {e}");
            match e {
                SimError::Engine(_) | SimError::Plot { .. } => ExitCode::from(1),
                _ => ExitCode::from(2),
            }
        }
    }
}

fn run(args: SimulateArgs) -> Result<String, SimError> {
    if args.mmc {
        let p = MmcParams {
            rate: args.rate.unwrap_or_default(),
            aht: args.aht.unwrap_or_default(),
            agents: args.agents.unwrap_or_default(),
            target: args.target.unwrap_or_default(),
            contacts: args.contacts,
            seed: args.seed.unwrap_or(1),
            batches: args.batches,
        };
        let r = run_mmc(p)?;
        return Ok(if args.json {
            pretty(&r.json())
        } else {
            r.table()
        });
    }
    let file = args
        .scenario
        .expect("clap requires a scenario without --mmc");
    let mut a = scenario::load(&file)?;
    if let Some(n) = args.replications {
        if n == 0 {
            return Err(SimError::Invalid {
                file: "--replications".into(),
                key: "--replications".into(),
                reason: "must be at least 1".into(),
            });
        }
        a.replications = n;
    }
    if let Some(s) = args.seed {
        a.seed = s;
    }
    let mut reports: Vec<Report> = vec![switchboard_sim::run(&a, Router::Engine)?];
    if args.baseline {
        reports.push(switchboard_sim::run(&a, Router::Baseline)?);
    }
    if let Some(other) = &args.compare {
        let mut b = scenario::load(other)?;
        b.seed = a.seed;
        b.replications = a.replications;
        reports.push(switchboard_sim::run(&b, Router::Engine)?);
    }
    if let Some(path) = &args.plot {
        let title = match reports.as_slice() {
            [one] => format!("{} ({})", one.scenario, one.policy),
            [x, y] => format!(
                "{} ({}) against {} ({})",
                x.scenario, x.policy, y.scenario, y.policy
            ),
            _ => unreachable!("one or two runs"),
        };
        plot::plot_svg(path, &title, &reports.iter().collect::<Vec<_>>())?;
    }
    Ok(if args.json {
        match reports.as_slice() {
            [one] => pretty(&one.json()),
            [x, y] => pretty(&compare_json(x, y)),
            _ => unreachable!("one or two runs"),
        }
    } else {
        let mut s = String::new();
        for r in &reports {
            s += &r.table();
            s += "\n";
        }
        if let [x, y] = reports.as_slice() {
            s += &compare_table(x, y);
        }
        s
    })
}

fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON values serialise");
    s.push('\n');
    s
}
