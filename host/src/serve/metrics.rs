//! Prometheus text exposition (format 0.0.4) of what the server did.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    /// `name{labels}` → value.
    counters: Mutex<BTreeMap<String, u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// The loaded policy set's digest, once loaded.
    pub digest: Mutex<Option<String>>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        let key = format!("{name}{{{}}}", labels.join(","));
        if let Ok(mut c) = self.counters.lock() {
            *c.entry(key).or_insert(0) += 1;
        }
    }

    pub fn observe(&self, endpoint: &str, took: Duration) {
        let secs = took.as_secs_f64();
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(endpoint.to_string()).or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = self.counters.lock().map(|c| c.clone()).unwrap_or_default();
        let mut typed = std::collections::BTreeSet::new();
        for (key, value) in &counters {
            let name = key.split('{').next().unwrap_or(key);
            if typed.insert(name.to_string()) {
                let _ = writeln!(out, "# TYPE {name} counter");
            }
            let _ = writeln!(out, "{key} {value}");
        }
        let _ = writeln!(out, "# HELP palisade_request_duration_seconds Time to answer a request, by endpoint.");
        let _ = writeln!(out, "# TYPE palisade_request_duration_seconds histogram");
        if let Ok(l) = self.latency.lock() {
            for (endpoint, h) in l.iter() {
                let e = escape(endpoint);
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "palisade_request_duration_seconds_bucket{{endpoint=\"{e}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "palisade_request_duration_seconds_bucket{{endpoint=\"{e}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(out, "palisade_request_duration_seconds_sum{{endpoint=\"{e}\"}} {}", h.sum);
                let _ = writeln!(out, "palisade_request_duration_seconds_count{{endpoint=\"{e}\"}} {}", h.count);
            }
        }
        if let Some(d) = self.digest.lock().ok().and_then(|d| d.clone()) {
            let _ = writeln!(out, "# TYPE palisade_policy_set_info gauge");
            let _ = writeln!(out, "palisade_policy_set_info{{digest=\"{}\"}} 1", escape(&d));
        }
        out
    }
}

/// The image verifier's counters: verdict cache hits and misses, and the
/// verifications done (each miss ends in one).
pub fn render_images(m: &crate::images::Metrics) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::new();
    for (name, help, value) in [
        ("palisade_image_verification_cache_hits_total", "Verdicts answered from the cache.", m.hits.load(Relaxed)),
        ("palisade_image_verification_cache_misses_total", "Verdicts not in the cache.", m.misses.load(Relaxed)),
        ("palisade_image_verifications_total{result=\"verified\"}", "Images verified.", m.verified.load(Relaxed)),
        ("palisade_image_verifications_total{result=\"refused\"}", "Images refused.", m.refused.load(Relaxed)),
    ] {
        let base = name.split('{').next().unwrap_or(name);
        if !out.contains(&format!("# TYPE {base} ")) {
            let _ = writeln!(out, "# HELP {base} {help}");
            let _ = writeln!(out, "# TYPE {base} counter");
        }
        let _ = writeln!(out, "{name} {value}");
    }
    out
}
