//! The agent's Prometheus metrics: one registry (no global macros), typed
//! helpers, and the text exposition for `/metrics`.
//!
//! Labels come only from names in the config (`target`, `journey`, `step`) and
//! small fixed enums (`outcome`); the agent's `site` is a constant label on
//! every series. Histogram buckets include every configured `slow_after` and
//! `freeze_after`, so "share of steps under the threshold" is exact.

use std::collections::HashMap;

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use crate::config::Config;
use crate::outcome::{unix_secs, Outcome, Record, RunRecord};

const BASE_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

const LATENESS_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0];

pub struct Metrics {
    registry: Registry,
    step_duration: HistogramVec,
    step_outcomes: IntCounterVec,
    journey_duration: HistogramVec,
    journey_runs: IntCounterVec,
    journey_last_success: GaugeVec,
    journey_last_run: GaugeVec,
    schedule_lateness: HistogramVec,
    schedule_missed: IntCounterVec,
    pub config_last_reload_successful: Gauge,
    pub config_last_reload_timestamp: Gauge,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up metrics")]
pub struct MetricsError(#[from] prometheus::Error);

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
        let journey_duration = HistogramVec::new(
            HistogramOpts::new(
                "casewatch_journey_duration_seconds",
                "Time from a run's intended start to the end of its last step.",
            )
            .buckets(BASE_BUCKETS.to_vec()),
            &["target", "journey"],
        )?;
        let journey_runs = IntCounterVec::new(
            Opts::new("casewatch_journey_runs_total", "Journey runs, by outcome."),
            &["target", "journey", "outcome"],
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

        registry.register(Box::new(step_duration.clone()))?;
        registry.register(Box::new(step_outcomes.clone()))?;
        registry.register(Box::new(journey_duration.clone()))?;
        registry.register(Box::new(journey_runs.clone()))?;
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
            journey_duration,
            journey_runs,
            journey_last_success,
            journey_last_run,
            schedule_lateness,
            schedule_missed,
            config_last_reload_successful,
            config_last_reload_timestamp,
        };
        metrics.initialise_series(config);
        Ok(metrics)
    }

    /// Creates every known series at zero, so `rate()` and alerts see them
    /// before the first failure happens (Prometheus instrumentation practice).
    fn initialise_series(&self, config: &Config) {
        for journey in &config.journeys {
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
                .chain(logout);
            for step in steps {
                for outcome in Outcome::ALL {
                    self.step_outcomes
                        .with_label_values(&[t, j, &step.name, outcome.as_str()]);
                }
            }
            for outcome in Outcome::ALL {
                self.journey_runs
                    .with_label_values(&[t, j, outcome.as_str()]);
            }
            self.schedule_missed.with_label_values(&[t, j]);
        }
    }

    pub fn observe(&self, record: &Record) {
        match record {
            Record::Run(run) => self.observe_run(run),
            Record::MissedSlots {
                target,
                journey,
                count,
            } => self
                .schedule_missed
                .with_label_values(&[target, journey])
                .inc_by(*count),
        }
    }

    fn observe_run(&self, run: &RunRecord) {
        let (t, j) = (run.target.as_str(), run.journey.as_str());
        for step in &run.steps {
            self.step_duration
                .with_label_values(&[t, j, &step.step])
                .observe(step.duration.as_secs_f64());
            self.step_outcomes
                .with_label_values(&[t, j, &step.step, step.outcome.as_str()])
                .inc();
        }
        self.journey_duration
            .with_label_values(&[t, j])
            .observe(run.duration.as_secs_f64());
        self.journey_runs
            .with_label_values(&[t, j, run.outcome.as_str()])
            .inc();
        self.journey_last_success
            .with_label_values(&[t, j])
            .set(if run.outcome.is_success() { 1.0 } else { 0.0 });
        let ended = run.intended_start + run.duration;
        self.journey_last_run
            .with_label_values(&[t, j])
            .set(unix_secs(ended));
        self.schedule_lateness
            .with_label_values(&[t, j])
            .observe(run.lateness().as_secs_f64());
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Base buckets plus every configured `slow_after` and `freeze_after`.
fn step_buckets(config: &Config) -> Vec<f64> {
    let mut buckets = BASE_BUCKETS.to_vec();
    for target in &config.targets {
        let steps = target.login.iter().chain(&target.logout);
        for step in steps {
            buckets.push(step.timings.slow_after.as_secs_f64());
            buckets.push(step.timings.freeze_after.as_secs_f64());
        }
    }
    for step in config.journeys.iter().flat_map(|j| &j.steps) {
        buckets.push(step.timings.slow_after.as_secs_f64());
        buckets.push(step.timings.freeze_after.as_secs_f64());
    }
    buckets.retain(|b| *b > 0.0);
    buckets.sort_by(f64::total_cmp);
    buckets.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    buckets
}
