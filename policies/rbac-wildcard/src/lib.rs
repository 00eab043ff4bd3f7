//! No `*` in the verbs, resources or API groups of a Role's or ClusterRole's rules.
//!
//! Source: the RBAC good practices, "Least privilege": "Avoid providing
//! wildcard permissions when possible, especially to all resources", since a
//! wildcard also grants every object type added to the cluster later
//! (<https://kubernetes.io/docs/concepts/security/rbac-good-practices/#least-privilege>);
//! `PolicyRule` of `k8s.io/api/rbac/v1`, whose `*` matches everything in its
//! field, and whose resource `*/scale` matches a subresource of every
//! resource (reported as a wildcard too). Kyverno `restrict-wildcard-verbs`
//! and `restrict-wildcard-resources` (other/).
//!
//! One finding per rule, naming the fields that hold a wildcard. An
//! aggregating ClusterRole is judged on the rules it aggregates from the
//! ClusterRoles of the checked set (see `palisade_sdk::rbac`): such a finding
//! names the ClusterRole that writes the rule, and its path is the selector
//! that brought it in. System roles are skipped unless `includeSystem`.

use palisade_sdk::rbac::{self, ROLE_SETTINGS_SCHEMA, RoleSettings, RuleFinding, SourcedRule};
use palisade_sdk::{Context, HARDENED, Metadata, Rule, SettingsError, Severity, Violation};

pub struct RbacWildcard {
    settings: RoleSettings,
}

/// The fields of a rule that hold a wildcard, and the entries.
fn wildcards(rule: &rbac::PolicyRule) -> Vec<(&'static str, Vec<&str>)> {
    fn star(list: &[String]) -> Vec<&str> {
        list.iter().filter(|e| *e == "*").map(String::as_str).collect()
    }
    let resources = rule.resources.iter().filter(|r| *r == "*" || r.starts_with("*/")).map(String::as_str).collect();
    [("apiGroups", star(&rule.api_groups)), ("resources", resources), ("verbs", star(&rule.verbs))]
        .into_iter()
        .filter(|(_, entries)| !entries.is_empty())
        .collect()
}

fn why(field: &str) -> &'static str {
    match field {
        "apiGroups" => "every API group, those added later included",
        "resources" => "every resource type of its API groups, those added later included",
        _ => "every verb, escalate, bind and impersonate included",
    }
}

impl RbacWildcard {
    pub fn judge(rules: &[SourcedRule]) -> Vec<RuleFinding> {
        let mut out = Vec::new();
        for (i, sourced) in rules.iter().enumerate() {
            let found = wildcards(&sourced.rule);
            if found.is_empty() {
                continue;
            }
            let entries: Vec<String> = found
                .iter()
                .map(|(field, entries)| {
                    let quoted: Vec<String> = entries.iter().map(|e| format!("{e:?}")).collect();
                    format!("{} in {field}", quoted.join(", "))
                })
                .collect();
            let covers: Vec<&str> = found.iter().map(|(field, _)| why(field)).collect();
            // Names only the fields with a wildcard: the peer mappings (tests/peer_suites.rs) read them.
            let fields: Vec<&str> = found.iter().map(|(field, _)| *field).collect();
            out.push(RuleFinding {
                rule: i,
                field: (found.len() == 1).then_some(found[0].0),
                text: format!(
                    "has {}: it covers {}; list the {} it needs instead",
                    entries.join(" and "),
                    covers.join("; "),
                    fields.join(" and ")
                ),
            });
        }
        out
    }
}

impl Rule for RbacWildcard {
    type Settings = RoleSettings;

    fn metadata() -> Metadata {
        Metadata {
            id: "rbac-wildcard",
            title: "Roles must not use wildcards in verbs, resources or API groups",
            description: "Fails a Role or ClusterRole with a rule whose verbs, resources or apiGroups hold \"*\" \
                          (or whose resources hold \"*/subresource\"), one finding per rule naming the fields. \
                          An aggregating ClusterRole is judged on the rules it gathers from the ClusterRoles of \
                          the checked set its clusterRoleSelectors match. System roles are skipped unless \
                          includeSystem is true.",
            rationale: "A wildcard grants more than anyone reviewed: every verb (escalate, bind and impersonate \
                        among them), every resource of a group (Secrets, pods/exec), every group, and also \
                        every resource type and API group that a CRD or an upgrade adds later.",
            remediation: "List the verbs, resources and API groups the subject needs. Where an operator \
                          really owns a whole API group of its own, accept its role by kind and name in \
                          allowedRoles.",
            severity: Severity::Medium,
            category: "Access control",
            applies_to: &["Role", "ClusterRole"],
            reads_kinds: &["ClusterRole"],
            settings_schema: ROLE_SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/concepts/security/rbac-good-practices/#least-privilege",
                "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#aggregated-clusterroles",
                "https://kubernetes.io/docs/reference/kubernetes-api/authorization-resources/cluster-role-v1/",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(settings: RoleSettings) -> Result<Self, SettingsError> {
        settings.validate()?;
        Ok(RbacWildcard { settings })
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        rbac::check_role(object, &self.settings, Self::judge)
    }
}

palisade_sdk::export_rule!(RbacWildcard);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::configure;
    use palisade_sdk::inventory::testing;

    fn eval(rule: &RbacWildcard, json: &str) -> Vec<Violation> {
        rule.evaluate(json, &Context::default()).unwrap()
    }

    fn strict() -> RbacWildcard {
        configure::<RbacWildcard>("{}").unwrap()
    }

    #[test]
    fn one_finding_per_rule_naming_the_fields() {
        testing::set::<&str>(&[]);
        let role = r#"{"kind":"Role","metadata":{"name":"deployer","namespace":"ci"},"rules":[
            {"apiGroups":["apps"],"resources":["deployments"],"verbs":["get","*"]},
            {"apiGroups":[""],"resources":["configmaps"],"verbs":["get","list"]},
            {"apiGroups":["*"],"resources":["*"],"verbs":["*"]},
            {"apiGroups":["apps"],"resources":["*/scale"],"verbs":["update"]}]}"#;
        let v = eval(&strict(), role);
        assert_eq!(v.len(), 3, "{v:?}");
        assert_eq!(
            v[0].message,
            r#"Role "deployer" rules[0] has "*" in verbs: it covers every verb, escalate, bind and impersonate included; list the verbs it needs instead"#
        );
        assert_eq!(v[0].path, "/rules/0/verbs");
        assert!(v[1].message.contains(r#"rules[2] has "*" in apiGroups and "*" in resources and "*" in verbs"#));
        assert!(
            v[1].message.ends_with("; list the apiGroups and resources and verbs it needs instead"),
            "{}",
            v[1].message
        );
        assert_eq!(v[1].path, "/rules/2", "several fields: the rule");
        assert!(v[2].message.contains(r#""*/scale" in resources"#) && !v[2].message.contains("verbs"));
        assert_eq!(v[2].path, "/rules/3/resources");
    }

    #[test]
    fn field_names_appear_only_for_their_field() {
        testing::set::<&str>(&[]);
        // Peer suites filter findings by the field's name.
        let groups = r#"{"kind":"ClusterRole","metadata":{"name":"g"},"rules":[{"apiGroups":["*"],"resources":["secrets"],"verbs":["create"]}]}"#;
        let m = &eval(&strict(), groups)[0].message;
        assert!(m.contains("apiGroups") && !m.contains("resources") && !m.contains("verbs"), "{m}");
        let resources = r#"{"kind":"ClusterRole","metadata":{"name":"r"},"rules":[{"apiGroups":["apps"],"resources":["*"],"verbs":["create"]}]}"#;
        let m = &eval(&strict(), resources)[0].message;
        assert!(m.contains("resources") && !m.contains("verbs") && !m.contains("apiGroups"), "{m}");
    }

    #[test]
    fn empty_and_absent_rules_pass_and_other_kinds_are_ignored() {
        testing::set::<&str>(&[]);
        for json in [
            r#"{"kind":"ClusterRole","metadata":{"name":"a"},"rules":null}"#,
            r#"{"kind":"Role","metadata":{"name":"a","namespace":"x"}}"#,
            r#"{"kind":"ClusterRole","metadata":{"name":"urls"},"rules":[{"nonResourceURLs":["/metrics"],"verbs":["get"]}]}"#,
            r#"{"kind":"RoleBinding","metadata":{"name":"a"},"rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]}"#,
        ] {
            assert!(eval(&strict(), json).is_empty(), "{json}");
        }
    }

    #[test]
    fn system_roles_are_skipped_unless_asked_and_allowed_roles_pass() {
        testing::set::<&str>(&[]);
        let admin = r#"{"kind":"ClusterRole","metadata":{"name":"cluster-admin"},"rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]},{"nonResourceURLs":["*"],"verbs":["*"]}]}"#;
        assert!(eval(&strict(), admin).is_empty());
        let all = configure::<RbacWildcard>(r#"{"includeSystem":true}"#).unwrap();
        assert_eq!(eval(&all, admin).len(), 2, "verbs \"*\" of a nonResourceURLs rule count too");
        let operator = r#"{"kind":"ClusterRole","metadata":{"name":"keda-operator"},"rules":[{"apiGroups":["keda.sh"],"resources":["*"],"verbs":["*"]}]}"#;
        assert_eq!(eval(&strict(), operator).len(), 1);
        let allowing =
            configure::<RbacWildcard>(r#"{"allowedRoles":[{"kind":"ClusterRole","name":"keda-operator"}]}"#).unwrap();
        assert!(eval(&allowing, operator).is_empty());
        let err = configure::<RbacWildcard>(r#"{"allowedRoles":[{"kind":"Deployment","name":"x"}]}"#).err().unwrap();
        assert_eq!(err.field, "/allowedRoles/0/kind");
    }

    #[test]
    fn aggregated_wildcards_are_attributed_to_the_aggregating_role() {
        let source = r#"{"kind":"ClusterRole","metadata":{"name":"crontab-edit","labels":{"rbac.example.com/aggregate-to-ops":"true"}},
            "rules":[{"apiGroups":["stable.example.com"],"resources":["crontabs"],"verbs":["*"]}]}"#;
        let ops = r#"{"kind":"ClusterRole","metadata":{"name":"ops"},
            "aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"rbac.example.com/aggregate-to-ops":"true"}}]},"rules":[]}"#;
        testing::set(&[source, ops]);
        let v = eval(&strict(), ops);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message.starts_with(
                r#"ClusterRole "ops" aggregates rules[0] of ClusterRole "crontab-edit" (clusterRoleSelectors[0]), which has "*" in verbs"#
            ),
            "{}",
            v[0].message
        );
        assert_eq!(v[0].path, "/aggregationRule/clusterRoleSelectors/0");
        testing::set(&[ops]);
        assert!(eval(&strict(), ops).is_empty(), "nothing to aggregate in the set");
    }
}
