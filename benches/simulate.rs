//! The simulator's benchmark: how fast the real engine runs in virtual time.
//!
//! `cargo bench --bench simulate` prints, for
//! - a day of the 500-agent centre of `config/scenarios/centre.toml` (about 100,000
//!   contacts across voice, chat, email and social): the wall time of drawing the
//!   arrivals, of the engine run and of the work-queue baseline run, best of three;
//! - 10 million M/M/c contacts (100 agents at 85 % occupancy) through the engine: wall
//!   time, contacts per second, and the result against Erlang C.
//!
//! `-- --quick` runs 1 million M/M/c contacts instead of 10 million.

use std::path::Path;
use std::time::{Duration, Instant};

use switchboard_sim::mmc::{MmcParams, run_mmc};
use switchboard_sim::stats::Recorder;
use switchboard_sim::{arrivals, baseline, driver, scenario};

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..n {
        let start = Instant::now();
        let out = f();
        best = best.min(start.elapsed());
        last = Some(out);
    }
    (best, last.expect("ran at least once"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches` runs bench targets without `--bench`: keep that fast.
        println!("simulator benchmark: run with `cargo bench --bench simulate`");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");

    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/scenarios/centre.toml");
    let model = scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let recorder = || {
        Recorder::new(
            model.policy.queues.len(),
            model.agents.len(),
            model.sample_every_ms,
        )
    };
    let (draw, arrivals) = best_of(3, || arrivals::generate(&model, 0));
    let contacts = arrivals.len();
    let (engine, rec) = best_of(3, || {
        driver::run_engine(&model, arrivals.iter().cloned(), 0, recorder()).unwrap()
    });
    let answered: u64 = rec.groups.iter().map(|g| g.answered).sum();
    let (work_queue, _) = best_of(3, || {
        baseline::run_baseline(&model, arrivals.iter().cloned(), 0, recorder()).unwrap()
    });
    println!(
        "a day of the 500-agent centre ({}): {} agents, {contacts} contacts, {answered} answered by the engine",
        file.file_name().unwrap().to_string_lossy(),
        model.agents.len()
    );
    println!(
        "{:<34} {:>12} {:>16}",
        "step (best of 3)", "wall time", "contacts/s"
    );
    for (name, t) in [
        ("draw the arrivals", draw),
        ("engine run", engine),
        ("work-queue baseline run", work_queue),
    ] {
        println!(
            "{name:<34} {:>9.1} ms {:>16.0}",
            t.as_secs_f64() * 1000.0,
            contacts as f64 / t.as_secs_f64()
        );
    }

    let n: u64 = if quick { 1_000_000 } else { 10_000_000 };
    let agents = 100;
    let aht = 180.0;
    let params = MmcParams {
        rate: 0.85 * f64::from(agents) / aht,
        aht,
        agents,
        target: 20.0,
        contacts: n,
        seed: 1,
        batches: 20,
    };
    let start = Instant::now();
    let report = run_mmc(params).unwrap();
    let t = start.elapsed();
    println!(
        "\n{n} M/M/c contacts through the engine ({agents} agents, 85 % occupancy): {:.2} s, {:.0} contacts/s",
        t.as_secs_f64(),
        n as f64 / t.as_secs_f64()
    );
    print!("{}", report.table());
}
