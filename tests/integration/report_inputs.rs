//! What the report is given can be anything: it opens journals read-only
//! and never changes them, refuses a file that is not a casewatch journal
//! by naming what it is, and answers any stored time with a clear error,
//! never a panic.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn report(journal: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args(["report", "--format", "json", "--journal"])
        .arg(journal)
        .output()
        .expect("casewatch runs")
}

fn refused(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Every file in `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn files_that_are_not_journals_are_refused_and_left_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("inventory.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE stock (item TEXT, count INTEGER); INSERT INTO stock VALUES ('chairs', 12);")
        .unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("notes.db");
    std::fs::write(
        &text,
        "not a database at all, just some words that run on for a while\n".repeat(20),
    )
    .unwrap();
    let before = snapshot(dir.path());

    let e = refused(&report(&other));
    assert!(e.contains("inventory.db is not a casewatch journal"), "{e}");
    assert!(e.contains("tables stock"), "{e}");
    let e = refused(&report(&empty));
    assert!(
        e.contains("empty.db is not a casewatch journal: it is an empty file"),
        "{e}"
    );
    let e = refused(&report(&text));
    assert!(
        e.contains("notes.db is not a casewatch journal: it is not an SQLite database"),
        "{e}"
    );
    let folder = tempfile::tempdir().unwrap();
    let e = refused(&report(folder.path()));
    assert!(e.contains("holds no journal"), "{e}");
    // Nothing was migrated, switched to WAL, or created beside them.
    assert_eq!(snapshot(dir.path()), before);
}

/// A journal with one run, and that run's start rewritten to `start`.
fn journal_with_start(dir: &Path, start: f64) -> std::path::PathBuf {
    let path = dir.join(format!("journal-{start}.db"));
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    casewatch::journal::schema::configure(&conn).unwrap();
    casewatch::journal::schema::migrate(&mut conn).unwrap();
    conn.execute_batch(&format!(
        "INSERT INTO meta (key, value) VALUES ('site', 'test-site');
         INSERT INTO runs (site, target, journey, kind, intended_start, actual_start, duration, outcome, failed_step, report_same, report_any)
         VALUES ('test-site', 'ics', 'lookup', 'interactive', 1780272000, 1780272000, 0.2, 'ok', NULL, 0, 0);
         INSERT INTO runs (site, target, journey, kind, intended_start, actual_start, duration, outcome, failed_step, report_same, report_any)
         VALUES ('test-site', 'ics', 'lookup', 'interactive', {start}, {start}, 0.2, 'ok', NULL, 0, 0);"
    ))
    .unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    path
}

#[test]
fn times_out_of_range_get_a_clear_error_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    // A plausible journal reports; how long that takes on this machine now
    // is the measure for the refusals below.
    let started = std::time::Instant::now();
    let ok = report(&journal_with_start(dir.path(), 1_780_275_600.0));
    let plausible = started.elapsed();
    // Milliseconds stored as seconds, and a time past any calendar: refused
    // without walking the calendar up to them (which would take days), in
    // no more than 30 s or ten plausible reports, whichever is longer.
    let limit = Duration::from_secs(30).max(plausible * 10);
    for start in [1.7e12, 9.3e18] {
        let path = journal_with_start(dir.path(), start);
        let started = std::time::Instant::now();
        let e = refused(&report(&path));
        assert!(e.contains("not times the agent wrote"), "{e}");
        assert!(
            started.elapsed() < limit,
            "took {:?} ({limit:?} allowed)",
            started.elapsed()
        );
    }
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn a_journal_older_than_the_report_reads_is_named_with_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_with_start(dir.path(), 1_780_275_600.0);
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 0)
        .unwrap();
    let e = refused(&report(&path));
    assert!(e.contains("has schema version 0"), "{e}");
    assert!(!e.contains("CREATE TABLE"), "no SQL in the message: {e}");
}
