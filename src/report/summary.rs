//! The plain-language summary at the top of the report: what a board
//! member reads first. Every sentence that states a direction does so only
//! under the minimum-evidence rule (see [`super::evidence`]); otherwise it
//! says there is not enough evidence yet. Figures, counts and times go
//! through [`super::words`] and [`crate::timefmt`].

use super::model::Report;
use super::words::{figure, plural, show, show_percent, speed, times_count};
use crate::timefmt::{human_duration, human_period, human_time};

pub fn summary(r: &Report) -> Vec<String> {
    if !r.window.has_data {
        return vec![
            "The journal holds no runs in this period: there is nothing to report yet.".into(),
        ];
    }
    let mut out = vec![r.time_lost.sentence.clone(), coverage(r)];
    for site in &r.availability.sites {
        out.push(format!(
            "The synthetic social worker's tasks succeeded in {} of {}: availability {}.",
            site.successes,
            plural(site.runs, "run"),
            show_percent(&site.availability)
        ));
    }
    out.push(freezes(r));
    let given_up: u64 = r.latency.steps.iter().map(|s| s.given_up).sum();
    if given_up > 0 {
        out.push(format!(
            "{} never completed and {} given up on; they are counted apart, not as response times.",
            plural(given_up, "step"),
            if given_up == 1 { "was" } else { "were" }
        ));
    }
    out.push(logouts(r));
    out.push(r.sessions.rule.sentence.clone());
    let stalls = &r.agent_stalls;
    if stalls.count > 0 {
        out.push(format!(
            "The monitoring agent itself stalled {} (its host paused, swapping or short of CPU), {} in all, the longest {}; {} measured during a stall {} left out, since what they measured was the agent, not the system.",
            times_count(stalls.count),
            human_duration(stalls.total_seconds),
            human_duration(stalls.longest_seconds),
            plural(stalls.runs_left_out, "run"),
            if stalls.runs_left_out == 1 { "is" } else { "are" }
        ));
    }
    out.extend(r.changes.iter().map(change));
    if let Some(truth) = &r.seeded_truth {
        out.push(format!(
            "Seeded truth, to check the answers above against: {truth}."
        ));
    }
    out
}

/// What the report covers, and in a demo, that its clock is scaled.
fn coverage(r: &Report) -> String {
    let mut text = format!(
        "This report covers {} of monitoring, {}, at {} {}.",
        human_duration(r.window.hours * 3600.0),
        human_period(r.window.from, r.window.to),
        if r.sites.len() == 1 { "site" } else { "sites" },
        r.sites.join(", ")
    );
    if let Some(s) = speed(r.evidence.calendar_scale) {
        text.push_str(&format!(
            " It is a demo: the simulated system's calendar {s}, so a minute of the clock stands for {} of the system's day, and the report's hours and days are the simulated calendar's.",
            human_duration(60.0 * r.evidence.calendar_scale)
        ));
    }
    text
}

fn freezes(r: &Report) -> String {
    let count: u64 = r.freezes.targets.iter().map(|t| t.count).sum();
    if count == 0 {
        return "No freeze was seen.".into();
    }
    let longest = r
        .freezes
        .targets
        .iter()
        .map(|t| t.longest_seconds)
        .fold(0.0, f64::max);
    let rates: Vec<String> = r
        .freezes
        .targets
        .iter()
        .map(|t| {
            format!(
                "the {} froze {}",
                t.target.to_uppercase(),
                show(&t.rate_per_hour, 2, " times an hour")
            )
        })
        .collect();
    format!(
        "The systems froze {}; the longest freeze lasted {}; {}.",
        times_count(count),
        human_duration(longest),
        rates.join("; ")
    )
}

fn logouts(r: &Report) -> String {
    let f = &r.forced_logouts;
    format!(
        "Sessions were forced out {} in {} hours logged in: {}.",
        times_count(f.total),
        figure(f.session_hours, 1),
        show(&f.rate_per_session_hour, 2, " per hour logged in")
    )
}

fn change(c: &super::changes::ChangeComparison) -> String {
    if c.status != "compared" {
        return format!(
            "Change \"{}\" ({}) cannot be assessed yet: {}.",
            c.name,
            human_time(c.at),
            c.note
        );
    }
    format!(
        "Change \"{}\" ({}): {}.",
        c.name,
        human_time(c.at),
        c.headline
    )
}
