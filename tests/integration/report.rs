//! The board's evidence report: built from a journal a real agent wrote
//! against the simulator; before/after a change injected through the control
//! API; rendered as HTML that headless Chromium displays.

use std::process::Command;
use std::time::{Duration, SystemTime};

use casewatch::journal::read::JournalReader;
use casewatch::report::{self, Format, ReportOptions};
use casewatch::sim::{LatencySpec, SimProfile};
use serde_json::json;

use crate::harness::*;
use crate::journal::{journal_config, record_journal, require_tool};

const EXTRA_MS: u64 = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_change_mid_run_shows_in_the_before_after_p95_with_a_covering_interval() {
    // A 95% interval misses the truth one time in twenty by design, so one
    // miss gets a second, independent experiment (both missing: 1 in 400).
    if !latency_change_experiment().await {
        eprintln!("the 95% interval missed the true effect once; repeating the experiment");
        assert!(
            latency_change_experiment().await,
            "the 95% interval missed the injected {EXTRA_MS} ms twice running"
        );
    }
}

/// Runs the agent across an injected latency change and checks the report;
/// returns whether the p95 difference's interval covered the true effect.
async fn latency_change_experiment() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    // Pages vary (median 30 ms, p99 120 ms) so the p95 has real sampling noise.
    let mut profile = SimProfile::quiet();
    profile.latency.page = LatencySpec {
        median: Duration::from_millis(30),
        p99: Duration::from_millis(120),
    };
    let sim = start_sim(profile).await;
    let change_at = SystemTime::now() + Duration::from_secs(16);
    let changes = format!(
        "changes:\n  - name: extra_latency\n    at: {}\n    description: The ICS got {EXTRA_MS} ms slower per request.\n",
        humantime::format_rfc3339_millis(change_at)
    );
    let agent = start_agent(load(&journal_config(&path, &changes), &sim)).await;
    tokio::time::sleep(
        change_at
            .duration_since(SystemTime::now())
            .unwrap_or_default(),
    )
    .await;
    sim.control("latency", json!({ "extra_ms": EXTRA_MS, "system": "ics" }))
        .await;
    tokio::time::sleep(Duration::from_secs(16)).await;
    agent.stop().await;
    let truth = sim.truth().await;
    sim.stop().await;
    let injected = truth["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "latency")
        .expect("the truth log has the latency change");
    assert_eq!(injected["extra_ms"], EXTRA_MS, "{injected}");

    let reader = JournalReader::open(&path).unwrap();
    let model = report::build(
        &reader,
        &ReportOptions {
            journal: path.display().to_string(),
            from: None,
            to: None,
            rule_age: None,
            now: SystemTime::now(),
        },
    )
    .unwrap();
    let change = model
        .changes
        .iter()
        .find(|c| c.name == "extra_latency")
        .expect("the change is in the report");
    assert_eq!(change.status, "compared", "{change:?}");
    let (before, after) = (
        change.before.as_ref().unwrap(),
        change.after.as_ref().unwrap(),
    );
    assert!(before.steps >= 30 && after.steps >= 30, "{change:?}");
    let d = &change.p95_difference_ms;
    eprintln!(
        "p95 before {:?}, after {:?}, difference {d:?}",
        before.p95_ms.value, after.p95_ms.value
    );
    assert!(
        d.value.unwrap() > 0.0,
        "p95 went up after the change: {d:?}"
    );
    assert!(d.method.contains("bootstrap"));
    // Every format carries the comparison.
    let md = report::render(&model, Format::Md);
    assert!(md.contains("### extra_latency"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&report::render(&model, Format::Json)).unwrap();
    assert_eq!(json["changes"][0]["status"], "compared");
    assert!(json["changes"][0]["p95_difference_ms"]["low"].is_number());
    d.covers(EXTRA_MS as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_renders_in_headless_chromium() {
    let Some(chromium) = require_tool(
        "chromium",
        &["chromium", "chromium-browser", "google-chrome"],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    record_journal(&path, 12).await;
    let html_path = dir.path().join("report.html");
    let output = Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args(["report", "--journal"])
        .arg(&path)
        .arg("--out")
        .arg(&html_path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg"), "charts are inline SVG");
    assert!(!html.contains("<script"), "no scripts");
    for fetch in ["src=\"http", "href=\"http", "<link", "url(http", "@import"] {
        assert!(!html.contains(fetch), "nothing is fetched ({fetch})");
    }

    let screenshot = dir.path().join("report.png");
    let profile = dir.path().join("chromium-profile");
    let url = format!("file://{}", html_path.display());
    let run = |extra: &[&str]| {
        Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium runs")
    };
    let shot = run(&[
        &format!("--screenshot={}", screenshot.display()),
        "--window-size=1280,4000",
    ]);
    let stderr = String::from_utf8_lossy(&shot.stderr);
    assert!(shot.status.success(), "chromium failed: {stderr}");
    assert!(
        !stderr.contains("Uncaught") && !stderr.contains("ERROR:CONSOLE"),
        "console errors: {stderr}"
    );
    let size = std::fs::metadata(&screenshot)
        .expect("the screenshot exists")
        .len();
    assert!(size > 20_000, "screenshot is {size} bytes");
    let png = std::fs::read(&screenshot).unwrap();
    assert_eq!(&png[1..4], b"PNG");

    let dom = run(&["--dump-dom"]);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.status.success());
    for heading in [
        "1. Availability",
        "2. How long each step takes",
        "3. Freezes",
        "4. Forced logouts",
        "5. Do older sessions drop more often?",
        "6. Reporting load",
        "7. Before and after each change",
    ] {
        assert!(dom_text.contains(heading), "{heading} missing from the DOM");
    }
}
