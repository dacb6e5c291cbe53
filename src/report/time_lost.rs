//! Time lost per practitioner over the report's window: the model of
//! [`crate::loss`] fed one tally per working hour the agent measured (in
//! the system's calendar, so that rates and hours are on one clock), with
//! intervals and before/after comparisons under the same evidence rule as
//! every other figure:
//!
//! - an interval only from at least [`evidence::MIN_UNITS`] independent
//!   units of days (a block bootstrap that resamples whole units, 1000
//!   resamples, fixed seed); otherwise the figure alone and "not enough
//!   evidence yet";
//! - before and after a change, the hours matched like with like as in
//!   [`super::compare`]; a direction needs the interval to exclude no
//!   change, enough units on each side, and, when freezes or forced
//!   logouts drive the difference, at least [`evidence::MIN_EVENTS`] of
//!   them in as many different units.

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::compare;
use super::design::{Design, Sheet};
use super::evidence::{self, Direction, Judgement};
use super::stats::{percentile_sorted, Estimate};
use super::words::{figure, show};
use crate::config::practitioners::Practitioners;
use crate::ledger::Ledger;
use crate::loss::{assumptions, LossTally, Model};
use crate::timefmt::human_duration;

pub const BOOTSTRAP: &str =
    "block bootstrap: whole units of days resampled, the three causes recomputed, 1000 resamples, fixed seed (95%)";
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
    /// Working hours the agent measured in (calendar hours).
    pub working_hours_observed: f64,
    /// Units of days holding them.
    pub units: usize,
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

/// The tallies of `slots` that lie in working hours.
fn tallies(sheet: &Sheet<'_>, design: &Design, slots: &[i64], p: &Practitioners) -> Vec<Tally> {
    let ledger = sheet.ledger;
    let clock = design.clock;
    // Each system's share of the practitioners' transactions.
    let mut journeys: BTreeMap<&str, &str> = BTreeMap::new();
    for j in ledger.journeys.iter().filter(|j| j.kind == "interactive") {
        journeys.insert(&j.journey, &j.target);
    }
    let total_rate: f64 = journeys.keys().map(|j| p.rate(j)).sum();
    let mut weight: BTreeMap<&str, f64> = BTreeMap::new();
    for (journey, target) in &journeys {
        *weight.entry(target).or_default() += p.rate(journey) / total_rate.max(f64::MIN_POSITIVE);
    }
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
    let drops = sheet.drops(design, &working.iter().copied().collect::<Vec<_>>(), None);
    let drops: BTreeMap<i64, (f64, f64)> = working
        .iter()
        .copied()
        .zip(drops.iter().map(|d| d.value))
        .collect();
    working
        .iter()
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
                    let entry = loss.excess.entry(name.clone()).or_default();
                    entry.0 += e.over_ms as f64 / 1000.0;
                    entry.1 += f64::from(e.runs);
                }
            }
            Tally {
                unit: design.unit(i),
                loss,
            }
        })
        .collect()
}

/// Re-login and redone work per forced logout (seconds), and where the
/// redone work came from.
fn logout_cost(ledger: &Ledger, p: &Practitioners) -> (f64, f64, &'static str) {
    let c = &ledger.cost;
    let mean = |ms: u64, n: u64| {
        if n == 0 {
            0.0
        } else {
            ms as f64 / 1000.0 / n as f64
        }
    };
    let relogin = mean(c.login_ms, c.logins);
    if let Some(redo) = p.redo_after_logout_seconds {
        return (relogin, redo, "configured");
    }
    if c.interrupted > 0 {
        return (relogin, mean(c.interrupted_ms, c.interrupted), "measured");
    }
    (relogin, mean(c.run_ms, c.runs) / 2.0, "half a run")
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

/// Point estimates and bootstrap intervals of the three causes and total.
fn estimate(model: &Model<'_>, units: &[Vec<&LossTally>], seed: u64) -> [Estimate; 4] {
    let m = units.len();
    let n = units.iter().map(Vec::len).sum::<usize>() as u64;
    let Some((f, l, s)) = model.minutes(&flatten(units)) else {
        return std::array::from_fn(|_| Estimate::none(n, BOOTSTRAP));
    };
    let point = [f, l, s, f + l + s];
    let mut reps: [Vec<f64>; 4] = Default::default();
    if m >= evidence::MIN_UNITS {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut pick = Vec::new();
        for _ in 0..RESAMPLES {
            resample(units, &mut rng, &mut pick);
            if let Some((a, b, c)) = model.minutes(&pick) {
                for (r, v) in reps.iter_mut().zip([a, b, c, a + b + c]) {
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

/// The time-lost figure over the report's window.
pub fn time_lost(sheet: &Sheet<'_>, design: &Design, slots: &[i64], p: &Practitioners) -> TimeLost {
    let (relogin, redo, redo_source) = logout_cost(sheet.ledger, p);
    let model = Model {
        practitioners: p,
        cost_seconds: relogin + redo,
    };
    let all = tallies(sheet, design, slots, p);
    let units = by_unit(&all);
    let [frozen, logouts, slow, total] = estimate(&model, &units, SEED);
    let month = f64::from(p.headcount) * p.working_days_per_month / 60.0;
    let staff_hours = total.clone().scaled(month);
    let working_hours_observed = all.iter().map(|t| t.loss.working_seconds).sum::<f64>() / 3600.0;
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
        units: units.len(),
        sentence,
    }
}

fn minutes(e: &Estimate) -> String {
    show(e, 1, "")
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
            "Time lost per practitioner cannot be estimated yet: the agent has measured no working hours ({}).",
            assumptions(p)
        );
    }
    let figures = |e: &Estimate| match e.value {
        Some(v) => figure(v, 1),
        None => "-".into(),
    };
    if total.low.is_none() {
        return format!(
            "Time lost per practitioner: about {} minutes a working day so far ({} to freezes, {} to forced logouts, {} to slowness), but there is not enough evidence yet to put a range on it: {} of the {} independent days needed have been measured ({} of working hours). Assumptions: {}.",
            figures(total),
            figures(frozen),
            figures(logouts),
            figures(slow),
            total.units,
            evidence::MIN_UNITS,
            human_duration(observed * 3600.0),
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
    let [fb, lb, sb, total_b] = estimate(&model, &ub, SEED);
    let [fa, la, sa, total_a] = estimate(&model, &ua, SEED ^ 1);
    let change = difference(&model, &ub, &ua);
    // Which cause moves most, and the events behind it when it is one of
    // the rare ones.
    let moved =
        |x: &Estimate, y: &Estimate| (y.value.unwrap_or(0.0) - x.value.unwrap_or(0.0)).abs();
    let events = |slots: &[i64], freezes: bool| {
        let parts = if freezes {
            sheet.freezes(&design, slots, None)
        } else {
            sheet.drops(&design, slots, None)
        };
        evidence::events(&parts)
    };
    let slow_moved = moved(&sb, &sa);
    let rare = if moved(&fb, &fa) >= moved(&lb, &la) && moved(&fb, &fa) > slow_moved {
        Some(true)
    } else if moved(&lb, &la) > slow_moved {
        Some(false)
    } else {
        None
    };
    let events = rare.map(|freezes| {
        let ((kb, ubn), (ka, uan)) = (events(&b, freezes), events(&a, freezes));
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
    let sentence = match judgement.direction {
        Some(Direction::Lower) => format!(
            "it gave back about {} minutes a day per practitioner",
            minutes(&flip(&change))
        ),
        Some(Direction::Higher) => {
            format!("it cost about {} more minutes a day per practitioner", minutes(&change))
        }
        None if !judgement.enough_units => format!(
            "not enough evidence yet on time lost: {} of the {} independent days needed on the thinner side",
            ub.len().min(ua.len()),
            evidence::MIN_UNITS
        ),
        None if !judgement.enough_events => format!(
            "not enough evidence yet on time lost: the difference rests on {} {} ({} in as many different days needed)",
            judgement.events.unwrap_or(0),
            if rare == Some(true) { "freezes" } else { "forced logouts" },
            evidence::MIN_EVENTS
        ),
        None => format!(
            "no clear change in time lost: {} minutes a day per practitioner",
            minutes(&change)
        ),
    };
    TimeLostChange {
        before: total_b,
        after: total_a,
        change,
        judgement,
        sentence,
    }
}

/// `-e` with its interval the right way round.
fn flip(e: &Estimate) -> Estimate {
    let mut out = e.clone().scaled(-1.0);
    std::mem::swap(&mut out.low, &mut out.high);
    out
}

/// After minus before in total minutes, each side's units resampled.
fn difference(
    model: &Model<'_>,
    before: &[Vec<&LossTally>],
    after: &[Vec<&LossTally>],
) -> Estimate {
    let n = (before.len() + after.len()) as u64;
    let total = |t: &[&LossTally]| model.minutes(t).map(|(a, b, c)| a + b + c);
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
