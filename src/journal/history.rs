//! The status page's history: per journey, a bar of equal cells of time
//! (48 half-hours for the last day, 30 days for the last month), each
//! holding how its runs ended, the freeze episodes that began on the
//! journey's target, and the journey's sessions forced out.
//!
//! Each bar is one aggregate query grouped by cell over the journal's time
//! indexes, on a read-only connection: no row is brought into memory, so a
//! bar costs the same whatever the journal holds. Runs that overlapped a
//! stall of the agent itself are counted apart, never against the target.

use std::path::Path;
use std::time::{Duration, SystemTime};

use rusqlite::params;

use super::read::{JournalReader, ReadError};

/// What one cell of time holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cell {
    /// Runs counted (those over a stall of the agent are not).
    pub runs: u64,
    pub ok: u64,
    pub slow: u64,
    /// Counted runs that ended `frozen` or `logged_out`; the rest of the
    /// failed runs are errors.
    pub frozen: u64,
    pub logged_out: u64,
    /// Runs over a stall of the agent, not counted.
    pub stalled: u64,
    /// Freeze episodes that began on the journey's target.
    pub freezes: u64,
    /// The journey's sessions forced out (by when the loss was seen).
    pub forced_logouts: u64,
    /// Hours folded into rollups (`casewatch journal compact`): their runs
    /// are in the report only.
    pub compacted: u64,
}

impl Cell {
    /// Counted runs that failed.
    pub fn failed(&self) -> u64 {
        self.runs - self.ok - self.slow
    }
}

/// A bar of `cells.len()` cells of `width` from `from`.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub from: SystemTime,
    pub width: Duration,
    pub cells: Vec<Cell>,
}

impl Bar {
    /// When cell `i` begins.
    pub fn cell_start(&self, i: usize) -> SystemTime {
        self.from + self.width * i as u32
    }

    /// All the cells together.
    pub fn total(&self) -> Cell {
        self.cells.iter().fold(Cell::default(), |a, c| Cell {
            runs: a.runs + c.runs,
            ok: a.ok + c.ok,
            slow: a.slow + c.slow,
            frozen: a.frozen + c.frozen,
            logged_out: a.logged_out + c.logged_out,
            stalled: a.stalled + c.stalled,
            freezes: a.freezes + c.freezes,
            forced_logouts: a.forced_logouts + c.forced_logouts,
            compacted: a.compacted + c.compacted,
        })
    }
}

/// A journey's two bars.
#[derive(Clone, Debug, PartialEq)]
pub struct JourneyHistory {
    pub journey: String,
    pub target: String,
    /// The last 24 hours in half-hours.
    pub day: Bar,
    /// The last 30 days in days.
    pub month: Bar,
}

/// Half-hour cells for the last day, day cells for the last 30 days.
pub const DAY_CELLS: (Duration, usize) = (Duration::from_secs(1800), 48);
pub const MONTH_CELLS: (Duration, usize) = (Duration::from_secs(86_400), 30);

/// The bars of each `(journey, target)` at `now`. Cells are whole
/// half-hours and whole UTC days, the last one holding `now`.
pub fn read(
    journal: &Path,
    journeys: &[(String, String)],
    now: SystemTime,
) -> Result<Vec<JourneyHistory>, ReadError> {
    let reader = JournalReader::open(journal)?;
    journeys
        .iter()
        .map(|(journey, target)| {
            Ok(JourneyHistory {
                journey: journey.clone(),
                target: target.clone(),
                day: bar(&reader, journey, target, now, DAY_CELLS)?,
                month: bar(&reader, journey, target, now, MONTH_CELLS)?,
            })
        })
        .collect()
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The cells of `width` ending with the one that holds `now`.
pub fn cells_ending_at(now: SystemTime, (width, count): (Duration, usize)) -> SystemTime {
    let w = width.as_secs();
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let end = (now_secs / w + 1) * w;
    SystemTime::UNIX_EPOCH + Duration::from_secs(end.saturating_sub(w * count as u64))
}

/// One bar: one query, grouped by cell.
fn bar(
    reader: &JournalReader,
    journey: &str,
    target: &str,
    now: SystemTime,
    cells: (Duration, usize),
) -> Result<Bar, ReadError> {
    let (conn, has_rollups) = reader.connection();
    let from = cells_ending_at(now, cells);
    let width = cells.0.as_secs_f64();
    let (start, end) = (unix(from), unix(from) + width * cells.1 as f64);
    // A journey's session lives no longer than its run: a day before the
    // window is ample for the index on login time.
    let rollups = if has_rollups {
        "UNION ALL SELECT CAST((hour_start - ?1) / ?2 AS INTEGER), 3, NULL, 0 FROM rollups
         WHERE hour_start >= ?1 AND hour_start < ?3"
    } else {
        ""
    };
    let sql = format!(
        "SELECT cell,
                SUM(kind = 0 AND stalled = 0),
                SUM(kind = 0 AND stalled = 0 AND outcome = 'ok'),
                SUM(kind = 0 AND stalled = 0 AND outcome = 'slow'),
                SUM(kind = 0 AND stalled = 0 AND outcome = 'frozen'),
                SUM(kind = 0 AND stalled = 0 AND outcome = 'logged_out'),
                SUM(kind = 0 AND stalled = 1),
                SUM(kind = 1), SUM(kind = 2), SUM(kind = 3)
         FROM (
           SELECT CAST((intended_start - ?1) / ?2 AS INTEGER) AS cell, 0 AS kind, outcome,
                  agent_stalled AS stalled
           FROM runs WHERE intended_start >= ?1 AND intended_start < ?3 AND journey = ?4
           UNION ALL
           SELECT CAST((started - ?1) / ?2 AS INTEGER), 1, NULL, 0 FROM freezes
           WHERE started >= ?1 AND started < ?3 AND target = ?5
           UNION ALL
           SELECT CAST((login_at + COALESCE(seen_age, age_to) - ?1) / ?2 AS INTEGER), 2, NULL, 0
           FROM session_spans
           WHERE login_at >= ?1 - 86400 AND login_at < ?3 AND dropped = 1
             AND origin_kind = 'journey' AND origin = ?4 AND target = ?5
             AND login_at + COALESCE(seen_age, age_to) >= ?1
             AND login_at + COALESCE(seen_age, age_to) < ?3
           {rollups}
         ) GROUP BY cell"
    );
    let mut out = vec![Cell::default(); cells.1];
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params![start, width, end, journey, target])?;
    while let Some(r) = rows.next()? {
        let cell: i64 = r.get(0)?;
        let n = |i: usize| -> rusqlite::Result<u64> {
            Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64)
        };
        if let Some(slot) = usize::try_from(cell).ok().and_then(|c| out.get_mut(c)) {
            *slot = Cell {
                runs: n(1)?,
                ok: n(2)?,
                slow: n(3)?,
                frozen: n(4)?,
                logged_out: n(5)?,
                stalled: n(6)?,
                freezes: n(7)?,
                forced_logouts: n(8)?,
                compacted: n(9)?,
            };
        }
    }
    Ok(Bar {
        from,
        width: cells.0,
        cells: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_cell_holds_now() {
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        // 10:15 on day 100: the day bar runs from 10:30 the day before.
        let now = at(100 * 86_400 + 10 * 3600 + 900);
        assert_eq!(
            cells_ending_at(now, DAY_CELLS),
            at(99 * 86_400 + 10 * 3600 + 1800)
        );
        assert_eq!(cells_ending_at(now, MONTH_CELLS), at(71 * 86_400));
    }
}
