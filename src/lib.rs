//! casewatch: a synthetic social worker that measures a case-recording system.
//!
//! # Layout
//!
//! Data flows one way: the config drives the schedule and the runners, whose
//! records go through detection to the metrics, the status page and the
//! journal; the report reads journals afterwards.
//!
//! ```text
//! config ─▶ schedule ─▶ runner / browser ─▶ records ─▶ observe (detect)
//!                                                         ├─▶ metrics ─▶ /metrics, remote_write
//!                                                         ├─▶ status ─▶ the page at /
//!                                                         └─▶ journal ─▶ report
//! ```
//!
//! Each module below says what it owns and what it may import. A module
//! imports only from the lines above its own group, or from its own group;
//! `tests/integration/layers.rs` fails if `config`, `journal`, `status`,
//! `browser`, `web` or `sim` imports what it must not.
//!
//! The shared vocabulary, which imports nothing of the agent's but itself:
//!
//! - [`outcome`]: the outcomes a step ends in (`ok`, `slow`, `frozen`,
//!   `logged_out`, …; a journey takes its first failing step's), and the
//!   records everything downstream consumes: steps, runs, session spans,
//!   kept-session records, freeze episodes. Imports nothing.
//! - [`timefmt`]: times and durations as people read them. Imports nothing.
//! - [`detect`]: pure verdicts from records and the time: freeze episodes,
//!   which side a browser step froze on, the login page, kept sessions'
//!   state, session-age bands and survival, the agent's own stalls and the
//!   records they spoil. No I/O. Imports `outcome`.
//! - [`config`]: YAML in, a validated [`config::Config`] out, every problem
//!   at once with its line; the journal's options; secrets read from the
//!   environment or a file ([`config::secret`]); every file the agent reads,
//!   capped and without blocking ([`config::file`]). Imports `outcome` and
//!   `detect`, never the journal or the runner.
//! - [`loss`]: the time-lost model the status page and the report share.
//!   Imports `config` and `timefmt`.
//! - [`schedule`]: the timetable of a journey, intended versus actual start,
//!   missed slots. Imports `config`.
//!
//! Probing:
//!
//! - [`runner`]: HTTP journeys: sessions (cookie jar, login, relogin,
//!   logout), steps judged into one outcome each, kept sessions. Imports
//!   the vocabulary.
//! - [`browser`]: browser journeys in the agent's one headless Chromium,
//!   producing the same records, and the captures (screenshots, console
//!   errors) of failed steps, which users meet as "evidence".
//!   Imports the vocabulary and `runner` (sessions, probes), never `report`.
//! - [`supervisor`]: the agent's journey, kept-session and heartbeat tasks
//!   per target, and how a new config is applied to them. Imports the above.
//!
//! Recording, as it happens:
//!
//! - [`stall`]: the agent's stall monitor, a plain thread outside the async
//!   runtime that measures how late it wakes: the agent's own scheduling
//!   delay, and its stalls (paused, swapping, starved of CPU), with their
//!   metrics. Imports `detect`.
//! - [`metrics`]: one Prometheus registry with typed helpers. Imports the
//!   vocabulary and `browser` (its metric families).
//! - [`config_gauges`]: what the config says, as gauges: each journey's
//!   interval and since when it is due (for the alerts), and the
//!   practitioners' assumptions (for the time-lost rules). Imports `config`
//!   and `central_info`, whose series it registers beside its own.
//! - [`central_info`]: what the central report needs of the config, as
//!   info series (journey and step kinds, the journal's meta, the changes)
//!   that reach the central store. Imports `config`.
//! - [`recorder`]: HdrHistograms per step per interval, on the journal's
//!   writer thread. Imports nothing.
//! - [`journal`]: the durable SQLite file, written on its own thread, its
//!   schema, its read side, and the evidence folder beside it. Imports the
//!   vocabulary and `recorder`, never `status` or `report`.
//! - [`status`]: the status board behind the page at `/`, with its
//!   history bars read from the journal. Imports the vocabulary, `loss`,
//!   `recorder` (age classes) and `journal` (its read side and health),
//!   never `report`.
//! - [`observe`]: the one consumer of records: detection (the agent's
//!   stalls included), then metrics, status board and journal together.
//!   Imports the above.
//! - [`remote_write`]: pushes the metrics to central stores through an
//!   on-disk queue. Imports `config`.
//!
//! The agent, at the edge:
//!
//! - [`web`]: `/metrics`, health endpoints, `/-/reload` (its request and
//!   error types), the status page and browser evidence, and the limits on
//!   connections to them ([`web::limits`]). Imports the layers above and
//!   `webconfig`, never `agent`.
//! - [`webconfig`]: TLS and basic auth for the web endpoints. Imports
//!   `config`.
//! - [`logging`]: the log filter, and the crates that are never logged.
//!   Imports nothing.
//! - [`agent`]: wires the above together and owns reload and shutdown.
//!   Imports anything above.
//!
//! Reading afterwards, and the commands:
//!
//! - [`ledger`]: what a journal measured, tallied per calendar hour (or
//!   less, for short windows), with the few events listed one by one; the
//!   journal's hourly rollups (`casewatch journal compact`). Memory bounded
//!   by hours × steps. Imports the vocabulary, `journal` and `recorder`.
//! - [`report`]: the board's evidence report, for one site's journal or a
//!   fleet's, and the exports. Reads ledgers built from journals, never a
//!   target or the agent. Imports the vocabulary, `loss`, `journal`,
//!   `ledger` and `recorder`; `central_info` (the series a central report
//!   reads back), `browser` (the Chromium that prints the PDF) and `cli`
//!   (the `journal` and `central` commands' flags, which
//!   `report::command` carries out).
//! - [`bench`](mod@bench): whole-process measurements, run by the second
//!   binary `casewatch-bench` (`src/bin/casewatch-bench.rs`), never by
//!   `casewatch`. Imports what it measures.
//! - [`cli`]: the subcommands and their flags (clap). Imports `report` and
//!   `logging` for their option types (so `cli` and `report` import each
//!   other: the one circle left, between two readers of flags).
//! - [`readiness`]: whether this machine can run a config: its secrets,
//!   files, folders and Chromium, for `check-config`. Imports `config` and
//!   `browser` (where Chromium is looked for).
//! - [`commands`]: what each subcommand does, so tests can call it.
//!   Imports anything.
//! - [`sim`]: the simulated case system (ICS and CSS) with its fault model
//!   and truth log. Imports nothing from the agent: tests and the demo reach
//!   it over HTTP only, as the agent reaches a real system.

pub mod agent;
pub mod bench;
pub mod browser;
pub mod central_info;
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
pub mod readiness;
pub mod recorder;
pub mod remote_write;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod sim;
pub mod stall;
pub mod status;
pub mod supervisor;
pub mod timefmt;
pub mod web;
pub mod webconfig;

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
