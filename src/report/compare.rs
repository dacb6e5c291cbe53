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
use super::evidence::{self, Judgement, Part};
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
    let all_hours = sheet
        .slots(target)
        .into_iter()
        .filter(|s| {
            let (start, end) = (design.clock.start(*s), design.clock.start(*s + 1));
            start >= at - window - 1e-6 && end <= at + window + 1e-6 && !(start < at && end > at)
        })
        .count();
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
    let side_units = (units(&rb), units(&ra));
    let unit = design.unit_seconds();
    let p95 = {
        let (before, after) = (
            evidence::quantile(&lb, 0.95, 0.05),
            evidence::quantile(&la, 0.95, 0.05),
        );
        let change = evidence::difference(&before, &after, evidence::CLUSTERED_QUANTILE_DIFFERENCE);
        Measure {
            judgement: evidence::judge(&change, 0.0, side_units, unit, window, false, None),
            before,
            after,
            change,
        }
    };
    let rates = |cb: Vec<Part<(f64, f64)>>, ca: Vec<Part<(f64, f64)>>| {
        let ratio = evidence::rate_ratio(&cb, &ca, 0.05);
        let ((kb, ub), (ka, ua)) = (evidence::events(&cb), evidence::events(&ca));
        Measure {
            judgement: evidence::judge(
                &ratio,
                1.0,
                side_units,
                unit,
                window,
                true,
                Some((kb + ka, ub + ua)),
            ),
            before: evidence::rate(&cb, 0.05),
            after: evidence::rate(&ca, 0.05),
            change: ratio,
        }
    };
    let freeze_rate = rates(
        sheet.freezes(&design, &b, target),
        sheet.freezes(&design, &a, target),
    );
    let logout_rate = rates(
        sheet.drops(&design, &b, target),
        sheet.drops(&design, &a, target),
    );
    let (sb, sa) = (evidence::share(&rb, 0.05), evidence::share(&ra, 0.05));
    let share_change = evidence::difference(&sb, &sa, SHARE_DIFFERENCE);
    let availability = Measure {
        judgement: evidence::judge(&share_change, 0.0, side_units, unit, window, false, None),
        before: sb,
        after: sa,
        change: share_change,
    };
    let given_up = |slots: &[i64]| -> u64 {
        slots
            .iter()
            .filter_map(|s| sheet.ledger.slots.get(s))
            .flat_map(|s| s.steps.iter())
            .filter(|(k, _)| keep_step(&sheet.ledger.steps[*k as usize]))
            .map(|(_, t)| u64::from(t.given_up))
            .sum()
    };
    ChangeEvidence {
        unit_days: design.unit_days,
        unit_seconds: unit,
        units_before: side_units.0,
        units_after: side_units.1,
        hours_before: b.len(),
        hours_after: a.len(),
        cells,
        unmatched_hours: all_hours.saturating_sub(b.len() + a.len()),
        p95_ms: p95,
        freeze_rate,
        logout_rate,
        availability,
        given_up_before: given_up(&b),
        given_up_after: given_up(&a),
    }
}

pub const SHARE_DIFFERENCE: &str =
    "difference of shares, MOVER from the two clustered Wilson intervals of matched, independent days (95%)";
