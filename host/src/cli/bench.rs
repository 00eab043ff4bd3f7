//! `palisade bench`: start-up and evaluation speed. Every figure is on a line
//! of its own, after the command line and the machine that produced it, and
//! ends with the aim issue 16 sets for it where there is one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{tempfile_dir, threads};
use palisade::check;
use palisade::documents::Limits;
use palisade::policy_set::{ActivePolicy, Catalog, Selection};
use palisade::runtime::{Runtime, SandboxLimits, default_cache_dir};

/// What `palisade bench` was asked for.
pub(super) struct Options<'a> {
    pub paths: &'a [String],
    pub profile: &'a str,
    pub rounds: usize,
    pub threads: Option<usize>,
    pub source: &'a super::bundle::BundleArgs,
    /// Skip the cold start (a full compile into an empty cache, about 10 s);
    /// warm starts then use the usual compile cache.
    pub skip_cold: bool,
    /// Print each rule's calls and time.
    pub per_rule: bool,
}

/// Peak resident memory of this process, from /proc (Linux), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// The CPU model, from /proc/cpuinfo (Linux).
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

/// CPU time this process has used (user, system), all threads.
fn cpu_time() -> Option<(Duration, Duration)> {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return None;
        }
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Some((time(usage.ru_utime), time(usage.ru_stime)))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// 12345678 → "12,345,678".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "1 file", "2 files", "12,345 files".
fn count(n: usize, word: &str) -> String {
    format!("{} {word}{}", thousands(n as u64), if n == 1 { "" } else { "s" })
}

/// One figure on its own line: label, value, unit, then the aim if any.
fn figure(label: &str, value: String, aim: Option<&str>) {
    match aim {
        Some(aim) => println!("{label:<50} {value:>12}  (aim {aim})"),
        None => println!("{label:<50} {value:>12}"),
    }
}

fn millis(label: &str, d: Duration, aim: Option<&str>) {
    figure(label, format!("{:.1} ms", ms(d)), aim);
}

/// The command line as typed, arguments with spaces or quotes quoted.
fn command_line() -> String {
    std::env::args()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c)) {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The steps of one start, as `check` makes them.
#[derive(Clone, Copy)]
struct Start {
    runtime: Duration,
    /// Opening the bundle: every digest checked, the signature verified, the
    /// components moved out.
    bundle: Option<Duration>,
    /// Hashing, compiling or reading the cache, `describe`.
    catalog: Duration,
    /// `validate` and `configure` of the selected rules.
    select: Duration,
}

impl Start {
    fn total(&self) -> Duration {
        self.runtime + self.bundle.unwrap_or_default() + self.catalog + self.select
    }

    /// The faster of two starts, whole: its steps add up to its total.
    fn best(self, other: Start) -> Start {
        if other.total() < self.total() { other } else { self }
    }
}

fn start(
    cache: &std::path::Path,
    source: &super::bundle::BundleArgs,
    selection: &Selection,
) -> anyhow::Result<(Start, Catalog, Vec<ActivePolicy>)> {
    let t = Instant::now();
    let runtime = Arc::new(Runtime::new(Some(cache.to_path_buf()), SandboxLimits::default())?);
    let runtime_time = t.elapsed();
    let (bundled, bundle) = match &source.bundle {
        Some(reference) => {
            // The bundle is opened (cache or registry, every digest checked,
            // the signature verified) inside each start, as `check --bundle` does.
            let t = Instant::now();
            let (bundled, _) = super::bundle::load_bundle(reference, &source.verify_key, &source.registry, &runtime)?;
            (Some(bundled), Some(t.elapsed()))
        }
        None => (None, None),
    };
    let t = Instant::now();
    let catalog = match bundled {
        Some(bundled) => Catalog::load_with(runtime, false, bundled, &[])?,
        None => Catalog::load(runtime, true, &[])?,
    };
    let catalog_time = t.elapsed();
    let t = Instant::now();
    let policies = catalog.select(selection).map_err(|e| anyhow::anyhow!(e.join("; ")))?;
    let select = t.elapsed();
    Ok((Start { runtime: runtime_time, bundle, catalog: catalog_time, select }, catalog, policies))
}

pub(super) fn run(options: Options) -> anyhow::Result<u8> {
    let Options { paths, profile, rounds, threads: threads_arg, source, skip_cold, per_rule } = options;
    let rounds = rounds.max(1);
    let threads = threads(threads_arg);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("$ {}", command_line());
    println!(
        "machine: {cores} cores, {}; palisade {}",
        cpu_model().unwrap_or_else(|| "CPU model unknown".into()),
        env!("CARGO_PKG_VERSION")
    );

    let selection = Selection { profile: profile.to_string(), ..Selection::default() };
    let mut cold = None;
    let usual = default_cache_dir().filter(|_| skip_cold);
    let temporary = usual.is_none();
    let cache: PathBuf = match usual {
        Some(dir) => dir,
        None => tempfile_dir()?,
    };
    if !skip_cold {
        cold = Some(start(&cache, source, &selection)?.0);
    }
    // Without a cold start the cache may still be empty: fill it, untimed.
    let (mut warm, catalog, policies) = start(&cache, source, &selection)?;
    for _ in 0..5 {
        warm = warm.best(start(&cache, source, &selection)?.0);
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&cache);
    }

    let inactive: Vec<&ActivePolicy> = policies.iter().filter(|p| p.inactive.is_some()).collect();
    let origin = match &source.bundle {
        Some(reference) => format!("profile {profile}, bundle {reference}"),
        None => format!("profile {profile}"),
    };
    if inactive.is_empty() {
        println!("rules: {} rules ({origin}), all active", policies.len());
    } else {
        println!(
            "rules: {} rules ({origin}), {} active, {} inactive:",
            policies.len(),
            policies.len() - inactive.len(),
            inactive.len()
        );
        for p in &inactive {
            println!("  inactive: {}: {}", p.id(), p.inactive.as_deref().unwrap_or_default());
        }
    }
    let sizes: usize = catalog.policies.iter().map(|p| p.compiled.size).sum();
    figure("components in the catalog", format!("{} KiB", thousands((sizes / 1024) as u64)), None);

    let bundled = source.bundle.is_some();
    if let Some(cold) = cold {
        millis("cold start (empty cache, compile all)", cold.total(), None);
    }
    // The best of 5 starts, and that start's steps.
    let warm_label = if bundled { "warm start from bundle (best of 5)" } else { "warm start (cached, best of 5)" };
    millis(warm_label, warm.total(), bundled.then_some("≤ 15 ms"));
    millis("  Runtime::new", warm.runtime, None);
    if let Some(bundle) = warm.bundle {
        let verified = if source.verify_key.is_empty() { "" } else { ", signature verified" };
        millis(&format!("  bundle open (digests checked{verified}, components read)"), bundle, None);
    }
    millis("  catalog load (hash, compiled code, describe)", warm.catalog, None);
    millis("  select (validate, configure)", warm.select, None);

    let started = Instant::now();
    let loaded = check::load(paths, &Limits::default());
    let read = started.elapsed();
    let resources = loaded.resources.clone();
    println!(
        "input: {} from {}, {}",
        count(resources.len(), "resource"),
        count(loaded.files, "file"),
        count(loaded.errors.len(), "input error")
    );
    millis("input read", read, None);

    let mut best = Duration::MAX;
    let mut best_timing = check::Timing::default();
    let mut total = Duration::ZERO;
    let mut per_policy: Vec<(usize, Duration)> = vec![(0, Duration::ZERO); policies.len()];
    let mut last = None;
    let cpu_before = cpu_time();
    for _ in 0..rounds {
        // Fresh YAML indexes each round, as a one-shot `check` has: a clone
        // would share the index the first round built, and locate for free.
        let round = check::Loaded {
            files: 0,
            resources: palisade::resources::unlocated_copies(&resources),
            errors: Vec::new(),
            ..Default::default()
        };
        let started = Instant::now();
        let report = check::run(&catalog.runtime, &policies, round, &[], threads);
        let took = started.elapsed();
        if took < best {
            best = took;
            best_timing = report.timing.clone();
        }
        total += took;
        for (sum, t) in per_policy.iter_mut().zip(&report.timing.per_policy) {
            sum.0 += t.calls;
            sum.1 += t.time;
        }
        last = Some(report);
    }
    let cpu_after = cpu_time();
    let Some(report) = last else {
        anyhow::bail!("no evaluation round ran");
    };

    println!(
        "evaluation: {} of check on {} (inventory, rules, findings, report)",
        count(rounds, "round"),
        count(threads, "thread")
    );
    millis("round, best", best, None);
    millis("round, mean", total / rounds as u32, None);
    let secs = best.as_secs_f64();
    let resource_aim = match profile {
        "restricted" => Some("≥ 25,000/s with --profile restricted on ../shared/corpus/pss"),
        "hardened" => Some("≥ 15,000/s, whole default set on ../shared/corpus/real-world"),
        _ => None,
    };
    let evaluations = report.summary.evaluations;
    figure("resources/s (best round)", thousands((resources.len() as f64 / secs) as u64), resource_aim);
    figure("evaluations/s (best round)", thousands((evaluations as f64 / secs) as u64), None);
    figure("evaluations per round", thousands(evaluations as u64), None);
    figure("findings per round", thousands(report.summary.findings as u64), None);
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for checked in &report.resources {
        if !checked.rules.is_empty() {
            *by_kind.entry(checked.resource.kind.as_str()).or_default() += checked.rules.len();
        }
    }
    let mut by_kind: Vec<(&str, usize)> = by_kind.into_iter().collect();
    by_kind.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = by_kind.iter().take(12).map(|(k, n)| format!("{k} {}", thousands(*n as u64))).collect();
    let more = by_kind.len().saturating_sub(shown.len());
    println!(
        "  evaluations by kind: {}{}",
        shown.join(", "),
        if more > 0 { format!(", and {more} kinds more") } else { String::new() }
    );

    println!("phases of the best round:");
    let workers = best_timing.evaluate;
    let calls: Duration = best_timing.per_policy.iter().map(|t| t.time).sum();
    millis("  inventory and setup", best.saturating_sub(workers + best_timing.report), None);
    millis(&format!("  workers, wall ({})", count(threads, "thread")), workers, None);
    millis("    inside rule calls, summed over threads", calls, None);
    millis("  report (sort, exceptions, summary)", best_timing.report, None);

    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let user = after.0.saturating_sub(before.0);
        let system = after.1.saturating_sub(before.1);
        let busy = (user + system).as_secs_f64() / total.as_secs_f64().max(1e-9);
        figure("CPU over the rounds", format!("{busy:.2} of {cores} cores busy"), None);
        println!(
            "  (user {:.2} s, system {:.2} s in {:.2} s)",
            user.as_secs_f64(),
            system.as_secs_f64(),
            total.as_secs_f64()
        );
    }

    if per_rule {
        let sum: Duration = per_policy.iter().map(|(_, t)| *t).sum();
        let mut rows: Vec<(&str, usize, Duration)> =
            policies.iter().zip(&per_policy).map(|(p, &(calls, time))| (p.id(), calls, time)).collect();
        rows.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
        println!("per rule, per round (time inside the rule's calls, instantiation included, all threads):");
        println!("  {:<34} {:>10} {:>10} {:>10} {:>7}", "rule", "calls", "total ms", "µs/call", "share");
        let idle: Vec<&str> = rows.iter().filter(|r| r.1 == 0).map(|r| r.0).collect();
        for (id, calls, time) in rows.into_iter().filter(|r| r.1 > 0) {
            let per_call = if calls == 0 { 0.0 } else { time.as_secs_f64() * 1e6 / calls as f64 };
            let share = if sum.is_zero() { 0.0 } else { time.as_secs_f64() * 100.0 / sum.as_secs_f64() };
            println!(
                "  {id:<34} {:>10} {:>10.2} {per_call:>10.1} {share:>6.1}%",
                thousands((calls / rounds) as u64),
                ms(time) / rounds as f64,
            );
        }
        if !idle.is_empty() {
            println!("  no calls ({}): {}", idle.len(), idle.join(" "));
        }
    }

    if let Some(kib) = peak_rss_kib() {
        figure("peak resident memory", format!("{:.1} MiB", kib as f64 / 1024.0), None);
    }
    Ok(0)
}
