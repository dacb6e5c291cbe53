//! The report model, built once from the journal; the HTML, Markdown and
//! JSON renderers only present it. Its serde form *is* the JSON output, whose
//! schema is documented in `docs/report-schema.md` (bump
//! [`SCHEMA_VERSION`] on any incompatible change).
//!
//! Units: latencies in milliseconds, durations in seconds, rates per hour
//! (freezes) or per session-hour (forced logouts), times as unix seconds
//! plus RFC 3339 text.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::changes::{self, ChangeComparison};
use super::compare::{self, Observations};
use super::evidence::{self, BlockGrid, Calendar};
use super::rule::{self, RuleVerdict};
use super::stats::{self, Estimate};
use super::time_lost::{self, TimeLost};
use crate::config::practitioners::Practitioners;
use crate::detect::{kaplan_meier, AgeBands, Lifetime};
use crate::journal::read::{
    ChangeRow, FreezeRow, HistogramRow, JournalReader, KeptRow, ReadError, RunRow, SpanRow,
    StepRow, Window,
};
use crate::outcome::unix_secs;
use crate::recorder;
use crate::timefmt::{human_duration, rfc3339};

pub const SCHEMA_VERSION: u32 = 2;
/// Longest before/after window on each side of a change.
pub const MAX_CHANGE_WINDOW: Duration = Duration::from_secs(7 * 86_400);
/// How many points the latency trend aims for.
const TREND_POINTS: f64 = 60.0;

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
}

#[derive(Clone, Debug, Serialize)]
pub struct EvidenceSettings {
    /// Length of the blocks of time the whole window's intervals resample.
    pub block_seconds: f64,
    /// Matched blocks each side of a comparison needs before a direction
    /// is stated.
    pub min_blocks: usize,
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
    pub browser_evidence: Vec<BrowserEvidence>,
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

#[derive(Clone, Debug, Serialize)]
pub struct BrowserEvidence {
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
    /// When the loss was seen (unix seconds).
    pub seen_at: f64,
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

/// Everything the report reads from journals, for one window.
#[derive(Default)]
pub struct Rows {
    pub runs: Vec<RunRow>,
    pub steps: Vec<StepRow>,
    pub freezes: Vec<FreezeRow>,
    pub spans: Vec<SpanRow>,
    pub kept: Vec<KeptRow>,
    pub histograms: Vec<HistogramRow>,
    pub changes: Vec<ChangeRow>,
    pub sites: BTreeSet<String>,
    pub bands: AgeBands,
    pub calendar: Calendar,
    /// The site's `practitioners:` assumptions (defaults when the journal
    /// has none).
    pub practitioners: Practitioners,
    /// First and last moment measured, over the whole journal.
    pub span: Option<(f64, f64)>,
}

impl Rows {
    /// Reads a journal's rows for the window the options ask for, clipped
    /// to what it holds. Returns the rows and the window.
    pub fn read(
        reader: &JournalReader,
        options: &ReportOptions,
    ) -> Result<(Rows, Window), ReadError> {
        let span = reader.span()?;
        let requested_from = options.from.map(unix_secs);
        let requested_to = options.to.map(unix_secs);
        let (data_from, data_to) = span.unwrap_or((unix_secs(options.now), unix_secs(options.now)));
        // Rates are per hour of monitoring, so the window is clipped to the data.
        let from = requested_from.map_or(data_from, |r| r.max(data_from));
        let to = requested_to.map_or(data_to, |r| r.min(data_to));
        let window = Window {
            from,
            to: to.max(from),
        };
        // Queries take `to` as exclusive; include the last run.
        let query = Window {
            from: window.from,
            to: window.to + 1e-3,
        };
        let bands = reader
            .meta("age_band_edges_seconds")?
            .and_then(|text| serde_json::from_str::<Vec<f64>>(&text).ok())
            .filter(|edges| !edges.is_empty())
            .map(|edges| AgeBands::new(edges.into_iter().map(Duration::from_secs_f64).collect()))
            .unwrap_or_default();
        let calendar = Calendar {
            scale: reader
                .meta("calendar_scale")?
                .and_then(|t| t.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .unwrap_or(1.0),
        };
        let practitioners = reader
            .meta("practitioners")?
            .and_then(|text| serde_json::from_str::<Practitioners>(&text).ok())
            .unwrap_or_default();
        let runs = reader.runs(query)?;
        let mut sites: BTreeSet<String> = runs.iter().map(|r| r.site.clone()).collect();
        if sites.is_empty() {
            sites.extend(reader.meta("site")?);
        }
        let rows = Rows {
            steps: reader.steps(query)?,
            freezes: reader.freezes(query)?,
            spans: reader.spans(query)?,
            kept: reader.kept(query)?,
            histograms: reader.histograms(Window {
                from: window.from - 60.0,
                to: query.to,
            })?,
            changes: reader.changes()?,
            runs,
            sites,
            bands,
            calendar,
            practitioners,
            span: span.map(|(f, t)| (f.max(window.from), t.min(window.to))),
        };
        Ok((rows, window))
    }

    /// What was measured on `target` (all targets when `None`), as numbers.
    pub fn observations(&self, target: Option<&str>) -> Observations {
        let on = |t: &str| target.is_none_or(|want| want == t);
        Observations {
            steps: self
                .steps
                .iter()
                .filter(|s| on(&s.target) && s.kind == "interactive" && s.phase == "journey")
                .map(|s| (s.sent_at, s.duration * 1000.0, s.censored))
                .collect(),
            runs: self
                .runs
                .iter()
                .filter(|r| on(&r.target))
                .map(|r| (r.intended_start, is_success(&r.outcome)))
                .collect(),
            freezes: self
                .freezes
                .iter()
                .filter(|f| on(&f.target))
                .map(|f| (f.started, f.length))
                .collect(),
            drops: self
                .spans
                .iter()
                .filter(|s| on(&s.target) && s.dropped)
                .map(|s| s.login_at + drop_age(s))
                .collect(),
            exposure: self
                .spans
                .iter()
                .filter(|s| on(&s.target))
                .map(|s| (s.login_at + s.age_from, s.login_at + s.age_to))
                .collect(),
            run_interval: run_interval(&self.runs, target),
        }
    }
}

/// The longest median gap between consecutive runs of one interactive
/// journey on `target` (all targets when `None`).
fn run_interval(runs: &[RunRow], target: Option<&str>) -> f64 {
    let mut starts: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    for r in runs
        .iter()
        .filter(|r| r.kind == "interactive" && target.is_none_or(|t| t == r.target))
    {
        starts
            .entry((&r.target, &r.journey))
            .or_default()
            .push(r.intended_start);
    }
    starts
        .into_values()
        .filter_map(|mut v| {
            v.sort_by(f64::total_cmp);
            let mut gaps: Vec<f64> = v.windows(2).map(|w| w[1] - w[0]).collect();
            gaps.sort_by(f64::total_cmp);
            gaps.get(gaps.len() / 2).copied()
        })
        .fold(0.0, f64::max)
}

/// Builds the model from the journal over the requested window.
pub fn build(reader: &JournalReader, options: &ReportOptions) -> Result<Report, ReadError> {
    let (rows, window) = Rows::read(reader, options)?;
    Ok(build_from(&rows, window, options))
}

/// Builds the model from rows already read.
pub fn build_from(rows: &Rows, window: Window, options: &ReportOptions) -> Report {
    let all = rows.observations(None);
    let targets: BTreeSet<String> = rows
        .runs
        .iter()
        .map(|r| r.target.clone())
        .chain(rows.freezes.iter().map(|f| f.target.clone()))
        .collect();
    let by_target: BTreeMap<String, Observations> = targets
        .iter()
        .map(|t| (t.clone(), rows.observations(Some(t))))
        .collect();
    let block = compare::block_length(&all, window.from, window.to, window.from);
    let grid = BlockGrid::new(window.from, window.to, window.from, block);

    let availability = availability(&rows.runs, &grid);
    let latency = latency(rows, window, &grid);
    let mut freezes = freeze_section(&rows.freezes, &by_target, &grid);
    (freezes.browser, freezes.browser_evidence) = browser_steps(&rows.steps);
    freezes.evidence_folder = crate::journal::folder_beside(std::path::Path::new(&options.journal))
        .display()
        .to_string();
    let (forced_logouts, sessions) =
        session_sections(&rows.spans, &rows.bands, options.rule_age, &all, &grid);
    let kept_sessions = kept_section(&rows.kept, &rows.spans);
    let reporting_load = reporting_load(&rows.runs, &rows.steps, &grid);
    let change_rows = rows
        .changes
        .iter()
        .map(|c| {
            let mut compared = changes::compare(c, rows.span, &all, &by_target, &rows.calendar);
            if let Some(e) = &compared.evidence {
                compared.time_lost = Some(time_lost::change(
                    rows,
                    &rows.practitioners,
                    c.at,
                    compared.window_seconds,
                    e.block_seconds,
                ));
            }
            compared
        })
        .collect();
    let time_lost = time_lost::time_lost(rows, &grid, &rows.practitioners);
    let monthly = match options.period {
        Period::Month => monthly(rows, window),
        Period::Auto if window.to - window.from > 31.0 * 86_400.0 => monthly(rows, window),
        _ => Vec::new(),
    };

    let block_text = human_duration(block);
    let mut methods = BTreeMap::new();
    methods.insert(
        "blocks of time",
        format!(
            "every interval treats blocks of time, not single steps, as independent: one freeze stalls every request in flight and one restart drops every session. Blocks are at least twice the longest freeze episode and twice the journeys' interval, and among such lengths the one at which freezes and forced logouts look most clustered ({block_text} over this window)"
        ),
    );
    methods.insert("availability", evidence::CLUSTERED_WILSON.into());
    methods.insert(
        "time lost per practitioner",
        format!("freezes: frozen share of working time, weighted by each system's share of transactions; forced logouts: forced logouts per session-hour x working hours x (re-login time + work redone); slowness: time beyond `acceptable` per run x transactions per hour x working hours; interval: {}", time_lost::BOOTSTRAP),
    );
    methods.insert("latency percentiles", format!("exact merge of per-minute HdrHistograms of completed steps (3 significant figures); steps given up on are counted apart, not as response times; interval: {}", evidence::CLUSTERED_QUANTILE));
    methods.insert(
        "freeze and logout rates",
        evidence::OVERDISPERSED_RATE.into(),
    );
    methods.insert(
        "before and after a change",
        format!(
            "equal windows of up to 7 days; blocks matched by hour of the day, weekdays and weekends apart, in the system's calendar, as many from each side for every such hour (the nearest to the change), hours seen on one side only left out; p95: {}; rates: {}; availability: {}",
            evidence::CLUSTERED_QUANTILE_DIFFERENCE,
            evidence::RATE_RATIO,
            compare::SHARE_DIFFERENCE
        ),
    );
    methods.insert(
        "minimum evidence",
        format!(
            "a direction (faster, slower, more, fewer) is stated only when the interval excludes no difference and each side has at least {} matched blocks; otherwise the report says there is not enough evidence yet and, where it can, about how much longer to measure (the time for the interval to shrink to the size of the effect seen, if it is real: the width falls with the square root of the data)",
            evidence::MIN_BLOCKS
        ),
    );
    methods.insert(
        "session survival",
        "Kaplan-Meier product-limit estimate, each forced logout at the midpoint of its age bracket; Greenwood log-log 95% band".into(),
    );
    methods.insert(
        "hazard by age band",
        format!("forced logouts (at the midpoint of their age bracket) / session-hours known alive in band; {}", evidence::OVERDISPERSED_RATE),
    );
    methods.insert(
        "older against younger sessions",
        format!("hazard ratio, {}; a direction needs at least {} forced logouts in as many blocks of time on each side; the age at which the hazard rises is the band edge with the best two-piece fit, stated when its Bonferroni-adjusted interval excludes 1", evidence::RATE_RATIO, rule::MIN_DROPS),
    );

    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        generated_at: rfc3339(unix_secs(options.now)),
        journal: options.journal.clone(),
        sites: rows.sites.iter().cloned().collect(),
        window: TimeWindow {
            from: window.from,
            to: window.to,
            from_text: rfc3339(window.from),
            to_text: rfc3339(window.to),
            hours: window.hours(),
            has_data: !rows.runs.is_empty(),
        },
        summary: Vec::new(),
        time_lost,
        methods,
        evidence: EvidenceSettings {
            block_seconds: block,
            min_blocks: evidence::MIN_BLOCKS,
            calendar_scale: rows.calendar.scale,
        },
        availability,
        latency,
        freezes,
        forced_logouts,
        sessions,
        kept_sessions,
        reporting_load,
        changes: change_rows,
        monthly,
    };
    report.summary = super::summary::summary(&report);
    report
}

pub(super) fn is_success(outcome: &str) -> bool {
    matches!(outcome, "ok" | "slow")
}

/// Per block of `grid`, `(successes, runs)` of the runs that `keep` keeps.
fn run_blocks(
    runs: &[RunRow],
    grid: &BlockGrid,
    keep: impl Fn(&RunRow) -> bool,
) -> Vec<(u64, u64)> {
    let mut blocks: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for run in runs.iter().filter(|r| keep(r)) {
        // Runs in a partial block at the window's end form a block of their own.
        let i = grid.index(run.intended_start).unwrap_or(i64::MAX);
        let entry = blocks.entry(i).or_default();
        entry.1 += 1;
        entry.0 += u64::from(is_success(&run.outcome));
    }
    blocks.into_values().collect()
}

fn availability(runs: &[RunRow], grid: &BlockGrid) -> Availability {
    type Counts = (String, u64, u64, BTreeMap<String, u64>);
    let mut journeys: BTreeMap<(String, String, String), Counts> = BTreeMap::new();
    let mut sites: BTreeMap<String, Counts> = BTreeMap::new();
    for run in runs {
        let ok = is_success(&run.outcome);
        for entry in [
            journeys
                .entry((run.site.clone(), run.target.clone(), run.journey.clone()))
                .or_insert_with(|| (run.kind.clone(), 0, 0, BTreeMap::new())),
            sites
                .entry(run.site.clone())
                .or_insert_with(|| ("all".into(), 0, 0, BTreeMap::new())),
        ] {
            entry.1 += 1;
            if ok {
                entry.2 += 1;
            } else {
                *entry.3.entry(run.outcome.clone()).or_default() += 1;
            }
        }
    }
    let row = |site: String, target: String, journey: String, c: Counts, share: Estimate| {
        AvailabilityRow {
            site,
            target,
            journey,
            kind: c.0,
            runs: c.1,
            successes: c.2,
            failures: c.3,
            availability: share,
        }
    };
    Availability {
        sites: sites
            .into_iter()
            .map(|(site, c)| {
                let share = evidence::proportion(&run_blocks(runs, grid, |r| r.site == site));
                row(site, String::new(), String::new(), c, share)
            })
            .collect(),
        journeys: journeys
            .into_iter()
            .map(|((site, target, journey), c)| {
                let share = evidence::proportion(&run_blocks(runs, grid, |r| {
                    r.site == site && r.target == target && r.journey == journey
                }));
                row(site, target, journey, c, share)
            })
            .collect(),
    }
}

fn latency(rows: &Rows, window: Window, grid: &BlockGrid) -> Latency {
    let journey_steps: BTreeSet<(String, String, String)> = rows
        .steps
        .iter()
        .filter(|s| s.phase == "journey")
        .map(|s| (s.target.clone(), s.journey.clone(), s.step.clone()))
        .collect();
    let span = (window.to - window.from).max(60.0);
    let bucket = ((span / TREND_POINTS / 60.0).ceil() * 60.0).max(60.0);
    type Key = (String, String, String);
    let mut blocks: BTreeMap<Key, BTreeMap<i64, Histogram<u64>>> = BTreeMap::new();
    let mut trend: BTreeMap<Key, BTreeMap<i64, Histogram<u64>>> = BTreeMap::new();
    for row in &rows.histograms {
        let key = (row.target.clone(), row.journey.clone(), row.step.clone());
        let block = grid.index(row.interval_start).unwrap_or(i64::MAX);
        let _ = blocks
            .entry(key.clone())
            .or_default()
            .entry(block)
            .or_insert_with(recorder::new_histogram)
            .add(&row.histogram);
        if !journey_steps.contains(&key) {
            continue;
        }
        let b = ((row.interval_start - window.from) / bucket).floor() as i64;
        let _ = trend
            .entry(key)
            .or_default()
            .entry(b)
            .or_insert_with(recorder::new_histogram)
            .add(&row.histogram);
    }
    let mut given_up: BTreeMap<Key, (u64, f64, Vec<f64>)> = BTreeMap::new();
    for s in rows.steps.iter().filter(|s| s.censored) {
        let entry = given_up
            .entry((s.target.clone(), s.journey.clone(), s.step.clone()))
            .or_insert((0, f64::INFINITY, Vec::new()));
        entry.0 += 1;
        entry.1 = entry.1.min(s.duration);
        entry.2.push(s.sent_at);
    }
    let keys: BTreeSet<Key> = blocks.keys().chain(given_up.keys()).cloned().collect();
    let steps = keys
        .into_iter()
        .map(|key| {
            let per_block: Vec<Histogram<u64>> = blocks
                .get(&key)
                .map(|b| b.values().cloned().collect())
                .unwrap_or_default();
            let refs: Vec<&Histogram<u64>> = per_block.iter().collect();
            let mut merged = recorder::new_histogram();
            for h in &per_block {
                let _ = merged.add(h);
            }
            let gave_up = given_up.get(&key);
            let (target, journey, step) = key;
            StepLatency {
                count: merged.len(),
                p50_ms: evidence::histogram_quantile(&refs, 0.50),
                p95_ms: evidence::histogram_quantile(&refs, 0.95),
                p99_ms: evidence::histogram_quantile(&refs, 0.99),
                max_ms: merged.max() as f64 / 1000.0,
                given_up: gave_up.map_or(0, |g| g.0),
                given_up_after_seconds: gave_up.map(|g| g.1),
                target,
                journey,
                step,
            }
        })
        .collect();
    let mut trend: Vec<_> = trend.into_iter().collect();
    // The ten busiest steps, so the chart stays readable.
    trend.sort_by_key(|(_, buckets)| {
        std::cmp::Reverse(buckets.values().map(|h| h.len()).sum::<u64>())
    });
    trend.truncate(10);
    trend.sort_by(|a, b| a.0.cmp(&b.0));
    let trend = trend
        .into_iter()
        .map(|(key, buckets)| TrendSeries {
            label: format!("{} / {} / {}", key.0, key.1, key.2),
            given_up: given_up.get(&key).map(|g| g.2.clone()).unwrap_or_default(),
            points: buckets
                .into_iter()
                .map(|(b, h)| {
                    (
                        (window.from + (b as f64 + 0.5) * bucket).min(window.to),
                        h.value_at_quantile(0.95) as f64 / 1000.0,
                    )
                })
                .collect(),
        })
        .collect();
    Latency {
        steps,
        trend_bucket_seconds: bucket,
        trend,
    }
}

/// Per block of `grid` in which a journey ran: `(count, hours)` of `obs`'s
/// freezes, or `(drops, session-hours)`.
fn event_blocks(obs: &Observations, grid: &BlockGrid, logouts: bool) -> Vec<(f64, f64)> {
    compare::tallies(obs, grid)
        .iter()
        .map(|t| {
            if logouts {
                (t.drops, t.session_hours)
            } else {
                (t.freezes, t.hours)
            }
        })
        .collect()
}

/// Frozen browser steps by side, and the evidence of failed ones.
fn browser_steps(steps: &[StepRow]) -> (Vec<BrowserFreezes>, Vec<BrowserEvidence>) {
    let mut sides: BTreeMap<(String, String), BrowserFreezes> = BTreeMap::new();
    let mut evidence = Vec::new();
    for step in steps {
        if let Some(side) = &step.freeze_side {
            let row = sides
                .entry((step.target.clone(), step.journey.clone()))
                .or_insert_with(|| BrowserFreezes {
                    target: step.target.clone(),
                    journey: step.journey.clone(),
                    server: 0,
                    client: 0,
                    mixed: 0,
                });
            match side.as_str() {
                "client" => row.client += 1,
                "mixed" => row.mixed += 1,
                _ => row.server += 1,
            }
        }
        if let Some(name) = &step.evidence {
            evidence.push(BrowserEvidence {
                at_text: rfc3339(step.sent_at),
                target: step.target.clone(),
                journey: step.journey.clone(),
                step: step.step.clone(),
                outcome: step.outcome.clone(),
                json: format!("{name}.json"),
                png: format!("{name}.png"),
            });
        }
    }
    (sides.into_values().collect(), evidence)
}

fn freeze_section(
    rows: &[FreezeRow],
    by_target: &BTreeMap<String, Observations>,
    grid: &BlockGrid,
) -> Freezes {
    let mut targets: BTreeMap<String, Vec<&FreezeRow>> = BTreeMap::new();
    for row in rows {
        targets.entry(row.target.clone()).or_default().push(row);
    }
    Freezes {
        targets: targets
            .into_iter()
            .map(|(target, list)| FreezeSummary {
                count: list.len() as u64,
                rate_per_hour: by_target
                    .get(&target)
                    .map(|obs| evidence::rate(&event_blocks(obs, grid, false)))
                    .unwrap_or_else(|| {
                        Estimate::none(list.len() as u64, evidence::OVERDISPERSED_RATE)
                    }),
                total_seconds: list.iter().map(|f| f.length).sum(),
                longest_seconds: list.iter().map(|f| f.length).fold(0.0, f64::max),
                censored: list.iter().filter(|f| f.censored).count() as u64,
                target,
            })
            .collect(),
        episodes: rows
            .iter()
            .map(|f| FreezeEpisodeRow {
                target: f.target.clone(),
                started: f.started,
                started_text: rfc3339(f.started),
                length_seconds: f.length,
                censored: f.censored,
            })
            .collect(),
        browser: Vec::new(),
        browser_evidence: Vec::new(),
        evidence_folder: String::new(),
    }
}

fn session_sections(
    spans: &[SpanRow],
    bands: &AgeBands,
    rule_age: Option<Duration>,
    all: &Observations,
    grid: &BlockGrid,
) -> (ForcedLogouts, Sessions) {
    // Forced logouts by cause.
    let mut causes: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut exposure_hours = 0.0;
    for s in spans {
        exposure_hours += (s.age_to - s.age_from).max(0.0) / 3600.0;
        if s.dropped {
            let cause = s.end_cause.clone().unwrap_or_else(|| "unknown".into());
            *causes.entry((s.target.clone(), cause)).or_default() += 1;
        }
    }
    let total: u64 = causes.values().sum();
    let drop_blocks = event_blocks(all, grid, true);
    let dispersion = evidence::dispersion(&[&drop_blocks]);
    let forced = ForcedLogouts {
        total,
        session_hours: exposure_hours,
        rate_per_session_hour: if drop_blocks.is_empty() {
            stats::rate(total, exposure_hours)
        } else {
            evidence::rate(&drop_blocks)
        },
        by_cause: causes
            .into_iter()
            .map(|((target, cause), count)| LogoutCauseRow {
                target,
                cause,
                count,
                share: stats::wilson(count, total),
            })
            .collect(),
        events: forced_logout_events(spans),
    };
    // Lifetimes: one per session (who held it, login time); a drop sits at
    // its bracket's midpoint.
    type SessionKey = (String, String, String, Option<i64>, i64);
    let mut sessions: BTreeMap<SessionKey, (f64, bool, bool)> = BTreeMap::new();
    for s in spans {
        let key = (
            s.site.clone(),
            s.target.clone(),
            s.origin.clone(),
            s.slot,
            (s.login_at * 1000.0).round() as i64,
        );
        let entry = sessions.entry(key).or_insert((0.0, false, false));
        entry.0 = entry.0.max(drop_age(s));
        entry.1 |= s.dropped;
        entry.2 |= s.end_cause.is_some();
    }
    let lifetimes: Vec<Lifetime> = sessions
        .values()
        .map(|(age, dropped, _)| Lifetime {
            age: Duration::from_secs_f64(age.max(0.0)),
            dropped: *dropped,
        })
        .collect();
    let dropped = lifetimes.iter().filter(|l| l.dropped).count() as u64;
    let curve = kaplan_meier(&lifetimes);
    // Greenwood's variance, log-log transformed interval.
    let mut greenwood = 0.0;
    let survival: Vec<SurvivalRow> = curve
        .iter()
        .map(|p| {
            let (d, n) = (p.drops as f64, p.at_risk as f64);
            if n > d {
                greenwood += d / (n * (n - d));
            }
            let s = p.survival;
            let (low, high) = if s > 0.0 && s < 1.0 {
                let se = (greenwood / (s.ln() * s.ln())).sqrt();
                let a = s.powf((stats::Z95 * se).exp());
                let b = s.powf((-stats::Z95 * se).exp());
                (a.min(b).clamp(0.0, 1.0), a.max(b).clamp(0.0, 1.0))
            } else {
                (s, s)
            };
            SurvivalRow {
                age_seconds: p.age.as_secs_f64(),
                survival: s,
                low,
                high,
                at_risk: p.at_risk as u64,
                drops: p.drops as u64,
            }
        })
        .collect();
    let median = survival
        .iter()
        .find(|p| p.survival <= 0.5)
        .map(|p| p.age_seconds);

    // Hazard per age band.
    let mut band_exposure: BTreeMap<String, f64> = BTreeMap::new();
    let mut band_drops: BTreeMap<String, u64> = BTreeMap::new();
    for s in spans {
        for (label, d) in bands.split(
            Duration::from_secs_f64(s.age_from.max(0.0)),
            Duration::from_secs_f64(s.age_to.max(0.0)),
        ) {
            *band_exposure.entry(label.to_string()).or_default() += d.as_secs_f64() / 3600.0;
        }
        if s.dropped {
            let label = bands.label(Duration::from_secs_f64(drop_age(s).max(0.0)));
            *band_drops.entry(label.to_string()).or_default() += 1;
        }
    }
    let band_rows: Vec<BandHazard> = bands
        .labels()
        .iter()
        .map(|label| {
            let exposure = band_exposure.get(label).copied().unwrap_or(0.0);
            let drops = band_drops.get(label).copied().unwrap_or(0);
            BandHazard {
                band: label.clone(),
                exposure_hours: exposure,
                drops,
                hazard_per_hour: rule::band_rate(drops, exposure, dispersion),
            }
        })
        .collect();

    // The "log out every two hours" rule.
    let edges = bands.edges();
    let two_hours = Duration::from_secs(7200);
    let age = rule_age.unwrap_or_else(|| {
        if edges.iter().any(|e| *e >= two_hours) {
            two_hours
        } else {
            edges.get(1).or(edges.first()).copied().unwrap_or(two_hours)
        }
    });
    let drops: Vec<rule::Drop> = spans
        .iter()
        .filter(|s| s.dropped)
        .map(|s| rule::Drop {
            age: drop_age(s),
            block: grid.index(s.login_at + drop_age(s)),
        })
        .collect();
    let rule = rule::verdict(&band_rows, edges, age, &drops, dispersion);
    let sessions = Sessions {
        sessions: lifetimes.len() as u64,
        dropped,
        censored: lifetimes.len() as u64 - dropped,
        survival,
        median_survival_seconds: median,
        bands: band_rows,
        rule,
        dispersion,
    };
    (forced, sessions)
}

pub(super) fn drop_age(s: &SpanRow) -> f64 {
    match s.bracket() {
        Some((alive, seen)) => (alive + seen) / 2.0,
        None => s.age_to,
    }
}

fn forced_logout_events(spans: &[SpanRow]) -> Vec<ForcedLogoutRow> {
    let mut events: Vec<ForcedLogoutRow> = spans
        .iter()
        .filter_map(|s| {
            let (alive, seen) = s.bracket()?;
            let seen_at = s.login_at + seen;
            Some(ForcedLogoutRow {
                seen_at,
                seen_text: rfc3339(seen_at),
                site: s.site.clone(),
                target: s.target.clone(),
                cause: s.end_cause.clone().unwrap_or_else(|| "unknown".into()),
                holder_kind: s.origin_kind.clone(),
                holder: s.holder(),
                alive_age_seconds: alive,
                seen_age_seconds: seen,
            })
        })
        .collect();
    events.sort_by(|a, b| a.seen_at.total_cmp(&b.seen_at));
    events
}

fn kept_section(rows: &[KeptRow], spans: &[SpanRow]) -> KeptSessions {
    let mut targets: BTreeMap<(String, String), KeptTargetRow> = BTreeMap::new();
    for r in rows {
        let row = kept_row(&mut targets, &r.site, &r.target);
        match r.activity.as_str() {
            "check" => {
                row.checks += 1;
                *row.check_outcomes.entry(r.outcome.clone()).or_default() += 1;
                if r.state == "unknown" {
                    row.unknown_checks += 1;
                }
            }
            // Each attempt's first step; its record's state says how it went.
            "login" if r.seq == Some(0) => {
                row.logins += 1;
                if r.state == "ended" {
                    row.failed_logins += 1;
                }
            }
            _ => {}
        }
    }
    for s in spans.iter().filter(|s| s.origin_kind == "kept") {
        if let Some(end) = &s.end_cause {
            let row = kept_row(&mut targets, &s.site, &s.target);
            *row.lives_ended.entry(end.clone()).or_default() += 1;
        }
    }
    KeptSessions {
        targets: targets.into_values().collect(),
    }
}

fn kept_row<'a>(
    targets: &'a mut BTreeMap<(String, String), KeptTargetRow>,
    site: &str,
    target: &str,
) -> &'a mut KeptTargetRow {
    targets
        .entry((site.to_string(), target.to_string()))
        .or_insert_with(|| KeptTargetRow {
            site: site.to_string(),
            target: target.to_string(),
            checks: 0,
            check_outcomes: BTreeMap::new(),
            unknown_checks: 0,
            logins: 0,
            failed_logins: 0,
            lives_ended: BTreeMap::new(),
        })
}

fn reporting_load(runs: &[RunRow], steps: &[StepRow], grid: &BlockGrid) -> ReportingLoad {
    // Report journeys' whole runs, and report steps inside interactive
    // journeys, by the system they ran on.
    let mut reports: BTreeMap<(String, String, String), (Vec<f64>, u64)> = BTreeMap::new();
    for run in runs.iter().filter(|r| r.kind == "report") {
        let entry = reports
            .entry((run.target.clone(), run.journey.clone(), String::new()))
            .or_default();
        entry.0.push(run.duration);
        entry.1 += u64::from(is_success(&run.outcome));
    }
    let run_kind: BTreeMap<i64, &str> = runs.iter().map(|r| (r.id, r.kind.as_str())).collect();
    for s in steps
        .iter()
        .filter(|s| s.kind == "report" && run_kind.get(&s.run_id) != Some(&"report"))
    {
        let entry = reports
            .entry((s.target.clone(), s.journey.clone(), s.step.clone()))
            .or_default();
        entry.0.push(s.duration);
        entry.1 += u64::from(is_success(&s.outcome));
    }
    let report_targets: BTreeSet<String> = reports.keys().map(|k| k.0.to_uppercase()).collect();
    let report_runs = reports
        .into_iter()
        .map(
            |((target, journey, step), (durations, successes))| ReportRunRow {
                runs: durations.len() as u64,
                successes,
                median_seconds: stats::quantile(&durations, 0.5),
                p95_seconds: stats::quantile(&durations, 0.95),
                target,
                journey,
                step,
            },
        )
        .collect();
    type Sides = (BTreeMap<i64, Vec<f64>>, BTreeMap<i64, Vec<f64>>);
    let block_of = |s: &StepRow| grid.index(s.sent_at).unwrap_or(i64::MAX);
    let block = |m: &BTreeMap<i64, Vec<f64>>| {
        let refs = slices(m);
        LatencyBlock {
            steps: refs.iter().map(|b| b.len() as u64).sum(),
            p50_ms: evidence::quantile(&refs, 0.5),
            p95_ms: evidence::quantile(&refs, 0.95),
        }
    };
    let mut interactive = Vec::new();
    for scope in ["same_system", "any_system"] {
        let mut by_target: BTreeMap<String, Sides> = BTreeMap::new();
        for s in steps
            .iter()
            .filter(|s| s.kind == "interactive" && s.phase == "journey" && !s.censored)
        {
            let entry = by_target.entry(s.target.clone()).or_default();
            let loaded = if scope == "same_system" {
                s.report_same
            } else {
                s.report_any
            };
            let side = if loaded { &mut entry.1 } else { &mut entry.0 };
            side.entry(block_of(s))
                .or_default()
                .push(s.duration * 1000.0);
        }
        interactive.extend(
            by_target
                .into_iter()
                .map(|(target, (without, with))| LoadComparison {
                    reports_on: if scope == "same_system" {
                        format!("{} itself", target.to_uppercase())
                    } else {
                        let on: Vec<String> = report_targets.iter().cloned().collect();
                        format!("any system ({})", on.join(", "))
                    },
                    p95_difference_ms: evidence::quantile_difference(
                        &slices(&without),
                        &slices(&with),
                        0.95,
                    ),
                    without_reports: block(&without),
                    with_reports: block(&with),
                    target,
                    scope,
                }),
        );
    }
    ReportingLoad {
        report_runs,
        interactive,
    }
}

/// Each block's samples.
fn slices(blocks: &BTreeMap<i64, Vec<f64>>) -> Vec<&[f64]> {
    blocks.values().map(Vec::as_slice).collect()
}

/// One row per calendar month (UTC) of the window.
fn monthly(rows: &Rows, window: Window) -> Vec<MonthRow> {
    use chrono::{Datelike, TimeZone, Utc};
    let mut out = Vec::new();
    let Some(start) = Utc.timestamp_opt(window.from.floor() as i64, 0).single() else {
        return out;
    };
    let (mut year, mut month) = (start.year(), start.month());
    while let Some(from) = Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single() {
        let (next_year, next_month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        let Some(to) = Utc
            .with_ymd_and_hms(next_year, next_month, 1, 0, 0, 0)
            .single()
        else {
            break;
        };
        let (f, t) = (
            (from.timestamp() as f64).max(window.from),
            (to.timestamp() as f64).min(window.to + 1e-3),
        );
        if f >= window.to + 1e-3 {
            break;
        }
        let inside = |x: f64| x >= f && x < t;
        let month_rows = Rows {
            runs: rows
                .runs
                .iter()
                .filter(|r| inside(r.intended_start))
                .cloned()
                .collect(),
            steps: rows
                .steps
                .iter()
                .filter(|s| inside(s.sent_at))
                .cloned()
                .collect(),
            freezes: rows
                .freezes
                .iter()
                .filter(|x| inside(x.started))
                .cloned()
                .collect(),
            spans: rows
                .spans
                .iter()
                .filter(|s| s.login_at + s.age_to >= f && s.login_at + s.age_from < t)
                .cloned()
                .collect(),
            ..Rows::default()
        };
        let obs = month_rows.observations(None);
        let grid = BlockGrid::new(f, t, f, compare::block_length(&obs, f, t, f));
        let latencies: BTreeMap<i64, Vec<f64>> =
            obs.steps
                .iter()
                .filter(|s| !s.2)
                .fold(BTreeMap::new(), |mut m, (at, ms, _)| {
                    m.entry(grid.index(*at).unwrap_or(i64::MAX))
                        .or_default()
                        .push(*ms);
                    m
                });
        let refs = slices(&latencies);
        let freezes = event_blocks(&obs, &grid, false);
        out.push(MonthRow {
            month: format!("{year:04}-{month:02}"),
            from: f,
            to: t,
            runs: month_rows.runs.len() as u64,
            availability: evidence::proportion(&run_blocks(&month_rows.runs, &grid, |_| true)),
            p95_ms: evidence::quantile(&refs, 0.95),
            freezes: month_rows.freezes.len() as u64,
            freezes_per_day: evidence::rate(&freezes).scaled(24.0),
            forced_logouts: obs.drops.len() as u64,
            logouts_per_session_hour: evidence::rate(&event_blocks(&obs, &grid, true)),
        });
        (year, month) = (next_year, next_month);
    }
    out
}

/// Formats an estimate as "v (95% CI l–h)" with `digits` decimals and a unit.
pub fn show(e: &Estimate, digits: usize, unit: &str) -> String {
    match (e.value, e.low, e.high) {
        (Some(v), Some(l), Some(h)) => {
            format!("{v:.digits$}{unit} (95% CI {l:.digits$} to {h:.digits$}{unit})")
        }
        (Some(v), _, _) => format!("{v:.digits$}{unit}"),
        _ => "no data".into(),
    }
}

pub fn show_percent(e: &Estimate) -> String {
    show(&e.clone().scaled(100.0), 2, "%")
}
