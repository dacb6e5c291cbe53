//! Test helpers: start the simulator and the agent on port 0, drive the
//! simulator's control API, scrape and read `/metrics`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use casewatch::agent::{Agent, AgentOptions};
use casewatch::config::secret::EnvLookup;
use casewatch::config::{self, Config};
use casewatch::sim::{self, SimHandle, SimOptions, SimProfile};
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "correct-horse-battery";

pub struct TestSim {
    pub ics: SocketAddr,
    pub css: SocketAddr,
    shutdown: CancellationToken,
    handle: Option<SimHandle>,
    http: reqwest::Client,
}

pub async fn start_sim(profile: SimProfile) -> TestSim {
    let shutdown = CancellationToken::new();
    let handle = sim::start(
        SimOptions {
            ics_listen: "127.0.0.1:0".parse().unwrap(),
            css_listen: "127.0.0.1:0".parse().unwrap(),
            control: true,
            password: PASSWORD.to_string(),
            profile,
        },
        shutdown.clone(),
    )
    .await
    .expect("simulator starts");
    TestSim {
        ics: handle.ics_addr,
        css: handle.css_addr,
        shutdown,
        handle: Some(handle),
        http: reqwest::Client::new(),
    }
}

impl TestSim {
    /// POSTs to the control API and returns its JSON answer.
    pub async fn control(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let response = self
            .http
            .post(format!("http://{}/_control/{path}", self.ics))
            .json(&body)
            .send()
            .await
            .expect("control API answers");
        assert!(
            response.status().is_success(),
            "control {path} failed: {}",
            response.status()
        );
        response.json().await.expect("control API returns JSON")
    }

    pub async fn truth(&self) -> serde_json::Value {
        self.http
            .get(format!("http://{}/_control/truth", self.ics))
            .send()
            .await
            .expect("truth log answers")
            .json()
            .await
            .expect("truth log is JSON")
    }

    /// The real-time ages of the ICS sessions the simulator holds live.
    pub async fn live_session_ages(&self) -> Vec<f64> {
        let sessions: serde_json::Value = self
            .http
            .get(format!("http://{}/_control/sessions", self.ics))
            .send()
            .await
            .expect("sessions answer")
            .json()
            .await
            .expect("sessions are JSON");
        sessions["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["ended"] != serde_json::json!(true))
            .filter_map(|s| s["age_real_seconds"].as_f64())
            .collect()
    }

    pub fn base_urls(&self) -> HashMap<String, String> {
        HashMap::from([
            ("ics".to_string(), format!("http://{}/", self.ics)),
            ("css".to_string(), format!("http://{}/", self.css)),
        ])
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            handle.wait().await;
        }
    }
}

/// The ICS target as the demo defines it, with short timings for tests.
/// `{extra}` lands inside the target (e.g. `max_body: 100`).
pub fn ics_target(extra: &str) -> String {
    target("ics", "ICSSESSION", extra)
}

/// A simulator target named `name` (`ics` or `css`, whose base URLs `load`
/// fills in) with session cookie `cookie`.
pub fn target(name: &str, cookie: &str, extra: &str) -> String {
    format!(
        r#"
  - name: {name}
    base_url: http://127.0.0.1:1/
    connect_timeout: 1s
    {extra}
    credentials:
      username: {{ value: sw.demo }}
      password: {{ env: CASEWATCH_PASSWORD }}
    defaults:
      slow_after: 400ms
      freeze_after: 800ms
      give_up_after: 10s
    login:
      - name: login_page
        path: /login
        extract:
          - var: csrf_token
            css: 'input[name="csrf_token"]'
            attr: value
      - name: login_submit
        method: POST
        path: /login
        form:
          username: ${{username}}
          password: ${{password}}
          csrf_token: ${{csrf_token}}
        assert:
          status: [200]
          body_contains: ["Signed in as"]
    logout:
      name: logout
      path: /logout
    session_rules:
      redirect_to: '/login\?expired=1'
      statuses: [401, 440]
      body_matches: 'Your session has expired'
      cookie: {cookie}
"#
    )
}

/// A full config: site `test-site`, the ICS target, and the given journeys.
pub fn config_yaml(target_extra: &str, journeys: &str) -> String {
    format!(
        "site: test-site\ntargets:{}\njourneys:\n{journeys}",
        ics_target(target_extra)
    )
}

pub fn load(yaml: &str, sim: &TestSim) -> Config {
    config::from_yaml_str_with_base_urls(yaml, "test.yaml", &sim.base_urls())
        .unwrap_or_else(|e| panic!("test config is valid: {e}"))
        .config
}

pub fn test_env(password: &'static str) -> EnvLookup {
    Arc::new(move |name| (name == "CASEWATCH_PASSWORD").then(|| password.to_string()))
}

pub struct TestAgent {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    agent: Option<Agent>,
}

pub async fn start_agent(config: Config) -> TestAgent {
    start_agent_with(config, test_env(PASSWORD)).await
}

pub async fn start_agent_with(config: Config, env: EnvLookup) -> TestAgent {
    let shutdown = CancellationToken::new();
    let agent = Agent::start(
        Arc::new(config),
        AgentOptions::new("127.0.0.1:0".parse().unwrap(), env),
        shutdown.clone(),
    )
    .await
    .expect("agent starts");
    TestAgent {
        addr: agent.addr,
        shutdown,
        agent: Some(agent),
    }
}

impl TestAgent {
    pub async fn metrics(&self) -> String {
        scrape(self.addr).await
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(agent) = self.agent.take() {
            agent.wait().await;
        }
    }
}

pub async fn scrape(addr: SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics endpoint answers")
        .text()
        .await
        .expect("metrics body")
}

/// The value of the samples `name` whose labels include all of `labels`,
/// summed over every such series.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    series(text, name, labels).iter().sum()
}

/// The values of every sample `name` whose labels include all of `labels`.
pub fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric_name, label_text) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric_name != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .collect()
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `limit`
/// with `what`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The path of a real component the tests need, found on PATH. Missing, it
/// fails the test under CI (CI=true) and prints a loud SKIP line locally, so
/// a missing install step can never pass unnoticed.
pub fn require_tool(name: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "{name} is required in CI but was not found on PATH (scripts/test.sh installs it)"
            );
        }
        eprintln!("\n*** SKIP: {name} not found on PATH; run scripts/test.sh to install it ***\n");
    }
    found
}

/// A free loopback port for a child process that cannot take port 0.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A plain GET from a synchronous test, on a throwaway runtime.
pub fn blocking_get(url: &str) -> Result<String, reqwest::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { reqwest::get(url).await?.text().await })
}

/// Runs the first journey of `yaml` once, directly (no agent), logging in as
/// `sw.demo` with `password`.
pub async fn run_first_journey(
    yaml: &str,
    sim: &TestSim,
    password: &str,
) -> casewatch::outcome::RunRecord {
    let config = load(yaml, sim);
    let journey = config.journeys[0].clone();
    let client = casewatch::runner::client_for(&journey.target).unwrap();
    let vars = HashMap::from([
        ("username".to_string(), "sw.demo".to_string()),
        ("password".to_string(), password.to_string()),
    ]);
    let ctx = casewatch::runner::RunContext {
        client: &client,
        probes: None,
    };
    casewatch::runner::run_journey(
        &ctx,
        &journey,
        vars,
        std::time::SystemTime::now(),
        tokio::time::Instant::now(),
        7,
    )
    .await
}

/// Each step's name and outcome, in order.
pub fn step_outcomes(
    run: &casewatch::outcome::RunRecord,
) -> Vec<(&str, casewatch::outcome::Outcome)> {
    run.steps
        .iter()
        .map(|s| (s.step.as_str(), s.outcome))
        .collect()
}
