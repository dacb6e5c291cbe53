//! The report as one self-contained HTML page (maud): inline CSS and inline
//! SVG charts, no scripts, nothing fetched. Written for a board member:
//! plain-language summary first, every chart captioned, every figure with
//! its 95% interval.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::charts;
use super::model::Report;
use super::stats::Estimate;
use super::words;
use crate::timefmt::{human_duration, human_moment, human_period, human_time};

pub(super) const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d2733; background: #f4f6f8; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 1.9rem; margin-bottom: 0.2rem; }
h2 { border-bottom: 2px solid #1f77b4; padding-bottom: 4px; margin-top: 2.4rem; }
h3 { margin-top: 1.6rem; }
.meta { color: #5b6773; margin-top: 0; }
.summary { background: #eef5fb; border-left: 6px solid #1f77b4; padding: 12px 20px; font-size: 1.08rem; }
.summary li { margin: 6px 0; }
.verdict { font-size: 1.1rem; font-weight: 600; background: #fff6e5; border-left: 6px solid #ff7f0e; padding: 10px 16px; }
table { border-collapse: collapse; width: 100%; margin: 12px 0; font-size: 0.92rem; }
th, td { border-bottom: 1px solid #dde3e8; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f0f3f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 16px 0; }
figcaption { color: #3d4a56; font-size: 0.92rem; margin-top: 4px; }
figure svg { max-width: 100%; height: auto; border: 1px solid #e3e8ec; }
.note { color: #5b6773; font-size: 0.9rem; }
.ci { color: #5b6773; white-space: nowrap; }
"#;

/// An estimate with its note in grey brackets: the same words as the
/// Markdown's cells ([`words::parts`]).
pub(super) fn est(e: &Estimate, digits: usize, unit: &str) -> Markup {
    match words::parts(e, digits, unit) {
        Some((v, note)) => html! {
            (v) @if let Some(n) = note.words(true) { " " span.ci { "(" (n) ")" } }
        },
        None => html! { span.ci { "no data" } },
    }
}

/// A ratio of rates: "0.45× (between 0.20× and 0.90×)", "none before"
/// (as [`words::ratio_cell`]).
pub(super) fn ratio(e: &Estimate, digits: usize) -> Markup {
    match (e.value, words::range(e)) {
        (None, words::Range::AtLeast(_)) => html! { span.ci { "none before" } },
        _ => est(e, digits, "×"),
    }
}

pub(super) fn pct(e: &Estimate) -> Markup {
    est(&e.clone().scaled(100.0), 2, "%")
}

/// A chart with its caption, which ends with what the chart's axes are.
fn figure(chart: Option<charts::Chart>, caption: &str) -> Markup {
    match chart {
        Some(chart) => html! {
            figure {
                (PreEscaped(chart.svg))
                figcaption { (caption) @if !chart.axis_note.is_empty() { " " (chart.axis_note) } }
            }
        },
        None => html! {},
    }
}

pub fn render(r: &Report) -> String {
    page(r, None)
}

/// The report as printed to PDF: the same page with a cover first.
pub fn render_for_print(r: &Report) -> String {
    page(r, Some(super::pdf::cover(r)))
}

fn page(r: &Report, cover: Option<Markup>) -> String {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "casewatch evidence report, " (human_period(r.window.from, r.window.to)) }
                style { (PreEscaped(STYLE)) (PreEscaped(super::pdf::PRINT_STYLE)) }
            }
            body {
                main {
                    @if let Some(cover) = cover { (cover) }
                    h1 { "Case system reliability: evidence report" }
                    p.meta {
                        "Site " (r.sites.join(", ")) " · " (human_period(r.window.from, r.window.to))
                        " (" (human_duration(r.window.hours * 3600.0)) ") · generated " (human_time(r.generated))
                        " from journal " code { (r.journal) }
                    }
                    section.summary {
                        h2 style="border:none;margin-top:0.4rem" { "Summary" }
                        ul { @for line in &r.summary { li { (line) } } }
                        p.note { "Figures in grey brackets are ranges: where the true value very probably lies, given how much was measured. The glossary at the end explains each term." }
                    }
                    (time_lost(r))
                    (availability(r))
                    (latency(r))
                    (freezes(r))
                    (logouts(r))
                    (survival(r))
                    (kept(r))
                    (reporting(r))
                    (changes(r))
                    (monthly(r))
                    (glossary(r))
                    h2 { "How the figures were calculated" }
                    ul { @for (what, method) in &r.methods { li { b { (what) } ": " (method) } } }
                    p.note {
                        "A synthetic social worker (casewatch) logs in, searches, opens a record, saves a note and runs reports on a timetable, "
                        "measuring every step. A run succeeds when every step completes correctly (slow but correct counts as available). "
                        "A freeze is a stretch during which the system answered nothing; a forced logout is the system ending a session the user did not end."
                    }
                }
            }
        }
    };
    page.into_string()
}

fn time_lost(r: &Report) -> Markup {
    let t = &r.time_lost;
    html! {
        h2 id="time-lost" { "Time lost per practitioner" }
        p { "What the measured freezes, forced logouts, failed work and slowness cost each practitioner in a working day, under the assumptions below." }
        p.verdict { (t.sentence) }
        table {
            tr { th { "cause" } th { "minutes per practitioner per working day" } }
            tr { td { "waiting on freezes" } td { (est(&t.frozen_minutes, 1, " min")) } }
            tr { td { "forced logouts (logging in again, work redone)" } td { (est(&t.logout_minutes, 1, " min")) } }
            tr { td { "failed work done again" } td { (est(&t.failed_minutes, 1, " min")) } }
            tr { td { "slowness beyond acceptable" } td { (est(&t.slow_minutes, 1, " min")) } }
            tr { td { b { "all causes" } } td { b { (est(&t.total_minutes, 1, " min")) } } }
            tr { td { "staff-hours lost per month at the site" } td { (est(&t.staff_hours_per_month, 0, " h")) } }
        }
        p.note { "Assumptions: " (crate::loss::assumptions(&t.assumptions)) "; "
                 (super::time_lost_words::logout_cost(t)) "."
                 @if t.units > 0 { " Measured over " (words::working_hours(t.working_hours_observed)) " on " (words::plural(t.units as u64, "independent day")) "." } }
    }
}

fn availability(r: &Report) -> Markup {
    let rows: Vec<(String, f64, f64, f64)> = r
        .availability
        .journeys
        .iter()
        .filter_map(|a| {
            let e = &a.availability;
            Some((
                format!("{} / {}", a.target.to_uppercase(), a.journey),
                e.value? * 100.0,
                e.low? * 100.0,
                e.high? * 100.0,
            ))
        })
        .collect();
    html! {
        h2 id="availability" { "1. Availability" }
        p { "The share of the synthetic worker's tasks that completed correctly." }
        table {
            tr { th { "site" } th { "system" } th { "task (journey)" } th { "kind" } th.num { "runs" } th.num { "succeeded" } th { "availability" } th { "failures by kind" } }
            @for a in r.availability.sites.iter().chain(&r.availability.journeys) {
                tr {
                    td { (a.site) }
                    td { @if a.target.is_empty() { b { "all" } } @else { (a.target.to_uppercase()) } }
                    td { @if a.journey.is_empty() { b { "all" } } @else { (a.journey) } }
                    td { (a.kind) }
                    td.num { (a.runs) }
                    td.num { (a.successes) }
                    td { (pct(&a.availability)) }
                    td { @for (o, n) in &a.failures { (o) ": " (n) " " } }
                }
            }
        }
        (figure(charts::availability_points(&rows),
            &format!("Figure 1. Availability of each task, with its 95% confidence interval (Wilson score). The dashed line is the {}% target: a task whose availability is below it is drawn in orange, any other in blue-grey.",
                charts::AVAILABILITY_TARGET_PERCENT)))
    }
}

fn latency(r: &Report) -> Markup {
    html! {
        h2 id="latency" { "2. How long each step takes" }
        p { "Response times per step. p50 is the typical time; p95 is the time 19 in 20 requests beat; p99 shows the slow tail. "
            "Percentiles are exact merges of per-minute HdrHistograms of completed steps. A step given up on never completed: "
            "it is counted apart as taking at least its give-up time, never as a response time." }
        table {
            tr { th { "system" } th { "task" } th { "step" } th.num { "completed" } th { "p50" } th { "p95" } th { "p99" } th.num { "slowest" } th.num { "given up" } }
            @for s in &r.latency.steps {
                tr {
                    td { (s.target.to_uppercase()) } td { (s.journey) } td { (s.step) } td.num { (s.count) }
                    td { (est(&s.p50_ms, 0, " ms")) } td { (est(&s.p95_ms, 0, " ms")) } td { (est(&s.p99_ms, 0, " ms")) }
                    td.num { (words::figure(s.max_ms, 0)) " ms" }
                    td.num { @if s.given_up > 0 { (s.given_up) " (≥ " (human_duration(s.given_up_after_seconds.unwrap_or(0.0))) ")" } @else { "0" } }
                }
            }
        }
        (figure(charts::latency_trend(&r.latency, &r.window, &change_marks(r)),
            &format!("Figure 2. p95 response time per step over time (each point merges {} of measurements); dashed lines mark the changes.", human_duration(r.latency.trend_bucket_seconds))))
    }
}

fn freezes(r: &Report) -> Markup {
    html! {
        h2 id="freezes" { "3. Freezes" }
        p { "A freeze is one continuous stretch during which a system answered nothing — what users mean by \"it froze\"." }
        @if r.agent_stalls.count > 0 {
            p.note { "The monitoring agent itself stalled " (words::times_count(r.agent_stalls.count)) ", " (human_duration(r.agent_stalls.total_seconds)) " in all (longest " (human_duration(r.agent_stalls.longest_seconds)) "): "
                (words::plural(r.agent_stalls.runs_left_out, "run")) " measured during those stalls " (if r.agent_stalls.runs_left_out == 1 { "is" } else { "are" }) " left out, and no stall is counted as a freeze of the system." }
        }
        @if r.freezes.targets.is_empty() {
            p { b { "No freeze was seen in this period." } }
        } @else {
            table {
                tr { th { "system" } th.num { "freezes" } th { "per hour" } th { "total time frozen" } th { "longest" } th.num { "still frozen when given up" } }
                @for f in &r.freezes.targets {
                    tr {
                        td { (f.target.to_uppercase()) } td.num { (f.count) } td { (est(&f.rate_per_hour, 2, "")) }
                        td { (human_duration(f.total_seconds)) } td { (human_duration(f.longest_seconds)) } td.num { (f.censored) }
                    }
                }
            }
            (figure(charts::freeze_timeline(&r.freezes, &r.window, &change_marks(r)),
                "Figure 3. When each system froze and for how long (each bar is one freeze); dashed lines mark the changes."))
            h3 { "Every freeze (" (r.freezes.episodes.len()) ")" }
            table {
                tr { th { "started (UTC)" } th { "system" } th { "length" } }
                @for e in &r.freezes.episodes {
                    tr { td { (human_moment(e.started)) } td { (e.target.to_uppercase()) }
                         td { @if e.censored { "at least " } (human_duration(e.length_seconds)) } }
                }
            }
        }
        (browser_freezes(r))
    }
}

/// Frozen browser steps by side, and links to failed steps' evidence.
fn browser_freezes(r: &Report) -> Markup {
    let f = &r.freezes;
    html! {
        @if !f.browser.is_empty() {
            h3 id="browser-freezes" { "Freezes seen in the browser, by side" }
            p { "A server freeze is the page waiting on the network; a client-side freeze is the page's own main thread blocked while the server kept answering." }
            table {
                tr { th { "system" } th { "browser journey" } th.num { "server" } th.num { "client-side" } th.num { "neither alone" } }
                @for b in &f.browser {
                    tr { td { (b.target.to_uppercase()) } td { (b.journey) } td.num { (b.server) } td.num { (b.client) } td.num { (b.mixed) } }
                }
            }
        }
        @if !f.browser_evidence.is_empty() {
            h3 id="browser-evidence" { "Evidence of failed browser steps" }
            p { "Screenshots (password fields cleared first) and console errors, kept in " code { (f.evidence_folder) } " for the configured retention." }
            table {
                tr { th { "when (UTC)" } th { "system" } th { "journey" } th { "step" } th { "outcome" } th { "evidence" } }
                @for e in &f.browser_evidence {
                    tr { td { (human_moment(e.at)) } td { (e.target.to_uppercase()) } td { (e.journey) } td { (e.step) } td { (e.outcome) }
                         td { a href=(format!("{}/{}", f.evidence_folder, e.png)) { "screenshot" } " · "
                              a href=(format!("{}/{}", f.evidence_folder, e.json)) { "console" } } }
                }
            }
        }
    }
}

fn logouts(r: &Report) -> Markup {
    let f = &r.forced_logouts;
    html! {
        h2 id="logouts" { "4. Forced logouts" }
        p { "Sessions ended by the system rather than by the user: "
            b { (words::plural(f.total, "forced logout")) } " in " (words::figure(f.session_hours, 1)) " hours logged in, "
            (est(&f.rate_per_session_hour, 2, " per hour logged in")) "." }
        @if !f.by_cause.is_empty() {
            table {
                tr { th { "system" } th { "how the system ended the session" } th.num { "count" } th { "share" } }
                @for c in &f.by_cause {
                    tr { td { (c.target.to_uppercase()) } td { (cause_text(&c.cause)) } td.num { (c.count) } td { (pct(&c.share)) } }
                }
            }
        }
        @if !f.events.is_empty() {
            (figure(charts::logout_timeline(f, &r.window, &change_marks(r)),
                "Figure 4. When each forced logout happened; dashed lines mark the changes. A session's loss is known only to within a bracket: after the last moment it was known alive, and no later than the moment the loss was seen."))
            p { "Every forced logout, seen when the answer that showed it arrived, with the session's age bracket: it was last known alive at the first age, and its loss was seen at the second." }
            table {
                tr { th { "seen" } th { "site" } th { "system" } th { "how" } th { "whose session" } th { "session age" } }
                @for e in &f.events {
                    tr { td { (human_moment(e.seen_at)) } td { (e.site) } td { (e.target.to_uppercase()) } td { (cause_text(&e.cause)) }
                         td { (e.holder) } td { (human_duration(e.alive_age_seconds)) " to " (human_duration(e.seen_age_seconds)) } }
                }
            }
        }
    }
}

fn kept(r: &Report) -> Markup {
    let k = &r.kept_sessions;
    html! {
        h2 id="kept" { "Kept sessions" }
        p { "Sessions the agent keeps logged in, as staff who never log out would, checking them every few minutes. "
            "They measure how long sessions survive; their checks are not tasks and count in none of the availability figures." }
        @if k.targets.is_empty() {
            p { "No sessions were kept in this period." }
        } @else {
            table {
                tr { th { "site" } th { "system" } th.num { "checks" } th { "checks by outcome" } th.num { "state unknown after" } th.num { "logins (failed)" } th { "lives ended" } }
                @for t in &k.targets {
                    tr { td { (t.site) } td { (t.target.to_uppercase()) } td.num { (t.checks) }
                         td { @for (o, n) in &t.check_outcomes { (o) ": " (n) " " } }
                         td.num { (t.unknown_checks) }
                         td.num { (t.logins) " (" (t.failed_logins) ")" }
                         td { @for (e, n) in &t.lives_ended { (cause_text(e)) ": " (n) "; " } } }
                }
            }
        }
    }
}

fn cause_text(cause: &str) -> String {
    match cause {
        "redirect" => "sent back to the login page".into(),
        "status" => "refused with an error status (401/403/440)".into(),
        "expired_page" => "showed a \"session expired\" page".into(),
        "cookie_cleared" => "cleared the session cookie".into(),
        "login_page" => "answered with its login page".into(),
        "lost" => "lost (failed twice with no sign of logout)".into(),
        "max_age" => "reached its maximum age".into(),
        "agent_stop" => "still alive when the agent stopped".into(),
        "logged_out_by_agent" => "logged out by the agent".into(),
        other => other.into(),
    }
}

/// Figure 5's caption: the band only where enough days stand behind it.
fn survival_caption(s: &super::model::Sessions) -> String {
    let band = if s.units as usize >= super::evidence::MIN_UNITS {
        ", its range shaded"
    } else {
        "; no range yet: too few independent days"
    };
    format!(
        "Figure 5. Share of sessions still logged in by age (Kaplan–Meier estimate{band}). The red line marks {}.",
        s.rule.age_text
    )
}

fn glossary(r: &Report) -> Markup {
    html! {
        h2 id="glossary" { "Glossary" }
        dl {
            @for (term, meaning) in words::glossary(r.evidence.calendar_scale) {
                dt { b { (term) } } dd { (meaning) }
            }
        }
    }
}

fn survival(r: &Report) -> Markup {
    let s = &r.sessions;
    html! {
        h2 id="sessions" { "5. Do older sessions drop more often?" }
        p.verdict { (s.rule.sentence) }
        p { (words::plural(s.sessions, "session")) " observed: " (s.dropped) " forced out, " (s.censored)
            " ended normally or still running. Median survival: "
            (s.median_survival_seconds.map_or("not reached (more than half the sessions were never forced out)".into(), human_duration)) "." }
        (figure(charts::survival_curve(s),
            &survival_caption(s)))
        table {
            tr { th { "session age" } th.num { "hours logged in" } th.num { "forced logouts" } th { "forced logouts per hour logged in" } }
            @for b in &s.bands {
                tr { td { (b.age_text) } td.num { (words::figure(b.exposure_hours, 2)) } td.num { (b.drops) } td { (est(&b.hazard_per_hour, 2, "")) } }
            }
            tr { td { b { "younger than " (s.rule.age_text) } } td {} td {} td { (est(&s.rule.younger, 2, "")) } }
            tr { td { b { (s.rule.age_text) " and older" } } td {} td {} td { (est(&s.rule.older, 2, "")) } }
            tr { td { b { "older against younger" } } td {} td {} td { (super::sessions::hazard_ratio_text(&s.rule)) } }
        }
        (figure(charts::hazard_bars(s),
            "Figure 6. Risk of a forced logout per hour logged in, by session age; black whiskers are ranges."))
    }
}

fn reporting(r: &Report) -> Markup {
    let l = &r.reporting_load;
    let bars: Vec<(String, f64, f64, f64)> = l
        .report_runs
        .iter()
        .filter_map(|rr| {
            let e = &rr.median_seconds;
            Some((
                format!("{} on {}", rr.journey, rr.target.to_uppercase()),
                e.value?,
                e.low?,
                e.high?,
            ))
        })
        .collect();
    html! {
        h2 id="reporting" { "6. Reporting load" }
        p { "Management reports: how long they take on each system, and whether interactive work slows down while a report runs. "
            "Every table says which system ran the reports. How the interactive system fared before and after the change in where reports run is in section 7, system by system." }
        @if l.report_runs.is_empty() { p { "No report runs in this period." } } @else {
            table {
                tr { th { "report runs on" } th { "report" } th.num { "runs" } th.num { "succeeded" } th { "median time" } th { "p95 time" } }
                @for rr in &l.report_runs {
                    tr { td { (rr.target.to_uppercase()) } td { (rr.journey) @if !rr.step.is_empty() { " / step " (rr.step) } } td.num { (rr.runs) } td.num { (rr.successes) }
                         td { (est(&rr.median_seconds, 2, " s")) } td { (est(&rr.p95_seconds, 2, " s")) } }
                }
            }
            (figure(charts::estimate_bars("median report run time (s), with 95% interval", &bars),
                "Figure 7. Typical report run time on each system."))
        }
        table {
            tr { th { "interactive system" } th { "reports running on" } th.num { "steps, no report running" } th { "p95, no report" } th.num { "steps, report running" } th { "p95, report running" } th { "difference" } }
            @for c in &l.interactive {
                tr { td { (c.target.to_uppercase()) }
                     td { (c.reports_on) }
                     td.num { (c.without_reports.steps) } td { (est(&c.without_reports.p95_ms, 0, " ms")) }
                     td.num { (c.with_reports.steps) } td { (est(&c.with_reports.p95_ms, 0, " ms")) }
                     td { (est(&c.p95_difference_ms, 0, " ms")) } }
            }
        }
    }
}

fn changes(r: &Report) -> Markup {
    html! {
        h2 id="changes" { "7. Before and after each change" }
        p { "For each dated change, equal periods of up to eight weeks just before and just after are compared like with like: "
            "hours are matched by hour of the day (weekdays and weekends apart), so a busy morning is never set against a quiet night, and whole days are the independent units. "
            "A direction is stated only when the interval excludes no difference, each side holds at least "
            (r.evidence.min_units) " independent days, and a change in freezes or forced logouts rests on at least " (r.evidence.min_events) " of them; otherwise the report says there is not enough evidence yet." }
        @if r.changes.is_empty() { p { "No change events are recorded in the configuration." } }
        @for c in &r.changes {
            h3 { (c.name) " — " (human_time(c.at)) }
            @if !c.description.is_empty() { p { (c.description) } }
            @if c.status != "compared" { p.note { "Cannot compare yet: " (c.note) "." } }
            @if let Some(e) = &c.evidence {
                ul.verdict {
                    @if let Some(t) = &c.time_lost { li { (t.sentence) } }
                    @for f in &c.findings { li { (f) } }
                }
                p.note { "Periods: " (human_period(c.at - c.window_seconds, c.at)) ", and " (human_period(c.at, c.at + c.window_seconds)) "; " (c.note) "." }
                table {
                    tr { th { "system" } th { "measure" } th { "before" } th { "after" } th { "change" } }
                    @if let Some(t) = &c.time_lost {
                        tr { td { "all" } td { "minutes lost per practitioner per working day" }
                             td { (est(&t.before, 1, " min")) } td { (est(&t.after, 1, " min")) } td { (est(&t.change, 1, " min")) } }
                    }
                    (change_rows("all", e))
                    @for t in &c.targets { (change_rows(&t.target.to_uppercase(), &t.evidence)) }
                }
                p.note { "p95 change is after − before; rate changes are after ÷ before (1 means no change). "
                         (e.given_up_before) " and " (e.given_up_after) " interactive steps were given up on before and after; they are not in the percentiles." }
            }
        }
    }
}

fn change_rows(system: &str, e: &super::compare::ChangeEvidence) -> Markup {
    html! {
        tr { td { (system) } td { "p95 interactive response time" }
             td { (est(&e.p95_ms.before, 0, " ms")) } td { (est(&e.p95_ms.after, 0, " ms")) } td { (est(&e.p95_ms.change, 0, " ms")) } }
        tr { td { (system) } td { "freezes per hour" }
             td { (est(&e.freeze_rate.before, 2, "")) } td { (est(&e.freeze_rate.after, 2, "")) } td { (ratio(&e.freeze_rate.change, 2)) } }
        tr { td { (system) } td { "forced logouts per hour logged in" }
             td { (est(&e.logout_rate.before, 2, "")) } td { (est(&e.logout_rate.after, 2, "")) } td { (ratio(&e.logout_rate.change, 2)) } }
        tr { td { (system) } td { "availability" }
             td { (pct(&e.availability.before)) } td { (pct(&e.availability.after)) } td { (est(&e.availability.change.clone().scaled(100.0), 2, " points")) } }
    }
}

fn monthly(r: &Report) -> Markup {
    html! {
        @if !r.monthly.is_empty() {
            h2 id="monthly" { "8. Month by month" }
            p { "Each month's figures with their 95% intervals, so a year's trend reads at a glance." }
            (figure(charts::monthly_trend(&r.monthly, &change_marks(r)),
                "Figure 8. Availability and p95 interactive response time per calendar month; whiskers are 95% intervals (a hollow point has too little evidence for one yet), dashed lines mark the changes."))
            table {
                tr { th { "month" } th.num { "runs" } th { "availability" } th { "p95 interactive" } th { "freezes per day" } th { "forced logouts per hour logged in" } }
                @for m in &r.monthly {
                    tr { td { (m.month) } td.num { (m.runs) } td { (pct(&m.availability)) } td { (est(&m.p95_ms, 0, " ms")) }
                         td { (est(&m.freezes_per_day, 2, "")) } td { (est(&m.logouts_per_session_hour, 2, "")) } }
                }
            }
        }
    }
}

/// The configured changes, for the dashed lines on every chart over time.
fn change_marks(r: &Report) -> Vec<charts::ChangeMark> {
    r.changes
        .iter()
        .map(|c| charts::ChangeMark {
            at: c.at,
            name: c.name.clone(),
        })
        .collect()
}
