//! `palisade policies`: the loaded rules, as a run would configure them.

use std::io::Write;
use std::path::PathBuf;

use super::{Format, PolicyArgs, catalog, image_verifier, selection};
use palisade::config::Config;
use palisade::policy_set::Selection;
use palisade::severity::Severity;

pub(super) fn run(
    profile: Option<String>,
    config_path: Option<PathBuf>,
    format: Format,
    args: &PolicyArgs,
) -> anyhow::Result<u8> {
    let config = match &config_path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(name) = &profile {
        palisade::policy_set::check_profile(name).map_err(anyhow::Error::msg)?;
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
