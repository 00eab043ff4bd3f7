//! Network policies as a Cilium cluster enforces them: Kubernetes
//! `NetworkPolicy` (`networking.k8s.io/v1`, which Cilium enforces too),
//! `CiliumNetworkPolicy` and `CiliumClusterwideNetworkPolicy` (`cilium.io/v2`),
//! read from the checked set, with what a rule needs to reason about them.
//!
//! Kubernetes, after `k8s.io/api/networking/v1` (`types.go`) and
//! <https://kubernetes.io/docs/concepts/services-networking/network-policies/>:
//! an absent `podSelector` selects every pod of the namespace, like `{}`;
//! without `policyTypes` a policy affects Ingress, and Egress when it has
//! egress rules; a rule with no `from` (`to`) matches every peer, one with no
//! `ports` every port; a policy that affects a direction and has no rules for
//! it denies that direction to the pods it selects.
//!
//! Cilium, after `pkg/policy/api` (`rule.go`, `ingress.go`, `egress.go`,
//! `entity.go`, `selector.go`), `pkg/k8s/apis/cilium.io/utils` (how the agent
//! turns the CRDs into policy entries) and
//! <https://docs.cilium.io/en/stable/security/policy/language/>:
//! - A rule (`spec`, or each of `specs`) applies to the endpoints its
//!   `endpointSelector` selects; a `nodeSelector` rule applies to hosts, never
//!   to a pod. A CiliumNetworkPolicy's selector is confined to its namespace
//!   (the agent adds `k8s:io.kubernetes.pod.namespace`); a clusterwide one is not.
//! - Selector keys may name the label's source: `k8s:` and `any:` (and no
//!   prefix, read as `any:`) match a pod's labels; other sources (`reserved:`,
//!   `cidr:`, ...) never match a pod. A pod's endpoint carries its labels plus
//!   `io.kubernetes.pod.namespace`, `io.cilium.k8s.policy.serviceaccount`,
//!   `io.cilium.k8s.policy.cluster` and `io.cilium.k8s.namespace.labels.<key>`
//!   for each label of its namespace.
//! - Default deny is per direction: a rule with `ingress` or `ingressDeny`
//!   rules puts the endpoints it selects into default deny for ingress unless
//!   `enableDefaultDeny.ingress` is `false`; likewise for egress. The agent
//!   makes policy entries from rules only, so `enableDefaultDeny: true` without
//!   rules of that direction changes nothing. (This is the default agent mode,
//!   `enable-non-default-deny-policies`; with it off every rule denies by default.)
//! - A peer rule without any L3 field (`fromEndpoints`, `fromCIDR`,
//!   `fromCIDRSet`, `fromEntities`, ...) but with `toPorts` or `icmps` allows
//!   every peer on those ports (the agent puts the wildcard selector there);
//!   with neither it allows nothing: `ingress: [{}]` is Cilium's documented
//!   deny-all, where in a Kubernetes NetworkPolicy `ingress: [{}]` allows all.
//! - In `fromEndpoints`/`toEndpoints`, a selector that names no namespace key
//!   (`io.kubernetes.pod.namespace`, `io.cilium.k8s.namespace.labels.*`) is
//!   confined to the policy's own namespace, or, in a clusterwide policy, to
//!   pods of any namespace.
//! - The entity `all` is every peer; `world` every address outside the cluster
//!   (the same as `0.0.0.0/0` and `::/0`); `cluster` every endpoint inside it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::inventory;
use crate::pod::{ObjectMeta, nullable};
use crate::selector::{LabelSelector, Requirement};
use crate::workload::Workload;

/// The kinds of network policy this module reads.
pub const POLICY_KINDS: [&str; 3] = ["NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"];
/// What [`PolicySet::read`] and [`NamespaceInfo::read`] read through the inventory:
/// a rule that calls them lists these in its `reads_kinds`.
pub const READ_KINDS: [&str; 4] =
    ["NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy", "Namespace"];
/// The kinds whose pods network policies isolate.
pub use crate::workload::WORKLOAD_KINDS;
/// The label Cilium gives every endpoint with its pod's namespace.
pub const NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
/// The prefix of the labels Cilium copies from an endpoint's namespace.
pub const NAMESPACE_LABELS_PREFIX: &str = "io.cilium.k8s.namespace.labels.";
/// The label with the endpoint's service account.
pub const SERVICE_ACCOUNT_LABEL: &str = "io.cilium.k8s.policy.serviceaccount";
/// The label with the cluster's name (ClusterMesh); `default` unless configured.
pub const CLUSTER_LABEL: &str = "io.cilium.k8s.policy.cluster";
/// The label the API server puts on every Namespace with its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A direction of traffic, as `policyTypes` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::Ingress, Direction::Egress];

    /// `Ingress` or `Egress`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        }
    }

    /// The field of the rules of this direction, also its name in a sentence: `ingress`, `egress`.
    pub fn field(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    /// The Kubernetes field naming a rule's peers: `from`, `to`.
    pub fn peers_field(self) -> &'static str {
        match self {
            Direction::Ingress => "from",
            Direction::Egress => "to",
        }
    }

    /// The Cilium field of a kind of peer in this direction: `fromEndpoints`, `toCIDRSet`, ...
    pub fn cilium_field(self, what: &str) -> String {
        format!("{}{what}", self.peers_field())
    }
}

// ---------------------------------------------------------------------------
// Kubernetes NetworkPolicy

/// A Kubernetes NetworkPolicy (`networking.k8s.io/v1`).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct NetworkPolicy {
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: NetworkPolicySpec,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    pub pod_selector: Option<LabelSelector>,
    pub policy_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub ingress: Vec<NetworkPolicyRule>,
    #[serde(default, deserialize_with = "nullable")]
    pub egress: Vec<NetworkPolicyRule>,
}

/// An ingress or egress rule: peers (`from` or `to`) and ports.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct NetworkPolicyRule {
    #[serde(default, deserialize_with = "nullable")]
    pub from: Vec<NetworkPolicyPeer>,
    #[serde(default, deserialize_with = "nullable")]
    pub to: Vec<NetworkPolicyPeer>,
    #[serde(default, deserialize_with = "nullable")]
    pub ports: Vec<NetworkPolicyPort>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicyPeer {
    pub pod_selector: Option<LabelSelector>,
    pub namespace_selector: Option<LabelSelector>,
    pub ip_block: Option<IpBlock>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct IpBlock {
    #[serde(default, deserialize_with = "nullable")]
    pub cidr: String,
    #[serde(default, deserialize_with = "nullable")]
    pub except: Vec<String>,
}

/// A port: number or name (IntOrString, kept as JSON), protocol (TCP when unset), range end.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicyPort {
    pub protocol: Option<String>,
    pub port: Option<serde_json::Value>,
    pub end_port: Option<i64>,
}

impl NetworkPolicyRule {
    /// The peers of this rule in direction `d` (`from` or `to`).
    pub fn peers(&self, d: Direction) -> &[NetworkPolicyPeer] {
        match d {
            Direction::Ingress => &self.from,
            Direction::Egress => &self.to,
        }
    }
}

impl NetworkPolicy {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// Whether the policy isolates the pods it selects for `d`: listed in
    /// `policyTypes`, or, when that is absent or empty, Ingress always and
    /// Egress when the policy has egress rules (`SetDefaults_NetworkPolicy`).
    pub fn affects(&self, d: Direction) -> bool {
        match self.spec.policy_types.as_deref() {
            Some(types) if !types.is_empty() => types.iter().any(|t| t == d.as_str()),
            _ => d == Direction::Ingress || !self.spec.egress.is_empty(),
        }
    }

    /// The rules of direction `d`.
    pub fn rules(&self, d: Direction) -> &[NetworkPolicyRule] {
        match d {
            Direction::Ingress => &self.spec.ingress,
            Direction::Egress => &self.spec.egress,
        }
    }

    /// True when `podSelector` is absent or `{}`: every pod of the namespace.
    pub fn selects_every_pod(&self) -> bool {
        self.spec.pod_selector.as_ref().is_none_or(LabelSelector::is_empty)
    }

    /// Whether the policy selects pods with `labels` (in its namespace).
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> Result<bool, String> {
        match &self.spec.pod_selector {
            None => Ok(true),
            Some(s) => s.matches(labels).map_err(|e| format!("NetworkPolicy {:?}: {e}", self.name())),
        }
    }

    /// A default deny for `d`: every pod selected, `d` affected, no rule allowing anything.
    pub fn denies_all(&self, d: Direction) -> bool {
        self.selects_every_pod() && self.affects(d) && self.rules(d).is_empty()
    }
}

// ---------------------------------------------------------------------------
// CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy

/// A CiliumNetworkPolicy or a CiliumClusterwideNetworkPolicy: one rule in
/// `spec`, more in `specs`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct CiliumPolicy {
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    pub spec: Option<CiliumRule>,
    #[serde(default, deserialize_with = "nullable")]
    pub specs: Vec<CiliumRule>,
}

/// One Cilium rule (`api.Rule`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CiliumRule {
    pub endpoint_selector: Option<LabelSelector>,
    pub node_selector: Option<LabelSelector>,
    #[serde(default, deserialize_with = "nullable")]
    pub ingress: Vec<CiliumPeerRule>,
    #[serde(default, deserialize_with = "nullable")]
    pub ingress_deny: Vec<CiliumPeerRule>,
    #[serde(default, deserialize_with = "nullable")]
    pub egress: Vec<CiliumPeerRule>,
    #[serde(default, deserialize_with = "nullable")]
    pub egress_deny: Vec<CiliumPeerRule>,
    #[serde(default, deserialize_with = "nullable")]
    pub enable_default_deny: DefaultDenyConfig,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct DefaultDenyConfig {
    pub ingress: Option<bool>,
    pub egress: Option<bool>,
}

/// An ingress or egress rule, allow or deny. Both directions' fields are
/// declared; [`CiliumPeerRule::peers`] reads those of one direction.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CiliumPeerRule {
    pub from_endpoints: Option<Vec<LabelSelector>>,
    pub to_endpoints: Option<Vec<LabelSelector>>,
    pub from_requires: Option<Vec<IgnoredAny>>,
    pub to_requires: Option<Vec<IgnoredAny>>,
    #[serde(rename = "fromCIDR")]
    pub from_cidr: Option<Vec<String>>,
    #[serde(rename = "toCIDR")]
    pub to_cidr: Option<Vec<String>>,
    #[serde(rename = "fromCIDRSet")]
    pub from_cidr_set: Option<Vec<CidrRule>>,
    #[serde(rename = "toCIDRSet")]
    pub to_cidr_set: Option<Vec<CidrRule>>,
    pub from_entities: Option<Vec<String>>,
    pub to_entities: Option<Vec<String>>,
    pub from_nodes: Option<Vec<IgnoredAny>>,
    pub to_nodes: Option<Vec<IgnoredAny>>,
    pub from_groups: Option<Vec<IgnoredAny>>,
    pub to_groups: Option<Vec<IgnoredAny>>,
    pub to_services: Option<Vec<IgnoredAny>>,
    #[serde(rename = "toFQDNs")]
    pub to_fqdns: Option<Vec<FqdnSelector>>,
    #[serde(default, deserialize_with = "nullable")]
    pub to_ports: Vec<PortRule>,
    #[serde(default, deserialize_with = "nullable")]
    pub icmps: Vec<IgnoredAny>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CidrRule {
    /// Empty when the rule names a `cidrGroupRef` instead.
    #[serde(default, deserialize_with = "nullable")]
    pub cidr: String,
    #[serde(default, deserialize_with = "nullable")]
    pub except: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FqdnSelector {
    #[serde(default, deserialize_with = "nullable")]
    pub match_name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub match_pattern: String,
}

/// `toPorts` entry: ports, and layer-7 rules when `rules` is set.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct PortRule {
    #[serde(default, deserialize_with = "nullable")]
    pub ports: Vec<PortProtocol>,
    pub rules: Option<IgnoredAny>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortProtocol {
    /// A number or a name, written as a string (a number is read as one too).
    #[serde(default, deserialize_with = "string_or_number")]
    pub port: String,
    pub end_port: Option<i64>,
    /// `TCP`, `UDP`, `SCTP`, `ANY` (the default).
    #[serde(default, deserialize_with = "nullable")]
    pub protocol: String,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(de)? {
        Some(serde_json::Value::String(s)) => s,
        None | Some(serde_json::Value::Null) => String::new(),
        Some(other) => other.to_string(),
    })
}

/// The peers of a Cilium rule in one direction.
#[derive(Debug, Clone, Copy)]
pub struct Peers<'a> {
    pub endpoints: Option<&'a [LabelSelector]>,
    pub cidr: Option<&'a [String]>,
    pub cidr_set: Option<&'a [CidrRule]>,
    pub entities: Option<&'a [String]>,
    /// Egress only.
    pub fqdns: Option<&'a [FqdnSelector]>,
    /// Nodes, CIDR groups or Services: peers this module does not resolve.
    pub other: bool,
    /// `fromRequires`/`toRequires`: constraints that allow nothing themselves.
    pub requires: bool,
}

impl CiliumPeerRule {
    /// The peer fields of direction `d`.
    pub fn peers(&self, d: Direction) -> Peers<'_> {
        match d {
            Direction::Ingress => Peers {
                endpoints: self.from_endpoints.as_deref(),
                cidr: self.from_cidr.as_deref(),
                cidr_set: self.from_cidr_set.as_deref(),
                entities: self.from_entities.as_deref(),
                fqdns: None,
                other: self.from_nodes.is_some() || self.from_groups.is_some(),
                requires: self.from_requires.is_some(),
            },
            Direction::Egress => Peers {
                endpoints: self.to_endpoints.as_deref(),
                cidr: self.to_cidr.as_deref(),
                cidr_set: self.to_cidr_set.as_deref(),
                entities: self.to_entities.as_deref(),
                fqdns: self.to_fqdns.as_deref(),
                other: self.to_nodes.is_some() || self.to_groups.is_some() || self.to_services.is_some(),
                requires: self.to_requires.is_some(),
            },
        }
    }

    /// True when the rule allows every peer on its ports: it names no peer
    /// (no L3 field, no requirement) but has `toPorts` or `icmps`. A rule with
    /// neither peers nor ports (`{}`) allows nothing.
    pub fn allows_any_peer_on_ports(&self, d: Direction) -> bool {
        let p = self.peers(d);
        let l3 = p.endpoints.is_some()
            || p.cidr.is_some()
            || p.cidr_set.is_some()
            || p.entities.is_some()
            || p.fqdns.is_some()
            || p.other;
        !l3 && !p.requires && (!self.to_ports.is_empty() || !self.icmps.is_empty())
    }

    /// True when neither `toPorts` nor `icmps` restricts the rule.
    pub fn every_port(&self) -> bool {
        self.to_ports.is_empty() && self.icmps.is_empty()
    }
}

impl CiliumPolicy {
    pub fn is_clusterwide(&self) -> bool {
        self.kind == "CiliumClusterwideNetworkPolicy"
    }

    /// The namespace of a CiliumNetworkPolicy when the manifest sets one.
    pub fn namespace(&self) -> Option<&str> {
        Some(self.metadata.namespace.as_str()).filter(|n| !n.is_empty())
    }

    /// `kind "name"`, for messages.
    pub fn describe(&self) -> String {
        format!("{} {:?}", self.kind, self.metadata.name)
    }

    /// Each rule with its JSON pointer: `/spec`, `/specs/0`, ...
    pub fn rules(&self) -> impl Iterator<Item = (String, &CiliumRule)> {
        let spec = self.spec.iter().map(|r| ("/spec".to_string(), r));
        spec.chain(self.specs.iter().enumerate().map(|(i, r)| (format!("/specs/{i}"), r)))
    }

    /// Whether `rule` (one of this policy's) applies to `endpoint`. A
    /// CiliumNetworkPolicy applies only in its own namespace.
    pub fn selects(&self, rule: &CiliumRule, endpoint: &Endpoint) -> Result<bool, String> {
        if !self.is_clusterwide() && self.namespace() != endpoint.namespace.as_deref() {
            return Ok(false);
        }
        let Some(selector) = &rule.endpoint_selector else { return Ok(false) };
        endpoint_selector(selector).matches(&endpoint.labels).map_err(|e| format!("{}: {e}", self.describe()))
    }

    /// Whether `rule` applies to every pod of `namespace`: its selector
    /// constrains only what all endpoints of a namespace share (namespace,
    /// namespace labels, cluster) and `namespace` satisfies it.
    pub fn selects_namespace(&self, rule: &CiliumRule, namespace: &NamespaceInfo) -> Result<bool, String> {
        if !self.is_clusterwide() && self.namespace() != namespace.name.as_deref() {
            return Ok(false);
        }
        let Some(selector) = &rule.endpoint_selector else { return Ok(false) };
        let selector = endpoint_selector(selector);
        let mut keys = selector.match_labels.keys().chain(selector.match_expressions.iter().map(|r| &r.key));
        if !keys.all(|k| is_namespace_wide(k)) {
            return Ok(false);
        }
        selector.matches(&namespace.endpoint_labels()).map_err(|e| format!("{}: {e}", self.describe()))
    }
}

impl CiliumRule {
    /// The allow rules of direction `d`.
    pub fn allow(&self, d: Direction) -> &[CiliumPeerRule] {
        match d {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// The deny rules of direction `d`.
    pub fn deny(&self, d: Direction) -> &[CiliumPeerRule] {
        match d {
            Direction::Ingress => &self.ingress_deny,
            Direction::Egress => &self.egress_deny,
        }
    }

    /// Whether the rule puts the endpoints it selects into default deny for `d`.
    pub fn default_deny(&self, d: Direction) -> bool {
        let enabled = match d {
            Direction::Ingress => self.enable_default_deny.ingress,
            Direction::Egress => self.enable_default_deny.egress,
        };
        (!self.allow(d).is_empty() || !self.deny(d).is_empty()) && enabled != Some(false)
    }

    /// Whether the allow rules of `d`, on every port, add up to every peer:
    /// the entity `all`, or the cluster and the world (`world`, or CIDRs that
    /// cover every IPv4 and IPv6 address).
    pub fn allows_every_peer(&self, d: Direction) -> bool {
        let (mut cluster, mut v4, mut v6) = (false, false, false);
        for rule in self.allow(d).iter().filter(|r| r.every_port()) {
            let p = rule.peers(d);
            for entity in p.entities.unwrap_or_default() {
                match entity.as_str() {
                    "all" => return true,
                    "cluster" => cluster = true,
                    "world" => (v4, v6) = (true, true),
                    "world-ipv4" => v4 = true,
                    "world-ipv6" => v6 = true,
                    _ => {}
                }
            }
            let plain = p.cidr.unwrap_or_default().iter().map(String::as_str);
            let sets = p.cidr_set.unwrap_or_default().iter().filter(|c| c.except.is_empty()).map(|c| c.cidr.as_str());
            for cidr in plain.chain(sets).filter_map(Cidr::parse).filter(Cidr::is_everything) {
                match cidr.addr {
                    IpAddr::V4(_) => v4 = true,
                    IpAddr::V6(_) => v6 = true,
                }
            }
        }
        cluster && v4 && v6
    }
}

/// Which namespaces a `fromEndpoints`/`toEndpoints` selector reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerNamespaces {
    /// The policy's own namespace (the agent adds it to the selector).
    Own,
    /// The namespaces its namespace keys pin (`matchLabels` or `In`).
    Pinned,
    /// Every namespace, or every one but those excluded.
    Any,
    /// A selector of reserved identities (`reserved:host`, ...), not of pods.
    Reserved,
}

/// Which namespaces the peer selector `selector` of a policy reaches.
pub fn peer_namespaces(selector: &LabelSelector, clusterwide: bool) -> PeerNamespaces {
    let selector = endpoint_selector(selector);
    let keys: Vec<&String> =
        selector.match_labels.keys().chain(selector.match_expressions.iter().map(|r| &r.key)).collect();
    if keys.iter().any(|k| k.starts_with("reserved:")) {
        return PeerNamespaces::Reserved;
    }
    let namespace_key = |k: &str| k == NAMESPACE_LABEL || k.starts_with(NAMESPACE_LABELS_PREFIX);
    let pinned = selector.match_labels.keys().any(|k| namespace_key(k))
        || selector.match_expressions.iter().any(|r| r.operator == "In" && namespace_key(&r.key));
    if pinned {
        PeerNamespaces::Pinned
    } else if !clusterwide && !keys.iter().any(|k| namespace_key(k)) {
        PeerNamespaces::Own
    } else {
        PeerNamespaces::Any
    }
}

/// A Cilium selector with the keys a pod's labels answer to: `k8s:` and `any:`
/// (and no prefix) are dropped; other sources keep theirs, so match no pod.
pub fn endpoint_selector(selector: &LabelSelector) -> LabelSelector {
    LabelSelector {
        match_labels: selector.match_labels.iter().map(|(k, v)| (pod_label_key(k).to_string(), v.clone())).collect(),
        match_expressions: selector
            .match_expressions
            .iter()
            .map(|r| Requirement { key: pod_label_key(&r.key).to_string(), ..r.clone() })
            .collect(),
    }
}

/// A selector key without its `k8s:` or `any:` source prefix.
pub fn pod_label_key(key: &str) -> &str {
    match key.split_once(':') {
        Some(("k8s" | "any", rest)) => rest,
        _ => key,
    }
}

/// Keys every endpoint of a namespace has with the same value.
fn is_namespace_wide(key: &str) -> bool {
    key == NAMESPACE_LABEL || key == CLUSTER_LABEL || key.starts_with(NAMESPACE_LABELS_PREFIX)
}

// ---------------------------------------------------------------------------
// Endpoints, namespaces and the policies that can apply to them

/// A namespace as policies see it: its name (none when the manifests leave it
/// to the deploy tool) and its labels (from its Namespace object in the
/// checked set, plus `kubernetes.io/metadata.name`, which the API server sets).
#[derive(Debug, Clone, Default)]
pub struct NamespaceInfo {
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl NamespaceInfo {
    /// From a Namespace object's metadata.
    pub fn from_meta(meta: &ObjectMeta) -> NamespaceInfo {
        let mut labels = meta.labels.clone();
        labels.insert(NAMESPACE_NAME_LABEL.to_string(), meta.name.clone());
        NamespaceInfo { name: Some(meta.name.clone()), labels }
    }

    /// The namespace `name`, with the labels of its Namespace object when the
    /// checked set has one.
    pub fn read(name: Option<&str>) -> Result<NamespaceInfo, String> {
        let Some(name) = name else { return Ok(NamespaceInfo::default()) };
        let found = namespace_object(name)?;
        let meta =
            found.map(|h| h.metadata).unwrap_or_else(|| ObjectMeta { name: name.to_string(), ..Default::default() });
        Ok(NamespaceInfo::from_meta(&meta))
    }

    /// For messages: the name, or what stands for an unset one.
    pub fn display(&self) -> &str {
        self.name.as_deref().unwrap_or("(unset, chosen at deploy time)")
    }

    /// The labels every endpoint of this namespace carries.
    pub fn endpoint_labels(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> =
            self.labels.iter().map(|(k, v)| (format!("{NAMESPACE_LABELS_PREFIX}{k}"), v.clone())).collect();
        if let Some(name) = &self.name {
            out.insert(NAMESPACE_LABEL.to_string(), name.clone());
        }
        out.insert(CLUSTER_LABEL.to_string(), "default".to_string());
        out
    }
}

/// The Namespace object named `name` in the checked set, if any.
pub fn namespace_object(name: &str) -> Result<Option<inventory::Header>, String> {
    for header in inventory::headers_cached("Namespace", None).iter() {
        let header = header.as_ref().map_err(String::clone)?;
        if header.metadata.name == name {
            return Ok(Some(header.clone()));
        }
    }
    Ok(None)
}

/// The labels Cilium gives the pods of a workload.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl Endpoint {
    /// The pod's labels, its service account and its namespace's labels.
    pub fn of(w: &Workload, namespace: &NamespaceInfo) -> Endpoint {
        let mut labels = namespace.endpoint_labels();
        labels.extend(w.pod_meta.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        let account = w.spec.service_account_name.as_deref().or(w.spec.service_account.as_deref()).unwrap_or("default");
        labels.insert(SERVICE_ACCOUNT_LABEL.to_string(), account.to_string());
        Endpoint { namespace: namespace.name.clone(), labels }
    }
}

/// The network policies of the checked set that can apply to the pods of one
/// namespace: its NetworkPolicies and CiliumNetworkPolicies, and every
/// CiliumClusterwideNetworkPolicy.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub network_policies: Vec<NetworkPolicy>,
    pub cilium: Vec<CiliumPolicy>,
}

impl PolicySet {
    /// Read from the inventory. An object without a namespace goes with others
    /// without one (see [`inventory::same_namespace`]). Read once per instance
    /// and namespace, then shared (see [`inventory`]).
    pub fn read(namespace: Option<&str>) -> Result<Rc<PolicySet>, String> {
        let read = |_: &[String]| -> Result<Rc<PolicySet>, String> {
            let network_policies =
                inventory::parse_all("NetworkPolicy", &inventory::same_namespace_shared("NetworkPolicy", namespace))?;
            let mut cilium: Vec<CiliumPolicy> = inventory::parse_all(
                "CiliumNetworkPolicy",
                &inventory::same_namespace_shared("CiliumNetworkPolicy", namespace),
            )?;
            let kind = "CiliumClusterwideNetworkPolicy";
            cilium.extend(inventory::parse_all_cached::<CiliumPolicy>(kind, None)?.iter().cloned());
            Ok(Rc::new(PolicySet { network_policies, cilium }))
        };
        // Kept under the NetworkPolicy list of the namespace, by its type.
        (*inventory::derived("NetworkPolicy", Some(namespace.unwrap_or("")), read)).clone()
    }
}

// ---------------------------------------------------------------------------
// CIDRs

/// An IP block: address and prefix length, as `ipBlock.cidr` and `toCIDR` write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `::/0`; a bare address is a /32 or /128. `None` when it does not parse.
    pub fn parse(text: &str) -> Option<Cidr> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, p.parse::<u8>().ok()?),
            None => {
                let a = text.parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// True for a /0: every address of its family.
    pub fn is_everything(&self) -> bool {
        self.prefix == 0
    }

    /// Whether every address of `other` is in this block.
    pub fn contains(&self, other: &Cidr) -> bool {
        if self.prefix > other.prefix {
            return false;
        }
        match (self.addr, other.addr) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::testing;

    fn workload(json: &str) -> Workload {
        Workload::from_json(json).unwrap().unwrap()
    }

    fn cilium(json: &str) -> CiliumPolicy {
        serde_json::from_str(json).unwrap()
    }

    fn netpol(json: &str) -> NetworkPolicy {
        serde_json::from_str(json).unwrap()
    }

    const API: &str = r#"{"kind":"Deployment","metadata":{"name":"api","namespace":"shop"},
        "spec":{"template":{"metadata":{"labels":{"app":"api"}},"spec":{"serviceAccountName":"api-sa","containers":[{"name":"c"}]}}}}"#;

    fn shop() -> NamespaceInfo {
        NamespaceInfo::from_meta(&ObjectMeta {
            name: "shop".into(),
            labels: [("team".to_string(), "payments".to_string())].into(),
            ..Default::default()
        })
    }

    #[test]
    fn kubernetes_policy_types_default_from_the_rules() {
        let p = netpol(r#"{"spec":{"podSelector":{}}}"#);
        assert!(p.affects(Direction::Ingress) && !p.affects(Direction::Egress));
        assert!(p.denies_all(Direction::Ingress));
        let p = netpol(r#"{"spec":{"podSelector":{},"policyTypes":[]}}"#);
        assert!(p.denies_all(Direction::Ingress) && !p.affects(Direction::Egress), "an empty list is defaulted too");
        let p = netpol(r#"{"spec":{"egress":[{"to":[{"podSelector":{}}]}]}}"#);
        assert!(p.affects(Direction::Egress) && !p.denies_all(Direction::Egress));
        let p = netpol(r#"{"spec":{"podSelector":{"matchLabels":{"a":"b"}},"policyTypes":["Egress"]}}"#);
        assert!(!p.denies_all(Direction::Egress), "a deny for some pods is not a default deny");
        let p = netpol(r#"{"spec":{"podSelector":null,"policyTypes":["Ingress"],"ingress":[{}]}}"#);
        assert!(!p.denies_all(Direction::Ingress), "ingress: [{{}}] allows everything in Kubernetes");
    }

    #[test]
    fn endpoint_labels_answer_prefixed_keys() {
        let ep = Endpoint::of(&workload(API), &shop());
        let sel = |json: &str| endpoint_selector(&serde_json::from_str(json).unwrap()).matches(&ep.labels).unwrap();
        assert!(sel(r#"{"matchLabels":{"k8s:app":"api"}}"#));
        assert!(sel(r#"{"matchLabels":{"any:app":"api","io.kubernetes.pod.namespace":"shop"}}"#));
        assert!(sel(r#"{"matchLabels":{"k8s:io.cilium.k8s.policy.serviceaccount":"api-sa"}}"#));
        assert!(sel(r#"{"matchLabels":{"io.cilium.k8s.namespace.labels.team":"payments"}}"#));
        assert!(sel(r#"{"matchLabels":{"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name":"shop"}}"#));
        assert!(sel(r#"{"matchExpressions":[{"key":"io.cilium.k8s.policy.cluster","operator":"Exists"}]}"#));
        assert!(!sel(r#"{"matchLabels":{"reserved:app":"api"}}"#), "other sources never match a pod");
        assert!(!sel(r#"{"matchLabels":{"k8s:io.kubernetes.pod.namespace":"other"}}"#));
    }

    #[test]
    fn namespaced_policies_apply_in_their_namespace_only() {
        let ep = Endpoint::of(&workload(API), &shop());
        let here = cilium(
            r#"{"kind":"CiliumNetworkPolicy","metadata":{"name":"p","namespace":"shop"},"spec":{"endpointSelector":{}}}"#,
        );
        let rule = here.spec.as_ref().unwrap();
        assert!(here.selects(rule, &ep).unwrap());
        let there = cilium(
            r#"{"kind":"CiliumNetworkPolicy","metadata":{"name":"p","namespace":"other"},"spec":{"endpointSelector":{}}}"#,
        );
        assert!(!there.selects(there.spec.as_ref().unwrap(), &ep).unwrap());
        let wide = cilium(
            r#"{"kind":"CiliumClusterwideNetworkPolicy","metadata":{"name":"p"},"specs":[
                {"endpointSelector":{"matchLabels":{"k8s:io.kubernetes.pod.namespace":"other"}}},
                {"endpointSelector":{"matchLabels":{"app":"api"}}},
                {"nodeSelector":{}}]}"#,
        );
        let selects: Vec<(String, bool)> = wide.rules().map(|(p, r)| (p, wide.selects(r, &ep).unwrap())).collect();
        assert_eq!(
            selects,
            [("/specs/0".to_string(), false), ("/specs/1".to_string(), true), ("/specs/2".to_string(), false)]
        );
    }

    #[test]
    fn whole_namespace_selectors() {
        let ns = shop();
        let check = |json: &str| {
            let p = cilium(json);
            let r = p.rules().next().unwrap().1;
            p.selects_namespace(r, &ns).unwrap()
        };
        assert!(check(
            r#"{"kind":"CiliumNetworkPolicy","metadata":{"namespace":"shop"},"spec":{"endpointSelector":{}}}"#
        ));
        assert!(!check(
            r#"{"kind":"CiliumNetworkPolicy","metadata":{"namespace":"shop"},"spec":{"endpointSelector":{"matchLabels":{"app":"api"}}}}"#
        ));
        assert!(
            !check(
                r#"{"kind":"CiliumNetworkPolicy","metadata":{"namespace":"shop"},"spec":{"endpointSelector":{"matchExpressions":[
                {"key":"app","operator":"NotIn","values":["legacy"]}]}}}"#
            ),
            "pods labelled app=legacy are left out"
        );
        assert!(check(r#"{"kind":"CiliumClusterwideNetworkPolicy","spec":{"endpointSelector":{}}}"#));
        assert!(check(
            r#"{"kind":"CiliumClusterwideNetworkPolicy","spec":{"endpointSelector":{"matchExpressions":[
                {"key":"io.kubernetes.pod.namespace","operator":"NotIn","values":["kube-system"]}]}}}"#
        ));
        assert!(!check(
            r#"{"kind":"CiliumClusterwideNetworkPolicy","spec":{"endpointSelector":{"matchLabels":{"k8s:io.kubernetes.pod.namespace":"kube-system"}}}}"#
        ));
        assert!(check(
            r#"{"kind":"CiliumClusterwideNetworkPolicy","spec":{"endpointSelector":{"matchLabels":{"io.cilium.k8s.namespace.labels.team":"payments"}}}}"#
        ));
        assert!(!check(r#"{"kind":"CiliumClusterwideNetworkPolicy","spec":{"nodeSelector":{}}}"#));
    }

    #[test]
    fn default_deny_follows_rules_and_enable_default_deny() {
        let rule = |json: &str| -> CiliumRule { serde_json::from_str(json).unwrap() };
        let r = rule(r#"{"endpointSelector":{},"ingress":[{}]}"#);
        assert!(r.default_deny(Direction::Ingress) && !r.default_deny(Direction::Egress));
        assert!(!r.allows_every_peer(Direction::Ingress), "ingress: [{{}}] allows nothing in Cilium");
        let r = rule(r#"{"endpointSelector":{},"egressDeny":[{"toEntities":["all"]}]}"#);
        assert!(r.default_deny(Direction::Egress));
        let r = rule(r#"{"endpointSelector":{},"ingress":[{}],"enableDefaultDeny":{"ingress":false}}"#);
        assert!(!r.default_deny(Direction::Ingress));
        let r = rule(r#"{"endpointSelector":{},"enableDefaultDeny":{"egress":true}}"#);
        assert!(!r.default_deny(Direction::Egress), "no egress rule, no policy entry");
        let r = rule(r#"{"endpointSelector":{},"egress":[{"toEntities":["all"]}]}"#);
        assert!(r.allows_every_peer(Direction::Egress));
        let r = rule(
            r#"{"endpointSelector":{},"egress":[{"toEntities":["cluster"]},{"toCIDRSet":[{"cidr":"0.0.0.0/0"}]},{"toCIDR":["::/0"]}]}"#,
        );
        assert!(r.allows_every_peer(Direction::Egress));
        let r = rule(
            r#"{"endpointSelector":{},"egress":[{"toEntities":["cluster"]},{"toCIDRSet":[{"cidr":"0.0.0.0/0","except":["10.0.0.0/8"]}]},{"toCIDR":["::/0"]}]}"#,
        );
        assert!(!r.allows_every_peer(Direction::Egress));
        let r =
            rule(r#"{"endpointSelector":{},"egress":[{"toEntities":["all"],"toPorts":[{"ports":[{"port":"53"}]}]}]}"#);
        assert!(!r.allows_every_peer(Direction::Egress), "port-restricted");
    }

    #[test]
    fn rules_without_peers() {
        let r: CiliumPeerRule =
            serde_json::from_str(r#"{"toPorts":[{"ports":[{"port":"80","protocol":"TCP"}]}]}"#).unwrap();
        assert!(r.allows_any_peer_on_ports(Direction::Ingress));
        let r: CiliumPeerRule = serde_json::from_str(r#"{"toPorts":[{"ports":[{"port":8080}]}]}"#).unwrap();
        assert_eq!(r.to_ports[0].ports[0].port, "8080", "a number where Cilium wants a string");
        let r: CiliumPeerRule = serde_json::from_str("{}").unwrap();
        assert!(!r.allows_any_peer_on_ports(Direction::Ingress));
        let r: CiliumPeerRule =
            serde_json::from_str(r#"{"toFQDNs":[{"matchName":"x.io"}],"toPorts":[{"ports":[{"port":"443"}]}]}"#)
                .unwrap();
        assert!(!r.allows_any_peer_on_ports(Direction::Egress));
        assert!(r.allows_any_peer_on_ports(Direction::Ingress), "toFQDNs is an egress field");
    }

    #[test]
    fn peer_selector_namespaces() {
        let ns = |json: &str, clusterwide| peer_namespaces(&serde_json::from_str(json).unwrap(), clusterwide);
        assert_eq!(ns("{}", false), PeerNamespaces::Own);
        assert_eq!(ns(r#"{"matchLabels":{"app":"x"}}"#, false), PeerNamespaces::Own);
        assert_eq!(ns("{}", true), PeerNamespaces::Any);
        assert_eq!(ns(r#"{"matchLabels":{"app":"x"}}"#, true), PeerNamespaces::Any);
        assert_eq!(
            ns(r#"{"matchLabels":{"k8s:io.kubernetes.pod.namespace":"kube-system"}}"#, true),
            PeerNamespaces::Pinned
        );
        assert_eq!(
            ns(r#"{"matchExpressions":[{"key":"io.kubernetes.pod.namespace","operator":"Exists"}]}"#, false),
            PeerNamespaces::Any
        );
        assert_eq!(
            ns(r#"{"matchExpressions":[{"key":"io.kubernetes.pod.namespace","operator":"In","values":["a"]}]}"#, false),
            PeerNamespaces::Pinned
        );
        assert_eq!(ns(r#"{"matchLabels":{"io.cilium.k8s.namespace.labels.team":"x"}}"#, true), PeerNamespaces::Pinned);
        assert_eq!(ns(r#"{"matchLabels":{"reserved:host":""}}"#, true), PeerNamespaces::Reserved);
    }

    #[test]
    fn policy_set_reads_the_namespace_and_every_clusterwide_policy() {
        testing::set(&[
            r#"{"kind":"Namespace","metadata":{"name":"shop","labels":{"team":"payments"}}}"#,
            r#"{"kind":"NetworkPolicy","metadata":{"name":"a","namespace":"shop"},"spec":{}}"#,
            r#"{"kind":"NetworkPolicy","metadata":{"name":"b","namespace":"other"},"spec":{}}"#,
            r#"{"kind":"CiliumNetworkPolicy","metadata":{"name":"c","namespace":"shop"},"spec":{}}"#,
            r#"{"kind":"CiliumClusterwideNetworkPolicy","metadata":{"name":"d"},"spec":{}}"#,
        ]);
        let set = PolicySet::read(Some("shop")).unwrap();
        assert_eq!(set.network_policies.len(), 1);
        let names: Vec<&str> = set.cilium.iter().map(|p| p.metadata.name.as_str()).collect();
        assert_eq!(names, ["c", "d"]);
        let ns = NamespaceInfo::read(Some("shop")).unwrap();
        assert_eq!(ns.labels.get("team").map(String::as_str), Some("payments"));
        assert_eq!(ns.labels.get("kubernetes.io/metadata.name").map(String::as_str), Some("shop"));
        let none = NamespaceInfo::read(Some("absent")).unwrap();
        assert_eq!(none.labels.len(), 1);
        testing::set(&[r#"{"kind":"NetworkPolicy","metadata":{"name":"bad"},"spec":{"podSelector":7}}"#]);
        let err = PolicySet::read(None).unwrap_err();
        assert!(err.contains("NetworkPolicy \"bad\""), "{err}");
    }

    #[test]
    fn cidrs() {
        let c = |s: &str| Cidr::parse(s).unwrap();
        assert!(c("0.0.0.0/0").is_everything() && c("::/0").is_everything());
        assert!(!c("10.0.0.0/8").is_everything());
        assert!(c("10.0.0.0/8").contains(&c("10.1.2.0/24")));
        assert!(!c("10.0.0.0/8").contains(&c("11.0.0.0/24")));
        assert!(c("0.0.0.0/0").contains(&c("1.2.3.4")));
        assert!(!c("0.0.0.0/0").contains(&c("::/0")));
        assert!(c("2001:db8::/32").contains(&c("2001:db8:1::/48")));
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Cidr::parse("banana"), None);
    }
}
