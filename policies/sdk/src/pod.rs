//! The fields of a pod that hardening rules read, as small typed structs.
//!
//! Field names and types follow `k8s.io/api/core/v1` (the Kubernetes API types,
//! as k8s-openapi mirrors them). Only the fields a rule reads are declared:
//! serde skips the rest without building them, which keeps components small and
//! evaluation fast (see the SDK's README for the measurements behind this choice).
//!
//! Every field is optional and `null` is read as absent, as Go's decoder does
//! for pointer fields, so `securityContext: null` means "not set".

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::fields::{Fields, masked};

masked!(labels, Fields::LABELS);
masked!(annotations, Fields::ANNOTATIONS);
masked!(containers, Fields::CONTAINER_NAMES);
masked!(image, Fields::CONTAINERS);
masked!(service_account, Fields::SERVICE_ACCOUNT);
masked!(security_context, Fields::READ_ONLY_ROOT_FILESYSTEM);
masked!(optional security_context_field, Fields::SECURITY_CONTEXT);
masked!(ports, Fields::PORTS);
masked!(resources, Fields::RESOURCES);
masked!(env, Fields::ENV);
masked!(liveness_probe, Fields::LIVENESS_PROBE);
masked!(readiness_probe, Fields::READINESS_PROBE);
masked!(startup_probe, Fields::STARTUP_PROBE);
masked!(lifecycle, Fields::LIFECYCLE);
masked!(pod_security_context, Fields::POD_SECURITY_CONTEXT);
masked!(volumes, Fields::VOLUMES);
masked!(affinity, Fields::AFFINITY);
masked!(topology_spread, Fields::TOPOLOGY_SPREAD);
masked!(selector, Fields::SELECTOR);
masked!(volume_claim_templates, Fields::VOLUME_CLAIM_TEMPLATES);

/// Read a field whose JSON `null` means "not set", for types with a natural empty value.
pub(crate) fn nullable<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub namespace: String,
    #[serde(default, deserialize_with = "labels")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "annotations")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub host_network: Option<bool>,
    #[serde(rename = "hostPID")]
    pub host_pid: Option<bool>,
    #[serde(rename = "hostIPC")]
    pub host_ipc: Option<bool>,
    pub host_users: Option<bool>,
    pub os: Option<PodOs>,
    // Boxed: in a component each move of a struct this size is a
    // `memory.copy` call; the box moves as a pointer.
    #[serde(default, deserialize_with = "pod_security_context")]
    pub security_context: Option<Box<PodSecurityContext>>,
    #[serde(default, deserialize_with = "volumes")]
    pub volumes: Vec<Volume>,
    #[serde(default, deserialize_with = "containers")]
    pub init_containers: Vec<Container>,
    #[serde(default, deserialize_with = "containers")]
    pub containers: Vec<Container>,
    #[serde(default, deserialize_with = "containers")]
    pub ephemeral_containers: Vec<Container>,
    // A controller's spec holds its pod template here. Reading the controller
    // fields and the pod fields with one struct reads all nine kinds in one pass
    // (serde's `flatten` would buffer the whole spec first).
    pub(crate) template: Option<Box<Template>>,
    pub(crate) job_template: Option<Box<JobTemplate>>,
    // Controller fields, surfaced by `Workload`.
    pub(crate) replicas: Option<i64>,
    #[serde(default, deserialize_with = "selector")]
    pub(crate) selector: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "volume_claim_templates")]
    pub(crate) volume_claim_templates: Vec<PersistentVolumeClaim>,
    #[serde(default, deserialize_with = "service_account")]
    pub service_account_name: Option<String>,
    /// Deprecated alias of `serviceAccountName`.
    #[serde(default, deserialize_with = "service_account")]
    pub service_account: Option<String>,
    pub restart_policy: Option<String>,
    #[serde(default, deserialize_with = "service_account")]
    pub automount_service_account_token: Option<bool>,
    #[serde(default, deserialize_with = "affinity")]
    pub affinity: Option<Affinity>,
    #[serde(default, deserialize_with = "topology_spread")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
}

/// A PersistentVolumeClaim (a StatefulSet's `volumeClaimTemplates` entry, or the object).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct PersistentVolumeClaim {
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: PersistentVolumeClaimSpec,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeClaimSpec {
    pub storage_class_name: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Affinity {
    pub pod_anti_affinity: Option<PodAntiAffinity>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodAntiAffinity {
    #[serde(default, deserialize_with = "nullable")]
    pub required_during_scheduling_ignored_during_execution: Vec<PodAffinityTerm>,
    #[serde(default, deserialize_with = "nullable")]
    pub preferred_during_scheduling_ignored_during_execution: Vec<WeightedPodAffinityTerm>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodAffinityTerm {
    pub label_selector: Option<crate::selector::LabelSelector>,
    #[serde(default, deserialize_with = "nullable")]
    pub topology_key: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedPodAffinityTerm {
    #[serde(default, deserialize_with = "nullable")]
    pub pod_affinity_term: PodAffinityTerm,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopologySpreadConstraint {
    #[serde(default, deserialize_with = "nullable")]
    pub topology_key: String,
    pub label_selector: Option<crate::selector::LabelSelector>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Template {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) spec: Box<PodSpec>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct JobTemplate {
    pub(crate) spec: Option<JobSpec>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct JobSpec {
    pub(crate) template: Option<Template>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct PodOs {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityContext {
    pub run_as_non_root: Option<bool>,
    pub run_as_user: Option<i64>,
    #[serde(rename = "seLinuxOptions")]
    pub se_linux_options: Option<SeLinuxOptions>,
    pub seccomp_profile: Option<SeccompProfile>,
    pub app_armor_profile: Option<AppArmorProfile>,
    #[serde(default, deserialize_with = "nullable")]
    pub sysctls: Vec<Sysctl>,
    pub windows_options: Option<WindowsOptions>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct Sysctl {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct SeLinuxOptions {
    #[serde(default, deserialize_with = "nullable")]
    pub user: String,
    #[serde(default, deserialize_with = "nullable")]
    pub role: String,
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub type_: String,
    #[serde(default, deserialize_with = "nullable")]
    pub level: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfile {
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub type_: String,
    pub localhost_profile: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppArmorProfile {
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub type_: String,
    pub localhost_profile: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowsOptions {
    pub host_process: Option<bool>,
}

/// A volume: its name and which volume sources it sets (a source set to
/// `null` is not set).
#[derive(Debug, Default, Clone)]
pub struct Volume {
    pub name: String,
    pub sources: BTreeMap<String, Option<IgnoredAny>>,
}

// By hand rather than with `#[serde(flatten)]`, which buffers every volume
// before reading it.
impl<'de> Deserialize<'de> for Volume {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Volume;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("struct Volume")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Volume, A::Error> {
                let mut volume = Volume::default();
                let mut named = false;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "name" {
                        if named {
                            return Err(serde::de::Error::duplicate_field("name"));
                        }
                        named = true;
                        volume.name = map.next_value::<Option<String>>()?.unwrap_or_default();
                    } else {
                        let value = map.next_value::<Option<IgnoredAny>>()?;
                        volume.sources.insert(key, value);
                    }
                }
                Ok(volume)
            }
        }
        de.deserialize_map(Visit)
    }
}

impl Volume {
    /// The volume source keys that are set, in name order.
    pub fn set_sources(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().filter(|(_, v)| v.is_some()).map(|(k, _)| k.as_str())
    }

    pub fn has_source(&self, key: &str) -> bool {
        matches!(self.sources.get(key), Some(Some(_)))
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "image")]
    pub image: String,
    #[serde(default, deserialize_with = "ports")]
    pub ports: Vec<ContainerPort>,
    // Boxed: moving a container moves only a pointer for it (see `PodSpec`).
    #[serde(default, deserialize_with = "security_context")]
    pub security_context: Option<Box<SecurityContext>>,
    #[serde(default, deserialize_with = "resources")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, deserialize_with = "env")]
    pub env: Vec<EnvVar>,
    #[serde(default, deserialize_with = "liveness_probe")]
    pub liveness_probe: Option<Probe>,
    #[serde(default, deserialize_with = "readiness_probe")]
    pub readiness_probe: Option<Probe>,
    #[serde(default, deserialize_with = "startup_probe")]
    pub startup_probe: Option<Probe>,
    #[serde(default, deserialize_with = "lifecycle")]
    pub lifecycle: Option<Lifecycle>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub host_port: Option<i64>,
    pub container_port: Option<i64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    #[serde(default, deserialize_with = "security_context_field")]
    pub privileged: Option<bool>,
    #[serde(default, deserialize_with = "security_context_field")]
    pub capabilities: Option<Capabilities>,
    #[serde(default, deserialize_with = "security_context_field")]
    pub allow_privilege_escalation: Option<bool>,
    #[serde(default, deserialize_with = "security_context_field")]
    pub proc_mount: Option<String>,
    #[serde(default, deserialize_with = "security_context_field")]
    pub run_as_non_root: Option<bool>,
    #[serde(default, deserialize_with = "security_context_field")]
    pub run_as_user: Option<i64>,
    #[serde(rename = "seLinuxOptions")]
    #[serde(default, deserialize_with = "security_context_field")]
    pub se_linux_options: Option<SeLinuxOptions>,
    #[serde(default, deserialize_with = "security_context_field")]
    pub seccomp_profile: Option<SeccompProfile>,
    #[serde(default, deserialize_with = "security_context_field")]
    pub app_armor_profile: Option<AppArmorProfile>,
    #[serde(default, deserialize_with = "security_context_field")]
    pub windows_options: Option<WindowsOptions>,
    pub read_only_root_filesystem: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct Capabilities {
    #[serde(default, deserialize_with = "nullable")]
    pub add: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub drop: Vec<String>,
}

/// A probe or lifecycle handler: only the fields that can point at another host.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handler {
    pub http_get: Option<HostField>,
    pub tcp_socket: Option<HostField>,
}

/// A probe: the fields that can point at another host, and the probe's JSON
/// text, to compare one probe with another without building a tree for it.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Read only when the rule reads [`Fields::PROBES`] (its default
    /// otherwise), or when the probe is not a JSON object.
    pub handler: Handler,
    pub raw: Box<serde_json::value::RawValue>,
    /// Why the handler does not read: the path within the probe and the
    /// message. The probe's text reads (it is JSON); its handler is read a
    /// second time, from that text, and an error there is reported by the
    /// workload's reading with the probe's own path ([`PodSpec::probe_error`]), not
    /// where the reader stands after the probe, which would depend on what
    /// follows the probe in the object (and so on what a host prunes).
    pub(crate) error: Option<(String, String)>,
}

impl Probe {
    /// The probe as a JSON value (for comparisons that ignore key order).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.raw.get()).unwrap_or_default()
    }

    /// Whether the two probes hold the same JSON value: `a.value() ==
    /// b.value()`, without building either value ([`crate::json_eq::equal`]).
    pub fn same_as(&self, other: &Probe) -> bool {
        crate::json_eq::equal(&self.raw, &other.raw)
    }
}

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(de)?;
        // A rule that reads no hosts takes an object as it is (its handler is
        // that rule's default, as for a field outside its mask). Anything
        // else than an object is no probe, for every rule: reading it as a
        // handler says why.
        if !crate::fields::reading(Fields::PROBE_HANDLERS) && raw.get().starts_with('{') {
            return Ok(Probe { handler: Handler::default(), raw, error: None });
        }
        match serde_json::from_str::<Option<Handler>>(raw.get()) {
            Ok(handler) => Ok(Probe { handler: handler.unwrap_or_default(), raw, error: None }),
            Err(e) => {
                let message = e.to_string();
                let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m).to_string();
                // One line of JSON (as hosts hand objects): the column is an offset into the probe.
                let inner =
                    if e.line() == 1 { crate::json_path::path_at(raw.get(), e.column()) } else { String::new() };
                Ok(Probe { handler: Handler::default(), raw, error: Some((inner, message)) })
            }
        }
    }
}

impl PodSpec {
    /// The first probe, in the order the rules visit containers, whose handler
    /// did not read ([`Probe::error`]), in this spec or in a template it
    /// holds: its field path from this spec, and the message. The path is
    /// made only for an error.
    pub(crate) fn probe_error(&self) -> Option<(String, &str)> {
        let lists = [
            ("initContainers", &self.init_containers),
            ("containers", &self.containers),
            ("ephemeralContainers", &self.ephemeral_containers),
        ];
        for (list, containers) in lists {
            for (i, c) in containers.iter().enumerate() {
                let probes = [
                    ("livenessProbe", &c.liveness_probe),
                    ("readinessProbe", &c.readiness_probe),
                    ("startupProbe", &c.startup_probe),
                ];
                for (name, probe) in probes {
                    if let Some((inner, message)) = probe.as_ref().and_then(|p| p.error.as_ref()) {
                        let dot = if inner.is_empty() { "" } else { "." };
                        return Some((format!("{list}[{i}].{name}{dot}{inner}"), message));
                    }
                }
            }
        }
        if let Some((path, message)) = self.template.as_deref().and_then(|t| t.spec.probe_error()) {
            return Some((format!("template.spec.{path}"), message));
        }
        let template = self.job_template.as_deref()?.spec.as_ref()?.template.as_ref()?;
        let (path, message) = template.spec.probe_error()?;
        Some((format!("jobTemplate.spec.template.spec.{path}"), message))
    }
}

/// `resources` of a container. Quantities are kept as given (string or number);
/// a `null` quantity counts as absent.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ResourceRequirements {
    #[serde(default, deserialize_with = "nullable")]
    pub requests: BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub limits: BTreeMap<String, serde_json::Value>,
}

impl ResourceRequirements {
    pub fn request(&self, name: &str) -> Option<&serde_json::Value> {
        self.requests.get(name).filter(|v| !v.is_null())
    }

    pub fn limit(&self, name: &str) -> Option<&serde_json::Value> {
        self.limits.get(name).filter(|v| !v.is_null())
    }
}

/// An environment variable: a literal `value` or a `valueFrom` reference.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    pub value: Option<String>,
    pub value_from: Option<IgnoredAny>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct HostField {
    #[serde(default, deserialize_with = "nullable")]
    pub host: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    pub post_start: Option<Handler>,
    pub pre_stop: Option<Handler>,
}
