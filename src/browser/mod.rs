//! Browser journeys: what a social worker's browser sees, in real headless
//! Chromium driven over the DevTools protocol (chromiumoxide).
//!
//! A browser journey's steps (`goto`, `fill`, `click`, `wait_for`,
//! `assert`, `extract`) end in the same outcomes as HTTP steps, in the same
//! records, metrics and journal, so freezes and forced logouts seen in the
//! browser and over HTTP are one story. What a browser adds is where the
//! time went: page timings, and whether a frozen step waited on the server
//! or on the page's own main thread (a client-side freeze), decided by
//! [`crate::detect::page`].
//!
//! # Layout
//!
//! - [`pool`]: the agent's one Chromium (started on first use, restarted
//!   when it dies) and a fresh browser context per run, under a cap.
//! - `page`: a tab and what the agent sees of it: network waits, page
//!   loads, long tasks, probes of the main thread, console errors, dialogs,
//!   crashes.
//! - `step`: one browser step, judged into one outcome.
//! - `run`: a browser journey: login, steps, logout, sessions.
//! - [`captures`]: screenshots (password fields cleared first) and console
//!   errors of failed steps, beside the journal, with retention (the
//!   user-facing "evidence").
//! - [`metrics`]: the browser's own metric families.
//! - `script`: what the agent installs and evaluates in pages.

pub mod captures;
pub mod metrics;
mod page;
pub mod pool;
mod run;
mod script;
mod step;

/// The name callers outside the crate know the capture store by.
pub use captures::CaptureStore as EvidenceStore;
pub use captures::CaptureStore;
pub use metrics::BrowserMetrics;
pub use pool::{BrowserError, BrowserPool, Lease};
pub use run::{run_budget, run_journey, without_browser, Browsing, DEADLINE_GRACE};
