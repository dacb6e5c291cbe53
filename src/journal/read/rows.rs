//! Rows as the reader maps them: the columns each row type is read from
//! (which depend on the journal's schema version), and one mapping per row
//! type, borrowed for streaming or owned for collecting.

use super::{KeptRow, RunRow, SpanRow, StepRow};

/// Text read from a row: borrowed (`&str`, for streaming) or owned
/// (`String`, for collecting). One mapping per row type serves both.
pub trait Text<'a>: Sized {
    fn from_column(value: rusqlite::types::ValueRef<'a>) -> rusqlite::types::FromSqlResult<Self>;
}

impl<'a> Text<'a> for &'a str {
    fn from_column(value: rusqlite::types::ValueRef<'a>) -> rusqlite::types::FromSqlResult<Self> {
        value.as_str()
    }
}

impl<'a> Text<'a> for String {
    fn from_column(value: rusqlite::types::ValueRef<'a>) -> rusqlite::types::FromSqlResult<Self> {
        value.as_str().map(str::to_owned)
    }
}

fn text<'a, S: Text<'a>>(r: &'a rusqlite::Row<'_>, i: usize) -> rusqlite::Result<S> {
    let value = r.get_ref(i)?;
    S::from_column(value)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, value.data_type(), Box::new(e)))
}

fn maybe<'a, S: Text<'a>>(r: &'a rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<S>> {
    match r.get_ref(i)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => text(r, i).map(Some),
    }
}

pub(super) struct Columns {
    pub run: String,
    pub step: String,
    pub kept: String,
    pub freeze: String,
    pub span: String,
    pub stalls: bool,
}

/// The schema version from which session spans say when a loss was seen.
pub(super) const SEEN_AT_VERSION: i64 = 8;

impl Columns {
    /// The columns of a journal with (or without) the stall monitor's
    /// flags and spans' `seen_at`.
    pub fn new(stalls: bool, seen_at: bool) -> Columns {
        let flag = |column: &str| {
            if stalls {
                column.to_string()
            } else {
                "0".to_string()
            }
        };
        Columns {
            run: format!("{RUN_COLUMNS}, {}", flag("agent_stalled")),
            step: format!("{STEP_COLUMNS}, {}", flag("s.agent_stalled")),
            kept: format!("{KEPT_COLUMNS}, {}", flag("agent_stalled")),
            freeze: format!(
                "site, target, started, length, censored, {}",
                flag("agent_stall")
            ),
            span: format!(
                "{SPAN_COLUMNS}, {}",
                if seen_at { "seen_at" } else { "NULL" }
            ),
            stalls,
        }
    }
}

const RUN_COLUMNS: &str = "id, site, target, journey, kind, intended_start, actual_start, duration, outcome, failed_step, report_same, report_any";

pub(super) fn run_row<'a, S: Text<'a>>(r: &'a rusqlite::Row<'_>) -> rusqlite::Result<RunRow<S>> {
    Ok(RunRow {
        id: r.get(0)?,
        site: text(r, 1)?,
        target: text(r, 2)?,
        journey: text(r, 3)?,
        kind: text(r, 4)?,
        intended_start: r.get(5)?,
        actual_start: r.get(6)?,
        duration: r.get(7)?,
        outcome: text(r, 8)?,
        failed_step: maybe(r, 9)?,
        report_same: r.get(10)?,
        report_any: r.get(11)?,
        agent_stalled: r.get(12)?,
    })
}

const STEP_COLUMNS: &str = "s.run_id, r.site, r.target, r.journey, COALESCE(s.kind, r.kind), s.step, s.phase, s.sent_at, s.duration, s.outcome,
    s.status, s.censored, s.logout_cause, s.session_age, r.report_same, r.report_any,
    s.freeze_side, s.evidence, r.kind, r.intended_start";

pub(super) fn step_row<'a, S: Text<'a>>(r: &'a rusqlite::Row<'_>) -> rusqlite::Result<StepRow<S>> {
    Ok(StepRow {
        run_id: r.get(0)?,
        site: text(r, 1)?,
        target: text(r, 2)?,
        journey: text(r, 3)?,
        kind: text(r, 4)?,
        step: text(r, 5)?,
        phase: text(r, 6)?,
        sent_at: r.get(7)?,
        duration: r.get(8)?,
        outcome: text(r, 9)?,
        status: r.get(10)?,
        censored: r.get(11)?,
        logout_cause: maybe(r, 12)?,
        session_age: r.get(13)?,
        report_same: r.get(14)?,
        report_any: r.get(15)?,
        freeze_side: maybe(r, 16)?,
        evidence: maybe(r, 17)?,
        run_kind: text(r, 18)?,
        intended_start: r.get(19)?,
        agent_stalled: r.get(20)?,
    })
}

const SPAN_COLUMNS: &str = "site, target, origin, login_at, age_from, age_to, end_cause, dropped, origin_kind, slot, seen_age, detail";

pub(super) fn span_row<'a, S: Text<'a>>(r: &'a rusqlite::Row<'_>) -> rusqlite::Result<SpanRow<S>> {
    Ok(SpanRow {
        site: text(r, 0)?,
        target: text(r, 1)?,
        origin: text(r, 2)?,
        login_at: r.get(3)?,
        age_from: r.get(4)?,
        age_to: r.get(5)?,
        end_cause: maybe(r, 6)?,
        dropped: r.get(7)?,
        origin_kind: text(r, 8)?,
        slot: r.get(9)?,
        seen_age: r.get(10)?,
        detail: text(r, 11)?,
        seen_at: r.get(12)?,
    })
}

const KEPT_COLUMNS: &str = "site, target, slot, activity, seq, step, sent_at, duration, outcome, status, censored, logout_cause, state";

pub(super) fn kept_row<'a, S: Text<'a>>(r: &'a rusqlite::Row<'_>) -> rusqlite::Result<KeptRow<S>> {
    Ok(KeptRow {
        site: text(r, 0)?,
        target: text(r, 1)?,
        slot: r.get(2)?,
        activity: text(r, 3)?,
        seq: r.get(4)?,
        step: text(r, 5)?,
        sent_at: r.get(6)?,
        duration: r.get(7)?,
        outcome: text(r, 8)?,
        status: r.get(9)?,
        censored: r.get(10)?,
        logout_cause: maybe(r, 11)?,
        state: text(r, 12)?,
        agent_stalled: r.get(13)?,
    })
}
