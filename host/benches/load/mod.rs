//! Load on `palisade serve`, shared by the benchmarks (`#[path = "load/mod.rs"]
//! mod load;` after `mod common;`): keep-alive HTTPS connections sending
//! AdmissionReviews at a fixed rate or as fast as they can, with latency
//! measured from each request's scheduled send time, so a stalled server
//! cannot hide its queue.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::server::{Server, client_config};

/// One keep-alive HTTPS connection.
pub struct Conn {
    tls: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
}

impl Conn {
    pub fn open(addr: &str, config: Arc<rustls::ClientConfig>) -> Conn {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(config, name).unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        // The handshake now, so that no measured request carries it.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        Conn { tls: BufReader::new(stream) }
    }

    /// Send one request to /validate and read the whole answer: status and body.
    pub fn post(&mut self, body: &[u8]) -> (u16, Vec<u8>) {
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
        (status, body)
    }
}

/// The `p` quantile (0 to 1) of sorted latencies, in ms.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// Run `connections` clients for `duration`; `rate` requests/s in all, or as
/// fast as they can when `None`. Each answer goes to `check` (status, body)
/// after its latency is taken. Latencies of the answered requests, sorted.
pub fn load(
    server: &Server,
    body: &Arc<Vec<u8>>,
    connections: usize,
    rate: Option<f64>,
    duration: Duration,
    check: fn(u16, &[u8]),
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
                    let (status, answer) = conn.post(&body);
                    latencies.push(scheduled.elapsed());
                    check(status, &answer);
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

pub fn report(label: &str, latencies: &[Duration], duration: Duration) {
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

/// CPU seconds used so far: this process (the load generator: its client
/// threads) and the server, read from `/proc/<pid>/stat` (utime + stime).
#[derive(Clone, Copy)]
pub struct Cpu {
    at: Instant,
    generator: f64,
    server: f64,
}

impl Cpu {
    pub fn now(server_pid: u32) -> Cpu {
        Cpu { at: Instant::now(), generator: own_cpu_seconds(), server: process_cpu_seconds(server_pid) }
    }

    /// "load generator X of N cores, server Y" since `self`, as shares of the machine's cores.
    pub fn shares_since(&self, server_pid: u32) -> String {
        let later = Cpu::now(server_pid);
        let wall = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        format!(
            "load generator {:.2} of {cores} cores, server {:.2}",
            (later.generator - self.generator) / wall,
            (later.server - self.server) / wall,
        )
    }
}

fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes the struct we pass, nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0.0;
        }
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// utime + stime of process `pid`, in seconds (0 when it cannot be read).
pub fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the line are the 12th and 13th after the name.
    let ticks: f64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<f64>().ok()).sum();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks / hz
}

/// A `/proc/<pid>/status` line's value in MiB (`VmHWM`, `VmRSS`), if present.
pub fn memory_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Requests/s and latency quantiles of one phase, in ms.
pub struct Summary {
    pub requests: usize,
    pub rate: f64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

pub fn summary(latencies: &[Duration], duration: Duration) -> Summary {
    Summary {
        requests: latencies.len(),
        rate: latencies.len() as f64 / duration.as_secs_f64(),
        p50: percentile(latencies, 0.50),
        p99: percentile(latencies, 0.99),
        p999: percentile(latencies, 0.999),
        max: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    }
}
