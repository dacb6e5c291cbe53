//! Configuration: YAML in, a validated [`Config`] out.
//!
//! Loading has two stages, as in ripgrep and blackbox_exporter: [`raw`] parses
//! the file with unknown keys rejected, then [`validate`] checks every value and
//! reports **all** problems at once, each with its file, line and the target,
//! journey and step it concerns.

pub mod model;
pub mod raw;
pub mod remote_write;
pub mod template;
mod validate;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

pub use model::*;
pub use template::Template;

/// One problem found in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    /// e.g. `journey "case_work", step "search"`; empty at top level.
    pub context: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if !self.context.is_empty() {
            write!(f, "{}: ", self.context)?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {file}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(Problem),
    #[error("{} has {} problem(s):\n{}", .file, .problems.len(), render_list(.problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

fn render_list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A loaded config plus the things that parse but look wrong.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Problem>,
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    from_yaml_str(&text, &file)
}

/// Validates config text; `origin` names it in messages.
pub fn from_yaml_str(text: &str, origin: &str) -> Result<Loaded, ConfigError> {
    from_yaml_str_with_base_urls(text, origin, &HashMap::new())
}

/// As [`from_yaml_str`], with the base URL of the named targets replaced
/// (the demo points its targets at wherever it started the simulator).
pub fn from_yaml_str_with_base_urls(
    text: &str,
    origin: &str,
    base_urls: &HashMap<String, String>,
) -> Result<Loaded, ConfigError> {
    let options = marked_yaml::LoaderOptions::default().error_on_duplicate_keys(true);
    let mut raw: raw::RawConfig = marked_yaml::from_yaml_with_options(0, text, options)
        .map_err(|e| ConfigError::Parse(parse_problem(&e, origin)))?;
    for target in &mut raw.targets {
        if let Some(url) = base_urls.get(target.name.as_str()) {
            target.base_url = marked_yaml::Spanned::new(*target.base_url.span(), url.clone());
        }
    }
    validate::validate(raw, origin)
}

fn parse_problem(err: &marked_yaml::FromYamlError, origin: &str) -> Problem {
    use marked_yaml::LoadError as L;
    let (line, context, message) = match err {
        marked_yaml::FromYamlError::ParseYaml(load) => {
            let marker = match load {
                L::TopLevelMustBeMapping(m)
                | L::TopLevelMustBeSequence(m)
                | L::UnexpectedAnchor(m)
                | L::MappingKeyMustBeScalar(m)
                | L::UnexpectedTag(m)
                | L::ScanError(m, _) => Some(*m),
                L::DuplicateKey(inner) => inner.key.span().start().copied(),
            };
            let text = load.to_string();
            // The loader prefixes its own "source:line:column: "; we print ours.
            let text = text.split_once(": ").map(|(_, t)| t).unwrap_or(&text);
            (
                marker.map(|m| m.line()).unwrap_or(1),
                String::new(),
                format!("not valid YAML: {}", lowercase_first(text)),
            )
        }
        marked_yaml::FromYamlError::FromNode(node) => (
            node.start_mark().map(|m| m.line()).unwrap_or(1),
            node.path().map(|p| format!("at {p}")).unwrap_or_default(),
            lowercase_first(&(**node).to_string()),
        ),
    };
    Problem {
        file: origin.to_string(),
        line,
        context,
        message,
    }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

/// The default demo configuration, embedded so `casewatch demo` needs no files.
pub const DEMO_YAML: &str = include_str!("../../config/demo.yaml");
