//! The "log out every two hours" question: do older sessions drop more
//! often? Answered with one interval for the ratio of the two hazards
//! (older over younger), never by whether two intervals overlap, and with
//! the age at which the hazard rises, if it does.
//!
//! - The hazard ratio: exact conditional binomial on the forced-logout
//!   counts, divided by their over-dispersion across units of days (a
//!   restart drops every session at once).
//! - A direction is stated only when its interval excludes 1 and each side
//!   has at least [`MIN_DROPS`] forced logouts in as many different units
//!   of time.
//! - The rise: of the band edges, the one that best splits the hazard in
//!   two (highest two-piece Poisson likelihood), stated when its ratio's
//!   interval, Bonferroni-adjusted for the edges tried, excludes 1.

use std::time::Duration;

use serde::Serialize;

use super::evidence;
use super::model::BandHazard;
use super::stats::Estimate;
use super::words::{figure, plural};
use crate::timefmt::human_duration;

/// Forced logouts (and distinct units of days holding them) each side
/// needs before a direction is stated.
pub const MIN_DROPS: u64 = 5;

#[derive(Clone, Debug, Serialize)]
pub struct RuleVerdict {
    pub age_seconds: f64,
    pub age_text: String,
    /// Pooled hazards of bands below the age, and at or after it.
    pub younger: Estimate,
    pub older: Estimate,
    /// Older over younger.
    pub hazard_ratio: Estimate,
    /// Distinct units of days holding forced logouts on each side.
    pub younger_units: u64,
    pub older_units: u64,
    /// The band edge at which the hazard rises, when the data show one.
    pub rises_at_seconds: Option<f64>,
    pub rise_ratio: Option<Estimate>,
    /// `older_more`, `older_less`, `no_clear_difference` or `not_enough_data`.
    pub verdict: &'static str,
    pub sentence: String,
}

/// One forced logout: its age (bracket midpoint) and unit of days.
#[derive(Clone, Copy, Debug)]
pub struct Drop {
    pub age: f64,
    pub unit: Option<i64>,
}

/// Judges the rule at `age` from the bands (with their lower edges), the
/// drops, and the over-dispersion `phi` of drops across units of days.
pub fn verdict(
    bands: &[BandHazard],
    edges: &[Duration],
    age: Duration,
    drops: &[Drop],
    phi: f64,
) -> RuleVerdict {
    let lower = |i: usize| {
        if i == 0 {
            0.0
        } else {
            edges[i - 1].as_secs_f64()
        }
    };
    let split = |at: f64| {
        let mut sides = [(0.0, 0.0); 2];
        for (i, b) in bands.iter().enumerate() {
            let side = usize::from(lower(i) >= at);
            sides[side].0 += b.drops as f64;
            sides[side].1 += b.exposure_hours;
        }
        sides
    };
    let at = age.as_secs_f64();
    let [young, old] = split(at);
    let rate = |(k, e): (f64, f64)| band_rate(k as u64, e, phi);
    let ratio = evidence::ratio_of_counts(young, old, phi, 0.05);
    let distinct = |older: bool| {
        let mut blocks: Vec<i64> = drops
            .iter()
            .filter(|d| (d.age >= at) == older)
            .filter_map(|d| d.unit)
            .collect();
        blocks.sort_unstable();
        blocks.dedup();
        blocks.len() as u64
    };
    let (young_blocks, old_blocks) = (distinct(false), distinct(true));

    // Where the hazard rises: the best two-piece split among the edges.
    let loglik = |(k, e): (f64, f64)| {
        if k > 0.0 && e > 0.0 {
            k * (k / e).ln() - k
        } else {
            0.0
        }
    };
    let candidates: Vec<f64> = edges.iter().map(|e| e.as_secs_f64()).collect();
    let best = candidates
        .iter()
        .map(|&edge| {
            let [y, o] = split(edge);
            (edge, loglik(y) + loglik(o), y, o)
        })
        .filter(|(_, _, y, o)| y.1 > 0.0 && o.1 > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let (rises_at, rise_ratio) = match best {
        Some((edge, _, y, o)) => {
            let alpha = 0.05 / candidates.len().max(1) as f64;
            let r = evidence::ratio_of_counts(y, o, phi, alpha);
            (r.low.is_some_and(|l| l > 1.0).then_some(edge), Some(r))
        }
        None => (None, None),
    };

    let age_text = human_duration(at);
    let enough = young.0 as u64 >= MIN_DROPS
        && old.0 as u64 >= MIN_DROPS
        && young_blocks >= MIN_DROPS
        && old_blocks >= MIN_DROPS;
    let shown = show_ratio(&ratio);
    let times = times_as_often(&ratio);
    let (verdict, sentence) = if old.1 <= 0.0 || young.1 <= 0.0 {
        (
            "not_enough_data",
            format!("Not enough evidence: no session in the journal has yet lived past {age_text}, so the rule cannot be tested."),
        )
    } else if !enough {
        (
            "not_enough_data",
            format!(
                "Not enough evidence yet on whether sessions older than {age_text} are forced out more often: {} in younger sessions and {} in older ones, where at least {MIN_DROPS} on each side, on as many different days, are needed.",
                plural(young.0 as u64, "forced logout"),
                plural(old.0 as u64, "forced logout")
            ),
        )
    } else if ratio.low.is_some_and(|l| l > 1.0) {
        (
            "older_more",
            format!(
                "Yes: sessions older than {age_text} were forced out {times}{}.",
                rise_text(rises_at)
            ),
        )
    } else if ratio.high.is_some_and(|h| h < 1.0) {
        (
            "older_less",
            format!("No: sessions older than {age_text} were forced out less often, {times}."),
        )
    } else {
        (
            "no_clear_difference",
            format!("No clear difference: sessions older than {age_text} were forced out about as often as younger ones ({shown})."),
        )
    };
    RuleVerdict {
        age_seconds: at,
        age_text,
        younger: rate(young),
        older: rate(old),
        hazard_ratio: ratio,
        younger_units: young_blocks,
        older_units: old_blocks,
        rises_at_seconds: rises_at,
        rise_ratio,
        verdict,
        sentence,
    }
}

fn rise_text(at: Option<f64>) -> String {
    match at {
        Some(edge) => format!(
            "; the hazard rises at about {} of age",
            human_duration(edge)
        ),
        None => String::new(),
    }
}

fn show_ratio(e: &Estimate) -> String {
    times_as_often(e)
}

/// "5.4 times as often (between 3.4 and 8.5 times)".
fn times_as_often(e: &Estimate) -> String {
    match (e.value, e.low, e.high) {
        (Some(v), Some(l), Some(h)) => format!(
            "{} times as often as younger ones (between {} and {} times)",
            figure(v, 1),
            figure(l, 1),
            figure(h, 1)
        ),
        (Some(v), Some(l), None) => format!(
            "{} times as often as younger ones (at least {} times)",
            figure(v, 1),
            figure(l, 1)
        ),
        (Some(v), ..) => format!("{} times as often as younger ones", figure(v, 1)),
        _ => "with no forced logout of younger sessions to compare with".into(),
    }
}

/// `k` forced logouts in `hours` of a band, with a Garwood interval on
/// `k / phi` scaled back: the drops' over-dispersion across blocks of time.
pub fn band_rate(k: u64, hours: f64, phi: f64) -> Estimate {
    evidence::count_rate(k as f64, hours, phi, 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band(label: &str, hours: f64, drops: u64) -> BandHazard {
        BandHazard {
            band: label.into(),
            exposure_hours: hours,
            drops,
            hazard_per_hour: super::super::stats::rate(drops, hours),
        }
    }

    fn drops(young: usize, old: usize) -> Vec<Drop> {
        (0..young)
            .map(|i| Drop {
                age: 1000.0,
                unit: Some(i as i64),
            })
            .chain((0..old).map(|i| Drop {
                age: 9000.0,
                unit: Some(100 + i as i64),
            }))
            .collect()
    }

    fn edges() -> Vec<Duration> {
        (1..=4).map(|h| Duration::from_secs(h * 3600)).collect()
    }

    #[test]
    fn a_hazard_six_times_higher_after_two_hours_is_a_yes_with_its_rise() {
        // 0.4 per hour before 2h, 2.4 after.
        let bands = [
            band("0-1h", 50.0, 20),
            band("1h-2h", 50.0, 20),
            band("2h-3h", 10.0, 24),
            band("3h-4h", 5.0, 12),
            band("4h+", 0.0, 0),
        ];
        let v = verdict(
            &bands,
            &edges(),
            Duration::from_secs(7200),
            &drops(40, 36),
            1.0,
        );
        assert_eq!(v.verdict, "older_more", "{v:?}");
        let r = &v.hazard_ratio;
        assert!(r.covers(6.0), "{r:?}");
        assert_eq!(v.rises_at_seconds, Some(7200.0));
        assert!(v.sentence.contains("rises at about 2 h"), "{}", v.sentence);
    }

    #[test]
    fn overlapping_intervals_can_still_differ_and_few_drops_are_not_enough() {
        // 12 drops in 60 h against 12 in 12 h: each rate's interval is wide,
        // but the ratio (5) is clearly above 1.
        let bands = [band("0-2h", 60.0, 12), band("2h+", 12.0, 12)];
        let e = [Duration::from_secs(7200)];
        let v = verdict(&bands, &e, Duration::from_secs(7200), &drops(12, 12), 1.0);
        assert_eq!(v.verdict, "older_more", "{v:?}");
        // Three drops on one side: not enough, whatever the ratio.
        let bands = [band("0-2h", 60.0, 3), band("2h+", 12.0, 12)];
        let v = verdict(&bands, &e, Duration::from_secs(7200), &drops(3, 12), 1.0);
        assert_eq!(v.verdict, "not_enough_data", "{v:?}");
        // Drops all in one block of time (a restart) are not independent.
        let mut clustered = drops(12, 0);
        clustered.extend((0..12).map(|_| Drop {
            age: 9000.0,
            unit: Some(7),
        }));
        let bands = [band("0-2h", 60.0, 12), band("2h+", 12.0, 12)];
        let v = verdict(&bands, &e, Duration::from_secs(7200), &clustered, 1.0);
        assert_eq!(v.verdict, "not_enough_data", "{v:?}");
    }

    #[test]
    fn over_dispersion_widens_the_ratio() {
        let bands = [band("0-2h", 60.0, 12), band("2h+", 12.0, 12)];
        let e = [Duration::from_secs(7200)];
        let plain = verdict(&bands, &e, Duration::from_secs(7200), &drops(12, 12), 1.0);
        let wide = verdict(&bands, &e, Duration::from_secs(7200), &drops(12, 12), 4.0);
        let width = |v: &RuleVerdict| v.hazard_ratio.high.unwrap() / v.hazard_ratio.low.unwrap();
        assert!(width(&wide) > 2.0 * width(&plain));
    }
}
