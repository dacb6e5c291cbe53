//! `casewatch-bench journals`: writes a fleet of journals at production
//! rates, for the fleet report's scale figure and its tests.
//!
//! Each site's journal is a real journal file: the real schema (opened and
//! migrated by [`crate::journal::schema`]), its meta (site, age bands), and
//! rows as the agent writes them, in bulk SQL. Per site, every 5 minutes:
//! the demo's three journeys (`case_note` and `case_lookup` on the ICS,
//! `caseload_report` on the CSS), each logging in and out; three kept
//! sessions checked every 5 minutes, living 8 hours unless a restart drops
//! them; one HdrHistogram row per step per minute that had data.
//!
//! The truth is known and seeded: occasional errors, log-normal latencies
//! (`slow` past `slow_after`), freeze episodes (Poisson, exponential
//! lengths, `frozen` past `freeze_after`, given up on past
//! `give_up_after`) and restarts that force every kept session out. A site
//! named in `--worse` has [`WORSE`] times the errors, freezes and restarts
//! and 1.5 times the latency.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal};
use rusqlite::{params, Connection, Transaction};

use crate::journal::schema;
use crate::recorder;
use rows::{flush_histograms, insert_run, insert_session, insert_steps, Encoded, Pending};

mod rows;

/// Journey interval and kept-session check interval (seconds).
pub const EVERY: f64 = 300.0;
/// Kept sessions per site.
pub const KEPT: usize = 3;
/// A kept session's life unless forced out (seconds).
pub const MAX_AGE: f64 = 8.0 * 3600.0;
/// How much worse a `--worse` site is (errors, freezes, restarts).
pub const WORSE: f64 = 6.0;
/// A healthy site's truth.
pub const ERROR_SHARE: f64 = 0.004;
pub const FREEZES_PER_DAY: f64 = 0.3;
pub const RESTARTS_PER_DAY: f64 = 0.15;
pub const MEAN_FREEZE_SECONDS: f64 = 90.0;

pub struct FleetSpec {
    pub sites: usize,
    pub days: f64,
    pub out: PathBuf,
    pub seed: u64,
    /// The last moment generated (unix seconds); the journals cover
    /// `[end - days, end)`.
    pub end: f64,
    /// Sites made worse, by name (`site-02`).
    pub worse: Vec<String>,
    /// Whether to write the per-minute HdrHistogram rows (the agent does).
    pub histograms: bool,
    /// Log-normal spread of each day's latency factor (0 for none).
    pub day_sigma: f64,
    /// Whether to declare a change at noon in the middle of the period.
    pub change: bool,
    /// Latency factor from that change on (1 for no effect).
    pub latency_after: f64,
    /// The demo's seeded history instead of a plain fleet
    /// ([`super::history`]): its changes, report load and session hazard.
    pub history: Option<super::history::History>,
}

impl FleetSpec {
    /// When the declared change happens: noon UTC of the middle day.
    pub fn change_at(&self) -> f64 {
        let middle = self.end - self.days * 86_400.0 / 2.0;
        (middle / 86_400.0).floor() * 86_400.0 + 43_200.0
    }
}

/// The name of site `i` (0-based): `site-01`.
pub fn site_name(i: usize) -> String {
    format!("site-{:02}", i + 1)
}

/// A target's name and thresholds, as the generated journals use them.
pub(super) struct JournalTarget {
    name: &'static str,
    slow_after: f64,
    freeze_after: f64,
    give_up_after: f64,
}

const ICS: JournalTarget = JournalTarget {
    name: "ics",
    slow_after: 1.0,
    freeze_after: 2.0,
    give_up_after: 30.0,
};
const CSS: JournalTarget = JournalTarget {
    name: "css",
    slow_after: 5.0,
    freeze_after: 8.0,
    give_up_after: 40.0,
};
/// A heavy report, as the history's are, is judged by a report's own
/// thresholds, not an interactive page's.
const HEAVY_REPORT: JournalTarget = JournalTarget {
    name: "",
    slow_after: 60.0,
    freeze_after: 90.0,
    give_up_after: 180.0,
};

struct JourneySpec {
    name: &'static str,
    target: &'static JournalTarget,
    kind: &'static str,
    /// (step, phase, median seconds).
    steps: &'static [(&'static str, &'static str, f64)],
    offset: f64,
}

const JOURNEYS: [JourneySpec; 3] = [
    JourneySpec {
        name: "case_note",
        target: &ICS,
        kind: "interactive",
        steps: &[
            ("login_page", "login", 0.05),
            ("login_submit", "login", 0.12),
            ("search", "journey", 0.15),
            ("open_record", "journey", 0.12),
            ("save_note", "journey", 0.2),
            ("logout", "logout", 0.05),
        ],
        offset: 0.0,
    },
    JourneySpec {
        name: "case_lookup",
        target: &ICS,
        kind: "interactive",
        steps: &[
            ("login_page", "login", 0.05),
            ("login_submit", "login", 0.12),
            ("api_search", "journey", 0.08),
            ("open_record", "journey", 0.12),
            ("logout", "logout", 0.05),
        ],
        offset: 20.0,
    },
    JourneySpec {
        name: "caseload_report",
        target: &CSS,
        kind: "report",
        steps: &[
            ("login_page", "login", 0.05),
            ("login_submit", "login", 0.12),
            ("run_report", "journey", 1.5),
            ("logout", "logout", 0.05),
        ],
        offset: 40.0,
    },
];

/// Writes `spec.sites` journals into `spec.out`, two at a time (or as many
/// as there are cores). Returns their paths.
pub fn write_fleet(spec: &FleetSpec) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(&spec.out)
        .with_context(|| format!("cannot create {}", spec.out.display()))?;
    let paths: Vec<PathBuf> = (0..spec.sites)
        .map(|i| spec.out.join(format!("{}.db", site_name(i))))
        .collect();
    for p in &paths {
        if p.exists() {
            anyhow::bail!("{} exists: generate into an empty folder", p.display());
        }
    }
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, spec.sites.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(path) = paths.get(i) else {
                            return Ok(());
                        };
                        write_site(path, i, spec)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a generator thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(paths)
}

/// The site's truth: rates and multipliers.
struct Truth {
    error_share: f64,
    latency: f64,
    freezes: Vec<(f64, f64)>,
    restarts: Vec<f64>,
    /// Each day's latency factor, from the first day generated.
    day_factors: Vec<f64>,
    first_day: f64,
    /// The change and its latency factor.
    change_at: f64,
    latency_after: f64,
    history: Option<super::history::History>,
}

impl Truth {
    /// The latency factor of a step on `target` at `t`: the site's, the
    /// day's, the change's, and in the history the ICS's load.
    fn step_factor(&self, target: &JournalTarget, t: f64, report_on_same: bool) -> f64 {
        let load = match &self.history {
            Some(h) if target.name == "ics" => h.ics_load(t, report_on_same),
            _ => 1.0,
        };
        self.latency_at(t) * load
    }

    /// The latency factor at `t`: the site's, the day's and the change's.
    fn latency_at(&self, t: f64) -> f64 {
        let day = ((t / 86_400.0).floor() - self.first_day).max(0.0) as usize;
        let after = if t >= self.change_at {
            self.latency_after
        } else {
            1.0
        };
        self.latency * self.day_factors.get(day).copied().unwrap_or(1.0) * after
    }
}

fn events(rng: &mut StdRng, from: f64, to: f64, per_day: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let Ok(gap) = Exp::new(per_day / 86_400.0) else {
        return out;
    };
    let mut t = from + gap.sample(rng);
    while t < to {
        out.push(t);
        t += gap.sample(rng);
    }
    out
}

pub(super) fn write_site(path: &Path, index: usize, spec: &FleetSpec) -> anyhow::Result<()> {
    let site = match &spec.history {
        Some(_) => super::history::SITE.to_string(),
        None => site_name(index),
    };
    let mut rng =
        StdRng::seed_from_u64(spec.seed.wrapping_mul(1_000_003).wrapping_add(index as u64));
    let factor = if spec.worse.contains(&site) {
        WORSE
    } else {
        1.0
    };
    let from = spec.end - spec.days * 86_400.0;
    let from = (from / EVERY).floor() * EVERY;
    let truth = truth(spec, index, &mut rng, from, factor)?;

    let mut conn = Connection::open(path)?;
    schema::configure(&conn)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    schema::migrate(&mut conn)?;
    write_header(&mut conn, &site, spec, &truth)?;
    write_runs(&mut conn, &site, spec, &mut rng, &truth, from)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

/// What the site's journal is made from: its freezes and restarts, drawn
/// from `rng`, and its day effects, drawn from a stream of their own.
fn truth(
    spec: &FleetSpec,
    index: usize,
    rng: &mut StdRng,
    from: f64,
    factor: f64,
) -> anyhow::Result<Truth> {
    let freezes = freezes(spec, rng, from, factor)?;
    let restarts = events(rng, from, spec.end, RESTARTS_PER_DAY * factor);
    let (day_factors, first_day) = day_factors(spec, index, from)?;
    Ok(Truth {
        error_share: ERROR_SHARE * factor,
        latency: if factor > 1.0 { 1.5 } else { 1.0 },
        freezes,
        restarts,
        day_factors,
        first_day,
        change_at: if spec.change {
            spec.change_at()
        } else {
            f64::INFINITY
        },
        latency_after: spec.latency_after,
        history: spec.history.clone(),
    })
}

/// Freeze episodes (start, length), those the history leaves out dropped.
fn freezes(
    spec: &FleetSpec,
    rng: &mut StdRng,
    from: f64,
    factor: f64,
) -> anyhow::Result<Vec<(f64, f64)>> {
    let length = Exp::new(1.0 / MEAN_FREEZE_SECONDS).context("freeze lengths")?;
    let per_day = spec
        .history
        .as_ref()
        .map_or(FREEZES_PER_DAY, |h| h.freezes_per_day);
    let mut freezes: Vec<(f64, f64)> = Vec::new();
    for t in events(rng, from, spec.end, per_day * factor) {
        let episode = (t, 5.0 + length.sample(rng));
        let keep = spec.history.as_ref().map_or(1.0, |h| h.freezes_kept(t));
        if keep >= 1.0 || rng.random_bool(keep) {
            freezes.push(episode);
        }
    }
    Ok(freezes)
}

/// Each day's latency factor, and the first day's number. Day effects come
/// from a stream of their own, so that a journal with them differs from one
/// without only in its latencies.
fn day_factors(spec: &FleetSpec, index: usize, from: f64) -> anyhow::Result<(Vec<f64>, f64)> {
    let mut days_rng =
        StdRng::seed_from_u64(spec.seed.wrapping_mul(7_777_777).wrapping_add(index as u64));
    let day_noise = rand_distr::Normal::new(0.0, spec.day_sigma.max(0.0)).context("day effects")?;
    let first_day = (from / 86_400.0).floor();
    let day_factors: Vec<f64> = (0..=(spec.days.ceil() as usize + 1))
        .map(|_| day_noise.sample(&mut days_rng).exp())
        .collect();
    Ok((day_factors, first_day))
}

/// The journal's meta, its change if any, and the freezes on both systems.
fn write_header(
    conn: &mut Connection,
    site: &str,
    spec: &FleetSpec,
    truth: &Truth,
) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    for (key, value) in [
        ("site", site.to_string()),
        (
            "age_band_edges_seconds",
            "[0.0,1800.0,3600.0,7200.0,14400.0,28800.0]".to_string(),
        ),
        (
            "histogram_interval_seconds",
            crate::journal::HISTOGRAM_INTERVAL.as_secs().to_string(),
        ),
        ("config_origin", "casewatch-bench journals".into()),
        ("calendar_scale", "1".into()),
        ("writer_version", env!("CARGO_PKG_VERSION").to_string()),
    ] {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
    }
    if let Some(h) = &spec.history {
        h.write_meta(&tx)?;
    }
    if spec.change {
        tx.execute(
            "INSERT INTO changes (name, at, description) VALUES (?1, ?2, ?3)",
            params![
                "mid_period",
                spec.change_at(),
                format!(
                    "A change in the middle of the period; latency x{} from then on.",
                    spec.latency_after
                )
            ],
        )?;
    }
    for (t, len) in &truth.freezes {
        for target in [&ICS, &CSS] {
            tx.execute(
                "INSERT INTO freezes (site, target, started, length, censored) VALUES (?1, ?2, ?3, ?4, 0)",
                params![site, target.name, t, len],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Every slot's runs and kept-session checks from `from` to the end, a day
/// per transaction so memory stays flat.
fn write_runs(
    conn: &mut Connection,
    site: &str,
    spec: &FleetSpec,
    rng: &mut StdRng,
    truth: &Truth,
    from: f64,
) -> anyhow::Result<()> {
    let mut histograms = Pending::new();
    let mut encoded = Encoded::default();
    let mut kept = KeptLives::new(from);
    let mut t = from;
    while t < spec.end {
        let day_end = (t + 86_400.0).min(spec.end);
        let tx = conn.transaction()?;
        while t < day_end {
            slot_runs(&tx, site, rng, truth, t, &mut histograms)?;
            kept.check(&tx, site, rng, truth, t + 60.0)?;
            t += EVERY;
        }
        if spec.histograms {
            flush_histograms(&tx, site, &mut histograms, &mut encoded, t)?;
        } else {
            histograms.clear();
        }
        tx.commit()?;
    }
    let tx = conn.transaction()?;
    if spec.histograms {
        flush_histograms(&tx, site, &mut histograms, &mut encoded, f64::INFINITY)?;
    }
    kept.stop(&tx, site, spec.end)?;
    tx.commit()?;
    Ok(())
}

/// The journeys' runs in the slot starting at `t`.
fn slot_runs(
    tx: &Transaction<'_>,
    site: &str,
    rng: &mut StdRng,
    truth: &Truth,
    t: f64,
    histograms: &mut Pending,
) -> anyhow::Result<()> {
    let mut report: Option<ReportSpan> = None;
    // The report first: the history's interactive runs overlap it.
    for j in [2, 0, 1] {
        let journey = &JOURNEYS[j];
        let mut plan = JourneyPlan {
            target: journey.target,
            thresholds: journey.target,
            offset: journey.offset,
            report,
        };
        if let Some(h) = &truth.history {
            if journey.kind == "report" {
                if !h.report_due(t) {
                    continue;
                }
                plan.target = if h.reports_on_ics(t) { &ICS } else { &CSS };
                plan.thresholds = &HEAVY_REPORT;
            }
            plan.offset = h.offset(j);
        }
        let start = t + plan.offset + rng.random_range(0.0..0.05);
        let ended = run(tx, site, rng, truth, (j, journey), &plan, start, histograms)?;
        if journey.kind == "report" {
            report = Some(ReportSpan {
                target: plan.target.name,
                from: start,
                to: ended,
            });
        }
    }
    Ok(())
}

fn in_freeze(truth: &Truth, at: f64) -> Option<f64> {
    // Freezes are sparse: a binary search finds the one at or before `at`.
    let i = truth.freezes.partition_point(|f| f.0 <= at);
    let (start, len) = *truth.freezes.get(i.checked_sub(1)?)?;
    (at < start + len).then_some(start + len - at)
}

/// A report run of this slot: on which system, from when to when.
#[derive(Clone, Copy)]
struct ReportSpan {
    target: &'static str,
    from: f64,
    to: f64,
}

/// Where and when a journey runs in this slot, judged by which thresholds,
/// and the slot's report run so far.
struct JourneyPlan {
    target: &'static JournalTarget,
    thresholds: &'static JournalTarget,
    offset: f64,
    report: Option<ReportSpan>,
}

/// One run and its steps and session; returns when it ended.
#[allow(clippy::too_many_arguments)]
fn run(
    tx: &Transaction<'_>,
    site: &str,
    rng: &mut StdRng,
    truth: &Truth,
    (j, journey): (usize, &JourneySpec),
    plan: &JourneyPlan,
    start: f64,
    histograms: &mut Pending,
) -> anyhow::Result<f64> {
    let interactive = journey.kind == "interactive";
    let during = plan
        .report
        .filter(|r| interactive && r.from <= start && start < r.to);
    let report_same = during.is_some_and(|r| r.target == plan.target.name);
    let report_any = during.is_some();
    // A restart during the slot ends the journey's session at its first
    // journey step.
    let next = truth.restarts.partition_point(|r| *r < start);
    let restarted = truth.restarts.get(next).is_some_and(|r| *r < start + 5.0);
    let mut drawn = Drawn {
        steps: Vec::new(),
        end: start,
        outcome: "ok",
        failed_step: None,
        logout_cause: None,
    };
    for (seq, &(step, phase, median)) in journey.steps.iter().enumerate() {
        let median = match &truth.history {
            Some(h) if journey.kind == "report" && phase == "journey" => h.report_seconds,
            _ => median,
        };
        let conditions = (restarted && phase == "journey", report_same);
        let sent = draw_step(
            rng,
            truth,
            plan,
            (seq, step, phase),
            median,
            drawn.end,
            conditions,
        )?;
        if !sent.censored {
            let minute = (sent.at / 60.0).floor() as i64;
            histograms
                .entry((minute, plan.target.name, j, seq))
                .or_default()
                .push((sent.duration * 1e6).clamp(1.0, recorder::HIGHEST_MICROS as f64) as u64);
        }
        drawn.end += sent.duration + 0.01;
        let (step_outcome, cause) = (sent.outcome, sent.logout_cause);
        drawn.steps.push(sent);
        if !matches!(step_outcome, "ok" | "slow") {
            drawn.outcome = step_outcome;
            drawn.failed_step = Some(step);
            drawn.logout_cause = cause;
            break;
        }
        if step_outcome == "slow" && drawn.outcome == "ok" {
            drawn.outcome = "slow";
        }
    }
    let run_id = insert_run(
        tx,
        site,
        journey,
        plan,
        start,
        &drawn,
        (report_same, report_any),
    )?;
    insert_steps(tx, run_id, journey, start, &drawn)?;
    insert_session(tx, site, journey, plan, start, &drawn)?;
    Ok(drawn.end)
}

/// One step as drawn.
struct DrawnStep {
    seq: usize,
    step: &'static str,
    phase: &'static str,
    /// When it was sent.
    at: f64,
    duration: f64,
    outcome: &'static str,
    status: Option<u16>,
    /// Given up on: its duration is `give_up_after`.
    censored: bool,
    logout_cause: Option<&'static str>,
}

/// A run's steps as drawn, up to its first failure.
struct Drawn {
    steps: Vec<DrawnStep>,
    /// When the last step ended (and the next would have been sent).
    end: f64,
    outcome: &'static str,
    failed_step: Option<&'static str>,
    logout_cause: Option<&'static str>,
}

/// One step sent at `at`. `(restarted, report_same)`: whether a restart
/// ends the session at this step, and whether a report runs on the same
/// system.
fn draw_step(
    rng: &mut StdRng,
    truth: &Truth,
    plan: &JourneyPlan,
    (seq, step, phase): (usize, &'static str, &'static str),
    median: f64,
    at: f64,
    (restarted, report_same): (bool, bool),
) -> anyhow::Result<DrawnStep> {
    let target = plan.thresholds;
    let factor = truth.step_factor(plan.target, at, report_same);
    let lat = LogNormal::new((median * factor).ln(), 0.45).context("latency")?;
    let mut duration: f64 = lat.sample(rng);
    let mut step_outcome = if duration > target.slow_after {
        "slow"
    } else {
        "ok"
    };
    let mut censored = false;
    let mut status = Some(200u16);
    let mut cause = None;
    if let Some(left) = in_freeze(truth, at) {
        duration += left;
        if duration >= target.freeze_after {
            step_outcome = "frozen";
        }
        if duration >= target.give_up_after {
            duration = target.give_up_after;
            censored = true;
            status = None;
        }
    } else if restarted {
        step_outcome = "logged_out";
        status = Some(302);
        cause = Some("redirect");
    } else if rng.random_bool(truth.error_share.min(1.0)) {
        let which = rng.random_range(0..10);
        (step_outcome, status) = match which {
            0..=5 => ("http_error", Some(500)),
            6..=7 => ("connect_error", None),
            _ => ("assertion_failed", Some(200)),
        };
    }
    Ok(DrawnStep {
        seq,
        step,
        phase,
        at,
        duration,
        outcome: step_outcome,
        status,
        censored,
        logout_cause: cause,
    })
}

/// The three kept sessions: each slot's current life.
struct KeptLives {
    /// Per slot: login time, last moment known alive.
    lives: Vec<(f64, f64)>,
    /// Restarts already applied.
    seen_restart: usize,
}

impl KeptLives {
    fn new(from: f64) -> KeptLives {
        KeptLives {
            lives: vec![(from, from); KEPT],
            seen_restart: 0,
        }
    }

    fn login(tx: &Transaction<'_>, site: &str, slot: usize, at: f64) -> anyhow::Result<()> {
        let mut insert = tx.prepare_cached(
            "INSERT INTO kept_checks (site, target, slot, activity, seq, step, sent_at, duration, outcome, status, censored, logout_cause, session_age, state)
             VALUES (?1, 'ics', ?2, 'login', ?3, ?4, ?5, 0.1, 'ok', 200, 0, NULL, NULL, 'alive')",
        )?;
        for (seq, step) in ["login_page", "login_submit"].iter().enumerate() {
            insert.execute(params![
                site,
                slot as i64,
                seq as i64,
                step,
                at + seq as f64 * 0.1
            ])?;
        }
        Ok(())
    }

    fn span(
        tx: &Transaction<'_>,
        site: &str,
        slot: usize,
        life: (f64, f64),
        end: &str,
        seen: Option<f64>,
    ) -> anyhow::Result<()> {
        tx.prepare_cached(
            "INSERT INTO session_spans (site, target, origin, login_at, age_from, age_to, end_cause, dropped, origin_kind, slot, seen_age, detail)
             VALUES (?1, 'ics', '', ?2, 0, ?3, ?4, ?5, 'kept', ?6, ?7, '')",
        )?
        .execute(params![
            site,
            life.0,
            life.1 - life.0,
            end,
            seen.is_some(),
            slot as i64,
            seen.map(|s| s - life.0)
        ])?;
        Ok(())
    }

    fn check(
        &mut self,
        tx: &Transaction<'_>,
        site: &str,
        rng: &mut StdRng,
        truth: &Truth,
        at: f64,
    ) -> anyhow::Result<()> {
        let restart = truth
            .restarts
            .get(self.seen_restart)
            .is_some_and(|r| *r < at);
        if restart {
            self.seen_restart += 1;
        }
        for slot in 0..KEPT {
            let at = at + slot as f64 * 7.0;
            let (login, alive) = self.lives[slot];
            if at - login >= MAX_AGE {
                KeptLives::span(tx, site, slot, (login, alive), "max_age", None)?;
                KeptLives::login(tx, site, slot, at)?;
                self.lives[slot] = (at, at + 0.2);
                continue;
            }
            let lat = LogNormal::new((0.08 * truth.latency).ln(), 0.4).context("latency")?;
            let mut duration: f64 = lat.sample(rng);
            let (outcome, state, status, cause) = if let Some(left) = in_freeze(truth, at) {
                duration = (duration + left).min(ICS.give_up_after);
                ("frozen", "unknown", None, None)
            } else if restart
                || truth
                    .history
                    .as_ref()
                    .is_some_and(|h| h.drops(rng, at - login))
            {
                ("logged_out", "ended", Some(302), Some("redirect"))
            } else {
                ("ok", "alive", Some(200), None)
            };
            tx.prepare_cached(
                "INSERT INTO kept_checks (site, target, slot, activity, seq, step, sent_at, duration, outcome, status, censored, logout_cause, session_age, state)
                 VALUES (?1, 'ics', ?2, 'check', 0, 'keepalive_home', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                site,
                slot as i64,
                at,
                duration,
                outcome,
                status,
                duration >= ICS.give_up_after,
                cause,
                at - login,
                state
            ])?;
            match state {
                "alive" => self.lives[slot].1 = at + duration,
                "ended" => {
                    KeptLives::span(tx, site, slot, (login, alive), "redirect", Some(at))?;
                    KeptLives::login(tx, site, slot, at + 1.0)?;
                    self.lives[slot] = (at + 1.0, at + 1.2);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn stop(&self, tx: &Transaction<'_>, site: &str, _end: f64) -> anyhow::Result<()> {
        for (slot, life) in self.lives.iter().enumerate() {
            KeptLives::span(tx, site, slot, *life, "agent_stop", None)?;
        }
        Ok(())
    }
}
