//! Freeze episodes against the simulator's control API and truth log.

use std::collections::HashMap;
use std::time::Duration;

use casewatch::outcome::{Outcome, PlannedRun};
use casewatch::runner;
use casewatch::sim::SimProfile;
use serde_json::json;

use crate::harness::*;

/// The ICS with a 200 ms heartbeat and a journey on it; a CSS journey that
/// the ICS freeze must not disturb.
fn freeze_config() -> String {
    let ics_extra =
        "heartbeat: { path: /ping, every: 200ms, freeze_after: 1s, give_up_after: 20s }";
    format!(
        r#"site: test-site
targets:{}{}
journeys:
  - name: ics_ping
    target: ics
    login: false
    schedule: {{ interval: 1s }}
    steps:
      - {{ name: ping, path: /ping, freeze_after: 1s, give_up_after: 20s }}
  - name: css_ping
    target: css
    login: false
    schedule: {{ interval: 500ms }}
    steps:
      - {{ name: ping, path: /ping }}
"#,
        target("ics", "ICSSESSION", ics_extra),
        target("css", "CSSSESSION", ""),
    )
}

/// On a real clock, so the bounds are for a quiet machine and grow by what
/// a [`SchedulingProbe`] beside the test measures the machine itself held
/// up a thread that waits on nothing of the agent's. A CSS journey held up
/// by the ICS freeze is late by seconds and misses slots; an episode
/// measured from the wrong moment is off by a heartbeat or more: both
/// still fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_five_second_freeze_is_one_episode_of_five_seconds() {
    let machine = SchedulingProbe::start();
    let sim = start_sim(SimProfile::quiet()).await;
    let agent = start_agent(load(&freeze_config(), &sim)).await;
    let ics = [("target", "ics")];
    // Let both journeys settle into their timetables first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.control("freeze", json!({"seconds": 5.0, "system": "ics"}))
        .await;

    // Seen live: an episode in progress, its requests held over a second.
    // Waited for rather than slept on: a sleep overshooting on a loaded
    // machine could wake after the freeze.
    wait_for(
        Duration::from_secs(5),
        "the freeze to be in progress",
        || async {
            let during = agent.metrics().await;
            (metric(&during, "casewatch_freeze_in_progress", &ics) == 1.0
                && metric(&during, "casewatch_inflight_oldest_seconds", &ics) > 1.0)
                .then_some(())
        },
    )
    .await;

    let text = wait_for(
        Duration::from_secs(10),
        "the freeze episode to end",
        || async {
            let text = agent.metrics().await;
            (metric(&text, "casewatch_freeze_duration_seconds_count", &ics) >= 1.0).then_some(text)
        },
    )
    .await;
    // No second episode follows while the held requests drain.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = agent.metrics().await;
    assert_eq!(
        metric(&after, "casewatch_freeze_episodes_total", &ics),
        1.0,
        "{after}"
    );
    assert_eq!(metric(&after, "casewatch_freeze_in_progress", &ics), 0.0);
    let measured = metric(&text, "casewatch_freeze_duration_seconds_sum", &ics);
    let truth = sim.truth().await;
    let injected = truth["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "freeze")
        .expect("the truth log has the freeze");
    let true_length = injected["duration_seconds"].as_f64().unwrap();
    assert!((true_length - 5.0).abs() < 0.1, "{injected}");
    let slack = machine.allow_late(Duration::from_millis(500)).as_secs_f64();
    assert!(
        (measured - 5.0).abs() <= slack,
        "episode measured {measured} s, injected 5 s ({slack} s allowed; {})",
        machine.describe()
    );

    // The CSS journey kept its timetable throughout: nothing missed, no run
    // late (50 ms on a quiet machine).
    let css = [("journey", "css_ping")];
    let missed = metric(&after, "casewatch_schedule_missed_total", &css);
    let allowed_missed = machine.allow_missed(Duration::from_millis(500)) as f64;
    assert!(
        missed <= allowed_missed,
        "{missed} css slots missed ({allowed_missed} allowed; {})",
        machine.describe()
    );
    let allowed = machine.allow_late(Duration::from_millis(50));
    let (on_time, bound, runs) = runs_started_within(&after, "css_ping", allowed);
    eprintln!(
        "machine: {}; episode {measured} s ({slack} s allowed); css: {on_time} of {runs} runs within {bound} s ({allowed:?} allowed), {missed} missed ({allowed_missed} allowed); lateness {}",
        machine.describe(),
        lateness_buckets(&after, "css_ping")
    );
    assert!(
        runs + missed >= 15.0,
        "{runs} css runs and {missed} missed in ~10 s"
    );
    assert_eq!(
        on_time,
        runs,
        "every css run started within {bound} s of its slot ({allowed:?} allowed; {})",
        machine.describe()
    );
    assert_eq!(
        metric(
            &after,
            "casewatch_freeze_episodes_total",
            &[("target", "css")]
        ),
        0.0
    );
    // The ICS journey, frozen meanwhile, skipped its slots instead of bunching.
    assert!(
        metric(
            &after,
            "casewatch_schedule_missed_total",
            &[("journey", "ics_ping")]
        ) >= 3.0
    );
    agent.stop().await;
    sim.stop().await;
}

/// With tokio's clock paused (the simulator, its freeze and the runner all
/// run on it in-process), the 30 s give-up takes no real time and nothing
/// else moves the clock: the step must end at give-up itself. Ending at the
/// end of the 90 s freeze, or before give-up, is off by a minute or by
/// seconds. How close to `give_up_after` a real clock ends a step is the
/// benchmark's L−d figure (benches/NOTES.md, "Timing asserts moved out of
/// the tests").
#[tokio::test(start_paused = true)]
async fn a_freeze_longer_than_give_up_is_censored_at_give_up() {
    let sim = start_sim(SimProfile::quiet()).await;
    let yaml = config_yaml(
        "",
        r#"
  - name: wait
    target: ics
    login: false
    schedule: { interval: 2m }
    steps:
      - { name: ping, path: /ping, slow_after: 1s, freeze_after: 5s, give_up_after: 30s }
"#,
    );
    let config = load(&yaml, &sim);
    let journey = config.journeys[0].clone();
    let client = runner::client_for(&journey.target).unwrap();
    sim.control("freeze", json!({"seconds": 90.0})).await;
    let ctx = runner::RunContext {
        client: &client,
        probes: None,
    };
    let run = runner::run_journey(&ctx, &journey, HashMap::new(), &PlannedRun::now(1)).await;
    let step = &run.steps[0];
    assert_eq!(step.outcome, Outcome::Frozen);
    assert!(step.censored, "{step:?}");
    assert!(
        step.duration >= Duration::from_secs(30) && step.duration < Duration::from_millis(30_010),
        "{step:?}"
    );
    assert_eq!(step.status, None);
    sim.stop().await;
}
