//! Which parts of a workload a rule reads: [`Fields`], a rule's `READS`.
//!
//! Reading a workload builds only the parts in the mask; the others are
//! skipped without building anything and read as absent (their `Default`).
//! A rule that declares `READS` narrower than everything it looks at sees
//! those fields as unset, so the default, [`Fields::ALL`], is always correct:
//! narrow it only to make evaluation cheaper. In native builds (unit tests)
//! [`crate::PodRuleAdapter`] and [`crate::pss::check_json`] also evaluate with
//! [`Fields::ALL`] and panic when the violations differ ("reads a field
//! outside its READS"), so a rule's own tests check its mask.
//!
//! Always read, whatever the mask: `kind`, `metadata.name` and `namespace`
//! (object and pod), `hostNetwork`, `hostPID`, `hostIPC`, `hostUsers`, `os`,
//! `restartPolicy` and `replicas`.
//!
//! A side effect: a field of the wrong type that a rule skips is not that
//! rule's error; the rules that read it report it.

use std::cell::Cell;

/// The JSON pointers a workload parse with `reads` looks at (the rule's
/// answer to the contract's `input.reads`): the host may leave out every other
/// key of the object, and the parse builds the same [`crate::Workload`], or
/// fails with the same error. It follows the structs of [`crate::pod`] field
/// for field: the envelope (`kind`, `metadata`, `spec`, `template`), a pod spec
/// wherever one is read (`/spec` itself, since one struct reads a controller's
/// and a pod's spec, its `template/spec` and `jobTemplate/spec/template/spec`,
/// and `/template/spec`), and in each spec the fields always read and those
/// of the parts in `reads`. A template inside a template is read too (no such
/// field exists in Kubernetes): it is kept whole.
pub fn paths(reads: Fields) -> Vec<String> {
    let mut out = vec!["/kind".to_string()];
    meta_paths(reads, "/metadata", &mut out);
    spec_paths(reads, "/spec", true, &mut out);
    template_paths(reads, "/template", &mut out);
    out
}

fn meta_paths(reads: Fields, at: &str, out: &mut Vec<String>) {
    for (key, part) in [
        ("name", Fields::NONE),
        ("namespace", Fields::NONE),
        ("labels", Fields::LABELS),
        ("annotations", Fields::ANNOTATIONS),
    ] {
        if reads.contains(part) {
            out.push(format!("{at}/{key}"));
        }
    }
}

fn template_paths(reads: Fields, at: &str, out: &mut Vec<String>) {
    meta_paths(reads, &format!("{at}/metadata"), out);
    spec_paths(reads, &format!("{at}/spec"), false, out);
}

/// A pod spec at `at` ([`crate::pod::PodSpec`]); `outer`: the object's own
/// `spec`, whose `template` and `jobTemplate` hold the pod template.
fn spec_paths(reads: Fields, at: &str, outer: bool, out: &mut Vec<String>) {
    const ALWAYS: [&str; 7] = ["hostNetwork", "hostPID", "hostIPC", "hostUsers", "os", "restartPolicy", "replicas"];
    const PARTS: [(&str, Fields); 9] = [
        ("serviceAccountName", Fields::SERVICE_ACCOUNT),
        ("serviceAccount", Fields::SERVICE_ACCOUNT),
        ("automountServiceAccountToken", Fields::SERVICE_ACCOUNT),
        ("securityContext", Fields::POD_SECURITY_CONTEXT),
        ("volumes", Fields::VOLUMES),
        ("affinity", Fields::AFFINITY),
        ("topologySpreadConstraints", Fields::TOPOLOGY_SPREAD),
        ("selector", Fields::SELECTOR),
        ("volumeClaimTemplates", Fields::VOLUME_CLAIM_TEMPLATES),
    ];
    const CONTAINER_PARTS: [(&str, Fields); 11] = [
        ("name", Fields::CONTAINER_NAMES),
        ("image", Fields::CONTAINERS),
        ("securityContext", Fields::SECURITY_CONTEXT),
        ("securityContext/readOnlyRootFilesystem", Fields::READ_ONLY_ROOT_FILESYSTEM),
        ("ports", Fields::PORTS),
        ("resources", Fields::RESOURCES),
        ("env", Fields::ENV),
        ("livenessProbe", Fields::LIVENESS_PROBE),
        ("readinessProbe", Fields::READINESS_PROBE),
        ("startupProbe", Fields::STARTUP_PROBE),
        ("lifecycle", Fields::LIFECYCLE),
    ];
    out.extend(ALWAYS.iter().map(|key| format!("{at}/{key}")));
    out.extend(PARTS.iter().filter(|(_, part)| reads.contains(*part)).map(|(key, _)| format!("{at}/{key}")));
    // A part inside another part that is read is in that one's path already.
    let within_read = |key: &str| {
        CONTAINER_PARTS.iter().any(|(outer, part)| {
            key.strip_prefix(outer).is_some_and(|rest| rest.starts_with('/')) && reads.contains(*part)
        })
    };
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (key, part) in CONTAINER_PARTS {
            if reads.contains(part) && !within_read(key) {
                out.push(format!("{at}/{list}/*/{key}"));
            }
        }
    }
    if outer {
        template_paths(reads, &format!("{at}/template"), out);
        template_paths(reads, &format!("{at}/jobTemplate/spec/template"), out);
    } else {
        out.push(format!("{at}/template"));
        out.push(format!("{at}/jobTemplate"));
    }
}

/// A set of workload parts; see the module documentation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fields(u32);

impl Fields {
    /// Only the fields that are always read.
    pub const NONE: Fields = Fields(0);
    /// Everything: the default of a rule, always correct.
    pub const ALL: Fields = Fields(u32::MAX);
    /// `labels` of the object's and the pod's metadata (and of claim templates).
    pub const LABELS: Fields = Fields(1 << 0);
    /// `annotations` of the object's and the pod's metadata (and of claim templates).
    pub const ANNOTATIONS: Fields = Fields(1 << 1);
    /// Every container (init, regular, ephemeral): its name. The container
    /// fields below each include this one.
    pub const CONTAINER_NAMES: Fields = Fields(1 << 2);
    /// Every container: its name and its `image`.
    pub const CONTAINERS: Fields = Fields(1 << 15 | 1 << 2);
    /// Each container's `securityContext`, all of it.
    pub const SECURITY_CONTEXT: Fields = Fields(1 << 3 | 1 << 20 | 1 << 2);
    /// Each container's `securityContext.readOnlyRootFilesystem`, and nothing
    /// else of its `securityContext` (part of [`Fields::SECURITY_CONTEXT`]).
    pub const READ_ONLY_ROOT_FILESYSTEM: Fields = Fields(1 << 20 | 1 << 2);
    /// Each container's `ports`.
    pub const PORTS: Fields = Fields(1 << 4 | 1 << 2);
    /// Each container's `resources`.
    pub const RESOURCES: Fields = Fields(1 << 5 | 1 << 2);
    /// Each container's `env`.
    pub const ENV: Fields = Fields(1 << 6 | 1 << 2);
    /// Each container's `livenessProbe`: whether there is one, and its text
    /// ([`crate::pod::Probe::raw`]), not its handler's hosts.
    pub const LIVENESS_PROBE: Fields = Fields(1 << 7 | 1 << 2);
    /// Each container's `readinessProbe`, as [`Fields::LIVENESS_PROBE`].
    pub const READINESS_PROBE: Fields = Fields(1 << 17 | 1 << 2);
    /// Each container's `startupProbe`, as [`Fields::LIVENESS_PROBE`].
    pub const STARTUP_PROBE: Fields = Fields(1 << 18 | 1 << 2);
    /// Each container's `livenessProbe`, `readinessProbe` and `startupProbe`,
    /// with the hosts their handlers name ([`crate::pod::Probe::handler`]).
    pub const PROBES: Fields = Fields(1 << 7 | 1 << 17 | 1 << 18 | 1 << 19 | 1 << 2);
    /// Reading a probe reads its handler's hosts too (part of [`Fields::PROBES`]).
    pub(crate) const PROBE_HANDLERS: Fields = Fields(1 << 19);
    /// Each container's `lifecycle`.
    pub const LIFECYCLE: Fields = Fields(1 << 8 | 1 << 2);
    /// The pod's `securityContext`.
    pub const POD_SECURITY_CONTEXT: Fields = Fields(1 << 9);
    /// The pod's `volumes`.
    pub const VOLUMES: Fields = Fields(1 << 10);
    /// The pod's `affinity`.
    pub const AFFINITY: Fields = Fields(1 << 11);
    /// The pod's `topologySpreadConstraints`.
    pub const TOPOLOGY_SPREAD: Fields = Fields(1 << 12);
    /// A controller's `spec.selector`.
    pub const SELECTOR: Fields = Fields(1 << 13);
    /// A StatefulSet's `spec.volumeClaimTemplates`.
    pub const VOLUME_CLAIM_TEMPLATES: Fields = Fields(1 << 14);
    /// The pod's `serviceAccountName`, `serviceAccount` and
    /// `automountServiceAccountToken`.
    pub const SERVICE_ACCOUNT: Fields = Fields(1 << 16);

    /// Both sets.
    pub const fn union(self, other: Fields) -> Fields {
        Fields(self.0 | other.0)
    }

    /// Whether every part of `other` is in this set.
    pub const fn contains(self, other: Fields) -> bool {
        self.0 & other.0 == other.0
    }
}

/// The named parts with their names, in the order `Debug` lists them.
pub const NAMED: [(&str, Fields); 21] = [
    ("LABELS", Fields::LABELS),
    ("ANNOTATIONS", Fields::ANNOTATIONS),
    ("CONTAINER_NAMES", Fields::CONTAINER_NAMES),
    ("CONTAINERS", Fields::CONTAINERS),
    ("SECURITY_CONTEXT", Fields::SECURITY_CONTEXT),
    ("READ_ONLY_ROOT_FILESYSTEM", Fields::READ_ONLY_ROOT_FILESYSTEM),
    ("PORTS", Fields::PORTS),
    ("RESOURCES", Fields::RESOURCES),
    ("ENV", Fields::ENV),
    ("LIVENESS_PROBE", Fields::LIVENESS_PROBE),
    ("READINESS_PROBE", Fields::READINESS_PROBE),
    ("STARTUP_PROBE", Fields::STARTUP_PROBE),
    ("PROBES", Fields::PROBES),
    ("LIFECYCLE", Fields::LIFECYCLE),
    ("POD_SECURITY_CONTEXT", Fields::POD_SECURITY_CONTEXT),
    ("VOLUMES", Fields::VOLUMES),
    ("AFFINITY", Fields::AFFINITY),
    ("TOPOLOGY_SPREAD", Fields::TOPOLOGY_SPREAD),
    ("SELECTOR", Fields::SELECTOR),
    ("VOLUME_CLAIM_TEMPLATES", Fields::VOLUME_CLAIM_TEMPLATES),
    ("SERVICE_ACCOUNT", Fields::SERVICE_ACCOUNT),
];

impl std::fmt::Debug for Fields {
    /// `Fields(SECURITY_CONTEXT | POD_SECURITY_CONTEXT)`, `Fields::ALL`, `Fields::NONE`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Fields::ALL => return f.write_str("Fields::ALL"),
            Fields::NONE => return f.write_str("Fields::NONE"),
            _ => {}
        }
        // A part is named only when no larger part that holds it is: not
        // CONTAINER_NAMES beside CONTAINERS, nor LIVENESS_PROBE beside PROBES.
        let names: Vec<&str> = NAMED
            .iter()
            .filter(|(_, part)| {
                self.contains(*part)
                    && !NAMED
                        .iter()
                        .any(|(_, larger)| larger != part && larger.contains(*part) && self.contains(*larger))
            })
            .map(|(name, _)| *name)
            .collect();
        write!(f, "Fields({})", names.join(" | "))
    }
}

impl std::ops::BitOr for Fields {
    type Output = Fields;

    fn bitor(self, other: Fields) -> Fields {
        self.union(other)
    }
}

thread_local! {
    /// The mask of the parse running on this thread; [`Fields::ALL`] outside one.
    static READING: Cell<Fields> = const { Cell::new(Fields::ALL) };
}

/// Sets the mask for one parse and puts the previous one back when dropped.
pub(crate) struct Reading(Fields);

impl Reading {
    pub(crate) fn start(reads: Fields) -> Reading {
        Reading(READING.with(|r| r.replace(reads)))
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        READING.with(|r| r.set(self.0));
    }
}

/// Whether the parse running now reads `part`.
pub(crate) fn reading(part: Fields) -> bool {
    READING.with(|r| r.get().contains(part))
}

/// The safety net of [`paths`] in native builds (unit tests): evaluate the
/// object as a host hands it over (compact JSON of its parsed value), and
/// pruned to `paths(reads)` as the contract's `input.reads` lets a host prune
/// it, and panic if the outcomes differ ("reads outside its input paths"). Not
/// compared: an object that is not JSON. The pruning here is the contract's
/// rule written as plainly as possible (a list of paths, not the host's tree),
/// so it is an oracle for the host's too.
#[cfg(not(target_arch = "wasm32"))]
pub fn check_input<T: PartialEq + std::fmt::Debug>(
    id: &str,
    reads: Fields,
    object: &str,
    evaluate: impl Fn(&str) -> T,
) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(object) else { return };
    let whole = value.to_string();
    let pruned = prune_to(&value, reads).to_string();
    let as_handed = evaluate(&whole);
    let from_pruned = evaluate(&pruned);
    assert_eq!(as_handed, from_pruned, "{id} reads outside its input paths ({reads:?}); pruned:\n{pruned}");
}

/// `value` pruned to `paths(reads)`, as [`check_input`] prunes it.
#[cfg(not(target_arch = "wasm32"))]
pub fn prune_to(value: &serde_json::Value, reads: Fields) -> serde_json::Value {
    let split: Vec<Vec<String>> = paths(reads)
        .iter()
        .map(|p| p.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~")).collect())
        .collect();
    let split: Vec<&[String]> = split.iter().map(Vec::as_slice).collect();
    prune(value, &split)
}

/// `value` with only what `paths` (each split into segments) select; see
/// `input.reads` in `wit/policy.wit`.
#[cfg(not(target_arch = "wasm32"))]
pub fn prune(value: &serde_json::Value, paths: &[&[String]]) -> serde_json::Value {
    use serde_json::Value;
    if paths.iter().any(|p| p.is_empty()) {
        return value.clone();
    }
    let rest = |matches: &dyn Fn(&str) -> bool| -> Vec<&[String]> {
        paths.iter().filter(|p| matches(&p[0])).map(|p| &p[1..]).collect()
    };
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| {
                    let below = rest(&|segment| segment == "*" || segment == k);
                    (!below.is_empty()).then(|| (k.clone(), prune(v, &below)))
                })
                .collect(),
        ),
        Value::Array(items) if paths.iter().all(|p| p[0] == "*") => {
            let below = rest(&|_| true);
            Value::Array(items.iter().map(|v| prune(v, &below)).collect())
        }
        other => other.clone(),
    }
}

/// Generates a `deserialize_with` function for a field read only when `part`
/// is in the mask: otherwise its value is skipped and it gets its `Default`.
/// Read, `null` is the `Default` too (as [`crate::pod::nullable`]).
macro_rules! masked {
    // For an `Option` field: read as it is (`null` is `None` already), not
    // through a second `Option`.
    (optional $name:ident, $part:expr) => {
        pub(crate) fn $name<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
        where
            D: serde::Deserializer<'de>,
            T: serde::Deserialize<'de>,
        {
            if $crate::fields::reading($part) {
                Option::<T>::deserialize(de)
            } else {
                serde::de::IgnoredAny::deserialize(de)?;
                Ok(None)
            }
        }
    };
    ($name:ident, $part:expr) => {
        pub(crate) fn $name<'de, D, T>(de: D) -> Result<T, D::Error>
        where
            D: serde::Deserializer<'de>,
            T: serde::Deserialize<'de> + Default,
        {
            if $crate::fields::reading($part) {
                Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
            } else {
                serde::de::IgnoredAny::deserialize(de)?;
                Ok(T::default())
            }
        }
    };
}
pub(crate) use masked;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_parts_include_containers() {
        for part in [
            Fields::SECURITY_CONTEXT,
            Fields::READ_ONLY_ROOT_FILESYSTEM,
            Fields::PORTS,
            Fields::RESOURCES,
            Fields::ENV,
            Fields::LIVENESS_PROBE,
            Fields::READINESS_PROBE,
            Fields::STARTUP_PROBE,
            Fields::PROBES,
            Fields::LIFECYCLE,
        ] {
            assert!(part.contains(Fields::CONTAINER_NAMES), "{part:?}");
            assert!(!Fields::CONTAINER_NAMES.contains(part), "{part:?}");
            assert!(!part.contains(Fields::CONTAINERS), "{part:?}: no image");
        }
        assert!(Fields::CONTAINERS.contains(Fields::CONTAINER_NAMES));
        assert!(!Fields::NONE.contains(Fields::SERVICE_ACCOUNT));
        assert!(Fields::ALL.contains(Fields::LABELS | Fields::VOLUME_CLAIM_TEMPLATES));
        assert!(!Fields::NONE.contains(Fields::LABELS));
        assert!(Fields::LABELS.contains(Fields::NONE));
        assert!(!(Fields::PORTS | Fields::ENV).contains(Fields::PROBES));
        assert!(Fields::SECURITY_CONTEXT.contains(Fields::READ_ONLY_ROOT_FILESYSTEM));
        assert!(!Fields::READ_ONLY_ROOT_FILESYSTEM.contains(Fields::SECURITY_CONTEXT));
        for probe in [Fields::LIVENESS_PROBE, Fields::READINESS_PROBE, Fields::STARTUP_PROBE] {
            assert!(Fields::PROBES.contains(probe) && !probe.contains(Fields::PROBE_HANDLERS), "{probe:?}");
        }
        assert!(!(Fields::LIVENESS_PROBE | Fields::READINESS_PROBE | Fields::STARTUP_PROBE).contains(Fields::PROBES));
    }

    #[test]
    fn debug_names_the_parts() {
        assert_eq!(
            format!("{:?}", Fields::SECURITY_CONTEXT | Fields::POD_SECURITY_CONTEXT),
            "Fields(SECURITY_CONTEXT | POD_SECURITY_CONTEXT)"
        );
        assert_eq!(format!("{:?}", Fields::CONTAINERS | Fields::LABELS), "Fields(LABELS | CONTAINERS)");
        assert_eq!(format!("{:?}", Fields::CONTAINER_NAMES), "Fields(CONTAINER_NAMES)");
        assert_eq!(
            format!("{:?}", Fields::CONTAINERS | Fields::PORTS | Fields::SERVICE_ACCOUNT),
            "Fields(CONTAINERS | PORTS | SERVICE_ACCOUNT)"
        );
        assert_eq!(format!("{:?}", Fields::PROBES | Fields::LIFECYCLE), "Fields(PROBES | LIFECYCLE)");
        assert_eq!(
            format!("{:?}", Fields::LIVENESS_PROBE | Fields::READINESS_PROBE),
            "Fields(LIVENESS_PROBE | READINESS_PROBE)"
        );
        assert_eq!(format!("{:?}", Fields::ALL), "Fields::ALL");
        assert_eq!(format!("{:?}", Fields::NONE), "Fields::NONE");
    }

    #[test]
    fn a_part_inside_a_part_read_has_no_path_of_its_own() {
        let rorfs = "/spec/template/spec/containers/*/securityContext/readOnlyRootFilesystem";
        assert!(paths(Fields::READ_ONLY_ROOT_FILESYSTEM).iter().any(|p| p == rorfs));
        assert!(!paths(Fields::READ_ONLY_ROOT_FILESYSTEM).iter().any(|p| p.ends_with("/securityContext")));
        let both = paths(Fields::SECURITY_CONTEXT);
        assert!(both.iter().any(|p| p == "/spec/template/spec/containers/*/securityContext"));
        assert!(!both.iter().any(|p| p.ends_with("readOnlyRootFilesystem")), "{both:?}");
    }

    #[test]
    fn the_guard_restores_the_previous_mask() {
        assert!(reading(Fields::VOLUMES));
        {
            let _outer = Reading::start(Fields::LABELS);
            assert!(!reading(Fields::VOLUMES));
            {
                let _inner = Reading::start(Fields::VOLUMES);
                assert!(reading(Fields::VOLUMES));
            }
            assert!(reading(Fields::LABELS) && !reading(Fields::VOLUMES));
        }
        assert!(reading(Fields::VOLUMES));
    }
}
