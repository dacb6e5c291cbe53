//! Forced logouts: every logout style of the simulator with its cause,
//! re-login and retry, session-age hazard, and login failures.

use std::time::Duration;

use casewatch::outcome::{LogoutCause, Outcome, RunRecord, StepPhase};
use casewatch::sim::SimProfile;
use serde_json::json;

use crate::harness::*;

/// Opens the home page, reads it for two seconds, then searches: the forced
/// logout lands while the user reads.
const READ_THEN_SEARCH: &str = r#"
  - name: read_then_search
    target: ics
    schedule: { interval: 1m }
    steps:
      - name: home
        path: /home
        think_time: 2s
      - name: search
        path: /cases/search
        query: { q: Smith }
        assert: { status: [200] }
"#;

/// Runs `journeys` once, forcing every session out as soon as one is live.
async fn run_with_forced_logout(sim: &TestSim, yaml: &str) -> RunRecord {
    let run = run_first_journey(yaml, sim, PASSWORD);
    let force = async {
        wait_for(Duration::from_secs(10), "a live session", || async {
            (!sim.live_session_ages().await.is_empty()).then_some(())
        })
        .await;
        sim.control("logout", json!({"which": "all"})).await;
    };
    let (run, ()) = tokio::join!(run, force);
    run
}

#[tokio::test]
async fn every_logout_style_is_detected_with_its_cause() {
    let styles = [
        ("redirect", LogoutCause::Redirect, Some(302)),
        ("status_401", LogoutCause::Status, Some(401)),
        ("status_403", LogoutCause::Status, Some(403)),
        ("status_440", LogoutCause::Status, Some(440)),
        ("expired_page", LogoutCause::ExpiredPage, Some(200)),
        ("cookie_cleared", LogoutCause::CookieCleared, Some(200)),
        // The login form served with 200, the cookie left as it was: only
        // the login page itself says the session is gone.
        ("login_page", LogoutCause::LoginPage, Some(200)),
    ];
    // This system uses 403 only for ended sessions, so the rules list it.
    let yaml = config_yaml("", READ_THEN_SEARCH)
        .replace("statuses: [401, 440]", "statuses: [401, 403, 440]");
    for (style, cause, status) in styles {
        let sim = start_sim(SimProfile::quiet()).await;
        sim.control("logout_style", json!({"style": style})).await;
        let run = run_with_forced_logout(&sim, &yaml).await;
        assert_eq!(run.outcome, Outcome::LoggedOut, "{style}: {run:#?}");
        assert_eq!(run.failed_step.as_deref(), Some("search"), "{style}");
        let step = run.steps.iter().find(|s| s.step == "search").unwrap();
        assert_eq!(step.logout_cause, Some(cause), "{style}");
        assert_eq!(step.status, status, "{style}");
        // No logout is attempted on a session the server already ended.
        assert!(
            run.steps.iter().all(|s| s.phase != StepPhase::Logout),
            "{style}"
        );
        // The session age the agent recorded is the simulator's truth at the
        // moment the agent's request met the ended session.
        let age = step.session_age.unwrap().as_secs_f64();
        let truth = sim.truth().await;
        let event = truth["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "forced_logout")
            .cloned()
            .unwrap();
        let ended_at_age = event["sessions"][0]["age_real_seconds"].as_f64().unwrap();
        let noticed_after =
            event["noticed_at"].as_f64().unwrap() - event["started_at"].as_f64().unwrap();
        let true_age = ended_at_age + noticed_after;
        assert!(
            (age - true_age).abs() < 0.5,
            "{style}: agent {age} s, truth {true_age} s ({event})"
        );
        assert_eq!(run.sessions.len(), 1);
        assert!(run.sessions[0].end.is_some_and(|e| e.is_drop()), "{style}");
        sim.stop().await;
    }
}

#[tokio::test]
async fn an_interrupted_step_is_retried_once_after_logging_back_in() {
    let sim = start_sim(SimProfile::quiet()).await;
    let journeys = READ_THEN_SEARCH.replace(
        "    target: ics\n",
        "    target: ics\n    retry_after_relogin: true\n",
    );
    let run = run_with_forced_logout(&sim, &config_yaml("", &journeys)).await;
    let steps = step_outcomes(&run);
    assert_eq!(
        steps,
        vec![
            ("login_page", Outcome::Ok),
            ("login_submit", Outcome::Ok),
            ("home", Outcome::Ok),
            ("search", Outcome::LoggedOut),
            ("login_page", Outcome::Ok),
            ("login_submit", Outcome::Ok),
            ("search", Outcome::Ok),
            ("logout", Outcome::Ok),
        ],
        "{run:#?}"
    );
    // The first failure still decides the run's outcome.
    assert_eq!(run.outcome, Outcome::LoggedOut);
    assert_eq!(run.sessions.len(), 2);
    sim.stop().await;
}

#[tokio::test]
async fn forced_logouts_and_relogin_show_on_metrics() {
    let sim = start_sim(SimProfile::quiet()).await;
    let journeys = READ_THEN_SEARCH
        .replace("interval: 1m", "interval: 1s")
        .replace("think_time: 2s", "think_time: 300ms");
    let agent = start_agent(load(&config_yaml("", &journeys), &sim)).await;
    let text = wait_for(
        Duration::from_secs(30),
        "a forced logout and a re-login",
        || async {
            let _ = sim.control("logout", json!({"which": "all"})).await;
            let text = agent.metrics().await;
            let drops = metric(
                &text,
                "casewatch_forced_logouts_total",
                &[("cause", "redirect"), ("age_band", "0-1h")],
            );
            let relogins = metric(
                &text,
                "casewatch_relogin_duration_seconds_count",
                &[("target", "ics")],
            );
            (drops > 0.0 && relogins > 0.0).then_some(text)
        },
    )
    .await;
    assert!(
        metric(
            &text,
            "casewatch_session_age_at_logout_seconds_count",
            &[("target", "ics")]
        ) > 0.0
    );
    assert!(
        metric(
            &text,
            "casewatch_session_exposure_seconds_total",
            &[("age_band", "0-1h")]
        ) > 0.0
    );
    agent.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn a_wrong_password_counts_no_forced_logout() {
    let sim = start_sim(SimProfile::quiet()).await;
    let journeys = READ_THEN_SEARCH.replace("interval: 1m", "interval: 500ms");
    let agent = start_agent_with(
        load(&config_yaml("", &journeys), &sim),
        test_env("wrong-password"),
    )
    .await;
    let text = wait_for(Duration::from_secs(20), "failed logins", || async {
        let text = agent.metrics().await;
        let failed = [("step", "login_submit"), ("outcome", "assertion_failed")];
        (metric(&text, "casewatch_step_outcomes_total", &failed) >= 3.0).then_some(text)
    })
    .await;
    assert_eq!(
        metric(&text, "casewatch_forced_logouts_total", &[]),
        0.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "casewatch_journey_runs_total",
            &[("outcome", "logged_out")]
        ),
        0.0
    );
    assert_eq!(
        metric(&text, "casewatch_session_exposure_seconds_total", &[]),
        0.0
    );
    agent.stop().await;
    sim.stop().await;
}

/// One real second is one simulated hour; the simulator's hazard jumps from
/// 0.05 to 3 drops per session-hour at two hours of age.
const RISING_HAZARD: &str = r#"
time_scale: 3600
users: [sw.demo]
forced_logout:
  style: redirect
  hazard:
    - {from: 0h, per_hour: 0.05}
    - {from: 2h, per_hour: 3.0}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hazard_that_rises_after_two_hours_shows_in_the_later_band() {
    let profile = SimProfile::from_yaml_str(RISING_HAZARD, "rising.yaml").unwrap();
    let sim = start_sim(profile).await;
    // Bands in real seconds stand for hours at this time scale.
    let keep = r#"keep_sessions:
      count: 6
      stagger: 100ms
      every: 50ms
      max_age: 5s
      keepalive: { name: keepalive_home, path: /home }"#;
    let yaml = format!(
        "site: test-site\nagent:\n  max_sessions: 8\n  age_bands: [1s, 2s, 3s, 4s]\ntargets:{}\njourneys:\n{}",
        ics_target(keep),
        READ_THEN_SEARCH.replace("interval: 1m", "interval: 10m")
    );
    let agent = start_agent(load(&yaml, &sim)).await;
    let text = wait_for(
        Duration::from_secs(60),
        "drops in the later bands",
        || async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let text = agent.metrics().await;
            let late = metric(
                &text,
                "casewatch_forced_logouts_total",
                &[("age_band", "2s-3s")],
            ) + metric(
                &text,
                "casewatch_forced_logouts_total",
                &[("age_band", "3s-4s")],
            );
            (late >= 10.0).then_some(text)
        },
    )
    .await;
    let hazard = |bands: &[&str]| {
        let drops: f64 = bands
            .iter()
            .map(|b| metric(&text, "casewatch_forced_logouts_total", &[("age_band", b)]))
            .sum();
        let exposure: f64 = bands
            .iter()
            .map(|b| {
                metric(
                    &text,
                    "casewatch_session_exposure_seconds_total",
                    &[("age_band", b)],
                )
            })
            .sum();
        (drops, exposure, drops / exposure)
    };
    let early = hazard(&["0-1s", "1s-2s"]);
    let late = hazard(&["2s-3s", "3s-4s"]);
    assert!(early.1 > 0.0 && late.1 > 0.0, "{early:?} {late:?}");
    // True hazards: 0.05 and 3 per simulated hour (per real second here).
    assert!(late.2 > 5.0 * early.2, "early {early:?}, late {late:?}");
    assert!(late.2 > 1.0 && late.2 < 6.0, "late hazard {late:?}");
    agent.stop().await;
    sim.stop().await;
}
