//! Load benchmark of `palisade serve` (`cargo bench -p palisade --bench serve`,
//! or `just bench-serve`): the real server on loopback with TLS and the whole
//! default policy set, AdmissionReviews of a realistic Deployment sent over
//! keep-alive connections, at a fixed rate and then as fast as possible.
//! Latency is measured from each request's scheduled send time, so a stalled
//! server cannot hide its queue. Prints requests/s, p50/p95/p99 and the
//! server's peak resident memory.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::server::*;
use serde_json::{Value, json};

/// One keep-alive HTTPS connection.
struct Conn {
    tls: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
}

impl Conn {
    fn open(addr: &str, config: Arc<rustls::ClientConfig>) -> Conn {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(config, name).unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_nodelay(true).unwrap();
        Conn { tls: BufReader::new(rustls::StreamOwned::new(conn, tcp)) }
    }

    /// Send one request and read the whole answer; the status code.
    fn post(&mut self, body: &[u8]) -> u16 {
        let head = format!(
            "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let stream = self.tls.get_mut();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        stream.flush().unwrap();
        let mut status = 0;
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.tls.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some(s) = l.strip_prefix("HTTP/1.1 ") {
                status = s[..3].parse().unwrap_or(0);
            }
            if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length: ") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        self.tls.read_exact(&mut body).unwrap();
        status
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// Run `connections` clients for `duration`; `rate` requests/s in all, or as
/// fast as they can when `None`. Latencies of the answered requests.
fn load(
    server: &Server,
    body: &Arc<Vec<u8>>,
    connections: usize,
    rate: Option<f64>,
    duration: Duration,
) -> Vec<Duration> {
    let config = client_config(&server.pki, None);
    let start = Instant::now() + Duration::from_millis(200);
    let handles: Vec<_> = (0..connections)
        .map(|c| {
            let (addr, config, body) = (server.addr.clone(), config.clone(), body.clone());
            std::thread::spawn(move || {
                let mut conn = Conn::open(&addr, config);
                let mut latencies = Vec::new();
                let interval = rate.map(|r| Duration::from_secs_f64(connections as f64 / r));
                // Spread the connections' schedules over one interval.
                let mut next = start + interval.map_or(Duration::ZERO, |i| i.mul_f64(c as f64 / connections as f64));
                while next < start + duration {
                    let now = Instant::now();
                    if now < next {
                        std::thread::sleep(next - now);
                    }
                    let scheduled = if interval.is_some() { next } else { Instant::now() };
                    let status = conn.post(&body);
                    assert_eq!(status, 200);
                    latencies.push(scheduled.elapsed());
                    next = match interval {
                        Some(i) => next + i,
                        None => Instant::now(),
                    };
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    all.sort();
    all
}

fn report(label: &str, latencies: &[Duration], duration: Duration) {
    println!(
        "{label}: {} requests, {:.0} requests/s, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        latencies.len() as f64 / duration.as_secs_f64(),
        percentile(latencies, 0.50),
        percentile(latencies, 0.95),
        percentile(latencies, 0.99),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let mut server = start(&[], "profile: hardened\n", false);
    // The decision log: read it, as a log shipper would.
    if let Some(mut out) = server.stdout.take() {
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    }
    let text = std::fs::read_to_string(common::root().join("examples/hardened-deployment.yaml")).unwrap();
    let deployment = palisade::documents::read_documents(&text, &Default::default()).remove(0).content.unwrap().value;
    let mut review = review("bench", "CREATE", "shop", deployment, Value::Null);
    review["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let body = Arc::new(review.to_string().into_bytes());
    println!("AdmissionReview of a Deployment, {} bytes, hardened profile (40 rules)", body.len());

    let seconds = if quick { 1 } else { 10 };
    let duration = Duration::from_secs(seconds);
    // Warm every worker thread's instances.
    let _ = load(&server, &body, 8, None, Duration::from_millis(if quick { 200 } else { 2000 }));
    let fixed = load(&server, &body, 16, Some(1000.0), duration);
    report("fixed rate 1000/s, 16 connections", &fixed, duration);
    let max = load(&server, &body, 8, None, duration);
    report("maximum rate, 8 connections", &max, duration);

    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap_or_default();
    if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:")) {
        let kib: f64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        println!("server peak resident memory: {:.1} MiB", kib / 1024.0);
    }
}
