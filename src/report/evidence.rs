//! Evidence that respects how measurements hang together. Every interval
//! the report draws treats whole **units of days** as its independent
//! observations, never single steps or hours:
//!
//! - one freeze stalls every request in flight and one restart drops every
//!   session at once, so steps of the same hour are not independent;
//! - real load differs from one day to the next, so the hours of one day
//!   are not independent either: a day is the shortest unit, and longer
//!   ones (2, 4 or 7 days) are taken when the days themselves are
//!   correlated ([`super::design`] chooses the length).
//!
//! Each estimate is built from **parts** (one calendar hour's tallies, with
//! the unit of days it belongs to and its **stratum**, the hour's calendar
//! cell or the day's type). Variances are the spread between units of each
//! unit's residuals around its strata's own rates, so that a daily cycle
//! (busy mornings, quiet nights) is not mistaken for noise:
//!
//! - shares (availability): Wilson score interval on the effective sample
//!   size, the design effect from the between-unit variance, strata by
//!   day type, Student's t on the units' degrees of freedom;
//! - quantiles (p95): Woodruff's interval, the variance of the share of
//!   samples at or below the quantile from the between-unit spread of
//!   residuals around each calendar cell's own share, t on the units'
//!   degrees of freedom; the difference of two quantiles by MOVER (before
//!   and after a change are different days, hence independent, and their
//!   calendar composition is matched);
//! - rates: exact Poisson (Garwood) interval on the count divided by the
//!   over-dispersion (Pearson χ² across units around each day type's rate;
//!   a side or day type with no events adds no degrees of freedom);
//! - ratio of two rates: exact conditional binomial (Clopper–Pearson) on
//!   the over-dispersion-adjusted counts.
//!
//! **Minimum evidence.** No interval is given from fewer than
//! [`MIN_UNITS`] units; a direction ("faster", "more") is claimed only when
//! the interval excludes no difference, each side has [`MIN_UNITS`] units,
//! and a rate's difference rests on at least [`MIN_EVENTS`] events in as
//! many different units. Otherwise the report says there is not enough
//! evidence yet, and about how much longer to measure.
//!
//! Pure: numbers in, estimates out. [`super::calibration`] proves these
//! intervals on data whose truth is known.

use std::collections::{BTreeMap, BTreeSet};

use statrs::distribution::{Beta, ChiSquared, ContinuousCDF, StudentsT};

use super::stats::{Estimate, Z95};
use crate::ledger::class_value;

/// Independent units each side (or each figure) needs before an interval
/// is given or a direction claimed: a week of days, so that weekdays and a
/// weekend are both in it.
pub const MIN_UNITS: usize = 7;
/// Events (and different units holding them) a rate's direction needs.
pub const MIN_EVENTS: u64 = 5;

pub const CLUSTERED_WILSON: &str =
    "Wilson score interval on the effective sample size (design effect from the spread between units of days, by day type), t on the units' degrees of freedom (95%)";
pub const CLUSTERED_QUANTILE: &str =
    "Woodruff interval, variance from the spread between units of days around each calendar hour's own share, t on the units' degrees of freedom (95%)";
pub const CLUSTERED_QUANTILE_DIFFERENCE: &str =
    "difference of quantiles, MOVER from the two clustered Woodruff intervals of matched, independent days (95%)";
pub const OVERDISPERSED_RATE: &str =
    "exact Poisson (Garwood) interval on the count divided by the over-dispersion between units of days (95%)";
pub const RATE_RATIO: &str =
    "ratio of rates, exact conditional binomial (Clopper-Pearson) on over-dispersion-adjusted counts (95%)";

/// One hour's tallies, placed in its unit of days and its stratum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Part<T> {
    /// The unit of days it belongs to (any numbering).
    pub unit: i64,
    /// Its stratum: the calendar cell for latency, the day type otherwise.
    pub stratum: u16,
    /// 0 for a weekday, 1 for a weekend day.
    pub day_type: u8,
    pub value: T,
}

/// Units, and the degrees of freedom their residuals keep: one is spent
/// on each kind of unit (weekday units, weekend units, units mixing both)
/// whose strata were centred.
fn units_and_df<T>(parts: &[Part<T>], used: impl Fn(&T) -> bool) -> (usize, usize) {
    let mut kinds: BTreeMap<i64, u8> = BTreeMap::new();
    for p in parts.iter().filter(|p| used(&p.value)) {
        *kinds.entry(p.unit).or_default() |= 1 << p.day_type.min(1);
    }
    let m = kinds.len();
    let signatures: BTreeSet<u8> = kinds.values().copied().collect();
    (m, m.saturating_sub(signatures.len()))
}

/// Student's t for a two-sided `1 - alpha` interval on `df` degrees of freedom.
fn t_quantile(df: usize, alpha: f64) -> f64 {
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

/// An estimate with its interval withheld when fewer than [`MIN_UNITS`]
/// units stand behind it.
pub fn ruled(mut e: Estimate, units: usize) -> Estimate {
    e.units = units as u64;
    if units < MIN_UNITS {
        e.low = None;
        e.high = None;
    }
    e
}

/// Σ over each unit of `residual(part)`, squared and summed, with the
/// small-sample factor m / df.
fn between_units<T>(
    parts: &[Part<T>],
    m: usize,
    df: usize,
    residual: impl Fn(&Part<T>) -> f64,
) -> f64 {
    if df == 0 {
        return f64::INFINITY;
    }
    let mut by_unit: BTreeMap<i64, f64> = BTreeMap::new();
    for p in parts {
        *by_unit.entry(p.unit).or_default() += residual(p);
    }
    m as f64 / df as f64 * by_unit.values().map(|r| r * r).sum::<f64>()
}

/// A share `Σ successes / Σ trials` over parts `(successes, trials)`.
pub fn share(parts: &[Part<(u64, u64)>], alpha: f64) -> Estimate {
    let total: f64 = parts.iter().map(|p| p.value.1 as f64).sum();
    if total <= 0.0 {
        return Estimate::none(0, CLUSTERED_WILSON);
    }
    let p = parts.iter().map(|p| p.value.0 as f64).sum::<f64>() / total;
    let mut strata: BTreeMap<u16, (f64, f64)> = BTreeMap::new();
    for part in parts {
        let e = strata.entry(part.stratum).or_default();
        e.0 += part.value.0 as f64;
        e.1 += part.value.1 as f64;
    }
    let (m, df) = units_and_df(parts, |v| v.1 > 0);
    let clustered = between_units(parts, m, df, |part| {
        let (s, n) = strata[&part.stratum];
        part.value.0 as f64 - s / n * part.value.1 as f64
    }) / (total * total);
    let binomial = p * (1.0 - p) / total;
    let deff = if binomial > 0.0 && clustered.is_finite() {
        (clustered / binomial).max(1.0)
    } else {
        1.0
    };
    let estimate = if df == 0 {
        Estimate::none(total as u64, CLUSTERED_WILSON).with_value(p)
    } else {
        let (low, high) = wilson_bounds(p, total / deff, t_quantile(df, alpha));
        Estimate::new(p, low, high, total as u64, CLUSTERED_WILSON)
    };
    ruled(estimate, m)
}

fn wilson_bounds(p: f64, n: f64, z: f64) -> (f64, f64) {
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The over-dispersion of counts across units, parts `(count, exposure)`,
/// around each side's own rate in each day type: Pearson χ² over its
/// degrees of freedom, at least 1. A side or day type with no events adds
/// neither χ² nor degrees of freedom: it cannot show dispersion.
pub fn dispersion(sides: &[&[Part<(f64, f64)>]]) -> f64 {
    dispersion_df(sides).0
}

/// [`dispersion`] for intervals: estimated from few units it is itself
/// uncertain, so, as quasi-Poisson inference does with Student's t in place
/// of the normal, it is widened by (t / z)² on its degrees of freedom.
/// Returns (φ, degrees of freedom).
pub fn dispersion_df(sides: &[&[Part<(f64, f64)>]]) -> (f64, usize) {
    let mut chi2 = 0.0;
    let mut df = 0isize;
    for side in sides {
        let mut strata: BTreeMap<u8, (f64, f64)> = BTreeMap::new();
        for p in side.iter() {
            let e = strata.entry(p.day_type).or_default();
            e.0 += p.value.0;
            e.1 += p.value.1;
        }
        let mut units: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
        for p in side.iter() {
            let (k, e) = strata[&p.day_type];
            if k <= 0.0 || e <= 0.0 || p.value.1 <= 0.0 {
                continue;
            }
            let u = units.entry(p.unit).or_default();
            u.0 += p.value.0;
            u.1 += k / e * p.value.1;
        }
        let with_events = strata
            .values()
            .filter(|(k, e)| *k > 0.0 && *e > 0.0)
            .count();
        if units.is_empty() {
            continue;
        }
        df += units.len() as isize - with_events as isize;
        chi2 += units
            .values()
            .filter(|(_, expected)| *expected > 0.0)
            .map(|(k, expected)| (k - expected).powi(2) / expected)
            .sum::<f64>();
    }
    if df <= 0 {
        (1.0, 0)
    } else {
        ((chi2 / df as f64).max(1.0), df as usize)
    }
}

/// φ for an interval at level `1 - alpha`: (t / z)² times the estimate, so
/// that an over-dispersion read from few units does not make intervals
/// too narrow.
fn interval_phi(sides: &[&[Part<(f64, f64)>]], alpha: f64) -> f64 {
    let (phi, df) = dispersion_df(sides);
    if df == 0 {
        return phi;
    }
    let ratio = t_quantile(df, alpha) / z_for(alpha);
    phi * ratio * ratio
}

/// Garwood bounds for a (possibly fractional) count at level `1 - alpha`.
fn garwood(k: f64, alpha: f64) -> (f64, f64) {
    let low = if k <= 0.0 {
        0.0
    } else {
        ChiSquared::new(2.0 * k)
            .map(|c| c.inverse_cdf(alpha / 2.0) / 2.0)
            .unwrap_or(0.0)
    };
    let high = ChiSquared::new(2.0 * (k + 1.0))
        .map(|c| c.inverse_cdf(1.0 - alpha / 2.0) / 2.0)
        .unwrap_or(f64::INFINITY);
    (low, high)
}

fn sums(parts: &[Part<(f64, f64)>]) -> (f64, f64) {
    (
        parts.iter().map(|p| p.value.0).sum(),
        parts.iter().map(|p| p.value.1).sum(),
    )
}

/// Events per unit of exposure over parts `(count, exposure)`, with a
/// Garwood interval allowing for over-dispersion across units.
pub fn rate(parts: &[Part<(f64, f64)>], alpha: f64) -> Estimate {
    let (k, e) = sums(parts);
    if e <= 0.0 {
        return Estimate::none(k as u64, OVERDISPERSED_RATE);
    }
    let phi = interval_phi(&[parts], alpha);
    let (low, high) = garwood(k / phi, alpha);
    let (m, _) = units_and_df(parts, |v| v.1 > 0.0);
    ruled(
        Estimate::new(
            k / e,
            phi * low / e,
            phi * high / e,
            k.round() as u64,
            OVERDISPERSED_RATE,
        ),
        m,
    )
}

/// `k` events in `exposure`, over-dispersion `phi` already known: the
/// Garwood interval on `k / phi`, scaled back.
pub fn count_rate(k: f64, exposure: f64, phi: f64, alpha: f64) -> Estimate {
    if exposure <= 0.0 {
        return Estimate::none(k.round() as u64, OVERDISPERSED_RATE);
    }
    let phi = phi.max(1.0);
    let (low, high) = garwood(k / phi, alpha);
    Estimate::new(
        k / exposure,
        phi * low / exposure,
        phi * high / exposure,
        k.round() as u64,
        OVERDISPERSED_RATE,
    )
}

/// Events, and how many different units hold them.
pub fn events(parts: &[Part<(f64, f64)>]) -> (u64, usize) {
    let units: BTreeSet<i64> = parts
        .iter()
        .filter(|p| p.value.0 > 0.0)
        .map(|p| p.unit)
        .collect();
    (sums(parts).0.round() as u64, units.len())
}

/// The rate after over the rate before, with an exact conditional interval
/// on over-dispersion-adjusted counts. With no event before, only a lower
/// bound; with no event at all, no estimate; with fewer than
/// [`MIN_UNITS`] units on either side, no interval.
pub fn rate_ratio(before: &[Part<(f64, f64)>], after: &[Part<(f64, f64)>], alpha: f64) -> Estimate {
    let phi = interval_phi(&[before, after], alpha);
    let (mb, _) = units_and_df(before, |v| v.1 > 0.0);
    let (ma, _) = units_and_df(after, |v| v.1 > 0.0);
    // Under the evidence rule like every figure: no range from fewer
    // than MIN_UNITS units on the thinner side.
    ruled(
        ratio_of_counts(sums(before), sums(after), phi, alpha),
        mb.min(ma),
    )
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
        low: low.is_finite().then_some(low),
        high: high.is_finite().then_some(high),
        n,
        units: 0,
        method: RATE_RATIO,
    }
}

/// A distribution of latency classes: (class, count), by class.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Distribution {
    classes: Vec<(u32, u64)>,
    n: u64,
}

impl Distribution {
    /// The samples of `parts`.
    pub fn of(parts: &[Part<&[u32]>]) -> Distribution {
        let mut all: Vec<u32> = Vec::with_capacity(parts.iter().map(|p| p.value.len()).sum());
        for p in parts {
            all.extend_from_slice(p.value);
        }
        all.sort_unstable();
        let mut classes: Vec<(u32, u64)> = Vec::new();
        for c in all {
            match classes.last_mut() {
                Some((last, n)) if *last == c => *n += 1,
                _ => classes.push((c, 1)),
            }
        }
        let n = classes.iter().map(|c| c.1).sum();
        Distribution { classes, n }
    }

    /// Several distributions as one.
    pub fn merge(all: &[&Distribution]) -> Distribution {
        let mut classes: Vec<(u32, u64)> =
            all.iter().flat_map(|d| d.classes.iter().copied()).collect();
        classes.sort_unstable_by_key(|c| c.0);
        let mut merged: Vec<(u32, u64)> = Vec::with_capacity(classes.len());
        for (c, k) in classes {
            match merged.last_mut() {
                Some((last, n)) if *last == c => *n += k,
                _ => merged.push((c, k)),
            }
        }
        Distribution {
            n: merged.iter().map(|c| c.1).sum(),
            classes: merged,
        }
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The smallest class with at least `rank` samples at or below it.
    fn select(&self, rank: u64) -> u32 {
        let mut seen = 0;
        for (c, k) in &self.classes {
            seen += k;
            if seen >= rank {
                return *c;
            }
        }
        self.classes.last().map_or(0, |c| c.0)
    }

    /// HdrHistogram's quantile `q` (ms): the highest value equivalent to
    /// the smallest sample with a share `q` at or below it.
    fn at(&self, q: f64) -> f64 {
        let rank = ((q.clamp(0.0, 1.0) * self.n as f64).ceil() as u64).clamp(1, self.n);
        class_value(self.select(rank)) as f64 / 1000.0
    }
}

/// Quantile `q` (ms) of latency classes in parts, with Woodruff's interval
/// on the between-unit spread of residuals around each stratum's share.
pub fn quantile(parts: &[Part<&[u32]>], q: f64, alpha: f64) -> Estimate {
    quantile_of(&Distribution::of(parts), parts, q, alpha)
}

/// [`quantile`] with the parts' distribution already at hand.
pub fn quantile_of(dist: &Distribution, parts: &[Part<&[u32]>], q: f64, alpha: f64) -> Estimate {
    let n = dist.n as usize;
    if n == 0 {
        return Estimate::none(0, CLUSTERED_QUANTILE);
    }
    let rank = ((q * n as f64).ceil() as u64).clamp(1, dist.n);
    let class = dist.select(rank);
    let value = class_value(class) as f64 / 1000.0;
    let below = |p: &Part<&[u32]>| p.value.partition_point(|x| *x <= class) as f64;
    let mut strata: BTreeMap<u16, (f64, f64)> = BTreeMap::new();
    for p in parts {
        let e = strata.entry(p.stratum).or_default();
        e.0 += below(p);
        e.1 += p.value.len() as f64;
    }
    let (m, df) = units_and_df(parts, |v| !v.is_empty());
    let nf = n as f64;
    let clustered = between_units(parts, m, df, |p| {
        let (b, size) = strata[&p.stratum];
        below(p) - b / size * p.value.len() as f64
    }) / (nf * nf);
    if df == 0 {
        return ruled(
            Estimate::none(n as u64, CLUSTERED_QUANTILE).with_value(value),
            m,
        );
    }
    // Never narrower than the independent-samples interval.
    let se = clustered.max(q * (1.0 - q) / nf).sqrt();
    let t = t_quantile(df, alpha);
    let (lo, hi) = (q - t * se, q + t * se);
    let low = if lo <= 0.0 { dist.at(0.0) } else { dist.at(lo) };
    let high = if hi >= 1.0 { dist.at(1.0) } else { dist.at(hi) };
    ruled(
        Estimate::new(
            value,
            low.min(value),
            high.max(value),
            n as u64,
            CLUSTERED_QUANTILE,
        ),
        m,
    )
}

/// `after - before` from two estimates' intervals (MOVER), with `method`.
pub fn difference(before: &Estimate, after: &Estimate, method: &'static str) -> Estimate {
    let n = before.n + after.n;
    let units = before.units.min(after.units);
    let mut e = match (
        (before.value, before.low, before.high),
        (after.value, after.low, after.high),
    ) {
        ((Some(vb), Some(lb), Some(hb)), (Some(va), Some(la), Some(ha))) => {
            let d = va - vb;
            let low = d - ((va - la).powi(2) + (hb - vb).powi(2)).sqrt();
            let high = d + ((ha - va).powi(2) + (vb - lb).powi(2)).sqrt();
            Estimate::new(d, low, high, n, method)
        }
        ((Some(vb), ..), (Some(va), ..)) => Estimate::none(n, method).with_value(va - vb),
        _ => Estimate::none(n, method),
    };
    e.units = units;
    e
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
    /// Set only when the interval excludes no-difference, both sides have
    /// enough units and a rate rests on enough events.
    pub direction: Option<Direction>,
    /// The interval alone excludes no-difference.
    pub interval_excludes_null: bool,
    /// Units of days on each side.
    pub units_before: usize,
    pub units_after: usize,
    pub enough_units: bool,
    /// For a rate: events on both sides together, in how many different
    /// units, and whether that is enough to state a direction.
    pub events: Option<u64>,
    pub event_units: Option<usize>,
    pub enough_events: bool,
    /// Roughly how much longer to measure on each side (seconds) before the
    /// question could be settled, when it can be estimated.
    pub more_time_seconds: Option<f64>,
}

/// Judges `estimate` against `null` (0 for a difference, 1 for a ratio),
/// with `units` per side of `unit_seconds` over windows of `side_seconds`;
/// `events` (a rate's events and the units holding them) when it is a rate.
/// What each measure of one comparison is judged on: the independent
/// units on each side, a unit's length and a side's length (seconds).
#[derive(Clone, Copy, Debug)]
pub struct Sides {
    pub units: (usize, usize),
    pub unit_seconds: f64,
    pub side_seconds: f64,
}

impl Sides {
    /// [`judge`] on these sides.
    pub fn judge(
        &self,
        estimate: &Estimate,
        null: f64,
        ratio: bool,
        events: Option<(u64, usize)>,
    ) -> Judgement {
        let Sides {
            units,
            unit_seconds,
            side_seconds,
        } = *self;
        judge(
            estimate,
            null,
            units,
            unit_seconds,
            side_seconds,
            ratio,
            events,
        )
    }
}

pub fn judge(
    estimate: &Estimate,
    null: f64,
    units: (usize, usize),
    unit_seconds: f64,
    side_seconds: f64,
    ratio: bool,
    events: Option<(u64, usize)>,
) -> Judgement {
    let excludes = match (estimate.low, estimate.high) {
        (Some(l), _) if l > null => Some(Direction::Higher),
        (_, Some(h)) if h < null => Some(Direction::Lower),
        _ => None,
    };
    let fewest = units.0.min(units.1);
    let enough = fewest >= MIN_UNITS;
    let enough_events = events.is_none_or(|(k, u)| k >= MIN_EVENTS && u as u64 >= MIN_EVENTS);
    let more_time = if !enough {
        Some((MIN_UNITS - fewest) as f64 * unit_seconds)
    } else if excludes.is_none() || !enough_events {
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
        direction: if enough && enough_events {
            excludes
        } else {
            None
        },
        interval_excludes_null: excludes.is_some(),
        units_before: units.0,
        units_after: units.1,
        enough_units: enough,
        events: events.map(|e| e.0),
        event_units: events.map(|e| e.1),
        enough_events,
        more_time_seconds: more_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::class_of;

    fn part<T>(unit: i64, stratum: u16, value: T) -> Part<T> {
        Part {
            unit,
            stratum,
            day_type: (stratum / 24).min(1) as u8,
            value,
        }
    }

    #[test]
    fn no_interval_from_fewer_than_a_week_of_units() {
        let few: Vec<Part<(u64, u64)>> = (0..6).map(|d| part(d, 0, (95, 100))).collect();
        let e = share(&few, 0.05);
        assert_eq!(e.value, Some(0.95));
        assert_eq!((e.low, e.high, e.units), (None, None, 6));
        let week: Vec<Part<(u64, u64)>> = (0..8)
            .map(|d| part(d, 0, (95 + (d % 2) as u64, 100)))
            .collect();
        let e = share(&week, 0.05);
        assert!(e.low.is_some() && e.covers(0.955), "{e:?}");
    }

    #[test]
    fn a_stricter_level_widens_the_share_interval() {
        let parts: Vec<Part<(u64, u64)>> = (0..30)
            .map(|i| part(i, 0, (95 + i as u64 % 3, 100)))
            .collect();
        let usual = share(&parts, 0.05);
        let strict = share(&parts, 0.001);
        assert_eq!(usual.value, strict.value);
        assert!(
            strict.low.unwrap() < usual.low.unwrap() && strict.high.unwrap() > usual.high.unwrap()
        );
    }

    #[test]
    fn clustering_widens_a_share_and_a_rate() {
        // The same 90% in 20 days: spread evenly, or all failures in two.
        let even: Vec<Part<(u64, u64)>> = (0..20).map(|i| part(i, 0, (9, 10))).collect();
        let clustered: Vec<Part<(u64, u64)>> = (0..20)
            .map(|i| part(i, 0, if i < 2 { (0, 10) } else { (10, 10) }))
            .collect();
        let (e, c) = (share(&even, 0.05), share(&clustered, 0.05));
        assert_eq!(e.value, c.value);
        assert!(c.high.unwrap() - c.low.unwrap() > 2.0 * (e.high.unwrap() - e.low.unwrap()));
        let spread: Vec<Part<(f64, f64)>> = (0..20).map(|i| part(i, 0, (1.0, 1.0))).collect();
        let bunched: Vec<Part<(f64, f64)>> = (0..20)
            .map(|i| part(i, 0, (if i == 0 { 20.0 } else { 0.0 }, 1.0)))
            .collect();
        let (s, b) = (rate(&spread, 0.05), rate(&bunched, 0.05));
        assert_eq!(s.value, b.value);
        assert!(b.high.unwrap() > 2.0 * s.high.unwrap(), "{s:?} {b:?}");
    }

    #[test]
    fn a_side_without_events_adds_no_degrees_of_freedom() {
        // Eight events bunched in two of ten units on one side, none on the
        // other: the empty side cannot halve the over-dispersion.
        let busy: Vec<Part<(f64, f64)>> = (0..10)
            .map(|i| part(i, 0, (if i < 2 { 4.0 } else { 0.0 }, 1.0)))
            .collect();
        let quiet: Vec<Part<(f64, f64)>> = (10..20).map(|i| part(i, 0, (0.0, 1.0))).collect();
        assert_eq!(dispersion(&[&busy, &quiet]), dispersion(&[&busy]));
        assert!(dispersion(&[&busy]) > 3.0);
        // And so 0 against 8 bunched events is no evidence of a change.
        let r = rate_ratio(&quiet, &busy, 0.05);
        let j = judge(
            &r,
            1.0,
            (10, 10),
            86_400.0,
            10.0 * 86_400.0,
            true,
            Some(events_of(&quiet, &busy)),
        );
        assert_eq!(j.direction, None, "{r:?} {j:?}");
    }

    fn events_of(a: &[Part<(f64, f64)>], b: &[Part<(f64, f64)>]) -> (u64, usize) {
        let (ka, ua) = events(a);
        let (kb, ub) = events(b);
        (ka + kb, ua + ub)
    }

    #[test]
    fn a_rate_ratio_has_an_exact_interval() {
        // 10 events against 10 in equal exposure, one a unit: ratio 1. The
        // exact interval on 10 and 10 is about 0.39 to 2.58; read from ten
        // units a side, the counts are divided by (t18 / z)^2 = 1.15 first.
        let before: Vec<Part<(f64, f64)>> = (0..10).map(|i| part(i, 0, (1.0, 1.0))).collect();
        let r = rate_ratio(&before, &before, 0.05);
        assert_eq!(r.value, Some(1.0));
        let exact = ratio_of_counts((10.0, 10.0), (10.0, 10.0), 1.0, 0.05);
        assert!((exact.low.unwrap() - 0.39).abs() < 0.03, "{exact:?}");
        assert!((exact.high.unwrap() - 2.58).abs() < 0.15, "{exact:?}");
        let t = t_quantile(18, 0.05) / Z95;
        let widened = ratio_of_counts((10.0, 10.0), (10.0, 10.0), t * t, 0.05);
        assert_eq!((r.low, r.high), (widened.low, widened.high));
        let none: Vec<Part<(f64, f64)>> = (0..10).map(|i| part(i, 0, (0.0, 1.0))).collect();
        let r = rate_ratio(&none, &before, 0.05);
        assert_eq!((r.value, r.high), (None, None));
        assert!(r.low.unwrap() > 1.0);
    }

    fn latency_days(days: i64, shift: impl Fn(i64) -> f64) -> Vec<Vec<u32>> {
        (0..days * 24)
            .map(|slot| {
                let day = slot / 24;
                let mut v: Vec<u32> = (0..12)
                    .map(|i| {
                        class_of(
                            ((100.0 + (slot * 12 + i) as f64 % 97.0) * shift(day) * 1000.0) as u64,
                        )
                    })
                    .collect();
                v.sort_unstable();
                v
            })
            .collect()
    }

    fn parts_of(slots: &[Vec<u32>]) -> Vec<Part<&[u32]>> {
        slots
            .iter()
            .enumerate()
            .map(|(i, v)| part((i / 24) as i64, (i % 24) as u16, v.as_slice()))
            .collect()
    }

    #[test]
    fn the_quantile_is_hdrhistogram_s() {
        let slots = latency_days(8, |_| 1.0);
        let mut h = crate::recorder::new_histogram();
        for v in slots.iter().flatten() {
            h.record(u64::from(*v)).unwrap();
        }
        let e = quantile(&parts_of(&slots), 0.95, 0.05);
        assert_eq!(e.value, Some(h.value_at_quantile(0.95) as f64 / 1000.0));
        assert!(e.low.unwrap() <= e.value.unwrap() && e.high.unwrap() >= e.value.unwrap());
    }

    #[test]
    fn days_that_differ_widen_the_quantile_interval() {
        let steady = latency_days(14, |_| 1.0);
        let varying = latency_days(14, |d| if d % 2 == 0 { 0.8 } else { 1.25 });
        let (s, v) = (
            quantile(&parts_of(&steady), 0.95, 0.05),
            quantile(&parts_of(&varying), 0.95, 0.05),
        );
        let width = |e: &Estimate| e.high.unwrap() - e.low.unwrap();
        assert!(width(&v) > 2.0 * width(&s), "{s:?} {v:?}");
    }

    #[test]
    fn a_direction_needs_the_interval_units_and_events() {
        let e = Estimate::new(-500.0, -800.0, -200.0, 100, CLUSTERED_QUANTILE_DIFFERENCE);
        let j = judge(&e, 0.0, (10, 12), 86_400.0, 864_000.0, false, None);
        assert_eq!(j.direction, Some(Direction::Lower));
        let j = judge(&e, 0.0, (5, 12), 86_400.0, 864_000.0, false, None);
        assert_eq!(j.direction, None);
        assert!(j.interval_excludes_null);
        assert_eq!(j.more_time_seconds, Some(2.0 * 86_400.0));
        let ratio = Estimate::new(3.0, 1.2, 8.0, 4, RATE_RATIO);
        let j = judge(
            &ratio,
            1.0,
            (10, 10),
            86_400.0,
            864_000.0,
            true,
            Some((4, 4)),
        );
        assert_eq!(j.direction, None);
        assert!(!j.enough_events);
        let j = judge(
            &ratio,
            1.0,
            (10, 10),
            86_400.0,
            864_000.0,
            true,
            Some((9, 6)),
        );
        assert_eq!(j.direction, Some(Direction::Higher));
    }
}
