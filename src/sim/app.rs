//! The simulated web application both systems serve: routes, the per-request
//! gate that applies freezes, restarts, injected errors and extra latency, and
//! the handlers for login, search, records, notes, reports and logout.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::time::Instant;

use super::pages;
use super::profile::{LogoutStyle, RequestClass, SystemId};
use super::state::{lock, Auth, CaseNote, Sim, NOTES_PER_CASE};

const MAX_NOTE_CHARS: usize = 4000;
const MAX_REPORT_NAME: usize = 100;

/// Handler state: the shared sim and which system this listener is.
#[derive(Clone)]
pub struct App {
    pub sim: Arc<Sim>,
    pub id: SystemId,
}

/// The application routes for one system, behind its gate.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/ping", get(ping))
        .route("/login", get(login_form).post(login_submit))
        .route("/logout", get(logout))
        .route("/home", get(home))
        .route("/cases/search", get(search_page))
        .route("/api/cases", get(search_api))
        .route("/cases/{id}", get(record))
        .route("/cases/{id}/notes", post(save_note))
        .route("/reports/{name}", get(report))
        .route(pages::SCRIPT_PATH, get(script))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), gate))
        .with_state(app)
}

/// Counts the request, then applies the system-wide faults in the order a
/// real outage would: a frozen system answers nothing until it thaws (also for
/// requests already in service when the freeze began); a restarting one
/// answers 503; injected errors and extra latency come next.
async fn gate(State(app): State<App>, req: Request, next: Next) -> Response {
    let sys = app.sim.system(app.id);
    sys.in_flight.fetch_add(1, Ordering::SeqCst);
    let _in_flight = InFlight(app.sim.clone(), app.id);
    let resp = gated(&app, req, next).await;
    sys.served.fetch_add(1, Ordering::SeqCst);
    resp
}

async fn gated(app: &App, req: Request, next: Next) -> Response {
    let sim = &app.sim;
    if !sim.wait_unfrozen(app.id).await {
        return shutting_down(app.id);
    }
    let (restarting, extra) = {
        let st = lock(&sim.system(app.id).state);
        (
            st.restarting_until.is_some_and(|t| t > Instant::now()),
            st.extra_latency,
        )
    };
    if restarting {
        let mut resp = status_page(
            app.id,
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            "The system is restarting. Please try again shortly.",
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return resp;
    }
    if let Some(status) = take_injected_error(sim, app.id) {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return status_page(
            app.id,
            code,
            &format!("Error {status}"),
            "The server could not complete the request.",
        );
    }
    if !sim.sleep(extra).await {
        return shutting_down(app.id);
    }
    let resp = next.run(req).await;
    if !sim.wait_unfrozen(app.id).await {
        return shutting_down(app.id);
    }
    resp
}

struct InFlight(Arc<Sim>, SystemId);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .system(self.1)
            .in_flight
            .fetch_sub(1, Ordering::SeqCst);
    }
}

fn take_injected_error(sim: &Sim, id: SystemId) -> Option<u16> {
    let mut st = lock(&sim.system(id).state);
    let e = st.errors.as_mut()?;
    let status = e.status;
    e.remaining = e.remaining.saturating_sub(1);
    if e.remaining == 0 {
        let truth_id = e.truth_id;
        st.errors = None;
        let now = sim.clock.now_unix();
        if let Some(ev) = lock(&sim.truth).get_mut(truth_id) {
            ev.ends_at = Some(now);
        }
    }
    Some(status)
}

fn shutting_down(id: SystemId) -> Response {
    status_page(
        id,
        StatusCode::SERVICE_UNAVAILABLE,
        "Service unavailable",
        "The system is shutting down.",
    )
}

fn status_page(id: SystemId, status: StatusCode, heading: &str, text: &str) -> Response {
    (status, Html(pages::message(id, heading, text))).into_response()
}

fn redirect(status: StatusCode, to: &'static str) -> Response {
    (status, [(header::LOCATION, HeaderValue::from_static(to))]).into_response()
}

fn redirect_to(status: StatusCode, to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => (status, [(header::LOCATION, v)]).into_response(),
        Err(_) => redirect(status, "/home"),
    }
}

fn clear_cookie(id: SystemId) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{}=; Path=/; HttpOnly; Max-Age=0",
        id.cookie_name()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn query(raw: Option<String>) -> HashMap<String, String> {
    raw.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// A logged-in caller, or the response to send instead.
struct Caller {
    user: String,
    csrf: String,
}

/// How the server answers the first request on a session it has ended.
fn logout_response(app: &App, style: LogoutStyle) -> Response {
    let ended = |code| {
        status_page(
            app.id,
            code,
            "Session ended",
            "Your session is no longer valid. Please sign in again.",
        )
    };
    match style {
        LogoutStyle::Redirect => redirect(StatusCode::FOUND, "/login?expired=1"),
        LogoutStyle::Status401 => ended(StatusCode::UNAUTHORIZED),
        LogoutStyle::Status403 => ended(StatusCode::FORBIDDEN),
        LogoutStyle::Status440 => {
            ended(StatusCode::from_u16(440).unwrap_or(StatusCode::UNAUTHORIZED))
        }
        LogoutStyle::ExpiredPage => Html(pages::expired(app.id)).into_response(),
        LogoutStyle::CookieCleared => {
            let token = app.sim.new_login_token(app.id);
            (
                [(header::SET_COOKIE, clear_cookie(app.id))],
                Html(pages::login(app.id, &token, None, None)),
            )
                .into_response()
        }
        LogoutStyle::LoginPage => {
            let token = app.sim.new_login_token(app.id);
            Html(pages::login(app.id, &token, None, None)).into_response()
        }
        LogoutStyle::ReturnTo => redirect(StatusCode::FOUND, "/login?next=%2Fhome"),
    }
}

macro_rules! work {
    ($app:expr, $class:expr) => {
        match $app.sim.work($app.id, $class).await {
            Some(guard) => guard,
            None => return shutting_down($app.id),
        }
    };
}

macro_rules! logged_in {
    ($app:expr, $headers:expr) => {
        match $app.sim.authenticate($app.id, &$headers) {
            Auth::Live { user, csrf } => Caller { user, csrf },
            Auth::Missing => return redirect(StatusCode::FOUND, "/login"),
            Auth::Ended(style) => return logout_response(&$app, style),
        }
    };
}

/// The pages' script. Never cached, so every page load fetches it and a
/// hang armed through the control API meets the next page a browser loads
/// (HTTP journeys fetch no scripts, so it never reaches them).
async fn script(State(app): State<App>) -> Response {
    let hang = app.sim.take_page_hang(app.id);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        pages::script(hang),
    )
        .into_response()
}

async fn root() -> Response {
    redirect(StatusCode::FOUND, "/home")
}

async fn ping() -> &'static str {
    "ok"
}

async fn not_found(State(app): State<App>) -> Response {
    status_page(
        app.id,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page.",
    )
}

async fn login_form(State(app): State<App>, RawQuery(raw): RawQuery) -> Response {
    let _work = work!(app, RequestClass::Page);
    let q = query(raw);
    let notice = if q.get("expired").is_some_and(|v| v == "1") {
        Some(pages::EXPIRED_NOTICE)
    } else if q.get("logged_out").is_some_and(|v| v == "1") {
        Some(pages::LOGGED_OUT_NOTICE)
    } else {
        None
    };
    let token = app.sim.new_login_token(app.id);
    Html(pages::login(app.id, &token, notice, None)).into_response()
}

async fn login_submit(State(app): State<App>, body: Bytes) -> Response {
    let _work = work!(app, RequestClass::Page);
    let f = form(&body);
    let token = f.get("csrf_token").map(String::as_str).unwrap_or("");
    if !app.sim.login_token_valid(app.id, token) {
        return status_page(
            app.id,
            StatusCode::FORBIDDEN,
            "Invalid form token",
            "The sign-in form has expired. Please go back and try again.",
        );
    }
    let user = f.get("username").map(String::as_str).unwrap_or("");
    let password = f.get("password").map(String::as_str).unwrap_or("");
    if !app.sim.check_password(user, password) {
        let fresh = app.sim.new_login_token(app.id);
        return Html(pages::login(
            app.id,
            &fresh,
            None,
            Some("Invalid username or password"),
        ))
        .into_response();
    }
    let sid = app.sim.login(app.id, user);
    let cookie = format!("{}={sid}; Path=/; HttpOnly", app.id.cookie_name());
    let mut resp = redirect(StatusCode::SEE_OTHER, "/home");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Signing out needs a session, as on real systems: one the server has
/// ended gets the logout response, an unknown one (flushed by a restart)
/// the login page with a return to `/logout`.
async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
    let _work = work!(app, RequestClass::Page);
    match app.sim.authenticate(app.id, &headers) {
        Auth::Live { .. } => {}
        Auth::Missing => return redirect(StatusCode::FOUND, "/login?next=%2Flogout"),
        // The logout of a dropped session sends the user home, whence the
        // home page sends them to sign in.
        Auth::Ended(LogoutStyle::ReturnTo) => return redirect(StatusCode::FOUND, "/home"),
        Auth::Ended(style) => return logout_response(&app, style),
    }
    if let Some(sid) = super::state::cookie(&headers, app.id.cookie_name()) {
        app.sim.logout(app.id, &sid);
    }
    let mut resp = redirect(StatusCode::SEE_OTHER, "/login?logged_out=1");
    resp.headers_mut()
        .insert(header::SET_COOKIE, clear_cookie(app.id));
    resp
}

async fn home(State(app): State<App>, headers: HeaderMap) -> Response {
    let who = logged_in!(app, headers);
    let _work = work!(app, RequestClass::Page);
    Html(pages::home(app.id, &who.user, &who.csrf)).into_response()
}

async fn search_page(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let who = logged_in!(app, headers);
    let q = query(raw).remove("q").unwrap_or_default();
    if q.trim().is_empty() {
        return status_page(
            app.id,
            StatusCode::BAD_REQUEST,
            "Bad request",
            "Search needs a name.",
        );
    }
    let _work = work!(app, RequestClass::Search);
    Html(pages::results(app.id, &who.user, &q, &pages::search(&q))).into_response()
}

async fn search_api(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let _who = logged_in!(app, headers);
    let q = query(raw).remove("q").unwrap_or_default();
    if q.trim().is_empty() {
        let body = serde_json::json!({"error": "query parameter q is required"});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let _work = work!(app, RequestClass::Search);
    let results: Vec<_> = pages::search(&q)
        .into_iter()
        .map(|c| serde_json::json!({"id": c.id, "name": c.name, "worker": c.worker}))
        .collect();
    Json(serde_json::json!({"query": q, "count": results.len(), "results": results}))
        .into_response()
}

async fn record(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let who = logged_in!(app, headers);
    let _work = work!(app, RequestClass::Page);
    let Some(case) = pages::case_by_id(&id) else {
        return status_page(
            app.id,
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no case with that number.",
        );
    };
    let notes: Vec<CaseNote> = lock(&app.sim.system(app.id).state)
        .notes
        .get(&case.id)
        .map(|n| n.iter().cloned().collect())
        .unwrap_or_default();
    // Confirm only notes that really exist, so "saved" means saved.
    let saved = query(raw)
        .remove("saved")
        .filter(|s| notes.iter().any(|n| &n.id == s));
    Html(pages::record(
        app.id,
        &who.user,
        &case,
        &notes,
        saved.as_deref(),
        &who.csrf,
    ))
    .into_response()
}

async fn save_note(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let who = logged_in!(app, headers);
    let Some(case) = pages::case_by_id(&id) else {
        return status_page(
            app.id,
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no case with that number.",
        );
    };
    let f = form(&body);
    if f.get("csrf_token") != Some(&who.csrf) {
        return status_page(
            app.id,
            StatusCode::FORBIDDEN,
            "Invalid form token",
            "The form has expired. Please reload the record and try again.",
        );
    }
    let text: String = f
        .get("note")
        .map(|n| n.trim().chars().take(MAX_NOTE_CHARS).collect())
        .unwrap_or_default();
    if text.is_empty() {
        return status_page(
            app.id,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Note not saved",
            "A note cannot be empty.",
        );
    }
    let _work = work!(app, RequestClass::Save);
    let note_id = {
        let mut st = lock(&app.sim.system(app.id).state);
        st.next_note += 1;
        let note_id = format!("N-{}", st.next_note);
        let notes = st.notes.entry(case.id.clone()).or_default();
        notes.push_back(CaseNote {
            id: note_id.clone(),
            text,
            user: who.user,
        });
        while notes.len() > NOTES_PER_CASE {
            notes.pop_front();
        }
        note_id
    };
    redirect_to(
        StatusCode::SEE_OTHER,
        &format!("/cases/{}?saved={note_id}", case.id),
    )
}

/// A slow management report. Where it runs is `reports_on`: asked of the CSS
/// while reports are on the ICS, the CSS queries the ICS live, so the report
/// charges the ICS's capacity (and the CSS's, for the request it proxies) and
/// waits out ICS freezes.
async fn report(State(app): State<App>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let who = logged_in!(app, headers);
    let name: String = name.chars().take(MAX_REPORT_NAME).collect();
    let sim = &app.sim;
    let on = *lock(&sim.reports_on);
    let source = if app.id == SystemId::Ics {
        SystemId::Ics
    } else {
        on
    };
    if source == app.id {
        let _work = work!(app, RequestClass::Report);
        return Html(pages::report(app.id, &who.user, &name, source)).into_response();
    }
    if !sim.wait_unfrozen(source).await {
        return shutting_down(app.id);
    }
    let source_restarting = lock(&sim.system(source).state)
        .restarting_until
        .is_some_and(|t| t > Instant::now());
    if source_restarting {
        return status_page(
            app.id,
            StatusCode::BAD_GATEWAY,
            "Report unavailable",
            "The case system the report reads from is not answering.",
        );
    }
    let weight = u64::from(lock(&sim.system(source).state).report_weight);
    let remote = sim.charge(source, weight);
    let local = sim.charge(app.id, 1);
    let factor = sim
        .overload(source, remote.load_after)
        .max(sim.overload(app.id, local.load_after));
    let d = sim.base_latency(RequestClass::Report).mul_f64(factor);
    if !sim.sleep(d).await || !sim.wait_unfrozen(source).await {
        return shutting_down(app.id);
    }
    drop((remote, local));
    Html(pages::report(app.id, &who.user, &name, source)).into_response()
}
