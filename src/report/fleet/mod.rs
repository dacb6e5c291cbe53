//! The fleet report: one report over several sites' journals, for a board
//! that runs one agent per office.
//!
//! - **Sites.** Each journal names its site in its meta. Journals of the
//!   same site are merged when the times they measured do not overlap (an
//!   agent moved to a new file); overlapping ones are refused, since the
//!   same runs would count twice ([`group`]).
//! - **Per-site table.** Runs, availability, interactive p95, freeze
//!   episodes per day and forced logouts per session-hour, each with the
//!   intervals of [`super::evidence`], on units of calendar days shared by
//!   every site.
//! - **Pooled figures.** The same measures over the whole fleet. A day is
//!   one unit across all sites: a freeze of the central system stalls
//!   every office at once, so offices on the same day are not independent.
//! - **Is one office worse?** Each site against the rest of the fleet
//!   pooled: availability difference, p95 difference, freeze and logout
//!   rate ratios. The rest leaves out the site itself and every site a
//!   first pass showed worse, so a healthy site is never "better" only
//!   because another site is worse. A site is called worse only under the
//!   minimum-evidence rule ([`evidence::judge`]), with intervals widened for
//!   the number of comparisons made at once (Bonferroni over sites ×
//!   measures), so a fleet of healthy offices does not throw up a "worse"
//!   one by chance.
//!
//! - [`read`]: journals found, grouped by site, read into one ledger per
//!   site (interactive latency only), on as many threads as there are cores;
//! - [`stats`]: the rows, the pool and the comparisons;
//! - [`render`]: summary, Markdown and HTML.

pub mod read;
pub mod render;
pub mod stats;

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use super::compare::Measure;
use super::model::TimeWindow;
use super::stats::Estimate;
use crate::journal::read::ReadError;
use crate::ledger::build::BuildError;

pub use read::{build, expand, group, JournalEntry};
pub use render::render;

pub const SCHEMA_VERSION: u32 = 2;
/// Measures compared per site (availability, p95, freezes, forced logouts).
pub const MEASURES: usize = 4;

pub const ADJUSTED: &str =
    "as in the per-site table, at the level adjusted for the comparisons made at once (Bonferroni over sites x measures); the rest of the fleet shares the site's days, so the difference's interval is conservative";

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("journal {path} names no site (no `site` in its meta and no runs)")]
    NoSite { path: String },
    #[error("journals {first} and {second} both hold site {site} over overlapping times ({from} to {to}); give one of them, or merge them first")]
    Overlap {
        site: String,
        first: String,
        second: String,
        from: String,
        to: String,
    },
    #[error("folder {path} holds no journal (*.db)")]
    EmptyFolder { path: String },
    #[error("cannot list folder {path}")]
    Folder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("journals {first} and {second} keep different calendars ({first_scale} and {second_scale} times the wall clock): they cannot share one report")]
    Calendars {
        first: String,
        second: String,
        first_scale: f64,
        second_scale: f64,
    },
    #[error("cannot read journal {path}")]
    Build {
        path: String,
        #[source]
        source: BuildError,
    },
    #[error("cannot read journal {path}")]
    Journal {
        path: String,
        #[source]
        source: ReadError,
    },
}

#[derive(Clone, Debug)]
pub struct FleetOptions {
    pub from: Option<SystemTime>,
    pub to: Option<SystemTime>,
    pub now: SystemTime,
}

#[derive(Clone, Debug, Serialize)]
pub struct FleetReport {
    pub schema_version: u32,
    pub generated_at: String,
    pub journals: Vec<FleetJournal>,
    pub window: TimeWindow,
    /// The independent units: calendar days per unit, real seconds.
    pub unit_days: u32,
    pub unit_seconds: f64,
    pub min_units: usize,
    /// The two-sided level of the per-site comparisons' intervals.
    pub comparison_level: f64,
    pub summary: Vec<String>,
    pub sites: Vec<SiteRow>,
    pub journeys: Vec<JourneyRow>,
    pub pooled: SiteRow,
    pub comparisons: Vec<SiteComparison>,
    /// Sites shown worse than the rest of the fleet on some measure.
    pub worse: Vec<String>,
    pub methods: BTreeMap<&'static str, String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FleetJournal {
    pub path: String,
    pub site: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SiteRow {
    /// `fleet` for the pooled row.
    pub site: String,
    pub journals: usize,
    pub runs: u64,
    pub successes: u64,
    /// Units of days in which a journey ran.
    pub units: usize,
    pub availability: Estimate,
    /// Interactive journeys' steps, completed, and given up on.
    pub steps: u64,
    pub given_up: u64,
    pub p95_ms: Estimate,
    pub freezes: u64,
    /// Freeze episodes (any system) per day of monitoring.
    pub freezes_per_day: Estimate,
    pub forced_logouts: u64,
    pub session_hours: f64,
    pub logouts_per_session_hour: Estimate,
}

#[derive(Clone, Debug, Serialize)]
pub struct JourneyRow {
    pub site: String,
    pub target: String,
    pub journey: String,
    pub kind: String,
    pub runs: u64,
    pub successes: u64,
    pub availability: Estimate,
}

#[derive(Clone, Debug, Serialize)]
pub struct SiteComparison {
    pub site: String,
    /// In each measure "before" is the rest of the fleet, "after" the site:
    /// availability site − rest (points), p95 site − rest (ms), rates site / rest.
    pub availability: Measure,
    pub p95_ms: Measure,
    pub freeze_rate: Measure,
    pub logout_rate: Measure,
    /// Measures on which the site is shown worse.
    pub worse_on: Vec<&'static str>,
    /// Measures on which the site is shown better.
    pub better_on: Vec<&'static str>,
    /// A sentence for people.
    pub verdict: String,
}
