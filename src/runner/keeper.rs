//! Long-lived sessions and heartbeats: the agent-side tasks that are not
//! journeys on a timetable.
//!
//! A kept session logs in, runs a light keep-alive step every few minutes
//! until the server drops it (a forced logout) or it reaches its maximum age,
//! reporting the session time it spends in each age band as it goes. Its
//! lifetimes, dropped or censored, are what survival by session age is built
//! from. Heartbeats send a cheap request every few seconds so that freeze
//! episodes start and end sharply.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{credentials, log_in, log_out, run_step, EnvLookup, Probes, RunContext, Session};
use crate::config::{Target, HEARTBEAT_JOURNEY, KEEPALIVE_JOURNEY};
use crate::outcome::{
    journey_outcome, Outcome, Record, RunRecord, SessionEnd, SessionSpan, StepPhase,
};

/// A pause before logging in again after a failed login, so a broken login
/// page is not hammered.
const RELOGIN_BACKOFF: Duration = Duration::from_secs(5);

/// How long a kept session's logout may take once the agent is stopping.
const STOP_LOGOUT_DEADLINE: Duration = Duration::from_secs(5);

pub struct KeeperTask {
    pub target: Arc<Target>,
    pub slot: usize,
    pub client: reqwest::Client,
    pub env: EnvLookup,
    pub sessions: Arc<Semaphore>,
    pub probes: Probes,
    pub shutdown: CancellationToken,
}

/// Keeps one long-lived session (slot `slot`) alive until shutdown.
pub async fn keep_session(task: KeeperTask) {
    let Some(keep) = &task.target.keep_sessions else {
        return;
    };
    let target = &task.target;
    let ctx = RunContext {
        client: &task.client,
        probes: Some(&task.probes),
    };
    let stagger = keep.stagger * u32::try_from(task.slot).unwrap_or(u32::MAX);
    if sleep_or_stop(stagger, &task.shutdown).await {
        return;
    }
    loop {
        let permit = tokio::select! {
            permit = task.sessions.acquire() => permit,
            _ = task.shutdown.cancelled() => return,
        };
        let Ok(_permit) = permit else {
            return;
        };
        let vars = match credentials(target, &task.env) {
            Ok(vars) => vars,
            Err(e) => {
                tracing::error!(target = %target.name, error = %e, "cannot keep a session");
                if sleep_or_stop(keep.every, &task.shutdown).await {
                    return;
                }
                continue;
            }
        };
        let mut session = Session::new(vars);
        let started = Instant::now();
        let mut steps = Vec::new();
        let logged_in = tokio::select! {
            ok = log_in(&ctx, target, KEEPALIVE_JOURNEY, &mut session, &mut steps) => ok,
            _ = task.shutdown.cancelled() => return,
        };
        task.probes.send(Record::Run(keepalive_record(
            target,
            started,
            steps,
            Vec::new(),
        )));
        if !logged_in {
            if sleep_or_stop(RELOGIN_BACKOFF, &task.shutdown).await {
                return;
            }
            continue;
        }
        // The session is live: keep it alive until it drops, ages out or we stop.
        let (end, reported) = keep_alive(&ctx, &task, &mut session).await;
        let mut steps = Vec::new();
        let started = Instant::now();
        // Exposure up to `reported` went out with the keep-alive runs; the
        // final span covers the rest and carries how the life ended.
        // At stop the logout gets a short deadline: a frozen target must not
        // hold the agent's exit.
        let limit = if end == SessionEnd::AgentStop {
            STOP_LOGOUT_DEADLINE
        } else {
            Duration::MAX
        };
        let logout = log_out(
            &ctx,
            target,
            KEEPALIVE_JOURNEY,
            &mut session,
            &mut steps,
            end,
        );
        let span = match tokio::time::timeout(limit, logout).await {
            Ok(span) => span,
            Err(_) => session.finish(KEEPALIVE_JOURNEY, &target.name, end),
        };
        let span = span.map(|s| SessionSpan {
            age_from: reported.min(s.age_to),
            ..s
        });
        task.probes.send(Record::Run(keepalive_record(
            target,
            started,
            steps,
            span.into_iter().collect(),
        )));
        if end == SessionEnd::AgentStop {
            return;
        }
    }
}

/// Runs the keep-alive step every `every` until the session ends; reports
/// exposure after each one. Returns how the session's life ended and the age
/// up to which exposure has been reported.
async fn keep_alive(
    ctx: &RunContext<'_>,
    task: &KeeperTask,
    session: &mut Session,
) -> (SessionEnd, Duration) {
    let target = &task.target;
    let mut reported = Duration::ZERO;
    let Some(keep) = &target.keep_sessions else {
        return (SessionEnd::AgentStop, reported);
    };
    let step_ctx = ctx.step_context(target, KEEPALIVE_JOURNEY, StepPhase::Journey);
    let login_at = session.login_at().unwrap_or_else(SystemTime::now);
    loop {
        let age = session.age().unwrap_or_default();
        if age >= keep.max_age {
            return (SessionEnd::MaxAge, reported);
        }
        let wait = keep.every.min(keep.max_age - age);
        if sleep_or_stop(wait, &task.shutdown).await {
            return (SessionEnd::AgentStop, reported);
        }
        let started = Instant::now();
        let record = tokio::select! {
            record = run_step(&step_ctx, &keep.keepalive, session) => record,
            _ = task.shutdown.cancelled() => return (SessionEnd::AgentStop, reported),
        };
        let age_now = session.age().unwrap_or_default();
        let span = SessionSpan {
            target: target.name.clone(),
            origin: KEEPALIVE_JOURNEY.to_string(),
            login_at,
            age_from: reported,
            age_to: age_now,
            end: None,
        };
        reported = age_now;
        task.probes.send(Record::Run(keepalive_record(
            target,
            started,
            vec![record],
            vec![span],
        )));
        if let Some(cause) = session.ended_by_server {
            return (SessionEnd::Forced(cause), reported);
        }
    }
}

fn keepalive_record(
    target: &Target,
    started: Instant,
    steps: Vec<crate::outcome::StepRecord>,
    sessions: Vec<SessionSpan>,
) -> RunRecord {
    let (outcome, failed_step) = journey_outcome(&steps);
    let now = SystemTime::now();
    let duration = started.elapsed();
    RunRecord {
        target: target.name.clone(),
        journey: KEEPALIVE_JOURNEY.to_string(),
        intended_start: now - duration,
        actual_start: now - duration,
        duration,
        outcome,
        failed_step,
        steps,
        sessions,
    }
}

/// Sleeps `d`; true if shutdown came first.
async fn sleep_or_stop(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.cancelled() => true,
    }
}

/// Sends the target's heartbeat request every `every` until shutdown; at
/// most one is in flight, so a freeze does not pile requests up.
pub async fn heartbeat(
    target: Arc<Target>,
    client: reqwest::Client,
    probes: Probes,
    shutdown: CancellationToken,
) {
    let Some(beat) = &target.heartbeat else {
        return;
    };
    let ctx = RunContext {
        client: &client,
        probes: Some(&probes),
    };
    let step_ctx = ctx.step_context(&target, HEARTBEAT_JOURNEY, StepPhase::Journey);
    let mut session = Session::new(HashMap::new());
    let mut ticks = tokio::time::interval(beat.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let record = tokio::select! {
            record = run_step(&step_ctx, &beat.step, &mut session) => record,
            _ = shutdown.cancelled() => return,
        };
        if matches!(record.outcome, Outcome::ConnectError | Outcome::Error) {
            tracing::debug!(target = %target.name, detail = %record.detail, "heartbeat failed");
        }
    }
}
