//! Before and after each change: equal windows of up to seven days on each
//! side, compared like with like ([`super::compare`]), for every system
//! together and for each system apart, and said in words under the
//! minimum-evidence rule.

use std::collections::BTreeMap;

use serde::Serialize;

use super::compare::{self, ChangeEvidence, Measure, Observations};
use super::evidence::{Calendar, Direction, MIN_BLOCKS};
use super::model::{show, MAX_CHANGE_WINDOW};
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
    all: &Observations,
    by_target: &BTreeMap<String, Observations>,
    calendar: &Calendar,
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
    let window = MAX_CHANGE_WINDOW
        .as_secs_f64()
        .min(change.at - first)
        .min(last - change.at);
    out.window_seconds = window;
    let (from, to) = (change.at - window, change.at + window);
    let block = compare::block_length(all, from, to, change.at);
    let evidence = compare::change_evidence(all, change.at, window, calendar, block);
    out.targets = by_target
        .iter()
        .map(|(target, obs)| TargetChange {
            target: target.clone(),
            evidence: compare::change_evidence(obs, change.at, window, calendar, block),
        })
        .collect();
    out.findings = findings(&evidence);
    out.headline = headline(&evidence, &out.findings);
    out.status = "compared";
    out.note = format!(
        "{} on each side; {} comparable blocks of {} on each side, in {} hours of the day matched (weekdays and weekends apart)",
        human_duration(window),
        evidence.blocks_before.min(evidence.blocks_after),
        human_duration(block),
        evidence.cells
    );
    out.evidence = Some(evidence);
    out
}

/// One sentence per measure.
pub fn findings(e: &ChangeEvidence) -> Vec<String> {
    let block = human_duration(e.block_seconds);
    vec![
        finding(&e.p95_ms, &block, Wording::LATENCY),
        finding(&e.freeze_rate, &block, Wording::FREEZES),
        finding(&e.logout_rate, &block, Wording::LOGOUTS),
    ]
}

/// The findings in one sentence: when no measure has enough matched
/// blocks yet, that is said once.
fn headline(e: &ChangeEvidence, findings: &[String]) -> String {
    let measures = [&e.p95_ms, &e.freeze_rate, &e.logout_rate];
    if measures.iter().any(|m| m.judgement.enough_blocks) {
        return findings.join("; ");
    }
    let fewest = e.blocks_before.min(e.blocks_after);
    let needed = (MIN_BLOCKS - fewest) as f64 * e.block_seconds;
    format!(
        "not enough evidence yet: {} of {MIN_BLOCKS} comparable blocks of {} on the thinner side; about {} more of measurement on each side is needed before speed, freezes or forced logouts can be judged",
        fewest,
        human_duration(e.block_seconds),
        human_duration(needed)
    )
}

/// How a measure is spoken of.
pub struct Wording {
    /// What was compared, for "not enough evidence yet on ...".
    pub topic: &'static str,
    pub higher: &'static str,
    pub lower: &'static str,
    pub measure: &'static str,
    pub digits: usize,
    pub unit: &'static str,
    pub ratio: bool,
}

impl Wording {
    pub const LATENCY: Wording = Wording {
        topic: "speed",
        higher: "slower after the change",
        lower: "faster after the change",
        measure: "p95 difference",
        digits: 0,
        unit: " ms",
        ratio: false,
    };
    pub const FREEZES: Wording = Wording {
        topic: "freezes",
        higher: "more freezes after the change",
        lower: "fewer freezes after the change",
        measure: "rate ratio",
        digits: 2,
        unit: "",
        ratio: true,
    };
    pub const LOGOUTS: Wording = Wording {
        topic: "forced logouts",
        higher: "more forced logouts per session-hour after the change",
        lower: "fewer forced logouts per session-hour after the change",
        measure: "rate ratio",
        digits: 2,
        unit: "",
        ratio: true,
    };
}

/// A measure in words: a direction only under the minimum-evidence rule.
pub fn finding(m: &Measure, block: &str, w: Wording) -> String {
    let j = &m.judgement;
    let figure = format!("{} {}", w.measure, show_change(&m.change, w.digits, w.unit));
    match j.direction {
        Some(Direction::Higher) => format!("{}: {figure}", w.higher),
        Some(Direction::Lower) => format!("{}: {figure}", w.lower),
        None if m.change.low.is_none() && m.change.high.is_none() => format!(
            "not enough evidence yet on {}: nothing to compare{}",
            w.topic,
            more_time(j.more_time_seconds)
        ),
        None if !j.enough_blocks => format!(
            "not enough evidence yet on {}: {} comparable blocks of {block} on the thinner side, {MIN_BLOCKS} needed{} ({figure})",
            w.topic,
            j.blocks_before.min(j.blocks_after),
            more_time(j.more_time_seconds)
        ),
        None => format!(
            "no clear difference in {}: {figure}{}",
            w.topic,
            more_time(j.more_time_seconds)
                .replacen("; about", "; if the difference is real, about", 1)
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

/// A difference or ratio with its interval; a ratio with no event before
/// has only a lower bound.
pub fn show_change(e: &super::stats::Estimate, digits: usize, unit: &str) -> String {
    match (e.value, e.low, e.high) {
        (None, Some(l), None) => format!("at least {l:.digits$}{unit} (none before)"),
        (Some(v), Some(l), None) => {
            format!("{v:.digits$}{unit} (95% CI {l:.digits$}{unit} and up)")
        }
        _ => show(e, digits, unit),
    }
}
