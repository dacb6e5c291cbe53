//! The demo's seeded history: six weeks of one office at production rates,
//! written as the agent would have journaled them, from a process whose
//! truth is known. It answers the board's three questions, and the answers
//! can be checked against the truth the journal carries:
//!
//! - **Did the extra capacity help?** Two weeks in, the ICS gains capacity:
//!   from then on its freezes come a quarter as often and its steps take
//!   0.8 times as long.
//! - **Did moving reports lighten the ICS?** Four weeks in, the caseload
//!   report (a heavy one, every 15 minutes) moves from the ICS to the CSS:
//!   the ICS's steps took 1.2 times as long while it carried the reports,
//!   and 1.5 times as long while one was running.
//! - **Do sessions older than two hours drop more often?** Kept sessions
//!   are forced out at 0.02 an hour until two hours of age and 0.12 an hour
//!   after (six times as often), besides restarts that drop every session.
//!
//! The truth is written into the journal: each change's description and the
//! meta key `seeded_truth`, which the report prints beside its answers.

use std::path::Path;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::Rng;
use rusqlite::{params, Transaction};

use super::journals::{FleetSpec, EVERY};

/// The history's site.
pub const SITE: &str = "demo-history";
/// Days of history.
pub const DAYS: f64 = 42.0;
/// The seed of the demo's history: the same process every time.
pub const SEED: u64 = 20_261_206;

/// Freezes a day before the capacity change, and the share kept after it.
const FREEZES_PER_DAY: f64 = 2.0;
const FREEZES_KEPT_AFTER_CAPACITY: f64 = 0.25;
/// The ICS's latency factors: short of capacity, carrying the reports, and
/// while a report runs on it.
const SHORT_OF_CAPACITY: f64 = 1.0 / 0.8;
const CARRYING_REPORTS: f64 = 1.2;
const WHILE_A_REPORT_RUNS: f64 = 1.5;
/// A heavy report's median time (seconds), every third slot.
const REPORT_SECONDS: f64 = 20.0;
const REPORT_EVERY_SLOTS: i64 = 3;
/// Kept sessions' forced-logout hazard (per hour) before and after
/// [`RULE_AGE`].
const YOUNGER_HAZARD: f64 = 0.02;
const OLDER_HAZARD: f64 = 0.12;
const RULE_AGE: f64 = 7200.0;

/// When the history's two changes happen, and its rates.
#[derive(Clone, Debug)]
pub struct History {
    pub capacity_at: f64,
    pub reports_moved_at: f64,
    pub freezes_per_day: f64,
    pub report_seconds: f64,
}

impl History {
    /// A history ending at `end`: the changes at noon UTC, two and four
    /// weeks in.
    pub fn new(end: f64) -> History {
        let first_day = ((end - DAYS * 86_400.0) / 86_400.0).floor() * 86_400.0;
        History {
            capacity_at: first_day + 14.0 * 86_400.0 + 43_200.0,
            reports_moved_at: first_day + 28.0 * 86_400.0 + 43_200.0,
            freezes_per_day: FREEZES_PER_DAY,
            report_seconds: REPORT_SECONDS,
        }
    }

    /// The ICS's latency factor at `t`, a report running on it or not.
    pub(super) fn ics_load(&self, t: f64, report_running: bool) -> f64 {
        let mut load = 1.0;
        if t < self.capacity_at {
            load *= SHORT_OF_CAPACITY;
        }
        if t < self.reports_moved_at {
            load *= CARRYING_REPORTS;
        }
        if report_running {
            load *= WHILE_A_REPORT_RUNS;
        }
        load
    }

    /// The share of freezes that happen at `t`.
    pub(super) fn freezes_kept(&self, t: f64) -> f64 {
        if t < self.capacity_at {
            1.0
        } else {
            FREEZES_KEPT_AFTER_CAPACITY
        }
    }

    /// Whether the report runs in the slot starting at `t`.
    pub(super) fn report_due(&self, t: f64) -> bool {
        ((t / EVERY).round() as i64).rem_euclid(REPORT_EVERY_SLOTS) == 0
    }

    pub(super) fn reports_on_ics(&self, t: f64) -> bool {
        t < self.reports_moved_at
    }

    /// Each journey's offset in its slot: the report first, so that the
    /// interactive journeys run while it does.
    pub(super) fn offset(&self, journey: usize) -> f64 {
        [5.0, 20.0, 0.0].get(journey).copied().unwrap_or(0.0)
    }

    /// Whether a kept session of age `age` is forced out by the next check.
    pub(super) fn drops(&self, rng: &mut StdRng, age: f64) -> bool {
        let hazard = if age < RULE_AGE {
            YOUNGER_HAZARD
        } else {
            OLDER_HAZARD
        };
        rng.random_bool((hazard * EVERY / 3600.0).min(1.0))
    }

    /// How many times as often sessions older than two hours are forced
    /// out as younger ones, restarts (which drop every session, whatever
    /// its age) included.
    pub fn older_hazard_ratio() -> f64 {
        let restarts = super::journals::RESTARTS_PER_DAY / 24.0;
        (OLDER_HAZARD + restarts) / (YOUNGER_HAZARD + restarts)
    }

    /// The truth in words, for the report to print beside its answers.
    pub fn truth() -> String {
        format!(
            "this journal is the demo's seeded history of {} days, whose truth is known: the extra ICS capacity cut freezes to a quarter and made the ICS's steps take 0.8 times as long; moving the caseload report to the CSS made the ICS's steps take {:.2} times as long, and they no longer took {} times as long while a report ran; sessions older than two hours were forced out {:.1} times as often as younger ones ({} against {} an hour, plus restarts that drop every session)",
            DAYS,
            1.0 / CARRYING_REPORTS,
            WHILE_A_REPORT_RUNS,
            History::older_hazard_ratio(),
            OLDER_HAZARD,
            YOUNGER_HAZARD
        )
    }

    pub(super) fn write_meta(&self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('seeded_truth', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![History::truth()],
        )?;
        for (name, at, description) in [
            (
                "extra_server_capacity",
                self.capacity_at,
                "ICS capacity raised. Seeded truth: from here the ICS freezes a quarter as often and its steps take 0.8 times as long.".to_string(),
            ),
            (
                "reporting_moved_to_css",
                self.reports_moved_at,
                format!(
                    "The caseload report moved from the ICS to the CSS. Seeded truth: from here the ICS's steps take {:.2} times as long, and no longer {} times as long while a report runs.",
                    1.0 / CARRYING_REPORTS,
                    WHILE_A_REPORT_RUNS
                ),
            ),
        ] {
            tx.execute(
                "INSERT INTO changes (name, at, description) VALUES (?1, ?2, ?3)",
                params![name, at, description],
            )?;
        }
        Ok(())
    }
}

/// Writes the seeded history ending at `end` (unix seconds) to `path`,
/// replacing any file there: it is generated, never measured.
pub fn write(path: &Path, end: f64) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot replace {}", path.display()));
            }
            _ => {}
        }
    }
    let spec = FleetSpec {
        sites: 1,
        days: DAYS,
        out: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        seed: SEED,
        end,
        worse: Vec::new(),
        // The report reads steps, never the per-minute histograms.
        histograms: false,
        day_sigma: 0.05,
        change: false,
        latency_after: 1.0,
        history: Some(History::new(end)),
    };
    super::journals::write_site(path, 0, &spec)
        .with_context(|| format!("cannot write the seeded history {}", path.display()))
}
