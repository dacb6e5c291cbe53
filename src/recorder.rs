//! The recorder: one HdrHistogram per (target, journey, step) per interval
//! (a wall-clock minute by default), the source of truth for exact percentiles.
//!
//! It lives on the journal's writer thread, fed by [`crate::journal::Journal::run`]:
//! each step's duration is recorded in microseconds (three significant figures)
//! into the histogram of the interval its request was *sent* in. Intervals are
//! handed back for storage once they are over (plus a grace period, so that a
//! step that returns late still lands in its own interval); a step that comes
//! back even later makes a second row for the same interval, which readers
//! merge like any other. Histograms are stored in HdrHistogram's V2 + deflate
//! serialization, so any window is an exact merge, never an average of
//! percentiles.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// The largest value a histogram tracks: one hour, in microseconds. Larger
/// values are clamped (a step never lasts that long: it gives up first).
pub const HIGHEST_MICROS: u64 = 3_600_000_000;
/// Significant figures kept: values are exact to 0.1 %.
pub const SIGFIG: u8 = 3;

/// A new empty histogram with the journal's bounds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_MICROS, SIGFIG).expect("histogram bounds are valid")
}

thread_local! {
    static CLASSES: Histogram<u64> = new_histogram();
}

/// The HdrHistogram class of `micros`: the lowest value equivalent to it at
/// three significant figures. The ledger keeps latency samples as classes,
/// and session lifetimes (in milliseconds) too, as the status page does.
pub fn class_of(micros: u64) -> u32 {
    CLASSES.with(|h| h.lowest_equivalent(micros.clamp(1, HIGHEST_MICROS)) as u32)
}

/// The value HdrHistogram reports for a class (its highest equivalent),
/// in microseconds.
pub fn class_value(class: u32) -> u64 {
    CLASSES.with(|h| h.highest_equivalent(u64::from(class)))
}

/// A step duration as the histogram stores it: whole microseconds, at least 1.
pub fn to_micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, HIGHEST_MICROS)
}

/// One (target, journey, step): what an interval histogram is kept under.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HistogramKey {
    pub target: String,
    pub journey: String,
    pub step: String,
}

/// A finished interval's histogram for one step.
#[derive(Clone, Debug)]
pub struct IntervalHistogram {
    pub key: HistogramKey,
    /// Unix seconds at the start of the interval.
    pub start: i64,
    /// The interval's length in seconds.
    pub length: i64,
    pub histogram: Histogram<u64>,
}

pub struct Recorder {
    interval: i64,
    grace: i64,
    open: BTreeMap<(i64, HistogramKey), Histogram<u64>>,
}

impl Recorder {
    /// `interval` is rounded to whole seconds (at least one).
    pub fn new(interval: Duration, grace: Duration) -> Recorder {
        Recorder {
            interval: (interval.as_secs() as i64).max(1),
            grace: grace.as_secs() as i64,
            open: BTreeMap::new(),
        }
    }

    pub fn interval_secs(&self) -> i64 {
        self.interval
    }

    /// Records one step sent at `sent_at` (unix seconds) that took `duration`.
    pub fn record(&mut self, key: HistogramKey, sent_at: f64, duration: Duration) {
        let start = (sent_at.floor() as i64).div_euclid(self.interval) * self.interval;
        let histogram = self.open.entry((start, key)).or_insert_with(new_histogram);
        histogram.saturating_record(to_micros(duration));
    }

    /// Hands back every interval that ended more than the grace period
    /// before `now` (unix seconds).
    pub fn rotate(&mut self, now: f64) -> Vec<IntervalHistogram> {
        let cutoff = now.floor() as i64 - self.grace - self.interval;
        let keep = self.open.split_off(&(cutoff + 1, min_key()));
        let done = std::mem::replace(&mut self.open, keep);
        self.finished(done)
    }

    /// Hands back every interval, finished or not (at shutdown).
    pub fn drain(&mut self) -> Vec<IntervalHistogram> {
        let done = std::mem::take(&mut self.open);
        self.finished(done)
    }

    fn finished(
        &self,
        done: BTreeMap<(i64, HistogramKey), Histogram<u64>>,
    ) -> Vec<IntervalHistogram> {
        done.into_iter()
            .map(|((start, key), histogram)| IntervalHistogram {
                key,
                start,
                length: self.interval,
                histogram,
            })
            .collect()
    }
}

fn min_key() -> HistogramKey {
    HistogramKey {
        target: String::new(),
        journey: String::new(),
        step: String::new(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HistogramCodecError {
    #[error("cannot serialize histogram: {0:?}")]
    Serialize(hdrhistogram::serialization::V2DeflateSerializeError),
    #[error("cannot deserialize histogram: {0:?}")]
    Deserialize(hdrhistogram::serialization::DeserializeError),
}

/// The V2 + deflate bytes of a histogram.
pub fn encode(histogram: &Histogram<u64>) -> Result<Vec<u8>, HistogramCodecError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(histogram, &mut bytes)
        .map_err(HistogramCodecError::Serialize)?;
    Ok(bytes)
}

/// A histogram from its V2 (deflated or not) bytes.
pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>, HistogramCodecError> {
    let mut reader = bytes;
    Deserializer::new()
        .deserialize(&mut reader)
        .map_err(HistogramCodecError::Deserialize)
}

/// Merges histograms into one with the journal's bounds.
pub fn merge<'a>(histograms: impl IntoIterator<Item = &'a Histogram<u64>>) -> Histogram<u64> {
    let mut merged = new_histogram();
    for h in histograms {
        // Same bounds everywhere, so adding cannot fail; saturate if it did.
        if merged.add(h).is_err() {
            for v in h.iter_recorded() {
                merged.saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn key(step: &str) -> HistogramKey {
        HistogramKey {
            target: "ics".into(),
            journey: "case_note".into(),
            step: step.into(),
        }
    }

    /// The exact percentile of raw samples: the smallest value with at least
    /// `q` of the samples at or below it (HdrHistogram's definition).
    fn raw_percentile(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    #[test]
    fn merged_intervals_match_raw_samples_within_precision() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut recorder = Recorder::new(Duration::from_secs(60), Duration::ZERO);
        let mut raw = Vec::new();
        let t0 = 1_780_000_000.0;
        for i in 0..20_000 {
            // A long-tailed mix: mostly 50-300 ms, some multi-second freezes.
            let micros: u64 = if rng.random_bool(0.02) {
                rng.random_range(2_000_000..30_000_000)
            } else {
                rng.random_range(50_000..300_000)
            };
            let sent_at = t0 + i as f64 * 0.9; // 300 minutes of intervals
            recorder.record(key("search"), sent_at, Duration::from_micros(micros));
            raw.push(micros);
        }
        let intervals = recorder.drain();
        assert!(intervals.len() > 250, "{} intervals", intervals.len());
        // Through the journal's storage form and back.
        let decoded: Vec<Histogram<u64>> = intervals
            .iter()
            .map(|i| decode(&encode(&i.histogram).unwrap()).unwrap())
            .collect();
        let merged = merge(&decoded);
        raw.sort_unstable();
        assert_eq!(merged.len(), raw.len() as u64);
        for q in [0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let exact = raw_percentile(&raw, q) as f64;
            let merged_value = merged.value_at_quantile(q) as f64;
            let relative = (merged_value - exact).abs() / exact;
            assert!(
                relative <= 0.001,
                "q={q}: merged {merged_value} vs raw {exact} ({relative})"
            );
        }
        assert_eq!(
            merged.max(),
            merged.highest_equivalent(*raw.last().unwrap())
        );
    }

    #[test]
    fn rotation_hands_back_only_finished_intervals() {
        let mut recorder = Recorder::new(Duration::from_secs(60), Duration::from_secs(10));
        recorder.record(key("a"), 120.5, Duration::from_millis(5));
        recorder.record(key("a"), 185.0, Duration::from_millis(5));
        assert!(recorder.rotate(185.0).is_empty());
        let done = recorder.rotate(190.0);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].start, 120);
        assert_eq!(recorder.drain().len(), 1);
    }
}
