//! End to end with a real Prometheus: the shipped scrape config and rules,
//! `promtool check metrics`, every dashboard query answered with data, and
//! the session-drop and freeze alerts reaching `firing`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use casewatch::config;
use casewatch::sim::SimProfile;
use serde_json::{json, Value};

use crate::harness::*;

/// A Prometheus child process on loopback with its own data directory.
pub struct Prometheus {
    child: Child,
    url: String,
    http: reqwest::Client,
    agents: usize,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped rule files with every group evaluated each second: the
/// 5-minute board group would otherwise write nothing within a test.
pub fn rules_evaluated_each_second() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let interval = regex::Regex::new(r"(?m)^(\s+)interval: \S+$").unwrap();
    for name in ["casewatch.rules.yml", "casewatch.alerts.yml"] {
        let text = std::fs::read_to_string(format!("config/alerts/{name}")).unwrap();
        let changed = interval.replace_all(&text, "${1}interval: 1s");
        std::fs::write(dir.path().join(name), changed.as_ref()).unwrap();
    }
    dir
}

/// A copy of the shipped rule files with every duration (range windows,
/// subquery steps, `for:`, group intervals) divided by `factor`, so that a
/// live test sees minutes pass in seconds. Only the time scale changes; the
/// shipped files themselves are proven at production rates by the promtool
/// scenarios (config/alerts/tests/).
pub fn rules_scaled_down(factor: u64) -> tempfile::TempDir {
    let seconds = |text: &str| -> u64 {
        let (number, unit) = text.split_at(text.len() - 1);
        let n: u64 = number.parse().unwrap();
        n * match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            "w" => 604800,
            other => panic!("unknown duration unit {other}"),
        }
    };
    let scale = |text: &str| -> String {
        let s = seconds(text);
        assert_eq!(s % factor, 0, "{text} does not divide by {factor}");
        format!("{}s", s / factor)
    };
    let dir = tempfile::tempdir().unwrap();
    let ranges = regex::Regex::new(r"\[(\d+[smhdw])(?::(\d+[smhdw]))?\]").unwrap();
    let fields = regex::Regex::new(r"(?m)^(\s+(?:for|interval): )(\d+[smhdw])$").unwrap();
    for name in ["casewatch.rules.yml", "casewatch.alerts.yml"] {
        let text = std::fs::read_to_string(format!("config/alerts/{name}")).unwrap();
        let text = ranges.replace_all(&text, |c: &regex::Captures| match c.get(2) {
            Some(step) => format!("[{}:{}]", scale(&c[1]), scale(step.as_str())),
            None => format!("[{}]", scale(&c[1])),
        });
        let text = fields.replace_all(&text, |c: &regex::Captures| {
            format!("{}{}", &c[1], scale(&c[2]))
        });
        std::fs::write(dir.path().join(name), text.as_ref()).unwrap();
    }
    dir
}

impl Prometheus {
    /// Starts Prometheus with the shipped `config/prometheus.yml`, changed
    /// only where a test must: 1-second scrapes and evaluations, the rule
    /// files in `rules`, and a file_sd list of `agents` (address and site)
    /// in the shape of the shipped `config/casewatch-targets.yml`.
    pub async fn start(
        binary: &Path,
        agents: &[(std::net::SocketAddr, &str)],
        scrape_extra: &str,
        rules: &Path,
    ) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let shipped = std::fs::read_to_string("config/prometheus.yml").unwrap();
        let targets = dir.path().join("targets.yml");
        let config = shipped
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
            .replace("- alerts/*.yml", &format!("- {}/*.yml", rules.display()))
            .replace(
                "files: [casewatch-targets.yml]",
                &format!("files: [{}]", targets.display()),
            )
            .replace(
                "    metrics_path: /metrics\n",
                &format!("    metrics_path: /metrics\n{scrape_extra}"),
            );
        assert!(
            config.contains(&targets.display().to_string())
                && config.contains(&rules.display().to_string()),
            "the shipped config changed shape; update this test"
        );
        // The shipped example, one entry per agent.
        let example = std::fs::read_to_string("config/casewatch-targets.yml").unwrap();
        let entry = example
            .lines()
            .skip_while(|l| !l.starts_with("- targets:"))
            .take_while(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            entry.contains("127.0.0.1:9898") && entry.contains("site: demo-office"),
            "the shipped file_sd example changed shape; update this test: {entry}"
        );
        let list: String = agents
            .iter()
            .map(|(addr, site)| {
                entry
                    .replace("127.0.0.1:9898", &addr.to_string())
                    .replace("site: demo-office", &format!("site: {site}"))
                    + "\n"
            })
            .collect();
        std::fs::write(&targets, list).unwrap();
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        let prometheus = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            agents: agents.len(),
            _dir: dir,
        };
        let ready = format!("{}/-/ready", prometheus.url);
        wait_for(
            Duration::from_secs(30),
            "Prometheus to be ready",
            || async {
                let response = prometheus.http.get(&ready).send().await.ok()?;
                response.status().is_success().then_some(())
            },
        )
        .await;
        prometheus
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .query(query)
            .send()
            .await
            .expect("Prometheus answers");
        response.json().await.expect("Prometheus API returns JSON")
    }

    pub async fn query(&self, promql: &str) -> Value {
        self.get("/api/v1/query", &[("query", promql)]).await
    }

    /// The result vector of an instant query that must succeed.
    pub async fn vector(&self, promql: &str) -> Vec<Value> {
        let answer = self.query(promql).await;
        assert_eq!(answer["status"], "success", "{promql}: {answer}");
        answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until Prometheus has scraped every agent successfully.
    pub async fn wait_until_scraping(&self) {
        wait_for(
            Duration::from_secs(30),
            "Prometheus to scrape the agents",
            || async {
                let up = self.query(r#"up{job="casewatch"} == 1"#).await;
                (up["data"]["result"]
                    .as_array()
                    .is_some_and(|r| r.len() == self.agents))
                .then_some(())
            },
        )
        .await;
    }

    pub async fn alert_state(&self, name: &str) -> Option<String> {
        let alerts = self.get("/api/v1/alerts", &[]).await;
        alerts["data"]["alerts"]
            .as_array()?
            .iter()
            .filter(|a| a["labels"]["alertname"] == name)
            .map(|a| a["state"].as_str().unwrap_or("").to_string())
            .max_by_key(|state| state == "firing")
    }

    /// The alerts named `name` now, with their labels, state and value.
    pub async fn alerts(&self, name: &str) -> Vec<Value> {
        let alerts = self.get("/api/v1/alerts", &[]).await;
        alerts["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["labels"]["alertname"] == name)
            .cloned()
            .collect()
    }

    pub async fn wait_for_firing(&self, name: &str, limit: Duration) {
        wait_for(limit, &format!("alert {name} to fire"), || async {
            (self.alert_state(name).await.as_deref() == Some("firing")).then_some(())
        })
        .await;
    }
}

/// Every PromQL expression in a dashboard: panel targets, annotations, and
/// the metric behind each `label_values` variable, with variables filled in.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `$site` becomes `site` (the variable is single-select), `$change` the
/// unix time `change_at` (the value the change variable carries).
pub fn dashboard_queries(path: &Path, site: &str, change_at: f64) -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queries = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = panels.pop() {
        if let Some(inner) = panel["panels"].as_array() {
            panels.extend(inner);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                queries.push((format!("panel {:?}", panel["title"]), expr.to_string()));
            }
        }
    }
    for annotation in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(expr) = annotation["expr"].as_str() {
            queries.push((
                format!("annotation {:?}", annotation["name"]),
                expr.to_string(),
            ));
        }
    }
    let label_values = regex::Regex::new(r"^label_values\((.+),\s*(\w+)\)$").unwrap();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(query) = variable["query"]
            .as_str()
            .or_else(|| variable["query"]["query"].as_str())
        else {
            continue;
        };
        if let Some(captures) = label_values.captures(query.trim()) {
            let expr = format!("count by ({}) ({})", &captures[2], &captures[1]);
            queries.push((format!("variable {:?}", variable["name"]), expr));
        }
    }
    queries
        .into_iter()
        .map(|(what, expr)| {
            let filled = expr
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "5m")
                .replace("$__range", "5m")
                .replace("$report_journey", ".*report.*")
                .replace("${report_journey}", ".*report.*")
                .replace("$change", &format!("{change_at:.0}"))
                .replace("$site", site)
                // The board group runs each second here (see
                // `rules_evaluated_each_second`), so its samples are read
                // each second too, over the minutes the test has.
                .replace("[37d:5m]", "[10m:1s]");
            let filled = regex::Regex::new(r"\$\{?(target|journey)\}?")
                .unwrap()
                .replace_all(&filled, ".*")
                .to_string();
            (what, filled)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_scrapes_the_agent_runs_every_dashboard_query_and_fires_alerts() {
    let (Some(prometheus_bin), Some(promtool)) =
        (require_tool("prometheus"), require_tool("promtool"))
    else {
        return;
    };
    let sim = start_sim(SimProfile::quiet()).await;
    // The demo's own agent config, its journal in a temporary directory.
    let journal_dir = tempfile::tempdir().unwrap();
    let mut config =
        config::from_yaml_str_with_base_urls(config::DEMO_YAML, "demo.yaml", &sim.base_urls())
            .unwrap()
            .config;
    if let Some(journal) = config.journal.as_mut() {
        journal.path = journal_dir.path().join("journal.db");
    }
    // The board's time-lost panels count working time only, and the demo's
    // practitioners work weekdays 09:00-17:00 of the simulator's calendar:
    // at work around the clock here, every panel has time to count.
    config.practitioners.working_from_minute = 0;
    config.practitioners.working_to_minute = 24 * 60;
    config.practitioners.weekends = true;
    let agent = start_agent(config).await;

    // promtool's linter finds nothing to say about the exposition.
    let exposition = agent.metrics().await;
    let mut lint = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut lint.stdin.take().unwrap(), exposition.as_bytes()).unwrap();
    let lint = lint.wait_with_output().unwrap();
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&lint.stdout), "");
    assert_eq!(String::from_utf8_lossy(&lint.stderr), "");

    let rules = rules_evaluated_each_second();
    let prometheus = Prometheus::start(
        &prometheus_bin,
        &[(agent.addr, "demo-office")],
        "",
        rules.path(),
    )
    .await;
    prometheus.wait_until_scraping().await;
    // `up` names the site (from the file_sd list); the agent's own series
    // keep the agent's own `site`, with no `exported_site` copy.
    assert_eq!(
        prometheus
            .vector(r#"up{job="casewatch",site="demo-office"} == 1"#)
            .await
            .len(),
        1
    );
    assert_eq!(
        prometheus
            .vector(r#"casewatch_build_info{site="demo-office"}"#)
            .await
            .len(),
        1
    );
    assert!(prometheus
        .vector(r#"{job="casewatch",exported_site!=""}"#)
        .await
        .is_empty());

    // A short freeze that ends, so freeze durations have data.
    sim.control("freeze", json!({"seconds": 4.0, "system": "ics"}))
        .await;
    wait_for(
        Duration::from_secs(30),
        "a freeze episode to end",
        || async {
            let text = agent.metrics().await;
            (metric(
                &text,
                "casewatch_freeze_duration_seconds_count",
                &[("target", "ics")],
            ) >= 1.0)
                .then_some(())
        },
    )
    .await;

    // Forced logouts: the session-drop alert fires.
    let drop_alert = async {
        prometheus
            .wait_for_firing("CasewatchForcedLogout", Duration::from_secs(60))
            .await;
    };
    let force = async {
        for _ in 0..60 {
            sim.control("logout", json!({"which": "all"})).await;
            if prometheus
                .alert_state("CasewatchForcedLogout")
                .await
                .as_deref()
                == Some("firing")
            {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    tokio::join!(drop_alert, force);

    // Let a few scrapes and evaluations cover every series, then ask
    // Prometheus every dashboard query.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut files: Vec<PathBuf> = std::fs::read_dir("dashboards")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4);
    let mut empty = Vec::new();
    let mut asked = 0;
    // The board's before/after windows around a change a few seconds ago.
    let change_at = unix_now() - 3.0;
    for file in &files {
        for (what, expr) in dashboard_queries(file, "demo-office", change_at) {
            asked += 1;
            let answer = prometheus.query(&expr).await;
            assert_eq!(
                answer["status"],
                "success",
                "{}: {what}: {expr}: {answer}",
                file.display()
            );
            let result = &answer["data"]["result"];
            if result.as_array().is_some_and(|r| !r.is_empty()) {
                continue;
            }
            // A panel that draws only what happened (`... > 0`) may be
            // empty; its series must still be there, at zero.
            let unfiltered = expr.trim_end().strip_suffix("> 0").map(str::trim_end);
            if let Some(unfiltered) = unfiltered {
                if !prometheus.vector(unfiltered).await.is_empty() {
                    continue;
                }
            }
            empty.push((format!("{}: {what}: {expr}", file.display()), expr));
        }
    }
    assert!(asked >= 30, "only {asked} queries found in the dashboards");
    // Recording rules that feed others reach them an evaluation or two
    // later, and later still on a loaded machine: a query still empty is
    // asked again until it answers, for at most half a minute.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !empty.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut still = Vec::new();
        for (what, expr) in empty {
            if prometheus.vector(&expr).await.is_empty() {
                still.push((what, expr));
            }
        }
        empty = still;
    }
    let empty: Vec<String> = empty.into_iter().map(|(what, _)| what).collect();
    assert!(
        empty.is_empty(),
        "queries without data:\n{}",
        empty.join("\n")
    );

    // A freeze longer than the alert's two minutes: the freeze alert fires.
    sim.control("freeze", json!({"seconds": 210.0, "system": "ics"}))
        .await;
    prometheus
        .wait_for_firing("CasewatchFreezeInProgress", Duration::from_secs(210))
        .await;

    agent.stop().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_through_tls_and_basic_auth() {
    let (Some(prometheus_bin), Some(promtool)) =
        (require_tool("prometheus"), require_tool("promtool"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    std::fs::write(dir.path().join("tls.crt"), certified.cert.pem()).unwrap();
    std::fs::write(
        dir.path().join("tls.key"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    let hash = bcrypt::hash("scrape-secret", 4).unwrap();
    let web_yml = dir.path().join("web.yml");
    std::fs::write(
        &web_yml,
        format!("tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\nbasic_auth_users:\n  prometheus: {hash}\n"),
    )
    .unwrap();
    // The file is valid in Prometheus's own eyes.
    let check = Command::new(&promtool)
        .args(["check", "web-config"])
        .arg(&web_yml)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let sim = start_sim(SimProfile::quiet()).await;
    let config = load(&config_yaml("", "  - { name: ping, target: ics, login: false, schedule: { interval: 1s }, steps: [{ name: ping, path: /ping }] }\n"), &sim);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let options = casewatch::agent::AgentOptions {
        web_config: casewatch::webconfig::WebConfig::load(&web_yml).unwrap(),
        ..casewatch::agent::AgentOptions::new("127.0.0.1:0".parse().unwrap(), test_env(PASSWORD))
    };
    let agent =
        casewatch::agent::Agent::start(std::sync::Arc::new(config), options, shutdown.clone())
            .await
            .unwrap();
    let url = format!("https://{}/metrics", agent.addr);
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = client
        .get(&url)
        .basic_auth("prometheus", Some("guess"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = client
        .get(&url)
        .basic_auth("prometheus", Some("scrape-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    // Plain HTTP is not served.
    let plain = reqwest::get(format!("http://{}/metrics", agent.addr)).await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));

    let scrape_through = "    scheme: https\n    tls_config:\n      insecure_skip_verify: true\n    basic_auth:\n      username: prometheus\n      password: scrape-secret\n";
    let rules = std::fs::canonicalize("config/alerts").unwrap();
    let prometheus = Prometheus::start(
        &prometheus_bin,
        &[(agent.addr, "test-site")],
        scrape_through,
        &rules,
    )
    .await;
    prometheus.wait_until_scraping().await;
    let runs = prometheus.query("sum(casewatch_journey_runs_total)").await;
    assert_eq!(runs["status"], "success");
    shutdown.cancel();
    agent.wait().await;
    sim.stop().await;
}
