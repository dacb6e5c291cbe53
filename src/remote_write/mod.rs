//! Pushing the agent's own metrics to central stores with Prometheus
//! remote_write 1.0, through a durable on-disk queue.
//!
//! Per configured store, three parts that never wait on each other's I/O:
//!
//! - a **collector** task ticks every `push_interval` and asks the queue
//!   thread for a push stamped with the tick's own time, so consecutive
//!   samples of a series are exactly one interval apart;
//! - the **queue thread** owns the SQLite connection ([`queue`]): it gathers
//!   the registry, encodes the request ([`wire`]) and stores it, so neither a
//!   probe nor the journal writer ever waits on this disk;
//! - a **sender** task sends the oldest stored push ([`sender`]), removes it
//!   once the store has answered for good, and backs off while it cannot.
//!
//! At shutdown the collector waits until every record has been observed and
//! every queued push has been answered (so the last push's sent count is
//! final), takes one last push, and the sender keeps sending until the queue is
//! empty or the agent's stop deadline passes; what is left stays on disk and
//! goes first at the next start.

pub mod queue;
pub mod sender;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prometheus::{
    Gauge, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::config::remote_write::RemoteWrite;
use crate::config::secret::EnvLookup;
use queue::{Backlog, Push, Queue, QueueError};
use sender::{ClientError, Sender, Sent};

#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot set up remote_write metrics")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot start the remote_write queue thread")]
    Thread(#[source] std::io::Error),
}

/// The queue's metric families, one series per store (`remote` label).
struct Families {
    pending: IntGaugeVec,
    oldest_age: GaugeVec,
    sent: IntCounterVec,
    failed: IntCounterVec,
    dropped: IntCounterVec,
    bytes: IntCounterVec,
    requests: IntCounterVec,
    errors: IntCounterVec,
    resets: IntCounterVec,
}

impl Families {
    fn register(registry: &Registry) -> Result<Families, prometheus::Error> {
        let families = Families {
            pending: IntGaugeVec::new(
                Opts::new("casewatch_remote_write_samples_pending", "Samples stored in the remote_write queue and not yet accepted by the store."),
                &["remote"],
            )?,
            oldest_age: GaugeVec::new(
                Opts::new("casewatch_remote_write_oldest_pending_age_seconds", "Age of the oldest sample still waiting to be sent; 0 when the queue is empty."),
                &["remote"],
            )?,
            sent: IntCounterVec::new(
                Opts::new("casewatch_remote_write_samples_sent_total", "Samples the store accepted."),
                &["remote"],
            )?,
            failed: IntCounterVec::new(
                Opts::new("casewatch_remote_write_samples_failed_total", "Samples the store refused for good (an HTTP 4xx other than 429); they are not retried."),
                &["remote"],
            )?,
            dropped: IntCounterVec::new(
                Opts::new("casewatch_remote_write_samples_dropped_total", "Samples deleted unsent, oldest first, because the queue reached queue.max_samples."),
                &["remote"],
            )?,
            bytes: IntCounterVec::new(
                Opts::new("casewatch_remote_write_sent_bytes_total", "Request bytes (snappy-compressed protobuf) the store accepted."),
                &["remote"],
            )?,
            requests: IntCounterVec::new(
                Opts::new("casewatch_remote_write_requests_total", "Requests sent to the store, by result: accepted, retried (5xx, 429 or no answer) or refused."),
                &["remote", "result"],
            )?,
            errors: IntCounterVec::new(
                Opts::new("casewatch_remote_write_queue_errors_total", "Errors reading or writing the queue file."),
                &["remote"],
            )?,
            resets: IntCounterVec::new(
                Opts::new("casewatch_remote_write_queue_resets_total", "Times the queue's file was started again, by reason: set_aside (it was not a queue: renamed NAME.corrupt-UNIXTIME), missing (deleted or replaced while in use), in_memory (no file could be used), back_on_disk (one could again)."),
                &["remote", "reason"],
            )?,
        };
        registry.register(Box::new(families.pending.clone()))?;
        registry.register(Box::new(families.oldest_age.clone()))?;
        registry.register(Box::new(families.sent.clone()))?;
        registry.register(Box::new(families.failed.clone()))?;
        registry.register(Box::new(families.dropped.clone()))?;
        registry.register(Box::new(families.bytes.clone()))?;
        registry.register(Box::new(families.requests.clone()))?;
        registry.register(Box::new(families.errors.clone()))?;
        registry.register(Box::new(families.resets.clone()))?;
        Ok(families)
    }

    fn for_remote(&self, remote: &str) -> QueueMetrics {
        let r = [remote];
        let requests = |result: &str| self.requests.with_label_values(&[remote, result]);
        QueueMetrics {
            pending: self.pending.with_label_values(&r),
            oldest_age: self.oldest_age.with_label_values(&r),
            sent: self.sent.with_label_values(&r),
            failed: self.failed.with_label_values(&r),
            dropped: self.dropped.with_label_values(&r),
            bytes: self.bytes.with_label_values(&r),
            accepted: requests("accepted"),
            retried: requests("retried"),
            refused: requests("refused"),
            errors: self.errors.with_label_values(&r),
            resets: queue::Reset::REASONS
                .iter()
                .map(|reason| (*reason, self.resets.with_label_values(&[remote, reason])))
                .collect(),
        }
    }
}

/// One store's series, resolved once.
#[derive(Clone)]
struct QueueMetrics {
    pending: IntGauge,
    oldest_age: Gauge,
    sent: IntCounter,
    failed: IntCounter,
    dropped: IntCounter,
    bytes: IntCounter,
    accepted: IntCounter,
    retried: IntCounter,
    refused: IntCounter,
    errors: IntCounter,
    resets: Vec<(&'static str, IntCounter)>,
}

impl QueueMetrics {
    /// Counts and logs what happened to the queue's file.
    fn reset(&self, remote: &str, path: &std::path::Path, reset: &queue::Reset) {
        if let Some((_, counter)) = self.resets.iter().find(|(r, _)| *r == reset.reason()) {
            counter.inc();
        }
        let file = path.display();
        match reset {
            queue::Reset::SetAside { aside, why } => tracing::error!(
                remote, queue = %file, aside = %aside.display(), reason = %why,
                "the remote_write queue file is not a queue: it is set aside and a fresh one started; probing goes on"
            ),
            queue::Reset::Missing { carried } => tracing::warn!(
                remote, queue = %file, carried,
                "the remote_write queue file was deleted or replaced while in use: a new one is started with the pushes still pending"
            ),
            queue::Reset::InMemory { why } => tracing::error!(
                remote, queue = %file, reason = %why,
                "cannot keep the remote_write queue in its file: it is kept in memory (lost if the agent stops) until the file can be made; probing goes on"
            ),
            queue::Reset::BackOnDisk { carried } => tracing::info!(
                remote, queue = %file, carried,
                "the remote_write queue is back in its file"
            ),
        }
    }

    fn backlog(&self, backlog: Backlog) {
        self.pending.set(backlog.samples as i64);
        let age = backlog
            .oldest_ms
            .map(|oldest| (now_ms() - oldest).max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        self.oldest_age.set(age);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Work for the queue thread.
enum QueueCommand {
    /// Gather the registry and store it as one push stamped `at_ms`.
    Collect {
        at_ms: i64,
        done: Option<oneshot::Sender<()>>,
    },
    Peek(oneshot::Sender<Result<Option<Push>, QueueError>>),
    /// The store answered for good; `accepted` says how.
    Remove {
        id: i64,
        accepted: bool,
        bytes: usize,
    },
}

/// All configured stores, started; [`RemoteWriters::finish`] at shutdown.
pub struct RemoteWriters {
    writers: Vec<(JoinHandle<()>, oneshot::Sender<()>)>,
}

/// Every configured store's queue and client, opened but not yet running.
pub struct Opened {
    stores: Vec<(RemoteWrite, QueueMetrics, Queue, Sender)>,
    registry: Registry,
}

impl RemoteWriters {
    /// Opens every queue file and builds every client, starting nothing: an
    /// unreadable CA file refuses the start before any probe runs; a queue file
    /// that cannot be used never does (see [`queue`]).
    pub fn open(
        configs: &[RemoteWrite],
        registry: &Registry,
        env: &EnvLookup,
    ) -> Result<Opened, RemoteWriteError> {
        let mut stores = Vec::new();
        if !configs.is_empty() {
            let families = Families::register(registry)?;
            for config in configs {
                let metrics = families.for_remote(&config.name);
                // Nothing about the file stops the agent: see [`queue`].
                let (queue, reset) = Queue::open_or_recover(&config.queue_path, config.max_samples);
                if let Some(reset) = &reset {
                    metrics.reset(&config.name, &config.queue_path, reset);
                }
                metrics.backlog(queue.backlog());
                let sender = Sender::new(config, env.clone())?;
                stores.push((config.clone(), metrics, queue, sender));
            }
        }
        Ok(Opened {
            stores,
            registry: registry.clone(),
        })
    }

    /// After shutdown, once every record has been observed: takes the last
    /// push and sends what can be sent before the stop deadline.
    pub async fn finish(self) {
        let mut tasks = Vec::new();
        for (task, observed) in self.writers {
            let _ = observed.send(());
            tasks.push(task);
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Opened {
    /// Starts each store's queue thread and tasks. `stop_deadline` counts
    /// from the moment `shutdown` is cancelled.
    pub fn start(
        self,
        site: &str,
        shutdown: &CancellationToken,
        stop_deadline: Duration,
    ) -> Result<RemoteWriters, RemoteWriteError> {
        let mut writers = Vec::new();
        for (config, metrics, queue, sender) in self.stores {
            let identity = wire::Identity {
                job: config.job.clone(),
                instance: config.instance.clone(),
            };
            let (commands, rx) = mpsc::channel(16);
            let signals = Arc::new(QueueSignals::default());
            let thread_metrics = metrics.clone();
            let thread_registry = self.registry.clone();
            let thread_signals = signals.clone();
            let name = config.name.clone();
            std::thread::Builder::new()
                .name(format!("remote-write-{}", config.name))
                .spawn(move || {
                    queue_thread(
                        queue,
                        rx,
                        thread_registry,
                        identity,
                        thread_metrics,
                        &thread_signals,
                        &name,
                    )
                })
                .map_err(RemoteWriteError::Thread)?;
            let (observed, observed_rx) = oneshot::channel();
            let task = tokio::spawn(run(Run {
                name: config.name.clone(),
                interval: config.push_interval,
                commands,
                signals,
                sender,
                metrics,
                shutdown: shutdown.clone(),
                stop_deadline,
                observed: observed_rx,
            }));
            // The host only: a URL may carry a token in its query.
            tracing::info!(
                remote = %config.name,
                host = config.url.host_str().unwrap_or(""),
                queue = %config.queue_path.display(),
                site,
                "remote_write started"
            );
            writers.push((task, observed));
        }
        Ok(RemoteWriters { writers })
    }
}

fn queue_thread(
    mut queue: Queue,
    mut commands: mpsc::Receiver<QueueCommand>,
    registry: Registry,
    identity: wire::Identity,
    metrics: QueueMetrics,
    signals: &QueueSignals,
    name: &str,
) {
    let path = queue.path().to_path_buf();
    // A failed read or write of a corrupt file sets it aside; the samples
    // it held are counted as dropped.
    let recover = |queue: &mut Queue, error: &QueueError| {
        if let Some((reset, lost)) = queue.recover(error) {
            metrics.dropped.inc_by(lost.samples);
            metrics.reset(name, &path, &reset);
        }
    };
    while let Some(command) = commands.blocking_recv() {
        match command {
            QueueCommand::Collect { at_ms, done } => {
                if let Some(reset) = queue.check() {
                    metrics.reset(name, &path, &reset);
                }
                let request = wire::write_request(&registry.gather(), &identity, at_ms);
                let samples = wire::sample_count(&request) as u64;
                let stored = wire::encode(&request)
                    .map_err(|e| crate::error_chain(&e))
                    .and_then(|body| {
                        queue.push(at_ms, samples, &body).map_err(|e| {
                            recover(&mut queue, &e);
                            crate::error_chain(&e)
                        })
                    });
                match stored {
                    Ok(dropped) => {
                        if dropped > 0 {
                            metrics.dropped.inc_by(dropped);
                            tracing::warn!(
                                remote = name,
                                dropped,
                                "remote_write queue full: oldest samples dropped"
                            );
                        }
                        signals.fresh.notify_one();
                    }
                    Err(error) => {
                        metrics.errors.inc();
                        tracing::error!(remote = name, %error, "cannot store a remote_write push");
                    }
                }
                metrics.backlog(queue.backlog());
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            QueueCommand::Peek(reply) => {
                let peeked = queue.peek();
                if let Err(error) = &peeked {
                    recover(&mut queue, error);
                }
                let _ = reply.send(peeked);
            }
            QueueCommand::Remove {
                id,
                accepted,
                bytes,
            } => {
                match queue.remove(id) {
                    Ok(samples) if accepted => {
                        metrics.sent.inc_by(samples);
                        metrics.bytes.inc_by(bytes as u64);
                    }
                    Ok(samples) => metrics.failed.inc_by(samples),
                    Err(error) => {
                        metrics.errors.inc();
                        tracing::error!(remote = name, error = %crate::error_chain(&error), "cannot remove a sent push from the remote_write queue");
                        recover(&mut queue, &error);
                    }
                }
                metrics.backlog(queue.backlog());
                if queue.backlog().pushes == 0 {
                    signals.emptied.notify_one();
                }
            }
        }
    }
}

/// What the queue thread tells the tasks without being asked.
#[derive(Default)]
struct QueueSignals {
    /// A push was stored.
    fresh: Notify,
    /// An answered push was removed and none is left.
    emptied: Notify,
}

struct Run {
    name: String,
    interval: Duration,
    commands: mpsc::Sender<QueueCommand>,
    signals: Arc<QueueSignals>,
    sender: Sender,
    metrics: QueueMetrics,
    shutdown: CancellationToken,
    stop_deadline: Duration,
    observed: oneshot::Receiver<()>,
}

/// The collector until shutdown, the sender beside it; then the last push
/// and the flush, within the deadline.
async fn run(run: Run) {
    // `drain`: send until the queue is empty, then stop; `abort`: stop now.
    let drain = CancellationToken::new();
    let abort = CancellationToken::new();
    let sending = tokio::spawn(send_loop(
        run.name.clone(),
        run.commands.clone(),
        run.signals.clone(),
        run.sender,
        run.metrics.clone(),
        drain.clone(),
        abort.clone(),
    ));

    let mut clock = PushClock::new();
    let mut ticks = tokio::time::interval_at(clock.anchor, run.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            tick = ticks.tick() => {
                let at_ms = clock.stamp(tick);
                // Never waits: a slow disk delays the push, not the next tick.
                let command = QueueCommand::Collect { at_ms, done: None };
                if run.commands.try_send(command).is_err() {
                    run.metrics.errors.inc();
                    tracing::warn!(remote = %run.name, "the remote_write queue is behind; a push was skipped");
                }
            }
            _ = run.shutdown.cancelled() => break,
        }
    }
    let deadline = Instant::now() + run.stop_deadline;
    let abort_at_deadline = abort.clone();
    tokio::spawn(async move {
        tokio::time::sleep_until(deadline).await;
        abort_at_deadline.cancel();
    });
    // The last push carries the final counts: wait until the observer has
    // seen every record and the store has answered every push already
    // queued (or the deadline), then take it. A push still in flight when
    // the last one is taken would be sent but missing from its sent count.
    tokio::select! {
        _ = run.observed => {}
        _ = tokio::time::sleep_until(deadline) => {}
    }
    until_empty(&run.commands, &run.signals.emptied, deadline).await;
    let at_ms = clock
        .last_ms
        .map_or_else(now_ms, |last| now_ms().max(last + 1));
    collect(&run.commands, at_ms).await;
    drain.cancel();
    let _ = sending.await;
    drop(run.commands);
}

/// Returns once the queue holds no push (every one answered), the queue
/// cannot be read, or the deadline passes.
async fn until_empty(commands: &mpsc::Sender<QueueCommand>, emptied: &Notify, deadline: Instant) {
    loop {
        let (reply, answer) = oneshot::channel();
        if commands.send(QueueCommand::Peek(reply)).await.is_err() {
            return;
        }
        match answer.await {
            Ok(Ok(Some(_))) => {}
            _ => return,
        }
        // `notify_one` keeps its permit when nobody waits, so an emptying
        // between the peek and this wait is not missed; a stale permit only
        // costs one more peek.
        tokio::select! {
            _ = emptied.notified() => {}
            _ = tokio::time::sleep_until(deadline) => return,
        }
    }
}

async fn collect(commands: &mpsc::Sender<QueueCommand>, at_ms: i64) {
    let (done, finished) = oneshot::channel();
    if commands
        .send(QueueCommand::Collect {
            at_ms,
            done: Some(done),
        })
        .await
        .is_ok()
    {
        let _ = finished.await;
    }
}

/// Sample timestamps on the push grid: the wall-clock time of the start plus
/// whole intervals, so samples are exactly one interval apart. Re-anchored
/// if the wall clock is stepped by more than a second.
struct PushClock {
    anchor: Instant,
    anchor_ms: i64,
    last_ms: Option<i64>,
}

impl PushClock {
    fn new() -> PushClock {
        PushClock {
            anchor: Instant::now(),
            anchor_ms: now_ms(),
            last_ms: None,
        }
    }

    fn stamp(&mut self, tick: Instant) -> i64 {
        let mut at =
            self.anchor_ms + tick.saturating_duration_since(self.anchor).as_millis() as i64;
        let wall = now_ms();
        if (at - wall).abs() > 1_000 {
            self.anchor = tick;
            self.anchor_ms = wall;
            at = wall;
        }
        // Never backwards: the store refuses out-of-order samples.
        if let Some(last) = self.last_ms {
            at = at.max(last + 1);
        }
        self.last_ms = Some(at);
        at
    }
}

async fn send_loop(
    name: String,
    commands: mpsc::Sender<QueueCommand>,
    signals: Arc<QueueSignals>,
    sender: Sender,
    metrics: QueueMetrics,
    drain: CancellationToken,
    abort: CancellationToken,
) {
    let mut failures: u32 = 0;
    let mut outage_since: Option<Instant> = None;
    // The trouble last logged: each change of trouble during an outage is
    // logged in its own words, repeats only at debug.
    let mut logged: Option<sender::Trouble> = None;
    loop {
        let (reply, answer) = oneshot::channel();
        if commands.send(QueueCommand::Peek(reply)).await.is_err() {
            return;
        }
        let push = match answer.await {
            Ok(Ok(Some(push))) => push,
            Ok(Ok(None)) => {
                if drain.is_cancelled() {
                    return;
                }
                tokio::select! {
                    _ = signals.fresh.notified() => continue,
                    _ = drain.cancelled() => continue,
                    _ = abort.cancelled() => return,
                }
            }
            Ok(Err(error)) => {
                metrics.errors.inc();
                tracing::error!(remote = %name, error = %crate::error_chain(&error), "cannot read the remote_write queue");
                failures = failures.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(sender::backoff(failures)) => continue,
                    _ = abort.cancelled() => return,
                }
            }
            Err(_) => return,
        };
        let bytes = push.body.len();
        let result = tokio::select! {
            result = sender.send(push.body) => result,
            _ = abort.cancelled() => return,
        };
        match &result {
            Sent::Accepted => metrics.accepted.inc(),
            Sent::Retry { .. } => metrics.retried.inc(),
            Sent::Refused { .. } => metrics.refused.inc(),
        }
        match result {
            Sent::Accepted | Sent::Refused { .. } => {
                let accepted = result == Sent::Accepted;
                if let Sent::Refused { status, why } = &result {
                    tracing::error!(remote = %name, status, samples = push.samples, reason = %why, "the store refused a push; it is dropped and counted as failed");
                }
                if let Some(since) = outage_since.take() {
                    tracing::info!(remote = %name, after_s = since.elapsed().as_secs_f64(), "the store answers again; sending the backlog in order");
                }
                logged = None;
                failures = 0;
                if commands
                    .send(QueueCommand::Remove {
                        id: push.id,
                        accepted,
                        bytes,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Sent::Retry { trouble, why } => {
                failures = failures.saturating_add(1);
                outage_since.get_or_insert_with(Instant::now);
                if logged != Some(trouble) {
                    logged = Some(trouble);
                    tracing::warn!(remote = %name, reason = %why, "{}", trouble.message());
                } else {
                    tracing::debug!(remote = %name, reason = %why, failures, "push retried");
                }
                tokio::select! {
                    _ = tokio::time::sleep(sender::backoff(failures)) => {}
                    _ = abort.cancelled() => return,
                }
            }
        }
    }
}
