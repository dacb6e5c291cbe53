//! The report's statistics: every figure the board sees is an [`Estimate`]
//! with a 95% interval and the method that produced it.
//!
//! - proportions: Wilson score interval;
//! - event rates (per hour, per session-hour): exact Poisson (Garwood)
//!   interval from chi-square quantiles;
//! - difference of two rates: MOVER (Newcombe's method of variance estimates
//!   recovery) applied to the two Garwood intervals;
//! - percentiles: distribution-free order-statistic interval (binomial ranks,
//!   normal approximation), computed on raw samples or on merged HdrHistograms;
//! - difference of two p95s: percentile bootstrap (resampling the samples of
//!   each side independently), fixed seed, so a report is reproducible.

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// z for a two-sided 95% interval.
pub use crate::detect::survival::Z95;
pub const BOOTSTRAP_SEED: u64 = 20_240_601;

pub const WILSON: &str = "Wilson score interval (95%)";
pub const GARWOOD: &str = "exact Poisson (Garwood) interval (95%)";
pub const MOVER: &str = "difference of rates, MOVER from Garwood intervals (95%)";
pub const ORDER_STAT: &str = "distribution-free order-statistic interval (95%)";
pub const BOOTSTRAP: &str = "percentile bootstrap, 2000 resamples per side, fixed seed (95%)";

/// A figure with its 95% interval, sample size and method. `value` is
/// `None` when there is no data; `low`/`high` are `None` when no interval can
/// be given.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Estimate {
    pub value: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// The sample size behind the figure (runs, samples, events...).
    pub n: u64,
    /// Independent units of days behind the interval (0 where the figure
    /// is not drawn from time: a share of events, say).
    pub units: u64,
    pub method: &'static str,
}

impl Estimate {
    pub fn none(n: u64, method: &'static str) -> Estimate {
        Estimate {
            value: None,
            low: None,
            high: None,
            n,
            units: 0,
            method,
        }
    }

    pub fn new(value: f64, low: f64, high: f64, n: u64, method: &'static str) -> Estimate {
        Estimate {
            value: Some(value),
            low: Some(low),
            high: Some(high),
            n,
            units: 0,
            method,
        }
    }

    /// The same, with a point value (and no interval unless it had one).
    pub fn with_value(mut self, value: f64) -> Estimate {
        self.value = Some(value);
        self
    }

    /// Multiplies value and bounds (unit changes).
    pub fn scaled(mut self, factor: f64) -> Estimate {
        self.value = self.value.map(|v| v * factor);
        self.low = self.low.map(|v| v * factor);
        self.high = self.high.map(|v| v * factor);
        self
    }

    pub fn covers(&self, x: f64) -> bool {
        matches!((self.low, self.high), (Some(l), Some(h)) if l <= x && x <= h)
    }
}

/// Proportion `k / n` with its Wilson score interval.
pub fn wilson(k: u64, n: u64) -> Estimate {
    if n == 0 {
        return Estimate::none(0, WILSON);
    }
    let (k, nf) = (k as f64, n as f64);
    let p = k / nf;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / denom;
    let half = Z95 * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    Estimate::new(
        p,
        (centre - half).max(0.0),
        (centre + half).min(1.0),
        n,
        WILSON,
    )
}

/// The exact (Garwood) 95% interval for a Poisson count `k`.
pub fn garwood_count(k: u64) -> (f64, f64) {
    let low = if k == 0 {
        0.0
    } else {
        ChiSquared::new(2.0 * k as f64)
            .map(|c| c.inverse_cdf(0.025) / 2.0)
            .unwrap_or(0.0)
    };
    let high = ChiSquared::new(2.0 * (k as f64 + 1.0))
        .map(|c| c.inverse_cdf(0.975) / 2.0)
        .unwrap_or(f64::INFINITY);
    (low, high)
}

/// `k` events over `exposure` (hours, session-hours...) as a rate with its
/// Garwood interval; `n` is the event count.
pub fn rate(k: u64, exposure: f64) -> Estimate {
    if exposure <= 0.0 {
        return Estimate::none(k, GARWOOD);
    }
    let (low, high) = garwood_count(k);
    Estimate::new(
        k as f64 / exposure,
        low / exposure,
        high / exposure,
        k,
        GARWOOD,
    )
}

/// `after - before` for two rates, with the MOVER interval.
pub fn rate_difference(before: &Estimate, after: &Estimate) -> Estimate {
    let n = before.n + after.n;
    match (
        (before.value, before.low, before.high),
        (after.value, after.low, after.high),
    ) {
        ((Some(r1), Some(l1), Some(u1)), (Some(r2), Some(l2), Some(u2))) => {
            let d = r2 - r1;
            let low = d - ((r2 - l2).powi(2) + (u1 - r1).powi(2)).sqrt();
            let high = d + ((u2 - r2).powi(2) + (r1 - l1).powi(2)).sqrt();
            Estimate::new(d, low, high, n, MOVER)
        }
        _ => Estimate::none(n, MOVER),
    }
}

/// The 1-based ranks bounding a 95% interval for quantile `q` of `n` samples.
pub fn quantile_ranks(n: u64, q: f64) -> (u64, u64) {
    let nf = n as f64;
    let sd = (nf * q * (1.0 - q)).sqrt();
    let low = (nf * q - Z95 * sd).floor().max(1.0) as u64;
    let high = ((nf * q + Z95 * sd).ceil() + 1.0).min(nf) as u64;
    (low.min(n).max(1), high.max(1))
}

/// The smallest sample with at least a fraction `q` of samples at or below
/// it (HdrHistogram's definition), from sorted samples.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Quantile `q` of raw samples with its order-statistic interval.
pub fn quantile(samples: &[f64], q: f64) -> Estimate {
    let n = samples.len() as u64;
    if n == 0 {
        return Estimate::none(0, ORDER_STAT);
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = quantile_ranks(n, q);
    Estimate::new(
        percentile_sorted(&sorted, q),
        sorted[lo as usize - 1],
        sorted[hi as usize - 1],
        n,
        ORDER_STAT,
    )
}

/// Quantile `q` of a merged histogram of microseconds, in milliseconds, with
/// its order-statistic interval.
pub fn histogram_quantile_ms(h: &Histogram<u64>, q: f64) -> Estimate {
    let n = h.len();
    if n == 0 {
        return Estimate::none(0, ORDER_STAT);
    }
    let (lo, hi) = quantile_ranks(n, q);
    let at_rank = |rank: u64| h.value_at_quantile(rank as f64 / n as f64) as f64 / 1000.0;
    Estimate::new(
        h.value_at_quantile(q) as f64 / 1000.0,
        at_rank(lo),
        at_rank(hi),
        n,
        ORDER_STAT,
    )
}

fn resampled_quantile(samples: &[f64], q: f64, rng: &mut impl Rng, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend((0..samples.len()).map(|_| samples[rng.random_range(0..samples.len())]));
    let rank = ((q * scratch.len() as f64).ceil() as usize).clamp(1, scratch.len());
    let (_, value, _) = scratch.select_nth_unstable_by(rank - 1, f64::total_cmp);
    *value
}

/// `quantile(after) - quantile(before)` with a percentile-bootstrap interval.
pub fn bootstrap_quantile_difference(before: &[f64], after: &[f64], q: f64) -> Estimate {
    let n = (before.len() + after.len()) as u64;
    if before.is_empty() || after.is_empty() {
        return Estimate::none(n, BOOTSTRAP);
    }
    let point = {
        let (mut b, mut a) = (before.to_vec(), after.to_vec());
        b.sort_by(f64::total_cmp);
        a.sort_by(f64::total_cmp);
        percentile_sorted(&a, q) - percentile_sorted(&b, q)
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(BOOTSTRAP_SEED);
    let mut scratch = Vec::new();
    let reps = 2000;
    let mut diffs: Vec<f64> = (0..reps)
        .map(|_| {
            let a = resampled_quantile(after, q, &mut rng, &mut scratch);
            let b = resampled_quantile(before, q, &mut rng, &mut scratch);
            a - b
        })
        .collect();
    diffs.sort_by(f64::total_cmp);
    Estimate::new(
        point,
        percentile_sorted(&diffs, 0.025),
        percentile_sorted(&diffs, 0.975),
        n,
        BOOTSTRAP,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_a_textbook_value() {
        // 81 of 263: 0.3080, Wilson 95% (0.2553, 0.3662).
        let e = wilson(81, 263);
        assert!((e.low.unwrap() - 0.2553).abs() < 1e-3, "{e:?}");
        assert!((e.high.unwrap() - 0.3662).abs() < 1e-3, "{e:?}");
        assert_eq!(wilson(0, 0).value, None);
        assert!(wilson(10, 10).high.unwrap() > 0.999_999);
    }

    #[test]
    fn garwood_matches_tables() {
        let (l, h) = garwood_count(0);
        assert_eq!(l, 0.0);
        assert!((h - 3.689).abs() < 1e-3);
        let (l, h) = garwood_count(10);
        assert!((l - 4.795).abs() < 1e-3, "{l}");
        assert!((h - 18.39).abs() < 1e-2, "{h}");
    }

    #[test]
    fn bootstrap_covers_a_known_shift() {
        let before: Vec<f64> = (0..400).map(|i| 100.0 + (i % 97) as f64).collect();
        let after: Vec<f64> = before.iter().map(|v| v + 120.0).collect();
        let d = bootstrap_quantile_difference(&before, &after, 0.95);
        assert_eq!(d.value, Some(120.0));
        assert!(d.covers(120.0), "{d:?}");
    }

    #[test]
    fn quantile_interval_brackets_the_value() {
        let samples: Vec<f64> = (1..=1000).map(f64::from).collect();
        let e = quantile(&samples, 0.95);
        assert_eq!(e.value, Some(950.0));
        assert!(e.low.unwrap() < 950.0 && e.high.unwrap() > 950.0);
    }
}
