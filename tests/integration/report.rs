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
use crate::journal::{record_journal, require_tool};

/// Other users keep this many requests in service on the ICS.
const BACKGROUND: f64 = 32.0;
const WORKERS_BEFORE: f64 = 8.0;
const WORKERS_AFTER: f64 = 32.0;
/// Seconds of measurement on each side of the change: with the system's
/// calendar 28,800 times the wall clock (a day every 3 s), forty days a side.
/// On a quiet machine each day is a unit; on a loaded one the machine's own
/// hold-ups last seconds and make neighbouring days alike, so the report
/// rightly groups them into units of 2 or 4 days (6 or 12 s): still ten or
/// more units a side, over the seven the minimum-evidence rule asks for.
const SIDE: u64 = 120;
const SCALE: f64 = 28_800.0;

/// The simulator's own truth of the p95 change: pages are log-normal with
/// median 30 ms and p99 120 ms, slowed by (load / workers) when the load,
/// other users' plus the agent's one request, is above the workers.
fn true_p95_change_ms() -> f64 {
    let (median, p99) = (30.0_f64, 120.0_f64);
    let sigma = (p99 / median).ln() / 2.326_347_874;
    let p95 = median * (1.644_853_627 * sigma).exp();
    let factor = |workers: f64| ((BACKGROUND + 1.0) / workers).max(1.0);
    p95 * (factor(WORKERS_AFTER) - factor(WORKERS_BEFORE))
}

/// The simulator with a known capacity change: the report's interval for
/// the p95 change covers the effect the simulator's model gives, it says
/// "faster", and it matches blocks like with like.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_change_is_measured_with_an_interval_that_covers_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut profile = SimProfile::quiet();
    profile.latency.page = LatencySpec {
        median: Duration::from_millis(30),
        p99: Duration::from_millis(120),
    };
    profile.capacity.ics.workers = WORKERS_BEFORE as u32;
    profile.load_cycle = Some(casewatch::sim::LoadCycle {
        busy_hours: "08:00-18:00".into(),
        busy: BACKGROUND,
        quiet: BACKGROUND,
        weekend: BACKGROUND,
    });
    let sim = start_sim(profile).await;
    let change_at = SystemTime::now() + Duration::from_secs(SIDE + 1);
    let yaml = format!(
        r#"site: test-site
agent:
  calendar_scale: {SCALE}
targets:{}
journeys:
  - name: lookup
    target: ics
    login: false
    schedule: {{ interval: 400ms }}
    steps:
      - {{ name: page, path: /login }}
journal:
  path: {}
changes:
  - name: extra_capacity
    at: {}
    description: ICS workers raised from 8 to 32.
"#,
        ics_target(""),
        path.display(),
        humantime::format_rfc3339_millis(change_at)
    );
    let agent = start_agent(load(&yaml, &sim)).await;
    tokio::time::sleep(
        change_at
            .duration_since(SystemTime::now())
            .unwrap_or_default(),
    )
    .await;
    sim.control(
        "capacity",
        json!({ "workers": WORKERS_AFTER as u32, "system": "ics" }),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(SIDE + 1)).await;
    agent.stop().await;
    let truth = sim.truth().await;
    sim.stop().await;
    assert!(
        truth["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "capacity"),
        "the truth log has the capacity change"
    );

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
    let change = model
        .changes
        .iter()
        .find(|c| c.name == "extra_capacity")
        .expect("the change is in the report");
    assert_eq!(change.status, "compared", "{change:?}");
    let evidence = change.evidence.as_ref().unwrap();
    let truth = true_p95_change_ms();
    let d = &evidence.p95_ms.change;
    eprintln!(
        "p95 change {d:?}, truth {truth:.1} ms; {} and {} units of {} s",
        evidence.units_before, evidence.units_after, evidence.unit_seconds
    );
    assert!(
        evidence.units_before >= 7 && evidence.units_after >= 7,
        "{evidence:?}"
    );
    // A 95% interval misses the truth one run in twenty by design, and a
    // loaded machine makes each run a fresh draw. Each side is widened by
    // 3.29/1.96 to the 99.9% level, so the test fails on an interval that
    // is biased or far too narrow, not on chance.
    let (Some(value), Some(low), Some(high)) = (d.value, d.low, d.high) else {
        panic!("no interval for the p95 change: {d:?}");
    };
    let widen = 3.29 / 1.96;
    let (wide_low, wide_high) = (
        value - widen * (value - low),
        value + widen * (high - value),
    );
    assert!(
        wide_low <= truth && truth <= wide_high,
        "the interval {d:?}, at 99.9% {wide_low:.1} to {wide_high:.1} ms, misses the truth {truth:.1} ms"
    );
    assert_eq!(
        evidence.p95_ms.judgement.direction,
        Some(casewatch::report::evidence::Direction::Lower)
    );
    assert!(d.method.contains("clustered"), "{}", d.method);
    assert!(
        change.findings[0].starts_with("faster after the change"),
        "{:?}",
        change.findings
    );
    // Every format carries the comparison.
    let md = report::render(&model, Format::Md);
    assert!(md.contains("### extra_capacity"), "{md}");
    assert!(md.contains("faster after the change"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&report::render(&model, Format::Json)).unwrap();
    assert_eq!(json["changes"][0]["status"], "compared");
    assert!(json["changes"][0]["evidence"]["p95_ms"]["change"]["low"].is_number());
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
