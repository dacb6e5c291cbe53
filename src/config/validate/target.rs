//! Rules for a target: an http(s) `base_url` with no credentials in it,
//! proxy and TLS settings that can take effect, size and time limits,
//! credentials read from `env` or `file`, step `defaults`, the login and
//! logout steps (and the browser login), `session_rules`, the heartbeat and
//! kept sessions. [`Origins`] keeps every step of the target on its own
//! origin or those it allows.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use url::Url;

use super::super::model::*;
use super::super::raw::*;
use super::super::template::Template;
use super::step::{check_timing_order, step, step_reads, timings};
use super::{browser, builtin_vars, http_url, line_of, redact_userinfo, secret, Checker, Scope};

const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;
/// Bodies are held in memory to be checked, so the cap has a ceiling.
const MAX_MAX_BODY: u64 = 1 << 30;

pub(super) fn target(
    c: &mut Checker,
    rt: &RawTarget,
    context: &str,
) -> (Target, HashSet<String>, HashSet<String>) {
    let base_url = base_url(c, rt, context);
    let allowed_origins = allowed_origins(c, &rt.allowed_origins, context);
    let origins = Origins {
        base: &base_url,
        allowed: &allowed_origins,
    };
    let proxy = proxy(c, rt, context);
    tls(c, rt, &base_url, context);
    let connect_timeout = connect_timeout(c, rt, context);
    let max_body_bytes = max_body(c, rt, context);
    let (username, password) = credentials(c, rt, context);
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
    let login = login_steps(c, rt, &defaults, &origins, &mut vars, context);
    let logout = rt
        .logout
        .as_ref()
        .map(|rs| logout_step(c, rs, &defaults, &origins, &vars, context));

    let session_rules = checked_session_rules(c, rt, &login, context);

    let heartbeat = rt
        .heartbeat
        .as_ref()
        .map(|h| heartbeat(c, h, &defaults, &origins, context));
    let keep_sessions = rt
        .keep_sessions
        .as_ref()
        .map(|k| keep_sessions(c, k, &login, &defaults, &origins, &vars.own, context));

    (
        Target {
            name: rt.name.to_string(),
            base_url,
            insecure_skip_verify: insecure_skip_verify(rt),
            ca_file: ca_file(rt),
            proxy,
            connect_timeout,
            max_body_bytes,
            max_redirects: rt.max_redirects.as_ref().map(|m| **m).unwrap_or(10),
            user_agent: user_agent(rt),
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

/// The target's `base_url`; a placeholder when it is not usable, so the
/// rest of the target is still checked.
fn base_url(c: &mut Checker, rt: &RawTarget, context: &str) -> Url {
    match http_url(rt.base_url.trim(), "base_url", "credentials") {
        Ok(url) => url,
        Err(problem) => {
            c.error(line_of(&rt.base_url), context, problem);
            placeholder_url()
        }
    }
}

fn insecure_skip_verify(rt: &RawTarget) -> bool {
    rt.tls
        .as_ref()
        .and_then(|t| t.insecure_skip_verify.as_ref())
        .map(|b| **b)
        .unwrap_or(false)
}

fn ca_file(rt: &RawTarget) -> Option<PathBuf> {
    rt.tls
        .as_ref()
        .and_then(|t| t.ca_file.as_ref())
        .map(|f| PathBuf::from(f.as_str()))
}

fn user_agent(rt: &RawTarget) -> String {
    rt.user_agent
        .as_ref()
        .map(|u| u.to_string())
        .unwrap_or_else(|| format!("casewatch/{}", env!("CARGO_PKG_VERSION")))
}

/// The target's `session_rules`, with warnings for rules that cannot take
/// effect given its `login` steps.
fn checked_session_rules(
    c: &mut Checker,
    rt: &RawTarget,
    login: &[Step],
    context: &str,
) -> SessionRules {
    let session_rules = session_rules(c, rt.session_rules.as_ref(), context);
    if let Some(cookie) = rt.session_rules.as_ref().and_then(|r| r.cookie.as_ref()) {
        if login.is_empty() {
            c.warn(
                line_of(cookie),
                context,
                "session_rules.cookie is set, but the target has no `login` steps to start a session",
            );
        }
    }
    session_rule_warnings(c, login, &session_rules, line_of(&rt.name), context);
    session_rules
}

/// The target's `proxy`, if it parses.
fn proxy(c: &mut Checker, rt: &RawTarget, context: &str) -> Option<Url> {
    rt.proxy.as_ref().and_then(|p| match Url::parse(p.trim()) {
        Ok(u) => Some(u),
        Err(e) => {
            c.error(
                line_of(p),
                context,
                format!("proxy {:?}: {e}", redact_userinfo(p.as_str())),
            );
            None
        }
    })
}

/// A `tls.ca_file` must be readable where it is used (https); TLS settings
/// on an http:// target have no effect, and say so.
fn tls(c: &mut Checker, rt: &RawTarget, base_url: &Url, context: &str) {
    if let Some(ca) = rt.tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
        if base_url.scheme() == "https" {
            let need = Need::File {
                key: "tls.ca_file".into(),
                path: PathBuf::from(ca.as_str()),
            };
            c.require(line_of(ca), context, need);
        }
    }
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
}

/// `connect_timeout`, 10 s unless given; never zero.
fn connect_timeout(c: &mut Checker, rt: &RawTarget, context: &str) -> Duration {
    let connect_timeout = c
        .opt_duration(&rt.connect_timeout, "connect_timeout", context)
        .unwrap_or(Duration::from_secs(10));
    if connect_timeout.is_zero() {
        if let Some(v) = &rt.connect_timeout {
            c.error(line_of(v), context, "connect_timeout must be above zero");
        }
    }
    connect_timeout
}

/// `max_body` in bytes, 10 MiB unless given, between 1 B and 1 GiB.
fn max_body(c: &mut Checker, rt: &RawTarget, context: &str) -> u64 {
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
    max_body_bytes
}

/// The user name and password sources; only the user name may be inline.
fn credentials(
    c: &mut Checker,
    rt: &RawTarget,
    context: &str,
) -> (Option<SecretSource>, Option<SecretSource>) {
    match &rt.credentials {
        Some(cr) => (
            cr.username
                .as_ref()
                .and_then(|s| secret(c, s, "credentials.username", context, true)),
            cr.password
                .as_ref()
                .and_then(|s| secret(c, s, "credentials.password", context, false)),
        ),
        None => (None, None),
    }
}

/// The login steps, each on the target's origins with a name of its own;
/// a login that never types the password cannot really sign in.
fn login_steps(
    c: &mut Checker,
    rt: &RawTarget,
    defaults: &Timings,
    origins: &Origins<'_>,
    vars: &mut Scope,
    context: &str,
) -> Vec<Step> {
    let mut login = Vec::new();
    let mut seen = HashSet::new();
    for rs in &rt.login {
        let step_context = format!("{context}, login step {:?}", rs.name.as_str());
        if !seen.insert(rs.name.to_string()) {
            c.error(line_of(&rs.name), &step_context, "duplicate step name");
        }
        origins.check(c, &rs.path, &step_context);
        login.push(step(c, rs, defaults, vars, &step_context));
    }
    if !login.is_empty() && !login.iter().any(|s| step_reads(s, "password")) {
        c.warn(
            line_of(&rt.name),
            context,
            "no login step uses ${password}: the login cannot really sign in",
        );
    }
    login
}

/// The logout step: it may use what the login extracted, but defines
/// nothing later steps read.
fn logout_step(
    c: &mut Checker,
    rs: &RawStep,
    defaults: &Timings,
    origins: &Origins<'_>,
    vars: &Scope,
    context: &str,
) -> Step {
    let step_context = format!("{context}, logout step {:?}", rs.name.as_str());
    // The logout may use what login extracted, but defines nothing later steps read.
    origins.check(c, &rs.path, &step_context);
    no_effect_after_logout(
        c,
        rs.think_time.as_ref(),
        !rs.extract.is_empty(),
        line_of(&rs.name),
        &step_context,
    );
    step(
        c,
        rs,
        defaults,
        &mut Scope::within(&vars.own),
        &step_context,
    )
}

/// The target's `session_rules`: the signs that the server ended a session.
fn session_rules(c: &mut Checker, raw: Option<&RawSessionRules>, context: &str) -> SessionRules {
    match raw {
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
    }
}

/// The target's `heartbeat`: a plain GET outside any session, timed with
/// the target's defaults unless it gives its own.
fn heartbeat(
    c: &mut Checker,
    h: &RawHeartbeat,
    defaults: &Timings,
    origins: &Origins,
    context: &str,
) -> Heartbeat {
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
}

/// The target's `keep_sessions`: sessions kept logged in by a keepalive
/// step, which may read what the login extracted.
fn keep_sessions(
    c: &mut Checker,
    k: &RawKeepSessions,
    login: &[Step],
    defaults: &Timings,
    origins: &Origins,
    login_vars: &HashSet<String>,
    context: &str,
) -> KeepSessions {
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
    let keepalive_context = format!("{context}, keepalive step {:?}", k.keepalive.name.as_str());
    origins.check(c, &k.keepalive.path, &keepalive_context);
    if let Some(think) = &k.keepalive.think_time {
        c.warn(
            line_of(think),
            &keepalive_context,
            "think_time has no effect on a keepalive step: its checks are keep_sessions.every apart",
        );
    }
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
            defaults,
            &mut Scope::within(login_vars),
            &keepalive_context,
        ),
    }
}

/// Settings a logout step takes that cannot take effect: nothing runs
/// after a logout to wait for, or to read what it extracts.
pub(super) fn no_effect_after_logout(
    c: &mut Checker,
    think_time: Option<&S>,
    extracts: bool,
    line: usize,
    context: &str,
) {
    if let Some(think) = think_time {
        c.warn(
            line_of(think),
            context,
            "think_time has no effect on a logout step: nothing runs after it",
        );
    }
    if extracts {
        c.warn(
            line,
            context,
            "extract has no effect on a logout step: nothing runs after it to read what it extracts",
        );
    }
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
                    redact_userinfo(entry.as_str())
                ),
            ),
        }
    }
    origins
}

/// Where a target's steps may send requests.
pub(super) struct Origins<'a> {
    base: &'a Url,
    allowed: &'a [url::Origin],
}

impl<'a> Origins<'a> {
    /// Where `target`'s steps may go: its own origin and its `allowed_origins`.
    pub(super) fn of(target: &'a Target) -> Origins<'a> {
        Origins {
            base: &target.base_url,
            allowed: &target.allowed_origins,
        }
    }

    /// A step path that names another origin (`http://elsewhere/x`,
    /// `//elsewhere/x`) is refused unless the target allows that origin. A
    /// path built from variables is checked when it is sent.
    pub(super) fn check(&self, c: &mut Checker, path: &S, context: &str) {
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
fn parse_bytes(text: &str) -> Option<u64> {
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
