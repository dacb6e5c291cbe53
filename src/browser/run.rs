//! A browser journey run: a fresh context, the target's browser login, the
//! journey's steps until the first failure, then the logout whenever a
//! session is open, as HTTP journeys do. The run's records are the same
//! [`RunRecord`] and [`StepRecord`]s, with the same session spans, so
//! forced logouts and freezes seen in the browser count with the others.
//!
//! After a step that was given up on (the page may still be stuck), or a
//! crashed page, the logout runs in a new tab of the same context: the
//! session's cookies are there, the stuck page is not.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use url::Url;

use super::captures::CaptureStore;
use super::page::Tab;
use super::pool::{BrowserError, BrowserPool, Lease};
use super::step::{run_step, BrowserStepContext, RunState};
use crate::config::browser::{BrowserAction, BrowserJourney, BrowserLogin, BrowserStep};
use crate::config::{Journey, Target};
use crate::outcome::{
    Outcome, PageTimings, PlannedRun, RunRecord, SessionEnd, SessionOrigin, SessionSpan, StepPhase,
    StepRecord,
};
use crate::runner::{end_session, run_record, Probes, Session};

/// What browser runs need: the agent's browser and where evidence goes.
#[derive(Clone)]
pub struct Browsing {
    pub pool: Arc<BrowserPool>,
    /// `None`: no evidence is saved (no journal to put it beside).
    pub evidence: Option<Arc<CaptureStore>>,
}

/// The page a forced logout lands on: the browser login's first page, else
/// the HTTP login's.
fn login_url(target: &Target, vars: &HashMap<String, String>) -> Option<Url> {
    let browser_login = target.browser.as_ref().and_then(|b| {
        b.login.iter().find_map(|s| match &s.action {
            Some(BrowserAction::Goto(path)) => Some(path.render(vars)),
            _ => None,
        })
    });
    let path = browser_login.or_else(|| target.login.first().map(|s| s.path.render(vars)))?;
    target.base_url.join(&path).ok()
}

/// The first field the browser login fills: a login form holds it.
fn login_field(target: &Target) -> Option<String> {
    target.browser.as_ref().and_then(|b| {
        b.login.iter().find_map(|s| match &s.action {
            Some(BrowserAction::Fill { selector, .. }) => Some(selector.clone()),
            _ => None,
        })
    })
}

/// A step that could not run because the browser could not.
fn not_run(
    journey: &Journey,
    step: Option<&BrowserStep>,
    phase: StepPhase,
    why: &str,
) -> StepRecord {
    let (name, kind, freeze_after) = match step {
        Some(s) => (s.name.as_str(), s.kind, s.timings.freeze_after),
        // It never ran, so no stall can have slowed it.
        None => ("browser", journey.kind, Duration::MAX),
    };
    let target = &journey.target.name;
    StepRecord {
        detail: format!("no browser: {why}"),
        // HTTP phases are the agent's own connections; a browser's
        // requests are timed in the page instead.
        browser: Some(Box::new(PageTimings::default())),
        ..StepRecord::new(target, &journey.name, name, phase, kind, freeze_after)
    }
}

/// The run of a browser journey in a process that has no browser (a
/// benchmark driver): one `error` step saying so.
pub fn without_browser(journey: &Journey, planned: &PlannedRun, why: &str) -> RunRecord {
    let (first, phase) = first_step(journey);
    let step = not_run(journey, first, phase, why);
    run_record(journey, planned, SystemTime::now(), vec![step], Vec::new())
}

fn first_step(journey: &Journey) -> (Option<&BrowserStep>, StepPhase) {
    let login = journey
        .login
        .then_some(journey.target.browser.as_ref())
        .flatten()
        .and_then(|l| l.login.first());
    match login {
        Some(step) => (Some(step), StepPhase::Login),
        None => (
            journey.browser.as_ref().and_then(|b| b.steps.first()),
            StepPhase::Journey,
        ),
    }
}

/// How long a browser run may take once it has its browser context: the
/// `give_up_after` of every step it may run (login, journey, logout) and
/// their think times.
pub fn run_budget(journey: &Journey) -> Duration {
    let login = journey
        .login
        .then_some(journey.target.browser.as_ref())
        .flatten();
    let steps = login
        .into_iter()
        .flat_map(|l| l.login.iter().chain(&l.logout))
        .chain(journey.browser.iter().flat_map(|b| &b.steps));
    steps
        .map(|s| s.timings.give_up_after.saturating_add(s.think_time))
        .fold(Duration::ZERO, Duration::saturating_add)
}

/// Past the run's budget, what the last failed step's evidence
/// ([`super::step::CAPTURE_FLOOR`]) and the page's report of a long task
/// may still take; past that, the run is cut short.
pub const DEADLINE_GRACE: Duration = Duration::from_secs(2);

/// Runs one browser journey once.
///
/// Waiting for a browser context (all `max_contexts` in use, or the browser
/// starting) is the agent's own queueing, not the system's: it counts as
/// lateness, so the run's start is when it has its context, and its
/// duration leaves the wait out. From then the run has a hard deadline
/// ([`run_budget`]): no step waits past it, a failed step's evidence is
/// taken in the time left, a logout with no time left is not tried, and a
/// run still going [`DEADLINE_GRACE`] after it is cut short.
pub async fn run_journey(
    browsing: &Browsing,
    probes: Option<&Probes>,
    journey: &Journey,
    mut vars: HashMap<String, String>,
    planned: &PlannedRun,
) -> RunRecord {
    let mut actual_start = SystemTime::now();
    vars.insert("run_id".into(), planned.run_id.to_string());
    let target = &journey.target;
    let (first, phase) = first_step(journey);
    let Some(browser_steps) = &journey.browser else {
        return run_record(
            journey,
            planned,
            actual_start,
            vec![not_run(journey, first, phase, "not a browser journey")],
            Vec::new(),
        );
    };
    let unavailable = |e: &BrowserError| not_run(journey, first, phase, &e.to_string());
    let asked = Instant::now();
    let leased = browsing.pool.lease().await;
    let waited = asked.elapsed();
    actual_start += waited;
    // The run is timed from its intended start, less the wait for its
    // context, which is lateness.
    let done = |steps, sessions| {
        let mut run = run_record(journey, planned, actual_start, steps, sessions);
        run.duration = run.duration.saturating_sub(waited);
        run
    };
    let lease = match leased {
        Ok(lease) => lease,
        Err(e) => return done(vec![unavailable(&e)], Vec::new()),
    };
    let budget = run_budget(journey);
    let tab = match open_tab(&lease, target, probes, budget).await {
        Ok(tab) => tab,
        Err(e) => return done(vec![unavailable(&e)], Vec::new()),
    };
    let cx = BrowserRun {
        lease: &lease,
        tab: &tab,
        probes,
        journey,
        deadline: Instant::now() + budget,
    };
    let mut run = run_state(browsing, planned, target, &vars);
    let mut session = Session::new(vars);
    let mut steps: Vec<StepRecord> = Vec::new();
    let mut sessions = Vec::new();
    let steps_run = run_steps(
        &cx,
        browser_steps,
        &mut run,
        &mut session,
        &mut steps,
        &mut sessions,
    );
    let finished = tokio::select! {
        () = steps_run => true,
        () = tokio::time::sleep_until(cx.deadline + DEADLINE_GRACE) => false,
    };
    if !finished {
        steps.push(cut_short(journey, budget));
        let origin = SessionOrigin::journey(&journey.name);
        sessions.extend(session.close(origin, &target.name, SessionEnd::LoggedOut));
    }
    drop(tab);
    drop(lease);
    done(steps, sessions)
}

/// The run's first tab, in its leased context, within the run's `budget`.
async fn open_tab(
    lease: &Lease,
    target: &Arc<Target>,
    probes: Option<&Probes>,
    budget: Duration,
) -> Result<Tab, BrowserError> {
    let opened = tokio::time::timeout(
        budget,
        Tab::open(lease.page.clone(), target.clone(), probes.cloned()),
    )
    .await;
    match opened {
        Ok(Ok(tab)) => Ok(tab),
        Ok(Err(e)) => Err(BrowserError::Open(e.to_string())),
        Err(_) => Err(BrowserError::Open("the new tab did not answer".to_string())),
    }
}

/// What the run's steps keep between them: its secrets, the login page
/// a forced logout lands on, where evidence goes.
fn run_state(
    browsing: &Browsing,
    planned: &PlannedRun,
    target: &Target,
    vars: &HashMap<String, String>,
) -> RunState {
    RunState {
        run_id: planned.run_id,
        secrets: vars.get("password").cloned().into_iter().collect(),
        secret_fields: Vec::new(),
        evidence: browsing.evidence.clone(),
        evidence_saved: Some(browsing.pool.metrics().evidence.clone()),
        login_url: login_url(target, vars),
        login_field: login_field(target),
    }
}

/// The record of a run cut short at its hard deadline.
fn cut_short(journey: &Journey, budget: Duration) -> StepRecord {
    let mut step = not_run(journey, None, StepPhase::Journey, "");
    step.outcome = Outcome::Frozen;
    step.censored = true;
    step.duration = budget;
    step.detail = format!(
        "the run was cut short at its deadline of {:.1}s (its steps' give_up_after)",
        budget.as_secs_f64()
    );
    step
}

/// What every step of one browser run shares: its context and first tab,
/// and the run's hard deadline.
struct BrowserRun<'a> {
    lease: &'a Lease,
    tab: &'a Tab,
    probes: Option<&'a Probes>,
    journey: &'a Journey,
    deadline: Instant,
}

impl<'a> BrowserRun<'a> {
    fn in_time(&self) -> bool {
        Instant::now() < self.deadline
    }

    fn step_context(&self, tab: &'a Tab, phase: StepPhase) -> BrowserStepContext<'a> {
        BrowserStepContext {
            tab,
            target: &self.journey.target,
            journey: &self.journey.name,
            phase,
            deadline: self.deadline,
        }
    }

    /// A new tab in the run's context, in the time the run has left, for a
    /// logout the first tab may be too stuck to run.
    async fn fresh_tab(&self) -> Option<Tab> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let opened = tokio::time::timeout(remaining, async {
            match self.lease.new_tab().await {
                Ok(page) => Tab::open(page, self.journey.target.clone(), self.probes.cloned())
                    .await
                    .ok(),
                Err(_) => None,
            }
        })
        .await;
        opened.ok().flatten()
    }
}

/// The login, the steps and the logout of a browser run, each step within
/// the run's `deadline`.
async fn run_steps(
    cx: &BrowserRun<'_>,
    browser_steps: &BrowserJourney,
    run: &mut RunState,
    session: &mut Session,
    steps: &mut Vec<StepRecord>,
    sessions: &mut Vec<SessionSpan>,
) {
    let target = &cx.journey.target;
    let login = cx
        .journey
        .login
        .then_some(target.browser.as_ref())
        .flatten();
    let logged_in = match login {
        Some(login) => log_in(cx, login, run, session, steps).await,
        None => true,
    };
    let wedged = logged_in && journey_steps(cx, browser_steps, run, session, steps).await;
    if let Some(login) = login {
        log_out(cx, login, wedged, run, session, steps, sessions).await;
    }
}

/// The browser login's steps until the first failure; whether they all
/// passed, the session then counting as logged in.
async fn log_in(
    cx: &BrowserRun<'_>,
    login: &BrowserLogin,
    run: &mut RunState,
    session: &mut Session,
    steps: &mut Vec<StepRecord>,
) -> bool {
    let ctx = cx.step_context(cx.tab, StepPhase::Login);
    let mut last_sent = Instant::now();
    for step in &login.login {
        if !cx.in_time() {
            return false;
        }
        last_sent = Instant::now();
        let record = run_step(&ctx, run, step, session).await;
        let good = record.outcome.is_success();
        steps.push(record);
        if !good {
            return false;
        }
        if !step.think_time.is_zero() {
            tokio::time::sleep(step.think_time).await;
        }
    }
    session.mark_logged_in(cx.probes, &cx.journey.target.name, last_sent);
    true
}

/// The journey's steps until the first failure; whether that failure left
/// the tab wedged (a step given up on, or a crashed page).
async fn journey_steps(
    cx: &BrowserRun<'_>,
    browser_steps: &BrowserJourney,
    run: &mut RunState,
    session: &mut Session,
    steps: &mut Vec<StepRecord>,
) -> bool {
    let ctx = cx.step_context(cx.tab, StepPhase::Journey);
    for step in &browser_steps.steps {
        if !cx.in_time() {
            break;
        }
        let record = run_step(&ctx, run, step, session).await;
        let (outcome, censored) = (record.outcome, record.censored);
        steps.push(record);
        if !outcome.is_success() {
            return censored || cx.tab.watch().crashed();
        }
        if !step.think_time.is_zero() {
            tokio::time::sleep(step.think_time).await;
        }
    }
    false
}

/// The logout, in a fresh tab when the first is `wedged`, ending the
/// session's span.
#[allow(clippy::too_many_arguments)]
async fn log_out(
    cx: &BrowserRun<'_>,
    login: &BrowserLogin,
    wedged: bool,
    run: &mut RunState,
    session: &mut Session,
    steps: &mut Vec<StepRecord>,
    sessions: &mut Vec<SessionSpan>,
) {
    let target = &cx.journey.target;
    let origin = SessionOrigin::journey(&cx.journey.name);
    let logout = async |session: &mut Session| {
        if !cx.in_time() {
            return;
        }
        let fresh = if wedged { cx.fresh_tab().await } else { None };
        let ctx = cx.step_context(fresh.as_ref().unwrap_or(cx.tab), StepPhase::Logout);
        for step in &login.logout {
            if !cx.in_time() {
                break;
            }
            let record = run_step(&ctx, run, step, session).await;
            let good = record.outcome.is_success();
            steps.push(record);
            if !good {
                break;
            }
        }
    };
    let span = end_session(session, origin, &target.name, SessionEnd::LoggedOut, logout);
    sessions.extend(span.await);
}
