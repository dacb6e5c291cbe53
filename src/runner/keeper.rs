//! Long-lived sessions and heartbeats: the agent-side tasks that are not
//! journeys on a timetable.
//!
//! A kept session logs in, runs a light keep-alive check every few minutes
//! until the server drops it (a forced logout), it is lost, or it reaches
//! its maximum age, reporting the session time it is known to be alive in
//! each age band as it goes. What each check means for the session is
//! decided by [`crate::detect::kept`]: a session is never kept as a zombie.
//! Its lifetimes, dropped or censored, are what survival by session age is
//! built from. Kept sessions are not journeys: they report
//! [`Record::Kept`] records of their own. Heartbeats send a cheap request
//! every few seconds so that freeze episodes start and end sharply.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{credentials, log_in, log_out, run_step, Probes, RunContext, Session};
use crate::config::secret::EnvLookup;
use crate::config::{Target, HEARTBEAT_JOURNEY};
use crate::detect::kept::{KeptJudge, Next, Sign};
use crate::outcome::{
    KeptActivity, KeptRecord, KeptState, Outcome, Record, SessionEnd, SessionOrigin, SessionSpan,
    StepPhase, StepRecord,
};

/// The longest pause before logging in again after a failed login, so a
/// broken login page is not hammered; shorter when checks are more often,
/// so a slot is live again within one `every` of the system's return.
const RELOGIN_BACKOFF: Duration = Duration::from_secs(5);

/// How long a kept session's logout may take once the agent is stopping.
const STOP_LOGOUT_DEADLINE: Duration = Duration::from_secs(5);

pub struct KeeperTask {
    pub target: Arc<Target>,
    pub slot: usize,
    pub client: reqwest::Client,
    pub env: EnvLookup,
    /// The agent's cap on its own logged-in sessions, shared with journeys.
    pub sessions: Arc<Semaphore>,
    pub probes: Probes,
    pub shutdown: CancellationToken,
}

impl KeeperTask {
    fn send(&self, activity: KeptActivity, steps: Vec<StepRecord>, state: KeptState) {
        self.send_spans(activity, steps, state, Vec::new());
    }

    fn send_spans(
        &self,
        activity: KeptActivity,
        steps: Vec<StepRecord>,
        state: KeptState,
        sessions: Vec<SessionSpan>,
    ) {
        self.probes.send(Record::Kept(KeptRecord {
            target: self.target.name.clone(),
            slot: self.slot,
            activity,
            steps,
            state,
            sessions,
        }));
    }

    fn origin(&self) -> SessionOrigin {
        SessionOrigin::Kept { slot: self.slot }
    }
}

/// Keeps one long-lived session (slot `slot`) alive until shutdown; a
/// session that ends, however it ends, is replaced at once.
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
    let backoff = RELOGIN_BACKOFF.min(keep.every);
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
        let mut steps = Vec::new();
        let logged_in = tokio::select! {
            ok = log_in(&ctx, target, "", &mut session, &mut steps) => ok,
            _ = task.shutdown.cancelled() => return,
        };
        let state = if logged_in {
            KeptState::Alive
        } else {
            KeptState::Ended
        };
        task.send(KeptActivity::Login, steps, state);
        if !logged_in {
            if sleep_or_stop(backoff, &task.shutdown).await {
                return;
            }
            continue;
        }
        // The session is live: keep it alive until it ends or we stop.
        let (end, reported, detail) = keep_alive(&ctx, &task, &mut session).await;
        end_life(&ctx, &task, &mut session, end, reported, detail).await;
        if end == SessionEnd::AgentStop {
            return;
        }
    }
}

/// Logs out when the agent chose the end, and sends the life's last span:
/// the exposure after `reported` and how the life ended.
async fn end_life(
    ctx: &RunContext<'_>,
    task: &KeeperTask,
    session: &mut Session,
    end: SessionEnd,
    reported: Duration,
    detail: String,
) {
    let target = &task.target;
    let mut steps = Vec::new();
    // At stop the logout gets a short deadline: a frozen target must not
    // hold the agent's exit.
    let limit = if end == SessionEnd::AgentStop {
        STOP_LOGOUT_DEADLINE
    } else {
        Duration::MAX
    };
    // Only an agent-chosen end logs out; a forced or lost life has
    // nothing left to log out of.
    let span = if matches!(end, SessionEnd::Forced(_) | SessionEnd::Lost) {
        session.finish(task.origin(), &target.name, end)
    } else {
        let logout = log_out(ctx, target, "", task.origin(), session, &mut steps, end);
        match tokio::time::timeout(limit, logout).await {
            Ok(span) => span,
            Err(_) => session.finish(task.origin(), &target.name, end),
        }
    };
    // Exposure up to `reported` went out with the checks; the final span
    // covers the rest and carries how the life ended.
    let span = span.map(|s| SessionSpan {
        age_from: reported.min(s.age_to),
        detail,
        ..s
    });
    task.send_spans(
        KeptActivity::Logout,
        steps,
        KeptState::Ended,
        span.into_iter().collect(),
    );
}

/// Runs the keep-alive check every `every` until the session ends; reports
/// the exposure known alive after each one. Returns how the life ended, the
/// age up to which exposure has been reported, and why a lost life was lost.
async fn keep_alive(
    ctx: &RunContext<'_>,
    task: &KeeperTask,
    session: &mut Session,
) -> (SessionEnd, Duration, String) {
    let target = &task.target;
    let mut reported = Duration::ZERO;
    let Some(keep) = &target.keep_sessions else {
        return (SessionEnd::AgentStop, reported, String::new());
    };
    let step_ctx = ctx.step_context(target, "", StepPhase::Journey);
    let login_at = session
        .login_at()
        .unwrap_or_else(std::time::SystemTime::now);
    let mut judge = KeptJudge::default();
    let mut wait = keep.every;
    loop {
        let age = session.age().unwrap_or_default();
        if age >= keep.max_age {
            return (SessionEnd::MaxAge, reported, String::new());
        }
        if sleep_or_stop(wait.min(keep.max_age - age), &task.shutdown).await {
            return (SessionEnd::AgentStop, reported, String::new());
        }
        let record = tokio::select! {
            record = run_step(&step_ctx, &keep.keepalive, session) => record,
            _ = task.shutdown.cancelled() => return (SessionEnd::AgentStop, reported, String::new()),
        };
        let next = judge.check(Sign::of(&record));
        if judge.state() == KeptState::Unknown {
            session.mark_unknown();
        }
        let alive = session.alive_age();
        let mut spans = Vec::new();
        if alive > reported {
            spans.push(SessionSpan {
                target: target.name.clone(),
                origin: task.origin(),
                login_at,
                age_from: reported,
                age_to: alive,
                end: None,
                seen_age: None,
                seen_at: None,
                detail: String::new(),
            });
            reported = alive;
        }
        let detail = if record.outcome.is_success() {
            String::new()
        } else {
            record.detail.clone()
        };
        task.send_spans(KeptActivity::Check, vec![record], judge.state(), spans);
        wait = match next {
            Next::Wait => keep.every,
            Next::CheckNow => Duration::ZERO,
            Next::End(end) => return (end, reported, detail),
        };
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
