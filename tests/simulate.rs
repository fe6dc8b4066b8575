//! `switchboard simulate` as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn switchboard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/scenarios")
        .join(name)
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = switchboard().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn mmc_json_names_the_figures_and_their_intervals() {
    let (code, out, err) = run(&[
        "simulate",
        "--mmc",
        "--rate",
        "0.05",
        "--aht",
        "180",
        "--agents",
        "10",
        "--target",
        "20",
        "--contacts",
        "20000",
        "--seed",
        "3",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for f in ["p_wait", "asa_seconds", "service_level", "occupancy"] {
        let x = v[f]
            .as_f64()
            .unwrap_or_else(|| panic!("{f} missing in {out}"));
        let ci = v[format!("{f}_ci95")].as_f64().unwrap();
        assert!(x > 0.0 && ci > 0.0, "{f} = {x} ± {ci}");
        assert!(v["erlang_c"][f].as_f64().is_some(), "erlang_c.{f} missing");
    }
    // 0.05/s × 180 s on 10 agents is 90 % occupancy.
    assert!((v["erlang_c"]["occupancy"].as_f64().unwrap() - 0.9).abs() < 1e-12);
}

#[test]
fn a_scenario_against_the_baseline_gives_tables_json_and_a_plot() {
    let dir = std::env::temp_dir().join(format!("switchboard-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("day.svg");
    let file = scenario("replay.toml");
    let (code, out, err) = run(&[
        "simulate",
        file.to_str().unwrap(),
        "--baseline",
        "--replications",
        "2",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("under the engine policy"), "{out}");
    assert!(out.contains("under the baseline policy"), "{out}");
    assert!(out.contains("service level A → B"), "{out}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg"), "{}", &picture[..100]);
    assert!(picture.contains("contacts waiting") && picture.contains("replay (baseline)"));

    let (code, out, err) = run(&[
        "simulate",
        file.to_str().unwrap(),
        "--replications",
        "2",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["policy"], "engine");
    assert_eq!(v["replications"], 2);
    let total = &v["total"];
    assert!(total["service_level"].as_f64().unwrap() > 0.0);
    assert!(total["service_level_ci95"].as_f64().is_some());
    assert!(v["queues"].as_array().unwrap().len() > 3);

    let (code, out, err) = run(&[
        "simulate",
        file.to_str().unwrap(),
        "--compare",
        file.to_str().unwrap(),
        "--replications",
        "2",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    // A scenario against itself on the same arrivals: every difference is zero.
    let diffs = v["differences"].as_array().unwrap();
    assert!(diffs.len() > 3);
    for d in diffs {
        assert_eq!(d["service_level"].as_f64(), Some(0.0), "{d}");
        assert_eq!(d["abandoned"].as_f64(), Some(0.0), "{d}");
    }
}

#[test]
fn a_bad_scenario_names_file_and_key_and_exits_2() {
    let dir = std::env::temp_dir().join(format!("switchboard-simulate-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[agents]]\nname = \"a\"\ncaps = { chat = 1 }\n[[arrivals]]\nqueue = \"default\"\n\
         channel = \"chat\"\nrates = [{ from = \"0h\", per_hour = 1 }]\n",
    )
    .unwrap();
    let (code, _, err) = run(&["simulate", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("bad.toml") && err.contains("handling.chat"),
        "{err}"
    );
}
