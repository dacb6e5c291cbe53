//! Log setup: what is logged, where, and what never is.
//!
//! Other crates log at `warn` unless the filter names them: `--log debug`
//! (or `CASEWATCH_LOG`, `RUST_LOG`) means casewatch at debug, not every
//! dependency. The HTML and CSS crates the runner parses pages with
//! (html5ever, selectors and their kin) log every token of a page at debug
//! and trace, and a page of a children's case system holds case notes and
//! CSRF tokens: their events are dropped at every level, whatever the filter
//! says. So are the DevTools client's (chromiumoxide), whose messages carry
//! what browser steps type into pages. Colour codes are written only when standard error is a terminal.
//!
//! Every log line goes to standard error, and only there: standard output
//! is for what a command prints (`once`'s tables, `demo`'s addresses, a
//! report). One event is one line in both formats: `text` writes a line
//! break inside a message or field (a config refused on reload lists its
//! problems one a line) as `\n`; `json` writes one object per line, as
//! tracing-subscriber's JSON formatter does:
//! `{"timestamp":…,"level":…,"fields":{"message":…,…},"target":…}`.

use std::io::IsTerminal;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event for people: time, level, target, message, fields.
    #[default]
    Text,
    /// One JSON object per line for a log stack: timestamp, level, target,
    /// and fields (the message among them).
    Json,
}

/// The filter when none is given.
pub const DEFAULT_FILTER: &str = "warn,casewatch=info";

/// Crates that log the text of what they parse; never logged at any level.
const PAGE_READERS: [&str; 10] = [
    // The DevTools client logs every message to and from the browser,
    // which holds what a browser step types (the password too).
    "chromiumoxide",
    "chromiumoxide_cdp",
    "html5ever",
    "markup5ever",
    "xml5ever",
    "selectors",
    "scraper",
    "cssparser",
    "tendril",
    "ego_tree",
];

/// Whether events with this target come from a crate that logs page text.
pub fn is_page_reader(target: &str) -> bool {
    PAGE_READERS.iter().any(|name| {
        target
            .strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// The filter directives for what the user gave: `warn` for every crate,
/// then each directive, where a bare level (`debug`) applies to casewatch.
pub fn directives(given: &str) -> String {
    let mut out = vec!["warn".to_string()];
    for directive in given.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare_level = matches!(
            directive.to_ascii_lowercase().as_str(),
            "off" | "error" | "warn" | "info" | "debug" | "trace"
        );
        if bare_level {
            out.push(format!("casewatch={directive}"));
        } else {
            out.push(directive.to_string());
        }
    }
    if out.len() == 1 {
        return DEFAULT_FILTER.to_string();
    }
    out.join(",")
}

/// `text` with its line breaks written as `\n` and `\r`, so that one
/// event stays one line.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['\n', '\r']) {
        return text.into();
    }
    text.replace('\n', "\\n").replace('\r', "\\r").into()
}

/// The writer of one format, on standard error.
fn layer(format: LogFormat) -> Box<dyn Layer<Registry> + Send + Sync> {
    let base = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => base
            .with_ansi(std::io::stderr().is_terminal())
            .fmt_fields(
                tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
                    let text = format!("{value:?}");
                    if field.name() == "message" {
                        write!(writer, "{}", one_line(&text))
                    } else {
                        write!(writer, "{field}={}", one_line(&text))
                    }
                })
                .delimited(" "),
            )
            .boxed(),
        LogFormat::Json => base
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    }
}

/// Installs the process's subscriber: `RUST_LOG` if set, else `given`
/// (the `--log` flag or `CASEWATCH_LOG`), on standard error, in `format`.
pub fn init(given: &str, format: LogFormat) {
    let given = std::env::var("RUST_LOG").unwrap_or_else(|_| given.to_string());
    let wanted = directives(&given);
    let (filter, bad) = match EnvFilter::try_new(&wanted) {
        Ok(filter) => (filter, None),
        Err(e) => (EnvFilter::new(DEFAULT_FILTER), Some(e)),
    };
    let layer = layer(format)
        .with_filter(filter)
        .with_filter(filter_fn(|meta| !is_page_reader(meta.target())));
    tracing_subscriber::registry().with(layer).init();
    if let Some(e) = bad {
        tracing::warn!(filter = %given, error = %e, "log filter not understood; using {DEFAULT_FILTER}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_applies_to_casewatch_only() {
        assert_eq!(directives("trace"), "warn,casewatch=trace");
        assert_eq!(directives("info"), "warn,casewatch=info");
        assert_eq!(directives(""), DEFAULT_FILTER);
    }

    #[test]
    fn named_crates_keep_their_level() {
        assert_eq!(
            directives("debug, reqwest=debug"),
            "warn,casewatch=debug,reqwest=debug"
        );
        assert_eq!(
            directives("casewatch::runner=trace"),
            "warn,casewatch::runner=trace"
        );
    }

    #[test]
    fn line_breaks_are_written_as_escapes() {
        assert_eq!(one_line("plain"), "plain");
        assert_eq!(
            one_line("casewatch.yaml has 2 problem(s):\n  a\r\n  b"),
            "casewatch.yaml has 2 problem(s):\\n  a\\r\\n  b"
        );
    }

    #[test]
    fn page_readers_are_matched_by_crate() {
        for target in [
            "html5ever",
            "html5ever::tree_builder",
            "selectors::matching",
            "scraper",
        ] {
            assert!(is_page_reader(target), "{target}");
        }
        for target in [
            "casewatch",
            "html5everything",
            "hyper::proto",
            "casewatch::runner",
        ] {
            assert!(!is_page_reader(target), "{target}");
        }
    }
}
