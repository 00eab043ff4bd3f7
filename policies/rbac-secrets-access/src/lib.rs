//! No Role or ClusterRole may read Secrets unless it is allowed by name.
//!
//! Source: the RBAC good practices, "Listing secrets": `get` reveals a
//! Secret's contents, and `list` and `watch` reveal the contents of every
//! Secret they return
//! (<https://kubernetes.io/docs/concepts/security/rbac-good-practices/#listing-secrets>).
//! Secrets are the resource `secrets` of the core API group (`""`); a rule
//! grants reading them when its verbs match `get`, `list` or `watch` and its
//! resources and apiGroups match as the RBAC authorizer matches them (`*`
//! included; `k8s.io/api/rbac/v1` `PolicyRule`). Kyverno
//! `restrict-secret-role-verbs` (other/), which also ignores apiGroups.
//!
//! A rule with `resourceNames` grants only the Secrets it names, the narrowing
//! the RBAC documentation recommends, and is not reported. An aggregating
//! ClusterRole is judged on the rules it aggregates from the ClusterRoles of
//! the checked set (see `palisade_sdk::rbac`), the finding naming the role
//! that writes the rule. System roles are skipped unless `includeSystem`;
//! `allowedRoles` accepts the roles that must read Secrets (an operator that
//! manages certificates, say).

use palisade_sdk::rbac::{self, ROLE_SETTINGS_SCHEMA, RoleSettings, RuleFinding, SourcedRule};
use palisade_sdk::{Context, HARDENED, Metadata, Rule, SettingsError, Severity, Violation};

const READ: [&str; 3] = ["get", "list", "watch"];

pub struct RbacSecretsAccess {
    settings: RoleSettings,
}

impl RbacSecretsAccess {
    pub fn judge(rules: &[SourcedRule]) -> Vec<RuleFinding> {
        rules
            .iter()
            .enumerate()
            .filter(|(_, s)| s.rule.resource_names.is_empty())
            .filter_map(|(i, s)| {
                let grant = s.rule.grant(&READ, "", &["secrets"])?;
                let how = if grant.verbs == ["get"] {
                    "its subjects read the contents of any Secret they name"
                } else {
                    "a list or watch returns the contents of every Secret in full"
                };
                Some(RuleFinding {
                    rule: i,
                    field: None,
                    text: format!(
                        "grants {}: {how}; limit the rule with resourceNames to the Secrets its subjects need",
                        grant.describe()
                    ),
                })
            })
            .collect()
    }
}

impl Rule for RbacSecretsAccess {
    type Settings = RoleSettings;

    fn metadata() -> Metadata {
        Metadata {
            id: "rbac-secrets-access",
            title: "Roles must not read Secrets unless allowed",
            description: "Fails a Role or ClusterRole with a rule that grants get, list or watch on secrets in \
                          the core API group, through \"*\" in verbs, resources or apiGroups included, one \
                          finding per rule. Rules limited by resourceNames pass. An aggregating ClusterRole is \
                          judged on the rules it gathers from the ClusterRoles of the checked set. Roles named \
                          in allowedRoles, and system roles unless includeSystem is true, are skipped.",
            rationale: "Secrets hold credentials: service account tokens, registry and database passwords, TLS \
                        keys. get reads one, and list and watch return the contents of every Secret of the \
                        namespace (or of the cluster, for a ClusterRoleBinding) in one response, so a \
                        compromised subject with read access collects them all.",
            remediation: "Mount the Secrets a workload needs as volumes or environment variables instead of \
                          reading them through the API. Where a subject must read Secrets, limit the rule to \
                          get with resourceNames, bind it with a RoleBinding in one namespace, and add the role \
                          to allowedRoles.",
            severity: Severity::High,
            category: "Access control",
            applies_to: &["Role", "ClusterRole"],
            reads_kinds: &["ClusterRole"],
            settings_schema: ROLE_SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/concepts/security/rbac-good-practices/#listing-secrets",
                "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-resources",
                "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#aggregated-clusterroles",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(settings: RoleSettings) -> Result<Self, SettingsError> {
        settings.validate()?;
        Ok(RbacSecretsAccess { settings })
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        rbac::check_role(object, &self.settings, Self::judge)
    }
}

palisade_sdk::export_rule!(RbacSecretsAccess);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::configure;
    use palisade_sdk::inventory::testing;

    fn eval(rule: &RbacSecretsAccess, json: &str) -> Vec<Violation> {
        rule.evaluate(json, &Context::default()).unwrap()
    }

    fn strict() -> RbacSecretsAccess {
        configure::<RbacSecretsAccess>("{}").unwrap()
    }

    fn cluster_role(rules: &str) -> String {
        format!(r#"{{"kind":"ClusterRole","metadata":{{"name":"app"}},"rules":{rules}}}"#)
    }

    #[test]
    fn reading_verbs_on_secrets_fail_writing_ones_pass() {
        testing::set::<&str>(&[]);
        let read = cluster_role(
            r#"[{"apiGroups":[""],"resources":["configmaps"],"verbs":["get"]},
                {"apiGroups":[""],"resources":["namespaces","secrets","pods"],"verbs":["create","watch","list"]}]"#,
        );
        let v = eval(&strict(), &read);
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            r#"ClusterRole "app" rules[1] grants list, watch on secrets: a list or watch returns the contents of every Secret in full; limit the rule with resourceNames to the Secrets its subjects need"#
        );
        assert_eq!(v[0].path, "/rules/1");
        let write = cluster_role(
            r#"[{"apiGroups":[""],"resources":["secrets"],"verbs":["create","update","patch","delete"]}]"#,
        );
        assert!(eval(&strict(), &write).is_empty());
    }

    #[test]
    fn wildcards_grant_secrets_too() {
        testing::set::<&str>(&[]);
        for rules in [
            r#"[{"apiGroups":["*"],"resources":["*"],"verbs":["get"]}]"#,
            r#"[{"apiGroups":[""],"resources":["*"],"verbs":["list"]}]"#,
            r#"[{"apiGroups":[""],"resources":["secrets"],"verbs":["*"]}]"#,
        ] {
            let v = eval(&strict(), &cluster_role(rules));
            assert_eq!(v.len(), 1, "{rules}");
            assert!(v[0].message.contains(r#"(through "*")"#), "{}", v[0].message);
        }
        // secrets of another API group are not Secrets.
        assert!(
            eval(&strict(), &cluster_role(r#"[{"apiGroups":["batch"],"resources":["secrets"],"verbs":["get"]}]"#))
                .is_empty()
        );
        assert!(
            eval(&strict(), &cluster_role(r#"[{"apiGroups":["*"],"resources":["*/status"],"verbs":["get"]}]"#))
                .is_empty()
        );
    }

    #[test]
    fn resource_names_narrow_the_grant() {
        testing::set::<&str>(&[]);
        let named = cluster_role(
            r#"[{"apiGroups":[""],"resources":["secrets"],"resourceNames":["webhook-tls"],"verbs":["get","watch"]}]"#,
        );
        assert!(eval(&strict(), &named).is_empty());
    }

    #[test]
    fn allowed_and_system_roles() {
        testing::set::<&str>(&[]);
        let role = r#"{"kind":"Role","metadata":{"name":"cert-manager-reader","namespace":"cert-manager"},
            "rules":[{"apiGroups":[""],"resources":["secrets"],"verbs":["get","list","watch"]}]}"#;
        assert_eq!(eval(&strict(), role).len(), 1);
        let allowed = configure::<RbacSecretsAccess>(
            r#"{"allowedRoles":[{"kind":"Role","name":"cert-manager-reader","namespace":"cert-manager"}]}"#,
        )
        .unwrap();
        assert!(eval(&allowed, role).is_empty());
        let elsewhere = configure::<RbacSecretsAccess>(
            r#"{"allowedRoles":[{"kind":"Role","name":"cert-manager-reader","namespace":"default"}]}"#,
        )
        .unwrap();
        assert_eq!(eval(&elsewhere, role).len(), 1, "the namespace must match when given");
        let system = r#"{"kind":"ClusterRole","metadata":{"name":"system:controller:token-cleaner"},
            "rules":[{"apiGroups":[""],"resources":["secrets"],"verbs":["get","list","watch","delete"]}]}"#;
        assert!(eval(&strict(), system).is_empty());
        assert_eq!(eval(&configure::<RbacSecretsAccess>(r#"{"includeSystem":true}"#).unwrap(), system).len(), 1);
    }

    #[test]
    fn an_aggregated_role_inherits_secret_reading() {
        let reader = r#"{"kind":"ClusterRole","metadata":{"name":"secret-reader","labels":{"rbac.example.com/aggregate-to-monitoring":"true"}},
            "rules":[{"apiGroups":[""],"resources":["secrets"],"verbs":["get","list"]}]}"#;
        let monitoring = r#"{"kind":"ClusterRole","metadata":{"name":"monitoring"},
            "aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"rbac.example.com/aggregate-to-monitoring":"true"}}]}}"#;
        let allowed =
            configure::<RbacSecretsAccess>(r#"{"allowedRoles":[{"kind":"ClusterRole","name":"secret-reader"}]}"#)
                .unwrap();
        testing::set(&[reader, monitoring]);
        assert!(eval(&allowed, reader).is_empty());
        let v = eval(&allowed, monitoring);
        assert_eq!(v.len(), 1, "allowing the source does not allow what others aggregate from it");
        assert!(v[0].message.contains(r#"aggregates rules[0] of ClusterRole "secret-reader""#), "{}", v[0].message);
        let broken = r#"{"kind":"ClusterRole","metadata":{"name":"broken"},"rules":{"not":"a list"}}"#;
        testing::set(&[reader, monitoring, broken]);
        let err = allowed.evaluate(monitoring, &Context::default()).unwrap_err();
        assert!(err.contains("ClusterRole \"broken\""), "{err}");
    }
}
