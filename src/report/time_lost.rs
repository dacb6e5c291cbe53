//! Time lost per practitioner in the report: the figure the board asked
//! about, built from the journal's rows and the site's `practitioners:`
//! assumptions with the model of [`crate::loss`] (what each cause counts).
//!
//! Per practitioner per working day, in minutes, during working hours only.
//! The report tallies each block of time in working hours where a journey
//! ran, and measures what a forced logout costs: the measured re-login time
//! plus the work redone (the configured `redo_after_logout`, or else the
//! measured time of the interrupted journeys up to their logout, or else
//! half a typical run).
//!
//! Intervals resample whole blocks of time (the same blocks as the rest of
//! the report) and recompute all three: a block bootstrap with a fixed seed.
//! Before and after a change, blocks are matched like with like
//! ([`evidence::match_by_cell`]) and the difference is judged under the
//! minimum-evidence rule.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::evidence::{self, BlockGrid, Calendar, Direction, Judgement};
use super::model::{is_success, Rows};
use super::stats::{percentile_sorted, Estimate};
use crate::config::practitioners::Practitioners;
use crate::loss::{assumptions, LossTally, Model};
use crate::timefmt::human_duration;

pub const BOOTSTRAP: &str =
    "block bootstrap: whole blocks of time resampled, the three causes recomputed, 1000 resamples, fixed seed (95%)";
const RESAMPLES: usize = 1000;
const SEED: u64 = 20_261_201;

#[derive(Clone, Debug, Serialize)]
pub struct TimeLost {
    /// The assumptions behind every figure here, and which were defaults.
    pub assumptions: Practitioners,
    /// Minutes per practitioner per working day.
    pub total_minutes: Estimate,
    pub frozen_minutes: Estimate,
    pub logout_minutes: Estimate,
    pub slow_minutes: Estimate,
    /// Staff-hours lost per month at the site: minutes × headcount × working
    /// days per month.
    pub staff_hours_per_month: Estimate,
    /// What one forced logout costs, and its parts (seconds).
    pub logout_cost_seconds: f64,
    pub relogin_seconds: f64,
    pub redo_seconds: f64,
    /// `configured`, `measured` (interrupted journeys) or `half a run`.
    pub redo_source: &'static str,
    /// Working hours the agent measured in.
    pub working_hours_observed: f64,
    pub blocks: usize,
    pub sentence: String,
}

/// One change's effect on time lost.
#[derive(Clone, Debug, Serialize)]
pub struct TimeLostChange {
    pub before: Estimate,
    pub after: Estimate,
    /// After minus before: negative means time given back.
    pub change: Estimate,
    pub judgement: Judgement,
    pub sentence: String,
}

/// Whether the block starting at `start` lies in working hours.
fn working(p: &Practitioners, calendar: &Calendar, start: f64) -> bool {
    p.is_working_at(start, calendar.scale)
}

/// Tallies per block of `grid` in working hours where a journey ran.
pub fn tallies(rows: &Rows, grid: &BlockGrid, p: &Practitioners) -> Vec<LossTally> {
    // Each system's share of the practitioners' transactions.
    let mut journeys: BTreeMap<&str, &str> = BTreeMap::new();
    for r in rows.runs.iter().filter(|r| r.kind == "interactive") {
        journeys.insert(&r.journey, &r.target);
    }
    let total_rate: f64 = journeys.keys().map(|j| p.rate(j)).sum();
    let mut weight: BTreeMap<&str, f64> = BTreeMap::new();
    for (journey, target) in &journeys {
        *weight.entry(target).or_default() += p.rate(journey) / total_rate.max(f64::MIN_POSITIVE);
    }

    let mut blocks: BTreeMap<i64, LossTally> = BTreeMap::new();
    let ran: std::collections::BTreeSet<i64> = rows
        .runs
        .iter()
        .filter_map(|r| grid.index(r.intended_start))
        .collect();
    for &i in &ran {
        let (start, end) = grid.bounds(i);
        if working(p, &rows.calendar, start) {
            blocks.insert(
                i,
                LossTally {
                    start,
                    working_seconds: end - start,
                    ..LossTally::default()
                },
            );
        }
    }
    for f in &rows.freezes {
        let w = weight.get(f.target.as_str()).copied().unwrap_or(0.0);
        for (i, secs) in grid.split(f.started, f.started + f.length) {
            if let Some(t) = blocks.get_mut(&i) {
                t.frozen_seconds += w * secs;
            }
        }
    }
    for s in &rows.spans {
        for (i, secs) in grid.split(s.login_at + s.age_from, s.login_at + s.age_to) {
            if let Some(t) = blocks.get_mut(&i) {
                t.session_hours += secs / 3600.0;
            }
        }
        if s.dropped {
            let at = s.login_at + super::model::drop_age(s);
            if let Some(t) = grid.index(at).and_then(|i| blocks.get_mut(&i)) {
                t.drops += 1.0;
            }
        }
    }
    let run_block: BTreeMap<i64, (i64, &str)> = rows
        .runs
        .iter()
        .filter(|r| r.kind == "interactive")
        .filter_map(|r| Some((r.id, (grid.index(r.intended_start)?, r.journey.as_str()))))
        .collect();
    for (i, journey) in run_block.values() {
        if let Some(t) = blocks.get_mut(i) {
            t.excess.entry(journey.to_string()).or_default().1 += 1.0;
        }
    }
    // Steps that completed before freezing: a frozen step's wait is in the
    // freezes' share already.
    for s in rows
        .steps
        .iter()
        .filter(|s| s.phase == "journey" && s.kind == "interactive" && is_success(&s.outcome))
    {
        let over = s.duration - p.acceptable_seconds;
        if over <= 0.0 {
            continue;
        }
        if let Some((i, journey)) = run_block.get(&s.run_id) {
            if let Some(t) = blocks.get_mut(i) {
                t.excess.entry(journey.to_string()).or_default().0 += over;
            }
        }
    }
    blocks.into_values().collect()
}

/// Re-login and redone work per forced logout (seconds), and where the
/// redone work came from.
fn logout_cost(rows: &Rows, p: &Practitioners) -> (f64, f64, &'static str) {
    let mut logins: BTreeMap<i64, (f64, bool)> = BTreeMap::new();
    let mut interrupted: BTreeMap<i64, f64> = BTreeMap::new();
    let mut stopped: std::collections::BTreeSet<i64> = Default::default();
    for s in &rows.steps {
        match s.phase.as_str() {
            "login" => {
                let e = logins.entry(s.run_id).or_insert((0.0, true));
                e.0 += s.duration;
                e.1 &= is_success(&s.outcome);
            }
            "journey" if !stopped.contains(&s.run_id) => {
                *interrupted.entry(s.run_id).or_default() += s.duration;
                if s.outcome == "logged_out" {
                    stopped.insert(s.run_id);
                }
            }
            _ => {}
        }
    }
    let good: Vec<f64> = logins.values().filter(|l| l.1).map(|l| l.0).collect();
    let relogin = mean(&good);
    if let Some(redo) = p.redo_after_logout_seconds {
        return (relogin, redo, "configured");
    }
    let cut: Vec<f64> = stopped
        .iter()
        .filter_map(|id| interrupted.get(id).copied())
        .collect();
    if !cut.is_empty() {
        return (relogin, mean(&cut), "measured");
    }
    let runs: Vec<f64> = rows
        .runs
        .iter()
        .filter(|r| r.kind == "interactive" && is_success(&r.outcome))
        .map(|r| r.duration)
        .collect();
    (relogin, mean(&runs) / 2.0, "half a run")
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Point estimates and bootstrap intervals of the three causes and total.
fn estimate(model: &Model<'_>, tallies: &[&LossTally], seed: u64) -> [Estimate; 4] {
    let n = tallies.len() as u64;
    let Some((f, l, s)) = model.minutes(tallies) else {
        return std::array::from_fn(|_| Estimate::none(n, BOOTSTRAP));
    };
    let mut reps: [Vec<f64>; 4] = Default::default();
    if tallies.len() > 1 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut pick: Vec<&LossTally> = Vec::with_capacity(tallies.len());
        for _ in 0..RESAMPLES {
            pick.clear();
            pick.extend((0..tallies.len()).map(|_| tallies[rng.random_range(0..tallies.len())]));
            if let Some((a, b, c)) = model.minutes(&pick) {
                for (r, v) in reps.iter_mut().zip([a, b, c, a + b + c]) {
                    r.push(v);
                }
            }
        }
    }
    let point = [f, l, s, f + l + s];
    std::array::from_fn(|k| {
        let r = &mut reps[k];
        if r.len() < 2 {
            return Estimate {
                value: Some(point[k]),
                low: None,
                high: None,
                n,
                method: BOOTSTRAP,
            };
        }
        r.sort_by(f64::total_cmp);
        Estimate::new(
            point[k],
            percentile_sorted(r, 0.025).min(point[k]),
            percentile_sorted(r, 0.975).max(point[k]),
            n,
            BOOTSTRAP,
        )
    })
}

/// The time-lost figure over the report's window.
pub fn time_lost(rows: &Rows, grid: &BlockGrid, p: &Practitioners) -> TimeLost {
    let (relogin, redo, redo_source) = logout_cost(rows, p);
    let model = Model {
        practitioners: p,
        cost_seconds: relogin + redo,
    };
    let all = tallies(rows, grid, p);
    let refs: Vec<&LossTally> = all.iter().collect();
    let [frozen, logouts, slow, total] = estimate(&model, &refs, SEED);
    let month = f64::from(p.headcount) * p.working_days_per_month / 60.0;
    let staff_hours = total.clone().scaled(month);
    let working_hours_observed = all.iter().map(|t| t.working_seconds).sum::<f64>() / 3600.0;
    let sentence = sentence(
        p,
        &total,
        &frozen,
        &logouts,
        &slow,
        &staff_hours,
        working_hours_observed,
    );
    TimeLost {
        assumptions: p.clone(),
        total_minutes: total,
        frozen_minutes: frozen,
        logout_minutes: logouts,
        slow_minutes: slow,
        staff_hours_per_month: staff_hours,
        logout_cost_seconds: relogin + redo,
        relogin_seconds: relogin,
        redo_seconds: redo,
        redo_source,
        working_hours_observed,
        blocks: all.len(),
        sentence,
    }
}

fn minutes(e: &Estimate) -> String {
    match (e.value, e.low, e.high) {
        (Some(v), Some(l), Some(h)) => format!("{v:.1} (95% CI {l:.1} to {h:.1})"),
        (Some(v), _, _) => format!("{v:.1}"),
        _ => "no data".into(),
    }
}

fn sentence(
    p: &Practitioners,
    total: &Estimate,
    frozen: &Estimate,
    logouts: &Estimate,
    slow: &Estimate,
    staff_hours: &Estimate,
    observed: f64,
) -> String {
    if total.value.is_none() {
        return format!(
            "Time lost per practitioner cannot be estimated yet: the agent measured nothing in working hours ({}).",
            assumptions(p)
        );
    }
    format!(
        "Each practitioner loses about {} minutes a working day: {} to freezes, {} to forced logouts and {} to slowness; about {} staff-hours a month at this site. Measured over {} of working hours; assumptions: {}.",
        minutes(total),
        minutes(frozen),
        minutes(logouts),
        minutes(slow),
        minutes(staff_hours),
        human_duration(observed * 3600.0),
        assumptions(p)
    )
}

/// Time lost before and after a change at `at`, over windows of `window`
/// each side cut into blocks of `block` and matched like with like.
pub fn change(rows: &Rows, p: &Practitioners, at: f64, window: f64, block: f64) -> TimeLostChange {
    let (relogin, redo, _) = logout_cost(rows, p);
    let model = Model {
        practitioners: p,
        cost_seconds: relogin + redo,
    };
    let grid = BlockGrid::new(at - window, at + window, at, block);
    let all = tallies(rows, &grid, p);
    let (before, after): (Vec<&LossTally>, Vec<&LossTally>) =
        all.iter().partition(|t| t.start < at);
    let (b, a) = evidence::match_by_cell(&rows.calendar, &keyed(&before), &keyed(&after));
    let [.., tb] = estimate(&model, &b, SEED);
    let [.., ta] = estimate(&model, &a, SEED ^ 1);
    let change = difference(&model, &b, &a);
    let judgement = evidence::judge(&change, 0.0, (b.len(), a.len()), block, window, false);
    let figure = minutes(&change);
    let sentence = match judgement.direction {
        Some(Direction::Lower) => format!(
            "it gave back about {} minutes a day per practitioner",
            minutes(&change.clone().scaled(-1.0))
        ),
        Some(Direction::Higher) => {
            format!("it cost about {figure} more minutes a day per practitioner")
        }
        None if !judgement.enough_blocks => format!(
            "not enough evidence yet on time lost ({} of {} comparable working-hour blocks on the thinner side)",
            b.len().min(a.len()),
            evidence::MIN_BLOCKS
        ),
        None => format!("no clear change in time lost: {figure} minutes a day per practitioner"),
    };
    TimeLostChange {
        before: tb,
        after: ta,
        change,
        judgement,
        sentence,
    }
}

fn keyed<'a>(tallies: &[&'a LossTally]) -> Vec<(f64, &'a LossTally)> {
    tallies.iter().map(|t| (t.start, *t)).collect()
}

/// After minus before in total minutes, each side's blocks resampled.
fn difference(model: &Model<'_>, before: &[&LossTally], after: &[&LossTally]) -> Estimate {
    let n = (before.len() + after.len()) as u64;
    let total = |t: &[&LossTally]| model.minutes(t).map(|(a, b, c)| a + b + c);
    let (Some(tb), Some(ta)) = (total(before), total(after)) else {
        return Estimate::none(n, BOOTSTRAP);
    };
    if before.len() < 2 || after.len() < 2 {
        return Estimate {
            value: Some(ta - tb),
            low: None,
            high: None,
            n,
            method: BOOTSTRAP,
        };
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED ^ 2);
    let mut diffs = Vec::with_capacity(RESAMPLES);
    let (mut pb, mut pa) = (Vec::new(), Vec::new());
    for _ in 0..RESAMPLES {
        pb.clear();
        pa.clear();
        pb.extend((0..before.len()).map(|_| before[rng.random_range(0..before.len())]));
        pa.extend((0..after.len()).map(|_| after[rng.random_range(0..after.len())]));
        if let (Some(b), Some(a)) = (total(&pb), total(&pa)) {
            diffs.push(a - b);
        }
    }
    diffs.sort_by(f64::total_cmp);
    let d = ta - tb;
    Estimate::new(
        d,
        percentile_sorted(&diffs, 0.025).min(d),
        percentile_sorted(&diffs, 0.975).max(d),
        n,
        BOOTSTRAP,
    )
}
