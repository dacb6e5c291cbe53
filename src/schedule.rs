//! The timetable of one journey: when each run is due, so that a run is
//! timed from its intended start, not from when it got going, and the
//! agent's own delays show as lateness instead of hiding (no coordinated
//! omission).
//!
//! Slots are fixed in advance: slot k is `anchor + k * interval + jitter_k`.
//! A run that overruns its next slots does not queue them up: they are counted
//! as missed and the journey resumes at the first slot still ahead, so a freeze
//! is never followed by a burst of catch-up runs.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::config::Schedule;

pub struct Timetable {
    anchor: Instant,
    interval: Duration,
    jitter: Duration,
    /// Index of the next slot to hand out.
    next_index: u64,
}

/// The next slot to run and the slots skipped to reach it.
#[derive(Debug, PartialEq, Eq)]
pub struct Slot {
    pub intended: Instant,
    pub missed: u64,
    /// For each skipped slot, how long a user arriving then would have waited
    /// for the overrunning run: the samples an open-loop measurement would
    /// have taken and a closed loop omits (coordinated omission).
    pub missed_waits: Vec<Duration>,
}

impl Timetable {
    /// `offset` staggers journeys so they do not all start together.
    pub fn new(schedule: &Schedule, now: Instant, offset: Duration) -> Timetable {
        Timetable {
            anchor: now + offset,
            interval: schedule.interval,
            jitter: schedule.jitter,
            next_index: 0,
        }
    }

    fn base(&self, index: u64) -> Instant {
        let steps = u32::try_from(index).unwrap_or(u32::MAX);
        self.anchor + self.interval * steps
    }

    /// The next slot whose base time is not before `now`, counting the slots
    /// passed over as missed. Call after each run with the time it ended.
    pub fn next_slot(&mut self, now: Instant, rng: &mut impl Rng) -> Slot {
        let mut missed_waits = Vec::new();
        while self.next_index > 0 && self.base(self.next_index) < now {
            missed_waits.push(now - self.base(self.next_index));
            self.next_index += 1;
        }
        let jitter = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            rng.random_range(Duration::ZERO..self.jitter)
        };
        let intended = self.base(self.next_index) + jitter;
        self.next_index += 1;
        Slot {
            intended,
            missed: missed_waits.len() as u64,
            missed_waits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(interval: u64) -> Schedule {
        Schedule {
            interval: Duration::from_secs(interval),
            jitter: Duration::ZERO,
            active_hours: None,
        }
    }

    #[test]
    fn on_time_runs_miss_nothing() {
        let start = Instant::now();
        let mut t = Timetable::new(&schedule(10), start, Duration::ZERO);
        let mut rng = rand::rng();
        assert_eq!(
            t.next_slot(start, &mut rng),
            Slot {
                intended: start,
                missed: 0,
                missed_waits: vec![],
            }
        );
        let after_run = start + Duration::from_secs(2);
        assert_eq!(
            t.next_slot(after_run, &mut rng),
            Slot {
                intended: start + Duration::from_secs(10),
                missed: 0,
                missed_waits: vec![],
            }
        );
    }

    #[test]
    fn an_overrun_counts_missed_slots_without_bunching() {
        let start = Instant::now();
        let mut t = Timetable::new(&schedule(10), start, Duration::ZERO);
        let mut rng = rand::rng();
        t.next_slot(start, &mut rng);
        // The run froze for 35 s: slots at 10, 20 and 30 s passed, and users
        // arriving then would have waited 25, 15 and 5 s for it.
        let slot = t.next_slot(start + Duration::from_secs(35), &mut rng);
        let secs = Duration::from_secs;
        assert_eq!(
            slot,
            Slot {
                intended: start + secs(40),
                missed: 3,
                missed_waits: vec![secs(25), secs(15), secs(5)],
            }
        );
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let start = Instant::now();
        let mut s = schedule(10);
        s.jitter = Duration::from_secs(2);
        let mut t = Timetable::new(&s, start, Duration::ZERO);
        let mut rng = rand::rng();
        for k in 0..50u32 {
            let slot = t.next_slot(start, &mut rng);
            let base = start + Duration::from_secs(10) * k;
            assert!(slot.intended >= base && slot.intended < base + Duration::from_secs(2));
        }
    }
}
