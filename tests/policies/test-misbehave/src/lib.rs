//! A policy that misbehaves on purpose, to test the host's sandbox and its
//! `inventory` import. It acts only on objects whose name starts with `bad`,
//! so a test can check that the rest of a run is unaffected.
//!
//! Modes (setting `mode`): `loop` spins forever, `alloc` allocates without
//! bound, `trap` panics (a trap), `error` returns an error, `flood` returns a
//! million violations (each within its memory limit) and `long` one violation
//! with a 1 MiB message, `inventory` lists the objects of kind `kind` in the
//! object's namespace and reports their names.

use palisade_sdk::{Context, Metadata, Rule, SettingsError, Severity, Violation};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    kind: String,
}

pub struct Misbehave {
    settings: Settings,
}

#[derive(Deserialize)]
struct Object {
    #[serde(default)]
    metadata: Meta,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

impl Rule for Misbehave {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata {
            id: "test-misbehave",
            title: "Misbehaves on purpose (tests only)",
            description: "Loops, allocates, traps or errors on objects named bad*, or reports what the inventory holds.",
            rationale: "Exercises the host's sandbox limits and inventory import.",
            remediation: "None: this policy exists for tests.",
            severity: Severity::Info,
            category: "testing",
            applies_to: &["*"],
            // Declares no kinds so that `palisade serve` runs it (it skips rules that read
            // other objects); its inventory mode is exercised by `palisade check` only.
            reads_kinds: &[],
            settings_schema: r#"{"type":"object","properties":{"mode":{"enum":["loop","alloc","trap","error","flood","long","inventory"]},"kind":{"type":"string"}},"additionalProperties":false}"#,
            references: &[],
            profiles: &[],
        }
    }

    fn configure(settings: Settings) -> Result<Self, SettingsError> {
        match settings.mode.as_str() {
            "loop" | "alloc" | "trap" | "error" | "flood" | "long" => Ok(Misbehave { settings }),
            "inventory" if !settings.kind.is_empty() => Ok(Misbehave { settings }),
            "inventory" => Err(SettingsError::new("/kind", "inventory mode needs a kind")),
            other => Err(SettingsError::new("/mode", format!("unknown mode {other:?}"))),
        }
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        let object: Object = serde_json::from_str(object).map_err(|e| e.to_string())?;
        if self.settings.mode == "inventory" {
            let listed = palisade_sdk::inventory::list(&self.settings.kind, object.metadata.namespace.as_deref());
            let mut names = Vec::new();
            for json in listed {
                let o: Object = serde_json::from_str(&json).map_err(|e| e.to_string())?;
                names.push(o.metadata.name);
            }
            return Ok(vec![Violation::new(format!("sees {}: [{}]", self.settings.kind, names.join(",")), "")]);
        }
        if !object.metadata.name.starts_with("bad") {
            return Ok(Vec::new());
        }
        match self.settings.mode.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("deliberate panic"),
            // 1,000,000 violations sharing nothing: 64 to 80 MiB of the guest's memory.
            "flood" => Ok((0..1_000_000).map(|i| Violation::new(format!("v{i}"), "/")).collect()),
            "long" => Ok(vec![Violation::new("x".repeat(1 << 20), "/spec")]),
            _ => Err("deliberate error".into()),
        }
    }
}

palisade_sdk::export_rule!(Misbehave);
