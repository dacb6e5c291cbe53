//! Time lost per practitioner, checked against the simulator's truth:
//! injected freeze seconds and forced logouts give the frozen and logout
//! minutes the model says they should, within the report's intervals. The
//! system's calendar runs 57,600 times faster than the wall clock, so the
//! minute measured holds forty days, and rates are per hour of that
//! calendar. Freezes last two seconds (32 calendar hours): units of days are
//! at least twice the longest freeze, so even a freeze measured a second
//! longer leaves units of four days, and ten of them.

use std::time::{Duration, SystemTime};

use casewatch::journal::read::JournalReader;
use casewatch::report::{self, Format, ReportOptions};
use casewatch::sim::SimProfile;
use serde_json::json;

use crate::harness::*;

const RUN: Duration = Duration::from_secs(60);
const KEPT: f64 = 2.0;
const REDO_SECONDS: f64 = 60.0;
/// A calendar day every 1.5 seconds.
const SCALE: f64 = 57_600.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_freezes_and_drops_give_the_frozen_and_logout_minutes_of_the_truth() {
    let sim = start_sim(SimProfile::quiet()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let keep = r#"heartbeat: { path: /ping, every: 200ms, freeze_after: 800ms }
    keep_sessions:
      count: 2
      stagger: 100ms
      every: 500ms
      max_age: 10m
      keepalive: { name: keepalive_home, path: /home }"#;
    let yaml = format!(
        r#"site: test-site
agent:
  calendar_scale: {SCALE}
targets:{}
journeys:
  - name: lookup
    target: ics
    login: false
    schedule: {{ interval: 250ms }}
    steps:
      - {{ name: page, path: /login }}
practitioners:
  headcount: 10
  working_hours: "00:00-24:00"
  working_days: all
  acceptable: 10s
  redo_after_logout: {REDO_SECONDS}s
journal:
  path: {}
"#,
        ics_target(keep),
        path.display()
    );
    let started = SystemTime::now();
    let agent = start_agent(load(&yaml, &sim)).await;
    let inject = async {
        for round in 0..4u64 {
            tokio::time::sleep(Duration::from_secs(7)).await;
            if round < 3 {
                sim.control("freeze", json!({"seconds": 2, "system": "ics"}))
                    .await;
            }
            tokio::time::sleep(Duration::from_secs(6)).await;
            sim.control("logout", json!({"which": "all"})).await;
        }
    };
    tokio::join!(inject, tokio::time::sleep(RUN));
    agent.stop().await;
    let elapsed = started.elapsed().unwrap().as_secs_f64();
    let truth = sim.truth().await;
    sim.stop().await;
    let events = truth["events"].as_array().unwrap();
    let frozen: f64 = events
        .iter()
        .filter(|e| e["kind"] == "freeze")
        .map(|e| e["seconds"].as_f64().unwrap())
        .sum();
    let drops = events
        .iter()
        .filter(|e| e["kind"] == "forced_logout")
        .count() as f64;
    assert_eq!(frozen, 6.0);
    assert_eq!(drops, 4.0 * KEPT, "{truth}");

    let reader = JournalReader::open(&path).unwrap();
    let model = report::build(
        &reader,
        &ReportOptions {
            journal: path.display().to_string(),
            from: None,
            to: None,
            rule_age: None,
            period: Default::default(),
            now: SystemTime::now(),
        },
        |_| {},
    )
    .unwrap();
    let t = &model.time_lost;
    eprintln!("{t:#?}");
    // Freezes: the frozen share of the (all-day) working day.
    let day_minutes = 24.0 * 60.0;
    let expected_frozen = day_minutes * frozen / elapsed;
    assert!(
        t.frozen_minutes.covers(expected_frozen),
        "frozen minutes {:?} should cover {expected_frozen:.1}",
        t.frozen_minutes
    );
    // Forced logouts: drops per session-hour (of the system's calendar) x
    // working hours x cost.
    let session_hours = KEPT * elapsed * SCALE / 3600.0;
    let expected_logouts = 24.0 * drops / session_hours * t.logout_cost_seconds / 60.0;
    assert!(
        t.logout_minutes.covers(expected_logouts),
        "logout minutes {:?} should cover {expected_logouts:.1}",
        t.logout_minutes
    );
    assert!((t.logout_cost_seconds - REDO_SECONDS).abs() < 2.0, "{t:?}");
    assert_eq!(t.redo_source, "configured");
    // Nothing was slower than 10 s but the frozen steps, counted once.
    assert_eq!(t.slow_minutes.value, Some(0.0));
    // The summary opens with it, assumptions and all.
    assert!(
        model.summary[0].starts_with("Each practitioner loses about"),
        "{:?}",
        model.summary
    );
    assert!(
        model.summary[0].contains("10 practitioners"),
        "{}",
        model.summary[0]
    );
    let md = report::render(&model, Format::Md);
    assert!(md.contains("## Time lost per practitioner"), "{md}");
}
