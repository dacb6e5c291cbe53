//! Calibration: the report's before/after intervals and claims, proven on
//! synthetic journals whose truth is known.
//!
//! A known process stands in for a case system measured by the agent:
//! journeys every five minutes, latencies that follow a weekly cycle (busy
//! weekday hours, quiet nights, quieter weekends), freezes that come in
//! bursts (a bad spell brings several episodes) and stall every step in
//! flight, and kept sessions dropped one at a time or all at once by a
//! restart. Each replication draws a journal around a change and runs the
//! report's own comparison ([`compare::change_evidence`]) on it. Across
//! replications:
//!
//! - with no effect, a direction is claimed in at most 5% of them;
//! - with a known effect, the 95% intervals cover it in at least 93%;
//! - whenever a direction is claimed, it is the right one.
//!
//! `casewatch bench calibrate` prints the figures; a test runs a smaller,
//! seeded set and holds them.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal, Poisson};
use serde::Serialize;

use super::compare::{self, ChangeEvidence, Observations};
use super::evidence::{Calendar, Direction};

/// The known process.
#[derive(Clone, Debug, Serialize)]
pub struct Process {
    /// Runs of each journey are this far apart (seconds).
    pub interval: f64,
    pub journeys: usize,
    pub steps_per_run: usize,
    /// Median step latency off-peak (ms), and the log-normal spread.
    pub median_ms: f64,
    pub sigma: f64,
    /// Latency factor in busy weekday hours (08:00-18:00) and at weekends.
    pub busy_factor: f64,
    pub weekend_factor: f64,
    /// Bad spells per hour off-peak (twice as many in busy hours); each
    /// brings 1 + Poisson(`burst`) freeze episodes within 15 minutes.
    pub spells_per_hour: f64,
    pub burst: f64,
    /// Median freeze length (s) and its log-normal spread.
    pub freeze_median: f64,
    pub freeze_sigma: f64,
    /// A step not complete after this long is frozen; after `give_up` it is
    /// given up on (seconds).
    pub freeze_after: f64,
    pub give_up: f64,
    /// Kept sessions, their forced-logout hazard per session-hour, and
    /// restarts per hour, which drop every session at once.
    pub sessions: usize,
    pub hazard: f64,
    pub restarts_per_hour: f64,
}

impl Default for Process {
    fn default() -> Self {
        Process {
            interval: 300.0,
            journeys: 2,
            steps_per_run: 3,
            median_ms: 250.0,
            sigma: 0.6,
            busy_factor: 1.8,
            weekend_factor: 0.8,
            spells_per_hour: 0.05,
            burst: 1.5,
            freeze_median: 40.0,
            freeze_sigma: 0.7,
            freeze_after: 20.0,
            give_up: 120.0,
            sessions: 3,
            hazard: 0.05,
            restarts_per_hour: 0.01,
        }
    }
}

/// What changes at the change: factors on latency, freeze spells and
/// forced logouts (1 = no effect).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Effect {
    pub latency: f64,
    pub freezes: f64,
    pub logouts: f64,
}

impl Effect {
    pub const NONE: Effect = Effect {
        latency: 1.0,
        freezes: 1.0,
        logouts: 1.0,
    };
}

/// One calibration scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    pub name: &'static str,
    pub effect: Effect,
    /// Days of data on each side of the change.
    pub days: f64,
    /// Unix time of the change.
    pub change_at: f64,
}

/// 2026-06-05, a Friday, at noon UTC: a change whose two-day windows hold
/// weekday hours before and a weekend after, so only matching makes them
/// comparable.
pub const FRIDAY_NOON: f64 = 1_780_660_800.0;
/// 2026-06-03, a Wednesday, at noon UTC.
pub const WEDNESDAY_NOON: f64 = 1_780_488_000.0;

pub fn scenarios() -> Vec<Scenario> {
    let faster = Effect {
        latency: 0.6,
        freezes: 0.4,
        logouts: 2.5,
    };
    vec![
        Scenario {
            name: "no effect, a week each side",
            effect: Effect::NONE,
            days: 7.0,
            change_at: WEDNESDAY_NOON,
        },
        Scenario {
            name: "no effect, two days each side, weekdays against a weekend",
            effect: Effect::NONE,
            days: 2.0,
            change_at: FRIDAY_NOON,
        },
        Scenario {
            name: "known effect, a week each side",
            effect: faster,
            days: 7.0,
            change_at: WEDNESDAY_NOON,
        },
    ]
}

fn cycle_factor(process: &Process, calendar: &Calendar, t: f64) -> f64 {
    let cell = calendar.cell(t);
    let (weekend, hour) = (cell >= 24, cell % 24);
    if weekend {
        process.weekend_factor
    } else if (8..18).contains(&hour) {
        process.busy_factor
    } else {
        1.0
    }
}

/// Draws what the agent would record over `[from, to)`, with `effect` from
/// `change_at` on.
pub fn observe(
    process: &Process,
    from: f64,
    to: f64,
    change_at: f64,
    effect: Effect,
    rng: &mut impl Rng,
) -> Observations {
    let calendar = Calendar::default();
    let factor = |t: f64, f: fn(&Effect) -> f64| if t >= change_at { f(&effect) } else { 1.0 };
    let mut obs = Observations {
        run_interval: process.interval,
        ..Observations::default()
    };

    // Freeze episodes: bursts of them, twice as often in busy hours.
    let freeze_len =
        LogNormal::new(process.freeze_median.ln(), process.freeze_sigma).expect("valid log-normal");
    let mut t = from;
    let peak = 2.0 * process.spells_per_hour * effect.freezes.max(1.0);
    let gap = Exp::new(peak / 3600.0).expect("positive rate");
    loop {
        t += gap.sample(rng);
        if t >= to {
            break;
        }
        let busy = cycle_factor(process, &calendar, t) == process.busy_factor;
        let rate =
            process.spells_per_hour * if busy { 2.0 } else { 1.0 } * factor(t, |e| e.freezes);
        if rng.random::<f64>() * peak > rate {
            continue;
        }
        let extra = if process.burst > 0.0 {
            Poisson::new(process.burst).map_or(0.0, |p| p.sample(rng))
        } else {
            0.0
        };
        for _ in 0..(1 + extra as usize) {
            let start = t + rng.random::<f64>() * 900.0;
            if start < to {
                obs.freezes.push((start, freeze_len.sample(rng)));
            }
        }
    }
    obs.freezes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let longest = obs.freezes.iter().map(|f| f.1).fold(0.0, f64::max);

    // Journeys on their timetable; a step sent into a freeze waits for it.
    let base = LogNormal::new(process.median_ms.ln(), process.sigma).expect("valid log-normal");
    for journey in 0..process.journeys {
        let offset = process.interval * journey as f64 / process.journeys as f64;
        let mut slot = from + offset;
        while slot < to {
            let mut sent = slot + rng.random::<f64>() * 20.0;
            let mut ok = true;
            for _ in 0..process.steps_per_run {
                let work = base.sample(rng) / 1000.0
                    * cycle_factor(process, &calendar, sent)
                    * factor(sent, |e| e.latency);
                // Episodes that began before the work was done and had
                // not ended when the step was sent.
                let end = obs.freezes.partition_point(|(s, _)| *s <= sent + work);
                let begin = obs.freezes.partition_point(|(s, _)| *s < sent - longest);
                let stalled_until = obs.freezes[begin..end]
                    .iter()
                    .filter(|(s, len)| s + len > sent)
                    .map(|(s, len)| s + len)
                    .fold(sent + work, f64::max);
                let took = stalled_until - sent;
                let given_up = took > process.give_up;
                obs.steps
                    .push((sent, took.min(process.give_up) * 1000.0, given_up));
                if took > process.freeze_after {
                    ok = false;
                    break;
                }
                sent += took;
            }
            obs.runs.push((slot, ok));
            slot += process.interval;
        }
    }
    obs.freezes.retain(|(s, _)| *s >= from && *s < to);

    // Kept sessions: dropped one at a time by the hazard, or all at once
    // by a restart; a new one starts at once.
    let mut lives: Vec<f64> = vec![from; process.sessions];
    let peak = (process.hazard * process.sessions as f64 + process.restarts_per_hour)
        * effect.logouts.max(1.0);
    let gap = Exp::new(peak / 3600.0).expect("positive rate");
    let mut t = from;
    loop {
        t += gap.sample(rng);
        if t >= to {
            break;
        }
        let f = factor(t, |e| e.logouts);
        let single = process.hazard * process.sessions as f64 * f;
        let restart = process.restarts_per_hour * f;
        let u = rng.random::<f64>() * peak;
        let ended: Vec<usize> = if u < single {
            vec![rng.random_range(0..process.sessions)]
        } else if u < single + restart {
            (0..process.sessions).collect()
        } else {
            continue;
        };
        for i in ended {
            obs.exposure.push((lives[i], t));
            obs.drops.push(t);
            lives[i] = t;
        }
    }
    obs.exposure
        .extend(lives.into_iter().map(|start| (start, to)));
    obs
}

/// The process's true p95 (ms) of completed interactive steps under
/// `effect`, from a long run over whole weeks.
pub fn true_p95(process: &Process, effect: Effect, weeks: usize, seed: u64) -> f64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let from = WEDNESDAY_NOON;
    let to = from + weeks as f64 * 7.0 * 86_400.0;
    // The effect applies throughout.
    let obs = observe(process, from, to, from, effect, &mut rng);
    let mut done: Vec<f64> = obs.steps.iter().filter(|s| !s.2).map(|s| s.1).collect();
    done.sort_by(f64::total_cmp);
    super::stats::percentile_sorted(&done, 0.95)
}

/// How one measure fared over the replications.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MeasureFigures {
    pub replications: usize,
    pub higher_claimed: usize,
    pub lower_claimed: usize,
    /// Replications with no interval at all (no event on either side).
    pub no_interval: usize,
    /// Replications whose interval covered the truth.
    pub covered: usize,
    /// Claims in the wrong direction (any claim, with no effect).
    pub wrong_claims: usize,
}

impl MeasureFigures {
    pub fn claimed_share(&self) -> f64 {
        (self.higher_claimed + self.lower_claimed) as f64 / self.replications.max(1) as f64
    }

    /// Share of the intervals given that covered the truth.
    pub fn coverage(&self) -> f64 {
        self.covered as f64 / (self.replications - self.no_interval).max(1) as f64
    }

    fn add(&mut self, judged: Option<Direction>, covered: Option<bool>, truth: Option<Direction>) {
        self.replications += 1;
        match covered {
            Some(c) => self.covered += usize::from(c),
            None => self.no_interval += 1,
        }
        match judged {
            Some(Direction::Higher) => self.higher_claimed += 1,
            Some(Direction::Lower) => self.lower_claimed += 1,
            None => {}
        }
        if judged.is_some() && judged != truth {
            self.wrong_claims += 1;
        }
    }
}

/// A scenario's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    pub scenario: Scenario,
    pub true_p95_difference_ms: f64,
    pub p95: MeasureFigures,
    pub freeze_rate: MeasureFigures,
    pub logout_rate: MeasureFigures,
    /// Mean matched blocks per side, and the block length used.
    pub mean_blocks: f64,
    pub block_seconds: f64,
}

fn truth_direction(value: f64, null: f64) -> Option<Direction> {
    if (value - null).abs() < 1e-9 {
        None
    } else if value > null {
        Some(Direction::Higher)
    } else {
        Some(Direction::Lower)
    }
}

/// Runs `replications` of `scenario`, seeded; the true p95s come from
/// `truth_weeks` of the process.
pub fn run(
    process: &Process,
    scenario: &Scenario,
    replications: usize,
    seed: u64,
    truth_weeks: usize,
) -> Figures {
    let before = true_p95(process, Effect::NONE, truth_weeks, seed ^ 0x5eed);
    let after = true_p95(process, scenario.effect, truth_weeks, seed ^ 0x5eed);
    let truth_p95 = if scenario.effect.latency == 1.0 {
        0.0
    } else {
        after - before
    };
    let window = scenario.days * 86_400.0;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut figures = Figures {
        scenario: scenario.clone(),
        true_p95_difference_ms: truth_p95,
        p95: MeasureFigures::default(),
        freeze_rate: MeasureFigures::default(),
        logout_rate: MeasureFigures::default(),
        mean_blocks: 0.0,
        block_seconds: 0.0,
    };
    let mut blocks = 0usize;
    for _ in 0..replications {
        let at = scenario.change_at;
        let obs = observe(
            process,
            at - window,
            at + window,
            at,
            scenario.effect,
            &mut rng,
        );
        let block = compare::block_length(&obs, at - window, at + window, at);
        let e: ChangeEvidence =
            compare::change_evidence(&obs, at, window, &Calendar::default(), block);
        blocks += e.blocks_before.min(e.blocks_after);
        figures.block_seconds = figures.block_seconds.max(block);
        figures.p95.add(
            e.p95_ms.judgement.direction,
            e.p95_ms
                .change
                .low
                .map(|_| e.p95_ms.change.covers(truth_p95)),
            truth_direction(truth_p95, 0.0),
        );
        let ratio_covers = |m: &compare::Measure, truth: f64| {
            m.change
                .low
                .map(|l| l <= truth && m.change.high.is_none_or(|h| truth <= h))
        };
        figures.freeze_rate.add(
            e.freeze_rate.judgement.direction,
            ratio_covers(&e.freeze_rate, scenario.effect.freezes),
            truth_direction(scenario.effect.freezes, 1.0),
        );
        figures.logout_rate.add(
            e.logout_rate.judgement.direction,
            ratio_covers(&e.logout_rate, scenario.effect.logouts),
            truth_direction(scenario.effect.logouts, 1.0),
        );
    }
    figures.mean_blocks = blocks as f64 / replications.max(1) as f64;
    figures
}

/// The figures as a Markdown table.
pub fn markdown(all: &[Figures], replications: usize, seed: u64, took: Duration) -> String {
    let mut out = format!(
        "{replications} replications per scenario, seed {seed}, {:.1} s.\n\n\
         | scenario | measure | truth | claimed higher | claimed lower | wrong claims | no interval | interval covers truth |\n\
         |---|---|---|---:|---:|---:|---:|---:|\n",
        took.as_secs_f64()
    );
    for f in all {
        for (name, truth, m) in [
            (
                "p95 difference",
                format!("{:+.0} ms", f.true_p95_difference_ms),
                &f.p95,
            ),
            (
                "freeze rate ratio",
                format!("{:.2}", f.scenario.effect.freezes),
                &f.freeze_rate,
            ),
            (
                "logout rate ratio",
                format!("{:.2}", f.scenario.effect.logouts),
                &f.logout_rate,
            ),
        ] {
            out.push_str(&format!(
                "| {} | {name} | {truth} | {:.1}% | {:.1}% | {} | {} | {:.1}% |\n",
                f.scenario.name,
                100.0 * m.higher_claimed as f64 / m.replications.max(1) as f64,
                100.0 * m.lower_claimed as f64 / m.replications.max(1) as f64,
                m.wrong_claims,
                m.no_interval,
                100.0 * m.coverage()
            ));
        }
    }
    out.push_str(&format!(
        "\nBlocks: {} s; matched blocks per side (mean): {}.\n",
        all.iter().map(|f| f.block_seconds).fold(0.0, f64::max),
        all.iter()
            .map(|f| format!("{:.0} ({})", f.mean_blocks, f.scenario.name))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report's claims and intervals hold on data whose truth is known.
    #[test]
    fn intervals_cover_and_claims_are_right_on_a_known_process() {
        let process = Process::default();
        let replications = 100;
        for scenario in scenarios() {
            let f = run(&process, &scenario, replications, 7, 10);
            let name = scenario.name;
            eprintln!("{name}: {f:?}");
            for (measure, m) in [
                ("p95", &f.p95),
                ("freezes", &f.freeze_rate),
                ("logouts", &f.logout_rate),
            ] {
                if scenario.effect.latency == 1.0 {
                    assert!(m.claimed_share() <= 0.05, "{name}, {measure}: {m:?}");
                } else {
                    assert_eq!(m.wrong_claims, 0, "{name}, {measure}: {m:?}");
                    assert!(m.coverage() >= 0.93, "{name}, {measure}: {m:?}");
                }
            }
        }
    }
}
