//! The status board behind the HTML page at `/`: per journey, the last
//! outcome, the last run and recent failures.
//!
//! Failures are kept longer than successes (blackbox_exporter's habit): the
//! board remembers the last [`FAILURES_KEPT`] failures of each journey however
//! many successes came after them.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use maud::{html, Markup, DOCTYPE};

use crate::outcome::{Outcome, Record, RunRecord};

pub const FAILURES_KEPT: usize = 20;

#[derive(Clone, Debug)]
pub struct Failure {
    pub at: SystemTime,
    pub step: String,
    pub outcome: Outcome,
    pub detail: String,
}

#[derive(Clone, Debug, Default)]
pub struct JourneyStatus {
    pub target: String,
    pub last_outcome: Option<Outcome>,
    pub last_run_end: Option<SystemTime>,
    pub last_duration: Option<Duration>,
    pub runs: BTreeMap<Outcome, u64>,
    pub missed_slots: u64,
    pub recent_failures: VecDeque<Failure>,
}

#[derive(Debug, Default)]
pub struct StatusBoard {
    pub site: String,
    pub journeys: BTreeMap<String, JourneyStatus>,
}

impl StatusBoard {
    pub fn new(site: &str, journeys: impl IntoIterator<Item = (String, String)>) -> StatusBoard {
        StatusBoard {
            site: site.to_string(),
            journeys: journeys
                .into_iter()
                .map(|(journey, target)| {
                    (
                        journey,
                        JourneyStatus {
                            target,
                            ..Default::default()
                        },
                    )
                })
                .collect(),
        }
    }

    pub fn observe(&mut self, record: &Record) {
        match record {
            Record::Run(run) => self.observe_run(run),
            Record::MissedSlots { journey, count, .. } => {
                self.journeys
                    .entry(journey.clone())
                    .or_default()
                    .missed_slots += count;
            }
        }
    }

    fn observe_run(&mut self, run: &RunRecord) {
        let status = self.journeys.entry(run.journey.clone()).or_default();
        status.target = run.target.clone();
        status.last_outcome = Some(run.outcome);
        status.last_run_end = Some(run.intended_start + run.duration);
        status.last_duration = Some(run.duration);
        *status.runs.entry(run.outcome).or_default() += 1;
        if let Some(step) = run.steps.iter().find(|s| !s.outcome.is_success()) {
            if status.recent_failures.len() == FAILURES_KEPT {
                status.recent_failures.pop_back();
            }
            status.recent_failures.push_front(Failure {
                at: step.sent_at,
                step: step.step.clone(),
                outcome: step.outcome,
                detail: step.detail.clone(),
            });
        }
    }

    pub fn total_runs(&self) -> u64 {
        self.journeys.values().flat_map(|j| j.runs.values()).sum()
    }

    pub fn render_html(&self) -> Markup {
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta http-equiv="refresh" content="10";
                    title { "casewatch — " (self.site) }
                    style { (STYLE) }
                }
                body {
                    h1 { "casewatch" }
                    p { "Site " strong { (self.site) } ". " a href="/metrics" { "Metrics" } ". This page refreshes every 10 seconds." }
                    table {
                        thead { tr { th { "Journey" } th { "Target" } th { "Last outcome" } th { "Last run ended" } th { "Duration" } th { "Runs" } th { "Missed slots" } } }
                        tbody {
                            @for (name, j) in &self.journeys {
                                tr {
                                    td { (name) }
                                    td { (j.target) }
                                    td class=(outcome_class(j.last_outcome)) { (j.last_outcome.map(|o| o.as_str()).unwrap_or("not run yet")) }
                                    td { (j.last_run_end.map(format_time).unwrap_or_default()) }
                                    td { (j.last_duration.map(|d| format!("{:.2} s", d.as_secs_f64())).unwrap_or_default()) }
                                    td { (format_runs(&j.runs)) }
                                    td { (j.missed_slots) }
                                }
                            }
                        }
                    }
                    h2 { "Recent failures" }
                    @for (name, j) in &self.journeys {
                        @if !j.recent_failures.is_empty() {
                            h3 { (name) }
                            table {
                                thead { tr { th { "When" } th { "Step" } th { "Outcome" } th { "Detail" } } }
                                tbody {
                                    @for f in &j.recent_failures {
                                        tr { td { (format_time(f.at)) } td { (f.step) } td class=(outcome_class(Some(f.outcome))) { (f.outcome.as_str()) } td { (f.detail) } }
                                    }
                                }
                            }
                        }
                    }
                    @if self.journeys.values().all(|j| j.recent_failures.is_empty()) {
                        p { "None." }
                    }
                }
            }
        }
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.good{background:#e6f4ea}.warn{background:#fff4e5}.bad{background:#fde7e9}";

fn outcome_class(outcome: Option<Outcome>) -> &'static str {
    match outcome {
        Some(Outcome::Ok) => "good",
        Some(Outcome::Slow) => "warn",
        Some(_) => "bad",
        None => "",
    }
}

fn format_runs(runs: &BTreeMap<Outcome, u64>) -> String {
    runs.iter()
        .map(|(o, n)| format!("{o}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn format_time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}
