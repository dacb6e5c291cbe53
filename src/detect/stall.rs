//! The agent's own stalls: stretches when the agent could not run (its
//! process paused by SIGSTOP, its VM paused, its host swapping or starved
//! of CPU). They are measured by how late a monitor that asks to wake every
//! [`PERIOD`] really wakes.
//!
//! A request in flight across a stall looks slow however quickly the target
//! answered, so a stall is never taken for the target's freeze:
//!
//! - [`crate::detect::freeze`] leaves stall time out of a request's wait, so
//!   an episode opens only on silence the agent was awake to see;
//! - a step or a run that overlaps a stall longer than its `freeze_after`
//!   is flagged `agent_stalled` ([`mark_run`], [`mark_steps`]) and not
//!   counted against the target.
//!
//! Pure: [`StallMeter`] is fed the times the monitor woke, [`StallSet`] the
//! stalls; the thread that sleeps and wakes is [`crate::stall`].

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::outcome::{RunRecord, StepRecord};

/// How often the monitor asks to wake.
pub const PERIOD: Duration = Duration::from_millis(50);

/// Lateness from which a wake counts as a stall: far above the scheduling
/// delay of a busy but healthy host (milliseconds), far below any
/// `freeze_after` worth configuring.
pub const THRESHOLD: Duration = Duration::from_millis(250);

/// The current scheduling delay is the longest lateness of the wakes in
/// this last stretch, so a scrape every few seconds still sees a spike.
pub const DELAY_WINDOW: Duration = Duration::from_secs(1);

/// Stalls a [`StallSet`] holds at most, newest kept.
pub const SET_KEPT: usize = 4096;

/// One stretch the agent could not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stall {
    /// When the monitor should have woken.
    pub start: Instant,
    /// How late it woke.
    pub length: Duration,
}

impl Stall {
    pub fn end(&self) -> Instant {
        self.start + self.length
    }
}

/// What one wake of the monitor measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wake {
    /// How late the monitor woke: the agent's scheduling delay just now.
    pub lateness: Duration,
    /// The wake was at least [`StallMeter`]'s threshold late.
    pub stall: Option<Stall>,
}

/// The monitor's arithmetic: when to wake next, and what a wake measured.
#[derive(Debug)]
pub struct StallMeter {
    period: Duration,
    threshold: Duration,
    due: Instant,
    /// Recent wakes and their lateness, for [`StallMeter::delay`].
    recent: VecDeque<(Instant, Duration)>,
}

impl StallMeter {
    pub fn new(period: Duration, threshold: Duration, now: Instant) -> StallMeter {
        StallMeter {
            period,
            threshold,
            due: now + period,
            recent: VecDeque::new(),
        }
    }

    /// When the monitor is to wake next.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// The monitor woke at `now`, having asked for [`StallMeter::due`]. The
    /// next wake is a period after this one: a stall is measured once, not
    /// followed by a burst of catch-up wakes.
    pub fn woke(&mut self, now: Instant) -> Wake {
        let lateness = now.saturating_duration_since(self.due);
        let stall = (lateness >= self.threshold).then_some(Stall {
            start: self.due,
            length: lateness,
        });
        self.due = now + self.period;
        self.recent.push_back((now, lateness));
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > DELAY_WINDOW)
        {
            self.recent.pop_front();
        }
        Wake { lateness, stall }
    }

    /// The longest lateness of the wakes in the last [`DELAY_WINDOW`].
    pub fn delay(&self) -> Duration {
        self.recent
            .iter()
            .map(|(_, lateness)| *lateness)
            .max()
            .unwrap_or_default()
    }
}

/// The stall under way at `now` when the monitor was due at `due` and has
/// not woken yet: none until it is `threshold` late. Whoever runs while the
/// monitor has not been scheduled yet (right after a SIGCONT, say) sees the
/// stall before the monitor can record it.
pub fn unconfirmed(due: Instant, threshold: Duration, now: Instant) -> Option<Stall> {
    let late = now.saturating_duration_since(due);
    (late >= threshold).then_some(Stall {
        start: due,
        length: late,
    })
}

/// Stalls as time intervals, merged where they overlap (an unconfirmed
/// stall and the same stall recorded), oldest first, at most
/// [`SET_KEPT`] of them.
#[derive(Debug, Default)]
pub struct StallSet {
    spans: VecDeque<(Instant, Instant)>,
}

impl StallSet {
    pub fn new() -> StallSet {
        StallSet::default()
    }

    pub fn add(&mut self, stall: Stall) {
        let (mut from, mut to) = (stall.start, stall.end());
        if to <= from {
            return;
        }
        // The spans are disjoint and sorted, so one pass finds every span
        // the new one touches.
        self.spans.retain(|&(start, end)| {
            let touches = start <= to && end >= from;
            if touches {
                from = from.min(start);
                to = to.max(end);
            }
            !touches
        });
        let at = self.spans.partition_point(|&(start, _)| start < from);
        self.spans.insert(at, (from, to));
        while self.spans.len() > SET_KEPT {
            self.spans.pop_front();
        }
    }

    /// Forgets stalls that ended before `before`.
    pub fn prune(&mut self, before: Instant) {
        while self.spans.front().is_some_and(|&(_, end)| end < before) {
            self.spans.pop_front();
        }
    }

    fn overlapping(
        &self,
        from: Instant,
        to: Instant,
    ) -> impl Iterator<Item = (Instant, Instant)> + '_ {
        self.spans
            .iter()
            .copied()
            .filter(move |&(start, end)| start < to && end > from)
    }

    /// Time between `from` and `to` the agent was stalled.
    pub fn overlap(&self, from: Instant, to: Instant) -> Duration {
        self.overlapping(from, to)
            .map(|(start, end)| end.min(to).saturating_duration_since(start.max(from)))
            .sum()
    }

    /// The longest stall that overlaps `from..to` (zero when none does).
    pub fn longest_overlapping(&self, from: Instant, to: Instant) -> Duration {
        self.overlapping(from, to)
            .map(|(start, end)| end.saturating_duration_since(start))
            .max()
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// Flags each step that overlaps a stall longer than its `freeze_after`;
/// returns whether any was. `at` places a wall-clock time on the monotonic
/// clock the stalls are measured on.
pub fn mark_steps(
    stalls: &StallSet,
    steps: &mut [StepRecord],
    at: impl Fn(SystemTime) -> Instant,
) -> bool {
    let mut any = false;
    for step in steps {
        let sent = at(step.sent_at);
        step.agent_stalled =
            stalls.longest_overlapping(sent, sent + step.duration) > step.freeze_after;
        any |= step.agent_stalled;
    }
    any
}

/// Flags a run that overlaps a stall longer than the smallest
/// `freeze_after` of its steps, from its intended start (a stall that made
/// it start late counts: its duration runs from then) to its end, and each
/// of its steps as [`mark_steps`] does. Returns the run's flag.
pub fn mark_run(
    stalls: &StallSet,
    run: &mut RunRecord,
    at: impl Fn(SystemTime) -> Instant,
) -> bool {
    let any_step = mark_steps(stalls, &mut run.steps, &at);
    let threshold = run.steps.iter().map(|s| s.freeze_after).min();
    let start = at(run.intended_start);
    let span =
        threshold.is_some_and(|t| stalls.longest_overlapping(start, start + run.duration) > t);
    run.agent_stalled = any_step || span;
    run.agent_stalled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{JourneyKind, Outcome, StepPhase};
    use tokio::time::advance;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_wake_is_a_stall_from_when_it_was_due() {
        let mut meter = StallMeter::new(PERIOD, THRESHOLD, Instant::now());
        // Punctual wakes, a few milliseconds late: no stall.
        for _ in 0..5 {
            advance(PERIOD + secs(0.004)).await;
            let wake = meter.woke(Instant::now());
            assert_eq!(wake.lateness, secs(0.004));
            assert_eq!(wake.stall, None);
        }
        // Paused for 10 s while asleep.
        let due = meter.due();
        advance(PERIOD + secs(10.0)).await;
        let wake = meter.woke(Instant::now());
        assert_eq!(
            wake.stall,
            Some(Stall {
                start: due,
                length: secs(10.0)
            })
        );
        assert_eq!(meter.delay(), secs(10.0));
        // The next wake is a period after the late one, not a burst.
        assert_eq!(meter.due(), Instant::now() + PERIOD);
        // Just under the threshold is scheduling delay, not a stall.
        advance(PERIOD + THRESHOLD - secs(0.001)).await;
        assert_eq!(meter.woke(Instant::now()).stall, None);
        // The delay gauge forgets the stall after its window.
        for _ in 0..25 {
            advance(PERIOD).await;
            meter.woke(Instant::now());
        }
        assert_eq!(meter.delay(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_is_seen_before_the_monitor_records_it() {
        let due = Instant::now();
        assert_eq!(unconfirmed(due, THRESHOLD, due + secs(0.1)), None);
        assert_eq!(
            unconfirmed(due, THRESHOLD, due + secs(3.0)),
            Some(Stall {
                start: due,
                length: secs(3.0)
            })
        );
    }

    fn stall(start: Instant, from: f64, length: f64) -> Stall {
        Stall {
            start: start + secs(from),
            length: secs(length),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stalls_merge_and_measure_their_overlap() {
        let t0 = Instant::now();
        let mut set = StallSet::new();
        set.add(stall(t0, 10.0, 2.0));
        set.add(stall(t0, 1.0, 1.0));
        // An unconfirmed stall, then the same stall recorded longer.
        set.add(stall(t0, 20.0, 3.0));
        set.add(stall(t0, 20.0, 3.5));
        assert_eq!(set.len(), 3);
        assert_eq!(set.overlap(t0, t0 + secs(30.0)), secs(6.5));
        assert_eq!(set.overlap(t0 + secs(11.0), t0 + secs(21.0)), secs(2.0));
        assert_eq!(
            set.longest_overlapping(t0 + secs(11.0), t0 + secs(21.0)),
            secs(3.5)
        );
        assert_eq!(
            set.longest_overlapping(t0 + secs(3.0), t0 + secs(9.0)),
            Duration::ZERO
        );
        // A stall bridging two merges them into one.
        set.add(stall(t0, 11.0, 10.0));
        assert_eq!(set.len(), 2);
        assert_eq!(
            set.longest_overlapping(t0 + secs(15.0), t0 + secs(15.5)),
            secs(13.5)
        );
        set.prune(t0 + secs(5.0));
        assert_eq!(set.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_set_is_bounded() {
        let t0 = Instant::now();
        let mut set = StallSet::new();
        for i in 0..(SET_KEPT + 10) {
            set.add(stall(t0, i as f64, 0.5));
        }
        assert_eq!(set.len(), SET_KEPT);
        assert_eq!(set.overlap(t0, t0 + secs(10.0)), Duration::ZERO);
    }

    fn step(sent_at: SystemTime, duration: f64, freeze_after: f64) -> StepRecord {
        let (phase, kind) = (StepPhase::Journey, JourneyKind::Interactive);
        StepRecord {
            sent_at,
            duration: secs(duration),
            outcome: Outcome::Ok,
            ..StepRecord::new("ics", "j", "s", phase, kind, secs(freeze_after))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn steps_and_runs_over_a_stall_longer_than_their_freeze_threshold_are_flagged() {
        let (t0, w0) = (Instant::now(), SystemTime::now());
        let at = |t: SystemTime| t0 + t.duration_since(w0).unwrap();
        let mut stalls = StallSet::new();
        stalls.add(stall(t0, 10.0, 3.0));
        stalls.add(stall(t0, 30.0, 0.5));
        let wall = |s: f64| w0 + secs(s);
        let mut steps = [
            // Across the 3 s stall, freeze_after 2 s: flagged.
            step(wall(9.0), 5.0, 2.0),
            // The same stall against freeze_after 5 s: not.
            step(wall(9.0), 5.0, 5.0),
            // Before it: not.
            step(wall(8.0), 1.0, 2.0),
            // A short stall, longer than a shorter threshold: flagged.
            step(wall(29.9), 1.0, 0.4),
        ];
        assert!(mark_steps(&stalls, &mut steps, at));
        let flags: Vec<bool> = steps.iter().map(|s| s.agent_stalled).collect();
        assert_eq!(flags, [true, false, false, true]);

        // A run whose steps missed the stall, but which started late because of it.
        let mut run = RunRecord {
            target: "ics".into(),
            journey: "j".into(),
            kind: JourneyKind::Interactive,
            intended_start: wall(10.5),
            actual_start: wall(13.0),
            duration: secs(3.0),
            outcome: Outcome::Ok,
            failed_step: None,
            steps: vec![step(wall(13.0), 0.5, 2.0)],
            sessions: Vec::new(),
            agent_stalled: false,
        };
        assert!(mark_run(&stalls, &mut run, at));
        assert!(!run.steps[0].agent_stalled);
        // The same run with a higher threshold is counted.
        run.steps[0].freeze_after = secs(4.0);
        assert!(!mark_run(&stalls, &mut run, at));
        // A run with no steps is never flagged by its span.
        run.steps.clear();
        assert!(!mark_run(&stalls, &mut run, at));
    }
}
