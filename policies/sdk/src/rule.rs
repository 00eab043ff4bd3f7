//! The trait a rule implements, and the glue between it and the component exports.

use serde::de::DeserializeOwned;

use crate::bindings::palisade::policy::types as wit;
use crate::fields::Fields;
use crate::workload::Workload;

pub use wit::{Operation, Severity};

/// A rule's documentation and wiring; see `metadata` in `wit/policy.wit`.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub id: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub rationale: &'static str,
    pub remediation: &'static str,
    pub severity: Severity,
    pub category: &'static str,
    pub applies_to: &'static [&'static str],
    pub reads_kinds: &'static [&'static str],
    /// JSON Schema of the settings object.
    pub settings_schema: &'static str,
    pub references: &'static [&'static str],
    /// `(profile, settings JSON)` pairs.
    pub profiles: &'static [(&'static str, &'static str)],
}

/// One way an object breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub message: String,
    /// JSON pointer to the field concerned.
    pub path: String,
}

impl Violation {
    pub fn new(message: impl Into<String>, path: impl Into<String>) -> Self {
        Violation { message: message.into(), path: path.into() }
    }
}

/// A setting the rule refuses, with the JSON pointer of the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub field: String,
    pub message: String,
}

impl SettingsError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        SettingsError { field: field.into(), message: message.into() }
    }
}

/// The admission context of one evaluation.
#[derive(Debug, Clone)]
pub struct Context {
    pub operation: Operation,
    pub namespace: Option<String>,
    pub old_object: Option<String>,
    pub username: Option<String>,
    pub groups: Vec<String>,
    pub offline: bool,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            operation: Operation::Create,
            namespace: None,
            old_object: None,
            username: None,
            groups: Vec::new(),
            offline: true,
        }
    }
}

/// A rule that looks at whole objects.
pub trait Rule: Sized + 'static {
    /// The settings object; `{}` must deserialize (use `#[serde(default)]`).
    type Settings: DeserializeOwned;

    fn metadata() -> Metadata;

    /// Check settings beyond their shape and build the rule. Runs once per load.
    fn configure(settings: Self::Settings) -> Result<Self, SettingsError>;

    /// Evaluate one object, given as JSON.
    fn evaluate(&self, object: &str, context: &Context) -> Result<Vec<Violation>, String>;

    /// Why the rule, as configured, can report nothing (an unset allow-list).
    fn inactive_reason(&self) -> Option<String> {
        None
    }

    /// The parts of an object `evaluate` reads, as JSON pointers (the
    /// contract's `input.reads`, in `wit/policy.wit`); the host may leave out
    /// the rest. `None`, the default: the whole object, always correct.
    fn reads() -> Option<Vec<String>> {
        None
    }
}

/// A rule about the pod of a pod-bearing object.
pub trait PodRule: Sized + 'static {
    type Settings: DeserializeOwned;

    /// The parts of the workload `check` reads; the others are not built and
    /// read as empty. [`Fields::ALL`], the default, is always correct; a
    /// narrower set makes evaluation cheaper (see [`crate::fields`]).
    const READS: Fields = Fields::ALL;

    fn metadata() -> Metadata;

    fn configure(settings: Self::Settings) -> Result<Self, SettingsError>;

    fn check(&self, workload: &Workload, context: &Context) -> Vec<Violation>;

    /// Why the rule, as configured, can report nothing (an unset allow-list).
    fn inactive_reason(&self) -> Option<String> {
        None
    }
}

/// Adapts a [`PodRule`] to a [`Rule`]: objects that carry no pod pass.
pub struct PodRuleAdapter<R>(pub R);

impl<R: PodRule> Rule for PodRuleAdapter<R> {
    type Settings = R::Settings;

    fn metadata() -> Metadata {
        R::metadata()
    }

    fn configure(settings: Self::Settings) -> Result<Self, SettingsError> {
        R::configure(settings).map(PodRuleAdapter)
    }

    fn evaluate(&self, object: &str, context: &Context) -> Result<Vec<Violation>, String> {
        let outcome = self.evaluate_reading(object, context);
        #[cfg(not(target_arch = "wasm32"))]
        {
            if let Ok(violations) = &outcome {
                check_reads(R::metadata().id, R::READS, object, violations, |w| {
                    w.map(|w| self.0.check(w, context)).unwrap_or_default()
                });
            }
            crate::fields::check_input(R::metadata().id, R::READS, object, |pruned| {
                self.evaluate_reading(pruned, context)
            });
        }
        outcome
    }

    fn inactive_reason(&self) -> Option<String> {
        self.0.inactive_reason()
    }

    fn reads() -> Option<Vec<String>> {
        Some(crate::fields::paths(R::READS))
    }
}

impl<R: PodRule> PodRuleAdapter<R> {
    fn evaluate_reading(&self, object: &str, context: &Context) -> Result<Vec<Violation>, String> {
        Ok(match Workload::from_json_reading(object, R::READS)? {
            Some(workload) => self.0.check(&workload, context),
            None => Vec::new(),
        })
    }
}

/// The safety net of [`Fields`] in native builds (unit tests): when `reads` is
/// not [`Fields::ALL`], evaluate again on the whole workload (`None` for an
/// object that is not one) and panic if the outcome differs from `found`, the
/// outcome with `reads`. An object that cannot be read whole is not compared
/// (a field the rule skips may have the wrong type). For rules that read a
/// [`Workload`] themselves; pod rules get this from [`PodRuleAdapter`].
#[cfg(not(target_arch = "wasm32"))]
pub fn check_reads<T: PartialEq + std::fmt::Debug>(
    id: &str,
    reads: Fields,
    object: &str,
    found: &T,
    evaluate: impl FnOnce(Option<&Workload>) -> T,
) {
    if reads == Fields::ALL {
        return;
    }
    let Ok(whole) = Workload::from_json(object) else { return };
    let all = evaluate(whole.as_ref());
    assert_eq!(found, &all, "{id} reads a field outside its READS ({reads:?})");
}

/// Parse a settings object into `S`, naming the offending field on failure.
pub fn parse_settings<S: DeserializeOwned>(settings: &str) -> Result<S, SettingsError> {
    let text = if settings.trim().is_empty() { "{}" } else { settings };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| SettingsError::new("", format!("settings are not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(SettingsError::new("", "settings must be an object"));
    }
    // Parse from text, so an error's position names the field (see `json_path`).
    let text = value.to_string();
    serde_json::from_str::<S>(&text).map_err(|e| {
        let offset = if e.line() == 1 { e.column() } else { 0 };
        let message = e.to_string();
        let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m).to_string();
        let mut field = crate::json_path::path_at(&text, offset);
        if field.is_empty() || message.starts_with("unknown field") || message.starts_with("missing field") {
            // Unknown and missing fields are named in backticks at the level above them.
            let named = message.split('`').nth(1).unwrap_or_default();
            if !named.is_empty() && !field.ends_with(named) {
                field = if field.is_empty() { named.to_string() } else { format!("{field}.{named}") };
            }
        }
        let pointer = if field.is_empty() { field } else { format!("/{}", field.replace('.', "/")) };
        SettingsError::new(pointer, message)
    })
}

#[doc(hidden)]
pub mod glue {
    //! What `export_rule!` expands to calls these; not for rule authors.
    use super::*;
    use crate::bindings::exports::palisade::policy::policy as exports;

    pub fn metadata<R: Rule>() -> wit::Metadata {
        let m = R::metadata();
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        wit::Metadata {
            id: m.id.into(),
            title: m.title.into(),
            description: m.description.into(),
            rationale: m.rationale.into(),
            remediation: m.remediation.into(),
            severity: m.severity,
            category: m.category.into(),
            applies_to: strings(m.applies_to),
            reads_kinds: strings(m.reads_kinds),
            settings_schema: m.settings_schema.into(),
            references: strings(m.references),
            profiles: m
                .profiles
                .iter()
                .map(|(profile, settings)| wit::ProfileMembership {
                    profile: profile.to_string(),
                    settings: settings.to_string(),
                })
                .collect(),
        }
    }

    pub fn create<R: Rule>(settings: &str) -> Result<R, wit::SettingsError> {
        let parsed = parse_settings::<R::Settings>(settings).and_then(R::configure);
        parsed.map_err(|e| wit::SettingsError { field: e.field, message: e.message })
    }

    pub fn evaluate<R: Rule>(
        rule: &R,
        object: &str,
        context: wit::AdmissionContext,
    ) -> Result<Vec<exports::Violation>, String> {
        let (username, groups) = match context.user_info {
            Some(u) => (Some(u.username), u.groups),
            None => (None, Vec::new()),
        };
        let context = Context {
            operation: context.operation,
            namespace: context.namespace,
            old_object: context.old_object,
            username,
            groups,
            offline: context.offline,
        };
        let violations = rule.evaluate(object, &context)?;
        Ok(violations.into_iter().map(|v| exports::Violation { message: v.message, path: v.path }).collect())
    }
}

/// Export a [`Rule`] as the component's `policy` interface.
#[macro_export]
macro_rules! export_rule {
    ($rule:ty) => {
        #[doc(hidden)]
        pub struct __PalisadeComponent;
        #[doc(hidden)]
        pub struct __PalisadeEvaluator($rule);

        impl $crate::bindings::exports::palisade::policy::policy::Guest for __PalisadeComponent {
            type Evaluator = __PalisadeEvaluator;
            fn describe() -> $crate::bindings::palisade::policy::types::Metadata {
                $crate::glue::metadata::<$rule>()
            }
        }

        impl $crate::bindings::exports::palisade::policy::policy::GuestEvaluator
            for __PalisadeEvaluator
        {
            fn create(
                settings: ::std::string::String,
            ) -> ::std::result::Result<
                $crate::bindings::exports::palisade::policy::policy::Evaluator,
                $crate::bindings::palisade::policy::types::SettingsError,
            > {
                $crate::glue::create::<$rule>(&settings).map(|rule| {
                    $crate::bindings::exports::palisade::policy::policy::Evaluator::new(
                        __PalisadeEvaluator(rule),
                    )
                })
            }
            fn evaluate(
                &self,
                object: ::std::string::String,
                context: $crate::bindings::palisade::policy::types::AdmissionContext,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::bindings::palisade::policy::types::Violation>,
                ::std::string::String,
            > {
                $crate::glue::evaluate(&self.0, &object, context)
            }
            fn inactive_reason(&self) -> ::std::option::Option<::std::string::String> {
                $crate::Rule::inactive_reason(&self.0)
            }
        }

        impl $crate::bindings::exports::palisade::policy::input::Guest for __PalisadeComponent {
            fn reads() -> ::std::option::Option<::std::vec::Vec<::std::string::String>> {
                <$rule as $crate::Rule>::reads()
            }
        }

        // Natively (unit tests) there is no component to export to.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_rule_component!(__PalisadeComponent with_types_in $crate::bindings);
    };
}

/// Export a [`PodRule`] as the component's `policy` interface.
#[macro_export]
macro_rules! export_pod_rule {
    ($rule:ty) => {
        $crate::export_rule!($crate::PodRuleAdapter<$rule>);
    };
}

/// Profiles of a hardening rule beyond the Pod Security Standards.
pub const HARDENED: &[(&str, &str)] = &[("hardened", "{}")];

/// Evaluate a pod rule on an object given as JSON, offline (for unit tests).
pub fn check_pod<R: PodRule>(rule: R, json: &str) -> Result<Vec<Violation>, String> {
    PodRuleAdapter(rule).evaluate(json, &Context::default())
}

/// Configure a rule from settings JSON, as the host does at load time.
pub fn configure<R: Rule>(settings: &str) -> Result<R, SettingsError> {
    R::configure(parse_settings(settings)?)
}

/// Configure a pod rule from settings JSON.
pub fn configure_pod<R: PodRule>(settings: &str) -> Result<R, SettingsError> {
    R::configure(parse_settings(settings)?)
}

/// The settings of a rule that takes none: `{}` and nothing else.
#[derive(Debug, Default, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

/// The JSON Schema of [`NoSettings`].
pub const NO_SETTINGS_SCHEMA: &str = r#"{"type":"object","additionalProperties":false,"properties":{}}"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports privileged containers; `READS` as given.
    struct Privileged<const READS: u8>;

    impl<const N: u8> PodRule for Privileged<N> {
        type Settings = NoSettings;

        const READS: Fields = if N == 0 { Fields::CONTAINERS } else { Fields::SECURITY_CONTEXT };

        fn metadata() -> Metadata {
            Metadata {
                id: "privileged",
                title: "",
                description: "",
                rationale: "",
                remediation: "",
                severity: Severity::High,
                category: "",
                applies_to: &crate::POD_KINDS,
                reads_kinds: &[],
                settings_schema: NO_SETTINGS_SCHEMA,
                references: &[],
                profiles: HARDENED,
            }
        }

        fn configure(_: NoSettings) -> Result<Self, SettingsError> {
            Ok(Privileged)
        }

        fn check(&self, workload: &Workload, _: &Context) -> Vec<Violation> {
            workload
                .containers()
                .filter(|c| c.container.security_context.as_ref().and_then(|s| s.privileged) == Some(true))
                .map(|c| Violation::new("privileged", c.field("securityContext/privileged")))
                .collect()
        }
    }

    const PRIVILEGED: &str =
        r#"{"kind":"Pod","spec":{"containers":[{"name":"a","securityContext":{"privileged":true}}]}}"#;

    #[test]
    fn a_rule_that_reads_within_its_reads_passes() {
        assert_eq!(check_pod(Privileged::<1>, PRIVILEGED).unwrap().len(), 1);
        // A wrong type in a field the rule skips is not compared.
        let json = r#"{"kind":"Pod","spec":{"volumes":7,"containers":[{"name":"a"}]}}"#;
        assert_eq!(check_pod(Privileged::<1>, json), Ok(Vec::new()));
    }

    #[test]
    #[should_panic(expected = "privileged reads a field outside its READS")]
    fn a_rule_that_reads_outside_its_reads_panics_natively() {
        let _ = check_pod(Privileged::<0>, PRIVILEGED);
    }
}
