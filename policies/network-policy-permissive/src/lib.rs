//! No network policy rule allows a whole direction open: every source or
//! destination, every namespace, every address, every DNS name.
//!
//! Sources. Kubernetes: `NetworkPolicyIngressRule`, `NetworkPolicyEgressRule`,
//! `NetworkPolicyPeer` and `IPBlock` of `k8s.io/api/networking/v1`
//! (`types.go`: a rule whose `from`/`to` is empty or missing matches every
//! peer, one whose `ports` is empty every port; `namespaceSelector: {}`
//! selects every namespace; a peer must set one of podSelector,
//! namespaceSelector or ipBlock) and
//! <https://kubernetes.io/docs/concepts/services-networking/network-policies/>.
//! Cilium: `pkg/policy/api` (`ingress.go`, `egress.go`, `entity.go`: `all` is
//! every peer, `world` every address outside the cluster, the same as
//! `0.0.0.0/0` and `::/0`, `cluster` every endpoint inside it; `cidr.go`;
//! `fqdn.go`: `matchPattern: "*"` matches every name), the agent's translation
//! in `pkg/k8s/apis/cilium.io/utils` (a rule with ports and no peer allows every
//! peer on them; a peer selector without a namespace key is confined to the
//! policy's namespace, or in a clusterwide policy to any) and
//! <https://docs.cilium.io/en/stable/security/policy/language/>; the reading of
//! both lives in `palisade_sdk::cilium`. Peer: kubeaudit `netpols`
//! (`AllowAll{Ingress,Egress}NetworkPolicyExists`: a rule without `from`/`to`).
//!
//! What is reported, each at the rule or peer concerned
//! (`/spec/ingress/0/from/1`, `/specs/1/egress/0/toEntities/0`), with why:
//! - a rule that names no peer (Kubernetes: no `from`/`to`; Cilium: no L3
//!   field, with `toPorts` or `icmps`): every peer. With ports it still admits
//!   every peer on them, so it is reported, naming the ports;
//! - an empty Kubernetes peer `{}` (the API server refuses it, but it is no
//!   restriction);
//! - `namespaceSelector: {}`, and Cilium endpoint selectors that do not pin the
//!   namespace (a clusterwide policy's selector without namespace key, a
//!   namespace key with `Exists` or `NotIn`), and the entity `cluster`: pods of
//!   every namespace, unless the policy's namespace is in `allowedNamespaces`.
//!   Narrowed by a pod selector it is still reported: any namespace can run a
//!   pod with those labels;
//! - an IP block covering every address of its family (`0.0.0.0/0`, `::/0`)
//!   without `except`, Cilium `fromCIDR`/`toCIDR`/`*CIDRSet` alike, and the
//!   entities `world`, `world-ipv4`, `world-ipv6`, unless inside `allowedCidrs`;
//! - the entity `all`, and `toFQDNs` with `matchPattern: "*"`.
//!
//! Only rules that take effect are read: a NetworkPolicy's rules of a direction
//! its `policyTypes` leave out allow nothing (kubeaudit reads them anyway), and
//! deny rules (`ingressDeny`, `egressDeny`) allow nothing.

use std::collections::BTreeSet;

use palisade_sdk::cilium::{
    Cidr, CiliumPeerRule, CiliumPolicy, Direction, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, POLICY_KINDS,
    PeerNamespaces, PortRule, peer_namespaces,
};
use palisade_sdk::inventory::Header;
use palisade_sdk::selector::LabelSelector;
use palisade_sdk::{Context, HARDENED, Metadata, Rule, SettingsError, Severity, Violation};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    #[serde(default)]
    pub allowed_namespaces: Vec<String>,
    #[serde(default)]
    pub allowed_cidrs: Vec<String>,
}

pub struct NetworkPolicyPermissive {
    allowed_namespaces: BTreeSet<String>,
    allowed_cidrs: Vec<Cidr>,
}

/// What a rule of direction `d` does with the peers it names.
fn verb(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "admits traffic from",
        Direction::Egress => "allows traffic to",
    }
}

/// What a finding about a rule of direction `d` asks for.
fn fix(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "admit only the peers that must reach its pods",
        Direction::Egress => "allow only the destinations its pods need",
    }
}

impl NetworkPolicyPermissive {
    fn cidr_allowed(&self, cidr: &Cidr) -> bool {
        self.allowed_cidrs.iter().any(|a| a.contains(cidr))
    }

    /// Why a block that is written `text` is too wide, if it is.
    fn wide_cidr(&self, text: &str) -> Option<String> {
        let cidr = Cidr::parse(text)?;
        (cidr.is_everything() && !self.cidr_allowed(&cidr))
            .then(|| format!("every {} address ({text})", if cidr.addr.is_ipv4() { "IPv4" } else { "IPv6" }))
    }

    fn namespace_allowed(&self, namespace: &str) -> bool {
        self.allowed_namespaces.contains(namespace)
    }

    fn check_network_policy(&self, p: &NetworkPolicy) -> Vec<Violation> {
        let mut out = Vec::new();
        let any_namespace_ok = self.namespace_allowed(&p.metadata.namespace);
        for d in Direction::BOTH.into_iter().filter(|&d| p.affects(d)) {
            for (i, rule) in p.rules(d).iter().enumerate() {
                let base = format!("/spec/{}/{i}", d.field());
                let what = format!("NetworkPolicy {:?}: {} rule {i} {}", p.name(), d.field(), verb(d));
                let ports = k8s_ports(&rule.ports);
                let peers = rule.peers(d);
                if peers.is_empty() {
                    let who = format!("every peer (the rule has no `{}`)", d.peers_field());
                    out.push(Violation::new(format!("{what} {who}, {ports}; {}", fix(d)), base.clone()));
                }
                for (j, peer) in peers.iter().enumerate() {
                    if let Some(who) = self.wide_k8s_peer(peer, any_namespace_ok) {
                        let path = format!("{base}/{}/{j}", d.peers_field());
                        out.push(Violation::new(format!("{what} {who}, {ports}; {}", fix(d)), path));
                    }
                }
            }
        }
        out
    }

    fn wide_k8s_peer(&self, peer: &NetworkPolicyPeer, any_namespace_ok: bool) -> Option<String> {
        if let Some(block) = &peer.ip_block {
            return self
                .wide_cidr(&block.cidr)
                .filter(|_| block.except.is_empty())
                .map(|who| format!("{who}, an ipBlock without except"));
        }
        match (&peer.namespace_selector, &peer.pod_selector) {
            (Some(ns), pods) if ns.is_empty() && !any_namespace_ok => {
                Some(match pods.as_ref().filter(|s| !s.is_empty()) {
                    Some(pods) => format!("pods matching {} in every namespace (namespaceSelector: {{}})", show(pods)),
                    None => "every pod in every namespace (namespaceSelector: {})".to_string(),
                })
            }
            (None, None) => Some(
                "every peer (an empty peer {}, which the API server refuses: set podSelector, \
                 namespaceSelector or ipBlock)"
                    .to_string(),
            ),
            _ => None,
        }
    }

    fn check_cilium(&self, p: &CiliumPolicy) -> Vec<Violation> {
        let mut out = Vec::new();
        let any_namespace_ok = !p.is_clusterwide() && self.namespace_allowed(&p.metadata.namespace);
        for (pointer, rule) in p.rules() {
            let of_specs = if pointer == "/spec" { String::new() } else { format!(" of {}", &pointer[1..]) };
            for d in Direction::BOTH {
                for (i, r) in rule.allow(d).iter().enumerate() {
                    let base = format!("{pointer}/{}/{i}", d.field());
                    let what = format!("{}: {} rule {i}{of_specs} {}", p.describe(), d.field(), verb(d));
                    let ports = cilium_ports(r);
                    for (field, who) in self.wide_cilium_peers(r, d, p.is_clusterwide(), any_namespace_ok) {
                        let path = if field.is_empty() { base.clone() } else { format!("{base}/{field}") };
                        out.push(Violation::new(format!("{what} {who}, {ports}; {}", fix(d)), path));
                    }
                }
            }
        }
        out
    }

    /// The too-wide peers of a Cilium rule: (pointer below the rule, why).
    fn wide_cilium_peers(
        &self,
        r: &CiliumPeerRule,
        d: Direction,
        clusterwide: bool,
        any_namespace_ok: bool,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if r.allows_any_peer_on_ports(d) {
            let fields = format!("no {} or other peer field", d.cilium_field("Endpoints"));
            out.push((String::new(), format!("every peer, in the cluster and outside it ({fields})")));
        }
        let p = r.peers(d);
        let field = |what: &str, k: usize| format!("{}/{k}", d.cilium_field(what));
        for (k, entity) in p.entities.unwrap_or_default().iter().enumerate() {
            let v4 = || self.cidr_allowed(&Cidr::parse("0.0.0.0/0").expect("a CIDR"));
            let v6 = || self.cidr_allowed(&Cidr::parse("::/0").expect("a CIDR"));
            let who = match entity.as_str() {
                "all" => Some("every peer, in the cluster and outside it (entity all)"),
                "world" if !(v4() && v6()) => Some("every address outside the cluster (entity world)"),
                "world-ipv4" if !v4() => Some("every IPv4 address outside the cluster (entity world-ipv4)"),
                "world-ipv6" if !v6() => Some("every IPv6 address outside the cluster (entity world-ipv6)"),
                "cluster" if !any_namespace_ok => {
                    Some("every endpoint of the cluster, in every namespace (entity cluster)")
                }
                _ => None,
            };
            out.extend(who.map(|who| (field("Entities", k), who.to_string())));
        }
        for (k, cidr) in p.cidr.unwrap_or_default().iter().enumerate() {
            out.extend(self.wide_cidr(cidr).map(|who| (field("CIDR", k), who)));
        }
        for (k, set) in p.cidr_set.unwrap_or_default().iter().enumerate() {
            let who = self.wide_cidr(&set.cidr).filter(|_| set.except.is_empty());
            out.extend(who.map(|who| (field("CIDRSet", k), format!("{who}, a CIDR set without except"))));
        }
        for (k, selector) in p.endpoints.unwrap_or_default().iter().enumerate() {
            if peer_namespaces(selector, clusterwide) == PeerNamespaces::Any && !any_namespace_ok {
                let pods = if selector.is_empty() {
                    "every pod".to_string()
                } else {
                    format!("pods matching {}", show(selector))
                };
                let who = format!("{pods} in every namespace (the selector does not pin io.kubernetes.pod.namespace)");
                out.push((field("Endpoints", k), who));
            }
        }
        for (k, fqdn) in p.fqdns.unwrap_or_default().iter().enumerate() {
            if fqdn.match_pattern.trim() == "*" {
                out.push((field("FQDNs", k), "every DNS name (matchPattern \"*\")".to_string()));
            }
        }
        out
    }
}

/// A label selector in the form `kubectl` accepts: `app=web,tier in (a,b),!legacy`.
fn show(s: &LabelSelector) -> String {
    let labels = s.match_labels.iter().map(|(k, v)| format!("{k}={v}"));
    let expressions = s.match_expressions.iter().map(|r| match r.operator.as_str() {
        "Exists" => r.key.clone(),
        "DoesNotExist" => format!("!{}", r.key),
        op => format!("{} {} ({})", r.key, op.to_lowercase(), r.values.join(",")),
    });
    labels.chain(expressions).collect::<Vec<_>>().join(",")
}

/// `on every port`, `on 443/TCP`, `on 53/UDP, 53/TCP`, `on ICMP`.
fn on_ports(ports: Vec<String>) -> String {
    if ports.is_empty() { "on every port".to_string() } else { format!("on {}", ports.join(", ")) }
}

fn k8s_ports(ports: &[NetworkPolicyPort]) -> String {
    on_ports(
        ports
            .iter()
            .map(|p| {
                let protocol = p.protocol.as_deref().unwrap_or("TCP");
                let port = match &p.port {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => return format!("any {protocol} port"),
                };
                match p.end_port {
                    Some(end) => format!("{port}-{end}/{protocol}"),
                    None => format!("{port}/{protocol}"),
                }
            })
            .collect(),
    )
}

fn cilium_ports(r: &CiliumPeerRule) -> String {
    let mut ports: Vec<String> = r.to_ports.iter().flat_map(port_rule).collect();
    if !r.icmps.is_empty() {
        ports.push("ICMP".to_string());
    }
    let layer7 = r.to_ports.iter().any(|p| p.rules.is_some());
    format!("{}{}", on_ports(ports), if layer7 { " (within its layer-7 rules)" } else { "" })
}

fn port_rule(rule: &PortRule) -> Vec<String> {
    rule.ports
        .iter()
        .map(|p| {
            let protocol = if p.protocol.is_empty() { "ANY" } else { p.protocol.as_str() };
            match (p.port.as_str(), p.end_port) {
                ("" | "0", _) => format!("any {protocol} port"),
                (port, Some(end)) => format!("{port}-{end}/{protocol}"),
                (port, None) => format!("{port}/{protocol}"),
            }
        })
        .collect()
}

impl Rule for NetworkPolicyPermissive {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata {
            id: "network-policy-permissive",
            title: "Network policies must not allow a whole direction open",
            description: "Fails a NetworkPolicy, CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy for each \
                          rule or peer that allows everything in its direction: a rule that names no peer (no \
                          from/to; in Cilium no L3 field but ports), reported with its ports if it has some; an \
                          empty peer {}; namespaceSelector: {} or a Cilium endpoint selector that does not pin \
                          the namespace, or the entity cluster (pods of every namespace), unless the policy's \
                          namespace is in allowedNamespaces; an ipBlock, fromCIDR/toCIDR or CIDR set of \
                          0.0.0.0/0 or ::/0 without except, or the entity world, unless allowedCidrs contains \
                          it; the entity all; toFQDNs matchPattern \"*\".",
            rationale: "A policy that admits every source, namespace or address isolates nothing in that \
                        direction: it reopens what a default deny closed, often by accident (an empty from: \
                        means everyone, not no one), and lets any compromised pod in any namespace, or the \
                        internet, reach the pods it selects, or those pods reach anywhere to exfiltrate.",
            remediation: "Name the peers each rule needs: podSelector (and namespaceSelector with labels, such \
                          as kubernetes.io/metadata.name) for pods, ipBlock with the narrowest CIDR (and except \
                          for the cluster's ranges) for addresses, toFQDNs matchName for external services. \
                          Where exposure to the internet is the design (an ingress gateway), list the CIDR in \
                          allowedCidrs or add an exception for that policy.",
            severity: Severity::Medium,
            category: "Network",
            applies_to: &POLICY_KINDS,
            reads_kinds: &[],
            settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{
                "allowedNamespaces":{"type":"array","items":{"type":"string"},"uniqueItems":true,"default":[],
                "description":"Namespaces whose policies may admit or reach pods of every namespace (namespaceSelector: {}, Cilium selectors that do not pin the namespace, the entity cluster)."},
                "allowedCidrs":{"type":"array","items":{"type":"string"},"default":[],
                "description":"IP blocks that may be allowed whole: a peer block inside one of them is not reported. \"0.0.0.0/0\" accepts any IPv4 address; with \"::/0\" too, the entity world."}}}"#,
            references: &[
                "https://kubernetes.io/docs/concepts/services-networking/network-policies/",
                "https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/",
                "https://docs.cilium.io/en/stable/security/policy/language/",
                "https://github.com/Shopify/kubeaudit/blob/main/docs/auditors/netpols.md",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(s: Settings) -> Result<Self, SettingsError> {
        let allowed_cidrs = s
            .allowed_cidrs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Cidr::parse(c).ok_or_else(|| {
                    SettingsError::new(format!("/allowedCidrs/{i}"), format!("{c:?} is not a CIDR such as 0.0.0.0/0"))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(NetworkPolicyPermissive { allowed_namespaces: s.allowed_namespaces.into_iter().collect(), allowed_cidrs })
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        let header = Header::read(object)?;
        let read = |e: serde_json::Error| format!("cannot read the {}: {e}", header.kind);
        match header.kind.as_str() {
            "NetworkPolicy" => Ok(self.check_network_policy(&serde_json::from_str(object).map_err(read)?)),
            "CiliumNetworkPolicy" | "CiliumClusterwideNetworkPolicy" => {
                Ok(self.check_cilium(&serde_json::from_str(object).map_err(read)?))
            }
            _ => Ok(Vec::new()),
        }
    }
}

palisade_sdk::export_rule!(NetworkPolicyPermissive);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::configure;

    fn findings_with(settings: &str, object: &str) -> Vec<(String, String)> {
        let rule = configure::<NetworkPolicyPermissive>(settings).unwrap();
        rule.evaluate(object, &Context::default()).unwrap().into_iter().map(|v| (v.path, v.message)).collect()
    }

    fn findings(object: &str) -> Vec<(String, String)> {
        findings_with("{}", object)
    }

    fn paths(object: &str) -> Vec<String> {
        findings(object).into_iter().map(|(p, _)| p).collect()
    }

    fn netpol(spec: &str) -> String {
        format!(
            r#"{{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{{"name":"web","namespace":"shop"}},"spec":{spec}}}"#
        )
    }

    fn cnp(spec: &str) -> String {
        format!(
            r#"{{"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy","metadata":{{"name":"web","namespace":"shop"}},"spec":{spec}}}"#
        )
    }

    #[test]
    fn rules_without_peers_allow_everything() {
        // kubeaudit's allow-all policy.
        let allow_all = netpol(r#"{"podSelector":{},"ingress":[{}],"egress":[{}],"policyTypes":["Ingress","Egress"]}"#);
        let f = findings(&allow_all);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].0, "/spec/ingress/0");
        assert_eq!(
            f[0].1,
            "NetworkPolicy \"web\": ingress rule 0 admits traffic from every peer (the rule has no `from`), on every \
             port; admit only the peers that must reach its pods"
        );
        assert!(
            f[1].1.ends_with(
                "egress rule 0 allows traffic to every peer (the rule has no `to`), on every port; allow only the \
                 destinations its pods need"
            ),
            "{}",
            f[1].1
        );
        let with_ports = netpol(
            r#"{"podSelector":{"matchLabels":{"app":"web"}},"ingress":[{"ports":[{"port":443},{"port":"metrics","protocol":"TCP"},{"port":8000,"endPort":8100,"protocol":"UDP"},{"protocol":"SCTP"}]}]}"#,
        );
        let f = findings(&with_ports);
        assert!(f[0].1.contains("on 443/TCP, metrics/TCP, 8000-8100/UDP, any SCTP port;"), "{}", f[0].1);
        // Rules of a direction the policy does not affect allow nothing.
        let inert = netpol(
            r#"{"podSelector":{},"policyTypes":["Egress"],"ingress":[{}],"egress":[{"to":[{"podSelector":{}}]}]}"#,
        );
        assert!(findings(&inert).is_empty());
        let deny_all = netpol(r#"{"podSelector":{},"policyTypes":["Ingress","Egress"]}"#);
        assert!(findings(&deny_all).is_empty());
    }

    #[test]
    fn wide_kubernetes_peers() {
        let policy = netpol(
            r#"{"podSelector":{"matchLabels":{"app":"web"}},"policyTypes":["Ingress","Egress"],
            "ingress":[{"from":[
                {"podSelector":{"matchLabels":{"app":"lb"}}},
                {"namespaceSelector":{}},
                {"namespaceSelector":{},"podSelector":{"matchLabels":{"app":"prometheus"}}},
                {"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"ingress-nginx"}}},
                {"ipBlock":{"cidr":"0.0.0.0/0"}},
                {"ipBlock":{"cidr":"0.0.0.0/0","except":["10.0.0.0/8"]}},
                {"ipBlock":{"cidr":"192.168.0.0/16"}},
                {}],
              "ports":[{"port":8080}]}],
            "egress":[{"to":[{"ipBlock":{"cidr":"::/0"}}]}]}"#,
        );
        let f = findings(&policy);
        let got: Vec<&str> = f.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            got,
            [
                "/spec/ingress/0/from/1",
                "/spec/ingress/0/from/2",
                "/spec/ingress/0/from/4",
                "/spec/ingress/0/from/7",
                "/spec/egress/0/to/0"
            ]
        );
        assert!(f[0].1.contains("every pod in every namespace (namespaceSelector: {})"), "{}", f[0].1);
        assert!(f[1].1.contains("pods matching app=prometheus in every namespace"), "{}", f[1].1);
        assert!(
            f[2].1.contains("every IPv4 address (0.0.0.0/0), an ipBlock without except, on 8080/TCP"),
            "{}",
            f[2].1
        );
        assert!(f[3].1.contains("an empty peer {}"), "{}", f[3].1);
        assert!(f[4].1.contains("allows traffic to every IPv6 address (::/0)"), "{}", f[4].1);
    }

    #[test]
    fn allowed_namespaces_and_cidrs() {
        let policy = netpol(
            r#"{"podSelector":{},"ingress":[{"from":[{"namespaceSelector":{}},{"ipBlock":{"cidr":"0.0.0.0/0"}},{"ipBlock":{"cidr":"::/0"}}]}]}"#,
        );
        assert_eq!(findings(&policy).len(), 3);
        assert_eq!(findings_with(r#"{"allowedNamespaces":["shop"]}"#, &policy).len(), 2);
        assert_eq!(findings_with(r#"{"allowedNamespaces":["other"]}"#, &policy).len(), 3);
        let v4 = findings_with(r#"{"allowedCidrs":["0.0.0.0/0"]}"#, &policy);
        assert_eq!(
            v4.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["/spec/ingress/0/from/0", "/spec/ingress/0/from/2"]
        );
        let err = configure::<NetworkPolicyPermissive>(r#"{"allowedCidrs":["0.0.0.0/0","everything"]}"#).err().unwrap();
        assert_eq!(err.field, "/allowedCidrs/1");
        let err = configure::<NetworkPolicyPermissive>(r#"{"allowedCidr":[]}"#).err().unwrap();
        assert_eq!(err.field, "/allowedCidr");
    }

    #[test]
    fn cilium_connectivity_test_policies() {
        // allow-all-egress: the namespace's own endpoints, then the whole Internet.
        let egress = cnp(
            r#"{"endpointSelector":{},"egress":[{"toEndpoints":[{"matchExpressions":[{"key":"io.cilium.k8s.policy.cluster","operator":"Exists"}]}]},
            {"toCIDR":["0.0.0.0/0","::/0"]}]}"#,
        );
        assert_eq!(paths(&egress), ["/spec/egress/1/toCIDR/0", "/spec/egress/1/toCIDR/1"]);
        // echo-ingress-l7-http-from-anywhere: no peer, a port and HTTP rules.
        let anywhere = cnp(
            r#"{"endpointSelector":{"matchLabels":{"kind":"echo"}},"ingress":[{"toPorts":[{"ports":[{"port":"8080","protocol":"TCP"}],
            "rules":{"http":[{"method":"GET","path":"/$"}]}}]}]}"#,
        );
        let f = findings(&anywhere);
        assert_eq!(f[0].0, "/spec/ingress/0");
        assert!(f[0].1.contains("on 8080/TCP (within its layer-7 rules);"), "{}", f[0].1);
        // client-egress-to-entities-world, in part.
        let world = cnp(
            r#"{"endpointSelector":{"matchLabels":{"kind":"client"}},"egress":[{"toEntities":["world"],"toPorts":[{"ports":[{"port":"80","protocol":"TCP"}]}]},
            {"toEndpoints":[{"matchExpressions":[{"key":"k8s-app","operator":"In","values":["kube-dns"]},{"key":"io.kubernetes.pod.namespace","operator":"In","values":["kube-system"]}]}],
             "toPorts":[{"ports":[{"port":"53","protocol":"UDP"}]}]}]}"#,
        );
        let f = findings(&world);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, "/spec/egress/0/toEntities/0");
        assert!(f[0].1.contains("every address outside the cluster (entity world), on 80/TCP"), "{}", f[0].1);
        assert!(findings_with(r#"{"allowedCidrs":["0.0.0.0/0","::/0"]}"#, &world).is_empty());
        assert_eq!(findings_with(r#"{"allowedCidrs":["0.0.0.0/0"]}"#, &world).len(), 1);
        // Cilium's deny-all: nothing is allowed.
        assert!(findings(&cnp(r#"{"endpointSelector":{},"ingress":[{}],"egress":[{}]}"#)).is_empty());
        assert!(findings(&cnp(r#"{"endpointSelector":{},"egressDeny":[{"toEntities":["all"]}]}"#)).is_empty());
    }

    #[test]
    fn cilium_entities_fqdns_and_namespaces() {
        let policy = cnp(r#"{"endpointSelector":{},"ingress":[{"fromEntities":["host","cluster","all"]},
              {"fromEndpoints":[{},{"matchExpressions":[{"key":"k8s:io.kubernetes.pod.namespace","operator":"Exists"}]},
                 {"matchLabels":{"io.kubernetes.pod.namespace":"monitoring","app":"prometheus"}}]},
              {"fromCIDRSet":[{"cidr":"0.0.0.0/0","except":["169.254.169.254/32"]},{"cidr":"::/0"}]}],
            "egress":[{"toFQDNs":[{"matchPattern":"*"},{"matchPattern":"*.example.com"}],"toPorts":[{"ports":[{"port":"443"}]}]}]}"#);
        let f = findings(&policy);
        let got: Vec<&str> = f.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            got,
            [
                "/spec/ingress/0/fromEntities/1",
                "/spec/ingress/0/fromEntities/2",
                "/spec/ingress/1/fromEndpoints/1",
                "/spec/ingress/2/fromCIDRSet/1",
                "/spec/egress/0/toFQDNs/0",
            ]
        );
        assert!(f[1].1.contains("(entity all), on every port"), "{}", f[1].1);
        assert!(f[2].1.contains("from pods matching k8s:io.kubernetes.pod.namespace in every namespace"), "{}", f[2].1);
        assert!(f[4].1.contains("every DNS name (matchPattern \"*\"), on 443/ANY"), "{}", f[4].1);
        assert_eq!(findings_with(r#"{"allowedNamespaces":["shop"]}"#, &policy).len(), 3);
    }

    #[test]
    fn clusterwide_policies_and_specs() {
        let ccnp = r#"{"apiVersion":"cilium.io/v2","kind":"CiliumClusterwideNetworkPolicy","metadata":{"name":"monitoring"},
            "specs":[{"endpointSelector":{"matchLabels":{"io.kubernetes.pod.namespace":"cilium-test-ccnp1"}},
                      "ingress":[{"fromEndpoints":[{"matchLabels":{"io.kubernetes.pod.namespace":"cilium-test-ccnp2"}}]}]},
                     {"endpointSelector":{},"ingress":[{"fromEndpoints":[{"matchLabels":{"app":"prometheus"}}]}]}]}"#;
        let f = findings(ccnp);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, "/specs/1/ingress/0/fromEndpoints/0");
        assert!(
            f[0].1.starts_with(
                "CiliumClusterwideNetworkPolicy \"monitoring\": ingress rule 0 of specs/1 admits traffic from pods matching app=prometheus in every namespace"
            ),
            "{}",
            f[0].1
        );
        assert_eq!(findings_with(r#"{"allowedNamespaces":[""]}"#, ccnp).len(), 1, "no namespace to allow");
    }

    #[test]
    fn other_kinds_pass_and_unreadable_policies_are_errors() {
        assert!(findings(r#"{"kind":"Service","metadata":{"name":"s"}}"#).is_empty());
        let rule = configure::<NetworkPolicyPermissive>("{}").unwrap();
        let err = rule.evaluate(&netpol(r#"{"ingress":{"from":[]}}"#), &Context::default()).unwrap_err();
        assert!(err.starts_with("cannot read the NetworkPolicy"), "{err}");
    }

    #[test]
    fn metadata() {
        let m = NetworkPolicyPermissive::metadata();
        assert_eq!(m.applies_to, ["NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"]);
        assert!(m.reads_kinds.is_empty());
        let schema: serde_json::Value = serde_json::from_str(m.settings_schema).unwrap();
        let mut properties: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        properties.sort();
        assert_eq!(properties, ["allowedCidrs", "allowedNamespaces"]);
    }
}
