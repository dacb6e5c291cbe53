//! Browser journeys in the config: the agent-wide `browser:` block (its one
//! Chromium), a target's `browser:` login and logout, and a journey's
//! `browser:` steps, raw as written and validated.
//!
//! A browser step does one thing a person does (`goto`, `fill`, `click`,
//! `wait_for`) and may then check the page (`assert`) and read values from
//! it (`extract`), with the same `slow_after`, `freeze_after` and
//! `give_up_after` as an HTTP step. Validation lives in
//! `validate/browser.rs`, beside the other rules.

use std::path::PathBuf;
use std::time::Duration;

use marked_yaml::Spanned;
use regex::Regex;
use serde::Deserialize;

use super::model::{JourneyKind, Timings};
use super::raw::S;
use super::template::Template;

/// The agent's browser, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBrowser {
    /// The Chromium to run; by default the first of `chromium`,
    /// `chromium-browser`, `google-chrome` found on `PATH`.
    pub executable: Option<S>,
    /// Browser journeys running at once, each in a fresh context.
    pub max_contexts: Option<Spanned<usize>>,
    pub launch_timeout: Option<S>,
    pub evidence: Option<RawEvidence>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvidence {
    /// How long screenshots and console logs of failed steps are kept.
    pub keep: Option<S>,
    /// At most this many failed steps' evidence is kept; the oldest goes.
    pub max_files: Option<Spanned<usize>>,
}

/// A target's login and logout as a person does them in a browser.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargetBrowser {
    #[serde(default)]
    pub login: Vec<RawBrowserStep>,
    #[serde(default)]
    pub logout: Vec<RawBrowserStep>,
}

/// A journey run in the browser.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJourneyBrowser {
    #[serde(default)]
    pub steps: Vec<RawBrowserStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBrowserStep {
    pub name: S,
    /// A path (or URL on an allowed origin) to load, as typed in the
    /// address bar.
    pub goto: Option<S>,
    pub fill: Option<RawFill>,
    /// A CSS selector to click.
    pub click: Option<S>,
    pub wait_for: Option<RawWaitFor>,
    #[serde(default, rename = "assert")]
    pub assertions: Option<RawPageAssert>,
    #[serde(default)]
    pub extract: Vec<RawPageExtract>,
    pub think_time: Option<S>,
    pub slow_after: Option<S>,
    pub freeze_after: Option<S>,
    pub give_up_after: Option<S>,
    /// `report` marks a report step.
    pub kind: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFill {
    pub selector: S,
    /// May use `${password}`, which is never logged or saved.
    pub value: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWaitFor {
    pub selector: Option<S>,
    pub text: Option<S>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPageAssert {
    /// Texts the page's visible text must contain.
    #[serde(default)]
    pub text: Vec<S>,
    /// Texts it must not contain.
    #[serde(default)]
    pub not_text: Vec<S>,
    /// CSS selectors that must match an element.
    #[serde(default)]
    pub selector: Vec<S>,
    /// A regex the page's URL must match.
    pub url: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPageExtract {
    pub var: S,
    /// The first element matching this selector: its text, or `attr`.
    pub selector: Option<S>,
    pub attr: Option<S>,
    /// A regex over the page's URL: its first capture group, else the match.
    pub url: Option<S>,
}

/// Default cap on browser journeys running at once.
pub const DEFAULT_MAX_CONTEXTS: usize = 2;
/// The most contexts one agent may run at once.
pub const MAX_MAX_CONTEXTS: usize = 32;
/// Default time Chromium gets to start and open its debugging socket.
pub const DEFAULT_LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time evidence of a failed step is kept.
pub const DEFAULT_EVIDENCE_KEEP: Duration = Duration::from_secs(30 * 86_400);
/// Default number of failed steps whose evidence is kept.
pub const DEFAULT_EVIDENCE_MAX_FILES: usize = 1000;

/// The agent's browser, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrowserSettings {
    /// `None`: looked up on `PATH` when the browser first starts.
    pub executable: Option<PathBuf>,
    pub max_contexts: usize,
    pub launch_timeout: Duration,
    pub evidence_keep: Duration,
    pub evidence_max_files: usize,
}

impl Default for BrowserSettings {
    fn default() -> Self {
        BrowserSettings {
            executable: None,
            max_contexts: DEFAULT_MAX_CONTEXTS,
            launch_timeout: DEFAULT_LAUNCH_TIMEOUT,
            evidence_keep: DEFAULT_EVIDENCE_KEEP,
            evidence_max_files: DEFAULT_EVIDENCE_MAX_FILES,
        }
    }
}

/// A target's browser login and logout.
#[derive(Debug)]
pub struct BrowserLogin {
    pub login: Vec<BrowserStep>,
    pub logout: Vec<BrowserStep>,
}

/// A journey's browser steps.
#[derive(Debug)]
pub struct BrowserJourney {
    pub steps: Vec<BrowserStep>,
}

#[derive(Debug)]
pub struct BrowserStep {
    pub name: String,
    /// Line in the config file, for messages at run time.
    pub line: usize,
    pub action: Option<BrowserAction>,
    pub assertions: PageAssertions,
    pub extract: Vec<PageExtraction>,
    pub think_time: Duration,
    pub timings: Timings,
    pub kind: JourneyKind,
}

impl BrowserStep {
    /// Whether the step types a secret (`${password}`) into the page.
    pub fn fills_secret(&self) -> bool {
        matches!(&self.action, Some(BrowserAction::Fill { value, .. }) if value.vars().any(|v| v == "password"))
    }
}

/// What a browser step does before its checks.
#[derive(Debug)]
pub enum BrowserAction {
    /// Load a path of the target (or a URL on an allowed origin) and wait
    /// for the page's `load`.
    Goto(Template),
    /// Type a value into the first element matching the selector.
    Fill {
        selector: String,
        value: Template,
    },
    /// Click the first element matching the selector, and wait for the
    /// page it opens, if it opens one.
    Click(String),
    WaitFor(PageWait),
}

impl BrowserAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            BrowserAction::Goto(_) => "goto",
            BrowserAction::Fill { .. } => "fill",
            BrowserAction::Click(_) => "click",
            BrowserAction::WaitFor(_) => "wait_for",
        }
    }
}

#[derive(Debug)]
pub enum PageWait {
    Selector(String),
    Text(String),
}

#[derive(Debug, Default)]
pub struct PageAssertions {
    pub text: Vec<String>,
    pub not_text: Vec<String>,
    pub selectors: Vec<String>,
    pub url: Option<Regex>,
}

impl PageAssertions {
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
            && self.not_text.is_empty()
            && self.selectors.is_empty()
            && self.url.is_none()
    }
}

#[derive(Debug)]
pub struct PageExtraction {
    pub var: String,
    pub from: PageSource,
}

#[derive(Debug)]
pub enum PageSource {
    Selector {
        selector: String,
        attr: Option<String>,
    },
    Url(Regex),
}
