//! Rules for browser journeys: the agent's `browser:` block, a target's
//! browser login and logout, and a journey's browser steps. A step does at
//! most one thing (`goto`, `fill`, `click`, `wait_for`) and may check and
//! read the page; selectors must parse, variables must be defined by an
//! earlier step, a `goto` stays on the target's origins, and `${password}`
//! goes only into a `fill` value, never into a URL.

use std::collections::HashSet;
use std::path::PathBuf;

use super::super::browser::*;
use super::super::model::{JourneyKind, Need, Timings};
use super::super::raw::{RawConfig, S};
use super::super::template::Template;
use super::{
    css_error, extract_name, kind, line_of, step_timings, uses_known, Checker, Origins, Scope,
};

/// Browser journeys need a Chromium on the machine: at `browser.executable`
/// when the file gives one, else on `PATH`. Asked for where the file says
/// which, or at the first browser journey.
pub(super) fn require_chromium(c: &mut Checker, raw: &RawConfig) {
    let Some(first) = raw.journeys.iter().find(|j| j.browser.is_some()) else {
        return;
    };
    match raw.browser.as_ref().and_then(|b| b.executable.as_ref()) {
        Some(executable) => c.require(line_of(executable), "browser", Need::Browser),
        None => c.require(
            line_of(&first.name),
            &format!("journey {:?}", first.name.as_str()),
            Need::Browser,
        ),
    }
}

/// The agent-wide `browser:` block; defaults when it is absent.
pub(super) fn settings(c: &mut Checker, raw: Option<&RawBrowser>) -> BrowserSettings {
    let mut settings = BrowserSettings::default();
    let Some(raw) = raw else {
        return settings;
    };
    let context = "browser";
    if let Some(executable) = &raw.executable {
        if executable.trim().is_empty() {
            c.error(
                line_of(executable),
                context,
                "browser.executable must name the Chromium to run",
            );
        } else {
            settings.executable = Some(PathBuf::from(executable.trim()));
        }
    }
    if let Some(max) = &raw.max_contexts {
        if **max == 0 || **max > MAX_MAX_CONTEXTS {
            c.error(
                line_of(max),
                context,
                format!("browser.max_contexts must be between 1 and {MAX_MAX_CONTEXTS}"),
            );
        } else {
            settings.max_contexts = **max;
        }
    }
    if let Some(timeout) = c.opt_duration(&raw.launch_timeout, "browser.launch_timeout", context) {
        if timeout.is_zero() {
            let line = raw.launch_timeout.as_ref().map(line_of).unwrap_or(1);
            c.error(line, context, "browser.launch_timeout must be above zero");
        } else {
            settings.launch_timeout = timeout;
        }
    }
    if let Some(evidence) = &raw.evidence {
        if let Some(keep) = c.opt_duration(&evidence.keep, "browser.evidence.keep", context) {
            settings.evidence_keep = keep;
        }
        if let Some(max) = &evidence.max_files {
            if **max == 0 {
                c.error(
                    line_of(max),
                    context,
                    "browser.evidence.max_files must be above zero",
                );
            } else {
                settings.evidence_max_files = **max;
            }
        }
    }
    settings
}

/// A target's browser login and logout, and the variables its login
/// leaves for the journeys (the built-ins plus what it extracts).
pub(super) fn target_browser(
    c: &mut Checker,
    raw: Option<&RawTargetBrowser>,
    defaults: &Timings,
    origins: &Origins,
    builtins: HashSet<String>,
    context: &str,
    target_line: usize,
) -> (Option<BrowserLogin>, HashSet<String>) {
    let mut vars = Scope::new(builtins);
    let Some(raw) = raw else {
        return (None, vars.own);
    };
    let mut seen = HashSet::new();
    let mut login = Vec::new();
    for rs in &raw.login {
        let step_context = format!("{context}, browser login step {:?}", rs.name.as_str());
        if !seen.insert(rs.name.to_string()) {
            c.error(line_of(&rs.name), &step_context, "duplicate step name");
        }
        login.push(step(c, rs, defaults, &mut vars, origins, &step_context));
    }
    if !login.is_empty() && !login.iter().any(BrowserStep::fills_secret) {
        c.warn(
            target_line,
            context,
            "no browser login step fills in ${password}: the login cannot really sign in",
        );
    }
    let mut logout = Vec::new();
    // The logout may use what login extracted; nothing reads what it extracts.
    let mut logout_vars = Scope::within(&vars.own);
    for rs in &raw.logout {
        let step_context = format!("{context}, browser logout step {:?}", rs.name.as_str());
        if !seen.insert(rs.name.to_string()) {
            c.error(line_of(&rs.name), &step_context, "duplicate step name");
        }
        super::target::no_effect_after_logout(
            c,
            rs.think_time.as_ref(),
            !rs.extract.is_empty(),
            line_of(&rs.name),
            &step_context,
        );
        logout.push(step(
            c,
            rs,
            defaults,
            &mut logout_vars,
            origins,
            &step_context,
        ));
    }
    (Some(BrowserLogin { login, logout }), vars.own)
}

/// What a browser journey needs to know of its target.
pub(super) struct BrowserFacts<'a> {
    pub login: Option<&'a BrowserLogin>,
    /// Variables after the browser login.
    pub vars: &'a HashSet<String>,
    /// Variables without logging in.
    pub anonymous: HashSet<String>,
    pub defaults: &'a Timings,
    pub origins: Origins<'a>,
    pub target: &'a str,
}

/// A journey's `browser:` steps.
pub(super) fn journey_browser(
    c: &mut Checker,
    raw: &RawJourneyBrowser,
    logs_in: bool,
    facts: &BrowserFacts,
    context: &str,
    journey_line: usize,
) -> BrowserJourney {
    if logs_in && facts.login.is_none_or(|l| l.login.is_empty()) {
        c.error(
            journey_line,
            context,
            format!(
                "logs in, but target {:?} has no `browser.login` steps (set `login: false` for anonymous journeys)",
                facts.target
            ),
        );
    }
    let taken: HashSet<&str> = match (logs_in, facts.login) {
        (true, Some(l)) => l
            .login
            .iter()
            .chain(&l.logout)
            .map(|s| s.name.as_str())
            .collect(),
        _ => HashSet::new(),
    };
    let mut vars = if logs_in {
        Scope::within(facts.vars)
    } else {
        Scope::new(facts.anonymous.clone())
    };
    let mut names = HashSet::new();
    let mut steps = Vec::new();
    for rs in &raw.steps {
        let step_context = format!("{context}, step {:?}", rs.name.as_str());
        if !names.insert(rs.name.as_str()) || taken.contains(rs.name.as_str()) {
            c.error(line_of(&rs.name), &step_context, "duplicate step name");
        }
        steps.push(step(
            c,
            rs,
            facts.defaults,
            &mut vars,
            &facts.origins,
            &step_context,
        ));
    }
    if steps.is_empty() {
        c.error(journey_line, context, "no steps");
    }
    BrowserJourney { steps }
}

fn step(
    c: &mut Checker,
    rs: &RawBrowserStep,
    defaults: &Timings,
    vars: &mut Scope,
    origins: &Origins,
    context: &str,
) -> BrowserStep {
    c.name(&rs.name, "step", context);
    let line = line_of(&rs.name);
    one_action(c, rs, line, context);
    let action = action(c, rs, vars, origins, line, context);
    let assertions = page_assertions(c, rs.assertions.as_ref(), context);
    let extract: Vec<PageExtraction> = rs
        .extract
        .iter()
        .filter_map(|e| extraction(c, e, context))
        .collect();
    for e in &extract {
        vars.insert(e.var.clone());
    }
    let timings = step_timings(
        c,
        [&rs.slow_after, &rs.freeze_after, &rs.give_up_after],
        defaults,
        context,
    );
    BrowserStep {
        name: rs.name.to_string(),
        line,
        action,
        assertions,
        extract,
        think_time: c
            .opt_duration(&rs.think_time, "think_time", context)
            .unwrap_or_default(),
        timings,
        kind: rs
            .kind
            .as_ref()
            .map_or(JourneyKind::Interactive, |k| kind(c, k, context)),
    }
}

/// A step does at most one thing to the page, and something: an action,
/// an assertion or an extraction.
fn one_action(c: &mut Checker, rs: &RawBrowserStep, line: usize, context: &str) {
    let given = [
        rs.goto.is_some(),
        rs.fill.is_some(),
        rs.click.is_some(),
        rs.wait_for.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given > 1 {
        c.error(
            line,
            context,
            "give at most one of `goto`, `fill`, `click` and `wait_for`",
        );
    } else if given == 0 && rs.assertions.is_none() && rs.extract.is_empty() {
        c.error(
            line,
            context,
            "nothing to do: give one of `goto`, `fill`, `click` or `wait_for`, or `assert` or `extract`",
        );
    }
}

/// The step's action, the first given of `goto`, `fill`, `click` and
/// `wait_for`.
fn action(
    c: &mut Checker,
    rs: &RawBrowserStep,
    vars: &Scope,
    origins: &Origins,
    line: usize,
    context: &str,
) -> Option<BrowserAction> {
    if let Some(path) = &rs.goto {
        Some(goto(c, path, vars, origins, context))
    } else if let Some(fill) = &rs.fill {
        selector(c, &fill.selector, "fill.selector", context);
        uses_known(c, vars, line_of(&fill.value), &fill.value, context);
        Some(BrowserAction::Fill {
            selector: fill.selector.to_string(),
            value: c.template(&fill.value, "fill.value", context),
        })
    } else if let Some(click) = &rs.click {
        selector(c, click, "click", context);
        Some(BrowserAction::Click(click.to_string()))
    } else if let Some(wait) = &rs.wait_for {
        wait_for(c, wait, line, context)
    } else {
        None
    }
}

/// A `goto`: a path on an allowed origin that fits in a request line and
/// never carries `${password}`.
fn goto(
    c: &mut Checker,
    path: &S,
    vars: &Scope,
    origins: &Origins,
    context: &str,
) -> BrowserAction {
    super::step::long_in_url(c, path, "goto", context);
    origins.check(c, path, context);
    if uses_password(path) {
        c.error(
            line_of(path),
            context,
            "${password} may only be typed into the page with `fill`: in a `goto` it would leak into URLs and logs",
        );
    }
    uses_known(c, vars, line_of(path), path, context);
    BrowserAction::Goto(c.template(path, "goto", context))
}

/// A `wait_for`: a selector or a text, not both.
fn wait_for(
    c: &mut Checker,
    wait: &RawWaitFor,
    line: usize,
    context: &str,
) -> Option<BrowserAction> {
    match (&wait.selector, &wait.text) {
        (Some(s), None) => {
            selector(c, s, "wait_for.selector", context);
            Some(BrowserAction::WaitFor(PageWait::Selector(s.to_string())))
        }
        (None, Some(text)) => Some(BrowserAction::WaitFor(PageWait::Text(text.to_string()))),
        _ => {
            c.error(line, context, "wait_for: give one of `selector` or `text`");
            None
        }
    }
}

fn page_assertions(c: &mut Checker, raw: Option<&RawPageAssert>, context: &str) -> PageAssertions {
    match raw {
        None => PageAssertions::default(),
        Some(a) => PageAssertions {
            text: a.text.iter().map(|t| t.to_string()).collect(),
            not_text: a.not_text.iter().map(|t| t.to_string()).collect(),
            selectors: a
                .selector
                .iter()
                .filter(|s| selector(c, s, "assert.selector", context))
                .map(|s| s.to_string())
                .collect(),
            url: a
                .url
                .as_ref()
                .and_then(|u| c.regex(u, "assert.url", context)),
        },
    }
}

fn uses_password(text: &S) -> bool {
    Template::parse(text).is_ok_and(|t| t.vars().any(|v| v == "password"))
}

/// Whether `text` is a CSS selector; reports it when it is not.
fn selector(c: &mut Checker, text: &S, what: &str, context: &str) -> bool {
    match scraper::Selector::parse(text) {
        Ok(_) => true,
        Err(e) => {
            c.error(
                line_of(text),
                context,
                format!(
                    "{what}: invalid CSS selector {:?}: {}",
                    text.as_str(),
                    css_error(&e)
                ),
            );
            false
        }
    }
}

fn extraction(c: &mut Checker, re: &RawPageExtract, context: &str) -> Option<PageExtraction> {
    let line = line_of(&re.var);
    let what = format!("extract {:?}", re.var.as_str());
    if re.selector.is_some() == re.url.is_some() {
        c.error(
            line,
            context,
            format!("{what}: give exactly one of `selector` or `url`"),
        );
        return None;
    }
    if re.attr.is_some() && re.selector.is_none() {
        c.error(
            line,
            context,
            format!("{what}: `attr` only goes with `selector`"),
        );
    }
    if !extract_name(c, &re.var, context) {
        return None;
    }
    let from = match (&re.selector, &re.url) {
        (Some(s), _) => {
            if !selector(c, s, &what, context) {
                return None;
            }
            PageSource::Selector {
                selector: s.to_string(),
                attr: re.attr.as_ref().map(|a| a.to_string()),
            }
        }
        (None, Some(u)) => PageSource::Url(c.regex(u, &what, context)?),
        (None, None) => return None,
    };
    Some(PageExtraction {
        var: re.var.to_string(),
        from,
    })
}
