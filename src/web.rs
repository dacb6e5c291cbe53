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

/// A screenshot or console log of a failed browser step. The name must be
/// one the evidence store writes, so no request can reach another file.
async fn evidence(
    State(state): State<WebState>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let Some(dir) = state.evidence.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !crate::browser::evidence::is_evidence_file(&name) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let kind = if name.ends_with(".png") {
        "image/png"
    } else {
        "application/json"
    };
    match tokio::fs::read(dir.join(&name)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
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
}

/// The most connections the endpoints hold open at once. Prometheus keeps
/// one per scrape job, and people a few for the status page; a connection
/// over the cap is closed as it arrives, so a flood of them cannot take the
/// descriptors the probes need. The packaged unit's `LimitNOFILE` leaves
/// room for these beside the probes' own connections (see
/// [`crate::agent::descriptors_needed`]).
pub const MAX_CONNECTIONS: usize = 1024;

/// How long a new connection may take to send its first request before it
/// is closed, so idle connections cannot hold the cap.
const FIRST_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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
    let capped = Capped::new(MAX_CONNECTIONS);
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    let service = app.into_make_service();
    let task = match &web_config.tls {
        Some((cert, key)) => {
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|source| BindError::Tls {
                    cert: cert.display().to_string(),
                    key: key.display().to_string(),
                    source,
                })?;
            let server = axum_server::from_tcp(listener)
                .map_err(|source| BindError::Listen { addr, source })?
                .acceptor(axum_server::tls_rustls::RustlsAcceptor::new(tls).acceptor(capped))
                .first_request_timeout(FIRST_REQUEST_TIMEOUT)
                .handle(handle);
            tokio::spawn(async move {
                if let Err(e) = server.serve(service).await {
                    tracing::error!(error = %e, "web server stopped");
                }
            })
        }
        None => {
            let server = axum_server::from_tcp(listener)
                .map_err(|source| BindError::Listen { addr, source })?
                .acceptor(capped)
                .first_request_timeout(FIRST_REQUEST_TIMEOUT)
                .handle(handle);
            tokio::spawn(async move {
                if let Err(e) = server.serve(service).await {
                    tracing::error!(error = %e, "web server stopped");
                }
            })
        }
    };
    Ok((bound, task))
}

/// Accepts a connection only while fewer than the cap are open; each
/// accepted stream holds its place until it is dropped.
#[derive(Clone)]
struct Capped {
    places: Arc<tokio::sync::Semaphore>,
}

impl Capped {
    fn new(cap: usize) -> Capped {
        Capped {
            places: Arc::new(tokio::sync::Semaphore::new(cap)),
        }
    }
}

impl<S> axum_server::accept::Accept<tokio::net::TcpStream, S> for Capped {
    type Stream = Held;
    type Service = S;
    type Future = std::future::Ready<std::io::Result<(Held, S)>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        std::future::ready(match self.places.clone().try_acquire_owned() {
            Ok(place) => Ok((
                Held {
                    stream,
                    _place: place,
                },
                service,
            )),
            // Dropping the stream closes it at once.
            Err(_) => Err(std::io::Error::other("connection cap reached")),
        })
    }
}

/// A connection and its place under the cap.
struct Held {
    stream: tokio::net::TcpStream,
    _place: tokio::sync::OwnedSemaphorePermit,
}

impl tokio::io::AsyncRead for Held {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Held {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_over_the_cap_are_closed_and_their_places_come_back() {
        use axum_server::accept::Accept;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let capped = Capped::new(2);
        let mut held = Vec::new();
        for _ in 0..2 {
            let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            held.push(capped.accept(stream, ()).await.unwrap());
        }
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        assert!(capped.accept(stream, ()).await.is_err());
        held.pop();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        assert!(capped.accept(stream, ()).await.is_ok());
    }

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
