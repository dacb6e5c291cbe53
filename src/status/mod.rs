//! The status board behind the HTML page at `/`: per journey, the last
//! outcome, the last run and recent failures; per kept session, what is
//! known of it; freezes and forced logouts as they happen; the agent's own
//! stalls, and the runs they kept from being counted against a target;
//! the configured changes, and a warning when the journal loses records.
//! History bars are in [`history`], session survival in `survival`.
//!
//! Failures are kept longer than successes (blackbox_exporter's habit): the
//! board remembers the last [`FAILURES_KEPT`] failures of each journey however
//! many successes came after them.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use maud::{html, Markup, DOCTYPE};

pub mod history;
mod survival;

use history::HistoryView;

use crate::detect::AgeBands;
use crate::outcome::{
    FreezeEpisode, KeptActivity, KeptRecord, KeptState, LogoutCause, Outcome, RunRecord,
    SessionEnd, SessionOrigin, SessionSpan,
};

pub const FAILURES_KEPT: usize = 20;

#[derive(Clone, Debug)]
pub struct Failure {
    pub at: SystemTime,
    pub step: String,
    pub outcome: Outcome,
    pub detail: String,
    /// A failed browser step's evidence (served at `/evidence/NAME.png`
    /// and `.json`).
    pub evidence: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct JourneyStatus {
    pub target: String,
    pub last_outcome: Option<Outcome>,
    pub last_run_end: Option<SystemTime>,
    pub last_duration: Option<Duration>,
    pub runs: BTreeMap<Outcome, u64>,
    /// Runs that overlapped a stall of the agent itself: in no other count.
    pub stalled_runs: u64,
    /// The last run overlapped a stall of the agent itself.
    pub last_stalled: bool,
    pub missed_slots: u64,
    pub recent_failures: VecDeque<Failure>,
}

/// A forced logout among the latest the status page lists.
#[derive(Clone, Debug)]
pub struct RecentForcedLogout {
    /// When the loss was seen.
    pub at: SystemTime,
    pub target: String,
    pub origin: SessionOrigin,
    pub cause: LogoutCause,
    /// The last age the session was known alive, and the age its loss was seen.
    pub bracket: (Duration, Duration),
}

/// One of a target's kept sessions, by slot.
#[derive(Clone, Debug, Default)]
pub struct KeptStatus {
    /// What is known of the session now; `None` before its first login.
    pub state: Option<KeptState>,
    /// When its current session logged in.
    pub login_at: Option<SystemTime>,
    pub last_check: Option<SystemTime>,
    pub last_outcome: Option<Outcome>,
    pub checks: BTreeMap<Outcome, u64>,
    /// Ended lives, by how they ended.
    pub ended: BTreeMap<&'static str, u64>,
    pub recent_failures: VecDeque<Failure>,
}

#[derive(Debug, Default)]
pub struct StatusBoard {
    pub site: String,
    pub journeys: BTreeMap<String, JourneyStatus>,
    /// Kept sessions by (target, slot).
    pub kept: BTreeMap<(String, usize), KeptStatus>,
    /// Targets frozen now, with when the episode began.
    pub frozen_now: BTreeMap<String, SystemTime>,
    pub freezes: VecDeque<FreezeEpisode>,
    pub forced_logouts: VecDeque<RecentForcedLogout>,
    /// Every forced logout since start, by (target, cause).
    pub forced_by_cause: BTreeMap<(String, LogoutCause), u64>,
    /// Session lives, for survival by age.
    pub lives: survival::Lives,
    pub age_bands: AgeBands,
    /// Time lost per practitioner since the agent started.
    pub time_lost: TimeLostTally,
    pub stalls: StallsSinceStart,
    /// The configured changes (name, time, description).
    pub changes: Vec<crate::config::ChangeEvent>,
    /// The journal's write errors and drops, when the agent writes one.
    pub journal: Option<crate::journal::JournalHealth>,
}

/// The agent's own stalls since it started.
#[derive(Debug, Default)]
pub struct StallsSinceStart {
    pub count: u64,
    pub total: Duration,
    pub longest: Duration,
    /// The latest, with when each began, oldest first.
    pub recent: VecDeque<(SystemTime, Duration)>,
}

/// What the status page needs for time lost per practitioner since start:
/// the report's model over one block covering everything seen (all hours,
/// no interval; the report gives those).
#[derive(Debug, Default)]
pub struct TimeLostTally {
    pub practitioners: crate::config::practitioners::Practitioners,
    pub started: Option<SystemTime>,
    /// Frozen seconds per target.
    pub frozen: BTreeMap<String, f64>,
    /// Interactive journeys' targets.
    pub journey_targets: BTreeMap<String, String>,
    pub drops: f64,
    pub session_hours: f64,
    /// Journey: its runs' time over acceptable and failed work.
    pub excess: BTreeMap<String, crate::loss::JourneyLoss>,
    /// Successful logins: (total seconds, count).
    pub logins: (f64, f64),
}

impl TimeLostTally {
    /// Minutes per practitioner per working day by cause, if anything was
    /// measured.
    pub fn minutes(&self, now: SystemTime) -> Option<crate::loss::Minutes> {
        let seconds = now.duration_since(self.started?).ok()?.as_secs_f64();
        let p = &self.practitioners;
        let total_rate: f64 = self.journey_targets.keys().map(|j| p.rate(j)).sum();
        let frozen: f64 = self
            .journey_targets
            .iter()
            .map(|(j, t)| {
                p.rate(j) / total_rate.max(f64::MIN_POSITIVE)
                    * self.frozen.get(t).copied().unwrap_or(0.0)
            })
            .sum();
        let mean = |(total, n): (f64, f64)| if n > 0.0 { total / n } else { 0.0 };
        let tally = crate::loss::LossTally {
            start: 0.0,
            working_seconds: seconds,
            frozen_seconds: frozen.min(seconds),
            drops: self.drops,
            session_hours: self.session_hours,
            excess: self.excess.clone(),
        };
        let model = crate::loss::Model {
            practitioners: p,
            cost_seconds: mean(self.logins) + p.redo_after_logout(),
        };
        model.minutes(&[&tally])
    }
}

/// Newest first; the oldest beyond [`FAILURES_KEPT`] is forgotten.
fn remember_failure(list: &mut VecDeque<Failure>, step: &crate::outcome::StepRecord) {
    if list.len() == FAILURES_KEPT {
        list.pop_back();
    }
    list.push_front(Failure {
        at: step.sent_at,
        step: step.step.clone(),
        outcome: step.outcome,
        detail: step.detail.clone(),
        evidence: step.browser.as_ref().and_then(|b| b.evidence.clone()),
    });
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
            kept: BTreeMap::new(),
            frozen_now: BTreeMap::new(),
            freezes: VecDeque::new(),
            forced_logouts: VecDeque::new(),
            forced_by_cause: BTreeMap::new(),
            lives: survival::Lives::default(),
            stalls: StallsSinceStart::default(),
            changes: Vec::new(),
            journal: None,
            time_lost: TimeLostTally {
                started: Some(SystemTime::now()),
                ..TimeLostTally::default()
            },
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

    /// An ended episode. Time lost counts what the agent was awake to
    /// see: the stall inside it, if any, may have hidden an earlier answer.
    pub fn freeze_ended(&mut self, episode: FreezeEpisode) {
        self.frozen_now.remove(&episode.target);
        *self
            .time_lost
            .frozen
            .entry(episode.target.clone())
            .or_default() += episode
            .length
            .saturating_sub(episode.agent_stalled)
            .as_secs_f64();
        push_bounded(&mut self.freezes, episode, FAILURES_KEPT);
    }

    /// From `started` the agent itself could not run for `length`.
    pub fn agent_stalled(&mut self, started: SystemTime, length: Duration) {
        let stalls = &mut self.stalls;
        stalls.count += 1;
        stalls.total += length;
        stalls.longest = stalls.longest.max(length);
        push_bounded(&mut stalls.recent, (started, length), FAILURES_KEPT);
    }

    /// A stretch of session life: it joins the survival estimate (a life
    /// still going as known alive up to its end), a forced end the list.
    pub fn observe_span(&mut self, span: &SessionSpan) {
        self.time_lost.session_hours +=
            span.age_to.saturating_sub(span.age_from).as_secs_f64() / 3600.0;
        self.lives.observe(span);
        let Some(end) = span.end else {
            return;
        };
        if end.is_drop() {
            self.time_lost.drops += 1.0;
        }
        if let (SessionEnd::Forced(cause), Some(bracket)) = (end, span.bracket()) {
            *self
                .forced_by_cause
                .entry((span.target.clone(), cause))
                .or_default() += 1;
            let logout = RecentForcedLogout {
                at: SystemTime::now(),
                target: span.target.clone(),
                origin: span.origin.clone(),
                cause,
                bracket,
            };
            push_bounded(&mut self.forced_logouts, logout, FAILURES_KEPT);
        }
    }

    /// A finished run. One that overlapped a stall of the agent is counted
    /// apart, and in neither the runs by outcome, the failures nor time lost.
    pub fn observe_run(&mut self, run: &RunRecord) {
        if !run.agent_stalled {
            self.tally_run(run);
        }
        let status = self.journeys.entry(run.journey.clone()).or_default();
        status.target = run.target.clone();
        status.last_outcome = Some(run.outcome);
        status.last_stalled = run.agent_stalled;
        status.last_run_end = Some(run.intended_start + run.duration);
        status.last_duration = Some(run.duration);
        if run.agent_stalled {
            status.stalled_runs += 1;
            return;
        }
        *status.runs.entry(run.outcome).or_default() += 1;
        if let Some(step) = run.steps.iter().find(|s| !s.outcome.is_success()) {
            remember_failure(&mut status.recent_failures, step);
        }
    }

    /// A run's share of time lost: its login, its time over acceptable, and
    /// the work to do again when it failed.
    fn tally_run(&mut self, run: &RunRecord) {
        let t = &mut self.time_lost;
        let login: Vec<&crate::outcome::StepRecord> = run
            .steps
            .iter()
            .filter(|s| s.phase == crate::outcome::StepPhase::Login)
            .collect();
        if !login.is_empty() && login.iter().all(|s| s.outcome.is_success()) {
            t.logins.0 += login.iter().map(|s| s.duration.as_secs_f64()).sum::<f64>();
            t.logins.1 += 1.0;
        }
        if run.kind != crate::outcome::JourneyKind::Interactive {
            return;
        }
        t.journey_targets
            .insert(run.journey.clone(), run.target.clone());
        let over = run.seconds_over_acceptable(t.practitioners.acceptable_seconds);
        let e = t.excess.entry(run.journey.clone()).or_default();
        e.over_seconds += over;
        e.runs += 1.0;
        if let Some(redo) = run.redo_seconds() {
            e.redo_seconds += redo;
            e.failed += 1.0;
        }
    }

    pub fn observe_kept(&mut self, record: &KeptRecord) {
        let status = self
            .kept
            .entry((record.target.clone(), record.slot))
            .or_default();
        status.state = Some(record.state);
        match (record.activity, record.state) {
            (KeptActivity::Login, KeptState::Alive) => status.login_at = Some(SystemTime::now()),
            (_, KeptState::Ended) => status.login_at = None,
            _ => {}
        }
        if record.activity == KeptActivity::Check {
            for step in record.steps.iter().filter(|s| !s.agent_stalled) {
                status.last_check = Some(step.sent_at + step.duration);
                status.last_outcome = Some(step.outcome);
                *status.checks.entry(step.outcome).or_default() += 1;
            }
        }
        if let Some(step) = record
            .steps
            .iter()
            .find(|s| !s.outcome.is_success() && !s.agent_stalled)
        {
            remember_failure(&mut status.recent_failures, step);
        }
        for end in record.sessions.iter().filter_map(|s| s.end) {
            *status.ended.entry(end.kind_str()).or_default() += 1;
        }
    }

    pub fn total_runs(&self) -> u64 {
        self.journeys.values().flat_map(|j| j.runs.values()).sum()
    }

    /// The journeys and their targets, for the history bars.
    pub fn journey_targets(&self) -> Vec<(String, String)> {
        self.journeys
            .iter()
            .map(|(name, j)| (name.clone(), j.target.clone()))
            .collect()
    }

    /// The page, with the history as last read from the journal.
    pub fn render_html(&self, history: &HistoryView) -> Markup {
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
                    (self.journal_warning())
                    (self.journeys_table())
                    (self.freezes_section())
                    (history::section(history, &self.changes))
                    (history::changes_section(&self.changes, SystemTime::now()))
                    (self.stalls_section())
                    (self.forced_logouts_section())
                    (self.kept_table())
                    (self.time_lost_table())
                    (self.lives.render(&self.age_bands))
                    (self.recent_failures_section())
                }
            }
        }
    }
}

impl StatusBoard {
    /// The last run of each journey.
    fn journeys_table(&self) -> Markup {
        html! {
            table {
                thead { tr { th { "Journey" } th { "Target" } th { "Last outcome" } th { "Last run ended" } th { "Duration" } th { "Runs" } th { "Agent stalled" } th { "Missed slots" } } }
                tbody {
                    @for (name, j) in &self.journeys {
                        tr {
                            td { (name) }
                            td { (j.target) }
                            @if j.last_stalled {
                                td class="warn" { "agent stalled (" (j.last_outcome.map(|o| o.as_str()).unwrap_or("")) ", not counted)" }
                            } @else {
                                td class=(outcome_class(j.last_outcome)) { (j.last_outcome.map(|o| o.as_str()).unwrap_or("not run yet")) }
                            }
                            td { (j.last_run_end.map(format_time).unwrap_or_default()) }
                            td { (j.last_duration.map(|d| format!("{:.2} s", d.as_secs_f64())).unwrap_or_default()) }
                            td { (format_runs(&j.runs)) }
                            td { (j.stalled_runs) }
                            td { (j.missed_slots) }
                        }
                    }
                }
            }
        }
    }

    /// Targets frozen now, and the freezes seen.
    fn freezes_section(&self) -> Markup {
        html! {
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
                            tr { td { (f.target) } td { (format_time(f.started)) } td { (format!("{:.1} s{}", f.length.as_secs_f64(), if f.censored { " or more" } else { "" }))
                                @if !f.agent_stalled.is_zero() {
                                    (format!(", of which the agent was stalled {:.1} s", f.agent_stalled.as_secs_f64()))
                                } } }
                        }
                    }
                }
            }
        }
    }

    /// Sessions the system ended, newest first.
    fn forced_logouts_section(&self) -> Markup {
        html! {
            h2 { "Forced logouts" }
            @if self.forced_logouts.is_empty() {
                p { "None." }
            } @else {
                p { "The session's age is a bracket: it was last known alive at the first age, and its loss was seen at the second." }
                table {
                    thead { tr { th { "Seen" } th { "Target" } th { "Session" } th { "Cause" } th { "Session age" } } }
                    tbody {
                        @for l in self.forced_logouts.iter().rev() {
                            tr { td { (format_time(l.at)) } td { (l.target) } td { (l.origin) } td { (l.cause.as_str()) } td { (format_age(l.bracket.0)) " – " (format_age(l.bracket.1)) } }
                        }
                    }
                }
            }
        }
    }

    /// Each journey's and kept session's latest failures.
    fn recent_failures_section(&self) -> Markup {
        html! {
            h2 { "Recent failures" }
            @for (name, j) in &self.journeys {
                @if !j.recent_failures.is_empty() {
                    h3 { (name) }
                    (failures_table(&j.recent_failures))
                }
            }
            @for ((target, slot), k) in &self.kept {
                @if !k.recent_failures.is_empty() {
                    h3 { (target) " kept session " (slot) }
                    (failures_table(&k.recent_failures))
                }
            }
            @if self.journeys.values().all(|j| j.recent_failures.is_empty())
                && self.kept.values().all(|k| k.recent_failures.is_empty()) {
                p { "None." }
            }
        }
    }

    /// A warning when journal records were lost: failed writes (disk full,
    /// locked file) or a full queue.
    fn journal_warning(&self) -> Markup {
        let Some(journal) = &self.journal else {
            return html! {};
        };
        let (errors, dropped) = (journal.write_errors(), journal.dropped());
        html! {
            @if errors > 0 || dropped > 0 {
                div class="warn banner" id="journal-warning" {
                    strong { "The journal is losing records." }
                    " " (errors) " failed writes (" code { "casewatch_journal_write_errors_total" } "), "
                    (dropped) " records dropped on a full queue (" code { "casewatch_journal_dropped_total" } "). "
                    "What was lost is missing from the history below and from the evidence report."
                    @if let Some((at, why)) = journal.last_error() {
                        " Latest error at " (format_time(at)) ": " code { (why) } "."
                    }
                }
            }
        }
    }

    /// The agent's own stalls: how many, how long, the latest.
    fn stalls_section(&self) -> Markup {
        let s = &self.stalls;
        html! {
            h2 { "Agent stalls" }
            p { "The agent measures its own scheduling delay: a stall is a stretch it could not run (its process paused, its host swapping or starved of CPU), when every request in flight looks slow however quickly the target answered. "
                "No freeze is taken from stall time, and a run that overlapped a stall longer than a step's freeze threshold is not counted against its target (column " em { "Agent stalled" } " above)." }
            @if s.count == 0 {
                p { "None since the agent started." }
            } @else {
                p class="warn" { (s.count) " since the agent started, " (format!("{:.1} s", s.total.as_secs_f64())) " in all; the longest " (format!("{:.1} s", s.longest.as_secs_f64())) "." }
                table {
                    thead { tr { th { "Began" } th { "Length" } } }
                    tbody {
                        @for (started, length) in s.recent.iter().rev() {
                            tr { td { (format_time(*started)) } td { (format!("{:.2} s", length.as_secs_f64())) } }
                        }
                    }
                }
            }
        }
    }

    /// Time lost per practitioner since start, by cause.
    fn time_lost_table(&self) -> Markup {
        let minutes = self.time_lost.minutes(SystemTime::now());
        html! {
            h2 { "Time lost per practitioner" }
            @match minutes {
                Some(m) => {
                    p { "Minutes a practitioner would lose in a working day at what the agent has measured since it started (all hours; the evidence report gives working hours only, with intervals). "
                        "Assumptions: " (crate::loss::assumptions(&self.time_lost.practitioners)) "." }
                    table {
                        thead { tr { th { "Freezes" } th { "Forced logouts" } th { "Failed work" } th { "Slowness" } th { "All causes" } } }
                        tbody { tr { @for x in &m.all()[..4] { td { (format!("{x:.1} min")) } } td { strong { (format!("{:.1} min", m.total())) } } } }
                    }
                }
                None => p { "Nothing measured yet." },
            }
        }
    }

    /// Kept sessions: what is known of each now, and how their lives ended.
    fn kept_table(&self) -> Markup {
        html! {
            @if !self.kept.is_empty() {
                h2 { "Kept sessions" }
                p { "Sessions kept logged in, as staff who never log out would be. Their checks are not journeys: they count in none of the journey figures. A session whose last check said nothing about it (a 5xx, a freeze) is " em { "unknown" } " until the next check decides; one that fails twice with no sign of logout is " em { "lost" } "." }
                table {
                    thead { tr { th { "Target" } th { "Slot" } th { "State" } th { "Session age" } th { "Last check" } th { "Checks" } th { "Lives ended" } } }
                    tbody {
                        @for ((target, slot), k) in &self.kept {
                            tr {
                                td { (target) }
                                td { (slot) }
                                td class=(state_class(k.state)) { (k.state.map(KeptState::as_str).unwrap_or("logging in")) }
                                td { (k.login_at.and_then(|t| t.elapsed().ok()).map(format_age).unwrap_or_default()) }
                                td { (k.last_check.map(format_time).unwrap_or_default()) " " (k.last_outcome.map(|o| o.as_str()).unwrap_or("")) }
                                td { (format_runs(&k.checks)) }
                                td { (k.ended.iter().map(|(e, n)| format!("{e}: {n}")).collect::<Vec<_>>().join(", ")) }
                            }
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.good{background:#e6f4ea}.warn{background:#fff4e5}.bad{background:#fde7e9}.nodata{color:#555}.small{color:#555;font-size:.9em;font-weight:normal}.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3em 1.4em;font-size:.9em}.legend svg{vertical-align:middle}.history{margin:.2em 0 .9em}.bartitle{font-size:.9em;margin-bottom:.1em}svg.bar{display:block;max-width:100%;height:auto}.axis{display:flex;justify-content:space-between;max-width:720px;font-size:.8em;color:#555}.banner{padding:.6em .8em;border:1px solid #e69f00;margin:1em 0}";

fn outcome_class(outcome: Option<Outcome>) -> &'static str {
    match outcome {
        Some(Outcome::Ok) => "good",
        Some(Outcome::Slow) => "warn",
        Some(_) => "bad",
        None => "",
    }
}

fn failures_table(failures: &VecDeque<Failure>) -> Markup {
    html! {
        table {
            thead { tr { th { "When" } th { "Step" } th { "Outcome" } th { "Detail" } } }
            tbody {
                @for f in failures {
                    tr { td { (format_time(f.at)) } td { (f.step) } td class=(outcome_class(Some(f.outcome))) { (f.outcome.as_str()) }
                         td { (f.detail)
                              @if let Some(name) = &f.evidence {
                                  " (" a href=(format!("/evidence/{name}.png")) { "screenshot" } ", "
                                  a href=(format!("/evidence/{name}.json")) { "console" } ")"
                              } } }
                }
            }
        }
    }
}

fn state_class(state: Option<KeptState>) -> &'static str {
    match state {
        Some(KeptState::Alive) => "good",
        Some(KeptState::Unknown | KeptState::Suspect) => "warn",
        Some(KeptState::Ended) => "bad",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{HttpPhases, JourneyKind, StepPhase, StepRecord};

    fn run(outcome: Outcome, agent_stalled: bool) -> RunRecord {
        let step = StepRecord {
            target: "ics".into(),
            journey: "note".into(),
            step: "home".into(),
            phase: StepPhase::Journey,
            kind: JourneyKind::Interactive,
            sent_at: SystemTime::now(),
            ttfb: None,
            duration: Duration::from_secs(10),
            outcome,
            censored: false,
            status: Some(200),
            bytes: 10,
            logout_cause: None,
            session_age: None,
            detail: "complete only after 10.0s".into(),
            phases: HttpPhases::default(),
            browser: None,
            freeze_after: Duration::from_secs(1),
            agent_stalled,
            agent_fault: None,
        };
        RunRecord {
            target: "ics".into(),
            journey: "note".into(),
            kind: JourneyKind::Interactive,
            intended_start: SystemTime::now(),
            actual_start: SystemTime::now(),
            duration: Duration::from_secs(10),
            outcome,
            failed_step: (!outcome.is_success()).then(|| "home".into()),
            steps: vec![step],
            sessions: Vec::new(),
            agent_stalled,
        }
    }

    #[test]
    fn a_run_over_an_agent_stall_is_counted_apart_and_the_stall_is_shown() {
        let mut board = StatusBoard::new(
            "s",
            AgeBands::default(),
            [("note".to_string(), "ics".to_string())],
        );
        board.observe_run(&run(Outcome::Frozen, true));
        let note = &board.journeys["note"];
        assert_eq!(note.stalled_runs, 1);
        assert!(note.runs.is_empty());
        assert!(note.recent_failures.is_empty());
        assert!(board.time_lost.excess.is_empty());
        board.observe_run(&run(Outcome::Ok, false));
        assert_eq!(board.journeys["note"].runs[&Outcome::Ok], 1);
        assert!(!board.journeys["note"].last_stalled);

        board.agent_stalled(SystemTime::now(), Duration::from_millis(9_980));
        board.freeze_ended(FreezeEpisode {
            target: "ics".into(),
            started: SystemTime::now(),
            length: Duration::from_secs(10),
            censored: false,
            agent_stalled: Duration::from_secs(3),
        });
        // Time lost counts the silence the agent was awake to see.
        assert_eq!(board.time_lost.frozen["ics"], 7.0);
        let page = board.render_html(&HistoryView::NoJournal).into_string();
        assert!(
            page.contains("1 since the agent started, 10.0 s in all"),
            "{page}"
        );
        assert!(page.contains("9.98 s"), "{page}");
        assert!(
            page.contains("of which the agent was stalled 3.0 s"),
            "{page}"
        );
    }
}
