//! Istio's security and traffic objects as the mesh rules read them, and the
//! ways Istio itself resolves them: which PeerAuthentication decides a
//! workload's mTLS mode, which services a DestinationRule host names, which
//! AuthorizationPolicies apply to a workload, and whether a pod gets a sidecar.
//!
//! Sources (field names and semantics):
//! - PeerAuthentication
//!   (<https://istio.io/latest/docs/reference/config/security/peer_authentication/>,
//!   `security/v1beta1/peer_authentication.proto` of istio/api): a policy in the
//!   root namespace without a selector is mesh-wide, one elsewhere without a
//!   selector namespace-wide, one with `selector.matchLabels` workload-level;
//!   `UNSET` inherits from the parent and, with no parent, is `PERMISSIVE`;
//!   `portLevelMtls` applies only with a workload selector. How the levels
//!   combine is `ComposePeerAuthentication` in istio/istio
//!   `pilot/pkg/security/authn/policy_applier.go`: an empty `matchLabels`
//!   counts as no selector, a selector policy in the root namespace is ignored,
//!   the oldest policy of a level wins, an `UNSET` port inherits the workload's
//!   resolved mode. Istio's CRD validation
//!   (`pkg/config/validation/testdata/crds/peerauth-invalid.yaml`) refuses an
//!   unknown mode, a port that is not 1-65535 and `portLevelMtls` without a
//!   selector: such a policy never takes effect.
//! - DestinationRule
//!   (<https://istio.io/latest/docs/reference/config/networking/destination-rule/>):
//!   `trafficPolicy.tls.mode: DISABLE` (also under `portLevelSettings[]` and
//!   `subsets[].trafficPolicy`) makes the client sidecar send plaintext. A short
//!   host name is read in the rule's namespace, as `ResolveShortnameToFQDN` in
//!   istio/istio `pilot/pkg/model` does (only a name without a dot is expanded);
//!   wildcard hosts match by suffix as `host.Name.Matches` does.
//! - AuthorizationPolicy
//!   (<https://istio.io/latest/docs/reference/config/security/authorization-policy/>):
//!   the action defaults to ALLOW; an ALLOW policy without rules matches nothing,
//!   which denies every request to the workloads it selects (allow-nothing); a
//!   rule without `from`, `to` and `when` matches every request; a policy in the
//!   root namespace applies to every namespace; `targetRef(s)` attach it to a
//!   gateway or waypoint instead of the selected workloads; the annotation
//!   `istio.io/dry-run: "true"` only logs.
//! - Sidecar injection: `injectRequired` in istio/istio
//!   `pkg/kube/inject/webhook.go`: the pod label `sidecar.istio.io/inject` wins
//!   over the annotation of the same name, `"false"` opts out, and pods on the
//!   host network are never injected.
//!
//! Everything here is offline: "the mesh" is the checked set read through
//! [`crate::inventory`]. Objects without a namespace are taken to share one
//! namespace, as [`crate::inventory::same_namespace`] does.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::inventory;
use crate::pod::nullable;
use crate::{SettingsError, Violation, Workload};

/// Istio's root namespace unless the mesh configuration says otherwise.
pub const DEFAULT_ROOT_NAMESPACE: &str = "istio-system";

/// The Istio API groups whose objects show that Istio is in the checked set.
pub const API_GROUPS: [&str; 2] = ["security.istio.io", "networking.istio.io"];

/// The kinds of [`API_GROUPS`], most common first, for [`in_checked_set`].
pub const KINDS: [&str; 12] = [
    "PeerAuthentication",
    "AuthorizationPolicy",
    "DestinationRule",
    "VirtualService",
    "Gateway",
    "ServiceEntry",
    "RequestAuthentication",
    "Sidecar",
    "EnvoyFilter",
    "WorkloadEntry",
    "WorkloadGroup",
    "ProxyConfig",
];

/// Whether `apiVersion` (`group/version`) belongs to one of [`API_GROUPS`].
pub fn in_api_groups(api_version: &str) -> bool {
    api_version.split_once('/').is_some_and(|(group, _)| API_GROUPS.contains(&group))
}

/// Whether the checked set holds any object of [`API_GROUPS`]. A `Gateway` of
/// the Kubernetes Gateway API (`gateway.networking.k8s.io`) does not count.
pub fn in_checked_set() -> bool {
    KINDS.iter().any(|kind| {
        inventory::headers_cached(kind, None).iter().any(|h| h.as_ref().is_ok_and(|h| in_api_groups(&h.api_version)))
    })
}

// ---------------------------------------------------------------------------
// Settings shared by the mesh rules.

/// Whether a mesh rule checks the set.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeshMode {
    /// Check when the checked set holds an Istio object ([`in_checked_set`]).
    #[default]
    Auto,
    /// Always check: the cluster runs Istio even if the checked files hold no Istio object.
    Istio,
    /// Never check: no service mesh is used.
    #[serde(rename = "none")]
    NoMesh,
}

/// The settings of a mesh rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MeshSettings {
    pub mesh: MeshMode,
    /// Istio's root namespace (`meshConfig.rootNamespace`).
    pub root_namespace: String,
}

impl Default for MeshSettings {
    fn default() -> Self {
        MeshSettings { mesh: MeshMode::Auto, root_namespace: DEFAULT_ROOT_NAMESPACE.to_string() }
    }
}

/// The JSON Schema of [`MeshSettings`].
pub const MESH_SETTINGS_SCHEMA: &str = r#"{"type":"object","additionalProperties":false,"properties":{
    "mesh":{"enum":["auto","istio","none"],"default":"auto",
      "description":"auto: check when the checked set holds an object of security.istio.io or networking.istio.io, and report nothing otherwise; istio: always check (the cluster runs Istio); none: no mesh, the rule is inactive."},
    "rootNamespace":{"type":"string","minLength":1,"maxLength":63,"pattern":"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$","default":"istio-system",
      "description":"Istio's root namespace (meshConfig.rootNamespace): its policies without a selector are mesh-wide, and its workloads (the control plane) are not checked."}}}"#;

/// A mesh rule's configured view of the mesh.
#[derive(Debug, Clone)]
pub struct Mesh {
    mode: MeshMode,
    root_namespace: String,
}

impl Mesh {
    /// Validate [`MeshSettings`] (the root namespace must be a DNS-1123 label).
    pub fn configure(settings: MeshSettings) -> Result<Mesh, SettingsError> {
        let root = settings.root_namespace;
        let label = !root.is_empty()
            && root.len() <= 63
            && root.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !root.starts_with('-')
            && !root.ends_with('-');
        if !label {
            return Err(SettingsError::new(
                "/rootNamespace",
                format!("{root:?} is not a namespace name (a DNS-1123 label)"),
            ));
        }
        Ok(Mesh { mode: settings.mesh, root_namespace: root })
    }

    pub fn root_namespace(&self) -> &str {
        &self.root_namespace
    }

    /// Why a rule so configured reports nothing: only `mesh: none`. With
    /// `auto` the answer depends on the checked set, which the rule does not
    /// see when the host asks (at load time): then [`Mesh::active`] decides
    /// per evaluation.
    pub fn inactive_reason(&self) -> Option<String> {
        (self.mode == MeshMode::NoMesh).then(|| "`mesh` is `none`: no service mesh is checked".to_string())
    }

    /// Whether to check now: `istio` always, `none` never, `auto` when the
    /// checked set holds an Istio object.
    pub fn active(&self) -> bool {
        match self.mode {
            MeshMode::Istio => true,
            MeshMode::NoMesh => false,
            MeshMode::Auto => in_checked_set(),
        }
    }

    /// Whether the mode lets a rule check an Istio object it is evaluating
    /// (with `auto`, that object is itself the Istio in the set).
    pub fn checks_istio_objects(&self) -> bool {
        self.mode != MeshMode::NoMesh
    }

    /// Whether a workload is one the mesh rules judge: not a bare PodTemplate
    /// (nothing runs it), not in the root namespace (Istio's control plane).
    pub fn judges(&self, w: &Workload) -> bool {
        w.kind != "PodTemplate" && w.namespace() != Some(self.root_namespace.as_str())
    }
}

// ---------------------------------------------------------------------------
// Shared shapes.

/// The metadata Istio reads: identity, annotations and the creation time
/// (the oldest of several competing policies wins).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub namespace: String,
    #[serde(default, deserialize_with = "nullable")]
    pub annotations: BTreeMap<String, String>,
    pub creation_timestamp: Option<String>,
}

impl Meta {
    pub fn namespace(&self) -> Option<&str> {
        Some(self.namespace.as_str()).filter(|n| !n.is_empty())
    }

    /// `namespace/name`, or the name alone without a namespace.
    pub fn id(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Istio keeps the oldest of competing policies; offline, an object
    /// without a creation time is newer than one with it, and ties go by name.
    fn age_key(&self) -> (bool, &str, &str) {
        (self.creation_timestamp.is_none(), self.creation_timestamp.as_deref().unwrap_or(""), &self.name)
    }
}

/// Istio's `WorkloadSelector`: labels only, no expressions. An empty one
/// selects every workload of the namespace, as an absent one does.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSelector {
    #[serde(default, deserialize_with = "nullable")]
    pub match_labels: BTreeMap<String, String>,
}

impl WorkloadSelector {
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

fn has_labels(selector: &Option<WorkloadSelector>) -> bool {
    selector.as_ref().is_some_and(|s| !s.match_labels.is_empty())
}

/// Two optional namespaces are the same namespace (none matches none only).
fn same_namespace(a: Option<&str>, b: Option<&str>) -> bool {
    a.unwrap_or("") == b.unwrap_or("")
}

/// Escape a JSON pointer reference token.
fn token(s: &str) -> String {
    crate::workload::escape_pointer(s)
}

// ---------------------------------------------------------------------------
// PeerAuthentication.

/// An mTLS mode of `PeerAuthentication.MutualTLS.Mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtlsMode {
    Unset,
    Disable,
    Permissive,
    Strict,
}

impl MtlsMode {
    /// Read a mode as written; absent is `UNSET`. Unknown values are errors
    /// (the CRD refuses them).
    pub fn parse(mode: Option<&str>) -> Result<MtlsMode, String> {
        match mode.unwrap_or("UNSET") {
            "UNSET" => Ok(MtlsMode::Unset),
            "DISABLE" => Ok(MtlsMode::Disable),
            "PERMISSIVE" => Ok(MtlsMode::Permissive),
            "STRICT" => Ok(MtlsMode::Strict),
            other => Err(format!("mode {other:?} is not one of UNSET, DISABLE, PERMISSIVE, STRICT")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MtlsMode::Unset => "UNSET",
            MtlsMode::Disable => "DISABLE",
            MtlsMode::Permissive => "PERMISSIVE",
            MtlsMode::Strict => "STRICT",
        }
    }

    /// What a workload with this resolved mode does with inbound traffic, as
    /// a verb phrase for messages ("it accepts ...").
    pub fn consequence(self) -> &'static str {
        match self {
            MtlsMode::Disable => "turns mTLS off and accepts plaintext",
            MtlsMode::Permissive | MtlsMode::Unset => "accepts plaintext as well as mTLS",
            MtlsMode::Strict => "accepts mTLS only",
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct MutualTls {
    pub mode: Option<String>,
}

impl MutualTls {
    fn parse(m: &Option<MutualTls>) -> Result<MtlsMode, String> {
        MtlsMode::parse(m.as_ref().and_then(|m| m.mode.as_deref()))
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthenticationSpec {
    pub selector: Option<WorkloadSelector>,
    pub mtls: Option<MutualTls>,
    /// Keyed by port as written (JSON object keys are strings); `Some({})`
    /// is refused by the CRD (`minProperties: 1`).
    pub port_level_mtls: Option<BTreeMap<String, Option<MutualTls>>>,
}

/// A `security.istio.io` PeerAuthentication.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthentication {
    #[serde(default, deserialize_with = "nullable")]
    pub api_version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Meta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: PeerAuthenticationSpec,
}

/// Where a PeerAuthentication applies, from the least to the most specific
/// (the order [`effective_mtls`] resolves them in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Mesh,
    Namespace,
    Workload,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Mesh => "mesh-wide",
            Scope::Namespace => "namespace-wide",
            Scope::Workload => "workload selector",
        }
    }
}

/// A port of `portLevelMtls`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMtls {
    /// The key as written, for paths and messages.
    pub key: String,
    pub port: u32,
    pub mode: MtlsMode,
}

impl PeerAuthentication {
    /// Read PeerAuthentications given as JSON, keeping Istio's only (another API
    /// group may use the kind name).
    pub fn parse_all(objects: &[String]) -> Result<Vec<PeerAuthentication>, String> {
        let all: Vec<PeerAuthentication> = inventory::parse_all("PeerAuthentication", objects)?;
        Ok(all.into_iter().filter(|p| in_api_groups(&p.api_version)).collect())
    }

    /// The policies that can apply to a workload in `namespace`: its own
    /// namespace's and the root namespace's, valid ones only.
    pub fn for_namespace(namespace: Option<&str>, root: &str) -> Result<Vec<PeerAuthentication>, String> {
        let mut lists = vec![inventory::same_namespace_cached::<PeerAuthentication>("PeerAuthentication", namespace)?];
        if namespace != Some(root) {
            lists.push(inventory::parse_all_cached("PeerAuthentication", Some(root))?);
        }
        Ok(lists
            .iter()
            .flat_map(|l| l.iter())
            .filter(|p| in_api_groups(&p.api_version) && p.problems().is_empty())
            .cloned()
            .collect())
    }

    pub fn has_workload_selector(&self) -> bool {
        has_labels(&self.spec.selector)
    }

    /// The scope of the policy for Istio, or `None` for a selector policy in
    /// the root namespace, which Istio ignores.
    pub fn scope(&self, root: &str) -> Option<Scope> {
        let in_root = self.metadata.namespace() == Some(root);
        match (self.has_workload_selector(), in_root) {
            (false, true) => Some(Scope::Mesh),
            (false, false) => Some(Scope::Namespace),
            (true, false) => Some(Scope::Workload),
            (true, true) => None,
        }
    }

    /// `spec.mtls.mode`; an unknown mode is an error.
    pub fn mode(&self) -> Result<MtlsMode, String> {
        MutualTls::parse(&self.spec.mtls)
    }

    /// `portLevelMtls`, each entry read; bad entries are skipped (see [`Self::problems`]).
    pub fn ports(&self) -> Vec<PortMtls> {
        self.port_entries()
            .filter_map(|(key, m)| {
                let port = parse_port(key).ok()?;
                let mode = MutualTls::parse(m).ok()?;
                Some(PortMtls { key: key.clone(), port, mode })
            })
            .collect()
    }

    fn port_entries(&self) -> impl Iterator<Item = (&String, &Option<MutualTls>)> {
        self.spec.port_level_mtls.iter().flatten()
    }

    /// Why Istio refuses the policy and what to set instead, each with the
    /// JSON pointer of the field; empty for a valid policy.
    pub fn problems(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        if let Err(e) = self.mode() {
            out.push(Violation::new(format!("mtls.{e}; set it to STRICT"), "/spec/mtls/mode"));
        }
        match &self.spec.port_level_mtls {
            Some(_) if !self.has_workload_selector() => out.push(Violation::new(
                "portLevelMtls needs a workload selector; add selector.matchLabels or remove portLevelMtls",
                "/spec/portLevelMtls",
            )),
            Some(ports) if ports.is_empty() => out.push(Violation::new(
                "portLevelMtls is empty, and it needs at least one port; list a port or remove portLevelMtls",
                "/spec/portLevelMtls",
            )),
            _ => {}
        }
        for (key, m) in self.port_entries() {
            if let Err(e) = parse_port(key) {
                out.push(Violation::new(
                    format!("portLevelMtls key {key:?}: {e}; key it by a port number from 1 to 65535"),
                    format!("/spec/portLevelMtls/{}", token(key)),
                ));
            }
            if let Err(e) = MutualTls::parse(m) {
                out.push(Violation::new(
                    format!("portLevelMtls {key}: {e}; set it to STRICT"),
                    format!("/spec/portLevelMtls/{}/mode", token(key)),
                ));
            }
        }
        out
    }
}

fn parse_port(key: &str) -> Result<u32, String> {
    match key.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p),
        Ok(_) => Err("a port must be between 1 and 65535".into()),
        Err(_) => Err("not a port number".into()),
    }
}

/// A workload's mTLS mode as Istio resolves it.
#[derive(Debug, Clone)]
pub struct EffectiveMtls<'a> {
    /// Never `Unset`: with nothing set, Istio's default `Permissive`.
    pub mode: MtlsMode,
    /// The policy whose mode won, and its scope; `None` for Istio's default.
    pub decided_by: Option<(&'a PeerAuthentication, Scope)>,
    /// The workload-level policy that selects the workload, if any.
    pub workload_policy: Option<&'a PeerAuthentication>,
    /// The ports of that policy's `portLevelMtls`, each with its resolved mode
    /// (an `UNSET` port inherits [`Self::mode`]) and whether it was set explicitly.
    pub ports: Vec<(PortMtls, bool)>,
}

/// Resolve the mTLS mode of a workload in `namespace` with pod `labels`, from
/// `policies` (any; those of other namespaces are ignored), as
/// `ComposePeerAuthentication` does: the oldest policy of each level,
/// then mesh → namespace → workload, each overriding unless `UNSET`.
pub fn effective_mtls<'a>(
    policies: &'a [PeerAuthentication],
    root: &str,
    namespace: Option<&str>,
    labels: &BTreeMap<String, String>,
) -> EffectiveMtls<'a> {
    let mut levels: [Option<&'a PeerAuthentication>; 3] = [None, None, None];
    for p in policies {
        let ns = p.metadata.namespace();
        let Some(scope) = p.scope(root) else { continue };
        let applies = match scope {
            Scope::Mesh => true,
            Scope::Namespace => same_namespace(ns, namespace),
            Scope::Workload => {
                same_namespace(ns, namespace) && p.spec.selector.as_ref().is_some_and(|s| s.selects(labels))
            }
        };
        if !applies || p.mode().is_err() {
            continue;
        }
        let slot = &mut levels[scope as usize];
        if slot.is_none_or(|q| p.metadata.age_key() < q.metadata.age_key()) {
            *slot = Some(p);
        }
    }
    let mut out =
        EffectiveMtls { mode: MtlsMode::Permissive, decided_by: None, workload_policy: levels[2], ports: vec![] };
    for (level, scope) in levels.iter().zip([Scope::Mesh, Scope::Namespace, Scope::Workload]) {
        if let Some(p) = level
            && let Ok(mode) = p.mode()
            && mode != MtlsMode::Unset
        {
            out.mode = mode;
            out.decided_by = Some((p, scope));
        }
    }
    if let Some(p) = out.workload_policy {
        out.ports = p
            .ports()
            .into_iter()
            .map(|mut port| {
                let explicit = port.mode != MtlsMode::Unset;
                if !explicit {
                    port.mode = out.mode;
                }
                (port, explicit)
            })
            .collect();
    }
    out
}

// ---------------------------------------------------------------------------
// DestinationRule and hosts.

#[derive(Debug, Default, Clone, Deserialize)]
pub struct ClientTls {
    pub mode: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct PortSelector {
    pub number: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct PortTrafficPolicy {
    pub port: Option<PortSelector>,
    pub tls: Option<ClientTls>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    pub tls: Option<ClientTls>,
    #[serde(default, deserialize_with = "nullable")]
    pub port_level_settings: Vec<PortTrafficPolicy>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subset {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    pub traffic_policy: Option<TrafficPolicy>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    #[serde(default, deserialize_with = "nullable")]
    pub host: String,
    pub traffic_policy: Option<TrafficPolicy>,
    #[serde(default, deserialize_with = "nullable")]
    pub subsets: Vec<Subset>,
}

/// A `networking.istio.io` DestinationRule.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRule {
    #[serde(default, deserialize_with = "nullable")]
    pub api_version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Meta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: DestinationRuleSpec,
}

/// Where a DestinationRule turns client TLS off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsDisabled {
    /// `every port`, `port 8080`, `subset v1`, `subset v1, port 8080`.
    pub scope: String,
    /// JSON pointer of the `mode` field.
    pub path: String,
}

impl DestinationRule {
    /// Every DestinationRule of the checked set, Istio's only.
    pub fn all() -> Result<Vec<DestinationRule>, String> {
        let all = inventory::parse_all_cached::<DestinationRule>("DestinationRule", None)?;
        Ok(all.iter().filter(|d| in_api_groups(&d.api_version)).cloned().collect())
    }

    /// Every place the rule sets `tls.mode: DISABLE`.
    pub fn tls_disabled(&self) -> Vec<TlsDisabled> {
        fn walk(policy: &TrafficPolicy, scope: &str, path: &str, out: &mut Vec<TlsDisabled>) {
            let disabled = |tls: &Option<ClientTls>| tls.as_ref().and_then(|t| t.mode.as_deref()) == Some("DISABLE");
            if disabled(&policy.tls) {
                let scope = if scope.is_empty() { "every port".to_string() } else { scope.to_string() };
                out.push(TlsDisabled { scope, path: format!("{path}/tls/mode") });
            }
            for (i, p) in policy.port_level_settings.iter().enumerate() {
                if disabled(&p.tls) {
                    let port =
                        p.port.as_ref().and_then(|p| p.number).map_or("a port".to_string(), |n| format!("port {n}"));
                    let scope = if scope.is_empty() { port } else { format!("{scope}, {port}") };
                    out.push(TlsDisabled { scope, path: format!("{path}/portLevelSettings/{i}/tls/mode") });
                }
            }
        }
        let mut out = Vec::new();
        if let Some(p) = &self.spec.traffic_policy {
            walk(p, "", "/spec/trafficPolicy", &mut out);
        }
        for (i, s) in self.spec.subsets.iter().enumerate() {
            if let Some(p) = &s.traffic_policy {
                walk(p, &format!("subset {}", s.name), &format!("/spec/subsets/{i}/trafficPolicy"), &mut out);
            }
        }
        out
    }

    /// What the rule's host names.
    pub fn target(&self) -> HostTarget {
        host_target(&self.spec.host, self.metadata.namespace())
    }
}

/// The Kubernetes services a host of a DestinationRule (or VirtualService) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostTarget {
    /// Every service of every namespace: `*`, `*.svc.<domain>`, and the
    /// wildcards above the default domain, `*.cluster.local` and `*.local`.
    AllNamespaces,
    /// Every service of one namespace: `*.<namespace>.svc.<domain>`.
    Namespace(String),
    /// One service: `<name>.<namespace>.svc.<domain>`, or a short name read in
    /// the rule's namespace.
    Service { name: String, namespace: String },
    /// No Kubernetes service: an external name (a ServiceEntry's), an IP, or a
    /// form Istio does not expand (`name.namespace`).
    Other,
}

/// The services `host` names, for a rule in `rule_namespace` (`None`: the
/// namespace the deploy tool will choose, shared with other objects without one).
/// Any cluster domain is recognised in `<name>.<namespace>.svc.<domain>`;
/// wildcards above `svc` are recognised for the default `cluster.local` only.
pub fn host_target(host: &str, rule_namespace: Option<&str>) -> HostTarget {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    if host == "*" {
        return HostTarget::AllNamespaces;
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        let labels: Vec<&str> = suffix.split('.').collect();
        return match labels.as_slice() {
            ["svc", _, ..] => HostTarget::AllNamespaces,
            [ns, "svc", _, ..] => HostTarget::Namespace(ns.to_string()),
            ["local"] | ["cluster", "local"] => HostTarget::AllNamespaces,
            _ => HostTarget::Other,
        };
    }
    if host.is_empty() || host.contains('*') || host.parse::<std::net::IpAddr>().is_ok() {
        return HostTarget::Other;
    }
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        [name] => HostTarget::Service { name: name.to_string(), namespace: rule_namespace.unwrap_or("").to_string() },
        [name, ns, "svc", _, ..] => HostTarget::Service { name: name.to_string(), namespace: ns.to_string() },
        _ => HostTarget::Other,
    }
}

impl HostTarget {
    /// Whether the host names some service of `namespace`.
    pub fn reaches_namespace(&self, namespace: Option<&str>) -> bool {
        let namespace = namespace.unwrap_or("");
        match self {
            HostTarget::AllNamespaces => true,
            HostTarget::Namespace(ns) | HostTarget::Service { namespace: ns, .. } => ns == namespace,
            HostTarget::Other => false,
        }
    }

    /// Whether the host can name a Kubernetes service at all.
    pub fn is_cluster_service(&self) -> bool {
        *self != HostTarget::Other
    }
}

/// Whether two hosts overlap, either possibly a `*.` wildcard, as Istio's
/// `host.Name.Matches` compares them (case-insensitively).
pub fn hosts_match(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(sa), Some(sb)) => sa.ends_with(sb) || sb.ends_with(sa),
        (Some(sa), None) => b.ends_with(sa),
        (None, Some(sb)) => a.ends_with(sb),
        (None, None) => a == b,
    }
}

/// The fields of a Kubernetes Service that host matching reads.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Service {
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Meta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: ServiceSpec,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct ServiceSpec {
    /// A Service without a selector has its endpoints managed by hand: it selects no pod.
    #[serde(default, deserialize_with = "nullable")]
    pub selector: BTreeMap<String, String>,
}

impl Service {
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.spec.selector.is_empty() && self.spec.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// A `networking.istio.io` ServiceEntry: its hosts and whether they are in the mesh.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntry {
    #[serde(default, deserialize_with = "nullable")]
    pub api_version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Meta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: ServiceEntrySpec,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct ServiceEntrySpec {
    #[serde(default, deserialize_with = "nullable")]
    pub hosts: Vec<String>,
    /// `MESH_EXTERNAL` (the default) or `MESH_INTERNAL` (workloads with sidecars, such as VMs).
    pub location: Option<String>,
}

impl ServiceEntry {
    pub fn is_mesh_internal(&self) -> bool {
        in_api_groups(&self.api_version) && self.spec.location.as_deref() == Some("MESH_INTERNAL")
    }
}

// ---------------------------------------------------------------------------
// AuthorizationPolicy.

/// A rule of an AuthorizationPolicy: only whether it constrains anything.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct AuthorizationRule {
    #[serde(default, deserialize_with = "nullable")]
    pub from: Vec<IgnoredAny>,
    #[serde(default, deserialize_with = "nullable")]
    pub to: Vec<IgnoredAny>,
    #[serde(default, deserialize_with = "nullable")]
    pub when: Vec<IgnoredAny>,
}

impl AuthorizationRule {
    /// A rule with no `from`, `to` or `when` matches every request.
    pub fn matches_everything(&self) -> bool {
        self.from.is_empty() && self.to.is_empty() && self.when.is_empty()
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {
    pub selector: Option<WorkloadSelector>,
    pub target_ref: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "nullable")]
    pub target_refs: Vec<IgnoredAny>,
    pub action: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub rules: Vec<AuthorizationRule>,
}

/// A `security.istio.io` AuthorizationPolicy.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    #[serde(default, deserialize_with = "nullable")]
    pub api_version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Meta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: AuthorizationPolicySpec,
}

impl AuthorizationPolicy {
    /// The policies that can apply to a workload in `namespace`: its own
    /// namespace's and the root namespace's, Istio's only.
    pub fn for_namespace(namespace: Option<&str>, root: &str) -> Result<Vec<AuthorizationPolicy>, String> {
        let mut lists =
            vec![inventory::same_namespace_cached::<AuthorizationPolicy>("AuthorizationPolicy", namespace)?];
        if namespace != Some(root) {
            lists.push(inventory::parse_all_cached("AuthorizationPolicy", Some(root))?);
        }
        Ok(lists.iter().flat_map(|l| l.iter()).filter(|p| in_api_groups(&p.api_version)).cloned().collect())
    }

    /// `spec.action`, `ALLOW` when unset.
    pub fn action(&self) -> &str {
        self.spec.action.as_deref().filter(|a| !a.is_empty()).unwrap_or("ALLOW")
    }

    /// `istio.io/dry-run` read as Go's `strconv.ParseBool` reads true.
    pub fn is_dry_run(&self) -> bool {
        self.metadata
            .annotations
            .get("istio.io/dry-run")
            .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
    }

    /// Attached to a gateway or waypoint (`targetRef`, `targetRefs`) rather than to workloads.
    pub fn has_target_ref(&self) -> bool {
        self.spec.target_ref.is_some() || !self.spec.target_refs.is_empty()
    }

    /// Applies to every workload of its namespace (of the mesh, in the root
    /// namespace): no selector labels, no target reference.
    pub fn is_namespace_wide(&self) -> bool {
        !has_labels(&self.spec.selector) && !self.has_target_ref()
    }

    /// Whether the policy applies to a workload in `namespace` with pod `labels`.
    pub fn applies_to(&self, root: &str, namespace: Option<&str>, labels: &BTreeMap<String, String>) -> bool {
        let ns = self.metadata.namespace();
        (ns == Some(root) || same_namespace(ns, namespace))
            && !self.has_target_ref()
            && self.spec.selector.as_ref().is_none_or(|s| s.selects(labels))
    }

    /// ALLOW without rules: it matches nothing, so every request to the
    /// workloads it applies to that no other ALLOW policy matches is denied.
    pub fn allows_nothing(&self) -> bool {
        self.action() == "ALLOW" && self.spec.rules.is_empty()
    }

    /// DENY with a rule that matches every request.
    pub fn denies_everything(&self) -> bool {
        self.action() == "DENY" && self.spec.rules.iter().any(AuthorizationRule::matches_everything)
    }

    /// ALLOW with a rule that matches every request.
    pub fn allows_everything(&self) -> bool {
        self.action() == "ALLOW" && self.spec.rules.iter().any(AuthorizationRule::matches_everything)
    }
}

// ---------------------------------------------------------------------------
// Sidecar injection.

/// Why the pods of a workload get no sidecar, with the JSON pointer of the
/// field that says so; `None` when nothing in the workload opts out. Pods
/// labelled `istio.io/dataplane-mode: ambient` are meshed by ztunnel instead
/// and are never reported.
pub fn sidecar_opt_out(w: &Workload) -> Option<(String, String)> {
    const KEY: &str = "sidecar.istio.io/inject";
    let meta = &w.pod_meta;
    if meta.labels.get("istio.io/dataplane-mode").map(String::as_str) == Some("ambient") {
        return None;
    }
    if w.spec.host_network == Some(true) {
        return Some((
            "its pods use the host network, and Istio never injects a sidecar there".into(),
            w.spec_field("hostNetwork"),
        ));
    }
    let (value, field, path) = match (meta.labels.get(KEY), meta.annotations.get(KEY)) {
        (Some(v), _) => (v, "label", format!("{}/labels/{}", w.meta_path, token(KEY))),
        (None, Some(v)) => (v, "annotation", w.annotation_path(KEY)),
        (None, None) => return None,
    };
    (value == "false").then(|| (format!("its pods opt out of the sidecar ({field} {KEY}: \"false\")"), path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::testing;

    fn pa(json: &str) -> PeerAuthentication {
        serde_json::from_str(json).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn peer(ns: &str, name: &str, spec: &str) -> PeerAuthentication {
        pa(&format!(
            r#"{{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{{"name":"{name}","namespace":"{ns}"}},"spec":{spec}}}"#
        ))
    }

    fn resolve(policies: &[PeerAuthentication], ns: &str, l: &[(&str, &str)]) -> (MtlsMode, Option<String>) {
        let e = effective_mtls(policies, "istio-system", Some(ns), &labels(l));
        (e.mode, e.decided_by.map(|(p, s)| format!("{} {}", p.metadata.id(), s.name())))
    }

    #[test]
    fn nothing_set_is_permissive() {
        assert_eq!(resolve(&[], "shop", &[]), (MtlsMode::Permissive, None));
        // UNSET everywhere inherits down to Istio's default.
        let unset = [peer("istio-system", "default", r#"{"mtls":{"mode":"UNSET"}}"#), peer("shop", "d", "{}")];
        assert_eq!(resolve(&unset, "shop", &[]), (MtlsMode::Permissive, None));
    }

    #[test]
    fn the_most_specific_level_wins_and_unset_inherits() {
        let mesh = peer("istio-system", "default", r#"{"mtls":{"mode":"STRICT"}}"#);
        let ns = peer("shop", "default", r#"{"mtls":{"mode":"PERMISSIVE"}}"#);
        let finance =
            peer("shop", "finance", r#"{"selector":{"matchLabels":{"app":"finance"}},"mtls":{"mode":"STRICT"}}"#);
        let inherit = peer("shop", "web", r#"{"selector":{"matchLabels":{"app":"web"}},"mtls":{"mode":"UNSET"}}"#);
        let all = [mesh.clone(), ns.clone(), finance, inherit];
        assert_eq!(resolve(&all, "shop", &[("app", "finance")]).0, MtlsMode::Strict);
        assert_eq!(
            resolve(&all, "shop", &[("app", "web")]),
            (MtlsMode::Permissive, Some("shop/default namespace-wide".into()))
        );
        assert_eq!(
            resolve(&all, "other", &[("app", "web")]),
            (MtlsMode::Strict, Some("istio-system/default mesh-wide".into()))
        );
        assert_eq!(resolve(&[mesh, ns], "shop", &[]).0, MtlsMode::Permissive);
    }

    #[test]
    fn empty_selectors_and_root_selector_policies() {
        // `matchLabels: {}` is namespace-wide.
        let empty = [peer("shop", "e", r#"{"selector":{"matchLabels":{}},"mtls":{"mode":"STRICT"}}"#)];
        assert_eq!(resolve(&empty, "shop", &[("app", "x")]), (MtlsMode::Strict, Some("shop/e namespace-wide".into())));
        // A selector policy in the root namespace is ignored, even for matching pods elsewhere.
        let rooted =
            [peer("istio-system", "r", r#"{"selector":{"matchLabels":{"app":"x"}},"mtls":{"mode":"STRICT"}}"#)];
        assert_eq!(resolve(&rooted, "shop", &[("app", "x")]).0, MtlsMode::Permissive);
        // A workload in the root namespace: its selector-less policies are mesh-wide.
        let root_ns = [peer("istio-system", "m", r#"{"mtls":{"mode":"STRICT"}}"#)];
        assert_eq!(resolve(&root_ns, "istio-system", &[]), (MtlsMode::Strict, Some("istio-system/m mesh-wide".into())));
        // Policies of other namespaces never apply.
        let elsewhere = [peer("other", "o", r#"{"mtls":{"mode":"STRICT"}}"#)];
        assert_eq!(resolve(&elsewhere, "shop", &[]).0, MtlsMode::Permissive);
    }

    #[test]
    fn the_oldest_policy_of_a_level_wins() {
        let mut a = peer("shop", "b-strict", r#"{"mtls":{"mode":"STRICT"}}"#);
        let mut b = peer("shop", "a-permissive", r#"{"mtls":{"mode":"PERMISSIVE"}}"#);
        // Without creation times: by name.
        assert_eq!(resolve(&[a.clone(), b.clone()], "shop", &[]).0, MtlsMode::Permissive);
        a.metadata.creation_timestamp = Some("2024-01-01T00:00:00Z".into());
        assert_eq!(resolve(&[b.clone(), a.clone()], "shop", &[]).0, MtlsMode::Strict, "existing beats not yet created");
        b.metadata.creation_timestamp = Some("2023-06-01T00:00:00Z".into());
        assert_eq!(resolve(&[a, b], "shop", &[]).0, MtlsMode::Permissive);
    }

    #[test]
    fn port_level_modes() {
        let mesh = peer("istio-system", "default", r#"{"mtls":{"mode":"STRICT"}}"#);
        let w = peer(
            "shop",
            "w",
            r#"{"selector":{"matchLabels":{"app":"web"}},"portLevelMtls":{"8080":{"mode":"DISABLE"},"9090":{"mode":"UNSET"},"9443":{}}}"#,
        );
        let all = [mesh, w];
        let e = effective_mtls(&all, "istio-system", Some("shop"), &labels(&[("app", "web")]));
        assert_eq!(e.mode, MtlsMode::Strict, "UNSET workload mode inherits the mesh's");
        let ports: Vec<_> = e.ports.iter().map(|(p, explicit)| (p.port, p.mode, *explicit)).collect();
        assert_eq!(
            ports,
            [(8080, MtlsMode::Disable, true), (9090, MtlsMode::Strict, false), (9443, MtlsMode::Strict, false)]
        );
    }

    #[test]
    fn problems_are_what_istio_refuses() {
        // The documents of Istio's `peerauth-invalid.yaml`, in short.
        let cases = [
            (r#"{"mtls":{"mode":"BLAH"}}"#, "/spec/mtls/mode"),
            (
                r#"{"selector":{"matchLabels":{"foo":"bar"}},"portLevelMtls":{"acd":{"mode":"STRICT"}}}"#,
                "/spec/portLevelMtls/acd",
            ),
            (r#"{"portLevelMtls":{"80":{"mode":"STRICT"}}}"#, "/spec/portLevelMtls"),
            (r#"{"selector":{"matchLabels":{"foo":"bar"}},"portLevelMtls":{}}"#, "/spec/portLevelMtls"),
            (
                r#"{"selector":{"matchLabels":{"foo":"bar"}},"portLevelMtls":{"0":{"mode":"STRICT"}}}"#,
                "/spec/portLevelMtls/0",
            ),
            (
                r#"{"selector":{"matchLabels":{"foo":"bar"}},"portLevelMtls":{"42949672":{"mode":"STRICT"}}}"#,
                "/spec/portLevelMtls/42949672",
            ),
        ];
        for (spec, path) in cases {
            let p = peer("shop", "x", spec);
            let problems = p.problems();
            assert_eq!(problems.len(), 1, "{spec}: {problems:?}");
            assert_eq!(problems[0].path, path, "{spec}");
        }
        for spec in [
            r#"{"selector":{"matchLabels":{"foo":"bar"}},"mtls":{"mode":"PERMISSIVE"},"portLevelMtls":{"80":{"mode":"STRICT"}}}"#,
            r#"{"selector":{}}"#,
            "null",
        ] {
            assert!(peer("shop", "x", spec).problems().is_empty(), "{spec}");
        }
        // A refused policy takes no part in resolution.
        let bad = [peer("shop", "x", r#"{"mtls":{"mode":"strict"}}"#)];
        assert_eq!(resolve(&bad, "shop", &[]), (MtlsMode::Permissive, None));
    }

    #[test]
    fn host_targets() {
        use HostTarget::*;
        let svc = |n: &str, ns: &str| Service { name: n.into(), namespace: ns.into() };
        assert_eq!(host_target("reviews", Some("shop")), svc("reviews", "shop"));
        assert_eq!(host_target("reviews", None), svc("reviews", ""));
        assert_eq!(host_target("ratings.prod.svc.cluster.local", Some("shop")), svc("ratings", "prod"));
        assert_eq!(host_target("Ratings.Prod.svc.corp.internal.", None), svc("ratings", "prod"));
        assert_eq!(host_target("ratings.prod", Some("shop")), Other, "Istio does not expand name.namespace");
        assert_eq!(host_target("*.prod.svc.cluster.local", None), Namespace("prod".into()));
        for all in ["*", "*.local", "*.cluster.local", "*.svc.cluster.local", "*.svc.corp.internal"] {
            assert_eq!(host_target(all, Some("shop")), AllNamespaces, "{all}");
        }
        for other in ["api.example.com", "*.example.com", "10.0.0.1", "", "*.reviews.prod.svc.cluster.local"] {
            assert_eq!(host_target(other, Some("shop")), Other, "{other}");
        }
        assert!(svc("a", "shop").reaches_namespace(Some("shop")));
        assert!(!svc("a", "shop").reaches_namespace(Some("prod")));
        assert!(svc("a", "").reaches_namespace(None));
        assert!(AllNamespaces.reaches_namespace(None));
    }

    #[test]
    fn host_matching_follows_istio() {
        assert!(hosts_match("*", "a.b.com"));
        assert!(hosts_match("*.b.com", "a.b.com"));
        assert!(hosts_match("a.B.com", "*.b.com"));
        assert!(hosts_match("*.com", "*.b.com"));
        assert!(!hosts_match("*.b.com", "b.com"));
        assert!(!hosts_match("a.b.com", "c.b.com"));
    }

    #[test]
    fn destination_rule_tls_disabled_everywhere_it_can_be() {
        let dr: DestinationRule = serde_json::from_str(
            r#"{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{"name":"d","namespace":"shop"},
            "spec":{"host":"reviews","trafficPolicy":{"tls":{"mode":"DISABLE"},"portLevelSettings":[{"port":{"number":8080},"tls":{"mode":"ISTIO_MUTUAL"}},{"port":{"number":9090},"tls":{"mode":"DISABLE"}}]},
            "subsets":[{"name":"v1","trafficPolicy":{"tls":{"mode":"DISABLE"}}},{"name":"v2","trafficPolicy":null}]}}"#,
        )
        .unwrap();
        let found: Vec<_> = dr.tls_disabled().into_iter().map(|t| (t.scope, t.path)).collect();
        assert_eq!(
            found,
            [
                ("every port".to_string(), "/spec/trafficPolicy/tls/mode".to_string()),
                ("port 9090".into(), "/spec/trafficPolicy/portLevelSettings/1/tls/mode".into()),
                ("subset v1".into(), "/spec/subsets/0/trafficPolicy/tls/mode".into()),
            ]
        );
        assert_eq!(dr.target(), HostTarget::Service { name: "reviews".into(), namespace: "shop".into() });
    }

    fn authz(json_spec: &str, annotations: &str) -> AuthorizationPolicy {
        serde_json::from_str(&format!(
            r#"{{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{{"name":"p","namespace":"shop","annotations":{annotations}}},"spec":{json_spec}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn authorization_policy_shapes() {
        // Istio's own examples: allow-nothing, allow-all, deny-all.
        let nothing = authz("{}", "{}");
        assert!(nothing.allows_nothing() && nothing.is_namespace_wide() && !nothing.allows_everything());
        assert!(authz(r#"{"action":"ALLOW","rules":[]}"#, "{}").allows_nothing());
        assert!(authz("null", "{}").allows_nothing());
        let all = authz(r#"{"rules":[{}]}"#, "{}");
        assert!(all.allows_everything() && !all.allows_nothing());
        assert!(authz(r#"{"action":"DENY","rules":[{}]}"#, "{}").denies_everything());
        assert!(!authz(r#"{"action":"DENY"}"#, "{}").denies_everything(), "DENY without rules denies nothing");
        assert!(!authz(r#"{"action":"AUDIT"}"#, "{}").allows_nothing());
        let narrow = authz(r#"{"rules":[{"from":[{"source":{"namespaces":["a"]}}]}]}"#, "{}");
        assert!(!narrow.allows_everything() && !narrow.allows_nothing());
        assert!(authz("{}", r#"{"istio.io/dry-run":"true"}"#).is_dry_run());
        assert!(!authz("{}", r#"{"istio.io/dry-run":"false"}"#).is_dry_run());
        let gateway =
            authz(r#"{"targetRefs":[{"kind":"Gateway","group":"gateway.networking.k8s.io","name":"g"}]}"#, "{}");
        assert!(!gateway.is_namespace_wide());
        assert!(!gateway.applies_to("istio-system", Some("shop"), &labels(&[])));
        let selected = authz(r#"{"selector":{"matchLabels":{"app":"web"}}}"#, "{}");
        assert!(!selected.is_namespace_wide());
        assert!(selected.applies_to("istio-system", Some("shop"), &labels(&[("app", "web")])));
        assert!(!selected.applies_to("istio-system", Some("shop"), &labels(&[("app", "db")])));
        assert!(!selected.applies_to("istio-system", Some("other"), &labels(&[("app", "web")])));
        assert!(authz(r#"{"selector":{}}"#, "{}").is_namespace_wide());
    }

    #[test]
    fn sidecar_opt_outs() {
        let w = |meta: &str, spec: &str| {
            Workload::from_json(&format!(
                r#"{{"kind":"Deployment","metadata":{{"name":"d"}},"spec":{{"template":{{"metadata":{meta},"spec":{spec}}}}}}}"#
            ))
            .unwrap()
            .unwrap()
        };
        let out = sidecar_opt_out(&w(r#"{"annotations":{"sidecar.istio.io/inject":"false"}}"#, "{}")).unwrap();
        assert_eq!(out.1, "/spec/template/metadata/annotations/sidecar.istio.io~1inject");
        assert!(out.0.contains("sidecar.istio.io/inject"));
        // The label wins over the annotation.
        let both = r#"{"labels":{"sidecar.istio.io/inject":"true"},"annotations":{"sidecar.istio.io/inject":"false"}}"#;
        assert!(sidecar_opt_out(&w(both, "{}")).is_none());
        let label = r#"{"labels":{"sidecar.istio.io/inject":"false"}}"#;
        assert_eq!(
            sidecar_opt_out(&w(label, "{}")).unwrap().1,
            "/spec/template/metadata/labels/sidecar.istio.io~1inject"
        );
        assert!(sidecar_opt_out(&w("{}", "{}")).is_none());
        assert!(sidecar_opt_out(&w("{}", r#"{"hostNetwork":true}"#)).unwrap().0.contains("host network"));
        let ambient = r#"{"labels":{"istio.io/dataplane-mode":"ambient","sidecar.istio.io/inject":"false"}}"#;
        assert!(sidecar_opt_out(&w(ambient, "{}")).is_none());
    }

    #[test]
    fn istio_in_the_checked_set() {
        testing::set(&[r#"{"apiVersion":"gateway.networking.k8s.io/v1","kind":"Gateway","metadata":{"name":"g"}}"#]);
        assert!(!in_checked_set(), "a Gateway API Gateway is not Istio");
        testing::set(&[r#"{"apiVersion":"networking.istio.io/v1","kind":"Gateway","metadata":{"name":"g"}}"#]);
        assert!(in_checked_set());
        testing::set::<&str>(&[]);
        assert!(!in_checked_set());
    }

    #[test]
    fn mesh_settings() {
        let mesh = |json: &str| crate::parse_settings::<MeshSettings>(json).and_then(Mesh::configure);
        let m = mesh("{}").unwrap();
        assert_eq!(m.root_namespace(), "istio-system");
        assert!(m.inactive_reason().is_none());
        assert!(mesh(r#"{"mesh":"none"}"#).unwrap().inactive_reason().unwrap().contains("none"));
        testing::set::<&str>(&[]);
        assert!(mesh(r#"{"mesh":"istio"}"#).unwrap().active());
        assert!(!m.active());
        assert_eq!(mesh(r#"{"mesh":"linkerd"}"#).unwrap_err().field, "/mesh");
        assert_eq!(mesh(r#"{"rootNamespace":"Istio_System"}"#).unwrap_err().field, "/rootNamespace");
        assert_eq!(mesh(r#"{"rootNamespaces":"x"}"#).unwrap_err().field, "/rootNamespaces");
        assert_eq!(mesh(r#"{"rootNamespace":"mesh-root"}"#).unwrap().root_namespace(), "mesh-root");
    }
}
