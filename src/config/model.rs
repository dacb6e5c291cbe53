//! Stage two of config loading: the validated, typed configuration the agent runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::NaiveTime;
use regex::Regex;
use reqwest::Method;
use url::Url;

use super::template::Template;

#[derive(Debug)]
pub struct Config {
    /// Where the config came from, for messages.
    pub origin: String,
    /// The office the agent probes from; a label on every series and record.
    pub site: String,
    pub max_sessions: usize,
    pub age_bands: crate::detect::AgeBands,
    /// How many times faster than the wall clock the monitored system's own
    /// calendar runs: 1 for a real system; the simulator's `time_scale` in
    /// the demo, so the report's hours of the week are the system's.
    pub calendar_scale: f64,
    pub targets: Vec<Arc<Target>>,
    pub journeys: Vec<Arc<Journey>>,
    pub changes: Vec<ChangeEvent>,
    pub journal: Option<JournalOptions>,
    /// Central stores the agent pushes its metrics to (remote_write 1.0).
    pub remote_write: Vec<super::remote_write::RemoteWrite>,
    /// Who the agent stands for: the time-lost figure's assumptions.
    pub practitioners: super::practitioners::Practitioners,
    /// The agent's one Chromium, for browser journeys.
    pub browser: super::browser::BrowserSettings,
    /// What `run` will need from the machine, each where the file asks for
    /// it: `check-config` checks them (`crate::readiness`).
    pub requirements: Vec<Requirement>,
}

/// Something the agent will need from the machine it runs on, with the
/// line and context of the config that asks for it.
#[derive(Clone, Debug)]
pub struct Requirement {
    pub line: usize,
    /// e.g. `target "ics"`, as in a [`super::Problem`].
    pub context: String,
    pub need: Need,
}

#[derive(Clone, Debug)]
pub enum Need {
    /// A secret, under the key that names it (`credentials.password`).
    Secret { key: String, source: SecretSource },
    /// A file read at start (a CA bundle).
    File { key: String, path: PathBuf },
    /// A file the agent creates and writes (the journal, a queue): its
    /// folder must be there and take new files.
    Writable { key: String, path: PathBuf },
    /// A Chromium to start, for browser journeys.
    Browser,
}

impl Config {
    /// Whether any journey runs in the browser.
    pub fn has_browser_journeys(&self) -> bool {
        self.journeys.iter().any(|j| j.browser.is_some())
    }
}

impl Config {
    pub fn target(&self, name: &str) -> Option<&Arc<Target>> {
        self.targets.iter().find(|t| t.name == name)
    }
}

#[derive(Debug)]
pub struct Target {
    pub name: String,
    pub base_url: Url,
    pub insecure_skip_verify: bool,
    pub ca_file: Option<PathBuf>,
    pub proxy: Option<Url>,
    pub connect_timeout: Duration,
    pub max_body_bytes: u64,
    pub max_redirects: usize,
    pub user_agent: String,
    pub username: Option<SecretSource>,
    pub password: Option<SecretSource>,
    /// Step timings used where a step gives none.
    pub defaults: Timings,
    pub login: Vec<Step>,
    pub logout: Option<Step>,
    pub session_rules: SessionRules,
    pub heartbeat: Option<Heartbeat>,
    pub keep_sessions: Option<KeepSessions>,
    /// Origins besides `base_url`'s that steps and redirects may go to (a
    /// single sign-on server, say). A session's cookies and a form holding
    /// `${password}` go only where the target's owner said they may.
    pub allowed_origins: Vec<url::Origin>,
    /// Login and logout as done in a browser, for browser journeys.
    pub browser: Option<super::browser::BrowserLogin>,
}

impl Target {
    /// Whether a step or redirect may send a request to `url`: its origin is
    /// `base_url`'s or one the target allows by name.
    pub fn allows_origin(&self, url: &Url) -> bool {
        let origin = url.origin();
        origin == self.base_url.origin() || self.allowed_origins.contains(&origin)
    }
}

#[derive(Debug)]
pub struct Heartbeat {
    pub every: Duration,
    pub step: Step,
}

#[derive(Debug)]
pub struct KeepSessions {
    pub count: usize,
    pub stagger: Duration,
    pub every: Duration,
    pub max_age: Duration,
    pub keepalive: Step,
}

/// The journey label of heartbeat requests.
pub const HEARTBEAT_JOURNEY: &str = "heartbeat";

/// Where a credential is read from. Never inline in config files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
    /// Only accepted for user names, which are not secret.
    Value(String),
}

/// The signals that say "the server ended my session".
#[derive(Debug)]
pub struct SessionRules {
    pub redirect_to: Option<Regex>,
    pub statuses: Vec<u16>,
    pub body_matches: Option<Regex>,
    pub cookie: Option<String>,
    /// Landing on the target's own login page (a redirect to its first login
    /// step's path, or a page holding its login form) means logout. On by
    /// default: it needs no configuration and is the commonest sign.
    pub login_page: bool,
}

impl Default for SessionRules {
    fn default() -> Self {
        SessionRules {
            redirect_to: None,
            statuses: Vec::new(),
            body_matches: None,
            cookie: None,
            login_page: true,
        }
    }
}

#[derive(Debug)]
pub struct Journey {
    pub name: String,
    pub target: Arc<Target>,
    pub schedule: Schedule,
    pub login: bool,
    pub kind: JourneyKind,
    pub retry_after_relogin: bool,
    pub steps: Vec<Step>,
    /// Set for a journey run in the browser; its `steps` are then empty.
    pub browser: Option<super::browser::BrowserJourney>,
}

pub use crate::outcome::JourneyKind;

#[derive(Clone, Debug)]
pub struct Schedule {
    pub interval: Duration,
    pub jitter: Duration,
    pub active_hours: Option<(NaiveTime, NaiveTime)>,
}

impl Schedule {
    /// Whether `time` (local wall clock) falls in the active hours; a window
    /// may cross midnight ("22:00-06:00").
    pub fn is_active_at(&self, time: NaiveTime) -> bool {
        match self.active_hours {
            None => true,
            Some((from, to)) if from <= to => time >= from && time < to,
            Some((from, to)) => time >= from || time < to,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Timings {
    pub slow_after: Duration,
    pub freeze_after: Duration,
    pub give_up_after: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            slow_after: Duration::from_secs(3),
            freeze_after: Duration::from_secs(20),
            give_up_after: Duration::from_secs(120),
        }
    }
}

#[derive(Debug)]
pub struct Step {
    pub name: String,
    /// Line in the config file, for messages at run time.
    pub line: usize,
    pub method: Method,
    pub path: Template,
    pub query: Vec<(String, Template)>,
    pub body: Option<Body>,
    pub headers: Vec<(String, Template)>,
    pub extract: Vec<Extraction>,
    pub assertions: Assertions,
    pub think_time: Duration,
    pub timings: Timings,
    pub follow_redirects: bool,
    /// A report step inside an interactive journey is `Report`; every step
    /// of a report journey is too.
    pub kind: JourneyKind,
}

#[derive(Debug)]
pub enum Body {
    Form(Vec<(String, Template)>),
    /// JSON is rendered from its text form so `${var}` works inside strings.
    Raw {
        template: Template,
        content_type: &'static str,
    },
}

#[derive(Debug)]
pub struct Extraction {
    pub var: String,
    pub from: Extractor,
}

#[derive(Debug)]
pub enum Extractor {
    /// First capture group if the regex has one, else the whole match.
    Regex(Regex),
    Css {
        selector: scraper::Selector,
        /// `None` takes the element's text.
        attr: Option<String>,
    },
    JsonPointer(String),
    JsonPath(serde_json_path::JsonPath),
    Header(String),
}

#[derive(Debug, Default)]
pub struct Assertions {
    /// Empty means any 2xx or 3xx.
    pub status: Vec<u16>,
    pub body_contains: Vec<String>,
    pub body_not_contains: Vec<String>,
    pub body_matches: Vec<Regex>,
    pub headers: Vec<(String, Regex)>,
}

/// Where the journal is written and how long its records are kept.
#[derive(Clone, Debug)]
pub struct JournalOptions {
    pub path: PathBuf,
    /// How long successful runs are kept raw; older hours are folded into
    /// hourly rollups, which the report reads alike.
    pub keep_successes: Duration,
    /// How long failed runs, freezes, forced logouts and rollups are kept.
    pub keep_failures: Duration,
}

/// A dated change to the monitored system, e.g. "extra server capacity".
#[derive(Clone, Debug)]
pub struct ChangeEvent {
    pub name: String,
    pub at: SystemTime,
    pub description: String,
}
