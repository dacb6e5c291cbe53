//! The ledger: what was measured, as tallies per **slot** of time (a
//! calendar hour of the monitored system, or a divisor of an hour for a
//! window shorter than [`HOURLY_FROM_SLOTS`] hours), plus the few events
//! the report lists one by one (freeze episodes, forced logouts, steps
//! given up on, browser evidence).
//!
//! Every figure of the report is computed from a ledger, never from rows,
//! so the report's memory is bounded by slots × steps whatever the length
//! of the journal. A ledger is filled from a journal in one streaming pass
//! ([`build`]), from the hourly rollups a compacted journal keeps
//! ([`rollup`]), or directly by the calibration's known process.
//!
//! - **Latency samples** are kept as their HdrHistogram class (the lowest
//!   value equivalent to three significant figures, in microseconds):
//!   four bytes a sample, sorted per slot and step, and any percentile is
//!   exactly what an HdrHistogram of the same steps gives.
//! - **Time** tallies are whole milliseconds, so that adding the same
//!   contributions in any order gives the same figure: a report over a
//!   compacted journal equals the report over the original.
//! - **Attribution.** A run (with its steps) belongs to the slot of its
//!   intended start, a session to the slot of its login, a freeze to the
//!   slot it started in, a kept session's check to the slot it was sent in.
//!   Contributions may land in later slots (a step sent after its run's
//!   start, a session's exposure over the hours it lived); those beyond the
//!   ledger's window are dropped.
//! - **Keys** are interned per ledger; [`Ledger::absorb`] merges two
//!   ledgers by name.

mod absorb;
pub mod build;
pub mod counts;
pub mod rollup;
mod v1;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::detect::AgeBands;

/// Windows of at least this many calendar hours are read in hourly slots
/// (and can be read from hourly rollups); shorter ones in finer slots.
pub const HOURLY_FROM_SLOTS: f64 = 60.0;
/// Slot lengths (calendar seconds) a short window may use: each divides an
/// hour.
pub const SLOT_CHOICES: [f64; 13] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0,
];
/// Calendar seconds in an hour and a day.
pub const HOUR: f64 = 3600.0;
pub const DAY: f64 = 86_400.0;

/// The largest value a latency class holds (an hour, in microseconds), as
/// the journal's HdrHistograms.
pub use crate::recorder::HIGHEST_MICROS;
/// Latency classes, as the recorder's HdrHistograms count them.
pub use crate::recorder::{class_of, class_value};

/// Whole microseconds of `seconds`, as the recorder stores a step.
pub fn micros_of(seconds: f64) -> u64 {
    if seconds.is_nan() || seconds <= 0.0 {
        return 1;
    }
    std::time::Duration::try_from_secs_f64(seconds)
        .map(|d| d.as_micros().min(u128::from(HIGHEST_MICROS)) as u64)
        .unwrap_or(HIGHEST_MICROS)
        .clamp(1, HIGHEST_MICROS)
}

/// Whole milliseconds of `seconds` (non-negative, saturating).
pub fn millis_of(seconds: f64) -> u64 {
    if seconds.is_nan() || seconds <= 0.0 {
        return 0;
    }
    (seconds * 1000.0).round().min(u64::MAX as f64) as u64
}

/// How time is cut into slots: `seconds` of real time each, slot `i`
/// starting at `i * seconds` (so slots line up with the monitored
/// system's calendar hours).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlotClock {
    /// Real seconds per slot.
    pub seconds: f64,
    /// How many times faster than the wall clock the system's calendar
    /// runs (1 for a real system).
    pub scale: f64,
}

impl SlotClock {
    /// Hourly slots in the calendar of `scale`.
    pub fn hourly(scale: f64) -> SlotClock {
        SlotClock {
            seconds: HOUR / scale,
            scale,
        }
    }

    /// The slot length for a window of `span` real seconds: hourly from
    /// [`HOURLY_FROM_SLOTS`] calendar hours (or whenever `hourly` data must
    /// be read), else the longest divisor of an hour giving at least that
    /// many slots.
    pub fn for_window(span: f64, scale: f64, hourly: bool) -> SlotClock {
        let calendar_span = span * scale;
        if hourly || calendar_span >= HOURLY_FROM_SLOTS * HOUR {
            return SlotClock::hourly(scale);
        }
        let calendar = SLOT_CHOICES
            .iter()
            .rev()
            .copied()
            .find(|s| calendar_span / s >= HOURLY_FROM_SLOTS)
            .unwrap_or(SLOT_CHOICES[0]);
        SlotClock {
            seconds: calendar / scale,
            scale,
        }
    }

    pub fn is_hourly(&self) -> bool {
        (self.seconds * self.scale - HOUR).abs() < 1e-6
    }

    /// The slot holding unix time `t`.
    pub fn slot(&self, t: f64) -> i64 {
        (t / self.seconds).floor() as i64
    }

    /// Unix time at which slot `i` starts.
    pub fn start(&self, i: i64) -> f64 {
        i as f64 * self.seconds
    }

    /// Splits `[t0, t1)` over the slots it crosses: (slot, milliseconds).
    pub fn split(&self, t0: f64, t1: f64, mut each: impl FnMut(i64, u64)) {
        if t1.is_nan() || t0.is_nan() || t1 <= t0 {
            return;
        }
        let (first, last) = (self.slot(t0), self.slot(t1));
        // A stretch over more slots than a year of minutes is not a
        // session the agent measured: it is a broken row.
        if last - first > 600_000 {
            return;
        }
        let mut from = t0;
        for i in first..=last {
            let end = self.start(i + 1).min(t1);
            let ms = millis_of(end - from);
            if ms > 0 {
                each(i, ms);
            }
            from = end;
            if from >= t1 {
                break;
            }
        }
    }
}

/// A journey as the ledger keys it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JourneyKey {
    pub site: String,
    pub target: String,
    pub journey: String,
    /// `interactive` or `report`.
    pub kind: String,
}

/// A step as the ledger keys it. Interactive journeys' own steps are kept
/// apart by whether a report was running at the time (on the same system,
/// on any system), for the reporting-load comparison.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StepKey<S = String> {
    pub target: S,
    pub journey: S,
    pub step: S,
    /// The step's own kind (`report` for a report step), else its run's.
    pub kind: S,
    /// `login`, `journey` or `logout`.
    pub phase: S,
    pub report_same: bool,
    pub report_any: bool,
}

impl StepKey<&str> {
    pub fn owned(&self) -> StepKey {
        StepKey {
            target: self.target.into(),
            journey: self.journey.into(),
            step: self.step.into(),
            kind: self.kind.into(),
            phase: self.phase.into(),
            report_same: self.report_same,
            report_any: self.report_any,
        }
    }
}

impl<S: AsRef<str>> StepKey<S> {
    /// One of the interactive journeys' own steps: what "interactive
    /// latency" means throughout the report.
    pub fn is_interactive(&self) -> bool {
        self.kind.as_ref() == "interactive" && self.phase.as_ref() == "journey"
    }
}

/// Runs of one journey in one slot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunTally {
    pub runs: u32,
    pub successes: u32,
    /// Failed runs by outcome (index into [`Ledger::outcomes`]).
    pub failures: Vec<(u16, u32)>,
}

/// One step's completed samples (sorted classes) and give-ups in a slot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepTally {
    pub samples: Vec<u32>,
    pub given_up: u32,
}

/// One system's session exposure in a slot: milliseconds known alive, by
/// age band (index into the ledger's bands).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExposureTally {
    pub by_band: Vec<u64>,
}

impl ExposureTally {
    pub fn total_ms(&self) -> u64 {
        self.by_band.iter().sum()
    }
}

/// An interactive journey's time over `acceptable` in a slot (its runs'
/// completed own steps), its runs, and the work in its failed runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExcessTally {
    pub over_ms: u64,
    pub runs: u32,
    /// Work a practitioner would do again after the slot's failed runs
    /// (not those cut short by a forced logout, which the forced logouts
    /// cost): their login and journey steps' time, a frozen or given-up
    /// step's wait left out, since the freezes count it.
    pub redo_ms: u64,
    pub failed: u32,
}

/// One slot's tallies. Keys are small indices into the ledger's tables;
/// each list is sorted by key. `E` is the excess tally: only rollup format
/// 1 ([`v1`]) has another.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotTally<E = ExcessTally> {
    pub runs: Vec<(u16, RunTally)>,
    pub steps: Vec<(u16, StepTally)>,
    /// By target.
    pub exposure: Vec<(u16, ExposureTally)>,
    /// By interactive journey (index into `journeys`).
    pub excess: Vec<(u16, E)>,
    /// Targets a run or a kept session's check was in flight on during the
    /// slot (sorted): the time the agent was measuring them, a freeze
    /// included.
    #[serde(default)]
    pub in_flight: Vec<u16>,
}

/// The entry of `key` in a list sorted by key, inserted when missing.
fn entry<T: Default>(list: &mut Vec<(u16, T)>, key: u16) -> &mut T {
    let i = match list.binary_search_by_key(&key, |e| e.0) {
        Ok(i) => i,
        Err(i) => {
            list.insert(i, (key, T::default()));
            i
        }
    };
    &mut list[i].1
}

/// A freeze episode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Freeze {
    pub site: String,
    pub target: String,
    pub started: f64,
    pub length: f64,
    pub censored: bool,
    /// Seconds of it the agent itself was stalled: the system's part is
    /// at least `length - agent_stall`.
    #[serde(default)]
    pub agent_stall: f64,
}

/// A forced logout, with the bracket of the session's age at the loss.
/// (`Default` only so that the ledger, generic over it, derives its own.)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ForcedLogout {
    pub site: String,
    pub target: String,
    /// When the login completed (unix seconds): ages count from here.
    pub login_at: f64,
    /// Last known alive, and loss seen (session age, seconds). The second
    /// counts from the login's send, so that it is the latest age the loss
    /// can have happened at: it is not a moment in time.
    pub alive_age: f64,
    pub seen_age: f64,
    /// When the answer that showed the loss arrived (unix seconds).
    pub seen_at: f64,
    pub cause: String,
    /// `journey` or `kept`.
    pub holder_kind: String,
    /// The journey's name, or `kept session N`.
    pub holder: String,
}

impl ForcedLogout {
    /// The age it is counted at: the middle of its bracket.
    pub fn age(&self) -> f64 {
        (self.alive_age + self.seen_age) / 2.0
    }

    /// When it is counted: midway between the last moment the session
    /// was known alive and the moment its loss was seen.
    pub fn at(&self) -> f64 {
        let alive = self.login_at + self.alive_age;
        alive + (self.seen_at - alive).max(0.0) / 2.0
    }
}

/// A step given up on: known only to have taken at least `seconds`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GivenUp {
    pub step: u16,
    pub sent_at: f64,
    pub seconds: f64,
}

/// A failed browser step whose screenshot and console errors were saved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapturedStep {
    pub sent_at: f64,
    pub target: String,
    pub journey: String,
    pub step: String,
    pub outcome: String,
    /// The name in the evidence folder (without extension).
    pub name: String,
}

/// A kept session's checks and lives at one (site, target).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeptTally {
    pub checks: u64,
    pub check_outcomes: BTreeMap<String, u64>,
    pub unknown_checks: u64,
    pub logins: u64,
    pub failed_logins: u64,
    pub lives_ended: BTreeMap<String, u64>,
}

/// Sums behind the cost of a forced logout: successful logins (time to
/// sign in again), journeys cut short by a logout (the work lost), and
/// completed interactive runs (half of one, when nothing was cut short).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostSums {
    pub login_ms: u64,
    pub logins: u64,
    pub interrupted_ms: u64,
    pub interrupted: u64,
    pub run_ms: u64,
    pub runs: u64,
}

/// Durations (µs classes, with their counts) and successes of report runs.
pub type ReportDurations = (BTreeMap<u32, u64>, u64);

/// Everything a report reads. `S` and `F` are the slot and the forced
/// logout: only rollup format 1 ([`v1`]) has others, and it shares the
/// rest of the layout through them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ledger<S = SlotTally, F = ForcedLogout> {
    pub clock: Option<SlotClock>,
    /// The window's first and last slot (inclusive); contributions outside
    /// are dropped. `None` for a rollup, which keeps all it is given.
    pub window_slots: Option<(i64, i64)>,
    /// First and last moment measured (runs and kept checks), unix seconds.
    pub measured: Option<(f64, f64)>,
    pub sites: Vec<String>,
    pub targets: Vec<String>,
    pub journeys: Vec<JourneyKey>,
    pub steps: Vec<StepKey>,
    pub outcomes: Vec<String>,
    /// Age band labels, as exposure is split.
    pub bands: Vec<String>,
    pub slots: BTreeMap<i64, S>,
    pub freezes: Vec<Freeze>,
    pub forced_logouts: Vec<F>,
    pub given_up: Vec<GivenUp>,
    pub browser_sides: BTreeMap<(String, String), [u64; 3]>,
    pub browser_evidence: Vec<CapturedStep>,
    /// Sessions' lifetimes (milliseconds, HdrHistogram class) by whether
    /// they ended in a forced logout: (censored, dropped).
    pub lifetimes: BTreeMap<u32, (u64, u64)>,
    pub kept: BTreeMap<(String, String), KeptTally>,
    pub cost: CostSums,
    /// Report runs' and report steps' durations (µs classes) and successes,
    /// by (target, journey, step; empty for a whole run).
    pub report_runs: BTreeMap<(String, String, String), ReportDurations>,
    /// The agent's own stalls (started, seconds), and the runs left out
    /// because they overlapped one.
    #[serde(default)]
    pub agent_stalls: Vec<(f64, f64)>,
    #[serde(default)]
    pub stalled_runs: u64,
    /// Samples held, for the memory bound.
    pub samples: u64,
    /// Keep only the interactive journeys' own steps, folded into one
    /// step: all a fleet report reads of latency, at a fraction of the
    /// memory.
    #[serde(skip)]
    pub interactive_only: bool,
}

fn intern<T: PartialEq + Clone>(table: &mut Vec<T>, item: &T) -> u16 {
    match table.iter().position(|x| x == item) {
        Some(i) => i as u16,
        None => {
            table.push(item.clone());
            (table.len() - 1) as u16
        }
    }
}

impl Ledger {
    /// An empty ledger over slots `[first, last]` of `clock`.
    pub fn new(clock: SlotClock, window_slots: Option<(i64, i64)>, bands: &AgeBands) -> Ledger {
        Ledger {
            clock: Some(clock),
            window_slots,
            bands: bands.labels().to_vec(),
            ..Ledger::default()
        }
    }

    pub fn clock(&self) -> SlotClock {
        self.clock.unwrap_or(SlotClock::hourly(1.0))
    }

    fn keeps(&self, slot: i64) -> bool {
        self.window_slots
            .is_none_or(|(first, last)| slot >= first && slot <= last)
    }

    fn slot_mut(&mut self, slot: i64) -> Option<&mut SlotTally> {
        if !self.keeps(slot) {
            return None;
        }
        Some(self.slots.entry(slot).or_default())
    }

    pub fn target_id(&mut self, target: &str) -> u16 {
        intern(&mut self.targets, &target.to_string())
    }

    pub fn journey_id(&mut self, key: &JourneyKey) -> u16 {
        intern(&mut self.journeys, key)
    }

    pub fn step_id(&mut self, key: &StepKey) -> u16 {
        intern(&mut self.steps, key)
    }

    /// The index of journey (site, target, journey, kind), found without
    /// allocating when it is known.
    pub fn journey_for(&mut self, site: &str, target: &str, journey: &str, kind: &str) -> u16 {
        let found = self.journeys.iter().position(|j| {
            j.journey == journey && j.target == target && j.kind == kind && j.site == site
        });
        match found {
            Some(i) => i as u16,
            None => self.journey_id(&JourneyKey {
                site: site.into(),
                target: target.into(),
                journey: journey.into(),
                kind: kind.into(),
            }),
        }
    }

    /// The index a step is tallied under (see [`Ledger::map_step`]), found
    /// without allocating when it is known.
    pub fn step_for(&mut self, key: &StepKey<&str>) -> Option<u16> {
        if self.interactive_only {
            return self.map_step(&key.owned());
        }
        let found = self.steps.iter().position(|k| {
            k.step == key.step
                && k.journey == key.journey
                && k.target == key.target
                && k.phase == key.phase
                && k.kind == key.kind
                && k.report_same == key.report_same
                && k.report_any == key.report_any
        });
        Some(match found {
            Some(i) => i as u16,
            None => self.step_id(&key.owned()),
        })
    }

    /// The index `key` is tallied under, or `None` when this ledger does
    /// not keep it (see [`Ledger::interactive_only`]).
    pub fn map_step(&mut self, key: &StepKey) -> Option<u16> {
        if !self.interactive_only {
            return Some(self.step_id(key));
        }
        key.is_interactive().then(|| {
            self.step_id(&StepKey {
                target: String::new(),
                journey: String::new(),
                step: "interactive".into(),
                kind: "interactive".into(),
                phase: "journey".into(),
                report_same: false,
                report_any: false,
            })
        })
    }

    pub fn outcome_id(&mut self, outcome: &str) -> u16 {
        intern(&mut self.outcomes, &outcome.to_string())
    }

    /// Counts a run of `journey` at time `at`.
    pub fn add_run(&mut self, journey: u16, at: f64, outcome: &str) {
        let ok = is_success(outcome);
        let outcome = (!ok).then(|| self.outcome_id(outcome));
        let slot = self.clock().slot(at);
        if let Some(s) = self.slot_mut(slot) {
            let tally = entry(&mut s.runs, journey);
            tally.runs += 1;
            if let Some(o) = outcome {
                *entry(&mut tally.failures, o) += 1;
            } else {
                tally.successes += 1;
            }
        }
    }

    /// Marks `target` measured from `t0` to `t1` (a run or a kept check in
    /// flight).
    pub fn add_flight(&mut self, target: u16, t0: f64, t1: f64) {
        let clock = self.clock();
        let (first, last) = (clock.slot(t0), clock.slot(t1.max(t0)));
        if last - first > 600_000 {
            return;
        }
        for i in first..=last {
            if let Some(s) = self.slot_mut(i) {
                if let Err(at) = s.in_flight.binary_search(&target) {
                    s.in_flight.insert(at, target);
                }
            }
        }
    }

    /// Records a completed step's duration (seconds), sent at `at`.
    pub fn add_sample(&mut self, step: u16, at: f64, seconds: f64) {
        let class = class_of(micros_of(seconds));
        let slot = self.clock().slot(at);
        if let Some(s) = self.slot_mut(slot) {
            let samples = &mut entry(&mut s.steps, step).samples;
            let i = samples.partition_point(|x| *x <= class);
            samples.insert(i, class);
            self.samples += 1;
        }
    }

    /// Records a step given up on after `seconds`.
    pub fn add_given_up(&mut self, step: u16, at: f64, seconds: f64) {
        let slot = self.clock().slot(at);
        if let Some(s) = self.slot_mut(slot) {
            entry(&mut s.steps, step).given_up += 1;
            self.given_up.push(GivenUp {
                step,
                sent_at: at,
                seconds,
            });
        }
    }

    /// Adds time over `acceptable` (ms) to an interactive journey's run
    /// (for time lost, which a fleet's ledger does not keep).
    pub fn add_excess(&mut self, journey: u16, at: f64, over_ms: u64, runs: u32) {
        if self.interactive_only {
            return;
        }
        let slot = self.clock().slot(at);
        if let Some(s) = self.slot_mut(slot) {
            let e = entry(&mut s.excess, journey);
            e.over_ms += over_ms;
            e.runs += runs;
        }
    }

    /// Counts a failed run of interactive journey `journey` (intended start
    /// `at`) whose work a practitioner would do again: `redo_ms`.
    pub fn add_failed(&mut self, journey: u16, at: f64, redo_ms: u64) {
        if self.interactive_only {
            return;
        }
        let slot = self.clock().slot(at);
        if let Some(s) = self.slot_mut(slot) {
            let e = entry(&mut s.excess, journey);
            e.redo_ms += redo_ms;
            e.failed += 1;
        }
    }

    /// Adds a session's life from `t0` to `t1` in band `band` on `target`
    /// (a fleet's ledger keeps one band: it shows no hazard by age).
    pub fn add_exposure(&mut self, target: u16, band: usize, t0: f64, t1: f64) {
        let band = if self.interactive_only { 0 } else { band };
        let clock = self.clock();
        let bands = if self.interactive_only {
            1
        } else {
            self.bands.len().max(band + 1)
        };
        let window = self.window_slots;
        let slots = &mut self.slots;
        clock.split(t0, t1, |i, ms| {
            if window.is_some_and(|(first, last)| i < first || i > last) {
                return;
            }
            let tally = entry(&mut slots.entry(i).or_default().exposure, target);
            if tally.by_band.len() < bands {
                tally.by_band.resize(bands, 0);
            }
            tally.by_band[band] += ms;
        });
    }

    /// Whether time `t` lies in the window's slots.
    pub fn in_window(&self, t: f64) -> bool {
        self.keeps(self.clock().slot(t))
    }

    /// Gives back the room lists grew into while being filled.
    pub fn shrink(&mut self) {
        for slot in self.slots.values_mut() {
            slot.runs.shrink_to_fit();
            slot.steps.shrink_to_fit();
            for (_, t) in &mut slot.steps {
                t.samples.shrink_to_fit();
            }
            slot.exposure.shrink_to_fit();
            slot.excess.shrink_to_fit();
            slot.in_flight.shrink_to_fit();
        }
    }

    /// Puts events in time order (they arrive in journal order).
    pub fn sort_events(&mut self) {
        self.freezes.sort_by(|a, b| {
            a.started
                .total_cmp(&b.started)
                .then(a.target.cmp(&b.target))
        });
        self.forced_logouts.sort_by(|a, b| {
            a.seen_at
                .total_cmp(&b.seen_at)
                .then(a.target.cmp(&b.target))
        });
        self.given_up
            .sort_by(|a, b| a.sent_at.total_cmp(&b.sent_at).then(a.step.cmp(&b.step)));
        self.browser_evidence
            .sort_by(|a, b| a.sent_at.total_cmp(&b.sent_at).then(a.name.cmp(&b.name)));
        self.agent_stalls.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.sites.sort();
    }
}

/// A run or step that completed: `ok` or `slow`.
pub fn is_success(outcome: &str) -> bool {
    matches!(outcome, "ok" | "slow")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_what_hdrhistogram_reports() {
        let mut h = crate::recorder::new_histogram();
        for v in [1u64, 999, 1000, 1001, 2047, 2048, 2049, 123_456, 99_999_999] {
            h.record(v).unwrap();
            assert_eq!(class_value(class_of(v)), h.highest_equivalent(v), "{v}");
            assert!(u64::from(class_of(v)) <= v);
        }
        assert_eq!(class_value(class_of(h.max())), h.max());
    }

    #[test]
    fn micros_round_trip_the_journal_s_seconds() {
        for micros in [1u64, 7, 123_456, 1_999_999, 30_000_000] {
            let d = std::time::Duration::from_micros(micros) + std::time::Duration::from_nanos(417);
            assert_eq!(micros_of(d.as_secs_f64()), micros);
        }
        assert_eq!(micros_of(-1.0), 1);
        assert_eq!(micros_of(f64::NAN), 1);
        assert_eq!(micros_of(1e30), HIGHEST_MICROS);
    }

    #[test]
    fn hourly_slots_follow_the_system_calendar() {
        let c = SlotClock::hourly(60.0);
        assert_eq!(c.seconds, 60.0);
        assert_eq!(c.slot(119.9), 1);
        let short = SlotClock::for_window(120.0, 1.0, false);
        assert_eq!(short.seconds, 2.0);
        assert!(SlotClock::for_window(90.0 * 3600.0, 1.0, false).is_hourly());
        assert!(SlotClock::for_window(60.0, 1.0, true).is_hourly());
        let mut parts = Vec::new();
        SlotClock::hourly(1.0).split(3000.0, 7300.5, |i, ms| parts.push((i, ms)));
        assert_eq!(parts, vec![(0, 600_000), (1, 3_600_000), (2, 100_500)]);
    }

    #[test]
    fn absorbing_is_by_name_and_keeps_samples_sorted() {
        let clock = SlotClock::hourly(1.0);
        let bands = AgeBands::default();
        let key = |step: &str| StepKey {
            target: "ics".into(),
            journey: "j".into(),
            step: step.into(),
            kind: "interactive".into(),
            phase: "journey".into(),
            report_same: false,
            report_any: false,
        };
        let mut a = Ledger::new(clock, None, &bands);
        let s = a.step_id(&key("search"));
        a.add_sample(s, 10.0, 0.2);
        a.add_sample(s, 20.0, 0.1);
        let mut b = Ledger::new(clock, None, &bands);
        b.step_id(&key("other"));
        let s2 = b.step_id(&key("search"));
        b.add_sample(s2, 30.0, 0.15);
        b.add_given_up(s2, 40.0, 30.0);
        a.absorb(&b);
        let tally = &a.slots[&0].steps[0].1;
        assert_eq!(
            tally.samples,
            vec![class_of(100_000), class_of(150_000), class_of(200_000)]
        );
        assert_eq!(tally.given_up, 1);
        assert_eq!(a.given_up[0].step, s);
        assert_eq!(a.samples, 3);
        // A window drops what lies outside it.
        let mut w = Ledger::new(clock, Some((1, 5)), &bands);
        w.absorb(&a);
        assert!(w.slots.is_empty() && w.given_up.is_empty());
    }
}
