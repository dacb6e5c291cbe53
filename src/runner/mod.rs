//! The runner: executes journeys (login, steps, logout) and emits records.
//!
//! A run never panics on what the network sends: every failure becomes a step
//! outcome. Secrets enter only the session's variables and never a record.

mod extract;
pub mod keeper;
pub mod phases;
mod probes;
mod session;
mod step;
pub mod stop;

pub use extract::{check_assertions, extract};
pub use probes::{InflightGuard, Probes, SessionGuard};
pub use session::Session;
pub use step::{run_step, step_record, ConfiguredStep, HttpStepContext};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use crate::config::secret::{self, EnvLookup, SecretError};
use crate::config::{Journey, Target};
use crate::outcome::{
    journey_outcome, Outcome, PlannedRun, RunRecord, SessionEnd, SessionOrigin, SessionSpan,
    StepPhase, StepRecord,
};

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("target {target}: cannot read CA file {path}")]
    CaFile {
        target: String,
        path: String,
        #[source]
        source: crate::config::file::FileError,
    },
    #[error("target {target}: bad TLS or proxy setting")]
    Client {
        target: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("target {target}: cannot set up TLS")]
    Tls {
        target: String,
        #[source]
        source: phases::TlsSetupError,
    },
    #[error("target {target}: credential {what} is not available: {why}")]
    Secret {
        target: String,
        what: &'static str,
        why: SecretError,
    },
}

/// Builds the shared HTTP client of a target: its own connection pool, no
/// automatic redirects, no cookie store (sessions hold their own jars), and
/// DNS, connect and TLS timed ([`phases`]); its TLS roots, CA file and
/// certificate check come from [`phases::tls_config`].
pub fn client_for(target: &Target) -> Result<reqwest::Client, RunnerError> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(target.connect_timeout)
        .user_agent(target.user_agent.clone())
        .pool_idle_timeout(std::time::Duration::from_secs(30));
    let mut builder = phases::instrument(builder, target).map_err(|source| match source {
        phases::TlsSetupError::CaFile { path, source } => RunnerError::CaFile {
            target: target.name.clone(),
            path: path.display().to_string(),
            source,
        },
        source => RunnerError::Tls {
            target: target.name.clone(),
            source,
        },
    })?;
    if let Some(proxy) = &target.proxy {
        let proxy = reqwest::Proxy::all(proxy.as_str()).map_err(|source| RunnerError::Client {
            target: target.name.clone(),
            source,
        })?;
        builder = builder.proxy(proxy);
    } else {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|source| RunnerError::Client {
        target: target.name.clone(),
        source,
    })
}

/// The user name and password of a target, read now (so a rotated secret file
/// is picked up by the next run).
pub fn credentials(
    target: &Target,
    env: &EnvLookup,
) -> Result<HashMap<String, String>, RunnerError> {
    let mut vars = HashMap::new();
    for (what, source) in [
        ("username", &target.username),
        ("password", &target.password),
    ] {
        let Some(source) = source else { continue };
        let value = secret::read(source, env).map_err(|why| RunnerError::Secret {
            target: target.name.clone(),
            what,
            why,
        })?;
        vars.insert(what.to_string(), value);
    }
    Ok(vars)
}

/// What every run needs besides its journey.
#[derive(Clone, Copy)]
pub struct RunContext<'a> {
    pub client: &'a reqwest::Client,
    pub probes: Option<&'a Probes>,
}

impl<'a> RunContext<'a> {
    fn step_context(
        &self,
        target: &'a Target,
        journey: &'a str,
        phase: StepPhase,
    ) -> HttpStepContext<'a> {
        HttpStepContext {
            client: self.client,
            target,
            journey,
            phase,
            probes: self.probes,
        }
    }
}

/// Logs `session` in with the target's login steps; true on success.
/// `journey` labels the steps' records (empty for a kept session's).
pub async fn log_in(
    ctx: &RunContext<'_>,
    target: &Target,
    journey: &str,
    session: &mut Session,
    records: &mut Vec<StepRecord>,
) -> bool {
    let step_ctx = ctx.step_context(target, journey, StepPhase::Login);
    let mut last_sent = Instant::now();
    for step in &target.login {
        last_sent = Instant::now();
        let record = run_step(&step_ctx, step, session).await;
        let ok = record.outcome.is_success();
        records.push(record);
        if !ok {
            return false;
        }
        if !step.think_time.is_zero() {
            tokio::time::sleep(step.think_time).await;
        }
    }
    session.mark_logged_in(ctx.probes, &target.name, last_sent);
    true
}

/// Logs `session` out if it is still open, and returns its life as a span.
/// A logout that shows the server had already ended the session is a
/// forced logout, not the agent's.
pub async fn log_out(
    ctx: &RunContext<'_>,
    target: &Target,
    journey: &str,
    origin: SessionOrigin,
    session: &mut Session,
    records: &mut Vec<StepRecord>,
    end: SessionEnd,
) -> Option<SessionSpan> {
    end_session(session, origin, &target.name, end, async |session| {
        if let Some(logout) = &target.logout {
            let step_ctx = ctx.step_context(target, journey, StepPhase::Logout);
            records.push(run_step(&step_ctx, logout, session).await);
        }
    })
    .await
}

/// Ends `session` once its steps are done: the one ending of HTTP
/// journeys, kept sessions and browser journeys. Past the stop deadline
/// there is no time left for a logout, so a session the server has not
/// ended ends as the agent's stop. Otherwise `logout` runs while the
/// session is open (it may still find there is no time for it), and the
/// session ends forced if an answer showed the server had already ended
/// it, else with `end`.
pub async fn end_session(
    session: &mut Session,
    origin: SessionOrigin,
    target: &str,
    end: SessionEnd,
    logout: impl AsyncFnOnce(&mut Session),
) -> Option<SessionSpan> {
    if session.ended_by_server.is_none() && stop::is_forced() {
        return session.finish(origin, target, SessionEnd::AgentStop);
    }
    if session.ended_by_server.is_none() && session.is_logged_in() {
        logout(session).await;
    }
    session.close(origin, target, end)
}

/// The record of one run of `journey`, HTTP or browser: its outcome is its
/// first failing step's, and it is timed from its intended start.
pub fn run_record(
    journey: &Journey,
    planned: &PlannedRun,
    actual_start: SystemTime,
    steps: Vec<StepRecord>,
    sessions: Vec<SessionSpan>,
) -> RunRecord {
    let (outcome, failed_step) = journey_outcome(&steps);
    RunRecord {
        target: journey.target.name.clone(),
        journey: journey.name.clone(),
        kind: journey.kind,
        intended_start: planned.start,
        actual_start,
        duration: planned.instant.elapsed(),
        outcome,
        failed_step,
        steps,
        sessions,
        agent_stalled: false,
    }
}

/// Runs one journey once: log in (if it does), its steps until the first
/// failure, then log out whenever a session is still open. With
/// `retry_after_relogin`, a step interrupted by a forced logout is retried
/// once in a fresh session, to measure what a user loses.
pub async fn run_journey(
    ctx: &RunContext<'_>,
    journey: &Journey,
    mut vars: HashMap<String, String>,
    planned: &PlannedRun,
) -> RunRecord {
    let actual_start = SystemTime::now();
    vars.insert("run_id".into(), planned.run_id.to_string());
    let target = &journey.target;
    let mut session = Session::new(vars.clone());
    let mut steps: Vec<StepRecord> = Vec::new();
    let mut sessions = Vec::new();

    let mut ok =
        !journey.login || log_in(ctx, target, &journey.name, &mut session, &mut steps).await;
    let step_ctx = ctx.step_context(target, &journey.name, StepPhase::Journey);
    let mut retried = false;
    let mut index = 0;
    while ok && index < journey.steps.len() {
        let step = &journey.steps[index];
        let record = run_step(&step_ctx, step, &mut session).await;
        let outcome = record.outcome;
        steps.push(record);
        if outcome == Outcome::LoggedOut && journey.retry_after_relogin && !retried {
            retried = true;
            sessions.extend(journey_log_out(ctx, journey, &mut session, &mut steps).await);
            // The fresh session keeps what earlier steps extracted, as a user
            // who logs back in still knows which case they were on.
            let mut carried = session.vars.clone();
            carried.extend(vars.clone());
            session = Session::new(carried);
            ok = log_in(ctx, target, &journey.name, &mut session, &mut steps).await;
            continue;
        }
        if !outcome.is_success() {
            break;
        }
        if !step.think_time.is_zero() {
            tokio::time::sleep(step.think_time).await;
        }
        index += 1;
    }
    if journey.login {
        sessions.extend(journey_log_out(ctx, journey, &mut session, &mut steps).await);
    }
    run_record(journey, planned, actual_start, steps, sessions)
}

/// Ends a journey's session: logs it out unless the server already did.
async fn journey_log_out(
    ctx: &RunContext<'_>,
    journey: &Journey,
    session: &mut Session,
    steps: &mut Vec<StepRecord>,
) -> Option<SessionSpan> {
    let origin = SessionOrigin::journey(&journey.name);
    let end = SessionEnd::LoggedOut;
    log_out(
        ctx,
        &journey.target,
        &journey.name,
        origin,
        session,
        steps,
        end,
    )
    .await
}

/// Shared per-target clients, built once at start.
pub fn clients(targets: &[Arc<Target>]) -> Result<HashMap<String, reqwest::Client>, RunnerError> {
    targets
        .iter()
        .map(|t| Ok((t.name.clone(), client_for(t)?)))
        .collect()
}
