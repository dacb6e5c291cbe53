//! The outcome vocabulary and the records the runner emits.
//!
//! Each step ends in exactly one [`Outcome`]:
//!
//! | outcome | meaning |
//! |---|---|
//! | `ok` | complete, assertions hold, faster than the step's `slow_after` |
//! | `slow` | complete and correct, but slower than `slow_after` |
//! | `frozen` | no complete response by `freeze_after`; still awaited up to `give_up_after`, so the freeze's length is known (or known to be at least `give_up_after`: censored) |
//! | `logged_out` | the server ended a logged-in session on a step that is not the journey's own logout (a redirect to the login page, 401/403/440, a "session expired" page, the session cookie cleared) |
//! | `http_error` | an unexpected status that is not a logout signal |
//! | `assertion_failed` | the response arrived but its content is wrong |
//! | `connect_error` | DNS, TCP or TLS failure |
//! | `error` | anything else (body over the size cap, redirect loop, undecodable body) |
//!
//! A journey's outcome is `ok` or `slow` when every step's is, else the
//! first failing step's ([`journey_outcome`]). A [`FreezeEpisode`] is one
//! stretch during which a target does not answer, however many requests
//! it stalled ([`crate::detect::freeze`]).
//!
//! Everything downstream of the runner (detection, metrics, the status page
//! and the journal) consumes only these types, so they are plain data.

use std::fmt;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// How one step (or one journey run) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Slow,
    Frozen,
    LoggedOut,
    HttpError,
    AssertionFailed,
    ConnectError,
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::Slow,
        Outcome::Frozen,
        Outcome::LoggedOut,
        Outcome::HttpError,
        Outcome::AssertionFailed,
        Outcome::ConnectError,
        Outcome::Error,
    ];

    /// The label value used on metrics and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Slow => "slow",
            Outcome::Frozen => "frozen",
            Outcome::LoggedOut => "logged_out",
            Outcome::HttpError => "http_error",
            Outcome::AssertionFailed => "assertion_failed",
            Outcome::ConnectError => "connect_error",
            Outcome::Error => "error",
        }
    }

    /// `ok` and `slow` both mean the system did its job.
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Slow)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the server did that ended a logged-in session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogoutCause {
    /// Redirected to a URL matching the target's login pattern.
    Redirect,
    /// A status code listed as a logout signal (401, 403, 440, ...).
    Status,
    /// A page matching the target's expired-session pattern.
    ExpiredPage,
    /// The session cookie was cleared or replaced.
    CookieCleared,
    /// The target's own login page: a redirect to the path of its first
    /// login step, or a final page holding its login form. Needs no
    /// configuration; a restart that flushes the session store looks so.
    LoginPage,
}

impl LogoutCause {
    pub const ALL: [LogoutCause; 5] = [
        LogoutCause::Redirect,
        LogoutCause::Status,
        LogoutCause::ExpiredPage,
        LogoutCause::CookieCleared,
        LogoutCause::LoginPage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogoutCause::Redirect => "redirect",
            LogoutCause::Status => "status",
            LogoutCause::ExpiredPage => "expired_page",
            LogoutCause::CookieCleared => "cookie_cleared",
            LogoutCause::LoginPage => "login_page",
        }
    }
}

/// What kind of work a journey (or, later, a step) does for the people it
/// stands for: the reporting-load analysis sets reports apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JourneyKind {
    #[default]
    Interactive,
    /// A management report: heavy, and its load on the system is studied.
    Report,
}

impl JourneyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JourneyKind::Interactive => "interactive",
            JourneyKind::Report => "report",
        }
    }
}

/// Which part of a journey a step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepPhase {
    Login,
    Journey,
    Logout,
}

/// One HTTP step as measured by the runner.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StepRecord {
    pub target: String,
    pub journey: String,
    pub step: String,
    pub phase: StepPhase,
    /// A report step counts in the reporting-load analysis, not in
    /// interactive latency.
    pub kind: JourneyKind,
    /// Wall-clock time the request was sent.
    #[serde(with = "unix_seconds")]
    pub sent_at: SystemTime,
    /// Time to the first response headers of the last hop, if any arrived.
    pub ttfb: Option<Duration>,
    /// Send to last byte, or to giving up.
    pub duration: Duration,
    pub outcome: Outcome,
    /// True when the agent gave up before the response completed, so
    /// `duration` is a lower bound.
    pub censored: bool,
    pub status: Option<u16>,
    pub bytes: u64,
    pub logout_cause: Option<LogoutCause>,
    /// Age of the session when the step was sent, when logged in.
    pub session_age: Option<Duration>,
    /// A short human explanation; never carries secrets or bodies.
    pub detail: String,
    /// Where the step's time went (DNS, connect, TLS, first byte,
    /// transfer), so an office's network can be told from the system.
    pub phases: HttpPhases,
    /// What a browser step saw besides the fields above; `None` for HTTP
    /// steps.
    pub browser: Option<Box<PageTimings>>,
    /// The step's `freeze_after`: the threshold its outcome was judged by.
    pub freeze_after: Duration,
    /// The step overlapped a stall of the agent itself longer than its
    /// `freeze_after` ([`crate::detect::stall`]), so its time says nothing
    /// about the target. The runner leaves it false; the observer sets it.
    pub agent_stalled: bool,
    /// Set when the step failed through the agent's own fault, not the
    /// target's: its outcome is then `error`, and the run it is part of is
    /// not counted as the target's ([`RunRecord::agent_fault`]).
    pub agent_fault: Option<AgentFault>,
}

/// A failure of the agent itself, which says nothing about the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentFault {
    /// The agent ran out of file descriptors (EMFILE or ENFILE, "too many
    /// open files"), so a probe could not open its connection.
    Descriptors,
}

impl AgentFault {
    pub const ALL: [AgentFault; 1] = [AgentFault::Descriptors];

    /// The `error` label of `casewatch_agent_errors_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentFault::Descriptors => "descriptors",
        }
    }
}

impl StepRecord {
    /// The record of step `step` of `journey` on `target`, sent now and
    /// judged by `freeze_after`, before anything is seen: no answer, no
    /// time taken, outcome `error`. Every record a runner (HTTP or browser)
    /// makes starts here; the runner fills in what its step saw.
    pub fn new(
        target: &str,
        journey: &str,
        step: &str,
        phase: StepPhase,
        kind: JourneyKind,
        freeze_after: Duration,
    ) -> StepRecord {
        StepRecord {
            target: target.to_string(),
            journey: journey.to_string(),
            step: step.to_string(),
            phase,
            kind,
            sent_at: SystemTime::now(),
            ttfb: None,
            duration: Duration::ZERO,
            outcome: Outcome::Error,
            censored: false,
            status: None,
            bytes: 0,
            logout_cause: None,
            session_age: None,
            detail: String::new(),
            phases: HttpPhases::default(),
            browser: None,
            freeze_after,
            agent_stalled: false,
            agent_fault: None,
        }
    }

    /// For a frozen step, which side froze. An HTTP step waits on nothing
    /// but the server, so its freezes are the server's.
    pub fn freeze_side(&self) -> Option<FreezeSide> {
        if self.outcome != Outcome::Frozen {
            return None;
        }
        Some(
            self.browser
                .as_ref()
                .and_then(|b| b.freeze_side)
                .unwrap_or(FreezeSide::Server),
        )
    }
}

/// Which side a frozen browser step was waiting on (see
/// [`crate::detect::page`]): the same outcome, `frozen`, with the reason
/// that matters to whoever is asked to fix it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FreezeSide {
    /// The network waited on the server longer than `freeze_after`.
    Server,
    /// The page's main thread was blocked longer than `freeze_after` while
    /// the server kept answering.
    Client,
    /// Neither alone passed `freeze_after`; together they did.
    Mixed,
}

impl FreezeSide {
    pub const ALL: [FreezeSide; 3] = [FreezeSide::Server, FreezeSide::Client, FreezeSide::Mixed];

    /// The `side` label value, and how the journal stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            FreezeSide::Server => "server",
            FreezeSide::Client => "client",
            FreezeSide::Mixed => "mixed",
        }
    }
}

impl fmt::Display for FreezeSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a browser step's time went, measured in the page. Times named
/// after page events count from the step's start, as the person at the
/// screen waited from their action.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PageTimings {
    /// For a frozen step: which side the wait was on.
    pub freeze_side: Option<FreezeSide>,
    /// The longest stretch during the step with a request sent and no
    /// answer yet (the network waiting on a server).
    pub server_wait: Duration,
    /// The longest stretch the page's main thread was blocked: a long task,
    /// or the agent's own probes of the page left unanswered.
    pub main_thread_blocked: Duration,
    /// Long tasks (over 50 ms) the page reported during the step.
    pub long_tasks: u32,
    pub long_task_total: Duration,
    /// For a step that loaded a page: its first byte, DOMContentLoaded,
    /// load, and the largest contentful paint where Chromium gives it.
    pub first_byte: Option<Duration>,
    pub dom_content_loaded: Option<Duration>,
    pub load: Option<Duration>,
    pub largest_contentful_paint: Option<Duration>,
    /// Requests the page sent during the step.
    pub requests: u32,
    /// The evidence saved for a failed step: a file name in the evidence
    /// folder beside the journal (without its `.png` or `.json`).
    pub evidence: Option<String>,
}

/// A run as its timetable planned it: its id, and when it was meant to
/// start on the wall clock (for the record) and on the monotonic clock (for
/// its duration, which counts lateness).
#[derive(Clone, Copy, Debug)]
pub struct PlannedRun {
    pub run_id: u64,
    pub start: SystemTime,
    pub instant: Instant,
}

impl PlannedRun {
    /// A run planned for now: a one-off check, or a test.
    pub fn now(run_id: u64) -> PlannedRun {
        PlannedRun {
            run_id,
            start: SystemTime::now(),
            instant: Instant::now(),
        }
    }
}

/// One journey run: its steps and how it went as a whole.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunRecord {
    pub target: String,
    pub journey: String,
    /// Carried on the record, not looked up by name, so a journey added or
    /// changed by a reload is recorded as what it is.
    pub kind: JourneyKind,
    #[serde(with = "unix_seconds")]
    pub intended_start: SystemTime,
    #[serde(with = "unix_seconds")]
    pub actual_start: SystemTime,
    /// From the intended start to the end of the last step, so that a late
    /// start counts against the journey (no coordinated omission).
    pub duration: Duration,
    pub outcome: Outcome,
    /// The first failing step, if any.
    pub failed_step: Option<String>,
    pub steps: Vec<StepRecord>,
    /// The run's sessions (two when a step was retried after re-login).
    pub sessions: Vec<SessionSpan>,
    /// The run overlapped a stall of the agent itself longer than the
    /// smallest `freeze_after` of its steps, or one of its steps did
    /// ([`crate::detect::stall`]): it is not counted against the target.
    /// The runner leaves it false; the observer sets it.
    pub agent_stalled: bool,
}

impl RunRecord {
    /// The agent's own fault that ended the run, if one did: the run then
    /// measured the agent, not the target.
    pub fn agent_fault(&self) -> Option<AgentFault> {
        self.steps.iter().find_map(|s| s.agent_fault)
    }

    pub fn lateness(&self) -> Duration {
        self.actual_start
            .duration_since(self.intended_start)
            .unwrap_or_default()
    }

    /// Time the run's completed interactive journey steps took beyond
    /// `acceptable` seconds each: what a practitioner waited for a slow
    /// system. A frozen or failed step's wait counts as a freeze or failure
    /// instead, and a report journey is not interactive at all.
    pub fn seconds_over_acceptable(&self, acceptable: f64) -> f64 {
        if self.kind != JourneyKind::Interactive {
            return 0.0;
        }
        self.steps
            .iter()
            .filter(|s| {
                s.phase == StepPhase::Journey
                    && s.kind == JourneyKind::Interactive
                    && s.outcome.is_success()
            })
            .map(|s| (s.duration.as_secs_f64() - acceptable).max(0.0))
            .sum()
    }

    /// The work a practitioner would do again after this run (seconds),
    /// when it is an interactive run that failed other than by a forced
    /// logout (whose cost the forced logouts count): its login and
    /// journey steps' time, a frozen or given-up step's wait left out, as
    /// the freezes count it. The journal's reader applies the same rule to
    /// the rows ([`crate::loss`] says why).
    pub fn redo_seconds(&self) -> Option<f64> {
        if self.kind != JourneyKind::Interactive {
            return None;
        }
        let work = || {
            self.steps
                .iter()
                .filter(|s| matches!(s.phase, StepPhase::Login | StepPhase::Journey))
        };
        let failed = work().find(|s| !s.outcome.is_success())?;
        if failed.outcome == Outcome::LoggedOut {
            return None;
        }
        Some(
            work()
                .filter(|s| !s.censored && s.outcome != Outcome::Frozen)
                .map(|s| s.duration.as_secs_f64())
                .sum(),
        )
    }
}

/// The journey outcome is `ok`/`slow` when every step is, else the first
/// failing step's outcome. Logout steps still count.
pub fn journey_outcome(steps: &[StepRecord]) -> (Outcome, Option<String>) {
    match steps.iter().find(|s| !s.outcome.is_success()) {
        Some(failed) => (failed.outcome, Some(failed.step.clone())),
        None if steps.iter().any(|s| s.outcome == Outcome::Slow) => (Outcome::Slow, None),
        None => (Outcome::Ok, None),
    }
}

/// Everything the runner tells the rest of the agent, on one channel.
#[derive(Clone, Debug)]
pub enum Record {
    /// A journey run is starting (for the in-flight gauge).
    RunStarted {
        target: String,
        journey: String,
        kind: JourneyKind,
    },
    Run(RunRecord),
    /// A kept session's login, keep-alive check or logout: not a journey.
    Kept(KeptRecord),
    /// Timetable slots that passed while the previous run was still going,
    /// with how long a user arriving at each would have waited.
    MissedSlots {
        target: String,
        journey: String,
        count: u64,
        waits: Vec<Duration>,
    },
    /// Live request and session events, for freeze and session detection.
    Probe(ProbeEvent),
    /// A reloaded config changed the set of targets.
    Reconfigured {
        targets: Vec<String>,
    },
}

/// What a kept session was doing when it produced a [`KeptRecord`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeptActivity {
    Login,
    Check,
    Logout,
}

impl KeptActivity {
    pub fn as_str(self) -> &'static str {
        match self {
            KeptActivity::Login => "login",
            KeptActivity::Check => "check",
            KeptActivity::Logout => "logout",
        }
    }
}

/// What the agent knows of a kept session after a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeptState {
    /// The last check showed the session logged in.
    Alive,
    /// The last check failed in a way that says nothing about the session
    /// (a 5xx, a connect error, a freeze): the next check decides.
    Unknown,
    /// The last check failed with no sign of logout: checked again at once.
    Suspect,
    /// No session: logging in failed, or the life just ended.
    Ended,
}

impl KeptState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeptState::Alive => "alive",
            KeptState::Unknown => "unknown",
            KeptState::Suspect => "suspect",
            KeptState::Ended => "ended",
        }
    }
}

/// One piece of a kept session's activity: its steps, what the agent knows
/// of the session afterwards, and the session time it covered.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeptRecord {
    pub target: String,
    /// Which of the target's kept sessions this is (0-based).
    pub slot: usize,
    pub activity: KeptActivity,
    pub steps: Vec<StepRecord>,
    pub state: KeptState,
    /// Exposure the record covers; with `end` set, the life's last stretch.
    pub sessions: Vec<SessionSpan>,
}

/// What happened on the wire, as it happens (not when a step completes).
#[derive(Clone, Debug)]
pub enum ProbeEvent {
    /// A request was sent; it is in flight until `Ended`.
    Sent {
        target: String,
        id: u64,
        at: Instant,
        freeze_after: Duration,
    },
    /// Response headers arrived from the target: it is answering.
    Answered { target: String, at: Instant },
    /// The request finished, failed or was abandoned.
    Ended { target: String, id: u64 },
    /// A session logged in.
    SessionOpened {
        target: String,
        id: u64,
        at: Instant,
    },
    /// Whether a session is known to be alive now; one whose state is
    /// unknown is not counted as active.
    SessionKnown { id: u64, alive: bool },
    /// A session ended, for whatever reason.
    SessionClosed { target: String, id: u64 },
    /// An idempotent request was sent again because the server had closed
    /// the kept-alive connection it went out on.
    Resent { target: String },
}

/// How a session's life ended; `None` in a [`SessionSpan`] means it goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEnd {
    /// The server ended it: the event survival analysis counts.
    Forced(LogoutCause),
    /// The agent logged out at the end of a journey.
    LoggedOut,
    /// A kept session reached its configured maximum age (censored).
    MaxAge,
    /// The agent stopped (censored).
    AgentStop,
    /// A kept session failed twice in a row with no sign of logout: whether
    /// the server ended it is unknown, so its life is censored at the last
    /// moment it was known alive, and the slot gets a new session.
    Lost,
}

impl SessionEnd {
    /// Whether the lifetime ended by the event of interest (a forced logout)
    /// rather than being cut short by the agent (censored).
    pub fn is_drop(self) -> bool {
        matches!(self, SessionEnd::Forced(_))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SessionEnd::Forced(cause) => cause.as_str(),
            SessionEnd::LoggedOut => "logged_out_by_agent",
            SessionEnd::MaxAge => "max_age",
            SessionEnd::AgentStop => "agent_stop",
            SessionEnd::Lost => "lost",
        }
    }

    /// The `end` label of `casewatch_kept_sessions_ended_total`.
    pub fn kind_str(self) -> &'static str {
        match self {
            SessionEnd::Forced(_) => "forced",
            SessionEnd::LoggedOut => "logged_out",
            SessionEnd::MaxAge => "max_age",
            SessionEnd::AgentStop => "agent_stop",
            SessionEnd::Lost => "lost",
        }
    }

    pub const KEPT_KINDS: [&'static str; 4] = ["forced", "lost", "max_age", "agent_stop"];
}

/// Whose session it is: a journey's own, or one of a target's kept sessions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SessionOrigin {
    Journey { journey: String },
    Kept { slot: usize },
}

impl SessionOrigin {
    pub fn journey(name: &str) -> SessionOrigin {
        SessionOrigin::Journey {
            journey: name.to_string(),
        }
    }

    /// `journey` or `kept`, as the journal stores it.
    pub fn kind_str(&self) -> &'static str {
        match self {
            SessionOrigin::Journey { .. } => "journey",
            SessionOrigin::Kept { .. } => "kept",
        }
    }
}

impl fmt::Display for SessionOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionOrigin::Journey { journey } => write!(f, "journey {journey}"),
            SessionOrigin::Kept { slot } => write!(f, "kept session {slot}"),
        }
    }
}

/// One ended freeze episode of a target: the stretch from when a request
/// to it passed `freeze_after` (backdated to its send) until it answered
/// again. `censored` when the agent stopped before the target answered:
/// the true length is then at least `length`.
#[derive(Clone, Debug)]
pub struct FreezeEpisode {
    pub target: String,
    pub started: SystemTime,
    pub length: Duration,
    pub censored: bool,
    /// Time within the episode the agent itself was stalled. The episode
    /// opened on silence the agent was awake to see, but an answer that
    /// came during a stall was read only after it: the true length lies
    /// between `length - agent_stalled` and `length`.
    pub agent_stalled: Duration,
}

/// Session life from `age_from` to `age_to`; with `end` set, the last stretch.
///
/// Ages count from the login's completion. Exposure (`age_from..age_to`)
/// only ever covers time the session was known to be alive: a life that the
/// server ended, or that was lost, ends at the last moment it was known
/// alive, and `seen_age` says when its loss was seen.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SessionSpan {
    pub target: String,
    pub origin: SessionOrigin,
    #[serde(with = "unix_seconds")]
    pub login_at: SystemTime,
    pub age_from: Duration,
    pub age_to: Duration,
    pub end: Option<SessionEnd>,
    /// For a forced or lost end: the latest age the loss can have happened
    /// at (the answer that showed it, counted from the login's send). With
    /// `age_to`, the bracket the true loss lies in.
    pub seen_age: Option<Duration>,
    /// For a forced or lost end: when the answer that showed the loss
    /// arrived (wall clock). Not `login_at + seen_age`, which is late by
    /// the login's length.
    #[serde(with = "unix_seconds_opt")]
    pub seen_at: Option<SystemTime>,
    /// Why a lost session was given up; never carries secrets or bodies.
    pub detail: String,
}

impl SessionSpan {
    /// For a forced logout, the bracket (last known alive, loss seen).
    pub fn bracket(&self) -> Option<(Duration, Duration)> {
        match self.end {
            Some(SessionEnd::Forced(_)) => {
                Some((self.age_to, self.seen_age.unwrap_or(self.age_to)))
            }
            _ => None,
        }
    }
}

/// Where a drop is placed on the age axis: the midpoint of its bracket, the
/// unbiased choice when the loss is equally likely anywhere inside it.
pub fn bracket_midpoint((alive, seen): (Duration, Duration)) -> Duration {
    alive + seen.saturating_sub(alive) / 2
}

/// A part of an HTTP exchange whose time is measured on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpPhase {
    /// Resolving the host name (none for an IP address).
    Dns,
    /// TCP connection set-up (through the proxy's CONNECT, when there is one).
    Connect,
    /// The TLS handshake.
    Tls,
    /// From the request going out on a ready connection to the response
    /// headers: the system's own time plus one network round trip.
    FirstByte,
    /// From the response headers to the last byte of the body.
    Transfer,
}

impl HttpPhase {
    pub const ALL: [HttpPhase; 5] = [
        HttpPhase::Dns,
        HttpPhase::Connect,
        HttpPhase::Tls,
        HttpPhase::FirstByte,
        HttpPhase::Transfer,
    ];

    /// The label value used on metrics and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpPhase::Dns => "dns",
            HttpPhase::Connect => "connect",
            HttpPhase::Tls => "tls",
            HttpPhase::FirstByte => "first_byte",
            HttpPhase::Transfer => "transfer",
        }
    }
}

/// Time spent in each [`HttpPhase`] by one step, summed over its redirect
/// hops. A phase that did not happen is `None`: a reused connection has no
/// DNS, connect or TLS time, a plain-HTTP one no TLS, an answer that never
/// came no first byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct HttpPhases {
    pub dns: Option<Duration>,
    pub connect: Option<Duration>,
    pub tls: Option<Duration>,
    pub first_byte: Option<Duration>,
    pub transfer: Option<Duration>,
}

impl HttpPhases {
    pub fn get(&self, phase: HttpPhase) -> Option<Duration> {
        match phase {
            HttpPhase::Dns => self.dns,
            HttpPhase::Connect => self.connect,
            HttpPhase::Tls => self.tls,
            HttpPhase::FirstByte => self.first_byte,
            HttpPhase::Transfer => self.transfer,
        }
    }
}

pub fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

mod unix_seconds {
    use std::time::SystemTime;

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(super::unix_secs(*t))
    }
}

mod unix_seconds_opt {
    use std::time::SystemTime;

    pub fn serialize<S: serde::Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&super::unix_secs(*t)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, outcome: Outcome) -> StepRecord {
        let five = Duration::from_secs(5);
        StepRecord {
            outcome,
            ..StepRecord::new(
                "ics",
                "j",
                name,
                StepPhase::Journey,
                JourneyKind::Interactive,
                five,
            )
        }
    }

    #[test]
    fn an_http_freeze_is_the_servers_and_a_browser_step_says_its_side() {
        let mut frozen = step("a", Outcome::Frozen);
        assert_eq!(frozen.freeze_side(), Some(FreezeSide::Server));
        frozen.browser = Some(Box::new(PageTimings {
            freeze_side: Some(FreezeSide::Client),
            ..PageTimings::default()
        }));
        assert_eq!(frozen.freeze_side(), Some(FreezeSide::Client));
        assert_eq!(step("b", Outcome::Slow).freeze_side(), None);
    }

    #[test]
    fn journey_outcome_is_first_failure() {
        let steps = [
            step("a", Outcome::Slow),
            step("b", Outcome::HttpError),
            step("c", Outcome::Frozen),
        ];
        assert_eq!(
            journey_outcome(&steps),
            (Outcome::HttpError, Some("b".to_string()))
        );
    }

    #[test]
    fn journey_outcome_slow_when_any_step_slow() {
        let steps = [step("a", Outcome::Ok), step("b", Outcome::Slow)];
        assert_eq!(journey_outcome(&steps), (Outcome::Slow, None));
        assert_eq!(journey_outcome(&steps[..1]), (Outcome::Ok, None));
    }
}
