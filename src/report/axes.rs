//! Chart axes whose ticks are chosen by casewatch, not by plotters: time
//! ticks on round times whose labels never repeat ([`time_ticks`]), value
//! ranges fitted to the data ([`fit_range`]), and a logarithmic axis for
//! milliseconds. [`Axis`] is a plotters coordinate, so the charts draw on
//! it as on any other.

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};

/// An axis whose ticks and labels are chosen here, not by plotters: the
/// plotting range, and a label at each tick.
#[derive(Clone, Debug)]
pub struct Axis {
    pub(super) from: f64,
    pub(super) to: f64,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    pub(super) fn new(from: f64, to: f64, ticks: Vec<(f64, String)>) -> Axis {
        Axis { from, to, ticks }
    }
}

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.to - self.from;
        let share = if span > 0.0 {
            (value - self.from) / span
        } else {
            0.5
        };
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            return Vec::new();
        }
        self.ticks.iter().map(|t| t.0).collect()
    }

    fn range(&self) -> Range<f64> {
        self.from..self.to
    }
}

impl ValueFormatter<f64> for Axis {
    fn format_ext(&self, value: &f64) -> String {
        let tolerance = (self.to - self.from).abs() * 1e-9;
        self.ticks
            .iter()
            .find(|t| (t.0 - value).abs() <= tolerance)
            .map(|t| t.1.clone())
            .unwrap_or_default()
    }
}

/// Tick spacings a time axis may use, in seconds, with the label format
/// fine enough that two ticks never share a label.
const TIME_STEPS: [(f64, &str); 18] = [
    (1.0, "%H:%M:%S"),
    (2.0, "%H:%M:%S"),
    (5.0, "%H:%M:%S"),
    (10.0, "%H:%M:%S"),
    (15.0, "%H:%M:%S"),
    (30.0, "%H:%M:%S"),
    (60.0, "%H:%M"),
    (120.0, "%H:%M"),
    (300.0, "%H:%M"),
    (900.0, "%H:%M"),
    (1800.0, "%H:%M"),
    (3600.0, "%H:%M"),
    (3.0 * 3600.0, "%d %b %H:%M"),
    (6.0 * 3600.0, "%d %b %H:%M"),
    (12.0 * 3600.0, "%d %b %H:%M"),
    (86_400.0, "%d %b"),
    (2.0 * 86_400.0, "%d %b"),
    (7.0 * 86_400.0, "%d %b"),
];

/// Ticks for a time axis from `from` to `to` (Unix seconds, UTC): the
/// smallest spacing that gives at most `most` ticks, on round times
/// (whole days from midnight UTC, whole hours, ...), each label unique.
/// Spans over a year use 28-day steps from a midnight.
pub fn time_ticks(from: f64, to: f64, most: usize) -> Vec<(f64, String)> {
    let span = (to - from).max(1.0);
    let most = most.max(2) as f64;
    let (step, format) = TIME_STEPS
        .iter()
        .copied()
        .find(|(step, _)| span / step <= most)
        .unwrap_or(((span / most / 86_400.0).ceil() * 86_400.0, "%d %b %Y"));
    // Within a day, labels that cross midnight need the date too.
    let format = if step < 3.0 * 3600.0 && span > 86_400.0 {
        "%d %b %H:%M"
    } else {
        format
    };
    let mut ticks = Vec::new();
    let mut t = (from / step).ceil() * step;
    while t <= to {
        if let Some(dt) = chrono::DateTime::from_timestamp(t.round() as i64, 0) {
            ticks.push((t, dt.format(format).to_string()));
        }
        t += step;
    }
    ticks
}

/// A round step near `span / 5`: 1, 2 or 5 times a power of ten.
fn nice_step(span: f64) -> f64 {
    let raw = (span / 5.0).max(f64::MIN_POSITIVE);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * power)
}

/// A value axis that fits `values` (and `include`, such as a target line):
/// padded by a tenth of their spread, rounded out to a round step, and
/// kept within `bounds` (0 to 100 for a percentage). Returns the range and
/// its step.
pub fn fit_range(values: &[f64], include: &[f64], bounds: (f64, f64)) -> (f64, f64, f64) {
    let all = values
        .iter()
        .chain(include)
        .copied()
        .filter(|v| v.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (bounds.0, bounds.1, nice_step(bounds.1 - bounds.0));
    }
    let spread = (hi - lo).max(hi.abs() * 0.01).max(1e-9);
    let pad = spread * 0.1;
    let step = nice_step(spread + 2.0 * pad);
    let from = (((lo - pad) / step).floor() * step).max(bounds.0);
    let to = (((hi + pad) / step).ceil() * step).min(bounds.1);
    (from, to.max(from + step), step)
}

/// Decimal places that show every multiple of `step`.
pub(super) fn digits(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    }
}

/// A value axis over `from..to` with a labelled tick every `step`.
pub(super) fn value_axis(from: f64, to: f64, step: f64, unit: &str) -> Axis {
    let digits = digits(step);
    let mut ticks = Vec::new();
    let mut i = (from / step).ceil() as i64;
    while (i as f64) * step <= to + step * 1e-9 {
        let v = i as f64 * step;
        ticks.push((v, format!("{v:.digits$}{unit}")));
        i += 1;
    }
    Axis::new(from, to, ticks)
}

/// A logarithmic value axis for milliseconds, drawn on log10 of the
/// values: ticks at 1, 2 and 5 times each power of ten.
pub(super) fn log_ms_axis(lo: f64, hi: f64) -> Axis {
    let from = lo.max(0.1).log10().floor();
    let to = hi.max(lo * 10.0).log10().ceil();
    let mut ticks = Vec::new();
    for power in from as i32..=to as i32 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(power);
            if v.log10() <= to + 1e-9 {
                ticks.push((v.log10(), ms_text(v)));
            }
        }
    }
    Axis::new(from, to, ticks)
}

pub(super) fn ms_text(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", ms / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn time_ticks_never_repeat_a_label_whatever_the_span() {
        let start = 1_795_996_800.0 + 3_600.0 * 7.3;
        for span in [
            30.0,
            90.0,
            600.0,
            3_600.0,
            5.0 * 3_600.0,
            86_400.0,
            1.6 * 86_400.0,
            3.0 * 86_400.0,
            4.0 * 86_400.0,
            9.0 * 86_400.0,
            42.0 * 86_400.0,
            365.0 * 86_400.0,
            3.0 * 365.0 * 86_400.0,
        ] {
            let ticks = time_ticks(start, start + span, 8);
            let labels: BTreeSet<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
            assert_eq!(labels.len(), ticks.len(), "span {span}: {ticks:?}");
            assert!((2..=9).contains(&ticks.len()), "span {span}: {ticks:?}");
            assert!(ticks.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }

    #[test]
    fn six_days_of_ticks_fall_on_midnights_one_day_apart() {
        // 04 Dec 2026 06:00 UTC to 10 Dec 2026 06:00 UTC.
        let from = 1_796_364_000.0;
        let ticks = time_ticks(from, from + 6.0 * 86_400.0, 8);
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(
            labels,
            ["05 Dec", "06 Dec", "07 Dec", "08 Dec", "09 Dec", "10 Dec"]
        );
    }

    #[test]
    fn an_axis_fits_close_values_instead_of_starting_at_zero() {
        let (from, to, step) = fit_range(&[97.2, 97.8], &[], (0.0, 100.0));
        assert!((96.0..=97.2).contains(&from), "{from}");
        assert!((97.8..=99.0).contains(&to), "{to}");
        assert!(step > 0.0 && step <= 0.5, "{step}");
        // A stated target is kept on the axis; a percentage stays at most 100.
        let (from, to, _) = fit_range(&[97.2, 97.8], &[99.0], (0.0, 100.0));
        assert!(from > 90.0 && (99.0..=100.0).contains(&to), "{from} {to}");
        let (_, to, _) = fit_range(&[99.5, 99.99], &[], (0.0, 100.0));
        assert!(to <= 100.0);
    }

    #[test]
    fn an_axis_over_nothing_is_its_bounds() {
        assert_eq!(fit_range(&[], &[], (0.0, 100.0)).0, 0.0);
        let (from, to, _) = fit_range(&[5.0], &[], (0.0, f64::INFINITY));
        assert!(from < 5.0 && to > 5.0);
    }
}
