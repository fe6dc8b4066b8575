//! Metrics checked by the tools ops teams use: a real Prometheus (Debian's package, installed
//! by `scripts/setup-tools`) scrapes the real daemon while a scenario with known truth
//! runs, and the values are read back through Prometheus' query API; `promtool check
//! metrics` lints a real scrape; the alert rules and every Grafana query in `deploy/` are
//! evaluated by that Prometheus over what the daemon really exports; `promtool` checks and
//! unit-tests the alert rules.

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Daemon, Setup, contact, scratch};

/// A tool on the PATH, or `None` after saying SKIPPED loudly (a panic under `CI=true`).
fn require(tool: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let msg =
            format!("{tool} not found; run `sudo scripts/setup-services` (or scripts/setup-tools)");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("required in CI: {msg}");
        }
        eprintln!("SKIPPED {test}: {msg}");
    }
    found
}

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

/// A prometheus process of the test's own, killed on drop.
struct Prometheus {
    child: Child,
    base: String,
    http: reqwest::Client,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts prometheus scraping `target` (host:port) every second, with the alert rules
    /// of `deploy/prometheus/rules.yml` evaluated every second.
    async fn start(binary: &Path, target: &str) -> Prometheus {
        let dir = scratch("prometheus");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules}\n\
                 scrape_configs:\n  - job_name: switchboard\n    static_configs:\n      - targets: ['{target}']\n",
                rules = deploy("prometheus/rules.yml").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = p.http.get(format!("{}/-/ready", p.base)).send().await
                && r.status().is_success()
            {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not become ready; its log:\n{}",
                p.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/<path>`; panics unless Prometheus says `success`.
    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let params: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let body: Value = self
            .http
            .get(format!("{}/api/v1/{path}?{}", self.base, params.join("&")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "{path} {query:?}: {body}");
        body["data"].clone()
    }

    /// An instant query that must give a single number; `None` when it gives no series.
    async fn value(&self, promql: &str) -> Option<f64> {
        let data = self.api("query", &[("query", promql)]).await;
        let result = data["result"].as_array()?;
        assert!(
            result.len() <= 1,
            "{promql} gave {} series: {data}",
            result.len()
        );
        let v = result.first()?["value"][1].as_str()?.parse().ok()?;
        Some(v)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Metric names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("switchboard_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The scenario, its truth, and Prometheus' view of it.
#[tokio::test]
async fn a_real_prometheus_sees_the_truth() {
    let test = "a_real_prometheus_sees_the_truth";
    let (Some(prometheus), Some(promtool)) =
        (require("prometheus", test), require("promtool", test))
    else {
        return;
    };
    let mut setup = Setup::embedded("metrics-prom");
    // The vip chat's target is 2 s, so it is past its target while the test looks.
    setup.set("SWITCHBOARD__CHANNELS__CHAT__TARGETS__HIGH", "2s");
    // Offers stand while the test looks (they would expire after 30 s and move on). The
    // vip chat's overflow to other teams after 1 min is the one clock left: the test ends
    // well before it.
    setup.set("SWITCHBOARD__CHANNELS__CHAT__OFFER_TIMEOUT", "1h");
    let d = Daemon::start(&setup);
    let target = d.base.trim_start_matches("http://").to_owned();
    let prom = Prometheus::start(&prometheus, &target).await;

    // Truth: 4 emails nobody has the skill for wait in support; 3 invoice chats go to
    // billing, where bo (chat cap 2) is the only agent: 2 offered, 1 waiting; 1 gold chat
    // waits in vip (no vip agent; overflow only after 1 min); a follow-up joins a chat; a
    // poison message is dead-lettered; two bad requests are refused.
    let mut ids = Vec::new();
    for i in 0..4 {
        let mut c = contact("email", &format!("fr-{i}"), "bonjour");
        c["skills"] = json!(["french"]);
        ids.push(d.post(&c).await);
    }
    for i in 0..3 {
        ids.push(
            d.post(&contact("chat", &format!("inv-{i}"), "my invoice is wrong"))
                .await,
        );
    }
    let mut gold = contact("chat", "gold-1", "hello");
    gold["attributes"] = json!({"tier": "gold"});
    ids.push(d.post(&gold).await);
    let skills: Vec<String> = (0..130).map(|i| format!("rare-skill-{i}")).collect();
    let mut poison = contact("email", "poison-1", "too many skills");
    poison["skills"] = json!(skills);
    ids.push(d.post(&poison).await);
    for (status, body) in &ids {
        assert_eq!(*status, 202, "{body}");
    }
    let first_chat = ids[4].1["id"].as_str().unwrap().to_owned();
    d.wait_contact(&first_chat, |v| v["state"] == "offered")
        .await;
    let (status, _) = d.post(&contact("chat", "inv-0", "still there?")).await;
    assert_eq!(status, 202);
    let (status, _) = d.post_raw(b"{\"channel\": ".to_vec()).await;
    assert_eq!(status, 400);
    let (status, _) = d
        .post(&json!({"channel": "pigeon", "conversation": "x", "customer": "c", "summary": "s"}))
        .await;
    assert_eq!(status, 400);

    let expected: &[(&str, f64)] = &[
        (
            r#"switchboard_contacts_waiting{channel="email",queue="support"}"#,
            4.0,
        ),
        (
            r#"switchboard_contacts_waiting{channel="chat",queue="billing"}"#,
            1.0,
        ),
        (
            r#"switchboard_contacts_waiting{channel="chat",queue="vip"}"#,
            1.0,
        ),
        (r#"sum(switchboard_contacts_waiting)"#, 6.0),
        (r#"sum(switchboard_contacts_open{state="offered"})"#, 2.0),
        (
            r#"switchboard_contacts_open{channel="chat",queue="billing",state="offered"}"#,
            2.0,
        ),
        (
            r#"sum(switchboard_contacts_open{state=~"assigned|wrap_up"})"#,
            0.0,
        ),
        (
            r#"sum(switchboard_contacts_ingested_total{queue="support"})"#,
            4.0,
        ),
        (
            r#"sum(switchboard_contacts_ingested_total{queue="billing"})"#,
            3.0,
        ),
        (
            r#"switchboard_contacts_ingested_total{channel="chat",queue="vip",urgency="high"}"#,
            1.0,
        ),
        (r#"sum(switchboard_contacts_ingested_total)"#, 8.0),
        (
            r#"switchboard_offers_total{channel="chat",queue="billing"}"#,
            2.0,
        ),
        (r#"sum(switchboard_offers_total)"#, 2.0),
        (r#"switchboard_follow_ups_total{channel="chat"}"#, 1.0),
        (
            r#"switchboard_waits_total{channel="email",queue="support",reason="no_agent_with_skills"}"#,
            4.0,
        ),
        (
            r#"switchboard_contacts_past_target{channel="chat",queue="vip"}"#,
            1.0,
        ),
        (r#"sum(switchboard_contacts_past_target)"#, 1.0),
        (
            r#"switchboard_oldest_wait_seconds{channel="chat",queue="vip"} > bool 2"#,
            1.0,
        ),
        (
            r#"switchboard_oldest_wait_seconds{channel="voice",queue="support"}"#,
            0.0,
        ),
        // No agent can accept yet (the agent API comes later): nothing assigned, and no
        // customer left.
        (r#"sum(switchboard_contacts_assigned_total)"#, 0.0),
        (
            r#"sum(switchboard_contacts_assigned_within_target_total)"#,
            0.0,
        ),
        (r#"sum(switchboard_contacts_abandoned_total)"#, 0.0),
        (
            r#"switchboard_dead_letters_total{reason="unroutable"}"#,
            1.0,
        ),
        (
            r#"switchboard_dead_letters_total{reason="undecodable"}"#,
            0.0,
        ),
        (
            r#"switchboard_ingest_rejected_total{reason="malformed_json"}"#,
            1.0,
        ),
        (
            r#"switchboard_ingest_rejected_total{reason="invalid_field"}"#,
            1.0,
        ),
        (r#"sum(switchboard_ingest_accepted_total)"#, 10.0),
        (
            r#"switchboard_bus_publishes_total{result="confirmed"}"#,
            10.0,
        ),
        (r#"switchboard_bus_deliveries_total"#, 10.0),
        (r#"switchboard_agents{presence="available"}"#, 2.0),
        (r#"switchboard_agents{presence="offline"}"#, 0.0),
        (
            r#"switchboard_agent_slots_used{channel="chat",presence="available"}"#,
            2.0,
        ),
        (
            r#"switchboard_agent_slots{channel="chat",presence="available"}"#,
            5.0,
        ),
        // bo holds 2 of 2 chats (load 1), ana nothing (0).
        (r#"switchboard_agent_occupancy_ratio"#, 0.5),
        (r#"switchboard_bus_up"#, 1.0),
        (r#"switchboard_store_up"#, 1.0),
        (r#"switchboard_router_leader"#, 1.0),
        (
            r#"switchboard_build_info{bus="in_process",store="sqlite"}"#,
            1.0,
        ),
        (r#"count(switchboard_agent_load_ratio)"#, f64::NAN), // off by default: no series
    ];
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let mut wrong = Vec::new();
        for (q, want) in expected {
            let got = prom.value(q).await;
            let ok = match got {
                None => want.is_nan(),
                Some(v) => (v - want).abs() < 1e-9,
            };
            if !ok {
                wrong.push(format!("{q}: want {want}, got {got:?}"));
            }
        }
        if wrong.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw the truth:\n{}\nprometheus log:\n{}",
            wrong.join("\n"),
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // promtool lints a real scrape.
    let scrape = d.metrics().await;
    let mut lint = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for label in ["agent=\"", "customer=\"", "contact=\"", "conversation=\""] {
        assert!(
            !scrape.contains(label),
            "no per-agent or per-contact labels by default: {label}"
        );
    }

    // Every metric the alert rules and the dashboard use is one the daemon exports.
    let exported: HashSet<String> = prom
        .api("label/__name__/values", &[])
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    // The alert rules: loaded by Prometheus, evaluated without error, over real metrics,
    // and none firing but the one the scenario causes (a contact past its target, which
    // only fires after 5 min: pending at most).
    let deadline = Instant::now() + Duration::from_secs(20);
    let rules = loop {
        let groups = prom.api("rules", &[]).await;
        let rules: Vec<Value> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .collect();
        let evaluated = rules.iter().all(|r| {
            r["lastEvaluation"]
                .as_str()
                .is_some_and(|t| !t.starts_with("0001"))
        });
        let pending = rules
            .iter()
            .any(|r| r["name"] == "SwitchboardOldestWaitPastTarget" && r["state"] == "pending");
        if evaluated && pending {
            break rules;
        }
        assert!(
            Instant::now() < deadline,
            "rules never evaluated: {rules:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(rules.len(), 9, "{rules:?}");
    for r in &rules {
        assert_eq!(r["health"], "ok", "{r}");
        for name in metric_names(r["query"].as_str().unwrap()) {
            assert!(
                exported.contains(&name),
                "rule {} uses {name}, not exported",
                r["name"]
            );
        }
        let state = r["state"].as_str().unwrap_or("");
        if r["name"] == "SwitchboardOldestWaitPastTarget" {
            assert_eq!(state, "pending", "{r}");
        } else {
            assert_eq!(state, "inactive", "{r}");
        }
    }

    // The dashboard: every query is valid PromQL over exported metrics, and those over the
    // queue gauges give data.
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(deploy("grafana/switchboard.json")).unwrap())
            .unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap();
            let promql = expr
                .replace("$queue", ".*")
                .replace("$__rate_interval", "1m");
            let data = prom.api("query", &[("query", &promql)]).await;
            for name in metric_names(expr) {
                assert!(
                    exported.contains(&name),
                    "panel {:?} uses {name}, not exported",
                    panel["title"]
                );
            }
            if expr.contains("switchboard_contacts_waiting") {
                assert!(
                    !data["result"].as_array().unwrap().is_empty(),
                    "{expr}: {data}"
                );
            }
            queries += 1;
        }
    }
    assert!(queries >= 20, "only {queries} dashboard queries");
    let variable = dashboard["templating"]["list"][1]["query"]["query"]
        .as_str()
        .unwrap();
    let values = prom
        .api(
            "label/queue/values",
            &[("match[]", "switchboard_contacts_waiting")],
        )
        .await;
    assert!(variable.contains("switchboard_contacts_waiting"));
    assert_eq!(values, json!(["billing", "support", "vip"]));

    drop(prom);
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    setup.cleanup().await;
}

/// `promtool check rules` and `promtool test rules` on `deploy/prometheus/`.
#[test]
fn alert_rules_pass_promtool() {
    let Some(promtool) = require("promtool", "alert_rules_pass_promtool") else {
        return;
    };
    for args in [
        vec!["check", "rules", "rules.yml"],
        vec!["test", "rules", "rules.test.yml"],
        vec!["check", "config", "prometheus.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(&args)
            .current_dir(deploy("prometheus"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "promtool {args:?}:\n{text}");
        assert!(text.contains("SUCCESS"), "promtool {args:?}:\n{text}");
    }
}

/// Service level through the real stack: agents whose offers are accepted at once
/// (`auto_accept`) take 3 emails within their 4 h target and 1 SMS after its 1 s target has
/// passed; Prometheus sees 4 assigned, 3 within target, per channel and queue.
#[tokio::test]
async fn a_real_prometheus_sees_the_service_level() {
    let test = "a_real_prometheus_sees_the_service_level";
    let Some(prometheus) = require("prometheus", test) else {
        return;
    };
    let mut setup = Setup::embedded("metrics-prom-sl");
    setup.set("SWITCHBOARD__CHANNELS__SMS__TARGETS__NORMAL", "1s");
    let d = Daemon::start(&setup);
    d.wait_leader().await;
    let target = d.base.trim_start_matches("http://").to_owned();
    let prom = Prometheus::start(&prometheus, &target).await;
    let put = |path: String, body: Value| {
        let (http, url) = (d.http.clone(), d.url(&path));
        async move {
            let r = http.put(url).json(&body).send().await.unwrap();
            assert_eq!(
                r.status().as_u16(),
                200,
                "{path}: {}",
                r.text().await.unwrap()
            );
        }
    };
    put(
        "/v1/agents/ida".into(),
        json!({ "skills": { "german": 5 }, "caps": { "email": 3 }, "auto_accept": true }),
    )
    .await;
    put(
        "/v1/agents/ida/presence".into(),
        json!({ "presence": "available" }),
    )
    .await;
    put(
        "/v1/agents/jo".into(),
        json!({ "skills": { "german": 5 }, "caps": { "sms": 1 }, "auto_accept": true }),
    )
    .await;
    for i in 0..3 {
        let mut c = contact("email", &format!("de-{i}"), "guten tag");
        c["skills"] = json!(["german"]);
        let (status, body) = d.post(&c).await;
        assert_eq!(status, 202, "{body}");
        d.wait_contact(body["id"].as_str().unwrap(), |v| v["state"] == "assigned")
            .await;
    }
    // The SMS waits for jo, who is offline, until its 1 s target has passed.
    let mut sms = contact("sms", "de-sms", "hallo");
    sms["skills"] = json!(["german"]);
    let (status, body) = d.post(&sms).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let view = d.wait_contact(&id, |v| v["state"] == "waiting").await;
    let deadline = view["deadline"].as_u64().unwrap();
    while switchboard::router::now().as_millis() <= deadline + 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    put(
        "/v1/agents/jo/presence".into(),
        json!({ "presence": "available" }),
    )
    .await;
    d.wait_contact(&id, |v| v["state"] == "assigned").await;

    let email = r#"{channel="email",queue="support"}"#;
    let sms = r#"{channel="sms",queue="support"}"#;
    let expected: Vec<(String, f64)> = vec![
        (format!("switchboard_contacts_assigned_total{email}"), 3.0),
        (format!("switchboard_contacts_assigned_within_target_total{email}"), 3.0),
        (format!("switchboard_contacts_assigned_total{sms}"), 1.0),
        (format!("switchboard_contacts_assigned_within_target_total{sms}"), 0.0),
        (
            "sum(switchboard_contacts_assigned_within_target_total) / sum(switchboard_contacts_assigned_total)".into(),
            0.75,
        ),
        (
            r#"sum(switchboard_offer_outcomes_total{outcome="accepted"})"#.into(),
            4.0,
        ),
        (format!("switchboard_time_to_assignment_seconds_count{sms}"), 1.0),
        (
            r#"switchboard_time_to_assignment_seconds_bucket{channel="sms",queue="support",le="1"}"#.into(),
            0.0,
        ),
        (
            r#"switchboard_time_to_accept_seconds_count{channel="email"}"#.into(),
            3.0,
        ),
        (r#"sum(switchboard_contacts_open{state="assigned"})"#.into(), 4.0),
        ("sum(switchboard_contacts_waiting)".into(), 0.0),
        // ida 3 of 3 emails, jo 1 of 1 SMS, ana and bo nothing: (1 + 1 + 0 + 0) / 4.
        ("switchboard_agent_occupancy_ratio".into(), 0.5),
        (r#"switchboard_agents{presence="available"}"#.into(), 4.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let mut wrong = Vec::new();
        for (q, want) in &expected {
            let got = prom.value(q).await;
            if got.is_none_or(|v| (v - want).abs() > 1e-9) {
                wrong.push(format!("{q}: want {want}, got {got:?}"));
            }
        }
        if wrong.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw the service level:\n{}",
            wrong.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(prom);
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    setup.cleanup().await;
}
