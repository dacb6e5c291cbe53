//! The durable journal: written by a real agent against the simulator,
//! survives `kill -9`, exports OpenMetrics that promtool accepts and
//! interval logs that parse back.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use casewatch::journal::read::{JournalReader, Window};
use casewatch::report::export;
use casewatch::sim::{LatencySpec, SimProfile};

use crate::harness::*;

/// A real component a test needs. Missing: the test fails under CI=true and
/// prints a loud SKIP line (and returns `None`) elsewhere.
pub fn require_tool(name: &str, candidates: &[&str]) -> Option<PathBuf> {
    for candidate in candidates {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {candidate}"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        if let Some(path) = found {
            return Some(path);
        }
    }
    let why = format!(
        "{name} not found (tried {}); scripts/test.sh installs it",
        candidates.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}");
    }
    eprintln!("\n==================== SKIP: {why} ====================\n");
    None
}

/// A config whose journal is at `path`: one interactive journey and one
/// report journey on the ICS, with `changes` spliced in.
pub fn journal_config(path: &Path, changes: &str) -> String {
    format!(
        r#"site: test-site
agent:
  age_bands: [2s, 4s]
targets:{}
journeys:
  - name: lookup
    target: ics
    login: false
    schedule: {{ interval: 250ms }}
    steps:
      - {{ name: first_page, path: /login }}
      - {{ name: second_page, path: /login }}
  - name: case_api
    target: ics
    schedule: {{ interval: 1s }}
    steps:
      - name: api_search
        path: /api/cases
        query: {{ q: Jones }}
        assert: {{ status: [200] }}
  - name: caseload_report
    target: ics
    kind: report
    schedule: {{ interval: 2s }}
    steps:
      - {{ name: run_report, path: /reports/caseload-summary }}
journal:
  path: {}
  keep_successes: 30d
  keep_failures: 60d
{changes}"#,
        ics_target(""),
        path.display()
    )
}

/// Runs the agent against a quiet simulator until the journal has at least
/// `runs` runs, then stops it (closing the journal).
pub async fn record_journal(path: &Path, runs: usize) {
    let sim = start_sim(SimProfile::quiet()).await;
    let agent = start_agent(load(&journal_config(path, ""), &sim)).await;
    wait_for(Duration::from_secs(30), "runs to be journaled", || async {
        let n = JournalReader::open(path)
            .ok()
            .and_then(|r| r.runs(Window::ALL).ok())
            .map_or(0, |r| r.len());
        (n >= runs).then_some(())
    })
    .await;
    agent.stop().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_holds_runs_steps_sessions_histograms_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    // Reports take long enough for interactive runs to overlap them.
    let mut profile = SimProfile::quiet();
    profile.latency.report = LatencySpec {
        median: Duration::from_millis(700),
        p99: Duration::from_millis(900),
    };
    let sim = start_sim(profile).await;
    let agent = start_agent(load(&journal_config(&path, ""), &sim)).await;
    let text = wait_for(Duration::from_secs(20), "journal metrics", || async {
        let text = agent.metrics().await;
        text.contains("casewatch_journal_queue_depth")
            .then_some(text)
    })
    .await;
    assert_eq!(
        metric(&text, "casewatch_journal_write_errors_total", &[]),
        0.0
    );
    assert_eq!(metric(&text, "casewatch_journal_dropped_total", &[]), 0.0);
    // Runs enough to check, counted rather than slept for (a loaded
    // machine runs fewer in a given time): eight, two of them reports.
    wait_for(
        Duration::from_secs(60),
        "8 runs, 2 of them reports",
        || async {
            let text = agent.metrics().await;
            let runs =
                |labels: &[(&str, &str)]| metric(&text, "casewatch_journey_runs_total", labels);
            (runs(&[]) >= 8.0 && runs(&[("journey", "caseload_report")]) >= 2.0).then_some(())
        },
    )
    .await;
    agent.stop().await;
    sim.stop().await;

    let reader = JournalReader::open(&path).expect("journal opens");
    let runs = reader.runs(Window::ALL).unwrap();
    assert!(runs.len() >= 8, "{} runs", runs.len());
    assert!(runs.iter().all(|r| r.site == "test-site"));
    assert!(runs
        .iter()
        .any(|r| r.journey == "caseload_report" && r.kind == "report"));
    assert!(
        runs.iter()
            .any(|r| r.journey == "lookup" && r.kind == "interactive" && r.report_same),
        "some interactive run overlapped a report"
    );
    let steps = reader.steps(Window::ALL).unwrap();
    assert!(steps
        .iter()
        .any(|s| s.step == "login_submit" && s.phase == "login"));
    assert!(steps
        .iter()
        .any(|s| s.step == "api_search" && s.status == Some(200)));
    let spans = reader.spans(Window::ALL).unwrap();
    assert!(
        spans.iter().any(|s| s.end_cause.is_some()),
        "ended sessions are journaled"
    );
    let histograms = reader.histograms(Window::ALL).unwrap();
    let first_page: u64 = histograms
        .iter()
        .filter(|h| h.step == "first_page")
        .map(|h| h.histogram.len())
        .sum();
    let first_page_steps = steps.iter().filter(|s| s.step == "first_page").count() as u64;
    assert_eq!(first_page, first_page_steps, "every step is in a histogram");
    assert_eq!(reader.meta("site").unwrap().as_deref(), Some("test-site"));
}

#[test]
fn a_journal_killed_mid_write_reopens_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args(["demo", "--duration", "120s", "--listen", "127.0.0.1:0"])
        .arg("--journal")
        .arg(&path)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("casewatch demo starts");
    // Wait until the writer has committed runs, then kill it while it writes.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let runs = JournalReader::open(&path)
            .ok()
            .and_then(|r| r.runs(Window::ALL).ok())
            .map_or(0, |r| r.len());
        if runs >= 5 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo journaled no runs"
        );
        assert!(child.try_wait().unwrap().is_none(), "the demo exited early");
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().expect("SIGKILL"); // kill -9 on Unix
    child.wait().unwrap();
    assert!(
        dir.path().join("killed.db-wal").exists(),
        "the writer was mid-stream (WAL not checkpointed)"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args(["report", "--format", "json", "--journal"])
        .arg(&path)
        .output()
        .expect("casewatch report runs");
    assert!(
        output.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the report is JSON");
    assert_eq!(report["window"]["has_data"], true, "{report}");
    assert!(report["availability"]["journeys"].as_array().unwrap().len() >= 2);
    // The file also reopens for writing (WAL recovered).
    let reader = JournalReader::open(&path).expect("reopens");
    assert!(reader.runs(Window::ALL).unwrap().len() >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_openmetrics_backfills_with_promtool() {
    let Some(promtool) = require_tool("promtool", &["promtool"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    record_journal(&path, 12).await;
    let om = dir.path().join("journal.om");
    let output = Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args(["export", "--format", "openmetrics", "--journal"])
        .arg(&path)
        .arg("--out")
        .arg(&om)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&om).unwrap();
    assert!(text.ends_with("# EOF\n"));
    assert!(text.contains("# TYPE casewatch_journey_runs counter"));
    assert!(text.contains("casewatch_journey_runs_total{site=\"test-site\",target=\"ics\",journey=\"lookup\",outcome=\"ok\"}"));
    assert!(text.contains("casewatch_journal_step_duration_p95_seconds{"));

    let blocks = dir.path().join("blocks");
    let output = Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&blocks)
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool rejected the export:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let made = std::fs::read_dir(&blocks)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("meta.json").exists())
        .count();
    assert!(made >= 1, "promtool wrote no block");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_hlog_reads_back_with_the_interval_log_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    record_journal(&path, 6).await;
    let reader = JournalReader::open(&path).unwrap();
    let bytes = export::hlog(&reader, Window::ALL).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("#[StartTime: "), "{text}");
    let mut histograms = 0;
    let mut total = 0;
    for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&bytes) {
        if let hdrhistogram::serialization::interval_log::LogEntry::Interval(h) =
            entry.expect("log parses")
        {
            assert!(h.tag().is_some_and(|t| t.as_str().starts_with("ics/")));
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(h.encoded_histogram())
                .expect("base64");
            let hist: hdrhistogram::Histogram<u64> =
                hdrhistogram::serialization::Deserializer::new()
                    .deserialize(&mut decoded.as_slice())
                    .expect("histogram decodes");
            total += hist.len();
            histograms += 1;
        }
    }
    assert!(histograms >= 1);
    let steps = reader.steps(Window::ALL).unwrap().len() as u64;
    assert_eq!(total, steps, "every journaled step is in the log");
}
