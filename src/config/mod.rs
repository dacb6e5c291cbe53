//! Configuration: YAML in, a validated [`Config`] out.
//!
//! Loading has two stages, as in ripgrep and blackbox_exporter: [`raw`] parses
//! the file with unknown keys rejected, then [`validate`] checks every value and
//! reports **all** problems at once, each with its file, line and the target,
//! journey and step it concerns. Before either, [`preflight`] refuses text
//! that could harm the loader itself: over the size cap, nested too deep, or
//! holding characters YAML does not allow.
//!
//! Loading is linear in the size of the file, and a parse error never quotes
//! a value given under `credentials`.

pub mod browser;
pub mod file;
pub mod model;
pub mod practitioners;
pub mod preflight;
pub mod raw;
pub mod remote_write;
pub mod secret;
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
    let text = read_text(path)?;
    from_yaml_str(&text, &file)
}

/// Reads a config file, never more than [`preflight::MAX_CONFIG_BYTES`]
/// (and one byte to tell that there is more), as a regular file opened
/// without blocking ([`file::read_capped`]).
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    let file = path.display().to_string();
    let read_error = |source| ConfigError::Read {
        file: file.clone(),
        source,
    };
    let bytes = match file::read_capped(path, preflight::MAX_CONFIG_BYTES as u64) {
        Ok(bytes) => bytes,
        Err(file::FileError::Io(e)) => return Err(read_error(e)),
        Err(file::FileError::NotAFile) => {
            return Err(read_error(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            )))
        }
        Err(file::FileError::TooLarge { limit }) => {
            // A regular file: its size is known.
            let size = std::fs::metadata(path).map_or(limit + 1, |m| m.len());
            return Err(ConfigError::Parse(Problem {
                file,
                line: 1,
                context: String::new(),
                message: format!(
                    "the config is {size} bytes, over the {}-byte (1 MiB) limit",
                    preflight::MAX_CONFIG_BYTES
                ),
            }));
        }
    };
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        ConfigError::Parse(Problem {
            file: file.clone(),
            line,
            context: String::new(),
            message: "not valid UTF-8".to_string(),
        })
    })
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
    let text = preflight::check(text).map_err(|refusal| {
        ConfigError::Parse(Problem {
            file: origin.to_string(),
            line: refusal.line,
            context: String::new(),
            message: refusal.message,
        })
    })?;
    let options = marked_yaml::LoaderOptions::default().error_on_duplicate_keys(true);
    let node = marked_yaml::parse_yaml_with_options(0, text, options).map_err(|e| {
        ConfigError::Parse(parse_problem(
            &marked_yaml::FromYamlError::ParseYaml(e),
            origin,
        ))
    })?;
    let mut raw: raw::RawConfig = marked_yaml::from_node(&node).map_err(|e| {
        let mut problems = each_parse_problem(&node, origin);
        if problems.len() > 1 {
            return ConfigError::Invalid {
                file: origin.to_string(),
                problems,
            };
        }
        ConfigError::Parse(
            problems
                .pop()
                .unwrap_or_else(|| parse_problem(&marked_yaml::FromYamlError::FromNode(e), origin)),
        )
    })?;
    for target in &mut raw.targets {
        if let Some(url) = base_urls.get(target.name.as_str()) {
            target.base_url = marked_yaml::Spanned::new(*target.base_url.span(), url.clone());
        }
    }
    validate::validate(raw, origin)
}

/// The top-level keys whose lists are read one item at a time.
const LISTS: [&str; 4] = ["targets", "journeys", "changes", "remote_write"];

/// serde stops at the first value it cannot read. To report every one in a
/// pass, each top-level key, and each item of a list, is read again on its
/// own (a mapping of that key alone, which every other key may be missing
/// from); the problems come in the order of the file, each with the path
/// and line it would have had in the whole file. A file that is not YAML at
/// all still stops at its first syntax error: nothing after it can be read.
fn each_parse_problem(node: &marked_yaml::Node, origin: &str) -> Vec<Problem> {
    use marked_yaml::types::{MarkedMappingNode, MarkedSequenceNode};
    use marked_yaml::Node;
    let Some(top) = node.as_mapping() else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    for (key, value) in top.iter() {
        let alone = |value: Node| {
            let mut one = MarkedMappingNode::new_empty(*top.span());
            one.insert(key.clone(), value);
            Node::from(one)
        };
        let items: Vec<(Option<usize>, Node)> = match value.as_sequence() {
            Some(list) if LISTS.contains(&key.as_str()) => list
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let list = MarkedSequenceNode::new(*value.span(), vec![item.clone()]);
                    (Some(i), alone(Node::from(list)))
                })
                .collect(),
            _ => vec![(None, alone(value.clone()))],
        };
        for (index, one) in items {
            let Err(e) = marked_yaml::from_node::<raw::RawConfig>(&one) else {
                continue;
            };
            let mut problem = parse_problem(&marked_yaml::FromYamlError::FromNode(e), origin);
            if let Some(i) = index.filter(|i| *i > 0) {
                let alone = format!("at {}[0]", key.as_str());
                if problem.context.starts_with(&alone) {
                    problem.context = format!(
                        "at {}[{i}]{}",
                        key.as_str(),
                        &problem.context[alone.len()..]
                    );
                }
            }
            problems.push(problem);
        }
    }
    problems
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
        marked_yaml::FromYamlError::FromNode(node) => {
            let (path, message) = node_message(node);
            (
                node.start_mark().map(|m| m.line()).unwrap_or(1),
                path.map(|p| format!("at {p}")).unwrap_or_default(),
                message,
            )
        }
    };
    Problem {
        file: origin.to_string(),
        line,
        context,
        message,
    }
}

/// The path and message of a deserialization error, with the names the configuration reference uses for
/// the expected types and nothing quoted from under `credentials`.
fn node_message(node: &marked_yaml::FromNodeError) -> (Option<String>, String) {
    let path = node.path().map(str::to_string);
    let secret_at = path.as_deref().and_then(|p| {
        SECRET_SECTIONS
            .iter()
            .filter_map(|section| p.find(section))
            .min()
    });
    let Some(at) = secret_at else {
        let message = readme_type_names(&(**node).to_string());
        return (path, lowercase_first(&message));
    };
    let path = path.map(|p| redact_secret_path(&p, at));
    let message = match &**node {
        marked_yaml::Error::UnknownFieldError(_, expected, _) => format!(
            "unknown field, expected one of {}",
            expected
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => {
            let text = other.to_string();
            let (found, expected) = text.split_once(", expected ").unwrap_or((&text, ""));
            // What was found may quote the value given: serde writes
            // `string "the value"`, of which the kind alone is kept, and
            // quotes anything else, which is blanked. What was expected
            // comes from the agent's own types and is shown in full.
            let mut message = match found.strip_prefix("invalid type: ") {
                Some(rest) => {
                    let kind = rest.split(['"', '`']).next().unwrap_or("").trim();
                    format!("invalid type: {kind}")
                }
                None => redact_quoted(found),
            };
            if !expected.is_empty() {
                message = format!(
                    "{message}, expected {}",
                    readme_type_names(without_arity(expected))
                );
            }
            if expected.contains("RawSecret") {
                message.push_str(": secrets are never written inline");
            }
            message
        }
    };
    (path, lowercase_first(&message))
}

/// The sections of a config that hold secrets, or say where they are: a
/// parse error at or under one never quotes what was written there.
const SECRET_SECTIONS: [&str; 3] = ["credentials", "bearer_token", "basic_auth"];

/// serde names a struct's fields as a tuple's elements when it is given a
/// sequence (`struct RawSecret with 3 elements`); a person reads the
/// struct's README name alone.
fn without_arity(expected: &str) -> &str {
    if !expected.starts_with("struct ") {
        return expected;
    }
    match expected.rsplit_once(" with ") {
        Some((head, tail)) if tail.ends_with(" elements") || tail.ends_with(" element") => head,
        _ => expected,
    }
}

/// `targets[0].credentials.password.hunter2` keeps only the names the
/// secret sections define.
fn redact_secret_path(path: &str, at: usize) -> String {
    const KNOWN: [&str; 8] = [
        "credentials",
        "bearer_token",
        "basic_auth",
        "username",
        "password",
        "env",
        "file",
        "value",
    ];
    let (head, tail) = path.split_at(at);
    let kept: Vec<&str> = tail
        .split('.')
        .take_while(|segment| KNOWN.contains(segment))
        .collect();
    format!("{head}{}", kept.join("."))
}

/// Replaces every quoted or back-quoted stretch of `text`.
fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => {
                out.push_str("[redacted]");
                quote = None;
            }
            Some(_) => {}
            None if c == '"' || c == '`' => quote = Some(c),
            None => out.push(c),
        }
    }
    out
}

/// serde names the raw structs (`struct RawSecret`); the README does not.
fn readme_type_names(text: &str) -> String {
    const NAMES: [(&str, &str); 26] = [
        (
            "struct RawConfig",
            "a mapping of `site`, `targets`, `journeys`",
        ),
        ("struct RawAgent", "an `agent` mapping"),
        (
            "struct RawTarget",
            "a target: a mapping with `name` and `base_url`",
        ),
        ("struct RawTls", "a `tls` mapping"),
        (
            "struct RawCredentials",
            "a `credentials` mapping of `username` and `password`",
        ),
        ("struct RawSecret", "`{ env: NAME }` or `{ file: PATH }`"),
        (
            "struct RawTimings",
            "a mapping of `slow_after`, `freeze_after` and `give_up_after`",
        ),
        ("struct RawSessionRules", "a `session_rules` mapping"),
        (
            "struct RawHeartbeat",
            "a `heartbeat` mapping with `path` and `every`",
        ),
        ("struct RawKeepSessions", "a `keep_sessions` mapping"),
        (
            "struct RawJourney",
            "a journey: a mapping with `name`, `target`, `schedule` and `steps`",
        ),
        ("struct RawSchedule", "a `schedule` mapping with `interval`"),
        ("struct RawStep", "a step: a mapping with `name` and `path`"),
        (
            "struct RawExtract",
            "an `extract` entry: a mapping with `var` and one source",
        ),
        ("struct RawAssert", "an `assert` mapping"),
        (
            "struct RawChange",
            "a change: a mapping with `name` and `at`",
        ),
        ("struct RawJournal", "a `journal` mapping with `path`"),
        (
            "struct RawBrowserStep",
            "a browser step: a mapping with `name`",
        ),
        ("struct RawBrowser", "a `browser` mapping"),
        ("struct RawEvidence", "an `evidence` mapping"),
        (
            "struct RawTargetBrowser",
            "a target's `browser` mapping of `login` and `logout`",
        ),
        (
            "struct RawJourneyBrowser",
            "a journey's `browser` mapping with `steps`",
        ),
        (
            "struct RawFill",
            "a `fill` mapping of `selector` and `value`",
        ),
        (
            "struct RawWaitFor",
            "a `wait_for` mapping with `selector` or `text`",
        ),
        ("struct RawPageAssert", "a browser step's `assert` mapping"),
        (
            "struct RawPageExtract",
            "a browser step's `extract` entry: `var` and `selector` or `url`",
        ),
    ];
    let mut text = text.to_string();
    for (raw, readme) in NAMES {
        if text.contains(raw) {
            text = text.replace(raw, readme);
        }
    }
    for (rust, readme) in [
        ("expected u16", "expected a number"),
        ("expected usize", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        if text.ends_with(rust) {
            text = format!("{}{readme}", &text[..text.len() - rust.len()]);
        }
    }
    text
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
