//! The durable journal: an embedded SQLite file holding every run and step,
//! freeze episodes, session lifetimes, change events, missed slots, the
//! agent's own stalls and per-interval HdrHistograms, written off the
//! probing path by one writer thread.
//!
//! - [`Journal`] is the agent's handle. Its methods never block: they
//!   `try_send` on a bounded queue and count a drop when it is full.
//! - [`writer`] owns the connection on its own thread, batches inserts in
//!   transactions, feeds the [`crate::recorder`], applies retention. Errors
//!   (disk full, locked file) are counted and logged, never fatal.
//! - [`schema`] versions the file and migrates it at open.
//! - [`read`] is the report's and exports' read side; [`history`] the
//!   status page's bars, one aggregate query each.
//! - [`folder_beside`] names the folder beside the file where failed browser
//!   steps leave their evidence, so the agent, the status page and the report
//!   agree on it.
//!
//! WAL mode with `synchronous=NORMAL`: a crash (even `kill -9`) loses at
//! most what is still queued, and the file always reopens.

pub mod history;
pub mod read;
pub mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use prometheus::{IntCounter, IntGauge, Opts};

use crate::config::{Config, JournalOptions};
use crate::outcome::{FreezeEpisode, KeptRecord, RunRecord, SessionSpan};

/// Records the queue holds before new ones are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 10_000;
/// The recorder's histogram interval.
pub const HISTOGRAM_INTERVAL: Duration = Duration::from_secs(60);

/// The folder beside `journal` that its evidence goes in:
/// `casewatch-demo.db` → `casewatch-demo-evidence/`.
pub fn folder_beside(journal: &Path) -> PathBuf {
    let stem = journal
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "journal".to_string());
    journal.with_file_name(format!("{stem}-evidence"))
}

/// Whether report journeys were running while a run ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportLoad {
    /// A report journey was in flight on the run's own target.
    pub same_target: bool,
    /// A report journey was in flight on any target.
    pub any_target: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open journal {path}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open journal {path}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot prepare journal {path}")]
    Schema {
        path: String,
        #[source]
        source: schema::SchemaError,
    },
    #[error("cannot register journal metrics")]
    Metrics(#[from] prometheus::Error),
}

/// What the writer thread is sent.
enum Message {
    Run(Box<RunRecord>, ReportLoad),
    Kept(Box<KeptRecord>),
    Missed {
        target: String,
        journey: String,
        count: u64,
        at: SystemTime,
    },
    Freeze(FreezeEpisode),
    Session(SessionSpan),
    Stall {
        started: SystemTime,
        length: Duration,
    },
}

/// The journal's self-metrics, on the agent's registry, and the latest
/// write error for the status page.
#[derive(Clone)]
struct JournalMetrics {
    queue_depth: IntGauge,
    write_errors: IntCounter,
    dropped: IntCounter,
    last_error: std::sync::Arc<std::sync::Mutex<Option<(SystemTime, String)>>>,
}

impl JournalMetrics {
    /// A failed write: counted, and remembered as the latest.
    fn write_failed(&self, error: &rusqlite::Error) {
        self.write_errors.inc();
        let mut last = match self.last_error.lock() {
            Ok(last) => last,
            Err(poisoned) => poisoned.into_inner(),
        };
        *last = Some((SystemTime::now(), error.to_string()));
    }
}

/// What the status page shows of the journal: records lost to failed
/// writes and to a full queue, and the latest write error.
#[derive(Clone)]
pub struct JournalHealth {
    metrics: JournalMetrics,
}

impl std::fmt::Debug for JournalHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalHealth")
            .field("write_errors", &self.write_errors())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl JournalHealth {
    /// `casewatch_journal_write_errors_total`.
    pub fn write_errors(&self) -> u64 {
        self.metrics.write_errors.get()
    }

    /// `casewatch_journal_dropped_total`.
    pub fn dropped(&self) -> u64 {
        self.metrics.dropped.get()
    }

    /// When the latest write failed, and why (SQLite's message).
    pub fn last_error(&self) -> Option<(SystemTime, String)> {
        match self.metrics.last_error.lock() {
            Ok(last) => last.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl JournalMetrics {
    fn register(registry: &prometheus::Registry) -> Result<JournalMetrics, prometheus::Error> {
        let queue_depth = IntGauge::with_opts(Opts::new(
            "casewatch_journal_queue_depth",
            "Records waiting for the journal writer.",
        ))?;
        let write_errors = IntCounter::with_opts(Opts::new(
            "casewatch_journal_write_errors_total",
            "Journal writes that failed (disk full, locked file, ...); their records are lost.",
        ))?;
        let dropped = IntCounter::with_opts(Opts::new(
            "casewatch_journal_dropped_total",
            "Records dropped because the journal queue was full or the writer had stopped.",
        ))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(write_errors.clone()))?;
        registry.register(Box::new(dropped.clone()))?;
        Ok(JournalMetrics {
            queue_depth,
            write_errors,
            dropped,
            last_error: Default::default(),
        })
    }
}

pub struct Journal {
    sender: SyncSender<Message>,
    metrics: JournalMetrics,
    writer: JoinHandle<()>,
}

impl Journal {
    /// Opens (creating or migrating) the file and starts the writer thread.
    /// The config's site, age bands and change events are recorded.
    pub fn open(
        options: JournalOptions,
        config: &Config,
        registry: &prometheus::Registry,
    ) -> Result<Journal, JournalError> {
        let metrics = JournalMetrics::register(registry)?;
        let conn = writer::open(&options, config)?;
        let (sender, receiver) = sync_channel(QUEUE_CAPACITY);
        let state =
            writer::Writer::new(conn, options.clone(), config.site.clone(), metrics.clone());
        let writer = std::thread::Builder::new()
            .name("casewatch-journal".into())
            .spawn(move || state.run(receiver))
            .map_err(|source| JournalError::Open {
                path: options.path.display().to_string(),
                source,
            })?;
        tracing::info!(path = %options.path.display(), "journal open");
        Ok(Journal {
            sender,
            metrics,
            writer,
        })
    }

    /// The journal's health, for the status page.
    pub fn health(&self) -> JournalHealth {
        JournalHealth {
            metrics: self.metrics.clone(),
        }
    }

    fn send(&self, message: Message) {
        match self.sender.try_send(message) {
            Ok(()) => self.metrics.queue_depth.inc(),
            Err(TrySendError::Full(_)) => {
                self.metrics.dropped.inc();
                tracing::warn!("journal queue full: record dropped");
            }
            Err(TrySendError::Disconnected(_)) => {
                self.metrics.dropped.inc();
                tracing::warn!("journal writer has stopped: record dropped");
            }
        }
    }

    pub fn run(&self, run: &RunRecord, load: ReportLoad) {
        self.send(Message::Run(Box::new(run.clone()), load));
    }

    /// A kept session's login, check or logout (its spans go by [`Journal::session`]).
    pub fn kept(&self, kept: &KeptRecord) {
        self.send(Message::Kept(Box::new(KeptRecord {
            sessions: Vec::new(),
            ..kept.clone()
        })));
    }

    pub fn missed(&self, target: &str, journey: &str, count: u64, at: SystemTime) {
        self.send(Message::Missed {
            target: target.to_string(),
            journey: journey.to_string(),
            count,
            at,
        });
    }

    pub fn freeze(&self, episode: &FreezeEpisode) {
        self.send(Message::Freeze(episode.clone()));
    }

    pub fn session(&self, span: &SessionSpan) {
        self.send(Message::Session(span.clone()));
    }

    /// A stall of the agent itself: from `started` it could not run for `length`.
    pub fn stall(&self, started: SystemTime, length: Duration) {
        self.send(Message::Stall { started, length });
    }

    /// Flushes what is queued and stops the writer. Blocks.
    pub fn close(self) {
        drop(self.sender);
        if self.writer.join().is_err() {
            tracing::error!("journal writer panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_goes_in_the_folder_beside_the_journal() {
        assert_eq!(
            folder_beside(Path::new("/var/lib/cw/casewatch-demo.db")),
            Path::new("/var/lib/cw/casewatch-demo-evidence")
        );
    }
}
