//! History at a glance: per journey, a bar of the last 24 hours in
//! half-hours and one of the last 30 days in days, read from the journal
//! ([`crate::journal::history`]) and drawn as inline SVG, in the manner of
//! a public status page.
//!
//! Each cell takes the colour of its worst counted run, and each colour
//! stands for a stated threshold: every run correct within its steps'
//! `slow_after`, correct but slower, or failed. A cell with no counted run
//! is drawn as an empty outline, "no data", never as good. Freeze episodes
//! and forced logouts are marked above and below their cells, and changes
//! on the 30-day bar.
//!
//! Reading is off the async workers and cached: a page load uses the
//! latest reading while it is under [`REFRESH_EVERY`] old, and otherwise
//! starts one fresh reading and shows the latest meanwhile, so a page load
//! never waits on the journal (only the very first waits, up to
//! [`FIRST_WAIT`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use maud::{html, Markup, PreEscaped};

use crate::config::ChangeEvent;
use crate::journal::history::{Bar, Cell, JourneyHistory};

/// How long one reading of the journal is shown before it is read again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);
/// How long the first page waits for the first reading.
pub const FIRST_WAIT: Duration = Duration::from_secs(5);

/// What the history section shows.
#[derive(Debug)]
pub enum HistoryView {
    /// The agent writes no journal.
    NoJournal,
    /// The first reading is not done yet.
    Reading,
    /// The bars as read at `at`.
    Bars {
        at: SystemTime,
        journeys: Vec<JourneyHistory>,
    },
    /// The journal could not be read (the error, with its causes).
    Failed(String),
}

/// What page loads share: the latest view, and whether a reading is under way.
#[derive(Default)]
struct HistoryCacheState {
    latest: Option<(Instant, Arc<HistoryView>)>,
    reading: bool,
}

/// The latest reading of the journal's history, shared by page loads.
pub struct HistoryCache {
    journal: Option<PathBuf>,
    shared: Arc<Mutex<HistoryCacheState>>,
}

fn lock(shared: &Mutex<HistoryCacheState>) -> std::sync::MutexGuard<'_, HistoryCacheState> {
    match shared.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Clears the reading flag however the reading ends.
struct ReadingGuard(Arc<Mutex<HistoryCacheState>>);

impl Drop for ReadingGuard {
    fn drop(&mut self) {
        lock(&self.0).reading = false;
    }
}

impl HistoryCache {
    pub fn new(journal: Option<PathBuf>) -> HistoryCache {
        HistoryCache {
            journal,
            shared: Arc::default(),
        }
    }

    /// The history to show now for `journeys` (name, target).
    pub async fn current(&self, journeys: Vec<(String, String)>) -> Arc<HistoryView> {
        let Some(path) = self.journal.clone() else {
            return Arc::new(HistoryView::NoJournal);
        };
        let (latest, start) = {
            let mut shared = lock(&self.shared);
            if let Some((at, view)) = &shared.latest {
                if at.elapsed() < REFRESH_EVERY {
                    return view.clone();
                }
            }
            let start = !shared.reading;
            shared.reading = true;
            (shared.latest.as_ref().map(|(_, v)| v.clone()), start)
        };
        let task = start.then(|| {
            let guard = ReadingGuard(self.shared.clone());
            tokio::task::spawn_blocking(move || {
                let view = match crate::journal::history::read(&path, &journeys, SystemTime::now())
                {
                    Ok(journeys) => HistoryView::Bars {
                        at: SystemTime::now(),
                        journeys,
                    },
                    Err(e) => HistoryView::Failed(crate::error_chain(&e)),
                };
                let view = Arc::new(view);
                lock(&guard.0).latest = Some((Instant::now(), view.clone()));
                view
            })
        });
        match (latest, task) {
            (Some(view), _) => view,
            (None, Some(task)) => match tokio::time::timeout(FIRST_WAIT, task).await {
                Ok(Ok(view)) => view,
                _ => Arc::new(HistoryView::Reading),
            },
            (None, None) => Arc::new(HistoryView::Reading),
        }
    }
}

/// Okabe–Ito colours, told apart with the common colour-vision deficiencies.
const OK: &str = "#009e73";
const SLOW: &str = "#e69f00";
const FAILED: &str = "#d55e00";
const MARK: &str = "#222";

const CELL_H: f64 = 22.0;
const TOP: f64 = 9.0;
const BAR_W: f64 = 720.0;

/// The section: a legend, then each journey's two bars.
pub fn section(view: &HistoryView, changes: &[ChangeEvent]) -> Markup {
    html! {
        h2 { "History" }
        @match view {
            HistoryView::NoJournal => p class="nodata" { "No history: this agent writes no journal (give it " code { "--journal FILE" } " or " code { "journal:" } " in its config)." },
            HistoryView::Reading => p class="nodata" { "The history is being read from the journal; it shows on the next refresh." },
            HistoryView::Failed(why) => p class="warn" { "The history could not be read from the journal: " (why) },
            HistoryView::Bars { at, journeys } => {
                (legend())
                p class="small" { "Read from the journal at " (super::format_time(*at)) "; read again at most once a minute. Cells are UTC half-hours and UTC days, the last one still running." }
                @for j in journeys {
                    h3 { (j.journey) " " span class="small" { "on " (j.target) } }
                    (bar(&j.day, "Last 24 hours", false, changes))
                    (bar(&j.month, "Last 30 days", true, changes))
                }
                @if journeys.is_empty() { p { "No journeys configured." } }
            }
        }
    }
}

fn legend() -> Markup {
    let swatch = |fill: &str, dashed: bool| {
        let stroke = if dashed {
            r##"fill="#fff" stroke="#888" stroke-dasharray="2 2""##.to_string()
        } else {
            format!(r#"fill="{fill}""#)
        };
        PreEscaped(format!(
            r#"<svg width="14" height="14" aria-hidden="true"><rect x="1" y="1" width="12" height="12" rx="2" {stroke}/></svg>"#
        ))
    };
    html! {
        ul class="legend" {
            li { (swatch(OK, false)) " every counted run correct, each step within its " code { "slow_after" } }
            li { (swatch(SLOW, false)) " every counted run correct, at least one step slower than its " code { "slow_after" } }
            li { (swatch(FAILED, false)) " at least one run failed: frozen (no answer within " code { "freeze_after" } "), forced logout, or an error" }
            li { (swatch("", true)) " no data: no run counted (none ran, the agent was stalled, or the hours were compacted)" }
            li { (PreEscaped(format!(r#"<svg width="14" height="14" aria-hidden="true"><path d="M2 3 H12 L7 11 Z" fill="{MARK}"/></svg>"#))) " a freeze of the target began" }
            li { (PreEscaped(format!(r#"<svg width="14" height="14" aria-hidden="true"><circle cx="7" cy="7" r="4" fill="none" stroke="{MARK}" stroke-width="2"/></svg>"#))) " a session of the journey was forced out" }
            li { (PreEscaped(r##"<svg width="14" height="14" aria-hidden="true"><line x1="7" y1="0" x2="7" y2="14" stroke="#3b5bdb" stroke-width="2"/></svg>"##)) " a configured change (30-day bars)" }
        }
    }
}

/// `text` escaped for HTML and SVG.
fn esc(text: &str) -> String {
    html! { (text) }.into_string()
}

/// The colour of a cell, and what it says, from its worst counted run.
fn verdict(c: &Cell) -> Option<(&'static str, &'static str)> {
    if c.runs == 0 {
        None
    } else if c.failed() > 0 {
        Some((FAILED, "failed"))
    } else if c.slow > 0 {
        Some((SLOW, "slow"))
    } else {
        Some((OK, "ok"))
    }
}

/// A cell's tooltip: its time and what it holds.
fn describe(bar: &Bar, i: usize, days: bool) -> String {
    let c = &bar.cells[i];
    let start = chrono::DateTime::<chrono::Utc>::from(bar.cell_start(i));
    let when = if days {
        start.format("%a %d %b %Y").to_string()
    } else {
        let end = start + chrono::Duration::from_std(bar.width).unwrap_or(chrono::Duration::zero());
        format!(
            "{}–{} UTC",
            start.format("%a %d %b %H:%M"),
            end.format("%H:%M")
        )
    };
    let mut parts = vec![if c.runs == 0 {
        "no data".to_string()
    } else {
        let errors = c.failed() - c.frozen - c.logged_out;
        format!(
            "{} runs: {} ok, {} slow, {} frozen, {} logged out, {} other errors",
            c.runs, c.ok, c.slow, c.frozen, c.logged_out, errors
        )
    }];
    if c.freezes > 0 {
        parts.push(format!("{} freeze episodes began", c.freezes));
    }
    if c.forced_logouts > 0 {
        parts.push(format!("{} forced logouts", c.forced_logouts));
    }
    if c.stalled > 0 {
        parts.push(format!(
            "{} runs during a stall of the agent, not counted",
            c.stalled
        ));
    }
    if c.compacted > 0 {
        parts.push(format!(
            "{} hours compacted: in the report only",
            c.compacted
        ));
    }
    format!("{when}: {}", parts.join("; "))
}

/// One bar as inline SVG, with its title and a line of totals.
fn bar(bar: &Bar, title: &str, days: bool, changes: &[ChangeEvent]) -> Markup {
    let n = bar.cells.len().max(1) as f64;
    let step = BAR_W / n;
    let w = (step - 2.0).max(1.0);
    let mut svg = format!(
        r#"<svg class="bar" viewBox="0 0 {BAR_W} 44" width="{BAR_W}" height="44" role="img" aria-label="{title}">"#
    );
    for (i, c) in bar.cells.iter().enumerate() {
        let x = i as f64 * step + 1.0;
        let class = verdict(c).map_or("nodata", |(_, v)| v);
        svg.push_str(&format!(
            r#"<g class="cell {class}"><title>{}</title>"#,
            esc(&describe(bar, i, days))
        ));
        match verdict(c) {
            Some((fill, _)) => svg.push_str(&format!(
                r#"<rect x="{x:.1}" y="{TOP}" width="{w:.1}" height="{CELL_H}" rx="2" fill="{fill}"/>"#
            )),
            None => svg.push_str(&format!(
                r##"<rect x="{:.1}" y="{}" width="{:.1}" height="{}" rx="2" fill="#fff" stroke="#888" stroke-dasharray="2 2"/>"##,
                x + 0.5, TOP + 0.5, w - 1.0, CELL_H - 1.0
            )),
        }
        let mid = x + w / 2.0;
        if c.freezes > 0 {
            svg.push_str(&format!(
                r#"<path class="freeze" d="M{:.1} 0 H{:.1} L{mid:.1} 7 Z" fill="{MARK}"/>"#,
                mid - 4.0,
                mid + 4.0
            ));
        }
        if c.forced_logouts > 0 {
            svg.push_str(&format!(
                r#"<circle class="logout" cx="{mid:.1}" cy="{:.1}" r="3.5" fill="none" stroke="{MARK}" stroke-width="2"/>"#,
                TOP + CELL_H + 7.0
            ));
        }
        svg.push_str("</g>");
    }
    if days {
        svg.push_str(&change_marks(bar, step, changes));
    }
    svg.push_str("</svg>");
    html! {
        div class="history" {
            div class="bartitle" { (title) ": " (totals(&bar.total())) }
            (PreEscaped(svg))
            div class="axis" { span { (axis_label(bar, 0, days)) } span { (if days { "today" } else { "now" }) } }
        }
    }
}

/// Changes inside the bar's window, as lines at their time.
fn change_marks(bar: &Bar, step: f64, changes: &[ChangeEvent]) -> String {
    let span = bar.width.as_secs_f64();
    let mut out = String::new();
    for change in changes {
        let Ok(offset) = change.at.duration_since(bar.from) else {
            continue;
        };
        let x = offset.as_secs_f64() / span * step;
        if x >= step * bar.cells.len() as f64 {
            continue;
        }
        out.push_str(&format!(
            r##"<g class="change"><title>{}</title><line x1="{x:.1}" y1="4" x2="{x:.1}" y2="{}" stroke="#3b5bdb" stroke-width="2"/></g>"##,
            esc(&format!("{}: {}", change.name, change.description)),
            TOP + CELL_H + 4.0
        ));
    }
    out
}

fn axis_label(bar: &Bar, i: usize, days: bool) -> String {
    let t = chrono::DateTime::<chrono::Utc>::from(bar.cell_start(i));
    if days {
        t.format("%d %b").to_string()
    } else {
        t.format("%d %b %H:%M UTC").to_string()
    }
}

/// "1,440 runs counted, 99.3% correct; 2 freezes, 1 forced logout".
fn totals(t: &Cell) -> String {
    if t.runs == 0 {
        return "no runs counted".to_string();
    }
    let mut line = format!(
        "{} runs counted, {:.1}% correct",
        t.runs,
        (t.ok + t.slow) as f64 / t.runs as f64 * 100.0
    );
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    line.push_str(&format!(
        "; {}, {}",
        plural(t.freezes, "freeze", "freezes"),
        plural(t.forced_logouts, "forced logout", "forced logouts")
    ));
    if t.stalled > 0 {
        line.push_str(&format!("; {} over an agent stall, not counted", t.stalled));
    }
    line
}

/// Configured changes, newest first, with whether each is still to come.
pub fn changes_section(changes: &[ChangeEvent], now: SystemTime) -> Markup {
    let mut sorted: Vec<&ChangeEvent> = changes.iter().collect();
    sorted.sort_by_key(|c| std::cmp::Reverse(c.at));
    html! {
        h2 { "Changes" }
        @if sorted.is_empty() {
            p { "No changes configured (" code { "changes:" } " in the config lists them; the report compares before and after each)." }
        } @else {
            table {
                thead { tr { th { "Change" } th { "When" } th { "Description" } } }
                tbody {
                    @for c in sorted {
                        tr class="changerow" {
                            td { (c.name) }
                            td { (super::format_time(c.at)) @if c.at > now { " (planned)" } }
                            td { (c.description) }
                        }
                    }
                }
            }
        }
    }
}
