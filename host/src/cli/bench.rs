//! `palisade bench`: start-up and evaluation speed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{tempfile_dir, threads};
use palisade::check;
use palisade::documents::Limits;
use palisade::policy_set::{Catalog, Selection};
use palisade::runtime::{Runtime, SandboxLimits};

/// Peak resident memory of this process, from /proc (Linux), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

pub(super) fn run(
    paths: &[String],
    profile: &str,
    rounds: usize,
    threads_arg: Option<usize>,
    source: &super::bundle::BundleArgs,
) -> anyhow::Result<u8> {
    let cache = tempfile_dir()?;
    let limits = SandboxLimits::default();
    let selection = Selection { profile: profile.to_string(), ..Selection::default() };
    // The bundle is opened (cache or registry, every digest checked, the
    // signature verified) inside each timed start, as `check --bundle` does.
    let load = |runtime: Arc<Runtime>| -> anyhow::Result<Catalog> {
        match &source.bundle {
            Some(reference) => {
                let (bundled, _) = super::bundle::load_bundle(reference, &source.verify_key, &source.registry)?;
                Catalog::load_with(runtime, false, bundled, &[])
            }
            None => Catalog::load(runtime, true, &[]),
        }
    };

    let started = Instant::now();
    let runtime = Arc::new(Runtime::new(Some(cache.clone()), limits)?);
    let catalog = load(runtime)?;
    let policies = catalog.select(&selection).map_err(|e| anyhow::anyhow!(e.join("; ")))?;
    let cold = started.elapsed();

    let mut warm = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let runtime = Arc::new(Runtime::new(Some(cache.clone()), limits)?);
        let c = load(runtime)?;
        c.select(&selection).map_err(|e| anyhow::anyhow!(e.join("; ")))?;
        warm = warm.min(started.elapsed());
    }
    let _ = std::fs::remove_dir_all(&cache);
    if let Some(reference) = &source.bundle {
        let mut open = Duration::MAX;
        let mut count = 0;
        for _ in 0..5 {
            let started = Instant::now();
            count = super::bundle::load_bundle(reference, &source.verify_key, &source.registry)?.0.len();
            open = open.min(started.elapsed());
        }
        println!(
            "bundle {reference}: {count} policies opened{} in {:.1} ms (best of 5)",
            if source.verify_key.is_empty() { "" } else { " and verified" },
            open.as_secs_f64() * 1e3
        );
    }

    let started = Instant::now();
    let loaded = check::load(paths, &Limits::default());
    let parse = started.elapsed();
    let resources = loaded.resources.clone();
    let input_errors = loaded.errors.len();
    let threads = threads(threads_arg);
    let mut best = Duration::MAX;
    let mut total = Duration::ZERO;
    let mut evaluations = 0;
    let mut findings = 0;
    for _ in 0..rounds.max(1) {
        let round = check::Loaded { files: 0, resources: resources.clone(), errors: Vec::new(), ..Default::default() };
        let started = Instant::now();
        let report = check::run(&catalog.runtime, &policies, round, &[], threads);
        let took = started.elapsed();
        best = best.min(took);
        total += took;
        evaluations = report.summary.evaluations;
        findings = report.summary.findings;
    }
    let n = resources.len() as f64;
    let secs = best.as_secs_f64();
    let sizes: usize = catalog.policies.iter().map(|p| p.compiled.size).sum();
    println!("profile {profile}: {} rules, {} KiB of components", policies.len(), sizes / 1024);
    println!("cold start (empty cache, compile all): {:>8.1} ms", cold.as_secs_f64() * 1e3);
    println!("warm start (cached, best of 5):        {:>8.1} ms", warm.as_secs_f64() * 1e3);
    println!(
        "input: {} resources from {} files ({} input errors), read in {:.1} ms",
        resources.len(),
        loaded.files,
        input_errors,
        parse.as_secs_f64() * 1e3
    );
    println!(
        "evaluation, {threads} threads, best of {rounds} (mean {:.1} ms): {:.1} ms",
        total.as_secs_f64() * 1e3 / rounds.max(1) as f64,
        secs * 1e3
    );
    println!("  {:>10.0} resources/s", n / secs);
    println!("  {:>10.0} evaluations/s ({evaluations} evaluations, {findings} findings)", evaluations as f64 / secs);
    if let Some(kib) = peak_rss_kib() {
        println!("peak resident memory: {:.1} MiB", kib as f64 / 1024.0);
    }
    Ok(0)
}
