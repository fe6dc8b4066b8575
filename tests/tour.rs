//! The README's five-minute tour, run as written: the commands between the `tour:start`
//! and `tour:end` markers, with bash, against the daemon started as the README says
//! (the same admin token; only the address is this test's own).

mod support;

use std::process::Command;

use support::{Daemon, Setup};

#[tokio::test]
async fn the_readme_tour_works_as_written() {
    if Command::new("curl").arg("--version").output().is_err() {
        let msg = "curl is not installed (apt-get install curl)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("required in CI: {msg}");
        }
        eprintln!("SKIPPED the_readme_tour_works_as_written: {msg}");
        return;
    }
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let block = readme
        .split("<!-- tour:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- tour:end -->").next())
        .expect("the README has a tour between its markers");
    let script: String = block
        .lines()
        .skip_while(|l| !l.starts_with("```sh"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        script.contains("curl"),
        "the tour block has commands: {block}"
    );
    assert!(
        readme.contains("SWITCHBOARD__AUTH__ADMIN_TOKEN=tour-admin-token cargo run --release -- run --config config/switchboard.toml"),
        "the README starts the daemon the way this test does"
    );

    let mut setup = Setup::embedded("tour");
    setup.set("SWITCHBOARD__AUTH__ADMIN_TOKEN", "tour-admin-token");
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    let base = d.base.clone();
    let dir = setup.data.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("SB", base)
            .current_dir(dir)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the tour failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"name\":\"alex\""), "{stdout}");
    assert!(stdout.contains("event: offer"), "{stdout}");
    assert!(stdout.contains("\"status\":\"accepted\""), "{stdout}");
    assert!(
        stdout
            .contains("switchboard_contacts_assigned_total{channel=\"chat\",queue=\"support\"} 1"),
        "{stdout}"
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    setup.cleanup().await;
}
