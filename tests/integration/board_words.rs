//! What a board member reads: journals written row by row with a known
//! truth, and the demo itself, reported and read back.
//!
//! - a forced logout is seen when the answer that showed it arrived, in
//!   journals with the moment and in older ones without it;
//! - a system watched only by kept sessions still has a freeze rate, with
//!   its range once enough days stand behind it;
//! - failed work costs the work done again;
//! - no rendered report, short or long, reads "NaN", "()", "1 forced
//!   logouts", "3days" or a range the wrong way round, and a two-minute
//!   demo states no range the evidence rule would refuse.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use casewatch::journal::read::JournalReader;
use casewatch::report::{self, Format, Report, ReportOptions};
use regex::Regex;
use rusqlite::{params, Connection};

/// Monday 2026-06-01 00:00 UTC.
const MONDAY: f64 = 1_780_272_000.0;
const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;

/// A journal at `path` with its meta written, ready for rows.
fn journal(path: &Path) -> Connection {
    let mut conn = Connection::open(path).unwrap();
    casewatch::journal::schema::configure(&conn).unwrap();
    casewatch::journal::schema::migrate(&mut conn).unwrap();
    conn.execute_batch(
        "INSERT INTO meta (key, value) VALUES ('site', 'test-site');
         INSERT INTO meta (key, value) VALUES ('calendar_scale', '1');",
    )
    .unwrap();
    conn
}

/// A run of `journey` on `target` at `start`, its steps (name, phase,
/// seconds, outcome) one after another.
fn run(
    conn: &Connection,
    target: &str,
    journey: &str,
    start: f64,
    steps: &[(&str, &str, f64, &str)],
) {
    let duration: f64 = steps.iter().map(|s| s.2).sum();
    let outcome = steps
        .iter()
        .find(|s| !matches!(s.3, "ok" | "slow"))
        .map_or("ok", |s| s.3);
    conn.execute(
        "INSERT INTO runs (site, target, journey, kind, intended_start, actual_start, duration, outcome, failed_step, report_same, report_any)
         VALUES ('test-site', ?1, ?2, 'interactive', ?3, ?3, ?4, ?5, NULL, 0, 0)",
        params![target, journey, start, duration, outcome],
    )
    .unwrap();
    let id = conn.last_insert_rowid();
    let mut at = start;
    for (seq, (step, phase, seconds, outcome)) in steps.iter().enumerate() {
        conn.execute(
            "INSERT INTO steps (run_id, seq, step, phase, sent_at, duration, outcome, bytes, censored)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 100, 0)",
            params![id, seq as i64, step, phase, at, seconds, outcome],
        )
        .unwrap();
        at += seconds;
    }
}

/// A kept session's keep-alive check on `target` at `at`.
fn kept_check(conn: &Connection, target: &str, at: f64) {
    conn.execute(
        "INSERT INTO kept_checks (site, target, slot, activity, seq, step, sent_at, duration, outcome, censored, state)
         VALUES ('test-site', ?1, 0, 'check', 0, 'home', ?2, 0.2, 'ok', 0, 'alive')",
        params![target, at],
    )
    .unwrap();
}

fn freeze(conn: &Connection, target: &str, at: f64, seconds: f64) {
    conn.execute(
        "INSERT INTO freezes (site, target, started, length, censored) VALUES ('test-site', ?1, ?2, ?3, 0)",
        params![target, at, seconds],
    )
    .unwrap();
}

fn build(path: &Path, to: Option<f64>) -> Report {
    let reader = JournalReader::open(path).unwrap();
    report::build(
        &reader,
        &ReportOptions {
            journal: path.display().to_string(),
            from: None,
            to: to.map(|t| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(t)),
            rule_age: None,
            period: Default::default(),
            now: SystemTime::now(),
        },
        |_| {},
    )
    .unwrap()
}

/// Visible text: tags, styles, charts and link targets left out, as a
/// reader would see the page or the Markdown.
fn visible(text: &str) -> String {
    let cut = |text: &str, pattern: &str| {
        Regex::new(pattern)
            .unwrap()
            .replace_all(text, " ")
            .to_string()
    };
    let text = cut(
        text,
        r"(?s)<style.*?</style>|<svg.*?</svg>|<code>.*?</code>",
    );
    let text = cut(&text, r"<[^>]*>");
    let text = cut(&text, r"\]\([^)]*\)|`[^`]*`");
    text.replace("&nbsp;", " ")
}

/// The glitches a board member once read, none of which may come back.
fn assert_reads_cleanly(rendered: &str, what: &str) {
    let text = visible(rendered);
    for bad in ["NaN", "()", "-0.0", "inf"] {
        assert!(!text.contains(bad), "{what} reads {bad:?}:\n{text}");
    }
    let singular = Regex::new(
        r"(^|[^\d.,])1 (forced logouts|runs|times|days|hours|sessions|freezes|steps|working hours|independent days|periods|failed runs)\b",
    )
    .unwrap();
    assert!(
        !singular.is_match(&text),
        "{what}: {:?}",
        singular.find(&text).map(|m| m.as_str())
    );
    // "3days", "2238years": a digit runs into a word. p50/p95/p99 are names.
    let joined = Regex::new(r"\d[A-Za-z]").unwrap();
    let percentile = Regex::new(r"^p\d\d$").unwrap();
    for word in text.split_whitespace() {
        let word = word.trim_matches(|c: char| !c.is_alphanumeric());
        assert!(
            !joined.is_match(word) || percentile.is_match(word),
            "{what}: a number runs into a word: {word:?}"
        );
    }
    let between = Regex::new(r"between (-?[\d,]+(?:\.\d+)?)\D+?and (-?[\d,]+(?:\.\d+)?)").unwrap();
    for c in between.captures_iter(&text) {
        let n = |i: usize| c[i].replace(',', "").parse::<f64>().unwrap();
        assert!(
            n(1) <= n(2),
            "{what}: a range the wrong way round: {}",
            &c[0]
        );
    }
}

fn assert_all_formats_read_cleanly(r: &Report, what: &str) {
    for format in [Format::Html, Format::Md] {
        let text = report::render(r, format);
        assert_reads_cleanly(&text, &format!("{what} ({format:?})"));
        assert!(text.contains("Glossary"), "{what}: a glossary");
    }
}

#[test]
fn a_forced_logout_is_seen_when_the_answer_that_showed_it_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let conn = journal(&path);
    let t0 = MONDAY + 9.0 * HOUR;
    run(
        &conn,
        "ics",
        "lookup",
        t0,
        &[("page", "journey", 0.2, "ok")],
    );
    kept_check(&conn, "ics", t0 + 30.0);
    // The login was sent at t0 + 8.5 and completed at t0 + 10 (1.5 s);
    // known alive at 60 s of age; the answer showing the loss arrived at
    // t0 + 100, 91.5 s after the login's send.
    let login = t0 + 10.0;
    conn.execute(
        "INSERT INTO session_spans (site, target, origin, login_at, age_from, age_to, end_cause, dropped, origin_kind, slot, seen_age, detail, seen_at)
         VALUES ('test-site', 'ics', '', ?1, 0, 60, 'redirect', 1, 'kept', 0, 91.5, '', ?2)",
        params![login, t0 + 100.0],
    )
    .unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let r = build(&path, None);
    let e = &r.forced_logouts.events[0];
    // Before: login_at + seen_age, 1.5 s late.
    assert_eq!(e.seen_at, t0 + 100.0, "{e:?}");
    assert_eq!(e.alive_at, login + 60.0);
    assert_eq!((e.alive_age_seconds, e.seen_age_seconds), (60.0, 91.5));
    assert_reads_cleanly(&report::render(&r, Format::Md), "seen");

    // A journal from before the column: read as before.
    conn.execute_batch(
        "ALTER TABLE session_spans DROP COLUMN seen_at; PRAGMA user_version = 7; PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .unwrap();
    drop(conn);
    let r = build(&path, None);
    assert_eq!(r.forced_logouts.events[0].seen_at, login + 91.5);
}

/// Eight days of a CSS journey every hour, and an ICS watched only by a
/// kept session's checks every ten minutes, with a freeze a day on it.
fn kept_only_journal(path: &Path) {
    let conn = journal(path);
    for h in 0..(8 * 24) {
        let at = MONDAY + f64::from(h) * HOUR;
        run(
            &conn,
            "css",
            "report_check",
            at,
            &[("page", "journey", 0.3, "ok")],
        );
        for m in 0..6 {
            kept_check(&conn, "ics", at + f64::from(m) * 600.0 + 5.0);
        }
    }
    for d in 0..8 {
        freeze(
            &conn,
            "ics",
            MONDAY + f64::from(d) * DAY + 10.5 * HOUR,
            20.0,
        );
        freeze(&conn, "ics", MONDAY + f64::from(d) * DAY + 15.2 * HOUR, 8.0);
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
}

#[test]
fn freezes_seen_only_by_kept_sessions_have_a_rate_with_its_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    kept_only_journal(&path);
    let r = build(&path, None);
    let ics = r
        .freezes
        .targets
        .iter()
        .find(|t| t.target == "ics")
        .expect("the ICS froze");
    assert_eq!(ics.count, 16);
    // It read "no data": no journey ran on the ICS.
    let e = &ics.rate_per_hour;
    let truth = 16.0 / (8.0 * 24.0);
    assert!((e.value.unwrap() - truth).abs() < 0.01, "{e:?}");
    assert!(
        e.covers(truth),
        "a range once 8 days stand behind it: {e:?}"
    );
    assert_all_formats_read_cleanly(&r, "eight days");

    // Over the first 13 hours: the figure, with no range yet.
    let r = build(&path, Some(MONDAY + 13.0 * HOUR));
    let e = &r.freezes.targets[0].rate_per_hour;
    assert!(e.value.is_some() && e.low.is_none(), "{e:?}");
    let md = report::render(&r, Format::Md);
    assert!(md.contains("| ics | 1 | 0.08 (no range yet) |"), "{md}");
    assert_all_formats_read_cleanly(&r, "thirteen hours");
}

#[test]
fn failed_work_is_time_lost_as_work_done_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let conn = journal(&path);
    let (mut runs, mut failed) = (0.0, 0.0);
    for h in 0..(14 * 24) {
        let at = MONDAY + f64::from(h) * HOUR;
        let fails = h % 8 == 3;
        let save = if fails { "http_error" } else { "ok" };
        run(
            &conn,
            "ics",
            "case_note",
            at,
            &[
                ("login_page", "login", 0.5, "ok"),
                ("search", "journey", 30.0, "ok"),
                ("save_note", "journey", 30.0, save),
            ],
        );
        // A run cut short by a forced logout is the forced logouts' cost.
        if h % 8 == 5 {
            run(
                &conn,
                "ics",
                "case_note",
                at + 1800.0,
                &[("search", "journey", 4.0, "logged_out")],
            );
        }
        let day = (h / 24) % 7;
        let hour = h % 24;
        if day < 5 && (9..17).contains(&hour) {
            runs += 1.0 + if h % 8 == 5 { 1.0 } else { 0.0 };
            failed += if fails { 1.0 } else { 0.0 };
        }
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let r = build(&path, None);
    let t = &r.time_lost;
    // Before: "0.0 (95% CI 0.0 to 0.0)" despite the failed runs. Now each
    // failed save's 60.5 s of work, per run, at 4 transactions an hour over
    // the 8-hour day.
    let expected = 4.0 * 60.5 * failed / runs * 8.0 / 60.0;
    let v = t.failed_minutes.value.unwrap();
    assert!(
        (v - expected).abs() < 1e-6,
        "{v} against {expected}: {t:#?}"
    );
    assert!(t.failed_minutes.covers(expected), "{:?}", t.failed_minutes);
    assert_eq!(t.failed_runs, failed as u64);
    assert!(t.total_minutes.value.unwrap() >= v);
    assert!(
        t.sentence.contains(&format!("{} failed runs", failed)),
        "{}",
        t.sentence
    );
    assert_all_formats_read_cleanly(&r, "two weeks");
}

#[test]
fn a_long_report_reads_cleanly() {
    use casewatch::report::calibration::{observe, Effect, Process, WEDNESDAY_NOON};
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let from = WEDNESDAY_NOON;
    let to = from + 21.0 * DAY;
    let ledger = observe(
        &Process::default(),
        from,
        to,
        from + 10.0 * DAY,
        Effect::NONE,
        &mut rng,
    );
    let meta = casewatch::ledger::build::JournalMeta {
        site: Some("test-site".into()),
        bands: casewatch::detect::AgeBands::default(),
        calendar_scale: 1.0,
        practitioners: Default::default(),
        changes: Vec::new(),
        span: ledger.measured,
        seeded_truth: None,
    };
    let window = casewatch::ledger::build::SlotWindow::new(ledger.clock(), from, to);
    let r = report::build::from_ledger(
        &ledger,
        &meta,
        window,
        &ReportOptions {
            journal: "calibration".into(),
            from: None,
            to: None,
            rule_age: None,
            period: Default::default(),
            now: SystemTime::now(),
        },
    );
    assert!(r.time_lost.total_minutes.low.is_some(), "{:?}", r.time_lost);
    assert!(r.forced_logouts.rate_per_session_hour.low.is_some());
    assert_all_formats_read_cleanly(&r, "three weeks");
}

fn casewatch(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_casewatch"));
    c.current_dir(dir).env("CASEWATCH_LOG", "warn");
    c
}

/// The README's two commands, a short demo: no range where the evidence
/// rule refuses one, time lost included, and words that read cleanly.
#[test]
fn a_short_demo_report_states_no_range_the_evidence_rule_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let journal: PathBuf = dir.path().join("demo.db");
    let demo = casewatch(dir.path())
        .args([
            "demo",
            "--duration",
            "25s",
            "--listen",
            "127.0.0.1:0",
            "--journal",
        ])
        .arg(&journal)
        .output()
        .unwrap();
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let json = casewatch(dir.path())
        .args(["report", "--format", "json", "--journal"])
        .arg(&journal)
        .output()
        .unwrap();
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let t = &r["time_lost"];
    for figure in [
        "total_minutes",
        "frozen_minutes",
        "logout_minutes",
        "failed_minutes",
        "slow_minutes",
    ] {
        assert!(t[figure]["low"].is_null(), "{figure}: {}", t[figure]);
    }
    assert_eq!(t["redo_source"], "default");
    let first = r["summary"][0].as_str().unwrap();
    assert!(first.contains("not enough evidence yet"), "{first}");
    assert!(first.contains("more of measurement"), "{first}");
    assert!(!first.contains("00:00-24:00"), "{first}");
    for format in ["md", "html"] {
        let out = dir.path().join(format!("report.{format}"));
        let done = casewatch(dir.path())
            .args(["report", "--format", format, "--journal"])
            .arg(&journal)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(done.status.success());
        let text = std::fs::read_to_string(&out).unwrap();
        assert_reads_cleanly(&text, format);
        assert!(
            !text.contains("(between"),
            "{format}: a range from one day:\n{}",
            visible(&text)
        );
        assert!(
            text.contains("runs 60 times faster than the clock"),
            "{format}"
        );
    }
}
