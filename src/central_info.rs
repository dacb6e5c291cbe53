//! What the central report needs to know of the agent's config, as info
//! series (value 1, the facts in labels) that reach the central store with
//! everything else: each journey's kind, each step's kind and phase, the
//! journal's meta (calendar scale, age band edges, practitioners), and each
//! declared change. `casewatch report --prometheus` reads them with the
//! series API, so it finds the changes and the methods' inputs without the
//! agents' configs or journals.
//!
//! Every label comes from the config, so the number of series is bounded by
//! it. They are set at start and on every reload; a journey or change no
//! longer configured disappears.

use prometheus::{GaugeVec, Opts, Registry};

use crate::config::Config;
use crate::outcome::unix_secs;

#[derive(Clone)]
pub struct CentralInfo {
    journey: GaugeVec,
    step: GaugeVec,
    meta: GaugeVec,
    change: GaugeVec,
}

impl CentralInfo {
    pub fn register(
        registry: &Registry,
        config: &Config,
    ) -> Result<CentralInfo, prometheus::Error> {
        let info = CentralInfo {
            journey: GaugeVec::new(
                Opts::new(
                    "casewatch_journey_info",
                    "Always 1: each configured journey's kind (interactive or report).",
                ),
                &["target", "journey", "kind"],
            )?,
            step: GaugeVec::new(
                Opts::new(
                    "casewatch_step_info",
                    "Always 1: each step a journey runs, with its own kind (report for a report step) and phase (login, journey or logout).",
                ),
                &["target", "journey", "step", "kind", "phase"],
            )?,
            meta: GaugeVec::new(
                Opts::new(
                    "casewatch_report_meta_info",
                    "Always 1: what the journal's meta holds for the report (calendar scale, age band edges in seconds as JSON, the practitioners as JSON).",
                ),
                &["calendar_scale", "age_band_edges_seconds", "practitioners"],
            )?,
            change: GaugeVec::new(
                Opts::new(
                    "casewatch_change_info",
                    "Always 1: each declared change to the monitored system, at unix time `at`.",
                ),
                &["change", "at", "description"],
            )?,
        };
        for family in [&info.journey, &info.step, &info.meta, &info.change] {
            registry.register(Box::new(family.clone()))?;
        }
        info.update(config);
        Ok(info)
    }

    /// Takes on `config`'s journeys, meta and changes (at start and on reload).
    pub fn update(&self, config: &Config) {
        for family in [&self.journey, &self.step, &self.meta, &self.change] {
            family.reset();
        }
        for journey in &config.journeys {
            let (t, j) = (journey.target.name.as_str(), journey.name.as_str());
            let run_kind = journey.kind.as_str();
            self.journey.with_label_values(&[t, j, run_kind]).set(1.0);
            for (step, kind, phase) in steps(journey) {
                self.step
                    .with_label_values(&[t, j, step, kind, phase])
                    .set(1.0);
            }
        }
        let edges: Vec<f64> = config
            .age_bands
            .edges()
            .iter()
            .map(|d| d.as_secs_f64())
            .collect();
        let edges = serde_json::to_string(&edges).unwrap_or_else(|_| "[]".into());
        let practitioners =
            serde_json::to_string(&config.practitioners).unwrap_or_else(|_| "{}".into());
        self.meta
            .with_label_values(&[&config.calendar_scale.to_string(), &edges, &practitioners])
            .set(1.0);
        for change in &config.changes {
            self.change
                .with_label_values(&[
                    &change.name,
                    &unix_secs(change.at).to_string(),
                    &change.description,
                ])
                .set(1.0);
        }
    }
}

/// A journey's steps as the journal records them: (name, kind, phase).
fn steps(journey: &crate::config::Journey) -> Vec<(&str, &'static str, &'static str)> {
    let run_kind = journey.kind.as_str();
    let mut out = Vec::new();
    if journey.login {
        for s in &journey.target.login {
            out.push((s.name.as_str(), s.kind.as_str(), "login"));
        }
    }
    for s in &journey.steps {
        out.push((s.name.as_str(), s.kind.as_str(), "journey"));
    }
    if journey.login {
        if let Some(s) = &journey.target.logout {
            out.push((s.name.as_str(), s.kind.as_str(), "logout"));
        }
    }
    let browser_login = journey
        .login
        .then_some(journey.target.browser.as_ref())
        .flatten();
    for s in browser_login.into_iter().flat_map(|b| &b.login) {
        out.push((s.name.as_str(), run_kind, "login"));
    }
    for s in journey.browser.iter().flat_map(|b| &b.steps) {
        out.push((s.name.as_str(), run_kind, "journey"));
    }
    for s in browser_login.into_iter().flat_map(|b| &b.logout) {
        out.push((s.name.as_str(), run_kind, "logout"));
    }
    out
}
