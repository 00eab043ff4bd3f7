//! Workloads in an Istio mesh accept mutual TLS only.
//!
//! Sources: Istio's PeerAuthentication reference
//! (<https://istio.io/latest/docs/reference/config/security/peer_authentication/>)
//! and the way istiod combines the policies (`ComposePeerAuthentication`,
//! istio/istio `pilot/pkg/security/authn/policy_applier.go`): a workload's mode
//! comes from the oldest workload-level policy that selects it, else its
//! namespace's, else the mesh-wide one in the root namespace; `UNSET` inherits,
//! and with nothing set Istio is PERMISSIVE. `portLevelMtls` of the
//! workload-level policy overrides single ports. DestinationRule
//! `trafficPolicy.tls.mode: DISABLE` (also per port and per subset) makes clients
//! send plaintext
//! (<https://istio.io/latest/docs/reference/config/networking/destination-rule/>).
//! Istio's security best practices ask for STRICT
//! (<https://istio.io/latest/docs/ops/best-practices/security/>).
//! The parsing and resolution live in `palisade_sdk::istio`.
//!
//! What is evaluated:
//! - every workload (not in the root namespace, which holds the control plane):
//!   its resolved mode must be STRICT, no port of its workload policy may be
//!   PERMISSIVE or DISABLE, its pods must not opt out of the sidecar
//!   (`sidecar.istio.io/inject: "false"`, host network), and no DestinationRule
//!   of the checked set may disable TLS to it. A DestinationRule counts when its
//!   host (a short name read in the rule's namespace, as Istio does) is a
//!   wildcard covering the workload's namespace (`*`, `*.local`,
//!   `*.cluster.local`, `*.svc.<domain>`, `*.<namespace>.svc.<domain>`), or names
//!   a Service of that namespace that selects the workload's pods, or names a
//!   Service of that namespace that is not in the checked set (in doubt: it may
//!   select them). Which of several DestinationRules a client applies (its own
//!   namespace's, the service's, the root's; `exportTo`, `workloadSelector`) is
//!   not modelled: any that can apply counts.
//! - every PeerAuthentication: one that sets PERMISSIVE or DISABLE (for all its
//!   ports or in `portLevelMtls`) is a finding where it is fixed, and so is one
//!   Istio refuses (unknown mode, bad port, `portLevelMtls` without a selector),
//!   which never takes effect.
//! - every DestinationRule that sets `tls.mode: DISABLE` for a host that can name
//!   a Kubernetes service, or a host of a `MESH_INTERNAL` ServiceEntry of the
//!   checked set. A host outside the cluster (an external API) is not mesh
//!   traffic: there DISABLE only means the sidecar does not originate TLS.
//!
//! When the rule checks: with `mesh: istio` always; with `mesh: auto` (the
//! default) when the checked set holds an object of `security.istio.io` or
//! `networking.istio.io` (for a PeerAuthentication or DestinationRule being
//! evaluated, it is that object itself); with `mesh: none` never, and the rule
//! says so as its inactive reason. A rule's inactive reason is asked once, at
//! load time, before any object is read, so an `auto` rule that finds no Istio
//! in the set cannot say so there: it reports nothing for that set.
//!
//! Kyverno (`istio/enforce-strict-mtls`, `istio/enforce-tls-hosts-host-subnets`,
//! `istio/prevent-disabling-injection-pods`) checks the same fields on each
//! object alone; Palisade also resolves which policy wins for each workload.

use palisade_sdk::inventory::{self, Header};
use palisade_sdk::istio::{
    self, DestinationRule, HostTarget, MESH_SETTINGS_SCHEMA, Mesh, MeshSettings, MtlsMode, PeerAuthentication, Scope,
    Service, ServiceEntry,
};
use palisade_sdk::{Context, Fields, HARDENED, Metadata, Rule, SettingsError, Severity, Violation, Workload};

/// The workload kinds evaluated (a bare PodTemplate runs nothing), and the
/// policies whose own settings can weaken mTLS.
const APPLIES_TO: [&str; 10] =
    palisade_sdk::join_kinds(palisade_sdk::WORKLOAD_KINDS, ["PeerAuthentication", "DestinationRule"]);

/// The Istio kinds (to learn whether Istio is in the set, and the policies
/// themselves) and Services (which pods a DestinationRule's host reaches).
const READS: [&str; 13] = palisade_sdk::join_kinds(istio::KINDS, ["Service"]);

pub struct MeshMtlsStrict {
    mesh: Mesh,
}

fn weak(mode: MtlsMode) -> bool {
    matches!(mode, MtlsMode::Permissive | MtlsMode::Disable)
}

fn namespace_name(ns: Option<&str>) -> &str {
    ns.unwrap_or("(unset)")
}

impl MeshMtlsStrict {
    fn peer_authentication(&self, json: &str) -> Result<Vec<Violation>, String> {
        let p: PeerAuthentication =
            serde_json::from_str(json).map_err(|e| format!("cannot read the PeerAuthentication: {e}"))?;
        let problems = p.problems();
        if !problems.is_empty() {
            return Ok(problems
                .into_iter()
                .map(|v| {
                    Violation::new(
                        format!("Istio refuses this PeerAuthentication, so it never applies: {}", v.message),
                        v.path,
                    )
                })
                .collect());
        }
        let governs = match p.scope(self.mesh.root_namespace()) {
            Some(Scope::Mesh) => "each workload of the mesh".to_string(),
            Some(Scope::Namespace) => format!("each workload of namespace {}", namespace_name(p.metadata.namespace())),
            Some(Scope::Workload) => "each workload it selects".to_string(),
            // Istio ignores a selector policy in the root namespace.
            None => return Ok(Vec::new()),
        };
        let mut out = Vec::new();
        if let Ok(mode) = p.mode()
            && weak(mode)
        {
            out.push(Violation::new(
                format!("mtls.mode {}: {governs} {}; set STRICT", mode.name(), mode.consequence()),
                "/spec/mtls/mode",
            ));
        }
        for port in p.ports().into_iter().filter(|port| weak(port.mode)) {
            out.push(Violation::new(
                format!(
                    "portLevelMtls sets port {} to {}: on that port each workload it selects {}; set it to STRICT",
                    port.port,
                    port.mode.name(),
                    port.mode.consequence()
                ),
                format!("/spec/portLevelMtls/{}/mode", palisade_sdk::workload::escape_pointer(&port.key)),
            ));
        }
        Ok(out)
    }

    fn destination_rule(&self, json: &str) -> Result<Vec<Violation>, String> {
        let dr: DestinationRule =
            serde_json::from_str(json).map_err(|e| format!("cannot read the DestinationRule: {e}"))?;
        let disabled = dr.tls_disabled();
        if disabled.is_empty() {
            return Ok(Vec::new());
        }
        let host = &dr.spec.host;
        let reaches = if dr.target().is_cluster_service() {
            "a service of the cluster".to_string()
        } else {
            let entries: Vec<ServiceEntry> =
                inventory::parse_all("ServiceEntry", &inventory::list("ServiceEntry", None))?;
            match entries
                .iter()
                .find(|e| e.is_mesh_internal() && e.spec.hosts.iter().any(|h| istio::hosts_match(h, host)))
            {
                Some(e) => format!("a host of the MESH_INTERNAL ServiceEntry {}", e.metadata.id()),
                None => return Ok(Vec::new()),
            }
        };
        Ok(disabled
            .into_iter()
            .map(|d| {
                Violation::new(
                    format!(
                        "tls.mode DISABLE ({}): sidecars send plaintext to {host:?}, {reaches}; use ISTIO_MUTUAL or remove the tls block",
                        d.scope
                    ),
                    d.path,
                )
            })
            .collect())
    }

    fn workload(&self, w: &Workload) -> Result<Vec<Violation>, String> {
        if !self.mesh.judges(w) || !self.mesh.active() {
            return Ok(Vec::new());
        }
        let subject = format!("{} {:?}", w.kind, w.name());
        if let Some((why, path)) = istio::sidecar_opt_out(w) {
            let fix = if path.ends_with("/hostNetwork") {
                "run it off the host network to bring it into the mesh"
            } else {
                "remove the opt-out so that Istio injects a sidecar"
            };
            return Ok(vec![Violation::new(
                format!(
                    "{subject} is outside the mesh: {why}, so no PeerAuthentication applies and it accepts \
                     plaintext; {fix}"
                ),
                path,
            )]);
        }
        let root = self.mesh.root_namespace();
        let ns = w.namespace();
        let labels = &w.pod_meta.labels;
        let at = format!("{}/labels", w.meta_path);
        let mut out = Vec::new();

        let policies = PeerAuthentication::for_namespace(ns, root)?;
        let effective = istio::effective_mtls(&policies, root, ns, labels);
        if effective.mode != MtlsMode::Strict {
            let message = match effective.decided_by {
                None => format!(
                    "{subject} in namespace {}: no PeerAuthentication sets its mTLS mode, mesh-wide in {root}, \
                     namespace-wide or selecting its pods, so Istio's default PERMISSIVE applies and it {}; add one \
                     with mtls.mode STRICT",
                    namespace_name(ns),
                    effective.mode.consequence()
                ),
                Some((p, scope)) => format!(
                    "{subject} in namespace {} gets mTLS mode {} from PeerAuthentication {} ({}): it {}; set its \
                     mtls.mode to STRICT",
                    namespace_name(ns),
                    effective.mode.name(),
                    p.metadata.id(),
                    scope.name(),
                    effective.mode.consequence()
                ),
            };
            out.push(Violation::new(message, at.clone()));
        }
        if let Some(p) = effective.workload_policy {
            for (port, _) in effective.ports.iter().filter(|(port, explicit)| *explicit && weak(port.mode)) {
                out.push(Violation::new(
                    format!(
                        "port {} of {subject} is {} by portLevelMtls of PeerAuthentication {}: on that port it {}; \
                         set that port's mode to STRICT",
                        port.port,
                        port.mode.name(),
                        p.metadata.id(),
                        port.mode.consequence()
                    ),
                    at.clone(),
                ));
            }
        }

        let mut services: Option<Vec<Service>> = None;
        for dr in DestinationRule::all()? {
            let disabled = dr.tls_disabled();
            let target = dr.target();
            if disabled.is_empty() || !target.reaches_namespace(ns) {
                continue;
            }
            let why = match &target {
                HostTarget::Service { name, .. } => {
                    if services.is_none() {
                        services = Some(inventory::parse_all("Service", &inventory::same_namespace("Service", ns))?);
                    }
                    match services.as_deref().unwrap_or_default().iter().find(|s| s.metadata.name == *name) {
                        Some(s) if s.selects(labels) => format!("Service {name} selects its pods"),
                        Some(_) => continue,
                        None => format!("Service {name} is not in the checked set, so it may select its pods"),
                    }
                }
                _ => format!("the host covers every service of namespace {}", namespace_name(ns)),
            };
            let scopes: Vec<String> = disabled.into_iter().map(|d| d.scope).collect();
            out.push(Violation::new(
                format!(
                    "DestinationRule {} sets tls.mode DISABLE ({}) for host {:?} and {why}: sidecars send {subject} \
                     plaintext; use ISTIO_MUTUAL or remove the tls block",
                    dr.metadata.id(),
                    scopes.join("; "),
                    dr.spec.host
                ),
                at.clone(),
            ));
        }
        Ok(out)
    }
}

impl Rule for MeshMtlsStrict {
    type Settings = MeshSettings;

    fn metadata() -> Metadata {
        Metadata {
            id: "mesh-mtls-strict",
            title: "Workloads in an Istio mesh must require mutual TLS",
            description: "With Istio in the checked set (or `mesh: istio`): fails a workload whose mTLS mode, \
                          resolved as Istio does (a PeerAuthentication selecting its pods over its namespace's \
                          over the mesh-wide one in the root namespace; UNSET inherits; nothing set is \
                          PERMISSIVE), is not STRICT; one with a port that portLevelMtls sets to PERMISSIVE or \
                          DISABLE; one whose pods opt out of the sidecar; and one that a DestinationRule sends \
                          plaintext (tls.mode DISABLE, for all ports, a port or a subset). Also fails each \
                          PeerAuthentication that sets PERMISSIVE or DISABLE or that Istio refuses, and each \
                          DestinationRule that disables TLS to a cluster service. Workloads of the root \
                          namespace (the control plane) are not checked.",
            rationale: "Istio's default PERMISSIVE mode accepts plaintext beside mTLS: any pod of the cluster, \
                        meshed or not, reaches the workload without an identity, authorization policies on \
                        principals and namespaces no longer hold, and the traffic can be read on the wire. \
                        STRICT admits only peers with a mesh certificate.",
            remediation: "Apply a mesh-wide PeerAuthentication (namespace istio-system, name default, \
                          spec.mtls.mode: STRICT); remove namespace and workload policies and portLevelMtls \
                          entries that set PERMISSIVE or DISABLE; replace tls.mode DISABLE in DestinationRules \
                          with ISTIO_MUTUAL (or drop the tls block); keep sidecar injection on.",
            severity: Severity::High,
            category: "Service mesh",
            applies_to: &APPLIES_TO,
            reads_kinds: &READS,
            settings_schema: MESH_SETTINGS_SCHEMA,
            references: &[
                "https://istio.io/latest/docs/reference/config/security/peer_authentication/",
                "https://istio.io/latest/docs/reference/config/networking/destination-rule/#ClientTLSSettings-TLSmode",
                "https://istio.io/latest/docs/ops/best-practices/security/",
                "https://github.com/istio/istio/blob/master/pilot/pkg/security/authn/policy_applier.go",
                "https://github.com/istio/istio/blob/master/pkg/kube/inject/webhook.go",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(settings: MeshSettings) -> Result<Self, SettingsError> {
        Ok(MeshMtlsStrict { mesh: Mesh::configure(settings)? })
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        let header = Header::read(object)?;
        let istio_object = istio::in_api_groups(&header.api_version);
        match header.kind.as_str() {
            "PeerAuthentication" | "DestinationRule" if !istio_object || !self.mesh.checks_istio_objects() => {
                Ok(Vec::new())
            }
            "PeerAuthentication" => self.peer_authentication(object),
            "DestinationRule" => self.destination_rule(object),
            _ => {
                let found = match Workload::from_json_reading(object, WORKLOAD_READS)? {
                    Some(w) => self.workload(&w),
                    None => Ok(Vec::new()),
                };
                #[cfg(not(target_arch = "wasm32"))]
                palisade_sdk::check_reads("mesh-mtls-strict", WORKLOAD_READS, object, &found, |w| {
                    w.map_or(Ok(Vec::new()), |w| self.workload(w))
                });
                found
            }
        }
    }

    fn inactive_reason(&self) -> Option<String> {
        self.mesh.inactive_reason()
    }
}

/// The parts of a workload `workload` reads (see `Fields`): the pod's labels,
/// and its annotations for the sidecar opt-out.
const WORKLOAD_READS: Fields = Fields::LABELS.union(Fields::ANNOTATIONS);

palisade_sdk::export_rule!(MeshMtlsStrict);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::configure;
    use palisade_sdk::inventory::testing;

    // Bookinfo's reviews service, as istio/istio samples/bookinfo ships it, in namespace shop.
    const REVIEWS: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"reviews-v1","namespace":"shop","labels":{"app":"reviews","version":"v1"}},
        "spec":{"replicas":1,"selector":{"matchLabels":{"app":"reviews","version":"v1"}},
        "template":{"metadata":{"labels":{"app":"reviews","version":"v1"}},"spec":{"serviceAccountName":"bookinfo-reviews","containers":[{"name":"reviews","image":"docker.io/istio/examples-bookinfo-reviews-v1:1.20.3","ports":[{"containerPort":9080}]}]}}}}"#;
    const REVIEWS_SVC: &str = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"reviews","namespace":"shop","labels":{"app":"reviews","service":"reviews"}},"spec":{"ports":[{"port":9080,"name":"http"}],"selector":{"app":"reviews"}}}"#;
    const MESH_STRICT: &str = r#"{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"default","namespace":"istio-system"},"spec":{"mtls":{"mode":"STRICT"}}}"#;

    fn pa(ns: &str, name: &str, spec: &str) -> String {
        format!(
            r#"{{"apiVersion":"security.istio.io/v1beta1","kind":"PeerAuthentication","metadata":{{"name":"{name}","namespace":"{ns}"}},"spec":{spec}}}"#
        )
    }

    fn dr(ns: &str, name: &str, spec: &str) -> String {
        format!(
            r#"{{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{{"name":"{name}","namespace":"{ns}"}},"spec":{spec}}}"#
        )
    }

    fn rule(settings: &str) -> MeshMtlsStrict {
        configure::<MeshMtlsStrict>(settings).unwrap()
    }

    fn findings(object: &str, set: &[&str]) -> Vec<Violation> {
        testing::set(set);
        rule("{}").evaluate(object, &Context::default()).unwrap()
    }

    fn messages(object: &str, set: &[&str]) -> Vec<String> {
        findings(object, set).into_iter().map(|v| v.message).collect()
    }

    #[test]
    fn a_strict_mesh_passes() {
        assert!(findings(REVIEWS, &[REVIEWS, REVIEWS_SVC, MESH_STRICT]).is_empty());
        let ns_strict = pa("shop", "default", r#"{"mtls":{"mode":"STRICT"}}"#);
        assert!(findings(REVIEWS, &[REVIEWS, &ns_strict]).is_empty());
    }

    #[test]
    fn without_istio_in_the_set_auto_reports_nothing_and_istio_mode_does() {
        assert!(findings(REVIEWS, &[REVIEWS, REVIEWS_SVC]).is_empty());
        testing::set(&[REVIEWS]);
        let found = rule(r#"{"mesh":"istio"}"#).evaluate(REVIEWS, &Context::default()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            "Deployment \"reviews-v1\" in namespace shop: no PeerAuthentication sets its mTLS mode, mesh-wide in \
             istio-system, namespace-wide or selecting its pods, so Istio's default PERMISSIVE applies and it accepts \
             plaintext as well as mTLS; add one with mtls.mode STRICT"
        );
        assert_eq!(found[0].path, "/spec/template/metadata/labels");
        // A Gateway API Gateway is not Istio.
        let gw = r#"{"apiVersion":"gateway.networking.k8s.io/v1","kind":"Gateway","metadata":{"name":"g","namespace":"shop"}}"#;
        assert!(findings(REVIEWS, &[REVIEWS, gw]).is_empty());
    }

    #[test]
    fn mesh_none_is_inactive() {
        let r = rule(r#"{"mesh":"none"}"#);
        assert!(r.inactive_reason().is_some());
        testing::set(&[REVIEWS, MESH_STRICT]);
        let weak = pa("shop", "p", r#"{"mtls":{"mode":"PERMISSIVE"}}"#);
        assert!(r.evaluate(REVIEWS, &Context::default()).unwrap().is_empty());
        assert!(r.evaluate(&weak, &Context::default()).unwrap().is_empty());
        assert!(rule("{}").inactive_reason().is_none());
    }

    #[test]
    fn unset_inherits_and_the_default_is_permissive() {
        let unset = pa("shop", "default", r#"{"mtls":{"mode":"UNSET"}}"#);
        let m = messages(REVIEWS, &[REVIEWS, &unset]);
        assert_eq!(m.len(), 1);
        assert!(m[0].contains("no PeerAuthentication sets its mTLS mode"), "{}", m[0]);
        assert!(findings(REVIEWS, &[REVIEWS, &unset, MESH_STRICT]).is_empty(), "UNSET inherits the mesh's STRICT");
    }

    #[test]
    fn the_most_specific_policy_wins() {
        let ns_permissive = pa("shop", "default", r#"{"mtls":{"mode":"PERMISSIVE"}}"#);
        let m = messages(REVIEWS, &[REVIEWS, MESH_STRICT, &ns_permissive]);
        assert_eq!(m.len(), 1);
        assert!(m[0].contains("PERMISSIVE from PeerAuthentication shop/default (namespace-wide)"), "{}", m[0]);
        let workload_strict =
            pa("shop", "reviews", r#"{"selector":{"matchLabels":{"app":"reviews"}},"mtls":{"mode":"STRICT"}}"#);
        assert!(findings(REVIEWS, &[REVIEWS, MESH_STRICT, &ns_permissive, &workload_strict]).is_empty());
        let other_app =
            pa("shop", "ratings", r#"{"selector":{"matchLabels":{"app":"ratings"}},"mtls":{"mode":"STRICT"}}"#);
        assert_eq!(findings(REVIEWS, &[REVIEWS, &ns_permissive, &other_app]).len(), 1);
        let disabled =
            pa("shop", "reviews", r#"{"selector":{"matchLabels":{"version":"v1"}},"mtls":{"mode":"DISABLE"}}"#);
        let m = messages(REVIEWS, &[REVIEWS, MESH_STRICT, &disabled]);
        assert!(m[0].contains("DISABLE from PeerAuthentication shop/reviews (workload selector)"), "{m:?}");
        // Policies of another namespace do not count.
        let elsewhere = pa("prod", "default", r#"{"mtls":{"mode":"STRICT"}}"#);
        assert_eq!(findings(REVIEWS, &[REVIEWS, &elsewhere]).len(), 1);
    }

    #[test]
    fn port_level_exceptions_are_findings_on_the_workload_and_the_policy() {
        let ports = pa(
            "shop",
            "reviews",
            r#"{"selector":{"matchLabels":{"app":"reviews"}},"mtls":{"mode":"STRICT"},"portLevelMtls":{"8080":{"mode":"DISABLE"},"9080":{"mode":"STRICT"}}}"#,
        );
        let m = messages(REVIEWS, &[REVIEWS, &ports]);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].starts_with("port 8080 of Deployment \"reviews-v1\" is DISABLE"), "{}", m[0]);
        let on_policy = findings(&ports, &[&ports]);
        assert_eq!(on_policy.len(), 1);
        assert_eq!(on_policy[0].path, "/spec/portLevelMtls/8080/mode");
    }

    #[test]
    fn opting_out_of_the_sidecar_is_a_finding() {
        let opted_out = REVIEWS.replace(
            r#""template":{"metadata":{"labels":{"app":"reviews","version":"v1"}}"#,
            r#""template":{"metadata":{"labels":{"app":"reviews","version":"v1"},"annotations":{"sidecar.istio.io/inject":"false"}}"#,
        );
        assert_ne!(opted_out, REVIEWS);
        let found = findings(&opted_out, &[&opted_out, MESH_STRICT]);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            "Deployment \"reviews-v1\" is outside the mesh: its pods opt out of the sidecar (annotation \
             sidecar.istio.io/inject: \"false\"), so no PeerAuthentication applies and it accepts plaintext; remove \
             the opt-out so that Istio injects a sidecar"
        );
        assert_eq!(found[0].path, "/spec/template/metadata/annotations/sidecar.istio.io~1inject");
    }

    #[test]
    fn root_namespace_workloads_and_pod_templates_are_not_checked() {
        let istiod = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"istiod","namespace":"istio-system"},"spec":{"template":{"metadata":{"labels":{"app":"istiod","sidecar.istio.io/inject":"false"}},"spec":{"containers":[{"name":"discovery"}]}}}}"#;
        assert!(findings(istiod, &[istiod, MESH_STRICT]).is_empty());
        testing::set(&[istiod]);
        let custom_root = rule(r#"{"mesh":"istio","rootNamespace":"mesh-root"}"#);
        assert_eq!(custom_root.evaluate(istiod, &Context::default()).unwrap().len(), 1);
        let template = r#"{"apiVersion":"v1","kind":"PodTemplate","metadata":{"name":"t","namespace":"shop"},"template":{"spec":{}}}"#;
        assert!(findings(template, &[template]).is_empty());
    }

    #[test]
    fn destination_rules_that_disable_tls_to_the_workload() {
        // Short host, read in the rule's namespace, naming the Service that selects the pods.
        let short = dr("shop", "reviews", r#"{"host":"reviews","trafficPolicy":{"tls":{"mode":"DISABLE"}}}"#);
        let m = messages(REVIEWS, &[REVIEWS, REVIEWS_SVC, MESH_STRICT, &short]);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("DestinationRule shop/reviews sets tls.mode DISABLE (every port)"), "{}", m[0]);
        assert!(m[0].contains("Service reviews selects its pods"), "{}", m[0]);
        // The same short host in another namespace names another service.
        let other_ns = dr("prod", "reviews", r#"{"host":"reviews","trafficPolicy":{"tls":{"mode":"DISABLE"}}}"#);
        assert!(findings(REVIEWS, &[REVIEWS, REVIEWS_SVC, MESH_STRICT, &other_ns]).is_empty());
        // A FQDN from anywhere, port level and subset.
        let fqdn = dr(
            "istio-system",
            "r",
            r#"{"host":"reviews.shop.svc.cluster.local","subsets":[{"name":"v1","labels":{"version":"v1"},"trafficPolicy":{"portLevelSettings":[{"port":{"number":9080},"tls":{"mode":"DISABLE"}}]}}]}"#,
        );
        let m = messages(REVIEWS, &[REVIEWS, REVIEWS_SVC, MESH_STRICT, &fqdn]);
        assert!(m[0].contains("(subset v1, port 9080)"), "{m:?}");
        // A Service of that name that selects other pods: not this workload.
        let ratings_svc = REVIEWS_SVC.replace(r#""selector":{"app":"reviews"}"#, r#""selector":{"app":"ratings"}"#);
        assert!(findings(REVIEWS, &[REVIEWS, &ratings_svc, MESH_STRICT, &short]).is_empty());
        // The Service is not in the checked set: in doubt, it counts.
        let m = messages(REVIEWS, &[REVIEWS, MESH_STRICT, &short]);
        assert!(m[0].contains("not in the checked set"), "{m:?}");
        // Wildcards covering the namespace; an external host does not.
        for host in ["*.shop.svc.cluster.local", "*.local", "*"] {
            let wild = dr(
                "istio-system",
                "default",
                &format!(r#"{{"host":"{host}","trafficPolicy":{{"tls":{{"mode":"DISABLE"}}}}}}"#),
            );
            let m = messages(REVIEWS, &[REVIEWS, MESH_STRICT, &wild]);
            assert!(m.len() == 1 && m[0].contains("covers every service of namespace shop"), "{host}: {m:?}");
        }
        let external = dr("shop", "api", r#"{"host":"api.example.com","trafficPolicy":{"tls":{"mode":"DISABLE"}}}"#);
        assert!(findings(REVIEWS, &[REVIEWS, MESH_STRICT, &external]).is_empty());
        let mutual = dr("shop", "reviews", r#"{"host":"reviews","trafficPolicy":{"tls":{"mode":"ISTIO_MUTUAL"}}}"#);
        assert!(findings(REVIEWS, &[REVIEWS, REVIEWS_SVC, MESH_STRICT, &mutual]).is_empty());
    }

    #[test]
    fn peer_authentication_objects() {
        let paths = |o: &str| findings(o, &[o]).into_iter().map(|v| v.path).collect::<Vec<_>>();
        assert_eq!(paths(&pa("shop", "p", r#"{"mtls":{"mode":"PERMISSIVE"}}"#)), ["/spec/mtls/mode"]);
        assert_eq!(paths(&pa("istio-system", "p", r#"{"mtls":{"mode":"DISABLE"}}"#)), ["/spec/mtls/mode"]);
        for ok in [r#"{"mtls":{"mode":"STRICT"}}"#, r#"{"mtls":{"mode":"UNSET"}}"#, "{}", r#"{"mtls":{}}"#] {
            assert!(paths(&pa("shop", "p", ok)).is_empty(), "{ok}");
        }
        let m = messages(&pa("shop", "p", r#"{"mtls":{"mode":"PERMISSIVE"}}"#), &[]);
        assert_eq!(
            m[0],
            "mtls.mode PERMISSIVE: each workload of namespace shop accepts plaintext as well as mTLS; set STRICT"
        );
        // Refused by Istio: reported as such, and nothing else.
        let refused = pa("shop", "p", r#"{"portLevelMtls":{"80":{"mode":"DISABLE"}}}"#);
        let m = messages(&refused, &[&refused]);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0],
            "Istio refuses this PeerAuthentication, so it never applies: portLevelMtls needs a workload selector; add \
             selector.matchLabels or remove portLevelMtls"
        );
        // A selector policy in the root namespace is ignored by Istio.
        assert!(
            paths(&pa("istio-system", "p", r#"{"selector":{"matchLabels":{"a":"b"}},"mtls":{"mode":"DISABLE"}}"#))
                .is_empty()
        );
        // Another API group's kind of that name is not Istio's.
        let foreign = r#"{"apiVersion":"example.com/v1","kind":"PeerAuthentication","metadata":{"name":"x"},"spec":{"mtls":{"mode":"DISABLE"}}}"#;
        assert!(paths(foreign).is_empty());
    }

    #[test]
    fn destination_rule_objects() {
        let paths = |o: &str, set: &[&str]| findings(o, set).into_iter().map(|v| v.path).collect::<Vec<_>>();
        let bad = dr(
            "prod",
            "bad",
            r#"{"host":"ratings.prod.svc.cluster.local","trafficPolicy":{"loadBalancer":{"simple":"LEAST_REQUEST"},"tls":{"mode":"DISABLE"}}}"#,
        );
        assert_eq!(paths(&bad, &[&bad]), ["/spec/trafficPolicy/tls/mode"]);
        for mode in ["ISTIO_MUTUAL", "MUTUAL", "SIMPLE"] {
            let good =
                dr("prod", "good", &format!(r#"{{"host":"ratings","trafficPolicy":{{"tls":{{"mode":"{mode}"}}}}}}"#));
            assert!(paths(&good, &[&good]).is_empty(), "{mode}");
        }
        let external = dr("prod", "api", r#"{"host":"api.example.com","trafficPolicy":{"tls":{"mode":"DISABLE"}}}"#);
        assert!(paths(&external, &[&external]).is_empty(), "plain egress to an external host");
        let vm = r#"{"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"vm","namespace":"prod"},"spec":{"hosts":["api.example.com"],"location":"MESH_INTERNAL"}}"#;
        assert_eq!(paths(&external, &[&external, vm]), ["/spec/trafficPolicy/tls/mode"]);
    }
}
