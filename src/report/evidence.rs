//! Evidence that respects clustering: every interval the report draws from
//! steps, runs or events treats whole **blocks of time** as its independent
//! units, never single steps, because one freeze stalls every request in
//! flight and one restart drops every session at once.
//!
//! - **Blocks.** Time is cut into blocks of a fixed length, no shorter than
//!   twice the longest freeze episode in the data and twice the journeys'
//!   interval, so that an episode's correlated samples almost always share
//!   a block and every block holds runs of every journey.
//!   A block counts only if a journey ran in it.
//! - **Like with like.** Before and after a change, blocks are matched by
//!   their hour of the day, weekdays and weekends apart (48 cells, in the
//!   monitored system's calendar): each cell contributes as many blocks on
//!   one side as on the other, the nearest to the change; cells seen on one
//!   side only are left out. A busy morning is never compared with a quiet
//!   night.
//! - **Intervals.**
//!   - shares (availability): Wilson score interval on the effective sample
//!     size, the design effect estimated from the between-block variance;
//!   - quantiles (p95): Woodruff's interval, the variance of the share of
//!     samples at or below the quantile taken from the between-block
//!     spread, with Student's t on blocks − 1 degrees of freedom;
//!   - difference of two quantiles: MOVER from the two Woodruff intervals;
//!   - rates (freezes per hour, forced logouts per session-hour): exact
//!     Poisson (Garwood) interval on the count divided by the over-dispersion
//!     (Pearson χ² across blocks, at least 1), scaled back;
//!   - ratio of two rates: exact conditional binomial (Clopper–Pearson) on
//!     the over-dispersion-adjusted counts.
//! - **Minimum evidence.** A direction ("faster", "more") is claimed only
//!   when the interval excludes no-difference *and* each side has at least
//!   [`MIN_BLOCKS`] matched blocks; otherwise the report says there is not
//!   enough evidence yet and about how much longer to measure.
//!
//! Pure: numbers in, estimates out. The calibration that proves these
//! intervals' coverage on data whose truth is known is in
//! [`super::calibration`].

use statrs::distribution::{Beta, ChiSquared, ContinuousCDF, StudentsT};

use super::stats::{Estimate, Z95};

/// Candidate block lengths (seconds): each divides an hour, so blocks line
/// up with the calendar's hours.
pub const BLOCK_CHOICES: [f64; 14] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0,
];

/// Matched blocks each side needs before a direction is claimed. Chosen
/// with the calibration: fewer and the intervals' coverage falls below 93%
/// when freezes cluster.
pub const MIN_BLOCKS: usize = 24;

pub const CLUSTERED_WILSON: &str =
    "Wilson score interval on the effective sample size (design effect from the between-block variance) (95%)";
pub const CLUSTERED_QUANTILE: &str =
    "Woodruff interval, variance from the between-block spread, t on blocks-1 df (95%)";
pub const CLUSTERED_QUANTILE_DIFFERENCE: &str =
    "difference of quantiles, MOVER from the two clustered Woodruff intervals (95%)";
pub const OVERDISPERSED_RATE: &str =
    "exact Poisson (Garwood) interval on the count divided by the between-block over-dispersion (95%)";
pub const RATE_RATIO: &str =
    "ratio of rates, exact conditional binomial (Clopper-Pearson) on over-dispersion-adjusted counts (95%)";

/// The shortest block length for data whose longest freeze episode lasted
/// `longest_episode` seconds and whose journeys run every `run_interval`:
/// twice each, so an episode's stalled steps share a block and every block
/// holds runs of every journey.
pub fn block_length(longest_episode: f64, run_interval: f64) -> f64 {
    let wanted = 2.0 * longest_episode.max(run_interval).max(0.0);
    BLOCK_CHOICES
        .iter()
        .copied()
        .find(|l| *l >= wanted)
        .unwrap_or(BLOCK_CHOICES[BLOCK_CHOICES.len() - 1])
}

/// The monitored system's calendar: real time runs `scale` times slower
/// than it (1 for a real system; the simulator's `time_scale` in the demo).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calendar {
    pub scale: f64,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar { scale: 1.0 }
    }
}

/// Cells of the week: the hour of the day, weekdays and weekends apart.
pub const CELLS: usize = 48;

impl Calendar {
    /// The cell of unix time `t` (UTC, in the system's calendar).
    pub fn cell(&self, t: f64) -> usize {
        let cal = t * self.scale;
        let day = (cal / 86_400.0).floor();
        let hour = ((cal - day * 86_400.0) / 3600.0).floor().clamp(0.0, 23.0) as usize;
        // 1970-01-01 was a Thursday: with Monday as 0, day 0 is 3.
        let weekday = (day as i64 + 3).rem_euclid(7);
        usize::from(weekday >= 5) * 24 + hour
    }
}

/// The blocks of a stretch of time, cut at `anchor` (a change's moment, or
/// the window's start) so that no block straddles it.
#[derive(Clone, Debug)]
pub struct BlockGrid {
    pub anchor: f64,
    pub length: f64,
    pub from: f64,
    pub to: f64,
}

impl BlockGrid {
    pub fn new(from: f64, to: f64, anchor: f64, length: f64) -> BlockGrid {
        BlockGrid {
            anchor,
            length: length.max(1.0),
            from,
            to,
        }
    }

    /// The block holding time `t`, if it lies wholly inside the grid's span.
    pub fn index(&self, t: f64) -> Option<i64> {
        if !(t >= self.from && t < self.to) {
            return None;
        }
        let i = ((t - self.anchor) / self.length).floor() as i64;
        let (start, end) = self.bounds(i);
        (start >= self.from - 1e-6 && end <= self.to + 1e-6).then_some(i)
    }

    /// Start and end of block `i`.
    pub fn bounds(&self, i: i64) -> (f64, f64) {
        let start = self.anchor + i as f64 * self.length;
        (start, start + self.length)
    }

    /// Splits `[t0, t1)` over the blocks it crosses: (block, seconds in it).
    pub fn split(&self, t0: f64, t1: f64) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        if t1.partial_cmp(&t0) != Some(std::cmp::Ordering::Greater) {
            return out;
        }
        let first = ((t0 - self.anchor) / self.length).floor() as i64;
        let last = ((t1 - self.anchor) / self.length).ceil() as i64;
        for i in first..last.max(first + 1) {
            let (start, end) = self.bounds(i);
            let part = t1.min(end) - t0.max(start);
            if part > 0.0 && self.index(start.max(t0)).is_some() {
                out.push((i, part));
            }
        }
        out
    }
}

/// Matches blocks by calendar cell: for every cell seen on both sides, as
/// many blocks from each side, the nearest to the change first. `before`
/// and `after` are (block start, item); the result keeps the items.
pub fn match_by_cell<T: Clone>(
    calendar: &Calendar,
    before: &[(f64, T)],
    after: &[(f64, T)],
) -> (Vec<T>, Vec<T>) {
    let mut b: Vec<Vec<(f64, T)>> = vec![Vec::new(); CELLS];
    let mut a: Vec<Vec<(f64, T)>> = vec![Vec::new(); CELLS];
    for (start, item) in before {
        b[calendar.cell(*start)].push((*start, item.clone()));
    }
    for (start, item) in after {
        a[calendar.cell(*start)].push((*start, item.clone()));
    }
    let (mut out_b, mut out_a) = (Vec::new(), Vec::new());
    for (mut bc, mut ac) in b.into_iter().zip(a) {
        let m = bc.len().min(ac.len());
        // Nearest the change: the latest before, the earliest after.
        bc.sort_by(|x, y| y.0.total_cmp(&x.0));
        ac.sort_by(|x, y| x.0.total_cmp(&y.0));
        out_b.extend(bc.into_iter().take(m).map(|(_, t)| t));
        out_a.extend(ac.into_iter().take(m).map(|(_, t)| t));
    }
    (out_b, out_a)
}

fn t_quantile(df: usize) -> f64 {
    t_quantile_at(df, 0.05)
}

/// Student's t for a two-sided `1 - alpha` interval on `df` degrees of freedom.
fn t_quantile_at(df: usize, alpha: f64) -> f64 {
    if df == 0 {
        return f64::INFINITY;
    }
    StudentsT::new(0.0, 1.0, df as f64)
        .map(|t| t.inverse_cdf(1.0 - alpha / 2.0))
        .unwrap_or_else(|_| z_for(alpha))
}

/// z for a two-sided `1 - alpha` interval (exactly [`Z95`] for 0.05).
pub fn z_for(alpha: f64) -> f64 {
    if alpha == 0.05 {
        return Z95;
    }
    statrs::distribution::Normal::new(0.0, 1.0)
        .map(|n| n.inverse_cdf(1.0 - alpha / 2.0))
        .unwrap_or(Z95)
}

/// A share `Σ successes / Σ trials` over blocks `(successes, trials)`, with
/// a Wilson interval on the effective sample size.
pub fn proportion(blocks: &[(u64, u64)]) -> Estimate {
    proportion_at(blocks, 0.05)
}

/// [`proportion`] with a two-sided `1 - alpha` interval (for comparisons
/// adjusted for how many are made at once).
pub fn proportion_at(blocks: &[(u64, u64)], alpha: f64) -> Estimate {
    let blocks: Vec<(f64, f64)> = blocks
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| (*s as f64, *n as f64))
        .collect();
    let total: f64 = blocks.iter().map(|b| b.1).sum();
    if total <= 0.0 {
        return Estimate::none(0, CLUSTERED_WILSON);
    }
    let p = blocks.iter().map(|b| b.0).sum::<f64>() / total;
    let m = blocks.len() as f64;
    let binomial = p * (1.0 - p) / total;
    let clustered = if m > 1.0 {
        m / (m - 1.0) * blocks.iter().map(|(s, n)| (s - p * n).powi(2)).sum::<f64>()
            / (total * total)
    } else {
        binomial
    };
    let deff = if binomial > 0.0 {
        (clustered / binomial).max(1.0)
    } else {
        1.0
    };
    let n_eff = total / deff;
    let (low, high) = wilson_bounds(p, n_eff, z_for(alpha));
    Estimate::new(p, low, high, total as u64, CLUSTERED_WILSON)
}

fn wilson_bounds(p: f64, n: f64, z: f64) -> (f64, f64) {
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The over-dispersion of counts across blocks `(count, exposure)` around
/// each side's own rate: Pearson χ² over its degrees of freedom, at least 1.
pub fn dispersion(sides: &[&[(f64, f64)]]) -> f64 {
    let mut chi2 = 0.0;
    let mut df = 0isize;
    for side in sides {
        let blocks: Vec<&(f64, f64)> = side.iter().filter(|(_, e)| *e > 0.0).collect();
        let k: f64 = blocks.iter().map(|b| b.0).sum();
        let e: f64 = blocks.iter().map(|b| b.1).sum();
        if blocks.is_empty() || e <= 0.0 {
            continue;
        }
        let rate = k / e;
        df += blocks.len() as isize - 1;
        if rate > 0.0 {
            chi2 += blocks
                .iter()
                .map(|(k, e)| (k - rate * e).powi(2) / (rate * e))
                .sum::<f64>();
        }
    }
    if df <= 0 {
        1.0
    } else {
        (chi2 / df as f64).max(1.0)
    }
}

/// Garwood bounds for a (possibly fractional) count.
fn garwood(k: f64) -> (f64, f64) {
    let low = if k <= 0.0 {
        0.0
    } else {
        ChiSquared::new(2.0 * k)
            .map(|c| c.inverse_cdf(0.025) / 2.0)
            .unwrap_or(0.0)
    };
    let high = ChiSquared::new(2.0 * (k + 1.0))
        .map(|c| c.inverse_cdf(0.975) / 2.0)
        .unwrap_or(f64::INFINITY);
    (low, high)
}

/// Events per unit of exposure over blocks `(count, exposure)`, with a
/// Garwood interval allowing for over-dispersion across blocks.
pub fn rate(blocks: &[(f64, f64)]) -> Estimate {
    let k: f64 = blocks.iter().map(|b| b.0).sum();
    let e: f64 = blocks.iter().map(|b| b.1).sum();
    if e <= 0.0 {
        return Estimate::none(k as u64, OVERDISPERSED_RATE);
    }
    let phi = dispersion(&[blocks]);
    let (low, high) = garwood(k / phi);
    Estimate::new(
        k / e,
        phi * low / e,
        phi * high / e,
        k.round() as u64,
        OVERDISPERSED_RATE,
    )
}

/// The rate after over the rate before, with an exact conditional interval
/// on over-dispersion-adjusted counts. With no event before, only a lower
/// bound; with no event at all, no estimate.
pub fn rate_ratio(before: &[(f64, f64)], after: &[(f64, f64)]) -> Estimate {
    let sum = |s: &[(f64, f64)]| {
        (
            s.iter().map(|b| b.0).sum::<f64>(),
            s.iter().map(|b| b.1).sum::<f64>(),
        )
    };
    let phi = dispersion(&[before, after]);
    ratio_of_counts(sum(before), sum(after), phi, 0.05)
}

/// `(ka / ea) / (kb / eb)` from counts and exposures, over-dispersion
/// `phi`, with a two-sided `1 - alpha` exact conditional interval.
pub fn ratio_of_counts(
    (kb, eb): (f64, f64),
    (ka, ea): (f64, f64),
    phi: f64,
    alpha: f64,
) -> Estimate {
    let n = (kb + ka).round() as u64;
    if eb <= 0.0 || ea <= 0.0 || kb + ka <= 0.0 {
        return Estimate::none(n, RATE_RATIO);
    }
    let (kb, ka) = (kb / phi.max(1.0), ka / phi.max(1.0));
    let odds = |p: f64| p / (1.0 - p) * eb / ea;
    let beta = |a: f64, b: f64, x: f64| {
        Beta::new(a, b)
            .map(|d| d.inverse_cdf(x))
            .unwrap_or(f64::NAN)
    };
    let low = if ka <= 0.0 {
        0.0
    } else {
        odds(beta(ka, kb + 1.0, alpha / 2.0))
    };
    let high = if kb <= 0.0 {
        f64::INFINITY
    } else {
        odds(beta(ka + 1.0, kb, 1.0 - alpha / 2.0))
    };
    Estimate {
        value: (kb > 0.0).then(|| (ka / ea) / (kb / eb)),
        low: Some(low),
        high: high.is_finite().then_some(high),
        n,
        method: RATE_RATIO,
    }
}

/// Quantile `q` of samples grouped in blocks, with Woodruff's interval on
/// the between-block variance.
pub fn quantile(blocks: &[&[f64]], q: f64) -> Estimate {
    let mut all: Vec<f64> = blocks.iter().flat_map(|b| b.iter().copied()).collect();
    let n = all.len();
    if n == 0 {
        return Estimate::none(0, CLUSTERED_QUANTILE);
    }
    all.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
        all[rank - 1]
    };
    let value = at(q);
    let used: Vec<&&[f64]> = blocks.iter().filter(|b| !b.is_empty()).collect();
    let m = used.len();
    let nf = n as f64;
    let p = all.iter().filter(|x| **x <= value).count() as f64 / nf;
    let clustered = if m > 1 {
        m as f64 / (m as f64 - 1.0)
            * used
                .iter()
                .map(|b| {
                    let below = b.iter().filter(|x| **x <= value).count() as f64;
                    (below - p * b.len() as f64).powi(2)
                })
                .sum::<f64>()
            / (nf * nf)
    } else {
        f64::INFINITY
    };
    // Never narrower than the independent-samples interval.
    let se = clustered.max(q * (1.0 - q) / nf).sqrt();
    let t = t_quantile(m.saturating_sub(1));
    let (lo, hi) = (q - t * se, q + t * se);
    let low = if lo <= 0.0 { all[0] } else { at(lo) };
    let high = if hi >= 1.0 { all[n - 1] } else { at(hi) };
    Estimate::new(
        value,
        low.min(value),
        high.max(value),
        n as u64,
        CLUSTERED_QUANTILE,
    )
}

/// Quantile `q` (ms) of per-block histograms of microseconds, with
/// Woodruff's interval on the between-block variance.
pub fn histogram_quantile(blocks: &[&hdrhistogram::Histogram<u64>], q: f64) -> Estimate {
    let mut merged = crate::recorder::new_histogram();
    for h in blocks {
        let _ = merged.add(*h);
    }
    let n = merged.len();
    if n == 0 {
        return Estimate::none(0, CLUSTERED_QUANTILE);
    }
    let at = |p: f64| merged.value_at_quantile(p.clamp(0.0, 1.0)) as f64 / 1000.0;
    let value_us = merged.value_at_quantile(q);
    let below = |h: &hdrhistogram::Histogram<u64>| h.count_between(0, value_us) as f64;
    let nf = n as f64;
    let p = below(&merged) / nf;
    let used: Vec<&&hdrhistogram::Histogram<u64>> =
        blocks.iter().filter(|h| !h.is_empty()).collect();
    let m = used.len();
    let clustered = if m > 1 {
        m as f64 / (m as f64 - 1.0)
            * used
                .iter()
                .map(|h| (below(h) - p * h.len() as f64).powi(2))
                .sum::<f64>()
            / (nf * nf)
    } else {
        f64::INFINITY
    };
    let se = clustered.max(q * (1.0 - q) / nf).sqrt();
    let t = t_quantile(m.saturating_sub(1));
    let value = value_us as f64 / 1000.0;
    let low = if q - t * se <= 0.0 {
        merged.min() as f64 / 1000.0
    } else {
        at(q - t * se)
    };
    let high = if q + t * se >= 1.0 {
        merged.max() as f64 / 1000.0
    } else {
        at(q + t * se)
    };
    Estimate::new(
        value,
        low.min(value),
        high.max(value),
        n,
        CLUSTERED_QUANTILE,
    )
}

/// [`quantile`] for samples already sorted, at two-sided level
/// `1 - alpha`, without copying them: `wholes` are sorted runs whose union
/// is the whole sample (a site's samples, say), `clusters` the blocks of
/// time, each made of sorted parts (one per site), whose union is the same
/// sample. Order statistics come from counting over `wholes`, so a fleet's
/// quantile costs no merge. Gives what [`quantile`] gives on the same
/// values at `alpha = 0.05`.
pub fn sorted_quantile(
    wholes: &[&[f32]],
    clusters: &[Vec<&[f32]>],
    q: f64,
    alpha: f64,
) -> Estimate {
    let n: usize = wholes.iter().map(|w| w.len()).sum();
    if n == 0 {
        return Estimate::none(0, CLUSTERED_QUANTILE);
    }
    let below = |x: f32| -> usize { wholes.iter().map(|w| w.partition_point(|v| *v <= x)).sum() };
    // The smallest sample with at least `rank` samples at or below it:
    // bisection over the order of non-negative floats' bits.
    let select = |rank: usize| -> f32 {
        let (mut lo, mut hi) = (0u32, f32::INFINITY.to_bits());
        let fits = |bits: u32| below(f32::from_bits(bits)) >= rank;
        if !fits(hi) {
            return wholes
                .iter()
                .filter_map(|w| w.last().copied())
                .fold(f32::MIN, f32::max);
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        f32::from_bits(lo)
    };
    let at = |p: f64| select(((p * n as f64).ceil() as usize).clamp(1, n)) as f64;
    let value = at(q);
    let v32 = value as f32;
    let nf = n as f64;
    let p = below(v32) as f64 / nf;
    let mut m = 0usize;
    let mut sum = 0.0;
    for cluster in clusters {
        let size: usize = cluster.iter().map(|part| part.len()).sum();
        if size == 0 {
            continue;
        }
        m += 1;
        let under: usize = cluster
            .iter()
            .map(|part| part.partition_point(|x| *x <= v32))
            .sum();
        sum += (under as f64 - p * size as f64).powi(2);
    }
    let clustered = if m > 1 {
        m as f64 / (m as f64 - 1.0) * sum / (nf * nf)
    } else {
        f64::INFINITY
    };
    let se = clustered.max(q * (1.0 - q) / nf).sqrt();
    let t = t_quantile_at(m.saturating_sub(1), alpha);
    let (lo, hi) = (q - t * se, q + t * se);
    let first = wholes
        .iter()
        .filter_map(|w| w.first().copied())
        .fold(f32::MAX, f32::min) as f64;
    let last = wholes
        .iter()
        .filter_map(|w| w.last().copied())
        .fold(f32::MIN, f32::max) as f64;
    let low = if lo <= 0.0 { first } else { at(lo) };
    let high = if hi >= 1.0 { last } else { at(hi) };
    Estimate::new(
        value,
        low.min(value),
        high.max(value),
        n as u64,
        CLUSTERED_QUANTILE,
    )
}

/// `after - before` from two estimates' intervals (MOVER), with `method`.
pub fn mover_difference(before: &Estimate, after: &Estimate, method: &'static str) -> Estimate {
    let n = before.n + after.n;
    match (
        (before.value, before.low, before.high),
        (after.value, after.low, after.high),
    ) {
        ((Some(vb), Some(lb), Some(hb)), (Some(va), Some(la), Some(ha))) => {
            let d = va - vb;
            let low = d - ((va - la).powi(2) + (hb - vb).powi(2)).sqrt();
            let high = d + ((ha - va).powi(2) + (vb - lb).powi(2)).sqrt();
            Estimate::new(d, low, high, n, method)
        }
        _ => Estimate::none(n, method),
    }
}

/// `quantile(after) - quantile(before)`, MOVER from the clustered intervals.
pub fn quantile_difference(before: &[&[f64]], after: &[&[f64]], q: f64) -> Estimate {
    let (b, a) = (quantile(before, q), quantile(after, q));
    let n = b.n + a.n;
    match ((b.value, b.low, b.high), (a.value, a.low, a.high)) {
        ((Some(vb), Some(lb), Some(hb)), (Some(va), Some(la), Some(ha))) => {
            let d = va - vb;
            let low = d - ((va - la).powi(2) + (hb - vb).powi(2)).sqrt();
            let high = d + ((ha - va).powi(2) + (vb - lb).powi(2)).sqrt();
            Estimate::new(d, low, high, n, CLUSTERED_QUANTILE_DIFFERENCE)
        }
        _ => Estimate::none(n, CLUSTERED_QUANTILE_DIFFERENCE),
    }
}

/// Which way a comparison points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Higher,
    Lower,
}

/// What may be said of a comparison under the minimum-evidence rule.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Judgement {
    /// Set only when the interval excludes no-difference and both sides
    /// have enough blocks.
    pub direction: Option<Direction>,
    /// The interval alone excludes no-difference.
    pub interval_excludes_null: bool,
    /// Matched blocks on each side.
    pub blocks_before: usize,
    pub blocks_after: usize,
    pub enough_blocks: bool,
    /// Roughly how much longer to measure on each side (seconds) before the
    /// question could be settled, when it can be estimated.
    pub more_time_seconds: Option<f64>,
}

/// Judges `estimate` against `null` (0 for a difference, 1 for a ratio),
/// with `blocks` matched blocks per side of `block_length` seconds over a
/// window of `side_seconds` per side.
pub fn judge(
    estimate: &Estimate,
    null: f64,
    blocks: (usize, usize),
    block_length: f64,
    side_seconds: f64,
    ratio: bool,
) -> Judgement {
    let excludes = match (estimate.low, estimate.high) {
        (Some(l), _) if l > null => Some(Direction::Higher),
        (_, Some(h)) if h < null => Some(Direction::Lower),
        _ => None,
    };
    let fewest = blocks.0.min(blocks.1);
    let enough = fewest >= MIN_BLOCKS;
    let more_time = if !enough {
        Some((MIN_BLOCKS - fewest) as f64 * block_length)
    } else if excludes.is_none() {
        // How many times more data would shrink the interval to the size
        // of the effect seen, if that effect is real.
        let scale = |x: f64| if ratio { x.max(1e-9).ln() } else { x };
        match (estimate.value, estimate.low, estimate.high) {
            (Some(v), Some(l), Some(h)) if (scale(v) - scale(null)).abs() > 1e-9 => {
                let half = (scale(h) - scale(l)) / 2.0;
                let m = (half / (scale(v) - scale(null)).abs()).powi(2);
                (m.is_finite() && m > 1.0).then_some(side_seconds * (m - 1.0))
            }
            _ => None,
        }
    } else {
        None
    };
    Judgement {
        direction: if enough { excludes } else { None },
        interval_excludes_null: excludes.is_some(),
        blocks_before: blocks.0,
        blocks_after: blocks.1,
        enough_blocks: enough,
        more_time_seconds: more_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_quantile_gives_what_quantile_gives() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        // Two sites over 40 blocks; values exact in f32.
        let sites: Vec<Vec<Vec<f32>>> = (0..2)
            .map(|s| {
                (0..40)
                    .map(|b| {
                        let k = rng.random_range(0..12);
                        let mut v: Vec<f32> = (0..k)
                            .map(|_| {
                                (rng.random_range(10..2000) as f32) * (1.0 + (b % 5) as f32)
                                    + s as f32
                            })
                            .collect();
                        v.sort_by(f32::total_cmp);
                        v
                    })
                    .collect()
            })
            .collect();
        let wholes: Vec<Vec<f32>> = sites
            .iter()
            .map(|blocks| {
                let mut all: Vec<f32> = blocks.iter().flatten().copied().collect();
                all.sort_by(f32::total_cmp);
                all
            })
            .collect();
        let clusters: Vec<Vec<&[f32]>> = (0..40)
            .map(|b| sites.iter().map(|s| s[b].as_slice()).collect())
            .collect();
        let f64_blocks: Vec<Vec<f64>> = (0..40)
            .map(|b| {
                sites
                    .iter()
                    .flat_map(|s| s[b].iter().map(|x| *x as f64))
                    .collect()
            })
            .collect();
        let refs: Vec<&[f64]> = f64_blocks.iter().map(Vec::as_slice).collect();
        let whole_refs: Vec<&[f32]> = wholes.iter().map(Vec::as_slice).collect();
        for q in [0.5, 0.95, 0.99] {
            assert_eq!(
                sorted_quantile(&whole_refs, &clusters, q, 0.05),
                quantile(&refs, q),
                "q = {q}"
            );
        }
        // A stricter level only widens the interval.
        let strict = sorted_quantile(&whole_refs, &clusters, 0.95, 0.001);
        let usual = quantile(&refs, 0.95);
        assert!(
            strict.low.unwrap() <= usual.low.unwrap()
                && strict.high.unwrap() >= usual.high.unwrap()
        );
        assert_eq!(sorted_quantile(&[], &[], 0.95, 0.05).value, None);
    }

    #[test]
    fn a_stricter_level_widens_the_share_interval() {
        let blocks: Vec<(u64, u64)> = (0..30).map(|i| (95 + i % 3, 100)).collect();
        let usual = proportion(&blocks);
        let strict = proportion_at(&blocks, 0.001);
        assert_eq!(usual, proportion_at(&blocks, 0.05));
        assert_eq!(usual.value, strict.value);
        assert!(
            strict.low.unwrap() < usual.low.unwrap() && strict.high.unwrap() > usual.high.unwrap()
        );
    }

    #[test]
    fn blocks_are_at_least_twice_the_longest_freeze_and_run_interval() {
        assert_eq!(block_length(0.0, 300.0), 600.0);
        assert_eq!(block_length(200.0, 15.0), 600.0);
        assert_eq!(block_length(700.0, 300.0), 1800.0);
        assert_eq!(block_length(10_000.0, 300.0), 3600.0);
        assert_eq!(block_length(0.0, 0.25), 1.0);
    }

    #[test]
    fn cells_tell_weekday_hours_from_weekend_hours() {
        let c = Calendar::default();
        // 2026-06-01 was a Monday; 09:30 UTC.
        let monday = 1_780_306_200.0;
        assert_eq!(c.cell(monday), 9);
        assert_eq!(c.cell(monday + 5.0 * 86_400.0), 24 + 9);
        assert_eq!(c.cell(monday + 4.0 * 86_400.0 + 3600.0), 10);
        // A calendar sixty times faster: a real minute is an hour.
        let fast = Calendar { scale: 60.0 };
        assert_ne!(fast.cell(monday), fast.cell(monday + 60.0));
    }

    #[test]
    fn the_grid_cuts_at_the_anchor_and_splits_stretches() {
        let g = BlockGrid::new(0.0, 1000.0, 450.0, 100.0);
        assert_eq!(g.index(449.0), Some(-1));
        assert_eq!(g.index(450.0), Some(0));
        // Partial blocks at the ends are not blocks.
        assert_eq!(g.index(30.0), None);
        assert_eq!(g.index(960.0), None);
        assert_eq!(g.split(430.0, 470.0), vec![(-1, 20.0), (0, 20.0)]);
    }

    #[test]
    fn matching_keeps_equal_counts_per_cell_nearest_first() {
        let c = Calendar::default();
        let monday9 = 1_780_304_400.0;
        let before = [
            (monday9, "b9a"),
            (monday9 + 86_400.0, "b9b"),
            (monday9 + 3600.0, "b10"),
        ];
        let after = [
            (monday9 + 2.0 * 86_400.0, "a9"),
            (monday9 + 2.0 * 86_400.0 + 7200.0, "a11"),
        ];
        let (b, a) = match_by_cell(&c, &before, &after);
        assert_eq!(b, ["b9b"]);
        assert_eq!(a, ["a9"]);
    }

    #[test]
    fn clustering_widens_a_share_and_a_rate() {
        // The same 90% in 20 blocks: spread evenly, or all failures in two.
        let even: Vec<(u64, u64)> = (0..20).map(|_| (9, 10)).collect();
        let clustered: Vec<(u64, u64)> = (0..20)
            .map(|i| if i < 2 { (0, 10) } else { (10, 10) })
            .collect();
        let (e, c) = (proportion(&even), proportion(&clustered));
        assert_eq!(e.value, c.value);
        assert!(c.high.unwrap() - c.low.unwrap() > 2.0 * (e.high.unwrap() - e.low.unwrap()));
        let spread: Vec<(f64, f64)> = (0..20).map(|_| (1.0, 1.0)).collect();
        let bunched: Vec<(f64, f64)> = (0..20)
            .map(|i| (if i == 0 { 20.0 } else { 0.0 }, 1.0))
            .collect();
        let (s, b) = (rate(&spread), rate(&bunched));
        assert_eq!(s.value, b.value);
        assert!(b.high.unwrap() > 2.0 * s.high.unwrap(), "{s:?} {b:?}");
    }

    #[test]
    fn a_rate_ratio_has_an_exact_interval() {
        // 10 events against 10 in equal exposure: ratio 1, interval about 0.4 to 2.4.
        let before: Vec<(f64, f64)> = (0..10).map(|_| (1.0, 1.0)).collect();
        let r = rate_ratio(&before, &before);
        assert_eq!(r.value, Some(1.0));
        assert!((r.low.unwrap() - 0.39).abs() < 0.03, "{r:?}");
        assert!((r.high.unwrap() - 2.58).abs() < 0.15, "{r:?}");
        // None before: a lower bound only.
        let none: Vec<(f64, f64)> = (0..10).map(|_| (0.0, 1.0)).collect();
        let r = rate_ratio(&none, &before);
        assert_eq!((r.value, r.high), (None, None));
        assert!(r.low.unwrap() > 1.0);
    }

    #[test]
    fn a_quantile_interval_widens_when_the_tail_sits_in_few_blocks() {
        let even: Vec<Vec<f64>> = (0..40)
            .map(|b| {
                (0..20)
                    .map(|i| 100.0 + ((b * 20 + i) % 100) as f64)
                    .collect()
            })
            .collect();
        let mut bunched = even.clone();
        for block in bunched.iter_mut().take(2) {
            for x in block.iter_mut() {
                *x += 10_000.0;
            }
        }
        fn refs(v: &[Vec<f64>]) -> Vec<&[f64]> {
            v.iter().map(Vec::as_slice).collect()
        }
        let e = quantile(&refs(&even), 0.95);
        let b = quantile(&refs(&bunched), 0.95);
        assert!(e.covers(e.value.unwrap()));
        assert!(
            b.high.unwrap() - b.low.unwrap() > e.high.unwrap() - e.low.unwrap(),
            "{e:?} {b:?}"
        );
        let d = quantile_difference(&refs(&even), &refs(&even), 0.95);
        assert_eq!(d.value, Some(0.0));
        assert!(d.covers(0.0));
    }

    #[test]
    fn a_direction_needs_the_interval_and_enough_blocks() {
        let e = Estimate::new(-500.0, -800.0, -200.0, 100, CLUSTERED_QUANTILE_DIFFERENCE);
        let j = judge(&e, 0.0, (30, 40), 600.0, 86_400.0, false);
        assert_eq!(j.direction, Some(Direction::Lower));
        let j = judge(&e, 0.0, (5, 40), 600.0, 86_400.0, false);
        assert_eq!(j.direction, None);
        assert!(j.interval_excludes_null);
        assert_eq!(j.more_time_seconds, Some(19.0 * 600.0));
        // Enough blocks, an interval across zero: a quarter of the width
        // needs about 16 times the data.
        let wide = Estimate::new(-100.0, -500.0, 300.0, 100, CLUSTERED_QUANTILE_DIFFERENCE);
        let j = judge(&wide, 0.0, (30, 30), 600.0, 3600.0, false);
        assert_eq!(j.direction, None);
        assert_eq!(j.more_time_seconds, Some(3600.0 * 15.0));
    }
}
