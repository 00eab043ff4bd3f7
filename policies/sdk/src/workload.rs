//! Finding the pod inside any of the nine pod-bearing kinds, and walking its
//! containers with correct field paths.
//!
//! Where the pod template sits follows the Kubernetes API types:
//! `Pod` at `.spec`, `PodTemplate` at `.template.spec`, `CronJob` at
//! `.spec.jobTemplate.spec.template.spec`, the other controllers at
//! `.spec.template.spec`.

use serde::Deserialize;

use crate::fields::Fields;
use crate::pod::{Container, ObjectMeta, PersistentVolumeClaim, PodSpec, Template, nullable};
use crate::selector::LabelSelector;

/// Every kind that carries a pod template.
pub const POD_KINDS: [&str; 9] = [
    "Pod",
    "PodTemplate",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "DaemonSet",
    "StatefulSet",
    "Job",
    "CronJob",
];

/// The kinds whose pods run: every pod-bearing kind but PodTemplate.
pub const WORKLOAD_KINDS: [&str; 8] =
    ["Pod", "ReplicationController", "ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob"];

/// Two lists of kinds as one, for a rule's `applies_to` or `reads_kinds`:
/// `a` then `b`; `C` must be their total length (checked when compiling).
pub const fn join_kinds<const A: usize, const B: usize, const C: usize>(
    a: [&'static str; A],
    b: [&'static str; B],
) -> [&'static str; C] {
    assert!(A + B == C);
    let mut out = [""; C];
    let mut i = 0;
    while i < A + B {
        out[i] = if i < A { a[i] } else { b[i - A] };
        i += 1;
    }
    out
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "nullable")]
    kind: String,
    #[serde(default, deserialize_with = "nullable")]
    metadata: ObjectMeta,
    // Boxed, as in `Template`: a pod spec is a few hundred bytes, and each
    // move of one is a `memory.copy` call in a component.
    spec: Option<Box<PodSpec>>,
    template: Option<Template>,
}

/// The pod of a workload, with where it sits in the object.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The object's kind.
    pub kind: String,
    /// The object's own metadata.
    pub object_meta: ObjectMeta,
    /// The pod's metadata (the template's for controllers).
    pub pod_meta: ObjectMeta,
    pub spec: Box<PodSpec>,
    /// JSON pointer of the pod spec, e.g. `/spec/template/spec`.
    pub spec_path: &'static str,
    /// JSON pointer of the pod metadata, e.g. `/spec/template/metadata`.
    pub meta_path: &'static str,
    /// `spec.replicas` of a controller that has it, as written.
    pub replicas: Option<i64>,
    /// `spec.selector` of a controller (a ReplicationController's plain map
    /// read as `matchLabels`); `None` when absent or for kinds without one.
    pub selector: Option<LabelSelector>,
    /// A StatefulSet's `spec.volumeClaimTemplates`.
    pub volume_claim_templates: Vec<PersistentVolumeClaim>,
}

/// Why an object could not be read as a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadError(pub String);

impl std::fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<WorkloadError> for String {
    fn from(e: WorkloadError) -> String {
        e.0
    }
}

impl Workload {
    /// Read a workload from the object's JSON. `Ok(None)` for an object that is
    /// not a pod-bearing kind.
    pub fn from_json(json: &str) -> Result<Option<Workload>, WorkloadError> {
        Self::from_json_reading(json, Fields::ALL)
    }

    /// Read a workload from the object's JSON, building only the parts in
    /// `reads` (a rule's `READS`): the others are skipped and left empty. See
    /// [`Fields`] for what is always read.
    pub fn from_json_reading(json: &str, reads: Fields) -> Result<Option<Workload>, WorkloadError> {
        let env: Envelope = {
            let _reading = crate::fields::Reading::start(reads);
            serde_json::from_str(json)
        }
        .map_err(|e| WorkloadError(format!("cannot read the object: {}", crate::json_path::explain(json, &e))))?;
        // A probe's handler that did not read, named by the probe's path (see `pod::Probe`).
        let probe_error =
            env.spec.as_deref().and_then(PodSpec::probe_error).map(|(path, m)| (format!("spec.{path}"), m));
        let probe_error = probe_error.or_else(|| {
            env.template.as_ref()?.spec.probe_error().map(|(path, m)| (format!("template.spec.{path}"), m))
        });
        if let Some((path, message)) = probe_error {
            return Err(WorkloadError(format!("cannot read the object: field `{path}`: {message}")));
        }
        Self::from_envelope(env)
    }

    fn from_envelope(env: Envelope) -> Result<Option<Workload>, WorkloadError> {
        let Envelope { kind, metadata, mut spec, template } = env;
        let (replicas, raw_selector, volume_claim_templates) = match (&mut spec, kind.as_str()) {
            (Some(s), "ReplicationController" | "ReplicaSet" | "Deployment" | "DaemonSet" | "StatefulSet" | "Job") => {
                (s.replicas, s.selector.take(), std::mem::take(&mut s.volume_claim_templates))
            }
            _ => (None, None, Vec::new()),
        };
        let selector = match raw_selector {
            None | Some(serde_json::Value::Null) => None,
            Some(v) if kind == "ReplicationController" => Some(LabelSelector::from_map(
                serde_json::from_value(v).map_err(|e| WorkloadError(format!("field `spec.selector`: {e}")))?,
            )),
            Some(v) => {
                Some(serde_json::from_value(v).map_err(|e| WorkloadError(format!("field `spec.selector`: {e}")))?)
            }
        };
        let (pod_meta, spec, spec_path, meta_path) = match kind.as_str() {
            "Pod" => (
                metadata.clone(),
                spec.map(|mut s| {
                    s.template = None;
                    s.job_template = None;
                    s
                })
                .unwrap_or_default(),
                "/spec",
                "/metadata",
            ),
            "PodTemplate" => {
                let t = template.unwrap_or_else(empty_template);
                (t.metadata, t.spec, "/template/spec", "/template/metadata")
            }
            "ReplicationController" | "ReplicaSet" | "Deployment" | "DaemonSet" | "StatefulSet" | "Job" => {
                let t = spec.and_then(|s| s.template).map(|t| *t).unwrap_or_else(empty_template);
                (t.metadata, t.spec, "/spec/template/spec", "/spec/template/metadata")
            }
            "CronJob" => {
                let t = spec
                    .and_then(|s| s.job_template)
                    .and_then(|j| j.spec)
                    .and_then(|j| j.template)
                    .unwrap_or_else(empty_template);
                (t.metadata, t.spec, "/spec/jobTemplate/spec/template/spec", "/spec/jobTemplate/spec/template/metadata")
            }
            _ => return Ok(None),
        };
        Ok(Some(Workload {
            kind,
            object_meta: metadata,
            pod_meta,
            spec,
            spec_path,
            meta_path,
            replicas,
            selector,
            volume_claim_templates,
        }))
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.object_meta.name
    }

    /// The object's namespace, if the manifest sets one.
    pub fn namespace(&self) -> Option<&str> {
        Some(self.object_meta.namespace.as_str()).filter(|n| !n.is_empty())
    }

    /// Replicas a Deployment, StatefulSet, ReplicaSet or ReplicationController
    /// runs: `spec.replicas`, defaulting to 1 as the API server does. `None`
    /// for other kinds.
    pub fn desired_replicas(&self) -> Option<i64> {
        match self.kind.as_str() {
            "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController" => Some(self.replicas.unwrap_or(1)),
            _ => None,
        }
    }

    /// Whether the pods run until stopped: not Jobs, CronJobs, or bare pods
    /// whose `restartPolicy` lets them complete.
    pub fn is_long_running(&self) -> bool {
        match self.kind.as_str() {
            "Job" | "CronJob" => false,
            "Pod" | "PodTemplate" => self.spec.restart_policy.as_deref().is_none_or(|p| p == "Always"),
            _ => true,
        }
    }

    /// Every container of the pod, in the order Kubernetes' own `visitContainers`
    /// uses: init containers, containers, ephemeral containers.
    pub fn containers(&self) -> impl Iterator<Item = ContainerRef<'_>> {
        let groups: [(&'static str, &Vec<Container>, ContainerKind); 3] = [
            ("initContainers", &self.spec.init_containers, ContainerKind::Init),
            ("containers", &self.spec.containers, ContainerKind::Regular),
            ("ephemeralContainers", &self.spec.ephemeral_containers, ContainerKind::Ephemeral),
        ];
        let spec_path = self.spec_path;
        groups.into_iter().flat_map(move |(field, list, kind)| {
            list.iter().enumerate().map(move |(index, container)| ContainerRef {
                container,
                kind,
                field,
                index,
                spec_path,
            })
        })
    }

    /// JSON pointer of a field below the pod spec, e.g. `spec_field("hostNetwork")`.
    pub fn spec_field(&self, field: &str) -> String {
        format!("{}/{}", self.spec_path, field)
    }

    /// JSON pointer of a pod annotation.
    pub fn annotation_path(&self, key: &str) -> String {
        format!("{}/annotations/{}", self.meta_path, escape_pointer(key))
    }

    /// True when the pod declares `spec.os.name: windows`.
    pub fn is_windows(&self) -> bool {
        self.spec.os.as_ref().is_some_and(|os| os.name == "windows")
    }
}

fn empty_template() -> Template {
    Template::default()
}

/// Which list a container comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    Init,
    Regular,
    Ephemeral,
}

/// A container with the path to it.
#[derive(Debug, Clone, Copy)]
pub struct ContainerRef<'a> {
    pub container: &'a Container,
    pub kind: ContainerKind,
    field: &'static str,
    index: usize,
    spec_path: &'static str,
}

impl<'a> ContainerRef<'a> {
    /// JSON pointer of the container, e.g. `/spec/containers/0`.
    pub fn path(&self) -> String {
        format!("{}/{}/{}", self.spec_path, self.field, self.index)
    }

    /// JSON pointer of a field below the container, e.g. `field("securityContext/privileged")`.
    pub fn field(&self, rest: &str) -> String {
        format!("{}/{}/{}/{}", self.spec_path, self.field, self.index, rest)
    }

    pub fn name(&self) -> &'a str {
        &self.container.name
    }
}

/// Escape a JSON pointer reference token (RFC 6901: `~` → `~0`, `/` → `~1`).
pub fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_json(kind: &str) -> String {
        let pod = r#"{"metadata":{"labels":{"app":"x"}},"spec":{"initContainers":[{"name":"i"}],"containers":[{"name":"a"},{"name":"b"}],"ephemeralContainers":[{"name":"e"}],"hostNetwork":true}}"#;
        match kind {
            "Pod" => r#"{"kind":"Pod","metadata":{"name":"p","labels":{"app":"x"}},"spec":{"initContainers":[{"name":"i"}],"containers":[{"name":"a"},{"name":"b"}],"ephemeralContainers":[{"name":"e"}],"hostNetwork":true}}"#.to_string(),
            "PodTemplate" => format!(r#"{{"kind":"PodTemplate","template":{pod}}}"#),
            "CronJob" => format!(
                r#"{{"kind":"CronJob","spec":{{"schedule":"* * * * *","jobTemplate":{{"spec":{{"template":{pod}}}}}}}}}"#
            ),
            other => format!(r#"{{"kind":"{other}","spec":{{"replicas":3,"template":{pod}}}}}"#),
        }
    }

    #[test]
    fn finds_the_pod_in_all_nine_kinds() {
        for kind in POD_KINDS {
            let w = Workload::from_json(&pod_json(kind)).unwrap().unwrap();
            assert_eq!(w.kind, kind);
            assert_eq!(w.spec.host_network, Some(true), "{kind}");
            assert_eq!(w.pod_meta.labels.get("app").map(String::as_str), Some("x"));
            let names: Vec<_> = w.containers().map(|c| c.name()).collect();
            assert_eq!(names, ["i", "a", "b", "e"], "{kind}");
        }
    }

    #[test]
    fn container_paths_point_at_the_container() {
        let cases = [
            ("Pod", "/spec/containers/1"),
            ("PodTemplate", "/template/spec/containers/1"),
            ("Deployment", "/spec/template/spec/containers/1"),
            ("CronJob", "/spec/jobTemplate/spec/template/spec/containers/1"),
        ];
        for (kind, expected) in cases {
            let w = Workload::from_json(&pod_json(kind)).unwrap().unwrap();
            let b = w.containers().find(|c| c.name() == "b").unwrap();
            assert_eq!(b.path(), expected);
            assert_eq!(b.kind, ContainerKind::Regular);
        }
        let w = Workload::from_json(&pod_json("Job")).unwrap().unwrap();
        let e = w.containers().last().unwrap();
        assert_eq!(e.field("securityContext"), "/spec/template/spec/ephemeralContainers/0/securityContext");
        assert_eq!(e.kind, ContainerKind::Ephemeral);
    }

    #[test]
    fn controller_fields() {
        let w = Workload::from_json(&pod_json("Deployment")).unwrap().unwrap();
        assert_eq!(w.desired_replicas(), Some(3));
        assert!(w.is_long_running());
        let w = Workload::from_json(
            r#"{"kind":"ReplicationController","spec":{"selector":{"app":"x"},"template":{"spec":{}}}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(w.selector.as_ref().unwrap().match_labels.get("app").map(String::as_str), Some("x"));
        assert_eq!(w.desired_replicas(), Some(1), "replicas default to 1");
        let w = Workload::from_json(
            r#"{"kind":"StatefulSet","spec":{"selector":{"matchLabels":{"a":"b"}},"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"storageClassName":"fast"}}],"template":{"spec":{}}}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(w.volume_claim_templates[0].spec.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(w.selector.unwrap().match_labels.len(), 1);
        let w = Workload::from_json(&pod_json("Job")).unwrap().unwrap();
        assert!(!w.is_long_running());
        assert_eq!(w.desired_replicas(), None);
        let w = Workload::from_json(r#"{"kind":"Pod","spec":{"restartPolicy":"Never"}}"#).unwrap().unwrap();
        assert!(!w.is_long_running());
    }

    #[test]
    fn other_kinds_are_not_workloads() {
        assert!(Workload::from_json(r#"{"kind":"Service","spec":{}}"#).unwrap().is_none());
    }

    #[test]
    fn null_fields_are_absent_and_missing_templates_are_empty() {
        let w = Workload::from_json(r#"{"kind":"Deployment","spec":null,"metadata":null}"#).unwrap().unwrap();
        assert_eq!(w.containers().count(), 0);
        let w = Workload::from_json(
            r#"{"kind":"Pod","spec":{"securityContext":null,"containers":null,"volumes":[{"name":"v","hostPath":null,"emptyDir":{}}]}}"#,
        )
        .unwrap()
        .unwrap();
        assert!(w.spec.security_context.is_none());
        let sources: Vec<_> = w.spec.volumes[0].set_sources().collect();
        assert_eq!(sources, ["emptyDir"]);
    }

    #[test]
    fn wrong_field_types_are_errors() {
        let err = Workload::from_json(r#"{"kind":"Pod","spec":{"hostNetwork":"yes"}}"#).unwrap_err();
        assert!(err.0.contains("invalid type"), "{err}");
        // A probe is read twice (its text, then its handler): an error in the
        // handler names the probe's own path, whatever comes before or after
        // the probe in the object, so a host that prunes what follows it
        // changes nothing.
        let cases = [
            (
                r#"{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"livenessProbe":"x"}]}}"#,
                "spec.containers[0].livenessProbe",
                "invalid type: string \"x\", expected struct Handler",
            ),
            (
                r#"{"kind":"Pod","spec":{"containers":[{"livenessProbe":{"httpGet":{"host":7}}}]}}"#,
                "spec.containers[0].livenessProbe.httpGet.host",
                "invalid type: integer `7`, expected a string",
            ),
            (
                r#"{"kind":"Pod","spec":{"containers":[{"livenessProbe":{"httpGet":{"host":7}},"name":"a"}]}}"#,
                "spec.containers[0].livenessProbe.httpGet.host",
                "invalid type: integer `7`, expected a string",
            ),
            (
                r#"{"kind":"Pod","spec":{"containers":[{"name":"a"},{"readinessProbe":{"tcpSocket":"x"},"image":"x"}]}}"#,
                "spec.containers[1].readinessProbe.tcpSocket",
                "invalid type: string \"x\", expected struct HostField",
            ),
            (
                r#"{"kind":"CronJob","spec":{"jobTemplate":{"spec":{"template":{"spec":{"initContainers":[{"startupProbe":{"tcpSocket":{"host":false}}}]}}}}}}"#,
                "spec.jobTemplate.spec.template.spec.initContainers[0].startupProbe.tcpSocket.host",
                "invalid type: boolean `false`, expected a string",
            ),
            (
                r#"{"kind":"PodTemplate","template":{"spec":{"containers":[{"livenessProbe":7}]}}}"#,
                "template.spec.containers[0].livenessProbe",
                "invalid type: integer `7`, expected struct Handler",
            ),
        ];
        for (object, path, message) in cases {
            let err = Workload::from_json(object).unwrap_err();
            assert_eq!(err.0, format!("cannot read the object: field `{path}`: {message}"), "{object}");
            // Pruned as a host prunes for a rule that reads probes: the same error.
            let pruned = crate::fields::prune_to(&serde_json::from_str(object).unwrap(), Fields::PROBES).to_string();
            assert_eq!(Workload::from_json_reading(&pruned, Fields::PROBES).unwrap_err().0, err.0, "{pruned}");
        }
        // Not reading probes, a broken probe is no error.
        let (object, _, _) = cases[1];
        assert!(Workload::from_json_reading(object, Fields::SECURITY_CONTEXT).is_ok());
        // Reading a probe but not its hosts, a broken handler is no error
        // either; a probe that is not an object still is.
        let probes = Fields::LIVENESS_PROBE | Fields::READINESS_PROBE | Fields::STARTUP_PROBE;
        for (n, (object, _, _)) in cases.iter().enumerate() {
            let outcome = Workload::from_json_reading(object, probes);
            let not_an_object = object.contains(r#"Probe":7"#) || object.contains(r#"Probe":"x""#);
            assert_eq!(outcome.is_err(), not_an_object, "case {n}: {object}");
            if let Err(e) = outcome {
                assert_eq!(e.0, Workload::from_json(object).unwrap_err().0);
            }
        }
    }

    const FULL: &str = r#"{"kind":"StatefulSet","metadata":{"name":"s","namespace":"n","labels":{"a":"1"},"annotations":{"b":"2"}},
        "spec":{"replicas":2,"selector":{"matchLabels":{"a":"1"}},"volumeClaimTemplates":[{"metadata":{"name":"d"}}],
        "template":{"metadata":{"labels":{"a":"1"}},"spec":{"hostNetwork":true,"hostUsers":false,"os":{"name":"linux"},
        "restartPolicy":"Always","serviceAccountName":"sa","automountServiceAccountToken":false,
        "securityContext":{"runAsNonRoot":true},"volumes":[{"name":"v","emptyDir":{}}],"affinity":{"podAntiAffinity":{}},
        "topologySpreadConstraints":[{"topologyKey":"zone"}],
        "containers":[{"name":"c","image":"i","ports":[{"containerPort":80}],"securityContext":{"privileged":true},
        "resources":{"limits":{"cpu":"1"}},"env":[{"name":"E","value":"v"}],"livenessProbe":{"tcpSocket":{"port":80}},
        "lifecycle":{"preStop":{"tcpSocket":{"host":"h"}}}}]}}}}"#;

    #[test]
    fn a_mask_builds_only_its_parts_and_the_scalars() {
        let w = Workload::from_json_reading(FULL, Fields::NONE).unwrap().unwrap();
        assert_eq!((w.kind.as_str(), w.name(), w.namespace()), ("StatefulSet", "s", Some("n")));
        assert_eq!(w.replicas, Some(2));
        assert_eq!((w.spec.host_network, w.spec.host_users), (Some(true), Some(false)));
        assert!(!w.is_windows() && w.spec.os.is_some());
        assert_eq!(w.spec.restart_policy.as_deref(), Some("Always"));
        assert!(w.spec.service_account_name.is_none() && w.spec.automount_service_account_token.is_none());
        assert!(
            w.object_meta.labels.is_empty() && w.object_meta.annotations.is_empty() && w.pod_meta.labels.is_empty()
        );
        assert!(w.selector.is_none() && w.volume_claim_templates.is_empty());
        assert!(w.spec.security_context.is_none() && w.spec.volumes.is_empty() && w.spec.affinity.is_none());
        assert!(w.spec.topology_spread_constraints.is_empty());
        assert_eq!(w.containers().count(), 0);

        let w = Workload::from_json_reading(FULL, Fields::SERVICE_ACCOUNT).unwrap().unwrap();
        assert_eq!(w.spec.service_account_name.as_deref(), Some("sa"));
        assert_eq!(w.spec.automount_service_account_token, Some(false));

        let w = Workload::from_json_reading(FULL, Fields::CONTAINER_NAMES).unwrap().unwrap();
        let c = w.containers().next().unwrap().container;
        assert_eq!((c.name.as_str(), c.image.as_str()), ("c", ""));

        let w = Workload::from_json_reading(FULL, Fields::CONTAINERS | Fields::LABELS).unwrap().unwrap();
        assert_eq!(w.pod_meta.labels.len(), 1);
        assert!(w.object_meta.annotations.is_empty());
        let c = w.containers().next().unwrap().container;
        assert_eq!((c.name.as_str(), c.image.as_str()), ("c", "i"));
        assert!(c.ports.is_empty() && c.security_context.is_none() && c.resources.is_none() && c.env.is_empty());
        assert!(c.liveness_probe.is_none() && c.lifecycle.is_none());

        let w = Workload::from_json_reading(FULL, Fields::SECURITY_CONTEXT | Fields::PROBES).unwrap().unwrap();
        let c = w.containers().next().unwrap().container;
        assert!(c.security_context.is_some() && c.liveness_probe.is_some() && c.image.is_empty());
        assert!(c.ports.is_empty() && c.lifecycle.is_none());

        let all = Workload::from_json(FULL).unwrap().unwrap();
        let c = all.containers().next().unwrap().container;
        assert!(c.resources.is_some() && c.lifecycle.is_some() && c.env.len() == 1 && c.ports.len() == 1);
        assert!(all.selector.is_some() && all.volume_claim_templates.len() == 1 && all.spec.volumes.len() == 1);
        assert!(all.spec.affinity.is_some() && all.spec.topology_spread_constraints.len() == 1);
        assert!(all.spec.security_context.is_some() && all.object_meta.annotations.len() == 1);
        assert_eq!((c.image.as_str(), all.spec.service_account_name.as_deref()), ("i", Some("sa")));
    }

    #[test]
    fn a_skipped_field_of_the_wrong_type_is_not_an_error() {
        let json = r#"{"kind":"Pod","spec":{"volumes":"none","containers":[{"name":"a","ports":7}]}}"#;
        assert!(Workload::from_json(json).is_err());
        assert!(Workload::from_json_reading(json, Fields::PORTS).is_err());
        let w = Workload::from_json_reading(json, Fields::CONTAINERS).unwrap().unwrap();
        assert_eq!(w.containers().count(), 1);
        // The mask holds for one parse only.
        assert!(Workload::from_json(json).is_err());
    }

    #[test]
    fn volumes_keep_their_name_and_set_sources() {
        let w = Workload::from_json(
            r#"{"kind":"Pod","spec":{"volumes":[{"hostPath":{"path":"/"},"name":null,"secret":null},{"name":"b","configMap":{}}]}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(w.spec.volumes[0].name, "");
        assert_eq!(w.spec.volumes[0].set_sources().collect::<Vec<_>>(), ["hostPath"]);
        assert!(w.spec.volumes[0].sources.contains_key("secret") && !w.spec.volumes[0].has_source("secret"));
        assert_eq!(w.spec.volumes[1].name, "b");
        assert!(w.spec.volumes[1].has_source("configMap"));
        for bad in [r#"[{"name":1}]"#, r#"[{"name":"a","name":"b"}]"#, "[3]"] {
            let json = format!(r#"{{"kind":"Pod","spec":{{"volumes":{bad}}}}}"#);
            assert!(Workload::from_json(&json).is_err(), "{bad}");
        }
    }

    #[test]
    fn annotation_paths_escape_slashes() {
        let w = Workload::from_json(&pod_json("Pod")).unwrap().unwrap();
        assert_eq!(
            w.annotation_path("container.apparmor.security.beta.kubernetes.io/a"),
            "/metadata/annotations/container.apparmor.security.beta.kubernetes.io~1a"
        );
    }
}
