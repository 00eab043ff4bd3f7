//! One client connection, bounded like a production HTTP server's: the TLS
//! handshake and each request's headers within the header timeout, a kept-alive
//! connection closed after the idle timeout, and a read buffer of bounded size.
//! (Bodies have their own timeout where they are read, in `post`.)
//!
//! Time is kept by the connection itself: a wrapper around the stream notes
//! when bytes arrive, the service notes when a request is in progress, and a
//! watchdog closes the connection when a limit passes. This mirrors Go's
//! `net/http` `ReadHeaderTimeout` and `IdleTimeout`, which kube-apiserver's
//! own webhooks rely on.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::log::{self, Level};

/// The per-connection limits (flags of `palisade serve`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// TLS handshake, then each request's headers from their first byte.
    pub header_read_timeout: Duration,
    /// A request's whole body.
    pub body_read_timeout: Duration,
    /// A kept-alive connection between requests.
    pub idle_timeout: Duration,
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Body bytes all requests together may buffer (at least one largest body).
    pub max_body_buffer: usize,
}

/// What the watchdog knows of a connection. Times are milliseconds since `start`.
pub struct Activity {
    start: Instant,
    /// Requests being served.
    busy: AtomicUsize,
    /// When the connection last became idle (start, or the end of a request).
    idle_since: AtomicU64,
    /// When the first byte of the next request's head arrived; 0: none yet.
    head_started: AtomicU64,
    /// Requests served so far.
    served: AtomicU64,
}

impl Activity {
    /// A connection accepted at `start`: its TLS handshake and first request
    /// head must arrive within the header timeout from then.
    pub fn new(start: Instant) -> Arc<Activity> {
        Arc::new(Activity {
            start,
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            served: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        // At least 1, so that 0 can mean "not yet".
        (self.start.elapsed().as_millis() as u64).max(1)
    }

    /// A request is being served until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::SeqCst);
        self.head_started.store(0, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// A request ends at `now` (milliseconds since the accept).
    fn request_ended_at(&self, now: u64) {
        self.served.fetch_add(1, Ordering::SeqCst);
        self.idle_since.store(now, Ordering::SeqCst);
        self.busy.fetch_sub(1, Ordering::SeqCst);
    }

    fn bytes_arrived(&self) {
        self.bytes_arrived_at(self.now());
    }

    fn bytes_arrived_at(&self, now: u64) {
        if self.busy.load(Ordering::SeqCst) == 0 && self.head_started.load(Ordering::SeqCst) == 0 {
            self.head_started.store(now, Ordering::SeqCst);
        }
    }

    /// Why the connection must close now, if it must.
    pub fn expired(&self, limits: &ConnectionLimits) -> Option<&'static str> {
        self.expired_at(self.now(), limits)
    }

    /// [`Activity::expired`] at `now`, in milliseconds since the accept.
    fn expired_at(&self, now: u64, limits: &ConnectionLimits) -> Option<&'static str> {
        if self.busy.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let header_ms = limits.header_read_timeout.as_millis() as u64;
        // The first request's head: within the header timeout of the accept,
        // handshake included, however the bytes trickle in.
        if self.served.load(Ordering::SeqCst) == 0 {
            return (now > header_ms).then_some("header read timeout");
        }
        // Later ones: within the header timeout of their first byte, after an
        // idle wait of at most the idle timeout.
        let head = self.head_started.load(Ordering::SeqCst);
        if head > 0 {
            return (now.saturating_sub(head) > header_ms).then_some("header read timeout");
        }
        let idle = self.idle_since.load(Ordering::SeqCst);
        (now.saturating_sub(idle) > limits.idle_timeout.as_millis() as u64).then_some("idle timeout")
    }
}

/// Marks a request in progress; dropping it makes the connection idle again.
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.request_ended_at(self.0.now());
    }
}

/// A stream that tells its [`Activity`] when bytes arrive.
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Tracked<S> {
        Tracked { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// How often the watchdog looks: a tenth of the shortest limit, 10 ms to 1 s.
pub fn watch_interval(limits: &ConnectionLimits) -> Duration {
    (limits.header_read_timeout.min(limits.idle_timeout) / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Whether a connection's first byte starts a plain HTTP request rather than
/// a TLS record: a method is upper-case ASCII, while a TLS record starts with
/// its content type, 20 to 24 (a ClientHello's is 22).
pub fn starts_plain_http(first: u8) -> bool {
    first.is_ascii_uppercase()
}

/// The first byte the client sent, left unread; `None` if it closed first.
pub async fn first_byte(tcp: &tokio::net::TcpStream) -> Option<u8> {
    let mut byte = [0u8; 1];
    match tcp.peek(&mut byte).await {
        Ok(1) => Some(byte[0]),
        _ => None,
    }
}

/// Answer a client that spoke plain HTTP to the TLS port with a 400 saying so,
/// as Go's `net/http` does, and close: the write side first, then what the
/// client still sends is read and dropped (64 KiB at most, until `deadline`),
/// so that the answer reaches it rather than a reset.
pub async fn refuse_plain_http(mut tcp: tokio::net::TcpStream, deadline: tokio::time::Instant) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const BODY: &str = "This port speaks HTTPS only: use https://\n";
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout_at(deadline, async {
        tcp.write_all(answer.as_bytes()).await?;
        tcp.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < 64 << 10 {
            match tcp.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<(), io::Error>(())
    })
    .await;
}

/// Lines a client can cause, written at most once a second, with a count of
/// those left out (`suppressed`): no client can make the log grow at its own rate.
pub struct LogLimiter {
    state: std::sync::Mutex<(Option<Instant>, u64)>,
}

impl LogLimiter {
    pub fn new() -> LogLimiter {
        LogLimiter { state: std::sync::Mutex::new((None, 0)) }
    }

    /// Write a line to stderr unless one went out less than a second ago.
    /// Returns whether it was written.
    pub fn log(&self, level: Level, msg: &str, mut fields: serde_json::Value) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        let (last, suppressed) = &mut *state;
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            *suppressed += 1;
            return false;
        }
        let others = std::mem::take(suppressed);
        if others > 0 {
            if !fields.is_object() {
                fields = serde_json::json!({});
            }
            fields["suppressed"] = others.into();
        }
        log::stderr(level, msg, fields);
        *last = Some(now);
        true
    }
}

/// Accept errors (out of file descriptors, most often) back off instead of
/// spinning, and are logged at most once a second.
pub struct AcceptBackoff {
    delay: Duration,
    log: LogLimiter,
}

impl AcceptBackoff {
    pub fn new() -> AcceptBackoff {
        AcceptBackoff { delay: Duration::ZERO, log: LogLimiter::new() }
    }

    pub fn success(&mut self) {
        self.delay = Duration::ZERO;
    }

    /// Note a failure; returns how long to wait before accepting again.
    pub fn failure(&mut self, error: &io::Error) -> Duration {
        self.delay = (self.delay * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
        self.log.log(Level::Warn, "accept failed", serde_json::json!({"error": error.to_string()}));
        self.delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_millis(50),
            body_read_timeout: Duration::from_millis(50),
            idle_timeout: Duration::from_millis(200),
            max_connections: 10,
            max_body_buffer: 1 << 20,
        }
    }

    // Times are milliseconds since the accept; header timeout 50, idle timeout 200.

    #[test]
    fn a_new_connection_gets_the_header_timeout_from_its_accept() {
        let a = Activity::new(Instant::now());
        assert_eq!(a.expired_at(50, &limits()), None);
        // Bytes arriving late do not restart the clock.
        a.bytes_arrived_at(40);
        assert_eq!(a.expired_at(51, &limits()), Some("header read timeout"));
    }

    #[test]
    fn a_slow_head_is_cut_and_a_busy_connection_is_not() {
        let a = Activity::new(Instant::now());
        a.bytes_arrived_at(1);
        let busy = a.begin();
        assert_eq!(
            a.expired_at(500, &limits()),
            None,
            "a request in progress is the body's and the deadline's business"
        );
        drop(busy);
        a.idle_since.store(500, Ordering::SeqCst);
        // Idle after a request: the idle timeout, not the header timeout.
        assert_eq!(a.expired_at(600, &limits()), None);
        a.bytes_arrived_at(650);
        assert_eq!(a.expired_at(700, &limits()), None);
        assert_eq!(a.expired_at(701, &limits()), Some("header read timeout"));
    }

    #[test]
    fn an_idle_kept_alive_connection_is_closed() {
        let a = Activity::new(Instant::now());
        a.busy.fetch_add(1, Ordering::SeqCst);
        a.request_ended_at(10);
        assert_eq!(a.expired_at(210, &limits()), None);
        assert_eq!(a.expired_at(211, &limits()), Some("idle timeout"));
    }

    #[test]
    fn plain_http_is_told_from_tls_by_its_first_byte() {
        for method in ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "PRI"] {
            assert!(starts_plain_http(method.as_bytes()[0]), "{method}");
        }
        // TLS records: change_cipher_spec, alert, handshake, application_data, heartbeat.
        for content_type in 20..=24 {
            assert!(!starts_plain_http(content_type));
        }
        assert!(!starts_plain_http(0x80), "an SSLv2-style hello");
    }

    #[test]
    fn accept_failures_back_off() {
        let mut b = AcceptBackoff::new();
        let e = io::Error::other("too many open files");
        let delays: Vec<_> = (0..10).map(|_| b.failure(&e)).collect();
        assert_eq!(delays[0], Duration::from_millis(5));
        assert_eq!(delays[1], Duration::from_millis(10));
        assert_eq!(delays[9], Duration::from_secs(1));
        assert_eq!(b.log.state.lock().unwrap().1, 9, "one line written, nine counted");
        b.success();
        assert_eq!(b.failure(&e), Duration::from_millis(5));
    }
}
