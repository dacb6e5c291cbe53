//! Freeze episodes per target: what people mean by "a freeze", as against
//! the many requests one freeze stalls.
//!
//! An episode is one continuous stretch during which a target does not answer.
//! It opens when a request passes its `freeze_after` with no answer from the
//! target since that request was sent, backdated to the send of the earliest
//! such request; it closes when the target answers again. Requests sent before
//! the target's last answer cannot open an episode: the target was answering
//! after they left, so their slowness is theirs, not a freeze.
//!
//! The agent's own stalls are an input too ([`FreezeDetector::agent_stalled`]):
//! a request's wait leaves out the time the agent itself could not run, so
//! an episode opens only on silence the agent was awake to see. A request in
//! flight while the agent's process was paused, or its host swapping, looks
//! as slow as one the target froze on, however quickly the target answered.
//!
//! Pure: it is fed events and the current time and returns what changed.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use super::stall::{Stall, StallSet};

/// Stalls are kept this long after they end (and longer while a request
/// or an episode they overlap is still open).
pub const STALLS_KEPT_FOR: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug, PartialEq)]
pub enum FreezeChange {
    Started {
        target: String,
        started: Instant,
    },
    Ended {
        target: String,
        started: Instant,
        ended: Instant,
        /// True when the episode was still open at agent stop, so its length
        /// is only a lower bound.
        censored: bool,
        /// Time within the episode the agent itself was stalled.
        agent_stalled: Duration,
    },
}

#[derive(Debug, Default)]
struct TargetState {
    /// In-flight requests: id -> (sent, freeze_after).
    inflight: HashMap<u64, (Instant, Duration)>,
    last_answer: Option<Instant>,
    open_since: Option<Instant>,
}

impl TargetState {
    /// Requests sent after the last answer: the ones the silence has caught.
    fn caught(&self) -> impl Iterator<Item = &(Instant, Duration)> {
        let last = self.last_answer;
        self.inflight
            .values()
            .filter(move |(sent, _)| last.is_none_or(|a| *sent >= a))
    }
}

#[derive(Debug, Default)]
pub struct FreezeDetector {
    targets: BTreeMap<String, TargetState>,
    stalls: StallSet,
}

impl FreezeDetector {
    pub fn new() -> FreezeDetector {
        FreezeDetector::default()
    }

    pub fn sent(&mut self, target: &str, id: u64, at: Instant, freeze_after: Duration) {
        self.state(target).inflight.insert(id, (at, freeze_after));
    }

    pub fn ended(&mut self, target: &str, id: u64) {
        self.state(target).inflight.remove(&id);
    }

    /// The agent itself could not run during `stall`: silence then is not
    /// the target's. The same stall may be given again, longer, as it is
    /// learned better (first seen under way, then recorded).
    pub fn agent_stalled(&mut self, stall: Stall) {
        self.stalls.add(stall);
    }

    /// The agent's stalls the detector knows of.
    pub fn stalls(&self) -> &StallSet {
        &self.stalls
    }

    /// The target answered at `at`: closes an open episode.
    pub fn answered(&mut self, target: &str, at: Instant) -> Option<FreezeChange> {
        let state = self.state(target);
        state.last_answer = Some(state.last_answer.map_or(at, |a| a.max(at)));
        let started = state.open_since.take()?;
        let ended = at.max(started);
        Some(FreezeChange::Ended {
            target: target.to_string(),
            started,
            ended,
            censored: false,
            agent_stalled: self.stalls.overlap(started, ended),
        })
    }

    /// Opens episodes whose first caught request has waited past
    /// `freeze_after`, not counting the time the agent was stalled.
    pub fn tick(&mut self, now: Instant) -> Vec<FreezeChange> {
        self.prune_stalls(now);
        let mut changes = Vec::new();
        let stalls = &self.stalls;
        for (target, state) in &mut self.targets {
            if state.open_since.is_some() {
                continue;
            }
            let overdue = state.caught().any(|(sent, freeze_after)| {
                let waited = now.saturating_duration_since(*sent);
                waited.saturating_sub(stalls.overlap(*sent, now)) >= *freeze_after
            });
            if overdue {
                let started = state.caught().map(|(sent, _)| *sent).min().unwrap_or(now);
                state.open_since = Some(started);
                changes.push(FreezeChange::Started {
                    target: target.clone(),
                    started,
                });
            }
        }
        changes
    }

    /// Whether an episode is open on `target`.
    pub fn in_progress(&self, target: &str) -> bool {
        self.targets
            .get(target)
            .is_some_and(|s| s.open_since.is_some())
    }

    /// Age of the oldest request in flight on `target`.
    pub fn oldest_inflight(&self, target: &str, now: Instant) -> Duration {
        self.targets
            .get(target)
            .and_then(|s| s.inflight.values().map(|(sent, _)| *sent).min())
            .map(|sent| now.saturating_duration_since(sent))
            .unwrap_or_default()
    }

    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.targets.keys().map(String::as_str)
    }

    /// Closes every open episode as censored (the agent is stopping).
    pub fn finish(&mut self, now: Instant) -> Vec<FreezeChange> {
        let stalls = &self.stalls;
        self.targets
            .iter_mut()
            .filter_map(|(target, state)| {
                let started = state.open_since.take()?;
                Some(FreezeChange::Ended {
                    target: target.clone(),
                    started,
                    ended: now,
                    censored: true,
                    agent_stalled: stalls.overlap(started, now),
                })
            })
            .collect()
    }

    /// Forgets stalls older than [`STALLS_KEPT_FOR`], unless a request in
    /// flight or an open episode began before them.
    fn prune_stalls(&mut self, now: Instant) {
        let oldest_open = self
            .targets
            .values()
            .flat_map(|s| {
                s.inflight
                    .values()
                    .map(|(sent, _)| *sent)
                    .chain(s.open_since)
            })
            .min();
        let Some(horizon) = now.checked_sub(STALLS_KEPT_FOR) else {
            return;
        };
        self.stalls
            .prune(oldest_open.map_or(horizon, |o| o.min(horizon)));
    }

    fn state(&mut self, target: &str) -> &mut TargetState {
        self.targets.entry(target.to_string()).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    const FREEZE_AFTER: Duration = Duration::from_secs(2);

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[tokio::test(start_paused = true)]
    async fn one_episode_from_first_caught_send_to_next_answer() {
        let mut d = FreezeDetector::new();
        let t0 = Instant::now();
        d.answered("ics", t0);
        advance(secs(0.2)).await;
        // The target stops answering: a heartbeat and a journey step hang.
        let first = Instant::now();
        d.sent("ics", 1, first, FREEZE_AFTER);
        advance(secs(0.5)).await;
        d.sent("ics", 2, Instant::now(), FREEZE_AFTER);
        advance(secs(1.0)).await;
        assert_eq!(d.tick(Instant::now()), vec![]);
        advance(secs(0.6)).await;
        assert_eq!(
            d.tick(Instant::now()),
            vec![FreezeChange::Started {
                target: "ics".into(),
                started: first
            }]
        );
        assert!(d.in_progress("ics"));
        assert_eq!(d.oldest_inflight("ics", Instant::now()), secs(2.1));
        // Still frozen: no second episode however long it lasts.
        advance(secs(3.0)).await;
        assert_eq!(d.tick(Instant::now()), vec![]);
        // Both requests are answered when the freeze ends.
        let end = Instant::now();
        let closed = d.answered("ics", end);
        assert_eq!(
            closed,
            Some(FreezeChange::Ended {
                target: "ics".into(),
                started: first,
                ended: end,
                censored: false,
                agent_stalled: Duration::ZERO
            })
        );
        assert_eq!(d.answered("ics", end), None);
        d.ended("ics", 1);
        // Request 2 is still being read after the answer: it cannot reopen.
        advance(secs(5.0)).await;
        assert_eq!(d.tick(Instant::now()), vec![]);
        d.ended("ics", 2);
        assert!(!d.in_progress("ics"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_request_while_the_target_answers_others_is_no_freeze() {
        let mut d = FreezeDetector::new();
        d.sent("ics", 1, Instant::now(), FREEZE_AFTER);
        advance(secs(0.5)).await;
        // A heartbeat sent after request 1 is answered promptly.
        d.sent("ics", 2, Instant::now(), FREEZE_AFTER);
        d.answered("ics", Instant::now());
        d.ended("ics", 2);
        advance(secs(5.0)).await;
        assert_eq!(d.tick(Instant::now()), vec![]);
    }

    #[tokio::test(start_paused = true)]
    async fn targets_are_independent_and_stop_censors_open_episodes() {
        let mut d = FreezeDetector::new();
        let sent = Instant::now();
        d.sent("ics", 1, sent, FREEZE_AFTER);
        d.sent("css", 2, sent, FREEZE_AFTER);
        d.answered("css", sent + secs(0.1));
        advance(secs(3.0)).await;
        let changes = d.tick(Instant::now());
        assert_eq!(
            changes,
            vec![FreezeChange::Started {
                target: "ics".into(),
                started: sent
            }]
        );
        assert!(!d.in_progress("css"));
        let now = Instant::now();
        assert_eq!(
            d.finish(now),
            vec![FreezeChange::Ended {
                target: "ics".into(),
                started: sent,
                ended: now,
                censored: true,
                agent_stalled: Duration::ZERO
            }]
        );
    }
    fn stall(start: Instant, length: f64) -> Stall {
        Stall {
            start,
            length: secs(length),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_agent_is_no_freeze_of_the_target() {
        let mut d = FreezeDetector::new();
        d.answered("ics", Instant::now());
        d.sent("ics", 1, Instant::now(), FREEZE_AFTER);
        advance(secs(0.1)).await;
        // The agent is paused for 10 s with the request in flight.
        let paused = Instant::now();
        advance(secs(10.0)).await;
        // Seen first under way (the monitor has not run yet), then recorded.
        d.agent_stalled(stall(paused, 10.0));
        assert_eq!(d.tick(Instant::now()), vec![]);
        d.agent_stalled(stall(paused, 10.05));
        advance(secs(0.05)).await;
        assert_eq!(d.tick(Instant::now()), vec![]);
        // The answer had come during the pause and is read now.
        assert_eq!(d.answered("ics", Instant::now()), None);
        d.ended("ics", 1);
        assert!(!d.in_progress("ics"));
    }

    #[tokio::test(start_paused = true)]
    async fn silence_the_agent_was_awake_to_see_is_still_a_freeze() {
        let mut d = FreezeDetector::new();
        d.answered("ics", Instant::now());
        let sent = Instant::now();
        d.sent("ics", 1, sent, FREEZE_AFTER);
        advance(secs(1.0)).await;
        // A 3 s stall, then the target stays silent.
        d.agent_stalled(stall(Instant::now(), 3.0));
        advance(secs(3.0)).await;
        // 4 s since the send, only 1 s of it awake.
        assert_eq!(d.tick(Instant::now()), vec![]);
        advance(secs(0.9)).await;
        assert_eq!(d.tick(Instant::now()), vec![]);
        advance(secs(0.1)).await;
        // 2 s awake: the episode opens, backdated to the send.
        assert_eq!(
            d.tick(Instant::now()),
            vec![FreezeChange::Started {
                target: "ics".into(),
                started: sent
            }]
        );
        advance(secs(5.0)).await;
        let end = Instant::now();
        // Its length counts the stall, and says how much of it that was.
        assert_eq!(
            d.answered("ics", end),
            Some(FreezeChange::Ended {
                target: "ics".into(),
                started: sent,
                ended: end,
                censored: false,
                agent_stalled: secs(3.0)
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn old_stalls_are_forgotten_unless_a_request_is_still_waiting() {
        let mut d = FreezeDetector::new();
        advance(STALLS_KEPT_FOR * 2).await;
        d.sent("ics", 1, Instant::now(), Duration::from_secs(7200));
        d.agent_stalled(stall(Instant::now(), 1.0));
        advance(STALLS_KEPT_FOR + secs(10.0)).await;
        d.tick(Instant::now());
        assert_eq!(d.stalls().len(), 1);
        d.ended("ics", 1);
        d.tick(Instant::now());
        assert!(d.stalls().is_empty());
    }
}
