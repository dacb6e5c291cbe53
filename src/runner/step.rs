//! One HTTP step: send, follow redirects by hand, read a capped body, then
//! classify the result into exactly one outcome (DESIGN.md §2).
//!
//! Redirects are followed here rather than by reqwest so that every hop can be
//! checked for the signs of a server-ended session and its cookies stored in
//! the session's own jar.

use std::collections::HashSet;
use std::error::Error as _;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, CONTENT_TYPE, COOKIE, LOCATION};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;
use url::Url;

use super::extract;
use super::phases::{self, Hop};
use super::probes::Probes;
use super::session::Session;
use crate::config::{Body, Step, Target};
use crate::outcome::{HttpPhases, LogoutCause, Outcome, StepPhase, StepRecord};

/// What the step is part of, for its record.
pub struct StepContext<'a> {
    pub client: &'a reqwest::Client,
    pub target: &'a Target,
    pub journey: &'a str,
    pub phase: StepPhase,
    /// Live reports for freeze and session detection; `None` in `once`.
    pub probes: Option<&'a Probes>,
}

/// A response read to the end (or to the cap).
struct Fetched {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Why a fetch ended before a complete response.
enum FetchEnd {
    LoggedOut(LogoutCause, Option<u16>, String),
    Failed(Outcome, Option<u16>, String),
}

/// Timing and size gathered while fetching, kept even when the fetch fails.
#[derive(Default)]
struct Progress {
    ttfb: Option<Duration>,
    bytes: u64,
    status: Option<u16>,
    phases: HttpPhases,
}

pub async fn run_step(ctx: &StepContext<'_>, step: &Step, session: &mut Session) -> StepRecord {
    let sent_at = SystemTime::now();
    let start = Instant::now();
    let session_age = if session.is_logged_in() {
        session.age()
    } else {
        None
    };
    let mut progress = Progress::default();
    let give_up = step.timings.give_up_after;
    let _inflight = ctx
        .probes
        .map(|p| p.sent(&ctx.target.name, step.timings.freeze_after));

    let fetched =
        tokio::time::timeout(give_up, fetch(ctx, step, session, start, &mut progress)).await;
    let duration = start.elapsed();

    let (outcome, censored, logout_cause, detail) = match fetched {
        Err(_elapsed) => (
            Outcome::Frozen,
            true,
            None,
            format!(
                "no complete response after {}; gave up",
                humantime::format_duration(give_up)
            ),
        ),
        Ok(Err(FetchEnd::LoggedOut(cause, status, detail))) => {
            progress.status = status.or(progress.status);
            (Outcome::LoggedOut, false, Some(cause), detail)
        }
        Ok(Err(FetchEnd::Failed(outcome, status, detail))) => {
            progress.status = status.or(progress.status);
            (outcome, false, None, detail)
        }
        Ok(Ok(response)) => {
            let (outcome, cause, detail) = judge(ctx, step, session, &response, duration);
            (outcome, false, cause, detail)
        }
    };
    if outcome == Outcome::LoggedOut {
        session.ended_by_server = logout_cause;
    }
    StepRecord {
        target: ctx.target.name.clone(),
        journey: ctx.journey.to_string(),
        step: step.name.clone(),
        phase: ctx.phase,
        sent_at,
        ttfb: progress.ttfb,
        duration,
        outcome,
        censored,
        status: progress.status,
        bytes: progress.bytes,
        logout_cause,
        session_age,
        detail,
        phases: progress.phases,
    }
}

/// Classifies a complete response: logout signs, status, assertions,
/// extraction, then timing.
fn judge(
    ctx: &StepContext<'_>,
    step: &Step,
    session: &mut Session,
    response: &Fetched,
    duration: Duration,
) -> (Outcome, Option<LogoutCause>, String) {
    let body = String::from_utf8_lossy(&response.body);
    let watch_logout = session.is_logged_in() && ctx.phase != StepPhase::Logout;
    if watch_logout {
        if let Some(re) = &ctx.target.session_rules.body_matches {
            if re.is_match(&body) {
                return (
                    Outcome::LoggedOut,
                    Some(LogoutCause::ExpiredPage),
                    "page says the session has ended".to_string(),
                );
            }
        }
    }
    let status = response.status.as_u16();
    let expected = &step.assertions.status;
    let status_ok = if expected.is_empty() {
        !(response.status.is_client_error() || response.status.is_server_error())
    } else {
        expected.contains(&status)
    };
    if !status_ok {
        let outcome = if status >= 400 {
            Outcome::HttpError
        } else {
            Outcome::AssertionFailed
        };
        let wanted = if expected.is_empty() {
            "a 2xx or 3xx status".to_string()
        } else {
            format!("status {expected:?}")
        };
        return (
            outcome,
            None,
            format!("got status {status}, expected {wanted}"),
        );
    }
    if let Some(failure) = extract::check_assertions(&step.assertions, &body, &response.headers) {
        return (Outcome::AssertionFailed, None, failure);
    }
    let content_type = response
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for extraction in &step.extract {
        match extract::extract(&extraction.from, &body, content_type, &response.headers) {
            Ok(value) => {
                session.vars.insert(extraction.var.clone(), value);
            }
            Err(why) => {
                return (
                    Outcome::AssertionFailed,
                    None,
                    format!("extract {}: {why}", extraction.var),
                )
            }
        }
    }
    let timings = &step.timings;
    if duration > timings.freeze_after {
        (
            Outcome::Frozen,
            None,
            format!("complete only after {:.1}s", duration.as_secs_f64()),
        )
    } else if duration > timings.slow_after {
        (
            Outcome::Slow,
            None,
            format!("took {:.2}s", duration.as_secs_f64()),
        )
    } else {
        (Outcome::Ok, None, String::new())
    }
}

async fn fetch(
    ctx: &StepContext<'_>,
    step: &Step,
    session: &mut Session,
    start: Instant,
    progress: &mut Progress,
) -> Result<Fetched, FetchEnd> {
    let mut url = build_url(ctx.target, step, session)?;
    let mut method = step.method.clone();
    let mut body = render_body(step, session);
    let mut visited: HashSet<(Method, Url)> = HashSet::new();
    let watch_logout = session.is_logged_in() && ctx.phase != StepPhase::Logout;
    let rules = &ctx.target.session_rules;
    let session_cookie_before = rules.cookie.as_ref().and_then(|c| session.cookie_value(c));

    loop {
        if !visited.insert((method.clone(), url.clone())) {
            return Err(FetchEnd::Failed(
                Outcome::Error,
                progress.status,
                format!("redirect loop at {}", url.path()),
            ));
        }
        if visited.len() > ctx.target.max_redirects + 1 {
            return Err(FetchEnd::Failed(
                Outcome::Error,
                progress.status,
                format!("more than {} redirects", ctx.target.max_redirects),
            ));
        }
        let mut request = ctx.client.request(method.clone(), url.clone());
        for (name, template) in &step.headers {
            request = request.header(name.as_str(), template.render(&session.vars));
        }
        if let Some(cookie) = session.cookie_header(&url) {
            request = request.header(COOKIE, cookie);
        }
        if let Some((content_type, bytes)) = &body {
            request = request
                .header(CONTENT_TYPE, *content_type)
                .body(bytes.clone());
        }
        let hop = Hop::start();
        let sent = hop.send(request.send()).await;
        let mut response = sent.map_err(|e| {
            phases::add(&mut progress.phases, hop.failed());
            send_failure(&e)
        })?;
        phases::add(&mut progress.phases, hop.answered(Instant::now()));
        if let Some(probes) = ctx.probes {
            probes.answered(&ctx.target.name);
        }
        progress.ttfb.get_or_insert_with(|| start.elapsed());
        let status = response.status();
        progress.status = Some(status.as_u16());
        session.store_cookies(response.headers(), &url);

        if watch_logout {
            if let Some(end) = logout_signal(
                ctx.target,
                session,
                &response,
                session_cookie_before.as_deref(),
            ) {
                return Err(end);
            }
        }

        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if status.is_redirection() && step.follow_redirects {
            if let Some(location) = location {
                let next = url.join(&location).map_err(|_| {
                    FetchEnd::Failed(
                        Outcome::Error,
                        Some(status.as_u16()),
                        "redirect to an invalid Location".into(),
                    )
                })?;
                if next.origin() != url.origin() {
                    return Err(FetchEnd::Failed(
                        Outcome::Error,
                        Some(status.as_u16()),
                        format!(
                            "redirect to another origin ({})",
                            next.origin().ascii_serialization()
                        ),
                    ));
                }
                // 301/302/303 turn a POST into a GET without a body, as browsers do.
                if !matches!(
                    status,
                    StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
                ) {
                    method = Method::GET;
                    body = None;
                }
                url = next;
                continue;
            }
        }

        // A declared length over the cap is refused before a byte is read.
        if let Some(length) = response.content_length() {
            if length > ctx.target.max_body_bytes {
                return Err(FetchEnd::Failed(
                    Outcome::Error,
                    Some(status.as_u16()),
                    format!(
                        "body of {length} bytes is over the {} byte cap",
                        ctx.target.max_body_bytes
                    ),
                ));
            }
        }
        let headers = response.headers().clone();
        let mut bytes = Vec::new();
        let body_from = Instant::now();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    progress.bytes += chunk.len() as u64;
                    if progress.bytes > ctx.target.max_body_bytes {
                        return Err(FetchEnd::Failed(
                            Outcome::Error,
                            Some(status.as_u16()),
                            format!("body over the {} byte cap", ctx.target.max_body_bytes),
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(FetchEnd::Failed(
                        Outcome::Error,
                        Some(status.as_u16()),
                        format!("body broke off: {}", error_chain(&e)),
                    ))
                }
            }
        }
        progress.phases.transfer = Some(body_from.elapsed());
        return Ok(Fetched {
            status,
            headers,
            body: bytes,
        });
    }
}

/// The signs on a response header that the server ended a logged-in session.
fn logout_signal(
    target: &Target,
    session: &Session,
    response: &reqwest::Response,
    cookie_before: Option<&str>,
) -> Option<FetchEnd> {
    let rules = &target.session_rules;
    let status = response.status();
    let code = Some(status.as_u16());
    if rules.statuses.contains(&status.as_u16()) {
        return Some(FetchEnd::LoggedOut(
            LogoutCause::Status,
            code,
            format!("server answered {status}"),
        ));
    }
    if status.is_redirection() {
        if let (Some(re), Some(location)) = (
            &rules.redirect_to,
            response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok()),
        ) {
            if re.is_match(location) {
                return Some(FetchEnd::LoggedOut(
                    LogoutCause::Redirect,
                    code,
                    "redirected to the login page".to_string(),
                ));
            }
        }
    }
    if let (Some(name), Some(before)) = (&rules.cookie, cookie_before) {
        match session.cookie_value(name) {
            Some(now) if now == before => {}
            Some(_) => {
                return Some(FetchEnd::LoggedOut(
                    LogoutCause::CookieCleared,
                    code,
                    format!("session cookie {name} was replaced"),
                ))
            }
            None => {
                return Some(FetchEnd::LoggedOut(
                    LogoutCause::CookieCleared,
                    code,
                    format!("session cookie {name} was cleared"),
                ))
            }
        }
    }
    None
}

fn build_url(target: &Target, step: &Step, session: &Session) -> Result<Url, FetchEnd> {
    let path = step.path.render(&session.vars);
    let mut url = target.base_url.join(&path).map_err(|e| {
        FetchEnd::Failed(
            Outcome::Error,
            None,
            format!("cannot build URL from path: {e}"),
        )
    })?;
    if !step.query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (name, template) in &step.query {
            pairs.append_pair(name, &template.render(&session.vars));
        }
    }
    Ok(url)
}

fn render_body(step: &Step, session: &Session) -> Option<(&'static str, Vec<u8>)> {
    match &step.body {
        None => None,
        Some(Body::Form(fields)) => {
            let mut encoder = url::form_urlencoded::Serializer::new(String::new());
            for (name, template) in fields {
                encoder.append_pair(name, &template.render(&session.vars));
            }
            Some((
                "application/x-www-form-urlencoded",
                encoder.finish().into_bytes(),
            ))
        }
        Some(Body::Raw {
            template,
            content_type,
        }) => Some((content_type, template.render(&session.vars).into_bytes())),
    }
}

fn send_failure(e: &reqwest::Error) -> FetchEnd {
    let outcome = if e.is_connect() {
        Outcome::ConnectError
    } else {
        Outcome::Error
    };
    FetchEnd::Failed(outcome, None, error_chain(e))
}

/// The error and its causes on one line, without the request URL: the URL
/// can carry query values, and a hostile server's messages are echoed here,
/// so the URL, its query and each query value are blanked wherever they occur.
pub fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = vec![without_url(e).to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // hyper-util's wrappers ("client error (Connect)") say nothing new.
        if !text.starts_with("client error (") {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.dedup();
    let text = parts.join(": ");
    match e.url() {
        Some(url) => redact_url(text, url),
        None => text,
    }
}

/// Replaces every occurrence of `url`, its query, and its query values in
/// `text`.
fn redact_url(mut text: String, url: &Url) -> String {
    let mut secrets: Vec<String> = vec![url.as_str().to_string()];
    if let Some(query) = url.query().filter(|q| !q.is_empty()) {
        secrets.push(query.to_string());
    }
    for (_, value) in url.query_pairs() {
        // Short values (`1`, `yes`) are not secrets and would blank too much.
        if value.len() >= 4 {
            secrets.push(value.into_owned());
        }
    }
    if let Some(password) = url.password() {
        secrets.push(password.to_string());
    }
    // Longest first, so a value inside the query does not break the query's match.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        if text.contains(&secret) {
            text = text.replace(&secret, "[redacted]");
        }
    }
    text
}

fn without_url(e: &reqwest::Error) -> &'static str {
    if e.is_builder() {
        "cannot build the request"
    } else if e.is_connect() {
        "connect error"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_redirect() {
        "redirect error"
    } else if e.is_body() || e.is_decode() {
        "body error"
    } else if e.is_request() {
        "request error"
    } else {
        "http error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_blanks_the_url_its_query_and_values() {
        let url = Url::parse("http://u:pw-secret@host/p?q=s3cret&x=1").unwrap();
        let text = format!("failed for {url}: value s3cret, query q=s3cret&x=1, pw pw-secret");
        let out = redact_url(text, &url);
        assert!(!out.contains("s3cret"), "{out}");
        assert!(!out.contains("pw-secret"), "{out}");
        assert!(!out.contains("/p?"), "{out}");
    }
}
