//! The simulator's fault-model profile (`config/sim.yaml`): the serde structs,
//! loading with file and line in every error, validation, and the two built-in
//! profiles (the commented demo file embedded at build time, and a quiet one for
//! tests that inject their own faults).
//!
//! Sampling helpers live here too (lognormal latencies, hazard lifetimes), so
//! that the numbers a profile means are defined next to the profile.

use std::path::Path;
use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, Exp1, LogNormal};
use serde::{Deserialize, Serialize};

use super::SimError;

/// Which of the two simulated systems.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SystemId {
    /// The case-recording system.
    #[default]
    Ics,
    /// The reporting system that "sits above" the ICS.
    Css,
}

impl SystemId {
    pub fn as_str(self) -> &'static str {
        match self {
            SystemId::Ics => "ics",
            SystemId::Css => "css",
        }
    }

    /// Page-title prefix, as users see it.
    pub fn title(self) -> &'static str {
        match self {
            SystemId::Ics => "ICS",
            SystemId::Css => "CSS",
        }
    }

    pub fn cookie_name(self) -> &'static str {
        match self {
            SystemId::Ics => "ICSSESSION",
            SystemId::Css => "CSSSESSION",
        }
    }
}

/// How the server tells a client that it has ended the session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogoutStyle {
    /// 302 to `/login?expired=1`.
    #[default]
    #[serde(rename = "redirect")]
    Redirect,
    #[serde(rename = "status_401")]
    Status401,
    #[serde(rename = "status_403")]
    Status403,
    /// IIS's "login time-out", used by some hosted case systems.
    #[serde(rename = "status_440")]
    Status440,
    /// 200 with "Your session has expired" and no redirect.
    #[serde(rename = "expired_page")]
    ExpiredPage,
    /// 200 login page plus a `Set-Cookie` that clears the session cookie.
    #[serde(rename = "cookie_cleared")]
    CookieCleared,
    /// 200 login page, no redirect, the session cookie left as it was: a
    /// system that ends sessions on the server only.
    #[serde(rename = "login_page")]
    LoginPage,
    /// 302 to `/login?next=%2Fhome`, a return to the page the user was
    /// on; the logout itself first redirects to `/home`, which then does
    /// so (as Django's admin answers a logout of a session it dropped).
    #[serde(rename = "return_to")]
    ReturnTo,
}

impl LogoutStyle {
    pub fn as_str(self) -> &'static str {
        match self {
            LogoutStyle::Redirect => "redirect",
            LogoutStyle::Status401 => "status_401",
            LogoutStyle::Status403 => "status_403",
            LogoutStyle::Status440 => "status_440",
            LogoutStyle::ExpiredPage => "expired_page",
            LogoutStyle::CookieCleared => "cookie_cleared",
            LogoutStyle::LoginPage => "login_page",
            LogoutStyle::ReturnTo => "return_to",
        }
    }
}

/// The whole fault model. Sim-time quantities are multiplied by `time_scale`
/// against the wall clock; latencies and freeze durations are real time.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimProfile {
    /// Simulated seconds per real second.
    #[serde(default = "one")]
    pub time_scale: f64,
    /// Seeds the draws of session lifetimes, so that a run's forced-logout
    /// ages repeat exactly (the n-th login gets the n-th lifetime); random
    /// when absent.
    #[serde(default)]
    pub seed: Option<u64>,
    /// User names the sim accepts (with the one password from `SimOptions`).
    pub users: Vec<String>,
    #[serde(default)]
    pub latency: LatencyProfile,
    #[serde(default)]
    pub capacity: PerSystem<CapacitySpec>,
    /// Random freeze episodes; a system without an entry never freezes by itself.
    #[serde(default)]
    pub freezes: PerSystemOpt<FreezeSpec>,
    #[serde(default)]
    pub forced_logout: ForcedLogoutSpec,
    /// Sessions idle longer than this (sim time) are ended by the server.
    #[serde(default, with = "opt_duration")]
    pub idle_timeout: Option<Duration>,
    #[serde(default)]
    pub restarts: PerSystemOpt<RestartSpec>,
    /// Which system's capacity management reports consume at start-up.
    #[serde(default)]
    pub reports_on: SystemId,
    /// Other users' load through the day and the week, in the sim's calendar.
    #[serde(default)]
    pub load_cycle: Option<LoadCycle>,
}

/// Background load from the staff who are not the agent: requests in
/// service on each system besides the agent's own, by the hour of the sim's
/// calendar (which runs `time_scale` times faster than the wall clock, from
/// the unix epoch, in UTC).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadCycle {
    /// Working hours on weekdays, e.g. `08:00-18:00`.
    #[serde(default = "default_busy_hours")]
    pub busy_hours: String,
    /// Requests in service in working hours on weekdays.
    pub busy: f64,
    /// Outside working hours on weekdays.
    pub quiet: f64,
    /// At weekends.
    pub weekend: f64,
}

fn default_busy_hours() -> String {
    "08:00-18:00".to_string()
}

impl LoadCycle {
    /// Working hours as hours of the day, `[from, to)`.
    pub fn hours(&self) -> Option<(f64, f64)> {
        let (from, to) = self.busy_hours.split_once('-')?;
        let hour = |t: &str| {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (f64, f64) = (h.parse().ok()?, m.parse().ok()?);
            (0.0..=24.0).contains(&h).then_some(h + m / 60.0)
        };
        let (from, to) = (hour(from)?, hour(to)?);
        (from < to).then_some((from, to))
    }

    /// The background requests in service at sim calendar time `cal`
    /// (seconds since the epoch).
    pub fn at(&self, cal: f64) -> f64 {
        let day = (cal / 86_400.0).floor();
        let hour = (cal - day * 86_400.0) / 3600.0;
        // 1970-01-01 was a Thursday: with Monday as 0, day 0 is 3.
        if (day as i64 + 3).rem_euclid(7) >= 5 {
            return self.weekend;
        }
        match self.hours() {
            Some((from, to)) if hour >= from && hour < to => self.busy,
            _ => self.quiet,
        }
    }
}

fn one() -> f64 {
    1.0
}

/// The same setting for each system.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerSystem<T> {
    #[serde(default)]
    pub ics: T,
    #[serde(default)]
    pub css: T,
}

impl<T> PerSystem<T> {
    pub fn get(&self, which: SystemId) -> &T {
        match which {
            SystemId::Ics => &self.ics,
            SystemId::Css => &self.css,
        }
    }
}

/// An optional setting for each system.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "T: Deserialize<'de>"))]
pub struct PerSystemOpt<T> {
    #[serde(default)]
    pub ics: Option<T>,
    #[serde(default)]
    pub css: Option<T>,
}

// Derived Default would demand `T: Default`, which a spec with no sensible
// default (a freeze rate) should not need.
impl<T> Default for PerSystemOpt<T> {
    fn default() -> Self {
        PerSystemOpt {
            ics: None,
            css: None,
        }
    }
}

impl<T> PerSystemOpt<T> {
    pub fn get(&self, which: SystemId) -> Option<&T> {
        match which {
            SystemId::Ics => self.ics.as_ref(),
            SystemId::Css => self.css.as_ref(),
        }
    }
}

/// Request classes, each with its own latency distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestClass {
    Page,
    Search,
    Save,
    Report,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyProfile {
    #[serde(default = "LatencySpec::fast")]
    pub page: LatencySpec,
    #[serde(default = "LatencySpec::fast")]
    pub search: LatencySpec,
    #[serde(default = "LatencySpec::fast")]
    pub save: LatencySpec,
    #[serde(default = "LatencySpec::fast")]
    pub report: LatencySpec,
}

impl Default for LatencyProfile {
    fn default() -> Self {
        LatencyProfile {
            page: LatencySpec::fast(),
            search: LatencySpec::fast(),
            save: LatencySpec::fast(),
            report: LatencySpec::fast(),
        }
    }
}

impl LatencyProfile {
    pub fn get(&self, class: RequestClass) -> &LatencySpec {
        match class {
            RequestClass::Page => &self.page,
            RequestClass::Search => &self.search,
            RequestClass::Save => &self.save,
            RequestClass::Report => &self.report,
        }
    }
}

/// A lognormal distribution given by two quantiles people can reason about.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    #[serde(with = "duration")]
    pub median: Duration,
    #[serde(with = "duration")]
    pub p99: Duration,
}

/// z-score of the 99th percentile of a standard normal.
const Z99: f64 = 2.326_347_874;

impl LatencySpec {
    pub fn fast() -> Self {
        LatencySpec {
            median: Duration::from_millis(2),
            p99: Duration::from_millis(5),
        }
    }

    /// One draw. Clamped at ten times the p99 so a freak draw cannot look like
    /// a freeze that the truth log does not know about.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let m = self.median.as_secs_f64();
        let p = self.p99.as_secs_f64();
        if m <= 0.0 {
            return Duration::ZERO;
        }
        let sigma = ((p / m).ln() / Z99).max(0.0);
        let secs = match LogNormal::new(m.ln(), sigma) {
            Ok(d) => d.sample(rng),
            Err(_) => m,
        };
        Duration::try_from_secs_f64(secs.clamp(0.0, p * 10.0)).unwrap_or(self.p99)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySpec {
    /// Concurrent requests served at full speed.
    #[serde(default = "default_workers")]
    pub workers: u32,
    /// How many ordinary requests one report counts as.
    #[serde(default = "default_report_weight")]
    pub report_weight: u32,
}

fn default_workers() -> u32 {
    1000
}

fn default_report_weight() -> u32 {
    1
}

impl Default for CapacitySpec {
    fn default() -> Self {
        CapacitySpec {
            workers: default_workers(),
            report_weight: default_report_weight(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeSpec {
    /// Mean time between freeze starts (sim time, exponential).
    #[serde(with = "duration")]
    pub mean_interval: Duration,
    /// How long each freeze lasts (real time).
    pub duration: LatencySpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForcedLogoutSpec {
    #[serde(default)]
    pub style: LogoutStyle,
    /// Piecewise-constant hazard by session age; empty means never.
    #[serde(default)]
    pub hazard: Vec<HazardStep>,
}

/// From session age `from` (sim time) on, sessions end at `per_hour` per
/// simulated hour (until the next step).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HazardStep {
    #[serde(with = "duration")]
    pub from: Duration,
    pub per_hour: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartSpec {
    /// Mean time between restarts (sim time, exponential).
    #[serde(with = "duration")]
    pub mean_interval: Duration,
    /// How long the system answers 503 after a restart (real time).
    #[serde(default = "default_downtime", with = "duration")]
    pub downtime: Duration,
}

fn default_downtime() -> Duration {
    Duration::from_secs(5)
}

/// Upper bound on real-time settings, so every product with a load factor
/// stays far from `Duration`'s range.
const MAX_REAL: Duration = Duration::from_secs(3600);

const DEFAULT_YAML: &str = include_str!("../../config/sim.yaml");

impl SimProfile {
    /// Reads and validates a profile; errors name the file and line.
    pub fn load(path: &Path) -> Result<SimProfile, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml_str(&text, &path.display().to_string())
    }

    /// Parses and validates; `origin` names the text in error messages.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<SimProfile, SimError> {
        let profile: SimProfile = marked_yaml::from_yaml(0, text).map_err(|e| {
            let message = match &e {
                marked_yaml::FromYamlError::ParseYaml(inner) => format!("{origin}: {inner}"),
                marked_yaml::FromYamlError::FromNode(inner) => match inner.start_mark() {
                    Some(m) => format!("{origin}:{}:{}: {inner}", m.line(), m.column()),
                    None => format!("{origin}: {inner}"),
                },
            };
            SimError::Profile(message)
        })?;
        profile.validate(origin)?;
        Ok(profile)
    }

    /// The shipped demo profile (`config/sim.yaml`).
    pub fn embedded_default() -> SimProfile {
        match Self::from_yaml_str(DEFAULT_YAML, "config/sim.yaml") {
            Ok(p) => p,
            // A unit test parses the embedded file, so this cannot ship broken.
            Err(e) => panic!("embedded config/sim.yaml is invalid: {e}"),
        }
    }

    /// No random faults, 1-5 ms latency, ample capacity, real time: for tests
    /// that inject faults themselves through the control API.
    pub fn quiet() -> SimProfile {
        SimProfile {
            time_scale: 1.0,
            seed: None,
            users: vec!["sw.demo".into(), "sw.north".into(), "sw.south".into()],
            latency: LatencyProfile::default(),
            capacity: PerSystem::default(),
            freezes: PerSystemOpt::default(),
            forced_logout: ForcedLogoutSpec::default(),
            idle_timeout: None,
            restarts: PerSystemOpt::default(),
            reports_on: SystemId::Ics,
            load_cycle: None,
        }
    }

    fn validate(&self, origin: &str) -> Result<(), SimError> {
        let mut errors = Vec::new();
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            errors.push("time_scale must be a positive number".to_string());
        }
        if let Some(cycle) = &self.load_cycle {
            if cycle.hours().is_none() {
                errors.push(format!(
                    "load_cycle.busy_hours {:?} must look like 08:00-18:00",
                    cycle.busy_hours
                ));
            }
            for (name, v) in [
                ("busy", cycle.busy),
                ("quiet", cycle.quiet),
                ("weekend", cycle.weekend),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    errors.push(format!("load_cycle.{name} must be zero or more requests"));
                }
            }
        }
        if self.users.is_empty() {
            errors.push("users must name at least one user".to_string());
        }
        for (name, spec) in [
            ("page", &self.latency.page),
            ("search", &self.latency.search),
            ("save", &self.latency.save),
            ("report", &self.latency.report),
        ] {
            if spec.p99 < spec.median {
                errors.push(format!("latency.{name}: p99 is below the median"));
            }
            if spec.p99 > MAX_REAL {
                errors.push(format!("latency.{name}: p99 must be at most 1h"));
            }
        }
        for which in [SystemId::Ics, SystemId::Css] {
            let s = which.as_str();
            let cap = self.capacity.get(which);
            if cap.workers == 0 {
                errors.push(format!("capacity.{s}.workers must be at least 1"));
            }
            if cap.report_weight == 0 {
                errors.push(format!("capacity.{s}.report_weight must be at least 1"));
            }
            if let Some(f) = self.freezes.get(which) {
                if f.mean_interval.is_zero() {
                    errors.push(format!("freezes.{s}.mean_interval must be above zero"));
                }
                if f.duration.p99 < f.duration.median {
                    errors.push(format!("freezes.{s}.duration: p99 is below the median"));
                }
                if f.duration.p99 > MAX_REAL {
                    errors.push(format!("freezes.{s}.duration: p99 must be at most 1h"));
                }
            }
            if let Some(r) = self.restarts.get(which) {
                if r.mean_interval.is_zero() {
                    errors.push(format!("restarts.{s}.mean_interval must be above zero"));
                }
                if r.downtime > MAX_REAL {
                    errors.push(format!("restarts.{s}.downtime must be at most 1h"));
                }
            }
        }
        let mut prev: Option<Duration> = None;
        for (i, step) in self.forced_logout.hazard.iter().enumerate() {
            if !(step.per_hour.is_finite() && step.per_hour >= 0.0) {
                errors.push(format!(
                    "forced_logout.hazard[{i}].per_hour must be zero or more"
                ));
            }
            if prev.is_some_and(|p| step.from <= p) {
                errors.push(format!(
                    "forced_logout.hazard[{i}].from must be after the previous step"
                ));
            }
            prev = Some(step.from);
        }
        if self.idle_timeout.is_some_and(|d| d.is_zero()) {
            errors.push("idle_timeout must be above zero".to_string());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SimError::Profile(format!(
                "{origin}: {}",
                errors.join("; ")
            )))
        }
    }
}

/// Samples a session lifetime (sim time) from a piecewise-constant hazard by
/// inverse transform: draw E ~ Exp(1) and find the age at which the
/// cumulative hazard reaches E. `None` means the hazard never reaches it
/// (the session lives until logout or another cause ends it).
pub fn sample_lifetime<R: Rng + ?Sized>(hazard: &[HazardStep], rng: &mut R) -> Option<Duration> {
    let target: f64 = Exp1.sample(rng);
    lifetime_for(hazard, target)
}

/// The age at which the cumulative hazard reaches `target`.
pub fn lifetime_for(hazard: &[HazardStep], target: f64) -> Option<Duration> {
    let mut cumulative = 0.0;
    for (i, step) in hazard.iter().enumerate() {
        let rate = step.per_hour / 3600.0;
        let start = step.from.as_secs_f64();
        let end = hazard.get(i + 1).map(|n| n.from.as_secs_f64());
        let width = end.map(|e| e - start);
        if rate > 0.0 {
            let needed = (target - cumulative) / rate;
            if width.is_none_or(|w| needed <= w) {
                // Too far off to represent is as good as never.
                return Duration::try_from_secs_f64(start + needed).ok();
            }
        }
        if let Some(w) = width {
            cumulative += rate * w;
        }
    }
    None
}

/// humantime strings (`30s`, `2h`, `250ms`) for required durations.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} ({e}); use e.g. 250ms, 30s, 2h"
            ))
        })
    }
}

/// humantime strings for optional durations.
mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// `off` (or `none`) disables the setting explicitly.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        let t = text.trim();
        if t.eq_ignore_ascii_case("off") || t.eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        humantime::parse_duration(t).map(Some).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} ({e}); use e.g. 45m, 2h, or off"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn embedded_default_parses() {
        let p = SimProfile::embedded_default();
        assert_eq!(p.time_scale, 60.0);
        assert!(p.users.iter().any(|u| u == "sw.demo"));
        assert!(p.freezes.ics.is_some());
        assert!(!p.forced_logout.hazard.is_empty());
    }

    #[test]
    fn unknown_key_is_rejected_with_line() {
        let text = "time_scale: 2\nusers: [a]\nlatency:\n  page: {median: 1ms, p99: 2ms}\n  serch: {median: 1ms, p99: 2ms}\n";
        let err = SimProfile::from_yaml_str(text, "x.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.yaml:5:3: "), "{err}");
        assert!(err.contains("serch"), "{err}");
    }

    #[test]
    fn bad_duration_names_line() {
        let text = "users: [a]\nidle_timeout: soon\n";
        let err = SimProfile::from_yaml_str(text, "x.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.yaml:2:"), "{err}");
        assert!(err.contains("invalid duration"), "{err}");
    }

    #[test]
    fn full_profile_parses() {
        let text = r#"
time_scale: 60
users: [sw.demo]
latency:
  search: {median: 150ms, p99: 900ms}
capacity:
  ics: {workers: 4, report_weight: 3}
freezes:
  ics: {mean_interval: 30m, duration: {median: 5s, p99: 12s}}
forced_logout:
  style: status_440
  hazard:
    - {from: 0h, per_hour: 0.05}
    - {from: 2h, per_hour: 0.6}
idle_timeout: 45m
restarts:
  css: {mean_interval: 8h}
reports_on: css
"#;
        let p = SimProfile::from_yaml_str(text, "t").unwrap();
        assert_eq!(p.forced_logout.style, LogoutStyle::Status440);
        assert_eq!(p.capacity.ics.workers, 4);
        assert_eq!(p.capacity.css.workers, 1000);
        assert_eq!(p.idle_timeout, Some(Duration::from_secs(45 * 60)));
        assert_eq!(p.reports_on, SystemId::Css);
        assert_eq!(
            p.restarts.css.as_ref().map(|r| r.downtime),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn validation_collects_errors() {
        let text = "time_scale: 0\nusers: []\nforced_logout:\n  hazard:\n    - {from: 2h, per_hour: 1}\n    - {from: 1h, per_hour: 1}\n";
        let err = SimProfile::from_yaml_str(text, "v")
            .unwrap_err()
            .to_string();
        assert!(err.contains("time_scale"), "{err}");
        assert!(err.contains("users"), "{err}");
        assert!(err.contains("hazard[1].from"), "{err}");
    }

    #[test]
    fn off_and_bounds() {
        let p = SimProfile::from_yaml_str("users: [a]\nidle_timeout: off\n", "o").unwrap();
        assert_eq!(p.idle_timeout, None);
        let text = "users: [a]\nlatency:\n  report: {median: 2h, p99: 3h}\n";
        let err = SimProfile::from_yaml_str(text, "o")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("latency.report: p99 must be at most 1h"),
            "{err}"
        );
        // A vanishing hazard is "never", not a panic.
        assert_eq!(lifetime_for(&[step(0.0, 1e-300)], 1.0), None);
    }

    fn step(from_h: f64, per_hour: f64) -> HazardStep {
        HazardStep {
            from: Duration::from_secs_f64(from_h * 3600.0),
            per_hour,
        }
    }

    #[test]
    fn zero_hazard_never_ends() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(sample_lifetime(&[], &mut rng), None);
        assert_eq!(sample_lifetime(&[step(0.0, 0.0)], &mut rng), None);
        // Hazard only in a closed window: beyond it, survivors live forever.
        let h = [step(0.0, 0.0), step(1.0, 1.0), step(2.0, 0.0)];
        assert_eq!(lifetime_for(&h, 5.0), None);
        assert_eq!(lifetime_for(&h, 0.5), Some(Duration::from_secs(5400)));
    }

    #[test]
    fn constant_hazard_mean_matches() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let h = [step(0.0, 0.5)]; // mean lifetime 2 h
        let n = 20_000;
        let total: f64 = (0..n)
            .map(|_| {
                sample_lifetime(&h, &mut rng)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(f64::INFINITY)
            })
            .sum();
        let mean_h = total / n as f64 / 3600.0;
        assert!((mean_h - 2.0).abs() < 0.1, "mean {mean_h} h");
    }

    #[test]
    fn rising_hazard_inverse_transform() {
        let h = [step(0.0, 0.0), step(2.0, 1.0)];
        // Nothing before 2 h; then one unit of cumulative hazard per hour.
        assert_eq!(lifetime_for(&h, 0.5), Some(Duration::from_secs(9000)));
        let h = [step(0.0, 1.0), step(1.0, 2.0)];
        assert_eq!(lifetime_for(&h, 2.0), Some(Duration::from_secs(5400)));
    }

    #[test]
    fn lognormal_quantiles() {
        let spec = LatencySpec {
            median: Duration::from_millis(100),
            p99: Duration::from_millis(400),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut v: Vec<f64> = (0..10_000)
            .map(|_| spec.sample(&mut rng).as_secs_f64())
            .collect();
        v.sort_by(f64::total_cmp);
        let med = v[5000];
        let p99 = v[9900];
        assert!((med - 0.1).abs() < 0.01, "median {med}");
        assert!((p99 - 0.4).abs() < 0.06, "p99 {p99}");
    }
}
