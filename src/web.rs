//! The agent's HTTP endpoints: `/metrics`, `/-/healthy`, `/-/ready`, the
//! status page at `/`, and the evidence of failed browser steps it links to
//! at `/evidence/NAME` (only names the evidence store writes).
//!
//! `POST /-/reload` sends a [`ReloadRequest`] down a channel; the agent's
//! control loop holds the other end and answers it, so this module needs
//! nothing from the agent.
//!
//! Answers are gzip-compressed when the client sends `Accept-Encoding: gzip`
//! (Prometheus does on every scrape), and plain otherwise.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

pub mod limits;
use crate::status::history::HistoryCache;
use crate::status::StatusBoard;
use crate::webconfig::WebConfig;

/// A request to re-read the config, answered with a summary of what changed
/// or the reason it was refused.
pub type ReloadRequest = oneshot::Sender<Result<String, ReloadError>>;

/// Why a reload was refused; the old config keeps running. Shown to people
/// with its causes, as [`crate::error_chain`] writes them.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the agent is stopping")]
    Stopping,
    #[error("this agent was started without a config file to re-read")]
    NoConfigFile,
    /// The work on the blocking pool panicked or was cancelled.
    #[error("the reload failed unexpectedly")]
    Unexpected,
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("site cannot change on reload (from {from:?} to {to:?}): restart the agent")]
    SiteChanged { from: String, to: String },
    /// A target's new HTTP client could not be built.
    #[error(transparent)]
    Runner(#[from] crate::runner::RunnerError),
}

/// Asks the agent's control loop to re-read the config (as `POST /-/reload`
/// and SIGHUP do) and waits for its answer.
pub async fn request_reload(reloads: &mpsc::Sender<ReloadRequest>) -> Result<String, ReloadError> {
    let (reply, answer) = oneshot::channel();
    reloads
        .send(reply)
        .await
        .map_err(|_| ReloadError::Stopping)?;
    answer.await.unwrap_or(Err(ReloadError::Stopping))
}

#[derive(Clone)]
pub struct WebState {
    pub metrics: Arc<Metrics>,
    pub status: Arc<Mutex<StatusBoard>>,
    pub ready: Arc<AtomicBool>,
    pub reloads: mpsc::Sender<ReloadRequest>,
    /// The evidence folder beside the journal; `None` without a journal.
    pub evidence: Option<std::path::PathBuf>,
    /// The status page's history, read from the journal and cached.
    pub history: Arc<HistoryCache>,
}

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .route("/evidence/{name}", get(evidence))
        .with_state(state)
        // An exposition of 100 KB is about 6 KB gzipped: 16 times less over
        // a WAN at every scrape.
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
}

/// Renders off the async workers: a large exposition takes milliseconds and
/// must not stall the probes sharing those threads.
async fn metrics(State(state): State<WebState>) -> Response {
    let metrics = state.metrics.clone();
    match tokio::task::spawn_blocking(move || metrics.render()).await {
        Ok(body) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Re-reads the config, as Prometheus's `/-/reload` does: 200 when applied,
/// 500 with the reason when refused (the old config keeps running).
async fn reload(State(state): State<WebState>) -> Response {
    match request_reload(&state.reloads).await {
        Ok(summary) => (StatusCode::OK, format!("Reloaded: {summary}\n")).into_response(),
        Err(why) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {}\n", crate::error_chain(&why)),
        )
            .into_response(),
    }
}

/// The largest evidence file served: a full-page screenshot is well under.
const MAX_EVIDENCE_BYTES: u64 = 32 * 1024 * 1024;

/// A screenshot or console log of a failed browser step. The name must be
/// one the evidence store writes, so no request can reach another file.
async fn evidence(
    State(state): State<WebState>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let Some(dir) = state.evidence.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !crate::browser::captures::is_capture_file(&name) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let kind = if name.ends_with(".png") {
        "image/png"
    } else {
        "application/json"
    };
    // A regular file only, capped, opened without blocking, off the workers.
    let path = dir.join(&name);
    let read = tokio::task::spawn_blocking(move || {
        crate::config::file::read_capped(&path, MAX_EVIDENCE_BYTES)
    });
    match read.await {
        Ok(Ok(bytes)) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn ready(State(state): State<WebState>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Not ready.\n").into_response()
    }
}

/// The status page. Its history comes from the cache (read off the async
/// workers at most once a minute), so a page load does no heavy work.
async fn status_page(State(state): State<WebState>) -> Html<String> {
    let journeys = board(&state).journey_targets();
    let history = state.history.current(journeys).await;
    let page = board(&state).render_html(&history).into_string();
    Html(page)
}

fn board(state: &WebState) -> std::sync::MutexGuard<'_, StatusBoard> {
    match state.status.lock() {
        Ok(board) => board,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load TLS certificate {cert} and key {key}")]
    Tls {
        cert: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read TLS file {path}")]
    TlsFile {
        path: String,
        #[source]
        source: crate::config::file::FileError,
    },
}

/// The most connections the endpoints hold open at once, whatever the
/// descriptor limit; the cap itself is a quarter of the soft limit up to
/// this ([`limits::connection_cap`]), so a flood of connections cannot take
/// the descriptors the probes need. The packaged unit's `LimitNOFILE` leaves
/// room for these beside the probes' own connections (see
/// [`crate::agent::descriptors_needed`]).
pub const MAX_CONNECTIONS: usize = limits::MAX_CONNECTIONS;

/// Binds `addr` for [`serve_on`]. Commands bind first, before they create
/// any file, so a busy port stops them with nothing left behind.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, BindError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| BindError::Listen { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| BindError::Listen { addr, source })?;
    Ok(listener)
}

/// Binds `addr` and serves until `shutdown`, over TLS and behind basic auth
/// when the web config says so; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    state: WebState,
    web_config: &WebConfig,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), BindError> {
    serve_on(bind(addr)?, state, web_config, shutdown).await
}

/// As [`serve`], on a listener already bound by [`bind`].
pub async fn serve_on(
    listener: std::net::TcpListener,
    state: WebState,
    web_config: &WebConfig,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), BindError> {
    let state_metrics = state.metrics.clone();
    let mut app = router(state);
    if web_config.users.is_enabled() {
        app = app.layer(axum::middleware::from_fn_with_state(
            web_config.users.clone(),
            crate::webconfig::require_basic_auth,
        ));
    }
    let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
    let bound = listener.local_addr().map_err(|source| BindError::Listen {
        addr: unknown,
        source,
    })?;
    let addr = bound;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    let cap = limits::connection_cap(limits::descriptor_limit());
    let agent = &state_metrics.agent;
    agent.web_connection_cap.set(cap as i64);
    let limiter = limits::Limiter::new(
        cap,
        agent.web_connections_open.clone(),
        agent.web_connections_refused.clone(),
    );
    let service = app.into_make_service();
    let task = match &web_config.tls {
        Some((cert, key)) => {
            // Read here, capped and without blocking, rather than by the
            // TLS library: a FIFO or a device in their place must not hang.
            let read = |path: &std::path::Path| {
                crate::config::file::read_capped(path, crate::config::file::MAX_PEM_FILE_BYTES)
                    .map_err(|source| BindError::TlsFile {
                        path: path.display().to_string(),
                        source,
                    })
            };
            let (cert_pem, key_pem) = (read(cert)?, read(key)?);
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem(cert_pem, key_pem)
                .await
                .map_err(|source| BindError::Tls {
                    cert: cert.display().to_string(),
                    key: key.display().to_string(),
                    source,
                })?;
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
                .handshake_timeout(limits::HEADER_READ_TIMEOUT)
                .acceptor(limits::LimitedAcceptor(limiter));
            let mut server = axum_server::from_tcp(listener)
                .map_err(|source| BindError::Listen { addr, source })?
                .acceptor(acceptor)
                .handle(handle)
                .first_request_timeout(limits::HEADER_READ_TIMEOUT);
            limit(&mut server);
            tokio::spawn(async move {
                if let Err(e) = server.serve(service).await {
                    tracing::error!(error = %e, "web server stopped");
                }
            })
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .map_err(|source| BindError::Listen { addr, source })?
                .acceptor(limits::LimitedAcceptor(limiter))
                .handle(handle)
                .first_request_timeout(limits::HEADER_READ_TIMEOUT);
            limit(&mut server);
            tokio::spawn(async move {
                if let Err(e) = server.serve(service).await {
                    tracing::error!(error = %e, "web server stopped");
                }
            })
        }
    };
    Ok((bound, task))
}

/// The HTTP limits of [`limits`]: a request head within
/// [`limits::HEADER_READ_TIMEOUT`] of the server waiting for it.
fn limit<A>(server: &mut axum_server::Server<SocketAddr, A>) {
    server
        .http_builder()
        .http1()
        .header_read_timeout(limits::HEADER_READ_TIMEOUT);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_refusals_read_as_they_always_have() {
        let site = ReloadError::SiteChanged {
            from: "north".into(),
            to: "south".into(),
        };
        assert_eq!(
            crate::error_chain(&site),
            r#"site cannot change on reload (from "north" to "south"): restart the agent"#
        );
        let config = ReloadError::from(crate::config::ConfigError::Read {
            file: "casewatch.yaml".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
        assert_eq!(
            crate::error_chain(&config),
            "cannot read casewatch.yaml: entity not found"
        );
        assert_eq!(ReloadError::Stopping.to_string(), "the agent is stopping");
    }
}
