//! Time lost per practitioner: the model the status page and the evidence
//! report share. Given tallies of what the agent measured during working
//! hours and the site's `practitioners:` assumptions, it gives minutes per
//! practitioner per working day, by cause:
//!
//! - **freezes**: the share of working time a system was frozen (its freeze
//!   episodes), weighted by the share of practitioners' transactions on
//!   that system, times the working day;
//! - **forced logouts**: forced logouts per session-hour known alive, times
//!   the working hours (a practitioner is logged in all day), times the
//!   cost of each: the re-login time plus the work a practitioner redoes
//!   (`redo_after_logout`, by default
//!   [`crate::config::practitioners::DEFAULT_REDO_AFTER_LOGOUT`]);
//! - **failed work**: for each interactive journey, the work in its failed
//!   runs (those not cut short by a forced logout, which the forced
//!   logouts cost) per run, times the journey's transactions per hour,
//!   times the working hours: a save that fails is work done again. A
//!   frozen step's wait is already in the freezes' share;
//! - **slowness**: for each interactive journey, the time its completed
//!   steps (`ok` or `slow`) took beyond `acceptable` per run, times the
//!   journey's transactions per hour, times the working hours. A frozen
//!   step's wait is already in the freezes' share, so it is not counted
//!   twice.
//!
//! Rates and hours are on one clock, the monitored system's calendar: in a
//! demo whose calendar runs faster than the wall clock, session-hours and
//! working hours are both calendar hours.
//!
//! The status page feeds it one tally of everything since the agent
//! started; the report ([`crate::report::time_lost`]) feeds it one tally per
//! block of time, resamples the blocks for intervals and compares before and
//! after each change. This module reads nothing and imports only the config's
//! [`Practitioners`] and [`crate::timefmt`].

use std::collections::BTreeMap;

use crate::config::practitioners::Practitioners;
use crate::timefmt::human_duration;

/// One block's tallies, during working hours.
#[derive(Clone, Debug, Default)]
pub struct LossTally {
    pub start: f64,
    pub working_seconds: f64,
    /// Frozen seconds, weighted by each system's share of transactions.
    pub frozen_seconds: f64,
    pub drops: f64,
    pub session_hours: f64,
    /// Journey: its runs' time over `acceptable`, and what they cost.
    pub excess: BTreeMap<String, JourneyLoss>,
}

/// One interactive journey's runs in a block.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct JourneyLoss {
    /// Seconds its completed steps took beyond `acceptable`.
    pub over_seconds: f64,
    /// Seconds of work in its failed runs, to be done again.
    pub redo_seconds: f64,
    pub failed: f64,
    pub runs: f64,
}

impl JourneyLoss {
    fn add(&mut self, other: &JourneyLoss) {
        self.over_seconds += other.over_seconds;
        self.redo_seconds += other.redo_seconds;
        self.failed += other.failed;
        self.runs += other.runs;
    }
}

/// Minutes per practitioner per working day, by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Minutes {
    pub frozen: f64,
    pub logouts: f64,
    pub failed: f64,
    pub slow: f64,
}

impl Minutes {
    pub fn total(&self) -> f64 {
        self.frozen + self.logouts + self.failed + self.slow
    }

    /// The causes and the total, in the order the report lists them.
    pub fn all(&self) -> [f64; 5] {
        [
            self.frozen,
            self.logouts,
            self.failed,
            self.slow,
            self.total(),
        ]
    }
}

/// The inputs that do not vary by block.
pub struct Model<'a> {
    pub practitioners: &'a Practitioners,
    /// What one forced logout costs a practitioner: re-login and redone
    /// work (seconds).
    pub cost_seconds: f64,
}

impl Model<'_> {
    /// Minutes per practitioner per working day, by cause, from the blocks
    /// `tallies` (repeats allowed); `None` when they hold no working time.
    pub fn minutes(&self, tallies: &[&LossTally]) -> Option<Minutes> {
        let working: f64 = tallies.iter().map(|t| t.working_seconds).sum();
        if working <= 0.0 {
            return None;
        }
        let day = self.practitioners.hours_per_day();
        let frozen = day * 60.0 * tallies.iter().map(|t| t.frozen_seconds).sum::<f64>() / working;
        let hours: f64 = tallies.iter().map(|t| t.session_hours).sum();
        let drops: f64 = tallies.iter().map(|t| t.drops).sum();
        let logouts = if hours > 0.0 {
            day * drops / hours * self.cost_seconds / 60.0
        } else {
            0.0
        };
        let mut journeys: BTreeMap<&str, JourneyLoss> = BTreeMap::new();
        for t in tallies {
            for (journey, loss) in &t.excess {
                journeys.entry(journey).or_default().add(loss);
            }
        }
        // Seconds per run of each journey, times its runs an hour, times
        // the working hours, in minutes.
        let per_day = |seconds: fn(&JourneyLoss) -> f64| {
            journeys
                .iter()
                .filter(|(_, j)| j.runs > 0.0)
                .map(|(journey, j)| self.practitioners.rate(journey) * seconds(j) / j.runs)
                .sum::<f64>()
                * day
                / 60.0
        };
        Some(Minutes {
            frozen,
            logouts,
            failed: per_day(|j| j.redo_seconds),
            slow: per_day(|j| j.over_seconds),
        })
    }
}

/// The assumptions in words, marking defaults.
pub fn assumptions(p: &Practitioners) -> String {
    let mut rates: Vec<String> = p
        .transactions_per_hour
        .iter()
        .map(|(j, r)| format!("{j} {r}"))
        .collect();
    rates.push(format!(
        "other journeys {}",
        p.default_transactions_per_hour
    ));
    let mut text = format!(
        "{} practitioners working {} on {}, {} days a month; steps acceptable up to {}; transactions an hour per practitioner: {}; {} of work redone after a forced logout",
        p.headcount,
        p.hours_text(),
        if p.weekends { "every day" } else { "weekdays" },
        p.working_days_per_month,
        human_duration(p.acceptable_seconds),
        rates.join(", "),
        human_duration(p.redo_after_logout())
    );
    if !p.defaulted.is_empty() {
        text.push_str(&format!(" (defaults: {})", p.defaulted.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_day() -> Practitioners {
        Practitioners {
            working_from_minute: 0,
            working_to_minute: 24 * 60,
            weekends: true,
            ..Practitioners::default()
        }
    }

    #[test]
    fn failed_work_costs_the_work_done_again() {
        // A day of 100 runs of case_note, 4 of them failed after 90 s of
        // work each: at 4 transactions an hour over 24 working hours, a
        // practitioner redoes 4 × 90 / 100 × 4 × 24 seconds a day.
        let p = all_day();
        let mut tally = LossTally {
            working_seconds: 86_400.0,
            ..LossTally::default()
        };
        tally.excess.insert(
            "case_note".into(),
            JourneyLoss {
                redo_seconds: 4.0 * 90.0,
                failed: 4.0,
                runs: 100.0,
                ..JourneyLoss::default()
            },
        );
        let model = Model {
            practitioners: &p,
            cost_seconds: 0.0,
        };
        let m = model.minutes(&[&tally]).unwrap();
        let expected = 4.0 * 90.0 / 100.0 * 4.0 * 24.0 / 60.0;
        assert!((m.failed - expected).abs() < 1e-9, "{m:?}");
        assert_eq!(m.slow, 0.0);
        assert!((m.total() - expected).abs() < 1e-9);
    }

    #[test]
    fn nothing_measured_is_no_figure() {
        let p = all_day();
        let model = Model {
            practitioners: &p,
            cost_seconds: 600.0,
        };
        assert_eq!(model.minutes(&[]), None);
        assert_eq!(model.minutes(&[&LossTally::default()]), None);
    }

    #[test]
    fn assumptions_say_the_redone_work() {
        let mut p = Practitioners::default();
        assert!(
            assumptions(&p).contains("10 min of work redone after a forced logout"),
            "{}",
            assumptions(&p)
        );
        p.redo_after_logout_seconds = Some(300.0);
        assert!(assumptions(&p).contains("5 min of work redone"));
        assert!(assumptions(&p).contains("working 09:00-17:00 on weekdays"));
    }
}
