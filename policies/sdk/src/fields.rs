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
//! `restartPolicy`, `automountServiceAccountToken`, `serviceAccountName`,
//! `serviceAccount` and `replicas`.
//!
//! A side effect: a field of the wrong type that a rule skips is not that
//! rule's error; the rules that read it report it.

use std::cell::Cell;

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
    /// Every container (init, regular, ephemeral): its name and image. The
    /// container fields below each include this one.
    pub const CONTAINERS: Fields = Fields(1 << 2);
    /// Each container's `securityContext`.
    pub const SECURITY_CONTEXT: Fields = Fields(1 << 3 | 1 << 2);
    /// Each container's `ports`.
    pub const PORTS: Fields = Fields(1 << 4 | 1 << 2);
    /// Each container's `resources`.
    pub const RESOURCES: Fields = Fields(1 << 5 | 1 << 2);
    /// Each container's `env`.
    pub const ENV: Fields = Fields(1 << 6 | 1 << 2);
    /// Each container's `livenessProbe`, `readinessProbe` and `startupProbe`.
    pub const PROBES: Fields = Fields(1 << 7 | 1 << 2);
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

    /// Both sets.
    pub const fn union(self, other: Fields) -> Fields {
        Fields(self.0 | other.0)
    }

    /// Whether every part of `other` is in this set.
    pub const fn contains(self, other: Fields) -> bool {
        self.0 & other.0 == other.0
    }
}

/// The named parts, in the order `Debug` lists them.
const NAMES: [(&str, Fields); 15] = [
    ("LABELS", Fields::LABELS),
    ("ANNOTATIONS", Fields::ANNOTATIONS),
    ("CONTAINERS", Fields::CONTAINERS),
    ("SECURITY_CONTEXT", Fields::SECURITY_CONTEXT),
    ("PORTS", Fields::PORTS),
    ("RESOURCES", Fields::RESOURCES),
    ("ENV", Fields::ENV),
    ("PROBES", Fields::PROBES),
    ("LIFECYCLE", Fields::LIFECYCLE),
    ("POD_SECURITY_CONTEXT", Fields::POD_SECURITY_CONTEXT),
    ("VOLUMES", Fields::VOLUMES),
    ("AFFINITY", Fields::AFFINITY),
    ("TOPOLOGY_SPREAD", Fields::TOPOLOGY_SPREAD),
    ("SELECTOR", Fields::SELECTOR),
    ("VOLUME_CLAIM_TEMPLATES", Fields::VOLUME_CLAIM_TEMPLATES),
];

impl std::fmt::Debug for Fields {
    /// `Fields(SECURITY_CONTEXT | POD_SECURITY_CONTEXT)`, `Fields::ALL`, `Fields::NONE`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Fields::ALL => return f.write_str("Fields::ALL"),
            Fields::NONE => return f.write_str("Fields::NONE"),
            _ => {}
        }
        // CONTAINERS is named only when no container part (which includes it) is.
        let container_part = NAMES
            .iter()
            .any(|(_, part)| *part != Fields::CONTAINERS && part.contains(Fields::CONTAINERS) && self.contains(*part));
        let names: Vec<&str> = NAMES
            .iter()
            .filter(|(name, part)| self.contains(*part) && !(*name == "CONTAINERS" && container_part))
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

/// Generates a `deserialize_with` function for a field read only when `part`
/// is in the mask: otherwise its value is skipped and it gets its `Default`.
/// Read, `null` is the `Default` too (as [`crate::pod::nullable`]).
macro_rules! masked {
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
        for part in
            [Fields::SECURITY_CONTEXT, Fields::PORTS, Fields::RESOURCES, Fields::ENV, Fields::PROBES, Fields::LIFECYCLE]
        {
            assert!(part.contains(Fields::CONTAINERS), "{part:?}");
            assert!(!Fields::CONTAINERS.contains(part), "{part:?}");
        }
        assert!(Fields::ALL.contains(Fields::LABELS | Fields::VOLUME_CLAIM_TEMPLATES));
        assert!(!Fields::NONE.contains(Fields::LABELS));
        assert!(Fields::LABELS.contains(Fields::NONE));
        assert!(!(Fields::PORTS | Fields::ENV).contains(Fields::PROBES));
    }

    #[test]
    fn debug_names_the_parts() {
        assert_eq!(
            format!("{:?}", Fields::SECURITY_CONTEXT | Fields::POD_SECURITY_CONTEXT),
            "Fields(SECURITY_CONTEXT | POD_SECURITY_CONTEXT)"
        );
        assert_eq!(format!("{:?}", Fields::CONTAINERS | Fields::LABELS), "Fields(LABELS | CONTAINERS)");
        assert_eq!(format!("{:?}", Fields::ALL), "Fields::ALL");
        assert_eq!(format!("{:?}", Fields::NONE), "Fields::NONE");
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
