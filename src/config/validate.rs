//! Stage two: turns [`RawConfig`] into a [`Config`], collecting every problem.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use marked_yaml::Spanned;
use regex::Regex;
use reqwest::Method;
use url::Url;

use super::model::*;
use super::raw::*;
use super::template::Template;
use super::{ConfigError, Loaded, Problem};

mod browser;
mod practitioners;
mod remote_write;

/// Variables every step can read without extracting them.
pub const BUILTIN_VARS: [&str; 3] = ["username", "password", "run_id"];

const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;
/// Bodies are held in memory to be checked, so the cap has a ceiling.
const MAX_MAX_BODY: u64 = 1 << 30;

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

/// What journeys need to know of their target, worked out once per target.
struct TargetFacts {
    /// Variables after the login steps.
    vars: HashSet<String>,
    /// Variables after the browser login steps.
    browser_vars: HashSet<String>,
    /// Variables a journey that does not log in can read.
    anonymous: HashSet<String>,
    login_names: HashSet<String>,
    /// The longest the login and logout steps can take without freezing.
    login_worst: Duration,
}

/// The longest `steps` can take with every one just under `freeze_after`.
/// Saturating: absurd durations ("1000000000 years") must not overflow.
fn worst_case<'a>(steps: impl IntoIterator<Item = &'a Step>) -> Duration {
    steps.into_iter().fold(Duration::ZERO, |sum, s| {
        sum.saturating_add(s.timings.freeze_after.saturating_add(s.think_time))
    })
}

/// [`worst_case`] for browser steps.
fn browser_worst_case<'a>(
    steps: impl IntoIterator<Item = &'a crate::config::browser::BrowserStep>,
) -> Duration {
    steps.into_iter().fold(Duration::ZERO, |sum, s| {
        sum.saturating_add(s.timings.freeze_after.saturating_add(s.think_time))
    })
}

/// Whether `name` is a valid HTTP header name.
fn valid_header_name(name: &str) -> bool {
    reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
}
const DEFAULT_MAX_SESSIONS: usize = 16;

/// Collects problems with the file and context they belong to.
struct Checker<'a> {
    file: &'a str,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

fn line_of<T>(s: &Spanned<T>) -> usize {
    s.span().start().map(|m| m.line()).unwrap_or(1)
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
    };

    let site = match &raw.site {
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
    };
    let max_sessions_raw = raw.agent.as_ref().and_then(|a| a.max_sessions.as_ref());
    let max_sessions = max_sessions_raw
        .map(|m| **m)
        .unwrap_or(DEFAULT_MAX_SESSIONS);

    let calendar_scale = match raw.agent.as_ref().and_then(|a| a.calendar_scale.as_ref()) {
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
    };
    let age_bands = match raw.agent.as_ref().and_then(|a| a.age_bands.as_ref()) {
        None => crate::detect::AgeBands::default(),
        Some(edges) => {
            let parsed: Vec<Duration> = edges
                .iter()
                .filter_map(|e| c.duration(e, "agent.age_bands", ""))
                .collect();
            let increasing = parsed.windows(2).all(|w| w[0] < w[1]);
            if parsed.is_empty() || !increasing || parsed[0].is_zero() {
                let line = edges.first().map(line_of).unwrap_or(1);
                c.error(line, "", "agent.age_bands must be increasing durations above zero, e.g. [1h, 2h, 3h, 4h]");
                crate::detect::AgeBands::default()
            } else {
                crate::detect::AgeBands::new(parsed)
            }
        }
    };

    if raw.targets.is_empty() {
        c.error(1, "", "no targets: at least one target is required");
    }
    // Names are looked up in maps, never by scanning a list: loading stays
    // linear in the size of the file, however many journeys it holds.
    let mut targets: Vec<Arc<Target>> = Vec::new();
    let mut targets_by_name: HashMap<String, Arc<Target>> = HashMap::new();
    let mut facts: HashMap<String, TargetFacts> = HashMap::new();
    for rt in &raw.targets {
        let context = format!("target {:?}", rt.name.as_str());
        c.name(&rt.name, "target", &context);
        if targets_by_name.contains_key(rt.name.as_str()) {
            c.error(line_of(&rt.name), &context, "duplicate target name");
        }
        let (target, vars, browser_vars) = target(&mut c, rt, &context);
        let target = Arc::new(target);
        facts
            .entry(target.name.clone())
            .or_insert_with(|| TargetFacts {
                vars,
                browser_vars,
                anonymous: builtin_vars(target.username.is_some(), target.password.is_some()),
                login_names: target.login.iter().map(|s| s.name.clone()).collect(),
                login_worst: worst_case(target.login.iter().chain(&target.logout)),
            });
        targets_by_name
            .entry(target.name.clone())
            .or_insert_with(|| target.clone());
        targets.push(target);
    }

    if raw.journeys.is_empty() {
        c.error(1, "", "no journeys: at least one journey is required");
    }
    let mut journeys: Vec<Arc<Journey>> = Vec::new();
    let mut journey_names: HashSet<&str> = HashSet::new();
    let mut total_steps = 0usize;
    for rj in &raw.journeys {
        let context = format!("journey {:?}", rj.name.as_str());
        c.name(&rj.name, "journey", &context);
        if rj.name.as_str() == HEARTBEAT_JOURNEY {
            c.error(
                line_of(&rj.name),
                &context,
                format!(
                    "the journey name {:?} is reserved for the agent's own requests",
                    rj.name.as_str()
                ),
            );
        }
        if !journey_names.insert(rj.name.as_str()) {
            c.error(line_of(&rj.name), &context, "duplicate journey name");
        }
        let Some(target) = targets_by_name.get(rj.target.as_str()).cloned() else {
            if targets.is_empty() {
                // "no targets" is already reported.
                continue;
            }
            let known: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
            c.error(
                line_of(&rj.target),
                &context,
                format!(
                    "unknown target {:?} (known: {})",
                    rj.target.as_str(),
                    known.join(", ")
                ),
            );
            continue;
        };
        let logs_in = rj.login.as_ref().is_none_or(|b| **b);
        let steps = match (&rj.browser, &target.browser) {
            (Some(b), login) => b.steps.len().saturating_add(match (logs_in, login) {
                (true, Some(l)) => l.login.len() + l.logout.len(),
                _ => 0,
            }),
            (None, _) => rj.steps.len().saturating_add(if logs_in {
                target.login.len() + usize::from(target.logout.is_some())
            } else {
                0
            }),
        };
        total_steps = total_steps.saturating_add(steps);
        if total_steps > MAX_STEPS {
            c.error(
                line_of(&rj.name),
                &context,
                format!("more than {MAX_STEPS} steps in all journeys (login and logout counted per journey): each step has its own metric series"),
            );
            break;
        }
        let target_facts = &facts[&target.name];
        if let Some(j) = journey(&mut c, rj, target, target_facts, &context) {
            journeys.push(Arc::new(j));
        }
    }

    // Kept sessions hold a session slot for their whole life; every journey
    // run needs one more.
    let kept: usize = targets
        .iter()
        .filter_map(|t| t.keep_sessions.as_ref())
        .fold(0usize, |sum, k| sum.saturating_add(k.count));
    let needed = kept.saturating_add(usize::from(!journeys.is_empty()));
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

    let mut changes = Vec::new();
    for ch in &raw.changes {
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

    let journal = raw.journal.as_ref().map(|j| {
        let keep_successes = c.opt_duration(&j.keep_successes, "journal.keep_successes", "journal").unwrap_or(Duration::from_secs(90 * 86_400));
        let keep_failures = c.opt_duration(&j.keep_failures, "journal.keep_failures", "journal").unwrap_or(Duration::from_secs(400 * 86_400));
        if keep_failures < keep_successes {
            c.warn(line_of(&j.path), "journal", "keep_failures is shorter than keep_successes: failures are the evidence, keep them longer");
        }
        JournalOptions { path: PathBuf::from(j.path.as_str()), keep_successes, keep_failures }
    });

    let browser = browser::settings(&mut c, raw.browser.as_ref());

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
            targets,
            journeys,
            changes,
            journal,
            remote_write,
            practitioners,
            browser,
        },
        warnings: c.warnings,
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
    if let Some(env) = &raw.env {
        return Some(SecretSource::Env(env.to_string()));
    }
    if let Some(file) = &raw.file {
        return Some(SecretSource::File(PathBuf::from(file.as_str())));
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

fn target(
    c: &mut Checker,
    rt: &RawTarget,
    context: &str,
) -> (Target, HashSet<String>, HashSet<String>) {
    let base_url = match Url::parse(rt.base_url.trim()) {
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            c.error(
                line_of(&rt.base_url),
                context,
                "base_url must not carry a user name or password: give them in `credentials`",
            );
            placeholder_url()
        }
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        Ok(_) => {
            c.error(
                line_of(&rt.base_url),
                context,
                format!(
                    "base_url {:?} must be an http or https URL with a host",
                    rt.base_url.as_str()
                ),
            );
            placeholder_url()
        }
        Err(e) => {
            c.error(
                line_of(&rt.base_url),
                context,
                format!("base_url {:?}: {e}", rt.base_url.as_str()),
            );
            placeholder_url()
        }
    };
    let allowed_origins = allowed_origins(c, &rt.allowed_origins, context);
    let origins = Origins {
        base: &base_url,
        allowed: &allowed_origins,
    };
    let proxy = rt.proxy.as_ref().and_then(|p| match Url::parse(p.trim()) {
        Ok(u) => Some(u),
        Err(e) => {
            c.error(line_of(p), context, format!("proxy {:?}: {e}", p.as_str()));
            None
        }
    });
    if let Some(tls) = &rt.tls {
        if base_url.scheme() == "http" {
            if let Some(skip) = tls.insecure_skip_verify.as_ref().filter(|b| ***b) {
                c.warn(
                    line_of(skip),
                    context,
                    "tls.insecure_skip_verify has no effect: base_url is http://",
                );
            }
            if let Some(ca) = &tls.ca_file {
                c.warn(
                    line_of(ca),
                    context,
                    "tls.ca_file has no effect: base_url is http://",
                );
            }
        }
    }
    let connect_timeout = c
        .opt_duration(&rt.connect_timeout, "connect_timeout", context)
        .unwrap_or(Duration::from_secs(10));
    if connect_timeout.is_zero() {
        if let Some(v) = &rt.connect_timeout {
            c.error(line_of(v), context, "connect_timeout must be above zero");
        }
    }
    let max_body_bytes = match &rt.max_body {
        None => DEFAULT_MAX_BODY,
        Some(v) => parse_bytes(v.trim()).unwrap_or_else(|| {
            c.error(
                line_of(v),
                context,
                format!(
                    "max_body {:?}: give a size like 512KiB or 10MiB",
                    v.as_str()
                ),
            );
            DEFAULT_MAX_BODY
        }),
    };
    if let Some(v) = &rt.max_body {
        if max_body_bytes == 0 || max_body_bytes > MAX_MAX_BODY {
            c.error(
                line_of(v),
                context,
                format!(
                    "max_body {:?} must be between 1B and 1GiB (bodies are held in memory)",
                    v.as_str()
                ),
            );
        }
    }
    let (username, password) = match &rt.credentials {
        Some(cr) => (
            cr.username
                .as_ref()
                .and_then(|s| secret(c, s, "credentials.username", context, true)),
            cr.password
                .as_ref()
                .and_then(|s| secret(c, s, "credentials.password", context, false)),
        ),
        None => (None, None),
    };
    let defaults = timings(
        c,
        rt.defaults.as_ref(),
        &Timings::default(),
        context,
        "defaults",
    );

    let (browser, browser_vars) = browser::target_browser(
        c,
        rt.browser.as_ref(),
        &defaults,
        &origins,
        builtin_vars(username.is_some(), password.is_some()),
        context,
        line_of(&rt.name),
    );
    let mut vars = Scope::new(builtin_vars(username.is_some(), password.is_some()));
    let mut login = Vec::new();
    let mut seen = HashSet::new();
    for rs in &rt.login {
        let step_context = format!("{context}, login step {:?}", rs.name.as_str());
        if !seen.insert(rs.name.to_string()) {
            c.error(line_of(&rs.name), &step_context, "duplicate step name");
        }
        origins.check(c, &rs.path, &step_context);
        login.push(step(c, rs, &defaults, &mut vars, &step_context));
    }
    if !login.is_empty() && !login.iter().any(|s| step_reads(s, "password")) {
        c.warn(
            line_of(&rt.name),
            context,
            "no login step uses ${password}: the login cannot really sign in",
        );
    }
    let logout = rt.logout.as_ref().map(|rs| {
        let step_context = format!("{context}, logout step {:?}", rs.name.as_str());
        // The logout may use what login extracted, but defines nothing later steps read.
        origins.check(c, &rs.path, &step_context);
        step(
            c,
            rs,
            &defaults,
            &mut Scope::within(&vars.own),
            &step_context,
        )
    });

    let session_rules = match &rt.session_rules {
        None => SessionRules::default(),
        Some(r) => SessionRules {
            redirect_to: r
                .redirect_to
                .as_ref()
                .and_then(|v| c.regex(v, "session_rules.redirect_to", context)),
            statuses: r
                .statuses
                .iter()
                .map(|s| {
                    if !(100..=599).contains(&**s) {
                        c.error(
                            line_of(s),
                            context,
                            format!("session_rules.statuses: {} is not an HTTP status", **s),
                        );
                    } else if **s < 400 {
                        c.error(
                            line_of(s),
                            context,
                            format!(
                                "session_rules.statuses: {} is not an error status: every such answer would count as a logout",
                                **s
                            ),
                        );
                    }
                    **s
                })
                .collect(),
            body_matches: r
                .body_matches
                .as_ref()
                .and_then(|v| c.regex(v, "session_rules.body_matches", context)),
            cookie: r.cookie.as_ref().map(|v| v.to_string()),
            login_page: r.login_page.as_ref().is_none_or(|b| **b),
        },
    };
    if let Some(cookie) = rt.session_rules.as_ref().and_then(|r| r.cookie.as_ref()) {
        if login.is_empty() {
            c.warn(
                line_of(cookie),
                context,
                "session_rules.cookie is set, but the target has no `login` steps to start a session",
            );
        }
    }
    session_rule_warnings(c, &login, &session_rules, line_of(&rt.name), context);

    let heartbeat = rt.heartbeat.as_ref().map(|h| {
        let hb_context = format!("{context}, heartbeat");
        let every = c
            .duration(&h.every, "heartbeat.every", &hb_context)
            .unwrap_or(Duration::from_secs(5));
        if every.is_zero() {
            c.error(
                line_of(&h.every),
                &hb_context,
                "heartbeat.every must be above zero",
            );
        }
        origins.check(c, &h.path, &hb_context);
        if Template::parse(&h.path).is_ok_and(|t| t.vars().next().is_some()) {
            c.error(
                line_of(&h.path),
                &hb_context,
                "heartbeat.path cannot use variables: heartbeats run outside any session",
            );
        }
        let timings = Timings {
            slow_after: defaults.slow_after,
            freeze_after: c
                .opt_duration(&h.freeze_after, "heartbeat.freeze_after", &hb_context)
                .unwrap_or(defaults.freeze_after),
            give_up_after: c
                .opt_duration(&h.give_up_after, "heartbeat.give_up_after", &hb_context)
                .unwrap_or(defaults.give_up_after),
        };
        let timings = Timings {
            slow_after: timings.slow_after.min(timings.freeze_after),
            ..timings
        };
        check_timing_order(c, &timings, line_of(&h.every), &hb_context);
        Heartbeat {
            every,
            step: Step {
                name: HEARTBEAT_JOURNEY.to_string(),
                line: line_of(&h.path),
                method: Method::GET,
                path: c.template(&h.path, "heartbeat.path", &hb_context),
                query: Vec::new(),
                body: None,
                headers: Vec::new(),
                extract: Vec::new(),
                assertions: Assertions::default(),
                think_time: Duration::ZERO,
                timings,
                follow_redirects: false,
                kind: JourneyKind::Interactive,
            },
        }
    });
    let keep_sessions = rt.keep_sessions.as_ref().map(|k| {
        let keep_context = format!("{context}, keep_sessions");
        if *k.count == 0 {
            c.error(
                line_of(&k.count),
                &keep_context,
                "keep_sessions.count must be above zero",
            );
        }
        if login.is_empty() {
            c.error(
                line_of(&k.count),
                &keep_context,
                "kept sessions need the target's `login` steps",
            );
        }
        let every = c
            .duration(&k.every, "keep_sessions.every", &keep_context)
            .unwrap_or(Duration::from_secs(120));
        let max_age = c
            .duration(&k.max_age, "keep_sessions.max_age", &keep_context)
            .unwrap_or(Duration::from_secs(4 * 3600));
        if every.is_zero() || max_age <= every {
            c.error(
                line_of(&k.max_age),
                &keep_context,
                "keep_sessions.max_age must be above keep_sessions.every, which must be above zero",
            );
        }
        let keepalive_context =
            format!("{context}, keepalive step {:?}", k.keepalive.name.as_str());
        origins.check(c, &k.keepalive.path, &keepalive_context);
        KeepSessions {
            count: *k.count,
            stagger: c
                .opt_duration(&k.stagger, "keep_sessions.stagger", &keep_context)
                .unwrap_or_default(),
            every,
            max_age,
            keepalive: step(
                c,
                &k.keepalive,
                &defaults,
                &mut Scope::within(&vars.own),
                &keepalive_context,
            ),
        }
    });

    (
        Target {
            name: rt.name.to_string(),
            base_url,
            insecure_skip_verify: rt
                .tls
                .as_ref()
                .and_then(|t| t.insecure_skip_verify.as_ref())
                .map(|b| **b)
                .unwrap_or(false),
            ca_file: rt
                .tls
                .as_ref()
                .and_then(|t| t.ca_file.as_ref())
                .map(|f| PathBuf::from(f.as_str())),
            proxy,
            connect_timeout,
            max_body_bytes,
            max_redirects: rt.max_redirects.as_ref().map(|m| **m).unwrap_or(10),
            user_agent: rt
                .user_agent
                .as_ref()
                .map(|u| u.to_string())
                .unwrap_or_else(|| format!("casewatch/{}", env!("CARGO_PKG_VERSION"))),
            username,
            password,
            defaults,
            login,
            logout,
            session_rules,
            heartbeat,
            keep_sessions,
            allowed_origins,
            browser,
        },
        vars.own,
        browser_vars,
    )
}

/// Parses `allowed_origins`: each entry an http or https origin, nothing more.
fn allowed_origins(c: &mut Checker, raw: &[S], context: &str) -> Vec<url::Origin> {
    let mut origins = Vec::new();
    for entry in raw {
        let parsed = Url::parse(entry.trim()).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.username().is_empty()
                && u.password().is_none()
                && u.path() == "/"
                && u.query().is_none()
                && u.fragment().is_none()
        });
        match parsed {
            Some(url) => origins.push(url.origin()),
            None => c.error(
                line_of(entry),
                context,
                format!(
                    "allowed_origins: {:?} is not an origin (a scheme, host and port) like https://sso.example.gov.uk",
                    entry.as_str()
                ),
            ),
        }
    }
    origins
}

/// Where a target's steps may send requests.
struct Origins<'a> {
    base: &'a Url,
    allowed: &'a [url::Origin],
}

impl Origins<'_> {
    /// A step path that names another origin (`http://elsewhere/x`,
    /// `//elsewhere/x`) is refused unless the target allows that origin. A
    /// path built from variables is checked when it is sent.
    fn check(&self, c: &mut Checker, path: &S, context: &str) {
        if path.contains("${") {
            return;
        }
        let Ok(url) = self.base.join(path.trim()) else {
            return;
        };
        let origin = url.origin();
        if origin == self.base.origin() || self.allowed.contains(&origin) {
            return;
        }
        c.error(
            line_of(path),
            context,
            format!(
                "path {:?} leaves the target's origin ({}) for {}: name it in allowed_origins to allow it",
                path.as_str(),
                self.base.origin().ascii_serialization(),
                origin.ascii_serialization()
            ),
        );
    }
}

fn placeholder_url() -> Url {
    Url::parse("http://invalid.invalid/").expect("static URL parses")
}

/// Parses "512", "512KiB", "10MiB", "1GiB" (also kB/MB/GB as powers of ten).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

fn timings(
    c: &mut Checker,
    raw: Option<&RawTimings>,
    base: &Timings,
    context: &str,
    what: &str,
) -> Timings {
    let Some(raw) = raw else { return base.clone() };
    let t = Timings {
        slow_after: c
            .opt_duration(&raw.slow_after, &format!("{what}.slow_after"), context)
            .unwrap_or(base.slow_after),
        freeze_after: c
            .opt_duration(&raw.freeze_after, &format!("{what}.freeze_after"), context)
            .unwrap_or(base.freeze_after),
        give_up_after: c
            .opt_duration(
                &raw.give_up_after,
                &format!("{what}.give_up_after"),
                context,
            )
            .unwrap_or(base.give_up_after),
    };
    check_timing_order(
        c,
        &t,
        raw.slow_after
            .as_ref()
            .or(raw.freeze_after.as_ref())
            .map(line_of)
            .unwrap_or(1),
        context,
    );
    t
}

fn check_timing_order(c: &mut Checker, t: &Timings, line: usize, context: &str) {
    if t.freeze_after > t.give_up_after {
        c.error(line, context, format!(
            "freeze_after ({}) is above give_up_after ({}): the agent would give up before it could call the step frozen",
            humantime::format_duration(t.freeze_after), humantime::format_duration(t.give_up_after)));
    }
    if t.slow_after > t.freeze_after {
        c.error(
            line,
            context,
            format!(
                "slow_after ({}) is above freeze_after ({}): no step could ever be slow",
                humantime::format_duration(t.slow_after),
                humantime::format_duration(t.freeze_after)
            ),
        );
    }
}

/// A step's timings, HTTP or browser: its own `slow_after`, `freeze_after`
/// and `give_up_after` (in that order in `own`) where given, else the
/// `defaults`. Their order is checked when the step gives any of its own;
/// timings inherited whole from the defaults were checked there.
fn step_timings(
    c: &mut Checker,
    own: [&Option<S>; 3],
    defaults: &Timings,
    context: &str,
) -> Timings {
    let [slow_after, freeze_after, give_up_after] = own;
    let t = Timings {
        slow_after: c
            .opt_duration(slow_after, "slow_after", context)
            .unwrap_or(defaults.slow_after),
        freeze_after: c
            .opt_duration(freeze_after, "freeze_after", context)
            .unwrap_or(defaults.freeze_after),
        give_up_after: c
            .opt_duration(give_up_after, "give_up_after", context)
            .unwrap_or(defaults.give_up_after),
    };
    if let Some(first) = own.into_iter().flatten().next() {
        check_timing_order(c, &t, line_of(first), context);
    }
    t
}

fn step(
    c: &mut Checker,
    rs: &RawStep,
    defaults: &Timings,
    vars: &mut Scope,
    context: &str,
) -> Step {
    c.name(&rs.name, "step", context);
    let line = line_of(&rs.name);
    let method = match &rs.method {
        None => Method::GET,
        Some(m) => match Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes()) {
            Ok(method) => method,
            Err(_) => {
                c.error(
                    line_of(m),
                    context,
                    format!("method {:?} is not an HTTP method", m.as_str()),
                );
                Method::GET
            }
        },
    };
    let path = c.template(&rs.path, "path", context);
    let query = rs
        .query
        .iter()
        .map(|(k, v)| (k.clone(), c.template(v, "query", context)))
        .collect();
    let headers = rs
        .headers
        .iter()
        .map(|(k, v)| {
            if !valid_header_name(k) {
                c.error(
                    line_of(v),
                    context,
                    format!("headers: {k:?} is not a valid header name"),
                );
            }
            (k.clone(), c.template(v, "headers", context))
        })
        .collect();

    let bodies = [rs.form.is_some(), rs.json.is_some(), rs.body.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if bodies > 1 {
        c.error(
            line,
            context,
            "give at most one of `form`, `json` and `body`",
        );
    }
    let body = if let Some(form) = &rs.form {
        Some(Body::Form(
            form.iter()
                .map(|(k, v)| (k.clone(), c.template(v, "form", context)))
                .collect(),
        ))
    } else if let Some(json) = &rs.json {
        let text = serde_json::to_string(json).unwrap_or_default();
        match Template::parse(&text) {
            Ok(template) => Some(Body::Raw {
                template,
                content_type: "application/json",
            }),
            Err(e) => {
                c.error(line, context, format!("json: {e}"));
                None
            }
        }
    } else {
        rs.body.as_ref().map(|b| Body::Raw {
            template: c.template(b, "body", context),
            content_type: "text/plain; charset=utf-8",
        })
    };

    let think_time = c
        .opt_duration(&rs.think_time, "think_time", context)
        .unwrap_or_default();
    let timings = step_timings(
        c,
        [&rs.slow_after, &rs.freeze_after, &rs.give_up_after],
        defaults,
        context,
    );

    let built = Step {
        name: rs.name.to_string(),
        line,
        method,
        path,
        query,
        body,
        headers,
        extract: Vec::new(),
        assertions: assertions(c, rs.assertions.as_ref(), context),
        think_time,
        timings,
        follow_redirects: rs.follow_redirects.as_ref().map(|b| **b).unwrap_or(true),
        kind: rs
            .kind
            .as_ref()
            .map_or(JourneyKind::Interactive, |k| kind(c, k, context)),
    };
    // The path and query end up in URLs, which servers, proxies and our own
    // error messages write down: a password must never go there.
    let in_url = std::iter::once(&rs.path).chain(rs.query.values());
    for text in in_url {
        if Template::parse(text).is_ok_and(|t| t.vars().any(|v| v == "password")) {
            c.error(
                line_of(text),
                context,
                "${password} may only be used in a form, json, body or header value: in a path or query it would leak into URLs and logs",
            );
        }
    }
    let mut uses: Vec<(usize, &str)> = vec![(line_of(&rs.path), rs.path.as_str())];
    let spanned = rs
        .query
        .values()
        .chain(rs.headers.values())
        .chain(rs.form.iter().flat_map(|f| f.values()))
        .chain(rs.body.iter());
    uses.extend(spanned.map(|v| (line_of(v), v.as_str())));
    let json_text = rs.json.as_ref().map(|j| j.to_string());
    uses.extend(json_text.as_deref().map(|t| (line, t)));
    for (use_line, text) in uses {
        let Ok(template) = Template::parse(text) else {
            continue;
        };
        for var in template.vars() {
            if vars.contains(var) {
                continue;
            }
            let message = if var == "username" || var == "password" {
                format!("uses ${{{var}}} but the target has no credentials.{var}")
            } else {
                format!("uses ${{{var}}} but no earlier step extracts it")
            };
            c.error(use_line, context, message);
        }
    }
    let extract = rs
        .extract
        .iter()
        .filter_map(|e| extraction(c, e, context))
        .collect::<Vec<_>>();
    for e in &extract {
        vars.insert(e.var.clone());
    }
    Step { extract, ..built }
}

fn extraction(c: &mut Checker, re: &RawExtract, context: &str) -> Option<Extraction> {
    let line = line_of(&re.var);
    let sources = [
        &re.regex,
        &re.css,
        &re.json_pointer,
        &re.jsonpath,
        &re.header,
    ]
    .iter()
    .filter(|s| s.is_some())
    .count();
    if sources != 1 {
        c.error(line, context, format!("extract {:?}: give exactly one of `regex`, `css`, `json_pointer`, `jsonpath` or `header`", re.var.as_str()));
        return None;
    }
    if re.attr.is_some() && re.css.is_none() {
        c.error(
            line,
            context,
            format!("extract {:?}: `attr` only goes with `css`", re.var.as_str()),
        );
    }
    if Template::parse(&format!("${{{}}}", re.var.as_str())).is_err() {
        c.error(
            line,
            context,
            format!(
                "extract: variable name {:?} must be letters, digits, '_' or '.'",
                re.var.as_str()
            ),
        );
        return None;
    }
    if BUILTIN_VARS.contains(&re.var.as_str()) {
        c.error(
            line,
            context,
            format!(
                "extract {:?}: the variable name is reserved for the agent",
                re.var.as_str()
            ),
        );
        return None;
    }
    let what = format!("extract {:?}", re.var.as_str());
    let from = if let Some(r) = &re.regex {
        Extractor::Regex(c.regex(r, &what, context)?)
    } else if let Some(css) = &re.css {
        match scraper::Selector::parse(css) {
            Ok(selector) => Extractor::Css {
                selector,
                attr: re.attr.as_ref().map(|a| a.to_string()),
            },
            Err(e) => {
                c.error(
                    line_of(css),
                    context,
                    format!(
                        "{what}: invalid CSS selector {:?}: {}",
                        css.as_str(),
                        css_error(&e)
                    ),
                );
                return None;
            }
        }
    } else if let Some(p) = &re.json_pointer {
        if !(p.is_empty() || p.starts_with('/')) {
            c.error(
                line_of(p),
                context,
                format!("{what}: JSON pointer {:?} must start with '/'", p.as_str()),
            );
            return None;
        }
        Extractor::JsonPointer(p.to_string())
    } else if let Some(p) = &re.jsonpath {
        match serde_json_path::JsonPath::parse(p) {
            Ok(path) => Extractor::JsonPath(path),
            Err(e) => {
                c.error(
                    line_of(p),
                    context,
                    format!("{what}: invalid JSONPath {:?}: {e}", p.as_str()),
                );
                return None;
            }
        }
    } else {
        let header = re.header.as_ref()?;
        if !valid_header_name(header) {
            c.error(
                line_of(header),
                context,
                format!("{what}: {:?} is not a valid header name", header.as_str()),
            );
            return None;
        }
        Extractor::Header(header.to_ascii_lowercase())
    };
    Some(Extraction {
        var: re.var.to_string(),
        from,
    })
}

fn assertions(c: &mut Checker, raw: Option<&RawAssert>, context: &str) -> Assertions {
    let Some(raw) = raw else {
        return Assertions::default();
    };
    for s in &raw.status {
        if !(100..=599).contains(&**s) {
            c.error(
                line_of(s),
                context,
                format!("assert.status: {} is not an HTTP status", **s),
            );
        }
    }
    Assertions {
        status: raw.status.iter().map(|s| **s).collect(),
        body_contains: raw.body_contains.iter().map(|s| s.to_string()).collect(),
        body_not_contains: raw
            .body_not_contains
            .iter()
            .map(|s| s.to_string())
            .collect(),
        body_matches: raw
            .body_matches
            .iter()
            .filter_map(|r| c.regex(r, "assert.body_matches", context))
            .collect(),
        headers: raw
            .headers
            .iter()
            .filter_map(|(name, r)| {
                if !valid_header_name(name) {
                    c.error(
                        line_of(r),
                        context,
                        format!("assert.headers: {name:?} is not a valid header name"),
                    );
                    return None;
                }
                Some((
                    name.to_ascii_lowercase(),
                    c.regex(r, "assert.headers", context)?,
                ))
            })
            .collect(),
    }
}

fn journey(
    c: &mut Checker,
    rj: &RawJourney,
    target: Arc<Target>,
    facts: &TargetFacts,
    context: &str,
) -> Option<Journey> {
    let schedule = match &rj.schedule {
        None => {
            c.error(
                line_of(&rj.name),
                context,
                "`schedule` is required (at least `interval`)",
            );
            return None;
        }
        Some(s) => {
            let interval = c
                .duration(&s.interval, "schedule.interval", context)
                .unwrap_or(Duration::from_secs(60));
            if interval.is_zero() {
                c.error(
                    line_of(&s.interval),
                    context,
                    "schedule.interval must be above zero",
                );
            }
            let jitter = c
                .opt_duration(&s.jitter, "schedule.jitter", context)
                .unwrap_or_default();
            if jitter >= interval && !interval.is_zero() {
                c.error(
                    s.jitter.as_ref().map(line_of).unwrap_or(1),
                    context,
                    "schedule.jitter must be below schedule.interval",
                );
            }
            let active_hours = s.active_hours.as_ref().and_then(|h| {
                let parsed = parse_active_hours(h.trim());
                match parsed {
                    None => c.error(
                        line_of(h),
                        context,
                        format!(
                            "schedule.active_hours {:?}: write it as HH:MM-HH:MM",
                            h.as_str()
                        ),
                    ),
                    Some((from, to)) if from == to => c.error(
                        line_of(h),
                        context,
                        format!(
                            "schedule.active_hours {:?} is an empty window: the journey would never run",
                            h.as_str()
                        ),
                    ),
                    Some(_) => {}
                }
                parsed
            });
            Schedule {
                interval,
                jitter,
                active_hours,
            }
        }
    };
    let login = rj.login.as_ref().map(|b| **b).unwrap_or(true);
    let in_browser = rj.browser.is_some();
    if in_browser && !rj.steps.is_empty() {
        c.error(
            line_of(&rj.name),
            context,
            "a browser journey's steps go under `browser.steps`: give no `steps`",
        );
    }
    if login && !in_browser && target.login.is_empty() {
        c.error(line_of(&rj.name), context, format!("logs in, but target {:?} has no `login` steps (set `login: false` for anonymous journeys)", target.name));
    }
    let mut vars = if login {
        Scope::within(&facts.vars)
    } else {
        Scope::new(builtin_vars(
            target.username.is_some(),
            target.password.is_some(),
        ))
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut step_names: HashSet<&str> = HashSet::new();
    for rs in &rj.steps {
        let step_context = format!("{context}, step {:?}", rs.name.as_str());
        if !step_names.insert(rs.name.as_str())
            || (login && facts.login_names.contains(rs.name.as_str()))
        {
            c.error(line_of(&rs.name), &step_context, "duplicate step name");
        }
        Origins {
            base: &target.base_url,
            allowed: &target.allowed_origins,
        }
        .check(c, &rs.path, &step_context);
        steps.push(step(c, rs, &target.defaults, &mut vars, &step_context));
    }
    if steps.is_empty() && !in_browser {
        c.error(line_of(&rj.name), context, "no steps");
    }
    let browser = rj.browser.as_ref().map(|raw| {
        let browser_facts = browser::BrowserFacts {
            login: target.browser.as_ref(),
            vars: &facts.browser_vars,
            anonymous: facts.anonymous.clone(),
            defaults: &target.defaults,
            origins: Origins {
                base: &target.base_url,
                allowed: &target.allowed_origins,
            },
            target: &target.name,
        };
        browser::journey_browser(c, raw, login, &browser_facts, context, line_of(&rj.name))
    });
    // A run that stays just under every freeze threshold never fails, so it
    // runs to the end: that is the longest a healthy-but-slow run can take.
    let worst = match &browser {
        Some(b) => {
            let login_steps = target
                .browser
                .iter()
                .filter(|_| login)
                .flat_map(|l| l.login.iter().chain(&l.logout));
            browser_worst_case(b.steps.iter().chain(login_steps))
        }
        None => worst_case(&steps).saturating_add(if login {
            facts.login_worst
        } else {
            Duration::ZERO
        }),
    };
    if worst > schedule.interval {
        c.warn(
            line_of(&rj.name),
            context,
            format!(
                "schedule.interval ({}) is shorter than a run whose every step is just under freeze_after ({}): slow runs will miss slots",
                humantime::format_duration(schedule.interval),
                humantime::format_duration(worst)
            ),
        );
    }
    let kind = rj
        .kind
        .as_ref()
        .map_or(JourneyKind::Interactive, |k| kind(c, k, context));
    let mut steps = steps;
    let mut browser = browser;
    if kind == JourneyKind::Report {
        for step in &mut steps {
            step.kind = JourneyKind::Report;
        }
        for step in browser.iter_mut().flat_map(|b| &mut b.steps) {
            step.kind = JourneyKind::Report;
        }
    }
    let retry_after_relogin = rj.retry_after_relogin.as_ref().is_some_and(|b| **b);
    if retry_after_relogin && in_browser {
        c.error(
            line_of(&rj.name),
            context,
            "retry_after_relogin is for HTTP journeys: a browser journey stops at a forced logout",
        );
    }
    if retry_after_relogin && !login {
        c.error(
            line_of(&rj.name),
            context,
            "retry_after_relogin needs a journey that logs in",
        );
    }
    Some(Journey {
        name: rj.name.to_string(),
        target,
        schedule,
        login,
        kind,
        retry_after_relogin,
        steps,
        browser,
    })
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

fn parse_active_hours(text: &str) -> Option<(chrono::NaiveTime, chrono::NaiveTime)> {
    let (from, to) = text.split_once('-')?;
    let parse = |t: &str| chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M").ok();
    Some((parse(from)?, parse(to)?))
}

/// Warns when no rule could see a server-side drop, or when the login-page
/// sign cannot work on this login.
fn session_rule_warnings(
    c: &mut Checker,
    login: &[Step],
    rules: &SessionRules,
    line: usize,
    context: &str,
) {
    if login.is_empty() {
        return;
    }
    let explicit =
        rules.redirect_to.is_some() || !rules.statuses.is_empty() || rules.body_matches.is_some();
    if !rules.login_page && !explicit {
        let message = if rules.cookie.is_some() {
            "session_rules has only `cookie` and login_page is off: a system that keeps the cookie after ending a session on the server would drop sessions unseen"
        } else {
            "the target logs in but has no session_rules and login_page is off, so forced logouts cannot be told apart from other failures"
        };
        c.warn(line, context, message);
        return;
    }
    if rules.login_page && login[0].path.vars().next().is_some() {
        c.warn(
            login[0].line,
            context,
            "the first login step's path uses variables, so a redirect to the login page cannot be recognised by its path; only a page holding the login form is",
        );
    }
}

/// Whether any template of `step` (path, query, headers, body) reads `var`.
fn step_reads(step: &Step, var: &str) -> bool {
    let body: Vec<&Template> = match &step.body {
        None => Vec::new(),
        Some(Body::Form(fields)) => fields.iter().map(|(_, t)| t).collect(),
        Some(Body::Raw { template, .. }) => vec![template],
    };
    std::iter::once(&step.path)
        .chain(step.query.iter().map(|(_, t)| t))
        .chain(step.headers.iter().map(|(_, t)| t))
        .chain(body)
        .any(|t| t.vars().any(|v| v == var))
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
