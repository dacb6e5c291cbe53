//! Filling a ledger from counts rather than rows: what a central store's
//! counters give per slot (n runs of an outcome, n samples in one latency
//! class, milliseconds of exposure), added in one step each instead of one
//! row at a time.

use super::{entry, is_success, Ledger};

impl Ledger {
    /// Counts `n` runs of `journey` with `outcome` in `slot`.
    pub fn add_runs(&mut self, journey: u16, slot: i64, outcome: &str, n: u32) {
        if n == 0 {
            return;
        }
        let outcome = (!is_success(outcome)).then(|| self.outcome_id(outcome));
        if let Some(s) = self.slot_mut(slot) {
            let tally = entry(&mut s.runs, journey);
            tally.runs += n;
            match outcome {
                Some(o) => *entry(&mut tally.failures, o) += n,
                None => tally.successes += n,
            }
        }
    }

    /// Records `n` completed samples of latency class `class` in `slot`.
    pub fn add_classes(&mut self, step: u16, slot: i64, class: u32, n: u32) {
        if n == 0 {
            return;
        }
        if let Some(s) = self.slot_mut(slot) {
            let samples = &mut entry(&mut s.steps, step).samples;
            let i = samples.partition_point(|x| *x <= class);
            samples.splice(i..i, std::iter::repeat_n(class, n as usize));
            self.samples += u64::from(n);
        }
    }

    /// Adds `ms` of session life in band `band` on `target` to `slot`.
    pub fn add_exposure_ms(&mut self, target: u16, band: usize, slot: i64, ms: u64) {
        let band = if self.interactive_only { 0 } else { band };
        let bands = if self.interactive_only {
            1
        } else {
            self.bands.len().max(band + 1)
        };
        if let Some(s) = self.slot_mut(slot) {
            let tally = entry(&mut s.exposure, target);
            if tally.by_band.len() < bands {
                tally.by_band.resize(bands, 0);
            }
            tally.by_band[band] += ms;
        }
    }

    /// Marks `target` measured in `slot`.
    pub fn add_flight_slot(&mut self, target: u16, slot: i64) {
        if let Some(s) = self.slot_mut(slot) {
            if let Err(at) = s.in_flight.binary_search(&target) {
                s.in_flight.insert(at, target);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn counts_add_as_rows_would() {
        let clock = SlotClock::hourly(1.0);
        let bands = crate::detect::AgeBands::default();
        let mut by_rows = Ledger::new(clock, None, &bands);
        let mut by_counts = Ledger::new(clock, None, &bands);
        for l in [&mut by_rows, &mut by_counts] {
            l.journey_for("s", "ics", "j", "interactive");
            l.step_id(&StepKey {
                target: "ics".into(),
                journey: "j".into(),
                step: "a".into(),
                kind: "interactive".into(),
                phase: "journey".into(),
                report_same: false,
                report_any: false,
            });
        }
        for outcome in ["ok", "ok", "frozen"] {
            by_rows.add_run(0, 10.0, outcome);
        }
        by_counts.add_runs(0, 0, "ok", 2);
        by_counts.add_runs(0, 0, "frozen", 1);
        for s in [0.2, 0.1, 0.2] {
            by_rows.add_sample(0, 10.0, s);
        }
        by_counts.add_classes(0, 0, class_of(200_000), 2);
        by_counts.add_classes(0, 0, class_of(100_000), 1);
        assert_eq!(by_rows.slots, by_counts.slots);
        assert_eq!(by_rows.samples, by_counts.samples);
    }
}
