//! The simulated ICS (case recording) and CSS (reporting): two HTTP servers
//! with a login form, sessions, case search and records, note saving, slow
//! reports, and a fault model (freezes, forced logouts by session age, idle
//! timeouts, restarts, limited capacity) driven by a [`SimProfile`]. An
//! optional control API on the ICS listener injects faults and serves the
//! truth log. The sim imports nothing from the agent: it is reached over HTTP
//! only, exactly as the agent reaches a real system.
//!
//! # Layout
//!
//! - `profile`: the YAML fault model, its validation and samplers.
//! - `state`: clocks, sessions, tokens, notes and fault switches.
//! - `app` / `pages`: the routes and the HTML contract the journeys read.
//! - `faults`: freezes, restarts, forced logouts and the background tasks.
//! - `control`: `/_control/...`.
//! - `truth`: the bounded log of every injected and random fault.
//!
//! # Two clocks
//!
//! Session ages, the logout hazard, idle timeouts and random fault arrivals
//! run on sim time (`time_scale` sim seconds per real second). Latencies,
//! freeze durations, restart downtime and every fault injected through the
//! control API are real time.

mod app;
mod control;
mod faults;
mod pages;
mod profile;
mod state;
mod truth;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use profile::{
    CapacitySpec, ForcedLogoutSpec, FreezeSpec, HazardStep, LatencyProfile, LatencySpec, LoadCycle,
    LogoutStyle, PerSystem, PerSystemOpt, RestartSpec, SimProfile, SystemId,
};

/// How long shutdown waits for in-flight responses before dropping them.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Everything `start` needs.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub ics_listen: SocketAddr,
    pub css_listen: SocketAddr,
    /// Serve `/_control/...` on the ICS listener; off by default in the CLI
    /// because it lets anyone inject faults.
    pub control: bool,
    /// The one password the sim accepts, for any user in `profile.users`.
    pub password: String,
    pub profile: SimProfile,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot bind {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The message names the file (and line, where known).
    #[error("invalid sim profile: {0}")]
    Profile(String),
}

/// A running sim; the addresses are the bound ones (useful with port 0).
#[derive(Debug)]
pub struct SimHandle {
    pub ics_addr: SocketAddr,
    pub css_addr: SocketAddr,
    tasks: JoinSet<()>,
}

impl SimHandle {
    /// Resolves once both servers and all fault tasks have stopped (after the
    /// shutdown token is cancelled).
    pub async fn wait(mut self) {
        while let Some(res) = self.tasks.join_next().await {
            if let Err(e) = res {
                if e.is_panic() {
                    tracing::error!("sim task panicked: {e}");
                }
            }
        }
    }
}

/// Binds both listeners, then serves until `shutdown` is cancelled.
pub async fn start(opts: SimOptions, shutdown: CancellationToken) -> Result<SimHandle, SimError> {
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr, source })
    };
    let ics = bind(opts.ics_listen).await?;
    let css = bind(opts.css_listen).await?;
    let local = |l: &TcpListener, addr: SocketAddr| {
        l.local_addr()
            .map_err(|source| SimError::Bind { addr, source })
    };
    let ics_addr = local(&ics, opts.ics_listen)?;
    let css_addr = local(&css, opts.css_listen)?;

    let sim = state::Sim::new(opts.profile, opts.password, opts.control, shutdown.clone());
    let mut tasks = JoinSet::new();
    faults::spawn_tasks(&sim, &mut tasks);

    let mut ics_router = app::router(app::App {
        sim: sim.clone(),
        id: SystemId::Ics,
    });
    if sim.control {
        ics_router = ics_router.merge(control::router(sim.clone()));
    }
    let css_router = app::router(app::App {
        sim: sim.clone(),
        id: SystemId::Css,
    });
    for (listener, router, name) in [(ics, ics_router, "ics"), (css, css_router, "css")] {
        let token = shutdown.clone();
        tasks.spawn(async move {
            let serve = axum::serve(listener, router)
                .with_graceful_shutdown(token.clone().cancelled_owned());
            // Handlers give up their waits on shutdown, so this grace period is
            // a backstop for slow clients, not the normal path.
            tokio::select! {
                res = serve => {
                    if let Err(e) = res {
                        tracing::error!(system = name, "sim server failed: {e}");
                    }
                }
                _ = async { token.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
                    tracing::warn!(system = name, "sim server did not drain in time; dropping connections");
                }
            }
        });
    }
    tracing::info!(%ics_addr, %css_addr, control = sim.control, "sim listening");
    Ok(SimHandle {
        ics_addr,
        css_addr,
        tasks,
    })
}
