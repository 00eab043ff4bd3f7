//! The `palisade` command line: one file per command; the steps of the data
//! path live in the library.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

mod bench;
mod build;
mod bundle;
mod check;
mod explain;
mod export;
mod new;
mod policies;
mod serve;
mod test;

use palisade::config::Config;
use palisade::policy_set::{Catalog, Selection};
use palisade::runtime::{CompileProgress, Runtime, SandboxLimits, default_cache_dir};

#[derive(Parser)]
#[command(name = "palisade", version, about = "Kubernetes hardening rules as sandboxed WebAssembly components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    /// SARIF 2.1.0 (check only).
    Sarif,
    /// JUnit XML (check only).
    Junit,
    /// OpenReports Report and ClusterReport objects, as YAML (check only).
    Report,
}

#[derive(Clone, Copy, ValueEnum)]
enum Colour {
    Auto,
    Always,
    Never,
}

#[derive(clap::Args, Clone)]
struct PolicyArgs {
    /// Extra or replacement policy components: a .wasm file or a directory of them (repeatable).
    #[arg(long = "policies", value_name = "PATH")]
    policies: Vec<PathBuf>,
    /// As --policies, for components that import WASI (built from Python or
    /// JavaScript): each runs under a WASI context that grants nothing, no
    /// files, environment, network or real clock (docs/wasi.md).
    #[arg(long = "policies-wasi", value_name = "PATH")]
    policies_wasi: Vec<PathBuf>,
    /// Print what --policies-wasi components write to stdout and stderr on
    /// standard error, each line after the rule id in brackets.
    #[arg(long)]
    policy_log: bool,
    /// Load only the components given with --policies, not the built-in ones.
    #[arg(long)]
    no_builtin: bool,
    /// Do not read or write the cache of compiled components.
    #[arg(long)]
    no_cache: bool,
    /// Execution bound of one policy call, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    policy_timeout_ms: u64,
    /// Memory limit of one policy instance, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    policy_memory_mib: usize,
    #[command(flatten)]
    source: bundle::BundleArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Check manifests against the policy set.
    Check(check::CheckArgs),
    /// List the loaded rules.
    Policies {
        /// Show only the rules of this profile.
        #[arg(long)]
        profile: Option<String>,
        /// Configuration file: severities, settings and disabled rules as a run would use them.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Print rules' full documentation and settings schema.
    Explain {
        /// Rule ids, as `palisade policies` lists them (the text report of
        /// `check` ends with this command for the rules it reported).
        #[arg(required = true)]
        rules: Vec<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Serve admission decisions over HTTPS: a Kubernetes validating webhook,
    /// a Gatekeeper external-data provider and a Kyverno apiCall service.
    Serve(serve::ServeArgs),
    /// Print the objects that wire `palisade serve` into a cluster (YAML).
    Export {
        #[command(subcommand)]
        what: export::ExportWhat,
        #[command(flatten)]
        common: export::ExportArgs,
    },
    /// Build, move, sign and verify policy bundles (OCI artifacts).
    Bundle {
        #[command(subcommand)]
        what: bundle::BundleCommand,
    },
    /// Measure start-up and evaluation speed; every figure is printed after the
    /// command line and the machine.
    Bench {
        /// Manifests to evaluate (files or directories).
        #[arg(value_name = "PATH", required = true)]
        paths: Vec<String>,
        #[arg(long, default_value = "hardened")]
        profile: String,
        /// Timed evaluation rounds over the input.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Worker threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// With --bundle, opening it (digests, signature) is timed inside each start.
        #[command(flatten)]
        source: bundle::BundleArgs,
        /// Skip the cold start (a full compile into an empty temporary cache);
        /// warm starts then use the usual compile cache.
        #[arg(long)]
        skip_cold: bool,
        /// Also print each rule's calls, time, time per call and share, per round.
        #[arg(long)]
        per_rule: bool,
    },
    /// Start a rule crate of your own: metadata, an example check, a unit test
    /// and a test suite (see docs/write-a-rule.md).
    New(new::Args),
    /// Build a rule crate into a policy component, checked against the contract.
    Build(build::Args),
    /// Run test suites: expected results of rules on objects (see docs/test-suites.md).
    Test(test::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Policies { profile, config, format, policy } => policies::run(profile, config, format, &policy),
        Command::Explain { rules, format, policy } => explain::run(&rules, format, &policy),
        Command::Serve(args) => serve::run(args),
        Command::Export { what, common } => export::run(what, common),
        Command::Bench { paths, profile, rounds, threads, source, skip_cold, per_rule } => bench::run(bench::Options {
            paths: &paths,
            profile: &profile,
            rounds,
            threads,
            source: &source,
            skip_cold,
            per_rule,
        }),
        Command::Bundle { what } => bundle::run(what),
        Command::New(args) => new::run(args),
        Command::Build(args) => build::run(args),
        Command::Test(args) => test::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "palisade: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime(args: &PolicyArgs) -> anyhow::Result<Arc<Runtime>> {
    runtime_reporting(args, compile_progress, print_policy_log)
}

/// Makes the compile progress reporter for a cache directory.
type Reporter = fn(Option<PathBuf>) -> Arc<dyn Fn(CompileProgress) + Send + Sync>;

/// [`runtime`], compiling with the progress `progress` makes for the cache
/// directory, and writing what opted-in components print with `policy_log`
/// (with `--policy-log`).
fn runtime_reporting(
    args: &PolicyArgs,
    progress: Reporter,
    policy_log: fn(&str, &palisade::wasi::Captured),
) -> anyhow::Result<Arc<Runtime>> {
    let limits = SandboxLimits {
        memory_bytes: args.policy_memory_mib << 20,
        call_timeout: Duration::from_millis(args.policy_timeout_ms.max(1)),
    };
    let cache = if args.no_cache { None } else { default_cache_dir() };
    let mut runtime = Runtime::new(cache.clone(), limits)?.with_progress(progress(cache));
    if args.policy_log {
        runtime = runtime.with_policy_log(Arc::new(policy_log));
    }
    Ok(Arc::new(runtime))
}

/// `--policy-log`: a call's output on standard error, line by line, after the rule id.
/// Control characters are escaped: what a rule prints reaches a terminal.
fn print_policy_log(rule: &str, output: &palisade::wasi::Captured) {
    let mut err = std::io::stderr().lock();
    for line in output.text.lines() {
        let shown: String = line
            .chars()
            .map(|c| if c.is_control() && c != '\t' { c.escape_default().to_string() } else { c.to_string() })
            .collect();
        let _ = writeln!(err, "[{rule}] {shown}");
    }
}

/// The progress line of compiling components to native code: seconds of
/// silence otherwise. On a terminal, one line that counts up; elsewhere (CI
/// logs) a line when it starts and one when it ends.
fn compile_progress(cache: Option<PathBuf>) -> Arc<dyn Fn(CompileProgress) + Send + Sync> {
    let terminal = std::io::stderr().is_terminal();
    let started = std::sync::Mutex::new(Instant::now());
    let once = match &cache {
        Some(dir) => format!("once; kept in {}", dir.display()),
        None => "--no-cache: every run".to_string(),
    };
    Arc::new(move |event| {
        let mut err = std::io::stderr().lock();
        let _ = match event {
            CompileProgress::Started { total } => {
                if let Ok(mut t) = started.lock() {
                    *t = Instant::now();
                }
                let plural = if total == 1 { "" } else { "s" };
                if terminal {
                    write!(err, "palisade: compiling {total} policy component{plural} to native code ({once})…")
                } else {
                    writeln!(err, "palisade: compiling {total} policy component{plural} to native code ({once})")
                }
            }
            CompileProgress::Compiled { done, total } if terminal => {
                write!(err, "\r\x1b[2Kpalisade: compiling policy components to native code ({once}): {done}/{total}")
            }
            CompileProgress::Compiled { .. } => Ok(()),
            CompileProgress::Finished { total } => {
                let secs = started.lock().map_or(0.0, |t| t.elapsed().as_secs_f64());
                let lead = if terminal { "\r\x1b[2K" } else { "" };
                let plural = if total == 1 { "" } else { "s" };
                writeln!(err, "{lead}palisade: compiled {total} policy component{plural} in {secs:.1} s ({once})")
            }
        };
    })
}

/// The policies a run starts from: a bundle's (fetched, checked against its
/// digests and contract, and verified when keys are configured), or the
/// built-in ones. Fetching happens here, before any server starts. What
/// `runtime`'s compile cache holds is not kept in memory from a layout bundle.
fn policy_sources(args: &PolicyArgs, config_keys: &[PathBuf], runtime: &Arc<Runtime>) -> anyhow::Result<Sources> {
    let keys: Vec<PathBuf> = config_keys.iter().chain(&args.source.verify_key).cloned().collect();
    if !keys.is_empty() {
        if args.source.bundle.is_none() {
            bail!(
                "signature verification is configured (verify.keys or --verify-key), and only a signed bundle can \
                 satisfy it: give --bundle REF (the built-in policies carry no signature)"
            );
        }
        if !args.policies.is_empty() || !args.policies_wasi.is_empty() {
            bail!(
                "signature verification is configured, so --policies components (which carry no signature) are refused"
            );
        }
    }
    let Some(reference) = &args.source.bundle else {
        if args.no_builtin && args.policies.is_empty() && args.policies_wasi.is_empty() {
            bail!("--no-builtin needs at least one --policies path");
        }
        return Ok(Sources { builtin: !args.no_builtin, bundled: Vec::new(), bundle: None });
    };
    let (bundled, bundle) = bundle::load_bundle(reference, &keys, &args.source.registry, runtime)?;
    Ok(Sources { builtin: false, bundled, bundle: Some(bundle) })
}

struct Sources {
    builtin: bool,
    bundled: Vec<palisade::policy_set::Bundled>,
    bundle: Option<palisade::check::PolicyBundle>,
}

fn catalog_from(args: &PolicyArgs, sources: Sources, runtime: Arc<Runtime>) -> anyhow::Result<Catalog> {
    Catalog::load_opted(runtime, sources.builtin, sources.bundled, &args.policies, &args.policies_wasi)
}

fn catalog(args: &PolicyArgs, config_keys: &[PathBuf]) -> anyhow::Result<Catalog> {
    let runtime = runtime(args)?;
    catalog_from(args, policy_sources(args, config_keys, &runtime)?, runtime)
}

/// The image verifier a run gives the policies: the configuration's trust
/// policies (keys and trusted roots read now, so a broken one stops the run
/// before any manifest is read), registries reached as `--insecure` and
/// `--registry-ca` say, fetched signatures kept under the cache directory.
fn image_verifier(
    config: &Config,
    config_path: Option<&PathBuf>,
    args: &PolicyArgs,
    requested: bool,
    offline: bool,
    layouts: &[PathBuf],
) -> anyhow::Result<Arc<palisade::images::Verifier>> {
    let registry = &args.source.registry;
    let mode = palisade::images::Mode {
        requested,
        offline,
        registry: palisade::bundle::registry::Options {
            insecure: registry.insecure,
            ca_files: registry.registry_ca.clone(),
        },
        store_dir: default_cache_dir().map(|d| d.join("images")),
        layouts: layouts.to_vec(),
    };
    let verifier = palisade::images::Verifier::new(config.image_verification.as_ref(), &config.base_dir, mode)
        .map_err(|e| {
            let origin = config_path.map(|p| format!("{}: ", p.display())).unwrap_or_default();
            anyhow::anyhow!("invalid configuration: {origin}{e}")
        })?;
    Ok(Arc::new(verifier))
}

/// What a run asks for: the configuration, with the command line's profile
/// and PSS version over it (the profile defaults to hardened).
fn selection(config: &Config, profile: Option<&String>, pss_version: Option<&String>) -> Selection {
    Selection {
        profile: profile.or(config.profile.as_ref()).cloned().unwrap_or_else(|| "hardened".into()),
        pss_version: pss_version.or(config.pss_version.as_ref()).cloned(),
        disable: config.disable.clone(),
        severity: config.severity.clone(),
        settings: config.settings.clone(),
    }
}

fn threads(requested: Option<usize>) -> usize {
    requested.filter(|n| *n > 0).unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("palisade-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
