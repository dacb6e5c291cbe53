//! Rules for an HTTP step: a method, a path and query that never carry
//! `${password}`, at most one body, valid header names, variables that an
//! earlier step extracts, extractions with exactly one source, and
//! assertions that parse. The timings of every step, HTTP or browser, and
//! of a `defaults:` block are checked here too, by one rule.

use reqwest::Method;

use super::super::model::*;
use super::super::raw::*;
use super::super::template::Template;
use super::{css_error, kind, line_of, Checker, Scope, BUILTIN_VARS};

/// A `defaults:` block (`what`), each value over `base`; its order is
/// checked against the first line it gives.
pub(super) fn timings(
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

/// `slow_after` ≤ `freeze_after` ≤ `give_up_after`, or a step could never
/// be slow, or never be called frozen.
pub(super) fn check_timing_order(c: &mut Checker, t: &Timings, line: usize, context: &str) {
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
pub(super) fn step_timings(
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

/// The longest path or query value a step may give: servers refuse a
/// request line much over 8 KiB (Apache's and nginx's defaults), so every
/// run of such a step would fail.
pub const MAX_URL_PART_BYTES: usize = 8 * 1024;

/// Refuses a path or query value too long to go in a request line.
pub(super) fn long_in_url(c: &mut Checker, text: &S, what: &str, context: &str) {
    if text.len() > MAX_URL_PART_BYTES {
        c.error(
            line_of(text),
            context,
            format!(
                "{what} is {} bytes, over the {MAX_URL_PART_BYTES}-byte limit: servers refuse a request line that long",
                text.len()
            ),
        );
    }
}

pub(super) fn step(
    c: &mut Checker,
    rs: &RawStep,
    defaults: &Timings,
    vars: &mut Scope,
    context: &str,
) -> Step {
    c.name(&rs.name, "step", context);
    let line = line_of(&rs.name);
    let method = method(c, rs.method.as_ref(), context);
    let (path, query) = path_and_query(c, rs, context);
    let headers = headers(c, rs, context);
    let body = body(c, rs, line, context);

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
    no_password_in_url(c, rs, context);
    uses_only_known(c, rs, vars, line, context);
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

/// The step's method, GET when not given or not an HTTP method.
fn method(c: &mut Checker, raw: Option<&S>, context: &str) -> Method {
    let Some(m) = raw else {
        return Method::GET;
    };
    match Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes()) {
        Ok(method) => method,
        Err(_) => {
            c.error(
                line_of(m),
                context,
                format!("method {:?} is not an HTTP method", m.as_str()),
            );
            Method::GET
        }
    }
}

/// The path and query templates; each must fit in a request line.
fn path_and_query(
    c: &mut Checker,
    rs: &RawStep,
    context: &str,
) -> (Template, Vec<(String, Template)>) {
    long_in_url(c, &rs.path, "path", context);
    for value in rs.query.values() {
        long_in_url(c, value, "query", context);
    }
    let path = c.template(&rs.path, "path", context);
    let query = rs
        .query
        .iter()
        .map(|(k, v)| (k.clone(), c.template(v, "query", context)))
        .collect();
    (path, query)
}

fn headers(c: &mut Checker, rs: &RawStep, context: &str) -> Vec<(String, Template)> {
    rs.headers
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
        .collect()
}

/// The one body a step may send: `form`, `json` or `body`.
fn body(c: &mut Checker, rs: &RawStep, line: usize, context: &str) -> Option<Body> {
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
    if let Some(form) = &rs.form {
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
    }
}

/// The path and query end up in URLs, which servers, proxies and our own
/// error messages write down: a password must never go there.
fn no_password_in_url(c: &mut Checker, rs: &RawStep, context: &str) {
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
}

/// Every variable the step's values use must be known by then; a `json`
/// body has no lines of its own, so it is reported at the step's.
fn uses_only_known(c: &mut Checker, rs: &RawStep, vars: &Scope, line: usize, context: &str) {
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
        uses_known(c, vars, use_line, text, context);
    }
}

/// Reports every variable `text` (at `line`) uses that no earlier step
/// defines, HTTP or browser.
pub(super) fn uses_known(c: &mut Checker, vars: &Scope, line: usize, text: &str, context: &str) {
    let Ok(template) = Template::parse(text) else {
        return;
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
        c.error(line, context, message);
    }
}

/// Whether `var` may name an extracted variable, HTTP or browser: a name
/// `${var}` can use, and not one the agent sets itself. Says why not.
pub(super) fn extract_name(c: &mut Checker, var: &S, context: &str) -> bool {
    let line = line_of(var);
    if Template::parse(&format!("${{{}}}", var.as_str())).is_err() {
        c.error(
            line,
            context,
            format!(
                "extract: variable name {:?} must be letters, digits, '_' or '.'",
                var.as_str()
            ),
        );
        return false;
    }
    if BUILTIN_VARS.contains(&var.as_str()) {
        c.error(
            line,
            context,
            format!(
                "extract {:?}: the variable name is reserved for the agent",
                var.as_str()
            ),
        );
        return false;
    }
    true
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
    if !extract_name(c, &re.var, context) {
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

/// Whether any template of `step` (path, query, headers, body) reads `var`.
pub(super) fn step_reads(step: &Step, var: &str) -> bool {
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

/// Whether `name` is a valid HTTP header name.
fn valid_header_name(name: &str) -> bool {
    reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
}
