//! The writer thread: owns the connection, batches queued records into one
//! transaction every [`FLUSH_EVERY`] or [`BATCH_ROWS`] records, stores the
//! recorder's finished intervals, and applies retention at start and hourly.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{params, Connection, OpenFlags, Transaction};

use super::{schema, JournalError, JournalMetrics, JournalOptions, Message, ReportLoad};
use crate::config::Config;
use crate::outcome::{
    unix_secs, FreezeEpisode, KeptRecord, RunRecord, SessionEnd, SessionOrigin, SessionSpan,
    StepPhase, StepRecord,
};
use crate::recorder::{self, HistogramKey, IntervalHistogram, Recorder};

pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
pub const BATCH_ROWS: usize = 500;
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// How long after its end an interval waits for late steps before storage.
const HISTOGRAM_GRACE: Duration = Duration::from_secs(30);

/// Opens the file, migrates it and records the config's site, age bands and
/// change events (upserted, so an edited change is updated).
pub fn open(options: &JournalOptions, config: &Config) -> Result<Connection, JournalError> {
    let path = options.path.display().to_string();
    let sqlite = |source| JournalError::Sqlite {
        path: path.clone(),
        source,
    };
    let mut conn = Connection::open_with_flags(
        &options.path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    schema::configure(&conn).map_err(sqlite)?;
    schema::migrate(&mut conn).map_err(|source| JournalError::Schema {
        path: path.clone(),
        source,
    })?;
    let edges: Vec<f64> = config
        .age_bands
        .edges()
        .iter()
        .map(|d| d.as_secs_f64())
        .collect();
    let tx = conn.transaction().map_err(sqlite)?;
    {
        let mut meta = tx
            .prepare("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .map_err(sqlite)?;
        for (key, value) in [
            ("site", config.site.clone()),
            (
                "age_band_edges_seconds",
                serde_json::to_string(&edges).unwrap_or_else(|_| "[]".into()),
            ),
            (
                "histogram_interval_seconds",
                super::HISTOGRAM_INTERVAL.as_secs().to_string(),
            ),
            ("config_origin", config.origin.clone()),
            ("calendar_scale", config.calendar_scale.to_string()),
            (
                "practitioners",
                serde_json::to_string(&config.practitioners).unwrap_or_else(|_| "{}".into()),
            ),
            ("writer_version", env!("CARGO_PKG_VERSION").to_string()),
        ] {
            meta.execute(params![key, value]).map_err(sqlite)?;
        }
        let mut change = tx
            .prepare("INSERT INTO changes (name, at, description) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET at = excluded.at, description = excluded.description")
            .map_err(sqlite)?;
        for c in &config.changes {
            change
                .execute(params![c.name, unix_secs(c.at), c.description])
                .map_err(sqlite)?;
        }
    }
    tx.commit().map_err(sqlite)?;
    Ok(conn)
}

pub(super) struct Writer {
    conn: Connection,
    options: JournalOptions,
    site: String,
    metrics: JournalMetrics,
    recorder: Recorder,
    pending: Vec<Message>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        options: JournalOptions,
        site: String,
        metrics: JournalMetrics,
    ) -> Writer {
        Writer {
            conn,
            options,
            site,
            metrics,
            recorder: Recorder::new(super::HISTOGRAM_INTERVAL, HISTOGRAM_GRACE),
            pending: Vec::new(),
        }
    }

    pub(super) fn run(mut self, receiver: Receiver<Message>) {
        self.retention();
        let mut last_retention = Instant::now();
        let mut last_flush = Instant::now();
        loop {
            let wait = FLUSH_EVERY.saturating_sub(last_flush.elapsed());
            match receiver.recv_timeout(wait) {
                Ok(message) => {
                    self.metrics.queue_depth.dec();
                    self.accept(message);
                    if self.pending.len() < BATCH_ROWS && last_flush.elapsed() < FLUSH_EVERY {
                        continue;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let finished = self.recorder.rotate(unix_secs(SystemTime::now()));
            self.flush(finished);
            last_flush = Instant::now();
            if last_retention.elapsed() >= RETENTION_EVERY {
                self.retention();
                last_retention = Instant::now();
            }
        }
        let finished = self.recorder.drain();
        self.flush(finished);
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::warn!(error = %e, "journal checkpoint failed");
        }
        tracing::info!(path = %self.options.path.display(), "journal closed");
    }

    /// Queues a record for the next transaction; steps also go to the recorder.
    fn accept(&mut self, message: Message) {
        if let Message::Run(run, _) = &message {
            // A step given up on has no response time, only a lower bound,
            // and one that overlapped a stall of the agent measured the
            // agent: both stay out of the percentiles (the steps table
            // keeps them).
            for step in run.steps.iter().filter(|s| !s.censored && !s.agent_stalled) {
                self.recorder.record(
                    HistogramKey {
                        target: step.target.clone(),
                        journey: step.journey.clone(),
                        step: step.step.clone(),
                    },
                    unix_secs(step.sent_at),
                    step.duration,
                );
            }
        }
        self.pending.push(message);
    }

    fn flush(&mut self, histograms: Vec<IntervalHistogram>) {
        if self.pending.is_empty() && histograms.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let rows = pending.len() + histograms.len();
        let result = self.conn.transaction().and_then(|tx| {
            for message in &pending {
                insert(&tx, &self.site, message)?;
            }
            for h in &histograms {
                insert_histogram(&tx, &self.site, h)?;
            }
            tx.commit()
        });
        if let Err(error) = result {
            self.metrics.write_failed(&error);
            tracing::error!(%error, rows, path = %self.options.path.display(), "journal write failed; records lost");
        }
    }

    /// Deletes what is older than `keep_failures`: rows and the rollups of
    /// compacted hours alike. Successful runs are not deleted before that:
    /// the agent folds their hours into rollups after `keep_successes`
    /// (see `crate::ledger::rollup`), so the board's evidence survives.
    fn retention(&mut self) {
        let now = unix_secs(SystemTime::now());
        let failures = now - self.options.keep_failures.as_secs_f64();
        let result = self.conn.transaction().and_then(|tx| {
            let mut removed = 0;
            removed += tx.execute(
                "DELETE FROM steps WHERE run_id IN (SELECT id FROM runs WHERE intended_start < ?1)",
                [failures],
            )?;
            for sql in [
                "DELETE FROM runs WHERE intended_start < ?1",
                "DELETE FROM session_spans WHERE login_at + age_to < ?1",
                "DELETE FROM kept_checks WHERE sent_at < ?1",
                "DELETE FROM freezes WHERE started < ?1",
                "DELETE FROM missed_slots WHERE at < ?1",
                "DELETE FROM agent_stalls WHERE started < ?1",
                "DELETE FROM histograms WHERE interval_start < ?1",
                "DELETE FROM rollups WHERE hour_start < ?1",
            ] {
                removed += tx.execute(sql, [failures])?;
            }
            tx.commit()?;
            Ok(removed)
        });
        match result {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "journal retention applied"),
            Err(error) => {
                self.metrics.write_failed(&error);
                tracing::error!(%error, "journal retention failed");
            }
        }
    }
}

fn phase_str(phase: StepPhase) -> &'static str {
    match phase {
        StepPhase::Login => "login",
        StepPhase::Journey => "journey",
        StepPhase::Logout => "logout",
    }
}

fn insert(tx: &Transaction<'_>, site: &str, message: &Message) -> rusqlite::Result<()> {
    match message {
        Message::Run(run, load) => insert_run(tx, site, run, load),
        Message::Kept(kept) => insert_kept(tx, site, kept),
        Message::Missed {
            target,
            journey,
            count,
            at,
        } => insert_missed(tx, site, target, journey, *count, *at),
        Message::Freeze(episode) => insert_freeze(tx, site, episode),
        Message::Stall { started, length } => insert_stall(tx, site, *started, *length),
        Message::Session(span) => insert_session(tx, site, span),
    }
}

/// A run, then its steps under the run's row id.
fn insert_run(
    tx: &Transaction<'_>,
    site: &str,
    run: &RunRecord,
    load: &ReportLoad,
) -> rusqlite::Result<()> {
    let kind = run.kind.as_str();
    tx.prepare_cached(
        "INSERT INTO runs (site, target, journey, kind, intended_start, actual_start, duration, outcome, failed_step, report_same, report_any, agent_stalled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        site,
        run.target,
        run.journey,
        kind,
        unix_secs(run.intended_start),
        unix_secs(run.actual_start),
        run.duration.as_secs_f64(),
        run.outcome.as_str(),
        run.failed_step,
        load.same_target,
        load.any_target,
        run.agent_stalled,
    ])?;
    let run_id = tx.last_insert_rowid();
    insert_steps(tx, run_id, &run.steps)
}

fn insert_steps(tx: &Transaction<'_>, run_id: i64, steps: &[StepRecord]) -> rusqlite::Result<()> {
    let mut step_insert = tx.prepare_cached(
        "INSERT INTO steps (run_id, seq, step, phase, sent_at, ttfb, duration, outcome, status, bytes, censored, logout_cause, session_age, kind, dns, connect, tls, first_byte, transfer, freeze_side, server_wait, main_thread_blocked, evidence, agent_stalled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
    )?;
    for (seq, step) in steps.iter().enumerate() {
        step_insert.execute(params![
            run_id,
            seq as i64,
            step.step,
            phase_str(step.phase),
            unix_secs(step.sent_at),
            step.ttfb.map(|d| d.as_secs_f64()),
            step.duration.as_secs_f64(),
            step.outcome.as_str(),
            step.status,
            step.bytes as i64,
            step.censored,
            step.logout_cause.map(|c| c.as_str()),
            step.session_age.map(|d| d.as_secs_f64()),
            step.kind.as_str(),
            step.phases.dns.map(|d| d.as_secs_f64()),
            step.phases.connect.map(|d| d.as_secs_f64()),
            step.phases.tls.map(|d| d.as_secs_f64()),
            step.phases.first_byte.map(|d| d.as_secs_f64()),
            step.phases.transfer.map(|d| d.as_secs_f64()),
            step.freeze_side()
                .filter(|_| step.browser.is_some())
                .map(|s| s.as_str()),
            step.browser.as_ref().map(|b| b.server_wait.as_secs_f64()),
            step.browser
                .as_ref()
                .map(|b| b.main_thread_blocked.as_secs_f64()),
            step.browser.as_ref().and_then(|b| b.evidence.as_deref()),
            step.agent_stalled,
        ])?;
    }
    Ok(())
}

fn insert_kept(tx: &Transaction<'_>, site: &str, kept: &KeptRecord) -> rusqlite::Result<()> {
    let mut check = tx.prepare_cached(
        "INSERT INTO kept_checks (site, target, slot, activity, seq, step, sent_at, duration, outcome, status, censored, logout_cause, session_age, state, agent_stalled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    for (seq, step) in kept.steps.iter().enumerate() {
        check.execute(params![
            site,
            kept.target,
            kept.slot as i64,
            kept.activity.as_str(),
            seq as i64,
            step.step,
            unix_secs(step.sent_at),
            step.duration.as_secs_f64(),
            step.outcome.as_str(),
            step.status,
            step.censored,
            step.logout_cause.map(|c| c.as_str()),
            step.session_age.map(|d| d.as_secs_f64()),
            kept.state.as_str(),
            step.agent_stalled,
        ])?;
    }
    Ok(())
}

fn insert_missed(
    tx: &Transaction<'_>,
    site: &str,
    target: &str,
    journey: &str,
    count: u64,
    at: SystemTime,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO missed_slots (site, target, journey, at, count) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![site, target, journey, unix_secs(at), count as i64])?;
    Ok(())
}

fn insert_freeze(
    tx: &Transaction<'_>,
    site: &str,
    episode: &FreezeEpisode,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO freezes (site, target, started, length, censored, agent_stall) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        site,
        episode.target,
        unix_secs(episode.started),
        episode.length.as_secs_f64(),
        episode.censored,
        episode.agent_stalled.as_secs_f64(),
    ])?;
    Ok(())
}

fn insert_stall(
    tx: &Transaction<'_>,
    site: &str,
    started: SystemTime,
    length: Duration,
) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO agent_stalls (site, started, length) VALUES (?1, ?2, ?3)")?
        .execute(params![site, unix_secs(started), length.as_secs_f64()])?;
    Ok(())
}

fn insert_session(tx: &Transaction<'_>, site: &str, span: &SessionSpan) -> rusqlite::Result<()> {
    let (origin, slot) = match &span.origin {
        SessionOrigin::Journey { journey } => (journey.as_str(), None),
        SessionOrigin::Kept { slot } => ("", Some(*slot as i64)),
    };
    tx.prepare_cached(
        "INSERT INTO session_spans (site, target, origin, login_at, age_from, age_to, end_cause, dropped, origin_kind, slot, seen_age, detail, seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        site,
        span.target,
        origin,
        unix_secs(span.login_at),
        span.age_from.as_secs_f64(),
        span.age_to.as_secs_f64(),
        span.end.map(SessionEnd::as_str),
        span.end.is_some_and(SessionEnd::is_drop),
        span.origin.kind_str(),
        slot,
        span.seen_age.map(|d| d.as_secs_f64()),
        span.detail,
        span.seen_at.map(unix_secs),
    ])?;
    Ok(())
}

fn insert_histogram(
    tx: &Transaction<'_>,
    site: &str,
    h: &IntervalHistogram,
) -> rusqlite::Result<()> {
    let bytes = match recorder::encode(&h.histogram) {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!(%error, "histogram not stored");
            return Ok(());
        }
    };
    tx.prepare_cached(
        "INSERT INTO histograms (site, target, journey, step, interval_start, interval_secs, count, hdr_v2_deflate)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        site,
        h.key.target,
        h.key.journey,
        h.key.step,
        h.start as f64,
        h.length as f64,
        h.histogram.len() as i64,
        bytes
    ])?;
    Ok(())
}
