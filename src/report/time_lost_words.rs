//! Time lost per practitioner in words, for the summary and each change:
//! the figure with its range once enough working days stand behind it;
//! before that, the figure so far, "not enough evidence yet" and about how
//! much longer to measure; never a contradiction about working hours.

use super::evidence::{Direction, Judgement, MIN_EVENTS, MIN_UNITS};
use super::stats::Estimate;
use super::time_lost::TimeLost;
use super::words::{calendar, figure, more_measurement, plural, show, working_hours};
use crate::config::practitioners::Practitioners;
use crate::timefmt::human_duration;

/// The rare events a change in time lost may rest on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rare {
    Freezes,
    Logouts,
}

impl Rare {
    fn noun(self) -> &'static str {
        match self {
            Rare::Freezes => "freeze",
            Rare::Logouts => "forced logout",
        }
    }
}

/// "25 practitioners working 09:00-17:00 on weekdays".
fn who(p: &Practitioners) -> String {
    format!(
        "{} working {} on {}",
        plural(u64::from(p.headcount), "practitioner"),
        p.hours_text(),
        if p.weekends { "every day" } else { "weekdays" }
    )
}

/// What a forced logout is costed at, and whether that is the default.
pub fn logout_cost(t: &TimeLost) -> String {
    let whose = if t.redo_source == "configured" {
        "as configured in `redo_after_logout`".to_string()
    } else {
        "the default; `redo_after_logout` sets the site's own figure".to_string()
    };
    format!(
        "each forced logout is costed at {} of work redone ({whose}) plus {} to log in again",
        human_duration(t.redo_seconds),
        human_duration(t.relogin_seconds)
    )
}

/// The four causes: "4.1 to freezes, 3.0 to forced logouts, 2.2 to failed
/// work done again and 3.0 to slowness".
fn causes(t: &TimeLost) -> String {
    let f = |e: &Estimate| e.value.map_or_else(|| "-".into(), |v| figure(v, 1));
    format!(
        "{} to freezes, {} to forced logouts, {} to failed work done again ({}) and {} to slowness",
        f(&t.frozen_minutes),
        f(&t.logout_minutes),
        f(&t.failed_minutes),
        plural(t.failed_runs, "failed run"),
        f(&t.slow_minutes)
    )
}

/// " (hours of the simulated system's calendar, ...)" in a demo.
fn calendar_aside(scale: f64) -> String {
    calendar(scale).map_or_else(String::new, |c| format!(", in {c}"))
}

/// How long to measure: "about 3 days more of measurement".
fn more(t: &TimeLost) -> String {
    more_measurement(t.more_time_seconds.unwrap_or(f64::INFINITY))
}

/// The summary's sentence on time lost.
pub fn sentence(t: &TimeLost) -> String {
    let p = &t.assumptions;
    if t.measured_seconds <= 0.0 {
        return "Time lost per practitioner: nothing has been measured yet.".into();
    }
    if t.total_minutes.value.is_none() {
        // Something was measured, and none of it in working hours: which
        // cannot be when every hour is a working hour.
        return format!(
            "Time lost per practitioner: not enough evidence yet. The {} measured all fell outside working hours ({}, UTC{}); {} would give the figure with its range.",
            human_duration(t.measured_seconds),
            who(p),
            calendar_aside(t.calendar_scale),
            more(t)
        );
    }
    if t.total_minutes.low.is_none() {
        return format!(
            "Time lost per practitioner: not enough evidence yet to give it a range: {} of the {MIN_UNITS} independent working days it needs have been measured ({}{}); {} would give it. So far, about {} minutes a working day for {} ({}); {}.",
            t.units,
            working_hours(t.working_hours_observed),
            calendar_aside(t.calendar_scale),
            more(t),
            figure(t.total_minutes.value.unwrap_or(0.0), 1),
            who(p),
            causes(t),
            logout_cost(t)
        );
    }
    format!(
        "Each practitioner loses about {} minutes a working day: {}; about {} staff-hours a month at this site for {}. Measured over {} on {} independent days{}; {}.",
        show(&t.total_minutes, 1, ""),
        causes(t),
        show(&t.staff_hours_per_month, 0, ""),
        who(p),
        working_hours(t.working_hours_observed),
        t.units,
        calendar_aside(t.calendar_scale),
        logout_cost(t)
    )
}

/// `-e` with its interval the right way round.
fn flip(e: &Estimate) -> Estimate {
    let mut out = e.clone().scaled(-1.0);
    std::mem::swap(&mut out.low, &mut out.high);
    out
}

/// A change's effect on time lost in words, under the evidence rule.
pub fn change_sentence(change: &Estimate, j: &Judgement, rare: Option<Rare>) -> String {
    match j.direction {
        Some(Direction::Lower) => format!(
            "it gave back about {} a day per practitioner",
            show(&flip(change), 1, " min")
        ),
        Some(Direction::Higher) => format!(
            "it cost about {} more a day per practitioner",
            show(change, 1, " min")
        ),
        None if !j.enough_units => format!(
            "not enough evidence yet on time lost: {} of the {MIN_UNITS} independent days needed on the thinner side; {} on each side would settle it",
            j.units_before.min(j.units_after),
            more_measurement(j.more_time_seconds.unwrap_or(f64::INFINITY))
        ),
        None if !j.enough_events => {
            let noun = rare.unwrap_or(Rare::Freezes).noun();
            format!(
                "not enough evidence yet on time lost: the difference rests on {} on {}, where at least {MIN_EVENTS} {noun}s on {MIN_EVENTS} different days are needed",
                plural(j.events.unwrap_or(0), noun),
                plural(j.event_units.unwrap_or(0) as u64, "different day")
            )
        }
        None => format!(
            "no clear change in time lost: {} a day per practitioner",
            show(change, 1, " min")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::time_lost::BOOTSTRAP;
    use super::*;

    fn estimate(value: f64, low: Option<f64>, high: Option<f64>, units: u64) -> Estimate {
        Estimate {
            value: Some(value),
            low,
            high,
            n: 10,
            units,
            method: BOOTSTRAP,
        }
    }

    pub(crate) fn lost(units: u64, scale: f64) -> TimeLost {
        let enough = units as usize >= MIN_UNITS;
        let e = |v: f64| {
            if enough {
                estimate(v, Some(v * 0.8), Some(v * 1.2), units)
            } else {
                estimate(v, None, None, units)
            }
        };
        TimeLost {
            assumptions: Practitioners::default(),
            total_minutes: e(12.3),
            frozen_minutes: e(4.1),
            logout_minutes: e(3.0),
            failed_minutes: e(2.2),
            slow_minutes: e(3.0),
            staff_hours_per_month: e(107.6),
            logout_cost_seconds: 600.3,
            relogin_seconds: 0.3,
            redo_seconds: 600.0,
            redo_source: "default",
            failed_runs: 64,
            working_hours_observed: units as f64 * 8.0,
            measured_seconds: 86_400.0,
            units: units as usize,
            more_time_seconds: (!enough).then(|| (7 - units) as f64 * 86_400.0 * 1.4),
            calendar_scale: scale,
            sentence: String::new(),
        }
    }

    #[test]
    fn enough_days_give_the_figure_with_its_range_in_plain_words() {
        let s = sentence(&lost(21, 1.0));
        assert!(
            s.starts_with("Each practitioner loses about 12.3 (between 9.8 and 14.8) minutes a working day: 4.1 to freezes, 3.0 to forced logouts, 2.2 to failed work done again (64 failed runs) and 3.0 to slowness"),
            "{s}"
        );
        assert!(
            s.contains("168 working hours on 21 independent days"),
            "{s}"
        );
        assert!(s.contains("10 min of work redone (the default"), "{s}");
        assert!(!s.contains("simulated"), "{s}");
    }

    #[test]
    fn two_days_give_no_range_and_say_how_long_to_measure() {
        // "Each practitioner loses about 394.9 (95% CI 373.8 to 415.9)
        // minutes a working day ... in 2 blocks".
        let s = sentence(&lost(2, 60.0));
        assert!(
            s.starts_with("Time lost per practitioner: not enough evidence yet"),
            "{s}"
        );
        assert!(s.contains("2 of the 7 independent working days"), "{s}");
        assert!(s.contains("about 7 days more of measurement"), "{s}");
        assert!(s.contains("runs 60 times faster than the clock"), "{s}");
        assert!(!s.contains("between"), "no range: {s}");
    }

    #[test]
    fn working_hours_are_never_said_to_be_missing_when_every_hour_is_one() {
        // "the agent measured nothing in working hours (40 practitioners
        // working 00:00-24:00 on every day ...)".
        let mut t = lost(0, 60.0);
        t.assumptions.working_from_minute = 0;
        t.assumptions.working_to_minute = 24 * 60;
        t.assumptions.weekends = true;
        t.total_minutes = Estimate::none(0, BOOTSTRAP);
        t.measured_seconds = 0.0;
        let s = sentence(&t);
        assert_eq!(
            s,
            "Time lost per practitioner: nothing has been measured yet."
        );
        // Office hours, and a demo that ran at night: said as such.
        let mut t = lost(0, 60.0);
        t.total_minutes = Estimate::none(0, BOOTSTRAP);
        t.measured_seconds = 120.0;
        let s = sentence(&t);
        assert!(
            s.contains("The 2 min measured all fell outside working hours (25 practitioners working 09:00-17:00 on weekdays, UTC, in the simulated system's calendar"),
            "{s}"
        );
    }

    #[test]
    fn a_configured_redo_is_said_to_be_configured() {
        let mut t = lost(9, 1.0);
        t.redo_source = "configured";
        t.redo_seconds = 300.0;
        let s = sentence(&t);
        assert!(
            s.contains("5 min of work redone (as configured in `redo_after_logout`)"),
            "{s}"
        );
    }

    #[test]
    fn a_change_reads_the_right_way_round() {
        let j = |direction, enough_units, enough_events| Judgement {
            direction,
            interval_excludes_null: direction.is_some(),
            units_before: 9,
            units_after: 3,
            enough_units,
            events: Some(3),
            event_units: Some(1),
            enough_events,
            more_time_seconds: Some(4.0 * 86_400.0),
        };
        // "gave back about 0.3 (95% CI 0.9 to 0.0)".
        let gave_back = estimate(-0.3, Some(-0.9), Some(-0.0), 9);
        let s = change_sentence(&gave_back, &j(Some(Direction::Lower), true, true), None);
        assert_eq!(
            s,
            "it gave back about 0.3 min (between 0.0 min and 0.9 min) a day per practitioner"
        );
        let s = change_sentence(&gave_back, &j(None, false, true), None);
        assert!(s.contains("3 of the 7 independent days needed on the thinner side; about 4 days more of measurement on each side"), "{s}");
        let s = change_sentence(&gave_back, &j(None, true, false), Some(Rare::Logouts));
        assert!(
            s.ends_with("rests on 3 forced logouts on 1 different day, where at least 5 forced logouts on 5 different days are needed"),
            "{s}"
        );
    }
}
