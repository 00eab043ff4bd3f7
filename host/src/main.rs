//! The `palisade` command line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

mod bundle_cli;

use palisade::check;
use palisade::config::Config;
use palisade::documents::Limits;
use palisade::policy_set::{Catalog, Selection};
use palisade::report;
use palisade::runtime::{CompileProgress, Runtime, SandboxLimits, default_cache_dir};
use palisade::severity::Severity;

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
    source: bundle_cli::BundleArgs,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Files or directories of manifests (.yaml, .yml, .json); `-` reads standard input.
    #[arg(value_name = "PATH", required_unless_present_any = ["explain_config", "helm"])]
    paths: Vec<String>,
    /// Render this Helm chart with `helm template` (the `helm` on PATH) and check
    /// the output; every finding names its template.
    #[arg(long, value_name = "CHART", conflicts_with = "pin")]
    helm: Option<String>,
    /// With --helm: a values file (repeatable, as helm's -f).
    #[arg(long = "values", value_name = "FILE", requires = "helm")]
    helm_values: Vec<PathBuf>,
    /// With --helm: set a value (repeatable, as helm's --set).
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "helm")]
    helm_set: Vec<String>,
    /// With --helm: the release name.
    #[arg(long, value_name = "NAME", requires = "helm", default_value = "release")]
    release: String,
    /// With --helm: the namespace to render into.
    #[arg(long, value_name = "NAMESPACE", requires = "helm")]
    namespace: Option<String>,
    /// Print the effective configuration (rules, severities, settings, exceptions) and exit.
    #[arg(long)]
    explain_config: bool,
    /// Which rules to run: baseline, restricted or hardened (default: hardened).
    #[arg(long)]
    profile: Option<String>,
    /// Pod Security Standards version: latest or vX.Y (default: latest).
    #[arg(long, value_name = "VERSION")]
    pss_version: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Lowest severity that makes the run fail with exit code 1 (default: low).
    #[arg(long, value_name = "SEVERITY")]
    fail_on: Option<Severity>,
    /// Exit 0 even when there are findings (errors still exit 2).
    #[arg(long)]
    exit_zero: bool,
    /// Configuration file (YAML): profile, disabled rules, severities, settings.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long, value_enum, default_value = "auto")]
    color: Colour,
    /// Verify every workload image's signature under the configuration's trust
    /// policies (`imageVerification`): resolve tags and fetch signatures from the
    /// registries (--insecure, --registry-ca and Docker credentials apply).
    #[arg(long)]
    verify_images: bool,
    /// With --verify-images: use only the signatures an earlier online run kept in
    /// the cache (air-gapped CI); an image never fetched is a finding, not a pass.
    #[arg(long, requires = "verify_images")]
    offline: bool,
    /// With --offline: an image saved with `cosign save` (an OCI image layout,
    /// directory or tar), with its signatures and attestations; images
    /// referenced by that digest verify from it. Repeatable.
    #[arg(long, value_name = "DIR", requires = "offline")]
    image_layout: Vec<PathBuf>,
    /// With --verify-images: write the manifests back with every image that
    /// verified pinned to the digest that verified (`name:tag@sha256:…`), every
    /// other byte unchanged; to standard output as one YAML stream (`---` between
    /// inputs; the report then goes to standard error), or under --output.
    #[arg(long, requires = "verify_images")]
    pin: bool,
    /// With --pin: write the pinned manifests under DIR, at their input paths
    /// (standard input as `stdin.yaml`), instead of to standard output.
    #[arg(long, value_name = "DIR", requires = "pin")]
    output: Option<PathBuf>,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8443")]
    addr: String,
    /// PEM certificate chain; re-read when the file changes.
    #[arg(long, value_name = "FILE")]
    tls_cert: PathBuf,
    /// PEM private key; re-read when the file changes.
    #[arg(long, value_name = "FILE")]
    tls_key: PathBuf,
    /// PEM CA bundle: require client certificates signed by it (mutual TLS).
    #[arg(long, value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// Configuration file: profile, rules, settings, and `admission:` modes and exemptions.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Which rules to run: baseline, restricted or hardened (default: hardened).
    #[arg(long)]
    profile: Option<String>,
    /// Pod Security Standards version: latest or vX.Y (default: latest).
    #[arg(long, value_name = "VERSION")]
    pss_version: Option<String>,
    /// Requests evaluated at once; more wait, up to the request deadline.
    #[arg(long, default_value_t = 64)]
    max_concurrency: usize,
    /// Deadline of one request, in milliseconds (keep it below the webhook's timeoutSeconds);
    /// past it the request gets 500 and its evaluation is interrupted.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    request_timeout_ms: u64,
    /// The TLS handshake, and each request's headers from their first byte, must arrive
    /// within this; otherwise the connection is closed.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    header_read_timeout_ms: u64,
    /// A request's whole body must arrive within this; otherwise 408 and the connection is closed.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    body_read_timeout_ms: u64,
    /// A kept-alive connection with no request for this long is closed.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    idle_timeout_ms: u64,
    /// Connections open at once; more are closed as soon as they are accepted
    /// (counted in palisade_connections_refused_total).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    max_connections: usize,
    /// Request bodies all connections together may hold in memory, in MiB (at least 3);
    /// past it, reading waits (and the body timeout runs).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    max_body_buffer_mib: usize,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(clap::Args)]
struct ExportArgs {
    /// Name of the server's objects (Service, Deployment, webhook, provider, policy).
    #[arg(long, global = true, default_value = "palisade")]
    name: String,
    /// Namespace the server runs in.
    #[arg(long, global = true, default_value = "palisade")]
    namespace: String,
    /// PEM of the CA that signed the server's certificate (put in caBundle).
    #[arg(long, global = true, value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
    /// Configuration the server will use: its rules decide which kinds are sent to it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Profile the server will run (default: hardened).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// The bundle the server will run (`serve --bundle`): its rules decide which kinds are sent to it.
    #[arg(long, global = true, value_name = "REF")]
    bundle: Option<String>,
    /// Reach the bundle's registry over plain HTTP.
    #[arg(long, global = true)]
    insecure: bool,
    /// A PEM certificate authority to trust for the bundle's registry (repeatable).
    #[arg(long, global = true, value_name = "FILE")]
    registry_ca: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum ExportWhat {
    /// Namespace, ServiceAccount, Deployment, Service, PodDisruptionBudget,
    /// NetworkPolicy and the ValidatingWebhookConfiguration.
    Webhook {
        /// The server's container image, pinned by digest (name:tag@sha256:...).
        #[arg(long)]
        image: String,
        /// The webhook's timeoutSeconds (1-30); the server answers a second before.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=30))]
        timeout_seconds: u32,
        /// Secret (kubernetes.io/tls) holding the server's certificate.
        #[arg(long, default_value = "palisade-tls")]
        tls_secret: String,
        /// namespace/name of a cert-manager Certificate whose CA cert-manager injects as caBundle.
        #[arg(long, value_name = "NAMESPACE/NAME")]
        cert_manager_certificate: Option<String>,
    },
    /// Gatekeeper Provider, ConstraintTemplate and Constraint.
    Gatekeeper {
        /// deny, warn or dryrun.
        #[arg(long, default_value = "deny", value_parser = ["deny", "warn", "dryrun"])]
        enforcement_action: String,
        /// Provider timeout in seconds.
        #[arg(long, default_value_t = 3)]
        timeout_seconds: u32,
    },
    /// Kyverno ClusterPolicy calling the server with apiCall.
    Kyverno {
        /// Enforce or Audit.
        #[arg(long, default_value = "Enforce", value_parser = ["Enforce", "Audit"])]
        failure_action: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Check manifests against the policy set.
    Check(CheckArgs),
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
    Serve(ServeArgs),
    /// Print the objects that wire `palisade serve` into a cluster (YAML).
    Export {
        #[command(subcommand)]
        what: ExportWhat,
        #[command(flatten)]
        common: ExportArgs,
    },
    /// Build, move, sign and verify policy bundles (OCI artifacts).
    Bundle {
        #[command(subcommand)]
        what: bundle_cli::BundleCommand,
    },
    /// Measure start-up and evaluation speed.
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
        source: bundle_cli::BundleArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => run_check(args),
        Command::Policies { profile, config, format, policy } => run_policies(profile, config, format, &policy),
        Command::Explain { rules, format, policy } => run_explain(&rules, format, &policy),
        Command::Serve(args) => run_serve(args),
        Command::Export { what, common } => run_export(what, common),
        Command::Bench { paths, profile, rounds, threads, source } => {
            run_bench(&paths, &profile, rounds, threads, &source)
        }
        Command::Bundle { what } => bundle_cli::run(what),
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
    runtime_reporting(args, compile_progress)
}

/// Makes the compile progress reporter for a cache directory.
type Reporter = fn(Option<PathBuf>) -> Arc<dyn Fn(CompileProgress) + Send + Sync>;

/// [`runtime`], compiling with the progress `progress` makes for the cache directory.
fn runtime_reporting(args: &PolicyArgs, progress: Reporter) -> anyhow::Result<Arc<Runtime>> {
    let limits = SandboxLimits {
        memory_bytes: args.policy_memory_mib << 20,
        call_timeout: Duration::from_millis(args.policy_timeout_ms.max(1)),
    };
    let cache = if args.no_cache { None } else { default_cache_dir() };
    Ok(Arc::new(Runtime::new(cache.clone(), limits)?.with_progress(progress(cache))))
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
/// built-in ones. Fetching happens here, before any server starts.
fn policy_sources(args: &PolicyArgs, config_keys: &[PathBuf]) -> anyhow::Result<Sources> {
    let keys: Vec<PathBuf> = config_keys.iter().chain(&args.source.verify_key).cloned().collect();
    if !keys.is_empty() {
        if args.source.bundle.is_none() {
            bail!(
                "signature verification is configured (verify.keys or --verify-key), and only a signed bundle can \
                 satisfy it: give --bundle REF (the built-in policies carry no signature)"
            );
        }
        if !args.policies.is_empty() {
            bail!(
                "signature verification is configured, so --policies components (which carry no signature) are refused"
            );
        }
    }
    let Some(reference) = &args.source.bundle else {
        if args.no_builtin && args.policies.is_empty() {
            bail!("--no-builtin needs at least one --policies path");
        }
        return Ok(Sources { builtin: !args.no_builtin, bundled: Vec::new(), bundle: None });
    };
    let (bundled, bundle) = bundle_cli::load_bundle(reference, &keys, &args.source.registry)?;
    Ok(Sources { builtin: false, bundled, bundle: Some(bundle) })
}

struct Sources {
    builtin: bool,
    bundled: Vec<palisade::policy_set::Bundled>,
    bundle: Option<palisade::check::PolicyBundle>,
}

fn catalog_from(args: &PolicyArgs, sources: Sources) -> anyhow::Result<Catalog> {
    Catalog::load_with(runtime(args)?, sources.builtin, sources.bundled, &args.policies)
}

fn catalog(args: &PolicyArgs, config_keys: &[PathBuf]) -> anyhow::Result<Catalog> {
    catalog_from(args, policy_sources(args, config_keys)?)
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

fn run_check(args: CheckArgs) -> anyhow::Result<u8> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let selection = selection(&config, args.profile.as_ref(), args.pss_version.as_ref());
    let fail_on = args.fail_on.or(config.fail_on).unwrap_or(Severity::Low);
    let images = image_verifier(
        &config,
        args.config.as_ref(),
        &args.policy,
        args.verify_images,
        args.offline,
        &args.image_layout,
    )?;
    let sources = policy_sources(&args.policy, &config.verify.keys)?;
    let bundle = sources.bundle.clone();
    let catalog = catalog_from(&args.policy, sources)?;
    catalog.runtime.set_images(images);
    let (policies, mut errors) = match catalog.select(&selection) {
        Ok(policies) => (policies, Vec::new()),
        Err(errors) => (Vec::new(), errors),
    };
    errors.extend(palisade::exceptions::validate(
        &config.exceptions,
        |id| catalog.get(id).is_some(),
        |id| catalog.did_you_mean(id),
    ));
    if !errors.is_empty() {
        let origin = args.config.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default();
        bail!("invalid configuration:\n  {origin}{}", errors.join(&format!("\n  {origin}")));
    }
    if args.explain_config {
        let text = explain_config(&selection, fail_on, &policies, &config, args.format);
        std::io::stdout().write_all(text.as_bytes()).context("writing the configuration")?;
        return Ok(0);
    }
    let mut texts = Vec::new();
    let rendered = match &args.helm {
        Some(chart) => {
            let chart = palisade::helm::Chart {
                chart: chart.clone(),
                release: args.release.clone(),
                namespace: args.namespace.clone(),
                values: args.helm_values.clone(),
                set: args.helm_set.clone(),
            };
            // Helm's own errors stop the run: nothing was checked.
            let text = palisade::helm::render(&chart).map_err(|e| anyhow::anyhow!("{}: {e}", chart.chart))?;
            vec![(format!("helm template {}", chart.chart), Ok(text))]
        }
        None => Vec::new(),
    };
    let loaded = check::load_all(&args.paths, rendered, &Limits::default(), &mut |source, text| {
        if args.pin {
            texts.push((source.clone(), text.to_string()));
        }
    });
    let mut report = check::run(&catalog.runtime, &policies, loaded, &config.exceptions, threads(args.threads));
    report.policy_bundle = bundle;
    if args.pin {
        // After the run: every verdict is in the verifier's cache.
        write_pinned(&catalog.runtime.images(), &texts, args.output.as_deref())?;
    }
    let text = match args.format {
        Format::Json => report::json(&report),
        Format::Sarif => report::sarif(&report, &policies),
        Format::Junit => report::junit(&report),
        Format::Report => report::openreports(&report),
        Format::Text => {
            let colour = match args.color {
                Colour::Always => true,
                Colour::Never => false,
                Colour::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            };
            let mut text = report::text(&report, colour);
            if let Some(bundle) = &report.policy_bundle {
                text.push_str(&format!("policies from {}", bundle.pinned));
                if let Some(key) = &bundle.verified_by {
                    text.push_str(&format!(", signature verified with {key}"));
                }
                text.push('\n');
            }
            text
        }
    };
    if args.pin && args.output.is_none() {
        // Standard output carries the manifests.
        std::io::stderr().lock().write_all(text.as_bytes()).context("writing the report")?;
    } else {
        std::io::stdout().lock().write_all(text.as_bytes()).context("writing the report")?;
    }
    let code = report.exit_code(fail_on);
    Ok(if args.exit_zero && code == 1 { 0 } else { code as u8 })
}

/// `check --pin`: each input's text with its verified images pinned
/// ([`palisade::pin::pin_text`]), to standard output or under `output`; a
/// note on standard error for each image that could not be edited in place.
fn write_pinned(
    images: &palisade::images::Verifier,
    texts: &[(palisade::input::InputSource, String)],
    output: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use palisade::input::InputSource;
    use palisade::pin::SkipReason;
    // Under --output each input keeps its path: two that would land on one
    // file are refused before anything is written.
    let target = |source: &InputSource| -> Option<PathBuf> {
        let dir = output?;
        Some(dir.join(match source {
            InputSource::Stdin => PathBuf::from("stdin.yaml"),
            InputSource::File(path) => {
                path.components().filter(|c| matches!(c, std::path::Component::Normal(_))).collect()
            }
        }))
    };
    let mut seen = std::collections::BTreeMap::new();
    for (source, _) in texts {
        if let Some(t) = target(source)
            && let Some(earlier) = seen.insert(t.clone(), source.display_name())
        {
            bail!(
                "--output: {} and {} would both be written to {}; run them separately",
                earlier,
                source.display_name(),
                t.display()
            );
        }
    }
    let mut stdout = std::io::stdout().lock();
    for (n, (source, text)) in texts.iter().enumerate() {
        let pinned = palisade::pin::pin_text(text, &mut |site, _document| {
            images.pin_digest(&site.image, site.namespace.as_deref(), None)
        });
        let name = source.display_name();
        for s in &pinned.skipped {
            if !matches!(s.reason, SkipReason::NoDigest) {
                eprintln!("palisade: note: {name}:{}: {} not pinned: {}", s.line, s.pointer, s.reason);
            }
        }
        match target(source) {
            None => {
                // One YAML stream: the inputs as documents, each ending its last line.
                let mut out = String::new();
                if n > 0 {
                    out.push_str("---\n");
                }
                out.push_str(&pinned.text);
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                stdout.write_all(out.as_bytes()).context("writing the pinned manifests")?;
            }
            Some(target) => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::write(&target, pinned.text.as_bytes())
                    .with_context(|| format!("writing {}", target.display()))?;
            }
        }
    }
    Ok(())
}

/// The configuration file and the files it names (trusted roots, keys), for
/// the server in the cluster: paths must be relative to the configuration file.
fn config_files(path: &std::path::Path, config: &Config) -> anyhow::Result<palisade::export::ConfigFiles> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut named: Vec<&std::path::Path> = config.verify.keys.iter().map(PathBuf::as_path).collect();
    if let Some(iv) = &config.image_verification {
        named.extend(iv.trusted_root.iter().map(PathBuf::as_path));
        named.extend(iv.policies.iter().flat_map(|p| p.keys.iter().map(PathBuf::as_path)));
    }
    let mut files: Vec<(String, String)> = Vec::new();
    for file in named {
        let normal = file.components().all(|c| matches!(c, std::path::Component::Normal(_)));
        if !normal {
            bail!(
                "{}: {} must be a path below the configuration file's directory to be carried into the cluster",
                path.display(),
                file.display()
            );
        }
        let relative = file.to_string_lossy().into_owned();
        if files.iter().any(|(p, _)| *p == relative) {
            continue;
        }
        let full = config.base_dir.join(file);
        let content = std::fs::read_to_string(&full)
            .with_context(|| format!("{}: cannot read {}", path.display(), full.display()))?;
        files.push((relative, content));
    }
    Ok(palisade::export::ConfigFiles { config: text, files })
}

fn run_export(what: ExportWhat, common: ExportArgs) -> anyhow::Result<u8> {
    use palisade::export;
    let config = match &common.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let selection = selection(&config, common.profile.as_ref(), None);
    // Export reads the rules' metadata only and runs nothing, so a bundle is
    // not verified here (`serve` verifies what it runs).
    let catalog = catalog(
        &PolicyArgs {
            policies: Vec::new(),
            no_builtin: false,
            no_cache: false,
            policy_timeout_ms: 1000,
            policy_memory_mib: 64,
            source: bundle_cli::BundleArgs {
                bundle: common.bundle.clone(),
                verify_key: Vec::new(),
                registry: bundle_cli::RegistryArgs {
                    insecure: common.insecure,
                    registry_ca: common.registry_ca.clone(),
                },
            },
        },
        &[],
    )?;
    let policies =
        catalog.select(&selection).map_err(|e| anyhow::anyhow!("invalid configuration:\n  {}", e.join("\n  ")))?;
    let ca_bundle = match &common.ca_bundle {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read the CA bundle", path.display()))?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                bail!("{}: not a PEM certificate", path.display());
            }
            Some(pem)
        }
        None => None,
    };
    let target = export::Target { name: common.name, namespace: common.namespace, ca_bundle };
    let objects = match what {
        ExportWhat::Webhook { image, timeout_seconds, tls_secret, cert_manager_certificate } => {
            if target.ca_bundle.is_none() && cert_manager_certificate.is_none() {
                bail!(
                    "the API server must trust the server: give --ca-bundle FILE or --cert-manager-certificate NAMESPACE/NAME"
                );
            }
            if !image.contains("@sha256:") {
                eprintln!("palisade: warning: --image {image} is not pinned by digest (image-digest will report it)");
            }
            let trust = config.image_verification.as_ref().filter(|c| !c.policies.is_empty());
            let config_files = match &common.config {
                Some(path) => Some(config_files(path, &config)?),
                None => None,
            };
            let webhook = export::Webhook {
                target,
                image,
                timeout_seconds,
                cert_manager_certificate,
                tls_secret,
                verifies_images: trust.is_some(),
                mutate_digest: trust.is_some_and(|c| c.mutate_digest.unwrap_or(true)),
                config: config_files,
            };
            export::webhook(&webhook, &policies)
        }
        ExportWhat::Gatekeeper { enforcement_action, timeout_seconds } => {
            if target.ca_bundle.is_none() {
                bail!("Gatekeeper only calls providers over HTTPS with a CA bundle: give --ca-bundle FILE");
            }
            export::gatekeeper(&export::Gatekeeper { target, enforcement_action, timeout_seconds }, &policies)
        }
        ExportWhat::Kyverno { failure_action } => {
            export::kyverno(&export::Kyverno { target, failure_action }, &policies)
        }
    };
    let mut out = String::new();
    for o in &objects {
        out.push_str(&palisade::documents::to_yaml(o));
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(0)
}

/// `palisade serve`: every line it writes is JSON, an error that stops it from starting too.
fn run_serve(args: ServeArgs) -> anyhow::Result<u8> {
    match serve(args) {
        Ok(()) => Ok(0),
        Err(e) => {
            palisade::serve::log_fatal(&e);
            Ok(2)
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let options = palisade::serve::Options {
        addr: args.addr.clone(),
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        client_ca: args.client_ca.clone(),
        max_concurrency: args.max_concurrency,
        request_timeout: Duration::from_millis(args.request_timeout_ms.max(1)),
        connections: palisade::serve::ConnectionLimits {
            header_read_timeout: Duration::from_millis(args.header_read_timeout_ms.max(1)),
            body_read_timeout: Duration::from_millis(args.body_read_timeout_ms.max(1)),
            idle_timeout: Duration::from_millis(args.idle_timeout_ms.max(1)),
            max_connections: args.max_connections.max(1),
            max_body_buffer: args.max_body_buffer_mib.saturating_mul(1 << 20),
        },
    };
    let images = image_verifier(&config, args.config.as_ref(), &args.policy, true, false, &[])?;
    let sources = policy_sources(&args.policy, &config.verify.keys)?;
    let load = move || -> anyhow::Result<palisade::serve::engine::Engine> {
        let selection = selection(&config, args.profile.as_ref(), args.pss_version.as_ref());
        // Compiling is logged as the server's other lines are: JSON.
        let runtime = runtime_reporting(&args.policy, palisade::serve::log::compile_progress)?;
        let catalog = Catalog::load_with(runtime, sources.builtin, sources.bundled, &args.policy.policies)?;
        catalog.runtime.set_images(images);
        let (policies, mut errors) = match catalog.select(&selection) {
            Ok(policies) => (policies, Vec::new()),
            Err(errors) => (Vec::new(), errors),
        };
        for id in config.admission.rules.keys() {
            if catalog.get(id).is_none() {
                errors.push(format!("admission.rules.{id}: no rule with this id{}", catalog.did_you_mean(id)));
            }
        }
        if !errors.is_empty() {
            bail!("invalid configuration:\n  {}", errors.join("\n  "));
        }
        Ok(palisade::serve::engine::Engine::new(catalog.runtime.clone(), policies, config.admission.clone()))
    };
    palisade::serve::run(options, load)
}

/// The configuration a run would use, after profiles, files and flags.
fn explain_config(
    selection: &Selection,
    fail_on: Severity,
    policies: &[palisade::policy_set::ActivePolicy],
    config: &Config,
    format: Format,
) -> String {
    let exceptions: Vec<serde_json::Value> = config
        .exceptions
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let expired = e
                .expires
                .as_deref()
                .and_then(palisade::exceptions::Date::parse)
                .is_some_and(|d| d < palisade::exceptions::Date::today());
            serde_json::json!({
                "index": i, "rules": e.rules, "kinds": e.kinds, "namespaces": e.namespaces, "names": e.names,
                "selector": e.selector.as_ref().map(|s| serde_json::json!({"matchLabels": s.match_labels, "matchExpressions": s.match_expressions.iter().map(|r| serde_json::json!({"key": r.key, "operator": r.operator, "values": r.values})).collect::<Vec<_>>()})),
                "containers": e.containers, "images": e.images, "reason": e.reason, "expires": e.expires,
                "status": if expired { "expired" } else { "active" },
            })
        })
        .collect();
    let rules: Vec<serde_json::Value> = policies
        .iter()
        .map(|p| {
            serde_json::json!({
                "id": p.id(), "severity": p.severity,
                "settings": serde_json::from_str::<serde_json::Value>(&p.settings).unwrap_or_default(),
                "inactive": p.inactive,
            })
        })
        .collect();
    let value = serde_json::json!({
        "profile": selection.profile,
        "pssVersion": selection.pss_version.clone().unwrap_or_else(|| "latest".into()),
        "failOn": fail_on,
        "disabled": selection.disable,
        "rules": rules,
        "exceptions": exceptions,
    });
    if format == Format::Json {
        return serde_json::to_string_pretty(&value).unwrap_or_default() + "\n";
    }
    let mut s = String::new();
    s.push_str(&format!("profile:     {}\n", selection.profile));
    s.push_str(&format!("pssVersion:  {}\n", value["pssVersion"].as_str().unwrap_or("latest")));
    s.push_str(&format!("failOn:      {fail_on}\n"));
    if !selection.disable.is_empty() {
        s.push_str(&format!("disabled:    {}\n", selection.disable.join(", ")));
    }
    s.push_str(&format!("rules ({}):\n", policies.len()));
    let width = policies.iter().map(|p| p.id().len()).max().unwrap_or(0);
    for p in policies {
        let note = p.inactive.as_ref().map(|n| format!("  ({n})")).unwrap_or_default();
        s.push_str(&format!("  {:width$}  {:8}  {}{note}\n", p.id(), p.severity.as_str(), p.settings));
    }
    if !exceptions.is_empty() {
        s.push_str("exceptions:\n");
        for e in &exceptions {
            s.push_str(&format!("  {}  [{}] {}\n", e["index"], e["status"].as_str().unwrap_or(""), e));
        }
    }
    s
}

fn run_policies(
    profile: Option<String>,
    config_path: Option<PathBuf>,
    format: Format,
    args: &PolicyArgs,
) -> anyhow::Result<u8> {
    let config = match &config_path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(name) = &profile
        && !palisade::policy_set::PROFILES.contains(&name.as_str())
    {
        bail!("unknown profile {name:?}");
    }
    let images = image_verifier(&config, config_path.as_ref(), args, false, false, &[])?;
    let catalog = catalog(args, &config.verify.keys)?;
    catalog.runtime.set_images(images);
    // Configure every listed rule as a run would, to learn which are inactive.
    // Configure every rule, disabled ones too, as before; the listing leaves disabled ones out below.
    let selection = Selection { disable: Vec::new(), ..selection(&config, profile.as_ref(), None) };
    let active =
        catalog.select(&selection).map_err(|e| anyhow::anyhow!("invalid configuration:\n  {}", e.join("\n  ")))?;
    let status =
        |id: &str| -> Option<&str> { active.iter().find(|a| a.id() == id).and_then(|a| a.inactive.as_deref()) };
    let severity = |id: &str, default: Severity| -> Severity {
        active.iter().find(|a| a.id() == id).map_or(default, |a| a.severity)
    };
    let chosen: Vec<_> = catalog
        .policies
        .iter()
        .filter(|p| profile.as_ref().is_none_or(|name| p.meta.profiles.contains_key(name)))
        .filter(|p| !config.disable.contains(&p.meta.id))
        .collect();
    let mut out = String::new();
    if format == Format::Json {
        let list: Vec<_> = chosen
            .iter()
            .map(|p| {
                serde_json::json!({
                    "id": p.meta.id, "severity": severity(&p.meta.id, p.meta.severity), "title": p.meta.title,
                    "category": p.meta.category, "profiles": p.meta.profiles.keys().collect::<Vec<_>>(),
                    "origin": p.origin, "digest": p.compiled.digest, "size": p.compiled.size,
                    "inactive": status(&p.meta.id),
                })
            })
            .collect();
        out = serde_json::to_string_pretty(&list)? + "\n";
    } else {
        let width = chosen.iter().map(|p| p.meta.id.len()).max().unwrap_or(0);
        for p in &chosen {
            let profiles: Vec<&str> = p.meta.profiles.keys().map(String::as_str).collect();
            let note = status(&p.meta.id).map(|s| format!("  ({s})")).unwrap_or_default();
            out.push_str(&format!(
                "{:width$}  {:8}  {}  [{}]{note}\n",
                p.meta.id,
                severity(&p.meta.id, p.meta.severity).as_str(),
                p.meta.title,
                profiles.join(", "),
            ));
        }
        out.push_str(&format!("{} rules\n", chosen.len()));
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(0)
}

fn run_explain(rules: &[String], format: Format, args: &PolicyArgs) -> anyhow::Result<u8> {
    let catalog = catalog(args, &[])?;
    let mut found = Vec::new();
    for rule in rules {
        let Some(p) = catalog.get(rule) else {
            let ids: Vec<&str> = catalog.policies.iter().map(|p| p.meta.id.as_str()).collect();
            bail!("no rule {rule:?}{}; the loaded rules are: {}", catalog.did_you_mean(rule), ids.join(", "));
        };
        found.push(p);
    }
    let out = if format == Format::Json {
        let mut docs = Vec::new();
        for p in &found {
            let mut v = serde_json::to_value(&p.meta)?;
            v["origin"] = p.origin.clone().into();
            v["digest"] = p.compiled.digest.clone().into();
            docs.push(v);
        }
        // One rule: its object, as before; several: an array of them.
        let value = if docs.len() == 1 { docs.remove(0) } else { serde_json::Value::Array(docs) };
        serde_json::to_string_pretty(&value)? + "\n"
    } else {
        let texts: Vec<String> = found.iter().map(|p| explain_text(p)).collect::<anyhow::Result<_>>()?;
        texts.join(&format!("\n{}\n\n", "-".repeat(72)))
    };
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(0)
}

/// One rule's documentation, as `palisade explain` prints it.
fn explain_text(p: &palisade::policy_set::LoadedPolicy) -> anyhow::Result<String> {
    let m = &p.meta;
    let out = {
        let mut s = String::new();
        s.push_str(&format!("{}: {}\n\n", m.id, m.title));
        s.push_str(&format!("Severity:   {}\n", m.severity));
        s.push_str(&format!("Category:   {}\n", m.category));
        let profiles: Vec<String> = m
            .profiles
            .iter()
            .map(|(name, settings)| {
                if settings.as_object().is_some_and(|o| o.is_empty()) {
                    name.clone()
                } else {
                    format!("{name} (with {settings})")
                }
            })
            .collect();
        s.push_str(&format!("Profiles:   {}\n", profiles.join(", ")));
        s.push_str(&format!("Applies to: {}\n", m.applies_to.join(", ")));
        if !m.reads_kinds.is_empty() {
            s.push_str(&format!("Reads:      {} (from the checked set)\n", m.reads_kinds.join(", ")));
            s.push_str(
                "Admission:  skipped by `palisade serve` (and counted as skipped): it reads other objects,\n            which a single admission request does not carry\n",
            );
        }
        s.push_str(&format!("Component:  {} ({}, {} bytes)\n", p.origin, p.compiled.digest, p.compiled.size));
        s.push_str(&format!("\nWhat it checks\n  {}\n", m.description));
        s.push_str(&format!("\nWhy it matters\n  {}\n", m.rationale));
        s.push_str(&format!("\nHow to fix\n  {}\n", m.remediation));
        s.push_str("\nSettings (JSON Schema)\n");
        for line in serde_json::to_string_pretty(&m.settings_schema)?.lines() {
            s.push_str(&format!("  {line}\n"));
        }
        if !m.references.is_empty() {
            s.push_str("\nReferences\n");
            for r in &m.references {
                s.push_str(&format!("  {r}\n"));
            }
        }
        s
    };
    Ok(out)
}

/// Peak resident memory of this process, from /proc (Linux), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn run_bench(
    paths: &[String],
    profile: &str,
    rounds: usize,
    threads_arg: Option<usize>,
    source: &bundle_cli::BundleArgs,
) -> anyhow::Result<u8> {
    let cache = tempfile_dir()?;
    let limits = SandboxLimits::default();
    let selection = Selection { profile: profile.to_string(), ..Selection::default() };
    // The bundle is opened (cache or registry, every digest checked, the
    // signature verified) inside each timed start, as `check --bundle` does.
    let load = |runtime: Arc<Runtime>| -> anyhow::Result<Catalog> {
        match &source.bundle {
            Some(reference) => {
                let (bundled, _) = bundle_cli::load_bundle(reference, &source.verify_key, &source.registry)?;
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
            count = bundle_cli::load_bundle(reference, &source.verify_key, &source.registry)?.0.len();
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

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("palisade-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
