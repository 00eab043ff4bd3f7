//! Prometheus text exposition (format 0.0.4) of what the server did.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::engine::Counted;

const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The endpoints that evaluate rules, as counted in `palisade_evaluations_total`.
pub const EVALUATING: [&str; 4] = ["validate", "mutate", "gatekeeper", "kyverno"];

/// `palisade_evaluations_total` and `palisade_policy_errors_total`, one atomic
/// counter per (endpoint, rule, result) and per rule, allocated once the
/// rules are known: counting takes no lock and builds no key.
pub struct Evaluations {
    rules: Vec<Arc<str>>,
    /// Index: (endpoint × rules + rule) × results + result.
    counts: Vec<AtomicU64>,
    /// Per rule.
    errors: Vec<AtomicU64>,
}

impl Evaluations {
    pub fn new(rules: Vec<Arc<str>>) -> Evaluations {
        let n = rules.len();
        Evaluations {
            counts: (0..EVALUATING.len() * n * Counted::ALL.len()).map(|_| AtomicU64::new(0)).collect(),
            errors: (0..n).map(|_| AtomicU64::new(0)).collect(),
            rules,
        }
    }

    /// One evaluation of rule `rule` (its index) on `endpoint`.
    pub fn count(&self, endpoint: &str, rule: usize, result: Counted) {
        let Some(e) = EVALUATING.iter().position(|x| *x == endpoint) else {
            return;
        };
        let r = Counted::ALL.iter().position(|x| *x == result).unwrap_or(0);
        if let Some(c) = self.counts.get((e * self.rules.len() + rule) * Counted::ALL.len() + r) {
            c.fetch_add(1, Relaxed);
        }
        if result == Counted::Error
            && let Some(c) = self.errors.get(rule)
        {
            c.fetch_add(1, Relaxed);
        }
    }

    /// The counters that are not zero, keyed as [`Metrics::inc`] keys them.
    fn merge_into(&self, counters: &mut BTreeMap<String, u64>) {
        for (e, endpoint) in EVALUATING.iter().enumerate() {
            for (i, rule) in self.rules.iter().enumerate() {
                for (r, result) in Counted::ALL.iter().enumerate() {
                    let value = self.counts[(e * self.rules.len() + i) * Counted::ALL.len() + r].load(Relaxed);
                    if value > 0 {
                        let labels = [("endpoint", *endpoint), ("rule", rule), ("result", result.as_str())];
                        *counters.entry(key("palisade_evaluations_total", &labels)).or_insert(0) += value;
                    }
                }
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let value = self.errors[i].load(Relaxed);
            if value > 0 {
                *counters.entry(key("palisade_policy_errors_total", &[("rule", rule)])).or_insert(0) += value;
            }
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    /// `name{labels}` → value.
    counters: Mutex<BTreeMap<String, u64>>,
    /// Counted apart, once the rules are loaded.
    pub evaluations: OnceLock<Evaluations>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// The loaded policy set's digest, once loaded.
    pub digest: Mutex<Option<String>>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `name{k="v",…}`, values escaped.
fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    format!("{name}{{{}}}", labels.join(","))
}

impl Metrics {
    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        let key = key(name, labels);
        if let Ok(mut c) = self.counters.lock() {
            *c.entry(key).or_insert(0) += 1;
        }
    }

    pub fn observe(&self, endpoint: &str, took: Duration) {
        let secs = took.as_secs_f64();
        if let Ok(mut l) = self.latency.lock() {
            if !l.contains_key(endpoint) {
                l.insert(endpoint.to_string(), Histogram::default());
            }
            let Some(h) = l.get_mut(endpoint) else {
                return;
            };
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
        let mut counters = self.counters.lock().map(|c| c.clone()).unwrap_or_default();
        if let Some(evaluations) = self.evaluations.get() {
            evaluations.merge_into(&mut counters);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_counters_render_as_the_keyed_counters_did() {
        let keyed = Metrics::default();
        let rule = "odd \"rule\"\\";
        keyed.inc("palisade_evaluations_total", &[("endpoint", "validate"), ("rule", rule), ("result", "error")]);
        keyed.inc("palisade_policy_errors_total", &[("rule", rule)]);
        for _ in 0..2 {
            keyed.inc("palisade_evaluations_total", &[("endpoint", "kyverno"), ("rule", "b"), ("result", "pass")]);
        }
        keyed.inc("palisade_requests_total", &[("endpoint", "validate"), ("code", "200")]);

        let counted = Metrics::default();
        let _ = counted.evaluations.set(Evaluations::new(vec![Arc::from(rule), Arc::from("b")]));
        let evaluations = counted.evaluations.get().expect("set");
        evaluations.count("validate", 0, Counted::Error);
        evaluations.count("kyverno", 1, Counted::Pass);
        evaluations.count("kyverno", 1, Counted::Pass);
        counted.inc("palisade_requests_total", &[("endpoint", "validate"), ("code", "200")]);
        assert_eq!(counted.render(), keyed.render());
        assert!(
            counted.render().contains("palisade_evaluations_total{endpoint=\"kyverno\",rule=\"b\",result=\"pass\"} 2")
        );
    }
}
