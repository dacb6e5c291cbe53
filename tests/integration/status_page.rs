//! The status page as an on-call reader sees it: history bars read from
//! the journal, cell by cell; survival as the report computes it, and "not
//! yet observed" beyond the oldest session; the configured changes; and a
//! warning when the journal loses records.

use std::path::Path;
use std::time::{Duration, SystemTime};

use casewatch::journal::history::{cells_ending_at, DAY_CELLS, MONTH_CELLS};
use casewatch::outcome::{LogoutCause, SessionEnd, SessionOrigin, SessionSpan};
use casewatch::sim::SimProfile;

use crate::harness::*;

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A config with one journey (`lookup`, hourly: it runs once, at start),
/// a journal, and two changes, one three days ago and one next week.
fn config_with_journal(journal: &Path, now: SystemTime) -> String {
    let at = |days: i64| {
        chrono::DateTime::<chrono::Utc>::from(now)
            .checked_add_signed(chrono::Duration::days(days))
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    format!(
        r#"site: test-site
targets:{}
journeys:
  - name: lookup
    target: ics
    schedule: {{ interval: 1h }}
    steps:
      - name: home
        path: /home
changes:
  - name: more_capacity
    at: {}
    description: Two more ICS application servers.
  - name: reports_to_css
    at: {}
    description: Management reports move to the CSS.
journal:
  path: {}
"#,
        ics_target(""),
        at(-3),
        at(7),
        journal.display()
    )
}

/// A journal made before the agent starts, with runs of `lookup` in known
/// cells of the 24-hour bar and the 30-day bar.
fn seed_journal(path: &Path, now: SystemTime) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    casewatch::journal::schema::configure(&conn).unwrap();
    casewatch::journal::schema::migrate(&mut conn).unwrap();
    let day = unix(cells_ending_at(now, DAY_CELLS));
    let month = unix(cells_ending_at(now, MONTH_CELLS));
    // (cell start, offset into it, outcome, stalled)
    let half = |cell: f64| day + cell * 1800.0;
    let runs = [
        (half(10.0), 60.0, "ok", 0),
        (half(10.0), 600.0, "ok", 0),
        (half(20.0), 60.0, "ok", 0),
        (half(20.0), 900.0, "slow", 0),
        (half(30.0), 60.0, "frozen", 0),
        (half(30.0), 700.0, "ok", 0),
        (half(40.0), 60.0, "logged_out", 0),
        (half(44.0), 60.0, "frozen", 1),
        (month + 20.0 * 86_400.0, 3600.0, "ok", 0),
    ];
    let tx = conn.transaction().unwrap();
    for (start, offset, outcome, stalled) in runs {
        tx.execute(
            "INSERT INTO runs (site, target, journey, kind, intended_start, actual_start, duration, outcome, failed_step, report_same, report_any, agent_stalled)
             VALUES ('test-site', 'ics', 'lookup', 'interactive', ?1, ?1, 0.5, ?2, NULL, 0, 0, ?3)",
            rusqlite::params![start + offset, outcome, stalled],
        )
        .unwrap();
    }
    tx.execute(
        "INSERT INTO freezes (site, target, started, length, censored) VALUES ('test-site', 'ics', ?1, 12.0, 0)",
        [half(30.0) + 50.0],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO session_spans (site, target, origin, login_at, age_from, age_to, end_cause, dropped, origin_kind, seen_age)
         VALUES ('test-site', 'ics', 'lookup', ?1, 0, 0.4, 'redirect', 1, 'journey', 0.6)",
        [half(40.0) + 59.0],
    )
    .unwrap();
    tx.commit().unwrap();
}

/// Each `<svg class="bar">` of the page: its cells' classes, and each
/// cell's markup.
fn bars(page: &str) -> Vec<Vec<(String, String)>> {
    page.split(r#"<svg class="bar""#)
        .skip(1)
        .map(|svg| {
            let svg = svg.split("</svg>").next().unwrap();
            svg.split(r#"<g class="cell "#)
                .skip(1)
                .map(|cell| {
                    let class = cell.split('"').next().unwrap().to_string();
                    (class, cell.to_string())
                })
                .collect()
        })
        .collect()
}

async fn page(addr: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_bars_show_each_cell_from_the_journal_and_the_changes_are_listed() {
    let sim = start_sim(SimProfile::quiet()).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let now = SystemTime::now();
    seed_journal(&journal, now);
    let agent = start_agent(load(&config_with_journal(&journal, now), &sim)).await;
    let page = page(agent.addr).await;
    let bars = bars(&page);
    assert_eq!(bars.len(), 2, "a 24-hour and a 30-day bar: {page}");
    let (day, month) = (&bars[0], &bars[1]);
    assert_eq!(day.len(), 48, "{page}");
    assert_eq!(month.len(), 30, "{page}");

    let classes: Vec<&str> = day.iter().map(|(c, _)| c.as_str()).collect();
    for (cell, expected) in [
        (10, "ok"),
        (20, "slow"),
        (30, "failed"),
        (40, "failed"),
        // Only a run over a stall of the agent: not counted against the target.
        (44, "nodata"),
        (0, "nodata"),
        (25, "nodata"),
    ] {
        assert_eq!(classes[cell], expected, "cell {cell}: {}", day[cell].1);
    }
    // The seeded cells (and the live one, 47) hold runs; every other is "no data".
    let with_data = classes.iter().filter(|c| **c != "nodata").count();
    assert!((4..=5).contains(&with_data), "{classes:?}");
    assert!(day[30].1.contains(r#"class="freeze""#), "{}", day[30].1);
    assert!(!day[20].1.contains(r#"class="freeze""#), "{}", day[20].1);
    assert!(day[40].1.contains(r#"class="logout""#), "{}", day[40].1);
    assert!(
        day[44]
            .1
            .contains("1 runs during a stall of the agent, not counted"),
        "{}",
        day[44].1
    );
    assert!(
        day[30].1.contains("2 runs: 1 ok, 0 slow, 1 frozen"),
        "{}",
        day[30].1
    );
    assert_eq!(month[20].0, "ok", "{}", month[20].1);
    assert_eq!(month[10].0, "nodata", "{}", month[10].1);
    // The change three days ago is drawn on the 30-day bar; next week's is not.
    let month_svg = page.split(r#"<svg class="bar""#).nth(2).unwrap();
    assert_eq!(month_svg.matches(r#"<g class="change">"#).count(), 1);
    assert!(month_svg.contains("more_capacity: Two more ICS"));
    // The legend says what each colour stands for.
    for words in [
        "every counted run correct, each step within its",
        "no data: no run counted",
        "a freeze of the target began",
        "a session of the journey was forced out",
    ] {
        assert!(page.contains(words), "{words}: {page}");
    }

    let changes = page
        .split("<h2>Changes</h2>")
        .nth(1)
        .expect("a changes section")
        .split("<h2>")
        .next()
        .unwrap();
    let rows: Vec<&str> = changes.split(r#"<tr class="changerow">"#).skip(1).collect();
    assert_eq!(rows.len(), 2, "{changes}");
    assert!(rows[0].contains("reports_to_css") && rows[0].contains("(planned)"));
    assert!(
        rows[1].contains("more_capacity") && rows[1].contains("Two more ICS application servers.")
    );
    assert!(!rows[1].contains("(planned)"));
    // No journal errors: no warning.
    assert!(!page.contains("journal-warning"), "{page}");
    agent.stop().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_be_written_shows_as_a_warning() {
    let sim = start_sim(SimProfile::quiet()).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let now = SystemTime::now();
    let yaml = config_with_journal(&journal, now).replace("interval: 1h", "interval: 300ms");
    let agent = start_agent(load(&yaml, &sim)).await;
    // Another process holds the file's write lock: the writer's
    // transactions fail once its busy timeout runs out.
    let locker = rusqlite::Connection::open(&journal).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    wait_for(
        Duration::from_secs(30),
        "a failed journal write",
        || async {
            let text = agent.metrics().await;
            (metric(&text, "casewatch_journal_write_errors_total", &[]) >= 1.0).then_some(())
        },
    )
    .await;
    let page = page(agent.addr).await;
    let warning = page
        .split(r#"id="journal-warning""#)
        .nth(1)
        .unwrap_or_else(|| panic!("no journal warning: {page}"))
        .split("</div>")
        .next()
        .unwrap();
    assert!(
        warning.contains("The journal is losing records."),
        "{warning}"
    );
    assert!(warning.contains("failed writes"), "{warning}");
    assert!(warning.contains("database is locked"), "{warning}");
    locker.execute_batch("ROLLBACK").unwrap();
    agent.stop().await;
    sim.stop().await;
}

/// The same session lives, given to the status board and written to a
/// journal: the page's survival at each age equals the report's, and ages
/// no session reached read "not yet observed".
#[test]
fn survival_on_the_page_is_the_reports_and_unseen_ages_are_not_yet_observed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let yaml = format!(
        "site: test-site\nagent:\n  age_bands: [1m, 2m, 3m, 1h]\ntargets:{}\njourneys:\n  - name: lookup\n    target: ics\n    schedule: {{ interval: 1m }}\n    steps:\n      - {{ name: home, path: /home }}\njournal:\n  path: {}\n",
        ics_target(""),
        path.display()
    );
    let config = casewatch::config::from_yaml_str(&yaml, "t.yaml")
        .unwrap()
        .config;
    let registry = prometheus::Registry::new();
    let options = config.journal.clone().unwrap();
    let journal = casewatch::journal::Journal::open(options, &config, &registry).unwrap();
    let mut board = casewatch::status::StatusBoard::new(
        "test-site",
        config.age_bands.clone(),
        [("lookup".to_string(), "ics".to_string())],
    );
    let start = SystemTime::now() - Duration::from_secs(600);
    let spans = lives(start);
    for span in &spans {
        journal.session(span);
        board.observe_span(span);
    }
    journal.close();
    // The runs the agent would have journaled meanwhile: what the report
    // takes as the time measured.
    let conn = rusqlite::Connection::open(&path).unwrap();
    for at in [unix(start), unix(start) + 600.0] {
        conn.execute(
            "INSERT INTO runs (site, target, journey, kind, intended_start, actual_start, duration, outcome, failed_step, report_same, report_any)
             VALUES ('test-site', 'ics', 'lookup', 'interactive', ?1, ?1, 0.5, 'ok', NULL, 0, 0)",
            [at],
        )
        .unwrap();
    }
    drop(conn);
    let reader = casewatch::journal::read::JournalReader::open(&path).unwrap();
    let report = casewatch::report::build(
        &reader,
        &casewatch::report::ReportOptions {
            journal: "journal.db".into(),
            from: None,
            to: None,
            rule_age: None,
            period: Default::default(),
            now: SystemTime::now(),
        },
        |_| {},
    )
    .unwrap();
    let curve = &report.sessions.survival;
    let page = board
        .render_html(&casewatch::status::history::HistoryView::NoJournal)
        .into_string();
    let section = page
        .split("<h2>Session survival</h2>")
        .nth(1)
        .unwrap()
        .split("<h2>")
        .next()
        .unwrap();
    assert!(
        section.contains("6 sessions seen: 2 forced out, 2 still logged in"),
        "{section}"
    );
    let row = |age: &str| {
        section
            .split("<tr>")
            .find(|r| r.starts_with(&format!("<td>{age}</td>")))
            .unwrap_or_else(|| panic!("no row for {age}: {section}"))
    };
    for (label, seconds) in [("1m 00s", 60.0), ("2m 00s", 120.0)] {
        let report_share = curve
            .iter()
            .take_while(|p| p.age_seconds <= seconds)
            .last()
            .map_or(1.0, |p| p.survival);
        let shown = format!("<td>{:.1} %</td>", report_share * 100.0);
        assert!(row(label).contains(&shown), "{label}: {shown} in {section}");
    }
    // Worked by hand: the two short journey sessions have left, so 4 are
    // at risk at the first drop (40.1 s) and 3 at the second (90.1 s). The
    // page used to count only ended lives: 0 % from the second drop on.
    assert!(row("1m 00s").contains("75.0 %"), "{section}");
    assert!(row("2m 00s").contains("50.0 %"), "{section}");
    for label in ["3m 00s", "1h 00m"] {
        assert!(
            row(label).contains("not yet observed"),
            "{label}: {section}"
        );
    }
    assert!(!section.contains("<td>0.0 %</td>"), "{section}");
}

/// Six lives: two short journey sessions the agent logged out of; two kept
/// sessions forced out (at 40-40.2 s and 90-90.2 s); two kept sessions
/// still logged in, last known alive at 100 s and 150 s.
fn lives(start: SystemTime) -> Vec<SessionSpan> {
    let span = |origin: SessionOrigin, login: u64, to: f64, end: Option<SessionEnd>| {
        let dropped = end.is_some_and(|e| e.is_drop());
        SessionSpan {
            target: "ics".into(),
            origin,
            login_at: start + Duration::from_secs(login),
            age_from: Duration::ZERO,
            age_to: Duration::from_secs_f64(to),
            end,
            seen_age: dropped.then(|| Duration::from_secs_f64(to + 0.2)),
            seen_at: None,
            detail: String::new(),
        }
    };
    let kept = |slot| SessionOrigin::Kept { slot };
    let forced = Some(SessionEnd::Forced(LogoutCause::Redirect));
    vec![
        span(
            SessionOrigin::journey("lookup"),
            1,
            2.0,
            Some(SessionEnd::LoggedOut),
        ),
        span(
            SessionOrigin::journey("lookup"),
            61,
            2.5,
            Some(SessionEnd::LoggedOut),
        ),
        span(kept(0), 0, 30.0, None),
        span(kept(0), 0, 40.0, forced),
        span(kept(1), 0, 90.0, forced),
        span(kept(2), 0, 60.0, None),
        span(kept(2), 0, 100.0, None),
        span(kept(3), 0, 150.0, None),
    ]
}
