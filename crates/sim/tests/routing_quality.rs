//! Routing quality on mixed channels and skills: no contact starves as the load rises
//! toward capacity, and the engine's service level beats the work-queue baseline on the
//! same arrivals.
//!
//! The centre: 50 agents, each taking one contact at a time on voice, chat or email
//! (`total_cap = 1`, so capacity is plain: 50 agents over the mean handling time); 10 of
//! them also speak German, which 15 % of contacts need (they wait in their own queue, and
//! in the baseline only the bilingual agents consume from it, the way a team would wire
//! a language queue by hand). Arrivals are steady for 8 hours; agents stay until the work
//! is done.

use std::path::Path;

use switchboard_sim::report::estimate;
use switchboard_sim::scenario::{self, Model};
use switchboard_sim::{Router, run, run_once};

/// Mean handling time over the mix (40 % voice at 4 m, 35 % chat at 6 m, 25 % email at
/// 5 m), seconds.
const MEAN_HANDLING: f64 = 0.40 * 240.0 + 0.35 * 360.0 + 0.25 * 300.0;
const AGENTS: f64 = 50.0;

/// The centre at `load` (offered work over capacity), with or without impatient customers.
fn centre(load: f64, patience: bool, replications: u32) -> Model {
    let per_hour = load * AGENTS / MEAN_HANDLING * 3600.0;
    let stream = |queue: &str, channel: &str, share: f64, skill: &str| {
        format!(
            "[[arrivals]]\nqueue = \"{queue}\"\nchannel = \"{channel}\"\nskills = [\"{skill}\"]\n\
             rates = [{{ from = \"0h\", per_hour = {} }}]\n",
            per_hour * share
        )
    };
    let mut text = format!(
        r#"
[simulation]
duration = "8h"
replications = {replications}
seed = 11
sample_every = "30m"

[routing]
max_missed_offers = 0

[channels.voice]
targets = {{ normal = "20s" }}
wrap_up = "0s"
[channels.chat]
targets = {{ normal = "1m" }}
[channels.email]
targets = {{ normal = "1h" }}

[[queues]]
name = "support"

[[queues]]
name = "german"

[handling]
voice = {{ dist = "exponential", mean = "4m" }}
chat = {{ dist = "exponential", mean = "6m" }}
email = {{ dist = "exponential", mean = "5m" }}

[behaviour]
accept_delay = {{ dist = "uniform", min = "1s", max = "4s" }}

[baseline]
prefetch = 1

[[agents]]
name = "english"
count = 40
skills = {{ english = 8 }}
caps = {{ voice = 1, chat = 1, email = 1 }}
total_cap = 1
shifts = [{{ start = "0h", end = "100h" }}]
queues = ["support"]

[[agents]]
name = "bilingual"
count = 10
skills = {{ english = 6, german = 9 }}
caps = {{ voice = 1, chat = 1, email = 1 }}
total_cap = 1
shifts = [{{ start = "0h", end = "100h" }}]
queues = ["support", "german"]
"#
    );
    if patience {
        text += "\n[patience]\nvoice = { dist = \"exponential\", mean = \"2m\" }\n\
                 chat = { dist = \"exponential\", mean = \"4m\" }\n";
    }
    for (channel, share) in [("voice", 0.40), ("chat", 0.35), ("email", 0.25)] {
        text += &stream("support", channel, share * 0.85, "english");
        text += &stream("german", channel, share * 0.15, "german");
    }
    scenario::parse(&text, Path::new("routing_quality.toml")).unwrap()
}

#[test]
fn no_contact_starves_as_load_rises_toward_capacity() {
    for load in [0.5, 0.7, 0.85, 0.95] {
        let model = centre(load, false, 2);
        let report = run(&model, Router::Engine).unwrap();
        // Every contact was answered, the rare-skill ones included.
        assert_eq!(report.total.get("unanswered").mean, 0.0, "load {load}");
        assert_eq!(
            report.rows.len(),
            6,
            "load {load}: every queue and channel had contacts"
        );
        for row in &report.rows {
            assert_eq!(row.get("unanswered").mean, 0.0);
            let max = row.get("max_wait_seconds").mean;
            let target = row.target_seconds.unwrap();
            println!(
                "load {load}: {} {}: max wait {max:.0} s (target {target} s), service level {:.3}",
                row.queue,
                row.channel.unwrap(),
                row.get("service_level").mean
            );
            // Earliest deadline first spreads lateness instead of starving a class: nobody,
            // on any channel or skill, waits more than ten minutes past their target, even
            // at 95 % of capacity (a starving class would wait for hours).
            assert!(
                max - target <= 600.0,
                "load {load}: {} {} waited {max:.0} s against a {target} s target",
                row.queue,
                row.channel.unwrap()
            );
        }
    }
}

#[test]
fn the_engine_beats_the_work_queue_on_the_same_arrivals() {
    let model = centre(0.85, true, 5);
    let mut diffs = Vec::new();
    let mut voice_diffs = Vec::new();
    for rep in 0..5 {
        let engine = run_once(&model, Router::Engine, rep).unwrap();
        let baseline = run_once(&model, Router::Baseline, rep).unwrap();
        let contacts = |r: &switchboard_sim::stats::Recorder| -> u64 {
            r.groups.iter().map(|g| g.contacts).sum()
        };
        // Same arrivals: the same contacts in each pair of runs.
        assert_eq!(contacts(&engine), contacts(&baseline));
        let sl = |r: &switchboard_sim::stats::Recorder, voice: bool| {
            let groups = r.groups.iter().enumerate().filter(|(g, _)| {
                !voice
                    || switchboard_sim::stats::group_key(*g).1 == switchboard_core::Channel::Voice
            });
            let (within, all) =
                groups.fold((0, 0), |(w, a), (_, g)| (w + g.within, a + g.contacts));
            within as f64 / all as f64
        };
        diffs.push(sl(&engine, false) - sl(&baseline, false));
        voice_diffs.push(sl(&engine, true) - sl(&baseline, true));
    }
    let total = estimate(&diffs);
    let voice = estimate(&voice_diffs);
    println!("service level, engine minus baseline: all {total:?}, voice {voice:?}");
    // Paired over replications: the whole interval of the difference is above zero.
    assert!(total.mean - total.ci95 > 0.0, "{total:?}");
    assert!(voice.mean - voice.ci95 > 0.0, "{voice:?}");
}
