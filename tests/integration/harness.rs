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
use casewatch::outcome::PlannedRun;
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
        self.live_sessions()
            .await
            .iter()
            .filter_map(|s| s["age_real_seconds"].as_f64())
            .collect()
    }

    /// The ICS sessions the simulator holds live, as its control API
    /// describes them (ages, idle time).
    pub async fn live_sessions(&self) -> Vec<serde_json::Value> {
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
            .cloned()
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
    casewatch::runner::run_journey(&ctx, &journey, vars, &PlannedRun::now(7)).await
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

/// The machine's own scheduling, measured beside a test: a plain thread,
/// outside every async runtime, asks to wake every [`SchedulingProbe::EVERY`]
/// and notes how late it wakes. On a quiet machine it wakes within a
/// millisecond or so; on a loaded one, late by whatever the CPU hogs beside
/// it cost. A thread that wakes seldom is favoured by the scheduler, so
/// the probe also reads, from `/proc`, how long the thread that started it
/// (a current-thread test's runtime) sat ready to run with no CPU to run
/// on: a busy thread's share of a loaded machine, which the sleeper does
/// not feel. Each run of such waits is one hold-up. Tests that check the agent keeps time derive their allowance
/// from it, so that load on the machine moves the bound and a delay of the
/// agent's own making still fails: a journey held up by another journey
/// (a shared lock, a connection pool, a blocked runtime thread) is late by
/// a freeze's or a give-up's length while this thread, which waits on
/// nothing of the agent's, is not.
pub struct SchedulingProbe {
    started: std::time::Instant,
    stop: Arc<std::sync::atomic::AtomicBool>,
    late: Arc<std::sync::Mutex<Vec<Duration>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SchedulingProbe {
    pub const EVERY: Duration = Duration::from_millis(10);
    /// The share of a late wake that is the machine, not the probe's own
    /// clock: wakes later than this are kept.
    const KEEP_FROM: Duration = Duration::from_millis(2);

    pub fn start() -> SchedulingProbe {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let late = Arc::new(std::sync::Mutex::new(Vec::new()));
        // "PID/task/TID" of the calling thread.
        let watched = std::fs::read_link("/proc/thread-self")
            .ok()
            .map(|task| std::path::Path::new("/proc").join(task).join("schedstat"));
        let thread = {
            let (stop, late) = (stop.clone(), late.clone());
            std::thread::Builder::new()
                .name("sched-probe".into())
                .spawn(move || {
                    let mut queued = RunQueueWait::new(watched);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let asked = std::time::Instant::now() + Self::EVERY;
                        std::thread::sleep(Self::EVERY);
                        let woke = std::time::Instant::now().saturating_duration_since(asked);
                        let mut late = late.lock().unwrap();
                        if woke > Self::KEEP_FROM {
                            late.push(woke);
                        }
                        queued.note(&mut late, Self::KEEP_FROM);
                    }
                })
                .expect("the probe thread starts")
        };
        SchedulingProbe {
            started: std::time::Instant::now(),
            stop,
            late,
            thread: Some(thread),
        }
    }

    /// How late the probe woke at worst so far.
    pub fn worst(&self) -> Duration {
        self.late
            .lock()
            .unwrap()
            .iter()
            .copied()
            .max()
            .unwrap_or_default()
    }

    /// The lateness to allow a run that should start within `bound` of its
    /// slot: `bound`, plus twice the worst hold-up the machine imposed on a
    /// thread that waits on nothing (once for the hold-up itself, once for
    /// the backlog of work a held-up runtime then runs through).
    pub fn allow_late(&self, bound: Duration) -> Duration {
        bound + 2 * self.worst()
    }

    /// How many timetable slots of `interval` the machine's own hold-ups,
    /// since the probe started, could have cost a journey: each hold-up of
    /// at least a quarter interval may push a run (its start, or its end,
    /// under the same factor two as [`Self::allow_late`]) past that many
    /// slots; and never more than a quarter of the slots there were, so a
    /// journey held up for as long as something else took (a freeze, a
    /// give-up, a reload) still fails however loaded the machine is. On a
    /// quiet machine this is 0.
    pub fn allow_missed(&self, interval: Duration) -> u64 {
        let by_holdups: u64 = self
            .late
            .lock()
            .unwrap()
            .iter()
            .filter(|late| **late * 4 >= interval)
            .map(|late| (2 * *late).as_secs_f64() / interval.as_secs_f64())
            .map(|slots| slots.ceil() as u64)
            .sum();
        let slots = self.started.elapsed().as_secs_f64() / interval.as_secs_f64();
        by_holdups.min(slots as u64 / 4)
    }

    /// A line for a failure message: what the machine did meanwhile.
    pub fn describe(&self) -> String {
        let late = self.late.lock().unwrap();
        let over = |ms: u64| {
            late.iter()
                .filter(|l| **l >= Duration::from_millis(ms))
                .count()
        };
        format!(
            "the machine held up a plain thread or the test's runtime {} times by more than {:?} ({} by 50 ms, {} by 100 ms, {} by 250 ms), worst {:?}",
            late.len(),
            Self::KEEP_FROM,
            over(50),
            over(100),
            over(250),
            late.iter().copied().max().unwrap_or_default()
        )
    }
}

/// How long one thread has waited for a CPU while ready to run, from its
/// `schedstat` (CPU time, run-queue wait, timeslices; nanoseconds).
struct RunQueueWait {
    schedstat: Option<std::path::PathBuf>,
    last: Option<u64>,
    /// Where in the hold-ups the one going on is, so the next period's
    /// wait extends it (wake-ups noted meanwhile come after it).
    going_on: Option<usize>,
}

impl RunQueueWait {
    fn new(schedstat: Option<std::path::PathBuf>) -> RunQueueWait {
        RunQueueWait {
            schedstat,
            last: None,
            going_on: None,
        }
    }

    fn read(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.schedstat.as_ref()?).ok()?;
        text.split_whitespace().nth(1)?.parse().ok()
    }

    /// Adds the wait since the last call to `hold_ups`: a new hold-up, or
    /// the one still going on, when it is over `keep_from`.
    fn note(&mut self, hold_ups: &mut Vec<Duration>, keep_from: Duration) {
        let Some(now) = self.read() else {
            return;
        };
        let waited = Duration::from_nanos(now.saturating_sub(self.last.unwrap_or(now)));
        self.last = Some(now);
        if waited <= keep_from {
            self.going_on = None;
        } else if let Some(i) = self.going_on {
            hold_ups[i] += waited;
        } else {
            self.going_on = Some(hold_ups.len());
            hold_ups.push(waited);
        }
    }
}

impl Drop for SchedulingProbe {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The runs of `journey` that started within `allowed` of their slot, read
/// from the smallest `casewatch_schedule_lateness_seconds` bucket that
/// holds `allowed` (the buckets are what `/metrics` has), with that bucket's
/// bound, and the journey's run count.
pub fn runs_started_within(text: &str, journey: &str, allowed: Duration) -> (f64, f64, f64) {
    let count = metric(
        text,
        "casewatch_schedule_lateness_seconds_count",
        &[("journey", journey)],
    );
    let mut bounds: Vec<(f64, String)> = text
        .lines()
        .filter(|l| l.starts_with("casewatch_schedule_lateness_seconds_bucket{"))
        .filter(|l| l.contains(&format!("journey=\"{journey}\"")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, le.to_string()))
        })
        .collect();
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    bounds.dedup();
    let (bound, le) = bounds
        .into_iter()
        .find(|(b, _)| *b >= allowed.as_secs_f64())
        .unwrap_or((f64::INFINITY, "+Inf".to_string()));
    let within = metric(
        text,
        "casewatch_schedule_lateness_seconds_bucket",
        &[("journey", journey), ("le", le.as_str())],
    );
    (within, bound, count)
}

/// The lateness histogram of `journey` as `le=count` pairs, for messages.
pub fn lateness_buckets(text: &str, journey: &str) -> String {
    text.lines()
        .filter(|l| l.starts_with("casewatch_schedule_lateness_seconds_bucket{"))
        .filter(|l| l.contains(&format!("journey=\"{journey}\"")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let count = l.rsplit_once(' ')?.1;
            Some(format!("{le}={count}"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every file under `root` whose name ends in `.ext`, sorted.
pub fn files_under(root: &std::path::Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
