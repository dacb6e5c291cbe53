//! The journal's read side, for the report and the exports: rows of a time
//! window, streamed one at a time (`each_*`) or collected. Each row type has
//! one mapping that both use. A journal is opened read-only and never
//! changed; a file that is not a casewatch journal is refused, naming what
//! it is.

use std::path::Path;

use hdrhistogram::Histogram;
use rusqlite::{params, Connection, OpenFlags};

use super::schema::{self, SchemaError};
use crate::recorder;
pub use rows::Text;
use rows::{kept_row, run_row, span_row, step_row, Columns, SEEN_AT_VERSION};

mod rows;

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
    #[error("{path} is not a casewatch journal: it is {found}")]
    NotJournal { path: String, found: String },
    #[error("journal {path} has schema version {found}, older than this casewatch reads ({OLDEST_READABLE}); the agent upgrades it when it opens it, or run `casewatch journal migrate {path}`")]
    TooOld { path: String, found: i64 },
}

/// The runs in a window, streamed or collected.
const RUNS: &str = "FROM runs WHERE intended_start >= ?1 AND intended_start < ?2";
/// Kept sessions' checks in a window, streamed or collected.
const KEPT: &str = "FROM kept_checks WHERE sent_at >= ?1 AND sent_at < ?2";

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
pub struct RunRow<S = String> {
    pub id: i64,
    pub site: S,
    pub target: S,
    pub journey: S,
    pub kind: S,
    pub intended_start: f64,
    pub actual_start: f64,
    pub duration: f64,
    pub outcome: S,
    pub failed_step: Option<S>,
    pub report_same: bool,
    pub report_any: bool,
    /// The run overlapped a stall of the agent's own: it measured the
    /// agent, not the target.
    pub agent_stalled: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StepRow<S = String> {
    pub run_id: i64,
    pub site: S,
    pub target: S,
    pub journey: S,
    /// The step's own kind (`report` for a report step), else its run's.
    pub kind: S,
    pub step: S,
    pub phase: S,
    pub sent_at: f64,
    pub duration: f64,
    pub outcome: S,
    pub status: Option<u16>,
    pub censored: bool,
    pub logout_cause: Option<S>,
    pub session_age: Option<f64>,
    pub report_same: bool,
    pub report_any: bool,
    /// A frozen browser step's side (`server`, `client`, `mixed`).
    pub freeze_side: Option<S>,
    /// A failed browser step's evidence, a name in the evidence folder.
    pub evidence: Option<S>,
    /// The run's own kind, and its intended start.
    pub run_kind: S,
    pub intended_start: f64,
    /// The step overlapped a stall of the agent's own.
    pub agent_stalled: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FreezeRow {
    pub site: String,
    pub target: String,
    pub started: f64,
    pub length: f64,
    pub censored: bool,
    /// Seconds of it the agent itself was stalled (0 in journals older
    /// than the stall monitor).
    pub agent_stall: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpanRow<S = String> {
    pub site: S,
    pub target: S,
    /// The journey's name; empty for a kept session.
    pub origin: S,
    /// `journey` or `kept`.
    pub origin_kind: S,
    /// A kept session's slot.
    pub slot: Option<i64>,
    pub login_at: f64,
    pub age_from: f64,
    pub age_to: f64,
    pub end_cause: Option<S>,
    pub dropped: bool,
    /// For a forced or lost end, the age its loss was seen at: with
    /// `age_to`, the bracket.
    pub seen_age: Option<f64>,
    pub detail: S,
    /// For a forced or lost end, when the answer that showed the loss
    /// arrived; NULL in journals before schema version 8.
    pub seen_at: Option<f64>,
}

impl<S: AsRef<str>> SpanRow<S> {
    /// Who held the session, for people: `case_note` or `kept session 2`.
    pub fn holder(&self) -> String {
        match (self.origin_kind.as_ref(), self.slot) {
            ("kept", Some(slot)) => format!("kept session {slot}"),
            ("kept", None) => "kept session".to_string(),
            _ => self.origin.as_ref().to_string(),
        }
    }

    /// When the loss was seen: `seen_at`, or in older journals the login
    /// plus the seen age (late by up to the login's length).
    pub fn seen_moment(&self) -> Option<f64> {
        let (_, seen_age) = self.bracket()?;
        Some(self.seen_at.unwrap_or(self.login_at + seen_age))
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
pub struct KeptRow<S = String> {
    pub site: S,
    pub target: S,
    pub slot: Option<i64>,
    /// `login`, `check` or `logout`.
    pub activity: S,
    /// The step's place in its login, check or logout.
    pub seq: Option<i64>,
    pub step: S,
    pub sent_at: f64,
    pub duration: f64,
    pub outcome: S,
    pub status: Option<u16>,
    pub censored: bool,
    pub logout_cause: Option<S>,
    /// What was known of the session afterwards: `alive`, `unknown`, `suspect`, `ended`.
    pub state: S,
    /// The check overlapped a stall of the agent's own.
    pub agent_stalled: bool,
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

/// A compacted hour: its ledger, encoded (see `crate::ledger::rollup`).
#[derive(Clone, Debug)]
pub struct RollupRow {
    pub hour_start: f64,
    /// The rollup format its body is in.
    pub version: i64,
    pub body: Vec<u8>,
}

/// The oldest schema the report reads; older journals are upgraded by the
/// agent (or `casewatch journal migrate`) when it opens them.
pub const OLDEST_READABLE: i64 = 5;

/// The tables every casewatch journal has.
const JOURNAL_TABLES: [&str; 6] = [
    "meta",
    "runs",
    "steps",
    "freezes",
    "session_spans",
    "kept_checks",
];

/// A journal opened for reading. It is opened read-only and never
/// changed: migration is the writer's job. On a read-only mount, or
/// where the `-shm` file cannot be made, it is opened as immutable.
pub struct JournalReader {
    conn: Connection,
    has_rollups: bool,
    /// The columns each row type is read from: journals older than the
    /// stall monitor read 0 for its flags.
    columns: Columns,
}

fn not_journal(name: &str, found: String) -> ReadError {
    ReadError::NotJournal {
        path: name.to_string(),
        found,
    }
}

fn not_database(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase)
}

/// A regular file with something in it: SQLite would take an empty file
/// for a new database.
fn check_file(path: &Path, name: &str) -> Result<(), ReadError> {
    let meta = std::fs::metadata(path).map_err(|e| ReadError::Open {
        path: name.to_string(),
        source: rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(e.to_string()),
        ),
    })?;
    if !meta.is_file() {
        return Err(not_journal(name, "not a regular file".into()));
    }
    if meta.len() == 0 {
        return Err(not_journal(name, "an empty file".into()));
    }
    Ok(())
}

/// The database's tables, by name.
fn table_names(conn: &Connection, name: &str) -> Result<Vec<String>, ReadError> {
    match conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        }) {
        Ok(tables) => Ok(tables),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            Err(not_journal(name, "not an SQLite database".into()))
        }
        Err(source) => Err(ReadError::Open {
            path: name.to_string(),
            source,
        }),
    }
}

/// What the database is, when it lacks a journal's tables.
fn without_journal_tables(tables: &[String]) -> Option<String> {
    let missing: Vec<&str> = JOURNAL_TABLES
        .iter()
        .copied()
        .filter(|t| !tables.iter().any(|x| x == t))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let shown: Vec<&str> = tables.iter().take(8).map(String::as_str).collect();
    Some(if tables.is_empty() {
        "an SQLite database with no tables".into()
    } else {
        format!(
            "an SQLite database with tables {}{}, without {}",
            shown.join(", "),
            if tables.len() > shown.len() {
                ", ..."
            } else {
                ""
            },
            missing.join(", ")
        )
    })
}

/// The journal's schema version, if this build can read it.
fn readable_version(conn: &Connection, name: String) -> Result<i64, ReadError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|source| ReadError::Open {
            path: name.clone(),
            source,
        })?;
    if version > schema::VERSION {
        return Err(ReadError::Schema {
            path: name,
            source: SchemaError::TooNew { found: version },
        });
    }
    if version < OLDEST_READABLE {
        return Err(ReadError::TooOld {
            path: name,
            found: version,
        });
    }
    Ok(version)
}

impl JournalReader {
    pub fn open(path: &Path) -> Result<JournalReader, ReadError> {
        let name = path.display().to_string();
        check_file(path, &name)?;
        let conn = Self::connect_either(path, &name)?;
        let tables = table_names(&conn, &name)?;
        if let Some(found) = without_journal_tables(&tables) {
            return Err(not_journal(&name, found));
        }
        let version = readable_version(&conn, name)?;
        let has_rollups = tables.iter().any(|t| t == "rollups");
        let stalls = tables.iter().any(|t| t == "agent_stalls");
        Ok(JournalReader {
            conn,
            has_rollups,
            columns: Columns::new(stalls, version >= SEEN_AT_VERSION),
        })
    }

    /// The journal opened read-only; where that cannot be done (a
    /// read-only mount, or a folder where the `-shm` file cannot be made)
    /// nothing can change the file, so it is read as it is.
    fn connect_either(path: &Path, name: &str) -> Result<Connection, ReadError> {
        match Self::connect(path, false) {
            Ok(conn) => Ok(conn),
            Err(e) if not_database(&e) => Err(not_journal(name, "not an SQLite database".into())),
            Err(_) => Self::connect(path, true).map_err(|source| {
                if not_database(&source) {
                    not_journal(name, "not an SQLite database".into())
                } else {
                    ReadError::Open {
                        path: name.to_string(),
                        source,
                    }
                }
            }),
        }
    }

    fn connect(path: &Path, immutable: bool) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = if immutable {
            let uri = url::Url::from_file_path(
                std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            )
            .map(|u| format!("{u}?immutable=1"))
            .map_err(|_| rusqlite::Error::InvalidPath(path.to_path_buf()))?;
            Connection::open_with_flags(uri, flags)?
        } else {
            Connection::open_with_flags(path, flags)?
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Reading touches the schema: a file that is not a database fails here.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
        Ok(conn)
    }

    /// The read-only connection, for the journal's other readers
    /// ([`super::history`]), and whether the file has rollups.
    pub(super) fn connection(&self) -> (&Connection, bool) {
        (&self.conn, self.has_rollups)
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
    /// runs and kept sessions' checks (not counting compacted hours).
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

    /// The site named by the journal's first run, for journals without a
    /// `site` in their meta.
    pub fn first_site(&self) -> Result<Option<String>, ReadError> {
        let mut stmt = self
            .conn
            .prepare("SELECT site FROM runs ORDER BY id LIMIT 1")?;
        let mut rows = stmt.query([])?;
        Ok(match rows.next()? {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }

    /// What compacted hours measured: their first and last moment.
    pub fn rollup_span(&self) -> Result<Option<(f64, f64)>, ReadError> {
        if !self.has_rollups {
            return Ok(None);
        }
        let (from, to): (Option<f64>, Option<f64>) = self.conn.query_row(
            "SELECT MIN(measured_from), MAX(measured_to) FROM rollups",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        Ok(from.zip(to))
    }

    /// The earliest moment any row (not yet compacted) is attributed to.
    pub fn raw_start(&self) -> Result<Option<f64>, ReadError> {
        Ok(self.conn.query_row(
            "SELECT MIN(t) FROM (
                 SELECT MIN(intended_start) AS t FROM runs
                 UNION ALL SELECT MIN(login_at) FROM session_spans
                 UNION ALL SELECT MIN(sent_at) FROM kept_checks
                 UNION ALL SELECT MIN(started) FROM freezes)",
            [],
            |row| row.get(0),
        )?)
    }

    /// Whether any row (not yet compacted) is attributed to `w`.
    pub fn has_raw_rows(&self, w: Window) -> Result<bool, ReadError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE intended_start >= ?1 AND intended_start < ?2)
                 OR EXISTS (SELECT 1 FROM session_spans WHERE login_at >= ?1 AND login_at < ?2)
                 OR EXISTS (SELECT 1 FROM kept_checks WHERE sent_at >= ?1 AND sent_at < ?2)
                 OR EXISTS (SELECT 1 FROM freezes WHERE started >= ?1 AND started < ?2)",
            params![w.from, w.to],
            |row| row.get(0),
        )?)
    }

    /// About how many rows a whole-journal read goes through (from the
    /// tables' row ids, without counting).
    pub fn rows_estimate(&self) -> Result<u64, ReadError> {
        let mut total = 0u64;
        for table in ["runs", "steps", "session_spans", "kept_checks"] {
            let n: Option<i64> = self.conn.query_row(
                &format!("SELECT MAX(rowid) - MIN(rowid) + 1 FROM {table}"),
                [],
                |row| row.get(0),
            )?;
            total += n.unwrap_or(0).max(0) as u64;
        }
        Ok(total)
    }

    /// Runs `sql` with `params`, handing each row to `each`: the one path
    /// every reader below takes, streaming or collecting.
    fn each_row(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        mut each: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), ReadError> {
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query(params)?;
        while let Some(row) = rows.next()? {
            each(row)?;
        }
        Ok(())
    }

    /// Runs `sql` with `params`, handing each row, mapped by `map`, to
    /// `each`.
    fn each<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
        mut each: impl FnMut(T),
    ) -> Result<(), ReadError> {
        self.each_row(sql, params, |row| map(row).map(&mut each))
    }

    /// The rows of `columns` in window `w`, each handed to `each`: `rest`
    /// is the SQL after the column list, its `FROM`, a `WHERE` between `?1`
    /// and `?2`, and any order. The streaming readers run here.
    fn stream(
        &self,
        columns: &str,
        rest: &str,
        w: Window,
        each: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), ReadError> {
        let sql = format!("SELECT {columns} {rest}");
        self.each_row(&sql, params![w.from, w.to], each)
    }

    /// The rows of `columns` in window `w`, as [`Self::stream`] reads them,
    /// mapped by `map` and collected.
    fn gather<T>(
        &self,
        columns: &str,
        rest: &str,
        w: Window,
        map: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, ReadError> {
        let mut out = Vec::new();
        self.stream(columns, rest, w, |r| map(r).map(|row| out.push(row)))?;
        Ok(out)
    }

    fn collect<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, ReadError> {
        let mut out = Vec::new();
        self.each(sql, params, map, |row| out.push(row))?;
        Ok(out)
    }

    /// Runs whose intended start lies in the window, in the journal's order.
    pub fn each_run_row(
        &self,
        w: Window,
        mut each: impl FnMut(&RunRow<&str>),
    ) -> Result<(), ReadError> {
        self.stream(&self.columns.run, RUNS, w, |r| {
            run_row(r).map(|row| each(&row))
        })
    }

    /// Runs whose intended start lies in the window, oldest first.
    pub fn runs(&self, w: Window) -> Result<Vec<RunRow>, ReadError> {
        let sql = format!("{RUNS} ORDER BY intended_start, id");
        self.gather(&self.columns.run, &sql, w, |r| run_row::<String>(r))
    }

    /// The steps of the runs whose intended start lies in the window,
    /// grouped by run, each run's in order; only the interactive journeys'
    /// own steps when `interactive_only`.
    pub fn each_step_row(
        &self,
        w: Window,
        interactive_only: bool,
        mut each: impl FnMut(&StepRow<&str>),
    ) -> Result<(), ReadError> {
        // CROSS JOIN keeps runs as the outer loop, so a run's steps come
        // together, in order, from the primary key.
        let only = if interactive_only {
            "AND s.phase = 'journey' AND COALESCE(s.kind, r.kind) = 'interactive'"
        } else {
            ""
        };
        let sql = format!(
            "FROM runs AS r CROSS JOIN steps AS s ON s.run_id = r.id
             WHERE r.intended_start >= ?1 AND r.intended_start < ?2 {only}"
        );
        self.stream(&self.columns.step, &sql, w, |r| {
            step_row(r).map(|row| each(&row))
        })
    }

    /// Steps sent in the window, in the order they were sent.
    pub fn steps(&self, w: Window) -> Result<Vec<StepRow>, ReadError> {
        let sql = "FROM steps AS s JOIN runs AS r ON r.id = s.run_id
                   WHERE s.sent_at >= ?1 AND s.sent_at < ?2 ORDER BY s.sent_at, s.run_id, s.seq";
        self.gather(&self.columns.step, sql, w, |r| step_row::<String>(r))
    }

    pub fn freezes(&self, w: Window) -> Result<Vec<FreezeRow>, ReadError> {
        self.collect(
            &format!(
                "SELECT {} FROM freezes WHERE started >= ?1 AND started < ?2 ORDER BY started",
                self.columns.freeze
            ),
            params![w.from, w.to],
            |r| {
                Ok(FreezeRow {
                    site: r.get(0)?,
                    target: r.get(1)?,
                    started: r.get(2)?,
                    length: r.get(3)?,
                    censored: r.get(4)?,
                    agent_stall: r.get(5)?,
                })
            },
        )
    }

    /// The agent's own stalls that began in the window: (started, seconds).
    pub fn stalls(&self, w: Window) -> Result<Vec<(f64, f64)>, ReadError> {
        if !self.columns.stalls {
            return Ok(Vec::new());
        }
        self.collect(
            "SELECT started, length FROM agent_stalls WHERE started >= ?1 AND started < ?2 ORDER BY started",
            params![w.from, w.to],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Sessions that logged in in the window, in login order (all the
    /// spans of one session share its login time).
    pub fn each_span_row(
        &self,
        w: Window,
        mut each: impl FnMut(&SpanRow<&str>),
    ) -> Result<(), ReadError> {
        let sql = "FROM session_spans WHERE login_at >= ?1 AND login_at < ?2 ORDER BY login_at";
        self.stream(&self.columns.span, sql, w, |r| {
            span_row(r).map(|row| each(&row))
        })
    }

    /// Spans that overlap the window (by wall-clock time).
    pub fn spans(&self, w: Window) -> Result<Vec<SpanRow>, ReadError> {
        let sql = "FROM session_spans
                   WHERE login_at + age_to >= ?1 AND login_at + age_from < ?2 ORDER BY login_at, age_from";
        self.gather(&self.columns.span, sql, w, |r| span_row::<String>(r))
    }

    /// Kept sessions' steps sent in the window, in the journal's order.
    pub fn each_kept_row(
        &self,
        w: Window,
        mut each: impl FnMut(&KeptRow<&str>),
    ) -> Result<(), ReadError> {
        self.stream(&self.columns.kept, KEPT, w, |r| {
            kept_row(r).map(|row| each(&row))
        })
    }

    /// Kept sessions' steps sent in the window, oldest first.
    pub fn kept(&self, w: Window) -> Result<Vec<KeptRow>, ReadError> {
        let sql = format!("{KEPT} ORDER BY sent_at, id");
        self.gather(&self.columns.kept, &sql, w, |r| kept_row::<String>(r))
    }

    pub fn changes(&self) -> Result<Vec<ChangeRow>, ReadError> {
        self.collect(
            "SELECT name, at, description FROM changes ORDER BY at, name",
            [],
            |r| {
                Ok(ChangeRow {
                    name: r.get(0)?,
                    at: r.get(1)?,
                    description: r.get(2)?,
                })
            },
        )
    }

    pub fn missed(&self, w: Window) -> Result<Vec<MissedRow>, ReadError> {
        self.collect(
            "SELECT site, target, journey, at, count FROM missed_slots
             WHERE at >= ?1 AND at < ?2 ORDER BY at",
            params![w.from, w.to],
            |r| {
                Ok(MissedRow {
                    site: r.get(0)?,
                    target: r.get(1)?,
                    journey: r.get(2)?,
                    at: r.get(3)?,
                    count: r.get::<_, i64>(4)?.max(0) as u64,
                })
            },
        )
    }

    /// Interval histograms whose interval starts in the window, oldest
    /// first. Rows that do not decode are skipped with a warning.
    pub fn each_histogram(
        &self,
        w: Window,
        mut each: impl FnMut(HistogramRow),
    ) -> Result<(), ReadError> {
        self.each(
            "SELECT site, target, journey, step, interval_start, interval_secs, hdr_v2_deflate FROM histograms
             WHERE interval_start >= ?1 AND interval_start < ?2 ORDER BY interval_start, target, journey, step",
            params![w.from, w.to],
            |r| {
                let bytes: Vec<u8> = r.get(6)?;
                let row = HistogramRow {
                    site: r.get(0)?,
                    target: r.get(1)?,
                    journey: r.get(2)?,
                    step: r.get(3)?,
                    interval_start: r.get(4)?,
                    interval_secs: r.get(5)?,
                    histogram: recorder::new_histogram(),
                };
                Ok(recorder::decode(&bytes).map(|histogram| HistogramRow { histogram, ..row }))
            },
            |row| match row {
                Ok(row) => each(row),
                Err(error) => tracing::warn!(%error, "skipping an undecodable histogram"),
            },
        )
    }

    /// Interval histograms whose interval starts in the window, oldest first.
    pub fn histograms(&self, w: Window) -> Result<Vec<HistogramRow>, ReadError> {
        let mut out = Vec::new();
        self.each_histogram(w, |row| out.push(row))?;
        Ok(out)
    }

    /// Compacted hours that start in the window, oldest first.
    pub fn rollups(&self, w: Window) -> Result<Vec<RollupRow>, ReadError> {
        if !self.has_rollups {
            return Ok(Vec::new());
        }
        self.collect(
            "SELECT hour_start, version, body FROM rollups WHERE hour_start >= ?1 AND hour_start < ?2 ORDER BY hour_start",
            params![w.from, w.to],
            |r| {
                Ok(RollupRow {
                    hour_start: r.get(0)?,
                    version: r.get(1)?,
                    body: r.get(2)?,
                })
            },
        )
    }

    /// The first `limit` interactive runs in the window, oldest first:
    /// (target, journey, intended start).
    pub fn interactive_starts(
        &self,
        w: Window,
        limit: usize,
    ) -> Result<Vec<(String, String, f64)>, ReadError> {
        self.collect(
            "SELECT target, journey, intended_start FROM runs
             WHERE kind = 'interactive' AND intended_start >= ?1 AND intended_start < ?2
             ORDER BY intended_start LIMIT ?3",
            params![w.from, w.to, limit as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }
}
