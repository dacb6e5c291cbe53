//! The agent's Prometheus metrics: one registry (no global macros), typed
//! helpers, and the text exposition for `/metrics`.
//!
//! Labels come only from names in the config (`target`, `journey`, `step`) and
//! small fixed enums (`outcome`); the agent's `site` is a constant label on
//! every series. Histogram buckets include every configured `slow_after` and
//! `freeze_after`, so "share of steps under the threshold" is exact.

use std::collections::HashMap;

use std::time::Duration;

use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts,
    Registry, TextEncoder,
};

use crate::config::{Config, JourneyKind, HEARTBEAT_JOURNEY};
use crate::detect::AgeBands;
use crate::outcome::{
    unix_secs, HttpPhase, KeptActivity, KeptRecord, LogoutCause, Outcome, RunRecord, SessionEnd,
    SessionSpan, StepRecord,
};

const BASE_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

const FREEZE_BUCKETS: [f64; 13] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

const SESSION_AGE_BUCKETS: [f64; 14] = [
    10.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 5400.0, 7200.0, 9000.0, 10800.0, 14400.0, 21600.0,
    28800.0, 43200.0,
];

/// Phases run from well under a millisecond (DNS from a cache, a LAN
/// connect) to a freeze.
const PHASE_BUCKETS: [f64; 19] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
    30.0, 60.0, 120.0, 300.0,
];

const LATENESS_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0];

pub struct Metrics {
    registry: Registry,
    step_duration: HistogramVec,
    step_outcomes: IntCounterVec,
    steps_given_up: IntCounterVec,
    journey_duration: HistogramVec,
    journey_runs: IntCounterVec,
    journey_stalled: IntCounterVec,
    journey_last_success: GaugeVec,
    journey_last_run: GaugeVec,
    schedule_lateness: HistogramVec,
    schedule_missed: IntCounterVec,
    pub config_last_reload_successful: Gauge,
    pub config_last_reload_timestamp: Gauge,
    journey_in_flight: GaugeVec,
    freeze_in_progress: GaugeVec,
    freeze_episodes: IntCounterVec,
    freeze_duration: HistogramVec,
    inflight_oldest: GaugeVec,
    forced_logouts: IntCounterVec,
    session_age_at_logout: HistogramVec,
    session_exposure: CounterVec,
    over_acceptable: CounterVec,
    /// The practitioners' acceptable step time (f64 bits); a reload may
    /// change it.
    acceptable_seconds: std::sync::atomic::AtomicU64,
    sessions_active: GaugeVec,
    session_oldest_age: GaugeVec,
    relogin_duration: HistogramVec,
    kept: KeptMetrics,
    http_phases: HistogramVec,
    /// Browser journeys' own families (page timings, freeze sides, the
    /// browser process); shared with the browser pool.
    pub browser: crate::browser::BrowserMetrics,
    /// The agent's own health: its endpoints' connections, its own errors.
    pub agent: AgentMetrics,
    runtime_tasks: Gauge,
    bands: AgeBands,
    last_render_len: std::sync::atomic::AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up metrics")]
pub struct MetricsError(#[from] prometheus::Error);

/// The agent's own health, apart from what it measures of its targets.
#[derive(Clone)]
pub struct AgentMetrics {
    /// Connections to the agent's endpoints open now.
    pub web_connections_open: prometheus::IntGauge,
    /// Connections closed because the cap was reached.
    pub web_connections_refused: prometheus::IntCounter,
    /// The cap itself.
    pub web_connection_cap: prometheus::IntGauge,
    /// Probes the agent could not make through its own fault, by error.
    pub errors: IntCounterVec,
    /// Idempotent requests sent again on a new connection after the
    /// server closed the kept-alive one they went out on.
    pub http_retries: IntCounterVec,
}

impl AgentMetrics {
    fn register(registry: &Registry) -> Result<AgentMetrics, prometheus::Error> {
        let metrics = AgentMetrics {
            web_connections_open: prometheus::IntGauge::new(
                "casewatch_web_connections_open",
                "Connections to the agent's own endpoints open now.",
            )?,
            web_connections_refused: prometheus::IntCounter::new(
                "casewatch_web_connections_refused_total",
                "Connections to the agent's own endpoints closed because casewatch_web_connection_cap were open: the oldest that had sent no request, to make room for a new one, or the new one when every open one had.",
            )?,
            web_connection_cap: prometheus::IntGauge::new(
                "casewatch_web_connection_cap",
                "The most connections to the agent's own endpoints open at once: a quarter of its descriptor limit, between 8 and 512.",
            )?,
            errors: IntCounterVec::new(
                Opts::new(
                    "casewatch_agent_errors_total",
                    "Runs the agent could not make through its own fault, not the target's, by error (descriptors: it ran out of file descriptors). They are not counted as the target's runs.",
                ),
                &["error"],
            )?,
            http_retries: IntCounterVec::new(
                Opts::new(
                    "casewatch_http_retries_total",
                    "GET and HEAD requests sent again on a new connection because the server had closed the kept-alive connection they went out on before answering.",
                ),
                &["target"],
            )?,
        };
        registry.register(Box::new(metrics.web_connections_open.clone()))?;
        registry.register(Box::new(metrics.web_connections_refused.clone()))?;
        registry.register(Box::new(metrics.web_connection_cap.clone()))?;
        registry.register(Box::new(metrics.errors.clone()))?;
        registry.register(Box::new(metrics.http_retries.clone()))?;
        for kind in crate::outcome::AgentFault::ALL {
            metrics.errors.with_label_values(&[kind.as_str()]);
        }
        Ok(metrics)
    }
}

impl Metrics {
    pub fn new(config: &Config) -> Result<Metrics, MetricsError> {
        let labels = HashMap::from([("site".to_string(), config.site.clone())]);
        let registry = Registry::new_custom(None, Some(labels))?;
        let buckets = step_buckets(config);

        let step_duration = HistogramVec::new(
            HistogramOpts::new(
                "casewatch_step_duration_seconds",
                "Time from sending a step's request to its last byte (or to giving up).",
            )
            .buckets(buckets.clone()),
            &["target", "journey", "step"],
        )?;
        let step_outcomes = IntCounterVec::new(
            Opts::new(
                "casewatch_step_outcomes_total",
                "Steps finished, by outcome.",
            ),
            &["target", "journey", "step", "outcome"],
        )?;
        let steps_given_up = IntCounterVec::new(
            Opts::new(
                "casewatch_steps_given_up_total",
                "Steps given up on at give_up_after (also in casewatch_step_duration_seconds, at that time): the slowest of their step, so the central report takes them off its top buckets.",
            ),
            &["target", "journey", "step"],
        )?;
        let journey_duration = HistogramVec::new(
            HistogramOpts::new(
                "casewatch_journey_duration_seconds",
                "Time from a run's intended start to the end of its last step; slots skipped while a run overran count with the wait they would have had.",
            )
            .buckets(BASE_BUCKETS.to_vec()),
            &["target", "journey"],
        )?;
        let journey_runs = IntCounterVec::new(
            Opts::new("casewatch_journey_runs_total", "Journey runs, by outcome."),
            &["target", "journey", "outcome"],
        )?;
        let journey_stalled = IntCounterVec::new(
            Opts::new(
                "casewatch_journey_runs_agent_stalled_total",
                "Journey runs that overlapped a stall of the agent itself longer than a step's freeze_after: not counted in casewatch_journey_runs_total or the step and journey series, whatever their outcome.",
            ),
            &["target", "journey"],
        )?;
        let journey_last_success = GaugeVec::new(
            Opts::new(
                "casewatch_journey_last_success",
                "1 if the journey's last run succeeded (ok or slow), else 0.",
            ),
            &["target", "journey"],
        )?;
        let journey_last_run = GaugeVec::new(
            Opts::new(
                "casewatch_journey_last_run_timestamp_seconds",
                "Unix time at which the journey's last run ended.",
            ),
            &["target", "journey"],
        )?;
        let schedule_lateness = HistogramVec::new(
            HistogramOpts::new(
                "casewatch_schedule_lateness_seconds",
                "Actual minus intended start of each run.",
            )
            .buckets(LATENESS_BUCKETS.to_vec()),
            &["target", "journey"],
        )?;
        let schedule_missed = IntCounterVec::new(
            Opts::new(
                "casewatch_schedule_missed_total",
                "Timetable slots skipped because the previous run was still going.",
            ),
            &["target", "journey"],
        )?;
        let build_info = GaugeVec::new(
            Opts::new(
                "casewatch_build_info",
                "Always 1; labels give the version of the running agent.",
            ),
            &["version"],
        )?;
        let config_last_reload_successful = Gauge::new(
            "casewatch_config_last_reload_successful",
            "1 if the last configuration load succeeded, else 0.",
        )?;
        let config_last_reload_timestamp = Gauge::new(
            "casewatch_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load.",
        )?;

        let journey_in_flight = GaugeVec::new(
            Opts::new(
                "casewatch_journey_in_flight",
                "1 while a run of the journey is going.",
            ),
            &["target", "journey"],
        )?;
        let freeze_in_progress = GaugeVec::new(
            Opts::new(
                "casewatch_freeze_in_progress",
                "1 while a freeze episode is open on the target: it has stopped answering.",
            ),
            &["target"],
        )?;
        let freeze_episodes = IntCounterVec::new(
            Opts::new(
                "casewatch_freeze_episodes_total",
                "Freeze episodes begun: stretches during which the target did not answer.",
            ),
            &["target"],
        )?;
        let freeze_duration = HistogramVec::new(
            HistogramOpts::new(
                "casewatch_freeze_duration_seconds",
                "Length of each ended freeze episode, from the first request caught to the next answer.",
            )
            .buckets(FREEZE_BUCKETS.to_vec()),
            &["target"],
        )?;
        let inflight_oldest = GaugeVec::new(
            Opts::new(
                "casewatch_inflight_oldest_seconds",
                "Age of the oldest request in flight to the target (0 when none).",
            ),
            &["target"],
        )?;
        let forced_logouts = IntCounterVec::new(
            Opts::new(
                "casewatch_forced_logouts_total",
                "Logged-in sessions ended by the server, by how it showed and the session's age band.",
            ),
            &["target", "cause", "age_band"],
        )?;
        let mut age_buckets = SESSION_AGE_BUCKETS.to_vec();
        age_buckets.extend(config.age_bands.edges().iter().map(Duration::as_secs_f64));
        let session_age_at_logout = HistogramVec::new(
            HistogramOpts::new(
                "casewatch_session_age_at_logout_seconds",
                "Session age at each forced logout: the midpoint of the bracket between the last age the session was known alive and the age its loss was seen (the same age that picks its age_band).",
            )
            .buckets(sorted_unique(age_buckets)),
            &["target"],
        )?;
        let session_exposure = CounterVec::new(
            Opts::new(
                "casewatch_session_exposure_seconds_total",
                "Session time known alive, per age band; forced logouts divided by this is the hazard.",
            ),
            &["target", "age_band"],
        )?;
        let over_acceptable = CounterVec::new(
            Opts::new(
                "casewatch_step_over_acceptable_seconds_total",
                "Time interactive journey steps that completed took beyond the practitioners' acceptable duration.",
            ),
            &["target", "journey"],
        )?;
        let sessions_active = GaugeVec::new(
            Opts::new(
                "casewatch_sessions_active",
                "Logged-in sessions the agent holds now and knows to be alive (not those whose state is unknown).",
            ),
            &["target"],
        )?;
        let session_oldest_age = GaugeVec::new(
            Opts::new(
                "casewatch_session_oldest_age_seconds",
                "Age of the oldest logged-in session the agent holds (0 when none).",
            ),
            &["target"],
        )?;
        let relogin_duration = HistogramVec::new(
            HistogramOpts::new(
                "casewatch_relogin_duration_seconds",
                "Time to log back in after a forced logout.",
            )
            .buckets(BASE_BUCKETS.to_vec()),
            &["target"],
        )?;
        let http_phases = HistogramVec::new(
            HistogramOpts::new(
                "casewatch_http_phase_seconds",
                "Time each step spent in each phase of its HTTP exchanges (dns, connect, tls, first_byte, transfer); a reused connection has no dns, connect or tls.",
            )
            .buckets(PHASE_BUCKETS.to_vec()),
            &["target", "phase"],
        )?;
        let change_timestamp = GaugeVec::new(
            Opts::new(
                "casewatch_change_timestamp_seconds",
                "Unix time of each configured change to the monitored system.",
            ),
            &["change"],
        )?;
        for change in &config.changes {
            change_timestamp
                .with_label_values(&[&change.name])
                .set(unix_secs(change.at));
        }
        let kept = KeptMetrics::new(&buckets)?;
        let runtime_tasks = Gauge::new(
            "casewatch_runtime_alive_tasks",
            "Tasks alive in the agent's async runtime (for leak checks in soak runs).",
        )?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        for collector in [
            Box::new(runtime_tasks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(journey_in_flight.clone()),
            Box::new(freeze_in_progress.clone()),
            Box::new(freeze_episodes.clone()),
            Box::new(freeze_duration.clone()),
            Box::new(inflight_oldest.clone()),
            Box::new(forced_logouts.clone()),
            Box::new(session_age_at_logout.clone()),
            Box::new(session_exposure.clone()),
            Box::new(over_acceptable.clone()),
            Box::new(sessions_active.clone()),
            Box::new(session_oldest_age.clone()),
            Box::new(relogin_duration.clone()),
            Box::new(http_phases.clone()),
            Box::new(change_timestamp),
        ] {
            registry.register(collector)?;
        }
        kept.register(&registry)?;
        let browser = crate::browser::BrowserMetrics::new()?;
        browser.register(&registry)?;
        let agent = AgentMetrics::register(&registry)?;
        registry.register(Box::new(step_duration.clone()))?;
        registry.register(Box::new(step_outcomes.clone()))?;
        registry.register(Box::new(steps_given_up.clone()))?;
        registry.register(Box::new(journey_duration.clone()))?;
        registry.register(Box::new(journey_runs.clone()))?;
        registry.register(Box::new(journey_stalled.clone()))?;
        registry.register(Box::new(journey_last_success.clone()))?;
        registry.register(Box::new(journey_last_run.clone()))?;
        registry.register(Box::new(schedule_lateness.clone()))?;
        registry.register(Box::new(schedule_missed.clone()))?;
        registry.register(Box::new(build_info.clone()))?;
        registry.register(Box::new(config_last_reload_successful.clone()))?;
        registry.register(Box::new(config_last_reload_timestamp.clone()))?;

        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        config_last_reload_successful.set(1.0);
        config_last_reload_timestamp.set(unix_secs(std::time::SystemTime::now()));

        let metrics = Metrics {
            registry,
            step_duration,
            step_outcomes,
            steps_given_up,
            journey_duration,
            journey_runs,
            journey_stalled,
            journey_last_success,
            journey_last_run,
            schedule_lateness,
            schedule_missed,
            config_last_reload_successful,
            config_last_reload_timestamp,
            journey_in_flight,
            freeze_in_progress,
            freeze_episodes,
            freeze_duration,
            inflight_oldest,
            forced_logouts,
            session_age_at_logout,
            session_exposure,
            over_acceptable,
            acceptable_seconds: std::sync::atomic::AtomicU64::new(0),
            sessions_active,
            session_oldest_age,
            relogin_duration,
            kept,
            http_phases,
            browser,
            agent,
            runtime_tasks,
            bands: config.age_bands.clone(),
            last_render_len: std::sync::atomic::AtomicUsize::new(0),
        };
        metrics.prepare(config);
        Ok(metrics)
    }

    /// Creates every known series at zero, so `rate()` and alerts see them
    /// before the first failure happens (Prometheus instrumentation practice).
    pub fn prepare(&self, config: &Config) {
        self.acceptable_seconds.store(
            config.practitioners.acceptable_seconds.to_bits(),
            std::sync::atomic::Ordering::Relaxed,
        );
        for target in &config.targets {
            let t = target.name.as_str();
            self.freeze_in_progress.with_label_values(&[t]).set(0.0);
            self.freeze_episodes.with_label_values(&[t]);
            self.freeze_duration.with_label_values(&[t]);
            self.inflight_oldest.with_label_values(&[t]).set(0.0);
            self.session_age_at_logout.with_label_values(&[t]);
            self.sessions_active.with_label_values(&[t]).set(0.0);
            self.session_oldest_age.with_label_values(&[t]).set(0.0);
            self.relogin_duration.with_label_values(&[t]);
            self.agent.http_retries.with_label_values(&[t]);
            for phase in HttpPhase::ALL {
                self.http_phases.with_label_values(&[t, phase.as_str()]);
            }
            for band in self.bands.labels() {
                self.session_exposure.with_label_values(&[t, band]);
                for cause in LogoutCause::ALL {
                    self.forced_logouts
                        .with_label_values(&[t, cause.as_str(), band]);
                }
            }
            if target.keep_sessions.is_some() {
                self.kept.prepare(t);
            }
        }
        self.browser.prepare(config);
        for journey in &config.journeys {
            self.journey_in_flight
                .with_label_values(&[&journey.target.name, &journey.name])
                .set(0.0);
            let t = journey.target.name.as_str();
            let j = journey.name.as_str();
            let login = journey.login.then_some(&journey.target.login);
            let logout = journey
                .login
                .then_some(&journey.target.logout)
                .and_then(Option::as_ref);
            let steps = login
                .into_iter()
                .flatten()
                .chain(&journey.steps)
                .chain(logout)
                .map(|s| s.name.as_str());
            let browser_login = journey
                .login
                .then_some(journey.target.browser.as_ref())
                .flatten();
            let browser_steps = browser_login
                .into_iter()
                .flat_map(|l| &l.login)
                .chain(journey.browser.iter().flat_map(|b| &b.steps))
                .chain(browser_login.into_iter().flat_map(|l| &l.logout))
                .map(|s| s.name.as_str());
            for step in steps.chain(browser_steps) {
                self.steps_given_up.with_label_values(&[t, j, step]);
                for outcome in Outcome::ALL {
                    self.step_outcomes
                        .with_label_values(&[t, j, step, outcome.as_str()]);
                }
            }
            for outcome in Outcome::ALL {
                self.journey_runs
                    .with_label_values(&[t, j, outcome.as_str()]);
            }
            self.schedule_missed.with_label_values(&[t, j]);
            self.journey_stalled.with_label_values(&[t, j]);
            if journey.kind == JourneyKind::Interactive {
                self.over_acceptable.with_label_values(&[t, j]);
            }
        }
    }

    /// Slots skipped while a run overran. Each also counts in the journey
    /// duration histogram with the wait a user arriving at that slot would
    /// have had, so its percentiles are those of an open-loop measurement
    /// (coordinated omission corrected, as HdrHistogram's expected-interval
    /// recording does).
    pub fn missed_slots(&self, target: &str, journey: &str, count: u64, waits: &[Duration]) {
        self.schedule_missed
            .with_label_values(&[target, journey])
            .inc_by(count);
        let durations = self.journey_duration.with_label_values(&[target, journey]);
        for wait in waits {
            durations.observe(wait.as_secs_f64());
        }
    }

    /// A run that failed through the agent's own fault: counted as the
    /// agent's error, and no longer in flight.
    pub fn agent_error(&self, target: &str, journey: &str, fault: crate::outcome::AgentFault) {
        self.journey_in_flight
            .with_label_values(&[target, journey])
            .set(0.0);
        self.agent.errors.with_label_values(&[fault.as_str()]).inc();
    }

    pub fn run_started(&self, target: &str, journey: &str) {
        self.journey_in_flight
            .with_label_values(&[target, journey])
            .set(1.0);
    }

    pub fn freeze_started(&self, target: &str) {
        self.freeze_in_progress
            .with_label_values(&[target])
            .set(1.0);
        self.freeze_episodes.with_label_values(&[target]).inc();
    }

    pub fn freeze_ended(&self, target: &str, length: Duration) {
        self.freeze_in_progress
            .with_label_values(&[target])
            .set(0.0);
        self.freeze_duration
            .with_label_values(&[target])
            .observe(length.as_secs_f64());
    }

    pub fn inflight_oldest(&self, target: &str, age: Duration) {
        self.inflight_oldest
            .with_label_values(&[target])
            .set(age.as_secs_f64());
    }

    /// Refreshes the runtime's alive-task gauge.
    pub fn runtime(&self) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            self.runtime_tasks
                .set(handle.metrics().num_alive_tasks() as f64);
        }
    }

    pub fn sessions(&self, target: &str, active: usize, oldest: Duration) {
        self.sessions_active
            .with_label_values(&[target])
            .set(active as f64);
        self.session_oldest_age
            .with_label_values(&[target])
            .set(oldest.as_secs_f64());
    }

    /// A session the server ended, placed at `age` (its bracket's midpoint).
    pub fn forced_logout(&self, target: &str, cause: LogoutCause, age: Duration) {
        self.forced_logouts
            .with_label_values(&[target, cause.as_str(), self.bands.label(age)])
            .inc();
        self.session_age_at_logout
            .with_label_values(&[target])
            .observe(age.as_secs_f64());
    }

    /// A kept session's login, check or logout. Steps that overlapped a
    /// stall of the agent are left out.
    pub fn kept(&self, record: &KeptRecord) {
        record
            .steps
            .iter()
            .filter(|s| !s.agent_stalled)
            .for_each(|step| self.http_phases(step));
        self.kept.observe(record);
    }

    pub fn relogin(&self, target: &str, took: Duration) {
        self.relogin_duration
            .with_label_values(&[target])
            .observe(took.as_secs_f64());
    }

    /// Adds a stretch of session life to the exposure of the bands it crosses.
    pub fn exposure(&self, span: &SessionSpan) {
        for (band, time) in self.bands.split(span.age_from, span.age_to) {
            self.session_exposure
                .with_label_values(&[&span.target, band])
                .inc_by(time.as_secs_f64());
        }
    }

    /// Where each step's time went, per target (heartbeats included: they
    /// measure the same network and system).
    pub fn http_phases(&self, step: &StepRecord) {
        for phase in HttpPhase::ALL {
            if let Some(took) = step.phases.get(phase) {
                self.http_phases
                    .with_label_values(&[&step.target, phase.as_str()])
                    .observe(took.as_secs_f64());
            }
        }
    }

    /// A finished run: step and journey series. Heartbeats are not journeys.
    ///
    /// Steps that overlapped a stall of the agent itself are left out of
    /// every step series; a run that did is counted in
    /// `casewatch_journey_runs_agent_stalled_total` and in none of the
    /// journey series that judge the target (runs by outcome, durations,
    /// last success, time over acceptable). It did run: its end time and
    /// its lateness (the agent's own) are kept.
    pub fn run(&self, run: &RunRecord) {
        let (t, j) = (run.target.as_str(), run.journey.as_str());
        let counted = || run.steps.iter().filter(|s| !s.agent_stalled);
        counted().for_each(|step| self.http_phases(step));
        if j == HEARTBEAT_JOURNEY {
            return;
        }
        self.journey_in_flight.with_label_values(&[t, j]).set(0.0);
        for step in counted() {
            self.step_duration
                .with_label_values(&[t, j, &step.step])
                .observe(step.duration.as_secs_f64());
            self.step_outcomes
                .with_label_values(&[t, j, &step.step, step.outcome.as_str()])
                .inc();
            if step.censored {
                self.steps_given_up
                    .with_label_values(&[t, j, &step.step])
                    .inc();
            }
        }
        let ended = run.intended_start + run.duration;
        self.journey_last_run
            .with_label_values(&[t, j])
            .set(unix_secs(ended));
        self.schedule_lateness
            .with_label_values(&[t, j])
            .observe(run.lateness().as_secs_f64());
        self.browser.observe(run);
        if run.agent_stalled {
            self.journey_stalled.with_label_values(&[t, j]).inc();
            return;
        }
        self.journey_duration
            .with_label_values(&[t, j])
            .observe(run.duration.as_secs_f64());
        self.journey_runs
            .with_label_values(&[t, j, run.outcome.as_str()])
            .inc();
        if run.kind == JourneyKind::Interactive {
            let acceptable = f64::from_bits(
                self.acceptable_seconds
                    .load(std::sync::atomic::Ordering::Relaxed),
            );
            self.over_acceptable
                .with_label_values(&[t, j])
                .inc_by(run.seconds_over_acceptable(acceptable));
        }
        self.journey_last_success
            .with_label_values(&[t, j])
            .set(if run.outcome.is_success() { 1.0 } else { 0.0 });
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every metric.
    /// The buffer starts at the last exposition's size, so a large one is
    /// not regrown (and copied) on every scrape.
    pub fn render(&self) -> Vec<u8> {
        let hint = self
            .last_render_len
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut buffer = Vec::with_capacity(hint + hint / 8);
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        self.last_render_len
            .store(buffer.len(), std::sync::atomic::Ordering::Relaxed);
        buffer
    }
}

/// Base buckets plus every configured `slow_after` and `freeze_after`.
fn step_buckets(config: &Config) -> Vec<f64> {
    let mut buckets = BASE_BUCKETS.to_vec();
    // Kept sessions' checks share these edges.
    for target in &config.targets {
        let keepalive = target.keep_sessions.as_ref().map(|k| &k.keepalive);
        let steps = target.login.iter().chain(&target.logout).chain(keepalive);
        for step in steps {
            buckets.push(step.timings.slow_after.as_secs_f64());
            buckets.push(step.timings.freeze_after.as_secs_f64());
        }
    }
    for step in config.journeys.iter().flat_map(|j| &j.steps) {
        buckets.push(step.timings.slow_after.as_secs_f64());
        buckets.push(step.timings.freeze_after.as_secs_f64());
    }
    let browser_timings = config
        .targets
        .iter()
        .filter_map(|t| t.browser.as_ref())
        .flat_map(|b| b.login.iter().chain(&b.logout))
        .chain(
            config
                .journeys
                .iter()
                .flat_map(|j| j.browser.iter().flat_map(|b| &b.steps)),
        )
        .map(|s| &s.timings);
    for timings in browser_timings {
        buckets.push(timings.slow_after.as_secs_f64());
        buckets.push(timings.freeze_after.as_secs_f64());
    }
    sorted_unique(buckets)
}

fn sorted_unique(mut buckets: Vec<f64>) -> Vec<f64> {
    buckets.retain(|b| *b > 0.0);
    buckets.sort_by(f64::total_cmp);
    buckets.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    buckets
}

/// Kept sessions' own families: their checks are not journey runs, so
/// they never reach availability, burn rates or the journey table.
struct KeptMetrics {
    checks: IntCounterVec,
    check_duration: HistogramVec,
    logins: IntCounterVec,
    ended: IntCounterVec,
}

impl KeptMetrics {
    fn new(buckets: &[f64]) -> Result<KeptMetrics, prometheus::Error> {
        Ok(KeptMetrics {
            checks: IntCounterVec::new(
                Opts::new(
                    "casewatch_keepalive_checks_total",
                    "Keep-alive checks of kept sessions, by outcome.",
                ),
                &["target", "outcome"],
            )?,
            check_duration: HistogramVec::new(
                HistogramOpts::new(
                    "casewatch_keepalive_duration_seconds",
                    "Time from sending a kept session's keep-alive check to its last byte (or to giving up).",
                )
                .buckets(buckets.to_vec()),
                &["target"],
            )?,
            logins: IntCounterVec::new(
                Opts::new(
                    "casewatch_kept_session_logins_total",
                    "Logins of kept sessions, by outcome (the first failing login step's, else ok or slow).",
                ),
                &["target", "outcome"],
            )?,
            ended: IntCounterVec::new(
                Opts::new(
                    "casewatch_kept_sessions_ended_total",
                    "Kept sessions' lives ended: forced (by the server), lost (failing with no sign of logout), max_age or agent_stop.",
                ),
                &["target", "end"],
            )?,
        })
    }

    fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.checks.clone()))?;
        registry.register(Box::new(self.check_duration.clone()))?;
        registry.register(Box::new(self.logins.clone()))?;
        registry.register(Box::new(self.ended.clone()))
    }

    fn prepare(&self, target: &str) {
        for outcome in Outcome::ALL {
            self.checks.with_label_values(&[target, outcome.as_str()]);
            self.logins.with_label_values(&[target, outcome.as_str()]);
        }
        self.check_duration.with_label_values(&[target]);
        for end in SessionEnd::KEPT_KINDS {
            self.ended.with_label_values(&[target, end]);
        }
    }

    fn observe(&self, record: &KeptRecord) {
        let t = record.target.as_str();
        match record.activity {
            KeptActivity::Check => {
                for step in record.steps.iter().filter(|s| !s.agent_stalled) {
                    self.checks
                        .with_label_values(&[t, step.outcome.as_str()])
                        .inc();
                    self.check_duration
                        .with_label_values(&[t])
                        .observe(step.duration.as_secs_f64());
                }
            }
            KeptActivity::Login if record.steps.iter().any(|s| s.agent_stalled) => {}
            KeptActivity::Login => {
                let (outcome, _) = crate::outcome::journey_outcome(&record.steps);
                self.logins.with_label_values(&[t, outcome.as_str()]).inc();
            }
            KeptActivity::Logout => {}
        }
        for end in record.sessions.iter().filter_map(|s| s.end) {
            self.ended.with_label_values(&[t, end.kind_str()]).inc();
        }
    }
}
