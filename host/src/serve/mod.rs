//! `palisade serve`: the same components at the cluster's door, over HTTPS.
//!
//! Endpoints: `POST /validate` (Kubernetes AdmissionReview v1), `POST
//! /mutate` (the same, answered with a JSONPatch pinning verified images to
//! their digests), `POST /gatekeeper/v1/provider` (Gatekeeper external data), `POST
//! /kyverno/v1/validate` (a Kyverno apiCall service), `GET /healthz`,
//! `/readyz` (once the policy set is compiled) and `/metrics` (Prometheus).
//! Bodies over 3 MiB get 413 (unread when their declared length says so),
//! malformed ones 400; evaluation runs on the blocking pool under a request
//! deadline that interrupts the running policy, and a bound on concurrency
//! that holds until the work has really stopped. Connections are bounded in
//! number, in buffer size and in time ([`connection`]). SIGTERM stops
//! accepting and finishes the requests in flight. A plain-HTTP client on the
//! TLS port is answered 400 and logged as such. Every log line is a JSON
//! object ([`log`]).

mod connection;
mod decision;
mod endpoints;
pub mod engine;
pub mod log;
mod metrics;
mod tls;
pub mod wire;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use std::io::Write as _;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

pub use connection::ConnectionLimits;
use connection::{AcceptBackoff, Activity, Tracked};
use endpoints::{Logged, Refusal};
use engine::Engine;
use log::Level;
use metrics::Metrics;

/// The API server refuses larger requests too.
pub const MAX_BODY: usize = 3 << 20;

pub struct Options {
    pub addr: String,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub max_concurrency: usize,
    /// Below the webhook's timeoutSeconds, so the server answers before the API server gives up.
    pub request_timeout: Duration,
    pub connections: ConnectionLimits,
}

/// hyper's read buffer per connection (its minimum is 8 KiB): request heads
/// larger than this are refused, and a body is read in pieces of at most this.
const MAX_READ_BUFFER: usize = 64 << 10;

struct State {
    engine: OnceLock<Arc<Engine>>,
    metrics: Metrics,
    permits: Arc<Semaphore>,
    timeout: Duration,
    limits: ConnectionLimits,
    /// Body bytes all requests together may hold, one permit a byte.
    body_budget: Arc<Semaphore>,
    /// Lines about clients' failures, rate-limited.
    client_log: connection::LogLimiter,
    /// Lines about plain-HTTP clients, rate-limited apart: a flood of TLS
    /// failures must not hide the one line that says what to fix.
    plain_http_log: connection::LogLimiter,
    /// Decision lines for the logging thread: a slow reader of stdout must
    /// never stall admission, so lines are dropped (and counted) when it lags.
    log: std::sync::mpsc::SyncSender<Record>,
}

/// What the logging thread is given.
enum Record {
    Line(String),
    /// Answer once every line before this one is written.
    Flush(std::sync::mpsc::Sender<()>),
}

impl State {
    /// A line for stdout, through the logging thread.
    fn record(&self, line: String) {
        if self.log.try_send(Record::Line(line)).is_err() {
            self.metrics.inc("palisade_log_lines_dropped_total", &[]);
        }
    }

    /// Wait (up to `limit`) until the lines recorded so far are written.
    fn flush(&self, limit: Duration) {
        let (done, written) = std::sync::mpsc::channel();
        // The queue may be full and stdout stalled: never wait past `limit`.
        let deadline = std::time::Instant::now() + limit;
        let mut record = Record::Flush(done);
        loop {
            match self.log.try_send(record) {
                Ok(()) => {
                    let _ = written.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
                    return;
                }
                Err(std::sync::mpsc::TrySendError::Full(back)) if std::time::Instant::now() < deadline => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return,
            }
        }
    }
}

/// Log an error that stops the server before it serves (a bad configuration,
/// an address in use), as the server's other lines are logged.
pub fn log_fatal(error: &anyhow::Error) {
    log::stderr(Level::Error, "cannot start", json!({"error": format!("{error:#}")}));
}

fn logger() -> std::sync::mpsc::SyncSender<Record> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Record>(10_000);
    std::thread::spawn(move || {
        // Buffered, and flushed once the queue is empty: under load one
        // write carries many lines, and no line waits for the next one.
        let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
        let mut next = rx.recv().ok();
        while let Some(record) = next {
            match record {
                Record::Line(line) => {
                    if writeln!(out, "{line}").is_err() {
                        break;
                    }
                }
                Record::Flush(done) => {
                    if out.flush().is_err() {
                        break;
                    }
                    let _ = done.send(());
                }
            }
            next = match rx.try_recv() {
                Ok(record) => Some(record),
                Err(std::sync::mpsc::TryRecvError::Empty) => {
                    if out.flush().is_err() {
                        break;
                    }
                    rx.recv().ok()
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => None,
            };
        }
        let _ = out.flush();
    });
    tx
}

/// Run the server until SIGTERM or Ctrl-C. `load` builds the policy set; the
/// server listens (and answers /healthz) while it compiles.
pub fn run(opts: Options, load: impl FnOnce() -> anyhow::Result<Engine> + Send + 'static) -> anyhow::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(serve(opts, load))
}

async fn serve(opts: Options, load: impl FnOnce() -> anyhow::Result<Engine> + Send + 'static) -> anyhow::Result<()> {
    let tls =
        TlsAcceptor::from(Arc::new(tls::server_config(&opts.tls_cert, &opts.tls_key, opts.client_ca.as_deref())?));
    let files = raise_open_files_limit();
    if files < opts.connections.max_connections as u64 + 64 {
        log::stderr(
            Level::Warn,
            "fewer open files allowed than --max-connections needs; accept errors will back off",
            json!({"openFiles": files, "maxConnections": opts.connections.max_connections}),
        );
    }
    let listener = TcpListener::bind(&opts.addr).await.with_context(|| format!("cannot listen on {}", opts.addr))?;
    let local = listener.local_addr().context("the listening address")?;
    log::stderr(Level::Info, "listening", json!({"address": local.to_string(), "url": format!("https://{local}")}));
    let state = Arc::new(State {
        engine: OnceLock::new(),
        metrics: Metrics::default(),
        permits: Arc::new(Semaphore::new(opts.max_concurrency.max(1))),
        timeout: opts.request_timeout,
        limits: opts.connections,
        body_budget: Arc::new(Semaphore::new(opts.connections.max_body_buffer.max(MAX_BODY))),
        client_log: connection::LogLimiter::new(),
        plain_http_log: connection::LogLimiter::new(),
        log: logger(),
    });
    {
        let state = state.clone();
        tokio::task::spawn_blocking(move || match load() {
            Ok(engine) => {
                engine.warm();
                let _ = state.metrics.evaluations.set(metrics::Evaluations::new(engine.rule_ids()));
                let mut digests: Vec<String> =
                    engine.policies().iter().map(|p| p.policy.compiled.digest.clone()).collect();
                digests.sort();
                let set = crate::runtime::sha256_hex(digests.join("\n").as_bytes());
                if let Ok(mut d) = state.metrics.digest.lock() {
                    *d = Some(format!("sha256:{set}"));
                }
                let rules = engine.policies().len();
                let enforce_from = engine.admission.enforce_from();
                let _ = state.engine.set(Arc::new(engine));
                log::stderr(
                    Level::Info,
                    "ready",
                    json!({"rules": rules, "policySet": format!("sha256:{set}"), "enforceFrom": enforce_from}),
                );
            }
            Err(e) => {
                log::stderr(Level::Error, "cannot load the policy set", json!({"error": format!("{e:#}")}));
                std::process::exit(2);
            }
        });
    }

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("SIGTERM handler")?;
    let slots = Arc::new(Semaphore::new(opts.connections.max_connections.max(1)));
    let mut backoff = AcceptBackoff::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let tcp = match accepted {
                    Ok((tcp, _)) => {
                        backoff.success();
                        // Answers are small and written whole: no Nagle delay
                        // waiting for the client's delayed ACK.
                        let _ = tcp.set_nodelay(true);
                        tcp
                    }
                    Err(e) => {
                        state.metrics.inc("palisade_accept_errors_total", &[]);
                        tokio::time::sleep(backoff.failure(&e)).await;
                        continue;
                    }
                };
                // Over the cap: closed at once, so a flood costs a socket for a moment only.
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    state.metrics.inc("palisade_connections_refused_total", &[]);
                    drop(tcp);
                    continue;
                };
                tokio::spawn(connection(tls.clone(), tcp, state.clone(), graceful.watcher(), slot));
            }
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    drop(listener);
    log::stderr(Level::Info, "shutting down; finishing the requests in flight", json!({}));
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            log::stderr(Level::Warn, "requests still in flight after 30 s; stopping", json!({}));
        }
    }
    // The decisions of the last requests reach stdout before the process ends.
    let flushing = state.clone();
    let _ = tokio::task::spawn_blocking(move || flushing.flush(Duration::from_secs(5))).await;
    log::stderr(Level::Info, "stopped", json!({}));
    Ok(())
}

/// Raise the soft limit on open files to the hard one (as Go's runtime does
/// for every server), so the connection cap, not the descriptor table, is what
/// refuses a flood. Returns the limit in force.
fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the struct we pass, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return u64::MAX;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// Serve one connection until the client closes it or a limit does.
async fn connection(
    tls: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    state: Arc<State>,
    watcher: hyper_util::server::graceful::Watcher,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    let limits = state.limits;
    let activity = Activity::new(Instant::now());
    let peer = tcp.peer_addr().map_or_else(|_| "unknown".to_string(), |a| a.to_string());
    let deadline = tokio::time::Instant::now() + limits.header_read_timeout;
    match tokio::time::timeout_at(deadline, connection::first_byte(&tcp)).await {
        Ok(Some(first)) if connection::starts_plain_http(first) => {
            state.metrics.inc("palisade_connections_closed_total", &[("reason", "plain HTTP")]);
            state.plain_http_log.log(
                Level::Warn,
                "a client spoke plain HTTP to the TLS port; use https://",
                json!({"peer": peer}),
            );
            connection::refuse_plain_http(tcp, deadline).await;
            return;
        }
        // TLS, or a client that closed at once (the handshake says so).
        Ok(_) => {}
        Err(_) => {
            state.metrics.inc("palisade_connections_closed_total", &[("reason", "handshake timeout")]);
            return;
        }
    }
    let stream = match tokio::time::timeout_at(deadline, tls.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            state.metrics.inc("palisade_tls_handshake_failures_total", &[]);
            state.client_log.log(Level::Warn, "TLS handshake failed", json!({"peer": peer, "error": e.to_string()}));
            return;
        }
        Err(_) => {
            state.metrics.inc("palisade_connections_closed_total", &[("reason", "handshake timeout")]);
            return;
        }
    };
    let service = {
        let (state, activity) = (state.clone(), activity.clone());
        hyper::service::service_fn(move |req| {
            let busy = activity.begin();
            let state = state.clone();
            async move {
                let response = handle(state, req).await;
                drop(busy);
                response
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(MAX_READ_BUFFER)
        .serve_connection(TokioIo::new(Tracked::new(stream, activity.clone())), service);
    let conn = watcher.watch(conn);
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(connection::watch_interval(&limits));
    loop {
        tokio::select! {
            _ = &mut conn => return,
            _ = tick.tick() => {
                if let Some(why) = activity.expired(&limits) {
                    state.metrics.inc("palisade_connections_closed_total", &[("reason", why)]);
                    return;
                }
            }
        }
    }
}

fn reply(code: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = code;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn problem(code: u16, message: &str) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(status, "application/json", json!({"error": message}).to_string())
}

type Handler = fn(&Engine, &[u8], Instant) -> Result<(serde_json::Value, Logged), Refusal>;

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let path = req.uri().path().to_string();
    let (endpoint, handler): (&str, Option<Handler>) = match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => ("healthz", None),
        (&Method::GET, "/readyz") => ("readyz", None),
        (&Method::GET, "/metrics") => ("metrics", None),
        (&Method::POST, "/validate") => ("validate", Some(endpoints::admission_review as Handler)),
        (&Method::POST, "/mutate") => ("mutate", Some(endpoints::mutate as Handler)),
        (&Method::POST, "/gatekeeper/v1/provider") => ("gatekeeper", Some(endpoints::gatekeeper as Handler)),
        (&Method::POST, "/kyverno/v1/validate") => ("kyverno", Some(endpoints::kyverno as Handler)),
        (
            _,
            "/healthz"
            | "/readyz"
            | "/metrics"
            | "/validate"
            | "/mutate"
            | "/gatekeeper/v1/provider"
            | "/kyverno/v1/validate",
        ) => {
            return Ok(finish(&state, "other", started, problem(405, "method not allowed")));
        }
        _ => return Ok(finish(&state, "other", started, problem(404, &format!("no endpoint {path}")))),
    };
    let response = match (endpoint, handler) {
        ("healthz", _) => reply(StatusCode::OK, "text/plain", "ok\n"),
        ("readyz", _) => match state.engine.get() {
            Some(_) => reply(StatusCode::OK, "text/plain", "ready\n"),
            None => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "compiling the policy set\n"),
        },
        ("metrics", _) => {
            let mut text = state.metrics.render();
            if let Some(engine) = state.engine.get() {
                text.push_str(&metrics::render_images(&engine.runtime().images().metrics));
            }
            reply(StatusCode::OK, "text/plain; version=0.0.4", text)
        }
        (_, Some(handler)) => post(&state, endpoint, handler, req).await,
        _ => problem(404, "no such endpoint"),
    };
    Ok(finish(&state, endpoint, started, response))
}

fn finish(state: &State, endpoint: &str, started: Instant, response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    state.metrics.inc("palisade_requests_total", &[("endpoint", endpoint), ("code", response.status().as_str())]);
    state.metrics.observe(endpoint, started.elapsed());
    response
}

async fn post(
    state: &Arc<State>,
    endpoint: &'static str,
    handler: Handler,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    // Kyverno's apiCall may send no Content-Type; anything that says it is not JSON is refused.
    if let Some(ct) = req.headers().get(hyper::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        if !ct.starts_with("application/json") {
            return problem(415, &format!("expected Content-Type application/json, got {ct:?}"));
        }
    }
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return closing(problem(413, &format!("the body is over {MAX_BODY} bytes")));
    }
    let body_timeout = state.limits.body_read_timeout;
    let (body, buffered) = match tokio::time::timeout(body_timeout, read_body(state, req.into_body())).await {
        Ok(Ok(read)) => read,
        Ok(Err(refused)) => return closing(refused),
        Err(_) => {
            state.metrics.inc("palisade_connections_closed_total", &[("reason", "body read timeout")]);
            return closing(problem(
                408,
                &format!("the body did not arrive within the body read timeout of {} ms", body_timeout.as_millis()),
            ));
        }
    };
    let Some(engine) = state.engine.get().cloned() else {
        return problem(503, "the policy set is still compiling");
    };
    let started = Instant::now();
    let deadline = started + state.timeout;
    let permit = match tokio::time::timeout(state.timeout, state.permits.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        _ => return problem(503, "too many requests in flight"),
    };
    // The permit goes with the work: it is released when the evaluation has
    // really stopped (at the deadline, interrupted), not when we stop waiting.
    let work = tokio::task::spawn_blocking(move || {
        let result = handler(&engine, &body, deadline);
        drop(permit);
        drop(body);
        drop(buffered);
        result
    });
    let outcome = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), work).await;
    match outcome {
        Ok(Ok(Ok((value, logged)))) => {
            if let Some(counters) = state.metrics.evaluations.get() {
                for &(rule, result) in &logged.evaluations {
                    counters.count(endpoint, rule, result);
                }
            }
            if endpoint != "gatekeeper" {
                state.record(decision_line(endpoint, &logged, started.elapsed()));
            }
            reply(StatusCode::OK, "application/json", value.to_string())
        }
        Ok(Ok(Err(Refusal(code, message)))) => {
            // A refused request leaves a line too: who sent what is worth an
            // audit trail. What it quotes of the request is cut to a bound.
            let message = log::clip(&message, log::MESSAGE_BYTES);
            state.record(log::line(
                Level::Warn,
                "request refused",
                json!({"endpoint": endpoint, "code": code, "error": message}),
            ));
            problem(code, &message)
        }
        Ok(Err(e)) => failed(state, endpoint, format!("evaluation failed: {e}")),
        Err(_) => failed(
            state,
            endpoint,
            format!("no decision within the request deadline of {} ms", state.timeout.as_millis()),
        ),
    }
}

/// A request that got no decision: 500 (the webhook's failurePolicy
/// decides), and a line saying so.
fn failed(state: &State, endpoint: &str, message: String) -> Response<Full<Bytes>> {
    state.record(log::line(Level::Error, "no decision", json!({"endpoint": endpoint, "code": 500, "error": message})));
    problem(500, &message)
}

/// Read a body piece by piece, each piece paid for from the server-wide
/// budget of buffered body bytes before it is kept: when the budget is spent
/// the read waits (and the client with it, by TCP flow control) until other
/// requests finish or the body timeout ends it. So memory follows the bytes
/// that arrived, and all bodies together stay within `--max-body-buffer-mib`.
async fn read_body(
    state: &State,
    mut body: Incoming,
) -> Result<(Bytes, Option<tokio::sync::OwnedSemaphorePermit>), Response<Full<Bytes>>> {
    // The pieces as hyper read them (no copy while the body trickles in).
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut length = 0;
    let mut held: Option<tokio::sync::OwnedSemaphorePermit> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| problem(400, &format!("cannot read the body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if length + data.len() > MAX_BODY {
            return Err(problem(413, &format!("the body is over {MAX_BODY} bytes")));
        }
        let cost = u32::try_from(data.len()).map_err(|_| problem(413, "a body piece over 4 GiB"))?;
        let permit = state
            .body_budget
            .clone()
            .acquire_many_owned(cost)
            .await
            .map_err(|_| problem(503, "the server is shutting down"))?;
        match held.as_mut() {
            Some(h) => h.merge(permit),
            None => held = Some(permit),
        }
        length += data.len();
        pieces.push(data);
    }
    let body = match pieces.len() {
        1 => pieces.remove(0),
        _ => Bytes::from(pieces.concat()),
    };
    Ok((body, held))
}

/// A response after which the connection closes (its body may be unread).
fn closing(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
    response
}

/// One JSON line per admission decision, for stdout.
fn decision_line(endpoint: &str, l: &Logged, took: Duration) -> String {
    let clip = |text: &str| log::clip(text, log::FIELD_BYTES);
    let mut fields = json!({
        "endpoint": endpoint,
        "uid": clip(&l.uid), "user": clip(&l.user), "kind": clip(&l.kind),
        "namespace": clip(&l.namespace), "name": clip(&l.name),
        "operation": clip(&l.operation), "decision": l.decision, "rules": l.rules, "rulesFailed": l.rules_failed,
        "durationMs": took.as_secs_f64() * 1e3,
    });
    if !l.pinned.is_empty() {
        fields["pinned"] = json!(l.pinned);
    }
    log::line(Level::Info, "admission decision", fields)
}
