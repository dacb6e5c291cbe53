//! What each subcommand does. `main` parses flags and maps errors to exit
//! codes; everything else lives here so tests can call it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use rand::distr::{Alphanumeric, SampleString};
use tokio_util::sync::CancellationToken;

use crate::agent::{Agent, AgentOptions};
use crate::config::secret::{self, EnvLookup};
use crate::config::{self, ChangeEvent, ConfigError, Loaded};
use crate::outcome::{PlannedRun, RunRecord};
use crate::runner;
use crate::sim::{self, SimOptions, SimProfile};
use crate::webconfig::WebConfig;

/// Exit status for "the checked thing is wrong" (bad config, failed journey).
pub const EXIT_FAILED: i32 = 1;

/// Prints every problem of a config file, then (unless `offline`) every
/// problem this machine has running it; returns whether it is usable.
pub fn check_config(file: &Path, offline: bool) -> Result<bool, anyhow::Error> {
    match config::load(file) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("warning: {warning}");
            }
            let c = &loaded.config;
            if !offline {
                let problems = crate::readiness::check(c, &secret::process_env());
                if !problems.is_empty() {
                    for problem in &problems {
                        eprintln!("error: {problem}");
                    }
                    eprintln!(
                        "{}: {} error(s) on this machine (the file itself is valid; --offline checks only the file)",
                        file.display(),
                        problems.len()
                    );
                    return Ok(false);
                }
            }
            let steps: usize = c
                .journeys
                .iter()
                .map(|j| j.steps.len() + j.browser.as_ref().map_or(0, |b| b.steps.len()))
                .sum();
            println!(
                "{}: OK: site {}, {} target(s), {} journey(s), {} step(s), {} warning(s){}",
                file.display(),
                c.site,
                c.targets.len(),
                c.journeys.len(),
                steps,
                loaded.warnings.len(),
                if offline {
                    "; this machine not checked (--offline)"
                } else {
                    ""
                }
            );
            Ok(true)
        }
        Err(ConfigError::Invalid { problems, .. }) => {
            for problem in &problems {
                eprintln!("error: {problem}");
            }
            eprintln!("{}: {} error(s)", file.display(), problems.len());
            Ok(false)
        }
        Err(ConfigError::Parse(problem)) => {
            eprintln!("error: {problem}");
            eprintln!("{}: 1 error(s)", file.display());
            Ok(false)
        }
        Err(e @ ConfigError::Read { .. }) => Err(e.into()),
    }
}

fn load_with_warnings(file: &Path) -> anyhow::Result<Loaded> {
    let loaded = config::load(file)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    Ok(loaded)
}

/// `casewatch run`: the agent until SIGINT or SIGTERM. SIGHUP re-reads the
/// config. At the first stop signal the agent stops scheduling, lets runs in
/// flight finish (up to `stop_deadline`), logs its sessions out and flushes
/// the journal; a second signal exits at once.
pub async fn run(
    file: &Path,
    listen: SocketAddr,
    journal: Option<PathBuf>,
    stop_deadline: Duration,
    web_config: Option<&Path>,
) -> anyhow::Result<()> {
    let loaded = load_with_warnings(file)?;
    let web_config = load_web_config(web_config)?;
    let shutdown = CancellationToken::new();
    let mut stop_signals = StopSignals::listen();
    let options = AgentOptions {
        journal,
        config_path: Some(file.to_path_buf()),
        stop_deadline,
        web_config,
        ..AgentOptions::new(listen, secret::process_env())
    };
    let agent = Agent::start(Arc::new(loaded.config), options, shutdown.clone()).await?;
    tracing::info!(url = %agent.url, "serving the status page at / and metrics at /metrics");
    loop {
        tokio::select! {
            _ = stop_signals.next() => break,
            // The agent logs the outcome of every reload, however asked for.
            _ = hangup() => {
                let _ = agent.reload().await;
            }
        }
    }
    tracing::info!(
        deadline_s = stop_deadline.as_secs_f64(),
        "stopping: finishing runs in flight"
    );
    shutdown.cancel();
    tokio::spawn(async move {
        stop_signals.next().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    agent.wait().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGHUP; never on platforms without it.
async fn hangup() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut hup) = signal(SignalKind::hangup()) {
            hup.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await
}

/// `casewatch once`: each journey once, a table per journey. Returns whether
/// every journey succeeded.
pub async fn once(file: &Path, only: Option<&str>) -> anyhow::Result<bool> {
    let loaded = load_with_warnings(file)?;
    let config = loaded.config;
    let journeys: Vec<_> = config
        .journeys
        .iter()
        .filter(|j| only.is_none_or(|name| j.name == name))
        .collect();
    if journeys.is_empty() {
        let known: Vec<&str> = config.journeys.iter().map(|j| j.name.as_str()).collect();
        bail!(
            "no journey named {:?} (known: {})",
            only.unwrap_or(""),
            known.join(", ")
        );
    }
    let clients = runner::clients(&config.targets)?;
    let env = secret::process_env();
    // Browser journeys run in one Chromium, started at the first of them.
    let browsing = crate::browser::Browsing {
        pool: crate::browser::BrowserPool::new(
            config.browser.clone(),
            crate::browser::BrowserMetrics::new()?,
            tokio::runtime::Handle::current(),
        ),
        evidence: None,
    };
    let mut all_ok = true;
    for (index, journey) in journeys.into_iter().enumerate() {
        let vars = runner::credentials(&journey.target, &env)?;
        let planned = PlannedRun::now(index as u64 + 1);
        let run = if journey.browser.is_some() {
            crate::browser::run_journey(&browsing, None, journey, vars, &planned).await
        } else {
            let ctx = runner::RunContext {
                client: &clients[&journey.target.name],
                probes: None,
            };
            runner::run_journey(&ctx, journey, vars, &planned).await
        };
        all_ok &= run.outcome.is_success();
        println!("{}", run_table(&run));
    }
    browsing.pool.close().await;
    Ok(all_ok)
}

/// The per-step table `once` prints: each step with where its time went
/// (DNS, connect, TLS, first byte, transfer; `-` for a phase that did not
/// happen, as on a reused connection).
pub fn run_table(run: &RunRecord) -> String {
    let ms = |d: Option<std::time::Duration>| {
        d.map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
            .unwrap_or_else(|| "-".into())
    };
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "step",
        "part",
        "outcome",
        "status",
        "dns ms",
        "connect ms",
        "tls ms",
        "first byte ms",
        "transfer ms",
        "total ms",
        "bytes",
        "detail",
    ]);
    for step in &run.steps {
        let phases = &step.phases;
        table.add_row([
            step.step.clone(),
            format!("{:?}", step.phase).to_lowercase(),
            step.outcome.to_string(),
            step.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            ms(phases.dns),
            ms(phases.connect),
            ms(phases.tls),
            ms(phases.first_byte),
            ms(phases.transfer),
            format!("{:.1}", step.duration.as_secs_f64() * 1e3),
            step.bytes.to_string(),
            step.detail.clone(),
        ]);
    }
    format!(
        "journey {} on {}: {} in {:.1} ms\n{table}",
        run.journey,
        run.target,
        run.outcome,
        run.duration.as_secs_f64() * 1e3
    )
}

pub struct SimCommand<'a> {
    pub profile: Option<&'a Path>,
    pub ics_listen: SocketAddr,
    pub css_listen: SocketAddr,
    pub control: bool,
    pub password_env: &'a str,
}

fn load_profile(path: Option<&Path>) -> anyhow::Result<SimProfile> {
    Ok(match path {
        Some(p) => SimProfile::load(p)?,
        None => SimProfile::embedded_default(),
    })
}

/// `casewatch sim`: the simulated ICS and CSS until SIGINT or SIGTERM.
pub async fn sim(cmd: SimCommand<'_>) -> anyhow::Result<()> {
    let password = std::env::var(cmd.password_env).with_context(|| {
        format!(
            "the simulator needs a password: set the environment variable {}",
            cmd.password_env
        )
    })?;
    let shutdown = CancellationToken::new();
    let handle = sim::start(
        SimOptions {
            ics_listen: cmd.ics_listen,
            css_listen: cmd.css_listen,
            control: cmd.control,
            password,
            profile: load_profile(cmd.profile)?,
        },
        shutdown.clone(),
    )
    .await?;
    println!(
        "casewatch sim: ICS at http://{}/ and CSS at http://{}/{}",
        handle.ics_addr,
        handle.css_addr,
        if cmd.control {
            format!("; control API at http://{}/_control/truth", handle.ics_addr)
        } else {
            String::new()
        }
    );
    wait_for_signal().await;
    shutdown.cancel();
    handle.wait().await;
    Ok(())
}

pub struct DemoCommand<'a> {
    pub duration: Option<Duration>,
    /// Not given: [`crate::cli::DEFAULT_LISTEN`], or a free port when that
    /// one is busy.
    pub listen: Option<SocketAddr>,
    pub ics_listen: SocketAddr,
    pub css_listen: SocketAddr,
    pub profile: Option<&'a Path>,
    pub config: Option<&'a Path>,
    pub journal: PathBuf,
    pub history: Option<&'a Path>,
    pub web_config: Option<&'a Path>,
}

fn load_web_config(path: Option<&Path>) -> anyhow::Result<WebConfig> {
    Ok(match path {
        Some(path) => WebConfig::load(path)?,
        None => WebConfig::default(),
    })
}

/// The demo's own listener: the address asked for, or by default
/// [`crate::cli::DEFAULT_LISTEN`], or a free port on loopback when that is
/// busy. Returns the listener and, when it had to move, the reason.
fn demo_listener(
    asked: Option<SocketAddr>,
) -> anyhow::Result<(std::net::TcpListener, Option<String>)> {
    if let Some(addr) = asked {
        return Ok((crate::web::bind(addr)?, None));
    }
    let default: SocketAddr = crate::cli::DEFAULT_LISTEN.parse()?;
    match crate::web::bind(default) {
        Ok(listener) => Ok((listener, None)),
        Err(crate::web::BindError::Listen { source, .. })
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            let any = SocketAddr::new(default.ip(), 0);
            Ok((
                crate::web::bind(any)?,
                Some(format!("{default} is in use, so the demo took a free port")),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// `casewatch demo`: simulator plus agent, URLs printed, summary at the end.
///
/// Every port is bound before any file is created: a port that cannot be
/// had stops the demo with nothing left in the working directory.
pub async fn demo(cmd: DemoCommand<'_>) -> anyhow::Result<()> {
    let (listener, moved) = demo_listener(cmd.listen)?;
    let listen_addr = listener.local_addr()?;
    if let Some(path) = cmd.history {
        write_history(path).await?;
    }
    // A generated password unless the caller chose one (the credential
    // canary test does, to search every output for it).
    let password = std::env::var("CASEWATCH_PASSWORD")
        .unwrap_or_else(|_| Alphanumeric.sample_string(&mut rand::rng(), 24));
    // The agent stops first so that it can log its sessions out of a
    // simulator that is still there.
    let sim_shutdown = CancellationToken::new();
    let shutdown = CancellationToken::new();
    let sim = sim::start(
        SimOptions {
            ics_listen: cmd.ics_listen,
            css_listen: cmd.css_listen,
            control: true,
            password: password.clone(),
            profile: load_profile(cmd.profile)?,
        },
        sim_shutdown.clone(),
    )
    .await?;

    let (mut config, browser_off) = demo_config(cmd.config, &sim)?;
    // The demo makes the two changes the board asks about, a third and two
    // thirds of the way through, so the report's before/after comparison has
    // real data on both sides of each.
    // Half way through, between them, the ICS restarts and flushes its
    // session store, as real systems do: every session is dropped.
    let events = demo_events(cmd.duration.unwrap_or(Duration::from_secs(360)));
    config.changes = events
        .iter()
        .filter_map(|e| match &e.what {
            DemoEvent::Change(change) => Some(change.clone()),
            DemoEvent::Incident(_) => None,
        })
        .collect();
    tokio::spawn(make_demo_events(
        format!("http://{}/_control", sim.ics_addr),
        events,
        shutdown.clone(),
    ));
    let agent = Agent::start(
        Arc::new(config),
        AgentOptions {
            journal: Some(cmd.journal.clone()),
            web_config: load_web_config(cmd.web_config)?,
            listener: Some(listener),
            ..AgentOptions::new(listen_addr, env_with_password(password))
        },
        shutdown.clone(),
    )
    .await?;

    print_demo_addresses(
        &cmd,
        &agent.url,
        &sim,
        moved.as_deref(),
        browser_off.as_deref(),
    );
    match cmd.duration {
        Some(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = wait_for_signal() => {}
            }
        }
        None => wait_for_signal().await,
    }
    shutdown.cancel();
    let status = agent.status.clone();
    agent.wait().await;
    sim_shutdown.cancel();
    sim.wait().await;

    let board = match status.lock() {
        Ok(board) => board,
        Err(poisoned) => poisoned.into_inner(),
    };
    print_demo_summary(&board);
    Ok(())
}

/// The demo's config (the embedded one unless `--config` names a file),
/// pointed at the simulator; without its browser journeys where Chromium
/// is missing, with the sentence saying so.
fn demo_config(
    file: Option<&Path>,
    sim: &sim::SimHandle,
) -> anyhow::Result<(config::Config, Option<String>)> {
    let (text, origin) = match file {
        Some(path) => (config::read_text(path)?, path.display().to_string()),
        None => (
            config::DEMO_YAML.to_string(),
            "config/demo.yaml (embedded)".to_string(),
        ),
    };
    let base_urls = HashMap::from([
        ("ics".to_string(), format!("http://{}/", sim.ics_addr)),
        ("css".to_string(), format!("http://{}/", sim.css_addr)),
    ]);
    let mut loaded = config::from_yaml_str_with_base_urls(&text, &origin, &base_urls)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let browser_off = without_chromium(&mut loaded.config);
    Ok((loaded.config, browser_off))
}

/// The process environment, with the demo's generated password handed to
/// the agent directly: the environment itself is left alone.
fn env_with_password(password: String) -> EnvLookup {
    Arc::new(move |name| {
        if name == "CASEWATCH_PASSWORD" {
            Some(password.clone())
        } else {
            std::env::var(name).ok()
        }
    })
}

fn print_demo_addresses(
    cmd: &DemoCommand<'_>,
    agent_url: &str,
    sim: &sim::SimHandle,
    moved: Option<&str>,
    browser_off: Option<&str>,
) {
    println!(
        "casewatch demo is running{}",
        match cmd.duration {
            Some(d) => format!(" for {}", humantime::format_duration(d)),
            None => " (Ctrl-C to stop)".to_string(),
        }
    );
    if let Some(why) = moved {
        println!("  ({why})");
    }
    println!("  status page:  {agent_url}/");
    println!("  metrics:      {agent_url}/metrics");
    println!(
        "  simulated ICS: http://{}/   CSS: http://{}/",
        sim.ics_addr, sim.css_addr
    );
    println!("  truth log:    http://{}/_control/truth", sim.ics_addr);
    println!("  journal:      {}", cmd.journal.display());
    if let Some(why) = browser_off {
        println!("  {why}");
    }
}

/// `a 3, b 1`, or `none` (`no runs` where given) for an empty list.
fn counts_or<K: std::fmt::Display, N: std::fmt::Display>(
    counts: impl IntoIterator<Item = (K, N)>,
    empty: &str,
) -> String {
    let parts: Vec<String> = counts
        .into_iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if parts.is_empty() {
        empty.to_string()
    } else {
        parts.join(", ")
    }
}

/// What the demo's agent saw, from its status board.
fn print_demo_summary(board: &crate::status::StatusBoard) {
    println!("\nSummary: {} run(s)", board.total_runs());
    for (name, journey) in &board.journeys {
        println!(
            "  {name:<18} {}{}",
            counts_or(&journey.runs, "no runs"),
            if journey.missed_slots > 0 {
                format!(", {} missed slot(s)", journey.missed_slots)
            } else {
                String::new()
            }
        );
    }
    for ((target, slot), kept) in &board.kept {
        println!(
            "  {:<18} checks: {}; lives ended: {}",
            format!("{target} kept #{slot}"),
            counts_or(&kept.checks, "none"),
            counts_or(&kept.ended, "none")
        );
    }
    let forced = board
        .forced_by_cause
        .iter()
        .map(|((target, cause), n)| (format!("{target} {}", cause.as_str()), n));
    println!("  forced logouts:    {}", counts_or(forced, "none"));
}

/// The demo runs where Chromium may not be installed: its browser journeys
/// are then taken out, and the sentence saying so is returned.
fn without_chromium(config: &mut config::Config) -> Option<String> {
    if !config.has_browser_journeys() {
        return None;
    }
    let why = crate::browser::pool::executable(&config.browser).err()?;
    let names: Vec<String> = config
        .journeys
        .iter()
        .filter(|j| j.browser.is_some())
        .map(|j| j.name.clone())
        .collect();
    config.journeys.retain(|j| j.browser.is_none());
    // Printed with the demo's addresses, not logged as well: one stream.
    Some(format!(
        "browser journey {} is off: {why}",
        names.join(", ")
    ))
}

/// What the demo does to the simulator at a set time.
enum DemoEvent {
    /// A dated change the report compares before and after.
    Change(ChangeEvent),
    /// Something that happens to the system, described for the console.
    Incident(&'static str),
}

/// One scheduled control API call.
struct Scheduled {
    at: SystemTime,
    what: DemoEvent,
    path: &'static str,
    body: serde_json::Value,
}

/// The demo's two changes, a third and two thirds of the way through, and
/// an ICS restart half way.
fn demo_events(span: Duration) -> Vec<Scheduled> {
    let now = SystemTime::now();
    vec![
        Scheduled {
            at: now + span / 3,
            what: DemoEvent::Change(ChangeEvent {
                name: "extra_server_capacity".into(),
                at: now + span / 3,
                description: "ICS capacity raised from 8 to 24 workers.".into(),
            }),
            path: "capacity",
            body: serde_json::json!({"workers": 24, "system": "ics"}),
        },
        Scheduled {
            at: now + span / 2,
            what: DemoEvent::Incident("the ICS restarted, dropping every session"),
            path: "restart",
            body: serde_json::json!({"system": "ics", "seconds": 3}),
        },
        Scheduled {
            at: now + span * 2 / 3,
            what: DemoEvent::Change(ChangeEvent {
                name: "reporting_moved_to_css".into(),
                at: now + span * 2 / 3,
                description:
                    "Management reports moved from the ICS to the Children Support Service.".into(),
            }),
            path: "reports",
            body: serde_json::json!({"on": "css"}),
        },
    ]
}

/// Writes the demo's seeded history, ending now, and says how to report it.
async fn write_history(path: &Path) -> anyhow::Result<()> {
    let owned = path.to_path_buf();
    let end = crate::outcome::unix_secs(SystemTime::now());
    tokio::task::spawn_blocking(move || crate::bench::history::write(&owned, end)).await??;
    println!(
        "seeded history: {} ({} days of one office, truth known); report it with\n  casewatch report --journal {} --out board.html",
        path.display(),
        crate::bench::history::DAYS,
        path.display()
    );
    Ok(())
}

/// Makes each scheduled change or incident in the simulator when its time comes.
async fn make_demo_events(control: String, events: Vec<Scheduled>, shutdown: CancellationToken) {
    let http = reqwest::Client::new();
    for event in events {
        let wait = event
            .at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
        let what = match &event.what {
            DemoEvent::Change(change) => {
                format!("  change made:  {} ({})", change.name, change.description)
            }
            DemoEvent::Incident(text) => format!("  incident:     {text}"),
        };
        match http
            .post(format!("{control}/{}", event.path))
            .json(&event.body)
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => println!("{what}"),
            Ok(response) => {
                tracing::error!(event = %what.trim(), status = %response.status(), "simulator refused the demo event")
            }
            Err(e) => {
                tracing::error!(event = %what.trim(), error = %crate::error_chain(&e), "cannot make the demo event")
            }
        }
    }
}

/// SIGINT and SIGTERM, listened for from the moment this is made: a signal
/// that arrives while nobody is waiting is kept for the next
/// [`StopSignals::next`], so a second Ctrl-C sent just after the first is
/// never lost between two waits.
pub struct StopSignals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    /// Must be called inside a Tokio runtime.
    pub fn listen() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = signal(SignalKind::interrupt())
                .and_then(|interrupt| Ok((interrupt, signal(SignalKind::terminate())?)))
                .ok();
            StopSignals { streams }
        }
        #[cfg(not(unix))]
        {
            StopSignals {}
        }
    }

    /// Resolves at the next SIGINT or SIGTERM (or one already received).
    pub async fn next(&mut self) {
        #[cfg(unix)]
        if let Some((interrupt, terminate)) = &mut self.streams {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
        // No handler could be installed: Ctrl-C the portable way.
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    StopSignals::listen().next().await;
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn send_self(signal: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &std::process::id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// The second Ctrl-C of a stopping agent arrives while nothing waits on
    /// the first listener any more; it must still be seen.
    #[tokio::test]
    async fn a_signal_sent_between_two_waits_is_not_lost() {
        let mut signals = StopSignals::listen();
        send_self("TERM");
        signals.next().await;
        send_self("INT");
        // Let the signal land before anything waits again; the order is what
        // is tested, the pause only makes the gap real.
        tokio::time::sleep(Duration::from_millis(100)).await;
        tokio::time::timeout(Duration::from_secs(10), signals.next())
            .await
            .expect("the signal sent between the waits is seen by the next one");
    }
}
