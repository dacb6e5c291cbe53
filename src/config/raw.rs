//! Stage one of config loading: the YAML file as written, with spans.
//!
//! Every struct rejects unknown keys. Values that need checking (durations,
//! regexes, URLs, selectors) stay strings here, wrapped in [`Spanned`] so that
//! stage two can name the line of each mistake.

use std::collections::BTreeMap;

use marked_yaml::Spanned;
use serde::Deserialize;

pub type S = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub site: Option<S>,
    #[serde(default)]
    pub agent: Option<RawAgent>,
    #[serde(default)]
    pub targets: Vec<RawTarget>,
    #[serde(default)]
    pub journeys: Vec<RawJourney>,
    #[serde(default)]
    pub changes: Vec<RawChange>,
    pub journal: Option<RawJournal>,
    /// Central stores to push the agent's metrics to.
    #[serde(default)]
    pub remote_write: Vec<super::remote_write::RawRemoteWrite>,
    /// Who the agent stands for, for the time-lost figure.
    pub practitioners: Option<super::practitioners::RawPractitioners>,
    /// The Chromium that browser journeys run in.
    pub browser: Option<super::browser::RawBrowser>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJournal {
    pub path: S,
    pub keep_successes: Option<S>,
    pub keep_failures: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub max_sessions: Option<Spanned<usize>>,
    /// Upper edges of the session-age bands, e.g. [1h, 2h, 3h, 4h].
    pub age_bands: Option<Vec<S>>,
    /// How many times faster than the wall clock the monitored system's
    /// own calendar runs (1; the simulator's `time_scale` in the demo).
    pub calendar_scale: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub name: S,
    pub base_url: S,
    #[serde(default)]
    pub tls: Option<RawTls>,
    pub proxy: Option<S>,
    pub connect_timeout: Option<S>,
    pub max_body: Option<S>,
    pub max_redirects: Option<Spanned<usize>>,
    pub user_agent: Option<S>,
    #[serde(default)]
    pub credentials: Option<RawCredentials>,
    #[serde(default)]
    pub defaults: Option<RawTimings>,
    #[serde(default)]
    pub login: Vec<RawStep>,
    pub logout: Option<RawStep>,
    #[serde(default)]
    pub session_rules: Option<RawSessionRules>,
    pub heartbeat: Option<RawHeartbeat>,
    pub keep_sessions: Option<RawKeepSessions>,
    /// Other origins steps may go to, e.g. `https://sso.example.gov.uk`.
    #[serde(default)]
    pub allowed_origins: Vec<S>,
    /// Login and logout as done in a browser, for browser journeys.
    pub browser: Option<super::browser::RawTargetBrowser>,
}

/// A cheap request sent every few seconds to sharpen freeze boundaries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    pub path: S,
    pub every: S,
    pub freeze_after: Option<S>,
    pub give_up_after: Option<S>,
}

/// Long-lived logged-in sessions, for survival by session age.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeepSessions {
    pub count: Spanned<usize>,
    /// Delay between the starts of successive sessions.
    pub stagger: Option<S>,
    /// How often each session runs its keep-alive step.
    pub every: S,
    pub max_age: S,
    pub keepalive: RawStep,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    #[serde(default)]
    pub insecure_skip_verify: Option<Spanned<bool>>,
    pub ca_file: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredentials {
    pub username: Option<Spanned<RawSecret>>,
    pub password: Option<Spanned<RawSecret>>,
}

/// A value that must not be written inline: it names where to read it from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    pub env: Option<S>,
    pub file: Option<S>,
    /// Allowed for non-secret values such as a user name only.
    pub value: Option<S>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTimings {
    pub slow_after: Option<S>,
    pub freeze_after: Option<S>,
    pub give_up_after: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessionRules {
    /// A regex over the Location header of a redirect.
    pub redirect_to: Option<S>,
    #[serde(default)]
    pub statuses: Vec<Spanned<u16>>,
    /// A regex over the body of a page that says the session ended.
    pub body_matches: Option<S>,
    /// The name of the session cookie whose clearing means logout.
    pub cookie: Option<S>,
    /// Whether landing on the target's own login page means logout (default true).
    pub login_page: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJourney {
    pub name: S,
    pub target: S,
    pub schedule: Option<RawSchedule>,
    /// Whether the journey logs in first (default true).
    pub login: Option<Spanned<bool>>,
    /// `interactive` (default) or `report`: report runs load the system.
    pub kind: Option<S>,
    /// After a forced logout, log in again and retry the interrupted step once.
    pub retry_after_relogin: Option<Spanned<bool>>,
    #[serde(default)]
    pub steps: Vec<RawStep>,
    /// Steps run in a real browser instead of HTTP steps.
    pub browser: Option<super::browser::RawJourneyBrowser>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub interval: S,
    pub jitter: Option<S>,
    /// "HH:MM-HH:MM" in the agent's local time.
    pub active_hours: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub name: S,
    pub method: Option<S>,
    pub path: S,
    #[serde(default)]
    pub query: BTreeMap<String, S>,
    pub form: Option<BTreeMap<String, S>>,
    pub json: Option<serde_json::Value>,
    pub body: Option<S>,
    #[serde(default)]
    pub headers: BTreeMap<String, S>,
    #[serde(default)]
    pub extract: Vec<RawExtract>,
    #[serde(default, rename = "assert")]
    pub assertions: Option<RawAssert>,
    pub think_time: Option<S>,
    pub slow_after: Option<S>,
    pub freeze_after: Option<S>,
    pub give_up_after: Option<S>,
    pub follow_redirects: Option<Spanned<bool>>,
    /// `report` marks a report step inside an interactive journey.
    pub kind: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExtract {
    /// The variable name, used later as `${name}`.
    pub var: S,
    pub regex: Option<S>,
    pub css: Option<S>,
    /// With `css`: take this attribute instead of the element's text.
    pub attr: Option<S>,
    pub json_pointer: Option<S>,
    pub jsonpath: Option<S>,
    pub header: Option<S>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAssert {
    #[serde(default)]
    pub status: Vec<Spanned<u16>>,
    #[serde(default)]
    pub body_contains: Vec<S>,
    #[serde(default)]
    pub body_not_contains: Vec<S>,
    #[serde(default)]
    pub body_matches: Vec<S>,
    #[serde(default)]
    pub headers: BTreeMap<String, S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChange {
    pub name: S,
    /// RFC 3339 timestamp.
    pub at: S,
    pub description: Option<S>,
}
