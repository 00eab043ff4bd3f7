//! The price of a rule in Python: `image-tag` as the Rust component
//! (`target/components/image-tag.wasm`) against the Python one
//! (`target/rule-python/image-tag.wasm`, from `examples/rule-python/build.sh`),
//! run by the host as `check` runs them (`--policies` and `--policies-wasi`):
//!
//! ```sh
//! examples/rule-python/build.sh
//! cargo bench -p palisade --bench second_language [-- CORPUS_DIR]
//! ```
//!
//! Prints, for each: the component's size; compiling it to native code (no
//! cache); loading that code from the cache; making an instance; the first
//! call (`describe`) and configuring the evaluator; one evaluation, the mean
//! over every object of the corpus the rule applies to (default
//! `../shared/corpus/real-world`) on one instance, and the largest of them
//! alone; and `palisade check` of one small manifest, start to end, with a
//! warm cache. `palisade bench` measures the built-in set only, hence this.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade::documents::Limits;
use palisade::evaluate::offline_context;
use palisade::inventory::Inventory;
use palisade::policy_set::{Catalog, Selection};
use palisade::resources::Resource;
use palisade::runtime::{Runtime, SandboxLimits, sha256_hex};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// The median of `rounds` runs of `f`.
fn median(rounds: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

struct Figures {
    size: usize,
    compile: Duration,
    from_cache: Duration,
    instantiate: Duration,
    first_call: Duration,
    configure: Duration,
    evaluate_mean: Duration,
    evaluate_largest: Duration,
    objects: usize,
    largest_bytes: usize,
    check: Duration,
}

fn measure(component: &Path, wasi: bool, resources: &[Resource], small: &Path) -> anyhow::Result<Figures> {
    let bytes = std::fs::read(component).map_err(|e| anyhow::anyhow!("{}: {e}", component.display()))?;
    let hex = sha256_hex(&bytes);
    let limits = SandboxLimits::default();
    let rounds = if wasi { 3 } else { 5 };
    let nocache = Runtime::new(None, limits)?;
    let compile = median(rounds, || {
        nocache.compile_opted(&bytes, &hex, wasi).map(drop).unwrap_or_else(|e| panic!("compile: {e}"));
    });

    let cache = std::env::temp_dir().join(format!("palisade-bench-2nd-{}", std::process::id()));
    let cached = Runtime::new(Some(cache.clone()), limits)?;
    cached.compile_opted(&bytes, &hex, wasi)?;
    let from_cache = median(5, || {
        let c = cached.compile_opted(&bytes, &hex, wasi).unwrap_or_else(|e| panic!("load: {e}"));
        assert!(c.cached, "not from the cache");
    });
    let _ = std::fs::remove_dir_all(&cache);

    // As `check` configures it: the hardened profile's settings.
    let runtime = Arc::new(Runtime::new(None, limits)?);
    let (plain, opted) =
        if wasi { (vec![], vec![component.to_path_buf()]) } else { (vec![component.to_path_buf()], vec![]) };
    let catalog = Catalog::load_opted(runtime.clone(), false, Vec::new(), &plain, &opted)?;
    let active = catalog
        .select(&Selection { profile: "hardened".into(), ..Selection::default() })
        .map_err(|e| anyhow::anyhow!(e.join("; ")))?;
    let policy = active.first().ok_or_else(|| anyhow::anyhow!("no active policy"))?;
    let compiled = &policy.policy.compiled;
    let inventory = Arc::new(Inventory::new(resources));
    let instantiate = median(50, || {
        runtime.instantiate(compiled, inventory.clone()).map(drop).unwrap_or_else(|e| panic!("instantiate: {e}"));
    });
    // A call on a fresh instance, the instance made outside the timing.
    let on_fresh = |call: &dyn Fn(&mut palisade::runtime::Instance)| {
        let mut times: Vec<Duration> = (0..20)
            .map(|_| {
                let mut i =
                    runtime.instantiate(compiled, inventory.clone()).unwrap_or_else(|e| panic!("instantiate: {e}"));
                let started = Instant::now();
                call(&mut i);
                started.elapsed()
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    };
    let first_call = on_fresh(&|i| {
        runtime.describe(i).map(drop).unwrap_or_else(|e| panic!("describe: {e}"));
    });
    let configure = on_fresh(&|i| {
        let _ = runtime.configure(i, &policy.settings).unwrap_or_else(|e| panic!("configure: {e}"));
    });

    let objects: Vec<&Resource> = resources.iter().filter(|r| policy.applies_to(&r.kind)).collect();
    let mut instance = runtime.instantiate(compiled, inventory.clone()).unwrap_or_else(|e| panic!("instantiate: {e}"));
    let _ = runtime.configure(&mut instance, &policy.settings).unwrap_or_else(|e| panic!("configure: {e}"));
    let mut evaluate = |r: &Resource| {
        runtime
            .evaluate(&mut instance, &r.json, &offline_context(r), None)
            .unwrap_or_else(|e| panic!("evaluate {}: {e}", r.name))
            .unwrap_or_else(|e| panic!("evaluate {}: {e}", r.name));
    };
    for r in &objects {
        evaluate(r); // warm up
    }
    let rounds = 20;
    let started = Instant::now();
    for _ in 0..rounds {
        for r in &objects {
            evaluate(r);
        }
    }
    let evaluate_mean = started.elapsed() / (rounds * objects.len().max(1)) as u32;
    let largest = objects.iter().max_by_key(|r| r.json.len()).ok_or_else(|| anyhow::anyhow!("no objects"))?;
    let largest_bytes = largest.json.len();
    let evaluate_largest = median(200, || evaluate(largest));

    let flag = if wasi { "--policies-wasi" } else { "--policies" };
    let check_cache = std::env::temp_dir().join(format!("palisade-bench-2nd-check-{}", std::process::id()));
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .env("PALISADE_CACHE_DIR", &check_cache)
            .args(["check", "--exit-zero", "--no-builtin", flag])
            .arg(component)
            .arg(small)
            .output()
            .unwrap_or_else(|e| panic!("run palisade: {e}"));
        assert!(out.status.success(), "palisade check: {}", String::from_utf8_lossy(&out.stderr));
    };
    check(); // compile into the cache
    let check = median(10, check);
    let _ = std::fs::remove_dir_all(&check_cache);

    Ok(Figures {
        size: bytes.len(),
        compile,
        from_cache,
        instantiate,
        first_call,
        configure,
        evaluate_mean,
        evaluate_largest,
        objects: objects.len(),
        largest_bytes,
        check,
    })
}

fn main() -> anyhow::Result<()> {
    let corpus = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or_else(|| root().join("../shared/corpus/real-world"), PathBuf::from);
    let rust = target_dir().join("components/image-tag.wasm");
    let python = target_dir().join("rule-python/image-tag.wasm");
    if !python.is_file() {
        anyhow::bail!("{} is missing: run examples/rule-python/build.sh first", python.display());
    }
    let loaded = palisade::check::load(&[corpus.display().to_string()], &Limits::default());
    let small = root().join("examples/insecure-deployment.yaml");
    let r = measure(&rust, false, &loaded.resources, &small)?;
    let p = measure(&python, true, &loaded.resources, &small)?;
    let ratio = |a: Duration, b: Duration| format!("{:.1}×", b.as_secs_f64() / a.as_secs_f64().max(1e-12));
    println!("image-tag, Rust (--policies) against Python (--policies-wasi); corpus {}", corpus.display());
    println!("{:<44} {:>14} {:>14} {:>8}", "", "Rust", "Python", "ratio");
    let rows = [
        ("component size", format!("{} KB", r.size / 1000), format!("{} KB", p.size / 1000), ratio_n(r.size, p.size)),
        ("compile to native code (no cache)", ms(r.compile), ms(p.compile), ratio(r.compile, p.compile)),
        ("load the native code from the cache", ms(r.from_cache), ms(p.from_cache), ratio(r.from_cache, p.from_cache)),
        ("make an instance", us(r.instantiate), us(p.instantiate), ratio(r.instantiate, p.instantiate)),
        ("first call (describe)", us(r.first_call), us(p.first_call), ratio(r.first_call, p.first_call)),
        ("configure the evaluator", us(r.configure), us(p.configure), ratio(r.configure, p.configure)),
        (
            "evaluate, mean over the corpus's objects",
            us(r.evaluate_mean),
            us(p.evaluate_mean),
            ratio(r.evaluate_mean, p.evaluate_mean),
        ),
        (
            "evaluate the largest object",
            us(r.evaluate_largest),
            us(p.evaluate_largest),
            ratio(r.evaluate_largest, p.evaluate_largest),
        ),
        ("palisade check, one manifest, warm cache", ms(r.check), ms(p.check), ratio(r.check, p.check)),
    ];
    for (what, a, b, x) in rows {
        println!("{what:<44} {a:>14} {b:>14} {x:>8}");
    }
    println!("({} objects the rule applies to; the largest, {} bytes of JSON)", r.objects, r.largest_bytes);
    Ok(())
}

fn ratio_n(a: usize, b: usize) -> String {
    format!("{:.0}×", b as f64 / (a as f64).max(1.0))
}
