//! `palisade check`: manifests in, findings out, an exit code for CI.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{Colour, Format, PolicyArgs, catalog_from, image_verifier, policy_sources, runtime, selection, threads};
use palisade::check;
use palisade::config::Config;
use palisade::documents::Limits;
use palisade::policy_set::Selection;
use palisade::report;
use palisade::severity::Severity;

#[derive(clap::Args)]
pub(super) struct CheckArgs {
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

pub(super) fn run(args: CheckArgs) -> anyhow::Result<u8> {
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
    let runtime = runtime(&args.policy)?;
    let sources = policy_sources(&args.policy, &config.verify.keys, &runtime)?;
    let bundle = sources.bundle.clone();
    let catalog = catalog_from(&args.policy, sources, runtime)?;
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
