//! Pod Security Standards, restricted: volume types.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_restrictedVolumes.go`
//! (version 1.0): every volume must be one of configMap, csi, downwardAPI,
//! emptyDir, ephemeral, image, persistentVolumeClaim, projected or secret.
//!
//! `image` (an OCI image or artifact mounted read-only, `ImageVolumeSource`)
//! was added to the allowed list in Kubernetes 1.33 inside the version 1.0
//! check, not as a new version: upstream allows it at every policy version,
//! and so does this rule. The upstream fixtures do not exercise it.
//!
//! A volume that sets no source at all is allowed: the API server defaults it
//! to `emptyDir` before admission (`SetDefaults_Volume` in `k8s.io/kubernetes/pkg/apis/core/v1`),
//! and upstream's conformance fixtures expect it to pass. A source this rule
//! does not know is reported under its own name: upstream reports any source
//! outside the allowed list.

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

const ALLOWED: [&str; 9] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

pub struct VolumeTypes;

impl Control for VolumeTypes {
    const READS: Fields = Fields::VOLUMES;

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-volume-types",
            "Only core volume types may be used",
            "Fails a pod with a volume that is not a configMap, csi, downwardAPI, emptyDir, \
             ephemeral, image, persistentVolumeClaim, projected or secret volume.",
            "Other volume types (hostPath, nfs, iscsi, cephfs, gitRepo, in-tree cloud disks...) \
             reach the node or external storage directly, bypassing the storage policies a \
             PersistentVolumeClaim is subject to.",
            "Use a PersistentVolumeClaim (backed by a StorageClass or CSI driver) instead of \
             the direct volume source.",
            Severity::High,
            Level::Restricted,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_restrictedVolumes.go",
            ],
        )
    }

    fn check(_: &Settings, w: &Workload) -> Vec<Violation> {
        let mut out = Vec::new();
        for (i, volume) in w.spec.volumes.iter().enumerate() {
            let sources: Vec<&str> = volume.set_sources().collect();
            if sources.iter().any(|s| ALLOWED.contains(s)) {
                continue;
            }
            if let Some(bad) = sources.first() {
                out.push(Violation::new(
                    format!(
                        "volume {} uses volume type {}, which the restricted level does not allow: it reaches the \
                         node or storage directly; use a persistentVolumeClaim instead",
                        pss::join_quote(&[&volume.name]),
                        pss::join_quote(&[bad])
                    ),
                    w.spec_field(&format!("volumes/{i}/{bad}")),
                ));
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<VolumeTypes>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    #[test]
    fn allowed_types_and_sourceless_volumes_pass() {
        let v = check_json::<VolumeTypes>(
            r#"{"kind":"Pod","spec":{"volumes":[{"name":"a"},{"name":"b","emptyDir":{}},{"name":"c","nfs":{"server":"x","path":"/"}},
               {"name":"d","hostPath":null},{"name":"e","gitRepo":{"repository":"r"}}]}}"#,
            "latest",
            Level::Restricted,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/volumes/2/nfs", "/spec/volumes/4/gitRepo"]);
        assert_eq!(
            v[0].message,
            "volume \"c\" uses volume type \"nfs\", which the restricted level does not allow: it reaches the node \
             or storage directly; use a persistentVolumeClaim instead"
        );
    }

    #[test]
    fn image_volumes_are_allowed_at_every_version() {
        let pod = r#"{"kind":"Pod","spec":{"volumes":[{"name":"models","image":{"reference":"registry.example/models:v1","pullPolicy":"IfNotPresent"}}]}}"#;
        for version in ["v1.0", "v1.32", "v1.33", "latest"] {
            assert!(check_json::<VolumeTypes>(pod, version, Level::Restricted).is_empty(), "{version}");
        }
    }
}
