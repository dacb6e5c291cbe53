//! The durable journal: an embedded SQLite file holding every run and step,
//! freeze episodes, session lifetimes, change events and per-interval
//! HdrHistograms, written off the probing path by one writer thread.
//!
//! (Interface in place; the writer is being built.)

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::outcome::{RunRecord, SessionSpan};
use crate::status::FreezeEpisode;

#[derive(Clone, Debug)]
pub struct JournalOptions {
    pub path: PathBuf,
    /// How long successful runs are kept.
    pub keep_successes: Duration,
    /// How long failed runs, freezes and forced logouts are kept.
    pub keep_failures: Duration,
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
}

pub struct Journal {
    _options: JournalOptions,
}

impl Journal {
    pub fn open(
        options: JournalOptions,
        _config: &Config,
        _registry: &prometheus::Registry,
    ) -> Result<Journal, JournalError> {
        Ok(Journal { _options: options })
    }

    pub fn run(&self, _run: &RunRecord, _load: ReportLoad) {}

    pub fn missed(&self, _target: &str, _journey: &str, _count: u64, _at: SystemTime) {}

    pub fn freeze(&self, _episode: &FreezeEpisode) {}

    pub fn session(&self, _span: &SessionSpan) {}

    /// Flushes what is queued and stops the writer. Blocks.
    pub fn close(self) {}
}
