//! The browser's own metric families, on the agent's registry.
//!
//! Browser steps count in the same `casewatch_step_*` and `casewatch_journey_*`
//! series as HTTP steps (same outcomes, same meaning); these add what only a
//! browser sees. Labels are config names and small fixed sets: `side`
//! (`server`, `client`, `mixed`), `timing` (`first_byte`,
//! `dom_content_loaded`, `load`, `largest_contentful_paint`), `result`.

use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::config::Config;
use crate::outcome::{FreezeSide, RunRecord};

const BLOCKED_BUCKETS: [f64; 13] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

const PAGE_BUCKETS: [f64; 14] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

/// The page timings a step can have, as `timing` label values.
pub const TIMINGS: [&str; 4] = [
    "first_byte",
    "dom_content_loaded",
    "load",
    "largest_contentful_paint",
];

#[derive(Clone)]
pub struct BrowserMetrics {
    frozen_steps: IntCounterVec,
    main_thread_blocked: HistogramVec,
    page: HistogramVec,
    pub(super) up: Gauge,
    pub(super) starts: IntCounterVec,
    pub(super) contexts: IntGauge,
    pub(super) evidence: IntCounter,
}

impl BrowserMetrics {
    pub fn new() -> Result<BrowserMetrics, prometheus::Error> {
        Ok(BrowserMetrics {
            frozen_steps: IntCounterVec::new(
                Opts::new(
                    "casewatch_browser_frozen_steps_total",
                    "Browser steps that froze, by side: server (the network waited on the server), client (the page's main thread was blocked while the server answered) or mixed.",
                ),
                &["target", "journey", "step", "side"],
            )?,
            main_thread_blocked: HistogramVec::new(
                HistogramOpts::new(
                    "casewatch_browser_main_thread_blocked_seconds",
                    "The longest stretch the page's main thread was blocked during each browser step.",
                )
                .buckets(BLOCKED_BUCKETS.to_vec()),
                &["target", "journey"],
            )?,
            page: HistogramVec::new(
                HistogramOpts::new(
                    "casewatch_browser_page_seconds",
                    "From a browser step's start to its page's first byte, DOMContentLoaded, load and largest contentful paint.",
                )
                .buckets(PAGE_BUCKETS.to_vec()),
                &["target", "journey", "timing"],
            )?,
            up: Gauge::with_opts(Opts::new(
                "casewatch_browser_up",
                "1 while the agent's Chromium is running.",
            ))?,
            starts: IntCounterVec::new(
                Opts::new(
                    "casewatch_browser_starts_total",
                    "Chromium starts, by result (ok, failed); more than one ok start means it was restarted.",
                ),
                &["result"],
            )?,
            contexts: IntGauge::with_opts(Opts::new(
                "casewatch_browser_contexts_in_use",
                "Browser contexts (one per running browser journey) open now.",
            ))?,
            evidence: IntCounter::with_opts(Opts::new(
                "casewatch_browser_evidence_saved_total",
                "Failed browser steps whose evidence (screenshot, console errors) was saved.",
            ))?,
        })
    }

    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.frozen_steps.clone()))?;
        registry.register(Box::new(self.main_thread_blocked.clone()))?;
        registry.register(Box::new(self.page.clone()))?;
        registry.register(Box::new(self.up.clone()))?;
        registry.register(Box::new(self.starts.clone()))?;
        registry.register(Box::new(self.contexts.clone()))?;
        registry.register(Box::new(self.evidence.clone()))
    }

    /// Creates the series of every browser journey's steps at zero.
    pub fn prepare(&self, config: &Config) {
        for result in ["ok", "failed"] {
            self.starts.with_label_values(&[result]);
        }
        for journey in &config.journeys {
            let Some(browser) = &journey.browser else {
                continue;
            };
            let (t, j) = (journey.target.name.as_str(), journey.name.as_str());
            let login = journey
                .login
                .then_some(journey.target.browser.as_ref())
                .flatten();
            let steps = login
                .into_iter()
                .flat_map(|l| &l.login)
                .chain(&browser.steps)
                .chain(login.into_iter().flat_map(|l| &l.logout));
            for step in steps {
                for side in FreezeSide::ALL {
                    self.frozen_steps
                        .with_label_values(&[t, j, &step.name, side.as_str()]);
                }
            }
            self.main_thread_blocked.with_label_values(&[t, j]);
            for timing in TIMINGS {
                self.page.with_label_values(&[t, j, timing]);
            }
        }
    }

    /// A finished run's browser steps.
    pub fn observe(&self, run: &RunRecord) {
        let (t, j) = (run.target.as_str(), run.journey.as_str());
        for step in run.steps.iter().filter(|s| !s.agent_stalled) {
            let Some(page) = &step.browser else {
                continue;
            };
            if let Some(side) = step.freeze_side() {
                self.frozen_steps
                    .with_label_values(&[t, j, &step.step, side.as_str()])
                    .inc();
            }
            self.main_thread_blocked
                .with_label_values(&[t, j])
                .observe(page.main_thread_blocked.as_secs_f64());
            let timings = [
                page.first_byte,
                page.dom_content_loaded,
                page.load,
                page.largest_contentful_paint,
            ];
            for (name, value) in TIMINGS.iter().zip(timings) {
                if let Some(value) = value {
                    self.page
                        .with_label_values(&[t, j, name])
                        .observe(value.as_secs_f64());
                }
            }
        }
    }
}
