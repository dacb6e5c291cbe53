//! Reading one site's counters from the store, slot by slot.
//!
//! - **A counter's increase in a slot** is its value at the slot's end less
//!   its value at the slot's start: a range query of the bare series with
//!   the slot as its step gives the last sample at or before each
//!   boundary, so the difference counts exactly what the agent counted.
//!   Never `increase()`, which extrapolates.
//! - **Where that cannot be trusted** (a boundary with no sample, the value
//!   going down, the agent's process restarted in the slot) the slot's raw
//!   samples are read (a range selector at the slot's end) and summed step
//!   by step, a fall taken as a restart from zero. Increments made while
//!   the store holds nothing of the site (after a gap, with the counter
//!   still climbing) happened in unmeasured time, and are left out.
//! - **Pushes per slot** (`count_over_time` of `casewatch_build_info`) say
//!   which slots the store holds anything of the site in: a slot with none
//!   is unmeasured, never good time nor bad.
//! - **Bounded.** No query asks for more than [`MAX_POINTS_PER_SERIES`]
//!   points of a series or [`POINTS_PER_QUERY`] points in all: the range
//!   is split by time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::client::{quote, MatrixSeries, SeriesLabels, Store, StoreError};
use crate::ledger::build::SlotWindow;

/// The most points of one series a query asks for (Prometheus refuses
/// more than 11,000).
pub const MAX_POINTS_PER_SERIES: usize = 11_000;
/// The most points one query asks for in all.
pub const POINTS_PER_QUERY: usize = 1_000_000;

/// The counter families the site's report reads.
pub const COUNTERS: [&str; 16] = [
    "casewatch_journey_runs_total",
    "casewatch_step_duration_seconds_bucket",
    "casewatch_steps_given_up_total",
    "casewatch_freeze_episodes_total",
    "casewatch_freeze_duration_seconds_bucket",
    "casewatch_freeze_duration_seconds_sum",
    "casewatch_forced_logouts_total",
    "casewatch_session_exposure_seconds_total",
    "casewatch_step_over_acceptable_seconds_total",
    "casewatch_journey_runs_agent_stalled_total",
    "casewatch_agent_stall_duration_seconds_count",
    "casewatch_agent_stall_duration_seconds_sum",
    "casewatch_journey_duration_seconds_bucket",
    "casewatch_kept_sessions_ended_total",
    "casewatch_keepalive_checks_total",
    "casewatch_kept_session_logins_total",
];
/// Of those, what the fleet report reads.
pub const FLEET_COUNTERS: usize = 12;
/// Gauges whose value 1 at a slot's boundary marks a target measured.
pub const BUSY_GAUGES: [&str; 2] = [
    "casewatch_journey_in_flight",
    "casewatch_freeze_in_progress",
];
const PROCESS_START: &str = "process_start_time_seconds";

/// One series' increase per slot (absolute slot, increase), non-zero only.
pub type Increases = Vec<(i64, f64)>;

/// What the store holds of one site over the window.
#[derive(Debug, Default)]
pub struct SiteData {
    pub site: String,
    /// Pushes the store holds in each slot of the window, in order.
    pub pushes: Vec<u32>,
    /// Family -> (labels less name, job, instance and site; increases).
    pub counters: BTreeMap<&'static str, Vec<(SeriesLabels, Increases)>>,
    /// Gauge family -> (labels, slots it was 1 at either end of).
    pub busy: BTreeMap<&'static str, Vec<(SeriesLabels, Vec<i64>)>>,
}

/// A site's selector: `{job="...", site="..."}`.
pub fn selector(job: &str, site: &str) -> String {
    format!("{{job={},site={}}}", quote(job), quote(site))
}

/// Strips the labels every series of a site shares.
fn own_labels(mut l: SeriesLabels) -> SeriesLabels {
    for k in ["__name__", "job", "instance", "site"] {
        l.remove(k);
    }
    l
}

/// The query range's parts: `[first, last]` of the points `t0 + i * step`,
/// each holding at most `per_query` points.
fn chunks(points: usize, per_query: usize) -> Vec<(usize, usize)> {
    let per = per_query.clamp(1, MAX_POINTS_PER_SERIES);
    let mut out = Vec::new();
    let mut first = 0;
    while first < points {
        let last = (first + per).min(points) - 1;
        out.push((first, last));
        first = last + 1;
    }
    out
}

/// Points `t0 + i * step` for i in `0..n`, of `query`, per series (its
/// labels as the store gave them), split by time as [`chunks`] says.
async fn points(
    store: &Store,
    query: &str,
    t0: f64,
    step: f64,
    n: usize,
    series: usize,
    done: &AtomicU64,
) -> Result<BTreeMap<SeriesLabels, Vec<Option<f64>>>, StoreError> {
    let mut out: BTreeMap<SeriesLabels, Vec<Option<f64>>> = BTreeMap::new();
    for (first, last) in chunks(n, POINTS_PER_QUERY / series.max(1)) {
        let start = t0 + first as f64 * step;
        let end = t0 + last as f64 * step;
        for s in store.query_range(query, start, end, step).await? {
            let values = out.entry(s.metric).or_insert_with(|| vec![None; n]);
            for (t, v) in s.values {
                let i = ((t - t0) / step).round();
                if i >= 0.0 && (i as usize) < n {
                    values[i as usize] = Some(v);
                }
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(out)
}

/// Pushes per slot of `window` for each site `sites` names (a regex).
pub async fn pushes(
    store: &Store,
    job: &str,
    sites: &str,
    window: SlotWindow,
    done: &AtomicU64,
) -> Result<BTreeMap<String, Vec<u32>>, StoreError> {
    let step = window.clock.seconds;
    let n = (window.last - window.first + 1) as usize;
    let query = format!(
        "sum by (site) (count_over_time(casewatch_build_info{{job={},site=~{}}}[{}ms]))",
        quote(job),
        quote(sites),
        (step * 1000.0).round() as u64
    );
    // A slot's pushes are counted at its end.
    let found = points(store, &query, window.from() + step, step, n, 64, done).await?;
    Ok(found
        .into_iter()
        .filter_map(|(l, v)| {
            let site = l.get("site")?.clone();
            Some((
                site,
                v.into_iter().map(|x| x.unwrap_or(0.0) as u32).collect(),
            ))
        })
        .collect())
}

/// Reads every family `counters` names for `site`.
pub async fn site(
    store: &Store,
    job: &str,
    site: &str,
    window: SlotWindow,
    counters: &[&'static str],
    done: &AtomicU64,
) -> Result<SiteData, StoreError> {
    let sel = selector(job, site);
    let step = window.clock.seconds;
    let slots = (window.last - window.first + 1) as usize;
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    let matchers: Vec<String> = counters
        .iter()
        .chain(&BUSY_GAUGES)
        .map(|f| format!("{f}{sel}"))
        .collect();
    for l in store.series(&matchers, window.from(), window.to()).await? {
        *sizes
            .entry(l.get("__name__").cloned().unwrap_or_default())
            .or_default() += 1;
    }
    let restarted = restarts(store, &sel, window, done).await?;
    let mut data = SiteData {
        site: site.to_string(),
        ..SiteData::default()
    };
    for &family in counters {
        let size = sizes.get(family).copied().unwrap_or(0);
        if size == 0 {
            done.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let query = format!("{family}{sel}");
        let bounds = points(store, &query, window.from(), step, slots + 1, size, done).await?;
        let mut list = Vec::with_capacity(bounds.len());
        let mut repair: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (labels, values) in bounds {
            let (inc, wanting) = increases(&values, &restarted, window.first);
            for slot in wanting {
                repair.entry(slot).or_default().push(list.len());
            }
            list.push((labels, inc, values));
        }
        for (slot, which) in repair {
            let t = window.clock.start(slot + 1);
            let range = format!("{query}[{}ms]", (step * 1000.0).round() as u64);
            let raw = store.raw_samples(&range, t).await?;
            for i in which {
                let (labels, inc, values) = &mut list[i];
                let samples = raw.iter().find(|s| s.metric == *labels);
                let k = (slot - window.first) as usize;
                let before = values[..=k].iter().rev().flatten().next().copied();
                let v = repaired(values[k], before, samples);
                if v != 0.0 {
                    inc.push((slot, v));
                    inc.sort_by_key(|e| e.0);
                }
            }
        }
        let list = list
            .into_iter()
            .map(|(l, inc, _)| (own_labels(l), inc))
            .collect();
        data.counters.insert(family, list);
    }
    for gauge in BUSY_GAUGES {
        let query = format!("{gauge}{sel}");
        let size = sizes.get(gauge).copied().unwrap_or(0).max(1);
        let bounds = points(store, &query, window.from(), step, slots + 1, size, done).await?;
        let list = bounds
            .into_iter()
            .map(|(l, v)| {
                let up = (0..slots)
                    .filter(|&k| v[k] == Some(1.0) || v[k + 1] == Some(1.0))
                    .map(|k| window.first + k as i64)
                    .collect();
                (own_labels(l), up)
            })
            .collect();
        data.busy.insert(gauge, list);
    }
    Ok(data)
}

/// Slots in which the agent's process started again (its start time
/// changed between the slot's two boundaries).
async fn restarts(
    store: &Store,
    sel: &str,
    window: SlotWindow,
    done: &AtomicU64,
) -> Result<Vec<i64>, StoreError> {
    let slots = (window.last - window.first + 1) as usize;
    let query = format!("max({PROCESS_START}{sel})");
    let found = points(
        store,
        &query,
        window.from(),
        window.clock.seconds,
        slots + 1,
        1,
        done,
    )
    .await?;
    let mut out = Vec::new();
    for values in found.values() {
        let mut last = None;
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                if last.is_some_and(|l: f64| l != *v) && i > 0 {
                    out.push(window.first + i as i64 - 1);
                }
                last = Some(*v);
            }
        }
    }
    Ok(out)
}

/// A series' increases from its boundary values, and the slots whose raw
/// samples must be read instead: a boundary missing, a fall, or a restart.
pub fn increases(values: &[Option<f64>], restarted: &[i64], first: i64) -> (Increases, Vec<i64>) {
    let mut inc = Vec::new();
    let mut wanting = Vec::new();
    for k in 0..values.len().saturating_sub(1) {
        let slot = first + k as i64;
        match (values[k], values[k + 1]) {
            (Some(a), Some(b)) if b >= a && !restarted.contains(&slot) => {
                if b > a {
                    inc.push((slot, b - a));
                }
            }
            // Nothing at the slot's end and nothing at its start: the store
            // holds nothing of the series here.
            (None, None) => {}
            _ => wanting.push(slot),
        }
    }
    (inc, wanting)
}

/// A slot's increase from its raw samples. `start` is the value at its
/// start (if any), `before` the last value known before it.
pub fn repaired(start: Option<f64>, before: Option<f64>, samples: Option<&MatrixSeries>) -> f64 {
    let Some(samples) = samples else {
        return 0.0;
    };
    let mut total = 0.0;
    let mut prev = start;
    for &(_, x) in &samples.values {
        total += match prev {
            Some(p) if x >= p => x - p,
            Some(_) => x,
            // The first sample after a gap: from zero if the counter
            // started again (or began), else its climb was in the gap.
            None => match before {
                Some(l) if x >= l => 0.0,
                _ => x,
            },
        };
        prev = Some(x);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64]) -> MatrixSeries {
        MatrixSeries {
            metric: SeriesLabels::new(),
            values: values
                .iter()
                .enumerate()
                .map(|(i, v)| (i as f64, *v))
                .collect(),
        }
    }

    #[test]
    fn increases_are_boundary_differences_and_doubtful_slots_are_read_raw() {
        let values = [Some(1.0), Some(4.0), Some(4.0), Some(2.0), None, Some(7.0)];
        let (inc, wanting) = increases(&values, &[], 10);
        assert_eq!(inc, vec![(10, 3.0)]);
        assert_eq!(wanting, vec![12, 13, 14]);
        let (_, wanting) = increases(&values[..3], &[11], 10);
        assert_eq!(wanting, vec![11]);
    }

    #[test]
    fn raw_samples_count_a_restart_from_zero_and_leave_a_gap_s_climb_out() {
        // 5 before; 7, then a restart: 1, 3.
        assert_eq!(
            repaired(Some(5.0), Some(5.0), Some(&series(&[7.0, 1.0, 3.0]))),
            5.0
        );
        // After a gap, still climbing: only what the slot saw.
        assert_eq!(repaired(None, Some(5.0), Some(&series(&[9.0, 10.0]))), 1.0);
        // After a gap, started again: from zero.
        assert_eq!(repaired(None, Some(5.0), Some(&series(&[2.0, 3.0]))), 3.0);
        // A series that begins in the slot counts from zero.
        assert_eq!(repaired(None, None, Some(&series(&[1.0, 2.0]))), 2.0);
        assert_eq!(repaired(Some(1.0), None, None), 0.0);
    }

    #[test]
    fn no_query_asks_for_more_than_its_share_of_points() {
        assert_eq!(chunks(5, 2), vec![(0, 1), (2, 3), (4, 4)]);
        assert_eq!(
            chunks(30_000, 1_000_000),
            vec![(0, 10_999), (11_000, 21_999), (22_000, 29_999)]
        );
        assert!(chunks(0, 10).is_empty());
    }
}
