//! The demo's seeded history: the README's report on it answers the
//! board's three questions with intervals, and each answer agrees with the
//! truth the history was made from.

use serde_json::Value;

use crate::report_scale::casewatch;
use casewatch::bench::history::History;

/// The named change's evidence (the whole site) and its ICS evidence.
fn change<'a>(report: &'a Value, name: &str) -> (&'a Value, &'a Value) {
    let c = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no change {name}"));
    let ics = c["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "ics")
        .unwrap();
    (&c["evidence"], &ics["evidence"])
}

fn covers(estimate: &Value, truth: f64) -> bool {
    estimate["low"].as_f64().unwrap() <= truth && truth <= estimate["high"].as_f64().unwrap()
}

#[test]
fn the_seeded_history_answers_the_boards_three_questions_as_the_truth_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    // 2026-11-30T00:00Z: a fixed calendar, so the test is the same each run.
    casewatch::bench::history::write(&path, 1_795_996_800.0).unwrap();
    let report: Value = serde_json::from_str(&casewatch(&[
        "report",
        "--journal",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();

    // Did the extra capacity help? Freezes a quarter as often, steps 0.8
    // times as long.
    let (capacity, _) = change(&report, "extra_server_capacity");
    let freezes = &capacity["freeze_rate"];
    assert_eq!(freezes["judgement"]["direction"], "lower", "{freezes:#}");
    assert!(covers(&freezes["change"], 0.25), "{freezes:#}");
    let p95 = &capacity["p95_ms"];
    assert_eq!(p95["judgement"]["direction"], "lower", "{p95:#}");
    let ratio = p95["after"]["value"].as_f64().unwrap() / p95["before"]["value"].as_f64().unwrap();
    assert!(
        (0.72..0.88).contains(&ratio),
        "p95 after/before {ratio}, truth 0.8"
    );
    assert_eq!(
        capacity["logout_rate"]["judgement"]["direction"],
        Value::Null
    );

    // Did moving the reports lighten the ICS? Its steps faster, freezes
    // unchanged.
    let (moved, ics) = change(&report, "reporting_moved_to_css");
    assert_eq!(ics["p95_ms"]["judgement"]["direction"], "lower", "{ics:#}");
    assert_eq!(moved["freeze_rate"]["judgement"]["direction"], Value::Null);
    // Before the move, the ICS's steps were slower while a report ran on it.
    let same = report["reporting_load"]["interactive"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target"] == "ics" && r["scope"] == "same_system")
        .unwrap();
    assert!(
        same["with_reports"]["p95_ms"]["value"].as_f64().unwrap()
            > same["without_reports"]["p95_ms"]["value"].as_f64().unwrap(),
        "{same:#}"
    );

    // Do sessions older than two hours drop more often?
    let rule = &report["sessions"]["rule"];
    assert_eq!(rule["verdict"], "older_more", "{rule:#}");
    assert!(
        covers(&rule["hazard_ratio"], History::older_hazard_ratio()),
        "{rule:#}"
    );

    // The truth is printed beside the answers.
    let summary = report["summary"].as_array().unwrap();
    assert!(
        summary
            .last()
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("Seeded truth"),
        "{summary:#?}"
    );
}

#[test]
fn the_demo_writes_the_seeded_history_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("h.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .current_dir(dir.path())
        .args([
            "demo",
            "--duration",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--history",
            "h.db",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("casewatch report --journal h.db"),
        "{stdout}"
    );
    let md = casewatch(&[
        "report",
        "--journal",
        history.to_str().unwrap(),
        "--format",
        "md",
    ]);
    assert!(md.contains("Seeded truth"), "{md}");
}
