//! The control API (`/_control/...`, ICS listener only, off unless enabled):
//! inject faults on demand and read back the truth log, live sessions and
//! load. Durations given here are REAL seconds whatever the time scale, so a
//! test's "freeze for 5 s" means five wall-clock seconds.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use super::profile::{LogoutStyle, SystemId};
use super::state::{lock, InjectedErrors, PageHang, Sim};
use super::truth::{Source, TruthEvent};

/// Longest single injected freeze or restart; longer is surely a typo.
const MAX_SECONDS: f64 = 3600.0;

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/_control/freeze", post(freeze))
        .route("/_control/logout", post(logout))
        .route("/_control/capacity", post(capacity))
        .route("/_control/reports", post(reports))
        .route("/_control/latency", post(latency))
        .route("/_control/errors", post(errors))
        .route("/_control/logout_style", post(logout_style))
        .route("/_control/restart", post(restart))
        .route("/_control/page_hang", post(page_hang))
        .route("/_control/truth", get(truth))
        .route("/_control/sessions", get(sessions))
        .route("/_control/stats", get(stats))
        .with_state(sim)
}

fn bad_request(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": msg }))).into_response()
}

/// Parses a JSON body (an empty body counts as `{}`), or answers 400.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    let bytes: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON body: {e}"))
}

fn real_seconds(s: f64, what: &str) -> Result<Duration, String> {
    if s.is_finite() && s > 0.0 && s <= MAX_SECONDS {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!(
            "{what} must be between 0 and {MAX_SECONDS} seconds"
        ))
    }
}

macro_rules! try_resp {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(msg) => return bad_request(msg),
        }
    };
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FreezeReq {
    seconds: f64,
    #[serde(default)]
    system: SystemId,
}

async fn freeze(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let req: FreezeReq = try_resp!(parse(&body));
    let length = try_resp!(real_seconds(req.seconds, "seconds"));
    let id = sim.start_freeze(req.system, length, Source::Injected);
    Json(json!({ "id": id })).into_response()
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Which {
    #[default]
    All,
    Oldest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutReq {
    #[serde(default)]
    which: Which,
    #[serde(default = "one")]
    count: usize,
    #[serde(default)]
    system: SystemId,
    style: Option<LogoutStyle>,
}

fn one() -> usize {
    1
}

async fn logout(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let req: LogoutReq = try_resp!(parse(&body));
    let oldest = (req.which == Which::Oldest).then_some(req.count);
    let hit = sim.force_logout(req.system, oldest, req.style);
    let ids: Vec<u64> = hit.iter().map(|(id, _)| *id).collect();
    let ages: Vec<_> = hit.into_iter().map(|(_, age)| age).collect();
    Json(json!({ "ids": ids, "count": ages.len(), "sessions": ages })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapacityReq {
    workers: u32,
    report_weight: Option<u32>,
    #[serde(default)]
    system: SystemId,
}

async fn capacity(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let req: CapacityReq = try_resp!(parse(&body));
    if req.workers == 0 || req.report_weight == Some(0) {
        return bad_request("workers and report_weight must be at least 1".into());
    }
    let (workers, weight) = {
        let mut st = lock(&sim.system(req.system).state);
        st.workers = req.workers;
        if let Some(w) = req.report_weight {
            st.report_weight = w;
        }
        (st.workers, st.report_weight)
    };
    let ev = TruthEvent::new(
        "capacity",
        Source::Injected,
        req.system,
        sim.clock.now_unix(),
    )
    .instant()
    .with("workers", workers)
    .with("report_weight", weight);
    let id = sim.record(ev);
    Json(json!({ "id": id, "workers": workers, "report_weight": weight })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportsReq {
    on: SystemId,
}

async fn reports(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let req: ReportsReq = try_resp!(parse(&body));
    *lock(&sim.reports_on) = req.on;
    let ev = TruthEvent::new("reports", Source::Injected, req.on, sim.clock.now_unix())
        .instant()
        .with("on", req.on.as_str());
    let id = sim.record(ev);
    Json(json!({ "id": id, "on": req.on })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyReq {
    extra_ms: u64,
    #[serde(default)]
    system: SystemId,
}

/// Extra latency is an episode: it stays open in the truth log until the next
/// latency change replaces it (0 just closes it).
async fn latency(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let req: LatencyReq = try_resp!(parse(&body));
    if req.extra_ms > (MAX_SECONDS as u64) * 1000 {
        return bad_request(format!(
            "extra_ms must be at most {}",
            MAX_SECONDS as u64 * 1000
        ));
    }
    let now = sim.clock.now_unix();
    let mut st = lock(&sim.system(req.system).state);
    st.extra_latency = Duration::from_millis(req.extra_ms);
    let mut truth = lock(&sim.truth);
    if let Some(prev) = st.latency_truth.take().and_then(|id| truth.get_mut(id)) {
        prev.ends_at = Some(now);
    }
    let ev = TruthEvent::new("latency", Source::Injected, req.system, now)
        .with("extra_ms", req.extra_ms);
    let ev = if req.extra_ms == 0 { ev.instant() } else { ev };
    let id = truth.push(ev);
    if req.extra_ms > 0 {
        st.latency_truth = Some(id);
    }
    Json(json!({ "id": id })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorsReq {
    status: u16,
    #[serde(default = "one_u64")]
    count: u64,
    #[serde(default)]
    system: SystemId,
}

fn one_u64() -> u64 {
    1
}

/// The episode stays open until its count is spent (or it is replaced).
async fn errors(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let req: ErrorsReq = try_resp!(parse(&body));
    if !(400..=599).contains(&req.status) {
        return bad_request("status must be between 400 and 599".into());
    }
    let now = sim.clock.now_unix();
    let mut st = lock(&sim.system(req.system).state);
    let mut truth = lock(&sim.truth);
    if let Some(prev) = st.errors.take().and_then(|e| truth.get_mut(e.truth_id)) {
        prev.ends_at = Some(now);
    }
    let ev = TruthEvent::new("errors", Source::Injected, req.system, now)
        .with("status", req.status)
        .with("count", req.count);
    let ev = if req.count == 0 { ev.instant() } else { ev };
    let id = truth.push(ev);
    if req.count > 0 {
        st.errors = Some(InjectedErrors {
            status: req.status,
            remaining: req.count,
            truth_id: id,
        });
    }
    Json(json!({ "id": id })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleReq {
    style: LogoutStyle,
    #[serde(default)]
    system: SystemId,
}

async fn logout_style(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let req: StyleReq = try_resp!(parse(&body));
    lock(&sim.system(req.system).state).style = req.style;
    let ev = TruthEvent::new(
        "logout_style",
        Source::Injected,
        req.system,
        sim.clock.now_unix(),
    )
    .instant()
    .with("style", req.style.as_str());
    let id = sim.record(ev);
    Json(json!({ "id": id, "style": req.style })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestartReq {
    #[serde(default)]
    system: SystemId,
    /// Downtime in real seconds; default the profile's, else 5.
    seconds: Option<f64>,
}

async fn restart(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let req: RestartReq = try_resp!(parse(&body));
    let downtime = match req.seconds {
        Some(s) => try_resp!(real_seconds(s, "seconds")),
        None => sim
            .profile
            .restarts
            .get(req.system)
            .map_or(Duration::from_secs(5), |r| r.downtime),
    };
    let (id, ages) = sim.restart(req.system, downtime, Source::Injected);
    Json(json!({ "id": id, "sessions": ages })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageHangReq {
    seconds: f64,
    #[serde(default = "one_u64")]
    count: u64,
    #[serde(default)]
    system: SystemId,
}

/// Arms a client-side freeze: the next `count` pages a browser loads run a
/// script that holds their main thread for `seconds`. Each is recorded in
/// the truth log (`page_hang`) when its script is served.
async fn page_hang(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let req: PageHangReq = try_resp!(parse(&body));
    let length = try_resp!(real_seconds(req.seconds, "seconds"));
    if req.count == 0 {
        return bad_request("count must be at least 1".into());
    }
    lock(&sim.system(req.system).state).page_hang = Some(PageHang {
        length,
        remaining: req.count,
    });
    Json(json!({ "armed": req.count, "seconds": length.as_secs_f64() })).into_response()
}

struct TruthQuery {
    /// Only events with a larger id, for cheap polling.
    since: u64,
}

async fn truth(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery) -> Response {
    let q = raw.unwrap_or_default();
    let query: TruthQuery = match parse_truth_query(&q) {
        Ok(v) => v,
        Err(msg) => return bad_request(msg),
    };
    let now = sim.clock.now_unix();
    Json(lock(&sim.truth).to_json(now, query.since)).into_response()
}

/// `since=N` is the only query the truth log takes.
fn parse_truth_query(q: &str) -> Result<TruthQuery, String> {
    let mut out = TruthQuery { since: 0 };
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        match k.as_ref() {
            "since" => {
                out.since = v
                    .parse()
                    .map_err(|_| format!("since must be an event id, not {v:?}"))?
            }
            other => return Err(format!("unknown query parameter {other:?}")),
        }
    }
    Ok(out)
}

async fn sessions(State(sim): State<Arc<Sim>>) -> Response {
    let now = Instant::now();
    let mut out = Vec::new();
    for id in [SystemId::Ics, SystemId::Css] {
        let mut st = lock(&sim.system(id).state);
        let style = st.style;
        for s in st.sessions.values_mut() {
            // Report the truth as of now, not as of the last sweep.
            sim.end_if_due(id, s, style, now);
            let age = sim.clock.age(s.login_at, now);
            out.push(json!({
                "system": id.as_str(),
                "user": s.user,
                "age_sim_seconds": age.age_sim_seconds,
                "age_real_seconds": age.age_real_seconds,
                "idle_real_seconds": now.saturating_duration_since(s.last_seen).as_secs_f64(),
                "ended": s.ended.is_some(),
            }));
        }
    }
    Json(json!({ "sessions": out })).into_response()
}

async fn stats(State(sim): State<Arc<Sim>>) -> Response {
    let now = Instant::now();
    let per = |id: SystemId| {
        let sys = sim.system(id);
        let st = lock(&sys.state);
        json!({
            "requests_served": sys.served.load(Ordering::SeqCst),
            "in_flight": sys.in_flight.load(Ordering::SeqCst),
            "load": sys.load.load(Ordering::SeqCst),
            "workers": st.workers,
            "report_weight": st.report_weight,
            "frozen": st.frozen_until.is_some_and(|t| t > now),
            "restarting": st.restarting_until.is_some_and(|t| t > now),
            "sessions": st.sessions.values().filter(|s| s.ended.is_none()).count(),
            "extra_latency_ms": st.extra_latency.as_millis() as u64,
            "logout_style": st.style,
        })
    };
    Json(json!({
        "ics": per(SystemId::Ics),
        "css": per(SystemId::Css),
        "reports_on": *lock(&sim.reports_on),
        "time_scale": sim.clock.scale,
        "background_load": sim.background(),
    }))
    .into_response()
}
