//! The status board behind the HTML page at `/`: per journey, the last
//! outcome, the last run and recent failures.
//!
//! Failures are kept longer than successes (blackbox_exporter's habit): the
//! board remembers the last [`FAILURES_KEPT`] failures of each journey however
//! many successes came after them.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use maud::{html, Markup, DOCTYPE};

use crate::detect::{kaplan_meier, survival_at, AgeBands, Lifetime};
use crate::outcome::{LogoutCause, Outcome, RunRecord, StepRecord};

/// Session lifetimes kept for the survival estimate on the page.
const LIFETIMES_KEPT: usize = 10_000;

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

#[derive(Clone, Debug)]
pub struct FreezeEpisode {
    pub target: String,
    pub started: SystemTime,
    pub length: Duration,
    pub censored: bool,
}

#[derive(Clone, Debug)]
pub struct ForcedLogout {
    pub at: SystemTime,
    pub target: String,
    pub journey: String,
    pub step: String,
    pub cause: LogoutCause,
    pub session_age: Duration,
}

#[derive(Debug, Default)]
pub struct StatusBoard {
    pub site: String,
    pub journeys: BTreeMap<String, JourneyStatus>,
    /// Targets frozen now, with when the episode began.
    pub frozen_now: BTreeMap<String, SystemTime>,
    pub freezes: VecDeque<FreezeEpisode>,
    pub forced_logouts: VecDeque<ForcedLogout>,
    /// Ended session lifetimes (dropped or censored), newest last.
    pub lifetimes: VecDeque<Lifetime>,
    pub age_bands: AgeBands,
}

fn push_bounded<T>(list: &mut VecDeque<T>, item: T, limit: usize) {
    if list.len() == limit {
        list.pop_front();
    }
    list.push_back(item);
}

impl StatusBoard {
    pub fn new(
        site: &str,
        age_bands: AgeBands,
        journeys: impl IntoIterator<Item = (String, String)>,
    ) -> StatusBoard {
        StatusBoard {
            site: site.to_string(),
            age_bands,
            frozen_now: BTreeMap::new(),
            freezes: VecDeque::new(),
            forced_logouts: VecDeque::new(),
            lifetimes: VecDeque::new(),
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

    /// Adds journeys a reloaded config introduced; known ones keep their history.
    pub fn add_journeys(&mut self, journeys: impl IntoIterator<Item = (String, String)>) {
        for (journey, target) in journeys {
            self.journeys.entry(journey).or_default().target = target;
        }
    }

    pub fn missed_slots(&mut self, journey: &str, count: u64) {
        self.journeys
            .entry(journey.to_string())
            .or_default()
            .missed_slots += count;
    }

    pub fn freeze_started(&mut self, target: &str, at: SystemTime) {
        self.frozen_now.insert(target.to_string(), at);
    }

    pub fn freeze_ended(&mut self, episode: FreezeEpisode) {
        self.frozen_now.remove(&episode.target);
        push_bounded(&mut self.freezes, episode, FAILURES_KEPT);
    }

    pub fn forced_logout(&mut self, step: &StepRecord, cause: LogoutCause, age: Duration) {
        let logout = ForcedLogout {
            at: step.sent_at + step.duration,
            target: step.target.clone(),
            journey: step.journey.clone(),
            step: step.step.clone(),
            cause,
            session_age: age,
        };
        push_bounded(&mut self.forced_logouts, logout, FAILURES_KEPT);
    }

    pub fn observe_run(&mut self, run: &RunRecord) {
        for span in &run.sessions {
            if let Some(end) = span.end {
                let lifetime = Lifetime {
                    age: span.age_to,
                    dropped: end.is_drop(),
                };
                push_bounded(&mut self.lifetimes, lifetime, LIFETIMES_KEPT);
            }
        }
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
                    h2 { "Freezes" }
                    @if self.frozen_now.is_empty() {
                        p { "No target is frozen now." }
                    } @else {
                        @for (target, since) in &self.frozen_now {
                            p class="bad" { strong { (target) } " has not answered since " (format_time(*since)) "." }
                        }
                    }
                    @if !self.freezes.is_empty() {
                        table {
                            thead { tr { th { "Target" } th { "Began" } th { "Length" } } }
                            tbody {
                                @for f in self.freezes.iter().rev() {
                                    tr { td { (f.target) } td { (format_time(f.started)) } td { (format!("{:.1} s{}", f.length.as_secs_f64(), if f.censored { " or more" } else { "" })) } }
                                }
                            }
                        }
                    }
                    h2 { "Forced logouts" }
                    @if self.forced_logouts.is_empty() {
                        p { "None." }
                    } @else {
                        table {
                            thead { tr { th { "When" } th { "Target" } th { "Journey" } th { "Step" } th { "Cause" } th { "Session age" } } }
                            tbody {
                                @for l in self.forced_logouts.iter().rev() {
                                    tr { td { (format_time(l.at)) } td { (l.target) } td { (l.journey) } td { (l.step) } td { (l.cause.as_str()) } td { (format_age(l.session_age)) } }
                                }
                            }
                        }
                    }
                    (self.survival_table())
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

impl StatusBoard {
    /// Kaplan–Meier survival at each band edge, from ended session lives.
    fn survival_table(&self) -> Markup {
        let lifetimes: Vec<Lifetime> = self.lifetimes.iter().copied().collect();
        let drops = lifetimes.iter().filter(|l| l.dropped).count();
        let curve = kaplan_meier(&lifetimes);
        html! {
            h2 { "Session survival" }
            p { (lifetimes.len()) " session lives ended, " (drops) " of them by a forced logout; the rest are censored (logged out by the agent, at maximum age, or at stop)." }
            @if !lifetimes.is_empty() {
                table {
                    thead { tr { th { "Still logged in at age" } th { "Share (Kaplan–Meier)" } } }
                    tbody {
                        @for edge in self.age_bands.edges() {
                            tr { td { (format_age(*edge)) } td { (format!("{:.1} %", survival_at(&curve, *edge) * 100.0)) } }
                        }
                    }
                }
            }
        }
    }
}

fn format_age(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 {
        format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60)
    } else if secs >= 60 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
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
