//! `palisade explain`: a rule's documentation and settings schema.

use std::io::Write;

use anyhow::bail;

use super::{Format, PolicyArgs, catalog};

pub(super) fn run(rules: &[String], format: Format, args: &PolicyArgs) -> anyhow::Result<u8> {
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
