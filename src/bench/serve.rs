//! `serve`: the fixed-delay HTTP server every bench driver and peer is
//! measured against. It logs each request's server-side arrival and
//! completion (realtime ns) and holds every answer during a freeze asked
//! for at `/freeze`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use super::now_ns;

#[derive(Default)]
struct ServeState {
    /// `a arrival_ns done_ns delay_ms tag` and `f start_ns end_ns` lines.
    log: Mutex<String>,
    /// The freeze in force: (start, end) as monotonic instants.
    freeze: Mutex<Option<(std::time::Instant, std::time::Instant)>>,
    served: AtomicU64,
}

pub(super) async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let state = Arc::new(ServeState::default());
    let app = Router::new()
        .route("/d/{ms}/{*tag}", get(delayed))
        .route("/_freeze", post(freeze))
        .route("/_log", get(drain_log))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("bench server on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// Answers after exactly `ms` milliseconds (a blocking sleep, which the
/// kernel keeps to tens of microseconds; tokio's timer rounds to 1 ms), then
/// holds the answer while a freeze is in force.
async fn delayed(
    State(state): State<Arc<ServeState>>,
    UrlPath((ms, tag)): UrlPath<(u64, String)>,
) -> impl IntoResponse {
    let arrival_ns = now_ns();
    let arrival = std::time::Instant::now();
    if ms > 0 {
        let deadline = arrival + Duration::from_millis(ms);
        let _ = tokio::task::spawn_blocking(move || {
            std::thread::sleep(deadline.saturating_duration_since(std::time::Instant::now()))
        })
        .await;
    }
    loop {
        let held = *state.freeze.lock().unwrap();
        let now = std::time::Instant::now();
        match held {
            Some((from, until)) if from <= now && now < until => {
                tokio::time::sleep_until(until.into()).await
            }
            _ => break,
        }
    }
    let n = state.served.fetch_add(1, Ordering::Relaxed);
    let done_ns = now_ns();
    let _ = writeln!(
        state.log.lock().unwrap(),
        "a\t{arrival_ns}\t{done_ns}\t{ms}\t{tag}"
    );
    let body = format!(
        r#"{{"case":{{"id":"C-{n}","status":"open","worker":"sw.bench","team":"north"}},"notes":[{{"at":"2025-01-01T10:00:00Z","text":"visit booked"}},{{"at":"2025-01-02T11:30:00Z","text":"called family"}}],"flags":["safeguarding","review-due"]}}"#
    );
    ([(CONTENT_TYPE, "application/json")], body)
}

async fn freeze(
    State(state): State<Arc<ServeState>>,
    Query(q): Query<HashMap<String, u64>>,
) -> impl IntoResponse {
    let ms = q.get("ms").copied().unwrap_or(1000);
    let from = std::time::Instant::now();
    let from_ns = now_ns();
    *state.freeze.lock().unwrap() = Some((from, from + Duration::from_millis(ms)));
    let _ = writeln!(
        state.log.lock().unwrap(),
        "f\t{from_ns}\t{}",
        from_ns + ms * 1_000_000
    );
    "frozen\n"
}

async fn drain_log(State(state): State<Arc<ServeState>>) -> String {
    std::mem::take(&mut *state.log.lock().unwrap())
}
