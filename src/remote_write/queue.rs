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
//!
//! Nothing about the file stops the agent ([`Queue::open_or_recover`],
//! [`Queue::check`], [`Queue::recover`]):
//!
//! - a file that is not a queue (not a database, corrupt, another program's
//!   database, a FIFO or a device) is **set aside**, renamed to
//!   `NAME.corrupt-UNIXTIME`, and a fresh queue started in its place;
//! - a file deleted or replaced while the agent runs is noticed at the next
//!   push, and the pushes still pending are carried into a new file;
//! - where no file can be made at all (a missing folder, no permission) the
//!   queue is kept in memory, and the file is tried again at every push.
//!
//! Each of these is a [`Reset`], which the caller counts and logs.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

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
    /// The file is there but holds no queue: it is set aside.
    #[error("{path} is not a remote_write queue")]
    NotAQueue {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("remote_write queue")]
    Sql(#[from] rusqlite::Error),
}

impl QueueError {
    /// Whether the file itself is bad (to be set aside), rather than out of
    /// reach (a folder missing, no permission, a full disk).
    pub fn is_bad_file(&self) -> bool {
        match self {
            QueueError::NotAQueue { .. } | QueueError::NotAFile { .. } => true,
            QueueError::Open { source, .. } | QueueError::Sql(source) => is_corrupt(source),
        }
    }
}

fn is_corrupt(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

/// Something that happened to the queue's file, and what was done.
#[derive(Debug)]
pub enum Reset {
    /// The file was not a queue: renamed to `aside`, a fresh one started.
    SetAside { aside: PathBuf, why: String },
    /// The file was deleted or replaced while in use: a new one was started
    /// with the `carried` pushes still pending.
    Missing { carried: u64 },
    /// No file could be used: the queue is kept in memory for now.
    InMemory { why: String },
    /// The file could be used again: what was kept in memory went into it.
    BackOnDisk { carried: u64 },
}

impl Reset {
    /// The `reason` label of `casewatch_remote_write_queue_resets_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Reset::SetAside { .. } => "set_aside",
            Reset::Missing { .. } => "missing",
            Reset::InMemory { .. } => "in_memory",
            Reset::BackOnDisk { .. } => "back_on_disk",
        }
    }

    pub const REASONS: [&'static str; 4] = ["set_aside", "missing", "in_memory", "back_on_disk"];
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
    path: PathBuf,
    /// The file's identity (device, inode) when opened; `None` while the
    /// queue is kept in memory.
    identity: Option<(u64, u64)>,
}

/// The (device, inode) of the file at `path`, if there is a file.
fn identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).ok().map(|_| (0, 0))
    }
}

/// A queue's connection, set up: WAL, its schema.
fn prepare(conn: &Connection) -> Result<(), rusqlite::Error> {
    // WAL: a push is one small append, and a crash loses at most the push
    // being written. NORMAL sync is durable across a process crash, and
    // across power loss to within the last checkpoint.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)
}

impl Queue {
    /// Opens (or creates) the queue file; what a previous run left unsent is
    /// still there and goes first. Only a regular file (or none) is opened:
    /// SQLite would wait for ever reading a FIFO.
    pub fn open(path: &Path, max_samples: u64) -> Result<Queue, QueueError> {
        let shown = || path.display().to_string();
        if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
            return Err(QueueError::NotAFile { path: shown() });
        }
        let conn = Connection::open(path).map_err(|source| QueueError::Open {
            path: shown(),
            source,
        })?;
        // Past the open, an error is the file's own: it is no queue.
        let not_a_queue = |source| QueueError::NotAQueue {
            path: shown(),
            source,
        };
        prepare(&conn).map_err(not_a_queue)?;
        let mut queue = Queue {
            conn,
            max_samples,
            backlog: Backlog::default(),
            path: path.to_path_buf(),
            identity: identity(path),
        };
        queue.recount().map_err(|e| match e {
            QueueError::Sql(source) => not_a_queue(source),
            other => other,
        })?;
        Ok(queue)
    }

    /// A queue in memory, for when no file can be used.
    fn in_memory(path: &Path, max_samples: u64) -> Queue {
        let conn = Connection::open_in_memory()
            .and_then(|conn| conn.execute_batch(SCHEMA).map(|()| conn))
            .unwrap_or_else(|_| {
                // SQLite in memory cannot fail but for lack of memory; an
                // unprepared connection fails each push, which is counted.
                Connection::open_in_memory().expect("SQLite opens a database in memory")
            });
        Queue {
            conn,
            max_samples,
            backlog: Backlog::default(),
            path: path.to_path_buf(),
            identity: None,
        }
    }

    /// Opens the queue file whatever is found there: a file that is no
    /// queue is set aside and a fresh one started; with no usable file, the
    /// queue is kept in memory. Never fails: the agent runs on either way.
    pub fn open_or_recover(path: &Path, max_samples: u64) -> (Queue, Option<Reset>) {
        match Queue::open(path, max_samples) {
            Ok(queue) => (queue, None),
            Err(error) if error.is_bad_file() => {
                let why = crate::error_chain(&error);
                match set_aside(path) {
                    Ok(aside) => match Queue::open(path, max_samples) {
                        Ok(queue) => (queue, Some(Reset::SetAside { aside, why })),
                        Err(error) => (
                            Queue::in_memory(path, max_samples),
                            Some(Reset::InMemory {
                                why: crate::error_chain(&error),
                            }),
                        ),
                    },
                    Err(error) => (
                        Queue::in_memory(path, max_samples),
                        Some(Reset::InMemory {
                            why: format!("{why}; cannot set it aside: {error}"),
                        }),
                    ),
                }
            }
            Err(error) => (
                Queue::in_memory(path, max_samples),
                Some(Reset::InMemory {
                    why: crate::error_chain(&error),
                }),
            ),
        }
    }

    /// Before each push: a file deleted or replaced since it was opened is
    /// started again with what is pending; a queue kept in memory goes back
    /// to its file as soon as one can be made.
    pub fn check(&mut self) -> Option<Reset> {
        match self.identity {
            Some(opened) if identity(&self.path) == Some(opened) => None,
            Some(_) => {
                let (fresh, reset) = Queue::open_or_recover(&self.path, self.max_samples);
                if !fresh.on_disk() {
                    // No file can be made: the file still open, unlinked,
                    // serves as memory until one can.
                    self.identity = None;
                    return reset;
                }
                let carried = self.move_into(fresh);
                Some(reset.unwrap_or(Reset::Missing { carried }))
            }
            None => {
                let fresh = Queue::open(&self.path, self.max_samples).ok()?;
                let carried = self.move_into(fresh);
                Some(Reset::BackOnDisk { carried })
            }
        }
    }

    /// After a failed read or write: a corrupt file is set aside and a fresh
    /// queue started (what it held is lost, and counted as dropped by the
    /// caller from the returned backlog).
    pub fn recover(&mut self, error: &QueueError) -> Option<(Reset, Backlog)> {
        if !error.is_bad_file() || self.identity.is_none() {
            return None;
        }
        let lost = self.backlog;
        let why = crate::error_chain(error);
        // Closed first, so the rename takes the whole file.
        let placeholder = Queue::in_memory(&self.path, self.max_samples);
        drop(std::mem::replace(self, placeholder));
        let reset = match set_aside(&self.path) {
            Ok(aside) => match Queue::open(&self.path, self.max_samples) {
                Ok(fresh) => {
                    *self = fresh;
                    Reset::SetAside { aside, why }
                }
                Err(error) => Reset::InMemory {
                    why: crate::error_chain(&error),
                },
            },
            Err(error) => Reset::InMemory {
                why: format!("{why}; cannot set it aside: {error}"),
            },
        };
        Some((reset, lost))
    }

    /// Copies every pending push into `fresh`, in order, and becomes it;
    /// returns how many pushes went across.
    fn move_into(&mut self, mut fresh: Queue) -> u64 {
        let rows: Result<Vec<(i64, i64, Vec<u8>)>, rusqlite::Error> = self
            .conn
            .prepare("SELECT taken_ms, samples, body FROM pushes ORDER BY id")
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                    .collect()
            });
        let mut carried = 0;
        for (taken_ms, samples, body) in rows.unwrap_or_default() {
            if fresh.push(taken_ms, samples as u64, &body).is_ok() {
                carried += 1;
            }
        }
        *self = fresh;
        carried
    }

    /// The queue file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the queue is kept now: its file, or memory.
    pub fn on_disk(&self) -> bool {
        self.identity.is_some()
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

/// Renames the file at `path` (and its WAL and shared-memory files) to
/// `NAME.corrupt-UNIXTIME`; returns the new name.
fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut aside = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    let mut n = 1;
    while aside.exists() {
        aside = PathBuf::from(format!("{}.corrupt-{stamp}-{n}", path.display()));
        n += 1;
    }
    std::fs::rename(path, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            let _ = std::fs::rename(&side, format!("{}{suffix}", aside.display()));
        }
    }
    Ok(aside)
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
    fn a_file_that_is_no_queue_is_set_aside_and_a_fresh_one_started() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        std::fs::write(
            &path,
            "this is not a database, it is a text file ".repeat(200),
        )
        .unwrap();
        let error = Queue::open(&path, 10)
            .err()
            .expect("a text file opened as a queue");
        assert!(error.is_bad_file(), "{error}");
        let (mut queue, reset) = Queue::open_or_recover(&path, 10);
        let Some(Reset::SetAside { aside, why }) = reset else {
            panic!("not set aside: {reset:?}");
        };
        assert!(why.contains("is not a remote_write queue"), "{why}");
        assert!(aside
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("q.db.corrupt-"));
        assert!(std::fs::read_to_string(&aside)
            .unwrap()
            .starts_with("this is not"));
        assert!(queue.on_disk());
        queue.push(1, 1, b"x").unwrap();
        // Another program's database is no queue either.
        let other = dir.path().join("other.db");
        let conn = Connection::open(&other).unwrap();
        conn.execute_batch("CREATE TABLE pushes (x TEXT);").unwrap();
        drop(conn);
        let (_, reset) = Queue::open_or_recover(&other, 10);
        assert!(matches!(reset, Some(Reset::SetAside { .. })), "{reset:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_in_the_queues_place_is_set_aside_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        assert!(std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success());
        let (tx, rx) = std::sync::mpsc::channel();
        let opened = path.clone();
        std::thread::spawn(move || {
            let (queue, reset) = Queue::open_or_recover(&opened, 10);
            let _ = tx.send((queue.on_disk(), reset.map(|r| r.reason())));
        });
        let answer = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("opening a FIFO as the queue blocked");
        assert_eq!(answer, (true, Some("set_aside")));
    }

    #[test]
    fn a_queue_deleted_while_in_use_is_started_again_with_what_was_pending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut queue = Queue::open(&path, 100).unwrap();
        queue.push(1, 10, b"first").unwrap();
        queue.push(2, 10, b"second").unwrap();
        assert!(queue.check().is_none());
        for side in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{side}", path.display()));
        }
        let reset = queue.check();
        assert!(
            matches!(reset, Some(Reset::Missing { carried: 2 })),
            "{reset:?}"
        );
        assert!(path.exists());
        assert_eq!(queue.peek().unwrap().unwrap().body, b"first");
        assert_eq!(queue.backlog().samples, 20);
        drop(queue);
        // And it is the file on disk that holds them.
        let queue = Queue::open(&path, 100).unwrap();
        assert_eq!(queue.backlog().pushes, 2);
    }

    #[test]
    fn with_no_folder_the_queue_is_kept_in_memory_until_there_is_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later").join("q.db");
        let (mut queue, reset) = Queue::open_or_recover(&path, 100);
        assert!(matches!(reset, Some(Reset::InMemory { .. })), "{reset:?}");
        assert!(!queue.on_disk());
        queue.push(1, 5, b"kept").unwrap();
        assert!(queue.check().is_none());
        std::fs::create_dir(dir.path().join("later")).unwrap();
        let reset = queue.check();
        assert!(
            matches!(reset, Some(Reset::BackOnDisk { carried: 1 })),
            "{reset:?}"
        );
        assert!(queue.on_disk());
        assert_eq!(queue.peek().unwrap().unwrap().body, b"kept");
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
