//! The figures: reads the server's and the drivers' logs (and oha's JSON)
//! and prints `key value` lines: pacing fidelity (`fidelity`) and
//! coordinated omission (`co`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

/// Nearest-rank quantile of sorted values.
pub(super) fn quantile(sorted: &[f64], q: f64) -> f64 {
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

pub(super) fn fidelity(
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

pub(super) struct CoInput {
    pub(super) server_log: PathBuf,
    pub(super) delay_ms: f64,
    pub(super) rate: f64,
    pub(super) duration: Duration,
    pub(super) drive_log: Option<PathBuf>,
    pub(super) oha_json: Option<PathBuf>,
    pub(super) wrk_out: Option<PathBuf>,
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

pub(super) fn co(input: CoInput) -> anyhow::Result<()> {
    let log = read_server_log(&input.server_log)?;
    let d_ns = (input.delay_ms * 1e6) as u64;
    if log.freezes.is_empty() {
        bail!("no freeze in the server log");
    }
    let (f0, f1) = log.freezes[0];
    let first = log.arrivals.first().map_or(0, |a| a.0);
    println!("freeze_at_s {:.3}", (f0 - first) as f64 / 1e9);
    println!("freeze_s {:.3}", (f1 - f0) as f64 / 1e9);
    let drive = input.drive_log.as_deref().map(read_drive_log).transpose()?;
    let slots = open_loop_slots(drive.as_ref(), &input, first);
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
        print_agent_figures(drive, slots.len(), d_ns);
    }
    if let Some(path) = &input.oha_json {
        let (_, p99, p999, count) = oha_percentiles(path)?;
        println!("oha_requests {count}");
        println!("oha_p99_ms {:.1}", p99 * 1e3);
        println!("oha_p999_ms {:.1}", p999 * 1e3);
    }
    if let Some(path) = &input.wrk_out {
        print_wrk_figures(path)?;
    }
    Ok(())
}

/// The open-loop schedule: the agent's timetables, or a fixed rate from the
/// first arrival.
fn open_loop_slots(drive: Option<&DriveLog>, input: &CoInput, first: u64) -> Vec<u64> {
    let mut slots: Vec<u64> = Vec::new();
    match drive {
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
    slots
}

fn print_agent_figures(drive: &DriveLog, slot_count: usize, d_ns: u64) {
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
        slot_count.saturating_sub(drive.steps.len())
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

/// The `cw_*` lines (microseconds) that the wrk script of scripts/bench.sh
/// prints, in milliseconds.
fn print_wrk_figures(path: &Path) -> anyhow::Result<()> {
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
