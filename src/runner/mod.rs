//! The runner: executes journeys (login, steps, logout) and emits records.
//!
//! A run never panics on what the network sends: every failure becomes a step
//! outcome. Secrets enter only the session's variables and never a record.

mod extract;
mod session;
mod step;

pub use extract::{check_assertions, extract};
pub use session::Session;
pub use step::{run_step, StepContext};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use crate::config::{Journey, SecretSource, Target};
use crate::outcome::{journey_outcome, RunRecord, StepPhase, StepRecord};

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("target {target}: cannot read CA file {path}")]
    CaFile {
        target: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("target {target}: bad TLS or proxy setting")]
    Client {
        target: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("target {target}: credential {what} is not available: {why}")]
    Secret {
        target: String,
        what: &'static str,
        why: String,
    },
}

/// Builds the shared HTTP client of a target: its own connection pool, no
/// automatic redirects, no cookie store (sessions hold their own jars).
pub fn client_for(target: &Target) -> Result<reqwest::Client, RunnerError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(target.connect_timeout)
        .user_agent(target.user_agent.clone())
        .danger_accept_invalid_certs(target.insecure_skip_verify)
        .pool_idle_timeout(std::time::Duration::from_secs(30));
    if let Some(path) = &target.ca_file {
        let pem = std::fs::read(path).map_err(|source| RunnerError::CaFile {
            target: target.name.clone(),
            path: path.display().to_string(),
            source,
        })?;
        let certificate =
            reqwest::Certificate::from_pem(&pem).map_err(|source| RunnerError::Client {
                target: target.name.clone(),
                source,
            })?;
        builder = builder.add_root_certificate(certificate);
    }
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

/// Reads environment variables; replaceable so the demo can hand the agent a
/// generated password without touching the process environment.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub fn process_env() -> EnvLookup {
    Arc::new(|name| std::env::var(name).ok())
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
        let value = match source {
            SecretSource::Value(v) => v.clone(),
            SecretSource::Env(name) => env(name).ok_or_else(|| RunnerError::Secret {
                target: target.name.clone(),
                what,
                why: format!("environment variable {name} is not set"),
            })?,
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| RunnerError::Secret {
                    target: target.name.clone(),
                    what,
                    why: format!("cannot read {}: {e}", path.display()),
                })?,
        };
        vars.insert(what.to_string(), value);
    }
    Ok(vars)
}

/// Runs one journey once: log in (if it does), its steps until the first
/// failure, then log out whenever a session is still open.
pub async fn run_journey(
    client: &reqwest::Client,
    journey: &Journey,
    mut vars: HashMap<String, String>,
    intended_start: SystemTime,
    intended_instant: Instant,
    run_id: u64,
) -> RunRecord {
    let actual_start = SystemTime::now();
    vars.insert("run_id".into(), run_id.to_string());
    let mut session = Session::new(vars);
    let target = &journey.target;
    let mut steps: Vec<StepRecord> = Vec::new();
    let mut failed = false;

    if journey.login {
        let ctx = StepContext {
            client,
            target,
            journey: &journey.name,
            phase: StepPhase::Login,
        };
        failed = run_phase(&ctx, &target.login, &mut session, &mut steps).await;
        if !failed {
            session.mark_logged_in();
        }
    }
    if !failed {
        let ctx = StepContext {
            client,
            target,
            journey: &journey.name,
            phase: StepPhase::Journey,
        };
        run_phase(&ctx, &journey.steps, &mut session, &mut steps).await;
    }
    if let Some(logout) = &target.logout {
        if session.is_logged_in() {
            let ctx = StepContext {
                client,
                target,
                journey: &journey.name,
                phase: StepPhase::Logout,
            };
            steps.push(run_step(&ctx, logout, &mut session).await);
        }
    }
    let (outcome, failed_step) = journey_outcome(&steps);
    RunRecord {
        target: target.name.clone(),
        journey: journey.name.clone(),
        intended_start,
        actual_start,
        duration: intended_instant.elapsed(),
        outcome,
        failed_step,
        steps,
    }
}

/// Runs steps in order; returns true if one failed (and the rest were skipped).
async fn run_phase(
    ctx: &StepContext<'_>,
    list: &[crate::config::Step],
    session: &mut Session,
    records: &mut Vec<StepRecord>,
) -> bool {
    for step in list {
        let record = run_step(ctx, step, session).await;
        let ok = record.outcome.is_success();
        records.push(record);
        if !ok {
            return true;
        }
        if !step.think_time.is_zero() {
            tokio::time::sleep(step.think_time).await;
        }
    }
    false
}

/// Shared per-target clients, built once at start.
pub fn clients(targets: &[Arc<Target>]) -> Result<HashMap<String, reqwest::Client>, RunnerError> {
    targets
        .iter()
        .map(|t| Ok((t.name.clone(), client_for(t)?)))
        .collect()
}
