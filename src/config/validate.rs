//! Stage two: turns [`RawConfig`] into a [`Config`], collecting every problem.
//!
//! This file holds what every rule shares, the [`Checker`] that collects
//! problems with their file, line and context, and the rules for the top of
//! the file: `site`, `agent:`, `changes:`, `journal:`, and the order in
//! which the rest is checked. Each block has its own file:
//!
//! - [`target`]: a target (URL, TLS, limits, credentials, defaults, login
//!   and logout, session rules, heartbeat, kept sessions);
//! - [`journey`]: a journey (schedule, steps, kind, worst-case run time);
//! - [`step`]: an HTTP step (method, path, body, extraction, assertions)
//!   and the timings of every step, HTTP or browser;
//! - [`browser`]: the browser settings, a target's browser login and a
//!   journey's browser steps;
//! - [`remote_write`]: the central stores;
//! - [`practitioners`]: the time-lost assumptions.
//!
//! Problems are reported in the order the file is read, so each submodule
//! is called at the point its block is met.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use marked_yaml::Spanned;
use regex::Regex;

use super::model::*;
use super::raw::*;
use super::template::Template;
use super::{ConfigError, Loaded, Problem};

mod browser;
mod journey;
mod practitioners;
mod remote_write;
mod step;
mod target;

use journey::{journey, TargetFacts};
use step::{extract_name, step_timings, uses_known};
use target::{target, Origins};

/// Variables every step can read without extracting them.
pub const BUILTIN_VARS: [&str; 3] = ["username", "password", "run_id"];

/// The variables a step of `target` can read before anything is extracted:
/// `run_id`, and `username`/`password` only when the target has them.
fn builtin_vars(has_username: bool, has_password: bool) -> HashSet<String> {
    let mut vars = HashSet::from(["run_id".to_string()]);
    if has_username {
        vars.insert("username".to_string());
    }
    if has_password {
        vars.insert("password".to_string());
    }
    vars
}

/// The most journey steps a config may define, counting each journey's login
/// and logout steps once per journey: every one of them is a set of metric
/// series, so this bounds the agent's memory and the size of a scrape.
pub const MAX_STEPS: usize = 10_000;

/// The variables a step can read: those of an enclosing scope (a journey
/// reads what its target's login extracts) plus its own, without copying the
/// enclosing set for every journey.
struct Scope<'a> {
    outer: Option<&'a HashSet<String>>,
    own: HashSet<String>,
}

impl<'a> Scope<'a> {
    fn new(own: HashSet<String>) -> Scope<'a> {
        Scope { outer: None, own }
    }

    fn within(outer: &'a HashSet<String>) -> Scope<'a> {
        Scope {
            outer: Some(outer),
            own: HashSet::new(),
        }
    }

    fn contains(&self, var: &str) -> bool {
        self.own.contains(var) || self.outer.is_some_and(|o| o.contains(var))
    }

    fn insert(&mut self, var: String) {
        self.own.insert(var);
    }
}

const DEFAULT_MAX_SESSIONS: usize = 16;

/// Collects problems with the file and context they belong to, and what
/// the config will need from the machine.
struct Checker<'a> {
    file: &'a str,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
    requirements: Vec<Requirement>,
}

fn line_of<T>(s: &Spanned<T>) -> usize {
    s.span().start().map(|m| m.line()).unwrap_or(1)
}

/// A URL as written, fit to quote in a message: whatever stands before an
/// `@` in it (a user name and password, `http://bob:pw@host/`) is blanked,
/// whether or not the URL parses (`http://bob:pw@[::1/` does not).
pub fn redact_userinfo(raw: &str) -> String {
    let scheme_end = raw
        .find(':')
        .filter(|&i| {
            i > 0
                && raw[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        })
        .map_or(0, |i| i + 1);
    let rest = &raw[scheme_end..];
    let authority = scheme_end + (rest.len() - rest.trim_start_matches(['/', '\\']).len());
    // The last `@` anywhere: a password may hold `/`, `?` or `#`, which
    // would end the authority early.
    match raw[authority..].rfind('@') {
        Some(at) => format!("{}[redacted]{}", &raw[..authority], &raw[authority + at..]),
        None => raw.to_string(),
    }
}

/// Whether `raw` names a host after its `scheme://`: the URL parser reads
/// `http:///nohost` and `http:nohost` as host `nohost`, which is not what
/// was meant.
fn has_authority(raw: &str) -> bool {
    let Some((_, rest)) = raw.split_once("://") else {
        return false;
    };
    !rest.is_empty() && !rest.starts_with(['/', '\\', '?', '#'])
}

/// An http or https URL with a host and no user name or password, or the
/// problem with it (the URL quoted with any user name and password blanked).
fn http_url(raw: &str, what: &str, credentials_in: &str) -> Result<url::Url, String> {
    let shown = redact_userinfo(raw);
    let parsed = url::Url::parse(raw).map_err(|e| format!("{what} {shown:?}: {e}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{what} must not carry a user name or password: give them in `{credentials_in}`"
        ));
    }
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host().is_none()
        || !has_authority(raw)
    {
        return Err(format!(
            "{what} {shown:?} must be an http or https URL with a host"
        ));
    }
    Ok(parsed)
}

impl Checker<'_> {
    fn error(&mut self, line: usize, context: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_string(),
            line,
            context: context.to_string(),
            message: message.into(),
        });
    }

    fn require(&mut self, line: usize, context: &str, need: Need) {
        self.requirements.push(Requirement {
            line,
            context: context.to_string(),
            need,
        });
    }

    fn warn(&mut self, line: usize, context: &str, message: impl Into<String>) {
        self.warnings.push(Problem {
            file: self.file.to_string(),
            line,
            context: context.to_string(),
            message: message.into(),
        });
    }

    fn duration(&mut self, value: &S, what: &str, context: &str) -> Option<Duration> {
        match humantime::parse_duration(value.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    line_of(value),
                    context,
                    format!("{what}: cannot read duration {:?}: {e}", value.as_str()),
                );
                None
            }
        }
    }

    fn opt_duration(&mut self, value: &Option<S>, what: &str, context: &str) -> Option<Duration> {
        value.as_ref().and_then(|v| self.duration(v, what, context))
    }

    fn regex(&mut self, value: &S, what: &str, context: &str) -> Option<Regex> {
        match Regex::new(value) {
            Ok(r) => Some(r),
            Err(e) => {
                let text = e.to_string();
                let last = text.lines().last().unwrap_or("").trim();
                let first = last.strip_prefix("error: ").unwrap_or(last).to_string();
                self.error(
                    line_of(value),
                    context,
                    format!("{what}: invalid regex {:?}: {first}", value.as_str()),
                );
                None
            }
        }
    }

    fn template(&mut self, value: &S, what: &str, context: &str) -> Template {
        match Template::parse(value) {
            Ok(t) => t,
            Err(e) => {
                self.error(line_of(value), context, format!("{what}: {e}"));
                Template::literal(value)
            }
        }
    }

    fn name(&mut self, value: &S, kind: &str, context: &str) {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !ok {
            self.error(
                line_of(value),
                context,
                format!(
                    "{kind} name {:?} must be 1-64 characters of letters, digits, '_', '-' or '.' (it becomes a metric label)",
                    value.as_str()
                ),
            );
        }
    }
}

pub fn validate(raw: RawConfig, file: &str) -> Result<Loaded, ConfigError> {
    let mut c = Checker {
        file,
        problems: Vec::new(),
        warnings: Vec::new(),
        requirements: Vec::new(),
    };

    let site = site(&mut c, raw.site.as_ref());
    let agent = raw.agent.as_ref();
    let max_sessions_raw = agent.and_then(|a| a.max_sessions.as_ref());
    let max_sessions = max_sessions_raw
        .map(|m| **m)
        .unwrap_or(DEFAULT_MAX_SESSIONS);
    let calendar_scale = calendar_scale(&mut c, agent);
    let age_bands = age_bands(&mut c, agent);

    let targets = targets(&mut c, &raw.targets);
    let journeys = journeys(&mut c, &raw.journeys, &targets);
    check_max_sessions(
        &mut c,
        max_sessions,
        max_sessions_raw,
        &targets.list,
        !journeys.is_empty(),
    );
    let changes = changes(&mut c, &raw.changes);
    let journal = journal(&mut c, raw.journal.as_ref());

    let browser = browser::settings(&mut c, raw.browser.as_ref());
    browser::require_chromium(&mut c, &raw);

    let remote_write = remote_write::remote_writes(
        &mut c,
        &raw.remote_write,
        &site,
        journal.as_ref().map(|j| j.path.as_path()),
    );
    let names: HashSet<&str> = journeys.iter().map(|j| j.name.as_str()).collect();
    let practitioners = practitioners::practitioners(&mut c, raw.practitioners.as_ref(), &names);

    if !c.problems.is_empty() {
        return Err(ConfigError::Invalid {
            file: file.to_string(),
            problems: c.problems,
        });
    }
    Ok(Loaded {
        config: Config {
            origin: file.to_string(),
            site,
            max_sessions,
            age_bands,
            calendar_scale,
            targets: targets.list,
            journeys,
            changes,
            journal,
            remote_write,
            practitioners,
            browser,
            requirements: c.requirements,
        },
        warnings: c.warnings,
    })
}

/// `site`: required, and a metric label.
fn site(c: &mut Checker, site: Option<&S>) -> String {
    match site {
        Some(site) => {
            c.name(site, "site", "");
            site.to_string()
        }
        None => {
            c.error(
                1,
                "",
                "`site` is required: the office the agent probes from",
            );
            String::new()
        }
    }
}

/// `agent.calendar_scale`, 1 when not given.
fn calendar_scale(c: &mut Checker, agent: Option<&RawAgent>) -> f64 {
    match agent.and_then(|a| a.calendar_scale.as_ref()) {
        None => 1.0,
        Some(scale) if scale.is_finite() && **scale > 0.0 => **scale,
        Some(scale) => {
            c.error(
                line_of(scale),
                "",
                "agent.calendar_scale must be a number above zero (1 for a real system)",
            );
            1.0
        }
    }
}

/// `agent.age_bands`, the default bands when not given or not usable.
fn age_bands(c: &mut Checker, agent: Option<&RawAgent>) -> crate::detect::AgeBands {
    let Some(edges) = agent.and_then(|a| a.age_bands.as_ref()) else {
        return crate::detect::AgeBands::default();
    };
    let parsed: Vec<Duration> = edges
        .iter()
        .filter_map(|e| c.duration(e, "agent.age_bands", ""))
        .collect();
    let increasing = parsed.windows(2).all(|w| w[0] < w[1]);
    if parsed.is_empty() || !increasing || parsed[0].is_zero() {
        let line = edges.first().map(line_of).unwrap_or(1);
        c.error(
            line,
            "",
            "agent.age_bands must be increasing durations above zero, e.g. [1h, 2h, 3h, 4h]",
        );
        crate::detect::AgeBands::default()
    } else {
        crate::detect::AgeBands::new(parsed)
    }
}

/// The checked targets in file order, and what journeys look up by name.
/// Names are looked up in maps, never by scanning a list: loading stays
/// linear in the size of the file, however many journeys it holds.
struct Targets {
    list: Vec<Arc<Target>>,
    by_name: HashMap<String, Arc<Target>>,
    facts: HashMap<String, TargetFacts>,
}

fn targets(c: &mut Checker, raw: &[RawTarget]) -> Targets {
    if raw.is_empty() {
        c.error(1, "", "no targets: at least one target is required");
    }
    let mut targets = Targets {
        list: Vec::new(),
        by_name: HashMap::new(),
        facts: HashMap::new(),
    };
    for rt in raw {
        let context = format!("target {:?}", rt.name.as_str());
        c.name(&rt.name, "target", &context);
        if targets.by_name.contains_key(rt.name.as_str()) {
            c.error(line_of(&rt.name), &context, "duplicate target name");
        }
        let (target, vars, browser_vars) = target(c, rt, &context);
        let target = Arc::new(target);
        targets
            .facts
            .entry(target.name.clone())
            .or_insert_with(|| TargetFacts::new(&target, vars, browser_vars));
        targets
            .by_name
            .entry(target.name.clone())
            .or_insert_with(|| target.clone());
        targets.list.push(target);
    }
    targets
}

fn journeys(c: &mut Checker, raw: &[RawJourney], targets: &Targets) -> Vec<Arc<Journey>> {
    if raw.is_empty() {
        c.error(1, "", "no journeys: at least one journey is required");
    }
    let mut journeys: Vec<Arc<Journey>> = Vec::new();
    let mut journey_names: HashSet<&str> = HashSet::new();
    let mut total_steps = 0usize;
    for rj in raw {
        let context = format!("journey {:?}", rj.name.as_str());
        journey_name(c, rj, &mut journey_names, &context);
        let Some(target) = journey_target(c, rj, targets, &context) else {
            continue;
        };
        total_steps = total_steps.saturating_add(journey_steps(rj, &target));
        if total_steps > MAX_STEPS {
            c.error(
                line_of(&rj.name),
                &context,
                format!("more than {MAX_STEPS} steps in all journeys (login and logout counted per journey): each step has its own metric series"),
            );
            break;
        }
        let target_facts = &targets.facts[&target.name];
        if let Some(j) = journey(c, rj, target, target_facts, &context) {
            journeys.push(Arc::new(j));
        }
    }
    journeys
}

/// A journey's name: a label, not the heartbeat's, not taken twice.
fn journey_name<'r>(
    c: &mut Checker,
    rj: &'r RawJourney,
    seen: &mut HashSet<&'r str>,
    context: &str,
) {
    c.name(&rj.name, "journey", context);
    if rj.name.as_str() == HEARTBEAT_JOURNEY {
        c.error(
            line_of(&rj.name),
            context,
            format!(
                "the journey name {:?} is reserved for the agent's own requests",
                rj.name.as_str()
            ),
        );
    }
    if !seen.insert(rj.name.as_str()) {
        c.error(line_of(&rj.name), context, "duplicate journey name");
    }
}

/// The target a journey names, or `None` when there is none by that name.
fn journey_target(
    c: &mut Checker,
    rj: &RawJourney,
    targets: &Targets,
    context: &str,
) -> Option<Arc<Target>> {
    if let Some(target) = targets.by_name.get(rj.target.as_str()) {
        return Some(target.clone());
    }
    if targets.list.is_empty() {
        // "no targets" is already reported.
        return None;
    }
    let known: Vec<&str> = targets.list.iter().map(|t| t.name.as_str()).collect();
    c.error(
        line_of(&rj.target),
        context,
        format!(
            "unknown target {:?} (known: {})",
            rj.target.as_str(),
            known.join(", ")
        ),
    );
    None
}

/// The steps a journey adds to the metrics, its target's login and logout
/// included when it logs in.
fn journey_steps(rj: &RawJourney, target: &Target) -> usize {
    let logs_in = rj.login.as_ref().is_none_or(|b| **b);
    match (&rj.browser, &target.browser) {
        (Some(b), login) => b.steps.len().saturating_add(match (logs_in, login) {
            (true, Some(l)) => l.login.len() + l.logout.len(),
            _ => 0,
        }),
        (None, _) => rj.steps.len().saturating_add(if logs_in {
            target.login.len() + usize::from(target.logout.is_some())
        } else {
            0
        }),
    }
}

/// `agent.max_sessions` must leave room for every kept session and a journey.
fn check_max_sessions(
    c: &mut Checker,
    max_sessions: usize,
    max_sessions_raw: Option<&Spanned<usize>>,
    targets: &[Arc<Target>],
    has_journeys: bool,
) {
    // Kept sessions hold a session slot for their whole life; every journey
    // run needs one more.
    let kept: usize = targets
        .iter()
        .filter_map(|t| t.keep_sessions.as_ref())
        .fold(0usize, |sum, k| sum.saturating_add(k.count));
    let needed = kept.saturating_add(usize::from(has_journeys));
    if max_sessions < needed.max(1) {
        let line = max_sessions_raw.map(line_of).unwrap_or(1);
        let message = if kept == 0 {
            format!("agent.max_sessions ({max_sessions}) must be above zero")
        } else {
            format!(
                "agent.max_sessions ({max_sessions}) must be at least {needed}: kept sessions take {kept} and a journey needs one more"
            )
        };
        c.error(line, "", message);
    }
}

fn changes(c: &mut Checker, raw: &[RawChange]) -> Vec<ChangeEvent> {
    let mut changes = Vec::new();
    for ch in raw {
        let context = format!("change {:?}", ch.name.as_str());
        match chrono::DateTime::parse_from_rfc3339(ch.at.trim()) {
            Ok(at) => changes.push(ChangeEvent {
                name: ch.name.to_string(),
                at: at.into(),
                description: ch.description.as_deref().cloned().unwrap_or_default(),
            }),
            Err(e) => c.error(
                line_of(&ch.at),
                &context,
                format!(
                    "at: {:?} is not an RFC 3339 time like 2026-03-01T09:00:00Z: {e}",
                    ch.at.as_str()
                ),
            ),
        }
    }
    changes
}

fn journal(c: &mut Checker, raw: Option<&RawJournal>) -> Option<JournalOptions> {
    raw.map(|j| {
        let keep_successes = c.opt_duration(&j.keep_successes, "journal.keep_successes", "journal").unwrap_or(Duration::from_secs(90 * 86_400));
        let keep_failures = c.opt_duration(&j.keep_failures, "journal.keep_failures", "journal").unwrap_or(Duration::from_secs(400 * 86_400));
        if keep_failures < keep_successes {
            c.warn(line_of(&j.path), "journal", "keep_failures is shorter than keep_successes: failures are the evidence, keep them longer");
        }
        let path = PathBuf::from(j.path.as_str());
        c.require(line_of(&j.path), "journal", Need::Writable { key: "journal.path".into(), path: path.clone() });
        JournalOptions { path, keep_successes, keep_failures }
    })
}

fn secret(
    c: &mut Checker,
    raw: &Spanned<RawSecret>,
    what: &str,
    context: &str,
    may_be_inline: bool,
) -> Option<SecretSource> {
    let given: Vec<&S> = [&raw.env, &raw.file, &raw.value]
        .into_iter()
        .flatten()
        .collect();
    let Some(first) = given.first() else {
        c.error(
            line_of(raw),
            context,
            format!("{what}: give one of `env` or `file`"),
        );
        return None;
    };
    if given.len() > 1 {
        c.error(
            line_of(first),
            context,
            format!("{what}: give only one of `env`, `file` or `value`"),
        );
        return None;
    }
    let source = match (&raw.env, &raw.file) {
        (Some(env), _) => Some((env, SecretSource::Env(env.to_string()))),
        (None, Some(file)) => Some((file, SecretSource::File(PathBuf::from(file.as_str())))),
        (None, None) => None,
    };
    if let Some((given, source)) = source {
        let need = Need::Secret {
            key: what.to_string(),
            source: source.clone(),
        };
        c.require(line_of(given), context, need);
        return Some(source);
    }
    let value = raw.value.as_ref()?;
    if !may_be_inline {
        c.error(
            line_of(value),
            context,
            format!("{what}: secrets are never written inline; read it from `env` or `file`"),
        );
        return None;
    }
    Some(SecretSource::Value(value.to_string()))
}

/// `interactive` or `report`, on a journey or a step.
fn kind(c: &mut Checker, text: &S, context: &str) -> JourneyKind {
    match text.as_str() {
        "interactive" => JourneyKind::Interactive,
        "report" => JourneyKind::Report,
        other => {
            c.error(
                line_of(text),
                context,
                format!("kind {other:?} must be `interactive` or `report`"),
            );
            JourneyKind::Interactive
        }
    }
}

/// A short description of a CSS selector error (scraper's own text for most
/// kinds is "Unexpected error occurred. Please report this to the developer").
fn css_error(e: &scraper::error::SelectorErrorKind<'_>) -> String {
    use scraper::error::SelectorErrorKind as K;
    match e {
        K::UnexpectedToken(token) => format!("unexpected {token:?}"),
        K::EndOfLine => "unexpected end".to_string(),
        K::ExpectedColonOnPseudoElement(_) | K::ExpectedIdentityOnPseudoElement(_) => {
            "bad pseudo-element".to_string()
        }
        K::UnexpectedSelectorParseError(kind) => {
            // `DanglingCombinator` -> "dangling combinator"
            let name = format!("{kind:?}");
            let name = name.split(['(', ' ', '{']).next().unwrap_or("");
            let mut words = String::new();
            for (i, ch) in name.chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    words.push(' ');
                }
                words.push(ch.to_ascii_lowercase());
            }
            if words.is_empty() {
                "not a selector".to_string()
            } else {
                words
            }
        }
        K::InvalidAtRule(_) | K::InvalidAtRuleBody | K::QualRuleInvalid => {
            "not a selector".to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_user_name_and_password_are_blanked_whether_or_not_it_parses() {
        for (raw, shown) in [
            (
                "http://bob:pw@127.0.0.1:99999/",
                "http://[redacted]@127.0.0.1:99999/",
            ),
            ("http://bob:pw@[::1/", "http://[redacted]@[::1/"),
            ("https://bob:p/w?#@host/x", "https://[redacted]@host/x"),
            ("http:bob:pw@host", "http:[redacted]@host"),
            ("bob:pw@host", "bob:[redacted]@host"),
            ("http://host/path", "http://host/path"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_userinfo(raw), shown, "{raw}");
        }
    }

    #[test]
    fn a_url_needs_a_host_after_its_slashes() {
        for raw in ["http:///nohost", "http:nohost", "https:////x", "http://"] {
            assert!(!has_authority(raw), "{raw}");
        }
        assert!(has_authority("http://host/"));
        assert_eq!(
            http_url("http:///nohost", "base_url", "credentials").unwrap_err(),
            r#"base_url "http:///nohost" must be an http or https URL with a host"#
        );
    }
}
