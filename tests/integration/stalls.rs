//! The agent's own stalls, with the agent as its own process. Paused with
//! SIGSTOP and resumed with SIGCONT while the simulator stays healthy, it
//! records its stall and no freeze of the target; a real freeze in the same
//! run is still one; and a stall inside a real freeze leaves it one, saying
//! how much of it the agent was stalled.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant, SystemTime};

use casewatch::sim::SimProfile;
use serde_json::json;

use crate::harness::*;
use crate::lifecycle::{run_agent, scrape_url, signal};

/// The ICS, with a heartbeat every 200 ms and a journey every second, both
/// frozen after 1 s: a stall of several seconds catches requests in flight.
fn write_config(dir: &Path, sim: &TestSim) -> std::path::PathBuf {
    let heartbeat =
        "heartbeat: { path: /ping, every: 200ms, freeze_after: 1s, give_up_after: 30s }";
    let yaml = format!(
        r#"site: test-site
targets:{}
journeys:
  - name: ics_ping
    target: ics
    login: false
    schedule: {{ interval: 1s }}
    steps:
      - {{ name: ping, path: /ping, freeze_after: 1s, give_up_after: 30s }}
"#,
        ics_target(heartbeat)
    )
    .replace("http://127.0.0.1:1/", &format!("http://{}/", sim.ics));
    let path = dir.join("casewatch.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// How long a process was stopped: at least from when SIGSTOP had been
/// sent to when SIGCONT was sent, at most from before the one to after the
/// other.
struct Paused {
    at_least: Duration,
    at_most: Duration,
    /// Unix seconds before SIGSTOP and after SIGCONT.
    from: f64,
    to: f64,
}

fn unix_now() -> f64 {
    casewatch::outcome::unix_secs(SystemTime::now())
}

/// Stops `child` for `length` with SIGSTOP, then resumes it with SIGCONT.
async fn pause(child: &Child, length: Duration) -> Paused {
    let from = unix_now();
    let t0 = Instant::now();
    signal(child, "STOP");
    let t1 = Instant::now();
    tokio::time::sleep(length).await;
    let t2 = Instant::now();
    signal(child, "CONT");
    let t3 = Instant::now();
    Paused {
        at_least: t2 - t1,
        at_most: t3 - t0,
        from,
        to: unix_now(),
    }
}

/// The metrics at `url` once `ready` holds on them.
async fn metrics_when(url: &str, what: &str, ready: impl Fn(&str) -> bool) -> String {
    wait_for(Duration::from_secs(60), what, || async {
        let text = scrape_url(url).await?;
        ready(&text).then_some(text)
    })
    .await
}

/// The length of every stall the histogram counts between `low` and
/// `high` seconds (by its bucket edges).
fn stalls_between(text: &str, low: &str, high: &str) -> f64 {
    let bucket = |le| {
        metric(
            text,
            "casewatch_agent_stall_duration_seconds_bucket",
            &[("le", le)],
        )
    };
    bucket(high) - bucket(low)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_agent_records_its_stall_and_no_freeze_and_a_real_freeze_still_counts() {
    let sim = start_sim(SimProfile::quiet()).await;
    // Requests take 250 ms, so some are always in flight when the agent is
    // stopped.
    sim.control("latency", json!({"extra_ms": 250})).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let config = write_config(dir.path(), &sim);
    let (mut child, url) = run_agent(&config, &["--journal", journal.to_str().unwrap()]);
    let ics = [("target", "ics")];
    let runs = |text: &str| {
        metric(
            text,
            "casewatch_journey_runs_total",
            &[("journey", "ics_ping")],
        )
    };
    let warm = metrics_when(&url, "3 runs", |t| runs(t) >= 3.0).await;

    // This host's own scheduling noise, as the agent measured it: the
    // margin every timing bound below allows on top of what it proves.
    let mut noise = metric(&warm, "casewatch_agent_scheduling_delay_seconds", &[]);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let text = scrape_url(&url).await.unwrap();
        noise = noise.max(metric(
            &text,
            "casewatch_agent_scheduling_delay_seconds",
            &[],
        ));
    }
    let slack = 1.0 + 4.0 * noise;
    let period = casewatch::stall::PERIOD.as_secs_f64();

    // 1. The agent is stopped for 10 s while the ICS answers in 250 ms.
    let paused = pause(&child, Duration::from_secs(10)).await;
    let after_pause = metrics_when(&url, "the stall to be counted", |t| {
        stalls_between(t, "5", "30") >= 1.0
    })
    .await;
    // What was in flight is read, and the runs due meanwhile have run.
    let first_stalled = metrics_when(&url, "a stalled run to be set apart", |t| {
        metric(
            t,
            "casewatch_journey_runs_agent_stalled_total",
            &[("journey", "ics_ping")],
        ) >= 1.0
            && runs(t) >= runs(&after_pause) + 2.0
    })
    .await;
    assert_eq!(
        metric(&first_stalled, "casewatch_freeze_episodes_total", &ics),
        0.0,
        "{first_stalled}"
    );
    assert_eq!(
        metric(&first_stalled, "casewatch_freeze_in_progress", &ics),
        0.0
    );
    assert_eq!(
        metric(
            &first_stalled,
            "casewatch_journey_runs_total",
            &[("journey", "ics_ping"), ("outcome", "frozen")]
        ),
        0.0,
        "no run is counted frozen against the ICS: {first_stalled}"
    );
    // Neither the run due during the stall nor the slots missed behind it
    // put the agent's 10 s into the journey's durations.
    let journey = [("journey", "ics_ping")];
    let durations = metric(
        &first_stalled,
        "casewatch_journey_duration_seconds_count",
        &journey,
    );
    let under_5s = metric(
        &first_stalled,
        "casewatch_journey_duration_seconds_bucket",
        &[("journey", "ics_ping"), ("le", "5")],
    );
    assert_eq!(under_5s, durations, "{first_stalled}");
    let stalled = metric(&first_stalled, "casewatch_agent_stall_seconds_total", &[]);
    let at_least = paused.at_least.as_secs_f64() - period;
    assert!(
        stalled >= at_least,
        "stalled {stalled} s, stopped at least {at_least} s"
    );
    // The status page says so.
    let page = reqwest::get(url.trim_end_matches("metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Agent stalls"), "{page}");
    assert!(page.contains("since the agent started"), "{page}");

    // 2. A real 10 s freeze of the ICS, with the agent running: one episode.
    sim.control("latency", json!({"extra_ms": 0})).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.control("freeze", json!({"seconds": 10.0, "system": "ics"}))
        .await;
    let frozen = metrics_when(&url, "the real freeze to end", |t| {
        metric(t, "casewatch_freeze_duration_seconds_count", &ics) >= 1.0
    })
    .await;
    assert_eq!(
        metric(&frozen, "casewatch_freeze_episodes_total", &ics),
        1.0
    );
    let length = metric(&frozen, "casewatch_freeze_duration_seconds_sum", &ics);
    assert!(
        (9.5..=10.5 + slack).contains(&length),
        "episode of {length} s for a 10 s freeze (slack {slack} s)"
    );
    assert!(
        metric(
            &frozen,
            "casewatch_journey_runs_total",
            &[("journey", "ics_ping"), ("outcome", "frozen")]
        ) >= 1.0,
        "the real freeze counts against the ICS: {frozen}"
    );

    // 3. A real 10 s freeze with the agent stopped for 3 s inside it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.control("freeze", json!({"seconds": 10.0, "system": "ics"}))
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let inside = pause(&child, Duration::from_secs(3)).await;
    let both = metrics_when(&url, "the second freeze to end", |t| {
        metric(t, "casewatch_freeze_duration_seconds_count", &ics) >= 2.0
    })
    .await;
    assert_eq!(metric(&both, "casewatch_freeze_episodes_total", &ics), 2.0);

    signal(&child, "TERM");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let truth = sim.truth().await;
    sim.stop().await;

    // The journal: the stalls, the flags, and the two real freezes only.
    let db = rusqlite::Connection::open(&journal).unwrap();
    let rows = |sql: &str| -> Vec<(f64, f64)> {
        db.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let stalls = rows("SELECT started, length FROM agent_stalls ORDER BY started");
    // Each pause is one stall, begun within it.
    let stall_in = |p: &Paused| -> (f64, f64) {
        stalls
            .iter()
            .filter(|(started, _)| (p.from - period..=p.to).contains(started))
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or_else(|| panic!("no stall recorded in a pause: {stalls:?}"))
    };
    let within = |length: f64, p: &Paused| {
        let low = p.at_least.as_secs_f64() - period;
        let high = p.at_most.as_secs_f64() + period + slack;
        (low..=high).contains(&length)
    };
    let first = stall_in(&paused);
    assert!(within(first.1, &paused), "{first:?} {stalls:?}");
    let second = stall_in(&inside);
    assert!(within(second.1, &inside), "{second:?} {stalls:?}");

    let freezes =
        rows("SELECT length, agent_stall FROM freezes WHERE target = 'ics' ORDER BY started");
    assert_eq!(freezes.len(), 2, "{freezes:?}");
    // The first real freeze met no stall of the agent's pauses.
    assert!(freezes[0].1 < 1.0, "{freezes:?}");
    // The second is still a freeze of about 10 s, which says it held the
    // agent's 3 s stall: its length is known to within that.
    assert!((9.5..=10.5 + slack).contains(&freezes[1].0), "{freezes:?}");
    assert!(within(freezes[1].1, &inside), "{freezes:?}");
    // No episode began during the first stall.
    let first_end = first.0 + first.1;
    let phantom: i64 = db
        .query_row(
            "SELECT count(*) FROM freezes WHERE started < ?1",
            [first_end + 1.0],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(phantom, 0);
    // Runs and steps across the first stall are flagged; none there is
    // counted frozen.
    let around = |flag: i64, extra: &str| -> i64 {
        db.query_row(
            &format!(
                "SELECT count(*) FROM runs WHERE agent_stalled = ?1 AND journey = 'ics_ping'
                 AND intended_start < ?3 AND intended_start + duration > ?2 {extra}"
            ),
            rusqlite::params![flag, first.0, first_end],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(around(1, "") >= 1);
    assert_eq!(around(0, "AND outcome = 'frozen'"), 0);
    let flagged_steps: i64 = db
        .query_row(
            "SELECT count(*) FROM steps WHERE agent_stalled = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(flagged_steps >= 1);

    eprintln!(
        "pause {:.2}-{:.2} s: stall {:.2} s; pause {:.2}-{:.2} s inside a freeze: stall {:.2} s; \
         freezes (length, agent stall) {freezes:?}; flagged runs across the first stall {}; \
         scheduling noise {noise:.3} s",
        paused.at_least.as_secs_f64(),
        paused.at_most.as_secs_f64(),
        first.1,
        inside.at_least.as_secs_f64(),
        inside.at_most.as_secs_f64(),
        second.1,
        around(1, ""),
    );
    // The simulator injected the two freezes and nothing else.
    let injected: Vec<f64> = truth["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "freeze")
        .filter_map(|e| e["duration_seconds"].as_f64())
        .collect();
    assert_eq!(injected.len(), 2, "{truth}");
}
