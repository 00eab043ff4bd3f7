//! A rule written against `palisade:policy@0.2.0` directly (no SDK, which
//! follows the current contract): it reports every object labelled
//! `compat: legacy` and lists, through the 0.2.0 `inventory` import, how many
//! objects of its kind share its namespace, so both directions of the old
//! contract are exercised.

wit_bindgen::generate!({
    path: "../../../wit/compat/0.2.0",
    world: "rule",
});

use exports::palisade::policy::policy::{Evaluator, Guest, GuestEvaluator};
use palisade::policy::types::{AdmissionContext, Metadata, ProfileMembership, SettingsError, Severity, Violation};

struct Compat;

struct Configured;

impl Guest for Compat {
    type Evaluator = Configured;

    fn describe() -> Metadata {
        Metadata {
            id: "test-compat-v2".into(),
            title: "A 0.2.0 component".into(),
            description: "Reports objects labelled compat: legacy.".into(),
            rationale: "Tests that components built for the previous contract keep running.".into(),
            remediation: "None: a test policy.".into(),
            severity: Severity::Medium,
            category: "Testing".into(),
            applies_to: vec!["ConfigMap".into()],
            reads_kinds: vec!["ConfigMap".into()],
            settings_schema: r#"{"type":"object"}"#.into(),
            references: vec![],
            profiles: vec![ProfileMembership { profile: "hardened".into(), settings: "{}".into() }],
        }
    }
}

impl GuestEvaluator for Configured {
    fn create(_settings: String) -> Result<Evaluator, SettingsError> {
        Ok(Evaluator::new(Configured))
    }

    fn evaluate(&self, object: String, _context: AdmissionContext) -> Result<Vec<Violation>, String> {
        let value: serde_json::Value = serde_json::from_str(&object).map_err(|e| e.to_string())?;
        if value.pointer("/metadata/labels/compat").and_then(|v| v.as_str()) != Some("legacy") {
            return Ok(Vec::new());
        }
        let namespace = value.pointer("/metadata/namespace").and_then(|v| v.as_str()).unwrap_or("");
        let peers = palisade::policy::inventory::list_objects("ConfigMap", Some(namespace)).len();
        Ok(vec![Violation {
            message: format!("labelled compat: legacy ({peers} ConfigMaps in the namespace)"),
            path: "/metadata/labels/compat".into(),
        }])
    }

    fn inactive_reason(&self) -> Option<String> {
        None
    }
}

export!(Compat);
