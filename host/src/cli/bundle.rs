//! `palisade bundle …` and the `--bundle` option of `check`, `serve`,
//! `policies` and `explain`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use clap::Subcommand;

use palisade::bundle::assemble::{self, BundleInfo};
use palisade::bundle::content::Content;
use palisade::bundle::layout::Keep;
use palisade::bundle::reference::{self, Location};
use palisade::bundle::signature::{self, PublicKey};
use palisade::bundle::source::{self, Opened};
use palisade::bundle::store::Store;
use palisade::bundle::{
    Descriptor, Manifest, SIMPLE_SIGNING_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, annotations, digest_hex, registry,
};
use palisade::check::PolicyBundle;
use palisade::policy_set::{Bundled, BundledBytes, component_files};
use palisade::runtime::{Runtime, SandboxLimits, default_cache_dir};

/// A line on standard output; a closed pipe (`| head`) is an error, not a panic.
macro_rules! say {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*).context("writing to standard output")?
    };
}

/// How to reach registries.
#[derive(clap::Args, Clone, Default)]
pub struct RegistryArgs {
    /// Reach registries over plain HTTP instead of HTTPS (only for a registry on a trusted network).
    #[arg(long)]
    pub insecure: bool,
    /// A PEM certificate authority to trust for registries' HTTPS, besides the system's (repeatable).
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,
}

/// Where a run's policies come from when not from the built-in set, and
/// whose signature they must carry.
#[derive(clap::Args, Clone, Default)]
pub struct BundleArgs {
    /// Load the policies from a bundle instead of the built-in ones:
    /// oci://HOST/REPO:TAG, oci://HOST/REPO@sha256:…, or an OCI layout directory or .tar.
    #[arg(long, value_name = "REF")]
    pub bundle: Option<String>,
    /// Refuse policies not signed by this cosign public key (repeatable; adds to `verify.keys`).
    #[arg(long, value_name = "FILE")]
    pub verify_key: Vec<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum InspectFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum BundleCommand {
    /// Make a bundle (an OCI image index of Wasm OCI artifacts) from the
    /// built-in policies or from components, as an OCI layout directory or .tar.
    Build {
        /// Components to bundle instead of the built-in ones: a .wasm file or a directory (repeatable).
        #[arg(long, value_name = "PATH")]
        policies: Vec<PathBuf>,
        /// Bundle name (lowercase letters, digits, '-', '.', '_').
        #[arg(long)]
        name: String,
        /// Bundle version, a semantic version; also the tag it is saved under.
        #[arg(long)]
        version: String,
        /// Where to write: a directory, or a file ending in .tar.
        #[arg(long, value_name = "DIR|FILE")]
        output: PathBuf,
        /// org.opencontainers.image.source: where the policies' source lives.
        #[arg(long, value_name = "URL")]
        source: Option<String>,
        /// org.opencontainers.image.licenses, as SPDX (default for Palisade's own policies: its licence).
        #[arg(long, value_name = "SPDX")]
        licenses: Option<String>,
    },
    /// Push a bundle (with any signatures it carries) to a registry; prints the digest.
    Push {
        /// An OCI layout directory or .tar, or oci://… to copy from.
        source: String,
        /// oci://HOST/REPO:TAG (the tag defaults to the bundle version).
        target: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Fetch a bundle into the local cache, checking every digest; prints the digest.
    Pull {
        reference: String,
        /// Also write it (and its signatures) as an OCI layout directory or .tar.
        #[arg(long, value_name = "DIR|FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Show a bundle's policies, versions, digests and signatures.
    Inspect {
        reference: String,
        /// Check the signatures with this cosign public key (repeatable).
        #[arg(long, value_name = "FILE")]
        key: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: InspectFormat,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Sign a bundle or policy with a cosign private key (password from COSIGN_PASSWORD),
    /// storing the signature as cosign does (tag sha256-<hex>.sig).
    Sign {
        reference: String,
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Check that a bundle or policy is signed by one of the keys; exit 1 if not.
    Verify {
        reference: String,
        /// A cosign public key (repeatable: any one of them suffices).
        #[arg(long, value_name = "FILE", required = true)]
        key: Vec<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Copy a bundle and its signatures from a registry (or layout) into an OCI layout
    /// directory or .tar, for carrying into a network with no route out.
    Save {
        reference: String,
        #[arg(value_name = "DIR|FILE")]
        output: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Push a saved bundle and its signatures into a registry; prints the digest.
    Load {
        #[arg(value_name = "DIR|FILE")]
        source: PathBuf,
        /// oci://HOST/REPO:TAG
        target: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Make a cosign-compatible key pair: PREFIX.key (encrypted with COSIGN_PASSWORD) and PREFIX.pub.
    Keygen {
        #[arg(long, value_name = "PREFIX", default_value = "cosign")]
        output_prefix: PathBuf,
    },
}

fn options(registry: &RegistryArgs) -> source::Options {
    source::Options {
        registry: registry::Options { insecure: registry.insecure, ca_files: registry.registry_ca.clone() },
        store: Store::default_location(),
    }
}

fn read_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    paths.iter().map(|p| signature::read_public_key(p).map_err(anyhow::Error::from)).collect()
}

fn open(text: &str, registry: &RegistryArgs, want_signatures: bool) -> anyhow::Result<Opened> {
    let location = reference::parse(text)?;
    Ok(source::open(&location, &options(registry), want_signatures)?)
}

fn registry_target(text: &str) -> anyhow::Result<oci_client::Reference> {
    match reference::parse(text)? {
        Location::Registry(r) => Ok(r),
        Location::Layout(_) => bail!("{text:?}: the target must be a registry reference, oci://HOST/REPO:TAG"),
    }
}

/// The components of the bundle `text`, ready for
/// [`palisade::policy_set::Catalog::load_with`], and what a report says of it.
/// Every layer is checked against its digest; of a layout, a component whose
/// compiled form `runtime` has in its cache is not kept in memory
/// ([`BundledBytes::Unkept`]).
pub fn load_bundle(
    text: &str,
    keys: &[PathBuf],
    registry: &RegistryArgs,
    runtime: &Arc<Runtime>,
) -> anyhow::Result<(Vec<Bundled>, PolicyBundle)> {
    let keys = read_keys(keys)?;
    let location = reference::parse(text)?;
    // The policy layers not kept, by digest: each decided once, when it is read.
    let unkept: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let keep: Keep = {
        let (unkept, runtime) = (unkept.clone(), runtime.clone());
        Arc::new(move |layer: &Descriptor| {
            let cached = layer.media_type == WASM_LAYER_MEDIA_TYPE
                && digest_hex(&layer.digest).is_ok_and(|hex| runtime.is_cached(hex));
            if cached {
                unkept.lock().unwrap_or_else(|e| e.into_inner()).insert(layer.digest.clone());
            }
            !cached
        })
    };
    let opened = source::open_for_start(&location, &options(registry), !keys.is_empty(), keep)
        .with_context(|| format!("--bundle {text}"))?;
    let verified_by = if keys.is_empty() {
        None
    } else {
        Some(opened.verify(&keys).with_context(|| format!("--bundle {text}"))?.name)
    };
    let bundle = PolicyBundle {
        reference: text.to_string(),
        pinned: opened.pinned(),
        digest: opened.digest().to_string(),
        verified_by,
    };
    // The signature, when keys are given, was checked above.
    let policies = opened.into_policies(&[]).with_context(|| format!("--bundle {text}"))?;
    if policies.is_empty() {
        bail!("--bundle {text}: the bundle holds no policies");
    }
    let unkept = std::mem::take(&mut *unkept.lock().unwrap_or_else(|e| e.into_inner()));
    let mut bundled = Vec::with_capacity(policies.len());
    for p in policies {
        // Each layer was checked against this digest when the bundle was read: not hashed again.
        let hex = digest_hex(&p.layer.digest).with_context(|| format!("--bundle {text}"))?;
        let origin = format!("{}#{}", bundle.pinned, p.id);
        let component = if unkept.contains(&p.layer.digest) {
            let (location, layer, what) = (location.clone(), p.layer.clone(), origin.clone());
            BundledBytes::Unkept {
                size: p.layer.size,
                reread: Box::new(move || {
                    source::reread_layer(&location, &layer).with_context(|| format!("{what}: reading it again"))
                }),
            }
        } else {
            BundledBytes::Kept(p.component)
        };
        bundled.push(Bundled { origin, id: p.id, hex: hex.to_string(), component });
    }
    Ok((bundled, bundle))
}

pub fn run(command: BundleCommand) -> anyhow::Result<u8> {
    match command {
        BundleCommand::Build { policies, name, version, output, source, licenses } => {
            build(&policies, name, version, &output, source, licenses)
        }
        BundleCommand::Push { source, target, registry } => push(&source, &target, &registry),
        BundleCommand::Load { source, target, registry } => push(&source.display().to_string(), &target, &registry),
        BundleCommand::Pull { reference, output, registry } => {
            let opened = open(&reference, &registry, false)?;
            opened.content.check_contract()?;
            let count = opened.content.policies()?.len();
            if let Some(output) = output {
                source::save(&opened, &output)?;
            }
            eprintln!(
                "pulled {} ({count} policies{}) into {}",
                opened.pinned(),
                if opened.signatures.is_some() { ", signed" } else { "" },
                Store::default_location().map_or("no cache".into(), |s| s.dir().display().to_string())
            );
            say!("{}", opened.digest());
            Ok(0)
        }
        BundleCommand::Inspect { reference, key, format, registry } => inspect(&reference, &key, format, &registry),
        BundleCommand::Sign { reference, key, registry } => {
            let private = signature::read_private_key(&key, &signature::password_from_env())?;
            let location = reference::parse(&reference)?;
            let digest = source::sign(&location, &options(&registry), &private)?;
            eprintln!("signed {location} ({digest}) with {}", key.display());
            say!("{digest}");
            Ok(0)
        }
        BundleCommand::Verify { reference, key, registry } => {
            let keys = read_keys(&key)?;
            let opened = open(&reference, &registry, true)?;
            match opened.verify(&keys) {
                Ok(by) => {
                    say!("verified {}: signed by {} (key {})", opened.pinned(), by.name, by.fingerprint());
                    Ok(0)
                }
                Err(e) => {
                    eprintln!("palisade: verification failed: {e}");
                    Ok(1)
                }
            }
        }
        BundleCommand::Save { reference, output, registry } => {
            let opened = open(&reference, &registry, false)?;
            source::save(&opened, &output)?;
            eprintln!(
                "saved {}{} to {}",
                opened.pinned(),
                if opened.signatures.is_some() { " and its signatures" } else { " (unsigned)" },
                output.display()
            );
            say!("{}", opened.digest());
            Ok(0)
        }
        BundleCommand::Keygen { output_prefix } => {
            let private_path = output_prefix.with_extension("key");
            let public_path = output_prefix.with_extension("pub");
            for path in [&private_path, &public_path] {
                if path.exists() {
                    bail!("{}: already exists; not overwriting a key", path.display());
                }
            }
            if std::env::var_os("COSIGN_PASSWORD").is_none() {
                eprintln!(
                    "palisade: warning: COSIGN_PASSWORD is not set; the private key is encrypted with an empty password"
                );
            }
            let (private, public) = signature::generate(&signature::password_from_env())?;
            write_private(&private_path, private.as_bytes())?;
            std::fs::write(&public_path, public).with_context(|| format!("{}: cannot write", public_path.display()))?;
            eprintln!("wrote {} and {}", private_path.display(), public_path.display());
            Ok(0)
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    file.write_all(bytes).with_context(|| format!("{}: cannot write", path.display()))
}

fn build(
    policies: &[PathBuf],
    name: String,
    version: String,
    output: &Path,
    source: Option<String>,
    licenses: Option<String>,
) -> anyhow::Result<u8> {
    let mut components: Vec<(String, Vec<u8>)> = Vec::new();
    if policies.is_empty() {
        for (crate_name, bytes) in palisade::builtin::BUILTIN {
            components.push((format!("builtin:{crate_name}"), bytes.to_vec()));
        }
    } else {
        for path in policies {
            for file in component_files(path)? {
                let bytes = std::fs::read(&file).with_context(|| format!("{}: cannot read", file.display()))?;
                components.push((file.display().to_string(), bytes));
            }
        }
    }
    // Palisade's own policies carry Palisade's licence, also when given as files.
    let all_builtin =
        components.iter().all(|(_, bytes)| palisade::builtin::BUILTIN.iter().any(|(_, b)| *b == bytes.as_slice()));
    let licenses = licenses.or_else(|| all_builtin.then(|| env!("CARGO_PKG_LICENSE").to_string()));
    let info = BundleInfo { name, version, source, licenses };
    let runtime = Arc::new(Runtime::new(default_cache_dir(), SandboxLimits::default())?);
    let content = assemble::bundle(&runtime, &components, &info)?;
    if output.exists() && output.is_dir() && std::fs::read_dir(output)?.next().is_some() {
        bail!("{}: the directory is not empty; give a new directory or a .tar file", output.display());
    }
    let mut layout = palisade::bundle::layout::Layout::create(output);
    layout.add(&info.version, &content);
    layout.save()?;
    eprintln!(
        "built {} {}: {} policies, contract {}@{} -> {}",
        info.name,
        info.version,
        components.len(),
        palisade::bundle::CONTRACT_PACKAGE,
        palisade::bundle::CONTRACT_VERSION,
        output.display()
    );
    say!("{}", content.root.digest);
    Ok(0)
}

fn push(source_text: &str, target: &str, registry: &RegistryArgs) -> anyhow::Result<u8> {
    let target = registry_target(target)?;
    let opened = open(source_text, registry, false)?;
    opened.content.check_contract()?;
    let digest = source::push(&opened, &target, &options(registry))?;
    eprintln!(
        "pushed {} policies{} to oci://{}",
        opened.content.policies()?.len(),
        if opened.signatures.is_some() { " and their signatures" } else { "" },
        target.whole()
    );
    say!("{digest}");
    Ok(0)
}

fn signature_count(signatures: &Content) -> usize {
    serde_json::from_slice::<Manifest>(signatures.root_bytes())
        .map(|m| m.layers.iter().filter(|l| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE).count())
        .unwrap_or(0)
}

fn inspect(text: &str, keys: &[PathBuf], format: InspectFormat, registry: &RegistryArgs) -> anyhow::Result<u8> {
    let keys = read_keys(keys)?;
    let opened = open(text, registry, true)?;
    let contract = opened.content.check_contract();
    let policies = opened.content.policies()?;
    let index = opened.content.index();
    let note = |key: &str| index.as_ref().and_then(|i| i.annotation(key)).unwrap_or("").to_string();
    let signatures = opened.signatures.as_ref().map_or(0, signature_count);
    let verified = if keys.is_empty() { None } else { Some(opened.verify(&keys)) };
    match format {
        InspectFormat::Json => {
            let value = serde_json::json!({
                "reference": text,
                "pinned": opened.pinned(),
                "digest": opened.digest(),
                "mediaType": opened.content.root.media_type,
                "annotations": index.as_ref().and_then(|i| i.annotations.clone()),
                "contractCompatible": contract.is_ok(),
                "policies": policies.iter().map(|p| serde_json::json!({
                    "id": p.id,
                    "title": p.annotations.get(annotations::TITLE),
                    "version": p.annotations.get(annotations::VERSION),
                    "severity": p.annotations.get(annotations::POLICY_SEVERITY),
                    "category": p.annotations.get(annotations::POLICY_CATEGORY),
                    "kinds": p.annotations.get(annotations::POLICY_KINDS),
                    "manifest": p.manifest.digest,
                    "component": {"digest": p.config.layer_digests.first(), "size": p.component.len()},
                    "imports": p.config.component.as_ref().map(|c| c.imports.clone()),
                    "exports": p.config.component.as_ref().map(|c| c.exports.clone()),
                })).collect::<Vec<_>>(),
                "signatures": {
                    "count": signatures,
                    "manifest": opened.signatures.as_ref().map(|s| s.root.digest.clone()),
                    "verifiedBy": verified.as_ref().and_then(|v| v.as_ref().ok()).map(|k| k.name.clone()),
                    "error": verified.as_ref().and_then(|v| v.as_ref().err()).map(|e| e.to_string()),
                },
            });
            say!("{}", serde_json::to_string_pretty(&value)?);
        }
        InspectFormat::Text => {
            let mut out = String::new();
            out.push_str(&format!("{}\n", opened.pinned()));
            if index.is_some() {
                out.push_str(&format!(
                    "  bundle     {} {}\n  contract   {} ({})\n  created    {}\n",
                    note(annotations::BUNDLE_NAME),
                    note(annotations::BUNDLE_VERSION),
                    note(annotations::CONTRACT),
                    match &contract {
                        Ok(()) => "compatible".to_string(),
                        Err(e) => format!("refused: {e}"),
                    },
                    note(annotations::CREATED),
                ));
            }
            out.push_str(&format!("  policies   {}\n", policies.len()));
            let width = policies.iter().map(|p| p.id.len()).max().unwrap_or(2);
            for p in &policies {
                out.push_str(&format!(
                    "    {:width$}  {:8}  {:10}  {}  {:>7} B\n",
                    p.id,
                    p.annotations.get(annotations::POLICY_SEVERITY).map_or("", String::as_str),
                    p.annotations.get(annotations::VERSION).map_or("", String::as_str),
                    p.manifest.digest,
                    p.component.len(),
                ));
            }
            let signed = match &opened.signatures {
                Some(s) => format!("{signatures} ({})", s.root.digest),
                None => "none".into(),
            };
            out.push_str(&format!("  signatures {signed}\n"));
            match &verified {
                Some(Ok(key)) => out.push_str(&format!("  verified   by {} (key {})\n", key.name, key.fingerprint())),
                Some(Err(e)) => out.push_str(&format!("  verified   NO: {e}\n")),
                None => {}
            }
            std::io::stdout().write_all(out.as_bytes())?;
        }
    }
    Ok(match verified {
        Some(Err(_)) => 1,
        _ => 0,
    })
}
