//! The plain-language summary at the top of the report: what a board
//! member reads first. Every sentence that states a direction does so only
//! under the minimum-evidence rule (see [`super::evidence`]); otherwise it
//! says there is not enough evidence yet.

use super::model::Report;
use super::words::{show, show_percent};
use crate::timefmt::human_duration;

pub fn summary(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    if !r.window.has_data {
        out.push(
            "The journal holds no runs in this period: there is nothing to report yet.".into(),
        );
        return out;
    }
    out.push(r.time_lost.sentence.clone());
    out.push(format!(
        "This report covers {} of monitoring from {} to {} (site{} {}).",
        human_duration(r.window.hours * 3600.0),
        r.window.from_text,
        r.window.to_text,
        if r.sites.len() == 1 { "" } else { "s" },
        r.sites.join(", ")
    ));
    for site in &r.availability.sites {
        out.push(format!(
            "The synthetic social worker's tasks succeeded in {} of {} runs: availability {}.",
            site.successes,
            site.runs,
            show_percent(&site.availability)
        ));
    }
    let freezes: u64 = r.freezes.targets.iter().map(|t| t.count).sum();
    if freezes == 0 {
        out.push("No freeze was seen.".into());
    } else {
        let longest = r
            .freezes
            .targets
            .iter()
            .map(|t| t.longest_seconds)
            .fold(0.0, f64::max);
        out.push(format!(
            "The systems froze {freezes} time{}; the longest freeze lasted {}.",
            if freezes == 1 { "" } else { "s" },
            human_duration(longest)
        ));
    }
    let given_up: u64 = r.latency.steps.iter().map(|s| s.given_up).sum();
    if given_up > 0 {
        out.push(format!(
            "{given_up} step{} never completed and {} given up on; they are counted apart, not as response times.",
            if given_up == 1 { "" } else { "s" },
            if given_up == 1 { "was" } else { "were" }
        ));
    }
    out.push(format!(
        "Sessions were forced to log out {} time{} in {:.1} session-hours known alive: {}.",
        r.forced_logouts.total,
        if r.forced_logouts.total == 1 { "" } else { "s" },
        r.forced_logouts.session_hours,
        show(
            &r.forced_logouts.rate_per_session_hour,
            2,
            " per session-hour"
        )
    ));
    out.push(r.sessions.rule.sentence.clone());
    let stalls = &r.agent_stalls;
    if stalls.count > 0 {
        out.push(format!(
            "The monitoring agent itself stalled {} (its host paused, swapping or short of CPU), {} in all, the longest {}; {} measured during a stall {} left out, since what they measured was the agent, not the system.",
            super::words::plural(stalls.count, "time"),
            human_duration(stalls.total_seconds),
            human_duration(stalls.longest_seconds),
            super::words::plural(stalls.runs_left_out, "run"),
            if stalls.runs_left_out == 1 { "is" } else { "are" }
        ));
    }
    for c in &r.changes {
        if c.status == "compared" {
            let time = c
                .time_lost
                .as_ref()
                .map(|t| format!("{}; ", t.sentence))
                .unwrap_or_default();
            out.push(format!(
                "Change \"{}\" ({}): {time}{}.",
                c.name, c.at_text, c.headline
            ));
        } else {
            out.push(format!(
                "Change \"{}\" cannot be assessed yet: {}.",
                c.name, c.note
            ));
        }
    }
    if let Some(truth) = &r.seeded_truth {
        out.push(format!(
            "Seeded truth, to check the answers above against: {truth}."
        ));
    }
    out
}
