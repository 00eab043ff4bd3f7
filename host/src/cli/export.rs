//! `palisade export`: the objects that wire `palisade serve` into a cluster.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::{PolicyArgs, catalog, selection};
use palisade::config::Config;

#[derive(clap::Args)]
pub(super) struct ExportArgs {
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
pub(super) enum ExportWhat {
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

pub(super) fn run(what: ExportWhat, common: ExportArgs) -> anyhow::Result<u8> {
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
            policies_wasi: Vec::new(),
            policy_log: false,
            no_builtin: false,
            no_cache: false,
            policy_timeout_ms: 1000,
            policy_memory_mib: 64,
            source: super::bundle::BundleArgs {
                bundle: common.bundle.clone(),
                verify_key: Vec::new(),
                registry: super::bundle::RegistryArgs {
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
