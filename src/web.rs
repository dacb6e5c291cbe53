//! The agent's HTTP endpoints: `/metrics`, `/-/healthy`, `/-/ready` and the
//! status page at `/`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::status::StatusBoard;

#[derive(Clone)]
pub struct WebState {
    pub metrics: Arc<Metrics>,
    pub status: Arc<Mutex<StatusBoard>>,
    pub ready: Arc<AtomicBool>,
    pub reloads: tokio::sync::mpsc::Sender<crate::agent::ReloadRequest>,
}

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .with_state(state)
}

async fn metrics(State(state): State<WebState>) -> Response {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        state.metrics.render(),
    )
        .into_response()
}

/// Re-reads the config, as Prometheus's `/-/reload` does: 200 when applied,
/// 500 with the reason when refused (the old config keeps running).
async fn reload(State(state): State<WebState>) -> Response {
    match crate::agent::request_reload(&state.reloads).await {
        Ok(summary) => (StatusCode::OK, format!("Reloaded: {summary}\n")).into_response(),
        Err(why) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {why}\n"),
        )
            .into_response(),
    }
}

async fn ready(State(state): State<WebState>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Not ready.\n").into_response()
    }
}

async fn status_page(State(state): State<WebState>) -> Html<String> {
    let page = match state.status.lock() {
        Ok(board) => board.render_html().into_string(),
        Err(poisoned) => poisoned.into_inner().render_html().into_string(),
    };
    Html(page)
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}")]
pub struct BindError {
    addr: SocketAddr,
    #[source]
    source: std::io::Error,
}

/// Binds `addr` and serves until `shutdown`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    state: WebState,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), BindError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| BindError { addr, source })?;
    let app = router(state);
    let handle = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "web server stopped");
        }
    });
    Ok((bound, handle))
}
