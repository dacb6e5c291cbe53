//! Browser journeys in real headless Chromium (Debian's `chromium`) against
//! the simulator: a whole journey, a server freeze and a client-side freeze
//! told apart and measured against the truth log, a forced logout seen in
//! the browser, and the evidence of a failed step with no password in it.
//!
//! The tests that run journeys directly share one browser: a pool on its own
//! runtime, started by the first test that needs it and stopped (the
//! process killed) when the last test using it at the time lets go. Each run
//! still gets a fresh browser context, as in the agent. Two tests run
//! through the whole agent (metrics, journal, report, status page), which
//! starts a browser of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime};

use casewatch::browser::{BrowserMetrics, BrowserPool, Browsing, EvidenceStore};
use casewatch::config::browser::BrowserSettings;
use casewatch::outcome::{FreezeSide, LogoutCause, Outcome, PlannedRun, RunRecord, SessionEnd};
use casewatch::sim::SimProfile;
use serde_json::json;

use crate::harness::*;

/// The runtime the shared browser's connection and process live on.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the shared browser")
    })
}

/// One browser for the tests running at the same time.
struct SharedBrowser {
    pool: Arc<BrowserPool>,
}

impl Drop for SharedBrowser {
    fn drop(&mut self) {
        // The last user stops the process; a later test starts another.
        let pool = self.pool.clone();
        let _ = std::thread::spawn(move || runtime().block_on(pool.close())).join();
    }
}

/// The shared browser, or `None` (with a loud SKIP, or a failure under CI)
/// when Chromium is not installed.
fn shared_browser() -> Option<Arc<SharedBrowser>> {
    let executable = require_tool("chromium")?;
    static SHARED: Mutex<Weak<SharedBrowser>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(browser) = shared.upgrade() {
        return Some(browser);
    }
    let settings = BrowserSettings {
        executable: Some(executable),
        max_contexts: 4,
        ..BrowserSettings::default()
    };
    let pool = BrowserPool::new(
        settings,
        BrowserMetrics::new().unwrap(),
        runtime().handle().clone(),
    );
    let browser = Arc::new(SharedBrowser { pool });
    *shared = Arc::downgrade(&browser);
    Some(browser)
}

/// The ICS target with a browser login and logout. Timings are generous:
/// the host is shared, and only the injected faults should make steps
/// freeze.
fn browser_target(login_extra: &str) -> String {
    format!(
        r#"
  - name: ics
    base_url: http://127.0.0.1:1/
    connect_timeout: 1s
    credentials:
      username: {{ value: sw.demo }}
      password: {{ env: CASEWATCH_PASSWORD }}
    defaults:
      slow_after: 3s
      freeze_after: 5s
      give_up_after: 15s
    session_rules:
      redirect_to: '/login\?expired=1'
      statuses: [401, 440]
      body_matches: 'Your session has expired'
      cookie: ICSSESSION
    browser:
      login:
        - name: sign_in_page
          goto: /login
          assert: {{ selector: ['form#login'] }}
        - name: user_name
          fill: {{ selector: 'input[name="username"]', value: '${{username}}' }}
        - name: password
          fill: {{ selector: 'input[name="password"]', value: '${{password}}' }}
{login_extra}        - name: sign_in
          click: '#login button[type="submit"]'
          assert: {{ text: ['Signed in as'] }}
      logout:
        - name: sign_out
          click: 'a[href="/logout"]'
          assert: {{ text: ['signed out'] }}
"#
    )
}

/// A social worker's whole task, as the demo's browser journey does it.
const CASE_NOTE: &str = r#"
  - name: case_note_browser
    target: ics
    schedule: { interval: 10m }
    browser:
      steps:
        - name: search
          fill: { selector: '#search input[name="q"]', value: 'a' }
        - name: search_submit
          click: '#search button[type="submit"]'
          assert: { selector: ['#results a.case-link'] }
          extract:
            - { var: case_id, selector: 'a.case-link', attr: data-case-id }
        - name: open_case
          click: 'a.case-link'
          assert: { url: '/cases/', selector: ['#note-form'] }
        - name: write_note
          fill: { selector: '#note-form textarea', value: 'Home visit, run ${run_id}' }
        - name: save_note
          click: '#note-form button[type="submit"]'
          assert: { selector: ['p.saved'] }
          extract:
            - { var: note, selector: 'p.saved' }
"#;

fn config(login_extra: &str, journeys: &str) -> String {
    format!(
        "site: test-site\ntargets:{}journeys:\n{journeys}",
        browser_target(login_extra)
    )
}

/// Runs the first journey of `yaml` once in the shared browser.
async fn run_once(
    browser: &SharedBrowser,
    sim: &TestSim,
    yaml: &str,
    evidence: Option<Arc<EvidenceStore>>,
) -> RunRecord {
    let config = load(yaml, sim);
    let journey = config.journeys[0].clone();
    let browsing = Browsing {
        pool: browser.pool.clone(),
        evidence,
    };
    let vars = HashMap::from([
        ("username".to_string(), "sw.demo".to_string()),
        ("password".to_string(), PASSWORD.to_string()),
    ]);
    casewatch::browser::run_journey(&browsing, None, &journey, vars, &PlannedRun::now(1)).await
}

/// The one truth-log event of `kind`.
async fn truth_event(sim: &TestSim, kind: &str) -> serde_json::Value {
    let truth = sim.truth().await;
    let events: Vec<&serde_json::Value> = truth["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect();
    assert_eq!(events.len(), 1, "one {kind} in the truth log: {truth}");
    events[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_journey_signs_in_searches_opens_a_case_and_saves_a_note() {
    let Some(executable) = require_tool("chromium") else {
        return;
    };
    let sim = start_sim(SimProfile::quiet()).await;
    let journal_dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "{}browser:\n  executable: {}\njournal:\n  path: {}\n",
        config("", CASE_NOTE),
        executable.display(),
        journal_dir.path().join("cw.db").display()
    );
    let agent = start_agent(load(&yaml, &sim)).await;
    let journey = [("journey", "case_note_browser")];
    let text = wait_for(Duration::from_secs(60), "the browser run", || async {
        let text = agent.metrics().await;
        (metric(&text, "casewatch_journey_runs_total", &journey) >= 1.0).then_some(text)
    })
    .await;
    let outcome = |o: &str| {
        metric(
            &text,
            "casewatch_journey_runs_total",
            &[("journey", "case_note_browser"), ("outcome", o)],
        )
    };
    assert_eq!(outcome("ok") + outcome("slow"), 1.0, "{text}");
    // Every step, the browser login and logout included, counted once as a
    // success in the same family as HTTP steps.
    for step in [
        "sign_in_page",
        "user_name",
        "password",
        "sign_in",
        "search",
        "search_submit",
        "open_case",
        "write_note",
        "save_note",
        "sign_out",
    ] {
        let ok = ["ok", "slow"]
            .iter()
            .map(|o| {
                metric(
                    &text,
                    "casewatch_step_outcomes_total",
                    &[
                        ("journey", "case_note_browser"),
                        ("step", step),
                        ("outcome", o),
                    ],
                )
            })
            .sum::<f64>();
        assert_eq!(ok, 1.0, "step {step}: {text}");
    }
    assert_eq!(metric(&text, "casewatch_browser_up", &[]), 1.0);
    assert_eq!(
        metric(&text, "casewatch_browser_starts_total", &[("result", "ok")]),
        1.0
    );
    // The page's timings were measured for the steps that loaded a page.
    assert!(
        metric(
            &text,
            "casewatch_browser_page_seconds_count",
            &[("timing", "load")]
        ) >= 4.0,
        "{text}"
    );
    // The session was the simulator's: signed in, then signed out.
    let sessions = sim.live_session_ages().await;
    assert!(sessions.is_empty(), "the run signed out: {sessions:?}");
    let run_ok = metric(
        &text,
        "casewatch_journey_last_success",
        &[("journey", "case_note_browser")],
    );
    assert_eq!(run_ok, 1.0);
    agent.stop().await;
    // The note is on the case: read back over plain HTTP.
    let read_back = read_case_notes(&sim, "Home visit, run").await;
    assert!(
        read_back.outcome.is_success(),
        "the saved note is on a case record: {:#?}",
        read_back.steps
    );
    sim.stop().await;
}

/// Reads the first case record as a person would after signing in over
/// HTTP; the run succeeds when it shows a note containing `text`.
async fn read_case_notes(sim: &TestSim, text: &str) -> RunRecord {
    let yaml = casewatch_http_journey();
    run_first_journey(&yaml.replace("${text}", text), sim, PASSWORD).await
}

/// An HTTP journey that finds the first search result's case and checks
/// its notes contain `${text}`.
fn casewatch_http_journey() -> String {
    config_yaml(
        "",
        r#"
  - name: read_back
    target: ics
    schedule: { interval: 10m }
    steps:
      - name: find
        path: /cases/search?q=a
        extract:
          - { var: case_path, css: 'a.case-link', attr: href }
      - name: record
        path: ${case_path}
        assert:
          body_contains: ["${text}"]
"#,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_freeze_and_a_client_freeze_are_told_apart_and_measured() {
    let Some(browser) = shared_browser() else {
        return;
    };
    let sim = start_sim(SimProfile::quiet()).await;
    let yaml = config(
        "",
        r#"
  - name: open_sign_in
    target: ics
    login: false
    schedule: { interval: 10m }
    browser:
      steps:
        - name: sign_in_page
          goto: /login
          assert: { selector: ['form#login'] }
          slow_after: 500ms
          freeze_after: 1s
          give_up_after: 15s
"#,
    );

    // A healthy run first, so the browser is up before any fault.
    let run = run_once(&browser, &sim, &yaml, None).await;
    assert!(run.outcome.is_success(), "{:?}", run.steps);
    assert_eq!(run.steps[0].freeze_side(), None);

    // The server stops answering: the page waits on the network.
    sim.control("freeze", json!({"seconds": 3.0, "system": "ics"}))
        .await;
    let run = run_once(&browser, &sim, &yaml, None).await;
    let step = &run.steps[0];
    assert_eq!(step.outcome, Outcome::Frozen, "{}", step.detail);
    assert!(!step.censored);
    assert_eq!(
        step.freeze_side(),
        Some(FreezeSide::Server),
        "{}",
        step.detail
    );
    assert!(
        step.detail.contains("server-side freeze"),
        "{}",
        step.detail
    );
    let page = step.browser.as_ref().unwrap();
    let freeze = truth_event(&sim, "freeze").await;
    let truth_end = freeze["ended_at"].as_f64().unwrap();
    // The wait began when the page asked (just after the freeze began) and
    // ended when the server answered again, at the truth log's end.
    let asked = casewatch::outcome::unix_secs(step.sent_at);
    let true_wait = truth_end - asked;
    let measured = page.server_wait.as_secs_f64();
    assert!(
        (measured - true_wait).abs() <= 0.5,
        "server wait {measured:.2}s, truth {true_wait:.2}s ({freeze})"
    );
    // The page asked while the freeze was on: the truth's stretch is the
    // one measured, from the page's request to the freeze's end.
    let truth_start = freeze["started_at"].as_f64().unwrap();
    assert!(
        truth_start <= asked && asked < truth_end,
        "asked at {asked}, freeze {freeze}"
    );
    assert!(
        page.main_thread_blocked < Duration::from_secs(1),
        "the page itself was not blocked: {page:?}"
    );

    // The page's own script holds its main thread; the server answers at once.
    sim.control("page_hang", json!({"seconds": 3.0, "count": 1}))
        .await;
    let run = run_once(&browser, &sim, &yaml, None).await;
    let step = &run.steps[0];
    assert_eq!(step.outcome, Outcome::Frozen, "{}", step.detail);
    assert_eq!(
        step.freeze_side(),
        Some(FreezeSide::Client),
        "{}",
        step.detail
    );
    assert!(
        step.detail.contains("client-side freeze"),
        "{}",
        step.detail
    );
    let page = step.browser.as_ref().unwrap();
    let hang = truth_event(&sim, "page_hang").await;
    let true_length = hang["duration_seconds"].as_f64().unwrap();
    let blocked = page.main_thread_blocked.as_secs_f64();
    assert!(
        (blocked - true_length).abs() <= 0.5,
        "main thread blocked {blocked:.2}s, truth {true_length:.2}s ({hang})"
    );
    assert!(
        page.server_wait < Duration::from_secs(1),
        "the server kept answering: {page:?}"
    );
    assert!(
        page.long_tasks >= 1,
        "the page reported its long task: {page:?}"
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_logout_is_seen_in_the_browser() {
    let Some(browser) = shared_browser() else {
        return;
    };
    let sim = start_sim(SimProfile::quiet()).await;
    let yaml = config(
        "",
        r#"
  - name: browse_cases
    target: ics
    schedule: { interval: 10m }
    browser:
      steps:
        - name: caseload
          goto: /home
          assert: { text: ['Caseload'] }
          think_time: 3s
        - name: search
          goto: /cases/search?q=a
          assert: { selector: ['#results'] }
"#,
    );
    let sim = Arc::new(sim);
    let run = {
        let (browser, sim, yaml) = (browser.clone(), sim.clone(), yaml.clone());
        tokio::spawn(async move { run_once(&browser, &sim, &yaml, None).await })
    };
    // Once the browser has signed in, the server ends the session.
    wait_for(Duration::from_secs(30), "the browser's session", || async {
        (!sim.live_session_ages().await.is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sim.control("logout", json!({"which": "all"})).await;
    let run = run.await.unwrap();
    let outcomes = step_outcomes(&run);
    let failed = run.failed_step.as_deref().expect("the run failed");
    let step = run.steps.iter().find(|s| s.step == failed).unwrap();
    assert_eq!(
        step.outcome,
        Outcome::LoggedOut,
        "{outcomes:?}: {}",
        step.detail
    );
    assert_eq!(
        step.logout_cause,
        Some(LogoutCause::Redirect),
        "{}",
        step.detail
    );
    assert_eq!(run.outcome, Outcome::LoggedOut);
    // Every step before it went well, the sign-in included.
    let before: Vec<_> = outcomes
        .iter()
        .take_while(|(name, _)| *name != failed)
        .collect();
    assert!(before.len() >= 4, "{outcomes:?}");
    assert!(before.iter().all(|(_, o)| o.is_success()), "{outcomes:?}");
    // The session counts as ended by the server, and the agent did not try
    // to sign out of a session that no longer exists.
    assert_eq!(run.sessions.len(), 1);
    assert!(
        matches!(
            run.sessions[0].end,
            Some(SessionEnd::Forced(LogoutCause::Redirect))
        ),
        "{:?}",
        run.sessions[0]
    );
    assert!(!outcomes.iter().any(|(name, _)| *name == "sign_out"));
    let sim = Arc::into_inner(sim).expect("the run let go of the simulator");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_leaves_a_screenshot_with_the_password_cleared() {
    let Some(browser) = shared_browser() else {
        return;
    };
    let sim = start_sim(SimProfile::quiet()).await;
    // The sign-in form is filled in, password and all, and then the step
    // looks for a button the page does not have.
    let missing_button = r#"        - name: remember_me
          click: '#remember-me'
          slow_after: 500ms
          freeze_after: 1s
"#;
    let yaml = config(missing_button, CASE_NOTE);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EvidenceStore::new(
        dir.path().to_path_buf(),
        &BrowserSettings::default(),
    ));
    let run = run_once(&browser, &sim, &yaml, Some(store)).await;
    let step = run.steps.iter().find(|s| s.step == "remember_me").unwrap();
    assert_eq!(step.outcome, Outcome::AssertionFailed, "{}", step.detail);
    let name = step
        .browser
        .as_ref()
        .and_then(|b| b.evidence.clone())
        .expect("the failed step names its evidence");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(format!("{name}.json"))).unwrap())
            .unwrap();
    assert_eq!(record["step"], "remember_me");
    assert_eq!(record["outcome"], "assertion_failed");
    // Just before the screenshot, the filled password field was emptied,
    // and the page was asked again: no password field held a value.
    assert!(record["fields_cleared"].as_u64().unwrap() >= 1, "{record}");
    assert_eq!(record["password_fields_left"], 0, "{record}");
    assert_eq!(record["screenshot"], format!("{name}.png"));
    let png = std::fs::read(dir.path().join(format!("{name}.png"))).expect("the PNG exists");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    // IHDR: the width and height of the browser's window.
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), casewatch::browser::pool::VIEWPORT);
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        let needle = PASSWORD.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the password is in the evidence"
        );
    }
    assert!(!step.detail.contains(PASSWORD));
    sim.stop().await;
}

/// A client-side freeze through the whole agent: its own metric by side,
/// no server freeze episode, the journal and report counting it apart, and
/// its evidence linked from the status page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_freeze_is_counted_apart_and_its_evidence_is_linked() {
    let Some(executable) = require_tool("chromium") else {
        return;
    };
    let sim = start_sim(SimProfile::quiet()).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("cw.db");
    let yaml = format!(
        "{}browser:\n  executable: {}\njournal:\n  path: {}\n",
        config(
            "",
            r#"
  - name: sign_in_page
    target: ics
    login: false
    schedule: { interval: 10m }
    browser:
      steps:
        - name: open
          goto: /login
          slow_after: 500ms
          freeze_after: 1s
"#
        ),
        executable.display(),
        journal.display()
    );
    sim.control("page_hang", json!({"seconds": 2.0, "count": 1}))
        .await;
    let agent = start_agent(load(&yaml, &sim)).await;
    let journey = [("journey", "sign_in_page")];
    let text = wait_for(Duration::from_secs(60), "the browser run", || async {
        let text = agent.metrics().await;
        (metric(&text, "casewatch_journey_runs_total", &journey) >= 1.0).then_some(text)
    })
    .await;
    let side = |s: &str| {
        metric(
            &text,
            "casewatch_browser_frozen_steps_total",
            &[("journey", "sign_in_page"), ("side", s)],
        )
    };
    assert_eq!((side("client"), side("server")), (1.0, 0.0), "{text}");
    assert_eq!(
        metric(
            &text,
            "casewatch_step_outcomes_total",
            &[("journey", "sign_in_page"), ("outcome", "frozen")]
        ),
        1.0
    );
    // The server answered throughout: no server freeze episode.
    assert_eq!(
        metric(
            &text,
            "casewatch_freeze_episodes_total",
            &[("target", "ics")]
        ),
        0.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "casewatch_browser_evidence_saved_total", &[]),
        1.0
    );
    // The status page links the screenshot, and serves it.
    let page = reqwest::get(format!("http://{}/", agent.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let link = regex::Regex::new(r#"href="(/evidence/[^"]+\.png)""#)
        .unwrap()
        .captures(&page)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("no screenshot link on the status page: {page}"));
    let png = reqwest::get(format!("http://{}{link}", agent.addr))
        .await
        .unwrap();
    assert_eq!(png.status(), 200);
    assert_eq!(&png.bytes().await.unwrap()[..4], b"\x89PNG");
    let outside = reqwest::get(format!("http://{}/evidence/..%2Fcw.db", agent.addr))
        .await
        .unwrap();
    assert_eq!(outside.status(), 404);
    agent.stop().await;
    sim.stop().await;

    // The journal keeps the side, and the report counts it apart and
    // links the same evidence.
    let reader = casewatch::journal::read::JournalReader::open(&journal).unwrap();
    let model = casewatch::report::build(
        &reader,
        &casewatch::report::ReportOptions {
            journal: journal.display().to_string(),
            from: None,
            to: None,
            rule_age: None,
            period: Default::default(),
            now: SystemTime::now(),
        },
        |_| {},
    )
    .unwrap();
    let browser = &model.freezes.browser;
    assert_eq!(browser.len(), 1, "{browser:?}");
    assert_eq!(
        (browser[0].server, browser[0].client, browser[0].mixed),
        (0, 1, 0)
    );
    assert!(model.freezes.targets.is_empty(), "no server freeze episode");
    let name = link.trim_start_matches("/evidence/");
    let md = casewatch::report::render(&model, casewatch::report::Format::Md);
    assert!(md.contains("| ics | sign_in_page | 0 | 1 | 0 |"), "{md}");
    assert!(md.contains(name), "{md}");
    assert!(dir.path().join("cw-evidence").join(name).is_file());
}

// ------------------------------------------------ issue 21: the browser --

/// Pages that behave as real ones sometimes do, on loopback: a large page,
/// one that reloads itself for ever, a download, one whose script blocks
/// its main thread for ever once loaded.
async fn page_server() -> std::net::SocketAddr {
    use axum::http::header;
    use axum::response::Html;
    use axum::routing::get;
    let big = format!(
        "<html><body><h1 id=\"ok\">Big</h1><p>{}</p></body></html>",
        "case text ".repeat(6_000)
    );
    let app = axum::Router::new()
        .route("/page", get(move || async move { Html(big.clone()) }))
        .route(
            "/loop",
            get(|| async {
                Html("<html><head><script>location.reload()</script></head><body>again</body></html>")
            }),
        )
        .route(
            "/download",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/csv"),
                        (header::CONTENT_DISPOSITION, "attachment; filename=\"cases.csv\""),
                    ],
                    "case,worker\n1,2\n",
                )
            }),
        )
        .route(
            "/busy",
            get(|| async {
                Html("<html><body><p id=\"here\">busy</p><script>addEventListener('load', () => setTimeout(() => { for (;;) {} }, 50))</script></body></html>")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A config whose target `pages` is `page_server`, with the given journeys.
fn pages_config(addr: std::net::SocketAddr, journeys: &str) -> String {
    format!(
        r#"site: test-site
targets:
  - name: pages
    base_url: http://{addr}/
    defaults: {{ slow_after: 1s, freeze_after: 2s, give_up_after: 4s }}
journeys:
{journeys}"#
    )
}

fn page_journey(name: &str, steps: &str) -> String {
    format!(
        "  - {{ name: {name}, target: pages, login: false, schedule: {{ interval: 1h }}, browser: {{ steps: [{steps}] }} }}\n"
    )
}

async fn run_pages_journey(pool: &Arc<BrowserPool>, yaml: &str, journey: usize) -> RunRecord {
    run_pages_journey_with(pool, yaml, journey, None).await
}

async fn run_pages_journey_with(
    pool: &Arc<BrowserPool>,
    yaml: &str,
    journey: usize,
    evidence: Option<Arc<EvidenceStore>>,
) -> RunRecord {
    let config = casewatch::config::from_yaml_str(yaml, "pages.yaml")
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    let browsing = Browsing {
        pool: pool.clone(),
        evidence,
    };
    casewatch::browser::run_journey(
        &browsing,
        None,
        &config.journeys[journey],
        HashMap::new(),
        &PlannedRun::now(1),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_loads_count_their_bytes_and_pages_that_never_settle_say_so() {
    let Some(browser) = shared_browser() else {
        return;
    };
    let addr = page_server().await;
    let yaml = pages_config(
        addr,
        &[
            page_journey(
                "big",
                "{ name: open, goto: /page, assert: { selector: ['#ok'] } }",
            ),
            page_journey("reload_loop", "{ name: open, goto: /loop }"),
            page_journey("download", "{ name: open, goto: /download }"),
        ]
        .concat(),
    )
    // "Nothing held it up" means under half of freeze_after spent waiting
    // for the server or blocked; on a loaded machine a reload loop's own
    // requests and Chromium's main thread take a second or more of that,
    // so the bar is 3 s here, not 1 s: still far below a real hold-up.
    .replace(
        "{ slow_after: 1s, freeze_after: 2s, give_up_after: 4s }",
        "{ slow_after: 2s, freeze_after: 6s, give_up_after: 8s }",
    );
    let big = run_pages_journey(&browser.pool, &yaml, 0).await;
    assert!(big.outcome.is_success(), "{:?}", big.steps[0]);
    assert!(
        big.steps[0].bytes >= 60_000,
        "a 60 KB page load recorded {} bytes",
        big.steps[0].bytes
    );
    for journey in [1, 2] {
        let run = run_pages_journey(&browser.pool, &yaml, journey).await;
        let step = &run.steps[0];
        assert_eq!(
            step.outcome,
            Outcome::Frozen,
            "{}: {}",
            run.journey,
            step.detail
        );
        assert!(
            step.detail
                .contains("gave up; the page never settled, though nothing held it up"),
            "{}: {}",
            run.journey,
            step.detail
        );
    }
}

/// A run on a page whose main thread is blocked for good ends within its
/// steps' `give_up_after`s (and the short grace for the failed step's
/// evidence), however long the screenshot would take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_run_ends_by_its_deadline_on_a_page_that_never_answers() {
    let Some(browser) = shared_browser() else {
        return;
    };
    let addr = page_server().await;
    let yaml = pages_config(
        addr,
        &page_journey(
            "busy",
            "{ name: open, goto: /busy }, { name: press, click: '#never' }",
        ),
    )
    .replace(
        "{ slow_after: 1s, freeze_after: 2s, give_up_after: 4s }",
        "{ slow_after: 500ms, freeze_after: 1s, give_up_after: 2s }",
    );
    let dir = tempfile::tempdir().unwrap();
    let evidence = Arc::new(EvidenceStore::new(
        dir.path().to_path_buf(),
        &BrowserSettings::default(),
    ));
    let run = run_pages_journey_with(&browser.pool, &yaml, 0, Some(evidence)).await;
    let budget = Duration::from_secs(4);
    assert_eq!(
        run.steps.last().map(|s| s.outcome),
        Some(Outcome::Frozen),
        "{:?}",
        run.steps
    );
    assert!(
        run.duration <= budget + casewatch::browser::DEADLINE_GRACE,
        "the run took {:?} against a deadline of {budget:?}",
        run.duration
    );
}

/// While `max_contexts` are all held, a run waits for its context: that
/// wait is the run's lateness, not its duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_browser_context_is_lateness_not_journey_time() {
    let Some(executable) = require_tool("chromium") else {
        return;
    };
    let addr = page_server().await;
    let pool = BrowserPool::new(
        BrowserSettings {
            executable: Some(executable),
            max_contexts: 1,
            ..BrowserSettings::default()
        },
        BrowserMetrics::new().unwrap(),
        tokio::runtime::Handle::current(),
    );
    let held = pool.lease().await.expect("a first context");
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(held);
    });
    let yaml = pages_config(
        addr,
        &page_journey(
            "big",
            "{ name: open, goto: /page, assert: { selector: ['#ok'] } }",
        ),
    );
    let run = run_pages_journey(&pool, &yaml, 0).await;
    release.await.unwrap();
    pool.close().await;
    assert!(run.outcome.is_success(), "{:?}", run.steps);
    assert!(
        run.lateness() >= Duration::from_millis(2_500),
        "lateness {:?}",
        run.lateness()
    );
    assert!(
        run.duration < Duration::from_millis(2_500),
        "the wait for a context counted as journey time: {:?}",
        run.duration
    );
}

/// The ids of the processes whose process group is `group` (Linux).
#[cfg(target_os = "linux")]
fn processes_in_group(group: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == group.to_string() {
            found.push(pid);
        }
    }
    found
}

/// The browser the agent started: the process whose command line names a
/// profile folder under `dir`.
#[cfg(target_os = "linux")]
fn browser_under(dir: &std::path::Path) -> Option<u32> {
    let wanted = format!("--user-data-dir={}", dir.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline);
            (cmdline.contains(&wanted) && cmdline.contains("--remote-debugging-port"))
                .then_some(pid)
        })
}

/// After `kill -9` of the agent no Chromium process of its is left, and
/// the profile folders that killed agents left behind are swept at the
/// next start, never one whose agent still runs.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_dies_with_the_agent_and_stale_profiles_are_swept() {
    let Some(executable) = require_tool("chromium") else {
        return;
    };
    let addr = page_server().await;
    let tmp = tempfile::tempdir().unwrap();
    let dead = {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        child.id()
    };
    let folder = |name: &str, owner: Option<u32>| {
        let path = tmp.path().join(format!("casewatch-chromium-{name}"));
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("Local State"), "{}").unwrap();
        if let Some(pid) = owner {
            std::fs::write(path.join("casewatch-owner"), pid.to_string()).unwrap();
        }
        path
    };
    let of_dead = folder("dead", Some(dead));
    let unowned = folder("unowned", None);
    assert!(std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&unowned)
        .status()
        .unwrap()
        .success());
    let of_live = folder("live", Some(std::process::id()));
    // An old, unowned folder that a running Chromium still holds.
    let held = folder("held", None);
    std::os::unix::fs::symlink(
        format!("somehost-{}", std::process::id()),
        held.join("SingletonLock"),
    )
    .unwrap();
    assert!(std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&held)
        .status()
        .unwrap()
        .success());

    let config = tmp.path().join("casewatch.yaml");
    let yaml = format!(
        "{}browser:\n  executable: {}\n",
        pages_config(
            addr,
            &page_journey("big", "{ name: open, goto: /page }")
                .replace("interval: 1h", "interval: 1s"),
        ),
        executable.display()
    );
    std::fs::write(&config, yaml).unwrap();
    let port = free_port();
    let start = || {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_casewatch"))
            .args(["run", "--config"])
            .arg(&config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("TMPDIR", tmp.path())
            .env("CASEWATCH_LOG", "warn")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        KillOnDrop(child)
    };
    let mut agent = start();
    let browser = wait_for(Duration::from_secs(60), "the agent's browser", || async {
        browser_under(tmp.path())
    })
    .await;
    wait_for(
        Duration::from_secs(10),
        "the stale profiles swept",
        || async { (!of_dead.exists() && !unowned.exists()).then_some(()) },
    )
    .await;
    assert!(of_live.exists(), "a running agent's profile was swept");
    assert!(held.exists(), "a profile a running browser holds was swept");
    wait_for(Duration::from_secs(30), "the browser's helpers", || async {
        (processes_in_group(browser).len() >= 3).then_some(())
    })
    .await;

    agent.0.kill().unwrap();
    agent.0.wait().unwrap();
    let left = wait_for(Duration::from_secs(20), "the browser to die", || async {
        let left = processes_in_group(browser);
        left.is_empty().then_some(left)
    })
    .await;
    assert!(left.is_empty());

    // The killed agent's own profile is swept by the next start.
    let profiles = |tmp: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(tmp)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.starts_with("casewatch-chromium-")
                    && n != "casewatch-chromium-live"
                    && n != "casewatch-chromium-held"
            })
            .collect()
    };
    let before = profiles(tmp.path());
    assert_eq!(before.len(), 1, "{before:?}");
    let _agent = start();
    wait_for(Duration::from_secs(60), "the new browser", || async {
        let now = profiles(tmp.path());
        (now.len() == 1 && now != before).then_some(())
    })
    .await;
}

/// A child process killed when dropped, so a failing test leaves none.
#[cfg(target_os = "linux")]
struct KillOnDrop(std::process::Child);

#[cfg(target_os = "linux")]
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
