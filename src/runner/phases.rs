//! Where a request's time went: DNS, connect, TLS, first byte, transfer.
//!
//! reqwest reports none of these, so each is timed where it happens, inside
//! the target's own client, without taking its connection handling apart:
//!
//! - **DNS**: the client resolves names with [`TimedResolver`], the same
//!   `getaddrinfo` lookup reqwest's default makes, with a clock around it.
//!   An IP address in the URL is never resolved, so it has no DNS time.
//! - **Connect and TLS**: reqwest's connector (TCP, any proxy tunnel, TLS) is
//!   wrapped by [`ConnectTimingLayer`], which times the whole set-up. The
//!   TLS handshake starts when rustls builds its ClientHello, and the first
//!   thing it does then is ask its session store for a ticket to resume
//!   with (the ClientHello carries it). The store is wrapped to note that
//!   moment ([`HandshakeMark`]): connect is up to it, TLS from it to the end.
//!   This needs the client's rustls configuration built here
//!   ([`tls_config`]: the roots reqwest would load, the target's CA file,
//!   `insecure_skip_verify`), handed over with `use_preconfigured_tls`.
//! - **First byte**: from the connection being ready (or the send, on a
//!   reused connection) to the response headers. **Transfer**: from the
//!   headers to the last byte, timed by the step.
//!
//! Each request's timings are gathered in a [`Hop`] that the step puts in a
//! tokio task-local around `send()`. The resolver, the connector and the
//! handshake mark write to whatever hop is current where they run. A
//! connection that hyper finishes in the background, after the request took
//! another one from the pool, runs on its own task with no hop, so it is
//! never counted against a request that did not wait for it. A reused
//! connection simply has no DNS, connect or TLS observation.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionMemoryCache, ClientSessionStore, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, NamedGroup, SignatureScheme};
use tokio::time::Instant;

use crate::config::file::{read_capped, FileError, MAX_PEM_FILE_BYTES};
use crate::config::Target;
use crate::outcome::HttpPhases;

tokio::task_local! {
    /// The request being sent by the current task, if it is being timed.
    static CURRENT: Arc<Mutex<Marks>>;
}

/// The moments of one request's connection set-up, as they are seen.
#[derive(Default)]
struct Marks {
    /// The connector was asked for a new connection.
    connect_started: Option<Instant>,
    dns: Option<(Instant, Instant)>,
    handshake_started: Option<Instant>,
    connected: Option<Instant>,
}

/// Applies `f` to the marks of the request being timed here, if any.
fn mark(f: impl FnOnce(&mut Marks)) {
    let _ = CURRENT.try_with(|marks| {
        let mut marks = marks.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut marks);
    });
}

/// One HTTP request (one redirect hop) being timed.
pub struct Hop {
    marks: Arc<Mutex<Marks>>,
    sent: Instant,
}

impl Hop {
    /// Starts timing a request about to be sent.
    pub fn start() -> Hop {
        Hop {
            marks: Arc::new(Mutex::new(Marks::default())),
            sent: Instant::now(),
        }
    }

    /// Runs `send` (the request's future) with this hop current, so the
    /// resolver, connector and handshake mark record into it.
    pub async fn send<F: Future>(&self, send: F) -> F::Output {
        CURRENT.scope(self.marks.clone(), send).await
    }

    /// The phases up to the response headers, which arrived at `headers`.
    pub fn answered(&self, headers: Instant) -> HttpPhases {
        let marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        let mut phases = set_up(&marks);
        let ready = match (marks.connect_started, marks.connected) {
            (Some(_), Some(connected)) => connected,
            _ => self.sent,
        };
        phases.first_byte = Some(headers.saturating_duration_since(ready));
        phases
    }

    /// Whether the request went out on a kept-alive connection from the
    /// pool (no connection was made for it).
    pub fn reused(&self) -> bool {
        let marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        marks.connect_started.is_none()
    }

    /// What is known of a request that got no answer: at most its DNS time
    /// (a connection that was never made has no connect time to show).
    pub fn failed(&self) -> HttpPhases {
        let marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        HttpPhases {
            dns: marks.dns.map(|(from, to)| to - from),
            ..HttpPhases::default()
        }
    }
}

/// DNS, connect and TLS of a connection made for this request.
fn set_up(marks: &Marks) -> HttpPhases {
    let (Some(started), Some(connected)) = (marks.connect_started, marks.connected) else {
        return HttpPhases::default();
    };
    let dns = marks.dns.filter(|(from, _)| *from >= started);
    let tcp_from = dns.map_or(started, |(_, to)| to);
    let handshake = marks
        .handshake_started
        .filter(|at| *at >= tcp_from && *at <= connected);
    HttpPhases {
        dns: dns.map(|(from, to)| to - from),
        connect: Some(
            handshake
                .unwrap_or(connected)
                .saturating_duration_since(tcp_from),
        ),
        tls: handshake.map(|at| connected - at),
        first_byte: None,
        transfer: None,
    }
}

/// Adds `hop` to the phases of a step so far (a step is every hop of its
/// redirects).
pub fn add(total: &mut HttpPhases, hop: HttpPhases) {
    fn sum(a: &mut Option<std::time::Duration>, b: Option<std::time::Duration>) {
        if let Some(b) = b {
            *a = Some(a.unwrap_or_default() + b);
        }
    }
    sum(&mut total.dns, hop.dns);
    sum(&mut total.connect, hop.connect);
    sum(&mut total.tls, hop.tls);
    sum(&mut total.first_byte, hop.first_byte);
    sum(&mut total.transfer, hop.transfer);
}

/// The system resolver (`getaddrinfo`, off the async workers, as reqwest's
/// default), timed.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimedResolver;

impl Resolve for TimedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let started = Instant::now();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let done = Instant::now();
            mark(|m| m.dns = Some((started, done)));
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A tower layer for reqwest's `connector_layer` that times connection
/// set-up (see the module notes).
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnectTimingLayer;

impl<S> tower_layer::Layer<S> for ConnectTimingLayer {
    type Service = ConnectTiming<S>;

    fn layer(&self, inner: S) -> ConnectTiming<S> {
        ConnectTiming { inner }
    }
}

#[derive(Clone, Debug)]
pub struct ConnectTiming<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, R> tower_service::Service<R> for ConnectTiming<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let connecting = self.inner.call(request);
        Box::pin(async move {
            // A new attempt replaces what an earlier one of the same
            // request left (hyper retries on a fresh connection).
            mark(|m| {
                *m = Marks {
                    connect_started: Some(Instant::now()),
                    ..Marks::default()
                }
            });
            let result = connecting.await;
            if result.is_ok() {
                mark(|m| m.connected = Some(Instant::now()));
            }
            result
        })
    }
}

/// rustls's session store, noting when a handshake starts: rustls looks up
/// a ticket to resume with while it builds its ClientHello, before a byte
/// of TLS is sent. Everything else is the in-memory cache reqwest uses.
#[derive(Debug)]
pub struct HandshakeMark {
    inner: ClientSessionMemoryCache,
}

impl HandshakeMark {
    fn new() -> HandshakeMark {
        HandshakeMark {
            inner: ClientSessionMemoryCache::new(256),
        }
    }

    fn started() {
        mark(|m| {
            m.handshake_started.get_or_insert_with(Instant::now);
        });
    }
}

impl ClientSessionStore for HandshakeMark {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.inner.set_kx_hint(server_name, group)
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        Self::started();
        self.inner.kx_hint(server_name)
    }

    fn set_tls12_session(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.inner.set_tls12_session(server_name, value)
    }

    fn tls12_session(
        &self,
        server_name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        Self::started();
        self.inner.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.inner.remove_tls12_session(server_name)
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.inner.insert_tls13_ticket(server_name, value)
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        Self::started();
        self.inner.take_tls13_ticket(server_name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read CA file {path}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: FileError,
    },
    #[error("CA file {path} holds no usable PEM certificate")]
    CaPem {
        path: PathBuf,
        #[source]
        source: Option<rustls::pki_types::pem::Error>,
    },
    #[error("bad TLS setting")]
    Rustls(#[from] rustls::Error),
}

/// The rustls client configuration of a target, as reqwest would build it
/// from the same settings (webpki and system roots plus `tls.ca_file`, or
/// no certificate check with `tls.insecure_skip_verify`; HTTP/1.1 over
/// ALPN), with the handshake mark as its session store.
pub fn tls_config(target: &Target) -> Result<rustls::ClientConfig, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)?;
    let mut config = if target.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // As reqwest: a system store with unreadable entries still counts
        // for the ones that parse.
        let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(path) = &target.ca_file {
            for certificate in ca_certificates(path)? {
                roots.add(certificate)?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::store(Arc::new(HandshakeMark::new()));
    Ok(config)
}

fn ca_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = read_capped(path, MAX_PEM_FILE_BYTES).map_err(|source| TlsSetupError::CaFile {
        path: path.to_path_buf(),
        source,
    })?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsSetupError::CaPem {
            path: path.to_path_buf(),
            source: Some(source),
        })?;
    if certificates.is_empty() {
        return Err(TlsSetupError::CaPem {
            path: path.to_path_buf(),
            source: None,
        });
    }
    Ok(certificates)
}

/// `tls.insecure_skip_verify`: the certificate is not checked (as
/// reqwest's `danger_accept_invalid_certs`); the handshake's signatures
/// still are.
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Gives a target's client builder the timed resolver, the connect-timing
/// layer and the TLS configuration above.
pub fn instrument(
    builder: reqwest::ClientBuilder,
    target: &Target,
) -> Result<reqwest::ClientBuilder, TlsSetupError> {
    Ok(builder
        .dns_resolver(Arc::new(TimedResolver))
        .connector_layer(ConnectTimingLayer)
        .use_preconfigured_tls(tls_config(target)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// `ca_certificates(path)`'s error, on another thread so that a read
    /// that blocks or runs without end fails the test instead of hanging it.
    fn ca_error(path: &Path) -> String {
        let (tx, rx) = std::sync::mpsc::channel();
        let path = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(
                ca_certificates(&path)
                    .map(|_| ())
                    .map_err(|e| crate::error_chain(&e)),
            );
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("reading the CA file blocked or ran on")
            .expect_err("the CA file was accepted")
    }

    #[cfg(unix)]
    #[test]
    fn a_ca_file_that_is_a_device_a_fifo_or_huge_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("ca.fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        for path in [Path::new("/dev/zero"), fifo.as_path()] {
            assert_eq!(
                ca_error(path),
                format!("cannot read CA file {}: not a regular file", path.display())
            );
        }
        let huge = dir.path().join("huge.pem");
        std::fs::write(&huge, "A".repeat(MAX_PEM_FILE_BYTES as usize + 1)).unwrap();
        assert_eq!(
            ca_error(&huge),
            format!(
                "cannot read CA file {}: over the 1048576-byte limit",
                huge.display()
            )
        );
    }

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn a_new_tls_connection_splits_into_dns_connect_and_tls() {
        let t0 = Instant::now();
        let marks = Marks {
            connect_started: Some(t0),
            dns: Some((at(t0, 1), at(t0, 11))),
            handshake_started: Some(at(t0, 31)),
            connected: Some(at(t0, 71)),
        };
        let phases = set_up(&marks);
        assert_eq!(phases.dns, Some(Duration::from_millis(10)));
        assert_eq!(phases.connect, Some(Duration::from_millis(20)));
        assert_eq!(phases.tls, Some(Duration::from_millis(40)));
    }

    #[test]
    fn plain_http_to_an_address_has_connect_only() {
        let t0 = Instant::now();
        let marks = Marks {
            connect_started: Some(t0),
            connected: Some(at(t0, 5)),
            ..Marks::default()
        };
        let phases = set_up(&marks);
        assert_eq!(
            (phases.dns, phases.connect, phases.tls),
            (None, Some(Duration::from_millis(5)), None)
        );
    }

    #[test]
    fn a_reused_connection_has_first_byte_from_the_send() {
        let hop = Hop::start();
        let phases = hop.answered(hop.sent + Duration::from_millis(30));
        assert_eq!(
            phases,
            HttpPhases {
                first_byte: Some(Duration::from_millis(30)),
                ..HttpPhases::default()
            }
        );
    }

    #[test]
    fn a_connection_left_unfinished_counts_nothing_but_first_byte() {
        // The request took a pooled connection while its own attempt was
        // still under way: no set-up is charged to it.
        let hop = Hop::start();
        {
            let mut marks = hop.marks.lock().unwrap();
            marks.connect_started = Some(hop.sent);
            marks.dns = Some((hop.sent, hop.sent + Duration::from_millis(3)));
        }
        let phases = hop.answered(hop.sent + Duration::from_millis(8));
        assert_eq!(phases.dns, None);
        assert_eq!(phases.connect, None);
        assert_eq!(phases.first_byte, Some(Duration::from_millis(8)));
    }

    #[test]
    fn hops_add_up_phase_by_phase() {
        let ms = Duration::from_millis;
        let mut total = HttpPhases {
            connect: Some(ms(2)),
            first_byte: Some(ms(10)),
            ..HttpPhases::default()
        };
        add(
            &mut total,
            HttpPhases {
                first_byte: Some(ms(5)),
                transfer: Some(ms(1)),
                ..HttpPhases::default()
            },
        );
        assert_eq!(total.connect, Some(ms(2)));
        assert_eq!(total.first_byte, Some(ms(15)));
        assert_eq!(total.transfer, Some(ms(1)));
        assert_eq!(total.tls, None);
    }

    #[tokio::test]
    async fn marks_land_only_in_the_hop_being_sent() {
        let hop = Hop::start();
        hop.send(async { mark(|m| m.connected = Some(Instant::now())) })
            .await;
        // Outside any hop (a background connection): nowhere to record.
        mark(|m| m.connect_started = Some(Instant::now()));
        let marks = hop.marks.lock().unwrap();
        assert!(marks.connected.is_some());
        assert!(marks.connect_started.is_none());
    }
}
