//! The fleet report in words and tables: its summary, Markdown and HTML.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{FleetReport, MEASURES};
use crate::report::compare::Measure;
use crate::report::evidence::Direction;
use crate::report::markdown::table;
use crate::report::stats::Estimate;
use crate::report::words::{show, show_percent};

pub fn summary(r: &FleetReport) -> Vec<String> {
    use crate::report::words::{show, show_percent};
    use crate::timefmt::human_duration;
    let mut out = Vec::new();
    let names: BTreeSet<&str> = r.sites.iter().map(|s| s.site.as_str()).collect();
    if !r.window.has_data {
        out.push(
            "The journals hold no runs in this period: there is nothing to report yet.".into(),
        );
        return out;
    }
    out.push(format!(
        "This report covers {} sites ({}) over {} of monitoring, from {} to {}.",
        names.len(),
        names.iter().copied().collect::<Vec<_>>().join(", "),
        human_duration(r.window.hours * 3600.0),
        r.window.from_text,
        r.window.to_text
    ));
    let p = &r.pooled;
    out.push(format!(
        "Across the fleet the synthetic social worker's tasks succeeded in {} of {} runs: availability {}.",
        p.successes,
        p.runs,
        show_percent(&p.availability)
    ));
    out.push(format!(
        "Interactive steps' p95 across the fleet: {}; freeze episodes per site-day: {}; forced logouts per session-hour: {}.",
        show(&p.p95_ms, 0, " ms"),
        show(&p.freezes_per_day, 2, ""),
        show(&p.logouts_per_session_hour, 4, "")
    ));
    if r.comparisons.is_empty() {
        return out;
    }
    for c in r.comparisons.iter().filter(|c| !c.worse_on.is_empty()) {
        out.push(c.verdict.clone());
    }
    let short: Vec<&str> = r
        .comparisons
        .iter()
        .filter(|c| c.worse_on.is_empty() && !c.availability.judgement.enough_units)
        .map(|c| c.site.as_str())
        .collect();
    if r.worse.is_empty() && short.is_empty() {
        out.push("No office is shown to be worse than the rest of the fleet on availability, p95 latency, freezes or forced logouts.".into());
    } else if r.worse.is_empty() {
        out.push(format!(
            "No office is shown to be worse than the rest of the fleet; for {} there is not enough evidence yet.",
            short.join(", ")
        ));
    }
    out
}

/// Renders the fleet report.
pub fn render(r: &FleetReport, format: crate::report::Format) -> String {
    match format {
        crate::report::Format::Md => markdown(r),
        crate::report::Format::Html | crate::report::Format::Pdf => html(r),
        crate::report::Format::Json => {
            let mut text = serde_json::to_string_pretty(r)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            text.push('\n');
            text
        }
    }
}

fn ratio_text(e: &Estimate) -> String {
    match (e.value, e.low, e.high) {
        (Some(v), Some(l), Some(h)) => format!("x{v:.2} ({l:.2} to {h:.2})"),
        (Some(v), Some(l), None) => format!("x{v:.2} ({l:.2} and up)"),
        (None, Some(l), None) => format!("at least x{l:.2} (none in the rest)"),
        _ => "no data".into(),
    }
}

/// "v (l to h)" without a level: the comparisons' intervals are at the
/// adjusted level the section states.
fn plain(e: &Estimate, digits: usize, unit: &str) -> String {
    match (e.value, e.low, e.high) {
        (Some(v), Some(l), Some(h)) => format!("{v:.digits$}{unit} ({l:.digits$} to {h:.digits$})"),
        (Some(v), _, _) => format!("{v:.digits$}{unit}"),
        _ => "no data".into(),
    }
}

fn points(e: &Estimate) -> String {
    plain(&e.clone().scaled(100.0), 2, " pts")
}

fn judgement_text(m: &Measure) -> &'static str {
    let j = &m.judgement;
    match j.direction {
        Some(Direction::Higher) => "higher",
        Some(Direction::Lower) => "lower",
        None if !j.enough_units => "not enough evidence",
        None => "no difference shown",
    }
}

/// The fleet's Markdown tables align every column left.
fn left<'a>(names: &[&'a str]) -> Vec<(&'a str, bool)> {
    names.iter().map(|&n| (n, false)).collect()
}

/// The fleet report as Markdown: one short function per section, as the
/// single-site report's.
fn markdown(r: &FleetReport) -> String {
    let mut out = String::new();
    for section in [
        md_summary,
        md_sites,
        md_journeys,
        md_comparisons,
        md_sources,
    ] {
        section(&mut out, r);
    }
    out
}

/// The title, the window and the summary lines.
fn md_summary(w: &mut String, r: &FleetReport) {
    let _ = writeln!(w, "# casewatch fleet evidence report\n");
    let _ = writeln!(
        w,
        "{} journals, {} sites, {} to {}, generated {}.\n",
        r.journals.len(),
        r.sites.len(),
        r.window.from_text,
        r.window.to_text,
        r.generated_at
    );
    let _ = writeln!(w, "## Summary\n");
    for line in &r.summary {
        let _ = writeln!(w, "- {line}");
    }
}

/// Each site and the fleet pooled.
fn md_sites(w: &mut String, r: &FleetReport) {
    let _ = writeln!(w, "\n## Sites\n");
    let header = [
        "site",
        "journals",
        "runs",
        "availability (95% CI)",
        "interactive p95 (95% CI)",
        "given up",
        "freezes",
        "freezes per day (95% CI)",
        "forced logouts",
        "per session-hour (95% CI)",
    ];
    let sites = r.sites.iter().chain(std::iter::once(&r.pooled)).map(|s| {
        let name = if s.site == "fleet" && std::ptr::eq(s, &r.pooled) {
            "**fleet (pooled)**".to_string()
        } else {
            s.site.clone()
        };
        vec![
            name,
            s.journals.to_string(),
            s.runs.to_string(),
            show_percent(&s.availability),
            show(&s.p95_ms, 0, " ms"),
            s.given_up.to_string(),
            s.freezes.to_string(),
            show(&s.freezes_per_day, 2, ""),
            s.forced_logouts.to_string(),
            show(&s.logouts_per_session_hour, 4, ""),
        ]
    });
    table(w, &left(&header), sites);
}

/// Each site's journeys.
fn md_journeys(w: &mut String, r: &FleetReport) {
    let _ = writeln!(w, "\n## Journeys by site\n");
    let header = [
        "site",
        "target",
        "journey",
        "kind",
        "runs",
        "availability (95% CI)",
    ];
    let journeys = r.journeys.iter().map(|j| {
        vec![
            j.site.clone(),
            j.target.clone(),
            j.journey.clone(),
            j.kind.clone(),
            j.runs.to_string(),
            show_percent(&j.availability),
        ]
    });
    table(w, &left(&header), journeys);
}

/// Each site against the rest, when there is more than one.
fn md_comparisons(w: &mut String, r: &FleetReport) {
    if !r.comparisons.is_empty() {
        let _ = writeln!(w, "\n## Is one office worse?\n");
        let _ = writeln!(
            w,
            "Each site against the rest of the fleet pooled. Intervals of the differences and ratios are at the {:.3}% level (95% adjusted for {} comparisons at once); a site is called worse only when the interval excludes no difference and each side has at least {} independent days (units of {}); the rest leaves out the site and any site a first pass showed worse.\n",
            r.comparison_level * 100.0,
            r.sites.len() * MEASURES,
            r.min_units,
            crate::report::words::plural(u64::from(r.unit_days), "day")
        );
        let header = [
            "site",
            "availability, site − rest",
            "p95, site − rest",
            "freezes, site / rest",
            "forced logouts, site / rest",
            "verdict",
        ];
        let comparisons = r.comparisons.iter().map(|c| {
            vec![
                c.site.clone(),
                format!(
                    "{} ({})",
                    points(&c.availability.change),
                    judgement_text(&c.availability)
                ),
                format!(
                    "{} ({})",
                    plain(&c.p95_ms.change, 0, " ms"),
                    judgement_text(&c.p95_ms)
                ),
                format!(
                    "{} ({})",
                    ratio_text(&c.freeze_rate.change),
                    judgement_text(&c.freeze_rate)
                ),
                format!(
                    "{} ({})",
                    ratio_text(&c.logout_rate.change),
                    judgement_text(&c.logout_rate)
                ),
                c.verdict.clone(),
            ]
        });
        table(w, &left(&header), comparisons);
    }
}

/// The journals read and the methods.
fn md_sources(w: &mut String, r: &FleetReport) {
    let _ = writeln!(w, "\n## Journals\n");
    for j in &r.journals {
        let _ = writeln!(w, "- `{}`: {}", j.path, j.site);
    }
    let _ = writeln!(w, "\n## Methods\n");
    for (k, v) in &r.methods {
        let _ = writeln!(w, "- **{k}**: {v}");
    }
}

fn html(r: &FleetReport) -> String {
    use crate::report::html::{est, pct, STYLE};
    use maud::{html, PreEscaped, DOCTYPE};
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "casewatch fleet evidence report" }
                style { (PreEscaped(STYLE)) }
            }
            body { main {
                h1 { "casewatch fleet evidence report" }
                p.meta { (format!("{} journals, {} sites, {} to {}, generated {}.", r.journals.len(), r.sites.len(), r.window.from_text, r.window.to_text, r.generated_at)) }
                ul.summary { @for line in &r.summary { li { (line) } } }
                h2 { "Sites" }
                table {
                    tr { th { "site" } th { "journals" } th { "runs" } th { "availability" } th { "interactive p95" } th { "given up" } th { "freezes" } th { "freezes per day" } th { "forced logouts" } th { "per session-hour" } }
                    @for (s, pooled) in r.sites.iter().map(|s| (s, false)).chain(std::iter::once((&r.pooled, true))) {
                        tr {
                            td { @if pooled { strong { "fleet (pooled)" } } @else { (s.site) } }
                            td.num { (s.journals) }
                            td.num { (s.runs) }
                            td.num { (pct(&s.availability)) }
                            td.num { (est(&s.p95_ms, 0, " ms")) }
                            td.num { (s.given_up) }
                            td.num { (s.freezes) }
                            td.num { (est(&s.freezes_per_day, 2, "")) }
                            td.num { (s.forced_logouts) }
                            td.num { (est(&s.logouts_per_session_hour, 4, "")) }
                        }
                    }
                }
                p.note { "Figures with their 95% intervals. In pooled figures a block of time is one cluster across all sites." }
                h2 { "Journeys by site" }
                table {
                    tr { th { "site" } th { "target" } th { "journey" } th { "kind" } th { "runs" } th { "availability" } }
                    @for j in &r.journeys {
                        tr { td { (j.site) } td { (j.target) } td { (j.journey) } td { (j.kind) } td.num { (j.runs) } td.num { (pct(&j.availability)) } }
                    }
                }
                @if !r.comparisons.is_empty() {
                    h2 { "Is one office worse?" }
                    p { (format!("Each site against the rest of the fleet pooled. Intervals of the differences and ratios are at the {:.3}% level (95% adjusted for {} comparisons at once); a site is called worse only when the interval excludes no difference and each side has at least {} independent days; the rest leaves out the site and any site a first pass showed worse.", r.comparison_level * 100.0, r.sites.len() * MEASURES, r.min_units)) }
                    table {
                        tr { th { "site" } th { "availability, site − rest" } th { "p95, site − rest" } th { "freezes, site / rest" } th { "forced logouts, site / rest" } th { "verdict" } }
                        @for c in &r.comparisons {
                            tr {
                                td { (c.site) }
                                td { (points(&c.availability.change)) br; span.ci { (judgement_text(&c.availability)) } }
                                td { (plain(&c.p95_ms.change, 0, " ms")) br; span.ci { (judgement_text(&c.p95_ms)) } }
                                td { (ratio_text(&c.freeze_rate.change)) br; span.ci { (judgement_text(&c.freeze_rate)) } }
                                td { (ratio_text(&c.logout_rate.change)) br; span.ci { (judgement_text(&c.logout_rate)) } }
                                td { @if c.worse_on.is_empty() { (c.verdict) } @else { strong { (c.verdict) } } }
                            }
                        }
                    }
                }
                h2 { "Journals" }
                ul { @for j in &r.journals { li { code { (j.path) } ": " (j.site) } } }
                h2 { "Methods" }
                ul { @for (k, v) in &r.methods { li { strong { (k) } ": " (v) } } }
            } }
        }
    };
    markup.into_string()
}
