//! The agent: one task per journey on its timetable, one consumer that turns
//! records into metrics and status, and the web endpoints. Owns shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Journey};
use crate::metrics::{Metrics, MetricsError};
use crate::outcome::Record;
use crate::runner::{self, EnvLookup, RunnerError};
use crate::schedule::Timetable;
use crate::status::StatusBoard;
use crate::web::{self, BindError, WebState};

/// Records waiting for the consumer; a full queue makes journeys wait a
/// moment rather than lose a record.
const RECORD_QUEUE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error(transparent)]
    Bind(#[from] BindError),
}

pub struct AgentOptions {
    pub listen: SocketAddr,
    pub env: EnvLookup,
}

pub struct Agent {
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Mutex<StatusBoard>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Agent {
    pub async fn start(
        config: Arc<Config>,
        options: AgentOptions,
        shutdown: CancellationToken,
    ) -> Result<Agent, AgentError> {
        let metrics = Arc::new(Metrics::new(&config)?);
        let status = Arc::new(Mutex::new(StatusBoard::new(
            &config.site,
            config
                .journeys
                .iter()
                .map(|j| (j.name.clone(), j.target.name.clone())),
        )));
        let clients = runner::clients(&config.targets)?;
        let ready = Arc::new(AtomicBool::new(false));
        let state = WebState {
            metrics: metrics.clone(),
            status: status.clone(),
            ready: ready.clone(),
        };
        let (addr, web_task) = web::serve(options.listen, state, shutdown.clone()).await?;

        let (tx, rx) = mpsc::channel(RECORD_QUEUE);
        let mut tasks = vec![web_task];
        tasks.push(tokio::spawn(consume(rx, metrics.clone(), status.clone())));
        let sessions = Arc::new(Semaphore::new(config.max_sessions.max(1)));
        let run_ids = Arc::new(AtomicU64::new(1));
        let count = config.journeys.len().max(1) as u32;
        for (index, journey) in config.journeys.iter().enumerate() {
            let client = clients[&journey.target.name].clone();
            // Spread first runs over the shortest interval so journeys do not
            // start in lockstep.
            let offset =
                journey.schedule.interval.min(Duration::from_secs(2)) * index as u32 / count;
            tasks.push(tokio::spawn(journey_loop(JourneyTask {
                journey: journey.clone(),
                client,
                env: options.env.clone(),
                sessions: sessions.clone(),
                run_ids: run_ids.clone(),
                records: tx.clone(),
                shutdown: shutdown.clone(),
                offset,
            })));
        }
        ready.store(true, Ordering::Relaxed);
        tracing::info!(%addr, site = %config.site, journeys = config.journeys.len(), "agent started");
        Ok(Agent {
            addr,
            metrics,
            status,
            tasks,
        })
    }

    /// Waits for every task to stop (after the shutdown token fires).
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

struct JourneyTask {
    journey: Arc<Journey>,
    client: reqwest::Client,
    env: EnvLookup,
    sessions: Arc<Semaphore>,
    run_ids: Arc<AtomicU64>,
    records: mpsc::Sender<Record>,
    shutdown: CancellationToken,
    offset: Duration,
}

async fn journey_loop(task: JourneyTask) {
    let journey = &task.journey;
    let mut timetable = Timetable::new(&journey.schedule, Instant::now(), task.offset);
    loop {
        let slot = timetable.next_slot(Instant::now(), &mut rand::rng());
        if slot.missed > 0 {
            let record = Record::MissedSlots {
                target: journey.target.name.clone(),
                journey: journey.name.clone(),
                count: slot.missed,
            };
            if task.records.send(record).await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(slot.intended) => {}
            _ = task.shutdown.cancelled() => return,
        }
        if !journey.schedule.is_active_at(chrono::Local::now().time()) {
            continue;
        }
        let intended_start = SystemTime::now() - slot.intended.elapsed();
        let vars = match runner::credentials(&journey.target, &task.env) {
            Ok(vars) => vars,
            Err(e) => {
                tracing::error!(journey = %journey.name, error = %e, "cannot run journey");
                continue;
            }
        };
        let Ok(_permit) = task.sessions.acquire().await else {
            return;
        };
        let run_id = task.run_ids.fetch_add(1, Ordering::Relaxed);
        let run = tokio::select! {
            run = runner::run_journey(&task.client, journey, vars, intended_start, slot.intended, run_id) => run,
            _ = task.shutdown.cancelled() => return,
        };
        if task.records.send(Record::Run(run)).await.is_err() {
            return;
        }
    }
}

/// The one consumer of records: logs each notable run and updates metrics and
/// the status board together, so they never disagree.
async fn consume(
    mut rx: mpsc::Receiver<Record>,
    metrics: Arc<Metrics>,
    status: Arc<Mutex<StatusBoard>>,
) {
    while let Some(record) = rx.recv().await {
        log_record(&record);
        metrics.observe(&record);
        match status.lock() {
            Ok(mut board) => board.observe(&record),
            Err(poisoned) => poisoned.into_inner().observe(&record),
        }
    }
}

fn log_record(record: &Record) {
    match record {
        Record::Run(run) if run.outcome.is_success() => tracing::debug!(
            journey = %run.journey, outcome = %run.outcome,
            duration_s = run.duration.as_secs_f64(), "run finished"
        ),
        Record::Run(run) => {
            let detail = run
                .steps
                .iter()
                .find(|s| !s.outcome.is_success())
                .map(|s| s.detail.as_str())
                .unwrap_or("");
            tracing::warn!(
                journey = %run.journey, target = %run.target, outcome = %run.outcome,
                step = run.failed_step.as_deref().unwrap_or(""), detail, "run failed"
            )
        }
        Record::MissedSlots { journey, count, .. } => {
            tracing::warn!(journey = %journey, missed = count, "missed timetable slots")
        }
    }
}

/// Per-journey count of runs by outcome, for summaries.
pub fn summary(status: &StatusBoard) -> HashMap<String, Vec<(String, u64)>> {
    status
        .journeys
        .iter()
        .map(|(name, j)| {
            (
                name.clone(),
                j.runs
                    .iter()
                    .map(|(o, n)| (o.as_str().to_string(), *n))
                    .collect(),
            )
        })
        .collect()
}
