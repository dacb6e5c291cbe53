//! Rules for the `practitioners:` block: sane counts and hours, durations,
//! and transaction rates only for journeys that exist.

use std::collections::HashSet;

use super::super::practitioners::*;
use super::{line_of, Checker};

const CONTEXT: &str = "practitioners";

pub(super) fn practitioners(
    c: &mut Checker,
    raw: Option<&RawPractitioners>,
    journeys: &HashSet<&str>,
) -> Practitioners {
    let mut out = Practitioners::default();
    let Some(raw) = raw else {
        return out;
    };
    let mut given = Vec::new();
    if let Some(h) = &raw.headcount {
        if **h == 0 {
            c.error(line_of(h), CONTEXT, "headcount must be at least 1");
        }
        out.headcount = **h;
        given.push("headcount");
    }
    working_time(c, raw, &mut out, &mut given);
    waits(c, raw, &mut out, &mut given);
    transactions(c, raw, journeys, &mut out);
    if !raw.transactions_per_hour.is_empty() {
        given.push("transactions_per_hour");
    }
    out.defaulted.retain(|d| !given.contains(&d.as_str()));
    out
}

/// `working_hours`, `working_days` and `working_days_per_month`.
fn working_time(
    c: &mut Checker,
    raw: &RawPractitioners,
    out: &mut Practitioners,
    given: &mut Vec<&'static str>,
) {
    if let Some(hours) = &raw.working_hours {
        match parse_hours(hours) {
            Some((from, to)) if from < to => {
                out.working_from_minute = from;
                out.working_to_minute = to;
            }
            _ => c.error(
                line_of(hours),
                CONTEXT,
                format!(
                    "working_hours {:?} must look like 09:00-17:00, the end after the start",
                    hours.as_str()
                ),
            ),
        }
        given.push("working_hours");
    }
    if let Some(days) = &raw.working_days {
        match days.as_str() {
            "weekdays" => out.weekends = false,
            "all" => out.weekends = true,
            other => c.error(
                line_of(days),
                CONTEXT,
                format!("working_days {other:?} must be `weekdays` or `all`"),
            ),
        }
        given.push("working_days");
    }
    if let Some(d) = &raw.working_days_per_month {
        if !(d.is_finite() && **d > 0.0 && **d <= 31.0) {
            c.error(
                line_of(d),
                CONTEXT,
                "working_days_per_month must be above 0 and at most 31",
            );
        } else {
            out.working_days_per_month = **d;
        }
        given.push("working_days_per_month");
    }
}

/// `acceptable` and `redo_after_logout`: how long practitioners wait.
fn waits(
    c: &mut Checker,
    raw: &RawPractitioners,
    out: &mut Practitioners,
    given: &mut Vec<&'static str>,
) {
    if let Some(a) = &raw.acceptable {
        if let Some(d) = c.duration(a, "acceptable", CONTEXT) {
            out.acceptable_seconds = d.as_secs_f64();
        }
        given.push("acceptable");
    }
    if let Some(r) = &raw.redo_after_logout {
        if let Some(d) = c.duration(r, "redo_after_logout", CONTEXT) {
            out.redo_after_logout_seconds = Some(d.as_secs_f64());
        }
        given.push("redo_after_logout");
    }
}

/// `transactions_per_hour`: each for a journey that exists, none negative.
fn transactions(
    c: &mut Checker,
    raw: &RawPractitioners,
    journeys: &HashSet<&str>,
    out: &mut Practitioners,
) {
    for (journey, rate) in &raw.transactions_per_hour {
        if !journeys.contains(journey.as_str()) {
            c.error(
                line_of(rate),
                CONTEXT,
                format!("transactions_per_hour names {journey:?}, which is not a journey"),
            );
        }
        if !(rate.is_finite() && **rate >= 0.0) {
            c.error(
                line_of(rate),
                CONTEXT,
                format!("transactions_per_hour of {journey:?} must be zero or more"),
            );
        }
        out.transactions_per_hour.insert(journey.clone(), **rate);
    }
}

/// `HH:MM-HH:MM` as minutes of the day; `24:00` ends the day.
fn parse_hours(text: &str) -> Option<(u32, u32)> {
    let (from, to) = text.split_once('-')?;
    let minute = |t: &str| {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
    };
    Some((minute(from)?, minute(to)?))
}
