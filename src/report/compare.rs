//! Before and after a change, like with like: the hours measured on each
//! side are matched by calendar cell (for every hour of the day, weekdays
//! and weekends apart, as many hours from each side, the nearest to the
//! change first; cells seen on one side only are left out, and so is the
//! hour the change fell in), grouped into units of days counted from the
//! change, and each measure gets one interval for its difference or ratio
//! with the minimum-evidence judgement. The report and the calibration both
//! come through here, so the calibration proves the very method the board
//! reads.

use std::collections::BTreeSet;

use serde::Serialize;

use super::design::{Design, Sheet, CELLS};
use super::evidence::{self, Judgement, Part, Sides};
use super::stats::Estimate;
use crate::ledger::StepKey;

/// One measure before and after, with its comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Measure {
    pub before: Estimate,
    pub after: Estimate,
    /// After minus before (latency, availability), or after over before (rates).
    pub change: Estimate,
    pub judgement: Judgement,
}

/// The evidence on one change.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeEvidence {
    /// Length of the units: calendar days, and real seconds.
    pub unit_days: u32,
    pub unit_seconds: f64,
    /// Units of days on each side, and the calendar cells they cover.
    pub units_before: usize,
    pub units_after: usize,
    /// Matched hours on each side.
    pub hours_before: usize,
    pub hours_after: usize,
    pub cells: usize,
    /// Hours measured but left out because their cell was seen on one
    /// side only.
    pub unmatched_hours: usize,
    /// Interactive p95, ms; change is after − before.
    pub p95_ms: Measure,
    /// Freeze episodes per hour; change is after / before.
    pub freeze_rate: Measure,
    /// Forced logouts per session-hour; change is after / before.
    pub logout_rate: Measure,
    /// Share of runs that succeeded; change is after − before (points).
    pub availability: Measure,
    /// Interactive steps given up on (not in the percentiles), per side.
    pub given_up_before: u64,
    pub given_up_after: u64,
}

/// The matched hours of a comparison around `at`: (before, after).
pub fn matched(
    sheet: &Sheet<'_>,
    design: &Design,
    at: f64,
    window: f64,
    target: Option<u16>,
) -> (Vec<i64>, Vec<i64>) {
    let clock = design.clock;
    let mut before: Vec<Vec<i64>> = vec![Vec::new(); CELLS];
    let mut after: Vec<Vec<i64>> = vec![Vec::new(); CELLS];
    for slot in sheet.slots(target) {
        let (start, end) = (clock.start(slot), clock.start(slot + 1));
        if start >= at - window - 1e-6 && end <= at + 1e-6 {
            before[design.cell(slot) as usize].push(slot);
        } else if start >= at - 1e-6 && end <= at + window + 1e-6 {
            after[design.cell(slot) as usize].push(slot);
        }
    }
    let (mut b, mut a) = (Vec::new(), Vec::new());
    for (mut bc, ac) in before.into_iter().zip(after) {
        let m = bc.len().min(ac.len());
        // Nearest the change: the latest before, the earliest after.
        bc.reverse();
        b.extend(bc.into_iter().take(m));
        a.extend(ac.into_iter().take(m));
    }
    b.sort_unstable();
    a.sort_unstable();
    (b, a)
}

fn units<T>(parts: &[Part<T>]) -> usize {
    parts.iter().map(|p| p.unit).collect::<BTreeSet<_>>().len()
}

/// Compares `[at - window, at)` with `[at, at + window)` on `target` (all
/// systems when `None`), in units of `design` counted from the change.
pub fn change_evidence(
    sheet: &Sheet<'_>,
    design: &Design,
    at: f64,
    window: f64,
    target: Option<u16>,
) -> ChangeEvidence {
    let design = design.split_at(at);
    let all_hours = hours_around(sheet, &design, at, window, target);
    let (b, a) = matched(sheet, &design, at, window, target);
    let cells = b
        .iter()
        .map(|s| design.cell(*s))
        .collect::<BTreeSet<_>>()
        .len();
    let target_name = target.map(|t| sheet.ledger.targets[t as usize].clone());
    let on_target = |name: &str| target_name.as_deref().is_none_or(|t| t == name);
    let keep_step = |k: &StepKey| k.is_interactive() && on_target(&k.target);
    let (lb, la) = (
        sheet.latencies(&design, &b, keep_step),
        sheet.latencies(&design, &a, keep_step),
    );
    let (rb, ra) = (
        sheet.runs(&design, &b, |j| on_target(&j.target)),
        sheet.runs(&design, &a, |j| on_target(&j.target)),
    );
    let judging = ChangeJudging {
        sides: Sides {
            units: (units(&rb), units(&ra)),
            unit_seconds: design.unit_seconds(),
            side_seconds: window,
        },
    };
    let p95 = judging.p95(&lb, &la);
    let freeze_rate = judging.rates(
        sheet.freezes(&design, &b, target),
        sheet.freezes(&design, &a, target),
    );
    let logout_rate = judging.rates(
        sheet.drops(&design, &b, target),
        sheet.drops(&design, &a, target),
    );
    let availability = judging.availability(&rb, &ra);
    ChangeEvidence {
        unit_days: design.unit_days,
        unit_seconds: judging.sides.unit_seconds,
        units_before: judging.sides.units.0,
        units_after: judging.sides.units.1,
        hours_before: b.len(),
        hours_after: a.len(),
        cells,
        unmatched_hours: all_hours.saturating_sub(b.len() + a.len()),
        p95_ms: p95,
        freeze_rate,
        logout_rate,
        availability,
        given_up_before: given_up(sheet, &b, keep_step),
        given_up_after: given_up(sheet, &a, keep_step),
    }
}

/// The hours measured within `window` of the change on either side, the
/// hour it fell in left out: matched or not.
fn hours_around(
    sheet: &Sheet<'_>,
    design: &Design,
    at: f64,
    window: f64,
    target: Option<u16>,
) -> usize {
    sheet
        .slots(target)
        .into_iter()
        .filter(|s| {
            let (start, end) = (design.clock.start(*s), design.clock.start(*s + 1));
            start >= at - window - 1e-6 && end <= at + window + 1e-6 && !(start < at && end > at)
        })
        .count()
}

/// Interactive steps given up on in `slots`: they are not in the
/// percentiles, so they are counted apart.
fn given_up(sheet: &Sheet<'_>, slots: &[i64], keep_step: impl Fn(&StepKey) -> bool) -> u64 {
    slots
        .iter()
        .filter_map(|s| sheet.ledger.slots.get(s))
        .flat_map(|s| s.steps.iter())
        .filter(|(k, _)| keep_step(&sheet.ledger.steps[*k as usize]))
        .map(|(_, t)| u64::from(t.given_up))
        .sum()
}

/// What every measure's judgement weighs besides its own interval: the
/// units on each side, their length, and the window.
struct ChangeJudging {
    sides: Sides,
}

impl ChangeJudging {
    /// Interactive p95 on each side, and after − before.
    fn p95(&self, lb: &[Part<&[u32]>], la: &[Part<&[u32]>]) -> Measure {
        let (before, after) = (
            evidence::quantile(lb, 0.95, 0.05),
            evidence::quantile(la, 0.95, 0.05),
        );
        let change = evidence::difference(&before, &after, evidence::CLUSTERED_QUANTILE_DIFFERENCE);
        Measure {
            judgement: self.sides.judge(&change, 0.0, false, None),
            before,
            after,
            change,
        }
    }

    /// A rate on each side, and after / before; the judgement also weighs
    /// how many events there were.
    fn rates(&self, cb: Vec<Part<(f64, f64)>>, ca: Vec<Part<(f64, f64)>>) -> Measure {
        let ratio = evidence::rate_ratio(&cb, &ca, 0.05);
        let ((kb, ub), (ka, ua)) = (evidence::events(&cb), evidence::events(&ca));
        Measure {
            judgement: self
                .sides
                .judge(&ratio, 1.0, true, Some((kb + ka, ub + ua))),
            before: evidence::rate(&cb, 0.05),
            after: evidence::rate(&ca, 0.05),
            change: ratio,
        }
    }

    /// The share of runs that succeeded on each side, and after − before.
    fn availability(&self, rb: &[Part<(u64, u64)>], ra: &[Part<(u64, u64)>]) -> Measure {
        let (sb, sa) = (evidence::share(rb, 0.05), evidence::share(ra, 0.05));
        let share_change = evidence::difference(&sb, &sa, SHARE_DIFFERENCE);
        Measure {
            judgement: self.sides.judge(&share_change, 0.0, false, None),
            before: sb,
            after: sa,
            change: share_change,
        }
    }
}

pub const SHARE_DIFFERENCE: &str =
    "difference of shares, MOVER from the two clustered Wilson intervals of matched, independent days (95%)";
