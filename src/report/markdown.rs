//! The report as Markdown: the same sections and figures as the HTML,
//! tables instead of charts.

use std::fmt::Write;

use super::model::Report;
use super::words::{show, show_percent};
use crate::timefmt::{human_duration, rfc3339};

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# casewatch evidence report\n");
    let _ = writeln!(
        w,
        "Journal `{}`, {} to {}, generated {}.\n",
        r.journal, r.window.from_text, r.window.to_text, r.generated_at
    );
    let _ = writeln!(w, "## Summary\n");
    for line in &r.summary {
        let _ = writeln!(w, "- {line}");
    }

    let t = &r.time_lost;
    let _ = writeln!(w, "\n## Time lost per practitioner\n");
    let _ = writeln!(
        w,
        "| cause | minutes per practitioner per working day (95% CI) |\n|---|---|"
    );
    for (cause, e) in [
        ("waiting on freezes", &t.frozen_minutes),
        (
            "forced logouts (re-login and work redone)",
            &t.logout_minutes,
        ),
        ("slowness beyond acceptable", &t.slow_minutes),
        ("**all causes**", &t.total_minutes),
    ] {
        let _ = writeln!(w, "| {cause} | {} |", show(e, 1, " min"));
    }
    let _ = writeln!(
        w,
        "| staff-hours lost per month at the site | {} |",
        show(&t.staff_hours_per_month, 0, " h")
    );
    let _ = writeln!(
        w,
        "\nAssumptions: {}. Each forced logout costs {} ({} to log in again, {} of work redone, {}).",
        crate::loss::assumptions(&t.assumptions),
        human_duration(t.logout_cost_seconds),
        human_duration(t.relogin_seconds),
        human_duration(t.redo_seconds),
        t.redo_source
    );

    let _ = writeln!(w, "\n## Availability\n");
    let _ = writeln!(
        w,
        "| site | target | journey | kind | runs | succeeded | availability (95% CI) | failures |"
    );
    let _ = writeln!(w, "|---|---|---|---|---:|---:|---|---|");
    for a in r.availability.sites.iter().chain(&r.availability.journeys) {
        let failures: Vec<String> = a
            .failures
            .iter()
            .map(|(o, n)| format!("{o}: {n}"))
            .collect();
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            a.site,
            if a.target.is_empty() {
                "all"
            } else {
                &a.target
            },
            if a.journey.is_empty() {
                "all"
            } else {
                &a.journey
            },
            a.kind,
            a.runs,
            a.successes,
            show_percent(&a.availability),
            failures.join(", ")
        );
    }

    let _ = writeln!(w, "\n## Latency per step\n");
    let _ = writeln!(w, "HdrHistogram's percentiles of completed steps (exact to three significant figures); intervals treat whole days as the independent units. Steps given up on are counted apart, as taking at least their give-up time.\n");
    let _ = writeln!(
        w,
        "| target | journey | step | completed | p50 | p95 | p99 | max | given up |"
    );
    let _ = writeln!(w, "|---|---|---|---:|---|---|---|---:|---:|");
    for s in &r.latency.steps {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} ms | {} |",
            s.target,
            s.journey,
            s.step,
            s.count,
            show(&s.p50_ms, 0, " ms"),
            show(&s.p95_ms, 0, " ms"),
            show(&s.p99_ms, 0, " ms"),
            s.max_ms,
            match s.given_up_after_seconds {
                Some(after) if s.given_up > 0 =>
                    format!("{} (≥ {})", s.given_up, human_duration(after)),
                _ => "0".to_string(),
            }
        );
    }

    let _ = writeln!(w, "\n## Freezes\n");
    if r.agent_stalls.count > 0 {
        let _ = writeln!(
            w,
            "The monitoring agent itself stalled {} time(s), {} in all (longest {}): {} run(s) measured during those stalls are left out, and no stall is counted as a freeze of the system.\n",
            r.agent_stalls.count,
            human_duration(r.agent_stalls.total_seconds),
            human_duration(r.agent_stalls.longest_seconds),
            r.agent_stalls.runs_left_out
        );
    }
    if r.freezes.targets.is_empty() {
        let _ = writeln!(w, "No freeze episodes in this period.");
    } else {
        let _ = writeln!(
            w,
            "| target | episodes | per hour (95% CI) | total | longest | censored |"
        );
        let _ = writeln!(w, "|---|---:|---|---|---|---:|");
        for f in &r.freezes.targets {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} |",
                f.target,
                f.count,
                show(&f.rate_per_hour, 2, ""),
                human_duration(f.total_seconds),
                human_duration(f.longest_seconds),
                f.censored
            );
        }
        let _ = writeln!(w, "\n| started | target | length |\n|---|---|---|");
        for e in &r.freezes.episodes {
            let _ = writeln!(
                w,
                "| {} | {} | {}{} |",
                e.started_text,
                e.target,
                if e.censored { "at least " } else { "" },
                human_duration(e.length_seconds)
            );
        }
    }

    if !r.freezes.browser.is_empty() {
        let _ = writeln!(
            w,
            "\nFrozen browser steps by side (server: the page waited on the network; client: the page's main thread was blocked while the server answered):\n\n| target | journey | server | client | mixed |\n|---|---|---:|---:|---:|"
        );
        for b in &r.freezes.browser {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} |",
                b.target, b.journey, b.server, b.client, b.mixed
            );
        }
    }
    if !r.freezes.browser_evidence.is_empty() {
        let folder = &r.freezes.evidence_folder;
        let _ = writeln!(
            w,
            "\nEvidence of failed browser steps (in `{folder}`):\n\n| when | target | journey | step | outcome | screenshot | console |\n|---|---|---|---|---|---|---|"
        );
        for e in &r.freezes.browser_evidence {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | [{}]({folder}/{}) | [{}]({folder}/{}) |",
                e.at_text, e.target, e.journey, e.step, e.outcome, e.png, e.png, e.json, e.json
            );
        }
    }

    let _ = writeln!(w, "\n## Forced logouts\n");
    let _ = writeln!(
        w,
        "{} forced logouts in {:.2} session-hours: {}.\n",
        r.forced_logouts.total,
        r.forced_logouts.session_hours,
        show(
            &r.forced_logouts.rate_per_session_hour,
            2,
            " per session-hour"
        )
    );
    if !r.forced_logouts.by_cause.is_empty() {
        let _ = writeln!(
            w,
            "| target | cause | count | share (95% CI) |\n|---|---|---:|---|"
        );
        for c in &r.forced_logouts.by_cause {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} |",
                c.target,
                c.cause,
                c.count,
                show_percent(&c.share)
            );
        }
    }

    if !r.forced_logouts.events.is_empty() {
        let _ = writeln!(
            w,
            "\nEach forced logout; the session's age is a bracket from the last moment it was known alive to the moment its loss was seen.\n"
        );
        let _ = writeln!(
            w,
            "| seen | site | target | cause | session | age bracket |\n|---|---|---|---|---|---|"
        );
        for e in &r.forced_logouts.events {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} – {} |",
                e.seen_text,
                e.site,
                e.target,
                e.cause,
                e.holder,
                human_duration(e.alive_age_seconds),
                human_duration(e.seen_age_seconds)
            );
        }
    }

    let s = &r.sessions;
    let _ = writeln!(w, "\n## Session survival\n");
    let _ = writeln!(
        w,
        "{} sessions: {} forced out, {} ended by the agent or still running (censored). Median survival: {}.\n",
        s.sessions,
        s.dropped,
        s.censored,
        s.median_survival_seconds
            .map_or("not reached".into(), human_duration)
    );
    let _ = writeln!(w, "**{}**\n", s.rule.sentence);
    let _ = writeln!(w, "| age band | session-hours | forced logouts | hazard per session-hour (95% CI) |\n|---|---:|---:|---|");
    for b in &s.bands {
        let _ = writeln!(
            w,
            "| {} | {:.2} | {} | {} |",
            b.band,
            b.exposure_hours,
            b.drops,
            show(&b.hazard_per_hour, 2, "")
        );
    }
    if !s.survival.is_empty() {
        let _ = writeln!(
            w,
            "\n| age | survival (95% CI) | at risk | dropped |\n|---|---|---:|---:|"
        );
        for p in &s.survival {
            let _ = writeln!(
                w,
                "| {} | {:.3} ({:.3}–{:.3}) | {} | {} |",
                human_duration(p.age_seconds),
                p.survival,
                p.low,
                p.high,
                p.at_risk,
                p.drops
            );
        }
    }

    let _ = writeln!(w, "\n## Kept sessions\n");
    if r.kept_sessions.targets.is_empty() {
        let _ = writeln!(w, "No sessions were kept in this period.");
    } else {
        let _ = writeln!(w, "Sessions kept logged in to measure survival; their checks are not journeys and count in no availability figure.\n");
        let _ = writeln!(
            w,
            "| site | target | checks | by outcome | state unknown after | logins | failed logins | lives ended |\n|---|---|---:|---|---:|---:|---:|---|"
        );
        for t in &r.kept_sessions.targets {
            let join = |m: &std::collections::BTreeMap<String, u64>| {
                m.iter()
                    .map(|(k, n)| format!("{k}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                t.site,
                t.target,
                t.checks,
                join(&t.check_outcomes),
                t.unknown_checks,
                t.logins,
                t.failed_logins,
                join(&t.lives_ended)
            );
        }
    }

    let _ = writeln!(w, "\n## Reporting load\n");
    let _ = writeln!(w, "| report runs on | journey | runs | succeeded | median run time | p95 run time |\n|---|---|---:|---:|---|---|");
    for rr in &r.reporting_load.report_runs {
        let _ = writeln!(
            w,
            "| {} | {}{} | {} | {} | {} | {} |",
            rr.target.to_uppercase(),
            rr.journey,
            if rr.step.is_empty() {
                String::new()
            } else {
                format!(" / step {}", rr.step)
            },
            rr.runs,
            rr.successes,
            show(&rr.median_seconds, 2, " s"),
            show(&rr.p95_seconds, 2, " s")
        );
    }
    let _ = writeln!(
        w,
        "\nInteractive step latency, without and with a report running:\n"
    );
    let _ = writeln!(w, "| interactive system | reports running on | steps without | p95 without | steps with | p95 with | difference |\n|---|---|---:|---|---:|---|---|");
    for l in &r.reporting_load.interactive {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} |",
            l.target.to_uppercase(),
            l.reports_on,
            l.without_reports.steps,
            show(&l.without_reports.p95_ms, 0, " ms"),
            l.with_reports.steps,
            show(&l.with_reports.p95_ms, 0, " ms"),
            show(&l.p95_difference_ms, 0, " ms")
        );
    }

    let _ = writeln!(w, "\n## Before and after each change\n");
    if r.changes.is_empty() {
        let _ = writeln!(w, "No change events are recorded in the configuration.");
    }
    for c in &r.changes {
        let _ = writeln!(w, "### {} ({})\n", c.name, c.at_text);
        if !c.description.is_empty() {
            let _ = writeln!(w, "{}\n", c.description);
        }
        let _ = writeln!(w, "Status: {} — {}.\n", c.status, c.note);
        if let Some(e) = &c.evidence {
            if let Some(t) = &c.time_lost {
                let _ = writeln!(
                    w,
                    "- time lost: {}; minutes per practitioner per working day {} before, {} after, change {}",
                    t.sentence,
                    show(&t.before, 1, ""),
                    show(&t.after, 1, ""),
                    show(&t.change, 1, "")
                );
            }
            for f in &c.findings {
                let _ = writeln!(w, "- {f}");
            }
            let _ = writeln!(
                w,
                "\n| system | measure | before | after | change (95% CI) |\n|---|---|---|---|---|"
            );
            let mut rows = vec![("all".to_string(), e)];
            rows.extend(c.targets.iter().map(|t| (t.target.clone(), &t.evidence)));
            for (system, e) in rows {
                for (measure, m, digits, unit, change_unit) in [
                    ("p95 interactive latency", &e.p95_ms, 0, " ms", " ms"),
                    ("freezes per hour", &e.freeze_rate, 2, "", "×"),
                    (
                        "forced logouts per session-hour",
                        &e.logout_rate,
                        2,
                        "",
                        "×",
                    ),
                ] {
                    let _ = writeln!(
                        w,
                        "| {system} | {measure} | {} | {} | {} |",
                        show(&m.before, digits, unit),
                        show(&m.after, digits, unit),
                        super::changes::show_change(&m.change, digits, change_unit)
                    );
                }
                let _ = writeln!(
                    w,
                    "| {system} | availability | {} | {} | {} |",
                    show_percent(&e.availability.before),
                    show_percent(&e.availability.after),
                    show(&e.availability.change.clone().scaled(100.0), 2, " points")
                );
            }
            let _ = writeln!(
                w,
                "\nWindows: {} to {} and {} to {}. Steps given up on (not in the percentiles): {} before, {} after.",
                rfc3339(c.at - c.window_seconds),
                rfc3339(c.at),
                rfc3339(c.at),
                rfc3339(c.at + c.window_seconds),
                e.given_up_before,
                e.given_up_after
            );
        }
        let _ = writeln!(w);
    }

    if !r.monthly.is_empty() {
        let _ = writeln!(w, "\n## Month by month\n");
        let _ = writeln!(
            w,
            "| month | runs | availability | p95 interactive | freezes per day | forced logouts per session-hour |\n|---|---:|---|---|---|---|"
        );
        for m in &r.monthly {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} |",
                m.month,
                m.runs,
                show_percent(&m.availability),
                show(&m.p95_ms, 0, " ms"),
                show(&m.freezes_per_day, 2, ""),
                show(&m.logouts_per_session_hour, 2, "")
            );
        }
    }

    let _ = writeln!(w, "\n## Methods\n");
    for (what, method) in &r.methods {
        let _ = writeln!(w, "- {what}: {method}");
    }
    out
}
