//! Persistent storage is encrypted: every claim names a StorageClass, and that
//! class encrypts.
//!
//! Source: `PersistentVolumeClaimSpec.storageClassName` (`k8s.io/api/core/v1`)
//! and `StorageClass.parameters` (`k8s.io/api/storage/v1`); the provisioners'
//! own parameters: AWS EBS CSI `encrypted: "true"`
//! (<https://github.com/kubernetes-sigs/aws-ebs-csi-driver/blob/master/docs/parameters.md>),
//! GCE PD CSI `disk-encryption-kms-key`
//! (<https://github.com/kubernetes-sigs/gcp-compute-persistent-disk-csi-driver>),
//! Azure Disk CSI `diskEncryptionSetID`
//! (<https://github.com/kubernetes-sigs/azuredisk-csi-driver/blob/master/docs/driver-parameters.md>).
//! A claim without a class gets the cluster default, which the manifests
//! cannot show to be encrypted; classes the platform vouches for go in
//! `encryptedClasses`.

use std::collections::BTreeMap;

use palisade_sdk::inventory::{self, Header};
use palisade_sdk::pod::PersistentVolumeClaim;
use palisade_sdk::{Context, Fields, HARDENED, Metadata, Rule, SettingsError, Severity, Violation, Workload};
use serde::Deserialize;

/// How a provisioner is told to encrypt: a parameter, and the value it must
/// have (any non-empty value when `None`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    pub parameter: String,
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    #[serde(default)]
    pub encrypted_classes: Vec<String>,
    /// Provisioner → how it encrypts; merged over the defaults.
    #[serde(default)]
    pub provisioners: BTreeMap<String, Encryption>,
}

#[derive(Deserialize, Default)]
struct StorageClass {
    #[serde(default)]
    metadata: palisade_sdk::pod::ObjectMeta,
    #[serde(default)]
    provisioner: String,
    #[serde(default)]
    parameters: Option<BTreeMap<String, String>>,
}

pub struct StorageEncryption {
    encrypted_classes: Vec<String>,
    provisioners: BTreeMap<String, Encryption>,
}

fn defaults() -> BTreeMap<String, Encryption> {
    let e = |parameter: &str, value: Option<&str>| Encryption {
        parameter: parameter.to_string(),
        value: value.map(str::to_string),
    };
    BTreeMap::from([
        ("ebs.csi.aws.com".to_string(), e("encrypted", Some("true"))),
        ("kubernetes.io/aws-ebs".to_string(), e("encrypted", Some("true"))),
        ("pd.csi.storage.gke.io".to_string(), e("disk-encryption-kms-key", None)),
        ("disk.csi.azure.com".to_string(), e("diskEncryptionSetID", None)),
    ])
}

impl StorageEncryption {
    /// Why `class` is not encrypted and what to set, or `None` when it is.
    fn class_problem(&self, class: &StorageClass) -> Option<(String, String)> {
        if self.encrypted_classes.contains(&class.metadata.name) {
            return None;
        }
        let Some(how) = self.provisioners.get(&class.provisioner) else {
            return Some((
                format!("its provisioner {:?} has no known encryption parameter", class.provisioner),
                "list the class in encryptedClasses or the provisioner in provisioners".to_string(),
            ));
        };
        let value = class.parameters.as_ref().and_then(|p| p.get(&how.parameter)).filter(|v| !v.is_empty());
        let ok = match (&how.value, value) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
        };
        if ok {
            return None;
        }
        let want = how.value.as_ref().map_or("a value".to_string(), |v| format!("{v:?}"));
        Some((
            format!("parameter {:?} of provisioner {:?} is not set to {want}", how.parameter, class.provisioner),
            match &how.value {
                Some(v) => format!("set parameters.{} to {v:?} in the class", how.parameter),
                None => format!("set parameters.{} in the class", how.parameter),
            },
        ))
    }

    /// The checked set's StorageClasses, listed and parsed at most once per
    /// evaluation (a StatefulSet may hold several claim templates).
    fn classes<'c>(&self, cache: &'c mut Option<Vec<StorageClass>>) -> Result<&'c [StorageClass], String> {
        if cache.is_none() {
            *cache = Some(inventory::parse_all("StorageClass", &inventory::list("StorageClass", None))?);
        }
        Ok(cache.as_deref().unwrap_or_default())
    }

    fn claim(
        &self,
        claim: &PersistentVolumeClaim,
        what: &str,
        path: String,
        classes: &mut Option<Vec<StorageClass>>,
        out: &mut Vec<Violation>,
    ) -> Result<(), String> {
        let Some(name) = claim.spec.storage_class_name.as_deref().filter(|n| !n.is_empty()) else {
            out.push(Violation::new(
                format!(
                    "{what} names no storageClassName, so its encryption depends on the cluster default; \
                     set storageClassName to an encrypted StorageClass"
                ),
                path,
            ));
            return Ok(());
        };
        if self.encrypted_classes.iter().any(|c| c == name) {
            return Ok(());
        }
        match self.classes(classes)?.iter().find(|c| c.metadata.name == name) {
            None => out.push(Violation::new(
                format!(
                    "{what} uses StorageClass {name:?}, which is neither in the checked set nor in encryptedClasses: \
                     its encryption cannot be checked; check the StorageClass along with it, or list it in \
                     encryptedClasses"
                ),
                path,
            )),
            Some(class) => {
                if let Some((problem, fix)) = self.class_problem(class) {
                    out.push(Violation::new(
                        format!(
                            "{what} uses StorageClass {name:?}, which is not encrypted: {problem}; \
                             use an encrypted class, or {fix}"
                        ),
                        path,
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Rule for StorageEncryption {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata {
            id: "storage-encryption",
            title: "Persistent volumes must be encrypted",
            description: "Fails a PersistentVolumeClaim or StatefulSet volumeClaimTemplates entry that names \
                          no StorageClass, or names one that is neither listed in encryptedClasses nor in \
                          the checked set with its provisioner's encryption parameter set; and fails every \
                          StorageClass of the checked set that does not encrypt.",
            rationale: "Data at rest on unencrypted disks is exposed by a lost snapshot, a decommissioned \
                        disk or a mis-shared volume; regulations (HIPAA, PCI DSS, GDPR) require encryption \
                        at rest.",
            remediation: "Name an encrypting StorageClass in storageClassName (for AWS EBS CSI: parameters \
                          encrypted: \"true\"), or list a class the platform encrypts in encryptedClasses.",
            severity: Severity::High,
            category: "Storage",
            applies_to: &["PersistentVolumeClaim", "StatefulSet", "StorageClass"],
            reads_kinds: &["StorageClass"],
            settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{
                "encryptedClasses":{"type":"array","items":{"type":"string"},"description":"StorageClass names known to encrypt."},
                "provisioners":{"type":"object","description":"Provisioner → the parameter that turns encryption on, merged over the defaults (ebs.csi.aws.com and kubernetes.io/aws-ebs: encrypted=\"true\"; pd.csi.storage.gke.io: disk-encryption-kms-key; disk.csi.azure.com: diskEncryptionSetID).",
                  "additionalProperties":{"type":"object","additionalProperties":false,"required":["parameter"],
                    "properties":{"parameter":{"type":"string"},"value":{"type":"string","description":"Required value; any non-empty value when absent."}}}}}}"#,
            references: &[
                "https://kubernetes.io/docs/concepts/storage/storage-classes/",
                "https://github.com/kubernetes-sigs/aws-ebs-csi-driver/blob/master/docs/parameters.md",
                "https://github.com/kubernetes-sigs/azuredisk-csi-driver/blob/master/docs/driver-parameters.md",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(s: Settings) -> Result<Self, SettingsError> {
        let mut provisioners = defaults();
        for (name, how) in s.provisioners {
            if how.parameter.is_empty() {
                return Err(SettingsError::new(format!("/provisioners/{name}/parameter"), "cannot be empty"));
            }
            provisioners.insert(name, how);
        }
        Ok(StorageEncryption { encrypted_classes: s.encrypted_classes, provisioners })
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        let header = Header::read(object)?;
        let mut out = Vec::new();
        let mut classes = None;
        match header.kind.as_str() {
            "PersistentVolumeClaim" => {
                let claim: PersistentVolumeClaim =
                    serde_json::from_str(object).map_err(|e| format!("cannot read the PersistentVolumeClaim: {e}"))?;
                self.claim(&claim, "the claim", "/spec/storageClassName".into(), &mut classes, &mut out)?;
            }
            "StatefulSet" => {
                out = self.stateful_set(object, STATEFUL_SET_READS)?;
                #[cfg(not(target_arch = "wasm32"))]
                assert_eq!(
                    Ok(&out),
                    self.stateful_set(object, Fields::ALL).as_ref(),
                    "storage-encryption reads a field outside its READS"
                );
            }
            "StorageClass" => {
                let class: StorageClass =
                    serde_json::from_str(object).map_err(|e| format!("cannot read the StorageClass: {e}"))?;
                if let Some((problem, fix)) = self.class_problem(&class) {
                    out.push(Violation::new(
                        format!("StorageClass {:?} does not encrypt: {problem}; {fix}", class.metadata.name),
                        "/parameters",
                    ));
                }
            }
            _ => {}
        }
        Ok(out)
    }
}

/// The parts of a StatefulSet the rule reads (see `Fields`): its claim templates.
const STATEFUL_SET_READS: Fields = Fields::VOLUME_CLAIM_TEMPLATES;

impl StorageEncryption {
    fn stateful_set(&self, object: &str, reads: Fields) -> Result<Vec<Violation>, String> {
        let mut out = Vec::new();
        let Some(w) = Workload::from_json_reading(object, reads)? else { return Ok(out) };
        let mut classes = None;
        for (i, t) in w.volume_claim_templates.iter().enumerate() {
            let what = format!("volumeClaimTemplate {:?}", t.metadata.name);
            let path = format!("/spec/volumeClaimTemplates/{i}/spec/storageClassName");
            self.claim(t, &what, path, &mut classes, &mut out)?;
        }
        Ok(out)
    }
}

palisade_sdk::export_rule!(StorageEncryption);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::configure;
    use palisade_sdk::inventory::testing;

    const GP3: &str = r#"{"kind":"StorageClass","metadata":{"name":"gp3"},"provisioner":"ebs.csi.aws.com","parameters":{"encrypted":"true"}}"#;
    const PLAIN: &str = r#"{"kind":"StorageClass","metadata":{"name":"plain"},"provisioner":"ebs.csi.aws.com","parameters":{"type":"gp3"}}"#;
    const NFS: &str = r#"{"kind":"StorageClass","metadata":{"name":"nfs"},"provisioner":"nfs.csi.k8s.io"}"#;

    fn count(settings: &str, object: &str) -> usize {
        testing::set(&[GP3, PLAIN, NFS]);
        configure::<StorageEncryption>(settings).unwrap().evaluate(object, &Context::default()).unwrap().len()
    }

    fn pvc(class: &str) -> String {
        format!(r#"{{"kind":"PersistentVolumeClaim","metadata":{{"name":"d"}},"spec":{class}}}"#)
    }

    #[test]
    fn claims() {
        assert_eq!(count("{}", &pvc(r#"{"storageClassName":"gp3"}"#)), 0);
        assert_eq!(count("{}", &pvc(r#"{"storageClassName":"plain"}"#)), 1);
        assert_eq!(count("{}", &pvc("{}")), 1, "no class: the cluster default");
        assert_eq!(count("{}", &pvc(r#"{"storageClassName":"elsewhere"}"#)), 1);
        assert_eq!(count(r#"{"encryptedClasses":["elsewhere"]}"#, &pvc(r#"{"storageClassName":"elsewhere"}"#)), 0);
        assert_eq!(count("{}", &pvc(r#"{"storageClassName":"nfs"}"#)), 1);
        assert_eq!(
            count(
                r#"{"provisioners":{"nfs.csi.k8s.io":{"parameter":"encrypt"}}}"#,
                &pvc(r#"{"storageClassName":"nfs"}"#)
            ),
            1,
            "nfs has no such parameter set"
        );
    }

    #[test]
    fn classes_and_statefulsets() {
        assert_eq!(count("{}", GP3), 0);
        assert_eq!(count("{}", PLAIN), 1);
        assert_eq!(count(r#"{"encryptedClasses":["plain"]}"#, PLAIN), 0);
        let sts = r#"{"kind":"StatefulSet","metadata":{"name":"db"},"spec":{"volumeClaimTemplates":[
            {"metadata":{"name":"a"},"spec":{"storageClassName":"gp3"}},{"metadata":{"name":"b"},"spec":{}}],"template":{"spec":{}}}}"#;
        assert_eq!(count("{}", sts), 1);
    }

    #[test]
    fn messages_say_why_and_what_to_set() {
        let messages = |object: &str| -> Vec<String> {
            testing::set(&[GP3, PLAIN, NFS]);
            let rule = configure::<StorageEncryption>("{}").unwrap();
            rule.evaluate(object, &Context::default()).unwrap().into_iter().map(|v| v.message).collect()
        };
        assert_eq!(
            messages(PLAIN),
            ["StorageClass \"plain\" does not encrypt: parameter \"encrypted\" of provisioner \"ebs.csi.aws.com\" is \
              not set to \"true\"; set parameters.encrypted to \"true\" in the class"]
        );
        assert_eq!(
            messages(&pvc(r#"{"storageClassName":"nfs"}"#)),
            ["the claim uses StorageClass \"nfs\", which is not encrypted: its provisioner \"nfs.csi.k8s.io\" has no \
              known encryption parameter; use an encrypted class, or list the class in encryptedClasses or the \
              provisioner in provisioners"]
        );
        assert_eq!(
            messages(&pvc("{}")),
            ["the claim names no storageClassName, so its encryption depends on the cluster default; set \
              storageClassName to an encrypted StorageClass"]
        );
        assert_eq!(
            messages(&pvc(r#"{"storageClassName":"elsewhere"}"#)),
            ["the claim uses StorageClass \"elsewhere\", which is neither in the checked set nor in \
                 encryptedClasses: its encryption cannot be checked; check the StorageClass along with it, or list \
                 it in encryptedClasses"]
        );
    }
}
