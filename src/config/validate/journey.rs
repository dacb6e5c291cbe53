//! Rules for a journey: a `schedule` it can keep, a known target, steps
//! (HTTP under `steps`, or browser under `browser.steps`, never both) whose
//! names and variables agree with the target's login, its `kind`, and a
//! warning when a run that stays just under every `freeze_after` would not
//! fit in its interval.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::super::model::*;
use super::super::raw::*;
use super::step::step;
use super::{browser, builtin_vars, kind, line_of, Checker, Origins, Scope};

/// What journeys need to know of their target, worked out once per target.
pub(super) struct TargetFacts {
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

impl TargetFacts {
    /// `vars` and `browser_vars`: what the target's login and browser login
    /// leave for its journeys to read.
    pub(super) fn new(
        target: &Target,
        vars: HashSet<String>,
        browser_vars: HashSet<String>,
    ) -> TargetFacts {
        TargetFacts {
            vars,
            browser_vars,
            anonymous: builtin_vars(target.username.is_some(), target.password.is_some()),
            login_names: target.login.iter().map(|s| s.name.clone()).collect(),
            login_worst: worst_case(target.login.iter().chain(&target.logout)),
        }
    }
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

pub(super) fn journey(
    c: &mut Checker,
    rj: &RawJourney,
    target: Arc<Target>,
    facts: &TargetFacts,
    context: &str,
) -> Option<Journey> {
    let schedule = schedule(c, rj, context)?;
    let login = rj.login.as_ref().map(|b| **b).unwrap_or(true);
    step_layout(c, rj, &target, login, context);
    let mut steps = http_steps(c, rj, &target, facts, login, context);
    let mut browser = rj.browser.as_ref().map(|raw| {
        let browser_facts = browser::BrowserFacts {
            login: target.browser.as_ref(),
            vars: &facts.browser_vars,
            anonymous: facts.anonymous.clone(),
            defaults: &target.defaults,
            origins: Origins::of(&target),
            target: &target.name,
        };
        browser::journey_browser(c, raw, login, &browser_facts, context, line_of(&rj.name))
    });
    let worst = worst_run(&target, facts, login, &steps, browser.as_ref());
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
    if kind == JourneyKind::Report {
        mark_report(&mut steps, browser.as_mut());
    }
    let retry_after_relogin = retry_after_relogin(c, rj, login, context);
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

/// HTTP steps under `steps`, browser steps under `browser.steps`; a
/// journey that logs in over HTTP needs its target's login steps.
fn step_layout(c: &mut Checker, rj: &RawJourney, target: &Target, login: bool, context: &str) {
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
}

/// The journey's HTTP steps, each named once (login steps included) and
/// reading only what the login or an earlier step leaves.
fn http_steps(
    c: &mut Checker,
    rj: &RawJourney,
    target: &Arc<Target>,
    facts: &TargetFacts,
    login: bool,
    context: &str,
) -> Vec<Step> {
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
        Origins::of(target).check(c, &rs.path, &step_context);
        steps.push(step(c, rs, &target.defaults, &mut vars, &step_context));
    }
    if steps.is_empty() && rj.browser.is_none() {
        c.error(line_of(&rj.name), context, "no steps");
    }
    steps
}

/// The longest a healthy-but-slow run can take: one that stays just under
/// every freeze threshold never fails, so it runs to the end.
fn worst_run(
    target: &Target,
    facts: &TargetFacts,
    login: bool,
    steps: &[Step],
    browser: Option<&crate::config::browser::BrowserJourney>,
) -> Duration {
    match browser {
        Some(b) => {
            let login_steps = target
                .browser
                .iter()
                .filter(|_| login)
                .flat_map(|l| l.login.iter().chain(&l.logout));
            browser_worst_case(b.steps.iter().chain(login_steps))
        }
        None => worst_case(steps).saturating_add(if login {
            facts.login_worst
        } else {
            Duration::ZERO
        }),
    }
}

/// A report journey's steps are all report steps.
fn mark_report(steps: &mut [Step], browser: Option<&mut crate::config::browser::BrowserJourney>) {
    for step in steps {
        step.kind = JourneyKind::Report;
    }
    for step in browser.into_iter().flat_map(|b| &mut b.steps) {
        step.kind = JourneyKind::Report;
    }
}

/// `retry_after_relogin`: for HTTP journeys that log in.
fn retry_after_relogin(c: &mut Checker, rj: &RawJourney, login: bool, context: &str) -> bool {
    let retry_after_relogin = rj.retry_after_relogin.as_ref().is_some_and(|b| **b);
    if retry_after_relogin && rj.browser.is_some() {
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
    retry_after_relogin
}

/// The journey's `schedule` (required): an interval above zero, jitter
/// below it, and active hours that are a real window.
fn schedule(c: &mut Checker, rj: &RawJourney, context: &str) -> Option<Schedule> {
    match &rj.schedule {
        None => {
            c.error(
                line_of(&rj.name),
                context,
                "`schedule` is required (at least `interval`)",
            );
            None
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
            Some(Schedule {
                interval,
                jitter,
                active_hours,
            })
        }
    }
}

fn parse_active_hours(text: &str) -> Option<(chrono::NaiveTime, chrono::NaiveTime)> {
    let (from, to) = text.split_once('-')?;
    let parse = |t: &str| chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M").ok();
    Some((parse(from)?, parse(to)?))
}
