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

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Subcommand;

mod drive;
mod figures;
pub mod history;
pub mod hostile;
pub mod journals;
mod serve;

use drive::{drive, load};
use figures::{co, fidelity, quantile, CoInput};
use serve::serve;

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
            let end = match end {
                Some(text) => crate::report::command::parse_time(&text, SystemTime::now())?,
                None => SystemTime::now(),
            };
            write_journals(journals::FleetSpec {
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
            })
            .await
        }
    }
}

/// Writes the fleet's journals and says how many, how large and how long.
async fn write_journals(spec: journals::FleetSpec) -> anyhow::Result<()> {
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

/// Nanoseconds since the Unix epoch: the clock every bench log is written in.
fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn now_ns() -> u64 {
    unix_ns(SystemTime::now())
}
