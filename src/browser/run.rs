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
use std::time::SystemTime;

use tokio::time::Instant;
use url::Url;

use super::evidence::EvidenceStore;
use super::page::Tab;
use super::pool::{BrowserError, BrowserPool};
use super::step::{run_step, RunState, StepContext};
use crate::config::browser::{BrowserAction, BrowserStep};
use crate::config::{Journey, Target};
use crate::outcome::{
    journey_outcome, Outcome, PageTimings, RunRecord, SessionEnd, SessionOrigin, StepPhase,
    StepRecord,
};
use crate::runner::{Probes, Session};

/// What browser runs need: the agent's browser and where evidence goes.
#[derive(Clone)]
pub struct Browsing {
    pub pool: Arc<BrowserPool>,
    /// `None`: no evidence is saved (no journal to put it beside).
    pub evidence: Option<Arc<EvidenceStore>>,
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
    StepRecord {
        target: journey.target.name.clone(),
        journey: journey.name.clone(),
        step: step.map_or_else(|| "browser".to_string(), |s| s.name.clone()),
        phase,
        kind: step.map_or(journey.kind, |s| s.kind),
        sent_at: SystemTime::now(),
        ttfb: None,
        duration: std::time::Duration::ZERO,
        outcome: Outcome::Error,
        censored: false,
        status: None,
        bytes: 0,
        logout_cause: None,
        session_age: None,
        detail: format!("no browser: {why}"),
        // HTTP phases are the agent's own connections; a browser's
        // requests are timed in the page instead.
        phases: Default::default(),
        browser: Some(Box::new(PageTimings::default())),
        agent_fault: None,
    }
}

fn record(
    journey: &Journey,
    intended_start: SystemTime,
    actual_start: SystemTime,
    intended_instant: Instant,
    steps: Vec<StepRecord>,
    sessions: Vec<crate::outcome::SessionSpan>,
) -> RunRecord {
    let (outcome, failed_step) = journey_outcome(&steps);
    RunRecord {
        target: journey.target.name.clone(),
        journey: journey.name.clone(),
        kind: journey.kind,
        intended_start,
        actual_start,
        duration: intended_instant.elapsed(),
        outcome,
        failed_step,
        steps,
        sessions,
    }
}

/// The run of a browser journey in a process that has no browser (a
/// benchmark driver): one `error` step saying so.
pub fn without_browser(
    journey: &Journey,
    intended_start: SystemTime,
    intended_instant: Instant,
    why: &str,
) -> RunRecord {
    let (first, phase) = first_step(journey);
    let step = not_run(journey, first, phase, why);
    record(
        journey,
        intended_start,
        SystemTime::now(),
        intended_instant,
        vec![step],
        Vec::new(),
    )
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

/// Runs one browser journey once.
pub async fn run_journey(
    browsing: &Browsing,
    probes: Option<&Probes>,
    journey: &Journey,
    mut vars: HashMap<String, String>,
    intended_start: SystemTime,
    intended_instant: Instant,
    run_id: u64,
) -> RunRecord {
    let actual_start = SystemTime::now();
    vars.insert("run_id".into(), run_id.to_string());
    let target = &journey.target;
    let done = |steps, sessions| {
        record(
            journey,
            intended_start,
            actual_start,
            intended_instant,
            steps,
            sessions,
        )
    };
    let Some(browser_steps) = &journey.browser else {
        let (first, phase) = first_step(journey);
        return done(
            vec![not_run(journey, first, phase, "not a browser journey")],
            Vec::new(),
        );
    };
    let (first, phase) = first_step(journey);
    let unavailable = |e: &BrowserError| not_run(journey, first, phase, &e.to_string());
    let lease = match browsing.pool.lease().await {
        Ok(lease) => lease,
        Err(e) => return done(vec![unavailable(&e)], Vec::new()),
    };
    let tab = match Tab::open(lease.page.clone(), target.clone(), probes.cloned()).await {
        Ok(tab) => tab,
        Err(e) => {
            let e = BrowserError::Open(e.to_string());
            return done(vec![unavailable(&e)], Vec::new());
        }
    };
    let mut run = RunState {
        run_id,
        secrets: vars.get("password").cloned().into_iter().collect(),
        secret_fields: Vec::new(),
        evidence: browsing.evidence.clone(),
        evidence_saved: Some(browsing.pool.metrics().evidence.clone()),
        login_url: login_url(target, &vars),
        login_field: login_field(target),
    };
    let mut session = Session::new(vars);
    let mut steps: Vec<StepRecord> = Vec::new();
    let login = journey.login.then_some(target.browser.as_ref()).flatten();

    let mut ok = true;
    if let Some(login) = login {
        let ctx = StepContext {
            tab: &tab,
            target,
            journey: &journey.name,
            phase: StepPhase::Login,
        };
        let mut last_sent = Instant::now();
        for step in &login.login {
            last_sent = Instant::now();
            let record = run_step(&ctx, &mut run, step, &mut session).await;
            let good = record.outcome.is_success();
            steps.push(record);
            if !good {
                ok = false;
                break;
            }
            if !step.think_time.is_zero() {
                tokio::time::sleep(step.think_time).await;
            }
        }
        if ok {
            session.mark_logged_in(probes, &target.name, last_sent);
        }
    }

    let mut wedged = false;
    if ok {
        let ctx = StepContext {
            tab: &tab,
            target,
            journey: &journey.name,
            phase: StepPhase::Journey,
        };
        for step in &browser_steps.steps {
            let record = run_step(&ctx, &mut run, step, &mut session).await;
            let (outcome, censored) = (record.outcome, record.censored);
            steps.push(record);
            if !outcome.is_success() {
                wedged = censored || tab.watch().crashed();
                break;
            }
            if !step.think_time.is_zero() {
                tokio::time::sleep(step.think_time).await;
            }
        }
    }

    let mut sessions = Vec::new();
    if let Some(login) = login {
        let origin = SessionOrigin::journey(&journey.name);
        if session.ended_by_server.is_none() && crate::runner::stop::is_forced() {
            sessions.extend(session.finish(origin, &target.name, SessionEnd::AgentStop));
        } else {
            if session.ended_by_server.is_none() && session.is_logged_in() {
                let fresh = if wedged {
                    match lease.new_tab().await {
                        Ok(page) => Tab::open(page, target.clone(), probes.cloned()).await.ok(),
                        Err(_) => None,
                    }
                } else {
                    None
                };
                let ctx = StepContext {
                    tab: fresh.as_ref().unwrap_or(&tab),
                    target,
                    journey: &journey.name,
                    phase: StepPhase::Logout,
                };
                for step in &login.logout {
                    let record = run_step(&ctx, &mut run, step, &mut session).await;
                    let good = record.outcome.is_success();
                    steps.push(record);
                    if !good {
                        break;
                    }
                }
            }
            let end = session
                .ended_by_server
                .map_or(SessionEnd::LoggedOut, SessionEnd::Forced);
            sessions.extend(session.finish(origin, &target.name, end));
        }
    }
    drop(tab);
    drop(lease);
    done(steps, sessions)
}
