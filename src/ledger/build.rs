//! Filling a ledger from a journal: one streaming pass per table, in the
//! journal's own order, each row turned into its contributions at once
//! and dropped. Nothing here holds rows; memory is the ledger's.
//!
//! Hours that `casewatch journal compact` folded into rollups are read
//! from the rollups instead: the two never overlap, since compaction
//! deletes the rows it folds in the same transaction.

use std::time::Duration;

use super::{class_of, is_success, millis_of, ForcedLogout, Freeze, Ledger, SlotClock, StepKey};
use crate::config::practitioners::Practitioners;
use crate::detect::AgeBands;
use crate::journal::read::{
    ChangeRow, JournalReader, KeptRow, ReadError, RunRow, SpanRow, StepRow, Window,
};

/// What the journal says about itself, beside its rows.
#[derive(Clone, Debug)]
pub struct JournalMeta {
    pub site: Option<String>,
    pub bands: AgeBands,
    /// How many times faster than the wall clock the system's calendar runs.
    pub calendar_scale: f64,
    pub practitioners: Practitioners,
    pub changes: Vec<ChangeRow>,
    /// First and last moment measured over the whole journal.
    pub span: Option<(f64, f64)>,
    /// A generated journal's known truth, in words (the demo's history).
    pub seeded_truth: Option<String>,
}

impl JournalMeta {
    pub fn read(reader: &JournalReader) -> Result<JournalMeta, ReadError> {
        let bands = reader
            .meta("age_band_edges_seconds")?
            .and_then(|text| serde_json::from_str::<Vec<f64>>(&text).ok())
            .filter(|edges| {
                !edges.is_empty()
                    && edges.iter().all(|e| e.is_finite() && *e > 0.0 && *e < 1e9)
                    && edges.windows(2).all(|w| w[0] < w[1])
            })
            .map(|edges| AgeBands::new(edges.into_iter().map(Duration::from_secs_f64).collect()))
            .unwrap_or_default();
        let calendar_scale = reader
            .meta("calendar_scale")?
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= 1e6)
            .unwrap_or(1.0);
        let practitioners = reader
            .meta("practitioners")?
            .and_then(|text| serde_json::from_str::<Practitioners>(&text).ok())
            .unwrap_or_default();
        let mut span = reader.span()?;
        if let Some((from, to)) = reader.rollup_span()? {
            span = Some(match span {
                Some((f, t)) => (f.min(from), t.max(to)),
                None => (from, to),
            });
        }
        Ok(JournalMeta {
            site: reader.meta("site")?.filter(|s| !s.is_empty()),
            bands,
            calendar_scale,
            practitioners,
            changes: reader.changes()?,
            span,
            seeded_truth: reader.meta("seeded_truth")?.filter(|s| !s.is_empty()),
        })
    }
}

/// The window a ledger covers, in whole slots.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlotWindow {
    pub clock: SlotClock,
    pub first: i64,
    pub last: i64,
}

impl SlotWindow {
    /// The window from `from` to `to` (unix seconds), widened to whole slots.
    pub fn new(clock: SlotClock, from: f64, to: f64) -> SlotWindow {
        let first = clock.slot(from);
        let last = clock.slot(to).max(first);
        SlotWindow { clock, first, last }
    }

    pub fn from(&self) -> f64 {
        self.clock.start(self.first)
    }

    pub fn to(&self) -> f64 {
        self.clock.start(self.last + 1)
    }

    /// The rows the window holds, by their attribution time.
    pub fn rows(&self) -> Window {
        Window {
            from: self.from(),
            to: self.to(),
        }
    }
}

/// The longest a window may be, in slots: beyond this a journal's times
/// are not a monitoring history (milliseconds stored as seconds, say).
pub const MAX_SLOTS: i64 = 2_000_000;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("the journal's times run from {from} to {to}, {years:.0} years: these are not times the agent wrote (a clock or a unit gone wrong?); give --from and --to to read part of it")]
    ImplausibleSpan {
        from: String,
        to: String,
        years: f64,
    },
    #[error("the journal's rollup of {hour} cannot be read")]
    Rollup {
        hour: String,
        #[source]
        source: super::rollup::RollupError,
    },
    #[error("the report would hold {samples} latency samples, over its memory bound of {limit}; give a shorter window with --from and --to, or compact the journal (casewatch journal compact)")]
    TooLarge { samples: u64, limit: u64 },
}

/// Latency samples a ledger may hold (4 bytes each): far beyond a year of
/// one site at production rates (about 1.6 million), far below what
/// would swap a host.
pub const MAX_SAMPLES: u64 = 150_000_000;

/// What a ledger keeps of latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Every step, by name: the site's report.
    AllSteps,
    /// The interactive journeys' own steps as one: the fleet report.
    InteractiveOnly,
}

/// Reads `window` of the journal into a new ledger: its rows, and the
/// rollups of hours that were compacted.
pub fn ledger(
    reader: &JournalReader,
    meta: &JournalMeta,
    window: SlotWindow,
    keep: Keep,
    mut progress: impl FnMut(u64),
) -> Result<Ledger, BuildError> {
    if window.last - window.first > MAX_SLOTS {
        return Err(BuildError::ImplausibleSpan {
            from: crate::timefmt::rfc3339(window.from()),
            to: crate::timefmt::rfc3339(window.to()),
            years: (window.to() - window.from()) / (365.25 * 86_400.0),
        });
    }
    let mut ledger = Ledger::new(window.clock, Some((window.first, window.last)), &meta.bands);
    ledger.interactive_only = keep == Keep::InteractiveOnly;
    read_rows(reader, meta, window, &mut ledger, &mut progress)?;
    for rollup in reader.rollups(window.rows())? {
        let part = super::rollup::decode(&rollup.body, rollup.version).map_err(|source| {
            BuildError::Rollup {
                hour: crate::timefmt::rfc3339(rollup.hour_start),
                source,
            }
        })?;
        ledger.absorb(&part);
    }
    if ledger.samples > MAX_SAMPLES {
        return Err(BuildError::TooLarge {
            samples: ledger.samples,
            limit: MAX_SAMPLES,
        });
    }
    if let Some(site) = &meta.site {
        if !ledger.sites.contains(site) {
            ledger.sites.push(site.clone());
        }
    }
    ledger.sort_events();
    ledger.shrink();
    Ok(ledger)
}

/// The ledger of the rows attributed to `window` alone, keeping every
/// contribution they make (a session's exposure after the window, say):
/// what a rollup stores.
pub fn raw_ledger(
    reader: &JournalReader,
    meta: &JournalMeta,
    window: SlotWindow,
) -> Result<Ledger, BuildError> {
    let mut ledger = Ledger::new(window.clock, None, &meta.bands);
    read_rows(reader, meta, window, &mut ledger, &mut |_| {})?;
    ledger.sort_events();
    Ok(ledger)
}

fn read_rows(
    reader: &JournalReader,
    meta: &JournalMeta,
    window: SlotWindow,
    ledger: &mut Ledger,
    progress: &mut dyn FnMut(u64),
) -> Result<(), BuildError> {
    let rows = window.rows();
    let mut reading = RowTally {
        ledger,
        meta,
        run: None,
    };
    let mut seen = 0u64;
    let mut tick = |n: &mut u64| {
        *n += 1;
        if *n % 65_536 == 0 {
            progress(*n);
        }
    };
    reader.each_run_row(rows, |run| {
        reading.run(run);
        tick(&mut seen);
    })?;
    let interactive_only = reading.ledger.interactive_only;
    reader.each_step_row(rows, interactive_only, |step| {
        reading.step(step);
        tick(&mut seen);
    })?;
    reading.end_run();
    let mut session = SessionGroup::default();
    reader.each_span_row(rows, |span| {
        session.add(reading.ledger, &meta.bands, span);
        tick(&mut seen);
    })?;
    session.flush(reading.ledger);
    // Kept sessions' checks: the fleet report does not show them.
    if !reading.ledger.interactive_only {
        reader.each_kept_row(rows, |kept| {
            reading.kept(kept);
            tick(&mut seen);
        })?;
    }
    for f in reader.freezes(rows)? {
        reading.ledger.freezes.push(Freeze {
            site: f.site,
            target: f.target,
            started: f.started,
            length: f.length,
            censored: f.censored,
            agent_stall: f.agent_stall,
        });
    }
    reading.ledger.agent_stalls.extend(reader.stalls(rows)?);
    progress(seen);
    Ok(())
}

/// The run whose steps are being read: steps come grouped by run.
struct OpenRun {
    id: i64,
    journey: u16,
    intended_start: f64,
    login_ms: u64,
    login_ok: bool,
    saw_login: bool,
    journey_ms: u64,
    cut_short: bool,
    interactive: bool,
    /// Login and journey steps' time, frozen and given-up steps' waits
    /// left out; and the first of those steps to fail, by outcome.
    work_ms: u64,
    failed: Option<bool>,
}

impl OpenRun {
    /// Adds a step's time to the run's login, journey and work, and notes
    /// its first failure.
    fn add(&mut self, s: &StepRow<&str>, ok: bool) {
        if matches!(s.phase, "login" | "journey") {
            if !s.censored && s.outcome != "frozen" {
                self.work_ms += millis_of(s.duration);
            }
            if !ok && self.failed.is_none() {
                self.failed = Some(s.outcome != "logged_out");
            }
        }
        match s.phase {
            "login" => {
                self.saw_login = true;
                self.login_ms += millis_of(s.duration);
                self.login_ok &= ok;
            }
            "journey" if !self.cut_short => {
                self.journey_ms += millis_of(s.duration);
                self.cut_short = s.outcome == "logged_out";
            }
            _ => {}
        }
    }
}

/// Tallies the journal's rows into a ledger, holding the run whose steps come next.
struct RowTally<'a> {
    ledger: &'a mut Ledger,
    meta: &'a JournalMeta,
    run: Option<OpenRun>,
}

impl RowTally<'_> {
    fn run(&mut self, run: &RunRow<&str>) {
        let l = &mut *self.ledger;
        // What a run overlapping the agent's own stall measured was the
        // agent, not the target.
        if run.agent_stalled {
            l.stalled_runs += 1;
            return;
        }
        if !l.sites.iter().any(|s| s == run.site) {
            l.sites.push(run.site.to_string());
        }
        let target = match l.targets.iter().position(|t| t == run.target) {
            Some(i) => i as u16,
            None => l.target_id(run.target),
        };
        l.add_flight(
            target,
            run.intended_start,
            run.actual_start.max(run.intended_start) + run.duration.max(0.0),
        );
        let id = l.journey_for(run.site, run.target, run.journey, run.kind);
        l.add_run(id, run.intended_start, run.outcome);
        let ok = is_success(run.outcome);
        match run.kind {
            "report" => {
                let entry = l
                    .report_runs
                    .entry((
                        run.target.to_string(),
                        run.journey.to_string(),
                        String::new(),
                    ))
                    .or_default();
                *entry
                    .0
                    .entry(class_of(super::micros_of(run.duration)))
                    .or_default() += 1;
                entry.1 += u64::from(ok);
            }
            "interactive" => {
                l.add_excess(id, run.intended_start, 0, 1);
                if ok {
                    l.cost.run_ms += millis_of(run.duration);
                    l.cost.runs += 1;
                }
            }
            _ => {}
        }
        let at = run.intended_start;
        let end = run.intended_start + run.duration.max(0.0);
        l.measured = Some(match l.measured {
            Some((f, t)) => (f.min(at), t.max(end)),
            None => (at, end),
        });
    }

    fn step(&mut self, s: &StepRow<&str>) {
        if s.agent_stalled {
            return;
        }
        if self.run.as_ref().is_none_or(|r| r.id != s.run_id) {
            self.end_run();
            let journey = self
                .ledger
                .journey_for(s.site, s.target, s.journey, s.run_kind);
            self.run = Some(OpenRun {
                id: s.run_id,
                journey,
                intended_start: s.intended_start,
                login_ms: 0,
                login_ok: true,
                saw_login: false,
                journey_ms: 0,
                cut_short: false,
                interactive: s.run_kind == "interactive",
                work_ms: 0,
                failed: None,
            });
        }
        let l = &mut *self.ledger;
        let interactive = s.kind == "interactive" && s.phase == "journey";
        let key = StepKey {
            target: s.target,
            journey: s.journey,
            step: s.step,
            kind: s.kind,
            phase: s.phase,
            report_same: s.report_same && interactive,
            report_any: s.report_any && interactive,
        };
        if let Some(id) = l.step_for(&key) {
            if s.censored {
                l.add_given_up(id, s.sent_at, s.duration);
            } else {
                l.add_sample(id, s.sent_at, s.duration);
            }
        }
        let ok = is_success(s.outcome);
        if s.kind == "report" && s.run_kind != "report" {
            let entry = l
                .report_runs
                .entry((
                    s.target.to_string(),
                    s.journey.to_string(),
                    s.step.to_string(),
                ))
                .or_default();
            *entry
                .0
                .entry(class_of(super::micros_of(s.duration)))
                .or_default() += 1;
            entry.1 += u64::from(ok);
        }
        if let Some(side) = s.freeze_side {
            let sides = l
                .browser_sides
                .entry((s.target.to_string(), s.journey.to_string()))
                .or_default();
            sides[match side {
                "client" => 1,
                "mixed" => 2,
                _ => 0,
            }] += 1;
        }
        if let Some(name) = s.evidence {
            l.browser_evidence.push(super::CapturedStep {
                sent_at: s.sent_at,
                target: s.target.to_string(),
                journey: s.journey.to_string(),
                step: s.step.to_string(),
                outcome: s.outcome.to_string(),
                name: name.to_string(),
            });
        }
        let acceptable = self.meta.practitioners.acceptable_seconds;
        let Some(run) = self.run.as_mut() else {
            return;
        };
        if interactive && ok && s.duration > acceptable {
            let journey = run.journey;
            let at = run.intended_start;
            l.add_excess(journey, at, millis_of(s.duration - acceptable), 0);
        }
        run.add(s, ok);
    }

    /// Closes the run whose steps were being read.
    fn end_run(&mut self) {
        if let Some(run) = self.run.take() {
            let c = &mut self.ledger.cost;
            if run.saw_login && run.login_ok {
                c.login_ms += run.login_ms;
                c.logins += 1;
            }
            if run.cut_short {
                c.interrupted_ms += run.journey_ms;
                c.interrupted += 1;
            }
            // Failed work is done again; a run cut short by a forced
            // logout is the forced logout's cost.
            if run.interactive && run.failed == Some(true) {
                self.ledger
                    .add_failed(run.journey, run.intended_start, run.work_ms);
            }
        }
    }

    fn kept(&mut self, r: &KeptRow<&str>) {
        if r.agent_stalled {
            return;
        }
        let kept = &mut self.ledger.kept;
        let row = match kept
            .iter_mut()
            .find(|((site, target), _)| site == r.site && target == r.target)
        {
            Some((_, row)) => row,
            None => kept
                .entry((r.site.to_string(), r.target.to_string()))
                .or_default(),
        };
        match r.activity {
            "check" => {
                row.checks += 1;
                match row.check_outcomes.get_mut(r.outcome) {
                    Some(n) => *n += 1,
                    None => {
                        row.check_outcomes.insert(r.outcome.to_string(), 1);
                    }
                }
                if r.state == "unknown" {
                    row.unknown_checks += 1;
                }
            }
            // Each attempt's first step; its record's state says how it went.
            "login" if r.seq == Some(0) => {
                row.logins += 1;
                if r.state == "ended" {
                    row.failed_logins += 1;
                }
            }
            _ => {}
        }
        let end = r.sent_at + r.duration.max(0.0);
        let l = &mut *self.ledger;
        // A kept session's check measures its target as a run does: a
        // freeze it sees is the system's, and the time it waited counts
        // as time measured, so that a target watched only by kept
        // sessions still has a freeze rate.
        let target = match l.targets.iter().position(|t| t == r.target) {
            Some(i) => i as u16,
            None => l.target_id(r.target),
        };
        l.add_flight(target, r.sent_at, end);
        l.measured = Some(match l.measured {
            Some((f, t)) => (f.min(r.sent_at), t.max(end)),
            None => (r.sent_at, end),
        });
    }
}

/// Whose session: (site, target, origin, kept slot).
type SpanSessionKey = (String, String, String, Option<i64>);

/// The spans of one session: the journal may hold several per session,
/// all with its login time, so sessions are closed when the login time
/// changes (spans come in login order).
#[derive(Default)]
struct SessionGroup {
    login_at: Option<f64>,
    /// (site, target, origin, slot) -> (lifetime seconds, dropped).
    open: Vec<(SpanSessionKey, (f64, bool))>,
}

impl SessionGroup {
    fn add(&mut self, l: &mut Ledger, bands: &AgeBands, s: &SpanRow<&str>) {
        if self.login_at != Some(s.login_at) {
            self.flush(l);
            self.login_at = Some(s.login_at);
        }
        let target = match l.targets.iter().position(|t| t == s.target) {
            Some(i) => i as u16,
            None => l.target_id(s.target),
        };
        for band in 0..bands.labels().len() {
            let (lo, hi) = band_range(bands, band);
            let (from, to) = (s.age_from.max(lo), s.age_to.min(hi));
            if to > from {
                l.add_exposure(target, band, s.login_at + from, s.login_at + to);
            }
        }
        let bracket = s.bracket();
        if let Some((alive, seen)) = bracket {
            l.forced_logouts.push(ForcedLogout {
                site: s.site.to_string(),
                target: s.target.to_string(),
                login_at: s.login_at,
                alive_age: alive,
                seen_age: seen,
                seen_at: s.seen_moment().unwrap_or(s.login_at + seen),
                cause: s.end_cause.unwrap_or("unknown").to_string(),
                holder_kind: s.origin_kind.to_string(),
                holder: s.holder(),
            });
        }
        if s.origin_kind == "kept" {
            if let Some(end) = s.end_cause {
                *l.kept
                    .entry((s.site.to_string(), s.target.to_string()))
                    .or_default()
                    .lives_ended
                    .entry(end.to_string())
                    .or_default() += 1;
            }
        }
        let age = match bracket {
            Some((alive, seen)) => (alive + seen) / 2.0,
            None => s.age_to,
        };
        let found = self
            .open
            .iter_mut()
            .find(|(k, _)| k.0 == s.site && k.1 == s.target && k.2 == s.origin && k.3 == s.slot);
        let session = match found {
            Some((_, v)) => v,
            None => {
                self.open.push((
                    (
                        s.site.to_string(),
                        s.target.to_string(),
                        s.origin.to_string(),
                        s.slot,
                    ),
                    (0.0, false),
                ));
                &mut self.open.last_mut().expect("just pushed").1
            }
        };
        session.0 = session.0.max(age);
        session.1 |= s.dropped;
    }

    fn flush(&mut self, l: &mut Ledger) {
        for (_, (age, dropped)) in std::mem::take(&mut self.open) {
            let class = class_of(millis_of(age).max(1));
            let entry = l.lifetimes.entry(class).or_default();
            if dropped {
                entry.1 += 1;
            } else {
                entry.0 += 1;
            }
        }
    }
}

/// The ages (seconds) band `i` covers.
fn band_range(bands: &AgeBands, i: usize) -> (f64, f64) {
    let edges = bands.edges();
    let lo = if i == 0 {
        0.0
    } else {
        edges[i - 1].as_secs_f64()
    };
    let hi = edges.get(i).map_or(f64::INFINITY, |e| e.as_secs_f64());
    (lo, hi)
}
