//! How the evidence is laid out in time: the ledger's slots grouped into
//! **units of days** (the independent observations of every interval),
//! each slot placed in its **calendar cell** (hour of the day, weekdays
//! and weekends apart, in the monitored system's calendar), and the parts
//! every estimate of [`super::evidence`] is built from.
//!
//! - **Only slots in which the agent measured count** (a journey's run or
//!   a kept session's check in flight): a stretch with the agent down is
//!   neither good time nor bad.
//! - **The unit's length** is a day, or longer when the days themselves
//!   are correlated: of 1, 2, 4 and 7 days, the shortest whose units'
//!   latency residuals show no lag-one autocorrelation beyond what chance
//!   gives (|r| ≤ 2/√units), and at least twice the longest freeze.

use std::collections::{BTreeMap, BTreeSet};

use super::evidence::{Part, MIN_UNITS};
use crate::ledger::{ForcedLogout, JourneyKey, Ledger, SlotClock, StepKey, DAY};

/// Cells of the week: the hour of the day, weekdays and weekends apart.
pub const CELLS: usize = 48;
/// Unit lengths tried, in days.
pub const UNIT_DAYS: [u32; 4] = [1, 2, 4, 7];

/// The calendar cell of calendar time `cal` (seconds since the epoch, in
/// the system's calendar).
pub fn cell_at(cal: f64) -> u16 {
    let day = (cal / DAY).floor();
    let hour = ((cal - day * DAY) / 3600.0).floor().clamp(0.0, 23.0) as u16;
    hour + 24 * u16::from(is_weekend(day))
}

/// Whether calendar day `day` (days since the epoch) is a Saturday or
/// Sunday: 1970-01-01 was a Thursday.
pub fn is_weekend(day: f64) -> bool {
    (day as i64 + 3).rem_euclid(7) >= 5
}

/// Units of days over a ledger's slots: calendar days (or runs of them),
/// since that is how real load varies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Design {
    pub clock: SlotClock,
    /// Calendar days per unit.
    pub unit_days: u32,
    /// A change's moment: the unit holding it is cut in two there, one
    /// part on each side. `None` outside comparisons.
    pub split: Option<f64>,
}

impl Design {
    pub fn new(clock: SlotClock, unit_days: u32) -> Design {
        Design {
            clock,
            unit_days: unit_days.max(1),
            split: None,
        }
    }

    /// The same units, the one holding `at` cut in two there.
    pub fn split_at(self, at: f64) -> Design {
        Design {
            split: Some(at),
            ..self
        }
    }

    /// Real seconds in a unit.
    pub fn unit_seconds(&self) -> f64 {
        f64::from(self.unit_days) * DAY / self.clock.scale
    }

    fn middle(&self, slot: i64) -> f64 {
        self.clock.start(slot) + self.clock.seconds / 2.0
    }

    pub fn unit(&self, slot: i64) -> i64 {
        let middle = self.middle(slot);
        let unit = (middle / self.unit_seconds()).floor() as i64;
        match self.split {
            Some(at) => 2 * unit + i64::from(middle >= at),
            None => unit,
        }
    }

    pub fn cell(&self, slot: i64) -> u16 {
        cell_at(self.middle(slot) * self.clock.scale)
    }

    pub fn day_type(&self, slot: i64) -> u8 {
        u8::from(self.cell(slot) >= 24)
    }

    /// A part for `slot`, in stratum `stratum`.
    pub fn part<T>(&self, slot: i64, stratum: u16, value: T) -> Part<T> {
        Part {
            unit: self.unit(slot),
            stratum,
            day_type: self.day_type(slot),
            value,
        }
    }

    /// Calendar hours in a slot.
    pub fn slot_hours(&self) -> f64 {
        self.clock.seconds * self.clock.scale / 3600.0
    }
}

/// What the parts are drawn from: a ledger, the slots in which the agent
/// was measuring each target, and per slot the events the ledger keeps as
/// lists, counted by slot and target.
pub struct Sheet<'a> {
    pub ledger: &'a Ledger,
    /// Per target, the slots measured: a run or a kept check in flight (a
    /// freeze included), or a gap between such slots no longer than the usual gap
    /// between runs (slots shorter than a journey's interval). Longer gaps
    /// are the agent not running: neither good time nor bad.
    measured: BTreeMap<u16, BTreeSet<i64>>,
    any_measured: BTreeSet<i64>,
    /// (slot, target) -> freeze episodes started.
    freezes: BTreeMap<(i64, u16), f64>,
    /// (slot, target) -> forced logouts counted (at their bracket's middle).
    drops: BTreeMap<(i64, u16), f64>,
}

impl<'a> Sheet<'a> {
    pub fn new(ledger: &'a Ledger) -> Sheet<'a> {
        let clock = ledger.clock();
        let target = |name: &str| {
            ledger
                .targets
                .iter()
                .position(|t| t == name)
                .map(|i| i as u16)
        };
        let mut freezes = BTreeMap::new();
        for f in &ledger.freezes {
            if let Some(t) = target(&f.target) {
                *freezes.entry((clock.slot(f.started), t)).or_default() += 1.0;
            }
        }
        let mut measured: BTreeMap<u16, BTreeSet<i64>> = BTreeMap::new();
        for (&i, slot) in &ledger.slots {
            for t in &slot.in_flight {
                measured.entry(*t).or_default().insert(i);
            }
        }
        for slots in measured.values_mut() {
            fill_gaps(slots);
        }
        let mut drops = BTreeMap::new();
        for d in &ledger.forced_logouts {
            if let Some(t) = target(&d.target) {
                let slot = drop_slot(clock, d, measured.get(&t));
                *drops.entry((slot, t)).or_default() += 1.0;
            }
        }
        let any_measured = measured.values().flatten().copied().collect();
        Sheet {
            ledger,
            measured,
            any_measured,
            freezes,
            drops,
        }
    }

    pub fn target_index(&self, name: &str) -> Option<u16> {
        self.ledger
            .targets
            .iter()
            .position(|t| t == name)
            .map(|i| i as u16)
    }

    /// Whether the agent was measuring `target` (any when `None`) in `slot`.
    pub fn ran(&self, slot: i64, target: Option<u16>) -> bool {
        match target {
            Some(t) => self.measured.get(&t).is_some_and(|s| s.contains(&slot)),
            None => self.any_measured.contains(&slot),
        }
    }

    /// The slots of the window in which the agent measured `target`.
    pub fn slots(&self, target: Option<u16>) -> Vec<i64> {
        match target {
            Some(t) => self
                .measured
                .get(&t)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default(),
            None => self.any_measured.iter().copied().collect(),
        }
    }

    /// (successes, runs) of the journeys `keep` keeps, per slot.
    pub fn runs(
        &self,
        design: &Design,
        slots: &[i64],
        keep: impl Fn(&JourneyKey) -> bool,
    ) -> Vec<Part<(u64, u64)>> {
        let keep: Vec<bool> = self.ledger.journeys.iter().map(keep).collect();
        slots
            .iter()
            .filter_map(|&i| {
                let slot = self.ledger.slots.get(&i)?;
                let (mut s, mut n) = (0u64, 0u64);
                for (j, r) in &slot.runs {
                    if keep[*j as usize] {
                        s += u64::from(r.successes);
                        n += u64::from(r.runs);
                    }
                }
                (n > 0).then(|| design.part(i, u16::from(design.day_type(i)), (s, n)))
            })
            .collect()
    }

    /// Completed samples of the steps `keep` keeps, one part per slot and
    /// step, in the slot's calendar cell.
    pub fn latencies(
        &self,
        design: &Design,
        slots: &[i64],
        keep: impl Fn(&StepKey) -> bool,
    ) -> Vec<Part<&'a [u32]>> {
        let keep: Vec<bool> = self.ledger.steps.iter().map(keep).collect();
        let mut out = Vec::new();
        for &i in slots {
            let Some(slot) = self.ledger.slots.get(&i) else {
                continue;
            };
            for (k, t) in &slot.steps {
                if keep[*k as usize] && !t.samples.is_empty() {
                    out.push(design.part(i, design.cell(i), t.samples.as_slice()));
                }
            }
        }
        out
    }

    /// (freeze episodes started, calendar hours) per slot of `slots` in
    /// which a journey on `target` ran.
    pub fn freezes(
        &self,
        design: &Design,
        slots: &[i64],
        target: Option<u16>,
    ) -> Vec<Part<(f64, f64)>> {
        let hours = design.slot_hours();
        slots
            .iter()
            .filter(|&&i| self.ran(i, target))
            .map(|&i| {
                let k = self.count(&self.freezes, i, target);
                design.part(i, u16::from(design.day_type(i)), (k, hours))
            })
            .collect()
    }

    /// (forced logouts, session-hours known alive, calendar) per slot of
    /// `slots` in which a journey on `target` ran.
    pub fn drops(
        &self,
        design: &Design,
        slots: &[i64],
        target: Option<u16>,
    ) -> Vec<Part<(f64, f64)>> {
        slots
            .iter()
            .filter(|&&i| self.ran(i, target))
            .map(|&i| {
                let k = self.count(&self.drops, i, target);
                let hours = self.session_hours(design, i, target, None);
                design.part(i, u16::from(design.day_type(i)), (k, hours))
            })
            .collect()
    }

    fn count(&self, map: &BTreeMap<(i64, u16), f64>, slot: i64, target: Option<u16>) -> f64 {
        match target {
            Some(t) => map.get(&(slot, t)).copied().unwrap_or(0.0),
            None => map
                .range((slot, 0)..=(slot, u16::MAX))
                .map(|(_, v)| v)
                .sum(),
        }
    }

    /// Session-hours (calendar) known alive in `slot` on `target`, in band
    /// `band` or all.
    pub fn session_hours(
        &self,
        design: &Design,
        slot: i64,
        target: Option<u16>,
        band: Option<usize>,
    ) -> f64 {
        let Some(s) = self.ledger.slots.get(&slot) else {
            return 0.0;
        };
        let ms: u64 = s
            .exposure
            .iter()
            .filter(|(t, _)| target.is_none_or(|want| want == *t))
            .map(|(_, e)| match band {
                Some(b) => e.by_band.get(b).copied().unwrap_or(0),
                None => e.total_ms(),
            })
            .sum();
        ms as f64 / 3.6e6 * design.clock.scale
    }
}

/// The slot a forced logout is counted in: its bracket's middle, or, when
/// the agent was not measuring then (slots shorter than the bracket, with
/// no check in flight in the middle one), the measured slot of the bracket
/// nearest to it. Both ends of a bracket are checks, so a drop is never
/// lost between measured slots.
fn drop_slot(clock: SlotClock, d: &ForcedLogout, measured: Option<&BTreeSet<i64>>) -> i64 {
    let middle = clock.slot(d.at());
    let Some(measured) = measured else {
        return middle;
    };
    if measured.contains(&middle) {
        return middle;
    }
    let alive = clock.slot(d.login_at + d.alive_age).min(middle);
    let seen = clock.slot(d.seen_at).max(middle);
    let before = measured.range(alive..middle).next_back();
    let after = measured.range(middle..=seen).next();
    match (before, after) {
        (Some(&b), Some(&a)) if a - middle < middle - b => a,
        (Some(&b), _) => b,
        (None, Some(&a)) => a,
        (None, None) => middle,
    }
}

/// Fills the gaps between measured slots that are no longer than the
/// usual gap (the median), so that slots shorter than a journey's interval
/// between two runs count, while the agent's own outages do not.
fn fill_gaps(slots: &mut BTreeSet<i64>) {
    let list: Vec<i64> = slots.iter().copied().collect();
    let mut gaps: Vec<i64> = list
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > 1)
        .collect();
    if gaps.is_empty() {
        return;
    }
    gaps.sort_unstable();
    // Gaps are rare when slots are long: only a common gap is filled.
    let usual = if gaps.len() * 4 >= list.len() {
        gaps[gaps.len() / 2]
    } else {
        1
    };
    for w in list.windows(2) {
        if w[1] - w[0] <= usual {
            slots.extend(w[0] + 1..w[1]);
        }
    }
}

/// The unit length (days) for a window: at least twice the longest freeze,
/// and the shortest of [`UNIT_DAYS`] whose units' interactive-latency
/// residuals are not autocorrelated beyond chance. A declared change
/// (`changes`, unix seconds) is a known shift of level, not correlation
/// between days: the residuals are taken around each era's own calendar
/// cells, an era running from one change to the next.
pub fn unit_days(sheet: &Sheet<'_>, clock: SlotClock, longest_freeze: f64, changes: &[f64]) -> u32 {
    let floor = ((2.0 * longest_freeze * clock.scale) / DAY).ceil().max(1.0) as u32;
    let slots = sheet.slots(None);
    let mut candidates: Vec<u32> = UNIT_DAYS.iter().copied().filter(|d| *d >= floor).collect();
    if candidates.is_empty() {
        candidates.push(floor);
    }
    for &days in &candidates {
        let design = Design::new(clock, days);
        let mut parts = sheet.latencies(&design, &slots, StepKey::is_interactive);
        for p in &mut parts {
            let start = p.unit as f64 * design.unit_seconds();
            let era = changes.iter().filter(|at| start >= **at).count();
            p.stratum += (CELLS * era.min(1000)) as u16;
        }
        let residuals = unit_residuals(&parts, 0.95);
        if residuals.len() < 2 * MIN_UNITS {
            return days;
        }
        if lag_one(&residuals).abs() <= 2.0 / (residuals.len() as f64).sqrt() {
            return days;
        }
    }
    candidates[candidates.len() - 1]
}

/// Each unit's share of samples at or below the whole sample's quantile
/// `q`, less what its calendar cells' own shares give: (unit, residual).
fn unit_residuals(parts: &[Part<&[u32]>], q: f64) -> Vec<(i64, f64)> {
    let mut all: Vec<u32> = parts.iter().flat_map(|p| p.value.iter().copied()).collect();
    if all.is_empty() {
        return Vec::new();
    }
    all.sort_unstable();
    let rank = ((q * all.len() as f64).ceil() as usize).clamp(1, all.len());
    let class = all[rank - 1];
    drop(all);
    let below = |p: &Part<&[u32]>| p.value.partition_point(|x| *x <= class) as f64;
    let mut cells: BTreeMap<u16, (f64, f64)> = BTreeMap::new();
    for p in parts {
        let e = cells.entry(p.stratum).or_default();
        e.0 += below(p);
        e.1 += p.value.len() as f64;
    }
    let mut units: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for p in parts {
        let (b, n) = cells[&p.stratum];
        let e = units.entry(p.unit).or_default();
        e.0 += below(p) - b / n * p.value.len() as f64;
        e.1 += p.value.len() as f64;
    }
    units.into_iter().map(|(u, (r, n))| (u, r / n)).collect()
}

/// Lag-one autocorrelation of a series indexed by unit, over pairs of
/// consecutive units.
fn lag_one(series: &[(i64, f64)]) -> f64 {
    let n = series.len() as f64;
    let mean = series.iter().map(|s| s.1).sum::<f64>() / n;
    let var = series.iter().map(|s| (s.1 - mean).powi(2)).sum::<f64>();
    if var <= 0.0 {
        return 0.0;
    }
    let cov: f64 = series
        .windows(2)
        .filter(|w| w[1].0 == w[0].0 + 1)
        .map(|w| (w[0].1 - mean) * (w[1].1 - mean))
        .sum();
    cov / var
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seen at load 8 with 62.5-ms slots: every forced logout's bracket
    /// middle fell in a slot with no check in flight, and the report said
    /// no time was lost to the eight logouts the system made.
    #[test]
    fn a_drop_whose_middle_was_not_measured_counts_in_its_bracket() {
        let clock = SlotClock {
            seconds: 1.0,
            scale: 1.0,
        };
        let drop = |alive: f64, seen: f64| ForcedLogout {
            site: "s".into(),
            target: "ics".into(),
            login_at: 100.0,
            alive_age: alive,
            seen_age: seen,
            seen_at: 100.0 + seen,
            cause: "redirect".into(),
            holder_kind: "kept".into(),
            holder: "kept session 0".into(),
        };
        let measured: BTreeSet<i64> = [100, 101, 107, 110].into();
        // Alive at 101.2, seen at 108.9: the middle, 105, was not measured;
        // 107 is nearer than 101.
        assert_eq!(drop_slot(clock, &drop(1.2, 8.9), Some(&measured)), 107);
        // Alive at 100.5, seen at 107.2: middle 103, 101 nearer.
        assert_eq!(drop_slot(clock, &drop(0.5, 7.2), Some(&measured)), 101);
        // A measured middle stays where it is.
        assert_eq!(drop_slot(clock, &drop(0.0, 2.0), Some(&measured)), 101);
        // Nothing measured inside the bracket: its middle, as before.
        assert_eq!(drop_slot(clock, &drop(2.5, 5.5), Some(&measured)), 104);
        assert_eq!(drop_slot(clock, &drop(2.5, 5.5), None), 104);
        // A bracket that ends before it starts does not panic.
        assert_eq!(drop_slot(clock, &drop(9.0, -3.0), Some(&measured)), 109);
    }

    #[test]
    fn cells_tell_weekday_hours_from_weekend_hours() {
        // 2026-06-01 was a Monday; 09:30 UTC.
        let monday = 1_780_306_200.0;
        assert_eq!(cell_at(monday), 9);
        assert_eq!(cell_at(monday + 5.0 * DAY), 24 + 9);
        assert_eq!(cell_at(monday + 4.0 * DAY + 3600.0), 10);
    }

    #[test]
    fn units_are_calendar_days_cut_at_a_change() {
        let d = Design::new(SlotClock::hourly(1.0), 1);
        let midnight = 1_780_272_000.0; // 2026-06-01T00:00Z
        let slot = d.clock.slot(midnight);
        assert_eq!(d.unit(slot), d.unit(slot + 23));
        assert_ne!(d.unit(slot), d.unit(slot + 24));
        // A change at 12:30: the day's hours before and after it are
        // units of their own, the days around it whole.
        let at = midnight + 12.5 * 3600.0;
        let a = d.split_at(at);
        assert_ne!(a.unit(slot + 11), a.unit(slot + 13));
        assert_eq!(a.unit(slot), a.unit(slot + 11));
        assert_eq!(a.unit(slot + 13), a.unit(slot + 23));
        assert_ne!(a.unit(slot - 1), a.unit(slot));
        // A calendar sixty times faster: a real minute is an hour.
        let fast = Design::new(SlotClock::hourly(60.0), 1);
        assert_eq!(fast.clock.seconds, 60.0);
        assert_ne!(fast.cell(100), fast.cell(101));
    }

    #[test]
    fn correlated_days_make_longer_units() {
        let up = (0..40)
            .map(|u| (u, if (u / 5) % 2 == 0 { 1.0 } else { -1.0 }))
            .collect::<Vec<_>>();
        assert!(lag_one(&up) > 0.5);
        let alternating = (0..40)
            .map(|u| (u, if u % 2 == 0 { 1.0 } else { -1.0 }))
            .collect::<Vec<_>>();
        assert!(lag_one(&alternating) < -0.9);
    }
}
