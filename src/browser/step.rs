//! One browser step: do what a person does, check the page, and judge the
//! step with the same outcomes as an HTTP step (the table in [`crate::outcome`]).
//!
//! - `goto` loads a page and waits for its `load`; `click` clicks the first
//!   matching element and, if that starts a page load within
//!   [`NAVIGATION_GRACE`], waits for it; `fill` types into the first
//!   matching element; `wait_for` waits for an element or a text.
//! - An element or text that is missing (for the action, for `wait_for`,
//!   or for `assert`'s selectors, texts and URL) is waited for while the page is
//!   busy (a request waits on the server, or the main thread is blocked),
//!   up to `give_up_after`; missing while the page is idle, it is an
//!   assertion failure decided at `freeze_after`.
//! - After the action: a page load that failed on the network is a
//!   `connect_error` or an `error`; the signs of a forced logout (the
//!   target's own `session_rules` and login page, seen in the browser) make
//!   it `logged_out`; a page answered with a 4xx or 5xx is an `http_error`;
//!   then `assert` and `extract`.
//! - Timing: past `freeze_after` the step is `frozen`, and which side it
//!   waited on is decided by [`crate::detect::page`]; past `slow_after`,
//!   `slow`. Not done by `give_up_after`: `frozen`, censored.
//! - A failed step leaves evidence (screenshot, console errors) when the
//!   run has an evidence store.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chromiumoxide::cdp::browser_protocol::input::InsertTextParams;
use chromiumoxide::cdp::browser_protocol::page::NavigateParams;
use chromiumoxide::error::CdpError;
use tokio::time::error::Elapsed;
use tokio::time::Instant;
use url::Url;

use super::captures::{CaptureStore, FailedStep};
use super::page::{EvalError, PageLoad, PageWindow, Tab};
use super::script;
use crate::config::browser::{BrowserAction, BrowserStep, PageSource, PageWait};
use crate::config::{Target, Timings};
use crate::detect::login_page;
use crate::detect::page::{freeze_side, longest, total};
use crate::outcome::{FreezeSide, LogoutCause, Outcome, PageTimings, StepPhase, StepRecord};
use crate::runner::{step_record, Session};

/// How long after a click a page load it started may take to show.
pub const NAVIGATION_GRACE: Duration = Duration::from_millis(150);
/// The least time a failed step's evidence is given, even at the run's
/// deadline: enough for the screenshot of a page that can give one.
pub const CAPTURE_FLOOR: Duration = Duration::from_secs(1);
/// How often a missing element or text is looked for again.
const POLL: Duration = Duration::from_millis(100);
/// What the page counts as a long task.
const LONG_TASK: Duration = Duration::from_millis(50);
/// How long a step that ended with its page blocked waits for the page's
/// report of the long task.
const LONG_TASK_SETTLE: Duration = Duration::from_millis(500);

/// What every step of one run shares.
pub struct RunState {
    pub run_id: u64,
    /// Values never to write anywhere (the password).
    pub secrets: Vec<String>,
    /// Selectors of fields a secret was typed into, cleared before any
    /// screenshot.
    pub secret_fields: Vec<String>,
    pub evidence: Option<Arc<CaptureStore>>,
    pub evidence_saved: Option<prometheus::IntCounter>,
    /// The target's login page, for the login-page sign of logout.
    pub login_url: Option<Url>,
    /// The browser login's first field, which a login form holds.
    pub login_field: Option<String>,
}

/// Where a step runs.
pub struct BrowserStepContext<'a> {
    pub tab: &'a Tab,
    pub target: &'a Target,
    pub journey: &'a str,
    pub phase: StepPhase,
    /// The run's hard deadline: no step waits past it, whatever its own
    /// `give_up_after`.
    pub deadline: Instant,
}

/// Why a step ended before its checks passed.
enum Stop {
    Failed(Outcome, String),
    LoggedOut(LogoutCause, String),
}

fn failed(outcome: Outcome, detail: impl Into<String>) -> Stop {
    Stop::Failed(outcome, detail.into())
}

/// A browser that does not take commands any more (gone, crashed).
fn browser_gone(e: &CdpError) -> Stop {
    let text: String = e.to_string().chars().take(200).collect();
    failed(
        Outcome::Error,
        format!("the browser did not answer: {text}"),
    )
}

fn eval_failure(e: EvalError) -> Stop {
    match e {
        EvalError::Browser(e) => browser_gone(&e),
        EvalError::Page => failed(Outcome::Error, "the page could not answer"),
    }
}

/// A page load that failed on the network: connection-level errors are
/// `connect_error`, as for HTTP steps.
fn load_failure(error: &str) -> Stop {
    let connect = [
        "ERR_CONNECTION_",
        "ERR_NAME_NOT_RESOLVED",
        "ERR_NAME_RESOLUTION_FAILED",
        "ERR_ADDRESS_UNREACHABLE",
        "ERR_INTERNET_DISCONNECTED",
        "ERR_SSL_",
        "ERR_CERT_",
        "ERR_TIMED_OUT",
        "ERR_EMPTY_RESPONSE",
    ];
    let outcome = if connect.iter().any(|c| error.contains(c)) {
        Outcome::ConnectError
    } else {
        Outcome::Error
    };
    failed(outcome, format!("the page could not load: {error}"))
}

/// Runs `step` in the run's tab and records it.
pub async fn run_step(
    ctx: &BrowserStepContext<'_>,
    run: &mut RunState,
    step: &BrowserStep,
    session: &mut Session,
) -> StepRecord {
    let sent_at = SystemTime::now();
    let start = Instant::now();
    let (requests_before, bytes_before) = begin_watching(ctx.tab, step.timings.freeze_after, start);
    let logged_in = session.is_logged_in();
    let session_age = if logged_in { session.age() } else { None };
    let timings = &step.timings;
    // The step's own limit, or what is left of the run's, if less.
    let give_up = timings
        .give_up_after
        .min(ctx.deadline.saturating_duration_since(start));
    let cookie_before = session_cookie_before(ctx, logged_in, give_up).await;
    let checks = Checks {
        ctx,
        step,
        start,
        logged_in,
        cookie_before,
    };
    let acted = act_unless_stopped(&checks, run, session, give_up).await;
    let end = Instant::now();
    let duration = end - start;
    let span = (start, end);
    let (window, load) = settled_window(ctx.tab, span).await;
    let server_wait = longest(&window.server, span);
    let blocked = longest(&window.blocked, span);
    let side = freeze_side(server_wait, blocked, timings.freeze_after);
    let why = || freeze_detail(side, server_wait, blocked, timings.freeze_after);
    let verdict = judge(acted, duration, give_up, timings, why);
    update_session(session, &verdict, start);
    let mut page = page_timings(
        &window,
        load.as_ref(),
        span,
        (verdict.outcome == Outcome::Frozen).then_some(side),
        (server_wait, blocked),
        requests_before,
    );
    if !verdict.outcome.is_success() {
        page.evidence = save_evidence(ctx, run, step, verdict.outcome, &verdict.detail).await;
    }
    // HTTP phases are the agent's own connections; a browser's requests
    // are timed in the page instead, so `phases` stays empty.
    StepRecord {
        sent_at,
        ttfb: page.first_byte,
        duration,
        outcome: verdict.outcome,
        censored: verdict.censored,
        status: load.as_ref().and_then(|l| l.status),
        bytes: window.bytes.saturating_sub(bytes_before),
        logout_cause: verdict.logout_cause,
        session_age,
        detail: verdict.detail,
        browser: Some(Box::new(page)),
        ..step_record(ctx.target, ctx.journey, ctx.phase, step)
    }
}

/// Starts the tab's watch over a step; returns the tab's request and byte
/// counts so far, which the step's own are counted from.
fn begin_watching(tab: &Tab, freeze_after: Duration, start: Instant) -> (u64, u64) {
    let mut watch = tab.watch();
    watch.begin(freeze_after);
    let window = watch.window(start, start);
    (window.requests, window.bytes)
}

/// The session cookie before a logged-in journey step, so a step that
/// changes it can be told apart.
async fn session_cookie_before(
    ctx: &BrowserStepContext<'_>,
    logged_in: bool,
    give_up: Duration,
) -> Option<String> {
    match (&ctx.target.session_rules.cookie, logged_in, ctx.phase) {
        (Some(name), true, StepPhase::Journey) => {
            tokio::time::timeout(give_up, cookie(ctx.tab, name))
                .await
                .ok()
                .flatten()
        }
        _ => None,
    }
}

/// What the step's action and checks came to: `Err` when they ran past
/// `give_up`, `None` when the agent was stopped and the step was already
/// past `freeze_after`.
type Acted = Option<Result<Result<(), Stop>, Elapsed>>;

async fn act_unless_stopped(
    checks: &Checks<'_, '_>,
    run: &mut RunState,
    session: &mut Session,
    give_up: Duration,
) -> Acted {
    let start = checks.start;
    let frozen_at_stop = async {
        crate::runner::stop::forced().await;
        tokio::time::sleep_until(start + checks.step.timings.freeze_after).await;
    };
    tokio::select! {
        acted = tokio::time::timeout(give_up.saturating_sub(start.elapsed()), checks.run(run, session)) => Some(acted),
        () = frozen_at_stop => None,
    }
}

/// What the tab saw over `span`, and the page load since its start.
async fn settled_window(tab: &Tab, span: (Instant, Instant)) -> (PageWindow, Option<PageLoad>) {
    let (start, end) = span;
    // The page reports a long task only after it ends, in its own time: a
    // step that ended with the main thread just freed waits a moment for
    // the report, so the task counts with the step it held up.
    let settle_until = end + LONG_TASK_SETTLE;
    loop {
        let (window, load) = {
            let watch = tab.watch();
            (watch.window(start, end), watch.load_since(start).cloned())
        };
        let unreported =
            window.long_tasks.is_empty() && longest(&window.blocked, span) >= LONG_TASK;
        if !unreported || Instant::now() >= settle_until {
            break (window, load);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// How a step ended, as its record tells it.
struct StepVerdict {
    outcome: Outcome,
    censored: bool,
    logout_cause: Option<LogoutCause>,
    detail: String,
}

fn judge(
    acted: Acted,
    duration: Duration,
    give_up: Duration,
    timings: &Timings,
    why: impl Fn() -> String,
) -> StepVerdict {
    let (outcome, censored, logout_cause, detail) = match acted {
        None => (
            Outcome::Frozen,
            true,
            None,
            format!(
                "not done after {:.1}s, when the agent stopped; {}",
                duration.as_secs_f64(),
                why()
            ),
        ),
        Some(Err(_)) => (
            Outcome::Frozen,
            true,
            None,
            // The run's deadline cut the step short (by more than the
            // moments the run took to set up).
            if give_up + Duration::from_millis(250) < timings.give_up_after {
                format!(
                    "not done after {:.1}s, when the run reached its deadline; {}",
                    duration.as_secs_f64(),
                    why()
                )
            } else {
                format!(
                    "not done after {}; gave up; {}",
                    humantime::format_duration(timings.give_up_after),
                    why()
                )
            },
        ),
        Some(Ok(Err(Stop::LoggedOut(cause, detail)))) => {
            (Outcome::LoggedOut, false, Some(cause), detail)
        }
        Some(Ok(Err(Stop::Failed(outcome, detail)))) => (outcome, false, None, detail),
        Some(Ok(Ok(()))) if duration > timings.freeze_after => (
            Outcome::Frozen,
            false,
            None,
            format!("done only after {:.1}s; {}", duration.as_secs_f64(), why()),
        ),
        Some(Ok(Ok(()))) if duration > timings.slow_after => (
            Outcome::Slow,
            false,
            None,
            format!("took {:.2}s", duration.as_secs_f64()),
        ),
        Some(Ok(Ok(()))) => (Outcome::Ok, false, None, String::new()),
    };
    StepVerdict {
        outcome,
        censored,
        logout_cause,
        detail,
    }
}

/// What the step's verdict says of the session it ran in.
fn update_session(session: &mut Session, verdict: &StepVerdict, start: Instant) {
    let outcome = verdict.outcome;
    if let (Outcome::LoggedOut, Some(cause)) = (outcome, verdict.logout_cause) {
        session.mark_ended(cause, Instant::now());
    } else if outcome.is_success() || (outcome == Outcome::Frozen && !verdict.censored) {
        session.confirm_alive(start);
    } else {
        session.mark_failed(Instant::now());
    }
}

/// The page's timings over `span`, from the step's start.
fn page_timings(
    window: &PageWindow,
    load: Option<&PageLoad>,
    span: (Instant, Instant),
    freeze_side: Option<FreezeSide>,
    (server_wait, blocked): (Duration, Duration),
    requests_before: u64,
) -> PageTimings {
    let start = span.0;
    let since = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(start));
    PageTimings {
        freeze_side,
        server_wait,
        main_thread_blocked: blocked,
        long_tasks: u32::try_from(window.long_tasks.len()).unwrap_or(u32::MAX),
        long_task_total: total(&window.long_tasks, span),
        first_byte: since(load.and_then(|l| l.first_byte)),
        dom_content_loaded: since(load.and_then(|l| l.dom_content_loaded)),
        load: since(load.and_then(|l| l.load)),
        largest_contentful_paint: since(
            load.and(window.largest_contentful_paint)
                .filter(|paint| load.is_some_and(|l| *paint >= l.started)),
        ),
        requests: u32::try_from(window.requests.saturating_sub(requests_before))
            .unwrap_or(u32::MAX),
        evidence: None,
    }
}

/// Saves a failed step's evidence when the run keeps any; its name once
/// saved.
async fn save_evidence(
    ctx: &BrowserStepContext<'_>,
    run: &RunState,
    step: &BrowserStep,
    outcome: Outcome,
    detail: &str,
) -> Option<String> {
    let store = run.evidence.as_ref()?;
    let failure = FailedStep {
        target: &ctx.target.name,
        journey: ctx.journey,
        step: &step.name,
        outcome,
        detail,
        run_id: run.run_id,
    };
    // Within what is left of the run's deadline, with a moment
    // for a quick screenshot of a step that failed right at it.
    let allowed = ctx
        .deadline
        .saturating_duration_since(Instant::now())
        .max(CAPTURE_FLOOR);
    let saving = store.save(ctx.tab, failure, &run.secrets, &run.secret_fields);
    let evidence = tokio::time::timeout(allowed, saving).await.ok().flatten();
    if evidence.is_some() {
        if let Some(counter) = &run.evidence_saved {
            counter.inc();
        }
    }
    evidence
}

/// Why a frozen step was frozen, in words.
fn freeze_detail(
    side: FreezeSide,
    server_wait: Duration,
    blocked: Duration,
    freeze_after: Duration,
) -> String {
    match side {
        FreezeSide::Server => format!(
            "server-side freeze: the page waited {:.1}s for the server",
            server_wait.as_secs_f64()
        ),
        FreezeSide::Client => format!(
            "client-side freeze: the page's main thread was blocked for {:.1}s while the server answered (longest wait {:.2}s)",
            blocked.as_secs_f64(),
            server_wait.as_secs_f64()
        ),
        // Neither side held the page for long: it never settled of its own
        // accord (a page that reloads itself, a link that became a download,
        // a document that never fires `load`).
        FreezeSide::Mixed if server_wait + blocked < freeze_after / 2 => format!(
            "the page never settled, though nothing held it up: no wait for the server over {:.1}s, no more than {:.1}s with its main thread blocked (a page that keeps reloading, or a download, looks like this)",
            server_wait.as_secs_f64(),
            blocked.as_secs_f64()
        ),
        FreezeSide::Mixed => format!(
            "freeze on no single side: {:.1}s waiting for the server, {:.1}s with the page's main thread blocked",
            server_wait.as_secs_f64(),
            blocked.as_secs_f64()
        ),
    }
}

/// The value of the session cookie `name` as the page sees it.
async fn cookie(tab: &Tab, name: &str) -> Option<String> {
    let cookies = tab.page.get_cookies().await.ok()?;
    cookies
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| c.value)
}

/// A step's action and checks.
struct Checks<'a, 'b> {
    ctx: &'a BrowserStepContext<'b>,
    step: &'a BrowserStep,
    start: Instant,
    logged_in: bool,
    cookie_before: Option<String>,
}

impl Checks<'_, '_> {
    fn tab(&self) -> &Tab {
        self.ctx.tab
    }

    /// Whether the step has waited past `freeze_after` with the page idle:
    /// what it waits for is not coming.
    fn idle_past_freeze(&self) -> bool {
        let now = Instant::now();
        now >= self.start + self.step.timings.freeze_after && !self.tab().watch().busy(now)
    }

    /// Whether forced-logout signs apply to this step.
    fn watches_logout(&self) -> bool {
        self.logged_in && self.ctx.phase != StepPhase::Login
    }

    async fn run(&self, run: &mut RunState, session: &mut Session) -> Result<(), Stop> {
        if self.tab().watch().crashed() {
            return Err(failed(Outcome::Error, "the page had crashed"));
        }
        match &self.step.action {
            Some(BrowserAction::Goto(path)) => self.goto(&path.render(&session.vars)).await?,
            Some(BrowserAction::Fill { selector, value }) => {
                self.present(selector, run).await?;
                self.fill(selector, &value.render(&session.vars)).await?;
                if self.step.fills_secret() && !run.secret_fields.contains(selector) {
                    run.secret_fields.push(selector.clone());
                }
            }
            Some(BrowserAction::Click(selector)) => {
                self.present(selector, run).await?;
                self.click(selector).await?;
            }
            Some(BrowserAction::WaitFor(wait)) => self.wait_for(wait, run).await?,
            None => {}
        }
        let load = self.tab().watch().load_since(self.start).cloned();
        if let Some(load) = &load {
            if let Some(error) = &load.failed {
                return Err(load_failure(error));
            }
            if self.watches_logout() {
                if let Some((cause, why)) = self.logout_sign(run, Some(load)).await {
                    return Err(Stop::LoggedOut(cause, why));
                }
            }
            if let Some(status) = load.status.filter(|s| *s >= 400) {
                return Err(failed(
                    Outcome::HttpError,
                    format!("the page answered {status}"),
                ));
            }
        }
        if let Err(stop) = self.assertions(run).await {
            return Err(self.or_logged_out(run, stop).await);
        }
        if let Err(stop) = self.extract(session).await {
            return Err(self.or_logged_out(run, stop).await);
        }
        Ok(())
    }

    /// An assertion that failed on a page the server logged out of is a
    /// forced logout, not a content problem.
    async fn or_logged_out(&self, run: &RunState, stop: Stop) -> Stop {
        if self.watches_logout() && matches!(stop, Stop::Failed(Outcome::AssertionFailed, _)) {
            if let Some((cause, why)) = self.logout_sign(run, None).await {
                return Stop::LoggedOut(cause, why);
            }
        }
        stop
    }

    async fn goto(&self, path: &str) -> Result<(), Stop> {
        let target = self.ctx.target;
        let url = target
            .base_url
            .join(path)
            .map_err(|e| failed(Outcome::Error, format!("cannot build URL from path: {e}")))?;
        if !target.allows_origin(&url) {
            return Err(failed(
                Outcome::Error,
                format!(
                    "goto leaves the target's origin for {}",
                    url.origin().ascii_serialization()
                ),
            ));
        }
        match self
            .tab()
            .page
            .execute(NavigateParams::new(url.as_str()))
            .await
        {
            Ok(answer) => match answer.result.error_text {
                Some(error) => Err(load_failure(&error)),
                None => Ok(()),
            },
            Err(CdpError::ChromeMessage(error)) => Err(load_failure(&error)),
            Err(e) => Err(browser_gone(&e)),
        }
    }

    /// Waits for an element matching `selector` (see the module docs).
    async fn present(&self, selector: &str, run: &RunState) -> Result<(), Stop> {
        self.until(&script::exists(selector), run, || {
            format!("no element matches {selector:?}")
        })
        .await
    }

    async fn wait_for(&self, wait: &PageWait, run: &RunState) -> Result<(), Stop> {
        match wait {
            PageWait::Selector(selector) => {
                self.until(&script::exists(selector), run, || {
                    format!("no element matching {selector:?} appeared while the page was idle")
                })
                .await
            }
            PageWait::Text(text) => {
                self.until(&script::shows(text), run, || {
                    format!("{text:?} did not appear while the page was idle")
                })
                .await
            }
        }
    }

    /// Evaluates `check` until it is true; missing while the page is idle
    /// past `freeze_after`, it fails with `missing` (or as a forced logout
    /// when the page shows its signs).
    async fn until(
        &self,
        check: &str,
        run: &RunState,
        missing: impl Fn() -> String,
    ) -> Result<(), Stop> {
        loop {
            match self.tab().eval::<bool>(check).await {
                Ok(true) => return Ok(()),
                Ok(false) | Err(EvalError::Page) => {}
                Err(EvalError::Browser(e)) => return Err(browser_gone(&e)),
            }
            if self.tab().watch().crashed() {
                return Err(failed(Outcome::Error, "the page crashed"));
            }
            if self.idle_past_freeze() {
                let stop = failed(Outcome::AssertionFailed, missing());
                return Err(self.or_logged_out(run, stop).await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn fill(&self, selector: &str, value: &str) -> Result<(), Stop> {
        let focused: bool = self
            .tab()
            .eval(&script::focus_and_clear(selector))
            .await
            .map_err(eval_failure)?;
        if !focused {
            return Err(failed(
                Outcome::AssertionFailed,
                format!("no element matches {selector:?}"),
            ));
        }
        // Typed, not scripted: the value never appears in a script.
        self.tab()
            .page
            .execute(InsertTextParams::new(value))
            .await
            .map_err(|e| browser_gone(&e))?;
        let _ = self.tab().eval::<bool>(script::CHANGED).await;
        Ok(())
    }

    async fn click(&self, selector: &str) -> Result<(), Stop> {
        #[derive(serde::Deserialize)]
        struct Spot {
            x: f64,
            y: f64,
            w: f64,
            h: f64,
        }
        let spot: Option<Spot> = self
            .tab()
            .eval(&script::click_point(selector))
            .await
            .map_err(eval_failure)?;
        let Some(spot) = spot else {
            return Err(failed(
                Outcome::AssertionFailed,
                format!("no element matches {selector:?}"),
            ));
        };
        if !(spot.w > 0.0 && spot.h > 0.0 && spot.x.is_finite() && spot.y.is_finite()) {
            return Err(failed(
                Outcome::AssertionFailed,
                format!("the element matching {selector:?} is not visible"),
            ));
        }
        let clicked = Instant::now();
        self.tab()
            .page
            .click(chromiumoxide::layout::Point {
                x: spot.x,
                y: spot.y,
            })
            .await
            .map_err(|e| browser_gone(&e))?;
        // A click that opens a page starts loading it at once.
        loop {
            let done = self
                .tab()
                .watch()
                .load_since(clicked)
                .map(PageLoad::is_done);
            match done {
                Some(true) => return Ok(()),
                None if clicked.elapsed() >= NAVIGATION_GRACE => return Ok(()),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// The step's checks. What must be there (selectors, texts, the URL)
    /// is waited for as `wait_for` waits: a page a click opened may still
    /// be on its way. What must not be there is checked once, at the end.
    async fn assertions(&self, run: &RunState) -> Result<(), Stop> {
        let checks = &self.step.assertions;
        let tab = self.tab();
        for selector in &checks.selectors {
            self.until(&script::exists(selector), run, || {
                format!("no element matches {selector:?}")
            })
            .await?;
        }
        for text in &checks.text {
            self.until(&script::shows(text), run, || {
                format!("the page does not show {text:?}")
            })
            .await?;
        }
        if let Some(pattern) = &checks.url {
            loop {
                let url = self.current_url().await;
                if pattern.is_match(&url) {
                    break;
                }
                if self.idle_past_freeze() {
                    let path = Url::parse(&url)
                        .map(|u| u.path().to_string())
                        .unwrap_or_default();
                    return Err(failed(
                        Outcome::AssertionFailed,
                        format!("the page's address {path} does not match {pattern}"),
                    ));
                }
                tokio::time::sleep(POLL).await;
            }
        }
        for text in &checks.not_text {
            if tab
                .eval::<bool>(&script::shows(text))
                .await
                .map_err(eval_failure)?
            {
                return Err(failed(
                    Outcome::AssertionFailed,
                    format!("the page shows {text:?}"),
                ));
            }
        }
        Ok(())
    }

    async fn current_url(&self) -> String {
        let known = self.tab().watch().url().map(str::to_string);
        match known {
            Some(url) => url,
            None => self
                .tab()
                .page
                .url()
                .await
                .ok()
                .flatten()
                .unwrap_or_default(),
        }
    }

    async fn extract(&self, session: &mut Session) -> Result<(), Stop> {
        for extraction in &self.step.extract {
            let value = match &extraction.from {
                PageSource::Selector { selector, attr } => self
                    .tab()
                    .eval::<Option<String>>(&script::read(selector, attr.as_deref()))
                    .await
                    .map_err(eval_failure)?
                    .ok_or_else(|| {
                        failed(
                            Outcome::AssertionFailed,
                            format!("extract {}: nothing matches {selector:?}", extraction.var),
                        )
                    })?,
                PageSource::Url(pattern) => {
                    let url = self.current_url().await;
                    let found = pattern.captures(&url).and_then(|c| {
                        c.get(1)
                            .or_else(|| c.get(0))
                            .map(|m| m.as_str().to_string())
                    });
                    found.ok_or_else(|| {
                        failed(
                            Outcome::AssertionFailed,
                            format!(
                                "extract {}: the page's address does not match",
                                extraction.var
                            ),
                        )
                    })?
                }
            };
            session.vars.insert(extraction.var.clone(), value);
        }
        Ok(())
    }

    /// The signs, seen in the browser, that the server ended the session:
    /// the target's `session_rules` first, then its login page.
    async fn logout_sign(
        &self,
        run: &RunState,
        load: Option<&PageLoad>,
    ) -> Option<(LogoutCause, String)> {
        let rules = &self.ctx.target.session_rules;
        let own_logout = self.ctx.phase == StepPhase::Logout;
        if let Some(load) = load {
            let own_path = load.url.as_ref().map(|u| u.path().to_string());
            for hop in &load.redirects {
                if rules.statuses.contains(&hop.status) {
                    return Some((
                        LogoutCause::Status,
                        format!("server answered {}", hop.status),
                    ));
                }
                let Some(next) = &hop.location else { continue };
                if let Some(pattern) = &rules.redirect_to {
                    let relative = match next.query() {
                        Some(q) => format!("{}?{q}", next.path()),
                        None => next.path().to_string(),
                    };
                    if pattern.is_match(next.as_str()) || pattern.is_match(&relative) {
                        return Some((
                            LogoutCause::Redirect,
                            "redirected to the login page".to_string(),
                        ));
                    }
                }
                if let (true, Some(login)) = (rules.login_page, &run.login_url) {
                    let returns = own_path
                        .as_deref()
                        .is_some_and(|p| login_page::returns_to(next, p));
                    if login_page::is_login_page(next, login) && (!own_logout || returns) {
                        return Some((
                            LogoutCause::LoginPage,
                            "redirected to the login page".to_string(),
                        ));
                    }
                }
            }
            if let Some(status) = load.status.filter(|s| rules.statuses.contains(s)) {
                return Some((LogoutCause::Status, format!("server answered {status}")));
            }
        }
        if let Some(pattern) = &rules.body_matches {
            if let Ok(markup) = self.tab().eval::<String>(script::MARKUP).await {
                if pattern.is_match(&markup) {
                    return Some((
                        LogoutCause::ExpiredPage,
                        "page says the session has ended".to_string(),
                    ));
                }
            }
        }
        if !own_logout && rules.login_page {
            let form = script::login_form(run.login_field.as_deref());
            if self.tab().eval::<bool>(&form).await.unwrap_or(false) {
                return Some((
                    LogoutCause::LoginPage,
                    "the page is the login form".to_string(),
                ));
            }
        }
        if let (Some(name), Some(before)) = (&rules.cookie, &self.cookie_before) {
            match cookie(self.tab(), name).await {
                Some(now) if &now == before => {}
                Some(_) => {
                    return Some((
                        LogoutCause::CookieCleared,
                        format!("session cookie {name} was replaced"),
                    ))
                }
                None => {
                    return Some((
                        LogoutCause::CookieCleared,
                        format!("session cookie {name} was cleared"),
                    ))
                }
            }
        }
        None
    }
}
