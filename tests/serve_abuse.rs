//! `palisade serve` against abusive clients: connections that stall, dribble
//! or never start TLS are closed on time while the server stays responsive
//! and small; connections beyond the cap are refused; idle keep-alive
//! connections are closed; a declared oversized body is refused unread; and
//! a request past its deadline stops its evaluation. Small timeouts are passed
//! as flags so that each test takes seconds.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::server::*;
use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const BASELINE: &str = "profile: baseline\n";

/// What the server may take beyond a timeout to act on it.
const SLACK: Duration = Duration::from_secs(2);

/// One keep-alive HTTPS connection, read by Content-Length.
struct Conn {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    /// Connect and complete the TLS handshake.
    fn open(addr: &str, config: Arc<rustls::ClientConfig>) -> std::io::Result<Conn> {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(3)))?;
        tcp.set_nodelay(true)?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(Conn { tls, buf: Vec::new() })
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tls.write_all(bytes)?;
        self.tls.flush()
    }

    /// One request on the connection, kept alive; (status, body).
    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let mut bytes = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        self.send(&bytes)?;
        self.response()
    }

    /// Read one whole response; (status, body).
    fn response(&mut self) -> std::io::Result<(u16, Vec<u8>)> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + length {
                    let body = self.buf[end + 4..end + 4 + length].to_vec();
                    self.buf.drain(..end + 4 + length);
                    return Ok((status, body));
                }
            }
            let mut chunk = [0u8; 16384];
            match self.tls.read(&mut chunk)? {
                0 => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "closed before a whole response",
                    ));
                }
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Wait up to `limit` for the server to close the connection: how long it took.
    fn wait_closed(&mut self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        loop {
            let left = limit.checked_sub(start.elapsed())?;
            self.tls.sock.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
            let mut chunk = [0u8; 4096];
            match self.tls.read(&mut chunk) {
                Ok(0) => return Some(start.elapsed()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return None;
                }
                Err(_) => return Some(start.elapsed()),
            }
        }
    }
}

/// The server's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The server's CPU time (user + system) in clock ticks of 10 ms (CLK_TCK = 100).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces): state is field 3,
    // utime field 14 and stime field 15.
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The value of a counter in a Prometheus text exposition (summed over its labels; 0 if absent).
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{'])))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

/// An AdmissionReview for a good pod is allowed and one for a privileged pod denied.
fn admission_still_works(server: &Server) {
    let good = pod("good", "shop", json!({}), json!({}));
    let (status, answer) = post(server, "/validate", &review("after-1", "CREATE", "shop", good, Value::Null));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["response"]["uid"], "after-1");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let bad = pod("bad", "shop", json!({"privileged": true}), json!({}));
    let (status, answer) = post(server, "/validate", &review("after-2", "CREATE", "shop", bad, Value::Null));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert!(answer["response"]["status"]["message"].as_str().unwrap().contains("pss-privileged"), "{answer}");
}

/// The tests measure time, memory and CPU of a server under load: one at a
/// time, whatever the test harness's thread count.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// 1. Stalled bodies, slowloris headers and connections that never start TLS.

const HEADER_MS: u64 = 2000;
const BODY_MS: u64 = 2000;
const IDLE_MS: u64 = 3000;
const STALLED: usize = 500;
const SLOWLORIS: usize = 500;
const NO_TLS: usize = 100;
/// How often a slowloris connection sends its next byte.
const DRIBBLE: Duration = Duration::from_millis(500);
/// How long each abusive connection is watched past its timeout and slack, before it counts as never closed.
const WATCH_MORE: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Abuse {
    /// TCP only: the TLS handshake never starts.
    NoTls,
    /// TLS, a POST's headers declaring 3,000,000 bytes, 64 KiB of them, then nothing.
    Stalled,
    /// TLS, then a request line one byte every 500 ms.
    Slowloris,
}

impl Abuse {
    /// The timeout the server should close it on, counted from `Outcome::from`.
    fn timeout(self) -> Duration {
        Duration::from_millis(match self {
            Abuse::NoTls | Abuse::Slowloris => HEADER_MS,
            Abuse::Stalled => BODY_MS,
        })
    }
}

#[derive(Debug)]
struct Outcome {
    abuse: Abuse,
    /// From the start of its timeout (the connect for NoTls and Slowloris,
    /// the end of sending for Stalled) to the server's close; None if it was
    /// still open at the end of the watch.
    closed_after: Option<Duration>,
    /// What the server sent before closing.
    received: Vec<u8>,
    /// The connect, handshake or send failed.
    error: Option<String>,
}

impl Outcome {
    fn status(&self) -> Option<u16> {
        let text = String::from_utf8_lossy(&self.received);
        text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
    }
}

/// Read (and for slowloris, dribble `dribble` one byte at a time) until the
/// server closes the connection or the watch ends: (time to close from `from`, what was read).
async fn watch<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    from: Instant,
    until: Instant,
    mut dribble: &[u8],
) -> (Option<Duration>, Vec<u8>) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let mut next = tokio::time::Instant::now();
    let until = tokio::time::Instant::from_std(until);
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return (Some(from.elapsed()), received),
                Ok(n) => received.extend_from_slice(&buf[..n]),
            },
            _ = tokio::time::sleep_until(next), if !dribble.is_empty() => {
                if stream.write_all(&dribble[..1]).await.is_err() || stream.flush().await.is_err() {
                    return (Some(from.elapsed()), received);
                }
                dribble = &dribble[1..];
                next += DRIBBLE;
            }
            _ = tokio::time::sleep_until(until) => return (None, received),
        }
    }
}

async fn abuse(
    abuse: Abuse,
    addr: String,
    tls: tokio_rustls::TlsConnector,
    gate: Arc<tokio::sync::Semaphore>,
    set_up: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
) -> Outcome {
    let mut outcome = Outcome { abuse, closed_after: None, received: Vec::new(), error: None };
    // A bounded number of connections are set up at once, so the listen backlog never overflows.
    let permit = gate.acquire_owned().await.unwrap();
    let started = Instant::now();
    let limit = |from: Instant| from + abuse.timeout() + SLACK + WATCH_MORE;
    let result: std::io::Result<()> = async {
        let tcp = tokio::net::TcpStream::connect(&addr).await?;
        match abuse {
            Abuse::NoTls => {
                drop(permit);
                set_up.fetch_add(1, Ordering::SeqCst);
                (outcome.closed_after, outcome.received) = watch(tcp, started, limit(started), b"").await;
            }
            Abuse::Stalled => {
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                let mut stream = tls.connect(name, tcp).await?;
                let head = "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n";
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(&[b' '; 64 * 1024]).await?;
                stream.flush().await?;
                let from = Instant::now();
                drop(permit);
                set_up.fetch_add(1, Ordering::SeqCst);
                (outcome.closed_after, outcome.received) = watch(stream, from, limit(from), b"").await;
            }
            Abuse::Slowloris => {
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                let stream = tls.connect(name, tcp).await?;
                drop(permit);
                set_up.fetch_add(1, Ordering::SeqCst);
                let line = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
                (outcome.closed_after, outcome.received) = watch(stream, started, limit(started), line).await;
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        outcome.error = Some(e.to_string());
        set_up.fetch_add(1, Ordering::SeqCst);
    }
    done.fetch_add(1, Ordering::SeqCst);
    outcome
}

fn summary(outcomes: &[&Outcome]) -> String {
    let mut closed: Vec<f64> = outcomes.iter().filter_map(|o| o.closed_after).map(ms).collect();
    closed.sort_by(f64::total_cmp);
    let open = outcomes.iter().filter(|o| o.error.is_none() && o.closed_after.is_none()).count();
    let errors = outcomes.iter().filter(|o| o.error.is_some()).count();
    let pick = |p: f64| closed.get(((closed.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    format!(
        "{} connections: {} closed (min {:.0} ms, median {:.0} ms, max {:.0} ms), {open} never closed, {errors} failed to set up",
        outcomes.len(),
        closed.len(),
        pick(0.0),
        pick(0.5),
        pick(1.0)
    )
}

#[test]
fn stalled_and_slowloris_connections_are_closed() {
    let _serial = serial();
    let timeouts = [
        "--header-read-timeout-ms",
        &HEADER_MS.to_string(),
        "--body-read-timeout-ms",
        &BODY_MS.to_string(),
        "--idle-timeout-ms",
        &IDLE_MS.to_string(),
    ]
    .map(String::from);
    let timeouts: Vec<&str> = timeouts.iter().map(String::as_str).collect();
    let server = start(&timeouts, BASELINE, false);
    let pid = server.child.id();
    let config = client_config(&server.pki, None);
    let total = STALLED + SLOWLORIS + NO_TLS;
    let set_up = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));

    let began = Instant::now();
    let abusers = {
        let (addr, set_up, done) = (server.addr.clone(), set_up.clone(), done.clone());
        let tls = tokio_rustls::TlsConnector::from(config.clone());
        std::thread::spawn(move || {
            // One thread drives every abusive connection, leaving the other core to the server.
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let gate = Arc::new(tokio::sync::Semaphore::new(32));
                let mut tasks = Vec::new();
                for i in 0..total {
                    // Interleaved, so that each kind is set up throughout.
                    let kind = match i % 11 {
                        0 => Abuse::NoTls,
                        1..=5 => Abuse::Stalled,
                        _ => Abuse::Slowloris,
                    };
                    let task = abuse(kind, addr.clone(), tls.clone(), gate.clone(), set_up.clone(), done.clone());
                    tasks.push(tokio::spawn(task));
                }
                let mut outcomes = Vec::new();
                for t in tasks {
                    outcomes.push(t.await.unwrap());
                }
                outcomes
            })
        })
    };

    // While they are open: the server's memory, and /healthz on fresh connections.
    let mut peak_rss = 0;
    let mut latencies: Vec<(Duration, Result<u16, String>)> = Vec::new();
    let mut all_set_up = None;
    while !abusers.is_finished() {
        peak_rss = peak_rss.max(rss_kib(pid));
        if set_up.load(Ordering::SeqCst) == total && done.load(Ordering::SeqCst) < total {
            all_set_up.get_or_insert_with(|| began.elapsed());
            let t = Instant::now();
            let answer = Conn::open(&server.addr, config.clone())
                .and_then(|mut c| c.request("GET", "/healthz", b""))
                .map(|(status, _)| status)
                .map_err(|e| e.to_string());
            latencies.push((t.elapsed(), answer));
            peak_rss = peak_rss.max(rss_kib(pid));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let outcomes = abusers.join().unwrap();
    let by = |kind: Abuse| outcomes.iter().filter(|o| o.abuse == kind).collect::<Vec<_>>();
    let max_latency = latencies.iter().map(|(d, _)| *d).max().unwrap_or_default();
    println!(
        "abusive connections set up in {:.0} ms; {} /healthz while they were open, max {:.1} ms; peak RSS {:.1} MB",
        all_set_up.map_or(f64::NAN, ms),
        latencies.len(),
        ms(max_latency),
        peak_rss as f64 / 1024.0
    );
    for kind in [Abuse::NoTls, Abuse::Stalled, Abuse::Slowloris] {
        println!(
            "{kind:?} (closed after, from {}): {}",
            if kind == Abuse::Stalled { "the end of sending" } else { "connect" },
            summary(&by(kind))
        );
    }
    let statuses: std::collections::BTreeMap<Option<u16>, usize> =
        by(Abuse::Stalled).iter().fold(Default::default(), |mut m, o| {
            *m.entry(o.status()).or_default() += 1;
            m
        });
    println!("Stalled: answers before the close {statuses:?}");

    let errors: Vec<&Outcome> = outcomes.iter().filter(|o| o.error.is_some()).collect();
    assert!(errors.is_empty(), "{} abusive connections could not be set up, e.g. {:?}", errors.len(), errors.first());
    for o in &outcomes {
        let bound = o.abuse.timeout() + SLACK;
        match o.closed_after {
            Some(d) => assert!(
                d <= bound,
                "a {:?} connection was closed only after {:.0} ms (its timeout is {:.0} ms): {}",
                o.abuse,
                ms(d),
                ms(o.abuse.timeout()),
                summary(&by(o.abuse))
            ),
            None => panic!(
                "a {:?} connection was still open {:.0} ms after its timeout of {:.0} ms: {}",
                o.abuse,
                ms(SLACK + WATCH_MORE),
                ms(o.abuse.timeout()),
                summary(&by(o.abuse))
            ),
        }
    }
    for o in by(Abuse::Stalled) {
        assert_eq!(o.status(), Some(408), "a stalled body gets 408: {statuses:?}");
    }
    assert!(latencies.len() >= 5, "too few /healthz measured while the connections were open: {}", latencies.len());
    for (took, answer) in &latencies {
        assert_eq!(answer.as_ref(), Ok(&200), "/healthz while under abuse");
        assert!(*took < Duration::from_millis(100), "/healthz took {:.1} ms under abuse", ms(*took));
    }
    assert!(peak_rss < 200 * 1024, "peak RSS {:.1} MB", peak_rss as f64 / 1024.0);
    assert!(server_alive(&server));
    admission_still_works(&server);
}

fn server_alive(server: &Server) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", server.child.id()))
        .is_ok_and(|s| !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
}

// ---------------------------------------------------------------------------
// 2. The connection cap.

#[test]
fn connection_cap_refuses_beyond_it() {
    let _serial = serial();
    const CAP: usize = 50;
    let server = start(&["--max-connections", &CAP.to_string()], BASELINE, false);
    let config = client_config(&server.pki, None);
    // Fill every slot with a served keep-alive connection. (The connections of
    // the readiness checks may take a moment to be released.)
    let open_all = |n: usize| -> Vec<Conn> {
        let mut held = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(3);
        while held.len() < n {
            match Conn::open(&server.addr, config.clone())
                .and_then(|mut c| c.request("GET", "/healthz", b"").map(|r| (c, r)))
            {
                Ok((c, (200, _))) => held.push(c),
                other => {
                    assert!(
                        Instant::now() < deadline,
                        "connection {} of {n} was not served: {:?}",
                        held.len(),
                        other.map(|(_, r)| r)
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        held
    };
    let mut holders = open_all(CAP);
    let metrics = |c: &mut Conn| {
        let (status, body) = c.request("GET", "/metrics", b"").expect("metrics on a held connection");
        assert_eq!(status, 200);
        counter(&String::from_utf8_lossy(&body), "palisade_connections_refused_total")
    };
    let before = metrics(&mut holders[0]);

    // Beyond the cap: closed at once, before any TLS or HTTP.
    const BEYOND: usize = 10;
    let mut refused_after = Vec::new();
    for i in 0..BEYOND {
        let t = Instant::now();
        let answer = Conn::open(&server.addr, config.clone()).and_then(|mut c| c.request("GET", "/healthz", b""));
        let took = t.elapsed();
        assert!(answer.is_err(), "connection {} beyond the cap of {CAP} was served: {answer:?}", i + 1);
        refused_after.push(took);
    }
    let max_refusal = refused_after.iter().max().copied().unwrap();
    let during = metrics(&mut holders[0]);
    println!(
        "{BEYOND} connections beyond the cap closed after at most {:.1} ms; palisade_connections_refused_total {before} -> {during}",
        ms(max_refusal)
    );
    assert!(
        max_refusal < Duration::from_secs(1),
        "a connection beyond the cap was closed only after {:.0} ms",
        ms(max_refusal)
    );
    assert!(during >= before + BEYOND as f64, "palisade_connections_refused_total went from {before} to {during}");

    // A slot frees: a new connection is served, and it reads the refusals too.
    drop(holders.pop());
    let t = Instant::now();
    let after = loop {
        match Conn::open(&server.addr, config.clone()).and_then(|mut c| c.request("GET", "/metrics", b"")) {
            Ok((200, body)) => break counter(&String::from_utf8_lossy(&body), "palisade_connections_refused_total"),
            other => assert!(t.elapsed() < Duration::from_secs(2), "a freed slot was not reused: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("a freed slot served a new connection after {:.1} ms; refused total there {after}", ms(t.elapsed()));
    assert!(after >= before + BEYOND as f64, "palisade_connections_refused_total went from {before} to {after}");

    // Every slot is released when the holders go: the whole cap can be held again.
    drop(holders);
    drop(open_all(CAP));
    let t = Instant::now();
    while get(&server, "/healthz").0 != 200 {
        assert!(t.elapsed() < Duration::from_secs(2), "the server refuses after the holders left");
        std::thread::sleep(Duration::from_millis(20));
    }
    admission_still_works(&server);
}

// ---------------------------------------------------------------------------
// 3. Idle keep-alive connections.

#[test]
fn idle_keep_alive_is_closed() {
    let _serial = serial();
    const IDLE: Duration = Duration::from_millis(2000);
    let server = start(&["--idle-timeout-ms", &IDLE.as_millis().to_string()], BASELINE, false);
    let mut conn = Conn::open(&server.addr, client_config(&server.pki, None)).unwrap();
    // In use, with pauses of a third of the timeout, it outlives the timeout.
    let first = Instant::now();
    for i in 0..4 {
        if i > 0 {
            std::thread::sleep(IDLE * 7 / 20);
        }
        let answer = conn.request("GET", "/healthz", b"");
        assert!(
            matches!(answer, Ok((200, _))),
            "request {i} on a connection in use for {:.0} ms: {answer:?}",
            ms(first.elapsed())
        );
    }
    println!("a connection in use for {:.0} ms stayed open", ms(first.elapsed()));
    // Then it idles.
    let closed = conn.wait_closed(IDLE + SLACK + Duration::from_secs(1));
    println!(
        "the idle connection was closed after {}",
        closed.map_or("(still open)".into(), |d| format!("{:.0} ms", ms(d)))
    );
    let closed =
        closed.unwrap_or_else(|| panic!("an idle keep-alive connection was still open after {:?}", IDLE + SLACK));
    assert!(closed >= IDLE / 2, "closed after {:.0} ms, before half the idle timeout", ms(closed));
    assert!(closed <= IDLE + SLACK, "closed only after {:.0} ms", ms(closed));
    assert_eq!(get(&server, "/healthz").0, 200);
}

// ---------------------------------------------------------------------------
// 4. A body declared over the limit.

#[test]
fn declared_oversized_body_is_refused_unread() {
    let _serial = serial();
    let server = start(&[], BASELINE, false);
    let mut conn = Conn::open(&server.addr, client_config(&server.pki, None)).unwrap();
    let t = Instant::now();
    conn.send(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
        .unwrap();
    let answer = conn.response();
    let took = t.elapsed();
    println!("Content-Length 100000000 and no body: {:?} after {:.1} ms", answer.as_ref().map(|a| a.0), ms(took));
    let (status, body) = answer.unwrap_or_else(|e| panic!("no answer after {:.0} ms: {e}", ms(took)));
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    assert!(took < Duration::from_secs(1), "413 only after {:.0} ms", ms(took));
    // The body is not waited for: the connection ends with the answer.
    let closed = conn.wait_closed(Duration::from_secs(2));
    println!("then closed after {}", closed.map_or("(still open)".into(), |d| format!("{:.1} ms", ms(d))));
    assert!(closed.is_some_and(|d| d < Duration::from_secs(1)), "the connection stayed open for the body: {closed:?}");
    assert_eq!(get(&server, "/healthz").0, 200);
}

// ---------------------------------------------------------------------------
// 5. The request deadline stops the evaluation.

#[test]
fn deadline_stops_the_evaluation() {
    let _serial = serial();
    let misbehave = testing_component("test-misbehave");
    let config = "profile: baseline\nsettings:\n  test-misbehave: {mode: loop}\n";
    let server = start(&["--policies", misbehave.to_str().unwrap(), "--request-timeout-ms", "300"], config, false);
    let pid = server.child.id();
    // 200 objects on which the policy spins until its per-call bound (1 s): 200 s of work.
    let keys: Vec<String> =
        (0..200).map(|i| pod(&format!("bad-{i}"), "shop", json!({}), json!({})).to_string()).collect();
    let request = json!({
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": keys},
    })
    .to_string();
    let mut conn = Conn::open(&server.addr, client_config(&server.pki, None)).unwrap();
    conn.tls.sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let idle_cpu = cpu_ticks(pid);
    let t = Instant::now();
    let answer = conn.request("POST", "/gatekeeper/v1/provider", request.as_bytes());
    let took = t.elapsed();
    let at_answer = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let after = cpu_ticks(pid);
    let cpu_after = (after - at_answer) as f64 / 100.0;
    println!(
        "answer {:?} after {:.0} ms; server CPU until the answer {:.2} s, in the 1 s after it {cpu_after:.2} s",
        answer.as_ref().map(|a| a.0),
        ms(took),
        (at_answer - idle_cpu) as f64 / 100.0
    );
    let (status, body) = answer.unwrap_or_else(|e| panic!("no answer after {:.0} ms: {e}", ms(took)));
    assert_eq!(status, 500, "{}", String::from_utf8_lossy(&body));
    assert!(took < Duration::from_millis(1000), "the 300 ms deadline answered only after {:.0} ms", ms(took));
    assert!(cpu_after < 0.15, "the server burnt {cpu_after:.2} s of CPU in the second after the deadline");
    // Objects the policy does not spin on are still judged, promptly.
    let t = Instant::now();
    let good = pod("good", "shop", json!({}), json!({}));
    let (status, answer) = post(&server, "/validate", &review("g", "CREATE", "shop", good, Value::Null));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(t.elapsed() < Duration::from_secs(1), "a good pod after the deadline took {:.0} ms", ms(t.elapsed()));
}

// ---------------------------------------------------------------------------
// 6. Out of file descriptors: accept errors back off and are logged at a bounded rate.

#[test]
fn accept_errors_back_off_when_descriptors_run_out() {
    let _serial = serial();
    // 64 descriptors, soft and hard: the server cannot raise them, and the
    // connections below exhaust them, so accept() fails with EMFILE while the
    // listening socket stays readable: without a back-off the loop spins.
    let (server, stderr) = start_logged(&["--max-connections", "1000"], "profile: baseline\n", false, Some(64));
    let pid = server.child.id();
    let mut held = Vec::new();
    for _ in 0..120 {
        if let Ok(c) = TcpStream::connect(&server.addr) {
            held.push(c);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let cpu_before = cpu_ticks(pid);
    let logged_before = stderr.lock().unwrap().iter().filter(|l| l.contains("accept failed")).count();
    std::thread::sleep(Duration::from_secs(3));
    let cpu = cpu_ticks(pid) - cpu_before;
    let lines: Vec<String> = stderr.lock().unwrap().clone();
    let logged = lines.iter().filter(|l| l.contains("accept failed")).count() - logged_before;
    println!(
        "out of descriptors: {} connections held, {cpu} ticks of CPU in 3 s, {logged} accept-failure lines",
        held.len()
    );
    assert!(
        lines.iter().any(|l| l.contains("accept failed") && l.contains("Too many open files")),
        "descriptors ran out: {lines:?}"
    );
    assert!(logged <= 5, "accept failures are logged at most once a second: {logged} lines in 3 s");
    assert!(cpu <= 30, "the accept loop backs off instead of spinning: {cpu} ticks (10 ms each) in 3 s");
    drop(held);
    // Once the clients go, the server serves again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&server, "/healthz").0 != 200 {
        assert!(Instant::now() < deadline, "the server did not recover");
        std::thread::sleep(Duration::from_millis(100));
    }
    admission_still_works(&server);
}

// ---------------------------------------------------------------------------
// 7. Bodies share one memory budget: many large bodies arriving at once do not
//    add up to the sum of their sizes.

#[test]
fn request_bodies_share_one_memory_budget() {
    let _serial = serial();
    const CLIENTS: usize = 40;
    const SENT: usize = 2_900_000;
    let server = start(
        &["--max-body-buffer-mib", "4", "--body-read-timeout-ms", "3000", "--header-read-timeout-ms", "5000"],
        BASELINE,
        false,
    );
    let pid = server.child.id();
    let before = rss_kib(pid);
    let config = client_config(&server.pki, None);
    let peak = Arc::new(AtomicUsize::new(0));
    let statuses: Vec<Option<u16>> = std::thread::scope(|scope| {
        let watcher = {
            let peak = peak.clone();
            scope.spawn(move || {
                let end = Instant::now() + Duration::from_secs(6);
                while Instant::now() < end {
                    peak.fetch_max(rss_kib(pid) as usize, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let config = config.clone();
                let addr = server.addr.clone();
                scope.spawn(move || {
                    let mut conn = Conn::open(&addr, config).ok()?;
                    conn.tls.sock.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
                    conn.tls.sock.set_read_timeout(Some(Duration::from_secs(8))).ok()?;
                    let head = "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n";
                    conn.send(head.as_bytes()).ok()?;
                    // Most of a body, then nothing: the server must not hold 40 of these.
                    let _ = conn.send(&vec![b' '; SENT]);
                    conn.response().ok().map(|(status, _)| status)
                })
            })
            .collect();
        let out = clients.into_iter().map(|c| c.join().unwrap()).collect();
        watcher.join().unwrap();
        out
    });
    let peak = peak.load(Ordering::SeqCst) as u64;
    let grew_mib = peak.saturating_sub(before) as f64 / 1024.0;
    let timed_out = statuses.iter().filter(|s| **s == Some(408)).count();
    println!(
        "{CLIENTS} bodies of {SENT} bytes with a 4 MiB budget: RSS {:.1} -> {:.1} MiB (+{grew_mib:.1}), {timed_out} answered 408, others {:?}",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        statuses.iter().filter(|s| **s != Some(408)).collect::<Vec<_>>()
    );
    // 40 × 2.9 MB is 110 MiB; the budget keeps the bodies to 4 MiB, plus a
    // 64 KiB read buffer a connection and TLS state.
    assert!(grew_mib < 40.0, "bodies held {grew_mib:.1} MiB beyond the start");
    assert_eq!(timed_out, CLIENTS, "every stalled body ends in 408: {statuses:?}");
    admission_still_works(&server);
}
