//! The report as Markdown: the same sections and figures as the HTML,
//! tables instead of charts, one short function per section. Figures go
//! through [`super::words`], so they read as the HTML's do.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::model::Report;
use super::words::{self, cell, cell_percent, plural, ratio_cell};
use crate::timefmt::{human_duration, human_moment, human_period, human_time};

/// Writes a Markdown table: a header row, the alignment row (`right`
/// marks numeric columns) and the rows. Every Markdown table of the
/// reports is written here.
pub(super) fn table(
    w: &mut String,
    header: &[(&str, bool)],
    rows: impl IntoIterator<Item = Vec<String>>,
) {
    let names: Vec<&str> = header.iter().map(|h| h.0).collect();
    let aligns: Vec<&str> = header
        .iter()
        .map(|h| if h.1 { "---:" } else { "---" })
        .collect();
    let _ = writeln!(w, "| {} |\n|{}|", names.join(" | "), aligns.join("|"));
    for row in rows {
        let _ = writeln!(w, "| {} |", row.join(" | "));
    }
}

/// `outcome: count, ...`.
fn counts(m: &BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# casewatch evidence report\n");
    let _ = writeln!(
        w,
        "Journal `{}`, {}, generated {}.\n",
        r.journal,
        human_period(r.window.from, r.window.to),
        human_time(r.generated)
    );
    let _ = writeln!(w, "## Summary\n");
    for line in &r.summary {
        let _ = writeln!(w, "- {line}");
    }
    time_lost(w, r);
    availability(w, r);
    latency(w, r);
    freezes(w, r);
    logouts(w, r);
    survival(w, r);
    kept(w, r);
    reporting(w, r);
    changes(w, r);
    monthly(w, r);
    glossary(w, r);
    let _ = writeln!(w, "\n## Methods\n");
    for (what, method) in &r.methods {
        let _ = writeln!(w, "- {what}: {method}");
    }
    out
}

fn time_lost(w: &mut String, r: &Report) {
    let t = &r.time_lost;
    let _ = writeln!(w, "\n## Time lost per practitioner\n");
    let _ = writeln!(w, "{}\n", t.sentence);
    let rows = [
        ("waiting on freezes", &t.frozen_minutes),
        (
            "forced logouts (logging in again, work redone)",
            &t.logout_minutes,
        ),
        ("failed work done again", &t.failed_minutes),
        ("slowness beyond acceptable", &t.slow_minutes),
        ("**all causes**", &t.total_minutes),
    ]
    .into_iter()
    .map(|(cause, e)| vec![cause.to_string(), cell(e, 1, " min")])
    .chain(std::iter::once(vec![
        "staff-hours lost per month at the site".into(),
        cell(&t.staff_hours_per_month, 0, " h"),
    ]));
    table(
        w,
        &[
            ("cause", false),
            ("minutes per practitioner per working day", false),
        ],
        rows,
    );
    let _ = writeln!(
        w,
        "\nAssumptions: {}; {}.",
        crate::loss::assumptions(&t.assumptions),
        super::time_lost_words::logout_cost(t)
    );
}

fn availability(w: &mut String, r: &Report) {
    let _ = writeln!(w, "\n## Availability\n");
    let rows = r
        .availability
        .sites
        .iter()
        .chain(&r.availability.journeys)
        .map(|a| {
            let all = |s: &str| {
                if s.is_empty() {
                    "all".to_string()
                } else {
                    s.to_string()
                }
            };
            vec![
                a.site.clone(),
                all(&a.target),
                all(&a.journey),
                a.kind.clone(),
                a.runs.to_string(),
                a.successes.to_string(),
                cell_percent(&a.availability),
                counts(&a.failures),
            ]
        });
    table(
        w,
        &[
            ("site", false),
            ("target", false),
            ("journey", false),
            ("kind", false),
            ("runs", true),
            ("succeeded", true),
            ("availability", false),
            ("failures", false),
        ],
        rows,
    );
}

fn latency(w: &mut String, r: &Report) {
    let _ = writeln!(w, "\n## Latency per step\n");
    let _ = writeln!(w, "HdrHistogram's percentiles of completed steps (exact to three significant figures); ranges treat whole days as the independent units. Steps given up on are counted apart, as taking at least their give-up time.\n");
    let rows = r.latency.steps.iter().map(|s| {
        vec![
            s.target.clone(),
            s.journey.clone(),
            s.step.clone(),
            s.count.to_string(),
            cell(&s.p50_ms, 0, " ms"),
            cell(&s.p95_ms, 0, " ms"),
            cell(&s.p99_ms, 0, " ms"),
            format!("{} ms", words::figure(s.max_ms, 0)),
            match s.given_up_after_seconds {
                Some(after) if s.given_up > 0 => {
                    format!("{} (at least {} each)", s.given_up, human_duration(after))
                }
                _ => "0".to_string(),
            },
        ]
    });
    table(
        w,
        &[
            ("target", false),
            ("journey", false),
            ("step", false),
            ("completed", true),
            ("p50", false),
            ("p95", false),
            ("p99", false),
            ("slowest", true),
            ("given up", true),
        ],
        rows,
    );
}

fn freezes(w: &mut String, r: &Report) {
    let _ = writeln!(w, "\n## Freezes\n");
    let s = &r.agent_stalls;
    if s.count > 0 {
        let _ = writeln!(
            w,
            "The monitoring agent itself stalled {}, {} in all (longest {}): {} measured during those stalls {} left out, and no stall is counted as a freeze of the system.\n",
            words::times_count(s.count),
            human_duration(s.total_seconds),
            human_duration(s.longest_seconds),
            plural(s.runs_left_out, "run"),
            if s.runs_left_out == 1 { "is" } else { "are" }
        );
    }
    if r.freezes.targets.is_empty() {
        let _ = writeln!(w, "No freeze was seen in this period.");
    } else {
        let rows = r.freezes.targets.iter().map(|f| {
            vec![
                f.target.clone(),
                f.count.to_string(),
                cell(&f.rate_per_hour, 2, ""),
                human_duration(f.total_seconds),
                human_duration(f.longest_seconds),
                f.censored.to_string(),
            ]
        });
        table(
            w,
            &[
                ("target", false),
                ("freezes", true),
                ("per hour", false),
                ("total", false),
                ("longest", false),
                ("still frozen when given up", true),
            ],
            rows,
        );
        let _ = writeln!(w);
        let rows = r.freezes.episodes.iter().map(|e| {
            let at_least = if e.censored { "at least " } else { "" };
            vec![
                human_moment(e.started),
                e.target.clone(),
                format!("{at_least}{}", human_duration(e.length_seconds)),
            ]
        });
        table(
            w,
            &[("started", false), ("target", false), ("length", false)],
            rows,
        );
    }
    browser(w, r);
}

fn browser(w: &mut String, r: &Report) {
    let f = &r.freezes;
    if !f.browser.is_empty() {
        let _ = writeln!(w, "\nFrozen browser steps by side (server: the page waited on the network; client: the page's main thread was blocked while the server answered):\n");
        let rows = f.browser.iter().map(|b| {
            vec![
                b.target.clone(),
                b.journey.clone(),
                b.server.to_string(),
                b.client.to_string(),
                b.mixed.to_string(),
            ]
        });
        table(
            w,
            &[
                ("target", false),
                ("journey", false),
                ("server", true),
                ("client", true),
                ("neither alone", true),
            ],
            rows,
        );
    }
    if !f.browser_evidence.is_empty() {
        let folder = &f.evidence_folder;
        let _ = writeln!(w, "\nEvidence of failed browser steps (in `{folder}`):\n");
        let rows = f.browser_evidence.iter().map(|e| {
            vec![
                human_moment(e.at),
                e.target.clone(),
                e.journey.clone(),
                e.step.clone(),
                e.outcome.clone(),
                format!("[screenshot]({folder}/{})", e.png),
                format!("[console]({folder}/{})", e.json),
            ]
        });
        table(
            w,
            &[
                ("when", false),
                ("target", false),
                ("journey", false),
                ("step", false),
                ("outcome", false),
                ("screenshot", false),
                ("console", false),
            ],
            rows,
        );
    }
}

fn logouts(w: &mut String, r: &Report) {
    let f = &r.forced_logouts;
    let _ = writeln!(w, "\n## Forced logouts\n");
    let _ = writeln!(
        w,
        "{} in {} hours logged in: {}.\n",
        plural(f.total, "forced logout"),
        words::figure(f.session_hours, 1),
        words::show(&f.rate_per_session_hour, 2, " per hour logged in")
    );
    if !f.by_cause.is_empty() {
        let rows = f.by_cause.iter().map(|c| {
            vec![
                c.target.clone(),
                c.cause.clone(),
                c.count.to_string(),
                cell_percent(&c.share),
            ]
        });
        table(
            w,
            &[
                ("target", false),
                ("cause", false),
                ("count", true),
                ("share", false),
            ],
            rows,
        );
    }
    if !f.events.is_empty() {
        let _ = writeln!(w, "\nEach forced logout, seen when the answer that showed it arrived; the session's age is a bracket from the last moment it was known alive to the moment its loss was seen.\n");
        let rows = f.events.iter().map(|e| {
            vec![
                human_moment(e.seen_at),
                e.site.clone(),
                e.target.clone(),
                e.cause.clone(),
                e.holder.clone(),
                format!(
                    "{} to {}",
                    human_duration(e.alive_age_seconds),
                    human_duration(e.seen_age_seconds)
                ),
            ]
        });
        table(
            w,
            &[
                ("seen", false),
                ("site", false),
                ("target", false),
                ("cause", false),
                ("session", false),
                ("age bracket", false),
            ],
            rows,
        );
    }
}

fn survival(w: &mut String, r: &Report) {
    let s = &r.sessions;
    let _ = writeln!(w, "\n## Session survival\n");
    let _ = writeln!(
        w,
        "{}: {} forced out, {} ended by the agent or still running (censored). Median survival: {}.\n",
        plural(s.sessions, "session"),
        s.dropped,
        s.censored,
        s.median_survival_seconds
            .map_or("not reached".into(), human_duration)
    );
    let _ = writeln!(w, "**{}**\n", s.rule.sentence);
    let rows = s.bands.iter().map(|b| {
        vec![
            b.age_text.clone(),
            words::figure(b.exposure_hours, 2),
            b.drops.to_string(),
            cell(&b.hazard_per_hour, 2, ""),
        ]
    });
    let rule = [
        vec![
            format!("younger than {}", s.rule.age_text),
            String::new(),
            String::new(),
            cell(&s.rule.younger, 2, ""),
        ],
        vec![
            format!("{} and older", s.rule.age_text),
            String::new(),
            String::new(),
            cell(&s.rule.older, 2, ""),
        ],
        vec![
            "older against younger".into(),
            String::new(),
            String::new(),
            super::sessions::hazard_ratio_text(&s.rule),
        ],
    ];
    table(
        w,
        &[
            ("session age", false),
            ("hours logged in", true),
            ("forced logouts", true),
            ("forced logouts per hour logged in", false),
        ],
        rows.chain(rule),
    );
    if !s.survival.is_empty() {
        let _ = writeln!(w);
        let rows = s.survival.iter().map(|p| {
            vec![
                human_duration(p.age_seconds),
                super::sessions::survival_text(p, s.units),
                p.at_risk.to_string(),
                p.drops.to_string(),
            ]
        });
        table(
            w,
            &[
                ("age", false),
                ("still logged in", false),
                ("at risk", true),
                ("forced out", true),
            ],
            rows,
        );
    }
}

fn kept(w: &mut String, r: &Report) {
    let _ = writeln!(w, "\n## Kept sessions\n");
    if r.kept_sessions.targets.is_empty() {
        let _ = writeln!(w, "No sessions were kept in this period.");
        return;
    }
    let _ = writeln!(w, "Sessions kept logged in to measure survival; their checks are not journeys and count in no availability figure.\n");
    let rows = r.kept_sessions.targets.iter().map(|t| {
        vec![
            t.site.clone(),
            t.target.clone(),
            t.checks.to_string(),
            counts(&t.check_outcomes),
            t.unknown_checks.to_string(),
            t.logins.to_string(),
            t.failed_logins.to_string(),
            counts(&t.lives_ended),
        ]
    });
    table(
        w,
        &[
            ("site", false),
            ("target", false),
            ("checks", true),
            ("by outcome", false),
            ("state unknown after", true),
            ("logins", true),
            ("failed logins", true),
            ("lives ended", false),
        ],
        rows,
    );
}

fn reporting(w: &mut String, r: &Report) {
    let l = &r.reporting_load;
    let _ = writeln!(w, "\n## Reporting load\n");
    let rows = l.report_runs.iter().map(|rr| {
        let step = if rr.step.is_empty() {
            String::new()
        } else {
            format!(" / step {}", rr.step)
        };
        vec![
            rr.target.to_uppercase(),
            format!("{}{step}", rr.journey),
            rr.runs.to_string(),
            rr.successes.to_string(),
            cell(&rr.median_seconds, 2, " s"),
            cell(&rr.p95_seconds, 2, " s"),
        ]
    });
    table(
        w,
        &[
            ("report runs on", false),
            ("journey", false),
            ("runs", true),
            ("succeeded", true),
            ("median run time", false),
            ("p95 run time", false),
        ],
        rows,
    );
    let _ = writeln!(
        w,
        "\nInteractive step latency, without and with a report running:\n"
    );
    let rows = l.interactive.iter().map(|c| {
        vec![
            c.target.to_uppercase(),
            c.reports_on.clone(),
            c.without_reports.steps.to_string(),
            cell(&c.without_reports.p95_ms, 0, " ms"),
            c.with_reports.steps.to_string(),
            cell(&c.with_reports.p95_ms, 0, " ms"),
            cell(&c.p95_difference_ms, 0, " ms"),
        ]
    });
    table(
        w,
        &[
            ("interactive system", false),
            ("reports running on", false),
            ("steps without", true),
            ("p95 without", false),
            ("steps with", true),
            ("p95 with", false),
            ("difference", false),
        ],
        rows,
    );
}

fn changes(w: &mut String, r: &Report) {
    let _ = writeln!(w, "\n## Before and after each change\n");
    if r.changes.is_empty() {
        let _ = writeln!(w, "No change events are recorded in the configuration.");
    }
    for c in &r.changes {
        let _ = writeln!(w, "### {} ({})\n", c.name, human_time(c.at));
        if !c.description.is_empty() {
            let _ = writeln!(w, "{}\n", c.description);
        }
        let Some(e) = &c.evidence else {
            let _ = writeln!(w, "Cannot compare yet: {}.\n", c.note);
            continue;
        };
        let _ = writeln!(w, "Compared: {}.\n", c.note);
        if let Some(t) = &c.time_lost {
            let _ = writeln!(w, "- {}", t.sentence);
        }
        for f in &c.findings {
            let _ = writeln!(w, "- {f}");
        }
        let _ = writeln!(w);
        let mut rows = Vec::new();
        if let Some(t) = &c.time_lost {
            rows.push(vec![
                "all".into(),
                "minutes lost per practitioner per working day".into(),
                cell(&t.before, 1, " min"),
                cell(&t.after, 1, " min"),
                cell(&t.change, 1, " min"),
            ]);
        }
        rows.extend(change_rows("all", e));
        for t in &c.targets {
            rows.extend(change_rows(&t.target, &t.evidence));
        }
        table(
            w,
            &[
                ("system", false),
                ("measure", false),
                ("before", false),
                ("after", false),
                ("change", false),
            ],
            rows,
        );
        let _ = writeln!(
            w,
            "\nPeriods: {}, and {}. Steps given up on (not in the percentiles): {} before, {} after.\n",
            human_period(c.at - c.window_seconds, c.at),
            human_period(c.at, c.at + c.window_seconds),
            e.given_up_before,
            e.given_up_after
        );
    }
}

fn change_rows(system: &str, e: &super::compare::ChangeEvidence) -> Vec<Vec<String>> {
    let row = |measure: &str, before: String, after: String, change: String| {
        vec![
            system.to_string(),
            measure.to_string(),
            before,
            after,
            change,
        ]
    };
    vec![
        row(
            "p95 interactive latency",
            cell(&e.p95_ms.before, 0, " ms"),
            cell(&e.p95_ms.after, 0, " ms"),
            cell(&e.p95_ms.change, 0, " ms"),
        ),
        row(
            "freezes per hour",
            cell(&e.freeze_rate.before, 2, ""),
            cell(&e.freeze_rate.after, 2, ""),
            ratio_cell(&e.freeze_rate.change, 2),
        ),
        row(
            "forced logouts per hour logged in",
            cell(&e.logout_rate.before, 2, ""),
            cell(&e.logout_rate.after, 2, ""),
            ratio_cell(&e.logout_rate.change, 2),
        ),
        row(
            "availability",
            cell_percent(&e.availability.before),
            cell_percent(&e.availability.after),
            cell(&e.availability.change.clone().scaled(100.0), 2, " points"),
        ),
    ]
}

fn monthly(w: &mut String, r: &Report) {
    if r.monthly.is_empty() {
        return;
    }
    let _ = writeln!(w, "\n## Month by month\n");
    let rows = r.monthly.iter().map(|m| {
        vec![
            m.month.clone(),
            m.runs.to_string(),
            cell_percent(&m.availability),
            cell(&m.p95_ms, 0, " ms"),
            cell(&m.freezes_per_day, 2, ""),
            cell(&m.logouts_per_session_hour, 2, ""),
        ]
    });
    table(
        w,
        &[
            ("month", false),
            ("runs", true),
            ("availability", false),
            ("p95 interactive", false),
            ("freezes per day", false),
            ("forced logouts per hour logged in", false),
        ],
        rows,
    );
}

fn glossary(w: &mut String, r: &Report) {
    let _ = writeln!(w, "\n## Glossary\n");
    for (term, meaning) in words::glossary(r.evidence.calendar_scale) {
        let _ = writeln!(w, "- **{term}**: {meaning}");
    }
}
