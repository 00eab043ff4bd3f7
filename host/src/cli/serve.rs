//! `palisade serve`: the admission webhook, Gatekeeper provider and Kyverno service.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use super::{PolicyArgs, image_verifier, policy_sources, runtime_reporting, selection};
use palisade::config::Config;
use palisade::policy_set::Catalog;

#[derive(clap::Args)]
pub(super) struct ServeArgs {
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
    /// Objects evaluated at once, each with its own set of instances (made at start); other
    /// requests wait for a free set, up to the request deadline. Default: the cores, or
    /// --max-concurrency when images are verified (evaluation then waits on registries).
    #[arg(long, value_name = "N")]
    evaluation_threads: Option<usize>,
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

/// `palisade serve`: every line it writes is JSON, an error that stops it from starting too.
pub(super) fn run(args: ServeArgs) -> anyhow::Result<u8> {
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
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool_size = match args.evaluation_threads {
        Some(n) => n.max(1),
        // Verifying an image waits on its registry, not on a core.
        None if images.status() == palisade::images::Status::Enabled => cores.max(args.max_concurrency),
        None => cores,
    };
    // Compiling is logged as the server's other lines are: JSON.
    let runtime =
        runtime_reporting(&args.policy, palisade::serve::log::compile_progress, palisade::serve::log::policy_output)?;
    let sources = policy_sources(&args.policy, &config.verify.keys, &runtime)?;
    let load = move || -> anyhow::Result<palisade::serve::engine::Engine> {
        let selection = selection(&config, args.profile.as_ref(), args.pss_version.as_ref());
        let catalog = Catalog::load_opted(
            runtime,
            sources.builtin,
            sources.bundled,
            &args.policy.policies,
            &args.policy.policies_wasi,
        )?;
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
        Ok(palisade::serve::engine::Engine::new(catalog.runtime.clone(), policies, config.admission.clone(), pool_size))
    };
    palisade::serve::run(options, load)
}
