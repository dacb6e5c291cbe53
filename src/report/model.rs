//! The report model's types, built once ([`super::build`]) from a ledger;
//! the HTML, Markdown and JSON renderers only present it. Its serde form *is* the JSON output, whose
//! schema is documented in `docs/src/report-schema.md` (bump
//! [`SCHEMA_VERSION`] on any incompatible change).
//!
//! Units: latencies in milliseconds, durations in seconds, rates per hour
//! (freezes) or per session-hour (forced logouts), times as unix seconds
//! plus RFC 3339 text.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::changes::ChangeComparison;
use super::rule::RuleVerdict;
use super::stats::Estimate;
use super::time_lost::TimeLost;
pub const SCHEMA_VERSION: u32 = 4;
/// Longest before/after window on each side of a change, in calendar days.
pub const MAX_CHANGE_DAYS: f64 = 56.0;

#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// The journal's name as shown in the report.
    pub journal: String,
    pub from: Option<SystemTime>,
    pub to: Option<SystemTime>,
    /// The session age the "log out every two hours" rule names; by default
    /// two hours, or the second age-band edge when the bands are scaled
    /// below two hours (as in the demo, where a minute stands for an hour).
    pub rule_age: Option<Duration>,
    /// Whether to add a table per calendar month; by default, when the
    /// window spans more than a month.
    pub period: Period,
    pub now: SystemTime,
}

/// `--period`: the whole window only, or also a table per month.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Period {
    #[default]
    Auto,
    All,
    Month,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub generated_at: String,
    /// The same, unix seconds.
    pub generated: f64,
    pub journal: String,
    pub sites: Vec<String>,
    pub window: TimeWindow,
    /// Plain-language sentences for the top of the report.
    pub summary: Vec<String>,
    /// Minutes lost per practitioner per working day, by cause.
    pub time_lost: TimeLost,
    /// The statistical methods used, by figure.
    pub methods: BTreeMap<&'static str, String>,
    /// How the intervals treat clustering: the blocks of time and the
    /// minimum-evidence rule.
    pub evidence: EvidenceSettings,
    pub availability: Availability,
    pub latency: Latency,
    pub freezes: Freezes,
    pub forced_logouts: ForcedLogouts,
    pub sessions: Sessions,
    pub kept_sessions: KeptSessions,
    pub reporting_load: ReportingLoad,
    pub changes: Vec<ChangeComparison>,
    /// One row per calendar month (UTC), when asked for or when the window
    /// spans more than a month.
    pub monthly: Vec<MonthRow>,
    /// Times the agent itself stalled (its host paused, swapping or
    /// starved): what it measured then was itself, so those runs are left
    /// out of every figure.
    pub agent_stalls: AgentStalls,
    /// A generated journal's known truth (the demo's seeded history), to
    /// check the answers against; absent for a measured journal.
    pub seeded_truth: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AgentStalls {
    pub count: u64,
    pub total_seconds: f64,
    pub longest_seconds: f64,
    /// Runs left out because they overlapped a stall.
    pub runs_left_out: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvidenceSettings {
    /// The independent units of every interval: calendar days per unit,
    /// and its length in real seconds.
    pub unit_days: u32,
    pub unit_seconds: f64,
    /// Units an interval needs, on each side of a comparison too.
    pub min_units: usize,
    /// Events (in as many different units) a rate's direction needs.
    pub min_events: u64,
    /// Length of the slots the ledger tallies (seconds): a calendar hour,
    /// or less for a window shorter than 60 hours.
    pub slot_seconds: f64,
    /// How many times faster than the wall clock the monitored system's
    /// calendar runs (1 for a real system).
    pub calendar_scale: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct MonthRow {
    /// `2026-06`.
    pub month: String,
    pub from: f64,
    pub to: f64,
    pub runs: u64,
    pub availability: Estimate,
    /// Interactive steps' p95, ms.
    pub p95_ms: Estimate,
    pub freezes: u64,
    pub freezes_per_day: Estimate,
    pub forced_logouts: u64,
    pub logouts_per_session_hour: Estimate,
}

#[derive(Clone, Debug, Serialize)]
pub struct TimeWindow {
    pub from: f64,
    pub to: f64,
    pub from_text: String,
    pub to_text: String,
    pub hours: f64,
    /// False when the journal holds no runs in the window.
    pub has_data: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Availability {
    pub sites: Vec<AvailabilityRow>,
    pub journeys: Vec<AvailabilityRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AvailabilityRow {
    pub site: String,
    /// Empty for a site's row.
    pub target: String,
    /// Empty for a site's row.
    pub journey: String,
    pub kind: String,
    pub runs: u64,
    pub successes: u64,
    /// Outcome of every run that failed, by outcome.
    pub failures: BTreeMap<String, u64>,
    /// Share of runs that succeeded (`ok` or `slow`), 0..1.
    pub availability: Estimate,
}

#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub steps: Vec<StepLatency>,
    pub trend_bucket_seconds: f64,
    pub trend: Vec<TrendSeries>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepLatency {
    pub target: String,
    pub journey: String,
    pub step: String,
    pub count: u64,
    pub p50_ms: Estimate,
    pub p95_ms: Estimate,
    pub p99_ms: Estimate,
    pub max_ms: f64,
    /// Steps given up on: not in the percentiles, known only to have taken
    /// at least their `give_up_after`.
    pub given_up: u64,
    /// The shortest such wait (seconds), for "at least" in the tables.
    pub given_up_after_seconds: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrendSeries {
    pub label: String,
    /// (bucket start, unix seconds; p95 in ms).
    pub points: Vec<(f64, f64)>,
    /// When steps of this series were given up on (unix seconds).
    pub given_up: Vec<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Freezes {
    pub targets: Vec<FreezeSummary>,
    pub episodes: Vec<FreezeEpisodeRow>,
    /// Browser steps that froze, counted apart by side: the server (the
    /// page waited on the network) or the page's own main thread.
    pub browser: Vec<BrowserFreezes>,
    /// Failed browser steps whose screenshot and console errors were
    /// saved, newest last.
    pub browser_evidence: Vec<EvidenceRow>,
    /// The folder beside the journal those files are in.
    pub evidence_folder: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct BrowserFreezes {
    pub target: String,
    pub journey: String,
    pub server: u64,
    pub client: u64,
    pub mixed: u64,
}

/// A failed browser step whose saved evidence the report links to.
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceRow {
    /// When the step was sent (unix seconds).
    pub at: f64,
    pub at_text: String,
    pub target: String,
    pub journey: String,
    pub step: String,
    pub outcome: String,
    /// The file names in the evidence folder beside the journal.
    pub json: String,
    pub png: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FreezeSummary {
    pub target: String,
    pub count: u64,
    /// Episodes per hour of the window.
    pub rate_per_hour: Estimate,
    pub total_seconds: f64,
    pub longest_seconds: f64,
    /// Episodes whose true length is only known to be at least the figure.
    pub censored: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FreezeEpisodeRow {
    pub target: String,
    pub started: f64,
    pub started_text: String,
    pub length_seconds: f64,
    pub censored: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ForcedLogouts {
    pub total: u64,
    pub session_hours: f64,
    pub rate_per_session_hour: Estimate,
    pub by_cause: Vec<LogoutCauseRow>,
    /// Every forced logout, oldest first.
    pub events: Vec<ForcedLogoutRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ForcedLogoutRow {
    /// When the answer that showed the loss arrived (unix seconds).
    pub seen_at: f64,
    /// The last moment the session was known alive (unix seconds).
    pub alive_at: f64,
    pub seen_text: String,
    pub site: String,
    pub target: String,
    pub cause: String,
    /// `journey` or `kept`.
    pub holder_kind: String,
    /// The journey's name, or `kept session N`.
    pub holder: String,
    /// The session's age bracket: last known alive, and loss seen (seconds).
    pub alive_age_seconds: f64,
    pub seen_age_seconds: f64,
}

/// Kept sessions: logged in and kept alive as staff who never log out
/// would be. Their checks are not journeys and count in no journey figure.
#[derive(Clone, Debug, Serialize)]
pub struct KeptSessions {
    pub targets: Vec<KeptTargetRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct KeptTargetRow {
    pub site: String,
    pub target: String,
    pub checks: u64,
    /// Keep-alive checks by outcome.
    pub check_outcomes: BTreeMap<String, u64>,
    /// Checks after which the session's state was unknown (a 5xx, a
    /// connect error, a freeze): neither alive nor dropped.
    pub unknown_checks: u64,
    pub logins: u64,
    pub failed_logins: u64,
    /// Lives ended, by how: a forced-logout cause, `lost`, `max_age`,
    /// `agent_stop`.
    pub lives_ended: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LogoutCauseRow {
    pub target: String,
    pub cause: String,
    pub count: u64,
    /// Share of all forced logouts, 0..1.
    pub share: Estimate,
}

#[derive(Clone, Debug, Serialize)]
pub struct Sessions {
    pub sessions: u64,
    pub dropped: u64,
    pub censored: u64,
    pub survival: Vec<SurvivalRow>,
    pub median_survival_seconds: Option<f64>,
    pub bands: Vec<BandHazard>,
    pub rule: RuleVerdict,
    /// Over-dispersion of forced logouts across blocks of time (1 when
    /// they come one at a time; more when restarts drop several at once).
    pub dispersion: f64,
    /// Independent units of days behind the survival curve's band: the
    /// renderers show none from fewer than the evidence rule's minimum.
    pub units: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SurvivalRow {
    pub age_seconds: f64,
    pub survival: f64,
    /// Greenwood 95% interval (log-log), clamped to 0..1.
    pub low: f64,
    pub high: f64,
    pub at_risk: u64,
    pub drops: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BandHazard {
    pub band: String,
    /// The band in words: "under 1 h", "1 h to 2 h", "4 h and older".
    pub age_text: String,
    pub exposure_hours: f64,
    pub drops: u64,
    /// Forced logouts per session-hour in this age band.
    pub hazard_per_hour: Estimate,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportingLoad {
    pub report_runs: Vec<ReportRunRow>,
    pub interactive: Vec<LoadComparison>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportRunRow {
    /// The system the report ran on.
    pub target: String,
    pub journey: String,
    /// Empty for a report journey's whole run; the step's name for a
    /// report step inside an interactive journey.
    pub step: String,
    pub runs: u64,
    pub successes: u64,
    pub median_seconds: Estimate,
    pub p95_seconds: Estimate,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadComparison {
    /// The system whose interactive latency is measured.
    pub target: String,
    /// `same_system`: a report journey was running on this target;
    /// `any_system`: on any target.
    pub scope: &'static str,
    /// Where the reports of this comparison ran, for people.
    pub reports_on: String,
    pub without_reports: LatencyBlock,
    pub with_reports: LatencyBlock,
    /// p95 with reports running minus p95 without, ms.
    pub p95_difference_ms: Estimate,
}

#[derive(Clone, Debug, Serialize)]
pub struct LatencyBlock {
    pub steps: u64,
    pub p50_ms: Estimate,
    pub p95_ms: Estimate,
}
