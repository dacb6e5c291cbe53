//! Limits on the connections to the agent's own endpoints, so that nobody
//! who can reach the port can take the agent's descriptors or hold its
//! connections open:
//!
//! - a **connection cap** below the process's descriptor limit
//!   ([`connection_cap`]: a quarter of the soft `RLIMIT_NOFILE`, between
//!   [`MIN_CONNECTIONS`] and [`MAX_CONNECTIONS`]), so the probes, the
//!   journal, the spool and the browser always keep the other three
//!   quarters. At the cap, a new connection takes the place of the oldest
//!   one that has not yet sent a whole request head (a stalled one: that
//!   one is closed); if every connection has, the new one is closed as soon
//!   as it is accepted. So a flood of stalled connections cannot keep
//!   Prometheus out, and nothing can take more than the cap;
//! - a **header-read timeout** ([`HEADER_READ_TIMEOUT`]): a request head
//!   must arrive whole within it, counted from when the server starts to
//!   wait for it, so a silent connection, a half-sent head and a keep-alive
//!   connection left idle are all closed after it;
//! - an **idle timeout** ([`IDLE_TIMEOUT`]): a connection on which no byte
//!   moves either way for that long while the server waits on it (a client
//!   that stops reading its answer, a TLS handshake that stalls) is closed.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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

/// What the limiter knows of one admitted connection.
#[derive(Default)]
struct ConnState {
    /// A whole request head has arrived on it (the service was called).
    dispatched: AtomicBool,
    /// Closed to make room for a newer connection.
    evicted: AtomicBool,
    /// Wakes the connection's task to see that it was evicted.
    waker: futures::task::AtomicWaker,
}

/// The cap and its gauges, shared by every accepted connection.
#[derive(Clone)]
pub struct Limiter {
    cap: usize,
    /// Connections admitted and not yet dropped.
    count: Arc<AtomicUsize>,
    /// Every admitted connection, oldest first (dropped ones are pruned).
    conns: Arc<Mutex<VecDeque<Weak<ConnState>>>>,
    open: IntGauge,
    refused: IntCounter,
    last_logged: Arc<AtomicU64>,
    started: Instant,
}

impl Limiter {
    pub fn new(cap: usize, open: IntGauge, refused: IntCounter) -> Limiter {
        Limiter {
            cap,
            count: Arc::new(AtomicUsize::new(0)),
            conns: Arc::new(Mutex::new(VecDeque::new())),
            open,
            refused,
            last_logged: Arc::new(AtomicU64::new(u64::MAX)),
            started: Instant::now(),
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// An accepted connection, kept if there is room under the cap or a
    /// stalled connection to make room.
    fn admit<I>(&self, stream: I) -> io::Result<(Guarded<I>, Arc<ConnState>)> {
        let state = Arc::new(ConnState::default());
        {
            let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
            conns.retain(|c| c.strong_count() > 0);
            if self.count.load(Ordering::Relaxed) >= self.cap {
                let stalled = conns.iter().filter_map(Weak::upgrade).find(|c| {
                    !c.dispatched.load(Ordering::Relaxed) && !c.evicted.load(Ordering::Relaxed)
                });
                match stalled {
                    Some(old) => {
                        old.evicted.store(true, Ordering::Relaxed);
                        old.waker.wake();
                        self.refused.inc();
                    }
                    None => {
                        self.refused.inc();
                        self.log_refusal();
                        return Err(io::Error::other("the connection cap is reached"));
                    }
                }
            }
            conns.push_back(Arc::downgrade(&state));
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.open.inc();
        let guarded = Guarded {
            inner: stream,
            idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)),
            state: state.clone(),
            count: self.count.clone(),
            open: self.open.clone(),
        };
        Ok((guarded, state))
    }

    fn log_refusal(&self) {
        let now = self.started.elapsed().as_secs();
        let last = self.last_logged.load(Ordering::Relaxed);
        if last == u64::MAX || now >= last + REFUSAL_LOG_EVERY.as_secs() {
            self.last_logged.store(now, Ordering::Relaxed);
            tracing::warn!(
                cap = self.cap,
                "connections to the agent's endpoints refused: {} are open and busy, the most allowed",
                self.cap
            );
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
    type Service = Dispatched<S>;
    type Future = std::future::Ready<io::Result<(Guarded<I>, Dispatched<S>)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        // Dropped when refused: the connection is closed at once.
        std::future::ready(self.0.admit(stream).map(|(guarded, state)| {
            (
                guarded,
                Dispatched {
                    inner: service,
                    state,
                },
            )
        }))
    }
}

/// A connection's service, which marks the connection as past its first
/// request head (no longer a stalled one to make room with).
#[derive(Clone)]
pub struct Dispatched<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S, R> tower_service::Service<R> for Dispatched<S>
where
    S: tower_service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.state.dispatched.store(true, Ordering::Relaxed);
        self.inner.call(request)
    }
}

/// An admitted connection: holds its place under the cap until dropped,
/// fails when no byte has moved for [`IDLE_TIMEOUT`] while waited on, and
/// when it is evicted to make room.
pub struct Guarded<I> {
    inner: I,
    idle: Pin<Box<Sleep>>,
    state: Arc<ConnState>,
    count: Arc<AtomicUsize>,
    open: IntGauge,
}

impl<I> Drop for Guarded<I> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
        self.open.dec();
    }
}

impl<I> Guarded<I> {
    fn moved(&mut self) {
        self.idle.as_mut().reset(Instant::now() + IDLE_TIMEOUT);
    }

    /// Before any read or write: whether the connection was evicted.
    fn evicted(&self) -> bool {
        self.state.evicted.load(Ordering::Relaxed)
    }

    /// On a pending read or write: whether to fail it now, because the
    /// connection was evicted or idle too long (the eviction and the timer
    /// wake the task).
    fn give_up(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.state.waker.register(cx.waker());
        if self.evicted() {
            return Some(evicted());
        }
        self.idle.as_mut().poll(cx).is_ready().then(timed_out)
    }
}

fn evicted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed to make room: it had sent no request",
    )
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
        if this.evicted() {
            return Poll::Ready(Err(evicted()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.give_up(cx) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            },
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
        if this.evicted() {
            return Poll::Ready(Err(evicted()));
        }
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => match this.give_up(cx) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            },
            other => other,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.evicted() {
            return Poll::Ready(Err(evicted()));
        }
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => match this.give_up(cx) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            },
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => match this.give_up(cx) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            },
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
    async fn at_the_cap_a_stalled_connection_makes_room_and_a_busy_one_does_not() {
        let open = IntGauge::new("open", "open").unwrap();
        let refused = IntCounter::new("refused", "refused").unwrap();
        let limiter = Limiter::new(2, open.clone(), refused.clone());
        let (first, first_state) = limiter.admit(()).unwrap();
        let (_second, second_state) = limiter.admit(()).unwrap();
        // Both have sent a request: the third is refused.
        first_state.dispatched.store(true, Ordering::Relaxed);
        second_state.dispatched.store(true, Ordering::Relaxed);
        assert!(limiter.admit(()).is_err());
        assert_eq!((open.get(), refused.get()), (2, 1));
        drop(first);
        assert_eq!(open.get(), 1);
        // One stalled connection (no request yet), one busy: a newcomer
        // takes the stalled one's place, which is evicted.
        let (_stalled, stalled_state) = limiter.admit(()).unwrap();
        let (_newcomer, _) = limiter.admit(()).unwrap();
        assert!(stalled_state.evicted.load(Ordering::Relaxed));
        assert!(!second_state.evicted.load(Ordering::Relaxed));
        assert_eq!(refused.get(), 2);
    }

    #[tokio::test]
    async fn busy_connections_over_the_cap_are_closed_and_their_places_come_back() {
        use axum_server::accept::Accept;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = IntGauge::new("open", "open").unwrap();
        let refused = IntCounter::new("refused", "refused").unwrap();
        let acceptor = LimitedAcceptor(Limiter::new(2, open.clone(), refused));
        let mut held = Vec::new();
        for _ in 0..2 {
            let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            let (guarded, service) = acceptor.accept(stream, ()).await.unwrap();
            // Each has sent a request: none is a stalled one to evict.
            service.state.dispatched.store(true, Ordering::Relaxed);
            held.push(guarded);
        }
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        assert!(acceptor.accept(stream, ()).await.is_err());
        held.pop();
        assert_eq!(open.get(), 1);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        assert!(acceptor.accept(stream, ()).await.is_ok());
    }

    #[tokio::test]
    async fn an_evicted_connection_fails_its_pending_read() {
        use tokio::io::AsyncReadExt;
        let open = IntGauge::new("open", "open").unwrap();
        let refused = IntCounter::new("refused", "refused").unwrap();
        let limiter = Limiter::new(1, open, refused);
        let (_client, server) = tokio::io::duplex(64);
        let (mut stalled, _) = limiter.admit(server).unwrap();
        let reading = tokio::spawn(async move {
            let mut byte = [0u8; 1];
            stalled.read(&mut byte).await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _newcomer = limiter.admit(()).unwrap();
        let error = reading.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionAborted);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_idle_past_the_timeout_fails() {
        use tokio::io::AsyncReadExt;
        let open = IntGauge::new("open", "open").unwrap();
        let refused = IntCounter::new("refused", "refused").unwrap();
        let limiter = Limiter::new(1, open, refused);
        let (client, server) = tokio::io::duplex(64);
        let (mut guarded, _) = limiter.admit(server).unwrap();
        let mut byte = [0u8; 1];
        let error = guarded.read(&mut byte).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        drop(client);
    }
}
