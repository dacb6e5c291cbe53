//! Session survival by age: the Kaplan–Meier product-limit curve with
//! Greenwood's log-log 95% band, as the report and the status page both
//! give it. Each reads its own life table (the report from a journal's
//! ledger, the page from the lives the agent has seen) and passes it here,
//! so the two figures cannot disagree in how they are computed.
//!
//! A life table is a list of ages in increasing order, each with the lives
//! censored at that age (the agent logged out, the life reached its
//! maximum age, the agent stopped, or the session is still alive and was
//! last known alive then) and those dropped (forced out; each at the middle
//! of its bracket). Censored lives leave the risk set after the drops at
//! the same age, the usual convention.

/// The normal quantile of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The curve just after an age at which lives dropped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SurvivalStep {
    pub age_seconds: f64,
    /// The share of sessions still logged in just after this age.
    pub survival: f64,
    /// Greenwood 95% interval (log-log), clamped to 0..1.
    pub low: f64,
    pub high: f64,
    pub at_risk: u64,
    pub drops: u64,
}

/// The product-limit curve of a life table given as `(age in seconds,
/// censored, dropped)` in increasing order of age.
pub fn product_limit(table: impl IntoIterator<Item = (f64, u64, u64)>) -> Vec<SurvivalStep> {
    let table: Vec<(f64, u64, u64)> = table.into_iter().collect();
    let mut at_risk: u64 = table.iter().map(|(_, c, d)| c + d).sum();
    let mut s = 1.0;
    let mut greenwood = 0.0;
    let mut steps = Vec::new();
    for (age_seconds, censored, drops) in table {
        if drops > 0 && at_risk > 0 {
            let (d, n) = (drops as f64, at_risk as f64);
            s *= 1.0 - d / n;
            if n > d {
                greenwood += d / (n * (n - d));
            }
            let (low, high) = if s > 0.0 && s < 1.0 {
                let se = (greenwood / (s.ln() * s.ln())).sqrt();
                let a = s.powf((Z95 * se).exp());
                let b = s.powf((-Z95 * se).exp());
                (a.min(b).clamp(0.0, 1.0), a.max(b).clamp(0.0, 1.0))
            } else {
                (s, s)
            };
            steps.push(SurvivalStep {
                age_seconds,
                survival: s,
                low,
                high,
                at_risk,
                drops,
            });
        }
        at_risk = at_risk.saturating_sub(censored + drops);
    }
    steps
}

/// The curve at `age_seconds`: the last step at or before it, or `None`
/// while no life has dropped by then (survival 1).
pub fn survival_at(curve: &[SurvivalStep], age_seconds: f64) -> Option<&SurvivalStep> {
    curve
        .iter()
        .take_while(|p| p.age_seconds <= age_seconds)
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_product_limit_matches_a_worked_example() {
        // Ages 1, 2 (censored), 3, 3, 4 (censored), 5.
        let curve = product_limit([
            (1.0, 0, 1),
            (2.0, 1, 0),
            (3.0, 0, 2),
            (4.0, 1, 0),
            (5.0, 0, 1),
        ]);
        let expected = [
            (1.0, 5.0 / 6.0, 6),
            (3.0, 5.0 / 6.0 * (1.0 - 2.0 / 4.0), 4),
            (5.0, 0.0, 1),
        ];
        assert_eq!(curve.len(), expected.len());
        for (point, (age, survival, at_risk)) in curve.iter().zip(expected) {
            assert_eq!(point.age_seconds, age);
            assert!((point.survival - survival).abs() < 1e-12, "{point:?}");
            assert_eq!(point.at_risk, at_risk);
        }
        assert!(survival_at(&curve, 0.5).is_none());
        let mid = survival_at(&curve, 3.5).unwrap();
        assert!((mid.survival - 5.0 / 12.0).abs() < 1e-12);
        assert!(mid.low < mid.survival && mid.survival < mid.high, "{mid:?}");
    }

    #[test]
    fn censored_lives_leave_after_the_drops_at_their_age() {
        // Two lives at 1 s: one dropped, one censored; both were at risk.
        let curve = product_limit([(1.0, 1, 1)]);
        assert_eq!(curve[0].at_risk, 2);
        assert_eq!(curve[0].survival, 0.5);
    }
}
