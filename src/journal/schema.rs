//! The journal's schema: versioned with `PRAGMA user_version`, migrated in
//! code at open. Each migration runs once, in order, in one transaction.
//! Times are unix seconds (REAL), durations seconds (REAL). See
//! `docs/journal-schema.md` for the meaning of every column.

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
    // 2: where each step's time went (seconds; NULL for a phase that did
    // not happen, such as DNS, connect and TLS on a reused connection).
    r#"
    ALTER TABLE steps ADD COLUMN dns REAL;
    ALTER TABLE steps ADD COLUMN connect REAL;
    ALTER TABLE steps ADD COLUMN tls REAL;
    ALTER TABLE steps ADD COLUMN first_byte REAL;
    ALTER TABLE steps ADD COLUMN transfer REAL;
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
}
