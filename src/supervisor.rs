//! The agent's producer tasks, grouped by target, and how a new config is
//! applied to them.
//!
//! Each target has a group: its heartbeat, its kept sessions and its
//! journeys. On reload, a target whose definition did not change keeps its
//! group (and so its live sessions); within it, only changed journeys are
//! restarted. Changed or removed targets are stopped (their kept sessions log
//! out) and new ones started. A journey task never abandons a run it has
//! begun: cancellation is seen between runs.
//!
//! Applying a config has two halves. [`plan`] does everything that takes time
//! in proportion to the config (fingerprints, new HTTP clients, which read CA
//! files), so a reload runs it off the async workers; [`Supervisor::apply_plan`]
//! only compares names and starts or stops tasks.
//!
//! At shutdown every task gets until the stop deadline; then the forced-stop
//! token ends frozen steps (see [`runner::stop`]) and, after a short grace in
//! which their runs are recorded, whatever still runs is aborted.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::secret::EnvLookup;
use crate::config::{Config, Journey, Target};
use crate::outcome::{PlannedRun, Record};
use crate::runner::keeper::{self, KeeperTask};
use crate::runner::{self, Probes, RunContext, RunnerError};
use crate::schedule::Timetable;

/// A stable fingerprint of a config item: its debug form without the line
/// numbers, which move when other parts of the file change.
fn fingerprint(item: &impl std::fmt::Debug) -> String {
    static LINES: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"line: \d+").expect("static regex"));
    let text = format!("{item:?}");
    LINES.replace_all(&text, "").into_owned()
}

/// A journey's fingerprint without its target, whose changes restart the
/// whole group anyway (and whose debug form, repeated for every journey,
/// would make a large config quadratic).
fn journey_fingerprint(journey: &Journey) -> String {
    let Journey {
        name,
        target,
        schedule,
        login,
        kind,
        retry_after_relogin,
        steps,
        browser,
    } = journey;
    fingerprint(&(
        name,
        &target.name,
        schedule,
        login,
        kind,
        retry_after_relogin,
        steps,
        browser,
    ))
}

/// How long tasks get after the forced stop to record the frozen runs it
/// ended, before they are aborted.
const FORCE_GRACE: Duration = Duration::from_secs(1);

/// What applying a config needs, worked out off the async workers.
pub struct Plan {
    target_prints: HashMap<String, String>,
    journey_prints: HashMap<String, String>,
    /// Clients for the targets that are new or changed.
    new_clients: HashMap<String, reqwest::Client>,
}

/// Prepares `config` against the fingerprints of the targets running now.
/// Builds every new client, so a bad TLS file refuses the whole config
/// before anything is stopped.
pub fn plan(config: &Config, running: &HashMap<String, String>) -> Result<Plan, RunnerError> {
    let mut target_prints = HashMap::new();
    let mut new_clients = HashMap::new();
    for target in &config.targets {
        let print = fingerprint(target);
        if running.get(&target.name) != Some(&print) {
            new_clients.insert(target.name.clone(), runner::client_for(target)?);
        }
        target_prints.insert(target.name.clone(), print);
    }
    let journey_prints = config
        .journeys
        .iter()
        .map(|j| (j.name.clone(), journey_fingerprint(j)))
        .collect();
    Ok(Plan {
        target_prints,
        journey_prints,
        new_clients,
    })
}

struct JourneyTaskHandle {
    fingerprint: String,
    token: CancellationToken,
    task: JoinHandle<()>,
}

struct TargetGroup {
    fingerprint: String,
    token: CancellationToken,
    client: reqwest::Client,
    tasks: Vec<JoinHandle<()>>,
    journeys: HashMap<String, JourneyTaskHandle>,
}

pub struct Supervisor {
    env: EnvLookup,
    probes: Probes,
    sessions: Arc<Semaphore>,
    max_sessions: usize,
    run_ids: Arc<AtomicU64>,
    shutdown: CancellationToken,
    /// Cancelled when the stop deadline has passed: frozen steps end then,
    /// so their runs are recorded before the tasks are aborted.
    forced: CancellationToken,
    groups: HashMap<String, TargetGroup>,
    /// The agent's browser, for browser journeys.
    browser: Option<crate::browser::Browsing>,
}

impl Supervisor {
    pub fn new(
        env: EnvLookup,
        probes: Probes,
        max_sessions: usize,
        shutdown: CancellationToken,
    ) -> Supervisor {
        Supervisor {
            env,
            probes,
            sessions: Arc::new(Semaphore::new(max_sessions.max(1))),
            max_sessions: max_sessions.max(1),
            run_ids: Arc::new(AtomicU64::new(1)),
            shutdown,
            forced: CancellationToken::new(),
            groups: HashMap::new(),
            browser: None,
        }
    }

    /// Browser journeys run in `browsing`'s browser; without one they
    /// record an `error` run saying there is none.
    pub fn with_browser(mut self, browsing: crate::browser::Browsing) -> Supervisor {
        self.browser = Some(browsing);
        self
    }

    /// The fingerprints of the running targets, for [`plan`].
    pub fn running(&self) -> HashMap<String, String> {
        self.groups
            .iter()
            .map(|(name, g)| (name.clone(), g.fingerprint.clone()))
            .collect()
    }

    /// Brings the running tasks in line with `config`. Returns what changed,
    /// for the log.
    pub fn apply(&mut self, config: &Config) -> Result<Vec<String>, RunnerError> {
        let plan = plan(config, &self.running())?;
        Ok(self.apply_plan(config, plan))
    }

    /// Applies a config prepared by [`plan`] against the targets running now.
    pub fn apply_plan(&mut self, config: &Config, plan: Plan) -> Vec<String> {
        let Plan {
            target_prints,
            journey_prints,
            mut new_clients,
        } = plan;
        let mut changes = Vec::new();
        self.resize_sessions(config.max_sessions.max(1));
        let wanted: HashSet<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
        let removed: Vec<String> = self
            .groups
            .keys()
            .filter(|name| !wanted.contains(name.as_str()))
            .cloned()
            .collect();
        for name in removed {
            if let Some(group) = self.groups.remove(&name) {
                group.token.cancel();
                changes.push(format!("target {name} removed"));
            }
        }
        let mut by_target: HashMap<&str, Vec<&Arc<Journey>>> = HashMap::new();
        for journey in &config.journeys {
            by_target
                .entry(journey.target.name.as_str())
                .or_default()
                .push(journey);
        }
        for target in &config.targets {
            if let Some(client) = new_clients.remove(&target.name) {
                if let Some(old) = self.groups.remove(&target.name) {
                    old.token.cancel();
                    changes.push(format!("target {} changed: restarted", target.name));
                } else {
                    changes.push(format!("target {} started", target.name));
                }
                let print = target_prints.get(&target.name).cloned().unwrap_or_default();
                let group = self.start_group(target, client, print);
                self.groups.insert(target.name.clone(), group);
            }
            let journeys = by_target.remove(target.name.as_str()).unwrap_or_default();
            changes.extend(self.apply_journeys(&target.name, &journeys, &journey_prints));
        }
        changes
    }

    fn resize_sessions(&mut self, wanted: usize) {
        if wanted > self.max_sessions {
            self.sessions.add_permits(wanted - self.max_sessions);
        } else if wanted < self.max_sessions {
            // Permits in use now are returned later and then stay; the cap
            // comes down as sessions end.
            self.sessions.forget_permits(self.max_sessions - wanted);
        }
        self.max_sessions = wanted;
    }

    fn start_group(
        &self,
        target: &Arc<Target>,
        client: reqwest::Client,
        fingerprint: String,
    ) -> TargetGroup {
        let token = self.shutdown.child_token();
        let mut tasks = Vec::new();
        if target.heartbeat.is_some() {
            tasks.push(tokio::spawn(keeper::heartbeat(
                target.clone(),
                client.clone(),
                self.probes.clone(),
                token.clone(),
            )));
        }
        for slot in 0..target.keep_sessions.as_ref().map_or(0, |k| k.count) {
            let task = keeper::keep_session(KeeperTask {
                target: target.clone(),
                slot,
                client: client.clone(),
                env: self.env.clone(),
                sessions: self.sessions.clone(),
                probes: self.probes.clone(),
                shutdown: token.clone(),
            });
            tasks.push(tokio::spawn(runner::stop::scope(self.forced.clone(), task)));
        }
        TargetGroup {
            fingerprint,
            token,
            client,
            tasks,
            journeys: HashMap::new(),
        }
    }

    fn apply_journeys(
        &mut self,
        target: &str,
        journeys: &[&Arc<Journey>],
        prints: &HashMap<String, String>,
    ) -> Vec<String> {
        let mut changes = Vec::new();
        let Some(group) = self.groups.get_mut(target) else {
            return changes;
        };
        let names: HashSet<&str> = journeys.iter().map(|j| j.name.as_str()).collect();
        group.journeys.retain(|name, handle| {
            let keep = names.contains(name.as_str());
            if !keep {
                handle.token.cancel();
                changes.push(format!("journey {name} removed"));
            }
            keep
        });
        let count = journeys.len().max(1) as u32;
        for (index, journey) in journeys.iter().enumerate() {
            let print = prints
                .get(&journey.name)
                .cloned()
                .unwrap_or_else(|| journey_fingerprint(journey));
            if group
                .journeys
                .get(&journey.name)
                .is_some_and(|h| h.fingerprint == print)
            {
                continue;
            }
            if let Some(old) = group.journeys.remove(&journey.name) {
                old.token.cancel();
                changes.push(format!("journey {} changed: restarted", journey.name));
            } else {
                changes.push(format!("journey {} started", journey.name));
            }
            let token = group.token.child_token();
            // Spread first runs so journeys do not start in lockstep.
            let offset =
                journey.schedule.interval.min(Duration::from_secs(2)) * index as u32 / count;
            let task = journey_loop(JourneyTask {
                journey: (*journey).clone(),
                client: group.client.clone(),
                env: self.env.clone(),
                sessions: self.sessions.clone(),
                run_ids: self.run_ids.clone(),
                probes: self.probes.clone(),
                shutdown: token.clone(),
                anchor: Instant::now(),
                offset,
                browser: self.browser.clone(),
            });
            let task = tokio::spawn(runner::stop::scope(self.forced.clone(), task));
            group.journeys.insert(
                journey.name.clone(),
                JourneyTaskHandle {
                    fingerprint: print,
                    token,
                    task,
                },
            );
        }
        changes
    }

    /// Waits for every task after shutdown, up to `deadline`; then ends the
    /// frozen steps, gives their runs [`FORCE_GRACE`] to be recorded, and
    /// aborts the rest. Returns how many had to be aborted.
    pub async fn drain(self, deadline: Duration) -> usize {
        let handles: Vec<JoinHandle<()>> = self
            .groups
            .into_values()
            .flat_map(|g| {
                g.tasks
                    .into_iter()
                    .chain(g.journeys.into_values().map(|j| j.task))
            })
            .collect();
        let end = Instant::now() + deadline;
        let mut running = Vec::new();
        for mut handle in handles {
            if tokio::time::timeout_at(end, &mut handle).await.is_err() {
                running.push(handle);
            }
        }
        if running.is_empty() {
            return 0;
        }
        self.forced.cancel();
        let grace = Instant::now() + FORCE_GRACE;
        let mut aborted = 0;
        for mut handle in running {
            if tokio::time::timeout_at(grace, &mut handle).await.is_err() {
                handle.abort();
                aborted += 1;
            }
        }
        aborted
    }
}

/// One journey on its timetable: everything its task needs.
pub struct JourneyTask {
    pub journey: Arc<Journey>,
    pub client: reqwest::Client,
    pub env: EnvLookup,
    pub sessions: Arc<Semaphore>,
    pub run_ids: Arc<AtomicU64>,
    pub probes: Probes,
    pub shutdown: CancellationToken,
    /// The timetable's origin; the first slot is `anchor + offset`.
    pub anchor: Instant,
    pub offset: Duration,
    /// Where a browser journey runs.
    pub browser: Option<crate::browser::Browsing>,
}

/// Runs a journey on its timetable until `shutdown` (between runs).
pub async fn journey_loop(task: JourneyTask) {
    let journey = &task.journey;
    let mut timetable = Timetable::new(&journey.schedule, task.anchor, task.offset);
    while !task.shutdown.is_cancelled() {
        let slot = timetable.next_slot(Instant::now(), &mut rand::rng());
        if slot.missed > 0 {
            task.probes.send(Record::MissedSlots {
                target: journey.target.name.clone(),
                journey: journey.name.clone(),
                count: slot.missed,
                waits: slot.missed_waits,
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
        // Only journeys that log in hold a session, so only they count
        // against the agent's cap on its own sessions.
        let _permit = if journey.login {
            let permit = tokio::select! {
                permit = task.sessions.acquire() => permit,
                _ = task.shutdown.cancelled() => return,
            };
            let Ok(permit) = permit else {
                return;
            };
            Some(permit)
        } else {
            None
        };
        let planned = PlannedRun {
            run_id: task.run_ids.fetch_add(1, Ordering::Relaxed),
            start: intended_start,
            instant: slot.intended,
        };
        task.probes.send(Record::RunStarted {
            target: journey.target.name.clone(),
            journey: journey.name.clone(),
            kind: journey.kind,
        });
        let ctx = RunContext {
            client: &task.client,
            probes: Some(&task.probes),
        };
        // A run once begun is finished (its session logged out) even when a
        // stop or reload comes meanwhile; the agent's stop deadline bounds it.
        let run = match (&journey.browser, &task.browser) {
            (None, _) => runner::run_journey(&ctx, journey, vars, &planned).await,
            (Some(_), Some(browsing)) => {
                crate::browser::run_journey(browsing, Some(&task.probes), journey, vars, &planned)
                    .await
            }
            (Some(_), None) => {
                crate::browser::without_browser(journey, &planned, "this process runs no browser")
            }
        };
        task.probes.send(Record::Run(run));
    }
}
