//! Every namespace of an Istio mesh denies requests by default.
//!
//! Source: Istio's AuthorizationPolicy reference
//! (<https://istio.io/latest/docs/reference/config/security/authorization-policy/>):
//! with no ALLOW policy on a workload every request is allowed; an ALLOW policy
//! without rules matches nothing, so the workloads it applies to allow only what
//! other ALLOW policies match (the documented `allow-nothing` policy, `spec: {}`);
//! a policy in the root namespace applies to every namespace; a rule without
//! `from`, `to` and `when` matches every request (`allow-all`). Istio's security
//! best practices: "default-deny" authorization
//! (<https://istio.io/latest/docs/ops/best-practices/security/>).
//! The parsing lives in `palisade_sdk::istio`.
//!
//! A namespace is meshed when it runs workloads (the rule evaluates each
//! workload, outside the root namespace, which holds the control plane). It
//! passes with an enforced allow-nothing AuthorizationPolicy in its namespace or
//! in the root namespace: action ALLOW (or unset), no rules, no selector labels
//! and no `targetRef(s)` (a gateway's or waypoint's policy), not dry-run. A DENY
//! policy of the same scope with a rule that matches every request (deny-all)
//! counts too: it is stricter. An enforced ALLOW policy that applies to the
//! workload with a rule matching every request voids the default deny for it and
//! is a finding of its own.
//!
//! When the rule checks: as `mesh-mtls-strict` (the `mesh` setting; with `auto`
//! only when the checked set holds an object of `security.istio.io` or
//! `networking.istio.io`). Kyverno's `istio/require-authorizationpolicy` asks
//! every Namespace object for any AuthorizationPolicy at all; Palisade asks each
//! namespace that runs workloads for one that denies by default.

use palisade_sdk::istio::{self, AuthorizationPolicy, MESH_SETTINGS_SCHEMA, Mesh, MeshSettings};
use palisade_sdk::{Context, Fields, HARDENED, Metadata, PodRule, SettingsError, Severity, Violation, Workload};

pub const KINDS: [&str; 8] = palisade_sdk::WORKLOAD_KINDS;

/// The Istio kinds (to learn whether Istio is in the set; AuthorizationPolicy is among them).
const READS: [&str; 12] = istio::KINDS;

pub struct MeshAuthorizationDefaultDeny {
    mesh: Mesh,
}

impl MeshAuthorizationDefaultDeny {
    fn evaluate(&self, w: &Workload) -> Result<Vec<Violation>, String> {
        if !self.mesh.judges(w) || !self.mesh.active() {
            return Ok(Vec::new());
        }
        let root = self.mesh.root_namespace();
        let ns = w.namespace();
        let labels = &w.pod_meta.labels;
        let subject = format!("{} {:?}", w.kind, w.name());
        let at = format!("{}/labels", w.meta_path);
        let policies = AuthorizationPolicy::for_namespace(ns, root)?;
        let mut out = Vec::new();

        let default_deny =
            |p: &&AuthorizationPolicy| p.is_namespace_wide() && (p.allows_nothing() || p.denies_everything());
        if !policies.iter().filter(|p| !p.is_dry_run()).any(|p| default_deny(&p)) {
            let mut message = format!(
                "no AuthorizationPolicy denies requests to {subject} by default: neither namespace {} nor the root \
                 namespace {root} has an allow-nothing policy, so every request that no DENY policy matches is \
                 allowed",
                ns.unwrap_or("(unset)")
            );
            let mut dry: Vec<String> =
                policies.iter().filter(|p| p.is_dry_run()).filter(default_deny).map(|p| p.metadata.id()).collect();
            dry.sort();
            if !dry.is_empty() {
                message.push_str(&format!(" ({} would be one, but istio.io/dry-run only logs)", dry.join(", ")));
            }
            match ns {
                Some(ns) => {
                    message.push_str(&format!("; add an AuthorizationPolicy with spec: {{}} to namespace {ns}"))
                }
                None => message.push_str("; add an AuthorizationPolicy with spec: {} to its namespace"),
            }
            out.push(Violation::new(message, at.clone()));
        }

        let mut allow_all: Vec<String> = policies
            .iter()
            .filter(|p| !p.is_dry_run() && p.allows_everything() && p.applies_to(root, ns, labels))
            .map(|p| p.metadata.id())
            .collect();
        allow_all.sort();
        for id in allow_all {
            out.push(Violation::new(
                format!(
                    "AuthorizationPolicy {id} allows every request to {subject} (a rule without from, to or when), \
                     which voids any default deny; give the rule from, to or when conditions, or remove it"
                ),
                at.clone(),
            ));
        }
        Ok(out)
    }
}

impl PodRule for MeshAuthorizationDefaultDeny {
    type Settings = MeshSettings;

    const READS: Fields = Fields::LABELS;

    fn metadata() -> Metadata {
        Metadata {
            id: "mesh-authorization-default-deny",
            title: "Namespaces in an Istio mesh must deny requests by default",
            description: "With Istio in the checked set (or `mesh: istio`): fails a workload when neither its \
                          namespace nor the root namespace holds an enforced allow-nothing AuthorizationPolicy \
                          (action ALLOW or unset, no rules, no selector or targetRef, not istio.io/dry-run; a \
                          DENY policy of that scope with a rule matching everything counts too), and when an \
                          enforced ALLOW policy that applies to it has a rule matching every request. Workloads \
                          of the root namespace (the control plane) are not checked.",
            rationale: "Istio allows every request to a workload that no ALLOW policy applies to. An \
                        allow-nothing policy turns the namespace to deny-by-default: each workload receives only \
                        the traffic a policy names, and a new workload starts closed instead of open to the \
                        whole mesh.",
            remediation: "Add an AuthorizationPolicy named allow-nothing with `spec: {}` to each namespace (or \
                          once in the root namespace for the whole mesh), then ALLOW policies naming the \
                          principals or namespaces each workload serves; replace `rules: [{}]` with such rules.",
            severity: Severity::Medium,
            category: "Service mesh",
            applies_to: &KINDS,
            reads_kinds: &READS,
            settings_schema: MESH_SETTINGS_SCHEMA,
            references: &[
                "https://istio.io/latest/docs/reference/config/security/authorization-policy/",
                "https://istio.io/latest/docs/ops/best-practices/security/",
                "https://istio.io/latest/docs/concepts/security/#authorization-policies",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(settings: MeshSettings) -> Result<Self, SettingsError> {
        Ok(MeshAuthorizationDefaultDeny { mesh: Mesh::configure(settings)? })
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        self.evaluate(w).unwrap_or_else(|e| {
            vec![Violation::new(format!("cannot decide the default deny: {e}"), format!("{}/labels", w.meta_path))]
        })
    }

    fn inactive_reason(&self) -> Option<String> {
        self.mesh.inactive_reason()
    }
}

palisade_sdk::export_pod_rule!(MeshAuthorizationDefaultDeny);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::inventory::testing;
    use palisade_sdk::{check_pod, configure_pod};

    // Online Boutique's frontend, in namespace shop.
    const FRONTEND: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"frontend","namespace":"shop"},
        "spec":{"selector":{"matchLabels":{"app":"frontend"}},"template":{"metadata":{"labels":{"app":"frontend"}},
        "spec":{"serviceAccountName":"frontend","containers":[{"name":"server","image":"us-central1-docker.pkg.dev/google-samples/microservices-demo/frontend:v0.10.2","ports":[{"containerPort":8080}]}]}}}}"#;

    fn ap(ns: &str, name: &str, annotations: &str, spec: &str) -> String {
        format!(
            r#"{{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{{"name":"{name}","namespace":"{ns}","annotations":{annotations}}},"spec":{spec}}}"#
        )
    }

    fn rule(settings: &str) -> MeshAuthorizationDefaultDeny {
        configure_pod::<MeshAuthorizationDefaultDeny>(settings).unwrap()
    }

    fn messages_with(settings: &str, set: &[&str]) -> Vec<String> {
        testing::set(set);
        check_pod(rule(settings), FRONTEND).unwrap().into_iter().map(|v| v.message).collect()
    }

    fn messages(set: &[&str]) -> Vec<String> {
        messages_with("{}", set)
    }

    #[test]
    fn allow_nothing_in_the_namespace_or_the_root_namespace() {
        let allow_frontend = ap(
            "shop",
            "frontend",
            "{}",
            r#"{"selector":{"matchLabels":{"app":"frontend"}},"action":"ALLOW","rules":[{"from":[{"source":{"principals":["cluster.local/ns/istio-ingress/sa/istio-ingressgateway"]}}]}]}"#,
        );
        let m = messages(&[FRONTEND, &allow_frontend]);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(
            m[0],
            "no AuthorizationPolicy denies requests to Deployment \"frontend\" by default: neither namespace shop nor \
             the root namespace istio-system has an allow-nothing policy, so every request that no DENY policy \
             matches is allowed; add an AuthorizationPolicy with spec: {} to namespace shop"
        );
        let nothing = ap("shop", "allow-nothing", "{}", "{}");
        assert!(messages(&[FRONTEND, &allow_frontend, &nothing]).is_empty());
        let mesh_wide = ap("istio-system", "allow-nothing", "{}", r#"{"action":"ALLOW"}"#);
        assert!(messages(&[FRONTEND, &mesh_wide]).is_empty());
        let elsewhere = ap("prod", "allow-nothing", "{}", "{}");
        assert_eq!(messages(&[FRONTEND, &elsewhere]).len(), 1);
        let deny_all = ap("shop", "deny-all", "{}", r#"{"action":"DENY","rules":[{}]}"#);
        assert!(messages(&[FRONTEND, &deny_all]).is_empty(), "deny-all is stricter still");
    }

    #[test]
    fn near_misses_do_not_count() {
        for spec in [
            r#"{"selector":{"matchLabels":{"app":"frontend"}}}"#,
            r#"{"targetRefs":[{"kind":"Gateway","group":"gateway.networking.k8s.io","name":"frontend"}]}"#,
            r#"{"action":"DENY"}"#,
            r#"{"action":"AUDIT"}"#,
            r#"{"action":"ALLOW","rules":[{"to":[{"operation":{"methods":["GET"]}}]}]}"#,
        ] {
            let p = ap("shop", "p", "{}", spec);
            assert_eq!(messages(&[FRONTEND, &p]).len(), 1, "{spec}");
        }
        let dry = ap("shop", "allow-nothing", r#"{"istio.io/dry-run":"true"}"#, "{}");
        let m = messages(&[FRONTEND, &dry]);
        assert_eq!(m.len(), 1);
        assert!(
            m[0].ends_with(
                "matches is allowed (shop/allow-nothing would be one, but istio.io/dry-run only logs); add an \
                 AuthorizationPolicy with spec: {} to namespace shop"
            ),
            "{}",
            m[0]
        );
        // A root-namespace policy selecting the workload's labels applies, but only to those workloads.
        let rooted = ap("istio-system", "p", "{}", r#"{"selector":{"matchLabels":{"app":"frontend"}}}"#);
        assert_eq!(messages(&[FRONTEND, &rooted]).len(), 1);
    }

    #[test]
    fn allow_all_voids_the_default_deny() {
        let nothing = ap("shop", "allow-nothing", "{}", "{}");
        let all = ap("shop", "allow-all", "{}", r#"{"rules":[{}]}"#);
        let m = messages(&[FRONTEND, &nothing, &all]);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0],
            "AuthorizationPolicy shop/allow-all allows every request to Deployment \"frontend\" (a rule without from, \
             to or when), which voids any default deny; give the rule from, to or when conditions, or remove it"
        );
        let other_app = ap("shop", "allow-all", "{}", r#"{"selector":{"matchLabels":{"app":"cart"}},"rules":[{}]}"#);
        assert!(messages(&[FRONTEND, &nothing, &other_app]).is_empty());
        let mesh_all = ap("istio-system", "allow-all", "{}", r#"{"rules":[{}]}"#);
        assert_eq!(messages(&[FRONTEND, &nothing, &mesh_all]).len(), 1);
    }

    #[test]
    fn when_the_rule_checks() {
        assert!(messages(&[FRONTEND]).is_empty(), "no Istio in the set");
        assert_eq!(messages_with(r#"{"mesh":"istio"}"#, &[FRONTEND]).len(), 1);
        let vs = r#"{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"name":"frontend","namespace":"shop"},"spec":{"hosts":["frontend"]}}"#;
        assert_eq!(messages(&[FRONTEND, vs]).len(), 1, "any Istio object turns the rule on");
        assert!(messages_with(r#"{"mesh":"none"}"#, &[FRONTEND, vs]).is_empty());
        assert!(rule(r#"{"mesh":"none"}"#).inactive_reason().is_some());
        let in_root = FRONTEND.replace(r#""namespace":"shop""#, r#""namespace":"istio-system""#);
        testing::set(&[in_root.as_str(), vs]);
        assert!(check_pod(rule("{}"), &in_root).unwrap().is_empty(), "the control plane's namespace");
        let root = configure_pod::<MeshAuthorizationDefaultDeny>(r#"{"rootNamespace":"shop"}"#).unwrap();
        testing::set(&[FRONTEND, vs]);
        assert!(check_pod(root, FRONTEND).unwrap().is_empty());
    }

    #[test]
    fn unreadable_policies_are_reported() {
        let broken = ap("shop", "p", "{}", r#"{"rules":"all"}"#);
        let m = messages(&[FRONTEND, &broken]);
        assert_eq!(m.len(), 1);
        assert!(m[0].starts_with("cannot decide the default deny: cannot read AuthorizationPolicy \"p\""), "{}", m[0]);
    }
}
