//! The fleet report: three journals of known truth written by the real
//! generator (`casewatch-bench journals`, seeded), one site made clearly
//! worse; the real `casewatch report` binary reads them by repeated
//! `--journal` and by folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn casewatch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args(args)
        .output()
        .expect("casewatch runs")
}

fn ok(args: &[&str]) -> String {
    succeeded(casewatch(args), args)
}

/// The benchmark tools' binary, which writes journals of known truth.
fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_casewatch-bench"))
        .args(args)
        .output()
        .expect("casewatch-bench runs");
    succeeded(out, args)
}

fn succeeded(out: std::process::Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs and successes as the journal holds them.
fn truth(path: &Path) -> (u64, u64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(
        "SELECT COUNT(*), SUM(outcome IN ('ok', 'slow')) FROM runs",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
    .unwrap()
}

fn generate(dir: &Path) -> Vec<PathBuf> {
    let out = dir.join("journals");
    let text = bench(&[
        "journals",
        "--sites",
        "3",
        "--days",
        "14",
        "--seed",
        "5",
        "--worse",
        "site-02",
        "--end",
        "2026-11-02T00:00:00Z",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(text.contains("journals 3"), "{text}");
    (1..=3)
        .map(|i| out.join(format!("site-{i:02}.db")))
        .collect()
}

fn without_generated_at(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("generated_at");
    v
}

#[test]
fn one_report_over_three_sites_names_the_worse_office_and_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let journals = generate(dir.path());
    let mut args = vec!["report", "--format", "json"];
    for j in &journals {
        args.extend(["--journal", j.to_str().unwrap()]);
    }
    let report: Value = serde_json::from_str(&ok(&args)).unwrap();

    // Per-site tables: every run of every journal, nothing else.
    let sites = report["sites"].as_array().unwrap();
    let names: Vec<&str> = sites.iter().map(|s| s["site"].as_str().unwrap()).collect();
    assert_eq!(names, ["site-01", "site-02", "site-03"]);
    let mut total = (0, 0);
    for (site, path) in sites.iter().zip(&journals) {
        let (runs, successes) = truth(path);
        assert!(runs > 3 * 13 * 288, "{runs} runs in {}", path.display());
        assert_eq!(site["runs"].as_u64(), Some(runs));
        assert_eq!(site["successes"].as_u64(), Some(successes));
        let a = &site["availability"];
        let value = a["value"].as_f64().unwrap();
        assert!((value - successes as f64 / runs as f64).abs() < 1e-12);
        assert!(a["low"].as_f64().unwrap() < value && value < a["high"].as_f64().unwrap());
        assert!(site["p95_ms"]["value"].as_f64().unwrap() > 0.0);
        total = (total.0 + runs, total.1 + successes);
    }
    // Pooled figures: the fleet's own sums, with an interval.
    let pooled = &report["pooled"];
    assert_eq!(pooled["runs"].as_u64(), Some(total.0));
    assert_eq!(pooled["successes"].as_u64(), Some(total.1));
    let p = pooled["availability"]["value"].as_f64().unwrap();
    assert!((p - total.1 as f64 / total.0 as f64).abs() < 1e-12);
    let freezes: u64 = sites.iter().map(|s| s["freezes"].as_u64().unwrap()).sum();
    assert_eq!(pooled["freezes"].as_u64(), Some(freezes));
    // The worse office (six times the errors, freezes and restarts, half
    // as slow again) is named, on availability and latency; the others not.
    assert_eq!(report["worse"], serde_json::json!(["site-02"]));
    let comparisons = report["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 3);
    for c in comparisons {
        let worse_on: Vec<&str> = c["worse_on"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        if c["site"] == "site-02" {
            assert!(worse_on.contains(&"availability"), "{worse_on:?}");
            assert!(worse_on.contains(&"p95 latency"), "{worse_on:?}");
            let d = &c["availability"]["change"];
            assert!(d["high"].as_f64().unwrap() < 0.0, "{d}");
            assert!(c["availability"]["judgement"]["enough_blocks"]
                .as_bool()
                .unwrap());
        } else {
            assert!(worse_on.is_empty(), "{}: {worse_on:?}", c["site"]);
        }
    }

    // A folder gives the same report.
    let folder = journals[0].parent().unwrap().to_str().unwrap();
    let by_folder: Value =
        serde_json::from_str(&ok(&["report", "--format", "json", "--journal", folder])).unwrap();
    assert_eq!(
        without_generated_at(by_folder),
        without_generated_at(report)
    );

    // Markdown and HTML say it in words.
    let md = ok(&["report", "--journal", folder]);
    assert!(md.starts_with("# casewatch fleet evidence report"), "{md}");
    assert!(md.contains("## Is one office worse?"));
    assert!(md.contains("- site-02 is worse than the rest of the fleet on availability"));
    assert!(!md.contains("site-01 is worse") && !md.contains("site-03 is worse"));
    assert!(md.contains("| **fleet (pooled)** |"));
    let html_path = dir.path().join("fleet.html");
    ok(&[
        "report",
        "--journal",
        folder,
        "--out",
        html_path.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("Is one office worse?") && html.contains("site-02 is worse"));
}

#[test]
fn two_journals_of_one_site_over_the_same_time_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("j");
    bench(&[
        "journals",
        "--sites",
        "1",
        "--days",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let one = out.join("site-01.db");
    let copy = dir.path().join("copy.db");
    std::fs::copy(&one, &copy).unwrap();
    let result = casewatch(&[
        "report",
        "--journal",
        one.to_str().unwrap(),
        "--journal",
        copy.to_str().unwrap(),
    ]);
    assert!(!result.status.success());
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(
        err.contains("both hold site site-01 over overlapping times"),
        "{err}"
    );
    // One journal alone is the site's own report, as before.
    let single: Value = serde_json::from_str(&ok(&[
        "report",
        "--format",
        "json",
        "--journal",
        one.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(single["sites"], serde_json::json!(["site-01"]));
    assert!(single["kept_sessions"].is_object());
}
