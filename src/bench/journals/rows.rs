//! The generated journal's rows, in the agent's own tables: runs, their
//! steps and sessions, and the per-minute histograms.

use rusqlite::{params, Transaction};

use super::{Drawn, JourneyPlan, JourneySpec, JOURNEYS};
use crate::recorder;

/// The run's row; returns its id. `(report_same, report_any)`: whether a
/// report ran beside it on the same system, and on any.
pub(super) fn insert_run(
    tx: &Transaction<'_>,
    site: &str,
    journey: &JourneySpec,
    plan: &JourneyPlan,
    start: f64,
    drawn: &Drawn,
    (report_same, report_any): (bool, bool),
) -> anyhow::Result<i64> {
    let duration = drawn.end - start;
    tx.prepare_cached(
        "INSERT INTO runs (site, target, journey, kind, intended_start, actual_start, duration, outcome, failed_step, report_same, report_any)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        site,
        plan.target.name,
        journey.name,
        journey.kind,
        start,
        start,
        duration,
        drawn.outcome,
        drawn.failed_step,
        report_same,
        report_any
    ])?;
    Ok(tx.last_insert_rowid())
}

pub(super) fn insert_steps(
    tx: &Transaction<'_>,
    run_id: i64,
    journey: &JourneySpec,
    start: f64,
    drawn: &Drawn,
) -> anyhow::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO steps (run_id, seq, step, phase, sent_at, duration, outcome, status, bytes, censored, logout_cause, session_age, kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for s in &drawn.steps {
        insert.execute(params![
            run_id,
            s.seq as i64,
            s.step,
            s.phase,
            s.at,
            s.duration,
            s.outcome,
            s.status,
            2048i64,
            s.censored,
            s.logout_cause,
            (s.phase != "login").then_some(s.at - start),
            journey.kind
        ])?;
    }
    Ok(())
}

/// The run's session: alive until its last good step ended, then dropped
/// (a forced logout), logged out by the agent, or lost with a failure.
pub(super) fn insert_session(
    tx: &Transaction<'_>,
    site: &str,
    journey: &JourneySpec,
    plan: &JourneyPlan,
    start: f64,
    drawn: &Drawn,
) -> anyhow::Result<()> {
    let duration = drawn.end - start;
    let dropped = drawn.logout_cause.is_some();
    let alive = drawn
        .steps
        .iter()
        .rev()
        .find(|s| matches!(s.outcome, "ok" | "slow"))
        .map_or(0.0, |s| s.at + s.duration - start);
    tx.prepare_cached(
        "INSERT INTO session_spans (site, target, origin, login_at, age_from, age_to, end_cause, dropped, origin_kind, slot, seen_age, detail)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, 'journey', NULL, ?8, '')",
    )?
    .execute(params![
        site,
        plan.target.name,
        journey.name,
        start,
        alive,
        if dropped {
            drawn.logout_cause
        } else if drawn.outcome == "ok" || drawn.outcome == "slow" {
            Some("logged_out_by_agent")
        } else {
            Some("lost")
        },
        dropped,
        dropped.then_some(duration),
    ])?;
    Ok(())
}

pub(super) fn flush_histograms(
    tx: &Transaction<'_>,
    site: &str,
    histograms: &mut Pending,
    encoded: &mut Encoded,
    before: f64,
) -> anyhow::Result<()> {
    let keep = histograms.split_off(&(((before / 60.0).floor() as i64), "", 0, 0));
    let done = std::mem::replace(histograms, keep);
    let mut insert = tx.prepare_cached(
        "INSERT INTO histograms (site, target, journey, step, interval_start, interval_secs, count, hdr_v2_deflate)
         VALUES (?1, ?2, ?3, ?4, ?5, 60, ?6, ?7)",
    )?;
    for ((minute, target, j, seq), values) in done {
        let journey = &JOURNEYS[j];
        let bytes = encoded.encode(&values)?;
        insert.execute(params![
            site,
            target,
            journey.name,
            journey.steps[seq].0,
            (minute * 60) as f64,
            values.len() as i64,
            bytes
        ])?;
    }
    Ok(())
}

/// Step durations (µs) per (minute, target, journey, step), not yet stored.
pub(super) type Pending = std::collections::BTreeMap<(i64, &'static str, usize, usize), Vec<u64>>;

/// Encodes histograms; one holding a single value (nearly all of them, at
/// one run per step per 5 minutes) is encoded once per distinct bucket,
/// since its bytes depend only on the bucket.
pub(super) struct Encoded {
    histogram: hdrhistogram::Histogram<u64>,
    single: std::collections::HashMap<u64, Vec<u8>>,
}

impl Default for Encoded {
    fn default() -> Self {
        Encoded {
            histogram: recorder::new_histogram(),
            single: std::collections::HashMap::new(),
        }
    }
}

impl Encoded {
    fn encode(&mut self, values: &[u64]) -> anyhow::Result<Vec<u8>> {
        if let [value] = values {
            let bucket = self.histogram.lowest_equivalent(*value);
            if let Some(bytes) = self.single.get(&bucket) {
                return Ok(bytes.clone());
            }
        }
        self.histogram.reset();
        for v in values {
            self.histogram.saturating_record(*v);
        }
        let bytes = recorder::encode(&self.histogram)?;
        if let [value] = values {
            self.single
                .insert(self.histogram.lowest_equivalent(*value), bytes.clone());
        }
        Ok(bytes)
    }
}
