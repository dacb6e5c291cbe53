//! Merging ledgers by name: an hour's rollup into a report's ledger, or
//! one site's ledger into a fleet's.

use super::{entry, GivenUp, Ledger, SlotTally};

impl Ledger {
    /// Merges `other` in, by name. Slots outside this ledger's window are
    /// dropped, as are events outside it.
    pub fn absorb(&mut self, other: &Ledger) {
        let targets: Vec<u16> = other.targets.iter().map(|t| self.target_id(t)).collect();
        let journeys: Vec<u16> = other.journeys.iter().map(|j| self.journey_id(j)).collect();
        let steps: Vec<Option<u16>> = other.steps.iter().map(|s| self.map_step(s)).collect();
        let outcomes: Vec<u16> = other.outcomes.iter().map(|o| self.outcome_id(o)).collect();
        for site in &other.sites {
            if !self.sites.contains(site) {
                self.sites.push(site.clone());
            }
        }
        let keys = Keys {
            targets,
            journeys,
            steps,
            outcomes,
        };
        for (&i, slot) in &other.slots {
            if let Some(mine) = self.slot_mut(i) {
                let added = merge_slot(mine, slot, &keys);
                self.samples += added;
            }
        }
        for f in &other.freezes {
            if self.in_window(f.started) {
                self.freezes.push(f.clone());
            }
        }
        for stall in &other.agent_stalls {
            if self.in_window(stall.0) {
                self.agent_stalls.push(*stall);
            }
        }
        self.stalled_runs += other.stalled_runs;
        for d in &other.forced_logouts {
            if self.in_window(d.login_at) {
                self.forced_logouts.push(d.clone());
            }
        }
        for g in &other.given_up {
            if let Some(step) = keys.steps[g.step as usize] {
                if self.in_window(g.sent_at) {
                    self.given_up.push(GivenUp { step, ..g.clone() });
                }
            }
        }
        for (k, v) in &other.browser_sides {
            let mine = self.browser_sides.entry(k.clone()).or_default();
            for i in 0..3 {
                mine[i] += v[i];
            }
        }
        self.browser_evidence
            .extend(other.browser_evidence.iter().cloned());
        for (age, (c, d)) in &other.lifetimes {
            let mine = self.lifetimes.entry(*age).or_default();
            mine.0 += c;
            mine.1 += d;
        }
        for (k, v) in &other.kept {
            let mine = self.kept.entry(k.clone()).or_default();
            mine.checks += v.checks;
            mine.unknown_checks += v.unknown_checks;
            mine.logins += v.logins;
            mine.failed_logins += v.failed_logins;
            for (o, n) in &v.check_outcomes {
                *mine.check_outcomes.entry(o.clone()).or_default() += n;
            }
            for (o, n) in &v.lives_ended {
                *mine.lives_ended.entry(o.clone()).or_default() += n;
            }
        }
        let c = &mut self.cost;
        c.login_ms += other.cost.login_ms;
        c.logins += other.cost.logins;
        c.interrupted_ms += other.cost.interrupted_ms;
        c.interrupted += other.cost.interrupted;
        c.run_ms += other.cost.run_ms;
        c.runs += other.cost.runs;
        for (k, (d, ok)) in &other.report_runs {
            let mine = self.report_runs.entry(k.clone()).or_default();
            for (class, n) in d {
                *mine.0.entry(*class).or_default() += n;
            }
            mine.1 += ok;
        }
        self.measured = match (self.measured, other.measured) {
            (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
            (a, b) => a.or(b),
        };
    }
}

/// This ledger's indices for another's keys.
struct Keys {
    targets: Vec<u16>,
    journeys: Vec<u16>,
    steps: Vec<Option<u16>>,
    outcomes: Vec<u16>,
}

/// Adds `slot` (keyed as another ledger keys it) into `mine`; returns the
/// samples added.
fn merge_slot(mine: &mut SlotTally, slot: &SlotTally, keys: &Keys) -> u64 {
    for (j, r) in &slot.runs {
        let t = entry(&mut mine.runs, keys.journeys[*j as usize]);
        t.runs += r.runs;
        t.successes += r.successes;
        for (o, n) in &r.failures {
            *entry(&mut t.failures, keys.outcomes[*o as usize]) += n;
        }
    }
    let mut added = 0u64;
    for (k, st) in &slot.steps {
        let Some(k) = keys.steps[*k as usize] else {
            continue;
        };
        let t = entry(&mut mine.steps, k);
        t.given_up += st.given_up;
        if !st.samples.is_empty() {
            added += st.samples.len() as u64;
            t.samples = merge_sorted(&t.samples, &st.samples);
        }
    }
    for (k, e) in &slot.exposure {
        let t = entry(&mut mine.exposure, keys.targets[*k as usize]);
        if t.by_band.len() < e.by_band.len() {
            t.by_band.resize(e.by_band.len(), 0);
        }
        for (b, ms) in e.by_band.iter().enumerate() {
            t.by_band[b] += ms;
        }
    }
    for (j, e) in &slot.excess {
        let t = entry(&mut mine.excess, keys.journeys[*j as usize]);
        t.over_ms += e.over_ms;
        t.runs += e.runs;
        t.redo_ms += e.redo_ms;
        t.failed += e.failed;
    }
    for t in &slot.in_flight {
        let t = keys.targets[*t as usize];
        if let Err(at) = mine.in_flight.binary_search(&t) {
            mine.in_flight.insert(at, t);
        }
    }
    added
}

/// Two sorted lists as one, sorted.
fn merge_sorted(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        if x <= y {
            merged.push(**x);
            a.next();
        } else {
            merged.push(**y);
            b.next();
        }
    }
    merged.extend(a);
    merged.extend(b);
    merged
}
