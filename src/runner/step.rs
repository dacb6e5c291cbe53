//! One HTTP step: send, follow redirects by hand, read a capped body, then
//! classify the result into exactly one outcome (the table in [`crate::outcome`]).
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
use crate::config::browser::BrowserStep;
use crate::config::{Body, Step, Target, Timings};
use crate::detect::login_page;
use crate::outcome::{
    AgentFault, HttpPhases, JourneyKind, LogoutCause, Outcome, StepPhase, StepRecord,
};

/// What the step is part of, for its record.
pub struct HttpStepContext<'a> {
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
    /// The agent's own failure: the target was not reached through it.
    Agent(AgentFault, String),
}

/// Timing and size gathered while fetching, kept even when the fetch fails.
#[derive(Default)]
struct FetchProgress {
    ttfb: Option<Duration>,
    bytes: u64,
    status: Option<u16>,
    phases: HttpPhases,
}

pub async fn run_step(ctx: &HttpStepContext<'_>, step: &Step, session: &mut Session) -> StepRecord {
    let sent_at = SystemTime::now();
    let start = Instant::now();
    let session_age = if session.is_logged_in() {
        session.age()
    } else {
        None
    };
    let mut progress = FetchProgress::default();
    let give_up = step.timings.give_up_after;
    let _inflight = ctx
        .probes
        .map(|p| p.sent(&ctx.target.name, step.timings.freeze_after));

    // Once the agent's stop deadline has passed, a frozen step ends now.
    let frozen_at_stop = async {
        super::stop::forced().await;
        tokio::time::sleep_until(start + step.timings.freeze_after).await;
    };
    let fetched = tokio::select! {
        fetched = tokio::time::timeout(give_up, fetch(ctx, step, session, start, &mut progress)) => Some(fetched),
        () = frozen_at_stop => None,
    };
    let duration = start.elapsed();

    let mut agent_fault = None;
    let (outcome, censored, logout_cause, detail) = match fetched {
        None => (
            Outcome::Frozen,
            true,
            None,
            format!(
                "no complete response after {:.1}s, when the agent stopped",
                duration.as_secs_f64()
            ),
        ),
        Some(Err(_elapsed)) => (
            Outcome::Frozen,
            true,
            None,
            format!(
                "no complete response after {}; gave up",
                humantime::format_duration(give_up)
            ),
        ),
        Some(Ok(Err(FetchEnd::LoggedOut(cause, status, detail)))) => {
            progress.status = status.or(progress.status);
            (Outcome::LoggedOut, false, Some(cause), detail)
        }
        Some(Ok(Err(FetchEnd::Failed(outcome, status, detail)))) => {
            progress.status = status.or(progress.status);
            (outcome, false, None, detail)
        }
        Some(Ok(Err(FetchEnd::Agent(fault, detail)))) => {
            agent_fault = Some(fault);
            (Outcome::Error, false, None, detail)
        }
        Some(Ok(Ok(response))) => {
            let (outcome, cause, detail) = judge(ctx, step, session, &response, duration);
            (outcome, false, cause, detail)
        }
    };
    if agent_fault.is_none() {
        update_session(session, (outcome, censored, logout_cause), start);
    }
    StepRecord {
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
        agent_fault,
        ..step_record(ctx.target, ctx.journey, ctx.phase, step)
    }
}

/// What a step whose request left says of the session it was sent in (one
/// that never left says nothing).
fn update_session(
    session: &mut Session,
    (outcome, censored, logout_cause): (Outcome, bool, Option<LogoutCause>),
    start: Instant,
) {
    if let (Outcome::LoggedOut, Some(cause)) = (outcome, logout_cause) {
        session.mark_ended(cause, Instant::now());
    } else if outcome.is_success() || (outcome == Outcome::Frozen && !censored) {
        // A complete answer that passed every check: the session was alive
        // when the request left.
        session.confirm_alive(start);
    } else {
        session.mark_failed(Instant::now());
    }
}

/// What a step's record takes from the step's config, HTTP or browser.
pub trait ConfiguredStep {
    fn name(&self) -> &str;
    fn kind(&self) -> JourneyKind;
    fn timings(&self) -> &Timings;
}

/// Both kinds of step name their kind and timings alike.
macro_rules! configured_step {
    ($($step:ty),*) => {$(
        impl ConfiguredStep for $step {
            fn name(&self) -> &str {
                &self.name
            }
            fn kind(&self) -> JourneyKind {
                self.kind
            }
            fn timings(&self) -> &Timings {
                &self.timings
            }
        }
    )*};
}

configured_step!(Step, BrowserStep);

/// The record of a configured step, HTTP or browser: which step of which
/// journey it is and the `freeze_after` it is judged by, with nothing seen
/// yet ([`StepRecord::new`]).
pub fn step_record(
    target: &Target,
    journey: &str,
    phase: StepPhase,
    step: &impl ConfiguredStep,
) -> StepRecord {
    let freeze_after = step.timings().freeze_after;
    StepRecord::new(
        &target.name,
        journey,
        step.name(),
        phase,
        step.kind(),
        freeze_after,
    )
}

/// Classifies a complete response: logout signs, status, assertions,
/// extraction, then timing.
fn judge(
    ctx: &HttpStepContext<'_>,
    step: &Step,
    session: &mut Session,
    response: &Fetched,
    duration: Duration,
) -> (Outcome, Option<LogoutCause>, String) {
    let body = String::from_utf8_lossy(&response.body);
    let content_type = response
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if session.is_logged_in() {
        if let Some(cause) = logout_in_body(ctx, &body, content_type, &response.headers) {
            return cause;
        }
    }
    if let Some(failure) = unexpected_status(step, response.status) {
        return failure;
    }
    if let Some(failure) = extract::check_assertions(&step.assertions, &body, &response.headers) {
        return (Outcome::AssertionFailed, None, failure);
    }
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

/// The signs in a logged-in step's complete answer that its session ended.
fn logout_in_body(
    ctx: &HttpStepContext<'_>,
    body: &str,
    content_type: &str,
    headers: &HeaderMap,
) -> Option<(Outcome, Option<LogoutCause>, String)> {
    if let Some(re) = &ctx.target.session_rules.body_matches {
        if re.is_match(body) {
            return Some((
                Outcome::LoggedOut,
                Some(LogoutCause::ExpiredPage),
                "page says the session has ended".to_string(),
            ));
        }
    }
    // A logout normally lands on the login page, so only other steps
    // read it as a sign.
    if ctx.phase != StepPhase::Logout
        && ctx.target.session_rules.login_page
        && holds_login_form(ctx.target, body, content_type, headers)
    {
        return Some((
            Outcome::LoggedOut,
            Some(LogoutCause::LoginPage),
            "the answer is the login form".to_string(),
        ));
    }
    None
}

/// A status the step's assertions (or, without any, 2xx and 3xx) do not
/// allow.
fn unexpected_status(
    step: &Step,
    status: StatusCode,
) -> Option<(Outcome, Option<LogoutCause>, String)> {
    let code = status.as_u16();
    let expected = &step.assertions.status;
    let status_ok = if expected.is_empty() {
        !(status.is_client_error() || status.is_server_error())
    } else {
        expected.contains(&code)
    };
    if status_ok {
        return None;
    }
    let outcome = if code >= 400 {
        Outcome::HttpError
    } else {
        Outcome::AssertionFailed
    };
    let wanted = if expected.is_empty() {
        "a 2xx or 3xx status".to_string()
    } else {
        format!("status {expected:?}")
    };
    Some((
        outcome,
        None,
        format!("got status {code}, expected {wanted}"),
    ))
}

async fn fetch(
    ctx: &HttpStepContext<'_>,
    step: &Step,
    session: &mut Session,
    start: Instant,
    progress: &mut FetchProgress,
) -> Result<Fetched, FetchEnd> {
    let mut url = build_url(ctx.target, step, session)?;
    let mut method = step.method.clone();
    let mut body = render_body(step, session);
    let mut visited: HashSet<(Method, Url)> = HashSet::new();
    let watch = logout_watch(ctx, session, &url);

    loop {
        check_redirect_chain(ctx, &mut visited, &method, &url, progress.status)?;
        let request = build_request(ctx, step, session, (&method, &url), body.as_ref());
        let idempotent = method == Method::GET || method == Method::HEAD;
        let (hop, sent) = send_resending_if_closed(ctx, step, request, idempotent).await;
        let response = sent.map_err(|e| {
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

        if let Some(watch) = &watch {
            let hop = visited.len() - 1;
            if let Some(end) = logout_signal(ctx, session, &response, &url, watch, hop) {
                return Err(end);
            }
        }

        if step.follow_redirects {
            if let Some(next) = redirect_target(ctx, &url, &response)? {
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
        return read_capped_body(ctx, response, progress).await;
    }
}

/// What to watch for on every hop of a logged-in request; `None` when not
/// logged in.
fn logout_watch(ctx: &HttpStepContext<'_>, session: &Session, url: &Url) -> Option<LogoutWatch> {
    session.is_logged_in().then(|| {
        let rules = &ctx.target.session_rules;
        let cookie = rules.cookie.as_ref().and_then(|c| session.cookie_value(c));
        LogoutWatch {
            cookie_before: cookie.clone().filter(|_| ctx.phase != StepPhase::Logout),
            session_cookie: cookie,
            login: login_url(ctx.target, session),
            own_path: url.path().to_string(),
        }
    })
}

/// Records the hop about to be sent, refusing a loop or a chain longer than
/// the target allows.
fn check_redirect_chain(
    ctx: &HttpStepContext<'_>,
    visited: &mut HashSet<(Method, Url)>,
    method: &Method,
    url: &Url,
    status: Option<u16>,
) -> Result<(), FetchEnd> {
    if !visited.insert((method.clone(), url.clone())) {
        return Err(FetchEnd::Failed(
            Outcome::Error,
            status,
            format!("redirect loop at {}", url.path()),
        ));
    }
    if visited.len() > ctx.target.max_redirects + 1 {
        return Err(FetchEnd::Failed(
            Outcome::Error,
            status,
            format!("more than {} redirects", ctx.target.max_redirects),
        ));
    }
    Ok(())
}

/// One hop's request: the step's headers, the session's cookies and the body.
fn build_request(
    ctx: &HttpStepContext<'_>,
    step: &Step,
    session: &Session,
    (method, url): (&Method, &Url),
    body: Option<&(&'static str, Vec<u8>)>,
) -> reqwest::RequestBuilder {
    let mut request = ctx.client.request(method.clone(), url.clone());
    for (name, template) in &step.headers {
        request = request.header(name.as_str(), template.render(&session.vars));
    }
    if let Some(cookie) = session.cookie_header(url) {
        request = request.header(COOKIE, cookie);
    }
    if let Some((content_type, bytes)) = body {
        request = request
            .header(CONTENT_TYPE, *content_type)
            .body(bytes.clone());
    }
    request
}

/// Sends `request`, timing it as one hop.
async fn send_resending_if_closed(
    ctx: &HttpStepContext<'_>,
    step: &Step,
    mut request: reqwest::RequestBuilder,
    idempotent: bool,
) -> (Hop, Result<reqwest::Response, reqwest::Error>) {
    // A kept-alive connection the server closed after its last answer
    // (without saying `Connection: close`) fails the next request sent
    // on it. As browsers do, an idempotent request that met such a
    // connection is sent again, and a new connection is made for it
    // once the pool has no other idle one (each failed one leaves the
    // pool). One that fails on a connection made for it is final.
    let mut resends = 0;
    loop {
        let again = idempotent.then(|| request.try_clone()).flatten();
        let hop = Hop::start();
        let sent = hop.send(request.send()).await;
        match (sent, again) {
            (Err(e), Some(again))
                if resends < MAX_RESENDS && hop.reused() && closed_by_server(&e) =>
            {
                resends += 1;
                tracing::debug!(target = %ctx.target.name, step = %step.name, "the server had closed the kept-alive connection; sending again");
                if let Some(probes) = ctx.probes {
                    probes.resent(&ctx.target.name);
                }
                request = again;
            }
            (sent, _) => break (hop, sent),
        }
    }
}

/// Where a redirect `response` leads, if it is one with a `Location`; an
/// invalid Location, or one on an origin the target does not allow, ends
/// the fetch.
fn redirect_target(
    ctx: &HttpStepContext<'_>,
    url: &Url,
    response: &reqwest::Response,
) -> Result<Option<Url>, FetchEnd> {
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok());
    let Some(location) = location.filter(|_| status.is_redirection()) else {
        return Ok(None);
    };
    let next = url.join(location).map_err(|_| {
        FetchEnd::Failed(
            Outcome::Error,
            Some(status.as_u16()),
            "redirect to an invalid Location".into(),
        )
    })?;
    if !ctx.target.allows_origin(&next) {
        return Err(FetchEnd::Failed(
            Outcome::Error,
            Some(status.as_u16()),
            format!(
                "redirect to another origin ({})",
                next.origin().ascii_serialization()
            ),
        ));
    }
    Ok(Some(next))
}

/// Reads the final answer's body, up to the target's cap.
async fn read_capped_body(
    ctx: &HttpStepContext<'_>,
    mut response: reqwest::Response,
    progress: &mut FetchProgress,
) -> Result<Fetched, FetchEnd> {
    let status = response.status();
    let over_cap = |detail: String| FetchEnd::Failed(Outcome::Error, Some(status.as_u16()), detail);
    // A declared length over the cap is refused before a byte is read.
    if let Some(length) = response.content_length() {
        if length > ctx.target.max_body_bytes {
            return Err(over_cap(format!(
                "body of {length} bytes is over the {} byte cap",
                ctx.target.max_body_bytes
            )));
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
                    return Err(over_cap(format!(
                        "body over the {} byte cap",
                        ctx.target.max_body_bytes
                    )));
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
    Ok(Fetched {
        status,
        headers,
        body: bytes,
    })
}

/// What a logged-in request watches for on every hop.
struct LogoutWatch {
    /// The session cookie's value before the request; `None` on a logout,
    /// which clears it as a matter of course.
    cookie_before: Option<String>,
    /// The session cookie's value before the request, on a logout too.
    session_cookie: Option<String>,
    /// The target's login page.
    login: Option<Url>,
    /// The path this request was sent to.
    own_path: String,
}

/// The signs on a response header that the server ended a logged-in session:
/// the configured `session_rules`, then the target's own login page.
///
/// A logout lands on the login page as a matter of course, so for the
/// journey's own logout a redirect there is a sign only when it shows that
/// a page refused the request for want of a session: it returns to the
/// logout itself (`/login?next=/logout`), or, further down the chain, a
/// page the logout sent the agent to sent it on to sign in and back
/// (`POST /admin/logout/` → `/admin/` → `/admin/login/?next=/admin/`) —
/// unless the logout's own answer had already cleared the session cookie
/// named in `session_rules.cookie`, which is a logout done.
fn logout_signal(
    ctx: &HttpStepContext<'_>,
    session: &Session,
    response: &reqwest::Response,
    url: &Url,
    watch: &LogoutWatch,
    hop: usize,
) -> Option<FetchEnd> {
    let rules = &ctx.target.session_rules;
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
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok());
        if let (Some(re), Some(location)) = (&rules.redirect_to, location) {
            if re.is_match(location) {
                return Some(FetchEnd::LoggedOut(
                    LogoutCause::Redirect,
                    code,
                    "redirected to the login page".to_string(),
                ));
            }
        }
        let next = location.and_then(|l| url.join(l).ok());
        if let (true, Some(next), Some(login)) = (rules.login_page, next, &watch.login) {
            let own_logout = ctx.phase == StepPhase::Logout;
            let logged_out_already = match (&rules.cookie, &watch.session_cookie) {
                (Some(name), Some(before)) => session.cookie_value(name).as_ref() != Some(before),
                _ => false,
            };
            let refused = login_page::returns_to(&next, &watch.own_path)
                || (hop > 0 && login_page::returns_somewhere(&next) && !logged_out_already);
            if login_page::is_login_page(&next, login) && (!own_logout || refused) {
                return Some(FetchEnd::LoggedOut(
                    LogoutCause::LoginPage,
                    code,
                    "redirected to the login page".to_string(),
                ));
            }
        }
    }
    if let (Some(name), Some(before)) = (&rules.cookie, &watch.cookie_before) {
        match session.cookie_value(name) {
            Some(now) if &now == before => {}
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

/// The target's login page: where its first login step goes.
fn login_url(target: &Target, session: &Session) -> Option<Url> {
    let first = target.login.first()?;
    target.base_url.join(&first.path.render(&session.vars)).ok()
}

/// Whether a page is the target's login form: it has a password field and
/// the login's first extraction (the form's token, say) finds its value.
fn holds_login_form(target: &Target, body: &str, content_type: &str, headers: &HeaderMap) -> bool {
    if !login_page::has_password_field(body) {
        return false;
    }
    match target.login.iter().flat_map(|s| &s.extract).next() {
        Some(first) => extract::extract(&first.from, body, content_type, headers).is_ok(),
        None => true,
    }
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
    // A path built from what a server sent (`${case_path}`) may name any
    // origin; the session and its form go only where the target allows.
    if !target.allows_origin(&url) {
        return Err(FetchEnd::Failed(
            Outcome::Error,
            None,
            format!(
                "step URL leaves the target's origin for {}",
                url.origin().ascii_serialization()
            ),
        ));
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

/// How many times one request is sent again after meeting a connection
/// the server had closed: enough to get past the pool's stale connections.
const MAX_RESENDS: usize = 3;

/// Whether a request failed because the connection it went out on was
/// closed or reset by the server before any answer: no answer came, so
/// nothing of the request is known to have been acted on.
fn closed_by_server(e: &reqwest::Error) -> bool {
    if e.is_connect() || e.is_timeout() || e.is_builder() || e.is_redirect() {
        return false;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) {
                return true;
            }
        }
        if cause
            .to_string()
            .contains("connection closed before message completed")
        {
            return true;
        }
        source = cause.source();
    }
    false
}

fn send_failure(e: &reqwest::Error) -> FetchEnd {
    if out_of_descriptors(e) {
        return FetchEnd::Agent(
            AgentFault::Descriptors,
            "the agent has run out of file descriptors (too many open files): the target was not reached".to_string(),
        );
    }
    let outcome = if e.is_connect() {
        Outcome::ConnectError
    } else {
        Outcome::Error
    };
    FetchEnd::Failed(outcome, None, error_chain(e))
}

/// Whether `e` comes from the agent's own descriptor limit (EMFILE) or the
/// system's (ENFILE), anywhere in its chain of causes.
fn out_of_descriptors(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                return true;
            }
        }
        let text = cause.to_string();
        if text.contains("Too many open files") {
            return true;
        }
        source = cause.source();
    }
    false
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
