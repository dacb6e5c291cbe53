//! The board's report over a month of one office at production rates, in
//! bounded memory; and the same report from the journal after `casewatch
//! journal compact` folded its older hours into rollups, equal figure for
//! figure.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A report's peak resident memory may not pass this (the report of a
/// year stays far below it; rows held in memory would not).
const RSS_BOUND_KIB: u64 = 128 * 1024;

pub fn casewatch(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args(args)
        .output()
        .expect("casewatch runs");
    assert!(
        out.status.success(),
        "casewatch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Peak resident memory (KiB) of `casewatch args`, from GNU time.
fn peak_rss(args: &[&str]) -> Option<u64> {
    let time = crate::journal::require_tool("GNU time", &["/usr/bin/time"])?;
    let out = Command::new(time)
        .args(["-f", "peak %M"])
        .arg(env!("CARGO_BIN_EXE_casewatch"))
        .args(args)
        .output()
        .expect("time runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().rev().find(|l| l.starts_with("peak "))?;
    line["peak ".len()..].trim().parse().ok()
}

fn thirty_days(dir: &Path) -> PathBuf {
    let spec = casewatch::bench::journals::FleetSpec {
        sites: 1,
        days: 30.0,
        out: dir.to_path_buf(),
        seed: 20_261_205,
        // 2026-11-30T00:00Z: weeks of weekdays and weekends.
        end: 1_795_996_800.0,
        worse: Vec::new(),
        histograms: true,
        day_sigma: 0.05,
        change: true,
        latency_after: 1.0,
        history: None,
    };
    casewatch::bench::journals::write_fleet(&spec)
        .unwrap()
        .remove(0)
}

fn without_run_details(mut v: Value) -> Value {
    let o = v.as_object_mut().unwrap();
    o.remove("generated_at");
    o.remove("generated");
    o.remove("journal");
    o["freezes"]
        .as_object_mut()
        .unwrap()
        .remove("evidence_folder");
    v
}

#[test]
fn a_month_reports_in_bounded_memory_and_a_compacted_journal_reports_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let journal = thirty_days(dir.path());
    let path = journal.to_str().unwrap();

    // Memory: what the report holds is tallies per hour, not rows.
    if let Some(kib) = peak_rss(&["report", "--journal", path, "--format", "json"]) {
        eprintln!("peak RSS of a 30-day report: {kib} KiB");
        assert!(kib < RSS_BOUND_KIB, "{kib} KiB for a 30-day journal");
    }

    // Some stalls of the agent, in hours that will be folded and in hours
    // that stay raw: each must count once either way.
    let db = rusqlite::Connection::open(&journal).unwrap();
    for started in [1_794_000_000.5, 1_794_003_700.0, 1_795_900_000.0] {
        db.execute(
            "INSERT INTO agent_stalls (site, started, length) VALUES ('site-01', ?1, 12.5)",
            [started],
        )
        .unwrap();
    }
    drop(db);

    // Compaction: the same figures, for the whole window and month by month.
    let compacted = dir.path().join("compacted.db");
    std::fs::copy(&journal, &compacted).unwrap();
    let compacted = compacted.to_str().unwrap();
    let before: u64 = std::fs::metadata(compacted).unwrap().len();
    casewatch(&["journal", "compact", compacted, "--older-than", "10d"]);
    let after: u64 = std::fs::metadata(compacted).unwrap().len();
    // VACUUM goes through the write-ahead log; it must not stay behind.
    let wal = std::fs::metadata(format!("{compacted}-wal")).map_or(0, |m| m.len());
    assert_eq!(
        wal, 0,
        "the write-ahead log keeps {wal} bytes after compacting"
    );
    assert!(
        after * 2 < before,
        "{before} bytes, {after} after compacting"
    );
    for extra in [
        &[][..],
        &["--period", "month"][..],
        &[
            "--from",
            "2026-11-08T00:00:00Z",
            "--to",
            "2026-11-22T00:00:00Z",
        ][..],
    ] {
        let report = |journal: &str| -> Value {
            let mut args = vec!["report", "--format", "json", "--journal", journal];
            args.extend(extra);
            serde_json::from_str(&casewatch(&args)).unwrap()
        };
        let (original, folded) = (report(path), report(compacted));
        assert!(original["window"]["has_data"].as_bool().unwrap());
        assert_eq!(
            without_run_details(original),
            without_run_details(folded),
            "{extra:?}"
        );
    }
    // Compacting again changes nothing; the journal still reports.
    casewatch(&["journal", "compact", compacted, "--older-than", "10d"]);
    let again: Value = serde_json::from_str(&casewatch(&[
        "report",
        "--format",
        "json",
        "--journal",
        compacted,
    ]))
    .unwrap();
    let first: Value = serde_json::from_str(&casewatch(&[
        "report",
        "--format",
        "json",
        "--journal",
        path,
    ]))
    .unwrap();
    assert_eq!(without_run_details(again), without_run_details(first));
}
