//! Rollup format 1: the ledger as casewatch wrote its compacted hours
//! before forced logouts kept the moment their loss was seen and slots
//! kept the work of failed runs. Postcard keeps no field names, so the
//! old layout is spelled out here, read, and upgraded:
//!
//! - a forced logout's `seen_at` becomes `login_at + seen_age`, what the
//!   report said then (late by up to the login's length, which format 1
//!   did not keep);
//! - a slot's failed runs are unknown: no work to redo.

use serde::{Deserialize, Serialize};

/// A slot's excess before it kept the work of failed runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExcessTallyV1 {
    pub over_ms: u64,
    pub runs: u32,
}

/// A forced logout before it kept the moment its loss was seen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForcedLogoutV1 {
    pub site: String,
    pub target: String,
    pub login_at: f64,
    pub alive_age: f64,
    pub seen_age: f64,
    pub cause: String,
    pub holder_kind: String,
    pub holder: String,
}

/// A format-1 slot: the current layout with the old excess tally.
pub type SlotTallyV1 = super::SlotTally<ExcessTallyV1>;

/// A format-1 ledger: the current layout (its one field that is never
/// written, `interactive_only`, included) with the old slots and forced
/// logouts.
pub type LedgerV1 = super::Ledger<SlotTallyV1, ForcedLogoutV1>;

/// A format-1 ledger as the current one.
pub fn upgrade(old: LedgerV1) -> super::Ledger {
    let slot = |s: SlotTallyV1| super::SlotTally {
        runs: s.runs,
        steps: s.steps,
        exposure: s.exposure,
        excess: s
            .excess
            .into_iter()
            .map(|(j, e)| {
                let tally = super::ExcessTally {
                    over_ms: e.over_ms,
                    runs: e.runs,
                    ..Default::default()
                };
                (j, tally)
            })
            .collect(),
        in_flight: s.in_flight,
    };
    let forced = |d: ForcedLogoutV1| super::ForcedLogout {
        seen_at: d.login_at + d.seen_age,
        site: d.site,
        target: d.target,
        login_at: d.login_at,
        alive_age: d.alive_age,
        seen_age: d.seen_age,
        cause: d.cause,
        holder_kind: d.holder_kind,
        holder: d.holder,
    };
    super::Ledger {
        clock: old.clock,
        window_slots: old.window_slots,
        measured: old.measured,
        sites: old.sites,
        targets: old.targets,
        journeys: old.journeys,
        steps: old.steps,
        outcomes: old.outcomes,
        bands: old.bands,
        slots: old.slots.into_iter().map(|(i, s)| (i, slot(s))).collect(),
        freezes: old.freezes,
        forced_logouts: old.forced_logouts.into_iter().map(forced).collect(),
        given_up: old.given_up,
        browser_sides: old.browser_sides,
        browser_evidence: old.browser_evidence,
        lifetimes: old.lifetimes,
        kept: old.kept,
        cost: old.cost,
        report_runs: old.report_runs,
        agent_stalls: old.agent_stalls,
        stalled_runs: old.stalled_runs,
        samples: old.samples,
        interactive_only: old.interactive_only,
    }
}
