//! Small typed views of the non-pod objects more than one rule reads, with the
//! field names of the Kubernetes API types.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;

use crate::inventory;
use crate::pod::{ObjectMeta, nullable};

/// A HorizontalPodAutoscaler (`autoscaling/v2`, `v1` reads the same here).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct HorizontalPodAutoscaler {
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: HpaSpec,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaSpec {
    #[serde(default, deserialize_with = "nullable")]
    pub scale_target_ref: CrossVersionObjectReference,
    pub min_replicas: Option<i64>,
    pub max_replicas: Option<i64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossVersionObjectReference {
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub api_version: String,
}

impl HorizontalPodAutoscaler {
    /// `spec.minReplicas`, defaulting to 1 as the API server does.
    pub fn min_replicas(&self) -> i64 {
        self.spec.min_replicas.unwrap_or(1)
    }

    pub fn targets(&self, kind: &str, name: &str) -> bool {
        self.spec.scale_target_ref.kind == kind && self.spec.scale_target_ref.name == name
    }
}

/// A PodDisruptionBudget (`policy/v1`). Budgets are IntOrString: kept as JSON.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct PodDisruptionBudget {
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: PdbSpec,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PdbSpec {
    /// A null selector selects nothing; `{}` every pod of the namespace.
    pub selector: Option<crate::selector::LabelSelector>,
    pub min_available: Option<serde_json::Value>,
    pub max_unavailable: Option<serde_json::Value>,
}

/// The HorizontalPodAutoscaler of the checked set, in the same namespace, that
/// scales `kind`/`name`, if any.
pub fn hpa_for(kind: &str, name: &str, namespace: Option<&str>) -> Result<Option<HorizontalPodAutoscaler>, String> {
    let hpas = inventory::same_namespace_cached::<HorizontalPodAutoscaler>("HorizontalPodAutoscaler", namespace)?;
    Ok(hpas.iter().find(|h| h.targets(kind, name)).cloned())
}

/// Workloads of the checked set in the same namespace, of the given kinds.
pub fn workloads(kinds: &[&str], namespace: Option<&str>) -> Result<Vec<crate::Workload>, String> {
    workloads_reading(kinds, namespace, crate::Fields::ALL)
}

/// [`workloads`], building only the parts in `reads` (see [`crate::Fields`]).
pub fn workloads_reading(
    kinds: &[&str],
    namespace: Option<&str>,
    reads: crate::Fields,
) -> Result<Vec<crate::Workload>, String> {
    let mut out = Vec::new();
    for kind in kinds {
        out.extend(workloads_of_kind(kind, namespace, reads)?.iter().cloned());
    }
    Ok(out)
}

/// The workloads of one kind, read once per instance, namespace and `reads`
/// (see [`inventory`]); the first object that does not read is the error.
fn workloads_of_kind(
    kind: &str,
    namespace: Option<&str>,
    reads: crate::Fields,
) -> Result<Rc<Vec<crate::Workload>>, String> {
    /// Per list: the workloads read with each `Fields` asked for.
    type ByFields = RefCell<Vec<(crate::Fields, Result<Rc<Vec<crate::Workload>>, String>)>>;
    let namespace = Some(namespace.unwrap_or(""));
    let memo = inventory::derived::<ByFields>(kind, namespace, |_| RefCell::new(Vec::new()));
    if let Some((_, found)) = memo.borrow().iter().find(|(f, _)| *f == reads) {
        return found.clone();
    }
    let read = inventory::list_shared(kind, namespace)
        .iter()
        .filter_map(|json| crate::Workload::from_json_reading(json, reads).map_err(|e| e.0).transpose())
        .collect::<Result<Vec<_>, String>>()
        .map(Rc::new);
    memo.borrow_mut().push((reads, read.clone()));
    read
}
