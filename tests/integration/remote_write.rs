//! remote_write against a receiver in the test: the request format, retry
//! on 5xx with nothing lost or reordered, refusal on 4xx, the queue kept
//! across an agent restart, and gzip on /metrics.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use casewatch::remote_write::wire::{self, WriteRequest};
use casewatch::sim::SimProfile;

use crate::harness::*;

/// What the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Accept,
    Unavailable,
    BadRequest,
}

#[derive(Clone)]
struct Receiver {
    answer: Arc<Mutex<Answer>>,
    accepted: Arc<Mutex<Vec<WriteRequest>>>,
    headers: Arc<Mutex<Vec<HeaderMap>>>,
    attempts: Arc<Mutex<usize>>,
    /// How long an accepted push waits for its answer.
    delay: Arc<Mutex<Duration>>,
}

async fn receive(
    State(rx): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    *rx.attempts.lock().unwrap() += 1;
    let answer = *rx.answer.lock().unwrap();
    match answer {
        Answer::Unavailable => return StatusCode::SERVICE_UNAVAILABLE,
        Answer::BadRequest => return StatusCode::BAD_REQUEST,
        Answer::Accept => {}
    }
    let delay = *rx.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let Ok(request) = wire::decode(&body) else {
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    rx.headers.lock().unwrap().push(headers);
    rx.accepted.lock().unwrap().push(request);
    StatusCode::NO_CONTENT
}

async fn start_receiver() -> (SocketAddr, Receiver) {
    let rx = Receiver {
        answer: Arc::new(Mutex::new(Answer::Accept)),
        accepted: Arc::default(),
        headers: Arc::default(),
        attempts: Arc::default(),
        delay: Arc::default(),
    };
    let app = Router::new()
        .route("/api/v1/write", post(receive))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

impl Receiver {
    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Every accepted sample of the series named `name` with `site`, as
    /// (timestamp ms, value), in the order received.
    fn samples(&self, name: &str) -> Vec<(i64, f64)> {
        let accepted = self.accepted.lock().unwrap();
        accepted
            .iter()
            .flat_map(|r| &r.timeseries)
            .filter(|t| {
                t.labels
                    .iter()
                    .any(|l| l.name == "__name__" && l.value == name)
            })
            .flat_map(|t| t.samples.iter().map(|s| (s.timestamp, s.value)))
            .collect()
    }

    fn accepted_samples(&self) -> usize {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(wire::sample_count)
            .sum()
    }
}

const INTERVAL_MS: i64 = 200;

fn config_with_remote(url: &str, queue: &std::path::Path) -> String {
    let journeys = r#"
  - name: lookup
    target: ics
    login: false
    schedule: { interval: 300ms }
    steps:
      - name: search
        path: /login
"#;
    format!(
        "{}remote_write:\n  - name: central\n    url: {url}\n    push_interval: {INTERVAL_MS}ms\n    timeout: 2s\n    job: casewatch-test\n    queue:\n      path: {}\n",
        config_yaml("", journeys),
        queue.display()
    )
}

/// An agent probing the simulator and pushing to a receiver in the test,
/// its queue in a temporary folder.
struct Pushing {
    sim: TestSim,
    rx: Receiver,
    agent: TestAgent,
    _dir: tempfile::TempDir,
}

/// Starts a [`Pushing`]; `prepare` sets the receiver up before the first push.
async fn pushing(prepare: impl FnOnce(&Receiver)) -> Pushing {
    let sim = start_sim(SimProfile::quiet()).await;
    let (addr, rx) = start_receiver().await;
    prepare(&rx);
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_with_remote(
        &format!("http://{addr}/api/v1/write"),
        &dir.path().join("q.db"),
    );
    let agent = start_agent(load(&yaml, &sim)).await;
    Pushing {
        sim,
        rx,
        agent,
        _dir: dir,
    }
}

/// Timestamps of one series: strictly increasing, each step exactly the push
/// interval (the last one, taken at shutdown, may come sooner).
fn assert_on_grid(samples: &[(i64, f64)]) {
    assert!(samples.len() >= 3, "too few samples: {samples:?}");
    let body = &samples[..samples.len() - 1];
    for pair in body.windows(2) {
        assert_eq!(
            pair[1].0 - pair[0].0,
            INTERVAL_MS,
            "off the push grid: {samples:?}"
        );
    }
    let last = samples.len() - 1;
    assert!(
        samples[last].0 > samples[last - 1].0,
        "out of order: {samples:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_carry_the_protocol_headers_and_survive_an_outage_in_order() {
    let Pushing {
        sim,
        rx,
        agent,
        _dir,
    } = pushing(|_| {}).await;

    wait_for(Duration::from_secs(20), "a first accepted push", || async {
        (!rx.samples("casewatch_journey_runs_total").is_empty()).then_some(())
    })
    .await;
    {
        let headers = rx.headers.lock().unwrap();
        let h = &headers[0];
        assert_eq!(h["content-encoding"], "snappy");
        assert_eq!(h["content-type"], "application/x-protobuf");
        assert_eq!(h["x-prometheus-remote-write-version"], "0.1.0");
        assert!(h["user-agent"].to_str().unwrap().starts_with("casewatch/"));
    }
    let first = rx.accepted.lock().unwrap()[0].clone();
    let build = first
        .timeseries
        .iter()
        .find(|t| t.labels[0].value == "casewatch_build_info")
        .expect("the build info series is pushed");
    let labels: BTreeMap<&str, &str> = build
        .labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    assert_eq!(labels["site"], "test-site");
    assert_eq!(labels["job"], "casewatch-test");
    assert_eq!(labels["instance"], "test-site");

    // The store goes away for a while: pushes queue up on disk.
    rx.set(Answer::Unavailable);
    wait_for(Duration::from_secs(20), "samples to queue up", || async {
        let text = agent.metrics().await;
        let pending = metric(
            &text,
            "casewatch_remote_write_samples_pending",
            &[("remote", "central")],
        );
        let age = metric(
            &text,
            "casewatch_remote_write_oldest_pending_age_seconds",
            &[("remote", "central")],
        );
        let retried = metric(
            &text,
            "casewatch_remote_write_requests_total",
            &[("result", "retried")],
        );
        (pending > 0.0 && age >= 1.0 && retried >= 3.0).then_some(())
    })
    .await;
    rx.set(Answer::Accept);
    // Read from the scrape that saw the queue empty: the next push, a push
    // interval later, is pending again until it is sent.
    let text = wait_for(
        Duration::from_secs(20),
        "the backlog to be sent",
        || async {
            let text = agent.metrics().await;
            (metric(&text, "casewatch_remote_write_samples_pending", &[]) == 0.0).then_some(text)
        },
    )
    .await;
    assert_eq!(
        metric(
            &text,
            "casewatch_remote_write_oldest_pending_age_seconds",
            &[]
        ),
        0.0
    );
    assert_eq!(
        metric(&text, "casewatch_remote_write_samples_dropped_total", &[]),
        0.0
    );
    assert_eq!(
        metric(&text, "casewatch_remote_write_samples_failed_total", &[]),
        0.0
    );
    agent.stop().await;

    // Nothing lost, nothing reordered: the build info series has one sample
    // per interval from the first push to the last.
    let build = rx.samples("casewatch_build_info");
    assert_on_grid(&build);
    assert_the_last_push_counts_every_one_before_it(&rx);
    sim.stop().await;
}

/// Every accepted sample was counted as sent, and the last push (taken
/// after the agent's last record) carries the final counts.
fn assert_the_last_push_counts_every_one_before_it(rx: &Receiver) {
    let sent = rx.samples("casewatch_remote_write_samples_sent_total");
    let last_sent = sent.last().unwrap().1;
    let accepted_before_last: usize = {
        let accepted = rx.accepted.lock().unwrap();
        accepted[..accepted.len() - 1]
            .iter()
            .map(wire::sample_count)
            .sum()
    };
    assert_eq!(last_sent as usize, accepted_before_last);
    assert!(rx.accepted_samples() > accepted_before_last);
}

/// A slow store: at stop, pushes are still waiting for their answers. The
/// last push is taken once they are answered, so its sent count is final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_push_waits_for_the_answers_to_the_pushes_before_it() {
    let Pushing {
        sim,
        rx,
        agent,
        _dir,
    } = pushing(|rx| {
        *rx.delay.lock().unwrap() = Duration::from_millis(3 * INTERVAL_MS as u64);
    })
    .await;
    wait_for(
        Duration::from_secs(20),
        "pushes waiting on the store",
        || async {
            let text = agent.metrics().await;
            let accepted = metric(
                &text,
                "casewatch_remote_write_requests_total",
                &[("result", "accepted")],
            );
            let pending = metric(&text, "casewatch_remote_write_samples_pending", &[]);
            (accepted >= 1.0 && pending > 0.0).then_some(())
        },
    )
    .await;
    agent.stop().await;
    assert_the_last_push_counts_every_one_before_it(&rx);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_push_is_dropped_and_counted_not_retried() {
    let Pushing {
        sim,
        rx,
        agent,
        _dir,
    } = pushing(|rx| rx.set(Answer::BadRequest)).await;
    wait_for(
        Duration::from_secs(20),
        "refused pushes to be counted",
        || async {
            let text = agent.metrics().await;
            let failed = metric(&text, "casewatch_remote_write_samples_failed_total", &[]);
            let refused = metric(
                &text,
                "casewatch_remote_write_requests_total",
                &[("result", "refused")],
            );
            (failed > 0.0 && refused >= 2.0).then_some(())
        },
    )
    .await;
    let text = agent.metrics().await;
    // One attempt per push: refused pushes are not retried.
    let refused = metric(
        &text,
        "casewatch_remote_write_requests_total",
        &[("result", "refused")],
    );
    let retried = metric(
        &text,
        "casewatch_remote_write_requests_total",
        &[("result", "retried")],
    );
    assert_eq!(retried, 0.0);
    assert!((*rx.attempts.lock().unwrap() as f64) >= refused);
    assert_eq!(
        metric(&text, "casewatch_remote_write_samples_sent_total", &[]),
        0.0
    );
    agent.stop().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_agent_could_not_send_goes_first_after_its_restart() {
    let sim = start_sim(SimProfile::quiet()).await;
    let (addr, rx) = start_receiver().await;
    rx.set(Answer::Unavailable);
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("q.db");
    let yaml = config_with_remote(&format!("http://{addr}/api/v1/write"), &queue);

    let agent = start_agent(load(&yaml, &sim)).await;
    wait_for(Duration::from_secs(20), "pushes to queue up", || async {
        let text = agent.metrics().await;
        (metric(&text, "casewatch_remote_write_samples_pending", &[]) > 0.0).then_some(())
    })
    .await;
    agent.stop().await;
    assert!(rx.accepted.lock().unwrap().is_empty());

    rx.set(Answer::Accept);
    let agent = start_agent(load(&yaml, &sim)).await;
    wait_for(
        Duration::from_secs(20),
        "the old backlog and new pushes",
        || async {
            let text = agent.metrics().await;
            let sent = metric(&text, "casewatch_remote_write_samples_sent_total", &[]);
            (sent > 0.0 && metric(&text, "casewatch_remote_write_samples_pending", &[]) == 0.0)
                .then_some(())
        },
    )
    .await;
    agent.stop().await;
    // Timestamps only ever increase, across both runs of the agent: the
    // first run's pushes went first.
    let build = rx.samples("casewatch_build_info");
    assert!(build.windows(2).all(|w| w[0].0 < w[1].0), "{build:?}");
    // And the first run's pushes are there: the restart left a gap, not a loss.
    let gaps = build
        .windows(2)
        .filter(|w| w[1].0 - w[0].0 > INTERVAL_MS)
        .count();
    assert!(
        gaps >= 1,
        "the restart's gap is missing, so the first run was lost: {build:?}"
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_gzipped_when_asked_and_plain_otherwise() {
    let sim = start_sim(SimProfile::quiet()).await;
    let agent = start_agent(load(&config_yaml("", crate::remote_write::JOURNEY), &sim)).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/metrics", agent.addr);
    let plain = http.get(&url).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(plain.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let plain = plain.text().await.unwrap();
    let gzipped = http
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert!(gzipped.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let body = gzipped.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        body.len() * 3 < text.len(),
        "{} bytes gzipped for {}",
        body.len(),
        text.len()
    );
    // The same exposition, up to values that moved between the two scrapes.
    let names = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("# TYPE"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(names(&text), names(&plain));
    agent.stop().await;
    sim.stop().await;
}

pub const JOURNEY: &str = r#"
  - name: lookup
    target: ics
    login: false
    schedule: { interval: 1s }
    steps:
      - name: search
        path: /login
"#;

// ------------------------------------------------- the spool (issue 21) --

/// A queue file that is not a database stops nothing: it is set aside,
/// counted and a fresh one started, and probing and pushing go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_queue_is_set_aside_and_probing_goes_on() {
    let sim = start_sim(SimProfile::quiet()).await;
    let (addr, rx) = start_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("q.db");
    std::fs::write(
        &queue,
        b"SQLite format 2\0 but not really; junk junk junk".repeat(100),
    )
    .unwrap();
    let yaml = config_with_remote(&format!("http://{addr}/api/v1/write"), &queue);
    let agent = start_agent(load(&yaml, &sim)).await;
    wait_for(
        Duration::from_secs(20),
        "runs and accepted pushes",
        || async {
            let text = agent.metrics().await;
            let runs = metric(&text, "casewatch_journey_runs_total", &[("outcome", "ok")]);
            (runs >= 2.0 && !rx.samples("casewatch_build_info").is_empty()).then_some(())
        },
    )
    .await;
    let text = agent.metrics().await;
    assert_eq!(
        metric(
            &text,
            "casewatch_remote_write_queue_resets_total",
            &[("remote", "central"), ("reason", "set_aside")]
        ),
        1.0
    );
    agent.stop().await;
    let aside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("q.db.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let kept = std::fs::read(dir.path().join(&aside[0])).unwrap();
    assert!(kept.starts_with(b"SQLite format 2\0 but not really"));
    sim.stop().await;
}

/// A queue file deleted while the agent runs is noticed at the next push
/// and made again with what was pending, which then reaches the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_deleted_while_running_is_made_again_with_its_backlog() {
    let sim = start_sim(SimProfile::quiet()).await;
    let (addr, rx) = start_receiver().await;
    rx.set(Answer::Unavailable);
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("q.db");
    let yaml = config_with_remote(&format!("http://{addr}/api/v1/write"), &queue);
    let agent = start_agent(load(&yaml, &sim)).await;
    wait_for(Duration::from_secs(20), "a backlog", || async {
        let text = agent.metrics().await;
        (metric(&text, "casewatch_remote_write_samples_pending", &[]) > 0.0).then_some(())
    })
    .await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", queue.display()));
    }
    wait_for(
        Duration::from_secs(20),
        "the queue file made again",
        || async {
            let text = agent.metrics().await;
            let missing = metric(
                &text,
                "casewatch_remote_write_queue_resets_total",
                &[("reason", "missing")],
            );
            (missing >= 1.0 && queue.exists()).then_some(())
        },
    )
    .await;
    rx.set(Answer::Accept);
    wait_for(Duration::from_secs(30), "the backlog sent", || async {
        let text = agent.metrics().await;
        (metric(&text, "casewatch_remote_write_samples_pending", &[]) == 0.0).then_some(())
    })
    .await;
    agent.stop().await;
    // Nothing was lost with the deleted file.
    assert_on_grid(&rx.samples("casewatch_build_info"));
    sim.stop().await;
}

/// What the raw store below does with each request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Not listening: connections are refused.
    Down,
    Unavailable,
    TooMany,
    /// Reads the request and never answers.
    Hang,
    /// Reads the request and closes the connection without an answer.
    Reset,
    Accept,
}

/// A store written on raw TCP, so each way of failing can be chosen.
async fn raw_store(mode: Arc<Mutex<Mode>>) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    tokio::spawn(async move {
        loop {
            if *mode.lock().unwrap() == Mode::Down {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let Ok(listener) = tokio::net::TcpListener::bind(addr).await else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            loop {
                let accepted =
                    tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
                if *mode.lock().unwrap() == Mode::Down {
                    break;
                }
                let Ok(Ok((mut stream, _))) = accepted else {
                    continue;
                };
                let mode = mode.clone();
                tokio::spawn(async move {
                    // The request: its head, then Content-Length bytes.
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    let body_from = loop {
                        let Ok(n) = stream.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        if let Some(at) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&seen[..body_from]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while seen.len() < body_from + length {
                        let Ok(n) = stream.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                    }
                    let current = *mode.lock().unwrap();
                    let answer = match current {
                        Mode::Down | Mode::Reset => return,
                        Mode::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                        Mode::Unavailable => "503 Service Unavailable",
                        Mode::TooMany => "429 Too Many Requests",
                        Mode::Accept => "204 No Content",
                    };
                    let response = format!(
                        "HTTP/1.1 {answer}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        }
    });
    addr
}

/// An outage that changes its nature (the store unreachable, then 503,
/// 429, no answer, a broken connection) is logged in five different lines,
/// one as each trouble begins, not one line for the whole outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_remote_write_failure_is_logged_in_its_own_words() {
    let sim = start_sim(SimProfile::quiet()).await;
    let mode = Arc::new(Mutex::new(Mode::Down));
    let store = raw_store(mode.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_with_remote(
        &format!("http://{store}/api/v1/write"),
        &dir.path().join("q.db"),
    )
    .replace("timeout: 2s", "timeout: 1s")
    .replace("http://127.0.0.1:1/", &format!("http://{}/", sim.ics));
    let config = dir.path().join("casewatch.yaml");
    std::fs::write(&config, yaml).unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args(["run", "--stop-deadline", "2s", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .env("CASEWATCH_PASSWORD", PASSWORD)
        .env("CASEWATCH_LOG", "info")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let messages = [
        (Mode::Down, "cannot connect to the store"),
        (
            Mode::Unavailable,
            "the store failed the push with a server error",
        ),
        (Mode::TooMany, "the store asks for fewer requests (429)"),
        (Mode::Hang, "the store did not answer within the timeout"),
        (
            Mode::Reset,
            "the connection to the store broke before its answer",
        ),
        (Mode::Accept, "the store answers again"),
    ];
    for (next, says) in messages {
        *mode.lock().unwrap() = next;
        wait_for(Duration::from_secs(30), says, || async {
            let text = std::fs::read_to_string(&log).ok()?;
            text.contains(says).then_some(())
        })
        .await;
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("samples stay queued"))
        .collect();
    assert_eq!(warnings.len(), 5, "{warnings:#?}");
    sim.stop().await;
}
