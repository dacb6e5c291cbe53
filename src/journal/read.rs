//! The journal's read side, for the report and the exports: plain rows for a
//! time window. Opening recovers a file left by a crash (WAL replay) and
//! migrates an older schema; it never creates a file.

use std::path::Path;

use hdrhistogram::Histogram;
use rusqlite::{params, Connection, OpenFlags};

use super::schema::{self, SchemaError};
use crate::recorder;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open journal {path}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot read journal {path}")]
    Schema {
        path: String,
        #[source]
        source: SchemaError,
    },
    #[error("cannot read journal")]
    Query(#[from] rusqlite::Error),
}

/// A time window in unix seconds, `from` inclusive, `to` exclusive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub from: f64,
    pub to: f64,
}

impl Window {
    pub const ALL: Window = Window {
        from: f64::MIN,
        to: f64::MAX,
    };

    pub fn hours(&self) -> f64 {
        (self.to - self.from) / 3600.0
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub site: String,
    pub target: String,
    pub journey: String,
    pub kind: String,
    pub intended_start: f64,
    pub actual_start: f64,
    pub duration: f64,
    pub outcome: String,
    pub failed_step: Option<String>,
    pub report_same: bool,
    pub report_any: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StepRow {
    pub run_id: i64,
    pub site: String,
    pub target: String,
    pub journey: String,
    /// The step's own kind (`report` for a report step), else its run's.
    pub kind: String,
    pub step: String,
    pub phase: String,
    pub sent_at: f64,
    pub duration: f64,
    pub outcome: String,
    pub status: Option<u16>,
    pub censored: bool,
    pub logout_cause: Option<String>,
    pub session_age: Option<f64>,
    pub report_same: bool,
    pub report_any: bool,
    /// A frozen browser step's side (`server`, `client`, `mixed`).
    pub freeze_side: Option<String>,
    /// A failed browser step's evidence, a name in the evidence folder.
    pub evidence: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FreezeRow {
    pub site: String,
    pub target: String,
    pub started: f64,
    pub length: f64,
    pub censored: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpanRow {
    pub site: String,
    pub target: String,
    /// The journey's name; empty for a kept session.
    pub origin: String,
    /// `journey` or `kept`.
    pub origin_kind: String,
    /// A kept session's slot.
    pub slot: Option<i64>,
    pub login_at: f64,
    pub age_from: f64,
    pub age_to: f64,
    pub end_cause: Option<String>,
    pub dropped: bool,
    /// For a forced or lost end, the age its loss was seen at: with
    /// `age_to`, the bracket.
    pub seen_age: Option<f64>,
    pub detail: String,
}

impl SpanRow {
    /// Who held the session, for people: `case_note` or `kept session 2`.
    pub fn holder(&self) -> String {
        match (self.origin_kind.as_str(), self.slot) {
            ("kept", Some(slot)) => format!("kept session {slot}"),
            ("kept", None) => "kept session".to_string(),
            _ => self.origin.clone(),
        }
    }

    /// For a forced logout, the bracket (last known alive, loss seen).
    pub fn bracket(&self) -> Option<(f64, f64)> {
        self.dropped.then(|| {
            (
                self.age_to,
                self.seen_age.unwrap_or(self.age_to).max(self.age_to),
            )
        })
    }
}

/// One step of a kept session's login, keep-alive check or logout.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptRow {
    pub site: String,
    pub target: String,
    pub slot: Option<i64>,
    /// `login`, `check` or `logout`.
    pub activity: String,
    /// The step's place in its login, check or logout.
    pub seq: Option<i64>,
    pub step: String,
    pub sent_at: f64,
    pub duration: f64,
    pub outcome: String,
    pub status: Option<u16>,
    pub censored: bool,
    pub logout_cause: Option<String>,
    /// What was known of the session afterwards: `alive`, `unknown`, `suspect`, `ended`.
    pub state: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChangeRow {
    pub name: String,
    pub at: f64,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MissedRow {
    pub site: String,
    pub target: String,
    pub journey: String,
    pub at: f64,
    pub count: u64,
}

#[derive(Clone, Debug)]
pub struct HistogramRow {
    pub site: String,
    pub target: String,
    pub journey: String,
    pub step: String,
    pub interval_start: f64,
    pub interval_secs: f64,
    pub histogram: Histogram<u64>,
}

pub struct JournalReader {
    conn: Connection,
}

impl JournalReader {
    pub fn open(path: &Path) -> Result<JournalReader, ReadError> {
        let name = path.display().to_string();
        let open = |source| ReadError::Open {
            path: name.clone(),
            source,
        };
        if !path.exists() {
            return Err(open(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some("no such file".into()),
            )));
        }
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open)?;
        schema::configure(&conn).map_err(open)?;
        schema::migrate(&mut conn).map_err(|source| ReadError::Schema {
            path: name.clone(),
            source,
        })?;
        Ok(JournalReader { conn })
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, ReadError> {
        let mut stmt = self.conn.prepare("SELECT value FROM meta WHERE key = ?1")?;
        let mut rows = stmt.query([key])?;
        Ok(match rows.next()? {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }

    /// The first and last moment the journal measured anything: journey
    /// runs and kept sessions' checks.
    pub fn span(&self) -> Result<Option<(f64, f64)>, ReadError> {
        let (from, to): (Option<f64>, Option<f64>) = self.conn.query_row(
            "SELECT MIN(f), MAX(t) FROM (
                 SELECT MIN(intended_start) AS f, MAX(intended_start + duration) AS t FROM runs
                 UNION ALL
                 SELECT MIN(sent_at), MAX(sent_at + duration) FROM kept_checks)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        Ok(from.zip(to))
    }

    pub fn runs(&self, w: Window) -> Result<Vec<RunRow>, ReadError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, site, target, journey, kind, intended_start, actual_start, duration, outcome, failed_step, report_same, report_any
             FROM runs WHERE intended_start >= ?1 AND intended_start < ?2 ORDER BY intended_start, id",
        )?;
        let rows = stmt.query_map(params![w.from, w.to], |r| {
            Ok(RunRow {
                id: r.get(0)?,
                site: r.get(1)?,
                target: r.get(2)?,
                journey: r.get(3)?,
                kind: r.get(4)?,
                intended_start: r.get(5)?,
                actual_start: r.get(6)?,
                duration: r.get(7)?,
                outcome: r.get(8)?,
                failed_step: r.get(9)?,
                report_same: r.get(10)?,
                report_any: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn steps(&self, w: Window) -> Result<Vec<StepRow>, ReadError> {
        let mut stmt = self.conn.prepare(
            "SELECT s.run_id, r.site, r.target, r.journey, COALESCE(s.kind, r.kind), s.step, s.phase, s.sent_at, s.duration, s.outcome,
                    s.status, s.censored, s.logout_cause, s.session_age, r.report_same, r.report_any,
                    s.freeze_side, s.evidence
             FROM steps s JOIN runs r ON r.id = s.run_id
             WHERE s.sent_at >= ?1 AND s.sent_at < ?2 ORDER BY s.sent_at, s.run_id, s.seq",
        )?;
        let rows = stmt.query_map(params![w.from, w.to], |r| {
            Ok(StepRow {
                run_id: r.get(0)?,
                site: r.get(1)?,
                target: r.get(2)?,
                journey: r.get(3)?,
                kind: r.get(4)?,
                step: r.get(5)?,
                phase: r.get(6)?,
                sent_at: r.get(7)?,
                duration: r.get(8)?,
                outcome: r.get(9)?,
                status: r.get(10)?,
                censored: r.get(11)?,
                logout_cause: r.get(12)?,
                session_age: r.get(13)?,
                report_same: r.get(14)?,
                report_any: r.get(15)?,
                freeze_side: r.get(16)?,
                evidence: r.get(17)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn freezes(&self, w: Window) -> Result<Vec<FreezeRow>, ReadError> {
        let mut stmt = self.conn.prepare(
            "SELECT site, target, started, length, censored FROM freezes
             WHERE started >= ?1 AND started < ?2 ORDER BY started",
        )?;
        let rows = stmt.query_map(params![w.from, w.to], |r| {
            Ok(FreezeRow {
                site: r.get(0)?,
                target: r.get(1)?,
                started: r.get(2)?,
                length: r.get(3)?,
                censored: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Spans that overlap the window (by wall-clock time).
    pub fn spans(&self, w: Window) -> Result<Vec<SpanRow>, ReadError> {
        let mut stmt = self.conn.prepare(
            "SELECT site, target, origin, login_at, age_from, age_to, end_cause, dropped, origin_kind, slot, seen_age, detail
             FROM session_spans
             WHERE login_at + age_to >= ?1 AND login_at + age_from < ?2 ORDER BY login_at, age_from",
        )?;
        let rows = stmt.query_map(params![w.from, w.to], |r| {
            Ok(SpanRow {
                site: r.get(0)?,
                target: r.get(1)?,
                origin: r.get(2)?,
                login_at: r.get(3)?,
                age_from: r.get(4)?,
                age_to: r.get(5)?,
                end_cause: r.get(6)?,
                dropped: r.get(7)?,
                origin_kind: r.get(8)?,
                slot: r.get(9)?,
                seen_age: r.get(10)?,
                detail: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Kept sessions' steps sent in the window.
    pub fn kept(&self, w: Window) -> Result<Vec<KeptRow>, ReadError> {
        let mut stmt = self.conn.prepare(
            "SELECT site, target, slot, activity, seq, step, sent_at, duration, outcome, status, censored, logout_cause, state
             FROM kept_checks WHERE sent_at >= ?1 AND sent_at < ?2 ORDER BY sent_at, id",
        )?;
        let rows = stmt.query_map(params![w.from, w.to], |r| {
            Ok(KeptRow {
                site: r.get(0)?,
                target: r.get(1)?,
                slot: r.get(2)?,
                activity: r.get(3)?,
                seq: r.get(4)?,
                step: r.get(5)?,
                sent_at: r.get(6)?,
                duration: r.get(7)?,
                outcome: r.get(8)?,
                status: r.get(9)?,
                censored: r.get(10)?,
                logout_cause: r.get(11)?,
                state: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn changes(&self) -> Result<Vec<ChangeRow>, ReadError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, at, description FROM changes ORDER BY at, name")?;
        let rows = stmt.query_map([], |r| {
            Ok(ChangeRow {
                name: r.get(0)?,
                at: r.get(1)?,
                description: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn missed(&self, w: Window) -> Result<Vec<MissedRow>, ReadError> {
        let mut stmt = self.conn.prepare(
            "SELECT site, target, journey, at, count FROM missed_slots
             WHERE at >= ?1 AND at < ?2 ORDER BY at",
        )?;
        let rows = stmt.query_map(params![w.from, w.to], |r| {
            Ok(MissedRow {
                site: r.get(0)?,
                target: r.get(1)?,
                journey: r.get(2)?,
                at: r.get(3)?,
                count: r.get::<_, i64>(4)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Interval histograms whose interval starts in the window. Rows that do
    /// not decode are skipped with a warning.
    pub fn histograms(&self, w: Window) -> Result<Vec<HistogramRow>, ReadError> {
        let mut stmt = self.conn.prepare(
            "SELECT site, target, journey, step, interval_start, interval_secs, hdr_v2_deflate FROM histograms
             WHERE interval_start >= ?1 AND interval_start < ?2 ORDER BY interval_start, target, journey, step",
        )?;
        let mut rows = stmt.query(params![w.from, w.to])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let bytes: Vec<u8> = r.get(6)?;
            match recorder::decode(&bytes) {
                Ok(histogram) => out.push(HistogramRow {
                    site: r.get(0)?,
                    target: r.get(1)?,
                    journey: r.get(2)?,
                    step: r.get(3)?,
                    interval_start: r.get(4)?,
                    interval_secs: r.get(5)?,
                    histogram,
                }),
                Err(error) => tracing::warn!(%error, "skipping an undecodable histogram"),
            }
        }
        Ok(out)
    }

    /// The fleet report's reading path: journey runs in the window, streamed
    /// in no particular order, as (target, journey, kind, intended start,
    /// succeeded). Nothing is held: `each` sees one row at a time.
    pub fn each_run(
        &self,
        w: Window,
        mut each: impl FnMut(&str, &str, &str, f64, bool),
    ) -> Result<(), ReadError> {
        let mut stmt = self.conn.prepare(
            "SELECT target, journey, kind, intended_start, outcome IN ('ok', 'slow')
             FROM runs NOT INDEXED WHERE intended_start >= ?1 AND intended_start < ?2",
        )?;
        let mut rows = stmt.query(params![w.from, w.to])?;
        while let Some(r) = rows.next()? {
            each(
                r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?,
                r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?,
                r.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?,
                r.get(3)?,
                r.get(4)?,
            );
        }
        Ok(())
    }

    /// The first `limit` interactive runs in the window, oldest first:
    /// (target, journey, intended start).
    pub fn interactive_starts(
        &self,
        w: Window,
        limit: usize,
    ) -> Result<Vec<(String, String, f64)>, ReadError> {
        let mut stmt = self.conn.prepare(
            "SELECT target, journey, intended_start FROM runs
             WHERE kind = 'interactive' AND intended_start >= ?1 AND intended_start < ?2
             ORDER BY intended_start LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![w.from, w.to, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Interactive journeys' own steps (not login or logout) sent in the
    /// window, streamed: (sent at, seconds, given up on). The steps the
    /// report's percentiles and before/after comparisons use.
    pub fn each_interactive_step(
        &self,
        w: Window,
        mut each: impl FnMut(f64, f64, bool),
    ) -> Result<(), ReadError> {
        // A whole-journal window reads every row: a table scan beats the
        // time index. Older rows without a kind take their run's.
        let mut stmt = self.conn.prepare(
            "SELECT s.sent_at, s.duration, s.censored FROM steps AS s NOT INDEXED
             WHERE s.phase = 'journey' AND s.sent_at >= ?1 AND s.sent_at < ?2
               AND (s.kind = 'interactive'
                    OR (s.kind IS NULL AND (SELECT r.kind FROM runs AS r WHERE r.id = s.run_id) = 'interactive'))",
        )?;
        let mut rows = stmt.query(params![w.from, w.to])?;
        while let Some(r) = rows.next()? {
            each(r.get(0)?, r.get(1)?, r.get(2)?);
        }
        Ok(())
    }

    /// Session spans overlapping the window, streamed: (login at, age
    /// from, age to, bracket of a forced logout).
    pub fn each_span(
        &self,
        w: Window,
        mut each: impl FnMut(f64, f64, f64, Option<(f64, f64)>),
    ) -> Result<(), ReadError> {
        let mut stmt = self.conn.prepare(
            "SELECT login_at, age_from, age_to, dropped, seen_age FROM session_spans
             WHERE login_at + age_to >= ?1 AND login_at + age_from < ?2",
        )?;
        let mut rows = stmt.query(params![w.from, w.to])?;
        while let Some(r) = rows.next()? {
            let (login, from, to): (f64, f64, f64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let dropped: bool = r.get(3)?;
            let seen: Option<f64> = r.get(4)?;
            each(
                login,
                from,
                to,
                dropped.then(|| (to, seen.unwrap_or(to).max(to))),
            );
        }
        Ok(())
    }
}
