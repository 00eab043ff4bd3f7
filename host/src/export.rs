//! `palisade export`: the objects that put the server in front of a cluster,
//! directly (a ValidatingWebhookConfiguration and what runs the server),
//! behind Gatekeeper (external data) or behind Kyverno (an apiCall).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::policy_set::ActivePolicy;

/// Where the API serves each kind a rule may evaluate: (kind, group, version, resource).
const RESOURCES: &[(&str, &str, &str, &str)] = &[
    ("Pod", "", "v1", "pods"),
    ("PodTemplate", "", "v1", "podtemplates"),
    ("ReplicationController", "", "v1", "replicationcontrollers"),
    ("Service", "", "v1", "services"),
    ("Secret", "", "v1", "secrets"),
    ("ServiceAccount", "", "v1", "serviceaccounts"),
    ("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims"),
    ("ReplicaSet", "apps", "v1", "replicasets"),
    ("Deployment", "apps", "v1", "deployments"),
    ("DaemonSet", "apps", "v1", "daemonsets"),
    ("StatefulSet", "apps", "v1", "statefulsets"),
    ("Job", "batch", "v1", "jobs"),
    ("CronJob", "batch", "v1", "cronjobs"),
    ("Ingress", "networking.k8s.io", "v1", "ingresses"),
    ("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies"),
    ("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets"),
    ("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers"),
    ("StorageClass", "storage.k8s.io", "v1", "storageclasses"),
];

/// Kinds the policies judge one object at a time (cross-resource rules need
/// the cluster, which admission does not give them).
pub fn admitted_kinds(
    policies: &[ActivePolicy],
) -> Vec<&'static (&'static str, &'static str, &'static str, &'static str)> {
    let kinds: BTreeSet<&str> = policies
        .iter()
        .filter(|p| p.policy.meta.reads_kinds.is_empty())
        .flat_map(|p| p.policy.meta.applies_to.iter().map(String::as_str))
        .collect();
    RESOURCES.iter().filter(|(k, ..)| kinds.contains(k) || kinds.contains("*")).collect()
}

/// Settings of the exported objects.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub namespace: String,
    /// PEM of the CA that signed the server certificate, if given.
    pub ca_bundle: Option<String>,
}

impl Target {
    pub fn service_host(&self) -> String {
        format!("{}.{}.svc", self.name, self.namespace)
    }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Options of `export webhook`.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub target: Target,
    pub image: String,
    pub timeout_seconds: u32,
    /// `namespace/name` of a cert-manager Certificate whose CA cert-manager injects.
    pub cert_manager_certificate: Option<String>,
    /// The server's TLS Secret (type kubernetes.io/tls), made by cert-manager or by hand.
    pub tls_secret: String,
    /// Trust policies are configured: the server fetches signatures from registries.
    pub verifies_images: bool,
    /// Pin verified images to their digests (`/mutate`, a MutatingWebhookConfiguration).
    pub mutate_digest: bool,
    /// The configuration file the server runs with, and the files it names.
    pub config: Option<ConfigFiles>,
}

/// A configuration file and the files it names (keys, trusted roots), by their
/// paths relative to it: carried into the cluster in a ConfigMap, mounted so
/// that the same relative paths resolve.
#[derive(Debug, Clone)]
pub struct ConfigFiles {
    pub config: String,
    pub files: Vec<(String, String)>,
}

/// Where the configuration is mounted in the server's container.
const CONFIG_DIR: &str = "/config";

/// Webhook rules for `kinds`, CREATE and UPDATE; pods with their
/// `ephemeralcontainers` subresource (`kubectl debug` adds containers there).
fn webhook_rules<'a>(
    kinds: impl IntoIterator<Item = &'a (&'static str, &'static str, &'static str, &'static str)>,
) -> Vec<Value> {
    kinds
        .into_iter()
        .map(|(_, group, version, resource)| {
            let resources =
                if *resource == "pods" { json!(["pods", "pods/ephemeralcontainers"]) } else { json!([resource]) };
            json!({"apiGroups": [group], "apiVersions": [version], "resources": resources, "operations": ["CREATE", "UPDATE"], "scope": "*"})
        })
        .collect()
}

/// The server in the cluster, and the webhook that sends it admission requests.
pub fn webhook(w: &Webhook, policies: &[ActivePolicy]) -> Vec<Value> {
    let Target { name, namespace, .. } = &w.target;
    let labels = json!({"app.kubernetes.io/name": "palisade", "app.kubernetes.io/instance": name});
    let selector = json!({"matchLabels": labels});
    let mut args = vec![
        "serve".to_string(),
        "--addr".into(),
        "0.0.0.0:8443".into(),
        "--tls-cert".into(),
        "/tls/tls.crt".into(),
        "--tls-key".into(),
        "/tls/tls.key".into(),
        "--request-timeout-ms".into(),
        ((w.timeout_seconds.max(2) - 1) * 1000).to_string(),
    ];
    let config_map_name = format!("{name}-config");
    let mut config_map = None;
    let mut volumes = vec![
        json!({"name": "tls", "secret": {"secretName": w.tls_secret}}),
        json!({"name": "cache", "emptyDir": {"sizeLimit": "256Mi"}}),
    ];
    let mut mounts = vec![
        json!({"name": "tls", "mountPath": "/tls", "readOnly": true}),
        json!({"name": "cache", "mountPath": "/cache"}),
    ];
    if let Some(c) = &w.config {
        // ConfigMap keys cannot hold `/`: each file gets a key, and the volume's
        // items put it back at its relative path.
        let mut data = serde_json::Map::new();
        let mut items = vec![json!({"key": "palisade.yaml", "path": "palisade.yaml"})];
        data.insert("palisade.yaml".into(), json!(c.config));
        for (i, (path, content)) in c.files.iter().enumerate() {
            let key = format!("file-{i}");
            data.insert(key.clone(), json!(content));
            items.push(json!({"key": key, "path": path}));
        }
        config_map = Some(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": config_map_name, "namespace": namespace, "labels": labels}, "data": data}));
        volumes.push(json!({"name": "config", "configMap": {"name": config_map_name, "items": items}}));
        mounts.push(json!({"name": "config", "mountPath": CONFIG_DIR, "readOnly": true}));
        args.extend(["--config".to_string(), format!("{CONFIG_DIR}/palisade.yaml")]);
    }
    let container = json!({
        "name": "palisade",
        "image": w.image,
        "args": args,
        "env": [{"name": "PALISADE_CACHE_DIR", "value": "/cache"}],
        "ports": [{"name": "https", "containerPort": 8443}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "https", "scheme": "HTTPS"}, "periodSeconds": 10, "failureThreshold": 6},
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    });
    let rules = webhook_rules(admitted_kinds(policies));
    let client_for = |path: &str| {
        let mut client = json!({"service": {"name": name, "namespace": namespace, "path": path, "port": 443}});
        if let Some(pem) = &w.target.ca_bundle {
            client["caBundle"] = json!(base64(pem.as_bytes()));
        }
        client
    };
    let client = client_for("/validate");
    let namespace_selector = json!({"matchExpressions": [{
        "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [namespace, "kube-system"],
    }]});
    // The API server calls in on 8443; the server calls nobody, unless it
    // verifies images: then registries, on 443, and DNS to find them.
    let egress = if w.verifies_images {
        json!([
            {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
            {"ports": [{"protocol": "TCP", "port": 443}]},
        ])
    } else {
        json!([])
    };
    let mut meta = json!({"name": name, "labels": labels});
    if let Some(cert) = &w.cert_manager_certificate {
        meta["annotations"] = json!({"cert-manager.io/inject-ca-from": cert});
    }
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "automountServiceAccountToken": false}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": selector,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": false,
                    "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100,
                        "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": selector},
                    }]}},
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        }}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"type": "ClusterIP", "selector": labels, "ports": [{"name": "https", "port": 443, "targetPort": "https"}]}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"maxUnavailable": 1, "selector": selector}}),
        // Nothing in the namespace talks or is talked to unless allowed below.
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": format!("{name}-default-deny"), "namespace": namespace, "labels": labels},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"podSelector": selector, "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"ports": [{"protocol": "TCP", "port": 8443}]}], "egress": egress}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": meta.clone(),
        "webhooks": [{
            "name": format!("{name}.{namespace}.palisade.dev"),
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": w.timeout_seconds,
            "matchPolicy": "Equivalent",
            "clientConfig": client,
            "namespaceSelector": namespace_selector,
            "rules": rules,
        }]}),
    ];
    if let Some(config_map) = config_map {
        objects.insert(2, config_map);
    }
    if w.verifies_images && w.mutate_digest {
        // Mutating webhooks all run before validating ones, so /validate
        // judges the pinned object. IfNeeded: called again when a later
        // mutator adds a container (a pinned image is left alone).
        let kinds = RESOURCES.iter().filter(|(k, ..)| crate::pin::pod_spec_pointer(k).is_some());
        objects.push(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": meta,
        "webhooks": [{
            "name": format!("pin.{name}.{namespace}.palisade.dev"),
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "reinvocationPolicy": "IfNeeded",
            "timeoutSeconds": w.timeout_seconds,
            "matchPolicy": "Equivalent",
            "clientConfig": client_for("/mutate"),
            "namespaceSelector": namespace_selector,
            "rules": webhook_rules(kinds),
        }]}));
    }
    objects
}

/// The Rego of the ConstraintTemplate: the provider's violations, errors and
/// system error each become a violation, so Gatekeeper fails closed.
pub fn gatekeeper_rego(provider: &str) -> String {
    format!(
        r#"package palisade

palisade_response := external_data({{"provider": "{provider}", "keys": [json.marshal(input.review.object)]}})

violation[{{"msg": msg}}] {{
  count(palisade_response.system_error) > 0
  msg := sprintf("palisade: provider error: %v", [palisade_response.system_error])
}}

violation[{{"msg": msg}}] {{
  err := palisade_response.errors[_]
  msg := sprintf("palisade: could not evaluate the object: %v", [err[1]])
}}

violation[{{"msg": msg}}] {{
  item := palisade_response.responses[_]
  v := item[1][_]
  v.mode == "enforce"
  msg := sprintf("%v: %v (%v)", [v.rule, v.message, v.field])
}}
"#
    )
}

/// Options of `export gatekeeper`.
#[derive(Debug, Clone)]
pub struct Gatekeeper {
    pub target: Target,
    /// `deny`, `warn` or `dryrun`.
    pub enforcement_action: String,
    pub timeout_seconds: u32,
}

pub fn gatekeeper(g: &Gatekeeper, policies: &[ActivePolicy]) -> Vec<Value> {
    let name = &g.target.name;
    let mut provider_spec = json!({
        "url": format!("https://{}:443/gatekeeper/v1/provider", g.target.service_host()),
        "timeout": g.timeout_seconds,
    });
    if let Some(pem) = &g.target.ca_bundle {
        provider_spec["caBundle"] = json!(base64(pem.as_bytes()));
    }
    let mut groups: BTreeSet<&str> = BTreeSet::new();
    let mut kinds: Vec<&str> = Vec::new();
    for (kind, group, ..) in admitted_kinds(policies) {
        groups.insert(group);
        kinds.push(kind);
    }
    vec![
        json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "Provider", "metadata": {"name": name}, "spec": provider_spec}),
        json!({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate", "metadata": {"name": name},
        "spec": {
            "crd": {"spec": {"names": {"kind": "Palisade"}}},
            "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": gatekeeper_rego(name)}],
        }}),
        json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "Palisade", "metadata": {"name": name},
        "spec": {
            "enforcementAction": g.enforcement_action,
            "match": {
                "kinds": [{"apiGroups": groups.iter().collect::<Vec<_>>(), "kinds": kinds}],
                "excludedNamespaces": [g.target.namespace.as_str(), "kube-system", "gatekeeper-system"],
            },
        }}),
    ]
}

/// Options of `export kyverno`.
#[derive(Debug, Clone)]
pub struct Kyverno {
    pub target: Target,
    /// `Enforce` or `Audit`.
    pub failure_action: String,
}

/// The JMESPath expressions the ClusterPolicy evaluates on the server's answer.
pub const KYVERNO_ALLOWED: &str = "palisade.allowed";
pub const KYVERNO_MESSAGE: &str = "palisade.message";

pub fn kyverno(k: &Kyverno, policies: &[ActivePolicy]) -> Vec<Value> {
    let kinds: Vec<&str> = admitted_kinds(policies).iter().map(|(kind, ..)| *kind).collect();
    let mut service = json!({"url": format!("https://{}:443/kyverno/v1/validate", k.target.service_host())});
    if let Some(pem) = &k.target.ca_bundle {
        service["caBundle"] = json!(pem);
    }
    vec![json!({
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": k.target.name, "annotations": {
            "policies.kyverno.io/title": "Palisade",
            "policies.kyverno.io/description": "Sends every admitted object to the Palisade server and denies what its rules deny.",
        }},
        "spec": {
            "background": false,
            "rules": [{
                "name": "palisade",
                "match": {"any": [{"resources": {"kinds": kinds, "operations": ["CREATE", "UPDATE"]}}]},
                "exclude": {"any": [{"resources": {"namespaces": [k.target.namespace.as_str(), "kube-system", "kyverno"]}}]},
                "context": [{
                    "name": "palisade",
                    "apiCall": {
                        "method": "POST",
                        "data": [
                            {"key": "object", "value": "{{ request.object }}"},
                            {"key": "oldObject", "value": "{{ request.oldObject }}"},
                            {"key": "operation", "value": "{{ request.operation }}"},
                        ],
                        "service": service,
                    },
                }],
                "validate": {
                    "failureAction": k.failure_action,
                    "message": format!("{{{{ {KYVERNO_MESSAGE} }}}}"),
                    "deny": {"conditions": {"any": [{"key": format!("{{{{ {KYVERNO_ALLOWED} }}}}"), "operator": "Equals", "value": false}]}},
                },
            }],
        },
    })]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
