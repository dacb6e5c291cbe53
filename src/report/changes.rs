//! Before and after each change: equal windows of up to eight weeks on
//! each side, compared like with like ([`super::compare`]), for every system
//! together and for each system apart, and said in words under the
//! minimum-evidence rule.

use serde::Serialize;

use super::compare::{self, ChangeEvidence, Measure};
use super::design::{Design, Sheet};
use super::evidence::{Direction, MIN_EVENTS, MIN_UNITS};
use super::model::MAX_CHANGE_DAYS;
use super::words::{days, figure, more_measurement, plural, times};
use crate::journal::read::ChangeRow;
use crate::timefmt::{human_duration, human_time, rfc3339};

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
            human_time(first)
        );
        return out;
    }
    if change.at >= last {
        out.note = format!(
            "the journal's data ends at {}, before the change",
            human_time(last)
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
    out.headline = headline(&evidence, &out.findings, None);
    out.status = "compared";
    out.note =
        format!(
        "{} on each side; {} matched on the thinner side, {} matched (weekdays and weekends apart)",
        human_duration(window),
        days(evidence.units_before.min(evidence.units_after), evidence.unit_days),
        plural(evidence.cells as u64, "hour of the day")
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

/// The findings in one sentence, time lost first when it was compared:
/// when no measure has enough units of days yet, that is said once.
pub fn headline(
    e: &ChangeEvidence,
    findings: &[String],
    time_lost: Option<&super::time_lost::TimeLostChange>,
) -> String {
    let measures = [&e.p95_ms, &e.freeze_rate, &e.logout_rate];
    let time_short = time_lost.is_none_or(|t| !t.judgement.enough_units);
    if measures.iter().any(|m| m.judgement.enough_units) || !time_short {
        let mut all: Vec<&str> = time_lost.map(|t| t.sentence.as_str()).into_iter().collect();
        all.extend(findings.iter().map(String::as_str));
        return all.join("; ");
    }
    let fewest = e.units_before.min(e.units_after);
    let needed = (MIN_UNITS - fewest.min(MIN_UNITS)) as f64 * e.unit_seconds;
    format!(
        "not enough evidence yet: {fewest} of the {MIN_UNITS} independent days needed on each side; {} on each side before {}speed, freezes or forced logouts can be judged",
        more_measurement(needed),
        if time_lost.is_some() { "time lost, " } else { "" }
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
        return match (e.value, m.after.n) {
            // A ratio over none before is no ratio: say the counts.
            (None, after) if after > 0 => {
                format!("none before and {after} after")
            }
            _ => times(e, w.digits, "as many").unwrap_or_else(|| "nothing to compare".into()),
        };
    }
    let signed = |x: f64| {
        if x < 0.0 {
            format!("down by {}{}", figure(-x, w.digits), w.unit)
        } else {
            format!("up by {}{}", figure(x, w.digits), w.unit)
        }
    };
    let same = |x: f64, y: f64| figure(x, w.digits) == figure(y, w.digits);
    match (e.value, super::words::range(e)) {
        // Every day the same (a store's bucket bounds): no bracket, and no
        // "up by 0 ms".
        (Some(v), super::words::Range::Between(l, h)) if same(l, h) && same(v, 0.0) => {
            format!("unchanged ({})", super::words::SAME_EVERY_DAY)
        }
        (Some(v), super::words::Range::Between(l, h)) if same(l, h) => {
            format!("{} ({})", signed(v), super::words::SAME_EVERY_DAY)
        }
        (Some(v), super::words::Range::Between(l, h)) if !super::words::too_few_days(e) => format!(
            "{} (between {}{} and {}{})",
            signed(v),
            figure(l, w.digits),
            w.unit,
            figure(h, w.digits),
            w.unit
        ),
        (Some(v), _) => signed(v),
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
            "not enough evidence yet on {}: {} on {}, where at least {MIN_EVENTS} on {MIN_EVENTS} different days are needed; {} {change}",
            w.topic,
            plural(j.events.unwrap_or(0), w.events),
            days(j.event_units.unwrap_or(0), unit_days),
            w.measure
        ),
        None => format!(
            "no clear difference in {}: {} {change}{}",
            w.topic,
            w.measure,
            later.replacen("; ", "; if the difference is real, ", 1)
        ),
    }
}

fn more_time(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) => format!("; {} on each side would settle it", more_measurement(s)),
        None => String::new(),
    }
}
