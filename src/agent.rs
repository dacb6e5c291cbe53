//! The agent: wires config, runner, observer, metrics, journal, the stall
//! monitor and the web endpoints together, and owns reload and shutdown.
//!
//! Shutdown is signal, deadline, force: the caller cancels the token, journey
//! tasks finish the runs they have begun and kept sessions log out, all within
//! `stop_deadline`; whatever is still running then is aborted. The journal is
//! flushed last, after every record has been observed.
//!
//! A reload reads, parses and validates the file, fingerprints it and builds
//! its HTTP clients on the blocking pool: a config at the size cap takes a
//! noticeable time to load, and no probe or scrape may wait for it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::secret::EnvLookup;
use crate::config::{self, Config, JournalOptions};
use crate::config_gauges::ConfigGauges;
use crate::journal::{Journal, JournalError};
use crate::metrics::{Metrics, MetricsError};
use crate::observe::Observer;
use crate::outcome::{unix_secs, Record};
use crate::runner::{Probes, RunnerError};
use crate::stall::{StallError, StallMonitor};
use crate::status::history::HistoryCache;
use crate::status::StatusBoard;
use crate::supervisor::{self, Supervisor};
use crate::web::{self, BindError, ReloadError, ReloadRequest, WebState};

/// How often freeze episodes are checked and live gauges refreshed.
const TICK: Duration = Duration::from_millis(100);

/// The default time runs in flight get to finish at shutdown.
pub const DEFAULT_STOP_DEADLINE: Duration = Duration::from_secs(15);

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
    #[error(transparent)]
    RemoteWrite(#[from] crate::remote_write::RemoteWriteError),
    #[error(transparent)]
    Stall(#[from] StallError),
}

pub struct AgentOptions {
    pub listen: SocketAddr,
    pub env: EnvLookup,
    /// Overrides the config's journal path (and enables the journal).
    pub journal: Option<PathBuf>,
    /// The file to re-read on reload; `None` refuses reloads.
    pub config_path: Option<PathBuf>,
    pub stop_deadline: Duration,
    /// TLS and basic auth for the web endpoints.
    pub web_config: crate::webconfig::WebConfig,
    /// A listener already bound (by [`web::bind`]), served instead of
    /// binding `listen`.
    pub listener: Option<std::net::TcpListener>,
}

impl AgentOptions {
    pub fn new(listen: SocketAddr, env: EnvLookup) -> AgentOptions {
        AgentOptions {
            listen,
            env,
            journal: None,
            config_path: None,
            stop_deadline: DEFAULT_STOP_DEADLINE,
            web_config: Default::default(),
            listener: None,
        }
    }
}

/// Open files beside the web endpoints' connections: the journal and its
/// WAL, queue files, the log, Chromium's pipes and DevTools socket, the
/// runtime's own.
pub const DESCRIPTOR_RESERVE: u64 = 256;

/// The open files an agent running `config` may need at once: every web
/// connection the endpoints allow, two connections per session slot (a
/// session's own and a pooled spare), heartbeats, and the reserve.
pub fn descriptors_needed(config: &Config) -> u64 {
    web::MAX_CONNECTIONS as u64
        + 2 * config.max_sessions as u64
        + config.targets.len() as u64
        + DESCRIPTOR_RESERVE
}

/// Raises the soft open-file limit to the hard one (as Go's runtime does),
/// and says so when even that is below what `config` may need. Returns the
/// soft limit now in force.
#[cfg(unix)]
fn raise_descriptor_limit(config: &Config) -> Option<u64> {
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    // rlim_t is not 64 bits on every platform.
    #[allow(clippy::unnecessary_cast)]
    let soft = limit.rlim_cur as u64;
    let needed = descriptors_needed(config);
    if soft < needed {
        tracing::warn!(
            limit = soft,
            needed,
            "the open-file limit is below what this config may need ({} web connections, {} session slots): raise it (LimitNOFILE in the unit)",
            web::MAX_CONNECTIONS,
            config.max_sessions
        );
    }
    Some(soft)
}

#[cfg(not(unix))]
fn raise_descriptor_limit(_config: &Config) -> Option<u64> {
    None
}

pub struct Agent {
    pub addr: SocketAddr,
    /// `http://ADDR` or `https://ADDR`, as served.
    pub url: String,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Mutex<StatusBoard>>,
    reloads: mpsc::Sender<ReloadRequest>,
    control: JoinHandle<usize>,
    consumer: JoinHandle<()>,
    web: JoinHandle<()>,
    remote_writers: crate::remote_write::RemoteWriters,
    stalls: StallMonitor,
}

impl Agent {
    pub async fn start(
        config: Arc<Config>,
        mut options: AgentOptions,
        shutdown: CancellationToken,
    ) -> Result<Agent, AgentError> {
        // The port first: a busy one stops the start before the journal,
        // the evidence folder or a queue file is created.
        let listener = listener(&mut options)?;
        raise_descriptor_limit(&config);
        let metrics = Arc::new(Metrics::new(&config)?);
        // First, so the agent's stalls are measured from its start.
        let stalls = StallMonitor::start(metrics.registry())?;
        let config_gauges =
            ConfigGauges::register(metrics.registry(), &config).map_err(MetricsError::from)?;
        let status = Arc::new(Mutex::new(status_board(&config)));
        let (journal, journal_path) =
            start_journal(&config, &options, &metrics, &status, &shutdown)?;
        let remote_writers = crate::remote_write::RemoteWriters::open(
            &config.remote_write,
            metrics.registry(),
            &options.env,
        )?;
        let (tx, rx) = mpsc::unbounded_channel();
        // Unbounded so a probe never waits on bookkeeping; the one consumer
        // does little per record and keeps up.
        let probes = Probes::new(tx);
        let observer = Observer::new(
            metrics.clone(),
            status.clone(),
            config.targets.iter().map(|t| t.name.clone()).collect(),
            journal,
            stalls.watch(),
        );
        let supervisor = Supervisor::new(
            options.env.clone(),
            probes.clone(),
            config.max_sessions,
            shutdown.clone(),
        );
        let browsing = browsing(&config, &metrics, journal_path.as_deref());
        let browser_pool = browsing.pool.clone();
        let evidence_dir = browsing.evidence.as_ref().map(|e| e.dir().to_path_buf());
        let mut supervisor = supervisor.with_browser(browsing);
        supervisor.apply(&config)?;
        let remote_writers =
            remote_writers.start(&config.site, &shutdown, options.stop_deadline)?;

        let (reloads, reload_rx) = mpsc::channel(4);
        let state = web_state(&metrics, &status, &reloads, evidence_dir, journal_path);
        let scheme = scheme(&options.web_config);
        let (addr, web) =
            web::serve_on(listener, state, &options.web_config, shutdown.clone()).await?;
        let consumer = tokio::spawn(consume(rx, observer));
        let control = tokio::spawn(control_loop(Control {
            supervisor,
            config,
            config_path: options.config_path,
            metrics: metrics.clone(),
            config_gauges,
            status: status.clone(),
            probes,
            requests: reload_rx,
            shutdown,
            stop_deadline: options.stop_deadline,
            browser: browser_pool,
        }));
        tracing::info!(%addr, "agent started");
        Ok(Agent {
            addr,
            url: format!("{scheme}://{addr}"),
            metrics,
            status,
            reloads,
            control,
            consumer,
            web,
            remote_writers,
            stalls,
        })
    }

    /// Re-reads the config file (as SIGHUP and `POST /-/reload` do).
    pub async fn reload(&self) -> Result<String, ReloadError> {
        web::request_reload(&self.reloads).await
    }

    /// After the shutdown token is cancelled: waits for runs to finish (up to
    /// the stop deadline), then for every record to be observed and the
    /// journal flushed, then pushes the final counts to the central stores
    /// (within the same deadline; what cannot be sent stays queued on disk).
    pub async fn wait(self) {
        let aborted = self.control.await.unwrap_or(0);
        if aborted > 0 {
            tracing::warn!(
                aborted,
                "tasks still running at the stop deadline were aborted"
            );
        }
        let _ = self.consumer.await;
        self.remote_writers.finish().await;
        let _ = self.web.await;
        let stalls = self.stalls;
        let _ = tokio::task::spawn_blocking(move || stalls.stop()).await;
    }
}

/// The listener bound beforehand, or one bound to `listen` now.
fn listener(options: &mut AgentOptions) -> Result<std::net::TcpListener, BindError> {
    match options.listener.take() {
        Some(listener) => Ok(listener),
        None => web::bind(options.listen),
    }
}

/// What the web endpoints read and where they send reload requests.
fn web_state(
    metrics: &Arc<Metrics>,
    status: &Arc<Mutex<StatusBoard>>,
    reloads: &mpsc::Sender<ReloadRequest>,
    evidence: Option<PathBuf>,
    journal_path: Option<PathBuf>,
) -> WebState {
    WebState {
        metrics: metrics.clone(),
        status: status.clone(),
        ready: Arc::new(AtomicBool::new(true)),
        reloads: reloads.clone(),
        evidence,
        history: Arc::new(HistoryCache::new(journal_path)),
    }
}

/// The status page's board for `config`, before any run.
fn status_board(config: &Config) -> StatusBoard {
    let mut board = StatusBoard::new(
        &config.site,
        config.age_bands.clone(),
        journey_targets(config),
    );
    board.time_lost.practitioners = config.practitioners.clone();
    board.changes = config.changes.clone();
    board
}

/// Opens the journal, if there is one, shows its health on the board and
/// starts its hourly retention; returns it and its path.
fn start_journal(
    config: &Config,
    options: &AgentOptions,
    metrics: &Metrics,
    status: &Mutex<StatusBoard>,
    shutdown: &CancellationToken,
) -> Result<(Option<Journal>, Option<PathBuf>), AgentError> {
    let journal_options_now = journal_options(config, options);
    let journal_path = journal_options_now.as_ref().map(|o| o.path.clone());
    let journal = open_journal(config, options, metrics)?;
    if let Ok(mut board) = status.lock() {
        board.journal = journal.as_ref().map(Journal::health);
    }
    if let Some(o) = journal_options_now {
        tokio::spawn(compact_journal(o.path, o.keep_successes, shutdown.clone()));
    }
    Ok((journal, journal_path))
}

/// The browser pool and evidence store. Always there, started lazily: a
/// reload may add the first browser journey, and an agent without one
/// never starts Chromium.
fn browsing(
    config: &Config,
    metrics: &Metrics,
    journal_path: Option<&std::path::Path>,
) -> crate::browser::Browsing {
    crate::browser::Browsing {
        pool: crate::browser::BrowserPool::new(
            config.browser.clone(),
            metrics.browser.clone(),
            tokio::runtime::Handle::current(),
        ),
        evidence: journal_path.map(|path| {
            Arc::new(crate::browser::CaptureStore::new(
                crate::journal::folder_beside(path),
                &config.browser,
            ))
        }),
    }
}

/// `https` when the endpoints are served with TLS, else `http`.
fn scheme(web_config: &crate::webconfig::WebConfig) -> &'static str {
    if web_config.tls.is_some() {
        "https"
    } else {
        "http"
    }
}

fn journey_targets(config: &Config) -> Vec<(String, String)> {
    config
        .journeys
        .iter()
        .map(|j| (j.name.clone(), j.target.name.clone()))
        .collect()
}

/// The journal the agent writes, if any: the command line's path over the
/// config's.
fn journal_options(config: &Config, options: &AgentOptions) -> Option<JournalOptions> {
    match (&options.journal, &config.journal) {
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
    }
}

/// Folds the journal's hours older than `keep` into rollups, a few
/// minutes after start and then hourly, off the async workers: the file
/// stays small for years and the report reads those hours as before.
async fn compact_journal(path: PathBuf, keep: Duration, shutdown: CancellationToken) {
    let mut wait = Duration::from_secs(300);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
        wait = Duration::from_secs(3600);
        let path = path.clone();
        let result = tokio::task::spawn_blocking(move || {
            let now = crate::outcome::unix_secs(std::time::SystemTime::now());
            let before = now
                - keep
                    .as_secs_f64()
                    .max(crate::ledger::rollup::MIN_AGE_SECONDS);
            crate::ledger::rollup::compact(&path, before, now, false, |_, _| {})
        })
        .await;
        match result {
            Ok(Ok(done)) if done.hours > 0 => {
                tracing::info!(
                    hours = done.hours,
                    rows = done.rows,
                    "journal hours folded into rollups"
                )
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %crate::error_chain(&error), "journal compaction failed; it is tried again in an hour")
            }
            Err(error) => tracing::warn!(%error, "journal compaction stopped"),
        }
    }
}

fn open_journal(
    config: &Config,
    options: &AgentOptions,
    metrics: &Metrics,
) -> Result<Option<Journal>, JournalError> {
    journal_options(config, options)
        .map(|o| Journal::open(o, config, metrics.registry()))
        .transpose()
}

struct Control {
    supervisor: Supervisor,
    config: Arc<Config>,
    config_path: Option<PathBuf>,
    metrics: Arc<Metrics>,
    config_gauges: ConfigGauges,
    status: Arc<Mutex<StatusBoard>>,
    probes: Probes,
    requests: mpsc::Receiver<ReloadRequest>,
    shutdown: CancellationToken,
    stop_deadline: Duration,
    /// Stopped once the runs have drained, so no run loses its browser.
    browser: Arc<crate::browser::BrowserPool>,
}

/// Serves reload requests until shutdown, then drains the producers. Returns
/// how many tasks had to be aborted at the deadline.
async fn control_loop(mut control: Control) -> usize {
    loop {
        tokio::select! {
            request = control.requests.recv() => {
                let Some(reply) = request else { break };
                let shutdown = control.shutdown.clone();
                let result = tokio::select! {
                    result = control.reload() => result,
                    _ = shutdown.cancelled() => {
                        let _ = reply.send(Err(ReloadError::Stopping));
                        break;
                    }
                };
                match &result {
                    Ok(summary) => tracing::info!(%summary, "configuration reloaded"),
                    Err(why) => tracing::error!(error = %crate::error_chain(why), "configuration reload refused; the old one keeps running"),
                }
                let _ = reply.send(result);
            }
            _ = control.shutdown.cancelled() => break,
        }
    }
    // Dropping the last Probes (with the supervisor's tasks) ends the consumer.
    drop(control.probes);
    let aborted = control.supervisor.drain(control.stop_deadline).await;
    control.browser.close().await;
    aborted
}

/// A config read, checked and planned on the blocking pool.
struct Prepared {
    config: Config,
    plan: supervisor::Plan,
    warnings: Vec<config::Problem>,
}

/// Everything a reload does that grows with the config: reading, parsing,
/// validating, fingerprinting, building clients, registering series.
fn prepare(
    path: PathBuf,
    site: String,
    running: std::collections::HashMap<String, String>,
    metrics: Arc<Metrics>,
) -> Result<Prepared, ReloadError> {
    let loaded = config::load(&path)?;
    let config = loaded.config;
    if config.site != site {
        return Err(ReloadError::SiteChanged {
            from: site,
            to: config.site,
        });
    }
    let plan = supervisor::plan(&config, &running)?;
    metrics.prepare(&config);
    Ok(Prepared {
        config,
        plan,
        warnings: loaded.warnings,
    })
}

impl Control {
    async fn reload(&mut self) -> Result<String, ReloadError> {
        let result = self.try_reload().await;
        self.metrics
            .config_last_reload_successful
            .set(if result.is_ok() { 1.0 } else { 0.0 });
        if result.is_ok() {
            self.metrics
                .config_last_reload_timestamp
                .set(unix_secs(SystemTime::now()));
        }
        result
    }

    async fn try_reload(&mut self) -> Result<String, ReloadError> {
        let path = self.config_path.clone().ok_or(ReloadError::NoConfigFile)?;
        let site = self.config.site.clone();
        let running = self.supervisor.running();
        let metrics = self.metrics.clone();
        let prepared = tokio::task::spawn_blocking(move || prepare(path, site, running, metrics))
            .await
            .map_err(|_| ReloadError::Unexpected)??;
        for warning in &prepared.warnings {
            tracing::warn!("{warning}");
        }
        let config = prepared.config;
        if config.remote_write != self.config.remote_write {
            tracing::warn!("remote_write changes take effect when the agent is restarted");
        }
        let changes = self.supervisor.apply_plan(&config, prepared.plan);
        self.config_gauges.update(&config, SystemTime::now());
        let mut board = match self.status.lock() {
            Ok(board) => board,
            Err(poisoned) => poisoned.into_inner(),
        };
        board.add_journeys(journey_targets(&config));
        board.changes = config.changes.clone();
        drop(board);
        self.probes.send(Record::Reconfigured {
            targets: config.targets.iter().map(|t| t.name.clone()).collect(),
        });
        // A large config takes a while to free too (its compiled regexes):
        // not on the async workers either.
        let old = std::mem::replace(&mut self.config, Arc::new(config));
        tokio::task::spawn_blocking(move || drop(old));
        Ok(if changes.is_empty() {
            "no changes".to_string()
        } else {
            changes.join("; ")
        })
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
