//! Benchmarks of the agent's own inputs (issue 11): a config at the size cap
//! reloaded while a journey runs every second, and a flood of wrong
//! passwords at the web endpoints. `scripts/bench.sh` sections 6 and 7 drive
//! them; the lateness figures come from the journal the agent wrote.

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine;
use tokio::time::Instant;

use super::quantile;

/// What [`large_config`] writes.
pub struct LargeConfig<'a> {
    /// The target's base URL.
    pub base_url: &'a str,
    /// The size to fill, in bytes.
    pub bytes: usize,
    /// The path the `probe` journey GETs.
    pub probe_path: &'a str,
    /// How often `probe` runs, e.g. `1s`.
    pub probe_interval: &'a str,
}

/// A config of about `bytes` bytes: one journey `probe` on its interval, and
/// as many `idle…` journeys as fit, each with two steps that extract, assert
/// and template (the work validation does per journey), on a timetable
/// whose active hours are six hours from now, so they never send a request.
pub fn large_config(spec: &LargeConfig<'_>) -> String {
    let now = chrono::Local::now();
    let from = (now + chrono::Duration::hours(6)).format("%H:%M");
    let to = (now + chrono::Duration::hours(7)).format("%H:%M");
    let mut text = format!(
        "site: bench\nagent:\n  max_sessions: 16\ntargets:\n  - name: bench\n    base_url: {}\n    connect_timeout: 2s\n    defaults: {{ slow_after: 5s, freeze_after: 10s, give_up_after: 30s }}\njourneys:\n  - name: probe\n    target: bench\n    login: false\n    schedule: {{ interval: {} }}\n    steps:\n      - name: get\n        path: {}\n        slow_after: 50ms\n        freeze_after: 200ms\n        assert: {{ status: [200] }}\n",
        spec.base_url, spec.probe_interval, spec.probe_path
    );
    for n in 0.. {
        let journey = format!(
            r#"  - name: idle{n:05}
    target: bench
    login: false
    schedule: {{ interval: 1h, active_hours: "{from}-{to}" }}
    steps:
      - name: search
        path: /d/0/idle{n:05}
        query: {{ q: "case ${{run_id}}" }}
        headers: {{ X-Request: "idle ${{run_id}}" }}
        extract:
          - {{ var: case_id, regex: '"id":"(C-\d+)"' }}
          - {{ var: worker, jsonpath: '$.case.worker' }}
        assert:
          status: [200]
          body_contains: ['"status":"open"']
          body_matches: ['"worker":"sw\.[a-z]+"']
      - name: open
        path: /d/0/idle{n:05}/${{case_id}}
        assert: {{ status: [200], body_not_contains: ["error"] }}
"#
        );
        if text.len() + journey.len() > spec.bytes {
            break;
        }
        text.push_str(&journey);
    }
    // Fill the rest with a comment, so the file is the size asked for.
    let room = spec.bytes.saturating_sub(text.len());
    if room >= 3 {
        text.push('#');
        text.push_str(&" ".repeat(room - 2));
        text.push('\n');
    }
    text
}

/// `bench large-config`: writes [`large_config`] to `out`.
pub fn write_large_config(spec: &LargeConfig<'_>, out: &Path) -> anyhow::Result<()> {
    let text = large_config(spec);
    std::fs::write(out, &text).with_context(|| format!("cannot write {}", out.display()))?;
    println!("bytes {}", text.len());
    println!("journeys {}", text.matches("\n  - name: ").count() - 1);
    Ok(())
}

/// `bench lateness`: the lateness and missed slots of one journey's runs in
/// a journal (those meant to start within `window`, in Unix seconds), from
/// the intended and actual start the agent recorded.
pub fn lateness(journal: &Path, journey: &str, window: Range<f64>) -> anyhow::Result<()> {
    let db =
        rusqlite::Connection::open_with_flags(journal, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open {}", journal.display()))?;
    let mut query = db.prepare(
        "SELECT actual_start - intended_start, outcome FROM runs WHERE journey = ?1 AND intended_start >= ?2 AND intended_start < ?3 ORDER BY intended_start",
    )?;
    let (from, to) = (window.start, window.end.min(f64::MAX));
    let rows = query.query_map(rusqlite::params![journey, from, to], |row| {
        Ok((row.get::<_, f64>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut late = Vec::new();
    let mut failed = 0;
    for row in rows {
        let (seconds, outcome) = row?;
        late.push(seconds.max(0.0) * 1e3);
        if outcome != "ok" && outcome != "slow" {
            failed += 1;
        }
    }
    late.sort_by(f64::total_cmp);
    let missed: i64 = db.query_row(
        "SELECT COALESCE(SUM(count), 0) FROM missed_slots WHERE journey = ?1 AND at >= ?2 AND at < ?3",
        rusqlite::params![journey, from, to],
        |row| row.get(0),
    )?;
    println!("runs {}", late.len());
    println!("failed {failed}");
    println!("missed {missed}");
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        println!("lateness_{name}_ms {:.3}", quantile(&late, q));
    }
    println!(
        "lateness_max_ms {:.3}",
        late.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

/// `bench hash-password`: a bcrypt hash of `$BENCH_PASSWORD`, for a web config.
pub fn hash_password(cost: u32) -> anyhow::Result<()> {
    let password = std::env::var("BENCH_PASSWORD").context("set BENCH_PASSWORD")?;
    println!("{}", bcrypt::hash(password, cost)?);
    Ok(())
}

/// `bench reloads`: `POST /-/reload` `count` times, `every` apart; prints how
/// long each took.
pub async fn reloads(url: &str, every: Duration, count: u32) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let mut took = Vec::new();
    let mut failed = 0;
    let start = Instant::now();
    for k in 0..count {
        tokio::time::sleep_until(start + every * k).await;
        let sent = Instant::now();
        match client.post(url).send().await {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
            }
            _ => failed += 1,
        }
        took.push(sent.elapsed().as_secs_f64() * 1e3);
    }
    took.sort_by(f64::total_cmp);
    println!("reloads {}", took.len());
    println!("failed {failed}");
    println!("reload_p50_ms {:.1}", quantile(&took, 0.5));
    println!(
        "reload_max_ms {:.1}",
        took.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

/// What [`auth_flood`] sends.
pub struct AuthFlood<'a> {
    pub url: &'a str,
    pub user: &'a str,
    /// Wrong-password requests in all, each with a password of its own.
    pub wrong: usize,
    /// How many of them are in flight at once.
    pub concurrency: usize,
    /// Correct scrapes per second while the flood lasts (open loop).
    pub scrape_rate: f64,
    /// How long to scrape before the flood, for figures to compare with.
    pub quiet: Duration,
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// Correct scrapes at `rate`, each timed from its intended send, until
/// `done` says stop; returns the sorted times (ms) and the failures.
async fn scrapes_until(
    client: &reqwest::Client,
    url: &str,
    authorization: &str,
    rate: f64,
    mut done: impl FnMut() -> bool,
) -> (Vec<f64>, u64) {
    let period = Duration::from_secs_f64(1.0 / rate);
    let errors = Arc::new(AtomicU64::new(0));
    let times = Arc::new(Mutex::new(Vec::new()));
    let mut scrapes = Vec::new();
    let start = Instant::now();
    let mut k = 0u32;
    while !done() {
        let intended = start + period * k;
        k += 1;
        tokio::time::sleep_until(intended).await;
        let (client, url, authorization, errors, times) = (
            client.clone(),
            url.to_string(),
            authorization.to_string(),
            errors.clone(),
            times.clone(),
        );
        scrapes.push(tokio::spawn(async move {
            let ok = match client
                .get(&url)
                .header("authorization", authorization)
                .send()
                .await
            {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            if !ok {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            times
                .lock()
                .unwrap()
                .push(intended.elapsed().as_secs_f64() * 1e3);
        }));
    }
    for scrape in scrapes {
        let _ = scrape.await;
    }
    let mut times = std::mem::take(&mut *times.lock().unwrap());
    times.sort_by(f64::total_cmp);
    (times, errors.load(Ordering::Relaxed))
}

fn print_times(prefix: &str, times: &[f64], errors: u64) {
    println!("{prefix}_count {}", times.len());
    println!("{prefix}_errors {errors}");
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        println!("{prefix}_{name}_ms {:.3}", quantile(times, q));
    }
    println!(
        "{prefix}_max_ms {:.3}",
        times.last().copied().unwrap_or(f64::NAN)
    );
}

fn unix_now() -> f64 {
    crate::outcome::unix_secs(std::time::SystemTime::now())
}

/// `bench auth-flood`: correct scrapes (`$BENCH_PASSWORD`) for `quiet`, then
/// wrong passwords `concurrency` at a time while correct scrapes go on, each
/// timed from its intended send. Prints both phases and the flood's start
/// and end (Unix seconds), to read the journal's lateness for each.
pub async fn auth_flood(flood: &AuthFlood<'_>) -> anyhow::Result<()> {
    if flood.concurrency == 0 || flood.scrape_rate.is_nan() || flood.scrape_rate <= 0.0 {
        bail!("--concurrency and --scrape-rate must be above zero");
    }
    let password = std::env::var("BENCH_PASSWORD").context("set BENCH_PASSWORD")?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .build()?;
    let good = basic(flood.user, &password);
    // One correct scrape first, as Prometheus's first scrape would be.
    let first = client
        .get(flood.url)
        .header("authorization", &good)
        .send()
        .await?;
    if !first.status().is_success() {
        bail!("the correct password was refused: {}", first.status());
    }

    let quiet_end = Instant::now() + flood.quiet;
    let (quiet, quiet_errors) = scrapes_until(&client, flood.url, &good, flood.scrape_rate, || {
        Instant::now() >= quiet_end
    })
    .await;

    let next = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(Mutex::new(std::collections::BTreeMap::<u16, u64>::new()));
    let flood_start = unix_now();
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..flood.concurrency {
        let (client, next, statuses) = (client.clone(), next.clone(), statuses.clone());
        let (url, user, wrong) = (flood.url.to_string(), flood.user.to_string(), flood.wrong);
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= wrong {
                    break;
                }
                let header = basic(&user, &format!("wrong-password-{i}"));
                let status = match client
                    .get(&url)
                    .header("authorization", header)
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                *statuses.lock().unwrap().entry(status).or_default() += 1;
            }
        });
    }
    let flood_done = tokio::spawn(async move { while workers.join_next().await.is_some() {} });

    let (during, errors) = scrapes_until(&client, flood.url, &good, flood.scrape_rate, || {
        flood_done.is_finished()
    })
    .await;
    let flood_s = start.elapsed().as_secs_f64();
    println!("flood_start {flood_start:.6}");
    println!("flood_end {:.6}", flood_start + flood_s);
    println!("flood_s {flood_s:.2}");
    for (status, count) in statuses.lock().unwrap().iter() {
        println!("wrong_status_{status} {count}");
    }
    print_times("quiet", &quiet, quiet_errors);
    print_times("good", &during, errors);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_large_config_has_the_size_asked_for_and_loads() {
        let text = large_config(&LargeConfig {
            base_url: "http://127.0.0.1:1/",
            bytes: 64 * 1024,
            probe_path: "/ping",
            probe_interval: "1s",
        });
        assert_eq!(text.len(), 64 * 1024);
        let loaded = crate::config::from_yaml_str(&text, "large.yaml").unwrap();
        assert!(loaded.config.journeys.len() > 100);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }
}
