//! Time lost per practitioner over the report's window: the model of
//! [`crate::loss`] fed one tally per working hour the agent measured (in
//! the system's calendar, so that rates and hours are on one clock), with
//! intervals and before/after comparisons under the same evidence rule as
//! every other figure:
//!
//! - an interval only from at least [`evidence::MIN_UNITS`] independent
//!   units of days holding working hours (a block bootstrap that resamples
//!   whole units, 1000 resamples, fixed seed); otherwise the figure so far,
//!   "not enough evidence yet" and about how much longer to measure;
//! - before and after a change, the hours matched like with like as in
//!   [`super::compare`]; a direction needs the interval to exclude no
//!   change, enough units on each side, and, when freezes or forced
//!   logouts drive the difference, at least [`evidence::MIN_EVENTS`] of
//!   them in as many different units.
//!
//! The wording lives in [`super::time_lost_words`].

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::compare;
use super::design::{Design, Sheet};
use super::evidence::{self, Judgement};
use super::stats::{percentile_sorted, Estimate};
use super::time_lost_words as words;
use crate::config::practitioners::Practitioners;
use crate::ledger::{ExcessTally, Ledger};
use crate::loss::{JourneyLoss, LossTally, Model};

pub const BOOTSTRAP: &str =
    "block bootstrap: whole units of days resampled, the four causes recomputed, 1000 resamples, fixed seed (95%)";
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
    /// Work done again after failed interactive runs.
    pub failed_minutes: Estimate,
    pub slow_minutes: Estimate,
    /// Staff-hours lost per month at the site: minutes × headcount × working
    /// days per month.
    pub staff_hours_per_month: Estimate,
    /// What one forced logout costs, and its parts (seconds).
    pub logout_cost_seconds: f64,
    pub relogin_seconds: f64,
    pub redo_seconds: f64,
    /// `configured` (`redo_after_logout`) or `default`.
    pub redo_source: &'static str,
    /// Failed interactive runs in working hours whose work is done again.
    pub failed_runs: u64,
    /// Working hours the agent measured in (calendar hours).
    pub working_hours_observed: f64,
    /// Time the agent measured anything, working hours or not (seconds).
    pub measured_seconds: f64,
    /// Units of days holding them.
    pub units: usize,
    /// Roughly how much longer to measure (seconds) before the figure has
    /// its interval; `None` once it has.
    pub more_time_seconds: Option<f64>,
    /// How many times faster than the wall clock the system's calendar
    /// runs (1 for a real system).
    pub calendar_scale: f64,
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

/// One working slot's tallies, with its unit of days.
struct Tally {
    unit: i64,
    loss: LossTally,
}

/// Each system's share of the practitioners' transactions.
fn weights(ledger: &Ledger, p: &Practitioners) -> BTreeMap<String, f64> {
    let mut journeys: BTreeMap<&str, &str> = BTreeMap::new();
    for j in ledger.journeys.iter().filter(|j| j.kind == "interactive") {
        journeys.insert(&j.journey, &j.target);
    }
    let total_rate: f64 = journeys.keys().map(|j| p.rate(j)).sum();
    let mut weight: BTreeMap<String, f64> = BTreeMap::new();
    for (journey, target) in &journeys {
        *weight.entry(target.to_string()).or_default() +=
            p.rate(journey) / total_rate.max(f64::MIN_POSITIVE);
    }
    weight
}

/// The tallies of `slots` that lie in working hours.
fn tallies(sheet: &Sheet<'_>, design: &Design, slots: &[i64], p: &Practitioners) -> Vec<Tally> {
    let ledger = sheet.ledger;
    let clock = design.clock;
    let weight = weights(ledger, p);
    let working: BTreeSet<i64> = slots
        .iter()
        .copied()
        .filter(|s| p.is_working_at(clock.start(*s) + clock.seconds / 2.0, clock.scale))
        .collect();
    let mut frozen: BTreeMap<i64, f64> = BTreeMap::new();
    for f in &ledger.freezes {
        let w = weight.get(f.target.as_str()).copied().unwrap_or(0.0);
        // The agent's own stall inside a freeze is not the system's.
        let length = (f.length - f.agent_stall).max(0.0);
        clock.split(f.started, f.started + length, |i, ms| {
            if working.contains(&i) {
                *frozen.entry(i).or_default() += w * ms as f64 / 1000.0 * clock.scale;
            }
        });
    }
    let list: Vec<i64> = working.iter().copied().collect();
    let drops: BTreeMap<i64, (f64, f64)> = list
        .iter()
        .copied()
        .zip(sheet.drops(design, &list, None).iter().map(|d| d.value))
        .collect();
    list.iter()
        .map(|&i| {
            let mut loss = LossTally {
                start: clock.start(i),
                working_seconds: clock.seconds * clock.scale,
                frozen_seconds: frozen.get(&i).copied().unwrap_or(0.0),
                ..LossTally::default()
            };
            if let Some((d, h)) = drops.get(&i) {
                loss.drops = *d;
                loss.session_hours = *h;
            }
            if let Some(slot) = ledger.slots.get(&i) {
                for (j, e) in &slot.excess {
                    let name = &ledger.journeys[*j as usize].journey;
                    add_tally(loss.excess.entry(name.clone()).or_default(), e);
                }
            }
            Tally {
                unit: design.unit(i),
                loss,
            }
        })
        .collect()
}

/// A slot's tally of one journey into the model's terms.
fn add_tally(j: &mut JourneyLoss, e: &ExcessTally) {
    j.over_seconds += e.over_ms as f64 / 1000.0;
    j.redo_seconds += e.redo_ms as f64 / 1000.0;
    j.failed += f64::from(e.failed);
    j.runs += f64::from(e.runs);
}

/// What a forced logout costs a practitioner: (re-login, redone work)
/// seconds, and whether the redone work was configured or the default.
fn logout_cost(ledger: &Ledger, p: &Practitioners) -> (f64, f64, &'static str) {
    let c = &ledger.cost;
    let relogin = if c.logins == 0 {
        0.0
    } else {
        c.login_ms as f64 / 1000.0 / c.logins as f64
    };
    let source = if p.redo_is_default() {
        "default"
    } else {
        "configured"
    };
    (relogin, p.redo_after_logout(), source)
}

/// The tallies grouped by unit of days.
fn by_unit(tallies: &[Tally]) -> Vec<Vec<&LossTally>> {
    let mut units: BTreeMap<i64, Vec<&LossTally>> = BTreeMap::new();
    for t in tallies {
        units.entry(t.unit).or_default().push(&t.loss);
    }
    units.into_values().collect()
}

fn resample<'a>(units: &[Vec<&'a LossTally>], rng: &mut impl Rng, into: &mut Vec<&'a LossTally>) {
    into.clear();
    for _ in 0..units.len() {
        into.extend(units[rng.random_range(0..units.len())].iter().copied());
    }
}

fn flatten<'a>(units: &[Vec<&'a LossTally>]) -> Vec<&'a LossTally> {
    units.iter().flatten().copied().collect()
}

/// Point estimates and bootstrap intervals of the four causes and the
/// total (in [`crate::loss::Minutes::all`]'s order). No interval from
/// fewer than [`evidence::MIN_UNITS`] units.
fn estimate(model: &Model<'_>, units: &[Vec<&LossTally>], seed: u64) -> [Estimate; 5] {
    let m = units.len();
    let n = units.iter().map(Vec::len).sum::<usize>() as u64;
    let Some(point) = model.minutes(&flatten(units)).map(|m| m.all()) else {
        return std::array::from_fn(|_| Estimate::none(n, BOOTSTRAP));
    };
    let mut reps: [Vec<f64>; 5] = Default::default();
    if m >= evidence::MIN_UNITS {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut pick = Vec::new();
        for _ in 0..RESAMPLES {
            resample(units, &mut rng, &mut pick);
            if let Some(minutes) = model.minutes(&pick) {
                for (r, v) in reps.iter_mut().zip(minutes.all()) {
                    r.push(v);
                }
            }
        }
    }
    std::array::from_fn(|k| {
        let mut e = Estimate::none(n, BOOTSTRAP).with_value(point[k]);
        e.units = m as u64;
        let r = &mut reps[k];
        if r.len() >= 2 {
            r.sort_by(f64::total_cmp);
            e.low = Some(percentile_sorted(r, 0.025).min(point[k]));
            e.high = Some(percentile_sorted(r, 0.975).max(point[k]));
        }
        e
    })
}

/// Real seconds of measurement before `units` units of working days
/// become [`evidence::MIN_UNITS`]; `None` once they are. Weekends hold no
/// working days when practitioners work weekdays only.
fn more_time(units: usize, design: &Design, p: &Practitioners) -> Option<f64> {
    let missing = evidence::MIN_UNITS.checked_sub(units).filter(|m| *m > 0)?;
    let per_week = if p.weekends { 1.0 } else { 7.0 / 5.0 };
    Some(missing as f64 * design.unit_seconds() * per_week)
}

/// The time-lost figure over the report's window.
pub fn time_lost(sheet: &Sheet<'_>, design: &Design, slots: &[i64], p: &Practitioners) -> TimeLost {
    let (relogin, redo, redo_source) = logout_cost(sheet.ledger, p);
    let model = Model {
        practitioners: p,
        cost_seconds: relogin + redo,
    };
    let all = tallies(sheet, design, slots, p);
    let units = by_unit(&all);
    let [frozen, logouts, failed, slow, total] = estimate(&model, &units, SEED);
    let month = f64::from(p.headcount) * p.working_days_per_month / 60.0;
    let mut t = TimeLost {
        assumptions: p.clone(),
        staff_hours_per_month: total.clone().scaled(month),
        total_minutes: total,
        frozen_minutes: frozen,
        logout_minutes: logouts,
        failed_minutes: failed,
        slow_minutes: slow,
        logout_cost_seconds: relogin + redo,
        relogin_seconds: relogin,
        redo_seconds: redo,
        redo_source,
        failed_runs: all
            .iter()
            .flat_map(|t| t.loss.excess.values())
            .map(|j| j.failed)
            .sum::<f64>() as u64,
        working_hours_observed: all.iter().map(|t| t.loss.working_seconds).sum::<f64>() / 3600.0,
        measured_seconds: slots.len() as f64 * design.clock.seconds,
        units: units.len(),
        more_time_seconds: more_time(units.len(), design, p),
        calendar_scale: design.clock.scale,
        sentence: String::new(),
    };
    t.sentence = words::sentence(&t);
    t
}

/// Time lost before and after a change at `at`, over windows of `window`
/// each side, its hours matched like with like.
pub fn change(
    sheet: &Sheet<'_>,
    design: &Design,
    p: &Practitioners,
    at: f64,
    window: f64,
) -> TimeLostChange {
    let (relogin, redo, _) = logout_cost(sheet.ledger, p);
    let model = Model {
        practitioners: p,
        cost_seconds: relogin + redo,
    };
    let design = design.split_at(at);
    let (b, a) = compare::matched(sheet, &design, at, window, None);
    let (tb, ta) = (
        tallies(sheet, &design, &b, p),
        tallies(sheet, &design, &a, p),
    );
    let (ub, ua) = (by_unit(&tb), by_unit(&ta));
    let [fb, lb, _, sb, total_b] = estimate(&model, &ub, SEED);
    let [fa, la, _, sa, total_a] = estimate(&model, &ua, SEED ^ 1);
    let change = difference(&model, &ub, &ua);
    // Which cause moves most, and the events behind it when it is one of
    // the rare ones.
    let moved =
        |x: &Estimate, y: &Estimate| (y.value.unwrap_or(0.0) - x.value.unwrap_or(0.0)).abs();
    let slow_moved = moved(&sb, &sa);
    let rare = if moved(&fb, &fa) >= moved(&lb, &la) && moved(&fb, &fa) > slow_moved {
        Some(words::Rare::Freezes)
    } else if moved(&lb, &la) > slow_moved {
        Some(words::Rare::Logouts)
    } else {
        None
    };
    let events = rare.map(|rare| {
        let count = |slots: &[i64]| {
            evidence::events(&match rare {
                words::Rare::Freezes => sheet.freezes(&design, slots, None),
                words::Rare::Logouts => sheet.drops(&design, slots, None),
            })
        };
        let ((kb, ubn), (ka, uan)) = (count(&b), count(&a));
        (kb + ka, ubn + uan)
    });
    let judgement = evidence::judge(
        &change,
        0.0,
        (ub.len(), ua.len()),
        design.unit_seconds(),
        window,
        false,
        events,
    );
    let sentence = words::change_sentence(&change, &judgement, rare);
    TimeLostChange {
        before: total_b,
        after: total_a,
        change,
        judgement,
        sentence,
    }
}

/// After minus before in total minutes, each side's units resampled.
fn difference(
    model: &Model<'_>,
    before: &[Vec<&LossTally>],
    after: &[Vec<&LossTally>],
) -> Estimate {
    let n = (before.len() + after.len()) as u64;
    let total = |t: &[&LossTally]| model.minutes(t).map(|m| m.total());
    let (Some(tb), Some(ta)) = (total(&flatten(before)), total(&flatten(after))) else {
        return Estimate::none(n, BOOTSTRAP);
    };
    let d = ta - tb;
    let mut e = Estimate::none(n, BOOTSTRAP).with_value(d);
    e.units = before.len().min(after.len()) as u64;
    if before.len() < evidence::MIN_UNITS || after.len() < evidence::MIN_UNITS {
        return e;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED ^ 2);
    let mut diffs = Vec::with_capacity(RESAMPLES);
    let (mut pb, mut pa) = (Vec::new(), Vec::new());
    for _ in 0..RESAMPLES {
        resample(before, &mut rng, &mut pb);
        resample(after, &mut rng, &mut pa);
        if let (Some(b), Some(a)) = (total(&pb), total(&pa)) {
            diffs.push(a - b);
        }
    }
    if diffs.len() >= 2 {
        diffs.sort_by(f64::total_cmp);
        e.low = Some(percentile_sorted(&diffs, 0.025).min(d));
        e.high = Some(percentile_sorted(&diffs, 0.975).max(d));
    }
    e
}
