//! The engine, run as an M/M/c queue, against Erlang C: P(wait), ASA, service level and
//! occupancy must each fall inside the simulation's own 95 % confidence interval, at 10,
//! 50 and 200 agents loaded to 85 % occupancy. The intervals must also be tight, so the
//! check cannot pass by being vague.

use switchboard_sim::mmc::{MmcParams, run_mmc};

const AHT: f64 = 180.0;
const TARGET: f64 = 20.0;

fn check(agents: u32, contacts: u64) {
    let rate = 0.85 * f64::from(agents) / AHT;
    let r = run_mmc(MmcParams {
        rate,
        aht: AHT,
        agents,
        target: TARGET,
        contacts,
        seed: 1,
        batches: 20,
    })
    .unwrap();
    let theory = r.erlang_c.expect("85 % occupancy has a steady state");
    println!("{}", r.table());
    for (name, sim, want) in [
        ("p_wait", r.p_wait, theory.p_wait),
        ("asa_seconds", r.asa_seconds, theory.asa_seconds),
        ("service_level", r.service_level, theory.service_level),
        ("occupancy", r.occupancy, theory.occupancy),
    ] {
        assert!(
            (sim.mean - want).abs() <= sim.ci95,
            "{agents} agents: {name} simulated {:.5} ± {:.5}, Erlang C {want:.5}",
            sim.mean,
            sim.ci95
        );
        // The interval must be narrow enough for the check to mean something: two points
        // of a share, one point of occupancy, 15 % of the mean wait (or 0.1 s, where the
        // wait is a tenth of a second at 200 agents).
        let allowed = match name {
            "p_wait" | "service_level" => 0.02,
            "occupancy" => 0.01,
            _ => (0.15 * want).max(0.1),
        };
        assert!(
            sim.ci95 < allowed,
            "{agents} agents: {name} interval ± {:.5} is too wide to test anything",
            sim.ci95
        );
    }
}

#[test]
fn ten_agents_match_erlang_c() {
    check(10, 200_000);
}

#[test]
fn fifty_agents_match_erlang_c() {
    check(50, 400_000);
}

#[test]
fn two_hundred_agents_match_erlang_c() {
    // P(wait) is only 1.5 % here, so it takes more contacts to pin down.
    check(200, 1_000_000);
}
