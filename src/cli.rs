//! The command line: `switchboard <command>`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// Switchboard: an omnichannel contact router.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: the router, its HTTP API, and the configured bus and store. With the
    /// example config it runs on the embedded default (in-process bus, SQLite in ./data).
    Run {
        /// The configuration file.
        #[arg(long, short, default_value = "config/switchboard.toml")]
        config: PathBuf,
    },
    /// Load and validate a configuration file (with SWITCHBOARD__… overrides) and exit:
    /// 0 if it is good, 2 with the file, key and reason if not.
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
    },
    /// Run the routing engine in virtual time: what-if staffing, replay, the work-queue
    /// baseline, or the M/M/c check against Erlang C.
    Simulate(crate::simulate::SimulateArgs),
    /// Write one day of the store's traffic (contacts and audit log) as a replay CSV for
    /// `switchboard simulate`.
    ExportReplay(crate::export::ExportArgs),
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => {
            // A bad config stops start-up here, before any port opens.
            let loaded = match Config::load(&config) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("switchboard: invalid configuration: {e}");
                    return ExitCode::from(2);
                }
            };
            crate::daemon::init_logging(&loaded);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("switchboard: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(crate::daemon::run(loaded)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "switchboard failed");
                    eprintln!("switchboard: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(loaded) => {
                println!(
                    "{}: ok ({} queues: {})",
                    file.display(),
                    loaded.policy.queues.len(),
                    loaded
                        .policy
                        .queues
                        .iter()
                        .map(|q| q.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("switchboard: invalid configuration: {e}");
                ExitCode::from(2)
            }
        },
        Command::Simulate(args) => crate::simulate::main(args),
        Command::ExportReplay(args) => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("switchboard: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(crate::export::run(&args)) {
                Ok(n) => {
                    println!("{}: {n} contacts of {}", args.out.display(), args.day);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("switchboard: export-replay: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
