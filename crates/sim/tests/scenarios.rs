//! Scenario files: every shipped example parses and runs; mistakes are named by key;
//! the same seed gives the same report; replay and comparisons see the same contacts.

use std::path::{Path, PathBuf};

use switchboard_sim::scenario::{self, Model};
use switchboard_sim::{Router, SimError, run, run_once};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/scenarios")
}

fn example(name: &str) -> Model {
    scenario::load(&examples().join(name)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_shipped_scenario_parses_and_runs() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(examples()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let mut model = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            model.replications = 1;
            let report = run(&model, Router::Engine).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                report.total.get("answered").mean > 0.0,
                "{}: nothing answered",
                path.display()
            );
            seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    seen.sort();
    // One per use: what-if (a base and its variant), replay, baseline comparison.
    assert_eq!(
        seen,
        [
            "baseline.toml",
            "centre-whatif.toml",
            "centre.toml",
            "replay.toml"
        ]
    );
}

fn parse_err(text: &str) -> String {
    match scenario::parse(text, Path::new("bad.toml")) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const MINIMAL: &str = r#"
[handling]
chat = { dist = "exponential", mean = "5m" }

[[arrivals]]
queue = "default"
channel = "chat"
rates = [{ from = "0h", per_hour = 10 }]

[[agents]]
name = "a"
caps = { chat = 2 }
"#;

#[test]
fn the_minimal_scenario_is_valid() {
    let model = scenario::parse(MINIMAL, Path::new("ok.toml")).unwrap();
    assert_eq!(model.agents.len(), 1);
    assert_eq!(model.replications, 5);
}

#[test]
fn mistakes_are_named_by_key() {
    let cases: [(String, &[&str]); 9] = [
        (
            format!("{MINIMAL}\n[simulation]\nreplicashuns = 3\n"),
            &["bad.toml", "replicashuns"],
        ),
        (
            MINIMAL.replace("caps = { chat = 2 }", "caps = { fax = 2 }"),
            &["agents[0].caps.fax", "known channels"],
        ),
        (
            MINIMAL.replace("queue = \"default\"", "queue = \"sales\""),
            &["arrivals[0].queue", "unknown queue \"sales\""],
        ),
        (
            MINIMAL.replace("rates = [", "skills = [\"french\"]\nrates = ["),
            &["arrivals[0].skills[0]", "french"],
        ),
        (
            MINIMAL.replace("[handling]\nchat", "[handling]\nvoice"),
            &["handling.chat", "missing"],
        ),
        (
            format!("{MINIMAL}\n[patience]\nemail = {{ dist = \"constant\", value = \"1h\" }}\n"),
            &["patience.email", "do not abandon"],
        ),
        (
            MINIMAL.replace("mean = \"5m\"", "mean = \"soon\""),
            &["bad.toml", "mean"],
        ),
        (
            format!("{MINIMAL}\n[behaviour]\ndecline = 1.5\n"),
            &["behaviour.decline", "probability"],
        ),
        (
            MINIMAL.replace(
                "caps = { chat = 2 }",
                "caps = { chat = 2 }\nshifts = [{ start = \"9h\", end = \"8h\" }]",
            ),
            &["agents[0].shifts[0]", "before end"],
        ),
    ];
    for (text, wanted) in cases {
        let err = parse_err(&text);
        for w in wanted {
            assert!(err.contains(w), "{err:?} should mention {w:?}");
        }
    }
}

#[test]
fn a_bad_replay_row_is_named_by_line() {
    let dir = std::env::temp_dir().join(format!("switchboard-sim-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("day.csv"),
        "arrived_at,channel,queue,urgency,skills,handling,patience\n\
         10,chat,default,,,60,\n\
         20,fax,default,,,60,\n",
    )
    .unwrap();
    let text = MINIMAL.replace(
        "[[arrivals]]",
        "[replay]\nfile = \"day.csv\"\n\n[[arrivals]]",
    );
    let err = scenario::parse(&text, &dir.join("s.toml")).unwrap_err();
    assert!(matches!(err, SimError::Replay { line: 3, .. }), "{err}");
    assert!(err.to_string().contains("fax"), "{err}");
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let mut model = example("replay.toml");
    model.replications = 2;
    let a = run(&model, Router::Engine).unwrap().json();
    let b = run(&model, Router::Engine).unwrap().json();
    assert_eq!(a, b);
    model.seed += 1;
    let c = run(&model, Router::Engine).unwrap().json();
    assert_ne!(
        a, c,
        "a different seed draws different handling times and behaviour"
    );
}

#[test]
fn replay_feeds_exactly_the_recorded_contacts() {
    let model = example("replay.toml");
    let rows = std::fs::read_to_string(examples().join("replay-tuesday.csv"))
        .unwrap()
        .lines()
        .count() as u64
        - 1;
    assert_eq!(model.replay.len() as u64, rows);
    for rep in 0..2 {
        let rec = run_once(&model, Router::Engine, rep).unwrap();
        let arrived: u64 = rec.groups.iter().map(|g| g.contacts).sum();
        assert_eq!(arrived, rows);
        let done: u64 = rec
            .groups
            .iter()
            .map(|g| g.answered + g.abandoned + g.unanswered)
            .sum();
        assert_eq!(
            done, rows,
            "every contact ends answered, abandoned or unanswered"
        );
    }
}

#[test]
fn a_what_if_sees_the_same_contacts_as_its_base() {
    let base = example("centre.toml");
    let what_if = example("centre-whatif.toml");
    for rep in 0..2 {
        let a = switchboard_sim::arrivals::generate(&base, rep);
        let b = switchboard_sim::arrivals::generate(&what_if, rep);
        assert!(a.len() > 90_000, "{}", a.len());
        assert_eq!(a, b);
    }
}

#[test]
fn an_audit_log_becomes_a_replay_of_the_same_contacts() {
    use switchboard_sim::arrivals::{generate, replay_from_audit, write_replay};
    use switchboard_sim::driver::run_engine_logged;
    use switchboard_sim::stats::Recorder;

    // A run of the engine stands in for a day of the daemon: its audit log, exported.
    let model = example("replay.toml");
    let original = generate(&model, 0);
    let mut log = Vec::new();
    let rec = Recorder::new(model.policy.queues.len(), model.agents.len(), 0);
    let rec =
        run_engine_logged(&model, original.clone().into_iter(), 0, rec, Some(&mut log)).unwrap();
    let rows = replay_from_audit(log);
    assert_eq!(rows.len(), original.len());
    let dir = std::env::temp_dir().join(format!("switchboard-sim-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_replay(&rows, &model, &dir.join("exported.csv")).unwrap();

    // The same scenario, replaying the export instead of the shipped file.
    let text = std::fs::read_to_string(examples().join("replay.toml"))
        .unwrap()
        .replace("file = \"replay-tuesday.csv\"", "file = \"exported.csv\"");
    let replayed = scenario::parse(&text, &dir.join("replayed.toml")).unwrap();
    let again = generate(&replayed, 0);
    assert_eq!(again.len(), original.len());
    let attributes =
        |a: &switchboard_sim::arrivals::Arrival| (a.at, a.queue, a.channel, a.urgency, a.required);
    let abandoned: u64 = rec.groups.iter().map(|g| g.abandoned).sum();
    let (mut handled, mut left) = (0, 0);
    for ((row, a), b) in rows.iter().zip(&original).zip(&again) {
        assert_eq!(attributes(a), attributes(b));
        // What the log knows comes back exactly.
        if let Some(h) = row.handle_ms {
            assert_eq!((h, b.handle_ms), (a.handle_ms, a.handle_ms));
            handled += 1;
        }
        if let Some(p) = row.patience_ms {
            assert_eq!((Some(p), b.patience_ms), (a.patience_ms, a.patience_ms));
            left += 1;
        }
    }
    assert_eq!(left, abandoned, "every abandonment gives its patience");
    assert_eq!(
        handled + abandoned,
        rows.len() as u64,
        "every other contact its handling"
    );
}
