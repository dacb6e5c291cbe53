//! Exports of the journal:
//!
//! - **OpenMetrics** text for `promtool tsdb create-blocks-from openmetrics`,
//!   to backfill a Prometheus that was down. Counters are cumulative from the
//!   start of the export, one sample per minute in which they changed
//!   (stamped at the minute's end, unix seconds); gauges of p95 step latency
//!   per minute come from the stored HdrHistograms. Every family is
//!   contiguous, every series sorted by time with no repeated timestamp, and
//!   the text ends with `# EOF`.
//! - **HdrHistogram interval logs** (`.hlog`), written with the hdrhistogram
//!   crate's interval log writer: one line per (target, journey, step) per
//!   minute, tagged `target/journey/step`, values in microseconds (the `max`
//!   column in milliseconds), readable by HdrHistogram's `HistogramLogProcessor`
//!   and the other standard tools.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;

use crate::journal::read::{JournalReader, ReadError, Window};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("cannot write the histogram log: {0}")]
    Hlog(String),
}

/// Label sets in a fixed order: (name, value) pairs.
type OrderedLabels = Vec<(&'static str, String)>;

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    /// Per series: (timestamp, value) in time order.
    series: BTreeMap<OrderedLabels, BTreeMap<i64, f64>>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            kind,
            help,
            series: BTreeMap::new(),
        }
    }

    /// Counts `n` events at unix time `at`, in the minute ending after it.
    fn count(&mut self, labels: OrderedLabels, at: f64, n: f64) {
        let minute_end = (at.floor() as i64).div_euclid(60) * 60 + 60;
        *self
            .series
            .entry(labels)
            .or_default()
            .entry(minute_end)
            .or_default() += n;
    }

    fn gauge(&mut self, labels: OrderedLabels, at: i64, value: f64) {
        self.series.entry(labels).or_default().insert(at, value);
    }

    fn write(&self, out: &mut String) {
        if self.series.is_empty() {
            return;
        }
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let sample = if self.kind == "counter" {
            format!("{}_total", self.name)
        } else {
            self.name.to_string()
        };
        for (labels, points) in &self.series {
            let label_text: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let mut total = 0.0;
            for (at, value) in points {
                let v = if self.kind == "counter" {
                    total += value;
                    total
                } else {
                    *value
                };
                let _ = writeln!(out, "{sample}{{{}}} {v} {at}", label_text.join(","));
            }
        }
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The journal's series over `window` as OpenMetrics text.
pub fn openmetrics(reader: &JournalReader, window: Window) -> Result<String, ExportError> {
    let families = [
        journey_runs(reader, window)?,
        step_outcomes(reader, window)?,
        freeze_episodes(reader, window)?,
        forced_logouts(reader, window)?,
        missed_slots(reader, window)?,
        step_p95(reader, window)?,
    ];
    let mut out = String::new();
    for family in &families {
        family.write(&mut out);
    }
    out.push_str("# EOF\n");
    Ok(out)
}

fn journey_runs(reader: &JournalReader, window: Window) -> Result<Family, ExportError> {
    let mut runs = Family::new(
        "casewatch_journey_runs",
        "counter",
        "Journey runs by outcome (backfilled from the journal).",
    );
    for run in reader.runs(window)? {
        runs.count(
            vec![
                ("site", run.site.clone()),
                ("target", run.target.clone()),
                ("journey", run.journey.clone()),
                ("outcome", run.outcome.clone()),
            ],
            run.intended_start + run.duration,
            1.0,
        );
    }
    Ok(runs)
}

fn step_outcomes(reader: &JournalReader, window: Window) -> Result<Family, ExportError> {
    let mut step_outcomes = Family::new(
        "casewatch_step_outcomes",
        "counter",
        "Steps by outcome (backfilled from the journal).",
    );
    for step in reader.steps(window)? {
        step_outcomes.count(
            vec![
                ("site", step.site),
                ("target", step.target),
                ("journey", step.journey),
                ("step", step.step),
                ("outcome", step.outcome),
            ],
            step.sent_at + step.duration,
            1.0,
        );
    }
    Ok(step_outcomes)
}

fn freeze_episodes(reader: &JournalReader, window: Window) -> Result<Family, ExportError> {
    let mut freezes = Family::new(
        "casewatch_freeze_episodes",
        "counter",
        "Freeze episodes, counted when they began (backfilled from the journal).",
    );
    for f in reader.freezes(window)? {
        freezes.count(vec![("site", f.site), ("target", f.target)], f.started, 1.0);
    }
    Ok(freezes)
}

fn forced_logouts(reader: &JournalReader, window: Window) -> Result<Family, ExportError> {
    let mut logouts = Family::new(
        "casewatch_forced_logouts",
        "counter",
        "Sessions ended by the server (backfilled from the journal).",
    );
    for s in reader.spans(window)?.into_iter().filter(|s| s.dropped) {
        logouts.count(
            vec![
                ("site", s.site),
                ("target", s.target),
                ("cause", s.end_cause.unwrap_or_else(|| "unknown".into())),
            ],
            s.login_at + s.age_to,
            1.0,
        );
    }
    Ok(logouts)
}

fn missed_slots(reader: &JournalReader, window: Window) -> Result<Family, ExportError> {
    let mut missed = Family::new(
        "casewatch_schedule_missed",
        "counter",
        "Timetable slots missed (backfilled from the journal).",
    );
    for m in reader.missed(window)? {
        missed.count(
            vec![
                ("site", m.site),
                ("target", m.target),
                ("journey", m.journey),
            ],
            m.at,
            m.count as f64,
        );
    }
    Ok(missed)
}

fn step_p95(reader: &JournalReader, window: Window) -> Result<Family, ExportError> {
    let mut p95 = Family::new(
        "casewatch_journal_step_duration_p95_seconds",
        "gauge",
        "p95 step duration per minute, from the journal's HdrHistograms.",
    );
    // Merge rows of the same step and interval (late steps make extra rows).
    let mut merged: BTreeMap<(OrderedLabels, i64), hdrhistogram::Histogram<u64>> = BTreeMap::new();
    for h in reader.histograms(window)? {
        let labels = vec![
            ("site", h.site),
            ("target", h.target),
            ("journey", h.journey),
            ("step", h.step),
        ];
        let at = (h.interval_start + h.interval_secs).round() as i64;
        let _ = merged
            .entry((labels, at))
            .or_insert_with(crate::recorder::new_histogram)
            .add(&h.histogram);
    }
    for ((labels, at), h) in merged {
        p95.gauge(labels, at, h.value_at_quantile(0.95) as f64 / 1e6);
    }
    Ok(p95)
}

/// The journal's histograms over `window` as an HdrHistogram interval log.
pub fn hlog(reader: &JournalReader, window: Window) -> Result<Vec<u8>, ExportError> {
    let rows = reader.histograms(window)?;
    let base = rows.first().map_or(0.0, |r| r.interval_start).max(0.0);
    let base_time = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(base);
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut writer = IntervalLogWriterBuilder::new()
            .add_comment("casewatch step durations, per minute; values in microseconds")
            .add_comment("tag = target/journey/step")
            .with_start_time(base_time)
            .with_base_time(base_time)
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut out, &mut serializer)
            .map_err(|e| ExportError::Hlog(e.to_string()))?;
        for row in &rows {
            let tag_text = format!("{}/{}/{}", row.target, row.journey, row.step)
                .replace([',', ' ', '\r', '\n'], "_");
            writer
                .write_histogram(
                    &row.histogram,
                    Duration::from_secs_f64((row.interval_start - base).max(0.0)),
                    Duration::from_secs_f64(row.interval_secs.max(0.0)),
                    Tag::new(&tag_text),
                )
                .map_err(|e| ExportError::Hlog(format!("{e:?}")))?;
        }
    }
    Ok(out)
}

/// The export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Openmetrics,
    Hlog,
}
