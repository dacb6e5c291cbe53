//! The journal's schema: versioned with `PRAGMA user_version`, migrated in
//! code at open. Each migration runs once, in order, in one transaction.
//! Times are unix seconds (REAL), durations seconds (REAL). See
//! `docs/src/report-schema.md` for the meaning of every column.

use rusqlite::Connection;

/// Migrations, oldest first; the schema version is how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE runs (
        id             INTEGER PRIMARY KEY,
        site           TEXT NOT NULL,
        target         TEXT NOT NULL,
        journey        TEXT NOT NULL,
        kind           TEXT NOT NULL,
        intended_start REAL NOT NULL,
        actual_start   REAL NOT NULL,
        duration       REAL NOT NULL,
        outcome        TEXT NOT NULL,
        failed_step    TEXT,
        report_same    INTEGER NOT NULL,
        report_any     INTEGER NOT NULL
    );
    CREATE INDEX runs_by_time ON runs (intended_start);
    CREATE TABLE steps (
        run_id       INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        seq          INTEGER NOT NULL,
        step         TEXT NOT NULL,
        phase        TEXT NOT NULL,
        sent_at      REAL NOT NULL,
        ttfb         REAL,
        duration     REAL NOT NULL,
        outcome      TEXT NOT NULL,
        status       INTEGER,
        bytes        INTEGER NOT NULL,
        censored     INTEGER NOT NULL,
        logout_cause TEXT,
        session_age  REAL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE INDEX steps_by_time ON steps (sent_at);
    CREATE TABLE freezes (
        id       INTEGER PRIMARY KEY,
        site     TEXT NOT NULL,
        target   TEXT NOT NULL,
        started  REAL NOT NULL,
        length   REAL NOT NULL,
        censored INTEGER NOT NULL
    );
    CREATE INDEX freezes_by_time ON freezes (started);
    CREATE TABLE session_spans (
        id        INTEGER PRIMARY KEY,
        site      TEXT NOT NULL,
        target    TEXT NOT NULL,
        origin    TEXT NOT NULL,
        login_at  REAL NOT NULL,
        age_from  REAL NOT NULL,
        age_to    REAL NOT NULL,
        end_cause TEXT,
        dropped   INTEGER NOT NULL
    );
    CREATE INDEX session_spans_by_time ON session_spans (login_at);
    CREATE TABLE changes (
        name        TEXT PRIMARY KEY,
        at          REAL NOT NULL,
        description TEXT NOT NULL
    );
    CREATE TABLE missed_slots (
        id      INTEGER PRIMARY KEY,
        site    TEXT NOT NULL,
        target  TEXT NOT NULL,
        journey TEXT NOT NULL,
        at      REAL NOT NULL,
        count   INTEGER NOT NULL
    );
    CREATE TABLE histograms (
        id             INTEGER PRIMARY KEY,
        site           TEXT NOT NULL,
        target         TEXT NOT NULL,
        journey        TEXT NOT NULL,
        step           TEXT NOT NULL,
        interval_start REAL NOT NULL,
        interval_secs  REAL NOT NULL,
        count          INTEGER NOT NULL,
        hdr_v2_deflate BLOB NOT NULL
    );
    CREATE INDEX histograms_by_time ON histograms (interval_start);
    "#,
    // 2: kept sessions are not journeys. Their checks get a table of their
    // own (older journals' `keepalive` runs move there), and session spans
    // say whose session it is and the bracket of a forced logout's age.
    r#"
    ALTER TABLE session_spans ADD COLUMN origin_kind TEXT NOT NULL DEFAULT 'journey';
    ALTER TABLE session_spans ADD COLUMN slot INTEGER;
    ALTER TABLE session_spans ADD COLUMN seen_age REAL;
    ALTER TABLE session_spans ADD COLUMN detail TEXT NOT NULL DEFAULT '';
    UPDATE session_spans SET origin_kind = 'kept', origin = '' WHERE origin = 'keepalive';
    UPDATE session_spans SET seen_age = age_to WHERE dropped = 1;
    CREATE TABLE kept_checks (
        id           INTEGER PRIMARY KEY,
        site         TEXT NOT NULL,
        target       TEXT NOT NULL,
        slot         INTEGER,
        activity     TEXT NOT NULL,
        seq          INTEGER,
        step         TEXT NOT NULL,
        sent_at      REAL NOT NULL,
        duration     REAL NOT NULL,
        outcome      TEXT NOT NULL,
        status       INTEGER,
        censored     INTEGER NOT NULL,
        logout_cause TEXT,
        session_age  REAL,
        state        TEXT NOT NULL
    );
    CREATE INDEX kept_checks_by_time ON kept_checks (sent_at);
    INSERT INTO kept_checks (site, target, slot, activity, seq, step, sent_at, duration, outcome,
                             status, censored, logout_cause, session_age, state)
        SELECT r.site, r.target, NULL,
               CASE s.phase WHEN 'journey' THEN 'check' ELSE s.phase END,
               s.seq, s.step, s.sent_at, s.duration, s.outcome, s.status, s.censored,
               s.logout_cause, s.session_age,
               CASE WHEN r.outcome IN ('ok', 'slow') THEN 'alive'
                    WHEN s.phase = 'login' THEN 'ended' ELSE 'unknown' END
        FROM steps s JOIN runs r ON r.id = s.run_id WHERE r.journey = 'keepalive';
    DELETE FROM steps WHERE run_id IN (SELECT id FROM runs WHERE journey = 'keepalive');
    DELETE FROM runs WHERE journey = 'keepalive';
    DELETE FROM histograms WHERE journey = 'keepalive';
    "#,
    // 3: a step's own kind (`report` inside an interactive journey); NULL
    // in older rows, which take their run's.
    r#"
    ALTER TABLE steps ADD COLUMN kind TEXT;
    "#,
    // 4: where each step's time went (seconds; NULL for a phase that did
    // not happen, such as DNS, connect and TLS on a reused connection).
    r#"
    ALTER TABLE steps ADD COLUMN dns REAL;
    ALTER TABLE steps ADD COLUMN connect REAL;
    ALTER TABLE steps ADD COLUMN tls REAL;
    ALTER TABLE steps ADD COLUMN first_byte REAL;
    ALTER TABLE steps ADD COLUMN transfer REAL;
    "#,
    // 5: what a browser step saw: for a frozen one, which side froze
    // (`server`, `client`, `mixed`); the longest wait on the server and
    // the longest stretch the page's main thread was blocked (seconds);
    // the evidence saved for a failed one (a name in the evidence folder
    // beside the journal). NULL for HTTP steps.
    r#"
    ALTER TABLE steps ADD COLUMN freeze_side TEXT;
    ALTER TABLE steps ADD COLUMN server_wait REAL;
    ALTER TABLE steps ADD COLUMN main_thread_blocked REAL;
    ALTER TABLE steps ADD COLUMN evidence TEXT;
    "#,
    // 6: the agent's own stalls (its process paused, its host swapping or
    // starved of CPU): when each began and how long it lasted (seconds, at
    // least 0.25). A run, step or kept check that overlapped a stall
    // longer than its `freeze_after` has `agent_stalled` = 1: what it
    // measured was the agent, not the target. A freeze episode says how
    // much of it the agent was stalled (`agent_stall`, seconds): its true
    // length lies between `length - agent_stall` and `length`. Older rows
    // are 0: their stalls were not measured.
    r#"
    CREATE TABLE agent_stalls (
        id      INTEGER PRIMARY KEY,
        site    TEXT NOT NULL,
        started REAL NOT NULL,
        length  REAL NOT NULL
    );
    CREATE INDEX agent_stalls_by_time ON agent_stalls (started);
    ALTER TABLE runs ADD COLUMN agent_stalled INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE steps ADD COLUMN agent_stalled INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE kept_checks ADD COLUMN agent_stalled INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE freezes ADD COLUMN agent_stall REAL NOT NULL DEFAULT 0;
    "#,
    // 7: compacted hours. `casewatch journal compact` folds the rows of an
    // hour into its ledger (see `crate::ledger::rollup`): the hour's first
    // and last moment measured, and the ledger, postcard then Snappy.
    r#"
    CREATE TABLE rollups (
        hour_start    REAL PRIMARY KEY,
        hour_seconds  REAL NOT NULL,
        version       INTEGER NOT NULL,
        measured_from REAL NOT NULL,
        measured_to   REAL NOT NULL,
        body          BLOB NOT NULL
    );
    "#,
    // 8: when the answer that showed a forced or lost session's loss
    // arrived (unix seconds). `login_at + seen_age` is late by the login's
    // length, since `seen_age` counts from the login's send; older rows
    // are NULL and are read as that.
    r#"
    ALTER TABLE session_spans ADD COLUMN seen_at REAL;
    "#,
];

/// The schema version this build writes and reads.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("journal schema version {found} is newer than this casewatch understands ({VERSION})")]
    TooNew { found: i64 },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// The pragmas every connection uses: WAL, so a crash loses nothing that
/// was committed and readers never block the writer.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Brings the schema up to [`VERSION`]. Returns the version found.
pub fn migrate(conn: &mut Connection) -> Result<i64, SchemaError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > VERSION {
        return Err(SchemaError::TooNew { found });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_once_and_refuse_newer_files() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        assert_eq!(migrate(&mut conn).unwrap(), VERSION);
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(SchemaError::TooNew { .. })
        ));
    }

    #[test]
    fn older_keepalive_runs_become_kept_checks() {
        let mut conn = Connection::open_in_memory().unwrap();
        configure(&conn).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO runs VALUES (1, 's', 'ics', 'keepalive', 'interactive', 10, 10, 1, 'ok', NULL, 0, 0);
             INSERT INTO steps VALUES (1, 0, 'login_page', 'login', 10, NULL, 0.1, 'ok', 200, 10, 0, NULL, NULL);
             INSERT INTO steps VALUES (1, 1, 'login_submit', 'login', 10.1, NULL, 0.1, 'ok', 200, 10, 0, NULL, NULL);
             INSERT INTO runs VALUES (2, 's', 'ics', 'keepalive', 'interactive', 20, 20, 1, 'logged_out', 'keepalive_home', 0, 0);
             INSERT INTO steps VALUES (2, 0, 'keepalive_home', 'journey', 20, NULL, 0.1, 'logged_out', 302, 0, 0, 'redirect', 9.9);
             INSERT INTO runs VALUES (3, 's', 'ics', 'case_note', 'interactive', 30, 30, 1, 'ok', NULL, 0, 0);
             INSERT INTO session_spans VALUES (1, 's', 'ics', 'keepalive', 10, 0, 10, 'redirect', 1);
             INSERT INTO session_spans VALUES (2, 's', 'ics', 'case_note', 30, 0, 1, 'logged_out_by_agent', 0);",
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 1);
        let journeys: Vec<String> = conn
            .prepare("SELECT journey FROM runs")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(journeys, ["case_note"]);
        let checks: Vec<(String, i64, String, String)> = conn
            .prepare("SELECT activity, seq, outcome, state FROM kept_checks ORDER BY sent_at")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let row = |a: &str, seq, o: &str, st: &str| (a.into(), seq, o.into(), st.into());
        assert_eq!(
            checks,
            [
                row("login", 0, "ok", "alive"),
                row("login", 1, "ok", "alive"),
                row("check", 0, "logged_out", "unknown"),
            ]
        );
        let spans: Vec<(String, String, Option<f64>)> = conn
            .prepare("SELECT origin, origin_kind, seen_age FROM session_spans ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            spans,
            [
                (String::new(), "kept".to_string(), Some(10.0)),
                ("case_note".to_string(), "journey".to_string(), None),
            ]
        );
    }
    #[test]
    fn older_rows_are_not_flagged_as_agent_stalls() {
        let mut conn = Connection::open_in_memory().unwrap();
        configure(&conn).unwrap();
        for sql in &MIGRATIONS[..5] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        conn.execute_batch(
            "INSERT INTO runs (id, site, target, journey, kind, intended_start, actual_start, duration, outcome, report_same, report_any)
                 VALUES (1, 's', 'ics', 'note', 'interactive', 10, 10, 1, 'ok', 0, 0);
             INSERT INTO steps (run_id, seq, step, phase, sent_at, duration, outcome, bytes, censored)
                 VALUES (1, 0, 'home', 'journey', 10, 1, 'ok', 10, 0);
             INSERT INTO freezes (site, target, started, length, censored) VALUES ('s', 'ics', 20, 5, 0);",
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 5);
        let flags: (i64, i64, f64) = conn
            .query_row(
                "SELECT r.agent_stalled, s.agent_stalled, (SELECT agent_stall FROM freezes)
                 FROM runs r JOIN steps s ON s.run_id = r.id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(flags, (0, 0, 0.0));
        conn.execute(
            "INSERT INTO agent_stalls (site, started, length) VALUES ('s', 30, 10.5)",
            [],
        )
        .unwrap();
    }
}
