//! `casewatch-bench`: whole-process measurements for issue 7, driven by
//! `scripts/bench.sh`, which writes `benches/RESULTS.md`. They are a second
//! binary (`src/bin/casewatch-bench.rs`), not a subcommand of `casewatch`, so
//! the production binary carries none of them.
//!
//! - `serve`: a minimal fixed-delay HTTP server that logs server-side arrival
//!   and completion times (realtime ns), with a global freeze on demand. It is
//!   the one endpoint the agent and every peer (oha, wrk, blackbox) are
//!   measured against.
//! - `drive`: runs a config's journeys exactly as the agent's journey loop
//!   does (same [`Timetable`], same [`runner::run_journey`], same records),
//!   and writes every run and missed slot to a TSV file.
//! - `load`: an open-loop fixed-rate HTTP driver (scrapes, blackbox probes).
//! - `fidelity`, `co`: read the logs and print figures as `key value` lines.
//! - `large-config`, `reloads`, `auth-flood`, `lateness`, `hash-password`:
//!   the agent's own inputs under stress (issue 11; see [`hostile`]).
//!
//! - `journals`: a fleet of journals at production rates with a known,
//!   seeded truth, for the fleet report's scale figure (see [`journals`]).
//!
//! Nothing here asserts a timing: it measures and prints.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use clap::Subcommand;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::outcome::Record;
use crate::runner::{self, Probes};
use crate::supervisor::{journey_loop, JourneyTask};

pub mod history;
pub mod hostile;
pub mod journals;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Fixed-delay HTTP server logging arrivals: GET /d/{ms}/{tag},
    /// POST /_freeze?ms=N (hold every answer for N ms), GET /_log (drain).
    Serve {
        #[arg(long, default_value = "127.0.0.1:18080")]
        listen: SocketAddr,
    },
    /// Run a config's journeys as the agent's journey loop does; log every run.
    Drive {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Duration,
        #[arg(long)]
        out: PathBuf,
    },
    /// Open-loop fixed-rate GETs of one URL; prints latency quantiles.
    Load {
        #[arg(long)]
        url: String,
        #[arg(long)]
        rate: f64,
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Duration,
    },
    /// Timing fidelity figures from a server log and a drive log or oha JSON.
    Fidelity {
        #[arg(long)]
        server_log: PathBuf,
        #[arg(long)]
        delay_ms: f64,
        /// The planned gap between two arrivals with the same tag.
        #[arg(long)]
        gap_ms: f64,
        #[arg(long)]
        drive_log: Option<PathBuf>,
        #[arg(long)]
        oha_json: Option<PathBuf>,
    },
    /// Calibration of the evidence report's before/after method on
    /// synthetic journals whose truth is known; prints a Markdown table.
    Calibrate {
        #[arg(long, default_value_t = 1000)]
        replications: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Only the scenarios whose name contains this text.
        #[arg(long)]
        only: Option<String>,
    },
    /// Coordinated-omission figures: open-loop truth versus what was measured.
    Co {
        #[arg(long)]
        server_log: PathBuf,
        #[arg(long)]
        delay_ms: f64,
        /// Rate of the synthetic schedule used when there is no drive log.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
        duration: Duration,
        #[arg(long)]
        drive_log: Option<PathBuf>,
        #[arg(long)]
        oha_json: Option<PathBuf>,
        /// Output of wrk with scripts' `done()` printing `p99 <us>` lines.
        #[arg(long)]
        wrk_out: Option<PathBuf>,
    },
    /// Write a config of a given size: a `probe` journey plus idle journeys.
    LargeConfig {
        #[arg(long, default_value_t = crate::config::preflight::MAX_CONFIG_BYTES)]
        bytes: usize,
        #[arg(long)]
        base_url: String,
        #[arg(long, default_value = "/d/0/probe")]
        probe_path: String,
        #[arg(long, default_value = "1s")]
        probe_interval: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// POST to a reload URL at a fixed pace; prints how long each took.
    Reloads {
        #[arg(long)]
        url: String,
        #[arg(long, value_parser = humantime::parse_duration)]
        every: Duration,
        #[arg(long)]
        count: u32,
    },
    /// Wrong-password requests N at a time, with correct scrapes
    /// (password from $BENCH_PASSWORD) timed meanwhile.
    AuthFlood {
        #[arg(long)]
        url: String,
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 200)]
        wrong: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 10.0)]
        scrape_rate: f64,
        /// Correct scrapes alone for this long first, to compare with.
        #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
        quiet: Duration,
    },
    /// Lateness and missed slots of a journey, from a journal.
    Lateness {
        #[arg(long)]
        journal: PathBuf,
        #[arg(long)]
        journey: String,
        /// Only runs meant to start at this Unix time or later.
        #[arg(long, default_value_t = 0.0)]
        since: f64,
        /// Only runs meant to start before this Unix time.
        #[arg(long, default_value_t = f64::INFINITY)]
        until: f64,
    },
    /// Write N sites x D days of journals at production rates (journeys
    /// every 5 minutes, 3 kept sessions), one `site-NN.db` per site.
    Journals {
        #[arg(long, default_value_t = 40)]
        sites: usize,
        #[arg(long, default_value_t = 365.0)]
        days: f64,
        /// An empty folder to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// End of the generated period: RFC 3339 or a time ago; default now.
        #[arg(long)]
        end: Option<String>,
        /// A site to make clearly worse (repeatable), by name: `site-02`.
        #[arg(long)]
        worse: Vec<String>,
        /// Leave out the per-minute HdrHistogram rows.
        #[arg(long)]
        no_histograms: bool,
        /// Day-to-day variation: each day's latency multiplied by
        /// exp(N(0, sigma)), as real load differs from one day to the next.
        #[arg(long, default_value_t = 0.0)]
        day_sigma: f64,
        /// Declare a change in the middle of the period (at noon), with no
        /// effect unless --latency-after says otherwise.
        #[arg(long)]
        change: bool,
        /// Latency factor from the change on (1 for none).
        #[arg(long, default_value_t = 1.0)]
        latency_after: f64,
    },
    /// A bcrypt hash of $BENCH_PASSWORD, for a web config.
    HashPassword {
        #[arg(long, default_value_t = 10)]
        cost: u32,
    },
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Serve { listen } => serve(listen).await,
        BenchCommand::Drive {
            config,
            duration,
            out,
        } => drive(&config, duration, &out).await,
        BenchCommand::Load {
            url,
            rate,
            duration,
        } => load(&url, rate, duration).await,
        BenchCommand::Fidelity {
            server_log,
            delay_ms,
            gap_ms,
            drive_log,
            oha_json,
        } => fidelity(
            &server_log,
            delay_ms,
            gap_ms,
            drive_log.as_deref(),
            oha_json.as_deref(),
        ),
        BenchCommand::Calibrate {
            replications,
            seed,
            only,
        } => {
            calibrate(replications, seed, only.as_deref());
            Ok(())
        }
        BenchCommand::Co {
            server_log,
            delay_ms,
            rate,
            duration,
            drive_log,
            oha_json,
            wrk_out,
        } => co(CoInput {
            server_log,
            delay_ms,
            rate,
            duration,
            drive_log,
            oha_json,
            wrk_out,
        }),
        BenchCommand::LargeConfig {
            bytes,
            base_url,
            probe_path,
            probe_interval,
            out,
        } => hostile::write_large_config(
            &hostile::LargeConfig {
                base_url: &base_url,
                bytes,
                probe_path: &probe_path,
                probe_interval: &probe_interval,
            },
            &out,
        ),
        BenchCommand::Reloads { url, every, count } => hostile::reloads(&url, every, count).await,
        BenchCommand::AuthFlood {
            url,
            user,
            wrong,
            concurrency,
            scrape_rate,
            quiet,
        } => {
            hostile::auth_flood(&hostile::AuthFlood {
                url: &url,
                user: &user,
                wrong,
                concurrency,
                scrape_rate,
                quiet,
            })
            .await
        }
        BenchCommand::Lateness {
            journal,
            journey,
            since,
            until,
        } => hostile::lateness(&journal, &journey, since..until),
        BenchCommand::HashPassword { cost } => hostile::hash_password(cost),
        BenchCommand::Journals {
            sites,
            days,
            out,
            seed,
            end,
            worse,
            no_histograms,
            day_sigma,
            change,
            latency_after,
        } => {
            let now = SystemTime::now();
            let end = match end {
                Some(text) => crate::report::command::parse_time(&text, now)?,
                None => now,
            };
            let spec = journals::FleetSpec {
                sites,
                days,
                out,
                seed,
                end: crate::outcome::unix_secs(end),
                worse,
                histograms: !no_histograms,
                day_sigma,
                change,
                latency_after,
                history: None,
            };
            let started = std::time::Instant::now();
            let paths = tokio::task::spawn_blocking(move || journals::write_fleet(&spec)).await??;
            let bytes: u64 = paths
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            println!("journals {}", paths.len());
            println!("bytes {bytes}");
            println!("seconds {:.1}", started.elapsed().as_secs_f64());
            Ok(())
        }
    }
}

fn calibrate(replications: usize, seed: u64, only: Option<&str>) {
    use crate::report::calibration;
    let started = std::time::Instant::now();
    let process = calibration::Process::default();
    // Scenarios on as many threads as there are cores; each is seeded on
    // its own, so the figures do not depend on the threads.
    let scenarios: Vec<calibration::Scenario> = calibration::scenarios()
        .into_iter()
        .filter(|s| only.is_none_or(|o| s.name.contains(o)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let figures: Vec<std::sync::Mutex<Option<calibration::Figures>>> = scenarios
        .iter()
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(s) = scenarios.get(i) else { return };
                let f = calibration::run(&process, s, replications, seed, 30);
                if let Ok(mut slot) = figures[i].lock() {
                    *slot = Some(f);
                }
            });
        }
    });
    let figures: Vec<calibration::Figures> = figures
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect();
    print!(
        "{}",
        calibration::markdown(&figures, replications, seed, started.elapsed())
    );
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn now_ns() -> u64 {
    unix_ns(SystemTime::now())
}

// ---------------------------------------------------------------- serve --

#[derive(Default)]
struct ServeState {
    /// `a arrival_ns done_ns delay_ms tag` and `f start_ns end_ns` lines.
    log: Mutex<String>,
    /// The freeze in force: (start, end) as monotonic instants.
    freeze: Mutex<Option<(std::time::Instant, std::time::Instant)>>,
    served: AtomicU64,
}

async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let state = Arc::new(ServeState::default());
    let app = Router::new()
        .route("/d/{ms}/{*tag}", get(delayed))
        .route("/_freeze", post(freeze))
        .route("/_log", get(drain_log))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("bench server on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// Answers after exactly `ms` milliseconds (a blocking sleep, which the
/// kernel keeps to tens of microseconds; tokio's timer rounds to 1 ms), then
/// holds the answer while a freeze is in force.
async fn delayed(
    State(state): State<Arc<ServeState>>,
    UrlPath((ms, tag)): UrlPath<(u64, String)>,
) -> impl IntoResponse {
    let arrival_ns = now_ns();
    let arrival = std::time::Instant::now();
    if ms > 0 {
        let deadline = arrival + Duration::from_millis(ms);
        let _ = tokio::task::spawn_blocking(move || {
            std::thread::sleep(deadline.saturating_duration_since(std::time::Instant::now()))
        })
        .await;
    }
    loop {
        let held = *state.freeze.lock().unwrap();
        let now = std::time::Instant::now();
        match held {
            Some((from, until)) if from <= now && now < until => {
                tokio::time::sleep_until(until.into()).await
            }
            _ => break,
        }
    }
    let n = state.served.fetch_add(1, Ordering::Relaxed);
    let done_ns = now_ns();
    let _ = writeln!(
        state.log.lock().unwrap(),
        "a\t{arrival_ns}\t{done_ns}\t{ms}\t{tag}"
    );
    let body = format!(
        r#"{{"case":{{"id":"C-{n}","status":"open","worker":"sw.bench","team":"north"}},"notes":[{{"at":"2025-01-01T10:00:00Z","text":"visit booked"}},{{"at":"2025-01-02T11:30:00Z","text":"called family"}}],"flags":["safeguarding","review-due"]}}"#
    );
    ([(CONTENT_TYPE, "application/json")], body)
}

async fn freeze(
    State(state): State<Arc<ServeState>>,
    Query(q): Query<HashMap<String, u64>>,
) -> impl IntoResponse {
    let ms = q.get("ms").copied().unwrap_or(1000);
    let from = std::time::Instant::now();
    let from_ns = now_ns();
    *state.freeze.lock().unwrap() = Some((from, from + Duration::from_millis(ms)));
    let _ = writeln!(
        state.log.lock().unwrap(),
        "f\t{from_ns}\t{}",
        from_ns + ms * 1_000_000
    );
    "frozen\n"
}

async fn drain_log(State(state): State<Arc<ServeState>>) -> String {
    std::mem::take(&mut *state.log.lock().unwrap())
}

// ---------------------------------------------------------------- drive --

async fn drive(path: &Path, duration: Duration, out: &Path) -> anyhow::Result<()> {
    let config = Arc::new(config::load(path)?.config);
    let clients = runner::clients(&config.targets)?;
    // Browser journeys run in one browser, as in the agent.
    let browser = match config.has_browser_journeys() {
        true => Some(crate::browser::Browsing {
            pool: crate::browser::BrowserPool::new(
                config.browser.clone(),
                crate::browser::BrowserMetrics::new()?,
                tokio::runtime::Handle::current(),
            ),
            evidence: None,
        }),
        false => None,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let probes = Probes::new(tx);
    let shutdown = CancellationToken::new();
    let sessions = Arc::new(Semaphore::new(config.max_sessions.max(1)));
    let env = crate::config::secret::process_env();
    let run_ids = Arc::new(AtomicU64::new(1));
    let start = Instant::now();
    let start_ns = now_ns();
    let mut text = String::new();
    let count = config.journeys.len().max(1) as u32;
    let mut tasks = Vec::new();
    for (index, journey) in config.journeys.iter().enumerate() {
        // The agent's stagger (src/supervisor.rs).
        let offset = journey.schedule.interval.min(Duration::from_secs(2)) * index as u32 / count;
        let _ = writeln!(
            text,
            "j\t{}\t{}\t{}",
            journey.name,
            journey.schedule.interval.as_nanos(),
            start_ns + offset.as_nanos() as u64
        );
        tasks.push(tokio::spawn(journey_loop(JourneyTask {
            journey: journey.clone(),
            client: clients[&journey.target.name].clone(),
            env: env.clone(),
            sessions: sessions.clone(),
            run_ids: run_ids.clone(),
            probes: probes.clone(),
            shutdown: shutdown.clone(),
            anchor: start,
            offset,
            browser: browser.clone(),
        })));
    }
    drop(probes);
    let collector = tokio::spawn(async move {
        let mut text = String::new();
        while let Some(record) = rx.recv().await {
            match record {
                Record::Run(run) => {
                    let lateness = run
                        .actual_start
                        .duration_since(run.intended_start)
                        .unwrap_or_default();
                    for step in &run.steps {
                        let p = &step.phases;
                        let phases: Duration = [p.dns, p.connect, p.tls, p.first_byte, p.transfer]
                            .into_iter()
                            .flatten()
                            .sum();
                        let _ = writeln!(
                            text,
                            "s\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                            run.journey,
                            unix_ns(run.intended_start),
                            run.duration.as_nanos(),
                            run.outcome.as_str(),
                            unix_ns(step.sent_at),
                            step.duration.as_nanos(),
                            step.outcome.as_str(),
                            lateness.as_nanos(),
                            phases.as_nanos()
                        );
                    }
                }
                Record::MissedSlots { journey, count, .. } => {
                    let _ = writeln!(text, "m\t{journey}\t{count}\t{}", now_ns());
                }
                _ => {}
            }
        }
        text
    });
    tokio::time::sleep(duration).await;
    shutdown.cancel();
    for task in tasks {
        let _ = task.await;
    }
    text.push_str(&collector.await?);
    if let Some(browser) = browser {
        browser.pool.close().await;
    }
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

// ----------------------------------------------------------------- load --

async fn load(url: &str, rate: f64, duration: Duration) -> anyhow::Result<()> {
    if rate.is_nan() || rate <= 0.0 {
        bail!("--rate must be above zero");
    }
    let client = reqwest::Client::builder().no_proxy().build()?;
    let period = Duration::from_secs_f64(1.0 / rate);
    let total = (duration.as_secs_f64() * rate).round() as u64;
    let start = Instant::now();
    let results = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for k in 0..total {
        let intended = start + period.mul_f64(k as f64);
        tokio::time::sleep_until(intended).await;
        let (client, url, results, errors) = (
            client.clone(),
            url.to_string(),
            results.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let ok = match client.get(&url).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            if !ok {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            // From the intended send: open loop, no coordinated omission.
            results
                .lock()
                .unwrap()
                .push(intended.elapsed().as_secs_f64());
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let mut v = std::mem::take(&mut *results.lock().unwrap());
    v.sort_by(f64::total_cmp);
    println!("count {}", v.len());
    println!("errors {}", errors.load(Ordering::Relaxed));
    for (name, q) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
        println!("{name}_ms {:.3}", quantile(&v, q) * 1e3);
    }
    println!("max_ms {:.3}", v.last().copied().unwrap_or(0.0) * 1e3);
    Ok(())
}

// ------------------------------------------------------------- analysis --

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Every run's lateness (actual minus intended start) in ms, sorted.
fn lateness_ms(drive: &DriveLog) -> Vec<f64> {
    sorted(
        drive
            .steps
            .iter()
            .map(|s| s.lateness_ns as f64 / 1e6)
            .collect(),
    )
}

struct ServerLog {
    /// (arrival_ns, done_ns, tag)
    arrivals: Vec<(u64, u64, String)>,
    freezes: Vec<(u64, u64)>,
}

fn read_server_log(path: &Path) -> anyhow::Result<ServerLog> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut log = ServerLog {
        arrivals: Vec::new(),
        freezes: Vec::new(),
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["a", a, d, _ms, tag] => log.arrivals.push((a.parse()?, d.parse()?, tag.to_string())),
            ["f", a, b] => log.freezes.push((a.parse()?, b.parse()?)),
            _ => {}
        }
    }
    log.arrivals.sort();
    Ok(log)
}

struct StepLine {
    journey: String,
    intended_ns: u64,
    sent_ns: u64,
    run_ns: u64,
    step_ns: u64,
    ok: bool,
    lateness_ns: u64,
    /// The sum of the step's phases (DNS, connect, TLS, first byte,
    /// transfer), when the log has it.
    phases_ns: Option<u64>,
}

struct DriveLog {
    /// name → (interval_ns, anchor_ns)
    journeys: BTreeMap<String, (u64, u64)>,
    steps: Vec<StepLine>,
    missed: u64,
}

fn read_drive_log(path: &Path) -> anyhow::Result<DriveLog> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut log = DriveLog {
        journeys: BTreeMap::new(),
        steps: Vec::new(),
        missed: 0,
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["j", name, interval, anchor] => {
                log.journeys
                    .insert(name.to_string(), (interval.parse()?, anchor.parse()?));
            }
            ["s", journey, intended, run, _outcome, sent, step, step_outcome, late, rest @ ..]
                if rest.len() <= 1 =>
            {
                log.steps.push(StepLine {
                    journey: journey.to_string(),
                    intended_ns: intended.parse()?,
                    sent_ns: sent.parse()?,
                    run_ns: run.parse()?,
                    step_ns: step.parse()?,
                    ok: matches!(*step_outcome, "ok" | "slow" | "frozen"),
                    lateness_ns: late.parse()?,
                    phases_ns: rest.first().map(|p| p.parse()).transpose()?,
                })
            }
            ["m", _journey, count, _at] => log.missed += count.parse::<u64>()?,
            _ => {}
        }
    }
    Ok(log)
}

/// oha's `--output-format json` latency percentiles, in seconds.
fn oha_percentiles(path: &Path) -> anyhow::Result<(f64, f64, f64, u64)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let p = &v["latencyPercentiles"];
    let get = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
    let count = v["statusCodeDistribution"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(|x| x.as_u64()).sum());
    Ok((get("p50"), get("p99"), get("p99.9"), count))
}

fn pacing_errors(log: &ServerLog, gap_ms: f64) -> Vec<f64> {
    let mut by_tag: HashMap<&str, Vec<u64>> = HashMap::new();
    for (a, _, tag) in &log.arrivals {
        by_tag.entry(tag.as_str()).or_default().push(*a);
    }
    let mut errors = Vec::new();
    for arrivals in by_tag.values() {
        for w in arrivals.windows(2) {
            let gap_ms_actual = (w[1] - w[0]) as f64 / 1e6;
            errors.push((gap_ms_actual - gap_ms).abs());
        }
    }
    sorted(errors)
}

fn fidelity(
    server_log: &Path,
    delay_ms: f64,
    gap_ms: f64,
    drive_log: Option<&Path>,
    oha_json: Option<&Path>,
) -> anyhow::Result<()> {
    let log = read_server_log(server_log)?;
    let pacing = pacing_errors(&log, gap_ms);
    println!("arrivals {}", log.arrivals.len());
    println!("pacing_p50_ms {:.3}", quantile(&pacing, 0.5));
    println!("pacing_p99_ms {:.3}", quantile(&pacing, 0.99));
    let served = sorted(
        log.arrivals
            .iter()
            .map(|(a, d, _)| (*d - *a) as f64 / 1e6 - delay_ms)
            .collect(),
    );
    println!("server_hold_minus_d_p99_ms {:.3}", quantile(&served, 0.99));
    if let Some(path) = drive_log {
        let drive = read_drive_log(path)?;
        let l = sorted(
            drive
                .steps
                .iter()
                .filter(|s| s.ok)
                .map(|s| s.step_ns as f64 / 1e6 - delay_ms)
                .collect(),
        );
        println!("steps {}", l.len());
        println!("l_minus_d_p50_ms {:.3}", quantile(&l, 0.5));
        println!("l_minus_d_p99_ms {:.3}", quantile(&l, 0.99));
        // L minus what the server really held the request (done − arrival),
        // matched on the tag (the journey name) and the first arrival after
        // the send: the agent's own share, without the server's timer error.
        let mut by_tag: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
        for (a, d, tag) in &log.arrivals {
            by_tag.entry(tag.as_str()).or_default().push((*a, *d));
        }
        let own = sorted(
            drive
                .steps
                .iter()
                .filter(|s| s.ok)
                .filter_map(|s| {
                    let arrivals = by_tag.get(s.journey.as_str())?;
                    let i = arrivals.partition_point(|(a, _)| *a < s.sent_ns);
                    let (a, d) = arrivals.get(i)?;
                    Some(s.step_ns as f64 / 1e6 - (d - a) as f64 / 1e6)
                })
                .collect(),
        );
        println!("l_minus_s_p50_ms {:.3}", quantile(&own, 0.5));
        println!("l_minus_s_p99_ms {:.3}", quantile(&own, 0.99));
        // L minus the sum of its phases: the step's time that no phase
        // holds (the integration tests check the split on a paused clock;
        // this is how close it comes on a real one).
        let outside = sorted(
            drive
                .steps
                .iter()
                .filter(|s| s.ok)
                .filter_map(|s| Some((s.step_ns as f64 - s.phases_ns? as f64) / 1e6))
                .collect(),
        );
        if !outside.is_empty() {
            println!("l_minus_phases_p50_ms {:.3}", quantile(&outside, 0.5));
            println!("l_minus_phases_p99_ms {:.3}", quantile(&outside, 0.99));
            println!("l_minus_phases_max_ms {:.3}", outside[outside.len() - 1]);
        }
        let late = lateness_ms(&drive);
        println!("lateness_p99_ms {:.3}", quantile(&late, 0.99));
    }
    if let Some(path) = oha_json {
        let (p50, p99, _, count) = oha_percentiles(path)?;
        println!("steps {count}");
        println!("l_minus_d_p50_ms {:.3}", p50 * 1e3 - delay_ms);
        println!("l_minus_d_p99_ms {:.3}", p99 * 1e3 - delay_ms);
    }
    Ok(())
}

struct CoInput {
    server_log: PathBuf,
    delay_ms: f64,
    rate: f64,
    duration: Duration,
    drive_log: Option<PathBuf>,
    oha_json: Option<PathBuf>,
    wrk_out: Option<PathBuf>,
}

/// What an open-loop client sending at `t` would see from the bench server:
/// `d`, or held to the freeze's end when the answer falls inside it.
fn truth_latency_ns(t: u64, d_ns: u64, freezes: &[(u64, u64)]) -> u64 {
    let done = t + d_ns;
    for &(from, until) in freezes {
        if from <= done && done < until {
            return until - t;
        }
    }
    d_ns
}

fn co(input: CoInput) -> anyhow::Result<()> {
    let log = read_server_log(&input.server_log)?;
    let d_ns = (input.delay_ms * 1e6) as u64;
    if log.freezes.is_empty() {
        bail!("no freeze in the server log");
    }
    let (f0, f1) = log.freezes[0];
    let first = log.arrivals.first().map_or(0, |a| a.0);
    println!("freeze_at_s {:.3}", (f0 - first) as f64 / 1e9);
    println!("freeze_s {:.3}", (f1 - f0) as f64 / 1e9);
    // The open-loop schedule: the agent's timetables, or a fixed rate from
    // the first arrival.
    let drive = input.drive_log.as_deref().map(read_drive_log).transpose()?;
    let mut slots: Vec<u64> = Vec::new();
    match &drive {
        Some(drive) => {
            let end = drive.steps.iter().map(|s| s.intended_ns).max().unwrap_or(0);
            for (interval, anchor) in drive.journeys.values() {
                let mut t = *anchor;
                while t <= end {
                    slots.push(t);
                    t += interval;
                }
            }
        }
        None => {
            let period = 1e9 / input.rate;
            let n = (input.duration.as_secs_f64() * input.rate) as u64;
            slots.extend((0..n).map(|k| first + (k as f64 * period) as u64));
        }
    }
    let truth = sorted(
        slots
            .iter()
            .map(|&t| truth_latency_ns(t, d_ns, &log.freezes) as f64 / 1e6)
            .collect(),
    );
    println!("truth_samples {}", truth.len());
    println!("truth_p99_ms {:.1}", quantile(&truth, 0.99));
    println!("truth_p999_ms {:.1}", quantile(&truth, 0.999));
    let affected = slots
        .iter()
        .filter(|&&t| truth_latency_ns(t, d_ns, &log.freezes) > d_ns)
        .count();
    println!("truth_slots_in_freeze {affected}");
    if let Some(drive) = &drive {
        let steps = sorted(drive.steps.iter().map(|s| s.step_ns as f64 / 1e6).collect());
        let runs = sorted(drive.steps.iter().map(|s| s.run_ns as f64 / 1e6).collect());
        println!("agent_runs {}", runs.len());
        println!("agent_step_p99_ms {:.1}", quantile(&steps, 0.99));
        println!("agent_step_p999_ms {:.1}", quantile(&steps, 0.999));
        println!("agent_run_p99_ms {:.1}", quantile(&runs, 0.99));
        println!("agent_run_p999_ms {:.1}", quantile(&runs, 0.999));
        println!("agent_missed {}", drive.missed);
        println!(
            "omitted_slots {}",
            slots.len().saturating_sub(drive.steps.len())
        );
        let late = lateness_ms(drive);
        println!("agent_lateness_p99_ms {:.2}", quantile(&late, 0.99));
        println!(
            "agent_lateness_max_ms {:.2}",
            late.last().copied().unwrap_or(0.0)
        );
        // The correction the agent applies to its journey-duration histogram
        // (HdrHistogram's record_correct): a run of duration D over its
        // interval I stands for the slots it made miss, at D - I, D - 2I, ...
        let mut corrected = Vec::new();
        for s in &drive.steps {
            corrected.push(s.run_ns as f64);
            if let Some((interval, _)) = drive.journeys.get(&s.journey) {
                let mut v = s.run_ns as f64 - *interval as f64;
                while v > 0.0 && v >= d_ns as f64 {
                    corrected.push(v);
                    v -= *interval as f64;
                }
            }
        }
        let corrected = sorted(corrected.into_iter().map(|v| v / 1e6).collect());
        println!("agent_corrected_p99_ms {:.1}", quantile(&corrected, 0.99));
        println!("agent_corrected_p999_ms {:.1}", quantile(&corrected, 0.999));
    }
    if let Some(path) = &input.oha_json {
        let (_, p99, p999, count) = oha_percentiles(path)?;
        println!("oha_requests {count}");
        println!("oha_p99_ms {:.1}", p99 * 1e3);
        println!("oha_p999_ms {:.1}", p999 * 1e3);
    }
    if let Some(path) = &input.wrk_out {
        let text = std::fs::read_to_string(path)?;
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["cw_p99", v] => println!("wrk_p99_ms {:.1}", v.parse::<f64>()? / 1e3),
                ["cw_p999", v] => println!("wrk_p999_ms {:.1}", v.parse::<f64>()? / 1e3),
                ["cw_requests", v] => println!("wrk_requests {v}"),
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn truth_holds_answers_that_fall_in_a_freeze() {
        let ms = 1_000_000;
        let freezes = [(1000 * ms, 3000 * ms)];
        assert_eq!(truth_latency_ns(0, 10 * ms, &freezes), 10 * ms);
        assert_eq!(truth_latency_ns(995 * ms, 10 * ms, &freezes), 2005 * ms);
        assert_eq!(truth_latency_ns(2000 * ms, 10 * ms, &freezes), 1000 * ms);
        assert_eq!(truth_latency_ns(2995 * ms, 10 * ms, &freezes), 10 * ms);
    }
}
