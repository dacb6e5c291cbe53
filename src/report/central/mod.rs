//! The board's report from the central store (Prometheus or
//! VictoriaMetrics, over the Prometheus HTTP API) instead of journals: one
//! ledger per site filled from the counters the agents push, then the same
//! builders as for journals.
//!
//! - [`client`]: the HTTP API, with timeouts, capped answers, credentials;
//! - [`read`]: a site's counters' increases per slot, batched and bounded;
//! - [`fill`]: a ledger from them.
//!
//! Sites are those whose `casewatch_build_info` the store holds in the
//! window (or those asked for). The slot clock is the journal report's
//! (hourly from 60 hours), but never shorter than four of the agents'
//! push intervals, so every slot holds pushes. What each site's journal
//! meta would hold (calendar scale, age bands, practitioners, changes,
//! journey and step kinds) comes from the info series the agent pushes
//! ([`crate::central_info`]).

pub mod client;
pub mod fill;
pub mod read;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use futures::StreamExt;

use crate::config::practitioners::Practitioners;
use crate::config::secret::EnvLookup;
use crate::detect::AgeBands;
use crate::journal::read::ChangeRow;
use crate::ledger::build::{JournalMeta, SlotWindow};
use crate::ledger::{Ledger, SlotClock, HOUR, SLOT_CHOICES};
use crate::outcome::unix_secs;
use crate::timefmt::rfc3339;
use client::{quote, SeriesLabels, Store, StoreError, StoreOptions};

/// How far back a report reads when `--from` is not given.
pub const DEFAULT_SPAN: Duration = Duration::from_secs(90 * 86_400);
/// Sites read at once.
const SITES_AT_ONCE: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum CentralError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store holds no casewatch_build_info{{job={job:?}}} between {from} and {to}: no agent pushed there (is --job right?)")]
    NoSites {
        job: String,
        from: String,
        to: String,
    },
    #[error("the store holds nothing of site {site} between {from} and {to}; it holds: {found}")]
    UnknownSite {
        site: String,
        from: String,
        to: String,
        found: String,
    },
    #[error("sites {first} and {second} keep different calendars ({first_scale} and {second_scale} times the wall clock): they cannot share one report")]
    Calendars {
        first: String,
        second: String,
        first_scale: f64,
        second_scale: f64,
    },
}

#[derive(Clone, Debug)]
pub struct CentralOptions {
    pub store: StoreOptions,
    /// Sites to read; all the store holds when empty.
    pub sites: Vec<String>,
    /// The `job` label the agents push with.
    pub job: String,
    pub from: Option<SystemTime>,
    pub to: Option<SystemTime>,
    pub now: SystemTime,
    /// Keep only interactive latency (a fleet's ledger).
    pub interactive_only: bool,
}

/// What a site's journal meta would hold, from its info series.
#[derive(Clone, Debug, Default)]
pub struct SiteMeta {
    pub calendar_scale: f64,
    pub bands: AgeBands,
    pub practitioners: Practitioners,
    pub changes: Vec<ChangeRow>,
    pub journeys: BTreeMap<(String, String), String>,
    pub steps: BTreeMap<(String, String, String), (String, String)>,
}

impl SiteMeta {
    pub fn journey_kind(&self, target: &str, journey: &str) -> &str {
        self.journeys
            .get(&(target.to_string(), journey.to_string()))
            .map_or("interactive", String::as_str)
    }

    /// A step's (kind, phase); a step the store has no info of takes its
    /// journey's kind, in the journey phase.
    pub fn step_kind<'a>(&'a self, target: &str, journey: &str, step: &str) -> (&'a str, &'a str) {
        match self
            .steps
            .get(&(target.to_string(), journey.to_string(), step.to_string()))
        {
            Some((k, p)) => (k.as_str(), p.as_str()),
            None => (self.journey_kind(target, journey), "journey"),
        }
    }

    /// The journal meta the report builders read.
    pub fn journal_meta(&self, site: &str, span: Option<(f64, f64)>) -> JournalMeta {
        JournalMeta {
            site: Some(site.to_string()),
            bands: self.bands.clone(),
            calendar_scale: self.calendar_scale,
            practitioners: self.practitioners.clone(),
            changes: self.changes.clone(),
            span,
            // Only a generated journal carries a known truth.
            seeded_truth: None,
        }
    }
}

/// A stretch of slots in which the store holds nothing of a site, between
/// the first and last it holds: unmeasured.
#[derive(Clone, Debug, PartialEq)]
pub struct Gap {
    pub site: String,
    pub from: f64,
    pub to: f64,
}

/// Everything read from the store.
pub struct Central {
    pub store: String,
    pub window: SlotWindow,
    /// Sites by name: ledger and meta.
    pub sites: Vec<(String, Ledger, SiteMeta)>,
    pub gaps: Vec<Gap>,
    /// The step-duration histogram's finite bucket bounds (seconds).
    pub bounds: Vec<f64>,
}

fn meta_of(series: &[SeriesLabels]) -> BTreeMap<String, SiteMeta> {
    let mut out: BTreeMap<String, SiteMeta> = BTreeMap::new();
    let get = |l: &SeriesLabels, k: &str| l.get(k).cloned().unwrap_or_default();
    for l in series {
        let m = out.entry(get(l, "site")).or_insert_with(|| SiteMeta {
            calendar_scale: 1.0,
            ..SiteMeta::default()
        });
        match l.get("__name__").map(String::as_str) {
            Some("casewatch_journey_info") => {
                m.journeys
                    .insert((get(l, "target"), get(l, "journey")), get(l, "kind"));
            }
            Some("casewatch_step_info") => {
                let key = (get(l, "target"), get(l, "journey"), get(l, "step"));
                m.steps.insert(key, (get(l, "kind"), get(l, "phase")));
            }
            Some("casewatch_change_info") => {
                let row = ChangeRow {
                    name: get(l, "change"),
                    at: get(l, "at").parse().unwrap_or(f64::NAN),
                    description: get(l, "description"),
                };
                if row.at.is_finite() && !m.changes.iter().any(|c| c.name == row.name) {
                    m.changes.push(row);
                }
            }
            Some("casewatch_report_meta_info") => {
                m.calendar_scale = get(l, "calendar_scale")
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s <= 1e6)
                    .unwrap_or(1.0);
                if let Ok(edges) =
                    serde_json::from_str::<Vec<f64>>(&get(l, "age_band_edges_seconds"))
                {
                    if !edges.is_empty()
                        && edges.iter().all(|e| e.is_finite() && *e > 0.0 && *e < 1e9)
                        && edges.windows(2).all(|w| w[0] < w[1])
                    {
                        m.bands =
                            AgeBands::new(edges.into_iter().map(Duration::from_secs_f64).collect());
                    }
                }
                if let Ok(p) = serde_json::from_str(&get(l, "practitioners")) {
                    m.practitioners = p;
                }
            }
            _ => {}
        }
    }
    for m in out.values_mut() {
        m.changes.sort_by(|a, b| a.at.total_cmp(&b.at));
    }
    out
}

/// The slot clock for `span` real seconds: the journal report's, at least
/// `min_seconds` long.
pub fn clock_for(span: f64, scale: f64, min_seconds: f64) -> SlotClock {
    let clock = SlotClock::for_window(span, scale, false);
    if clock.seconds >= min_seconds || clock.is_hourly() {
        return clock;
    }
    let calendar = SLOT_CHOICES
        .iter()
        .copied()
        .find(|s| s / scale >= min_seconds)
        .unwrap_or(HOUR);
    SlotClock {
        seconds: calendar / scale,
        scale,
    }
}

/// Reads the sites' ledgers over the window; `progress` hears (queries
/// done, queries planned).
pub async fn read(
    options: &CentralOptions,
    env: &EnvLookup,
    mut progress: impl FnMut(u64, u64),
) -> Result<Central, CentralError> {
    let store = Store::new(&options.store, env)?;
    let (from, to) = span(options);
    let sites = sites(&store, options, from, to).await?;
    let site_re = sites
        .iter()
        .map(|s| regex::escape(s))
        .collect::<Vec<_>>()
        .join("|");
    let info = info_selectors(&options.job, &site_re);
    let metas = meta_of(&store.series(&info, from, to).await?);
    let scale = shared_scale(&sites, &metas)?;
    let done = AtomicU64::new(0);
    let (window, pushes) = settle(&store, options, &site_re, (from, to), scale, &done).await?;
    let families = if options.interactive_only {
        &read::COUNTERS[..read::FLEET_COUNTERS]
    } else {
        &read::COUNTERS[..]
    };
    let slots = (window.last - window.first + 1) as u64;
    let per_site = (families.len() as u64 + 3) * slots.div_ceil(read::MAX_POINTS_PER_SERIES as u64);
    let planned = done.load(Ordering::Relaxed) + per_site * sites.len() as u64;
    let job = options.job.as_str();
    let mut reads = futures::stream::iter(sites.iter().map(|site| {
        let (store, done) = (&store, &done);
        async move { read::site(store, job, site, window, families, done).await }
    }))
    .buffered(SITES_AT_ONCE);
    let mut out = Vec::new();
    let (mut gaps_seen, mut bounds) = (Vec::new(), Vec::new());
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            next = reads.next() => match next {
                Some(data) => {
                    let mut data = data?;
                    data.pushes = pushes.get(&data.site).cloned().unwrap_or_default();
                    let meta = metas.get(&data.site).cloned().unwrap_or_default();
                    let ledger = fill::ledger(&data, &meta, window, options.interactive_only);
                    // What is kept of the site's series once its ledger is
                    // full: a fleet's raw increases would not fit in memory.
                    gaps_seen.extend(gaps(&data.site, &data.pushes, window));
                    bounds.extend(bucket_bounds(&data));
                    out.push((data.site, ledger, meta));
                }
                None => break,
            },
            _ = ticker.tick() => progress(done.load(Ordering::Relaxed), planned),
        }
    }
    drop(reads);
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    Ok(Central {
        store: options.store.shown_url(),
        window,
        sites: out,
        gaps: gaps_seen,
        bounds,
    })
}

/// The window asked for: up to `--to` (or now), from `--from` (or
/// [`DEFAULT_SPAN`] before), never backwards.
fn span(options: &CentralOptions) -> (f64, f64) {
    let now = unix_secs(options.now);
    let to = options.to.map_or(now, unix_secs);
    let from = options
        .from
        .map_or(to - DEFAULT_SPAN.as_secs_f64(), unix_secs)
        .min(to);
    (from, to)
}

/// The sites to read: those asked for, each of which the store must hold,
/// or every site it holds.
async fn sites(
    store: &Store,
    options: &CentralOptions,
    from: f64,
    to: f64,
) -> Result<Vec<String>, CentralError> {
    let job_sel = format!("casewatch_build_info{{job={}}}", quote(&options.job));
    let mut found = store.label_values("site", &job_sel, from, to).await?;
    found.sort();
    found.dedup();
    if found.is_empty() {
        return Err(CentralError::NoSites {
            job: options.job.clone(),
            from: rfc3339(from),
            to: rfc3339(to),
        });
    }
    if options.sites.is_empty() {
        return Ok(found);
    }
    for s in &options.sites {
        if !found.contains(s) {
            return Err(CentralError::UnknownSite {
                site: s.clone(),
                from: rfc3339(from),
                to: rfc3339(to),
                found: found.join(", "),
            });
        }
    }
    Ok(options.sites.clone())
}

/// The info series of the sites matching `site_re`, which say what their
/// journal meta would.
fn info_selectors(job: &str, site_re: &str) -> Vec<String> {
    [
        "casewatch_journey_info",
        "casewatch_step_info",
        "casewatch_change_info",
        "casewatch_report_meta_info",
    ]
    .iter()
    .map(|f| format!("{f}{{job={},site=~{}}}", quote(job), quote(site_re)))
    .collect()
}

/// The calendar scale every site keeps: sites on different calendars
/// cannot share one report.
fn shared_scale(sites: &[String], metas: &BTreeMap<String, SiteMeta>) -> Result<f64, CentralError> {
    let scale_of = |s: &str| metas.get(s).map_or(1.0, |m| m.calendar_scale);
    let scale = scale_of(&sites[0]);
    if let Some(other) = sites.iter().find(|s| (scale_of(s) - scale).abs() > 1e-9) {
        return Err(CentralError::Calendars {
            first: sites[0].clone(),
            second: other.clone(),
            first_scale: scale,
            second_scale: scale_of(other),
        });
    }
    Ok(scale)
}

/// The window clipped to what the store holds, in slots of four push
/// intervals at least, and the pushes per slot of each site.
async fn settle(
    store: &Store,
    options: &CentralOptions,
    site_re: &str,
    (from, to): (f64, f64),
    scale: f64,
    done: &AtomicU64,
) -> Result<(SlotWindow, BTreeMap<String, Vec<u32>>), CentralError> {
    let (mut lo, mut hi, mut min_seconds) = (from, to, 0.0);
    let mut last = None;
    for _ in 0..4 {
        let window = window_until(clock_for(hi - lo, scale, min_seconds), lo, hi);
        if last.as_ref().is_some_and(|(w, _)| *w == window) {
            break;
        }
        let pushes = read::pushes(store, &options.job, site_re, window, done).await?;
        let most = pushes.values().flatten().copied().max().unwrap_or(0);
        let held = |k: usize| pushes.values().any(|p| p.get(k).is_some_and(|n| *n > 0));
        let n = (window.last - window.first + 1) as usize;
        if let (Some(a), Some(b)) = ((0..n).find(|&k| held(k)), (0..n).rev().find(|&k| held(k))) {
            let start = |k: usize| window.clock.start(window.first + k as i64);
            lo = start(a).max(from);
            hi = (start(b) + window.clock.seconds).min(to);
        }
        // A push every `interval` seconds: slots of at least four.
        if most > 0 {
            min_seconds = 4.0 * window.clock.seconds / f64::from(most);
        }
        last = Some((window, pushes));
    }
    let (window, pushes) = last.expect("read at least once");
    Ok((window, pushes))
}

/// The slots from `from` up to `to`, which ends the window and is not in
/// it: a `--to` on a slot's start must not add that slot (a last push there
/// would make it look measured, with nothing counted in it).
fn window_until(clock: SlotClock, from: f64, to: f64) -> SlotWindow {
    SlotWindow::new(clock, from, to - 1e-3)
}

/// The runs of slots without pushes between a site's first and last.
fn gaps(site: &str, pushes: &[u32], window: SlotWindow) -> Vec<Gap> {
    let held: Vec<usize> = (0..pushes.len()).filter(|&k| pushes[k] > 0).collect();
    let (Some(&a), Some(&b)) = (held.first(), held.last()) else {
        return Vec::new();
    };
    let start = |k: usize| window.clock.start(window.first + k as i64);
    let mut out = Vec::new();
    let mut k = a;
    while k <= b {
        if pushes[k] == 0 {
            let begin = k;
            while pushes[k] == 0 {
                k += 1;
            }
            out.push(Gap {
                site: site.to_string(),
                from: start(begin),
                to: start(k),
            });
        }
        k += 1;
    }
    out
}

/// The finite bounds of a site's step-duration buckets.
fn bucket_bounds(data: &read::SiteData) -> impl Iterator<Item = f64> + '_ {
    data.counters
        .get("casewatch_step_duration_seconds_bucket")
        .into_iter()
        .flatten()
        .filter_map(|(l, _)| l.get("le")?.parse::<f64>().ok())
        .filter(|b| b.is_finite())
}

/// What the Methods section says of the source.
pub fn methods(central: &Central) -> Vec<(&'static str, String)> {
    let bounds: Vec<String> = central
        .bounds
        .iter()
        .map(|b| crate::timefmt::human_duration(*b))
        .collect();
    let mut out = vec![
        (
            "source",
            format!(
                "the central store at {} (Prometheus HTTP API), not journals: counts are the agents' counters' increases between slot boundaries, exact as the counters are; a slot in which the store holds no push of a site is unmeasured, neither good time nor bad",
                central.store
            ),
        ),
        (
            "latency percentiles",
            format!(
                "from the step-duration histogram's buckets, not HdrHistogram: each step is counted at the upper bound of its bucket, so a percentile is the bound of the bucket holding it, at most one bucket above the exact one (bounds: {}); steps given up on are counted apart",
                if bounds.is_empty() { "none seen".to_string() } else { bounds.join(", ") }
            ),
        ),
        (
            "not in the store",
            "sessions' lifetimes (no survival curve), which steps ran while a report ran, and the work lost to interrupted journeys are kept only in journals; forced logouts are placed at the middle age of their band; freeze lengths come from the freeze-duration histogram, scaled to its exact sum".into(),
        ),
    ];
    if !central.gaps.is_empty() {
        let list: Vec<String> = central
            .gaps
            .iter()
            .map(|g| format!("{} {} to {}", g.site, rfc3339(g.from), rfc3339(g.to)))
            .collect();
        out.push((
            "unmeasured",
            format!(
                "no pushes in the store (agent down, or an outage beyond its queue): {}",
                list.join("; ")
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: f64 = 86_400.0;

    #[test]
    fn a_to_on_a_slot_boundary_ends_the_window_and_adds_no_slot() {
        let from = 1_750_000_000.0 - 1_750_000_000.0 % DAY;
        let to = from + 90.0 * DAY;
        let window = window_until(SlotClock::hourly(1.0), from, to);
        assert_eq!(window.last - window.first + 1, 90 * 24);
        assert_eq!(window.from(), from);
        assert_eq!(window.clock.start(window.last + 1), to);
        // A `--to` inside a slot keeps that slot.
        let window = window_until(SlotClock::hourly(1.0), from, to + 60.0);
        assert_eq!(window.last - window.first + 1, 90 * 24 + 1);
    }
}
