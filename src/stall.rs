//! The agent's stall monitor: a plain thread, outside the async runtime,
//! that asks to wake every [`PERIOD`] and measures how late it wakes. A
//! process paused by SIGSTOP, a paused VM, a host swapping or starved of
//! CPU shows as a late wake: a stall. The arithmetic is
//! [`crate::detect::stall`]'s; this module sleeps, wakes and tells.
//!
//! Outside the runtime, so it measures whether the process can run at all,
//! whatever the runtime's tasks are doing, and keeps measuring when they
//! are busy.
//!
//! Each stall is logged and counted in the metrics by the monitor itself as
//! it is measured (one event, so the log and the metric never disagree),
//! and kept in a bounded list that the observer reads through a
//! [`StallWatch`] and takes to the freeze detector, the journal and the
//! status page. Whoever runs before the monitor after a stall (the
//! observer, right after a SIGCONT) sees it already, as
//! [`StallWatch::unconfirmed`]: a request read then is never taken for a
//! frozen one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus::{Counter, Gauge, Histogram, HistogramOpts, Opts, Registry};
use tokio::time::Instant;

use crate::detect::stall::{unconfirmed, Stall, StallMeter};
pub use crate::detect::stall::{PERIOD, THRESHOLD};

/// Recorded stalls the monitor keeps for the observer, newest kept.
pub const RECENT_KEPT: usize = 256;

/// Buckets of `casewatch_agent_stall_duration_seconds`: from the threshold
/// to a VM paused for half an hour.
const STALL_BUCKETS: [f64; 12] = [
    0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// Stalls from this long are logged as warnings; shorter ones at debug, so
/// an overloaded host does not flood the log.
const WARN_FROM: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StallError {
    #[error("cannot register the stall monitor's metrics")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot start the stall monitor's thread")]
    Thread(#[source] std::io::Error),
}

/// Where the monitor's time comes from: the system's, or a test's.
pub trait StallClock: Send + 'static {
    fn now(&self) -> Instant;
    fn sleep_until(&self, deadline: Instant);
}

/// The monotonic clock, read without the async runtime.
pub struct SystemClock;

impl StallClock for SystemClock {
    fn now(&self) -> Instant {
        Instant::from_std(std::time::Instant::now())
    }

    fn sleep_until(&self, deadline: Instant) {
        std::thread::sleep(deadline.saturating_duration_since(self.now()));
    }
}

struct StallMetrics {
    seconds: Counter,
    lengths: Histogram,
    delay: Gauge,
}

impl StallMetrics {
    fn register(registry: &Registry) -> Result<StallMetrics, prometheus::Error> {
        let seconds = Counter::with_opts(Opts::new(
            "casewatch_agent_stall_seconds_total",
            "Time the agent itself could not run (its process paused, its host swapping or starved of CPU), summed over stalls of at least 0.25 s.",
        ))?;
        let lengths = Histogram::with_opts(
            HistogramOpts::new(
                "casewatch_agent_stall_duration_seconds",
                "Length of each stall of the agent itself: how late its monitor, asking to wake every 50 ms, woke (0.25 s or more).",
            )
            .buckets(STALL_BUCKETS.to_vec()),
        )?;
        let delay = Gauge::with_opts(Opts::new(
            "casewatch_agent_scheduling_delay_seconds",
            "The agent's current scheduling delay: the latest its monitor woke in the last second.",
        ))?;
        registry.register(Box::new(seconds.clone()))?;
        registry.register(Box::new(lengths.clone()))?;
        registry.register(Box::new(delay.clone()))?;
        Ok(StallMetrics {
            seconds,
            lengths,
            delay,
        })
    }
}

#[derive(Default)]
struct StallLog {
    /// Stalls recorded since start.
    recorded: u64,
    /// The latest of them, at most [`RECENT_KEPT`].
    recent: VecDeque<Stall>,
}

/// What the monitor thread and its watchers share.
struct MonitorShared {
    /// Instants are kept as nanoseconds from here, so they can be atomic.
    origin: Instant,
    /// When the monitor is due to wake next.
    due: AtomicU64,
    /// The monitor is running its loop: while it is not, nothing is known
    /// of stalls, and none is assumed.
    measuring: AtomicBool,
    stop: AtomicBool,
    log: Mutex<StallLog>,
    metrics: StallMetrics,
}

impl MonitorShared {
    fn new(registry: &Registry, origin: Instant) -> Result<MonitorShared, prometheus::Error> {
        Ok(MonitorShared {
            origin,
            due: AtomicU64::new(0),
            measuring: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            log: Mutex::new(StallLog::default()),
            metrics: StallMetrics::register(registry)?,
        })
    }

    fn set_due(&self, due: Instant) {
        let nanos = due.saturating_duration_since(self.origin).as_nanos();
        self.due
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Release);
    }

    fn due(&self) -> Instant {
        self.origin + Duration::from_nanos(self.due.load(Ordering::Acquire))
    }

    fn log(&self) -> std::sync::MutexGuard<'_, StallLog> {
        match self.log.lock() {
            Ok(log) => log,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// One stall, measured: logged, counted and kept, together.
    fn record(&self, stall: Stall) {
        let length = stall.length.as_secs_f64();
        if stall.length >= WARN_FROM {
            tracing::warn!(
                length_s = length,
                "the agent stalled: it could not run (its process paused, its host swapping or starved of CPU); no freeze is taken from the time it lost"
            );
        } else {
            tracing::debug!(length_s = length, "the agent stalled");
        }
        self.metrics.seconds.inc_by(length);
        self.metrics.lengths.observe(length);
        let mut log = self.log();
        log.recorded += 1;
        if log.recent.len() == RECENT_KEPT {
            log.recent.pop_front();
        }
        log.recent.push_back(stall);
    }
}

/// Clears [`MonitorShared::measuring`] however the monitor's loop ends.
struct Measuring(Arc<MonitorShared>);

impl Drop for Measuring {
    fn drop(&mut self) {
        self.0.measuring.store(false, Ordering::Release);
    }
}

/// The monitor's loop: sleep until due, wake, measure; until stopped.
fn measure(clock: impl StallClock, mut meter: StallMeter, shared: Arc<MonitorShared>) {
    let _measuring = Measuring(shared.clone());
    while !shared.stop.load(Ordering::Acquire) {
        clock.sleep_until(meter.due());
        let wake = meter.woke(clock.now());
        shared.set_due(meter.due());
        shared.metrics.delay.set(meter.delay().as_secs_f64());
        if let Some(stall) = wake.stall {
            shared.record(stall);
        }
    }
}

/// The running monitor. Stopped by [`StallMonitor::stop`], or when dropped.
pub struct StallMonitor {
    shared: Arc<MonitorShared>,
    thread: Option<JoinHandle<()>>,
}

impl StallMonitor {
    /// Registers the monitor's metrics and starts its thread.
    pub fn start(registry: &Registry) -> Result<StallMonitor, StallError> {
        StallMonitor::start_with(registry, SystemClock)
    }

    pub fn start_with(
        registry: &Registry,
        clock: impl StallClock,
    ) -> Result<StallMonitor, StallError> {
        let now = clock.now();
        let shared = Arc::new(MonitorShared::new(registry, now)?);
        let meter = StallMeter::new(PERIOD, THRESHOLD, now);
        shared.set_due(meter.due());
        // Measuring from now: a thread slow to start is a stall too.
        shared.measuring.store(true, Ordering::Release);
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("casewatch-stall".into())
            .spawn(move || measure(clock, meter, thread_shared))
            .map_err(|e| {
                shared.measuring.store(false, Ordering::Release);
                StallError::Thread(e)
            })?;
        Ok(StallMonitor {
            shared,
            thread: Some(thread),
        })
    }

    pub fn watch(&self) -> StallWatch {
        StallWatch {
            shared: self.shared.clone(),
        }
    }

    /// Stops the thread and waits for it (at most a period). Blocks.
    pub fn stop(mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the stall monitor panicked");
            }
        }
    }
}

impl Drop for StallMonitor {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
    }
}

/// A reader of the monitor's stalls.
#[derive(Clone)]
pub struct StallWatch {
    shared: Arc<MonitorShared>,
}

impl StallWatch {
    /// The stalls recorded after the first `*seen`, oldest first; `*seen`
    /// becomes the count recorded. A reader more than [`RECENT_KEPT`]
    /// behind gets the latest ones only.
    pub fn since(&self, seen: &mut u64) -> Vec<Stall> {
        let log = self.shared.log();
        let new = usize::try_from(log.recorded.saturating_sub(*seen)).unwrap_or(usize::MAX);
        *seen = log.recorded;
        log.recent
            .iter()
            .skip(log.recent.len().saturating_sub(new))
            .copied()
            .collect()
    }

    /// The stall under way at `now` that the monitor has not been able to
    /// record yet, if it is overdue by the threshold or more.
    pub fn unconfirmed(&self, now: Instant) -> Option<Stall> {
        if !self.shared.measuring.load(Ordering::Acquire) {
            return None;
        }
        unconfirmed(self.shared.due(), THRESHOLD, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock that jumps to each deadline, plus the delay the script gives
    /// that wake; the script's end stops the monitor.
    struct FakeClock {
        now: Arc<Mutex<Instant>>,
        delays: Mutex<VecDeque<Duration>>,
        shared: Arc<MonitorShared>,
    }

    impl StallClock for FakeClock {
        fn now(&self) -> Instant {
            *self.now.lock().unwrap()
        }

        fn sleep_until(&self, deadline: Instant) {
            let delay = self.delays.lock().unwrap().pop_front();
            if delay.is_none() {
                self.shared.stop.store(true, Ordering::Release);
            }
            let mut now = self.now.lock().unwrap();
            *now = (*now).max(deadline) + delay.unwrap_or_default();
        }
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn sample(registry: &Registry, name: &str) -> f64 {
        let family = registry
            .gather()
            .into_iter()
            .find(|f| f.name() == name)
            .unwrap();
        let metric = &family.get_metric()[0];
        match name {
            "casewatch_agent_stall_duration_seconds" => {
                metric.get_histogram().get_sample_count() as f64
            }
            "casewatch_agent_scheduling_delay_seconds" => metric.get_gauge().get_value(),
            _ => metric.get_counter().get_value(),
        }
    }

    #[test]
    fn the_monitor_records_late_wakes_as_stalls() {
        let registry = Registry::new();
        let start = Instant::now();
        let shared = Arc::new(MonitorShared::new(&registry, start).unwrap());
        let meter = StallMeter::new(PERIOD, THRESHOLD, start);
        shared.set_due(meter.due());
        shared.measuring.store(true, Ordering::Release);
        let watch = StallWatch {
            shared: shared.clone(),
        };
        // Before the monitor wakes, a reader 3 s later sees the stall under way.
        let stalled = watch
            .unconfirmed(start + Duration::from_secs(3))
            .expect("a stall under way");
        assert_eq!(stalled.start, start + PERIOD);
        // Wakes 2 ms late, then 10 s, 1 ms, 300 ms, 249 ms late, then on time.
        let clock = FakeClock {
            now: Arc::new(Mutex::new(start)),
            delays: Mutex::new(
                [2, 10_000, 1, 300, 249, 0, 0, 0, 0, 0, 0, 0, 0]
                    .map(ms)
                    .into(),
            ),
            shared: shared.clone(),
        };
        measure(clock, meter, shared.clone());
        assert!(!shared.measuring.load(Ordering::Acquire));
        assert_eq!(watch.unconfirmed(start + Duration::from_secs(60)), None);

        let mut seen = 0;
        let stalls = watch.since(&mut seen);
        let lengths: Vec<Duration> = stalls.iter().map(|s| s.length).collect();
        assert_eq!(lengths, [ms(10_000), ms(300)]);
        // The 10 s stall began when the second wake was due.
        assert_eq!(stalls[0].start, start + PERIOD + ms(2) + PERIOD);
        assert_eq!(seen, 2);
        assert_eq!(watch.since(&mut seen), []);
        assert!((sample(&registry, "casewatch_agent_stall_seconds_total") - 10.3).abs() < 1e-9);
        assert_eq!(
            sample(&registry, "casewatch_agent_stall_duration_seconds"),
            2.0
        );
        // The latest wake of the last second (the 10 s one is older): 300 ms.
        assert!((sample(&registry, "casewatch_agent_scheduling_delay_seconds") - 0.3).abs() < 1e-9);
    }

    #[test]
    fn the_kept_stalls_are_bounded_and_a_slow_reader_gets_the_latest() {
        let registry = Registry::new();
        let start = Instant::now();
        let shared = Arc::new(MonitorShared::new(&registry, start).unwrap());
        let watch = StallWatch {
            shared: shared.clone(),
        };
        for i in 0..(RECENT_KEPT as u64 + 10) {
            shared.record(Stall {
                start: start + Duration::from_secs(i),
                length: ms(300),
            });
        }
        let mut seen = 5;
        let stalls = watch.since(&mut seen);
        assert_eq!(stalls.len(), RECENT_KEPT);
        assert_eq!(stalls[0].start, start + Duration::from_secs(10));
        assert_eq!(seen, RECENT_KEPT as u64 + 10);
        // A stopped monitor assumes no stall.
        assert_eq!(watch.unconfirmed(start + Duration::from_secs(3600)), None);
    }

    #[test]
    fn the_monitor_thread_starts_and_stops() {
        let registry = Registry::new();
        let monitor = StallMonitor::start(&registry).unwrap();
        let watch = monitor.watch();
        std::thread::sleep(PERIOD * 3);
        monitor.stop();
        assert_eq!(
            watch.unconfirmed(Instant::now() + Duration::from_secs(60)),
            None
        );
    }
}
