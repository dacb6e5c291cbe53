//! The one consumer of records: runs detection on them and updates metrics
//! and the status board together, so the two never disagree (Vector's
//! internal-event habit). Also logs what an operator should hear about.
//!
//! The agent's own stalls come in from the stall monitor
//! ([`crate::stall::StallWatch`]) before each tick and each record: the
//! freeze detector leaves them out of requests' waits, a run or step that
//! overlaps one longer than its `freeze_after` is flagged
//! (`agent_stalled`) before anything counts it, and each stall is
//! journaled and shown on the status page.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::detect::stall::{mark_run, mark_steps};
use crate::detect::{FreezeChange, FreezeDetector};
use crate::journal::{Journal, ReportLoad};
use crate::metrics::Metrics;
use crate::outcome::{
    bracket_midpoint, AgentFault, FreezeEpisode, JourneyKind, KeptRecord, ProbeEvent, Record,
    RunRecord, SessionEnd, SessionSpan, StepRecord,
};
use crate::stall::StallWatch;
use crate::status::StatusBoard;

pub struct Observer {
    metrics: Arc<Metrics>,
    status: Arc<Mutex<StatusBoard>>,
    freezes: FreezeDetector,
    /// Live sessions: id -> (target, logged in at, known alive now).
    sessions: HashMap<u64, (String, Instant, bool)>,
    /// Targets where a forced logout happened and no login has succeeded since.
    relogin_pending: HashSet<String>,
    targets: Vec<String>,
    journal: Option<Journal>,
    /// Report runs in flight per target, and when one last ended.
    reports: HashMap<String, (usize, Option<Instant>)>,
    /// When each journey's current run started.
    run_started: HashMap<String, Instant>,
    stalls: StallWatch,
    /// How many of the monitor's stalls have been taken in.
    stalls_seen: u64,
    /// Journeys whose last run overlapped a stall of the agent: the slots
    /// it overran were missed because of the agent.
    stalled_last_run: HashSet<String>,
}

impl Observer {
    pub fn new(
        metrics: Arc<Metrics>,
        status: Arc<Mutex<StatusBoard>>,
        targets: Vec<String>,
        journal: Option<Journal>,
        stalls: StallWatch,
    ) -> Observer {
        Observer {
            metrics,
            status,
            freezes: FreezeDetector::new(),
            sessions: HashMap::new(),
            relogin_pending: HashSet::new(),
            targets,
            journal,
            reports: HashMap::new(),
            run_started: HashMap::new(),
            stalls,
            stalls_seen: 0,
            stalled_last_run: HashSet::new(),
        }
    }

    /// Hands over the journal so it can be closed off the async runtime.
    pub fn take_journal(&mut self) -> Option<Journal> {
        self.journal.take()
    }

    /// Whether a report journey ran on `target` at any time since `since`.
    fn report_ran(&self, target: &str, since: Instant) -> bool {
        self.reports.get(target).is_some_and(|(running, last_end)| {
            *running > 0 || last_end.is_some_and(|end| end >= since)
        })
    }

    fn report_load(&mut self, run: &RunRecord) -> ReportLoad {
        let since = self
            .run_started
            .remove(&run.journey)
            .unwrap_or_else(|| Instant::now() - run.duration);
        let is_report = run.kind == JourneyKind::Report;
        if is_report {
            let entry = self.reports.entry(run.target.clone()).or_default();
            entry.0 = entry.0.saturating_sub(1);
            entry.1 = Some(Instant::now());
        }
        let others = |o: &Observer, target: &str| !is_report && o.report_ran(target, since);
        ReportLoad {
            same_target: others(self, &run.target),
            any_target: self.targets.iter().any(|t| others(self, t)),
        }
    }

    fn board(&self) -> std::sync::MutexGuard<'_, StatusBoard> {
        match self.status.lock() {
            Ok(board) => board,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn observe(&mut self, record: Record) {
        match record {
            Record::RunStarted {
                target,
                journey,
                kind,
            } => {
                self.metrics.run_started(&target, &journey);
                self.run_started.insert(journey.clone(), Instant::now());
                if kind == JourneyKind::Report {
                    self.reports.entry(target).or_default().0 += 1;
                }
            }
            Record::MissedSlots {
                target,
                journey,
                count,
                waits,
            } => {
                tracing::warn!(%journey, missed = count, "missed timetable slots");
                // Slots are missed while the previous run overran; when the
                // agent's stall made it overrun, the waits measured the
                // agent: the slots count, their waits do not.
                let waits = if self.stalled_last_run.contains(&journey) {
                    Vec::new()
                } else {
                    waits
                };
                self.metrics.missed_slots(&target, &journey, count, &waits);
                self.board().missed_slots(&journey, count);
                if let Some(journal) = &self.journal {
                    journal.missed(&target, &journey, count, SystemTime::now());
                }
            }
            Record::Probe(event) => self.probe(event),
            Record::Run(run) => self.run(run),
            Record::Kept(kept) => self.kept(kept),
            Record::Reconfigured { targets } => self.targets = targets,
        }
    }

    fn probe(&mut self, event: ProbeEvent) {
        match event {
            ProbeEvent::Sent {
                target,
                id,
                at,
                freeze_after,
            } => self.freezes.sent(&target, id, at, freeze_after),
            ProbeEvent::Ended { target, id } => self.freezes.ended(&target, id),
            ProbeEvent::Answered { target, at } => {
                if let Some(change) = self.freezes.answered(&target, at) {
                    self.freeze_change(change);
                }
            }
            ProbeEvent::SessionOpened { target, id, at } => {
                self.sessions.insert(id, (target, at, true));
            }
            ProbeEvent::SessionKnown { id, alive } => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.2 = alive;
                }
            }
            ProbeEvent::SessionClosed { id, .. } => {
                self.sessions.remove(&id);
            }
            ProbeEvent::Resent { target } => {
                self.metrics
                    .agent
                    .http_retries
                    .with_label_values(&[&target])
                    .inc();
            }
        }
    }

    /// Takes in the stalls the monitor recorded since last time (to the
    /// freeze detector, the journal and the board), and the one under way
    /// that it has not been able to record yet (to the detector only: the
    /// monitor records it once it runs).
    fn learn_stalls(&mut self, now: Instant) {
        for stall in self.stalls.since(&mut self.stalls_seen) {
            self.freezes.agent_stalled(stall);
            let started = wall_clock(stall.start);
            if let Some(journal) = &self.journal {
                journal.stall(started, stall.length);
            }
            self.board().agent_stalled(started, stall.length);
        }
        if let Some(stall) = self.stalls.unconfirmed(now) {
            self.freezes.agent_stalled(stall);
        }
    }

    fn run(&mut self, mut run: RunRecord) {
        let now = Instant::now();
        self.learn_stalls(now);
        if let Some(fault) = run.agent_fault() {
            self.agent_fault(&run, fault);
            return;
        }
        if mark_run(self.freezes.stalls(), &mut run, monotonic(now)) {
            self.stalled_last_run.insert(run.journey.clone());
        } else {
            self.stalled_last_run.remove(&run.journey);
        }
        log_run(&run);
        self.metrics.run(&run);
        self.relogins(&run.target, &run.steps);
        for span in &run.sessions {
            self.span(span);
        }
        let load = self.report_load(&run);
        if let Some(journal) = &self.journal {
            journal.run(&run, load);
        }
        self.board().observe_run(&run);
    }

    /// A run that failed through the agent's own fault measured the agent,
    /// not the target: it is counted and logged as the agent's error, its
    /// slot is journaled as missed, and nothing of it counts for the target
    /// (no outcome, no duration, nothing on the status board). Its sessions
    /// are the target's all the same.
    fn agent_fault(&mut self, run: &RunRecord, fault: AgentFault) {
        let detail = run
            .steps
            .iter()
            .find(|s| s.agent_fault.is_some())
            .map_or("", |s| s.detail.as_str());
        tracing::error!(
            journey = %run.journey, target = %run.target, error = fault.as_str(), detail,
            "the agent could not make a run through its own fault; it is not counted against the target"
        );
        self.metrics.agent_error(&run.target, &run.journey, fault);
        self.run_started.remove(&run.journey);
        for span in &run.sessions {
            self.span(span);
        }
        if let Some(journal) = &self.journal {
            journal.missed(&run.target, &run.journey, 1, SystemTime::now());
        }
    }

    fn kept(&mut self, mut kept: KeptRecord) {
        let now = Instant::now();
        self.learn_stalls(now);
        mark_steps(self.freezes.stalls(), &mut kept.steps, monotonic(now));
        for step in &kept.steps {
            if let Some(fault) = step.agent_fault {
                tracing::error!(
                    target = %kept.target, slot = kept.slot, error = fault.as_str(), detail = %step.detail,
                    "a kept session's check failed through the agent's own fault"
                );
                self.metrics
                    .agent
                    .errors
                    .with_label_values(&[fault.as_str()])
                    .inc();
            }
        }
        self.metrics.kept(&kept);
        self.relogins(&kept.target, &kept.steps);
        for span in &kept.sessions {
            self.span(span);
        }
        if let Some(journal) = &self.journal {
            journal.kept(&kept);
        }
        self.board().observe_kept(&kept);
    }

    /// A stretch of session life: exposure, and a forced logout when that
    /// is how the life ended.
    fn span(&mut self, span: &SessionSpan) {
        self.metrics.exposure(span);
        if let (Some(SessionEnd::Forced(cause)), Some(bracket)) = (span.end, span.bracket()) {
            tracing::warn!(
                target = %span.target, session = %span.origin, cause = cause.as_str(),
                alive_age_s = bracket.0.as_secs_f64(), seen_age_s = bracket.1.as_secs_f64(),
                "forced logout"
            );
            self.metrics
                .forced_logout(&span.target, cause, bracket_midpoint(bracket));
            self.relogin_pending.insert(span.target.clone());
        }
        if let Some(journal) = &self.journal {
            journal.session(span);
        }
        self.board().observe_span(span);
    }

    /// Login steps come in groups (the run's login, and a re-login after a
    /// forced logout); a whole successful group after a drop is a re-login.
    fn relogins(&mut self, target: &str, steps: &[StepRecord]) {
        for took in crate::detect::sessions::login_groups(steps)
            .into_iter()
            .flatten()
        {
            if self.relogin_pending.remove(target) {
                self.metrics.relogin(target, took);
            }
        }
    }

    /// Opens freeze episodes that are due and refreshes the live gauges.
    pub fn tick(&mut self, now: Instant) {
        self.learn_stalls(now);
        for change in self.freezes.tick(now) {
            self.freeze_change(change);
        }
        self.metrics.runtime();
        for target in &self.targets {
            self.metrics
                .inflight_oldest(target, self.freezes.oldest_inflight(target, now));
            let ages: Vec<Duration> = self
                .sessions
                .values()
                .filter(|(t, _, alive)| t == target && *alive)
                .map(|(_, since, _)| now.saturating_duration_since(*since))
                .collect();
            self.metrics.sessions(
                target,
                ages.len(),
                ages.iter().max().copied().unwrap_or_default(),
            );
        }
    }

    /// Closes open episodes as censored: the agent is stopping.
    pub fn finish(&mut self, now: Instant) {
        self.learn_stalls(now);
        for change in self.freezes.finish(now) {
            self.freeze_change(change);
        }
    }

    fn freeze_change(&mut self, change: FreezeChange) {
        match change {
            FreezeChange::Started { target, started } => {
                tracing::warn!(%target, "freeze started: the target has stopped answering");
                self.metrics.freeze_started(&target);
                self.board().freeze_started(&target, wall_clock(started));
            }
            FreezeChange::Ended {
                target,
                started,
                ended,
                censored,
                agent_stalled,
            } => {
                let length = ended.saturating_duration_since(started);
                tracing::warn!(
                    %target, length_s = length.as_secs_f64(), censored,
                    agent_stalled_s = agent_stalled.as_secs_f64(), "freeze ended"
                );
                self.metrics.freeze_ended(&target, length);
                let episode = FreezeEpisode {
                    target,
                    started: wall_clock(started),
                    length,
                    censored,
                    agent_stalled,
                };
                if let Some(journal) = &self.journal {
                    journal.freeze(&episode);
                }
                self.board().freeze_ended(episode);
            }
        }
    }
}

/// The wall-clock time of a monotonic instant in the past.
pub fn wall_clock(instant: Instant) -> SystemTime {
    SystemTime::now() - Instant::now().saturating_duration_since(instant)
}

/// Places wall-clock times in the past on the monotonic clock, as of `now`.
fn monotonic(now: Instant) -> impl Fn(SystemTime) -> Instant {
    let wall_now = SystemTime::now();
    move |t| {
        let ago = wall_now.duration_since(t).unwrap_or_default();
        now.checked_sub(ago).unwrap_or(now)
    }
}

fn log_run(run: &RunRecord) {
    if run.agent_stalled {
        tracing::warn!(
            journey = %run.journey, target = %run.target, outcome = %run.outcome,
            "run overlapped a stall of the agent itself: not counted against the target"
        );
        return;
    }
    if run.outcome.is_success() {
        tracing::debug!(journey = %run.journey, outcome = %run.outcome, duration_s = run.duration.as_secs_f64(), "run finished");
        return;
    }
    let detail = run
        .steps
        .iter()
        .find(|s| !s.outcome.is_success())
        .map(|s| s.detail.as_str())
        .unwrap_or("");
    tracing::warn!(
        journey = %run.journey, target = %run.target, outcome = %run.outcome,
        step = run.failed_step.as_deref().unwrap_or(""), detail, "run failed"
    );
}
