//! Inline SVG charts for the HTML report, drawn with plotters' SVG backend
//! (no JavaScript, no fonts to load, no network). Each function returns a
//! [`Chart`]: the SVG text and a note on its axes for the caption, or `None`
//! when there is nothing to draw or drawing failed (logged; the report then
//! shows its tables alone).
//!
//! What the pictures may say:
//! - colour carries meaning only against a stated threshold
//!   ([`AVAILABILITY_TARGET_PERCENT`], named in the caption); otherwise
//!   marks are one neutral hue, and series colours only tell lines apart;
//! - value axes fit the data ([`super::axes::fit_range`]) and the caption
//!   says where they start and end; bars, whose length is the value, start
//!   at zero;
//! - time axes carry ticks chosen from the span
//!   ([`super::axes::time_ticks`]), so no label repeats;
//! - every chart over time marks each configured change with a dashed
//!   line and its name.

use plotters::prelude::*;

use super::axes::{digits, fit_range, log_ms_axis, ms_text, time_ticks, value_axis, Axis};

use std::collections::BTreeSet;

use super::model::{ForcedLogouts, Freezes, Latency, MonthRow, Sessions, TimeWindow};

const WIDTH: u32 = 960;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The availability the charts hold each task to: a point below it is
/// drawn in the one warning colour, every other point in the neutral hue.
pub const AVAILABILITY_TARGET_PERCENT: f64 = 99.0;

/// Marks with no meaning beyond "here is a value".
const NEUTRAL: RGBColor = RGBColor(70, 98, 128);
/// The same, darker: a censored or mid-task mark (the caption says which).
const NEUTRAL_DARK: RGBColor = RGBColor(22, 36, 52);
/// Below the stated target, and nothing else.
const BELOW_TARGET: RGBColor = RGBColor(196, 78, 0);
/// Change marks.
const CHANGE: RGBColor = RGBColor(90, 90, 90);

/// A drawn chart and what its caption must say about its axes.
#[derive(Clone, Debug)]
pub struct Chart {
    pub svg: String,
    /// "Axis from 96% to 100%.", or empty.
    pub axis_note: String,
}

/// A time axis over the report's window.
fn time_axis(window: &TimeWindow) -> Axis {
    let (x0, x1) = (window.from, window.to.max(window.from + 60.0));
    Axis::new(x0, x1, time_ticks(x0, x1, 8))
}

fn svg(
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend, plotters::coord::Shift>) -> DrawResult,
) -> Option<String> {
    let mut text = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        draw(root)
    };
    match result {
        Ok(()) => Some(text),
        Err(error) => {
            tracing::warn!(%error, "chart not drawn");
            None
        }
    }
}

/// Colours that tell series apart and say nothing else.
fn color(index: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(127, 127, 127),
        RGBColor(148, 103, 189),
        RGBColor(23, 190, 207),
        RGBColor(140, 86, 75),
        RGBColor(188, 189, 34),
        RGBColor(227, 119, 194),
        RGBColor(44, 62, 80),
    ];
    COLORS[index % COLORS.len()]
}

/// A dated change to mark on charts over time.
#[derive(Clone, Debug)]
pub struct ChangeMark {
    pub at: f64,
    pub name: String,
}

/// Dashed vertical lines with the change's name at the top, on any chart
/// whose x axis is time (or months placed on it). Names of changes close
/// together are stacked so they do not overlap.
fn mark_changes<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<Axis, Axis>>,
    changes: &[(f64, &str)],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (x0, x1) = (chart.x_range().start, chart.x_range().end);
    let (y0, y1) = (chart.y_range().start, chart.y_range().end);
    let mut row = 0;
    let mut last = f64::NEG_INFINITY;
    for (at, name) in changes.iter().filter(|(at, _)| (x0..=x1).contains(at)) {
        row = if at - last < (x1 - x0) * 0.25 {
            row + 1
        } else {
            0
        };
        last = *at;
        chart.draw_series(DashedLineSeries::new(
            [(*at, y0), (*at, y1)],
            6,
            4,
            CHANGE.stroke_width(2),
        ))?;
        let y = y1 - (y1 - y0) * (0.02 + 0.06 * f64::from(row % 3));
        chart.draw_series(std::iter::once(Text::new(
            format!(" {name}"),
            (*at, y),
            ("sans-serif", 13).into_font().color(&CHANGE),
        )))?;
    }
    Ok(())
}

/// Whether a y axis over `lo..hi` (positive) should be logarithmic: when
/// the largest value is over thirty times the smallest, a linear axis
/// flattens the small series against zero.
fn wants_log(lo: f64, hi: f64) -> bool {
    lo > 0.0 && hi / lo > 30.0
}

/// p95 latency per step over time, one line per step, each change marked.
/// The y axis fits the values; it is logarithmic when they span more than
/// thirty-fold (reports beside page loads), as the axis note says.
pub fn latency_trend(
    latency: &Latency,
    window: &TimeWindow,
    changes: &[ChangeMark],
) -> Option<Chart> {
    let series: Vec<_> = latency
        .trend
        .iter()
        .filter(|s| !s.points.is_empty())
        .collect();
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    if values.is_empty() {
        return None;
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    let log = wants_log(lo, hi);
    let (y_axis, axis_note) = if log {
        let axis = log_ms_axis(lo, hi);
        let note = format!(
            "Logarithmic axis from {} to {}, so fast and slow steps both show.",
            ms_text(10f64.powf(axis.from)),
            ms_text(10f64.powf(axis.to))
        );
        (axis, note)
    } else {
        let (from, to, step) = fit_range(&values, &[], (0.0, f64::INFINITY));
        let d = digits(step);
        let note = format!("Axis from {from:.d$} ms to {to:.d$} ms.");
        (value_axis(from, to, step, " ms"), note)
    };
    let place = move |v: f64| if log { v.max(1e-3).log10() } else { v };
    let x_axis = time_axis(window);
    let marks = change_marks(changes);
    let height = 420 + 18 * series.len() as u32;
    let svg = svg((WIDTH, height), |root| {
        root.fill(&WHITE)?;
        let (plot, legend) = root.split_vertically(400);
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(x_axis.clone(), y_axis.clone())?;
        chart
            .configure_mesh()
            .y_desc("p95 latency")
            .x_desc("time (UTC)")
            .draw()?;
        for (index, s) in series.iter().enumerate() {
            let c = color(index);
            let points: Vec<(f64, f64)> = s.points.iter().map(|p| (p.0, place(p.1))).collect();
            chart.draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?;
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 2, c.filled())))?;
        }
        mark_changes(&mut chart, &marks)?;
        for (index, s) in series.iter().enumerate() {
            let y = 6 + 18 * index as i32;
            let c = color(index);
            legend.draw(&Rectangle::new([(80, y), (100, y + 10)], c.filled()))?;
            legend.draw(&Text::new(
                s.label.clone(),
                (108, y),
                ("sans-serif", 14).into_font(),
            ))?;
        }
        root.present()?;
        Ok(())
    })?;
    Some(Chart { svg, axis_note })
}

fn change_marks(changes: &[ChangeMark]) -> Vec<(f64, &str)> {
    changes.iter().map(|c| (c.at, c.name.as_str())).collect()
}

/// Freeze episodes as bars on a time line, one row per target.
pub fn freeze_timeline(
    freezes: &Freezes,
    window: &TimeWindow,
    changes: &[ChangeMark],
) -> Option<Chart> {
    let rows: Vec<String> = freezes.targets.iter().map(|t| t.target.clone()).collect();
    let marks: Vec<Mark> = freezes
        .episodes
        .iter()
        .map(|e| Mark {
            row: rows.iter().position(|t| *t == e.target).unwrap_or(0),
            start: e.started,
            end: e.started + e.length_seconds,
            dark: e.censored,
        })
        .collect();
    timeline(
        &rows,
        &marks,
        window,
        changes,
        "time (UTC); darker bars were still frozen when the agent gave up (censored)",
    )
}

/// When each forced logout happened: a bar from the last moment the
/// session was known alive to the moment its loss was seen.
pub fn logout_timeline(
    logouts: &ForcedLogouts,
    window: &TimeWindow,
    changes: &[ChangeMark],
) -> Option<Chart> {
    let rows: BTreeSet<String> = logouts.events.iter().map(|e| e.target.clone()).collect();
    let rows: Vec<String> = rows.into_iter().collect();
    let marks: Vec<Mark> = logouts
        .events
        .iter()
        .map(|e| Mark {
            row: rows.iter().position(|t| *t == e.target).unwrap_or(0),
            start: e.seen_at - (e.seen_age_seconds - e.alive_age_seconds),
            end: e.seen_at,
            dark: e.holder_kind == "journey",
        })
        .collect();
    timeline(
        &rows,
        &marks,
        window,
        changes,
        "time (UTC); each bar spans from last known alive to loss seen; darker bars hit a journey mid-task",
    )
}

/// One bar on a timeline.
struct Mark {
    row: usize,
    start: f64,
    end: f64,
    dark: bool,
}

/// Bars on a time axis, one row per name, each change marked.
fn timeline(
    rows: &[String],
    marks: &[Mark],
    window: &TimeWindow,
    changes: &[ChangeMark],
    x_desc: &str,
) -> Option<Chart> {
    if marks.is_empty() {
        return None;
    }
    let x_axis = time_axis(window);
    let min_width = (x_axis.to - x_axis.from) * 0.002;
    let count = rows.len() as f64;
    let row_ticks = rows
        .iter()
        .enumerate()
        .map(|(i, n)| (i as f64, n.to_uppercase()))
        .collect();
    // Room above the rows for the changes' names.
    let y_axis = Axis::new(-0.5, count - 0.5 + 0.6, row_ticks);
    let changes = change_marks(changes);
    let svg = svg((WIDTH, 150 + 50 * rows.len() as u32), |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x_axis.clone(), y_axis.clone())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(x_desc)
            .draw()?;
        chart.draw_series(marks.iter().map(|m| {
            let row = m.row as f64;
            let end = m.end.max(m.start + min_width);
            let fill = if m.dark { NEUTRAL_DARK } else { NEUTRAL };
            Rectangle::new([(m.start, row - 0.3), (end, row + 0.3)], fill.filled())
        }))?;
        mark_changes(&mut chart, &changes)?;
        root.present()?;
        Ok(())
    })?;
    Some(Chart {
        svg,
        axis_note: String::new(),
    })
}

/// The Kaplan–Meier survival curve with its 95% band.
pub fn survival_curve(sessions: &Sessions) -> Option<Chart> {
    if sessions.sessions == 0 {
        return None;
    }
    let last_age = sessions
        .survival
        .last()
        .map_or(60.0, |p| p.age_seconds)
        .max(sessions.rule.age_seconds)
        .max(60.0);
    let xmax = last_age * 1.1 / 60.0;
    // Step function points, in minutes.
    let mut steps = vec![(0.0, 1.0)];
    let mut low = vec![(0.0, 1.0)];
    let mut high = vec![(0.0, 1.0)];
    let (mut s_prev, mut l_prev, mut h_prev) = (1.0, 1.0, 1.0);
    for p in &sessions.survival {
        let x = p.age_seconds / 60.0;
        steps.extend([(x, s_prev), (x, p.survival)]);
        low.extend([(x, l_prev), (x, p.low)]);
        high.extend([(x, h_prev), (x, p.high)]);
        (s_prev, l_prev, h_prev) = (p.survival, p.low, p.high);
    }
    steps.push((xmax, s_prev));
    low.push((xmax, l_prev));
    high.push((xmax, h_prev));
    let rule = sessions.rule.age_seconds / 60.0;
    let svg = svg((WIDTH, 400), |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..xmax, 0f64..1.05)?;
        chart
            .configure_mesh()
            .x_desc("session age (minutes)")
            .y_desc("share of sessions still logged in")
            .draw()?;
        let band: Vec<(f64, f64)> = high
            .iter()
            .copied()
            .chain(low.iter().rev().copied())
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(
            band,
            RGBColor(31, 119, 180).mix(0.2).filled(),
        )))?;
        chart.draw_series(LineSeries::new(
            steps,
            RGBColor(31, 119, 180).stroke_width(3),
        ))?;
        chart.draw_series(DashedLineSeries::new(
            [(rule, 0.0), (rule, 1.05)],
            6,
            4,
            NEUTRAL_DARK.stroke_width(2),
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            format!(" {} mark", sessions.rule.age_text),
            (rule, 1.02),
            ("sans-serif", 14).into_font().color(&NEUTRAL_DARK),
        )))?;
        root.present()?;
        Ok(())
    })?;
    Some(Chart {
        svg,
        axis_note: "Axis from 0% to 100% of sessions.".into(),
    })
}

/// Forced-logout hazard per age band with 95% interval whiskers.
pub fn hazard_bars(sessions: &Sessions) -> Option<Chart> {
    let bands = &sessions.bands;
    if bands.iter().all(|b| b.exposure_hours <= 0.0) {
        return None;
    }
    // Scale to the estimates, not to the whiskers of bands with almost no
    // exposure (whose upper bounds are huge); clipped whiskers end at the top.
    let top_value = bands
        .iter()
        .filter_map(|b| b.hazard_per_hour.value)
        .fold(0.0, f64::max);
    let top_high = bands
        .iter()
        .filter(|b| b.drops > 0)
        .filter_map(|b| b.hazard_per_hour.high)
        .fold(0.0, f64::max);
    let ymax = if top_value > 0.0 {
        top_high.min(top_value * 4.0).max(top_value) * 1.1
    } else {
        1.0
    };
    let n = bands.len() as f64;
    let labels: Vec<String> = bands.iter().map(|b| b.band.clone()).collect();
    let svg = svg((WIDTH, 380), |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5f64..n - 0.5, 0f64..ymax)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bands.len())
            .x_label_formatter(&|x| category_label(&labels, *x))
            .x_desc("session age band")
            .y_desc("forced logouts per session-hour")
            .draw()?;
        for (i, b) in bands.iter().enumerate() {
            let x = i as f64;
            let (Some(v), Some(l), Some(h)) = (
                b.hazard_per_hour.value,
                b.hazard_per_hour.low,
                b.hazard_per_hour.high,
            ) else {
                continue;
            };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x - 0.3, 0.0), (x + 0.3, v)],
                NEUTRAL.filled(),
            )))?;
            let h = h.min(ymax);
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, l), (x, h)],
                BLACK.stroke_width(2),
            )))?;
            for y in [l, h] {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(x - 0.08, y), (x + 0.08, y)],
                    BLACK.stroke_width(2),
                )))?;
            }
        }
        root.present()?;
        Ok(())
    })?;
    Some(Chart {
        svg,
        axis_note: "Bars start at zero.".into(),
    })
}

/// The label of the category drawn at `at` on a category axis (categories
/// at 0, 1, 2, ...); none between them, where the axis puts its other ticks.
fn category_label(labels: &[String], at: f64) -> String {
    let i = at.round();
    if (at - i).abs() < 0.01 && i >= 0.0 {
        labels.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// Horizontal bars with whiskers, one per labelled estimate (value, low,
/// high), in the one neutral hue. Bars start at zero, as a bar's length is
/// its value.
pub fn estimate_bars(title_x: &str, rows: &[(String, f64, f64, f64)]) -> Option<Chart> {
    if rows.is_empty() {
        return None;
    }
    let xmax = rows
        .iter()
        .map(|r| r.3.max(r.1))
        .filter(|v| v.is_finite())
        .fold(0.001, f64::max)
        * 1.1;
    let n = rows.len() as f64;
    let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let svg = svg((WIDTH, 90 + 44 * rows.len() as u32), |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(220)
            .build_cartesian_2d(0f64..xmax, -0.5f64..n - 0.5)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows.len())
            .y_label_formatter(&|y| category_label(&labels, *y))
            .x_desc(title_x)
            .draw()?;
        for (i, (_, v, l, h)) in rows.iter().enumerate() {
            let y = i as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y - 0.3), (*v, y + 0.3)],
                NEUTRAL.mix(0.8).filled(),
            )))?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(*l, y), (h.min(xmax), y)],
                BLACK.stroke_width(2),
            )))?;
        }
        root.present()?;
        Ok(())
    })?;
    Some(Chart {
        svg,
        axis_note: "Bars start at zero.".into(),
    })
}

/// The colour of a percentage against the stated target.
fn against_target(value: f64) -> RGBColor {
    if value < AVAILABILITY_TARGET_PERCENT {
        BELOW_TARGET
    } else {
        NEUTRAL
    }
}

/// Availability per task as a point with its 95% whisker (value, low,
/// high, in percent), on an axis fitted to the intervals and the target:
/// a point is drawn in the warning colour only when it is below
/// [`AVAILABILITY_TARGET_PERCENT`], whose dashed line is on the chart.
/// Points, not bars: the axis does not start at zero.
pub fn availability_points(rows: &[(String, f64, f64, f64)]) -> Option<Chart> {
    if rows.is_empty() {
        return None;
    }
    let values: Vec<f64> = rows.iter().flat_map(|r| [r.1, r.2, r.3]).collect();
    let (from, to, step) = fit_range(&values, &[AVAILABILITY_TARGET_PERCENT], (0.0, 100.0));
    let x_axis = value_axis(from, to, step, "%");
    let n = rows.len() as f64;
    let names = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (i as f64, r.0.clone()))
        .collect();
    let y_axis = Axis::new(-0.6, n - 0.4, names);
    let svg = svg((WIDTH, 90 + 44 * rows.len() as u32), |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(36)
            .x_label_area_size(36)
            .y_label_area_size(220)
            .build_cartesian_2d(x_axis.clone(), y_axis.clone())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("availability, with 95% interval")
            .draw()?;
        let target = AVAILABILITY_TARGET_PERCENT;
        chart.draw_series(DashedLineSeries::new(
            [(target, -0.6), (target, n - 0.4)],
            6,
            4,
            NEUTRAL_DARK.stroke_width(2),
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            format!(" target {target}%"),
            (target, n - 0.45),
            ("sans-serif", 13).into_font().color(&NEUTRAL_DARK),
        )))?;
        for (i, (_, v, l, h)) in rows.iter().enumerate() {
            let y = i as f64;
            let c = against_target(*v);
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(l.max(from), y), (h.min(to), y)],
                c.stroke_width(2),
            )))?;
            chart.draw_series(std::iter::once(Circle::new((*v, y), 6, c.filled())))?;
        }
        root.present()?;
        Ok(())
    })?;
    Some(Chart {
        svg,
        axis_note: format!(
            "Axis from {from:.d$}% to {to:.d$}%, not from zero.",
            d = digits(step)
        ),
    })
}

/// Where a moment falls on a month-per-slot axis: slot `i` is month `i`,
/// and a moment inside it lies between `i - 0.5` and `i + 0.5`.
fn month_position(months: &[MonthRow], at: f64) -> Option<f64> {
    let i = months.iter().position(|m| m.from <= at && at < m.to)?;
    let m = &months[i];
    Some(i as f64 - 0.5 + (at - m.from) / (m.to - m.from).max(1.0))
}

/// A month's place on the axis, its estimate and its interval (none where
/// the evidence rule gives none).
type MonthPoint = (f64, f64, Option<(f64, f64)>);

/// One month-by-month panel: each month's estimate with its whisker, an
/// axis fitted to the intervals, and the changes marked.
struct MonthPanel<'a> {
    title: &'a str,
    unit: &'a str,
    /// (month index, value, interval): no interval where the evidence
    /// rule gives none.
    points: Vec<MonthPoint>,
    bounds: (f64, f64),
}

/// Availability and interactive p95 per calendar month, each with its 95%
/// interval, the changes marked: the trend `--period month` asks for.
pub fn monthly_trend(months: &[MonthRow], changes: &[ChangeMark]) -> Option<Chart> {
    let pick = |e: &super::stats::Estimate, scale: f64| {
        let interval = e.low.zip(e.high).map(|(l, h)| (l * scale, h * scale));
        Some((e.value? * scale, interval))
    };
    let panel = |title, unit, scale, bounds, get: &dyn Fn(&MonthRow) -> &super::stats::Estimate| {
        MonthPanel {
            title,
            unit,
            points: months
                .iter()
                .enumerate()
                .filter_map(|(i, m)| pick(get(m), scale).map(|(v, w)| (i as f64, v, w)))
                .collect(),
            bounds,
        }
    };
    let panels = [
        panel("availability", "%", 100.0, (0.0, 100.0), &|m| {
            &m.availability
        }),
        panel("p95 interactive", " ms", 1.0, (0.0, f64::INFINITY), &|m| {
            &m.p95_ms
        }),
    ];
    if panels.iter().all(|p| p.points.is_empty()) {
        return None;
    }
    let marks: Vec<(f64, &str)> = changes
        .iter()
        .filter_map(|c| Some((month_position(months, c.at)?, c.name.as_str())))
        .collect();
    let labels: Vec<(f64, String)> = months
        .iter()
        .enumerate()
        .map(|(i, m)| (i as f64, month_label(&m.month)))
        .collect();
    let x_axis = Axis::new(-0.5, months.len() as f64 - 0.5, labels);
    let mut notes = Vec::new();
    let svg = svg((WIDTH, 640), |root| {
        root.fill(&WHITE)?;
        let areas = root.split_evenly((2, 1));
        for (area, p) in areas.iter().zip(&panels) {
            notes.push(month_panel(area, p, &x_axis, &marks)?);
        }
        root.present()?;
        Ok(())
    })?;
    Some(Chart {
        svg,
        axis_note: notes.join(" "),
    })
}

/// `2026-11` as `Nov 2026`.
fn month_label(month: &str) -> String {
    chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map(|d| d.format("%b %Y").to_string())
        .unwrap_or_else(|_| month.to_string())
}

/// Draws one month panel; returns its axis note.
fn month_panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    p: &MonthPanel,
    x_axis: &Axis,
    marks: &[(f64, &str)],
) -> Result<String, Box<dyn std::error::Error>> {
    let values: Vec<f64> = p
        .points
        .iter()
        .flat_map(|q| [q.1, q.2.map_or(q.1, |w| w.0), q.2.map_or(q.1, |w| w.1)])
        .collect();
    let (from, to, step) = fit_range(&values, &[], p.bounds);
    let y_axis = value_axis(from, to, step, p.unit);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(p.title, ("sans-serif", 16))
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(x_axis.clone(), y_axis)?;
    chart.configure_mesh().disable_x_mesh().draw()?;
    for (x, v, interval) in &p.points {
        let Some((l, h)) = interval else {
            // Too little evidence for an interval: a hollow point.
            chart.draw_series(std::iter::once(Circle::new(
                (*x, *v),
                5,
                NEUTRAL.stroke_width(2),
            )))?;
            continue;
        };
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(*x, l.max(from)), (*x, h.min(to))],
            NEUTRAL.stroke_width(2),
        )))?;
        for y in [l.max(from), h.min(to)] {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x - 0.06, y), (x + 0.06, y)],
                NEUTRAL.stroke_width(2),
            )))?;
        }
        chart.draw_series(std::iter::once(Circle::new((*x, *v), 5, NEUTRAL.filled())))?;
    }
    mark_changes(&mut chart, marks)?;
    let d = digits(step);
    Ok(format!(
        "Axis of {} from {from:.d$}{} to {to:.d$}{}.",
        p.title, p.unit, p.unit
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_points_are_coloured_only_below_the_target() {
        assert_eq!(against_target(98.9), BELOW_TARGET);
        assert_eq!(against_target(99.0), NEUTRAL);
        let chart = availability_points(&[
            ("ICS / a".into(), 97.2, 96.9, 97.5),
            ("ICS / b".into(), 99.6, 99.4, 99.8),
        ])
        .unwrap();
        assert!(
            chart.axis_note.contains("not from zero"),
            "{}",
            chart.axis_note
        );
        assert!(!chart.svg.contains(">0%<") && !chart.svg.contains(">100%<"));
    }
}
