//! Inline SVG charts for the HTML report, drawn with plotters' SVG backend
//! (no JavaScript, no fonts to load, no network). Each function returns the
//! SVG text, or `None` when there is nothing to draw or drawing failed
//! (logged; the report then shows its tables alone).

use plotters::prelude::*;

use std::collections::BTreeSet;

use super::model::{ForcedLogouts, Freezes, Latency, Sessions, TimeWindow};

const WIDTH: u32 = 960;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

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

fn time_label(t: f64, span: f64) -> String {
    let Some(dt) = chrono::DateTime::from_timestamp(t.floor() as i64, 0) else {
        return String::new();
    };
    if span > 3.0 * 86_400.0 {
        dt.format("%d %b").to_string()
    } else if span > 3600.0 * 12.0 {
        dt.format("%d %b %H:%M").to_string()
    } else {
        dt.format("%H:%M:%S").to_string()
    }
}

fn color(index: usize) -> RGBColor {
    const COLORS: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    COLORS[index % COLORS.len()]
}

/// p95 latency per step over time, one line per step.
pub fn latency_trend(latency: &Latency, window: &TimeWindow) -> Option<String> {
    let series: Vec<_> = latency
        .trend
        .iter()
        .filter(|s| !s.points.is_empty())
        .collect();
    if series.is_empty() {
        return None;
    }
    let ymax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.1;
    let (x0, x1) = (window.from, window.to.max(window.from + 60.0));
    let height = 420 + 18 * series.len() as u32;
    svg((WIDTH, height), |root| {
        root.fill(&WHITE)?;
        let (plot, legend) = root.split_vertically(400);
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|x| time_label(*x, x1 - x0))
            .y_desc("p95 latency (ms)")
            .x_desc("time (UTC)")
            .draw()?;
        for (index, s) in series.iter().enumerate() {
            let c = color(index);
            chart.draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))?;
            chart.draw_series(s.points.iter().map(|p| Circle::new(*p, 2, c.filled())))?;
        }
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
    })
}

/// Freeze episodes as bars on a time line, one row per target.
pub fn freeze_timeline(freezes: &Freezes, window: &TimeWindow) -> Option<String> {
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
        "time (UTC); darker bars were still frozen when the agent gave up (censored)",
    )
}

/// When each forced logout happened: a bar from the last moment the
/// session was known alive to the moment its loss was seen.
pub fn logout_timeline(logouts: &ForcedLogouts, window: &TimeWindow) -> Option<String> {
    let rows: BTreeSet<String> = logouts.events.iter().map(|e| e.target.clone()).collect();
    let rows: Vec<String> = rows.into_iter().collect();
    let marks: Vec<Mark> = logouts
        .events
        .iter()
        .map(|e| Mark {
            row: rows.iter().position(|t| *t == e.target).unwrap_or(0),
            start: e.alive_at.min(e.seen_at),
            end: e.seen_at,
            dark: e.holder_kind == "journey",
        })
        .collect();
    timeline(
        &rows,
        &marks,
        window,
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

/// Bars on a time axis, one row per name.
fn timeline(rows: &[String], marks: &[Mark], window: &TimeWindow, x_desc: &str) -> Option<String> {
    if marks.is_empty() {
        return None;
    }
    let (x0, x1) = (window.from, window.to.max(window.from + 60.0));
    let min_width = (x1 - x0) * 0.004;
    let count = rows.len() as f64;
    svg((WIDTH, 120 + 50 * rows.len() as u32), |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, -0.5f64..count - 0.5)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_labels(8)
            .y_labels(rows.len().max(1))
            .x_label_formatter(&|x| time_label(*x, x1 - x0))
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 0.01 && i >= 0.0 {
                    rows.get(i as usize)
                        .map(|n| n.to_uppercase())
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc(x_desc)
            .draw()?;
        chart.draw_series(marks.iter().map(|m| {
            let row = m.row as f64;
            let end = m.end.max(m.start + min_width);
            let fill = if m.dark {
                RGBColor(120, 0, 0)
            } else {
                RGBColor(214, 39, 40)
            };
            Rectangle::new([(m.start, row - 0.3), (end, row + 0.3)], fill.filled())
        }))?;
        root.present()?;
        Ok(())
    })
}

/// The Kaplan–Meier survival curve with its 95% band.
pub fn survival_curve(sessions: &Sessions) -> Option<String> {
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
    svg((WIDTH, 400), |root| {
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
        // No band from fewer independent days than any range needs.
        if sessions.units as usize >= super::evidence::MIN_UNITS {
            chart.draw_series(std::iter::once(Polygon::new(
                band,
                RGBColor(31, 119, 180).mix(0.2).filled(),
            )))?;
        }
        chart.draw_series(LineSeries::new(
            steps,
            RGBColor(31, 119, 180).stroke_width(3),
        ))?;
        chart.draw_series(LineSeries::new(
            [(rule, 0.0), (rule, 1.05)],
            RGBColor(214, 39, 40).stroke_width(2),
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            format!(" {} mark", sessions.rule.age_text),
            (rule, 1.02),
            ("sans-serif", 14).into_font().color(&RGBColor(214, 39, 40)),
        )))?;
        root.present()?;
        Ok(())
    })
}

/// Forced-logout hazard per age band with 95% interval whiskers.
pub fn hazard_bars(sessions: &Sessions) -> Option<String> {
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
    svg((WIDTH, 380), |root| {
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
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 0.01 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
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
                RGBColor(255, 127, 14).filled(),
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
    })
}

/// Horizontal bars with whiskers: one per labelled estimate (value, low, high).
pub fn estimate_bars(title_x: &str, rows: &[(String, f64, f64, f64)]) -> Option<String> {
    if rows.is_empty() {
        return None;
    }
    let xmax = rows
        .iter()
        .map(|r| r.3.max(r.1))
        .filter(|v| v.is_finite())
        .fold(0.001, f64::max)
        * 1.1;
    let xmin = rows.iter().map(|r| r.2.min(r.1)).fold(0.0, f64::min) * 1.1;
    let n = rows.len() as f64;
    let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    svg((WIDTH, 90 + 44 * rows.len() as u32), |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(220)
            .build_cartesian_2d(xmin..xmax, -0.5f64..n - 0.5)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows.len())
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 0.01 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc(title_x)
            .draw()?;
        for (i, (_, v, l, h)) in rows.iter().enumerate() {
            let y = i as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y - 0.3), (*v, y + 0.3)],
                color(i).mix(0.8).filled(),
            )))?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(*l, y), (h.min(xmax), y)],
                BLACK.stroke_width(2),
            )))?;
        }
        root.present()?;
        Ok(())
    })
}
