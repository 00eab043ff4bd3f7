//! No RoleBinding or ClusterRoleBinding may grant cluster-admin, or its
//! equivalent, or name the group `system:masters`, except to allowed subjects.
//!
//! Source: the RBAC good practices, "Least privilege": administrators should
//! not use `cluster-admin` accounts except where needed, and users should not
//! be added to `system:masters`, whose members bypass every authorization
//! check and cannot be revoked by removing a binding
//! (<https://kubernetes.io/docs/concepts/security/rbac-good-practices/#least-privilege>);
//! the `cluster-admin` default ClusterRole
//! (<https://kubernetes.io/docs/reference/access-authn-authz/rbac/#user-facing-roles>);
//! `RoleBinding`, `Subject` and `RoleRef` of `k8s.io/api/rbac/v1`. Polaris
//! `clusterrolebindingClusterAdmin`, `rolebindingClusterAdminClusterRole` and
//! `rolebindingClusterAdminRole`; Kyverno `restrict-binding-clusteradmin` and
//! the `system:masters` part of `restrict-binding-system-groups` (other/).
//!
//! A binding is reported when its `roleRef` is the ClusterRole
//! `cluster-admin` (by name: the API server's default role), or, read across
//! resources, a Role or ClusterRole of the checked set that grants a rule as
//! wide as cluster-admin's: every resource (`*`) of every API group (`*`),
//! with every verb (`*`) or all seven of get, list, watch, create, update,
//! patch and delete (Polaris reads it so too: with those, one creates pods as
//! any service account and reads every Secret). The role is looked up as the
//! API server resolves it, a ClusterRole by name and a Role by name in the
//! binding's namespace; an aggregating ClusterRole counts with the rules it
//! aggregates from the ClusterRoles of the checked set (see
//! `palisade_sdk::rbac`). A role outside the checked set cannot be judged and
//! is not reported, and a `roleRef` of kind Role named `cluster-admin` names a
//! namespace's Role, not the ClusterRole. A binding is not reported for the
//! role when every subject is in `allowedSubjects`. System bindings (names
//! starting `system:`, the label `kubernetes.io/bootstrapping: rbac-defaults`)
//! are skipped unless `includeSystem`; the roles they point to are not.

use palisade_sdk::rbac::{self, Binding, Origin, SourcedRule, Subject};
use palisade_sdk::{Context, HARDENED, Metadata, Rule, SettingsError, Severity, Violation};
use serde::Deserialize;

const ALL_VERBS: [&str; 7] = ["get", "list", "watch", "create", "update", "patch", "delete"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    #[serde(default)]
    pub include_system: bool,
    #[serde(default)]
    pub allowed_subjects: Vec<SubjectName>,
}

/// A subject that may hold cluster-admin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectName {
    pub kind: String,
    pub name: String,
    /// A ServiceAccount's namespace; any namespace when absent.
    #[serde(default)]
    pub namespace: Option<String>,
}

impl SubjectName {
    fn matches(&self, s: &Subject) -> bool {
        self.kind == s.kind && self.name == s.name && self.namespace.as_ref().is_none_or(|ns| *ns == s.namespace)
    }
}

/// A rule as wide as cluster-admin's resource rule.
fn as_wide_as_cluster_admin(s: &SourcedRule) -> Option<&'static str> {
    let r = &s.rule;
    if !r.resource_names.is_empty() || !r.api_groups.iter().any(|g| g == "*") || !r.resources.iter().any(|x| x == "*") {
        return None;
    }
    if r.verbs.iter().any(|v| v == "*") {
        Some("every verb")
    } else if ALL_VERBS.iter().all(|v| r.verb_matches(v)) {
        Some("get, list, watch, create, update, patch and delete")
    } else {
        None
    }
}

/// What a finding about a binding as wide as cluster-admin asks for.
const FIX: &str = "bind a role with only what these subjects need, or list them in allowedSubjects";

pub struct RbacClusterAdminBinding {
    settings: Settings,
}

impl RbacClusterAdminBinding {
    fn allowed(&self, s: &Subject) -> bool {
        self.settings.allowed_subjects.iter().any(|a| a.matches(s))
    }

    fn check(&self, b: &Binding) -> Result<Vec<Violation>, String> {
        let mut out = Vec::new();
        let name = b.name();
        let kind = &b.kind;
        let scope = match (kind.as_str(), b.namespace()) {
            ("ClusterRoleBinding", _) => "across the cluster".to_string(),
            (_, Some(ns)) => format!("in namespace {ns}"),
            (_, None) => "in its namespace".to_string(),
        };
        let holders: Vec<String> = b.subjects.iter().filter(|s| !self.allowed(s)).map(Subject::describe).collect();
        let to = if b.subjects.is_empty() { "no subject yet".to_string() } else { holders.join(", ") };
        if !holders.is_empty() || b.subjects.is_empty() {
            let role_ref = &b.role_ref;
            if role_ref.kind == "ClusterRole" && role_ref.name == "cluster-admin" {
                out.push(Violation::new(
                    format!(
                        "{kind} {name:?} grants ClusterRole \"cluster-admin\", every action on every resource, \
                         {scope} to {to}; {FIX}"
                    ),
                    "/roleRef/name",
                ));
            } else if let Some(role) = b.role_in_set()? {
                let rules = role.effective_rules_in_set()?;
                if let Some((s, verbs)) = rules.iter().find_map(|s| as_wide_as_cluster_admin(s).map(|v| (s, v))) {
                    let how = match s.origin {
                        Origin::Own => format!("whose {} allows", s.location()),
                        Origin::Aggregated { .. } => format!("which aggregates {}, allowing", s.location()),
                    };
                    out.push(Violation::new(
                        format!(
                            "{kind} {name:?} grants {} {:?}, {how} {verbs} on every resource of every API group: \
                             the equivalent of cluster-admin {scope}, to {to}; {FIX}",
                            role_ref.kind, role_ref.name
                        ),
                        "/roleRef/name",
                    ));
                }
            }
        }
        for (i, s) in b.subjects.iter().enumerate() {
            if s.kind == "Group" && s.name == "system:masters" && !self.allowed(s) {
                out.push(Violation::new(
                    format!(
                        "{kind} {name:?} names Group \"system:masters\": its members bypass every authorization \
                         check, and their membership, which client certificates carry, cannot be revoked by \
                         removing a binding; remove the subject and bind its members to a narrower role"
                    ),
                    format!("/subjects/{i}"),
                ));
            }
        }
        Ok(out)
    }
}

impl Rule for RbacClusterAdminBinding {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata {
            id: "rbac-cluster-admin-binding",
            title: "Bindings must not grant cluster-admin or name system:masters",
            description: "Fails a RoleBinding or ClusterRoleBinding whose roleRef is the ClusterRole \
                          cluster-admin, or a Role or ClusterRole of the checked set with a rule that allows \
                          every verb (or get, list, watch, create, update, patch and delete) on every resource \
                          of every API group, unless every subject is in allowedSubjects; and one that names \
                          the Group system:masters as a subject. System bindings are skipped unless \
                          includeSystem is true.",
            rationale: "cluster-admin allows everything, across the cluster through a ClusterRoleBinding and \
                        over a whole namespace, RBAC included, through a RoleBinding: a compromised subject \
                        owns what it reaches. Members of system:masters bypass authorization altogether, and \
                        removing a binding does not revoke them.",
            remediation: "Bind a role with the permissions the subject needs, in the namespaces it needs them. \
                          Give administrators a low-privileged account with impersonation rights for the rare \
                          cluster-admin task, and accept break-glass subjects by kind and name in \
                          allowedSubjects. Remove system:masters from the subjects: the group is for \
                          bootstrap client certificates.",
            severity: Severity::Critical,
            category: "Access control",
            applies_to: &["RoleBinding", "ClusterRoleBinding"],
            reads_kinds: &["Role", "ClusterRole"],
            settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{
                "includeSystem":{"type":"boolean","default":false,"description":"Also judge the API server's own bindings: names starting system:, and the label kubernetes.io/bootstrapping: rbac-defaults."},
                "allowedSubjects":{"type":"array","default":[],"description":"Subjects that may hold cluster-admin (or name system:masters), by kind and name (and, for a ServiceAccount, namespace; any namespace when absent).",
                  "items":{"type":"object","additionalProperties":false,"required":["kind","name"],"properties":{
                    "kind":{"enum":["User","Group","ServiceAccount"]},
                    "name":{"type":"string","minLength":1},
                    "namespace":{"type":"string","minLength":1}}}}}}"#,
            references: &[
                "https://kubernetes.io/docs/concepts/security/rbac-good-practices/#least-privilege",
                "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#user-facing-roles",
                "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#aggregated-clusterroles",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(settings: Settings) -> Result<Self, SettingsError> {
        for (i, s) in settings.allowed_subjects.iter().enumerate() {
            if !["User", "Group", "ServiceAccount"].contains(&s.kind.as_str()) {
                return Err(SettingsError::new(
                    format!("/allowedSubjects/{i}/kind"),
                    format!("kind must be User, Group or ServiceAccount, not {:?}", s.kind),
                ));
            }
            if s.name.is_empty() {
                return Err(SettingsError::new(format!("/allowedSubjects/{i}/name"), "the name cannot be empty"));
            }
            match &s.namespace {
                Some(_) if s.kind != "ServiceAccount" => {
                    return Err(SettingsError::new(
                        format!("/allowedSubjects/{i}/namespace"),
                        "only a ServiceAccount has a namespace",
                    ));
                }
                Some(ns) if ns.is_empty() => {
                    return Err(SettingsError::new(
                        format!("/allowedSubjects/{i}/namespace"),
                        "the namespace cannot be empty",
                    ));
                }
                _ => {}
            }
        }
        Ok(RbacClusterAdminBinding { settings })
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        let kind = rbac::kind_of(object)?;
        if kind != "RoleBinding" && kind != "ClusterRoleBinding" {
            return Ok(Vec::new());
        }
        let binding = Binding::from_json(object)?;
        if !self.settings.include_system && rbac::is_system(&binding.kind, &binding.metadata) {
            return Ok(Vec::new());
        }
        self.check(&binding)
    }
}

palisade_sdk::export_rule!(RbacClusterAdminBinding);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::configure;
    use palisade_sdk::inventory::testing;

    fn eval(settings: &str, binding: &str, set: &[&str]) -> Vec<Violation> {
        testing::set(set);
        configure::<RbacClusterAdminBinding>(settings).unwrap().evaluate(binding, &Context::default()).unwrap()
    }

    fn binding(kind: &str, ns: Option<&str>, role_ref: (&str, &str), subjects: &str) -> String {
        let ns = ns.map(|n| format!(r#","namespace":"{n}""#)).unwrap_or_default();
        format!(
            r#"{{"kind":"{kind}","metadata":{{"name":"b"{ns}}},"roleRef":{{"apiGroup":"rbac.authorization.k8s.io","kind":"{}","name":"{}"}},"subjects":{subjects}}}"#,
            role_ref.0, role_ref.1
        )
    }

    const ALICE: &str = r#"[{"kind":"User","name":"alice","apiGroup":"rbac.authorization.k8s.io"},
        {"kind":"ServiceAccount","name":"deployer","namespace":"ci"}]"#;

    #[test]
    fn binding_cluster_admin_by_name() {
        let crb = binding("ClusterRoleBinding", None, ("ClusterRole", "cluster-admin"), ALICE);
        let v = eval("{}", &crb, &[]);
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            r#"ClusterRoleBinding "b" grants ClusterRole "cluster-admin", every action on every resource, across the cluster to User "alice", ServiceAccount "ci/deployer"; bind a role with only what these subjects need, or list them in allowedSubjects"#
        );
        assert_eq!(v[0].path, "/roleRef/name");
        let rb = binding("RoleBinding", Some("team"), ("ClusterRole", "cluster-admin"), ALICE);
        assert!(eval("{}", &rb, &[])[0].message.contains("in namespace team to"));
        let other = binding("ClusterRoleBinding", None, ("ClusterRole", "view"), ALICE);
        assert!(eval("{}", &other, &[]).is_empty());
        // A Role named cluster-admin is a namespace's own role, judged by its rules.
        let role_named = binding("RoleBinding", Some("team"), ("Role", "cluster-admin"), ALICE);
        assert!(eval("{}", &role_named, &[]).is_empty());
    }

    #[test]
    fn allowed_subjects() {
        let crb = binding("ClusterRoleBinding", None, ("ClusterRole", "cluster-admin"), ALICE);
        let alice = r#"{"allowedSubjects":[{"kind":"User","name":"alice"}]}"#;
        let v = eval(alice, &crb, &[]);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains(r#"to ServiceAccount "ci/deployer"; "#), "{}", v[0].message);
        let both = r#"{"allowedSubjects":[{"kind":"User","name":"alice"},{"kind":"ServiceAccount","name":"deployer","namespace":"ci"}]}"#;
        assert!(eval(both, &crb, &[]).is_empty());
        let wrong_ns = r#"{"allowedSubjects":[{"kind":"User","name":"alice"},{"kind":"ServiceAccount","name":"deployer","namespace":"prod"}]}"#;
        assert_eq!(eval(wrong_ns, &crb, &[]).len(), 1);
        let nobody = binding("ClusterRoleBinding", None, ("ClusterRole", "cluster-admin"), "null");
        assert!(eval(both, &nobody, &[])[0].message.contains("to no subject yet; "));
        for (settings, field) in [
            (r#"{"allowedSubjects":[{"kind":"Role","name":"x"}]}"#, "/allowedSubjects/0/kind"),
            (r#"{"allowedSubjects":[{"kind":"User","name":"x","namespace":"y"}]}"#, "/allowedSubjects/0/namespace"),
            (r#"{"allowedSubjects":[{"kind":"User","name":""}]}"#, "/allowedSubjects/0/name"),
            (r#"{"allowed":[]}"#, "/allowed"),
        ] {
            assert_eq!(configure::<RbacClusterAdminBinding>(settings).err().unwrap().field, field, "{settings}");
        }
    }

    #[test]
    fn roles_as_wide_as_cluster_admin_in_the_set() {
        let wide = r#"{"kind":"Role","metadata":{"name":"all","namespace":"team"},"rules":[
            {"apiGroups":[""],"resources":["pods"],"verbs":["get"]},
            {"apiGroups":["*"],"resources":["*"],"verbs":["get","list","delete","update","create","patch","watch"]}]}"#;
        let rb = binding("RoleBinding", Some("team"), ("Role", "all"), ALICE);
        let v = eval("{}", &rb, &[wide]);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message.starts_with(
                r#"RoleBinding "b" grants Role "all", whose rules[1] allows get, list, watch, create, update, patch and delete on every resource of every API group: the equivalent of cluster-admin in namespace team"#
            ),
            "{}",
            v[0].message
        );
        let other_ns = binding("RoleBinding", Some("prod"), ("Role", "all"), ALICE);
        assert!(eval("{}", &other_ns, &[wide]).is_empty(), "a Role is looked up in the binding's namespace");
        for narrower in [
            r#"{"apiGroups":[""],"resources":["*"],"verbs":["*"]}"#,
            r#"{"apiGroups":["*"],"resources":["pods"],"verbs":["*"]}"#,
            r#"{"apiGroups":["*"],"resources":["*"],"verbs":["get","list"]}"#,
            r#"{"apiGroups":["*"],"resources":["*"],"resourceNames":["x"],"verbs":["*"]}"#,
        ] {
            let role = format!(r#"{{"kind":"ClusterRole","metadata":{{"name":"c"}},"rules":[{narrower}]}}"#);
            let crb = binding("ClusterRoleBinding", None, ("ClusterRole", "c"), ALICE);
            assert!(eval("{}", &crb, &[&role]).is_empty(), "{narrower}");
        }
        let crb = binding("ClusterRoleBinding", None, ("ClusterRole", "missing"), ALICE);
        assert!(eval("{}", &crb, &[wide]).is_empty(), "a role outside the set cannot be judged");
    }

    #[test]
    fn a_system_role_can_be_the_wide_one_and_aggregation_counts() {
        let system = r#"{"kind":"ClusterRole","metadata":{"name":"system:test"},"rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]}"#;
        let crb = binding("ClusterRoleBinding", None, ("ClusterRole", "system:test"), ALICE);
        assert_eq!(eval("{}", &crb, &[system]).len(), 1, "the binding is the user's own");
        let source = r#"{"kind":"ClusterRole","metadata":{"name":"everything","labels":{"agg":"ops"}},"rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]}"#;
        let ops = r#"{"kind":"ClusterRole","metadata":{"name":"ops"},"aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"agg":"ops"}}]}}"#;
        let rb = binding("RoleBinding", Some("team"), ("ClusterRole", "ops"), ALICE);
        let v = eval("{}", &rb, &[source, ops]);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message.contains(r#"grants ClusterRole "ops", which aggregates rules[0] of ClusterRole "everything", allowing every verb"#),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn system_masters_and_system_bindings() {
        let masters = r#"[{"kind":"Group","name":"system:masters","apiGroup":"rbac.authorization.k8s.io"},{"kind":"Group","name":"system:mastersx"}]"#;
        let rb = binding("RoleBinding", Some("team"), ("Role", "viewer"), masters);
        let v = eval("{}", &rb, &[]);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "/subjects/0");
        assert!(v[0].message.contains(r#"names Group "system:masters""#) && !v[0].message.contains("cluster-admin"));
        assert!(eval(r#"{"allowedSubjects":[{"kind":"Group","name":"system:masters"}]}"#, &rb, &[]).is_empty());
        let bootstrap = r#"{"kind":"ClusterRoleBinding","metadata":{"name":"cluster-admin","labels":{"kubernetes.io/bootstrapping":"rbac-defaults"}},
            "roleRef":{"kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"Group","name":"system:masters"}]}"#;
        assert!(eval("{}", bootstrap, &[]).is_empty());
        assert_eq!(eval(r#"{"includeSystem":true}"#, bootstrap, &[]).len(), 2);
        let system_named = binding("ClusterRoleBinding", None, ("ClusterRole", "cluster-admin"), ALICE)
            .replace(r#""name":"b""#, r#""name":"system:x""#);
        assert!(eval("{}", &system_named, &[]).is_empty());
        assert!(eval("{}", r#"{"kind":"ClusterRole","metadata":{"name":"x"}}"#, &[]).is_empty());
    }
}
