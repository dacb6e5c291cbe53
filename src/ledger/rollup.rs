//! Hourly rollups: `casewatch journal compact --older-than 37d` folds the
//! rows of each calendar hour older than that into one rollup row, the
//! ledger of that hour's runs, steps, sessions, kept-session checks and
//! freezes, and deletes the rows, in one transaction per hour. The report
//! reads a rollup exactly as it would have read the rows (the ledger is
//! additive and keeps time in whole milliseconds), so a report over a
//! compacted journal equals the report over the original for any window
//! of whole hours.
//!
//! A rollup is the hour's ledger in postcard's compact serde encoding,
//! compressed with Snappy: a few kilobytes an hour, against about 55 kB of
//! rows at production rates. Postcard keeps no field names, so each row
//! says its format: format 2 is the current ledger, format 1 the ledger
//! before forced logouts kept the moment their loss was seen and slots the
//! work of failed runs (read and upgraded by `super::v1`).
//! What compaction gives up: the per-minute HdrHistogram rows of those
//! hours (`casewatch export --format hlog` has nothing before the cutoff)
//! and windows that cut an hour in two.

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags};

use super::build::{JournalMeta, SlotWindow};
use super::{Ledger, SlotClock};
use crate::journal::read::{JournalReader, ReadError, Window};
use crate::journal::schema;

/// The rollup format this build writes; it reads this one and format 1.
pub const VERSION: i64 = 2;
/// Compaction never folds the last day: the agent may still be writing it.
pub const MIN_AGE_SECONDS: f64 = 86_400.0;

#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    #[error("rollup is not readable")]
    Decompress(#[source] snap::Error),
    #[error("rollup is not readable")]
    Decode(#[source] postcard::Error),
    #[error("rollup cannot be written")]
    Encode(#[source] postcard::Error),
    #[error("rollup cannot be compressed")]
    Compress(#[source] snap::Error),
    #[error("rollup format {0} is newer than this casewatch understands ({VERSION})")]
    TooNew(i64),
}

/// Encodes an hour's ledger.
pub fn encode(ledger: &Ledger) -> Result<Vec<u8>, RollupError> {
    let bytes = postcard::to_stdvec(ledger).map_err(RollupError::Encode)?;
    snap::raw::Encoder::new()
        .compress_vec(&bytes)
        .map_err(RollupError::Compress)
}

/// Decodes a rollup's body written in format `version`.
pub fn decode(body: &[u8], version: i64) -> Result<Ledger, RollupError> {
    if version > VERSION {
        return Err(RollupError::TooNew(version));
    }
    let bytes = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(RollupError::Decompress)?;
    if version <= 1 {
        let old: super::v1::LedgerV1 = postcard::from_bytes(&bytes).map_err(RollupError::Decode)?;
        return Ok(super::v1::upgrade(old));
    }
    postcard::from_bytes(&bytes).map_err(RollupError::Decode)
}

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("cannot open journal {path} to compact it")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot compact journal {path}")]
    Schema {
        path: String,
        #[source]
        source: schema::SchemaError,
    },
    #[error("cannot compact journal {path}")]
    Read {
        path: String,
        #[source]
        source: ReadError,
    },
    #[error("cannot compact journal {path}")]
    Build {
        path: String,
        #[source]
        source: super::build::BuildError,
    },
    #[error("cannot compact journal {path}")]
    Write {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the rollup of {hour} in {path} cannot be read or written")]
    Rollup {
        path: String,
        hour: String,
        #[source]
        source: RollupError,
    },
    #[error("--older-than must be at least a day: the agent may still be writing the last one")]
    TooRecent,
}

/// What a compaction did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Compacted {
    pub hours: u64,
    pub rows: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Folds every hour of the journal at `path` that ends before `before`
/// (unix seconds) into a rollup. `now` is the time the cutoff is checked
/// against; `vacuum` gives the freed space back to the file system (not
/// while an agent is writing); `progress` hears (hours done, hours in all).
pub fn compact(
    path: &Path,
    before: f64,
    now: f64,
    vacuum: bool,
    mut progress: impl FnMut(u64, u64),
) -> Result<Compacted, CompactError> {
    let name = path.display().to_string();
    if now - before < MIN_AGE_SECONDS {
        return Err(CompactError::TooRecent);
    }
    let bytes_before = file_bytes(path);
    migrate(path, &name)?;
    let read = |source| CompactError::Read {
        path: name.clone(),
        source,
    };
    let reader = JournalReader::open(path).map_err(read)?;
    let meta = JournalMeta::read(&reader).map_err(read)?;
    let clock = SlotClock::hourly(meta.calendar_scale);
    let Some(first) = reader.raw_start().map_err(read)? else {
        return Ok(Compacted {
            bytes_before,
            bytes_after: bytes_before,
            ..Compacted::default()
        });
    };
    let (first_hour, end_hour) = (clock.slot(first), clock.slot(before));
    let hours: Vec<i64> = (first_hour..end_hour).collect();
    let total = hours.len() as u64;
    let mut writer = open(path, &name)?;
    let mut done = Compacted {
        bytes_before,
        ..Compacted::default()
    };
    for (i, hour) in hours.into_iter().enumerate() {
        let window = SlotWindow {
            clock,
            first: hour,
            last: hour,
        };
        if let Some(removed) = fold_hour(&reader, &meta, &mut writer, window, &name)? {
            done.hours += 1;
            done.rows += removed;
        }
        progress(i as u64 + 1, total);
    }
    if vacuum && done.hours > 0 {
        give_back_space(&writer, &name)?;
    }
    done.bytes_after = file_bytes(path);
    Ok(done)
}

/// The journal at `path`, opened to write.
fn open(path: &Path, name: &str) -> Result<Connection, CompactError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| CompactError::Open {
        path: name.to_string(),
        source,
    })?;
    schema::configure(&conn).map_err(|source| CompactError::Open {
        path: name.to_string(),
        source,
    })?;
    Ok(conn)
}

/// Brings the journal's schema up to date before it is read.
fn migrate(path: &Path, name: &str) -> Result<(), CompactError> {
    let mut conn = open(path, name)?;
    schema::migrate(&mut conn).map_err(|source| CompactError::Schema {
        path: name.to_string(),
        source,
    })?;
    Ok(())
}

/// Folds one hour's rows into its rollup: the rows removed, or `None` when
/// the hour has no rows left to fold.
fn fold_hour(
    reader: &JournalReader,
    meta: &JournalMeta,
    writer: &mut Connection,
    window: SlotWindow,
    name: &str,
) -> Result<Option<u64>, CompactError> {
    let rows = window.rows();
    let read = |source| CompactError::Read {
        path: name.to_string(),
        source,
    };
    if !reader.has_raw_rows(rows).map_err(read)? {
        return Ok(None);
    }
    let ledger = hour_ledger(reader, meta, window, name)?;
    let write = |source| CompactError::Write {
        path: name.to_string(),
        source,
    };
    let tx = writer.transaction().map_err(write)?;
    let removed = delete_rows(&tx, rows).map_err(write)?;
    let (from, to) = ledger.measured.unwrap_or((rows.from, rows.from));
    let body = encode(&ledger).map_err(|source| CompactError::Rollup {
        path: name.to_string(),
        hour: crate::timefmt::rfc3339(rows.from),
        source,
    })?;
    tx.execute(
        "INSERT OR REPLACE INTO rollups (hour_start, hour_seconds, version, measured_from, measured_to, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![rows.from, window.clock.seconds, VERSION, from, to, body],
    )
    .map_err(write)?;
    tx.commit().map_err(write)?;
    Ok(Some(removed))
}

/// The hour's ledger from its rows and any rollup it already has.
fn hour_ledger(
    reader: &JournalReader,
    meta: &JournalMeta,
    window: SlotWindow,
    name: &str,
) -> Result<Ledger, CompactError> {
    let rows = window.rows();
    let mut ledger =
        super::build::raw_ledger(reader, meta, window).map_err(|source| CompactError::Build {
            path: name.to_string(),
            source,
        })?;
    // Folding twice (rows written late into an hour already folded)
    // adds the new rows to the hour's rollup.
    let old_rollups = reader.rollups(rows).map_err(|source| CompactError::Read {
        path: name.to_string(),
        source,
    })?;
    for old in old_rollups {
        let part = decode(&old.body, old.version).map_err(|source| CompactError::Rollup {
            path: name.to_string(),
            hour: crate::timefmt::rfc3339(old.hour_start),
            source,
        })?;
        ledger.absorb(&part);
    }
    Ok(ledger)
}

/// Gives the space compaction freed back to the file system.
fn give_back_space(writer: &Connection, name: &str) -> Result<(), CompactError> {
    writer
        // VACUUM goes through the write-ahead log: checkpoint after it
        // too, or the log keeps the journal's whole size beside it.
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
        .map_err(|source| CompactError::Write {
            path: name.to_string(),
            source,
        })
}

fn file_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Deletes the rows attributed to `w` (a run's steps go with it).
fn delete_rows(tx: &rusqlite::Transaction<'_>, w: Window) -> rusqlite::Result<u64> {
    let mut removed = 0;
    removed += tx.execute(
        "DELETE FROM steps WHERE run_id IN (SELECT id FROM runs WHERE intended_start >= ?1 AND intended_start < ?2)",
        params![w.from, w.to],
    )?;
    for sql in [
        "DELETE FROM runs WHERE intended_start >= ?1 AND intended_start < ?2",
        "DELETE FROM session_spans WHERE login_at >= ?1 AND login_at < ?2",
        "DELETE FROM kept_checks WHERE sent_at >= ?1 AND sent_at < ?2",
        "DELETE FROM freezes WHERE started >= ?1 AND started < ?2",
        "DELETE FROM histograms WHERE interval_start >= ?1 AND interval_start < ?2",
        // The hour's ledger holds its stalls; left here they would count twice.
        "DELETE FROM agent_stalls WHERE started >= ?1 AND started < ?2",
    ] {
        removed += tx.execute(sql, params![w.from, w.to])?;
    }
    Ok(removed as u64)
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    /// Three hours of a demo journal compacted by casewatch before format
    /// 2: `hour_start base64(body)` a line.
    const FORMAT_1: &str = include_str!("../../tests/fixtures/rollup_v1.txt");

    fn bodies() -> Vec<(f64, Vec<u8>)> {
        FORMAT_1
            .lines()
            .map(|line| {
                let (hour, body) = line.split_once(' ').unwrap();
                let body = base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .unwrap();
                (hour.parse().unwrap(), body)
            })
            .collect()
    }

    #[test]
    fn format_1_rollups_are_read_and_upgraded() {
        let mut all = Ledger::default();
        for (_, body) in bodies() {
            // Not the current layout: read as format 2, it fails.
            assert!(decode(&body, VERSION).is_err());
            all.absorb(&decode(&body, 1).unwrap());
        }
        assert_eq!(all.forced_logouts.len(), 4);
        for d in &all.forced_logouts {
            // Format 1 kept no moment: what the report said then.
            assert_eq!(d.seen_at, d.login_at + d.seen_age);
        }
        assert!(all.samples > 100, "{}", all.samples);
        let runs: u32 = all
            .slots
            .values()
            .flat_map(|s| s.excess.iter())
            .map(|(_, e)| e.runs)
            .sum();
        assert!(runs > 10, "{runs}");
        assert!(all
            .slots
            .values()
            .flat_map(|s| s.excess.iter())
            .all(|(_, e)| e.failed == 0 && e.redo_ms == 0));
        // And written again, they are format 2.
        let again = decode(&encode(&all).unwrap(), VERSION).unwrap();
        assert_eq!(again.forced_logouts, all.forced_logouts);
        assert!(matches!(
            decode(&[], VERSION + 1),
            Err(RollupError::TooNew(3))
        ));
    }
}
