//! The foundation: login with CSRF, extraction and substitution, every outcome
//! produced by a simulator fault and seen on `/metrics`, `check-config`, and
//! the demo.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use casewatch::outcome::{Outcome, StepPhase};
use casewatch::sim::SimProfile;
use serde_json::json;
use tokio::time::Instant;

use crate::harness::*;

const CASE_NOTE: &str = r#"
  - name: case_note
    target: ics
    schedule: { interval: 1s }
    steps:
      - name: search
        path: /cases/search
        query: { q: Smith }
        extract:
          - var: case_path
            css: 'a.case-link'
            attr: href
      - name: open_record
        path: ${case_path}
        extract:
          - var: note_token
            css: '#note-form input[name="csrf_token"]'
            attr: value
          - var: case_id
            css: '#case-id'
      - name: save_note
        method: POST
        path: ${case_path}/notes
        form:
          note: "Visit recorded for ${case_id} in run ${run_id}"
          csrf_token: ${note_token}
        assert:
          status: [200]
          body_matches: ['Note \S+ saved']
"#;

#[tokio::test]
async fn login_with_csrf_then_extract_and_substitute() {
    let sim = start_sim(SimProfile::quiet()).await;
    let run = run_first_journey(&config_yaml("", CASE_NOTE), &sim, PASSWORD).await;
    let steps = step_outcomes(&run);
    assert_eq!(
        steps,
        vec![
            ("login_page", Outcome::Ok),
            ("login_submit", Outcome::Ok),
            ("search", Outcome::Ok),
            ("open_record", Outcome::Ok),
            ("save_note", Outcome::Ok),
            ("logout", Outcome::Ok),
        ],
        "{run:#?}"
    );
    assert_eq!(run.outcome, Outcome::Ok);
    assert_eq!(run.steps[0].phase, StepPhase::Login);
    assert_eq!(run.steps[5].phase, StepPhase::Logout);
    // The session the agent logged out is gone from the simulator.
    let live = sim.live_session_ages().await;
    assert_eq!(live, Vec::<f64>::new(), "sessions left open");
    // Nothing was injected, and the simulator ended no session itself.
    let truth = sim.truth().await;
    assert_eq!(truth["events"], json!([]), "{truth}");
    sim.stop().await;
}

#[tokio::test]
async fn a_wrong_substitution_is_refused_by_the_server() {
    let sim = start_sim(SimProfile::quiet()).await;
    // The note is posted with the login token instead of the record's token.
    let journeys = CASE_NOTE.replace("csrf_token: ${note_token}", "csrf_token: wrong-${case_id}");
    let run = run_first_journey(&config_yaml("", &journeys), &sim, PASSWORD).await;
    assert_eq!(run.outcome, Outcome::HttpError, "{run:#?}");
    assert_eq!(run.failed_step.as_deref(), Some("save_note"));
    assert_eq!(
        run.steps
            .iter()
            .find(|s| s.step == "save_note")
            .unwrap()
            .status,
        Some(403)
    );
    sim.stop().await;
}

#[tokio::test]
async fn json_extraction_feeds_the_next_step() {
    let sim = start_sim(SimProfile::quiet()).await;
    let journeys = r#"
  - name: lookup
    target: ics
    schedule: { interval: 1s }
    steps:
      - name: api_search
        path: /api/cases
        query: { q: Jones }
        extract:
          - var: first_case
            jsonpath: '$.results[0].id'
          - var: count
            json_pointer: /count
      - name: open_record
        path: /cases/${first_case}
        assert:
          body_contains: ['<span id="case-id">']
"#;
    let run = run_first_journey(&config_yaml("", journeys), &sim, PASSWORD).await;
    assert_eq!(run.outcome, Outcome::Ok, "{run:#?}");
    sim.stop().await;
}

#[tokio::test]
async fn a_wrong_password_is_a_failed_login() {
    let sim = start_sim(SimProfile::quiet()).await;
    let run = run_first_journey(&config_yaml("", CASE_NOTE), &sim, "not-the-password").await;
    assert_eq!(run.outcome, Outcome::AssertionFailed, "{run:#?}");
    assert_eq!(run.failed_step.as_deref(), Some("login_submit"));
    // No journey step ran and no logout was attempted for a session never opened.
    assert_eq!(run.steps.len(), 2);
    sim.stop().await;
}

/// Starts an agent on `journeys`, applies `fault` (a control API call) again
/// and again while it runs, and waits until `/metrics` counts a step of `outcome`.
async fn outcome_shows_on_metrics(
    target_extra: &str,
    journeys: &str,
    outcome: Outcome,
    fault: Option<(&str, serde_json::Value)>,
) {
    let sim = start_sim(SimProfile::quiet()).await;
    let mut config = load(&config_yaml(target_extra, journeys), &sim);
    config.site = "test-site".into();
    let agent = start_agent(config).await;
    let label = outcome.as_str();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((path, body)) = &fault {
            sim.control(path, body.clone()).await;
        }
        let text = agent.metrics().await;
        let steps = metric(
            &text,
            "casewatch_step_outcomes_total",
            &[("outcome", label), ("site", "test-site")],
        );
        let runs = metric(
            &text,
            "casewatch_journey_runs_total",
            &[("outcome", label), ("site", "test-site")],
        );
        if steps > 0.0 && runs > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no {label} step within 20 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    agent.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn outcome_ok() {
    outcome_shows_on_metrics("", CASE_NOTE, Outcome::Ok, None).await;
}

#[tokio::test]
async fn outcome_slow() {
    // Each hop takes 250 ms more: one-hop steps stay ok, steps that redirect
    // once (login, saving a note) become slow, none freezes.
    outcome_shows_on_metrics(
        "",
        CASE_NOTE,
        Outcome::Slow,
        Some(("latency", json!({"extra_ms": 250}))),
    )
    .await;
}

#[tokio::test]
async fn outcome_frozen() {
    outcome_shows_on_metrics(
        "",
        CASE_NOTE,
        Outcome::Frozen,
        Some(("freeze", json!({"seconds": 1.5}))),
    )
    .await;
}

#[tokio::test]
async fn outcome_http_error() {
    outcome_shows_on_metrics(
        "",
        CASE_NOTE,
        Outcome::HttpError,
        Some(("errors", json!({"status": 500, "count": 5}))),
    )
    .await;
}

#[tokio::test]
async fn outcome_assertion_failed() {
    let journeys = CASE_NOTE.replace(
        r#"body_matches: ['Note \S+ saved']"#,
        r#"body_contains: ["text the page never has"]"#,
    );
    outcome_shows_on_metrics("", &journeys, Outcome::AssertionFailed, None).await;
}

#[tokio::test]
async fn outcome_logged_out() {
    let journeys = CASE_NOTE.replace(
        "      - name: open_record",
        "        think_time: 300ms\n      - name: open_record",
    );
    outcome_shows_on_metrics(
        "",
        &journeys,
        Outcome::LoggedOut,
        Some(("logout", json!({"which": "all"}))),
    )
    .await;
}

#[tokio::test]
async fn outcome_error_when_body_is_over_the_cap() {
    outcome_shows_on_metrics("max_body: 100B", CASE_NOTE, Outcome::Error, None).await;
}

#[tokio::test]
async fn outcome_connect_error() {
    let sim = start_sim(SimProfile::quiet()).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mut urls = sim.base_urls();
    urls.insert("ics".into(), format!("http://{closed}/"));
    let config = casewatch::config::from_yaml_str_with_base_urls(
        &config_yaml("", CASE_NOTE),
        "test.yaml",
        &urls,
    )
    .unwrap()
    .config;
    let agent = start_agent(config).await;
    let text = wait_for(Duration::from_secs(20), "a connect_error step", || async {
        let text = agent.metrics().await;
        (metric(
            &text,
            "casewatch_step_outcomes_total",
            &[("outcome", "connect_error"), ("step", "login_page")],
        ) > 0.0)
            .then_some(text)
    })
    .await;
    assert_eq!(
        metric(
            &text,
            "casewatch_journey_last_success",
            &[("journey", "case_note")]
        ),
        0.0
    );
    agent.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn metrics_carry_site_build_info_and_zeroed_series() {
    let sim = start_sim(SimProfile::quiet()).await;
    let agent = start_agent(load(&config_yaml("", CASE_NOTE), &sim)).await;
    let text = agent.metrics().await;
    assert_eq!(
        metric(&text, "casewatch_build_info", &[("site", "test-site")]),
        1.0
    );
    // Every outcome series exists before anything failed, at zero.
    let frozen = [
        ("journey", "case_note"),
        ("outcome", "frozen"),
        ("step", "save_note"),
        ("target", "ics"),
    ];
    assert_eq!(
        series(&text, "casewatch_step_outcomes_total", &frozen),
        vec![0.0],
        "{text}"
    );
    let health = reqwest::get(format!("http://{}/-/healthy", agent.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("http://{}/-/ready", agent.addr))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    wait_for(
        Duration::from_secs(15),
        "a run on the status page",
        || async {
            let page = reqwest::get(format!("http://{}/", agent.addr))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (page.contains("case_note") && page.contains(">ok<")).then_some(())
        },
    )
    .await;
    // Bucket edges include the configured slow_after and freeze_after.
    let text = agent.metrics().await;
    for edge in ["0.4", "0.8"] {
        let bucket = [("step", "search"), ("le", edge)];
        assert_eq!(
            series(&text, "casewatch_step_duration_seconds_bucket", &bucket).len(),
            1,
            "{text}"
        );
    }
    agent.stop().await;
    sim.stop().await;
}

fn casewatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_casewatch"))
}

#[test]
fn check_config_reports_every_mistake_with_its_line() {
    let output = casewatch()
        .args(["check-config", "tests/fixtures/three_mistakes.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = [
        r#"error: tests/fixtures/three_mistakes.yaml:12: journey "case_note": unknown target "icss" (known: ics)"#,
        r#"error: tests/fixtures/three_mistakes.yaml:21: journey "lookup", step "search": freeze_after (30s) is above give_up_after (5s): the agent would give up before it could call the step frozen"#,
        r#"error: tests/fixtures/three_mistakes.yaml:24: journey "lookup", step "open": uses ${case_id} but no earlier step extracts it"#,
        "tests/fixtures/three_mistakes.yaml: 3 error(s)",
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines, expected, "{stderr}");
}

#[test]
fn check_config_accepts_the_shipped_configs() {
    // Templates for other machines: the file only, not this machine's
    // secrets, folders and Chromium.
    for file in ["config/demo.yaml", "config/casewatch.yaml"] {
        let output = casewatch()
            .args(["check-config", "--offline", file])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.starts_with(&format!("{file}: OK: site ")),
            "{stdout}"
        );
    }
}

#[test]
fn check_config_names_an_unknown_key_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.yaml");
    std::fs::write(
        &path,
        "site: a\ntargets:\n  - name: ics\n    base_url: http://x/\n    bsae_url: http://y/\n",
    )
    .unwrap();
    let output = casewatch().arg("check-config").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("typo.yaml:5: at targets[0]"), "{stderr}");
    assert!(stderr.contains("unknown field `bsae_url`"), "{stderr}");
}

#[test]
fn demo_runs_journeys_and_serves_metrics() {
    let mut child = casewatch()
        .args(["demo", "--duration", "12s", "--listen", "127.0.0.1:0"])
        .env("CASEWATCH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let metrics_url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            line.trim()
                .strip_prefix("metrics:")
                .map(|u| u.trim().to_string())
        })
        .expect("demo prints its metrics URL");
    // Asked until a run is counted or the demo ends (after its 12 s), not
    // for a fixed time that a loaded machine may not reach a run in.
    let mut runs = 0.0;
    while runs == 0.0 && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(200));
        if let Ok(text) = blocking_get(&metrics_url) {
            runs = metric(
                &text,
                "casewatch_journey_runs_total",
                &[("site", "demo-office")],
            );
        }
    }
    assert!(runs > 0.0, "no journey runs counted on {metrics_url}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(rest.iter().any(|l| l.starts_with("Summary: ")), "{rest:?}");
}
