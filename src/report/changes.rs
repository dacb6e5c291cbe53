//! Before and after each change: equal windows of up to eight weeks on
//! each side, compared like with like ([`super::compare`]), for every system
//! together and for each system apart, and said in words under the
//! minimum-evidence rule.

use serde::Serialize;

use super::compare::{self, ChangeEvidence, Measure};
use super::design::{Design, Sheet};
use super::evidence::{Direction, MIN_EVENTS, MIN_UNITS};
use super::model::MAX_CHANGE_DAYS;
use super::words::{days, figure, plural};
use crate::journal::read::ChangeRow;
use crate::timefmt::{human_duration, rfc3339};

#[derive(Clone, Debug, Serialize)]
pub struct ChangeComparison {
    pub name: String,
    pub description: String,
    pub at: f64,
    pub at_text: String,
    /// `compared`, or `not_enough_data` with `note` saying why.
    pub status: &'static str,
    pub note: String,
    /// Length of each side's window (seconds).
    pub window_seconds: f64,
    /// Every system together.
    pub evidence: Option<ChangeEvidence>,
    /// Each system apart (interactive p95 and freezes of the ICS around a
    /// change in where reports run, say).
    pub targets: Vec<TargetChange>,
    /// What may be said, in words: one sentence per measure.
    pub findings: Vec<String>,
    /// The same in one sentence, for the summary.
    pub headline: String,
    /// Minutes lost per practitioner per working day, before and after.
    pub time_lost: Option<super::time_lost::TimeLostChange>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TargetChange {
    pub target: String,
    pub evidence: ChangeEvidence,
}

/// Compares the data around `change`; `span` is the first and last moment
/// measured (already clipped to the report's window).
pub fn compare(
    change: &ChangeRow,
    span: Option<(f64, f64)>,
    sheet: &Sheet<'_>,
    design: &Design,
) -> ChangeComparison {
    let mut out = ChangeComparison {
        name: change.name.clone(),
        description: change.description.clone(),
        at: change.at,
        at_text: rfc3339(change.at),
        status: "not_enough_data",
        note: String::new(),
        window_seconds: 0.0,
        evidence: None,
        targets: Vec::new(),
        findings: Vec::new(),
        headline: String::new(),
        time_lost: None,
    };
    let Some((first, last)) = span else {
        out.note = "the journal holds no runs".into();
        return out;
    };
    if change.at <= first {
        out.note = format!(
            "the journal's data starts at {}, after the change",
            rfc3339(first)
        );
        return out;
    }
    if change.at >= last {
        out.note = format!(
            "the journal's data ends at {}, before the change",
            rfc3339(last)
        );
        return out;
    }
    let longest = MAX_CHANGE_DAYS * crate::ledger::DAY / design.clock.scale;
    let window = longest.min(change.at - first).min(last - change.at);
    out.window_seconds = window;
    let evidence = compare::change_evidence(sheet, design, change.at, window, None);
    out.targets = sheet
        .ledger
        .targets
        .iter()
        .enumerate()
        .map(|(i, target)| TargetChange {
            target: target.clone(),
            evidence: compare::change_evidence(sheet, design, change.at, window, Some(i as u16)),
        })
        .collect();
    out.findings = findings(&evidence);
    out.headline = headline(&evidence, &out.findings);
    out.status = "compared";
    out.note = format!(
        "{} on each side; {} matched on the thinner side, {} hours of the day matched (weekdays and weekends apart)",
        human_duration(window),
        days(evidence.units_before.min(evidence.units_after), evidence.unit_days),
        evidence.cells
    );
    out.evidence = Some(evidence);
    out
}

/// One sentence per measure.
pub fn findings(e: &ChangeEvidence) -> Vec<String> {
    vec![
        finding(&e.p95_ms, e.unit_days, Wording::LATENCY),
        finding(&e.freeze_rate, e.unit_days, Wording::FREEZES),
        finding(&e.logout_rate, e.unit_days, Wording::LOGOUTS),
    ]
}

/// The findings in one sentence: when no measure has enough units of days
/// yet, that is said once.
fn headline(e: &ChangeEvidence, findings: &[String]) -> String {
    let measures = [&e.p95_ms, &e.freeze_rate, &e.logout_rate];
    if measures.iter().any(|m| m.judgement.enough_units) {
        return findings.join("; ");
    }
    let fewest = e.units_before.min(e.units_after);
    let needed = (MIN_UNITS - fewest) as f64 * e.unit_seconds;
    format!(
        "not enough evidence yet: {fewest} of the {MIN_UNITS} independent days needed on each side; about {} more of measurement on each side before speed, freezes or forced logouts can be judged",
        human_duration(needed)
    )
}

/// How a measure is spoken of.
pub struct Wording {
    /// What was compared, for "not enough evidence yet on ...".
    pub topic: &'static str,
    pub higher: &'static str,
    pub lower: &'static str,
    /// What moved, for "no clear difference in ...: ...".
    pub measure: &'static str,
    pub digits: usize,
    pub unit: &'static str,
    pub ratio: bool,
    /// The events a rate counts, for "3 freezes".
    pub events: &'static str,
}

impl Wording {
    pub const LATENCY: Wording = Wording {
        topic: "speed",
        higher: "slower after the change",
        lower: "faster after the change",
        measure: "the time within which 95% of interactive steps completed",
        digits: 0,
        unit: " ms",
        ratio: false,
        events: "",
    };
    pub const FREEZES: Wording = Wording {
        topic: "freezes",
        higher: "more freezes after the change",
        lower: "fewer freezes after the change",
        measure: "freezes an hour",
        digits: 2,
        unit: "",
        ratio: true,
        events: "freeze",
    };
    pub const LOGOUTS: Wording = Wording {
        topic: "forced logouts",
        higher: "more forced logouts after the change",
        lower: "fewer forced logouts after the change",
        measure: "forced logouts per hour logged in",
        digits: 2,
        unit: "",
        ratio: true,
        events: "forced logout",
    };
}

/// The change in words: "down by 120 ms (between 60 and 180 ms)", or
/// "0.45 times as many (between 0.20 and 0.90 times)".
pub fn change_words(m: &Measure, w: &Wording) -> String {
    let e = &m.change;
    if w.ratio {
        return match (e.value, e.low, e.high) {
            (None, Some(l), None) => format!(
                "none before, so only a lower bound: at least {} times as many",
                figure(l, w.digits)
            ),
            (Some(v), Some(l), Some(h)) => format!(
                "{} times as many (between {} and {} times)",
                figure(v, w.digits),
                figure(l, w.digits),
                figure(h, w.digits)
            ),
            (Some(v), Some(l), None) => format!(
                "{} times as many (at least {} times)",
                figure(v, w.digits),
                figure(l, w.digits)
            ),
            (Some(v), ..) => format!("{} times as many", figure(v, w.digits)),
            _ => "nothing to compare".into(),
        };
    }
    let signed = |x: f64| {
        if x < 0.0 {
            format!("down by {}{}", figure(-x, w.digits), w.unit)
        } else {
            format!("up by {}{}", figure(x, w.digits), w.unit)
        }
    };
    match (e.value, e.low, e.high) {
        (Some(v), Some(l), Some(h)) => format!(
            "{} (between {}{} and {}{})",
            signed(v),
            figure(l, w.digits),
            w.unit,
            figure(h, w.digits),
            w.unit
        ),
        (Some(v), ..) => signed(v),
        _ => "nothing to compare".into(),
    }
}

/// A measure in words: a direction only under the minimum-evidence rule.
pub fn finding(m: &Measure, unit_days: u32, w: Wording) -> String {
    let j = &m.judgement;
    let change = change_words(m, &w);
    let later = more_time(j.more_time_seconds);
    match j.direction {
        Some(Direction::Higher) => format!("{}: {} {change}", w.higher, w.measure),
        Some(Direction::Lower) => format!("{}: {} {change}", w.lower, w.measure),
        None if m.change.value.is_none() && m.change.low.is_none() => {
            format!("not enough evidence yet on {}: nothing to compare{later}", w.topic)
        }
        None if !j.enough_units => format!(
            "not enough evidence yet on {}: {} of the {MIN_UNITS} independent days needed on the thinner side{later}",
            w.topic,
            j.units_before.min(j.units_after)
        ),
        None if !j.enough_events => format!(
            "not enough evidence yet on {}: {} in {} ({MIN_EVENTS} in as many different days needed); {} {change}",
            w.topic,
            plural(j.events.unwrap_or(0), w.events),
            days(j.event_units.unwrap_or(0), unit_days),
            w.measure
        ),
        None => format!(
            "no clear difference in {}: {} {change}{}",
            w.topic,
            w.measure,
            later.replacen("; about", "; if the difference is real, about", 1)
        ),
    }
}

fn more_time(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s.is_finite() => format!(
            "; about {} more of measurement on each side would settle it",
            human_duration(s)
        ),
        _ => String::new(),
    }
}

/// A difference or ratio with its interval, for tables; a ratio with no
/// event before has only a lower bound.
pub fn show_change(e: &super::stats::Estimate, digits: usize, unit: &str) -> String {
    match (e.value, e.low, e.high) {
        (None, Some(l), None) => format!("at least {}{unit} (none before)", figure(l, digits)),
        (Some(v), Some(l), None) => format!(
            "{}{unit} (at least {}{unit})",
            figure(v, digits),
            figure(l, digits)
        ),
        _ => super::words::show(e, digits, unit),
    }
}
