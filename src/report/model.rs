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

use super::stats::{self, Estimate};
use crate::detect::{kaplan_meier, AgeBands, Lifetime};
use crate::journal::read::{JournalReader, KeptRow, ReadError, SpanRow, StepRow, Window};
use crate::outcome::unix_secs;
use crate::recorder;

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
    pub now: SystemTime,
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
    /// The statistical methods used, by figure.
    pub methods: BTreeMap<&'static str, &'static str>,
    pub availability: Availability,
    pub latency: Latency,
    pub freezes: Freezes,
    pub forced_logouts: ForcedLogouts,
    pub sessions: Sessions,
    pub kept_sessions: KeptSessions,
    pub reporting_load: ReportingLoad,
    pub changes: Vec<ChangeComparison>,
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
}

#[derive(Clone, Debug, Serialize)]
pub struct TrendSeries {
    pub label: String,
    /// (bucket start, unix seconds; p95 in ms).
    pub points: Vec<(f64, f64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Freezes {
    pub targets: Vec<FreezeSummary>,
    pub episodes: Vec<FreezeEpisodeRow>,
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
pub struct RuleVerdict {
    pub age_seconds: f64,
    pub age_text: String,
    /// Pooled hazard of bands below the age.
    pub younger: Estimate,
    /// Pooled hazard of bands at or after the age.
    pub older: Estimate,
    /// `older_more`, `older_less`, `no_clear_difference` or `not_enough_data`.
    pub verdict: &'static str,
    pub sentence: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportingLoad {
    pub report_runs: Vec<ReportRunRow>,
    pub interactive: Vec<LoadComparison>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportRunRow {
    pub target: String,
    pub journey: String,
    pub runs: u64,
    pub successes: u64,
    pub median_seconds: Estimate,
    pub p95_seconds: Estimate,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadComparison {
    pub target: String,
    /// `same_system`: a report journey was running on this target;
    /// `any_system`: on any target.
    pub scope: &'static str,
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

#[derive(Clone, Debug, Serialize)]
pub struct ChangeComparison {
    pub name: String,
    pub description: String,
    pub at: f64,
    pub at_text: String,
    /// `compared`, or `not_enough_data` with `note` saying why.
    pub status: &'static str,
    pub note: String,
    pub window_seconds: f64,
    pub before: Option<ChangeSide>,
    pub after: Option<ChangeSide>,
    /// After minus before: positive means slower after the change.
    pub p95_difference_ms: Estimate,
    pub freeze_rate_difference_per_hour: Estimate,
    pub logout_rate_difference_per_session_hour: Estimate,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChangeSide {
    pub from: f64,
    pub to: f64,
    /// Interactive journey steps measured in the window.
    pub steps: u64,
    pub p95_ms: Estimate,
    pub freezes: u64,
    pub freeze_rate_per_hour: Estimate,
    pub forced_logouts: u64,
    pub session_hours: f64,
    pub logout_rate_per_session_hour: Estimate,
}

pub fn rfc3339(t: f64) -> String {
    if !t.is_finite() || t < 0.0 {
        return "-".into();
    }
    let secs = t.floor() as u64;
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .to_string()
}

/// "1h 30m", "45s", "2.5s": a duration for people.
pub fn human_duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "-".into();
    }
    if seconds < 10.0 {
        return format!("{seconds:.1} s");
    }
    let d = Duration::from_secs(seconds.round() as u64);
    humantime::format_duration(d).to_string()
}

/// Builds the model from the journal over the requested window.
pub fn build(reader: &JournalReader, options: &ReportOptions) -> Result<Report, ReadError> {
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

    let runs = reader.runs(query)?;
    let steps = reader.steps(query)?;
    let freezes = reader.freezes(query)?;
    let spans = reader.spans(query)?;
    let kept = reader.kept(query)?;
    let histograms = reader.histograms(Window {
        from: window.from - 60.0,
        to: query.to,
    })?;
    let changes = reader.changes()?;
    let bands = reader
        .meta("age_band_edges_seconds")?
        .and_then(|text| serde_json::from_str::<Vec<f64>>(&text).ok())
        .filter(|edges| !edges.is_empty())
        .map(|edges| AgeBands::new(edges.into_iter().map(Duration::from_secs_f64).collect()))
        .unwrap_or_default();

    let mut sites: BTreeSet<String> = runs.iter().map(|r| r.site.clone()).collect();
    if sites.is_empty() {
        sites.extend(reader.meta("site")?);
    }

    let availability = availability(&runs);
    let journey_steps: BTreeSet<(String, String, String)> = steps
        .iter()
        .filter(|s| s.phase == "journey")
        .map(|s| (s.target.clone(), s.journey.clone(), s.step.clone()))
        .collect();
    let latency = latency(&histograms, window, &journey_steps);
    let freezes = freeze_section(&freezes, window);
    let (forced_logouts, sessions) = session_sections(&spans, &bands, options.rule_age);
    let kept_sessions = kept_section(&kept, &spans);
    let reporting_load = reporting_load(&runs, &steps);
    let change_rows = changes
        .iter()
        .map(|c| compare_change(reader, c, span, options))
        .collect::<Result<Vec<_>, _>>()?;

    let mut methods = BTreeMap::new();
    methods.insert("availability", stats::WILSON);
    methods.insert("latency percentiles", "exact merge of per-minute HdrHistograms (3 significant figures); interval: distribution-free order-statistic (95%)");
    methods.insert("freeze and logout rates", stats::GARWOOD);
    methods.insert("rate differences", stats::MOVER);
    methods.insert("p95 differences", stats::BOOTSTRAP);
    methods.insert(
        "session survival",
        "Kaplan-Meier product-limit estimate; Greenwood log-log 95% band",
    );
    methods.insert(
        "hazard by age band",
        "forced logouts / session-hours in band; exact Poisson (Garwood) interval (95%)",
    );

    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        generated_at: rfc3339(unix_secs(options.now)),
        journal: options.journal.clone(),
        sites: sites.into_iter().collect(),
        window: TimeWindow {
            from: window.from,
            to: window.to,
            from_text: rfc3339(window.from),
            to_text: rfc3339(window.to),
            hours: window.hours(),
            has_data: !runs.is_empty(),
        },
        summary: Vec::new(),
        methods,
        availability,
        latency,
        freezes,
        forced_logouts,
        sessions,
        kept_sessions,
        reporting_load,
        changes: change_rows,
    };
    report.summary = summary(&report);
    Ok(report)
}

fn is_success(outcome: &str) -> bool {
    matches!(outcome, "ok" | "slow")
}

fn availability(runs: &[crate::journal::read::RunRow]) -> Availability {
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
    let row = |site: String, target: String, journey: String, c: Counts| AvailabilityRow {
        site,
        target,
        journey,
        kind: c.0,
        runs: c.1,
        successes: c.2,
        failures: c.3,
        availability: stats::wilson(c.2, c.1),
    };
    Availability {
        sites: sites
            .into_iter()
            .map(|(site, c)| row(site, String::new(), String::new(), c))
            .collect(),
        journeys: journeys
            .into_iter()
            .map(|((site, target, journey), c)| row(site, target, journey, c))
            .collect(),
    }
}

fn latency(
    rows: &[crate::journal::read::HistogramRow],
    window: Window,
    journey_steps: &BTreeSet<(String, String, String)>,
) -> Latency {
    let span = (window.to - window.from).max(60.0);
    let bucket = ((span / TREND_POINTS / 60.0).ceil() * 60.0).max(60.0);
    let mut merged: BTreeMap<(String, String, String), Histogram<u64>> = BTreeMap::new();
    let mut trend: BTreeMap<(String, String, String), BTreeMap<i64, Histogram<u64>>> =
        BTreeMap::new();
    for row in rows {
        let key = (row.target.clone(), row.journey.clone(), row.step.clone());
        let _ = merged
            .entry(key.clone())
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
    let steps = merged
        .into_iter()
        .map(|((target, journey, step), h)| StepLatency {
            count: h.len(),
            p50_ms: stats::histogram_quantile_ms(&h, 0.50),
            p95_ms: stats::histogram_quantile_ms(&h, 0.95),
            p99_ms: stats::histogram_quantile_ms(&h, 0.99),
            max_ms: h.max() as f64 / 1000.0,
            target,
            journey,
            step,
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
        .map(|((target, journey, step), buckets)| TrendSeries {
            label: format!("{target} / {journey} / {step}"),
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

fn freeze_section(rows: &[crate::journal::read::FreezeRow], window: Window) -> Freezes {
    let mut targets: BTreeMap<String, Vec<&crate::journal::read::FreezeRow>> = BTreeMap::new();
    for row in rows {
        targets.entry(row.target.clone()).or_default().push(row);
    }
    Freezes {
        targets: targets
            .into_iter()
            .map(|(target, list)| FreezeSummary {
                count: list.len() as u64,
                rate_per_hour: stats::rate(list.len() as u64, window.hours()),
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
    }
}

/// Session-hours and forced logouts within a window, from spans clipped to it.
fn exposure_and_drops(spans: &[SpanRow], from: f64, to: f64) -> (f64, u64) {
    let mut hours = 0.0;
    let mut drops = 0;
    for s in spans {
        let start = (s.login_at + s.age_from).max(from);
        let end = (s.login_at + s.age_to).min(to);
        if end > start {
            hours += (end - start) / 3600.0;
        }
        let at = s.login_at + s.age_to;
        if s.dropped && at >= from && at < to {
            drops += 1;
        }
    }
    (hours, drops)
}

fn session_sections(
    spans: &[SpanRow],
    bands: &AgeBands,
    rule_age: Option<Duration>,
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
    let forced = ForcedLogouts {
        total,
        session_hours: exposure_hours,
        rate_per_session_hour: stats::rate(total, exposure_hours),
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
                hazard_per_hour: stats::rate(drops, exposure),
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
    let mut younger = (0.0, 0u64);
    let mut older = (0.0, 0u64);
    let mut lower = Duration::ZERO;
    for (index, row) in band_rows.iter().enumerate() {
        let side = if lower >= age {
            &mut older
        } else {
            &mut younger
        };
        side.0 += row.exposure_hours;
        side.1 += row.drops;
        lower = edges.get(index).copied().unwrap_or(Duration::MAX);
    }
    let younger_rate = stats::rate(younger.1, younger.0);
    let older_rate = stats::rate(older.1, older.0);
    let age_text = humantime::format_duration(age).to_string();
    let (verdict, sentence) = rule_sentence(&younger_rate, &older_rate, older.0, &age_text);
    let rule = RuleVerdict {
        age_seconds: age.as_secs_f64(),
        age_text,
        younger: younger_rate,
        older: older_rate,
        verdict,
        sentence,
    };
    let sessions = Sessions {
        sessions: lifetimes.len() as u64,
        dropped,
        censored: lifetimes.len() as u64 - dropped,
        survival,
        median_survival_seconds: median,
        bands: band_rows,
        rule,
    };
    (forced, sessions)
}

/// Where a span's end sits on the age axis: a drop at its bracket's
/// midpoint, anything else where its exposure ends.
fn drop_age(s: &SpanRow) -> f64 {
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

fn rule_sentence(
    younger: &Estimate,
    older: &Estimate,
    older_hours: f64,
    age: &str,
) -> (&'static str, String) {
    let show = |e: &Estimate| match (e.value, e.low, e.high) {
        (Some(v), Some(l), Some(h)) => format!("{v:.2} per session-hour (95% CI {l:.2} to {h:.2})"),
        _ => "no data".to_string(),
    };
    if older_hours <= 0.0 || younger.value.is_none() {
        return (
            "not_enough_data",
            format!("Not enough evidence: no session in the journal has yet lived past {age}, so the rule cannot be tested."),
        );
    }
    let (yl, yh) = (younger.low.unwrap_or(0.0), younger.high.unwrap_or(f64::MAX));
    if older.n == 0 && older.high.unwrap_or(f64::MAX) > 10.0 * yh.max(1e-9) {
        return (
            "not_enough_data",
            format!(
                "Not enough evidence: sessions have spent only {} in total past {age}, too little to tell whether older sessions drop more often.",
                human_duration(older_hours * 3600.0)
            ),
        );
    }
    let (ol, oh) = (older.low.unwrap_or(0.0), older.high.unwrap_or(f64::MAX));
    if ol > yh {
        (
            "older_more",
            format!(
                "Yes: sessions older than {age} are forced out more often — {} against {} for younger sessions.",
                show(older),
                show(younger)
            ),
        )
    } else if oh < yl {
        (
            "older_less",
            format!(
                "No: sessions older than {age} are forced out less often — {} against {} for younger sessions.",
                show(older),
                show(younger)
            ),
        )
    } else {
        (
            "no_clear_difference",
            format!(
                "Not enough evidence that sessions older than {age} drop more often: {} against {} for younger sessions; the 95% intervals overlap.",
                show(older),
                show(younger)
            ),
        )
    }
}

fn reporting_load(runs: &[crate::journal::read::RunRow], steps: &[StepRow]) -> ReportingLoad {
    let mut reports: BTreeMap<(String, String), Vec<&crate::journal::read::RunRow>> =
        BTreeMap::new();
    for run in runs.iter().filter(|r| r.kind == "report") {
        reports
            .entry((run.target.clone(), run.journey.clone()))
            .or_default()
            .push(run);
    }
    let report_runs = reports
        .into_iter()
        .map(|((target, journey), list)| {
            let durations: Vec<f64> = list.iter().map(|r| r.duration).collect();
            ReportRunRow {
                runs: list.len() as u64,
                successes: list.iter().filter(|r| is_success(&r.outcome)).count() as u64,
                median_seconds: stats::quantile(&durations, 0.5),
                p95_seconds: stats::quantile(&durations, 0.95),
                target,
                journey,
            }
        })
        .collect();
    let block = |v: &[f64]| LatencyBlock {
        steps: v.len() as u64,
        p50_ms: stats::quantile(v, 0.5),
        p95_ms: stats::quantile(v, 0.95),
    };
    let mut interactive = Vec::new();
    for scope in ["same_system", "any_system"] {
        let mut by_target: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for s in steps
            .iter()
            .filter(|s| s.kind == "interactive" && s.phase == "journey")
        {
            let entry = by_target.entry(s.target.clone()).or_default();
            let ms = s.duration * 1000.0;
            let loaded = if scope == "same_system" {
                s.report_same
            } else {
                s.report_any
            };
            if loaded {
                entry.1.push(ms);
            } else {
                entry.0.push(ms);
            }
        }
        interactive.extend(
            by_target
                .into_iter()
                .map(|(target, (without, with))| LoadComparison {
                    without_reports: block(&without),
                    with_reports: block(&with),
                    p95_difference_ms: stats::bootstrap_quantile_difference(&without, &with, 0.95),
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

fn compare_change(
    reader: &JournalReader,
    change: &crate::journal::read::ChangeRow,
    span: Option<(f64, f64)>,
    options: &ReportOptions,
) -> Result<ChangeComparison, ReadError> {
    let mut out = ChangeComparison {
        name: change.name.clone(),
        description: change.description.clone(),
        at: change.at,
        at_text: rfc3339(change.at),
        status: "not_enough_data",
        note: String::new(),
        window_seconds: 0.0,
        before: None,
        after: None,
        p95_difference_ms: Estimate::none(0, stats::BOOTSTRAP),
        freeze_rate_difference_per_hour: Estimate::none(0, stats::MOVER),
        logout_rate_difference_per_session_hour: Estimate::none(0, stats::MOVER),
    };
    let Some((first, last)) = span else {
        out.note = "the journal holds no runs".into();
        return Ok(out);
    };
    let first = options.from.map_or(first, |f| first.max(unix_secs(f)));
    let last = options.to.map_or(last, |t| last.min(unix_secs(t)));
    let before_avail = change.at - first;
    let after_avail = last - change.at;
    if before_avail <= 0.0 {
        out.note = format!(
            "the journal's data starts at {}, after the change",
            rfc3339(first)
        );
        return Ok(out);
    }
    if after_avail <= 0.0 {
        out.note = format!(
            "the journal's data ends at {}, before the change",
            rfc3339(last)
        );
        return Ok(out);
    }
    let w = MAX_CHANGE_WINDOW
        .as_secs_f64()
        .min(before_avail)
        .min(after_avail);
    out.window_seconds = w;
    let side = |from: f64, to: f64| -> Result<(ChangeSide, Vec<f64>), ReadError> {
        let window = Window { from, to };
        let latencies: Vec<f64> = reader
            .steps(window)?
            .iter()
            .filter(|s| s.kind == "interactive" && s.phase == "journey")
            .map(|s| s.duration * 1000.0)
            .collect();
        let freezes = reader.freezes(window)?.len() as u64;
        let (hours, drops) = exposure_and_drops(&reader.spans(window)?, from, to);
        Ok((
            ChangeSide {
                from,
                to,
                steps: latencies.len() as u64,
                p95_ms: stats::quantile(&latencies, 0.95),
                freezes,
                freeze_rate_per_hour: stats::rate(freezes, window.hours()),
                forced_logouts: drops,
                session_hours: hours,
                logout_rate_per_session_hour: stats::rate(drops, hours),
            },
            latencies,
        ))
    };
    let (before, before_lat) = side(change.at - w, change.at)?;
    let (after, after_lat) = side(change.at, change.at + w)?;
    out.p95_difference_ms = stats::bootstrap_quantile_difference(&before_lat, &after_lat, 0.95);
    out.freeze_rate_difference_per_hour =
        stats::rate_difference(&before.freeze_rate_per_hour, &after.freeze_rate_per_hour);
    out.logout_rate_difference_per_session_hour = stats::rate_difference(
        &before.logout_rate_per_session_hour,
        &after.logout_rate_per_session_hour,
    );
    if before_lat.is_empty() || after_lat.is_empty() {
        out.note = "no interactive steps on one side of the change".into();
    } else {
        out.status = "compared";
        out.note = format!("{} on each side of the change", human_duration(w));
    }
    out.before = Some(before);
    out.after = Some(after);
    Ok(out)
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

fn summary(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    if !r.window.has_data {
        out.push(
            "The journal holds no runs in this period: there is nothing to report yet.".into(),
        );
        return out;
    }
    out.push(format!(
        "This report covers {} of monitoring from {} to {} (site{} {}).",
        human_duration(r.window.hours * 3600.0),
        r.window.from_text,
        r.window.to_text,
        if r.sites.len() == 1 { "" } else { "s" },
        r.sites.join(", ")
    ));
    for site in &r.availability.sites {
        out.push(format!(
            "The synthetic social worker's tasks succeeded in {} of {} runs: availability {}.",
            site.successes,
            site.runs,
            show_percent(&site.availability)
        ));
    }
    let freezes: u64 = r.freezes.targets.iter().map(|t| t.count).sum();
    if freezes == 0 {
        out.push("No freeze was seen.".into());
    } else {
        let longest = r
            .freezes
            .targets
            .iter()
            .map(|t| t.longest_seconds)
            .fold(0.0, f64::max);
        out.push(format!(
            "The systems froze {freezes} time{}; the longest freeze lasted {}.",
            if freezes == 1 { "" } else { "s" },
            human_duration(longest)
        ));
    }
    out.push(format!(
        "Sessions were forced to log out {} time{} in {:.1} session-hours: {}.",
        r.forced_logouts.total,
        if r.forced_logouts.total == 1 { "" } else { "s" },
        r.forced_logouts.session_hours,
        show(
            &r.forced_logouts.rate_per_session_hour,
            2,
            " per session-hour"
        )
    ));
    out.push(r.sessions.rule.sentence.clone());
    for c in &r.changes {
        if c.status == "compared" {
            let d = &c.p95_difference_ms;
            let direction = match (d.low, d.high) {
                (Some(l), _) if l > 0.0 => "slower after",
                (_, Some(h)) if h < 0.0 => "faster after",
                _ => "no clear difference in speed across",
            };
            out.push(format!(
                "Change \"{}\": {direction} the change (p95 difference {}).",
                c.name,
                show(d, 0, " ms")
            ));
        } else {
            out.push(format!(
                "Change \"{}\" cannot be assessed yet: {}.",
                c.name, c.note
            ));
        }
    }
    out
}
