//! Figures in words a board member reads without a statistician. One
//! function serves each rule, and every renderer goes through it:
//!
//! - [`plural`]: a count with its noun, "1 forced logout", "3 forced logouts";
//! - [`figure`]: a number with thousands separated, never "-0.0" or "NaN";
//! - [`range`]: an interval the right way round, and none where a bound is
//!   not a number;
//! - [`parts`]: an estimate as its figure and the words in brackets after
//!   it: for sentences ([`show`]), table cells ([`cell`]) and the HTML's grey
//!   brackets alike. No range is given from fewer than
//!   [`MIN_UNITS`] independent days, whatever the estimate carries;
//! - [`times`]: a ratio as "times as often", never a lower bound over
//!   nothing;
//! - [`more_measurement`]: how much longer to measure, capped at a year;
//! - [`working_hours`]: working time counted in hours, never in days;
//! - [`days`]: units of evidence in words;
//! - [`calendar`]: a simulated system's fast calendar, said once where it
//!   matters.

use super::evidence::MIN_UNITS;
use super::stats::Estimate;
use crate::timefmt::human_duration;

/// A year: beyond it, how long to measure is not worth stating.
pub const YEAR_SECONDS: f64 = 365.0 * 86_400.0;

/// "1 forced logout", "3 forced logouts", "2 hours of the day".
pub fn plural(n: u64, noun: &str) -> String {
    if let Some((head, tail)) = noun.split_once(" of ") {
        return format!("{} of {tail}", plural(n, head));
    }
    if n == 1 {
        format!("1 {noun}")
    } else if noun.ends_with('s') || noun.ends_with("ch") || noun.ends_with("sh") {
        format!("{n} {noun}es")
    } else {
        format!("{n} {noun}s")
    }
}

/// "1 time", "2 times": how often something happened.
pub fn times_count(n: u64) -> String {
    plural(n, "time")
}

/// A number to `digits` decimals, with thousands separated, never "-0.0";
/// "-" when it is not a number.
pub fn figure(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let text = format!("{:.digits$}", x.abs());
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w.to_string(), Some(f.to_string())),
        None => (text.clone(), None),
    };
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let zero = text.chars().all(|c| c == '0' || c == '.');
    let sign = if x < 0.0 && !zero { "-" } else { "" };
    match fraction {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// "4 days", "1 day", "3 periods of 2 days": units of evidence in words.
pub fn days(units: usize, unit_days: u32) -> String {
    if unit_days <= 1 {
        plural(units as u64, "day")
    } else {
        format!("{} of {unit_days} days", plural(units as u64, "period"))
    }
}

/// "168 working hours", "1.6 working hours", "1 working hour": working
/// time is counted in hours, so that a week of it is not read as 7 days.
pub fn working_hours(hours: f64) -> String {
    let hours = if hours.is_finite() {
        hours.max(0.0)
    } else {
        0.0
    };
    let digits = if hours >= 10.0 || hours == hours.round() {
        0
    } else {
        1
    };
    let text = figure(hours, digits);
    if text == "1" {
        "1 working hour".into()
    } else {
        format!("{text} working hours")
    }
}

/// "about 3 days more of measurement"; beyond a year (or when it cannot
/// be said), "far more data than a year of measurement".
pub fn more_measurement(seconds: f64) -> String {
    if seconds.is_finite() && seconds <= YEAR_SECONDS {
        format!(
            "about {} more of measurement",
            human_duration(seconds.max(0.0))
        )
    } else {
        "far more data than a year of measurement".into()
    }
}

/// The monitored system's calendar in words when it runs faster than the
/// wall clock (a simulated system, as in the demo): "the simulated
/// system's calendar, which runs 60 times faster than the clock"; `None`
/// for a real system.
pub fn calendar(scale: f64) -> Option<String> {
    speed(scale).map(|s| format!("the simulated system's calendar, which {s}"))
}

/// How fast a simulated system's calendar runs: "runs 60 times faster
/// than the clock"; `None` for a real system.
pub fn speed(scale: f64) -> Option<String> {
    let faster = scale.is_finite() && (scale - 1.0).abs() > 1e-9;
    faster.then(|| {
        let digits = if scale == scale.round() { 0 } else { 2 };
        format!("runs {} times faster than the clock", figure(scale, digits))
    })
}

/// An interval's bounds in words.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Range {
    Between(f64, f64),
    AtLeast(f64),
    AtMost(f64),
    None,
}

/// The interval of `e`, the right way round; a bound that is not a number
/// is no bound.
pub fn range(e: &Estimate) -> Range {
    let ok = |x: Option<f64>| x.filter(|v| v.is_finite());
    match (ok(e.low), ok(e.high)) {
        (Some(l), Some(h)) => Range::Between(l.min(h), l.max(h)),
        (Some(l), None) => Range::AtLeast(l),
        (None, Some(h)) => Range::AtMost(h),
        (None, None) => Range::None,
    }
}

/// Whether `e` rests on too few independent days for a range.
pub fn too_few_days(e: &Estimate) -> bool {
    e.units > 0 && (e.units as usize) < MIN_UNITS
}

/// What stands in brackets after a figure.
#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// "between 97.21% and 98.30%".
    Range(String),
    /// Fewer than [`MIN_UNITS`] independent days: how many there are.
    NoRangeYet(u64),
    /// A range whose ends read the same.
    SameEveryDay,
    None,
}

impl Note {
    /// The words, long (for sentences) or short (for table cells, where
    /// the glossary says what "no range yet" means).
    pub fn words(&self, short: bool) -> Option<String> {
        match self {
            Note::Range(r) => Some(r.clone()),
            Note::SameEveryDay if short => Some("same every day".into()),
            Note::SameEveryDay => Some(SAME_EVERY_DAY.into()),
            Note::NoRangeYet(_) if short => Some("no range yet".into()),
            Note::NoRangeYet(units) => Some(format!(
                "no range yet: {units} of the {MIN_UNITS} independent days a range needs"
            )),
            Note::None => None,
        }
    }
}

/// The note of a range whose ends read the same.
pub const SAME_EVERY_DAY: &str = "the same on every day, to the resolution measured";

/// An estimate as its figure and its note; `None` without a value.
pub fn parts(e: &Estimate, digits: usize, unit: &str) -> Option<(String, Note)> {
    let v = e.value.filter(|v| v.is_finite())?;
    let f = |x: f64| format!("{}{unit}", figure(x, digits));
    let note = if too_few_days(e) {
        Note::NoRangeYet(e.units)
    } else {
        match range(e) {
            // Bucket bounds (a store's percentiles) can make every day the
            // same: "between 1,000 ms and 1,000 ms" says nothing.
            Range::Between(l, h) if f(l) == f(h) => Note::SameEveryDay,
            Range::Between(l, h) => Note::Range(format!("between {} and {}", f(l), f(h))),
            Range::AtLeast(l) => Note::Range(format!("at least {}", f(l))),
            Range::AtMost(h) => Note::Range(format!("at most {}", f(h))),
            Range::None => Note::None,
        }
    };
    Some((f(v), note))
}

fn joined(e: &Estimate, digits: usize, unit: &str, short: bool) -> String {
    match parts(e, digits, unit) {
        Some((v, note)) => match note.words(short) {
            Some(n) => format!("{v} ({n})"),
            None => v,
        },
        None => "no data".into(),
    }
}

/// An estimate in a sentence: "97.80% (between 97.21% and 98.30%)";
/// "97.80% (no range yet: 3 of the 7 independent days a range needs)";
/// "no data" without a value.
pub fn show(e: &Estimate, digits: usize, unit: &str) -> String {
    joined(e, digits, unit, false)
}

/// An estimate in a table cell: as [`show`], "no range yet" in short.
pub fn cell(e: &Estimate, digits: usize, unit: &str) -> String {
    joined(e, digits, unit, true)
}

/// A share as a percentage with two decimals, in a sentence.
pub fn show_percent(e: &Estimate) -> String {
    show(&e.clone().scaled(100.0), 2, "%")
}

/// A share as a percentage with two decimals, in a table cell.
pub fn cell_percent(e: &Estimate) -> String {
    cell(&e.clone().scaled(100.0), 2, "%")
}

/// A ratio of rates in a table cell: "0.45× (between 0.20× and 0.90×)";
/// "none before" rather than a lower bound over nothing.
pub fn ratio_cell(e: &Estimate, digits: usize) -> String {
    match (e.value, range(e)) {
        (None, Range::AtLeast(_)) => "none before".into(),
        _ => cell(e, digits, "×"),
    }
}

/// A ratio of rates in words, `what` saying of what: "5.4 times as often
/// (between 3.4 and 8.5 times)". With none before, "none before" and no
/// figure: a lower bound over nothing says nothing. `None` when there is
/// nothing to compare.
pub fn times(e: &Estimate, digits: usize, what: &str) -> Option<String> {
    match (e.value.filter(|v| v.is_finite()), range(e)) {
        (None, Range::AtLeast(_)) => Some("none before".into()),
        (None, _) => None,
        (Some(_), _) => {
            let (v, note) = parts(e, digits, "")?;
            let note = match note {
                Note::Range(_) => match range(e) {
                    Range::Between(l, h) => format!(
                        " (between {} and {} times)",
                        figure(l, digits),
                        figure(h, digits)
                    ),
                    Range::AtLeast(l) => format!(" (at least {} times)", figure(l, digits)),
                    Range::AtMost(h) => format!(" (at most {} times)", figure(h, digits)),
                    Range::None => String::new(),
                },
                Note::NoRangeYet(_) => " (no range yet)".into(),
                Note::SameEveryDay => format!(" ({SAME_EVERY_DAY})"),
                Note::None => String::new(),
            };
            Some(format!("{v} times {what}{note}"))
        }
    }
}

/// The report's terms, each explained once, for the glossary at its end;
/// with the simulated calendar's when it runs faster than the clock.
pub fn glossary(scale: f64) -> Vec<(&'static str, String)> {
    let mut terms: Vec<(&'static str, String)> = vec![
        ("task (journey)", "one piece of scripted work the synthetic social worker does, as a practitioner would: log in, search for a case, open the record, save a note, log out; or run a management report.".into()),
        ("availability", "the share of tasks that completed correctly. A slow but correct task counts as available.".into()),
        ("p50, p95, p99", "the time within which half, 19 in 20, and 99 in 100 of the steps completed. p95 is the figure to watch: the wait one step in twenty is slower than.".into()),
        ("range", "the figures in brackets after a figure: the range the true value very probably lies in (a 95% confidence interval), given how much was measured. The more measured, the narrower.".into()),
        ("independent day", format!("the unit of evidence. Steps within a day hang together (one freeze stalls every request in flight, and one day's load differs from the next), so ranges count days, never single steps. Days that hang together are grouped into longer units. {MIN_UNITS} of them, a week, are the least any range is given from.")),
        ("same every day", "the range's two ends read the same: every day gave the same figure to the resolution it was measured at (a central store's percentiles are histogram bucket bounds).".into()),
        ("no range yet", format!("fewer than {MIN_UNITS} independent days stand behind the figure: it is what was measured so far, but how far off it may be cannot be said yet.")),
        ("not enough evidence yet", format!("the report states no direction (faster, fewer, more often) until the range excludes no change, each side holds {MIN_UNITS} independent days, and a change in freezes or forced logouts rests on at least 5 of them on 5 different days. It says about how much longer to measure.")),
        ("freeze", "one continuous stretch in which a system answered nothing: what users mean by \"it froze\". It begins when a request passes the step's freeze threshold.".into()),
        ("given up", "a step still unanswered at its give-up time. It is counted apart, as taking at least that long, never as a response time.".into()),
        ("forced logout", "the system ending a session the user did not end: sent back to the login page, refused, shown a \"session expired\" page, or its cookie cleared.".into()),
        ("age bracket", "a forced logout is known only to within a bracket: after the last moment the session was known alive, and no later than the answer that showed the loss (the moment it was seen).".into()),
        ("hours logged in", "session-hours: one session logged in for one hour. Forced logouts per hour logged in is how often a logged-in practitioner is thrown out in an hour.".into()),
        ("times as often", "one rate over another: 1 means no difference, 2 twice as often, 0.5 half as often.".into()),
        ("kept session", "a session the agent keeps logged in, checking it every few minutes, as staff who never log out would; it measures how long sessions survive and counts in no availability figure.".into()),
        ("still logged in (survival)", "the share of sessions not yet forced out by each age.".into()),
        ("time lost per practitioner", "minutes a practitioner would lose in a working day to freezes, forced logouts (logging in again and redoing unsaved work), failed work done again and slowness beyond what is acceptable, under the practitioners' assumptions stated beside it.".into()),
        ("staff-hours a month", "time lost per practitioner times the headcount and the working days in a month: the site's time lost, in hours.".into()),
    ];
    if let Some(s) = speed(scale) {
        terms.push((
            "simulated calendar",
            format!("in this demo the simulated system's calendar {s}: a minute of the clock stands for {} of the system's day, so hours, working days and the two-hour question are asked of minutes and seconds.", human_duration(60.0 * scale)),
        ));
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(value: f64, low: f64, high: f64, units: u64) -> Estimate {
        let mut e = Estimate::new(value, low, high, 10, "test");
        e.units = units;
        e
    }

    #[test]
    fn figures_read_cleanly() {
        assert_eq!(figure(5529.14, 1), "5,529.1");
        assert_eq!(figure(-0.04, 1), "0.0");
        assert_eq!(figure(-12.5, 1), "-12.5");
        assert_eq!(figure(1_234_567.0, 0), "1,234,567");
        assert_eq!(figure(f64::NAN, 2), "-");
        assert_eq!(plural(1, "forced logout"), "1 forced logout");
        assert_eq!(plural(74, "forced logout"), "74 forced logouts");
        assert_eq!(plural(2, "freeze"), "2 freezes");
        assert_eq!(plural(3, "session-hour"), "3 session-hours");
        assert_eq!(times_count(1), "1 time");
        assert_eq!(plural(1, "hour of the day"), "1 hour of the day");
        assert_eq!(plural(3, "hour of the day"), "3 hours of the day");
        assert_eq!(days(3, 2), "3 periods of 2 days");
        assert_eq!(days(1, 1), "1 day");
    }

    #[test]
    fn a_range_whose_ends_read_the_same_is_not_said_as_a_range() {
        // A store's p95 at a bucket bound: "1,000 ms (between 1,000 ms and 1,000 ms)".
        assert_eq!(
            show(&est(1000.4, 1000.4, 1000.4, 30), 0, " ms"),
            "1,000 ms (the same on every day, to the resolution measured)"
        );
        assert_eq!(
            cell(&est(1000.4, 1000.4, 1000.4, 30), 0, " ms"),
            "1,000 ms (same every day)"
        );
        assert_eq!(
            show(&est(1000.0, 900.0, 1100.0, 30), 0, " ms"),
            "1,000 ms (between 900 ms and 1,100 ms)"
        );
    }

    #[test]
    fn working_time_is_said_in_hours() {
        // "7days of working hours" was 168 working hours.
        assert_eq!(working_hours(168.0), "168 working hours");
        assert_eq!(working_hours(1.6), "1.6 working hours");
        assert_eq!(working_hours(1.0), "1 working hour");
        assert_eq!(working_hours(-0.0), "0 working hours");
        assert_eq!(working_hours(f64::NAN), "0 working hours");
    }

    #[test]
    fn how_long_to_measure_is_capped_at_a_year() {
        assert_eq!(
            more_measurement(3.0 * 86_400.0),
            "about 3 days more of measurement"
        );
        // "about 2238years 10months more": far more than anyone will measure.
        let absurd = 2238.8 * YEAR_SECONDS;
        assert_eq!(
            more_measurement(absurd),
            "far more data than a year of measurement"
        );
        assert_eq!(
            more_measurement(f64::INFINITY),
            "far more data than a year of measurement"
        );
    }

    #[test]
    fn intervals_are_never_reversed_nor_nan() {
        // "gave back about 0.3 (95% CI 0.9 to 0.0)".
        let reversed = est(0.3, 0.9, 0.0, 10);
        assert_eq!(show(&reversed, 1, ""), "0.3 (between 0.0 and 0.9)");
        // "95% CI NaN to 0.06".
        let nan = est(0.02, f64::NAN, 0.06, 10);
        assert_eq!(show(&nan, 2, ""), "0.02 (at most 0.06)");
        let none = Estimate::none(0, "test").with_value(f64::NAN);
        assert_eq!(show(&none, 2, ""), "no data");
    }

    #[test]
    fn no_range_from_fewer_than_a_week_of_days() {
        let few = est(394.9, 373.8, 415.9, 2);
        assert_eq!(
            show(&few, 1, ""),
            "394.9 (no range yet: 2 of the 7 independent days a range needs)"
        );
        assert_eq!(cell(&few, 1, " min"), "394.9 min (no range yet)");
        let enough = est(394.9, 373.8, 415.9, 7);
        assert_eq!(cell(&enough, 1, ""), "394.9 (between 373.8 and 415.9)");
        let percent = est(0.978, 0.9721, 0.983, 9);
        assert_eq!(show_percent(&percent), "97.80% (between 97.21% and 98.30%)");
    }

    #[test]
    fn ratios_read_as_times_as_often() {
        let r = est(5.4, 3.4, 8.5, 10);
        assert_eq!(
            times(&r, 1, "as often").unwrap(),
            "5.4 times as often (between 3.4 and 8.5 times)"
        );
        // "hazard ratio at least 0.02 (none before)".
        let none_before = Estimate {
            value: None,
            low: Some(0.02),
            high: None,
            n: 3,
            units: 10,
            method: "test",
        };
        assert_eq!(times(&none_before, 2, "as many").unwrap(), "none before");
        // "0.41 (95% CI 0.00 to 132.58)" from two days.
        let wide = est(0.41, 0.0, 132.58, 2);
        assert_eq!(
            times(&wide, 2, "as often").unwrap(),
            "0.41 times as often (no range yet)"
        );
        assert_eq!(times(&Estimate::none(0, "test"), 2, "as often"), None);
    }
}
