//! Reload (HTTP and SIGHUP), graceful and forced shutdown, and the
//! credential canary: the agent as a running process.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use casewatch::sim::SimProfile;
use serde_json::json;

use crate::harness::*;

/// A journey on the ICS that logs in, reads, and searches.
fn journey(name: &str, interval: &str) -> String {
    format!(
        r#"
  - name: {name}
    target: ics
    schedule: {{ interval: {interval} }}
    steps:
      - {{ name: home, path: /home, think_time: 200ms }}
      - {{ name: search, path: /cases/search, query: {{ q: Smith }} }}
"#
    )
}

/// A config file for `sim` with a kept session on the ICS.
fn write_config(dir: &Path, sim: &TestSim, journeys: &str) -> std::path::PathBuf {
    let keep = "keep_sessions: { count: 1, every: 300ms, max_age: 1h, keepalive: { name: keepalive_home, path: /home } }";
    let yaml = format!(
        "site: test-site\ntargets:{}\njourneys:\n{journeys}",
        ics_target(keep)
    )
    .replace("http://127.0.0.1:1/", &format!("http://{}/", sim.ics));
    let path = dir.join("casewatch.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_a_good_config_and_refuses_a_bad_one() {
    let sim = start_sim(SimProfile::quiet()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &sim, &journey("first", "500ms"));
    let loaded = casewatch::config::load(&path).unwrap().config;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let options = casewatch::agent::AgentOptions {
        config_path: Some(path.clone()),
        ..casewatch::agent::AgentOptions::new("127.0.0.1:0".parse().unwrap(), test_env(PASSWORD))
    };
    let agent =
        casewatch::agent::Agent::start(std::sync::Arc::new(loaded), options, shutdown.clone())
            .await
            .unwrap();
    let runs_of =
        |text: &str, j: &str| metric(text, "casewatch_journey_runs_total", &[("journey", j)]);
    let before = wait_for(
        Duration::from_secs(20),
        "runs of the first journey",
        || async {
            let text = scrape(agent.addr).await;
            (runs_of(&text, "first") >= 3.0
                && metric(&text, "casewatch_sessions_active", &[]) >= 1.0)
                .then_some(text)
        },
    )
    .await;
    let kept_age_before = sim
        .live_session_ages()
        .await
        .into_iter()
        .fold(0.0, f64::max);
    assert!(kept_age_before > 0.0);

    // A good new config: the target is unchanged, a journey is added.
    std::fs::write(
        &path,
        std::fs::read_to_string(&path).unwrap() + &journey("second", "500ms"),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let response = http
        .post(format!("http://{}/-/reload", agent.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let after = wait_for(
        Duration::from_secs(20),
        "runs of the added journey",
        || async {
            let text = scrape(agent.addr).await;
            (runs_of(&text, "second") >= 2.0).then_some(text)
        },
    )
    .await;
    // Counters were not reset and the kept session of the unchanged target lives on.
    assert!(runs_of(&after, "first") >= runs_of(&before, "first"));
    assert_eq!(
        metric(&after, "casewatch_config_last_reload_successful", &[]),
        1.0
    );
    let kept_age_after = sim
        .live_session_ages()
        .await
        .into_iter()
        .fold(0.0, f64::max);
    assert!(
        kept_age_after > kept_age_before,
        "kept session was replaced: {kept_age_before} -> {kept_age_after}"
    );
    assert_eq!(metric(&after, "casewatch_forced_logouts_total", &[]), 0.0);

    // A bad config is refused; the old one keeps running.
    std::fs::write(
        &path,
        "site: test-site\ntargets: []\njourneys: []\nbogus: 1\n",
    )
    .unwrap();
    let response = http
        .post(format!("http://{}/-/reload", agent.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let why = response.text().await.unwrap();
    assert!(why.contains("unknown field `bogus`"), "{why}");
    let refused = scrape(agent.addr).await;
    assert_eq!(
        metric(&refused, "casewatch_config_last_reload_successful", &[]),
        0.0
    );
    let runs_then = runs_of(&refused, "second");
    wait_for(
        Duration::from_secs(10),
        "the old config to keep running",
        || async { (runs_of(&scrape(agent.addr).await, "second") > runs_then).then_some(()) },
    )
    .await;

    shutdown.cancel();
    agent.wait().await;
    // At stop the agent logged every session out.
    assert_eq!(sim.live_session_ages().await, Vec::<f64>::new());
    sim.stop().await;
}

pub(crate) fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Starts `casewatch run` on `config`; returns the child and its metrics URL.
pub(crate) fn run_agent(config: &Path, extra: &[&str]) -> (Child, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args(["run", "--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env("CASEWATCH_PASSWORD", PASSWORD)
        .env("CASEWATCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{port}/metrics"))
}

pub(crate) async fn scrape_url(url: &str) -> Option<String> {
    reqwest::get(url).await.ok()?.text().await.ok()
}

/// Waits until the agent at `url` has counted `runs` runs of `journey`.
async fn wait_for_runs(url: &str, journey: &str, runs: f64, limit: Duration) {
    let what = format!("{runs} runs of {journey}");
    wait_for(limit, &what, || async {
        let text = scrape_url(url).await?;
        let counted = metric(
            &text,
            "casewatch_journey_runs_total",
            &[("journey", journey)],
        );
        (counted >= runs).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_sigterm_stops_cleanly() {
    let sim = start_sim(SimProfile::quiet()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &sim, &journey("first", "300ms"));
    let (mut child, url) = run_agent(&path, &[]);
    wait_for_runs(&url, "first", 2.0, Duration::from_secs(30)).await;
    std::fs::write(
        &path,
        std::fs::read_to_string(&path).unwrap() + &journey("second", "300ms"),
    )
    .unwrap();
    signal(&child, "HUP");
    wait_for_runs(&url, "second", 1.0, Duration::from_secs(20)).await;

    signal(&child, "TERM");
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status, stderr)
    })
    .await
    .unwrap();
    assert_eq!(status.0.code(), Some(0), "{}", status.1);
    assert!(status.1.contains("configuration reloaded"), "{}", status.1);
    // Runs in flight finished and every session, kept or not, was logged out.
    assert_eq!(
        sim.live_session_ages().await,
        Vec::<f64>::new(),
        "{}",
        status.1
    );
    sim.stop().await;
}

/// No sleep decides the order: the first signal goes once a run is held
/// in flight by the freeze (the agent says so on `/metrics`), and the second
/// once the agent has logged that it is stopping and waits for that run.
/// An agent that stopped at the first signal without waiting exits 0 before
/// the second; one that ignored the second waits out its 60 s deadline:
/// either fails, at any load. (A second signal lost in the gap after the
/// first is tested in `commands::tests`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_forces_the_exit() {
    const STOP_DEADLINE: Duration = Duration::from_secs(60);
    let sim = start_sim(SimProfile::quiet()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &sim, &journey("first", "300ms"));
    let (mut child, url) = run_agent(&path, &["--stop-deadline", "60s"]);
    let (lines, log) = std::sync::mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    wait_for_runs(&url, "first", 1.0, Duration::from_secs(30)).await;
    // Freeze the system so runs in flight cannot finish before the deadline.
    sim.control("freeze", json!({"seconds": 60.0})).await;
    wait_for(
        Duration::from_secs(30),
        "a run held in flight for half a second",
        || async {
            let text = scrape_url(&url).await?;
            (metric(&text, "casewatch_inflight_oldest_seconds", &[]) >= 0.5).then_some(())
        },
    )
    .await;
    signal(&child, "TERM");
    let first_signal = std::time::Instant::now();
    let stopping = tokio::task::spawn_blocking(move || {
        while let Ok(line) = log.recv_timeout(Duration::from_secs(30)) {
            if line.contains("stopping: finishing runs in flight") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(stopping, "the agent never said it was stopping");
    // The agent listens for the second signal from before the first, so no
    // gap after that line can lose it. The pause only gives an agent that
    // did not wait for its runs time to exit 0 and fail below; a correct
    // agent passes whatever the pause.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first signal waits for runs in flight"
    );
    signal(&child, "TERM");
    let code = tokio::task::spawn_blocking(move || child.wait().unwrap().code())
        .await
        .unwrap();
    assert_eq!(code, Some(130));
    assert!(
        first_signal.elapsed() < STOP_DEADLINE,
        "exited only at the stop deadline"
    );
    sim.stop().await;
}

#[test]
fn a_canary_password_appears_in_no_output() {
    let canary = format!("canary-{}-pw", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args([
            "demo",
            "--duration",
            "15s",
            "--listen",
            "127.0.0.1:0",
            "--journal",
        ])
        .arg(&journal)
        .env("CASEWATCH_PASSWORD", &canary)
        .env("CASEWATCH_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        BufReader::new(stderr).read_to_string(&mut text).unwrap();
        text
    });
    let mut stdout_lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    let mut urls = Vec::new();
    for line in stdout_lines.by_ref().map_while(Result::ok) {
        stdout.push_str(&line);
        stdout.push('\n');
        for word in line.split_whitespace() {
            if word.starts_with("http://") {
                urls.push(word.to_string());
            }
        }
        if line.contains("journal:") {
            break;
        }
    }
    // Everything the agent and simulator serve, mid-run.
    std::thread::sleep(Duration::from_secs(10));
    let mut served = String::new();
    for url in &urls {
        let base = url.trim_end_matches('/');
        for path in ["/", "/metrics", "/_control/truth", "/_control/sessions"] {
            if let Ok(text) = blocking_get(&format!("{base}{path}")) {
                served.push_str(&text);
            }
        }
    }
    stdout.extend(stdout_lines.map_while(Result::ok).map(|l| l + "\n"));
    assert!(child.wait().unwrap().success());
    let stderr = stderr_reader.join().unwrap();

    // The canary was really used: a login with it succeeded, a kept
    // session's or a journey's. (On a loaded machine a 15-s demo's only
    // journey runs may all pass the 2-s freeze_after, so a run that ended
    // `ok` is not required.)
    let kept_logins: f64 = ["ok", "slow"]
        .iter()
        .map(|o| {
            metric(
                &served,
                "casewatch_kept_session_logins_total",
                &[("outcome", o)],
            )
        })
        .sum();
    assert!(
        kept_logins > 0.0 || stdout.contains(" ok "),
        "{stdout}\n{served}"
    );
    assert!(served.contains("casewatch_journey_runs_total"));
    for (what, text) in [
        ("stdout", &stdout),
        ("stderr (trace level)", &stderr),
        ("served pages", &served),
    ] {
        assert!(!text.contains(&canary), "the password leaked into {what}");
    }
    // The journal files and the browser evidence beside them (screenshots
    // and console logs of failed browser steps), byte for byte, and every
    // report and export of them.
    let mut files: Vec<std::path::PathBuf> = vec![dir.path().to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "the password leaked into {}",
            path.display()
        );
    }
    for args in [
        vec!["report", "--format", "html"],
        vec!["report", "--format", "md"],
        vec!["report", "--format", "json"],
        vec!["export", "--format", "openmetrics"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_casewatch"))
            .args(&args)
            .arg("--journal")
            .arg(&journal)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for stream in [&output.stdout, &output.stderr] {
            assert!(
                !String::from_utf8_lossy(stream).contains(&canary),
                "the password leaked into {args:?}"
            );
        }
    }
}
