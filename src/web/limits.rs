//! Limits on the connections to the agent's own endpoints, so that nobody
//! who can reach the port can take the agent's descriptors or hold its
//! connections open:
//!
//! - a **connection cap** below the process's descriptor limit
//!   ([`connection_cap`]: a quarter of the soft `RLIMIT_NOFILE`, between
//!   [`MIN_CONNECTIONS`] and [`MAX_CONNECTIONS`]); a connection beyond it is
//!   closed as soon as it is accepted, so the probes, the journal, the
//!   spool and the browser always keep the other three quarters;
//! - a **header-read timeout** ([`HEADER_READ_TIMEOUT`]): a request head
//!   must arrive whole within it, counted from when the server starts to
//!   wait for it, so a silent connection, a half-sent head and a keep-alive
//!   connection left idle are all closed after it;
//! - an **idle timeout** ([`IDLE_TIMEOUT`]): a connection on which no byte
//!   moves either way for that long while the server waits on it (a client
//!   that stops reading its answer, a TLS handshake that stalls) is closed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// How long a request head may take to arrive, from when the server waits
/// for it: a new connection's first, or the next on a kept-alive one.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may go with no byte moving while it is waited on.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The fewest connections allowed at once, however low the descriptor limit.
pub const MIN_CONNECTIONS: usize = 8;
/// The most connections allowed at once: Prometheus needs one or two.
pub const MAX_CONNECTIONS: usize = 512;
/// How often refused connections are logged, at most.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// The process's soft limit on open descriptors, if it has one.
pub fn descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct it is given and nothing else.
        let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        if read == 0 && limit.rlim_cur != libc::RLIM_INFINITY {
            return Some(limit.rlim_cur);
        }
    }
    None
}

/// The connection cap for a descriptor limit: a quarter of it, within
/// [`MIN_CONNECTIONS`]..=[`MAX_CONNECTIONS`].
pub fn connection_cap(limit: Option<u64>) -> usize {
    limit
        .map_or(MAX_CONNECTIONS, |l| {
            usize::try_from(l / 4).unwrap_or(usize::MAX)
        })
        .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// The cap and its gauges, shared by every accepted connection.
#[derive(Clone)]
pub struct Limiter {
    permits: Arc<Semaphore>,
    cap: usize,
    open: IntGauge,
    refused: IntCounter,
    last_logged: Arc<AtomicU64>,
    started: Instant,
}

impl Limiter {
    pub fn new(cap: usize, open: IntGauge, refused: IntCounter) -> Limiter {
        Limiter {
            permits: Arc::new(Semaphore::new(cap)),
            cap,
            open,
            refused,
            last_logged: Arc::new(AtomicU64::new(u64::MAX)),
            started: Instant::now(),
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// An accepted connection, kept if there is room under the cap.
    fn admit<I>(&self, stream: I) -> io::Result<Guarded<I>> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                self.open.inc();
                Ok(Guarded {
                    inner: stream,
                    idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)),
                    _permit: permit,
                    open: self.open.clone(),
                })
            }
            Err(_) => {
                self.refused.inc();
                let now = self.started.elapsed().as_secs();
                let last = self.last_logged.load(Ordering::Relaxed);
                if last == u64::MAX || now >= last + REFUSAL_LOG_EVERY.as_secs() {
                    self.last_logged.store(now, Ordering::Relaxed);
                    tracing::warn!(
                        cap = self.cap,
                        "connections to the agent's endpoints refused: {} are open, the most allowed",
                        self.cap
                    );
                }
                Err(io::Error::other("the connection cap is reached"))
            }
        }
    }
}

/// An axum-server acceptor that applies the cap and the idle timeout, under
/// TLS when there is TLS.
#[derive(Clone)]
pub struct LimitedAcceptor(pub Limiter);

impl<I, S> axum_server::accept::Accept<I, S> for LimitedAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    type Stream = Guarded<I>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Guarded<I>, S)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        // Dropped when refused: the connection is closed at once.
        std::future::ready(self.0.admit(stream).map(|guarded| (guarded, service)))
    }
}

/// An admitted connection: holds its place under the cap until dropped,
/// and fails when no byte has moved for [`IDLE_TIMEOUT`] while waited on.
pub struct Guarded<I> {
    inner: I,
    idle: Pin<Box<Sleep>>,
    _permit: OwnedSemaphorePermit,
    open: IntGauge,
}

impl<I> Drop for Guarded<I> {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl<I> Guarded<I> {
    fn moved(&mut self) {
        self.idle.as_mut().reset(Instant::now() + IDLE_TIMEOUT);
    }

    /// On a pending read or write: an error once the connection has been
    /// idle too long (the timer wakes the task when it fires).
    fn idle_too_long(&mut self, cx: &mut Context<'_>) -> bool {
        self.idle.as_mut().poll(cx).is_ready()
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the connection was idle too long")
}

impl<I: AsyncRead + Unpin> AsyncRead for Guarded<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.idle_too_long(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Guarded<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if this.idle_too_long(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if this.idle_too_long(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending if this.idle_too_long(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_a_quarter_of_the_descriptors_within_bounds() {
        assert_eq!(connection_cap(Some(256)), 64);
        assert_eq!(connection_cap(Some(1024)), 256);
        assert_eq!(connection_cap(Some(16)), MIN_CONNECTIONS);
        assert_eq!(connection_cap(Some(1 << 20)), MAX_CONNECTIONS);
        assert_eq!(connection_cap(None), MAX_CONNECTIONS);
    }

    #[tokio::test]
    async fn connections_past_the_cap_are_refused_and_counted() {
        let open = IntGauge::new("open", "open").unwrap();
        let refused = IntCounter::new("refused", "refused").unwrap();
        let limiter = Limiter::new(2, open.clone(), refused.clone());
        let first = limiter.admit(()).unwrap();
        let _second = limiter.admit(()).unwrap();
        assert!(limiter.admit(()).is_err());
        assert_eq!((open.get(), refused.get()), (2, 1));
        drop(first);
        assert_eq!(open.get(), 1);
        assert!(limiter.admit(()).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_idle_past_the_timeout_fails() {
        use tokio::io::AsyncReadExt;
        let open = IntGauge::new("open", "open").unwrap();
        let refused = IntCounter::new("refused", "refused").unwrap();
        let limiter = Limiter::new(1, open, refused);
        let (client, server) = tokio::io::duplex(64);
        let mut guarded = limiter.admit(server).unwrap();
        let mut byte = [0u8; 1];
        let error = guarded.read(&mut byte).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        drop(client);
    }
}
