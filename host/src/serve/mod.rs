//! `palisade serve`: the same components at the cluster's door, over HTTPS.
//!
//! Endpoints: `POST /validate` (Kubernetes AdmissionReview v1), `POST
//! /gatekeeper/v1/provider` (Gatekeeper external data), `POST
//! /kyverno/v1/validate` (a Kyverno apiCall service), `GET /healthz`,
//! `/readyz` (once the policy set is compiled) and `/metrics` (Prometheus).
//! Bodies over 3 MiB get 413, malformed ones 400; evaluation runs on the
//! blocking pool under a request deadline and a bound on concurrency; SIGTERM
//! stops accepting and finishes the requests in flight.

mod decision;
mod endpoints;
pub mod engine;
mod metrics;
mod tls;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use std::io::Write as _;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use endpoints::{Logged, Refusal};
use engine::Engine;
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
}

struct State {
    engine: OnceLock<Arc<Engine>>,
    metrics: Metrics,
    permits: Semaphore,
    timeout: Duration,
    /// Decision lines for the logging thread: a slow reader of stdout must
    /// never stall admission, so lines are dropped (and counted) when it lags.
    log: std::sync::mpsc::SyncSender<String>,
}

fn logger() -> std::sync::mpsc::SyncSender<String> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<String>(10_000);
    std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        for line in rx {
            if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                break;
            }
        }
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
    let listener = TcpListener::bind(&opts.addr).await.with_context(|| format!("cannot listen on {}", opts.addr))?;
    let local = listener.local_addr().context("the listening address")?;
    eprintln!("palisade: listening on https://{local}");
    let state = Arc::new(State {
        engine: OnceLock::new(),
        metrics: Metrics::default(),
        permits: Semaphore::new(opts.max_concurrency.max(1)),
        timeout: opts.request_timeout,
        log: logger(),
    });
    {
        let state = state.clone();
        tokio::task::spawn_blocking(move || match load() {
            Ok(engine) => {
                engine.warm(&["Pod", "Deployment"]);
                let mut digests: Vec<String> =
                    engine.policies().iter().map(|p| p.policy.compiled.digest.clone()).collect();
                digests.sort();
                let set = crate::runtime::sha256_hex(digests.join("\n").as_bytes());
                if let Ok(mut d) = state.metrics.digest.lock() {
                    *d = Some(format!("sha256:{set}"));
                }
                let _ = state.engine.set(Arc::new(engine));
                eprintln!("palisade: ready ({} rules)", state.engine.get().map_or(0, |e| e.policies().len()));
            }
            Err(e) => {
                eprintln!("palisade: cannot load the policy set: {e:#}");
                std::process::exit(2);
            }
        });
    }

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("SIGTERM handler")?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, _) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        eprintln!("palisade: accept failed: {e}");
                        continue;
                    }
                };
                let tls = tls.clone();
                let state = state.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            state.metrics.inc("palisade_tls_handshake_failures_total", &[]);
                            eprintln!("palisade: TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => return,
                    };
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                });
            }
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    drop(listener);
    eprintln!("palisade: shutting down; finishing the requests in flight");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => eprintln!("palisade: requests still in flight after 30 s; stopping"),
    }
    Ok(())
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

type Handler = fn(&Engine, &[u8]) -> Result<(serde_json::Value, Logged), Refusal>;

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let path = req.uri().path().to_string();
    let (endpoint, handler): (&str, Option<Handler>) = match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => ("healthz", None),
        (&Method::GET, "/readyz") => ("readyz", None),
        (&Method::GET, "/metrics") => ("metrics", None),
        (&Method::POST, "/validate") => ("validate", Some(endpoints::admission_review as Handler)),
        (&Method::POST, "/gatekeeper/v1/provider") => ("gatekeeper", Some(endpoints::gatekeeper as Handler)),
        (&Method::POST, "/kyverno/v1/validate") => ("kyverno", Some(endpoints::kyverno as Handler)),
        (_, "/healthz" | "/readyz" | "/metrics" | "/validate" | "/gatekeeper/v1/provider" | "/kyverno/v1/validate") => {
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
        ("metrics", _) => reply(StatusCode::OK, "text/plain; version=0.0.4", state.metrics.render()),
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
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return problem(413, &format!("the body is over {MAX_BODY} bytes"));
        }
        Err(e) => return problem(400, &format!("cannot read the body: {e}")),
    };
    let Some(engine) = state.engine.get().cloned() else {
        return problem(503, "the policy set is still compiling");
    };
    let permit = match tokio::time::timeout(state.timeout, state.permits.acquire()).await {
        Ok(Ok(p)) => p,
        _ => return problem(503, "too many requests in flight"),
    };
    let started = Instant::now();
    let work = tokio::task::spawn_blocking(move || handler(&engine, &body));
    let outcome = tokio::time::timeout(state.timeout, work).await;
    drop(permit);
    match outcome {
        Ok(Ok(Ok((value, logged)))) => {
            for (rule, result) in &logged.evaluations {
                state
                    .metrics
                    .inc("palisade_evaluations_total", &[("endpoint", endpoint), ("rule", rule), ("result", result)]);
                if *result == "error" {
                    state.metrics.inc("palisade_policy_errors_total", &[("rule", rule)]);
                }
            }
            if endpoint != "gatekeeper" && state.log.try_send(decision_line(&logged, started.elapsed())).is_err() {
                state.metrics.inc("palisade_log_lines_dropped_total", &[]);
            }
            reply(StatusCode::OK, "application/json", value.to_string())
        }
        Ok(Ok(Err(Refusal(code, message)))) => problem(code, &message),
        Ok(Err(e)) => problem(500, &format!("evaluation failed: {e}")),
        Err(_) => problem(500, &format!("no decision within the request deadline of {} ms", state.timeout.as_millis())),
    }
}

/// One JSON line per admission decision, for stdout.
fn decision_line(l: &Logged, took: Duration) -> String {
    json!({
        "msg": "admission decision",
        "uid": l.uid, "kind": l.kind, "namespace": l.namespace, "name": l.name, "operation": l.operation,
        "decision": l.decision, "rulesFailed": l.rules_failed, "durationMs": took.as_secs_f64() * 1e3,
    })
    .to_string()
}
