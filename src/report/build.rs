//! Building the report model: the journal read once into a ledger
//! ([`crate::ledger`]), then every section computed from it. Memory is the
//! ledger's, bounded by slots × steps, whatever the journal's length.

use std::collections::{BTreeMap, BTreeSet};

use super::changes::{self, ChangeComparison};
use super::design::{self, Design, Sheet};
use super::evidence;
use super::model::*;
use super::sessions;
use super::stats::{self, Estimate};
use super::time_lost;
use crate::journal::read::{ChangeRow, JournalReader};
use crate::ledger::build::{BuildError, JournalMeta, Keep, SlotWindow};
use crate::ledger::{class_value, JourneyKey, Ledger, SlotClock, StepKey};
use crate::outcome::unix_secs;
use crate::timefmt::rfc3339;

/// How many points the latency trend aims for.
const TREND_POINTS: f64 = 60.0;

/// The window a report over `meta`'s journal covers: the options' `from`
/// and `to`, clipped to what the journal measured, in whole slots.
pub fn window(
    meta: &JournalMeta,
    options: &ReportOptions,
    rollups: Option<(f64, f64)>,
) -> SlotWindow {
    let now = unix_secs(options.now);
    let (data_from, data_to) = meta.span.unwrap_or((now, now));
    let from = options
        .from
        .map(unix_secs)
        .map_or(data_from, |r| r.max(data_from));
    let to = options
        .to
        .map(unix_secs)
        .map_or(data_to, |r| r.min(data_to))
        .max(from);
    // Compacted hours can only be read whole.
    let hourly = rollups.is_some_and(|(f, t)| f < to && t >= from);
    let clock = SlotClock::for_window(to - from, meta.calendar_scale, hourly);
    SlotWindow::new(clock, from, to)
}

/// Reads the journal and builds the model over the requested window.
/// `progress` hears how many rows have been read.
pub fn build(
    reader: &JournalReader,
    options: &ReportOptions,
    progress: impl FnMut(u64),
) -> Result<Report, BuildError> {
    let meta = JournalMeta::read(reader)?;
    let window = window(&meta, options, reader.rollup_span()?);
    let ledger = crate::ledger::build::ledger(reader, &meta, window, Keep::AllSteps, progress)?;
    Ok(from_ledger(&ledger, &meta, window, options))
}

/// Builds the model from a ledger.
pub fn from_ledger(
    ledger: &Ledger,
    meta: &JournalMeta,
    window: SlotWindow,
    options: &ReportOptions,
) -> Report {
    let clock = window.clock;
    let sheet = Sheet::new(ledger);
    let longest = ledger.freezes.iter().map(|f| f.length).fold(0.0, f64::max);
    let changes: Vec<f64> = meta.changes.iter().map(|c| c.at).collect();
    let unit_days = design::unit_days(&sheet, clock, longest, &changes);
    let design = Design::new(clock, unit_days);
    let slots = sheet.slots(None);
    let span = ledger
        .measured
        .map(|(f, t)| (f.max(window.from()), t.min(window.to())));

    let changes = meta
        .changes
        .iter()
        .map(|c| compared_change(c, meta, span, &sheet, &design))
        .collect();
    let (forced_logouts, sessions) =
        sessions::sections(&sheet, &design, &slots, &meta.bands, options.rule_age);
    let mut freezes = freeze_section(&sheet, &design);
    freezes.evidence_folder = crate::journal::folder_beside(std::path::Path::new(&options.journal))
        .display()
        .to_string();
    let monthly = monthly_if_asked(options.period, &sheet, &design, window);
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        generated_at: rfc3339(unix_secs(options.now)),
        generated: unix_secs(options.now),
        journal: options.journal.clone(),
        sites: ledger.sites.clone(),
        window: time_window(window, !slots.is_empty()),
        summary: Vec::new(),
        time_lost: time_lost::time_lost(&sheet, &design, &slots, &meta.practitioners),
        methods: methods(&design),
        evidence: evidence_settings(&design, unit_days),
        availability: availability(&sheet, &design, &slots),
        latency: latency(&sheet, &design, window),
        freezes,
        forced_logouts,
        sessions,
        kept_sessions: sessions::kept(ledger),
        reporting_load: reporting_load(&sheet, &design, &slots),
        changes,
        monthly,
        agent_stalls: agent_stalls(ledger),
        seeded_truth: meta.seeded_truth.clone(),
    };
    report.summary = super::summary::summary(&report);
    report
}

/// One change compared, with the time it cost when there is evidence on
/// it; the headline then names that time too.
fn compared_change(
    c: &ChangeRow,
    meta: &JournalMeta,
    span: Option<(f64, f64)>,
    sheet: &Sheet<'_>,
    design: &Design,
) -> ChangeComparison {
    let mut compared = changes::compare(c, span, sheet, design);
    if compared.evidence.is_some() {
        let t = time_lost::change(
            sheet,
            design,
            &meta.practitioners,
            c.at,
            compared.window_seconds,
        );
        if let Some(e) = &compared.evidence {
            compared.headline = changes::headline(e, &compared.findings, Some(&t));
        }
        compared.time_lost = Some(t);
    }
    compared
}

/// Month by month when asked, or when `auto` and the window is longer than
/// a month of calendar time.
fn monthly_if_asked(
    period: Period,
    sheet: &Sheet<'_>,
    design: &Design,
    window: SlotWindow,
) -> Vec<MonthRow> {
    match period {
        Period::Month => monthly(sheet, design, window),
        Period::Auto if window.to() - window.from() > 31.0 * 86_400.0 / design.clock.scale => {
            monthly(sheet, design, window)
        }
        _ => Vec::new(),
    }
}

/// The report's window as the model states it.
pub(crate) fn time_window(window: SlotWindow, has_data: bool) -> TimeWindow {
    TimeWindow {
        from: window.from(),
        to: window.to(),
        from_text: rfc3339(window.from()),
        to_text: rfc3339(window.to()),
        hours: (window.to() - window.from()) / 3600.0,
        has_data,
    }
}

/// `unit_days` as chosen, before [`Design`] makes it at least one.
fn evidence_settings(design: &Design, unit_days: u32) -> EvidenceSettings {
    EvidenceSettings {
        unit_days,
        unit_seconds: design.unit_seconds(),
        min_units: evidence::MIN_UNITS,
        min_events: evidence::MIN_EVENTS,
        slot_seconds: design.clock.seconds,
        calendar_scale: design.clock.scale,
    }
}

fn agent_stalls(ledger: &Ledger) -> AgentStalls {
    AgentStalls {
        count: ledger.agent_stalls.len() as u64,
        total_seconds: ledger.agent_stalls.iter().map(|s| s.1).sum(),
        longest_seconds: ledger.agent_stalls.iter().map(|s| s.1).fold(0.0, f64::max),
        runs_left_out: ledger.stalled_runs,
    }
}

fn methods(design: &Design) -> BTreeMap<&'static str, String> {
    let unit = if design.unit_days == 1 {
        "a day".to_string()
    } else {
        format!("{} days", design.unit_days)
    };
    let mut m = BTreeMap::new();
    m.insert(
        "units of days",
        format!(
            "every interval treats whole units of days as its independent observations, never single steps or hours: one freeze stalls every request in flight, one restart drops every session, and real load differs from one day to the next. A unit is {unit} here: the shortest of 1, 2, 4 and 7 days whose units' latency shows no correlation from one to the next beyond chance, and at least twice the longest freeze. What was measured is tallied per calendar hour; an hour counts only if the agent measured in it (a journey's run or a kept session's check). No interval is given from fewer than {} units",
            evidence::MIN_UNITS
        ),
    );
    m.insert("availability", evidence::CLUSTERED_WILSON.into());
    m.insert(
        "time lost per practitioner",
        format!("freezes: frozen share of working time, weighted by each system's share of transactions; forced logouts: forced logouts per session-hour x working hours x (re-login time + work redone, `redo_after_logout` or {} by default); failed work: the work in failed interactive runs (not those cut short by a forced logout; a frozen step's wait left out) per run x transactions per hour x working hours; slowness: time beyond `acceptable` per run x transactions per hour x working hours; all in the system's calendar; interval: {}", crate::timefmt::human_duration(crate::config::practitioners::DEFAULT_REDO_AFTER_LOGOUT.as_secs_f64()), time_lost::BOOTSTRAP),
    );
    m.insert(
        "latency percentiles",
        format!("HdrHistogram's percentiles of completed steps (exact to three significant figures); steps given up on are counted apart, not as response times; interval: {}", evidence::CLUSTERED_QUANTILE),
    );
    m.insert(
        "freeze and logout rates",
        evidence::OVERDISPERSED_RATE.into(),
    );
    m.insert(
        "before and after a change",
        format!(
            "equal windows of up to {} days; the hour of the change left out; hours matched by hour of the day, weekdays and weekends apart, in the system's calendar, as many from each side for every such hour (the nearest to the change), hours seen on one side only left out; units of days counted from the change; p95: {}; rates: {}; availability: {}; it assumes the weeks themselves do not drift apart, since a slow drift from week to week cannot be told from a change (the longer the windows, the less any drift weighs)",
            MAX_CHANGE_DAYS,
            evidence::CLUSTERED_QUANTILE_DIFFERENCE,
            evidence::RATE_RATIO,
            super::compare::SHARE_DIFFERENCE
        ),
    );
    m.insert(
        "minimum evidence",
        format!(
            "a direction (faster, slower, more, fewer) is stated only when the interval excludes no difference, each side has at least {} independent units of days, and a rate's difference rests on at least {} events in as many different units; otherwise the report says there is not enough evidence yet and, where it can, about how much longer to measure (the time for the interval to shrink to the size of the effect seen, if it is real: the width falls with the square root of the data)",
            evidence::MIN_UNITS,
            evidence::MIN_EVENTS
        ),
    );
    m.insert(
        "session survival",
        "Kaplan-Meier product-limit estimate, each forced logout at the midpoint of its age bracket, ages to three significant figures; Greenwood log-log 95% band".into(),
    );
    m.insert(
        "hazard by age band",
        format!("forced logouts (at the midpoint of their age bracket) / session-hours known alive in band, in the system's calendar; {}", evidence::OVERDISPERSED_RATE),
    );
    m.insert(
        "older against younger sessions",
        format!("hazard ratio, {}; a direction needs at least {} forced logouts in as many units of days on each side; the age at which the hazard rises is the band edge with the best two-piece fit, stated when its Bonferroni-adjusted interval excludes 1", evidence::RATE_RATIO, super::rule::MIN_DROPS),
    );
    m
}

fn availability(sheet: &Sheet<'_>, design: &Design, slots: &[i64]) -> Availability {
    let ledger = sheet.ledger;
    type Counts = (String, u64, u64, BTreeMap<String, u64>);
    let mut journeys: BTreeMap<(String, String, String), Counts> = BTreeMap::new();
    let mut sites: BTreeMap<String, Counts> = BTreeMap::new();
    for slot in ledger.slots.values() {
        for (j, r) in &slot.runs {
            let key = &ledger.journeys[*j as usize];
            for entry in [
                journeys
                    .entry((key.site.clone(), key.target.clone(), key.journey.clone()))
                    .or_insert_with(|| (key.kind.clone(), 0, 0, BTreeMap::new())),
                sites
                    .entry(key.site.clone())
                    .or_insert_with(|| ("all".into(), 0, 0, BTreeMap::new())),
            ] {
                entry.1 += u64::from(r.runs);
                entry.2 += u64::from(r.successes);
                for (o, n) in &r.failures {
                    *entry
                        .3
                        .entry(ledger.outcomes[*o as usize].clone())
                        .or_default() += u64::from(*n);
                }
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
                let share = evidence::share(&sheet.runs(design, slots, |j| j.site == site), 0.05);
                row(site, String::new(), String::new(), c, share)
            })
            .collect(),
        journeys: journeys
            .into_iter()
            .map(|((site, target, journey), c)| {
                let keep =
                    |j: &JourneyKey| j.site == site && j.target == target && j.journey == journey;
                let share = evidence::share(&sheet.runs(design, slots, keep), 0.05);
                row(site, target, journey, c, share)
            })
            .collect(),
    }
}

/// (target, journey, step).
type StepName = (String, String, String);

fn step_name(k: &StepKey) -> StepName {
    (k.target.clone(), k.journey.clone(), k.step.clone())
}

fn latency(sheet: &Sheet<'_>, design: &Design, window: SlotWindow) -> Latency {
    let ledger = sheet.ledger;
    let all: Vec<i64> = ledger.slots.keys().copied().collect();
    let names: BTreeSet<StepName> = ledger.steps.iter().map(step_name).collect();
    let given_up = given_up_by_step(ledger);
    let steps = names
        .iter()
        .map(|name| step_latency(sheet, design, &all, name, given_up.get(name)))
        .collect();
    // The trend: buckets of whole slots, about TREND_POINTS of them.
    let span = (window.to() - window.from()).max(window.clock.seconds);
    let per = (span / TREND_POINTS / window.clock.seconds).ceil().max(1.0) as i64;
    let bucket = per as f64 * window.clock.seconds;
    let trend = busiest_trends(ledger, window, per)
        .into_iter()
        .map(|(key, buckets)| TrendSeries {
            label: format!("{} / {} / {}", key.0, key.1, key.2),
            given_up: given_up.get(&key).map(|g| g.2.clone()).unwrap_or_default(),
            points: trend_points(buckets, window, bucket),
        })
        .collect();
    Latency {
        steps,
        trend_bucket_seconds: bucket,
        trend,
    }
}

/// Each step's given-up runs: how many, the shortest wait before giving
/// up (seconds), and when each was sent.
type GivenUpByStep = BTreeMap<StepName, (u64, f64, Vec<f64>)>;

fn given_up_by_step(ledger: &Ledger) -> GivenUpByStep {
    let mut given_up: GivenUpByStep = BTreeMap::new();
    for g in &ledger.given_up {
        let entry = given_up
            .entry(step_name(&ledger.steps[g.step as usize]))
            .or_insert((0, f64::INFINITY, Vec::new()));
        entry.0 += 1;
        entry.1 = entry.1.min(g.seconds);
        entry.2.push(g.sent_at);
    }
    given_up
}

fn step_latency(
    sheet: &Sheet<'_>,
    design: &Design,
    all: &[i64],
    name: &StepName,
    gave_up: Option<&(u64, f64, Vec<f64>)>,
) -> StepLatency {
    let parts = sheet.latencies(design, all, |k| step_name(k) == *name);
    let count: u64 = parts.iter().map(|p| p.value.len() as u64).sum();
    let max = parts
        .iter()
        .filter_map(|p| p.value.last())
        .max()
        .map_or(0.0, |c| class_value(*c) as f64 / 1000.0);
    StepLatency {
        target: name.0.clone(),
        journey: name.1.clone(),
        step: name.2.clone(),
        count,
        p50_ms: evidence::quantile(&parts, 0.50, 0.05),
        p95_ms: evidence::quantile(&parts, 0.95, 0.05),
        p99_ms: evidence::quantile(&parts, 0.99, 0.05),
        max_ms: max,
        given_up: gave_up.map_or(0, |g| g.0),
        given_up_after_seconds: gave_up.map(|g| g.1),
    }
}

/// The journey steps' latency classes in buckets of `per` slots: the ten
/// busiest steps, so the chart stays readable, in name order.
fn busiest_trends(
    ledger: &Ledger,
    window: SlotWindow,
    per: i64,
) -> Vec<(StepName, BTreeMap<i64, Vec<u32>>)> {
    let mut trend: BTreeMap<StepName, BTreeMap<i64, Vec<u32>>> = BTreeMap::new();
    for (&i, slot) in &ledger.slots {
        let b = (i - window.first).div_euclid(per);
        for (k, t) in &slot.steps {
            let key = &ledger.steps[*k as usize];
            if key.phase != "journey" || t.samples.is_empty() {
                continue;
            }
            trend
                .entry(step_name(key))
                .or_default()
                .entry(b)
                .or_default()
                .extend_from_slice(&t.samples);
        }
    }
    let mut trend: Vec<_> = trend.into_iter().collect();
    trend.sort_by_key(|(_, buckets)| {
        std::cmp::Reverse(buckets.values().map(Vec::len).sum::<usize>())
    });
    trend.truncate(10);
    trend.sort_by(|a, b| a.0.cmp(&b.0));
    trend
}

/// Each bucket's p95 (ms) at the bucket's middle, within the window.
fn trend_points(
    buckets: BTreeMap<i64, Vec<u32>>,
    window: SlotWindow,
    bucket: f64,
) -> Vec<(f64, f64)> {
    buckets
        .into_iter()
        .map(|(b, mut classes)| {
            classes.sort_unstable();
            let rank = ((0.95 * classes.len() as f64).ceil() as usize).clamp(1, classes.len());
            (
                (window.from() + (b as f64 + 0.5) * bucket).min(window.to()),
                class_value(classes[rank - 1]) as f64 / 1000.0,
            )
        })
        .collect()
}

fn freeze_section(sheet: &Sheet<'_>, design: &Design) -> Freezes {
    let ledger = sheet.ledger;
    let mut targets: BTreeMap<String, Vec<&crate::ledger::Freeze>> = BTreeMap::new();
    for f in &ledger.freezes {
        targets.entry(f.target.clone()).or_default().push(f);
    }
    Freezes {
        targets: targets
            .into_iter()
            .map(|(target, list)| {
                let t = sheet.target_index(&target);
                let rate = match t {
                    Some(_) => evidence::rate(&sheet.freezes(design, &sheet.slots(t), t), 0.05),
                    None => Estimate::none(list.len() as u64, evidence::OVERDISPERSED_RATE),
                };
                FreezeSummary {
                    count: list.len() as u64,
                    rate_per_hour: rate,
                    total_seconds: list.iter().map(|f| f.length).sum(),
                    longest_seconds: list.iter().map(|f| f.length).fold(0.0, f64::max),
                    censored: list.iter().filter(|f| f.censored).count() as u64,
                    target,
                }
            })
            .collect(),
        episodes: ledger
            .freezes
            .iter()
            .map(|f| FreezeEpisodeRow {
                target: f.target.clone(),
                started: f.started,
                started_text: rfc3339(f.started),
                length_seconds: f.length,
                censored: f.censored,
            })
            .collect(),
        browser: ledger
            .browser_sides
            .iter()
            .map(|((target, journey), sides)| BrowserFreezes {
                target: target.clone(),
                journey: journey.clone(),
                server: sides[0],
                client: sides[1],
                mixed: sides[2],
            })
            .collect(),
        browser_evidence: ledger
            .browser_evidence
            .iter()
            .map(|e| EvidenceRow {
                at: e.sent_at,
                at_text: rfc3339(e.sent_at),
                target: e.target.clone(),
                journey: e.journey.clone(),
                step: e.step.clone(),
                outcome: e.outcome.clone(),
                json: format!("{}.json", e.name),
                png: format!("{}.png", e.name),
            })
            .collect(),
        evidence_folder: String::new(),
    }
}

/// Quantile `q` (seconds) of a distribution of µs classes, with its
/// distribution-free order-statistic interval.
fn class_quantile(classes: &BTreeMap<u32, u64>, q: f64) -> Estimate {
    let n: u64 = classes.values().sum();
    if n == 0 {
        return Estimate::none(0, stats::ORDER_STAT);
    }
    let at_rank = |rank: u64| {
        let mut seen = 0;
        for (class, count) in classes {
            seen += count;
            if seen >= rank {
                return class_value(*class) as f64 / 1e6;
            }
        }
        0.0
    };
    let (lo, hi) = stats::quantile_ranks(n, q);
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
    Estimate::new(
        at_rank(rank),
        at_rank(lo),
        at_rank(hi),
        n,
        stats::ORDER_STAT,
    )
}

fn reporting_load(sheet: &Sheet<'_>, design: &Design, slots: &[i64]) -> ReportingLoad {
    let ledger = sheet.ledger;
    // Report runs are tallied over the whole window: their figures get a
    // range only when the window holds enough units of days.
    let units = slots
        .iter()
        .map(|s| design.unit(*s))
        .collect::<BTreeSet<_>>()
        .len();
    let report_targets: BTreeSet<String> = ledger
        .report_runs
        .keys()
        .map(|k| k.0.to_uppercase())
        .collect();
    let report_runs = report_run_rows(ledger, units);
    let all: Vec<i64> = ledger.slots.keys().copied().collect();
    let mut interactive = Vec::new();
    for scope in ["same_system", "any_system"] {
        for target in &ledger.targets {
            interactive.extend(load_comparison(
                sheet,
                design,
                &all,
                scope,
                target,
                &report_targets,
            ));
        }
    }
    ReportingLoad {
        report_runs,
        interactive,
    }
}

fn report_run_rows(ledger: &Ledger, units: usize) -> Vec<ReportRunRow> {
    ledger
        .report_runs
        .iter()
        .map(
            |((target, journey, step), (classes, successes))| ReportRunRow {
                runs: classes.values().sum(),
                successes: *successes,
                median_seconds: evidence::ruled(class_quantile(classes, 0.5), units),
                p95_seconds: evidence::ruled(class_quantile(classes, 0.95), units),
                target: target.clone(),
                journey: journey.clone(),
                step: step.clone(),
            },
        )
        .collect()
}

/// `target`'s interactive steps without and with a report running on
/// `scope` (the target itself, or any system); `None` when it has neither.
fn load_comparison(
    sheet: &Sheet<'_>,
    design: &Design,
    all: &[i64],
    scope: &'static str,
    target: &str,
    report_targets: &BTreeSet<String>,
) -> Option<LoadComparison> {
    let side = |loaded: bool| {
        sheet.latencies(design, all, |k| {
            k.is_interactive()
                && k.target == *target
                && (if scope == "same_system" {
                    k.report_same
                } else {
                    k.report_any
                }) == loaded
        })
    };
    let (without, with) = (side(false), side(true));
    if without.is_empty() && with.is_empty() {
        return None;
    }
    let (w0, w1) = (latency_block(&without), latency_block(&with));
    Some(LoadComparison {
        target: target.to_string(),
        scope,
        reports_on: reports_on(scope, target, report_targets),
        p95_difference_ms: evidence::difference(&w0.p95_ms, &w1.p95_ms, SHARED_DAYS_DIFFERENCE),
        without_reports: w0,
        with_reports: w1,
    })
}

fn latency_block(parts: &[evidence::Part<&[u32]>]) -> LatencyBlock {
    LatencyBlock {
        steps: parts.iter().map(|p| p.value.len() as u64).sum(),
        p50_ms: evidence::quantile(parts, 0.5, 0.05),
        p95_ms: evidence::quantile(parts, 0.95, 0.05),
    }
}

/// Which reports a comparison's "with" side ran beside.
fn reports_on(scope: &str, target: &str, report_targets: &BTreeSet<String>) -> String {
    if scope == "same_system" {
        format!("{} itself", target.to_uppercase())
    } else if report_targets.is_empty() {
        "any system".into()
    } else {
        format!(
            "any system ({})",
            report_targets
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Steps with and without a report running come from the same days, so the
/// two sides are neither matched nor independent: the days' common
/// variation cancels in the difference, which MOVER ignores, so it errs wide.
const SHARED_DAYS_DIFFERENCE: &str = "difference of quantiles, MOVER from the two clustered Woodruff intervals; both sides come from the same days, whose common variation this counts twice, so it errs wide (95%)";

/// One row per calendar month (UTC) of the window, each with its intervals.
fn monthly(sheet: &Sheet<'_>, design: &Design, window: SlotWindow) -> Vec<MonthRow> {
    use chrono::{Datelike, TimeZone, Utc};
    let clock = window.clock;
    let mut months: BTreeMap<(i32, u32), Vec<i64>> = BTreeMap::new();
    for &slot in sheet.ledger.slots.keys() {
        let Some(at) = Utc
            .timestamp_opt(clock.start(slot).floor() as i64, 0)
            .single()
        else {
            continue;
        };
        months
            .entry((at.year(), at.month()))
            .or_default()
            .push(slot);
    }
    months
        .into_iter()
        .map(|((year, month), slots)| {
            let ran: Vec<i64> = slots
                .iter()
                .copied()
                .filter(|s| sheet.ran(*s, None))
                .collect();
            let runs = sheet.runs(design, &ran, |_| true);
            let freezes = sheet.freezes(design, &ran, None);
            let drops = sheet.drops(design, &ran, None);
            let latencies = sheet.latencies(design, &slots, StepKey::is_interactive);
            MonthRow {
                month: format!("{year:04}-{month:02}"),
                from: clock.start(slots[0]),
                to: clock.start(slots[slots.len() - 1] + 1),
                runs: runs.iter().map(|p| p.value.1).sum(),
                availability: evidence::share(&runs, 0.05),
                p95_ms: evidence::quantile(&latencies, 0.95, 0.05),
                freezes: freezes.iter().map(|p| p.value.0).sum::<f64>() as u64,
                freezes_per_day: evidence::rate(&freezes, 0.05).scaled(24.0),
                forced_logouts: drops.iter().map(|p| p.value.0).sum::<f64>() as u64,
                logouts_per_session_hour: evidence::rate(&drops, 0.05),
            }
        })
        .collect()
}
