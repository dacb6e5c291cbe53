//! The agent's one Chromium, and a fresh browser context for every run.
//!
//! The browser starts when the first browser run needs it, so an agent with
//! no browser journeys never starts one. Each run gets a [`Lease`]: a new
//! browser context (its own cookies, storage and cache, as a fresh private
//! window) with one tab, under a cap of `max_contexts` at once; when the
//! lease is dropped the context is disposed of. A browser that dies (it
//! crashed, or was killed) is started again by the next run; a browser that
//! cannot start is not tried again for [`RETRY_START_AFTER`], and its
//! reason is logged once, not at every run. Nothing the browser or a page
//! does can panic the agent: every failure is a [`BrowserError`], and the
//! run that met it records an `error` step.
//!
//! The process runs headless with a throwaway profile and the flags that
//! keep it from reaching out on its own (no background networking, updates
//! or sync). It dies with the agent however the agent ends: it runs in a
//! process group of its own that is killed whole, and on Linux with a
//! parent-death signal, so even `kill -9` of the agent takes it; profile
//! folders that killed agents left behind are swept when a pool is made
//! ([`sweep_stale_profiles`]). Its tasks run on the runtime given at creation, so a pool can
//! outlive the task that created it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::{Browser, Page};
use futures::StreamExt;
use tokio::io::AsyncBufReadExt;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::metrics::BrowserMetrics;
use crate::config::browser::BrowserSettings;

/// How long a browser that failed to start is left before trying again.
pub const RETRY_START_AFTER: Duration = Duration::from_secs(30);
/// How long opening a context and its tab may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long disposing of a context may take.
const DISPOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The browser's own limit on one command. Steps give up sooner on their
/// own; this only bounds what a stuck command can hold.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);
/// The window every page is drawn in.
pub const VIEWPORT: (u32, u32) = (1280, 900);

/// Names tried on `PATH` when `browser.executable` is not given.
pub const CANDIDATES: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// Flags for an unattended headless Chromium that stays quiet on the
/// network: only the pages the journeys open are fetched.
const FLAGS: [&str; 19] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-breakpad",
    "--disable-client-side-phishing-detection",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--mute-audio",
    "--hide-scrollbars",
];

#[derive(Debug, Clone, thiserror::Error)]
pub enum BrowserError {
    #[error("no Chromium found on PATH (tried {}): install Debian's `chromium` package or set browser.executable", CANDIDATES.join(", "))]
    NotFound,
    #[error("browser.executable {path} is not there: install Debian's `chromium` package or fix the path")]
    Missing { path: String },
    #[error("cannot start {path}: {why}")]
    Start { path: String, why: String },
    #[error("{path} did not open its debugging socket within {}", humantime::format_duration(*.timeout))]
    StartTimeout { path: String, timeout: Duration },
    #[error("cannot connect to the browser: {0}")]
    Connect(String),
    #[error("the browser did not open a context: {0}")]
    Open(String),
    #[error("the agent is stopping")]
    Closed,
}

/// A running Chromium.
struct Chromium {
    browser: Arc<Browser>,
    child: tokio::process::Child,
    /// Cleared when the connection to the browser ends.
    alive: Arc<AtomicBool>,
    handler: tokio::task::JoinHandle<()>,
    /// The throwaway profile, removed when the browser goes.
    _profile: tempfile::TempDir,
}

impl Chromium {
    fn is_alive(&mut self) -> bool {
        self.alive.load(Ordering::Relaxed) && matches!(self.child.try_wait(), Ok(None))
    }
}

impl Chromium {
    /// Kills the browser and every process of its group (its renderers,
    /// GPU and utility processes), so none outlives it.
    fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) on the browser's own process group, which
            // `dies_with_the_agent` made with the browser as its leader.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.start_kill();
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.handler.abort();
        self.kill();
    }
}

/// The prefix of the browser's throwaway profile folders.
pub const PROFILE_PREFIX: &str = "casewatch-chromium-";
/// In each profile folder: the process id of the agent that made it.
const OWNER_FILE: &str = "casewatch-owner";
/// A profile folder with no owner is left alone this long (an agent may be
/// between making it and writing its owner).
const UNOWNED_GRACE: Duration = Duration::from_secs(600);

/// Makes the browser die with the agent, however the agent ends: in its own
/// process group (which [`Chromium::kill`] kills whole), and on Linux with
/// a parent-death signal, so a `kill -9` of the agent takes the browser too.
fn dies_with_the_agent(command: &mut tokio::process::Command) {
    #[cfg(unix)]
    command.process_group(0);
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id();
        // SAFETY: between fork and exec only async-signal-safe calls are
        // made (prctl, getppid), and nothing is allocated.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The agent died before the signal was set: go now.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
}

/// Removes the browser profile folders in `dir` that no running agent owns:
/// those a killed agent left behind. Returns how many were removed.
pub fn sweep_stale_profiles(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(PROFILE_PREFIX) {
            continue;
        }
        let path = entry.path();
        // Only real folders, never what a link points at.
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let owner = std::fs::read_to_string(path.join(OWNER_FILE))
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok());
        // A Chromium still using the folder, whoever started it.
        let in_use = chromium_lock_pid(&path).is_some_and(process_alive);
        let stale = !in_use
            && match owner {
                Some(pid) => pid != std::process::id() && !process_alive(pid),
                None => std::fs::symlink_metadata(&path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|at| at.elapsed().is_ok_and(|age| age > UNOWNED_GRACE)),
            };
        if stale && std::fs::remove_dir_all(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The process holding a Chromium profile: its `SingletonLock` is a
/// symbolic link to `HOSTNAME-PID`.
fn chromium_lock_pid(profile: &std::path::Path) -> Option<u32> {
    let target = std::fs::read_link(profile.join("SingletonLock")).ok()?;
    let target = target.to_string_lossy();
    target.rsplit_once('-')?.1.parse().ok()
}

/// Whether a process `pid` is alive (exists, even if not ours to signal,
/// and is not a zombie waiting to be reaped).
fn process_alive(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) state ...`: the command may hold spaces or brackets.
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        return !matches!(state, Some('Z' | 'X'));
    }
    #[cfg(unix)]
    {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let sent = unsafe { libc::kill(pid, 0) };
        sent == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

#[derive(Default)]
struct ChromiumState {
    chromium: Option<Chromium>,
    /// The last start that failed: when, and why.
    failed: Option<(Instant, BrowserError)>,
}

pub struct BrowserPool {
    settings: BrowserSettings,
    runtime: Handle,
    /// One permit per browser context that may be open at once.
    contexts: Arc<Semaphore>,
    state: tokio::sync::Mutex<ChromiumState>,
    metrics: BrowserMetrics,
    closed: AtomicBool,
}

/// A fresh browser context with one tab, for one run. Dropping it disposes
/// of the context (its cookies and storage go with it).
pub struct Lease {
    pub page: Page,
    browser: Arc<Browser>,
    context: chromiumoxide::cdp::browser_protocol::browser::BrowserContextId,
    runtime: Handle,
    metrics: BrowserMetrics,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    /// Another tab in the same context (same cookies): for a logout after
    /// the first tab froze.
    pub async fn new_tab(&self) -> Result<Page, BrowserError> {
        let params = CreateTargetParams::builder()
            .url("about:blank")
            .browser_context_id(self.context.clone())
            .build()
            .map_err(BrowserError::Open)?;
        match tokio::time::timeout(OPEN_TIMEOUT, self.browser.new_page(params)).await {
            Ok(Ok(page)) => Ok(page),
            Ok(Err(e)) => Err(BrowserError::Open(e.to_string())),
            Err(_) => Err(BrowserError::Open("timed out".to_string())),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.metrics.contexts.dec();
        let browser = self.browser.clone();
        let context = self.context.clone();
        self.runtime.spawn(async move {
            let _ = tokio::time::timeout(DISPOSE_TIMEOUT, browser.dispose_browser_context(context))
                .await;
        });
    }
}

impl BrowserPool {
    /// A pool whose browser starts at the first lease. Its tasks run on
    /// `runtime`.
    pub fn new(
        settings: BrowserSettings,
        metrics: BrowserMetrics,
        runtime: Handle,
    ) -> Arc<BrowserPool> {
        // What a killed agent left behind, cleared off the async workers.
        runtime.spawn_blocking(|| {
            let removed = sweep_stale_profiles(&std::env::temp_dir());
            if removed > 0 {
                tracing::info!(
                    removed,
                    "removed browser profile folders left by agents that are gone"
                );
            }
        });
        Arc::new(BrowserPool {
            contexts: Arc::new(Semaphore::new(settings.max_contexts.max(1))),
            settings,
            runtime,
            state: tokio::sync::Mutex::new(ChromiumState::default()),
            metrics,
            closed: AtomicBool::new(false),
        })
    }

    pub fn settings(&self) -> &BrowserSettings {
        &self.settings
    }

    pub(super) fn metrics(&self) -> &BrowserMetrics {
        &self.metrics
    }

    /// A fresh context and tab; waits while `max_contexts` are in use.
    pub async fn lease(&self) -> Result<Lease, BrowserError> {
        let permit = self
            .contexts
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| BrowserError::Closed)?;
        let browser = self.browser().await?;
        let opened = tokio::time::timeout(OPEN_TIMEOUT, open(&browser)).await;
        match opened {
            Ok(Ok((context, page))) => {
                self.metrics.contexts.inc();
                Ok(Lease {
                    page,
                    browser,
                    context,
                    runtime: self.runtime.clone(),
                    metrics: self.metrics.clone(),
                    _permit: permit,
                })
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                // A browser that cannot open a context in that long is
                // wedged: the next run starts a new one.
                tracing::warn!("the browser did not open a context in time; it will be restarted");
                self.state.lock().await.chromium = None;
                self.metrics.up.set(0.0);
                Err(BrowserError::Open("timed out".to_string()))
            }
        }
    }

    /// The process id of the running browser, if one runs.
    pub async fn pid(&self) -> Option<u32> {
        let mut state = self.state.lock().await;
        let chromium = state.chromium.as_mut()?;
        chromium.is_alive().then(|| chromium.child.id()).flatten()
    }

    /// Stops the browser; later leases fail. For the agent's shutdown.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.contexts.close();
        let chromium = self.state.lock().await.chromium.take();
        if let Some(mut chromium) = chromium {
            chromium.kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), chromium.child.wait()).await;
            self.metrics.up.set(0.0);
            tracing::info!("browser stopped");
        }
    }

    /// The running browser, started (again) if need be.
    async fn browser(&self) -> Result<Arc<Browser>, BrowserError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(BrowserError::Closed);
        }
        let mut state = self.state.lock().await;
        if let Some(chromium) = state.chromium.as_mut() {
            if chromium.is_alive() {
                return Ok(chromium.browser.clone());
            }
            tracing::warn!("the browser has stopped (crashed or killed); starting it again");
            state.chromium = None;
            self.metrics.up.set(0.0);
        }
        if let Some((at, why)) = &state.failed {
            if at.elapsed() < RETRY_START_AFTER {
                return Err(why.clone());
            }
        }
        let settings = self.settings.clone();
        let runtime = self.runtime.clone();
        // On the pool's runtime: the process and the connection must live
        // as long as the pool, not as long as the run that started them.
        let started = self
            .runtime
            .spawn(async move { start(&settings, runtime).await })
            .await
            .unwrap_or_else(|_| Err(BrowserError::Connect("the start was cut short".to_string())));
        match started {
            Ok(chromium) => {
                self.metrics.starts.with_label_values(&["ok"]).inc();
                self.metrics.up.set(1.0);
                tracing::info!(pid = chromium.child.id(), "browser started");
                let browser = chromium.browser.clone();
                state.chromium = Some(chromium);
                state.failed = None;
                Ok(browser)
            }
            Err(why) => {
                self.metrics.starts.with_label_values(&["failed"]).inc();
                let repeated = state
                    .failed
                    .as_ref()
                    .is_some_and(|(_, last)| last.to_string() == why.to_string());
                if !repeated {
                    tracing::error!(error = %why, "cannot start the browser: browser journeys fail until it starts");
                }
                state.failed = Some((Instant::now(), why.clone()));
                Err(why)
            }
        }
    }
}

/// The configured executable, or the first candidate on `PATH`.
pub fn executable(settings: &BrowserSettings) -> Result<PathBuf, BrowserError> {
    if let Some(path) = &settings.executable {
        if !path.is_file() {
            return Err(BrowserError::Missing {
                path: path.display().to_string(),
            });
        }
        return Ok(path.clone());
    }
    let paths = std::env::var_os("PATH").ok_or(BrowserError::NotFound)?;
    for dir in std::env::split_paths(&paths) {
        for name in CANDIDATES {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(BrowserError::NotFound)
}

async fn start(settings: &BrowserSettings, runtime: Handle) -> Result<Chromium, BrowserError> {
    let path = executable(settings)?;
    let shown = path.display().to_string();
    let failed = |why: String| BrowserError::Start {
        path: shown.clone(),
        why,
    };
    let profile = profile_folder().map_err(|e| failed(format!("no profile folder: {e}")))?;
    let mut command = browser_command(&path, &profile);
    let mut child = command.spawn().map_err(|e| failed(e.to_string()))?;
    let Some(stderr) = child.stderr.take() else {
        return Err(failed("no standard error to read".to_string()));
    };
    let mut lines = tokio::io::BufReader::new(stderr);
    let found = tokio::time::timeout(settings.launch_timeout, devtools_address(&mut lines)).await;
    let ws = match found {
        Ok(Some(ws)) => ws,
        Ok(None) => {
            let status = child
                .wait()
                .await
                .map(|s| s.to_string())
                .unwrap_or_default();
            return Err(failed(format!("it exited while starting ({status})")));
        }
        Err(_) => {
            return Err(BrowserError::StartTimeout {
                path: shown,
                timeout: settings.launch_timeout,
            })
        }
    };
    drain(&runtime, lines);
    let (browser, alive, handler) = connect(ws, &runtime).await?;
    Ok(Chromium {
        browser,
        child,
        alive,
        handler,
        _profile: profile,
    })
}

/// A throwaway profile folder, marked with whose it is for the sweep of
/// those left behind.
fn profile_folder() -> std::io::Result<tempfile::TempDir> {
    let profile = tempfile::Builder::new().prefix(PROFILE_PREFIX).tempdir()?;
    std::fs::write(
        profile.path().join(OWNER_FILE),
        std::process::id().to_string(),
    )?;
    Ok(profile)
}

/// The browser's command line: headless in `profile`, its DevTools on a
/// port it picks and prints on standard error.
fn browser_command(path: &Path, profile: &tempfile::TempDir) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(path);
    command
        .args(FLAGS)
        .arg(format!("--window-size={},{}", VIEWPORT.0, VIEWPORT.1))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--remote-debugging-port=0")
        .arg("about:blank")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    dies_with_the_agent(&mut command);
    command
}

/// The DevTools address the browser prints once it listens; `None` if its
/// standard error ends first.
async fn devtools_address<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut R) -> Option<String> {
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                if let Some((_, ws)) = text.split_once("DevTools listening on ") {
                    let ws = ws.trim();
                    if ws.starts_with("ws://") {
                        return Some(ws.to_string());
                    }
                }
            }
        }
    }
}

/// The rest of standard error is read and dropped: a full pipe would
/// stall the browser, and its lines are not the agent's to log.
fn drain<R: tokio::io::AsyncBufRead + Unpin + Send + 'static>(runtime: &Handle, mut lines: R) {
    runtime.spawn(async move {
        let mut sink = Vec::new();
        while let Ok(n) = lines.read_until(b'\n', &mut sink).await {
            if n == 0 {
                break;
            }
            sink.clear();
        }
    });
}

/// The connection to the browser at `ws`, its handler running on
/// `runtime`, and the flag the handler clears when the connection ends.
async fn connect(
    ws: String,
    runtime: &Handle,
) -> Result<(Arc<Browser>, Arc<AtomicBool>, tokio::task::JoinHandle<()>), BrowserError> {
    let config = HandlerConfig {
        ignore_https_errors: false,
        viewport: Some(Viewport {
            width: VIEWPORT.0,
            height: VIEWPORT.1,
            ..Viewport::default()
        }),
        request_timeout: COMMAND_TIMEOUT,
        ..HandlerConfig::default()
    };
    let (browser, mut handler) = Browser::connect_with_config(ws, config)
        .await
        .map_err(|e| BrowserError::Connect(e.to_string()))?;
    let alive = Arc::new(AtomicBool::new(true));
    let flag = alive.clone();
    let handler = runtime.spawn(async move {
        while let Some(event) = handler.next().await {
            if event.is_err() {
                break;
            }
        }
        flag.store(false, Ordering::Relaxed);
    });
    Ok((Arc::new(browser), alive, handler))
}

/// A new context and a blank tab in it.
async fn open(
    browser: &Browser,
) -> Result<
    (
        chromiumoxide::cdp::browser_protocol::browser::BrowserContextId,
        Page,
    ),
    BrowserError,
> {
    let context = browser
        .create_browser_context(CreateBrowserContextParams::default())
        .await
        .map_err(|e| BrowserError::Open(e.to_string()))?;
    let params = CreateTargetParams::builder()
        .url("about:blank")
        .browser_context_id(context.clone())
        .build()
        .map_err(BrowserError::Open)?;
    match browser.new_page(params).await {
        Ok(page) => Ok((context, page)),
        Err(e) => {
            let _ = browser.dispose_browser_context(context).await;
            Err(BrowserError::Open(e.to_string()))
        }
    }
}
