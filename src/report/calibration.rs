//! Calibration: the report's before/after intervals and claims, proven on
//! synthetic ledgers whose truth is known.
//!
//! A known process stands in for a case system measured by the agent, with
//! what real systems have and an idealised one lacks:
//!
//! - journeys every five minutes whose latency follows a weekly cycle (busy
//!   weekday hours, quiet nights, quieter weekends);
//! - **days that differ**: each day's latency multiplied by a log-normal day
//!   effect (σ 0.05 or 0.10), each week's by a week effect, and hour to
//!   hour an autocorrelated (AR(1)) drift on top of each step's own noise;
//! - freezes that come in bursts (a bad spell brings several episodes over
//!   the next three hours, across hour boundaries) and stall every step in
//!   flight; occasional errors; kept sessions dropped one at a time or all
//!   at once by a restart;
//! - **realistic effects**: latency × 0.95 and × 0.9, freezes × 0.5.
//!
//! Each replication draws a ledger around a change and runs the report's
//! own comparison ([`compare::change_evidence`]) on it, with the unit of
//! days the report would choose. Across replications:
//!
//! - with no effect, a direction is claimed in at most 5% of them;
//! - with a known effect, the 95% intervals cover it in at least 93%;
//! - claims in the wrong direction stay at or below 0.5%;
//! - and the power: how often the right direction is stated, for each
//!   effect and length of measurement.
//!
//! `casewatch-bench calibrate` prints the figures; a test runs a smaller,
//! seeded set on every build and holds them.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution as _, Exp, LogNormal, Normal, Poisson};
use serde::Serialize;

use super::compare::{self, ChangeEvidence, Measure};
use super::design::{self, cell_at, Design, Sheet};
use super::evidence::{self, Direction};
use crate::detect::AgeBands;
use crate::ledger::{ForcedLogout, Freeze, JourneyKey, Ledger, SlotClock, StepKey, DAY};

/// The known process.
#[derive(Clone, Debug, Serialize)]
pub struct Process {
    /// Runs of each journey are this far apart (seconds).
    pub interval: f64,
    pub journeys: usize,
    pub steps_per_run: usize,
    /// Median step latency off-peak (ms), and each step's log-normal spread.
    pub median_ms: f64,
    pub sigma: f64,
    /// Latency factor in busy weekday hours (08:00-18:00) and at weekends.
    pub busy_factor: f64,
    pub weekend_factor: f64,
    /// Log-normal spread of each day's and each week's latency factor.
    pub day_sigma: f64,
    pub week_sigma: f64,
    /// Hour-to-hour drift of log latency: AR(1) with this coefficient and
    /// innovation spread.
    pub drift_rho: f64,
    pub drift_sigma: f64,
    /// Bad spells per hour off-peak (twice as many in busy hours); each
    /// brings 1 + Poisson(`burst`) freeze episodes over the next three hours.
    pub spells_per_hour: f64,
    pub burst: f64,
    /// Median freeze length (s) and its log-normal spread.
    pub freeze_median: f64,
    pub freeze_sigma: f64,
    /// A step not complete after this long is frozen; after `give_up` it is
    /// given up on (seconds).
    pub freeze_after: f64,
    pub give_up: f64,
    /// Runs that fail for other reasons.
    pub error_share: f64,
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
            day_sigma: 0.05,
            week_sigma: 0.0,
            drift_rho: 0.7,
            drift_sigma: 0.05,
            spells_per_hour: 0.05,
            burst: 1.5,
            freeze_median: 40.0,
            freeze_sigma: 0.7,
            freeze_after: 20.0,
            give_up: 120.0,
            error_share: 0.004,
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
    /// Day-to-day and week-to-week spread of latency (log-normal σ).
    pub day_sigma: f64,
    pub week_sigma: f64,
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
    let none = Effect::NONE;
    let latency = |f: f64| Effect {
        latency: f,
        ..Effect::NONE
    };
    let freezes = Effect {
        freezes: 0.5,
        ..Effect::NONE
    };
    let s = |name, effect, day_sigma, days, change_at| Scenario {
        name,
        effect,
        day_sigma,
        week_sigma: 0.0,
        days,
        change_at,
    };
    vec![
        s(
            "no effect, days vary 5%, 4 weeks each side",
            none,
            0.05,
            28.0,
            WEDNESDAY_NOON,
        ),
        s(
            "no effect, days vary 10%, 4 weeks each side",
            none,
            0.10,
            28.0,
            WEDNESDAY_NOON,
        ),
        s(
            "no effect, 2 days each side, weekdays against a weekend",
            none,
            0.05,
            2.0,
            FRIDAY_NOON,
        ),
        s(
            "latency x0.95, days vary 5%, 4 weeks each side",
            latency(0.95),
            0.05,
            28.0,
            WEDNESDAY_NOON,
        ),
        s(
            "latency x0.9, days vary 5%, 2 weeks each side",
            latency(0.9),
            0.05,
            14.0,
            WEDNESDAY_NOON,
        ),
        s(
            "latency x0.9, days vary 5%, 4 weeks each side",
            latency(0.9),
            0.05,
            28.0,
            WEDNESDAY_NOON,
        ),
        s(
            "latency x0.9, days vary 10%, 4 weeks each side",
            latency(0.9),
            0.10,
            28.0,
            WEDNESDAY_NOON,
        ),
        s(
            "freezes x0.5, 4 weeks each side",
            freezes,
            0.05,
            28.0,
            WEDNESDAY_NOON,
        ),
        // Weeks that differ too: a drift four weeks a side cannot show.
        Scenario {
            week_sigma: 0.02,
            ..s(
                "no effect, days vary 5% and weeks 2%, 4 weeks each side",
                none,
                0.05,
                28.0,
                WEDNESDAY_NOON,
            )
        },
    ]
}

fn cycle_factor(process: &Process, t: f64) -> f64 {
    let cell = cell_at(t);
    let (weekend, hour) = (cell >= 24, cell % 24);
    if weekend {
        process.weekend_factor
    } else if (8..18).contains(&hour) {
        process.busy_factor
    } else {
        1.0
    }
}

/// Draws what the agent would record over `[from, to)`, with `effect`
/// from `change_at` on, as a ledger in hourly slots.
pub fn observe(
    process: &Process,
    from: f64,
    to: f64,
    change_at: f64,
    effect: Effect,
    rng: &mut impl Rng,
) -> Ledger {
    let clock = SlotClock::hourly(1.0);
    let mut ledger = Ledger::new(clock, None, &AgeBands::default());
    let change = Change {
        at: change_at,
        effect,
    };
    let target = ledger.target_id("ics");

    // The draws come in a fixed order (freezes, drift, runs, sessions), so
    // a seed gives the same ledger every time.
    let freezes = freeze_episodes(process, from, to, &change, rng);
    let load = Load::draw(process, from, to, rng);
    let conditions = Conditions::new(process, (from, to), change, freezes, load);
    let steps = step_ids(&mut ledger, process);
    for (journey, journey_steps) in steps.iter().enumerate() {
        conditions.journey_runs(&mut ledger, target, journey, journey_steps, rng);
    }
    record_freezes(&mut ledger, conditions.freezes, from, to);
    kept_sessions(&mut ledger, process, &change, target, from, to, rng);
    ledger.sort_events();
    ledger
}

/// The change and what it does from its time on.
#[derive(Clone, Copy)]
struct Change {
    at: f64,
    effect: Effect,
}

impl Change {
    /// The factor `f` picks from the effect at time `t`: 1 before the change.
    fn factor(&self, t: f64, f: fn(&Effect) -> f64) -> f64 {
        if t >= self.at {
            f(&self.effect)
        } else {
            1.0
        }
    }
}

/// Freeze episodes, by start: bursts of them over the next three hours,
/// twice as often in busy hours.
fn freeze_episodes(
    process: &Process,
    from: f64,
    to: f64,
    change: &Change,
    rng: &mut impl Rng,
) -> Vec<(f64, f64)> {
    let freeze_len =
        LogNormal::new(process.freeze_median.ln(), process.freeze_sigma).expect("valid log-normal");
    let mut freezes: Vec<(f64, f64)> = Vec::new();
    let peak = 2.0 * process.spells_per_hour * change.effect.freezes.max(1.0);
    let gap = Exp::new(peak / 3600.0).expect("positive rate");
    let mut t = from - 3.0 * 3600.0;
    loop {
        t += gap.sample(rng);
        if t >= to {
            break;
        }
        let busy = cycle_factor(process, t) == process.busy_factor;
        let rate = process.spells_per_hour
            * if busy { 2.0 } else { 1.0 }
            * change.factor(t, |e| e.freezes);
        if rng.random::<f64>() * peak > rate {
            continue;
        }
        let extra = Poisson::new(process.burst).map_or(0.0, |p| p.sample(rng));
        for _ in 0..(1 + extra as usize) {
            freezes.push((
                t + rng.random::<f64>() * 3.0 * 3600.0,
                freeze_len.sample(rng),
            ));
        }
    }
    freezes.sort_by(|a, b| a.0.total_cmp(&b.0));
    freezes
}

/// Latency drift: a factor per day, per week and per hour.
struct Load {
    first_day: i64,
    days: usize,
    day_effect: Vec<f64>,
    week_effect: Vec<f64>,
    first_hour: i64,
    hours: usize,
    drift: Vec<f64>,
}

impl Load {
    fn draw(process: &Process, from: f64, to: f64, rng: &mut impl Rng) -> Load {
        let normal = |s: f64| Normal::new(0.0, s.max(1e-12)).expect("valid normal");
        let (day_noise, week_noise, hour_noise) = (
            normal(process.day_sigma),
            normal(process.week_sigma),
            normal(process.drift_sigma),
        );
        let first_day = (from / DAY).floor() as i64;
        let days = ((to - from) / DAY).ceil() as usize + 2;
        let day_effect: Vec<f64> = (0..days).map(|_| day_noise.sample(rng)).collect();
        let week_effect: Vec<f64> = (0..days / 7 + 2).map(|_| week_noise.sample(rng)).collect();
        let first_hour = (from / 3600.0).floor() as i64;
        let hours = ((to - from) / 3600.0).ceil() as usize + 2;
        let mut drift = Vec::with_capacity(hours);
        let mut level = 0.0;
        for _ in 0..hours {
            level = process.drift_rho * level + hour_noise.sample(rng);
            drift.push(level);
        }
        Load {
            first_day,
            days,
            day_effect,
            week_effect,
            first_hour,
            hours,
            drift,
        }
    }

    /// The latency factor at time `t`.
    fn at(&self, t: f64) -> f64 {
        let d = ((t / DAY).floor() as i64 - self.first_day).clamp(0, self.days as i64 - 1) as usize;
        let h = ((t / 3600.0).floor() as i64 - self.first_hour).clamp(0, self.hours as i64 - 1)
            as usize;
        (self.day_effect[d] + self.week_effect[d / 7] + self.drift[h]).exp()
    }
}

/// Each journey's step ids, `j0`..`s0`.. under target `ics`.
fn step_ids(ledger: &mut Ledger, process: &Process) -> Vec<Vec<u16>> {
    (0..process.journeys)
        .map(|j| {
            (0..process.steps_per_run)
                .map(|s| {
                    ledger.step_id(&StepKey {
                        target: "ics".into(),
                        journey: format!("j{j}"),
                        step: format!("s{s}"),
                        kind: "interactive".into(),
                        phase: "journey".into(),
                        report_same: false,
                        report_any: false,
                    })
                })
                .collect()
        })
        .collect()
}

/// What every journey run over `[from, to)` meets: the process, the
/// change, the freeze episodes and the latency drift.
struct Conditions<'a> {
    process: &'a Process,
    from: f64,
    to: f64,
    change: Change,
    freezes: Vec<(f64, f64)>,
    longest: f64,
    load: Load,
    base: LogNormal<f64>,
}

impl<'a> Conditions<'a> {
    fn new(
        process: &'a Process,
        (from, to): (f64, f64),
        change: Change,
        freezes: Vec<(f64, f64)>,
        load: Load,
    ) -> Self {
        let longest = freezes.iter().map(|f| f.1).fold(0.0, f64::max);
        let base = LogNormal::new(process.median_ms.ln(), process.sigma).expect("valid log-normal");
        Conditions {
            process,
            from,
            to,
            change,
            freezes,
            longest,
            load,
            base,
        }
    }

    /// One journey on its timetable.
    fn journey_runs(
        &self,
        ledger: &mut Ledger,
        target: u16,
        journey: usize,
        steps: &[u16],
        rng: &mut impl Rng,
    ) {
        let process = self.process;
        let key = ledger.journey_id(&JourneyKey {
            site: "site".into(),
            target: "ics".into(),
            journey: format!("j{journey}"),
            kind: "interactive".into(),
        });
        let offset = process.interval * journey as f64 / process.journeys as f64;
        let mut slot = self.from + offset;
        while slot < self.to {
            let (outcome, run_end) = self.run(ledger, steps, slot, rng);
            ledger.add_run(key, slot, outcome);
            ledger.add_flight(target, slot, run_end);
            slot += process.interval;
        }
    }

    /// One run from `slot`: its outcome and when it ended. A step sent into
    /// a freeze waits for it.
    fn run(
        &self,
        ledger: &mut Ledger,
        steps: &[u16],
        slot: f64,
        rng: &mut impl Rng,
    ) -> (&'static str, f64) {
        let process = self.process;
        let mut sent = slot + rng.random::<f64>() * 20.0;
        let mut run_end = sent;
        let mut outcome = if rng.random::<f64>() < process.error_share {
            "http_error"
        } else {
            "ok"
        };
        for &step in steps {
            let work = self.base.sample(rng) / 1000.0
                * cycle_factor(process, sent)
                * self.load.at(sent)
                * self.change.factor(sent, |e| e.latency);
            let took = self.stalled_until(sent, work) - sent;
            run_end = sent + took.min(process.give_up);
            if took > process.give_up {
                ledger.add_given_up(step, sent, process.give_up);
            } else {
                ledger.add_sample(step, sent, took);
            }
            if took > process.freeze_after {
                outcome = "frozen";
                break;
            }
            sent += took;
        }
        (outcome, run_end)
    }

    /// When a step sent at `sent` needing `work` seconds completes: the
    /// end of the latest episode that began before the work was done and
    /// had not ended when the step was sent.
    fn stalled_until(&self, sent: f64, work: f64) -> f64 {
        let freezes = &self.freezes;
        let end = freezes.partition_point(|(s, _)| *s <= sent + work);
        let begin = freezes.partition_point(|(s, _)| *s < sent - self.longest);
        freezes[begin..end]
            .iter()
            .filter(|(s, len)| s + len > sent)
            .map(|(s, len)| s + len)
            .fold(sent + work, f64::max)
    }
}

/// The freeze episodes that began in `[from, to)`, as the agent records them.
fn record_freezes(ledger: &mut Ledger, freezes: Vec<(f64, f64)>, from: f64, to: f64) {
    for (started, length) in freezes.into_iter().filter(|f| f.0 >= from && f.0 < to) {
        ledger.freezes.push(Freeze {
            site: "site".into(),
            target: "ics".into(),
            started,
            length,
            censored: false,
            agent_stall: 0.0,
        });
    }
}

/// Kept sessions: dropped one at a time by the hazard, or all at once by a
/// restart; a new one starts at once.
fn kept_sessions(
    ledger: &mut Ledger,
    process: &Process,
    change: &Change,
    target: u16,
    from: f64,
    to: f64,
    rng: &mut impl Rng,
) {
    let mut lives: Vec<f64> = vec![from; process.sessions];
    let peak = (process.hazard * process.sessions as f64 + process.restarts_per_hour)
        * change.effect.logouts.max(1.0);
    let gap = Exp::new(peak / 3600.0).expect("positive rate");
    let mut t = from;
    loop {
        t += gap.sample(rng);
        if t >= to {
            break;
        }
        let f = change.factor(t, |e| e.logouts);
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
            forced_logout(ledger, target, i, lives[i], t);
            lives[i] = t;
        }
    }
    for start in lives {
        ledger.add_exposure(target, 0, start, to);
    }
}

/// Kept session `i`, logged in at `login_at`, forced out at `t`.
fn forced_logout(ledger: &mut Ledger, target: u16, i: usize, login_at: f64, t: f64) {
    ledger.add_exposure(target, 0, login_at, t);
    ledger.forced_logouts.push(ForcedLogout {
        site: "site".into(),
        target: "ics".into(),
        login_at,
        alive_age: t - login_at,
        seen_age: t - login_at,
        seen_at: t,
        cause: "redirect".into(),
        holder_kind: "kept".into(),
        holder: format!("kept session {i}"),
    });
}

/// The process's true p95 (ms) of completed interactive steps under
/// `effect`, from a long run over whole weeks.
pub fn true_p95(process: &Process, effect: Effect, weeks: usize, seed: u64) -> f64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let from = WEDNESDAY_NOON;
    let to = from + weeks as f64 * 7.0 * DAY;
    // The effect applies throughout.
    let ledger = observe(process, from, to, from, effect, &mut rng);
    let sheet = Sheet::new(&ledger);
    let design = Design::new(ledger.clock(), 1);
    let slots: Vec<i64> = ledger.slots.keys().copied().collect();
    let parts = sheet.latencies(&design, &slots, StepKey::is_interactive);
    evidence::quantile(&parts, 0.95, 0.05).value.unwrap_or(0.0)
}

/// How one measure fared over the replications.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MeasureFigures {
    pub replications: usize,
    pub higher_claimed: usize,
    pub lower_claimed: usize,
    /// Replications with no interval at all.
    pub no_interval: usize,
    /// Replications whose interval covered the truth.
    pub covered: usize,
    /// Claims in the wrong direction (any claim, with no effect).
    pub wrong_claims: usize,
    /// Sum of the intervals' widths (ms for latency; the log of the
    /// ratio for rates), for the mean.
    pub width_sum: f64,
}

impl MeasureFigures {
    pub fn claimed_share(&self) -> f64 {
        (self.higher_claimed + self.lower_claimed) as f64 / self.replications.max(1) as f64
    }

    /// Share of the intervals given that covered the truth.
    pub fn coverage(&self) -> f64 {
        self.covered as f64 / (self.replications - self.no_interval).max(1) as f64
    }

    pub fn wrong_share(&self) -> f64 {
        self.wrong_claims as f64 / self.replications.max(1) as f64
    }

    /// Share of replications that stated the true direction.
    pub fn power(&self, truth: Option<Direction>) -> f64 {
        let right = match truth {
            Some(Direction::Higher) => self.higher_claimed,
            Some(Direction::Lower) => self.lower_claimed,
            None => 0,
        };
        right as f64 / self.replications.max(1) as f64
    }

    pub fn mean_width(&self) -> f64 {
        self.width_sum / (self.replications - self.no_interval).max(1) as f64
    }

    fn add(&mut self, m: &Measure, truth: f64, null: f64, ratio: bool) {
        self.replications += 1;
        let e = &m.change;
        let truth_dir = truth_direction(truth, null);
        match (e.low, e.high) {
            (Some(l), h) if e.value.is_some() || h.is_none() => {
                let covered = l <= truth && h.is_none_or(|h| truth <= h);
                self.covered += usize::from(covered);
                if let Some(h) = h {
                    self.width_sum += if ratio {
                        (h.max(1e-9) / l.max(1e-9)).ln()
                    } else {
                        h - l
                    };
                }
            }
            _ => self.no_interval += 1,
        }
        match m.judgement.direction {
            Some(Direction::Higher) => self.higher_claimed += 1,
            Some(Direction::Lower) => self.lower_claimed += 1,
            None => {}
        }
        if m.judgement.direction.is_some() && m.judgement.direction != truth_dir {
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
    /// Mean units of days per side, and the longest unit chosen.
    pub mean_units: f64,
    pub unit_days: u32,
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

/// One replication's comparison, as the report makes it.
pub fn replicate(
    process: &Process,
    scenario: &Scenario,
    rng: &mut impl Rng,
) -> (ChangeEvidence, u32) {
    let process = Process {
        day_sigma: scenario.day_sigma,
        week_sigma: scenario.week_sigma,
        ..process.clone()
    };
    let at = scenario.change_at;
    let window = scenario.days * DAY;
    let ledger = observe(&process, at - window, at + window, at, scenario.effect, rng);
    let sheet = Sheet::new(&ledger);
    let longest = ledger.freezes.iter().map(|f| f.length).fold(0.0, f64::max);
    let unit_days = design::unit_days(&sheet, ledger.clock(), longest, &[at]);
    let design = Design::new(ledger.clock(), unit_days);
    (
        compare::change_evidence(&sheet, &design, at, window, None),
        unit_days,
    )
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
    let truth_process = Process {
        day_sigma: scenario.day_sigma,
        week_sigma: scenario.week_sigma,
        ..process.clone()
    };
    let truth_p95 = if scenario.effect.latency == 1.0 {
        0.0
    } else {
        true_p95(&truth_process, scenario.effect, truth_weeks, seed ^ 0x5eed)
            - true_p95(&truth_process, Effect::NONE, truth_weeks, seed ^ 0x5eed)
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut figures = Figures {
        scenario: scenario.clone(),
        true_p95_difference_ms: truth_p95,
        p95: MeasureFigures::default(),
        freeze_rate: MeasureFigures::default(),
        logout_rate: MeasureFigures::default(),
        mean_units: 0.0,
        unit_days: 1,
    };
    let mut units = 0usize;
    for _ in 0..replications {
        let (e, unit_days) = replicate(process, scenario, &mut rng);
        units += e.units_before.min(e.units_after);
        figures.unit_days = figures.unit_days.max(unit_days);
        figures.p95.add(&e.p95_ms, truth_p95, 0.0, false);
        figures
            .freeze_rate
            .add(&e.freeze_rate, scenario.effect.freezes, 1.0, true);
        figures
            .logout_rate
            .add(&e.logout_rate, scenario.effect.logouts, 1.0, true);
    }
    figures.mean_units = units as f64 / replications.max(1) as f64;
    figures
}

/// The figures as a Markdown table.
pub fn markdown(all: &[Figures], replications: usize, seed: u64, took: Duration) -> String {
    let mut out = format!(
        "{replications} replications per scenario, seed {seed}, {:.1} s.\n\n",
        took.as_secs_f64()
    );
    let header = [
        ("scenario", false),
        ("measure", false),
        ("truth", false),
        ("claimed higher", true),
        ("claimed lower", true),
        ("wrong way", true),
        ("no interval", true),
        ("interval covers truth", true),
        ("mean width", true),
        ("units a side", true),
        ("unit", true),
    ];
    let mut rows = Vec::new();
    for f in all {
        for (name, truth, m, width) in [
            (
                "p95 difference",
                format!("{:+.1} ms", f.true_p95_difference_ms),
                &f.p95,
                format!("{:.1} ms", f.p95.mean_width()),
            ),
            (
                "freeze rate ratio",
                format!("{:.2}", f.scenario.effect.freezes),
                &f.freeze_rate,
                format!("x{:.2}", f.freeze_rate.mean_width().exp()),
            ),
            (
                "logout rate ratio",
                format!("{:.2}", f.scenario.effect.logouts),
                &f.logout_rate,
                format!("x{:.2}", f.logout_rate.mean_width().exp()),
            ),
        ] {
            rows.push(vec![
                f.scenario.name.to_string(),
                name.to_string(),
                truth,
                format!(
                    "{:.1}%",
                    100.0 * m.higher_claimed as f64 / m.replications.max(1) as f64
                ),
                format!(
                    "{:.1}%",
                    100.0 * m.lower_claimed as f64 / m.replications.max(1) as f64
                ),
                format!("{:.1}%", 100.0 * m.wrong_share()),
                m.no_interval.to_string(),
                format!("{:.1}%", 100.0 * m.coverage()),
                width,
                format!("{:.1}", f.mean_units),
                format!("{} d", f.unit_days),
            ]);
        }
    }
    super::markdown::table(&mut out, &header, rows);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report's claims and intervals hold on data whose truth is known:
    /// a seeded, smaller set of the calibration, on every build.
    #[test]
    fn intervals_cover_and_claims_are_right_when_days_differ() {
        let process = Process::default();
        let replications = 40;
        let chosen = [
            "no effect, days vary 10%",
            "latency x0.9, days vary 5%, 2 weeks",
            "freezes x0.5",
        ];
        for scenario in scenarios()
            .into_iter()
            .filter(|s| chosen.iter().any(|c| s.name.starts_with(c)))
        {
            let mut scenario = scenario;
            scenario.days = scenario.days.min(14.0);
            let f = run(&process, &scenario, replications, 7, 6);
            let name = scenario.name;
            eprintln!("{name}: {f:?}");
            let effects = [
                ("p95", &f.p95, scenario.effect.latency),
                ("freezes", &f.freeze_rate, scenario.effect.freezes),
                ("logouts", &f.logout_rate, scenario.effect.logouts),
            ];
            for (measure, m, effect) in effects {
                // Binomial bounds for 40 replications: a true 5% gives more
                // than 6 claims less than 1% of the time; a true 95%
                // coverage gives fewer than 34 less than 1% of the time.
                if effect == 1.0 {
                    assert!(m.claimed_share() <= 6.0 / 40.0, "{name}, {measure}: {m:?}");
                } else {
                    assert_eq!(m.wrong_claims, 0, "{name}, {measure}: {m:?}");
                }
                if m.replications > m.no_interval {
                    assert!(m.coverage() >= 34.0 / 40.0, "{name}, {measure}: {m:?}");
                }
            }
        }
    }

    #[test]
    fn two_days_each_side_are_not_enough() {
        let scenario = scenarios().into_iter().find(|s| s.days == 2.0).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (e, _) = replicate(&Process::default(), &scenario, &mut rng);
        assert!(!e.p95_ms.judgement.enough_units);
        assert_eq!(e.p95_ms.judgement.direction, None);
    }
}
