//! casewatch: a synthetic social worker that measures a case-recording system.
//!
//! # Layout
//!
//! Data flows one way (see `DESIGN.md` §3 in the shared notes):
//!
//! ```text
//! config ─▶ schedule ─▶ runner ─▶ records ─▶ detect ─▶ metrics / status
//! ```
//!
//! - [`config`]: raw serde structs, validated into a typed [`config::Config`].
//! - [`schedule`]: the timetable of each journey; intended versus actual start.
//! - [`config_gauges`]: what the config says, as gauges: each journey's
//!   interval and since when it is due (for the alerts), and the
//!   practitioners' assumptions (for the time-lost rules).
//! - [`runner`]: sessions (cookie jar, login, logout) and steps, producing records.
//! - [`browser`]: browser journeys in headless Chromium, producing the same records.
//! - [`outcome`]: the outcome vocabulary and the records the runner emits.
//! - [`metrics`]: one Prometheus registry with typed helpers.
//! - [`web`]: `/metrics`, health endpoints and the status page.
//! - [`agent`]: wires the above together and owns reload and shutdown.
//! - [`supervisor`]: the agent's journey, kept-session and heartbeat tasks per target.
//! - [`webconfig`]: TLS and basic auth for the web endpoints.
//! - [`logging`]: the log filter, and the crates that are never logged.
//! - [`recorder`]: HdrHistograms per step per interval, fed by the journal.
//! - [`journal`]: the durable SQLite evidence file, written on its own thread.
//! - [`ledger`]: what a journal measured, tallied per hour; what the report reads.
//! - [`remote_write`]: pushes the metrics to central stores through an on-disk queue.
//! - [`report`]: the board's evidence report and the exports; reads the journal only.
//! - [`sim`]: the simulated case system; it imports nothing from the agent.

pub mod agent;
pub mod bench;
pub mod browser;
pub mod cli;
pub mod commands;
pub mod config;
pub mod config_gauges;
pub mod detect;
pub mod journal;
pub mod ledger;
pub mod logging;
pub mod loss;
pub mod metrics;
pub mod observe;
pub mod outcome;
pub mod recorder;
pub mod remote_write;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod sim;
pub mod status;
pub mod supervisor;
pub mod timefmt;
pub mod web;

/// An error and its causes on one line, `a: b: c`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}
pub mod webconfig;
