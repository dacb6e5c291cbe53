//! The durable queue: pushes the central store has not yet accepted, kept in
//! a SQLite file of their own so that an outage of the store, the WAN or the
//! agent itself loses nothing up to the cap.
//!
//! One row is one push: every series' sample at one instant, stored as the
//! exact request body that will be sent (snappy-compressed protobuf), so a
//! backlog costs no work to resend. Rows leave in the order they came, which
//! keeps every series in timestamp order as Prometheus requires. When the
//! pending samples pass `max_samples`, the oldest pushes are deleted whole
//! and their samples counted as dropped: the newest data is the most useful
//! once the store returns, and a push dropped whole leaves a clean gap
//! rather than a thinned one.
//!
//! The queue is synchronous and owns its connection; [`super`] runs it on a
//! thread of its own so that no probe, and not the journal writer, ever waits
//! on its disk.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pushes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- the samples' timestamp, ms since the epoch
    taken_ms INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    -- the request body: snappy block over a protobuf WriteRequest
    body BLOB NOT NULL
);
";

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot open remote_write queue {path}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("remote_write queue")]
    Sql(#[from] rusqlite::Error),
}

/// One stored push, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    pub id: i64,
    pub taken_ms: i64,
    pub samples: u64,
    pub body: Vec<u8>,
}

/// What is waiting, for the queue's gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    pub pushes: u64,
    pub samples: u64,
    /// The timestamp of the oldest pending sample.
    pub oldest_ms: Option<i64>,
}

pub struct Queue {
    conn: Connection,
    max_samples: u64,
    backlog: Backlog,
}

impl Queue {
    /// Opens (or creates) the queue file; what a previous run left unsent is
    /// still there and goes first.
    pub fn open(path: &Path, max_samples: u64) -> Result<Queue, QueueError> {
        let open = || -> Result<Connection, rusqlite::Error> {
            let conn = Connection::open(path)?;
            // WAL: a push is one small append, and a crash loses at most the
            // push being written. NORMAL sync is durable across a process
            // crash, and across power loss to within the last checkpoint.
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        };
        let conn = open().map_err(|source| QueueError::Open {
            path: path.display().to_string(),
            source,
        })?;
        let mut queue = Queue {
            conn,
            max_samples,
            backlog: Backlog::default(),
        };
        queue.recount()?;
        Ok(queue)
    }

    fn recount(&mut self) -> Result<(), QueueError> {
        let (pushes, samples): (i64, i64) = self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(samples), 0) FROM pushes",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        let oldest_ms: Option<i64> = self
            .conn
            .query_row(
                "SELECT taken_ms FROM pushes ORDER BY id LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()?;
        self.backlog = Backlog {
            pushes: pushes as u64,
            samples: samples as u64,
            oldest_ms,
        };
        Ok(())
    }

    pub fn backlog(&self) -> Backlog {
        self.backlog
    }

    /// Stores one push; returns how many samples the cap then dropped (the
    /// oldest pushes first, never the one just stored).
    pub fn push(&mut self, taken_ms: i64, samples: u64, body: &[u8]) -> Result<u64, QueueError> {
        self.conn.execute(
            "INSERT INTO pushes (taken_ms, samples, body) VALUES (?1, ?2, ?3)",
            params![taken_ms, samples as i64, body],
        )?;
        self.backlog.pushes += 1;
        self.backlog.samples += samples;
        self.backlog.oldest_ms.get_or_insert(taken_ms);
        let mut dropped = 0;
        while self.backlog.samples > self.max_samples && self.backlog.pushes > 1 {
            let Some(oldest) = self.oldest_row()? else {
                break;
            };
            self.conn
                .execute("DELETE FROM pushes WHERE id = ?1", [oldest.0])?;
            dropped += oldest.1;
            self.backlog.pushes -= 1;
            self.backlog.samples -= oldest.1;
        }
        if dropped > 0 {
            self.backlog.oldest_ms = self.oldest_taken()?;
        }
        Ok(dropped)
    }

    fn oldest_row(&self) -> Result<Option<(i64, u64)>, QueueError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, samples FROM pushes ORDER BY id LIMIT 1",
                [],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)? as u64)),
            )
            .optional()?)
    }

    fn oldest_taken(&self) -> Result<Option<i64>, QueueError> {
        Ok(self
            .conn
            .query_row(
                "SELECT taken_ms FROM pushes ORDER BY id LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// The oldest push, left in place until [`Queue::remove`].
    pub fn peek(&self) -> Result<Option<Push>, QueueError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, taken_ms, samples, body FROM pushes ORDER BY id LIMIT 1",
                [],
                |row| {
                    Ok(Push {
                        id: row.get(0)?,
                        taken_ms: row.get(1)?,
                        samples: row.get::<_, i64>(2)? as u64,
                        body: row.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Removes a push once the store has answered it for good (accepted or
    /// refused); returns its samples, or 0 if the cap had dropped it already.
    pub fn remove(&mut self, id: i64) -> Result<u64, QueueError> {
        let samples: Option<i64> = self
            .conn
            .query_row(
                "DELETE FROM pushes WHERE id = ?1 RETURNING samples",
                [id],
                |row| row.get(0),
            )
            .optional()?;
        let Some(samples) = samples else {
            return Ok(0);
        };
        self.backlog.pushes -= 1;
        self.backlog.samples -= samples as u64;
        self.backlog.oldest_ms = self.oldest_taken()?;
        Ok(samples as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_leave_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut queue = Queue::open(&path, 1_000).unwrap();
        assert_eq!(queue.peek().unwrap(), None);
        assert_eq!(queue.push(1_000, 10, b"first").unwrap(), 0);
        assert_eq!(queue.push(2_000, 20, b"second").unwrap(), 0);
        assert_eq!(
            queue.backlog(),
            Backlog {
                pushes: 2,
                samples: 30,
                oldest_ms: Some(1_000)
            }
        );
        drop(queue);

        let mut queue = Queue::open(&path, 1_000).unwrap();
        assert_eq!(
            queue.backlog(),
            Backlog {
                pushes: 2,
                samples: 30,
                oldest_ms: Some(1_000)
            }
        );
        let first = queue.peek().unwrap().unwrap();
        assert_eq!(
            (first.taken_ms, first.samples, first.body.as_slice()),
            (1_000, 10, &b"first"[..])
        );
        // Peeking does not consume.
        assert_eq!(queue.peek().unwrap().unwrap().id, first.id);
        assert_eq!(queue.remove(first.id).unwrap(), 10);
        assert_eq!(queue.remove(first.id).unwrap(), 0);
        assert_eq!(
            queue.backlog(),
            Backlog {
                pushes: 1,
                samples: 20,
                oldest_ms: Some(2_000)
            }
        );
        let second = queue.peek().unwrap().unwrap();
        assert_eq!(second.body, b"second");
        queue.remove(second.id).unwrap();
        assert_eq!(queue.backlog(), Backlog::default());
        assert_eq!(queue.peek().unwrap(), None);
    }

    #[test]
    fn past_the_cap_the_oldest_pushes_are_dropped_whole_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut queue = Queue::open(&dir.path().join("q.db"), 25).unwrap();
        assert_eq!(queue.push(1, 10, b"a").unwrap(), 0);
        assert_eq!(queue.push(2, 10, b"b").unwrap(), 0);
        // 30 > 25: the oldest (10 samples) goes.
        assert_eq!(queue.push(3, 10, b"c").unwrap(), 10);
        assert_eq!(
            queue.backlog(),
            Backlog {
                pushes: 2,
                samples: 20,
                oldest_ms: Some(2)
            }
        );
        assert_eq!(queue.peek().unwrap().unwrap().body, b"b");
        // A single push over the cap is kept: it is the newest data.
        assert_eq!(queue.push(4, 100, b"d").unwrap(), 20);
        assert_eq!(
            queue.backlog(),
            Backlog {
                pushes: 1,
                samples: 100,
                oldest_ms: Some(4)
            }
        );
    }

    #[test]
    fn a_queue_that_cannot_be_opened_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("q.db");
        let Err(e) = Queue::open(&path, 10) else {
            panic!("opened a file in a missing directory");
        };
        assert!(e.to_string().contains("missing-dir"), "{e}");
    }
}
