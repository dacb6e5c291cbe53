//! The project board's evidence report and the journal's exports. Reads the
//! journal only; never talks to the network.
//!
//! - [`model`]: the report model, built once from the journal.
//! - [`summary`]: the plain-language sentences at its top.
//! - [`stats`]: the interval estimates every figure carries.
//! - [`evidence`]: intervals that respect clustering (blocks of time,
//!   matching by hour of the week, the minimum-evidence rule);
//!   [`compare`] applies them before and after a change, [`changes`] says
//!   what they show, [`rule`] answers "do older sessions drop more often?".
//! - [`calibration`]: proves those intervals on data whose truth is known.
//! - [`time_lost`]: minutes lost per practitioner per working day, by
//!   cause; [`time_lost_words`] says it.
//! - [`words`]: figures, ranges, counts and times in words, one function
//!   per rule, for every renderer.
//! - [`charts`]: inline SVG charts (plotters' SVG backend), on [`axes`]
//!   whose ticks and ranges fit the data.
//! - [`fleet`]: one report over several sites' journals (per-site
//!   tables, pooled figures, "is one office worse?").
//! - [`html`], [`markdown`]: renderers; JSON is the model's serde form;
//!   [`pdf`] prints the HTML through headless Chromium.
//! - [`export`]: OpenMetrics (for `promtool tsdb create-blocks-from`) and
//!   HdrHistogram interval logs.

pub mod axes;
pub mod build;
pub mod calibration;
pub mod central;
pub mod changes;
pub mod charts;
pub mod command;
pub mod compare;
pub mod design;
pub mod evidence;
pub mod export;
pub mod fleet;
pub mod html;
pub mod markdown;
pub mod model;
pub mod pdf;
pub mod progress;
pub mod rule;
pub mod sessions;
pub mod stats;
pub mod summary;
pub mod time_lost;
pub mod time_lost_words;
pub mod words;

pub use build::build;
pub use model::{Report, ReportOptions};

/// The report's output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Html,
    Md,
    Json,
    /// The HTML report printed by headless Chromium: a cover, whole
    /// tables, numbered pages.
    Pdf,
}

impl Format {
    /// The format an output file's extension names, if any.
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "html" | "htm" => Some(Format::Html),
            "md" | "markdown" => Some(Format::Md),
            "json" => Some(Format::Json),
            "pdf" => Some(Format::Pdf),
            _ => None,
        }
    }
}

/// Renders the model in `format`; for PDF, the HTML that is printed.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Html => html::render(report),
        Format::Pdf => html::render_for_print(report),
        Format::Md => markdown::render(report),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(report)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            text.push('\n');
            text
        }
    }
}
