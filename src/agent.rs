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

use crate::config::JourneyKind;
use crate::config::{Config, Journey};
use crate::journal::{Journal, JournalError, JournalOptions};
use crate::metrics::{Metrics, MetricsError};
use crate::observe::Observer;
use crate::outcome::Record;
use crate::runner::keeper::{self, KeeperTask};
use crate::runner::{self, EnvLookup, Probes, RunContext, RunnerError};
use crate::schedule::Timetable;
use crate::status::StatusBoard;
use crate::web::{self, BindError, WebState};

/// How often freeze episodes are checked and live gauges refreshed.
const TICK: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

pub struct AgentOptions {
    pub listen: SocketAddr,
    pub env: EnvLookup,
    /// Overrides the config's journal path (and enables the journal).
    pub journal: Option<std::path::PathBuf>,
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
            config.age_bands.clone(),
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

        // Unbounded so a probe never waits on bookkeeping; the one consumer
        // does little per record and keeps up.
        let (tx, rx) = mpsc::unbounded_channel();
        let probes = Probes::new(tx);
        let journal_options = match (&options.journal, &config.journal) {
            (Some(path), Some(configured)) => Some(JournalOptions {
                path: path.clone(),
                ..configured.clone()
            }),
            (Some(path), None) => Some(JournalOptions {
                path: path.clone(),
                keep_successes: Duration::from_secs(90 * 86_400),
                keep_failures: Duration::from_secs(400 * 86_400),
            }),
            (None, configured) => configured.clone(),
        };
        let journal = journal_options
            .map(|o| Journal::open(o, &config, metrics.registry()))
            .transpose()?;
        let observer = Observer::new(
            metrics.clone(),
            status.clone(),
            config.targets.iter().map(|t| t.name.clone()).collect(),
            config
                .journeys
                .iter()
                .filter(|j| j.kind == JourneyKind::Report)
                .map(|j| j.name.clone())
                .collect(),
            journal,
        );
        let mut tasks = vec![web_task];
        let sessions = Arc::new(Semaphore::new(config.max_sessions.max(1)));
        let mut producers = Vec::new();
        for target in &config.targets {
            let client = clients[&target.name].clone();
            if target.heartbeat.is_some() {
                producers.push(tokio::spawn(keeper::heartbeat(
                    target.clone(),
                    client.clone(),
                    probes.clone(),
                    shutdown.clone(),
                )));
            }
            for slot in 0..target.keep_sessions.as_ref().map_or(0, |k| k.count) {
                producers.push(tokio::spawn(keeper::keep_session(KeeperTask {
                    target: target.clone(),
                    slot,
                    client: client.clone(),
                    env: options.env.clone(),
                    sessions: sessions.clone(),
                    probes: probes.clone(),
                    shutdown: shutdown.clone(),
                })));
            }
        }
        let run_ids = Arc::new(AtomicU64::new(1));
        let count = config.journeys.len().max(1) as u32;
        for (index, journey) in config.journeys.iter().enumerate() {
            let client = clients[&journey.target.name].clone();
            // Spread first runs over the shortest interval so journeys do not
            // start in lockstep.
            let offset =
                journey.schedule.interval.min(Duration::from_secs(2)) * index as u32 / count;
            producers.push(tokio::spawn(journey_loop(JourneyTask {
                journey: journey.clone(),
                client,
                env: options.env.clone(),
                sessions: sessions.clone(),
                run_ids: run_ids.clone(),
                probes: probes.clone(),
                shutdown: shutdown.clone(),
                offset,
            })));
        }
        // The consumer ends when every producer has dropped its sender.
        drop(probes);
        tasks.push(tokio::spawn(consume(rx, observer)));
        tasks.extend(producers);
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
    probes: Probes,
    shutdown: CancellationToken,
    offset: Duration,
}

async fn journey_loop(task: JourneyTask) {
    let journey = &task.journey;
    let mut timetable = Timetable::new(&journey.schedule, Instant::now(), task.offset);
    loop {
        let slot = timetable.next_slot(Instant::now(), &mut rand::rng());
        if slot.missed > 0 {
            task.probes.send(Record::MissedSlots {
                target: journey.target.name.clone(),
                journey: journey.name.clone(),
                count: slot.missed,
            });
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
        task.probes.send(Record::RunStarted {
            target: journey.target.name.clone(),
            journey: journey.name.clone(),
        });
        let ctx = RunContext {
            client: &task.client,
            probes: Some(&task.probes),
        };
        let run = tokio::select! {
            run = runner::run_journey(&ctx, journey, vars, intended_start, slot.intended, run_id) => run,
            _ = task.shutdown.cancelled() => return,
        };
        task.probes.send(Record::Run(run));
    }
}

/// Feeds every record to the observer, and ticks it so freezes are seen
/// while they happen, not only when a request returns.
async fn consume(mut rx: mpsc::UnboundedReceiver<Record>, mut observer: Observer) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            record = rx.recv() => match record {
                Some(record) => observer.observe(record),
                None => break,
            },
            _ = ticks.tick() => observer.tick(Instant::now()),
        }
    }
    observer.finish(Instant::now());
    if let Some(journal) = observer.take_journal() {
        let _ = tokio::task::spawn_blocking(move || journal.close()).await;
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
