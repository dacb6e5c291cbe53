//! A site's ledger from its counters' increases per slot: the same tallies
//! a journal gives, at the resolution the store keeps.
//!
//! - **Runs** by outcome, **exposure** by age band, **time over
//!   acceptable**, **kept sessions' checks**: exact, as the counters are.
//! - **Latency.** Each bucket's increase becomes that many samples at the
//!   bucket's upper bound (the `+Inf` bucket's at the last finite bound): a
//!   percentile is the upper bound of the bucket holding it, never below
//!   the true one and within one bucket of it. Steps given up on are the
//!   slowest of their step and slot, so they are taken off its top buckets.
//! - **Freezes.** Each episode begun is placed in its slot; lengths come
//!   from the duration histogram of episodes ended, in order (a target's
//!   episodes never overlap), scaled so each slot's lengths add up to the
//!   histogram's exact `_sum`. One still open at the end is censored there.
//! - **Forced logouts** are counted in their slot and age band, at the
//!   band's middle age; those kept sessions lost are named so.
//! - **Measured**: a target in a slot in which the store holds pushes of
//!   the site and a run on it ended, was going, or a freeze was open.
//!
//! Not in the store, so not in a central ledger: sessions' lifetimes (the
//! survival curve), which steps ran while a report ran, the cost sums
//! measured from interrupted journeys, browser evidence.

use std::collections::BTreeMap;

use super::read::SiteData;
use super::SiteMeta;
use crate::ledger::build::SlotWindow;
use crate::ledger::{class_of, micros_of, millis_of, ForcedLogout, Freeze, Ledger, StepKey};

fn get<'a>(l: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    l.get(k).map_or("", String::as_str)
}

fn count(x: f64) -> u32 {
    x.round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// Per (name labels) and slot: (bucket bound, cumulative count) sorted, in
/// (labels, slot) order. Keyed by labels first so each series' label values
/// are compared once, not once per slot.
type Buckets = BTreeMap<Vec<String>, BTreeMap<i64, Vec<(f64, f64)>>>;

fn buckets(data: &SiteData, family: &str, keys: &[&str]) -> Buckets {
    let mut out: Buckets = BTreeMap::new();
    for (labels, inc) in data.counters.get(family).into_iter().flatten() {
        let le = match get(labels, "le") {
            "+Inf" => f64::INFINITY,
            text => match text.parse::<f64>() {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        let key: Vec<String> = keys.iter().map(|k| get(labels, k).to_string()).collect();
        let slots = out.entry(key).or_default();
        for &(slot, n) in inc {
            slots.entry(slot).or_default().push((le, n));
        }
    }
    for list in out.values_mut().flat_map(BTreeMap::values_mut) {
        list.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// One series' cumulative bucket counts in one slot: ((labels, slot), counts).
type SlotBuckets = ((Vec<String>, i64), Vec<(f64, f64)>);

/// [`buckets`] flattened, in order.
fn bucket_slots(buckets: Buckets) -> impl Iterator<Item = SlotBuckets> {
    buckets.into_iter().flat_map(|(key, slots)| {
        slots
            .into_iter()
            .map(move |(slot, cumulative)| ((key.clone(), slot), cumulative))
    })
}

/// Samples per bucket (upper bound in seconds, count) from cumulative
/// counts, the top `drop` taken off. `+Inf` is placed at the last finite
/// bound.
pub fn per_bucket(cumulative: &[(f64, f64)], mut drop: u32) -> Vec<(f64, u32)> {
    let mut out = Vec::new();
    let (mut below, mut last_finite) = (0.0, 0.0);
    for &(le, n) in cumulative {
        let here = (n - below).max(0.0);
        below = below.max(n);
        let bound = if le.is_finite() { le } else { last_finite };
        if le.is_finite() {
            last_finite = le;
        }
        out.push((bound, count(here)));
    }
    for (_, n) in out.iter_mut().rev() {
        let off = drop.min(*n);
        *n -= off;
        drop -= off;
    }
    out.retain(|(_, n)| *n > 0);
    out
}

/// Fills a site's ledger.
pub fn ledger(
    data: &SiteData,
    meta: &SiteMeta,
    window: SlotWindow,
    interactive_only: bool,
) -> Ledger {
    let mut l = Ledger::new(window.clock, Some((window.first, window.last)), &meta.bands);
    l.interactive_only = interactive_only;
    l.sites.push(data.site.clone());
    let runs = runs(&mut l, data, meta);
    latency(&mut l, data, meta);
    freezes(&mut l, data, window);
    logouts(&mut l, data, meta);
    kept(&mut l, data);
    stalls(&mut l, data);
    measured(&mut l, data, window, &runs);
    l.sort_events();
    l.shrink();
    l
}

/// Runs by outcome, and time over acceptable; gives each journey's runs
/// per slot, by target.
fn runs(l: &mut Ledger, data: &SiteData, meta: &SiteMeta) -> BTreeMap<(String, i64), u32> {
    let mut by_journey: BTreeMap<(String, String, i64), u32> = BTreeMap::new();
    for (labels, inc) in data
        .counters
        .get("casewatch_journey_runs_total")
        .into_iter()
        .flatten()
    {
        let (t, j) = (get(labels, "target"), get(labels, "journey"));
        let kind = meta.journey_kind(t, j);
        let id = l.journey_for(&data.site, t, j, kind);
        for &(slot, n) in inc {
            l.add_runs(id, slot, get(labels, "outcome"), count(n));
            *by_journey.entry((t.into(), j.into(), slot)).or_default() += count(n);
        }
    }
    let mut over: BTreeMap<(String, String, i64), f64> = BTreeMap::new();
    let family = "casewatch_step_over_acceptable_seconds_total";
    for (labels, inc) in data.counters.get(family).into_iter().flatten() {
        for &(slot, s) in inc {
            let key = (
                get(labels, "target").into(),
                get(labels, "journey").into(),
                slot,
            );
            *over.entry(key).or_default() += s;
        }
    }
    let mut by_target = BTreeMap::new();
    for ((t, j, slot), n) in by_journey {
        *by_target.entry((t.clone(), slot)).or_default() += n;
        if meta.journey_kind(&t, &j) == "interactive" {
            let id = l.journey_for(&data.site, &t, &j, "interactive");
            let ms = millis_of(
                over.get(&(t.clone(), j.clone(), slot))
                    .copied()
                    .unwrap_or(0.0),
            );
            l.add_excess(id, l.clock().start(slot), ms, n);
        }
    }
    by_target
}

/// Step latencies from the duration buckets; report journeys' run times.
fn latency(l: &mut Ledger, data: &SiteData, meta: &SiteMeta) {
    let mut given_up: BTreeMap<(Vec<String>, i64), u32> = BTreeMap::new();
    for (labels, inc) in data
        .counters
        .get("casewatch_steps_given_up_total")
        .into_iter()
        .flatten()
    {
        let key: Vec<String> = ["target", "journey", "step"]
            .iter()
            .map(|k| get(labels, k).to_string())
            .collect();
        for &(slot, n) in inc {
            given_up.insert((key.clone(), slot), count(n));
        }
    }
    let family = "casewatch_step_duration_seconds_bucket";
    for ((key, slot), cumulative) in
        bucket_slots(buckets(data, family, &["target", "journey", "step"]))
    {
        let (t, j, step) = (key[0].as_str(), key[1].as_str(), key[2].as_str());
        let (kind, phase) = meta.step_kind(t, j, step);
        let step_key = StepKey {
            target: t,
            journey: j,
            step,
            kind,
            phase,
            report_same: false,
            report_any: false,
        };
        let Some(id) = l.step_for(&step_key) else {
            continue;
        };
        let gave_up = given_up.get(&(key.clone(), slot)).copied().unwrap_or(0);
        for (bound, n) in per_bucket(&cumulative, gave_up) {
            l.add_classes(id, slot, class_of(micros_of(bound)), n);
        }
        let top = cumulative
            .iter()
            .rev()
            .find(|b| b.0.is_finite())
            .map_or(0.0, |b| b.0);
        for _ in 0..gave_up.min(10_000) {
            l.add_given_up(id, l.clock().start(slot), top);
        }
    }
    if l.interactive_only {
        return;
    }
    let family = "casewatch_journey_duration_seconds_bucket";
    for ((key, _), cumulative) in bucket_slots(buckets(data, family, &["target", "journey"])) {
        if meta.journey_kind(&key[0], &key[1]) != "report" {
            continue;
        }
        let entry = l
            .report_runs
            .entry((key[0].clone(), key[1].clone(), String::new()))
            .or_default();
        for (bound, n) in per_bucket(&cumulative, 0) {
            *entry.0.entry(class_of(micros_of(bound))).or_default() += u64::from(n);
        }
    }
    for slot in l.slots.values() {
        for (j, r) in &slot.runs {
            let key = &l.journeys[*j as usize];
            if let Some(e) =
                l.report_runs
                    .get_mut(&(key.target.clone(), key.journey.clone(), String::new()))
            {
                e.1 += u64::from(r.successes);
            }
        }
    }
}

/// Freeze episodes begun per slot, with lengths from those ended.
fn freezes(l: &mut Ledger, data: &SiteData, window: SlotWindow) {
    let clock = window.clock;
    let ended = buckets(
        data,
        "casewatch_freeze_duration_seconds_bucket",
        &["target"],
    );
    let mut sums: BTreeMap<(String, i64), f64> = BTreeMap::new();
    for (labels, inc) in data
        .counters
        .get("casewatch_freeze_duration_seconds_sum")
        .into_iter()
        .flatten()
    {
        for &(slot, s) in inc {
            sums.insert((get(labels, "target").to_string(), slot), s);
        }
    }
    for (labels, inc) in data
        .counters
        .get("casewatch_freeze_episodes_total")
        .into_iter()
        .flatten()
    {
        let target = get(labels, "target");
        let mut lengths: Vec<(i64, f64)> = Vec::new();
        let slots = ended.iter().filter(|(k, _)| k[0] == target);
        for (slot, cumulative) in slots.flat_map(|(_, slots)| slots) {
            let mut here: Vec<f64> = per_bucket(cumulative, 0)
                .into_iter()
                .flat_map(|(b, n)| std::iter::repeat_n(b, n as usize))
                .collect();
            let total: f64 = here.iter().sum();
            if let Some(exact) = sums.get(&(target.to_string(), *slot)) {
                if total > 0.0 {
                    here.iter_mut().for_each(|x| *x *= exact / total);
                }
            }
            lengths.extend(here.into_iter().map(|x| (*slot, x)));
        }
        let mut lengths = lengths.into_iter();
        for &(slot, n) in inc {
            for i in 0..count(n) {
                let started = clock.start(slot) + clock.seconds * f64::from(i) / (n + 1.0);
                let (length, censored) = match lengths.next() {
                    Some((_, x)) => (x, false),
                    None => (window.to() - started, true),
                };
                l.freezes.push(Freeze {
                    site: data.site.clone(),
                    target: target.to_string(),
                    started,
                    length,
                    censored,
                    agent_stall: 0.0,
                });
            }
        }
    }
}

/// Forced logouts at their band's middle age; exposure by band.
fn logouts(l: &mut Ledger, data: &SiteData, meta: &SiteMeta) {
    let clock = l.clock();
    let labels_of_bands = meta.bands.labels().to_vec();
    let edges: Vec<f64> = meta.bands.edges().iter().map(|d| d.as_secs_f64()).collect();
    let age_of = |band: &str| {
        let i = labels_of_bands.iter().position(|b| b == band).unwrap_or(0);
        let lo = if i == 0 { 0.0 } else { edges[i - 1] };
        edges.get(i).map_or(lo * 1.5 + 1.0, |hi| (lo + hi) / 2.0)
    };
    let mut kept_lost: BTreeMap<(String, i64), u32> = BTreeMap::new();
    for (labels, inc) in data
        .counters
        .get("casewatch_kept_sessions_ended_total")
        .into_iter()
        .flatten()
    {
        if get(labels, "end") == "forced" {
            for &(slot, n) in inc {
                *kept_lost
                    .entry((get(labels, "target").into(), slot))
                    .or_default() += count(n);
            }
        }
    }
    for (labels, inc) in data
        .counters
        .get("casewatch_forced_logouts_total")
        .into_iter()
        .flatten()
    {
        let target = get(labels, "target");
        let age = age_of(get(labels, "age_band"));
        for &(slot, n) in inc {
            let at = clock.start(slot) + clock.seconds / 2.0;
            for _ in 0..count(n) {
                let kept = kept_lost
                    .get_mut(&(target.to_string(), slot))
                    .filter(|k| **k > 0);
                let holder_kind = if let Some(k) = kept {
                    *k -= 1;
                    "kept"
                } else {
                    "journey"
                };
                l.forced_logouts.push(ForcedLogout {
                    site: data.site.clone(),
                    target: target.to_string(),
                    login_at: at - age,
                    alive_age: age,
                    seen_age: age,
                    // The store knows only the slot it was counted in.
                    seen_at: at,
                    cause: get(labels, "cause").to_string(),
                    holder_kind: holder_kind.into(),
                    holder: holder_kind.into(),
                });
            }
        }
    }
    for (labels, inc) in data
        .counters
        .get("casewatch_session_exposure_seconds_total")
        .into_iter()
        .flatten()
    {
        let target = l.target_id(get(labels, "target"));
        let band = labels_of_bands
            .iter()
            .position(|b| b == get(labels, "age_band"))
            .unwrap_or(0);
        for &(slot, s) in inc {
            l.add_exposure_ms(target, band, slot, millis_of(s));
        }
    }
}

/// Kept sessions' checks, logins and lives ended, over the window.
fn kept(l: &mut Ledger, data: &SiteData) {
    let sum = |inc: &[(i64, f64)]| inc.iter().map(|x| u64::from(count(x.1))).sum::<u64>();
    for (family, what) in [
        ("casewatch_keepalive_checks_total", "outcome"),
        ("casewatch_kept_session_logins_total", "outcome"),
        ("casewatch_kept_sessions_ended_total", "end"),
    ] {
        for (labels, inc) in data.counters.get(family).into_iter().flatten() {
            let n = sum(inc);
            if n == 0 {
                continue;
            }
            let row = l
                .kept
                .entry((data.site.clone(), get(labels, "target").into()))
                .or_default();
            let value = get(labels, what).to_string();
            match family {
                "casewatch_keepalive_checks_total" => {
                    row.checks += n;
                    *row.check_outcomes.entry(value).or_default() += n;
                }
                "casewatch_kept_session_logins_total" => {
                    row.logins += n;
                    if !crate::ledger::is_success(&value) {
                        row.failed_logins += n;
                    }
                }
                _ => *row.lives_ended.entry(value).or_default() += n,
            }
        }
    }
}

/// The agent's own stalls, and the runs they made it leave out.
fn stalls(l: &mut Ledger, data: &SiteData) {
    let clock = l.clock();
    let family = |name| data.counters.get(name).into_iter().flatten();
    let mut sums: BTreeMap<i64, f64> = BTreeMap::new();
    for (_, inc) in family("casewatch_agent_stall_duration_seconds_sum") {
        for &(slot, s) in inc {
            *sums.entry(slot).or_default() += s;
        }
    }
    for (_, inc) in family("casewatch_agent_stall_duration_seconds_count") {
        for &(slot, n) in inc {
            let n = count(n).min(10_000);
            let each = sums.get(&slot).copied().unwrap_or(0.0) / f64::from(n.max(1));
            for _ in 0..n {
                l.agent_stalls.push((clock.start(slot), each));
            }
        }
    }
    for (_, inc) in family("casewatch_journey_runs_agent_stalled_total") {
        l.stalled_runs += inc.iter().map(|x| u64::from(count(x.1))).sum::<u64>();
    }
}

/// Targets measured per slot, and the span measured.
fn measured(
    l: &mut Ledger,
    data: &SiteData,
    window: SlotWindow,
    runs: &BTreeMap<(String, i64), u32>,
) {
    let pushed = |slot: i64| {
        let k = slot - window.first;
        k >= 0 && data.pushes.get(k as usize).is_some_and(|p| *p > 0)
    };
    let mut busy: Vec<(String, i64)> = runs.keys().cloned().collect();
    for list in data.busy.values() {
        for (labels, slots) in list {
            busy.extend(
                slots
                    .iter()
                    .map(|s| (get(labels, "target").to_string(), *s)),
            );
        }
    }
    for (labels, inc) in data
        .counters
        .get("casewatch_freeze_episodes_total")
        .into_iter()
        .flatten()
    {
        busy.extend(inc.iter().map(|x| (get(labels, "target").to_string(), x.0)));
    }
    let (mut first, mut last) = (None::<i64>, None::<i64>);
    for (target, slot) in busy {
        if !pushed(slot) || target.is_empty() {
            continue;
        }
        let t = l.target_id(&target);
        l.add_flight_slot(t, slot);
        first = Some(first.map_or(slot, |f| f.min(slot)));
        last = Some(last.map_or(slot, |x| x.max(slot)));
    }
    if let (Some(f), Some(t)) = (first, last) {
        l.measured = Some((l.clock().start(f), l.clock().start(t + 1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_become_samples_at_their_upper_bounds_less_the_given_up() {
        let cumulative = [(0.1, 3.0), (0.5, 5.0), (30.0, 6.0), (f64::INFINITY, 8.0)];
        assert_eq!(
            per_bucket(&cumulative, 0),
            vec![(0.1, 3), (0.5, 2), (30.0, 1), (30.0, 2)]
        );
        // Two given up: the slowest two.
        assert_eq!(
            per_bucket(&cumulative, 2),
            vec![(0.1, 3), (0.5, 2), (30.0, 1)]
        );
        assert_eq!(per_bucket(&cumulative, 4), vec![(0.1, 3), (0.5, 1)]);
    }
}
