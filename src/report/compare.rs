//! Before and after a change, like with like: what was measured is cut
//! into blocks of time around the change, blocks are matched by calendar
//! cell ([`evidence::match_by_cell`]), and each measure gets one interval
//! for its difference or ratio with the minimum-evidence judgement. The
//! report and the calibration both come through here, so the calibration
//! proves the very method the board reads.

use std::collections::BTreeMap;

use serde::Serialize;

use super::evidence::{self, BlockGrid, Calendar, Judgement};
use super::stats::Estimate;

/// What was measured, as plain numbers (unix seconds; milliseconds for
/// latencies). The report fills it from the journal; the calibration from
/// a known process.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    /// Interactive steps: (sent at, milliseconds, given up on).
    pub steps: Vec<(f64, f64, bool)>,
    /// Journey runs: (intended start, succeeded).
    pub runs: Vec<(f64, bool)>,
    /// Freeze episodes: (started, length in seconds).
    pub freezes: Vec<(f64, f64)>,
    /// Forced logouts, placed at the midpoint of their bracket in time.
    pub drops: Vec<f64>,
    /// Stretches of session life known alive: (from, to).
    pub exposure: Vec<(f64, f64)>,
    /// The longest typical gap between two runs of one interactive journey
    /// (seconds): blocks are at least twice as long.
    pub run_interval: f64,
}

/// One block's tallies.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub start: f64,
    pub latencies: Vec<f64>,
    pub given_up: u64,
    pub runs: u64,
    pub successes: u64,
    pub freezes: f64,
    pub hours: f64,
    pub drops: f64,
    pub session_hours: f64,
}

/// Tallies per block of `grid`; only blocks in which a journey ran.
pub fn tallies(obs: &Observations, grid: &BlockGrid) -> Vec<Tally> {
    let mut blocks: BTreeMap<i64, Tally> = BTreeMap::new();
    for (t, ok) in &obs.runs {
        if let Some(i) = grid.index(*t) {
            let tally = entry(&mut blocks, grid, i);
            tally.runs += 1;
            tally.successes += u64::from(*ok);
        }
    }
    for (t, ms, given_up) in &obs.steps {
        if let Some(i) = grid.index(*t) {
            let tally = entry(&mut blocks, grid, i);
            if *given_up {
                tally.given_up += 1;
            } else {
                tally.latencies.push(*ms);
            }
        }
    }
    for (t, _) in &obs.freezes {
        if let Some(i) = grid.index(*t) {
            entry(&mut blocks, grid, i).freezes += 1.0;
        }
    }
    for t in &obs.drops {
        if let Some(i) = grid.index(*t) {
            entry(&mut blocks, grid, i).drops += 1.0;
        }
    }
    for (from, to) in &obs.exposure {
        for (i, seconds) in grid.split(*from, *to) {
            entry(&mut blocks, grid, i).session_hours += seconds / 3600.0;
        }
    }
    blocks.into_values().filter(|t| t.runs > 0).collect()
}

fn entry<'a>(blocks: &'a mut BTreeMap<i64, Tally>, grid: &BlockGrid, i: i64) -> &'a mut Tally {
    blocks.entry(i).or_insert_with(|| Tally {
        start: grid.bounds(i).0,
        hours: grid.length / 3600.0,
        ..Tally::default()
    })
}

/// The block length for `[from, to)` cut at `anchor`: at least twice the
/// longest freeze episode and twice the journeys' interval, and among such
/// lengths the one at which freeze
/// and forced-logout counts look most over-dispersed across blocks, so
/// blocks are as long as whatever clusters events (a bad spell brings
/// several freezes, a restart drops every session). Only lengths that
/// leave [`evidence::MIN_BLOCKS`] blocks on each side are considered.
pub fn block_length(obs: &Observations, from: f64, to: f64, anchor: f64) -> f64 {
    let longest = obs.freezes.iter().map(|f| f.1).fold(0.0, f64::max);
    let shortest = evidence::block_length(longest, obs.run_interval);
    let side = (anchor - from).min(to - anchor).max(0.0);
    let mut best = (shortest, f64::MIN);
    for length in evidence::BLOCK_CHOICES
        .iter()
        .copied()
        .filter(|l| *l >= shortest)
    {
        if length > shortest && side / length < evidence::MIN_BLOCKS as f64 {
            break;
        }
        let all = tallies(obs, &BlockGrid::new(from, to, anchor, length));
        let freezes: Vec<(f64, f64)> = all.iter().map(|t| (t.freezes, t.hours)).collect();
        let drops: Vec<(f64, f64)> = all.iter().map(|t| (t.drops, t.session_hours)).collect();
        let score = evidence::dispersion(&[&freezes]).max(evidence::dispersion(&[&drops]));
        if score > best.1 {
            best = (length, score);
        }
    }
    best.0
}

/// One measure before and after, with its comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Measure {
    pub before: Estimate,
    pub after: Estimate,
    /// After minus before (latency), or after over before (rates).
    pub change: Estimate,
    pub judgement: Judgement,
}

/// The evidence on one change.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeEvidence {
    pub block_seconds: f64,
    /// Matched blocks on each side, and calendar cells they cover.
    pub blocks_before: usize,
    pub blocks_after: usize,
    pub cells: usize,
    /// Blocks measured but left out because their cell was seen on one
    /// side only.
    pub unmatched_blocks: usize,
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

/// Compares `[at - window, at)` with `[at, at + window)`.
pub fn change_evidence(
    obs: &Observations,
    at: f64,
    window: f64,
    calendar: &Calendar,
    block_seconds: f64,
) -> ChangeEvidence {
    let grid = BlockGrid::new(at - window, at + window, at, block_seconds);
    let all = tallies(obs, &grid);
    let (before, after): (Vec<&Tally>, Vec<&Tally>) = all.iter().partition(|t| t.start < at);
    let (b, a) = evidence::match_by_cell(calendar, &keyed(&before), &keyed(&after));
    let cells = b
        .iter()
        .map(|t| calendar.cell(t.start))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let blocks = (b.len(), a.len());
    let side = window;
    let (lb, la) = (latencies(&b), latencies(&a));
    let p95_change = evidence::quantile_difference(&lb, &la, 0.95);
    let p95_ms = Measure {
        before: evidence::quantile(&lb, 0.95),
        after: evidence::quantile(&la, 0.95),
        judgement: evidence::judge(&p95_change, 0.0, blocks, block_seconds, side, false),
        change: p95_change,
    };
    let counts =
        |v: &[&Tally], f: fn(&Tally) -> (f64, f64)| v.iter().map(|t| f(t)).collect::<Vec<_>>();
    let rates = |f: fn(&Tally) -> (f64, f64)| {
        let (cb, ca) = (counts(&b, f), counts(&a, f));
        let ratio = evidence::rate_ratio(&cb, &ca);
        Measure {
            before: evidence::rate(&cb),
            after: evidence::rate(&ca),
            judgement: evidence::judge(&ratio, 1.0, blocks, block_seconds, side, true),
            change: ratio,
        }
    };
    let freeze_rate = rates(|t| (t.freezes, t.hours));
    let logout_rate = rates(|t| (t.drops, t.session_hours));
    let shares = |v: &[&Tally]| v.iter().map(|t| (t.successes, t.runs)).collect::<Vec<_>>();
    let (sb, sa) = (
        evidence::proportion(&shares(&b)),
        evidence::proportion(&shares(&a)),
    );
    let share_change = share_difference(&sb, &sa);
    let availability = Measure {
        judgement: evidence::judge(&share_change, 0.0, blocks, block_seconds, side, false),
        before: sb,
        after: sa,
        change: share_change,
    };
    ChangeEvidence {
        block_seconds,
        blocks_before: blocks.0,
        blocks_after: blocks.1,
        cells,
        unmatched_blocks: all.len() - blocks.0 - blocks.1,
        p95_ms,
        freeze_rate,
        logout_rate,
        availability,
        given_up_before: b.iter().map(|t| t.given_up).sum(),
        given_up_after: a.iter().map(|t| t.given_up).sum(),
    }
}

fn keyed<'a>(tallies: &[&'a Tally]) -> Vec<(f64, &'a Tally)> {
    tallies.iter().map(|t| (t.start, *t)).collect()
}

fn latencies<'a>(tallies: &[&'a Tally]) -> Vec<&'a [f64]> {
    tallies.iter().map(|t| t.latencies.as_slice()).collect()
}

/// `after - before` for two shares, MOVER from their intervals.
pub fn share_difference(before: &Estimate, after: &Estimate) -> Estimate {
    let n = before.n + after.n;
    match (
        (before.value, before.low, before.high),
        (after.value, after.low, after.high),
    ) {
        ((Some(pb), Some(lb), Some(hb)), (Some(pa), Some(la), Some(ha))) => {
            let d = pa - pb;
            let low = d - ((pa - la).powi(2) + (hb - pb).powi(2)).sqrt();
            let high = d + ((ha - pa).powi(2) + (pb - lb).powi(2)).sqrt();
            Estimate::new(d, low, high, n, SHARE_DIFFERENCE)
        }
        _ => Estimate::none(n, SHARE_DIFFERENCE),
    }
}

pub const SHARE_DIFFERENCE: &str =
    "difference of shares, MOVER from the two clustered Wilson intervals (95%)";
