//! The drivers: `drive` runs a config's journeys as the agent's journey
//! loop does and logs every run and missed slot; `load` is an open-loop
//! fixed-rate HTTP driver for scrapes and blackbox probes.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::outcome::{Record, RunRecord};
use crate::runner::{self, Probes};
use crate::supervisor::{journey_loop, JourneyTask};

use super::{now_ns, quantile, unix_ns};

pub(super) async fn drive(path: &Path, duration: Duration, out: &Path) -> anyhow::Result<()> {
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
    let (tx, rx) = mpsc::unbounded_channel();
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
    let collector = tokio::spawn(log_records(rx));
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

/// Every run's steps and every missed slot, one tab-separated line each.
async fn log_records(mut rx: mpsc::UnboundedReceiver<Record>) -> String {
    let mut text = String::new();
    while let Some(record) = rx.recv().await {
        match record {
            Record::Run(run) => log_run(&mut text, &run),
            Record::MissedSlots { journey, count, .. } => {
                let _ = writeln!(text, "m\t{journey}\t{count}\t{}", now_ns());
            }
            _ => {}
        }
    }
    text
}

fn log_run(text: &mut String, run: &RunRecord) {
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

// ----------------------------------------------------------------- load --

pub(super) async fn load(url: &str, rate: f64, duration: Duration) -> anyhow::Result<()> {
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
