//! The `switchboard` binary as a user runs it.

use std::path::Path;
use std::process::Command;

fn switchboard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
}

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.toml")
}

#[test]
fn help_lists_the_commands() {
    let out = switchboard().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("check-config"), "{text}");
}

#[test]
fn check_config_accepts_the_example() {
    let out = switchboard()
        .arg("check-config")
        .arg(example())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("support, billing, vip"), "{text}");
}

#[test]
fn check_config_names_file_key_and_reason() {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[queues]]\nname = \"a\"\noverflow_teams = [\"x\"]\n").unwrap();
    let out = switchboard()
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("queues[0].overflow_teams"), "{err}");
    assert!(err.contains("needs `teams`"), "{err}");
}

#[test]
fn environment_overrides_apply_and_are_checked() {
    let out = switchboard()
        .arg("check-config")
        .arg(example())
        .env("SWITCHBOARD__ROUTING__ON_OFFLINE", "vanish")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("vanish"), "{err}");
    let out = switchboard()
        .arg("check-config")
        .arg(example())
        .env("SWITCHBOARD__ROUTING__ON_OFFLINE", "requeue")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_missing_file_is_an_error() {
    let out = switchboard()
        .args(["check-config", "/nonexistent/switchboard.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/switchboard.toml"));
}

#[test]
fn run_refuses_a_bad_config_before_opening_anything() {
    let dir = std::env::temp_dir().join(format!("switchboard-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = switchboard()
        .args(["run", "--config"])
        .arg(example())
        .env("SWITCHBOARD__BUS__PREFETCH", "0")
        .env("SWITCHBOARD__DATA__DIR", dir.join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bus.prefetch"), "{err}");
    assert!(err.contains("switchboard.toml"), "{err}");
    assert!(!dir.join("data").exists(), "nothing was created");
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "no port was opened"
    );
}

/// The README's configuration reference names exactly the sections of the example config.
#[test]
fn the_configuration_reference_matches_the_example_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = std::fs::read_to_string(root.join("config/switchboard.toml")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let reference = readme
        .split("### Configuration reference")
        .nth(1)
        .and_then(|r| r.split("\n### ").next())
        .expect("a configuration reference in the README");
    let mut sections = std::collections::BTreeSet::new();
    // Sections, and sections shown as commented examples (`# [sources.webchat]`).
    let headers = config.lines().filter_map(|l| {
        let l = l.strip_prefix("# ").unwrap_or(l);
        (l.starts_with('[') && l.ends_with(']')).then_some(l)
    });
    for line in headers {
        let name = line.trim_matches(|c| c == '[' || c == ']');
        let (top, rest) = name.split_once('.').unwrap_or((name, ""));
        let shown = match (line.starts_with("[["), top, rest.is_empty()) {
            (true, _, _) => format!("`[[{top}]]`"),
            // Tables under an array of tables ([queues.targets.email]) belong to it.
            (false, "queues", false) => continue,
            (false, "channels" | "sources" | "mailboxes", false) => format!("`[{top}.*]`"),
            (false, _, true) => format!("`[{top}]`"),
            (false, _, false) => format!("`[{name}]`"),
        };
        sections.insert(shown);
    }
    for s in &sections {
        assert!(reference.contains(s.as_str()), "the reference misses {s}");
    }
    let named = reference.matches("`[").count();
    assert_eq!(
        named,
        sections.len(),
        "the reference names sections the config lacks"
    );
}
