//! End to end with real central stores: three agents (three sites, each a
//! `casewatch run` process) push with remote_write to a real Prometheus
//! (`--web.enable-remote-write-receiver`) and a real VictoriaMetrics at once.
//! The shipped rules load in the central Prometheus and a multi-site alert
//! fires there; both stores are stopped for 2 minutes and started again; no
//! series then has a gap longer than the push interval, and every counter's
//! last stored value equals the agent's own `/metrics`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use casewatch::sim::SimProfile;
use serde_json::{json, Value};

use crate::harness::*;

pub(crate) const PUSH_INTERVAL_MS: i64 = 1_000;
const OUTAGE: Duration = Duration::from_secs(120);
const SITES: [&str; 3] = ["north-office", "south-office", "east-office"];

/// Labels without `job` and `instance`: a series as the agent names it.
type Series = BTreeMap<String, String>;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A child process killed when dropped.
pub(crate) struct Process(pub(crate) Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    /// A graceful stop (SIGTERM), as an operator stops a store for maintenance.
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..300 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("process {} did not stop within 30 s", self.0.id());
    }
}

/// A central store: how to start it on its data directory, and how to read
/// back what it holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Engine {
    Prometheus,
    Victoria,
}

impl Engine {
    /// Whether a stored value is the one pushed. Prometheus keeps float64
    /// exactly; VictoriaMetrics keeps values as decimals of 12 significant
    /// digits (its documented precision), so 132.48605594600005 comes back as
    /// 132.486055946.
    fn same_value(self, stored: f64, pushed: f64) -> bool {
        match self {
            Engine::Prometheus => stored == pushed,
            Engine::Victoria => (stored - pushed).abs() <= 1e-12 * stored.abs().max(pushed.abs()),
        }
    }
}

pub(crate) struct Store {
    pub(crate) engine: Engine,
    pub(crate) binary: PathBuf,
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
    pub(crate) process: Option<Process>,
    pub(crate) http: reqwest::Client,
}

impl Store {
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.url())
    }

    pub(crate) async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("store.log"))
            .unwrap();
        let mut command = Command::new(&self.binary);
        match self.engine {
            Engine::Prometheus => {
                let rules = std::fs::canonicalize("config/alerts").unwrap();
                let config = format!(
                    "global:\n  evaluation_interval: 1s\nrule_files:\n  - {}/*.yml\n",
                    rules.display()
                );
                let config_path = self.dir.join("prometheus.yml");
                std::fs::write(&config_path, config).unwrap();
                command
                    .arg(format!("--config.file={}", config_path.display()))
                    .arg(format!(
                        "--storage.tsdb.path={}",
                        self.dir.join("data").display()
                    ))
                    .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
                    .arg("--web.enable-remote-write-receiver");
            }
            Engine::Victoria => {
                command
                    .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
                    .arg(format!(
                        "-storageDataPath={}",
                        self.dir.join("data").display()
                    ))
                    .arg("-retentionPeriod=1d")
                    // Answer range queries up to the last push, not 30 s before.
                    .arg("-search.latencyOffset=1s");
            }
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the store starts");
        self.process = Some(Process(child));
        let ready = match self.engine {
            Engine::Prometheus => format!("{}/-/ready", self.url()),
            Engine::Victoria => format!("{}/health", self.url()),
        };
        let what = format!("{:?} to be ready", self.engine);
        wait_for(Duration::from_secs(60), &what, || async {
            let response = self.http.get(&ready).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
    }

    fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            process.stop();
        }
    }

    /// Every stored sample of every series the agents pushed (`job` is
    /// `casewatch`), keyed by the series' labels less `job` and `instance`.
    async fn samples(&self) -> HashMap<Series, Vec<(i64, f64)>> {
        let mut all: HashMap<Series, Vec<(i64, f64)>> = HashMap::new();
        let mut add = |metric: &serde_json::Map<String, Value>, ts: i64, value: f64| {
            let series: Series = metric
                .iter()
                .filter(|(k, _)| *k != "job" && *k != "instance")
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect();
            all.entry(series).or_default().push((ts, value));
        };
        match self.engine {
            Engine::Prometheus => {
                let answer: Value = self
                    .http
                    .get(format!("{}/api/v1/query", self.url()))
                    // Recording rules and ALERTS are the store's own series, not pushed ones.
                    .query(&[(
                        "query",
                        r#"{job="casewatch",__name__!~"ALERTS.*|.*:.*"}[1h]"#,
                    )])
                    .send()
                    .await
                    .expect("Prometheus answers")
                    .json()
                    .await
                    .expect("JSON");
                assert_eq!(answer["status"], "success", "{answer}");
                for result in answer["data"]["result"].as_array().unwrap() {
                    let metric = result["metric"].as_object().unwrap();
                    for pair in result["values"].as_array().unwrap() {
                        let ts = (pair[0].as_f64().unwrap() * 1000.0).round() as i64;
                        let value: f64 = pair[1].as_str().unwrap().parse().unwrap();
                        add(metric, ts, value);
                    }
                }
            }
            Engine::Victoria => {
                // Make what was just written searchable.
                let _ = self
                    .http
                    .get(format!("{}/internal/force_flush", self.url()))
                    .send()
                    .await;
                let text = self
                    .http
                    .get(format!("{}/api/v1/export", self.url()))
                    .query(&[
                        ("match[]", r#"{job="casewatch"}"#),
                        ("start", &((now_ms() / 1000) - 3600).to_string()),
                    ])
                    .send()
                    .await
                    .expect("VictoriaMetrics answers")
                    .text()
                    .await
                    .expect("export body");
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let row: Value = serde_json::from_str(line).expect("export line is JSON");
                    let metric = row["metric"].as_object().unwrap();
                    let values = row["values"].as_array().unwrap();
                    let timestamps = row["timestamps"].as_array().unwrap();
                    for (v, t) in values.iter().zip(timestamps) {
                        let value = v
                            .as_f64()
                            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                            .unwrap();
                        add(metric, t.as_i64().unwrap(), value);
                    }
                }
            }
        }
        for samples in all.values_mut() {
            samples.sort_by_key(|s| s.0);
            samples.dedup_by_key(|s| s.0);
        }
        all
    }

    async fn alert_firing(&self, name: &str) -> bool {
        let Ok(response) = self
            .http
            .get(format!("{}/api/v1/alerts", self.url()))
            .send()
            .await
        else {
            return false;
        };
        let alerts: Value = response.json().await.unwrap_or_default();
        alerts["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
    }

    async fn rule_groups(&self) -> Vec<String> {
        let rules: Value = self
            .http
            .get(format!("{}/api/v1/rules", self.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        rules["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The agent's config: one anonymous journey and one kept session against
/// the simulator, pushing to both stores every second. `quiet` stops all
/// probing (no kept session, a journey outside its active hours), so the
/// counters stop moving.
pub(crate) fn agent_yaml(
    site: &str,
    sim: &TestSim,
    dir: &Path,
    stores: &[(Engine, String)],
    quiet: bool,
) -> String {
    let kept = "keep_sessions:
      count: 1
      every: 1s
      max_age: 1h
      keepalive:
        name: keepalive_home
        path: /home
        assert:
          status: [200]
          body_contains: [\"Signed in as\"]";
    let target = target("ics", "ICSSESSION", if quiet { "" } else { kept })
        .replace("http://127.0.0.1:1/", &format!("http://{}/", sim.ics));
    let active = if quiet {
        let from = chrono::Local::now() + chrono::Duration::hours(2);
        let to = from + chrono::Duration::hours(1);
        format!(
            ", active_hours: \"{}-{}\"",
            from.format("%H:%M"),
            to.format("%H:%M")
        )
    } else {
        String::new()
    };
    let mut yaml = format!(
        "site: {site}
targets:{target}
journeys:
  - name: lookup
    target: ics
    login: false
    schedule: {{ interval: 2s{active} }}
    steps:
      - name: login_page
        path: /login
remote_write:
"
    );
    for (engine, url) in stores {
        let name = match engine {
            Engine::Prometheus => "prometheus",
            Engine::Victoria => "victoria",
        };
        yaml.push_str(&format!(
            "  - name: {name}
    url: {}
    push_interval: {PUSH_INTERVAL_MS}ms
    timeout: 5s
    queue:
      path: {}
",
            url,
            dir.join(format!("{site}-{name}.db")).display()
        ));
    }
    yaml
}

pub(crate) struct RunningAgent {
    pub(crate) site: &'static str,
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) config: PathBuf,
    pub(crate) process: Process,
}

pub(crate) fn start_agent_process(site: &'static str, yaml: &str, dir: &Path) -> RunningAgent {
    let config = dir.join(format!("{site}.yaml"));
    std::fs::write(&config, yaml).unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = std::fs::File::create(dir.join(format!("{site}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args(["run", "--config"])
        .arg(&config)
        .args(["--listen", &addr.to_string()])
        .env("CASEWATCH_PASSWORD", PASSWORD)
        .env("CASEWATCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the agent starts");
    RunningAgent {
        site,
        addr,
        config,
        process: Process(child),
    }
}

/// Parses one exposition line's labels into a map (with `__name__`).
fn exposition(text: &str) -> HashMap<Series, f64> {
    let label = regex::Regex::new(r#"(\w+)="((?:[^"\\]|\\.)*)""#).unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let mut map: Series = label
                .captures_iter(labels)
                .map(|c| (c[1].to_string(), c[2].to_string()))
                .collect();
            map.insert("__name__".to_string(), name.to_string());
            Some((map, value.parse().ok()?))
        })
        .collect()
}

/// The counters the agent's probing moves: its own remote_write counters move
/// with every push, process counters with the clock, and its stall counters
/// whenever the host holds it up (at any moment on a loaded machine).
fn probing_counters(text: &str) -> HashMap<Series, f64> {
    exposition(text)
        .into_iter()
        .filter(|(series, _)| {
            let name = &series["__name__"];
            name.starts_with("casewatch_")
                && !name.starts_with("casewatch_remote_write_")
                && !name.starts_with("casewatch_agent_stall_")
                && (name.ends_with("_total") || name.ends_with("_count"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sites_push_to_prometheus_and_victoriametrics_through_a_two_minute_outage() {
    let (Some(prometheus), Some(victoria)) =
        (require_tool("prometheus"), require_tool("victoria-metrics"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(SimProfile::quiet()).await;
    let mut stores = Vec::new();
    for (engine, binary) in [
        (Engine::Prometheus, prometheus),
        (Engine::Victoria, victoria),
    ] {
        let store_dir = dir.path().join(format!("{engine:?}"));
        std::fs::create_dir_all(&store_dir).unwrap();
        let mut store = Store {
            engine,
            binary,
            port: free_port(),
            dir: store_dir,
            process: None,
            http: reqwest::Client::new(),
        };
        store.start().await;
        stores.push(store);
    }
    // The shipped rule files load in the central Prometheus.
    let groups = stores[0].rule_groups().await;
    for group in [
        "casewatch_sessions",
        "casewatch_freezes",
        "casewatch_remote_write",
    ] {
        assert!(
            groups.iter().any(|g| g == group),
            "{group} not loaded: {groups:?}"
        );
    }

    let store_refs: Vec<(Engine, String)> =
        stores.iter().map(|s| (s.engine, s.write_url())).collect();
    let agents: Vec<RunningAgent> = SITES
        .iter()
        .map(|site| {
            let yaml = agent_yaml(site, &sim, dir.path(), &store_refs, false);
            start_agent_process(site, &yaml, dir.path())
        })
        .collect();
    for agent in &agents {
        let log = dir.path().join(format!("{}.log", agent.site));
        wait_for(Duration::from_secs(30), "the agent to serve", || async {
            let url = format!("http://{}/-/healthy", agent.addr);
            match reqwest::get(&url).await {
                Ok(r) if r.status().is_success() => Some(()),
                _ => {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    assert!(!text.contains("Error:"), "{} failed: {text}", agent.site);
                    None
                }
            }
        })
        .await;
    }
    let started_ms = now_ms();

    // Every site's kept session is up and pushed to both stores.
    for agent in &agents {
        wait_for(Duration::from_secs(30), "a kept session", || async {
            let text = scrape(agent.addr).await;
            (metric(&text, "casewatch_sessions_active", &[]) >= 1.0).then_some(())
        })
        .await;
    }

    // The simulator drops every session: all three sites see a forced logout,
    // and the multi-site alert fires in the central Prometheus on pushed data.
    sim.control("logout", json!({"which": "all"})).await;
    wait_for(
        Duration::from_secs(60),
        "CasewatchForcedLogoutsMultipleSites to fire centrally",
        || async {
            stores[0]
                .alert_firing("CasewatchForcedLogoutsMultipleSites")
                .await
                .then_some(())
        },
    )
    .await;

    // Both stores stop for two minutes; the agents queue on disk meanwhile.
    for store in &mut stores {
        store.stop();
    }
    tokio::time::sleep(OUTAGE / 2).await;
    for agent in &agents {
        let text = scrape(agent.addr).await;
        for remote in ["prometheus", "victoria"] {
            let age = metric(
                &text,
                "casewatch_remote_write_oldest_pending_age_seconds",
                &[("remote", remote)],
            );
            assert!(
                age >= 30.0,
                "{}: {remote} backlog only {age} s old",
                agent.site
            );
        }
    }
    tokio::time::sleep(OUTAGE / 2).await;
    for store in &mut stores {
        store.start().await;
    }
    for agent in &agents {
        wait_for(Duration::from_secs(120), "the backlog to drain", || async {
            let text = scrape(agent.addr).await;
            let pending = metric(&text, "casewatch_remote_write_samples_pending", &[]);
            let sent = metric(&text, "casewatch_remote_write_samples_sent_total", &[]);
            (pending == 0.0 && sent > 0.0).then_some(())
        })
        .await;
        let text = scrape(agent.addr).await;
        assert_eq!(
            metric(&text, "casewatch_remote_write_samples_dropped_total", &[]),
            0.0
        );
        assert_eq!(
            metric(&text, "casewatch_remote_write_samples_failed_total", &[]),
            0.0,
            "a store refused pushes: see {}/{}.log",
            dir.path().display(),
            agent.site
        );
    }

    // Stop the probing, so counters hold still, and read them from each agent.
    for agent in &agents {
        let yaml = agent_yaml(agent.site, &sim, dir.path(), &store_refs, true);
        std::fs::write(&agent.config, yaml).unwrap();
        let response = reqwest::Client::new()
            .post(format!("http://{}/-/reload", agent.addr))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "reload: {}",
            response.text().await.unwrap()
        );
    }
    let mut expected: HashMap<Series, f64> = HashMap::new();
    for agent in &agents {
        let counters = wait_for(
            Duration::from_secs(30),
            "counters to hold still",
            || async {
                let before = probing_counters(&scrape(agent.addr).await);
                tokio::time::sleep(Duration::from_secs(3)).await;
                let after = probing_counters(&scrape(agent.addr).await);
                (before == after).then_some(after)
            },
        )
        .await;
        assert!(
            counters
                .keys()
                .any(|s| s["__name__"] == "casewatch_forced_logouts_total"),
            "{}: no forced logout counters",
            agent.site
        );
        expected.extend(counters);
    }
    let read_ms = now_ms();
    // Two more pushes after the read reach both stores.
    tokio::time::sleep(Duration::from_millis(3 * PUSH_INTERVAL_MS as u64)).await;

    for store in &stores {
        let stored = store.samples().await;
        for site in SITES {
            assert!(
                stored
                    .keys()
                    .any(|s| s.get("site").map(String::as_str) == Some(site)),
                "{:?} has nothing from {site}",
                store.engine
            );
        }
        // No gap longer than the push interval in any series, across the
        // outage and both restarts.
        let mut gaps = Vec::new();
        let mut checked = 0;
        for (series, samples) in &stored {
            checked += 1;
            let span = samples.last().unwrap().0 - samples.first().unwrap().0;
            for pair in samples.windows(2) {
                if pair[1].0 - pair[0].0 > PUSH_INTERVAL_MS {
                    gaps.push(format!(
                        "{series:?}: {} ms at {}",
                        pair[1].0 - pair[0].0,
                        pair[0].0
                    ));
                }
            }
            // Series that existed from the start were pushed through the outage.
            if series.get("__name__").map(String::as_str) == Some("casewatch_build_info") {
                assert!(
                    samples.first().unwrap().0 <= started_ms + 5_000,
                    "{series:?} starts late"
                );
                assert!(
                    span as u128 > OUTAGE.as_millis(),
                    "{series:?} spans only {span} ms"
                );
            }
        }
        assert!(checked > 100, "{:?}: only {checked} series", store.engine);
        assert!(
            gaps.is_empty(),
            "{:?}: {} gaps, e.g. {:?}",
            store.engine,
            gaps.len(),
            &gaps[..gaps.len().min(5)]
        );
        // Every counter's last stored value is the agent's own.
        let mut wrong = Vec::new();
        for (series, value) in &expected {
            match stored.get(series) {
                Some(samples) if samples.last().unwrap().0 > read_ms => {
                    let last = samples.last().unwrap().1;
                    if !store.engine.same_value(last, *value) {
                        wrong.push(format!("{series:?}: stored {last}, agent {value}"));
                    }
                }
                Some(_) => wrong.push(format!("{series:?}: no sample after the read")),
                None => wrong.push(format!("{series:?}: not stored")),
            }
        }
        assert!(
            wrong.is_empty(),
            "{:?}: {} of {} counters differ, e.g. {:?}",
            store.engine,
            wrong.len(),
            expected.len(),
            &wrong[..wrong.len().min(5)]
        );
    }
    sim.stop().await;
}
