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
use super::words::{calendar, days, plural, times};
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

/// How the question is put: the calendar's speed (1 for a real system)
/// and the length of a unit of days.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    pub scale: f64,
    pub unit_days: u32,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            scale: 1.0,
            unit_days: 1,
        }
    }
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
    context: Context,
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

    let (rises_at, rise_ratio) = rise(edges, &split, phi);

    let enough = young.0 as u64 >= MIN_DROPS
        && old.0 as u64 >= MIN_DROPS
        && young_blocks >= MIN_DROPS
        && old_blocks >= MIN_DROPS;
    // No range for the ratio from too few forced logouts: "not enough
    // evidence" says it, not an interval from 0 to 132.
    let mut ratio = ratio;
    if !enough {
        ratio.low = None;
        ratio.high = None;
    }
    let sides = AgeSides {
        younger: (young.0 as u64, young_blocks),
        older: (old.0 as u64, old_blocks),
        exposed: young.1 > 0.0 && old.1 > 0.0,
    };
    let (verdict, sentence) = words(&sides, enough, &ratio, rises_at, at, context);
    RuleVerdict {
        age_seconds: at,
        age_text: human_duration(at),
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

/// Where the hazard rises: of the band edges, the best two-piece split
/// (`split` gives each side's drops and exposure), stated when its
/// Bonferroni-adjusted ratio excludes 1; with that ratio.
fn rise(
    edges: &[Duration],
    split: &dyn Fn(f64) -> [(f64, f64); 2],
    phi: f64,
) -> (Option<f64>, Option<Estimate>) {
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
    match best {
        Some((edge, _, y, o)) => {
            let alpha = 0.05 / candidates.len().max(1) as f64;
            let r = evidence::ratio_of_counts(y, o, phi, alpha);
            (r.low.is_some_and(|l| l > 1.0).then_some(edge), Some(r))
        }
        None => (None, None),
    }
}

/// Each side's forced logouts and the units of days holding them, and
/// whether both sides were observed at all.
struct AgeSides {
    younger: (u64, u64),
    older: (u64, u64),
    exposed: bool,
}

/// "2 h", or in a demo "2 min (2 h in the simulated system's calendar,
/// which runs 60 times faster than the clock)".
pub fn age_words(seconds: f64, scale: f64) -> String {
    match calendar(scale) {
        Some(c) => format!(
            "{} ({} in {c})",
            human_duration(seconds),
            human_duration(seconds * scale)
        ),
        None => human_duration(seconds),
    }
}

/// The verdict and its sentence.
fn words(
    sides: &AgeSides,
    enough: bool,
    ratio: &Estimate,
    rises_at: Option<f64>,
    at: f64,
    context: Context,
) -> (&'static str, String) {
    let age = age_words(at, context.scale);
    let times = times(ratio, 1, "as often as younger ones")
        .unwrap_or_else(|| "with no forced logout of younger sessions to compare with".into());
    if !sides.exposed {
        return (
            "not_enough_data",
            format!("Not enough evidence: no session in the journal has yet lived past {age}, so the rule cannot be tested."),
        );
    }
    if !enough {
        return (
            "not_enough_data",
            not_enough(sides, &age, context.unit_days),
        );
    }
    if ratio.low.is_some_and(|l| l > 1.0) {
        (
            "older_more",
            format!(
                "Yes: sessions older than {age} were forced out {times}{}.",
                rise_text(rises_at, context.scale)
            ),
        )
    } else if ratio.high.is_some_and(|h| h < 1.0) {
        (
            "older_less",
            format!("No: sessions older than {age} were forced out less often: {times}."),
        )
    } else {
        (
            "no_clear_difference",
            format!("No clear difference: sessions older than {age} were forced out {times}, which could be no difference at all."),
        )
    }
}

/// Why there is not enough evidence, naming the count that limits it.
fn not_enough(sides: &AgeSides, age: &str, unit_days: u32) -> String {
    let side = |(k, units): (u64, u64)| {
        format!(
            "{} on {}",
            plural(k, "forced logout"),
            days(units as usize, unit_days)
        )
    };
    let mut short = Vec::new();
    for (name, (k, units)) in [("younger", sides.younger), ("older", sides.older)] {
        if k < MIN_DROPS {
            short.push(format!(
                "the {name} sessions have only {}",
                plural(k, "forced logout")
            ));
        } else if units < MIN_DROPS {
            short.push(format!(
                "the {name} sessions' {} fall on only {}",
                plural(k, "forced logout"),
                days(units as usize, unit_days)
            ));
        }
    }
    format!(
        "Not enough evidence yet on whether sessions older than {age} are forced out more often: {} in younger sessions and {} in older ones; each side needs at least {MIN_DROPS} forced logouts on at least {MIN_DROPS} different days, and {}.",
        side(sides.younger),
        side(sides.older),
        short.join(" and ")
    )
}

fn rise_text(at: Option<f64>, scale: f64) -> String {
    match at {
        Some(edge) => format!(
            "; the hazard rises at about {} of age",
            age_words(edge, scale)
        ),
        None => String::new(),
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
            age_text: label.into(),
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
            Context::default(),
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
        let v = verdict(
            &bands,
            &e,
            Duration::from_secs(7200),
            &drops(12, 12),
            1.0,
            Context::default(),
        );
        assert_eq!(v.verdict, "older_more", "{v:?}");
        // Three drops on one side: not enough, whatever the ratio.
        let bands = [band("0-2h", 60.0, 3), band("2h+", 12.0, 12)];
        let v = verdict(
            &bands,
            &e,
            Duration::from_secs(7200),
            &drops(3, 12),
            1.0,
            Context::default(),
        );
        assert_eq!(v.verdict, "not_enough_data", "{v:?}");
        // Drops all in one block of time (a restart) are not independent.
        let mut clustered = drops(12, 0);
        clustered.extend((0..12).map(|_| Drop {
            age: 9000.0,
            unit: Some(7),
        }));
        let bands = [band("0-2h", 60.0, 12), band("2h+", 12.0, 12)];
        let v = verdict(
            &bands,
            &e,
            Duration::from_secs(7200),
            &clustered,
            1.0,
            Context::default(),
        );
        assert_eq!(v.verdict, "not_enough_data", "{v:?}");
    }

    #[test]
    fn over_dispersion_widens_the_ratio() {
        let bands = [band("0-2h", 60.0, 12), band("2h+", 12.0, 12)];
        let e = [Duration::from_secs(7200)];
        let plain = verdict(
            &bands,
            &e,
            Duration::from_secs(7200),
            &drops(12, 12),
            1.0,
            Context::default(),
        );
        let wide = verdict(
            &bands,
            &e,
            Duration::from_secs(7200),
            &drops(12, 12),
            4.0,
            Context::default(),
        );
        let width = |v: &RuleVerdict| v.hazard_ratio.high.unwrap() / v.hazard_ratio.low.unwrap();
        assert!(width(&wide) > 2.0 * width(&plain));
    }

    #[test]
    fn the_answer_reads_in_plain_terms() {
        let bands = [band("0-2h", 60.0, 12), band("2h+", 12.0, 12)];
        let e = [Duration::from_secs(7200)];
        let v = verdict(
            &bands,
            &e,
            Duration::from_secs(7200),
            &drops(12, 12),
            1.0,
            Context::default(),
        );
        assert!(
            v.sentence.starts_with("Yes: sessions older than 2 h were forced out 5.0 times as often as younger ones (between "),
            "{}",
            v.sentence
        );
        assert!(
            v.sentence
                .ends_with(" times); the hazard rises at about 2 h of age."),
            "{}",
            v.sentence
        );
    }

    #[test]
    fn not_enough_names_the_count_that_limits_it() {
        // "74 and 40 forced logouts ... (5 needed on each, in as many blocks
        // of time)": which count falls short?
        let bands = [band("0-2h", 600.0, 74), band("2h+", 100.0, 40)];
        let e = [Duration::from_secs(7200)];
        let mut all = drops(74, 0);
        all.extend((0..40).map(|i| Drop {
            age: 9000.0,
            unit: Some(200 + i % 3),
        }));
        let v = verdict(
            &bands,
            &e,
            Duration::from_secs(7200),
            &all,
            1.0,
            Context::default(),
        );
        assert_eq!(v.verdict, "not_enough_data");
        assert!(
            v.sentence.contains("74 forced logouts on 74 days in younger sessions and 40 forced logouts on 3 days in older ones"),
            "{}",
            v.sentence
        );
        assert!(
            v.sentence
                .ends_with("and the older sessions' 40 forced logouts fall on only 3 days."),
            "{}",
            v.sentence
        );
        // "hazard ratio 0.41 (95% CI 0.00 to 132.58)": no range then.
        assert_eq!((v.hazard_ratio.low, v.hazard_ratio.high), (None, None));
        let few = [band("0-2h", 60.0, 1), band("2h+", 12.0, 12)];
        let v = verdict(
            &few,
            &e,
            Duration::from_secs(7200),
            &drops(1, 12),
            1.0,
            Context::default(),
        );
        assert!(
            v.sentence
                .ends_with("and the younger sessions have only 1 forced logout."),
            "{}",
            v.sentence
        );
    }

    #[test]
    fn a_demo_says_its_clock_is_scaled() {
        // The demo asks the two-hour question of two minutes.
        let bands = [band("0-2m", 1.0, 1), band("2m+", 0.0, 0)];
        let e = [Duration::from_secs(120)];
        let demo = Context {
            scale: 60.0,
            unit_days: 1,
        };
        let v = verdict(
            &bands,
            &e,
            Duration::from_secs(120),
            &drops(1, 0),
            1.0,
            demo,
        );
        assert_eq!(
            v.sentence,
            "Not enough evidence: no session in the journal has yet lived past 2 min (2 h in the simulated system's calendar, which runs 60 times faster than the clock), so the rule cannot be tested."
        );
    }
}
