//! No Role or ClusterRole may grant a permission that escalates privileges.
//!
//! Source: the RBAC good practices, "Kubernetes RBAC - privilege escalation
//! risks" (<https://kubernetes.io/docs/concepts/security/rbac-good-practices/#privilege-escalation-risks>),
//! and the RBAC documentation on privilege escalation prevention and the
//! `escalate`, `bind` and `impersonate` verbs
//! (<https://kubernetes.io/docs/reference/access-authn-authz/rbac/#privilege-escalation-prevention-and-bootstrapping>).
//! A rule is reported once for each of these permissions it grants, as the RBAC
//! authorizer matches verbs, API groups and resources (`*` and `*/subresource`
//! included; `k8s.io/api/rbac/v1` `PolicyRule`):
//!
//! - `escalate` or `bind` on `roles` or `clusterroles` (`rbac.authorization.k8s.io`);
//! - `impersonate` on `users`, `groups`, `serviceaccounts` (core) or `uids`
//!   (`authentication.k8s.io`). A rule that names one of these three verbs
//!   itself is reported whatever resources it lists: the verbs exist for
//!   escalation only (Kyverno `restrict-escalation-verbs-roles` and the CIS
//!   benchmark read them so too);
//! - `get` or `create` on `pods/exec` or `pods/attach`: a websocket upgrade is a
//!   GET, authorized as `get` until the `AuthorizePodWebsocketUpgradeCreatePermission`
//!   gate of Kubernetes 1.35 (kubernetes/kubernetes#78741, #134577); Polaris
//!   `clusterrolePodExecAttach` and `rolePodExecAttach` read it so too;
//! - `get` or `create` on `nodes/proxy`: the kubelet API, command execution in
//!   every pod of the node, past audit and admission; `get` suffices over websockets;
//! - `create` on `serviceaccounts/token`: tokens for existing service accounts;
//! - `update` or `patch` on `certificatesigningrequests/approval` together with
//!   `approve` on `signers` (both `certificates.k8s.io`), in the same role:
//!   approving needs both. A `signers` rule whose `resourceNames` name no
//!   `kubernetes.io/` signer cannot approve client certificates the API server
//!   trusts, and does not count;
//! - `create`, `update`, `patch`, `delete` or `deletecollection` on `roles`,
//!   `clusterroles`, `rolebindings`, `clusterrolebindings`, or on
//!   `mutatingwebhookconfigurations` and `validatingwebhookconfigurations`
//!   (`admissionregistration.k8s.io`).
//!
//! The good practices also list workload creation, PersistentVolume creation
//! and namespace `patch`; most deployers hold those, so they are left to
//! Pod Security admission and to review. An aggregating ClusterRole is judged
//! on the rules it aggregates from the ClusterRoles of the checked set (see
//! `palisade_sdk::rbac`), each finding naming the role that writes the rule.
//! System roles are skipped unless `includeSystem`.

use palisade_sdk::rbac::{self, Grant, RBAC_GROUP, ROLE_SETTINGS_SCHEMA, RoleSettings, RuleFinding, SourcedRule};
use palisade_sdk::{Context, HARDENED, Metadata, Rule, SettingsError, Severity, Violation};

const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const CERTIFICATES: &str = "certificates.k8s.io";

/// A permission that escalates: verbs on resources of API groups.
struct Permission {
    verbs: &'static [&'static str],
    targets: &'static [(&'static str, &'static [&'static str])],
    /// Also reported when a rule names one of `verbs` itself, on any resource.
    named_verb: bool,
    why: &'static str,
}

const ROLES: &[(&str, &[&str])] = &[(RBAC_GROUP, &["roles", "clusterroles"])];

const PERMISSIONS: &[Permission] = &[
    Permission {
        verbs: &["escalate"],
        targets: ROLES,
        named_verb: true,
        why: "the escalate verb lets its subjects create and update roles with permissions they do not hold",
    },
    Permission {
        verbs: &["bind"],
        targets: ROLES,
        named_verb: true,
        why: "the bind verb lets its subjects bind roles with permissions they do not hold, cluster-admin included",
    },
    Permission {
        verbs: &["impersonate"],
        targets: &[("", &["users", "groups", "serviceaccounts"]), ("authentication.k8s.io", &["uids"])],
        named_verb: true,
        why: "the impersonate verb lets its subjects act as other users, groups and service accounts, with \
              their permissions",
    },
    Permission {
        verbs: &["get", "create"],
        targets: &[("", &["pods/exec"])],
        named_verb: false,
        why: "its subjects run commands in running containers (a websocket exec needs only get before \
              Kubernetes 1.35)",
    },
    Permission {
        verbs: &["get", "create"],
        targets: &[("", &["pods/attach"])],
        named_verb: false,
        why: "its subjects attach to running containers, reading their output and writing their input (a \
              websocket attach needs only get before Kubernetes 1.35)",
    },
    Permission {
        verbs: &["get", "create"],
        targets: &[("", &["nodes/proxy"])],
        named_verb: false,
        why: "the kubelet API: its subjects run commands in every pod of the node, unaudited and past \
              admission control (get suffices, over a websocket)",
    },
    Permission {
        verbs: &["create"],
        targets: &[("", &["serviceaccounts/token"])],
        named_verb: false,
        why: "its subjects issue tokens for the service accounts within reach, and act with their permissions",
    },
    Permission {
        verbs: WRITE,
        targets: &[(RBAC_GROUP, &["roles", "clusterroles", "rolebindings", "clusterrolebindings"])],
        named_verb: false,
        why: "its subjects change who may do what: they pass on every permission they hold, and any \
              permission with escalate or bind",
    },
    Permission {
        verbs: WRITE,
        targets: &[(
            "admissionregistration.k8s.io",
            &["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
        )],
        named_verb: false,
        why: "admission webhooks see every object admitted to the cluster, mutating ones change them, and \
              deleting one switches its checks off",
    },
];

/// What every finding asks for. It names no verb or resource: the peer
/// mappings (tests/peer_suites.rs) tell findings apart by those words.
const FIX: &str = "remove the grant, or list the role in allowedRoles if its subjects must have it";

fn describe(rule: &rbac::PolicyRule, grant: &Grant) -> String {
    if rule.resource_names.is_empty() {
        grant.describe()
    } else {
        format!("{} (resourceNames {})", grant.describe(), rule.resource_names.join(", "))
    }
}

/// A `signers` rule that can approve requests for the API server's own signers.
fn approves_builtin_signers(rule: &rbac::PolicyRule) -> bool {
    rule.grant(&["approve"], CERTIFICATES, &["signers"]).is_some()
        && (rule.resource_names.is_empty()
            || rule.resource_names.iter().any(|n| n == "*" || n.starts_with("kubernetes.io/")))
}

pub struct RbacPrivilegeEscalation {
    settings: RoleSettings,
}

impl RbacPrivilegeEscalation {
    pub fn judge(rules: &[SourcedRule]) -> Vec<RuleFinding> {
        let signers = rules.iter().position(|s| approves_builtin_signers(&s.rule));
        let mut out = Vec::new();
        for (i, sourced) in rules.iter().enumerate() {
            let rule = &sourced.rule;
            for p in PERMISSIONS {
                let grant = rule.grant_any(p.verbs, p.targets).or_else(|| {
                    let named: Vec<String> =
                        p.verbs.iter().filter(|v| p.named_verb && rule.names_verb(v)).map(|v| v.to_string()).collect();
                    (!named.is_empty() && rule.is_resource_rule()).then(|| Grant {
                        verbs: named,
                        resources: rule.resources.clone(),
                        through_wildcard: false,
                    })
                });
                if let Some(grant) = grant {
                    out.push(RuleFinding {
                        rule: i,
                        field: None,
                        text: format!("grants {}: {}; {FIX}", describe(rule, &grant), p.why),
                    });
                }
            }
            let approval = rule.grant(&["update", "patch"], CERTIFICATES, &["certificatesigningrequests/approval"]);
            if let (Some(approval), Some(j)) = (approval, signers) {
                let signer = if j == i { String::new() } else { format!(" ({})", rules[j].location()) };
                out.push(RuleFinding {
                    rule: i,
                    field: None,
                    text: format!(
                        "grants {} and approve on signers{signer}: its subjects approve certificate signing \
                         requests, and so obtain client certificates with any identity, system components' included; \
                         {FIX}",
                        describe(rule, &approval)
                    ),
                });
            }
        }
        out
    }
}

impl Rule for RbacPrivilegeEscalation {
    type Settings = RoleSettings;

    fn metadata() -> Metadata {
        Metadata {
            id: "rbac-privilege-escalation",
            title: "Roles must not grant permissions that escalate privileges",
            description: "Fails a Role or ClusterRole with a rule that grants escalate or bind on roles, \
                          impersonate (or names one of these verbs at all), get or create on pods/exec, \
                          pods/attach or nodes/proxy, create on serviceaccounts/token, update on \
                          certificatesigningrequests/approval together with approve on signers, or writes to \
                          roles, bindings or admission webhook configurations; \"*\" counts. One finding per \
                          rule and permission. An aggregating ClusterRole is judged on the rules it gathers \
                          from the ClusterRoles of the checked set. Roles named in allowedRoles, and system \
                          roles unless includeSystem is true, are skipped.",
            rationale: "Each of these permissions reaches beyond itself: to any role (escalate, bind, RBAC \
                        writes), any identity (impersonate, service account tokens, client certificates), any \
                        container (exec, attach, the kubelet proxy) or every object admitted (webhooks). A \
                        subject holding one is, in effect, an administrator.",
            remediation: "Remove the permission, or narrow the rule to the resources and verbs needed. Give \
                          exec and attach to people through short-lived bindings, not to workloads. Where a \
                          controller needs one (an operator that manages RBAC or webhooks, say), narrow it \
                          with resourceNames and accept the role in allowedRoles.",
            severity: Severity::High,
            category: "Access control",
            applies_to: &["Role", "ClusterRole"],
            reads_kinds: &["ClusterRole"],
            settings_schema: ROLE_SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/concepts/security/rbac-good-practices/#privilege-escalation-risks",
                "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#privilege-escalation-prevention-and-bootstrapping",
                "https://kubernetes.io/docs/reference/access-authn-authz/kubelet-authn-authz/",
                "https://kubernetes.io/docs/reference/access-authn-authz/certificate-signing-requests/#authorization",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(settings: RoleSettings) -> Result<Self, SettingsError> {
        settings.validate()?;
        Ok(RbacPrivilegeEscalation { settings })
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        rbac::check_role(object, &self.settings, Self::judge)
    }
}

palisade_sdk::export_rule!(RbacPrivilegeEscalation);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::configure;
    use palisade_sdk::inventory::testing;

    fn messages(json: &str) -> Vec<String> {
        testing::set::<&str>(&[]);
        let rule = configure::<RbacPrivilegeEscalation>("{}").unwrap();
        rule.evaluate(json, &Context::default()).unwrap().into_iter().map(|v| v.message).collect()
    }

    fn role(rules: &str) -> String {
        format!(r#"{{"kind":"Role","metadata":{{"name":"r","namespace":"team"}},"rules":{rules}}}"#)
    }

    /// What each finding grants: the text between "grants " and ":".
    fn grants(json: &str) -> Vec<String> {
        messages(json)
            .iter()
            .map(|m| m.split_once(" grants ").unwrap().1.split_once(':').unwrap().0.to_string())
            .collect()
    }

    #[test]
    fn escalation_verbs() {
        assert_eq!(
            grants(&role(
                r#"[{"apiGroups":["rbac.authorization.k8s.io"],"resources":["clusterroles"],"verbs":["escalate","bind","get"]}]"#
            )),
            ["escalate on clusterroles", "bind on clusterroles"]
        );
        assert_eq!(
            grants(&role(
                r#"[{"apiGroups":[""],"resources":["users","groups","serviceaccounts"],"verbs":["impersonate"]}]"#
            )),
            ["impersonate on users, groups, serviceaccounts"]
        );
        assert_eq!(
            grants(&role(r#"[{"apiGroups":["authentication.k8s.io"],"resources":["uids"],"verbs":["impersonate"]}]"#)),
            ["impersonate on uids"]
        );
        // Named, the verbs count wherever they point; through "*" only where they mean something.
        assert_eq!(
            grants(&role(
                r#"[{"apiGroups":["rbac.authorization.k8s.io"],"resources":["roles"],"verbs":["impersonate"]}]"#
            )),
            ["impersonate on roles"]
        );
        assert!(grants(&role(r#"[{"apiGroups":[""],"resources":["configmaps","events"],"verbs":["*"]}]"#)).is_empty());
        assert!(
            grants(&role(r#"[{"apiGroups":["external.metrics.k8s.io"],"resources":["*"],"verbs":["*"]}]"#)).is_empty()
        );
        let m = messages(&role(
            r#"[{"apiGroups":["rbac.authorization.k8s.io"],"resources":["clusterroles"],"resourceNames":["view"],"verbs":["bind"]}]"#,
        ));
        assert_eq!(
            m,
            [
                r#"Role "r" rules[0] grants bind on clusterroles (resourceNames view): the bind verb lets its subjects bind roles with permissions they do not hold, cluster-admin included; remove the grant, or list the role in allowedRoles if its subjects must have it"#
            ]
        );
    }

    #[test]
    fn exec_attach_and_the_kubelet() {
        assert_eq!(
            grants(&role(
                r#"[{"apiGroups":[""],"resources":["pods","pods/exec","pods/attach","pods/log"],"verbs":["get","create"]}]"#
            )),
            ["get, create on pods/exec", "get, create on pods/attach"]
        );
        assert!(
            grants(&role(r#"[{"apiGroups":[""],"resources":["pods/exec","pods/attach"],"verbs":["list","watch"]}]"#))
                .is_empty()
        );
        assert_eq!(
            grants(&role(r#"[{"apiGroups":["*"],"resources":["pods/exec"],"verbs":["get"]}]"#)),
            [r#"get on pods/exec (through "*")"#]
        );
        assert_eq!(
            grants(&role(r#"[{"apiGroups":[""],"resources":["*"],"verbs":["create"]}]"#)),
            [
                r#"create on pods/exec (through "*")"#,
                r#"create on pods/attach (through "*")"#,
                r#"create on nodes/proxy (through "*")"#,
                r#"create on serviceaccounts/token (through "*")"#
            ]
        );
        assert_eq!(
            grants(&role(
                r#"[{"apiGroups":[""],"resources":["nodes/proxy","nodes/metrics"],"verbs":["get","list","watch"]}]"#
            )),
            ["get on nodes/proxy"]
        );
        assert!(
            grants(&role(r#"[{"apiGroups":[""],"resources":["nodes/metrics","nodes/stats"],"verbs":["get"]}]"#))
                .is_empty()
        );
        assert_eq!(
            grants(&role(r#"[{"apiGroups":[""],"resources":["serviceaccounts/token"],"verbs":["create"]}]"#)).len(),
            1
        );
        assert!(
            grants(&role(r#"[{"apiGroups":[""],"resources":["serviceaccounts"],"verbs":["create","get"]}]"#))
                .is_empty()
        );
    }

    #[test]
    fn csr_approval_needs_the_approval_subresource_and_a_signer() {
        let both = r#"[{"apiGroups":["certificates.k8s.io"],"resources":["certificatesigningrequests"],"verbs":["create","get"]},
            {"apiGroups":["certificates.k8s.io"],"resources":["certificatesigningrequests/approval"],"verbs":["update"]},
            {"apiGroups":["certificates.k8s.io"],"resources":["signers"],"resourceNames":["kubernetes.io/kube-apiserver-client"],"verbs":["approve"]}]"#;
        let m = messages(&role(both));
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].starts_with(r#"Role "r" rules[1] grants update on certificatesigningrequests/approval and approve on signers (rules[2]): "#),
            "{}",
            m[0]
        );
        let approval_only = r#"[{"apiGroups":["certificates.k8s.io"],"resources":["certificatesigningrequests/approval"],"verbs":["update","patch"]}]"#;
        assert!(messages(&role(approval_only)).is_empty());
        let own_signer = both.replace("kubernetes.io/kube-apiserver-client", "example.com/my-signer");
        assert!(messages(&role(&own_signer)).is_empty(), "a signer of one's own is not the API server's");
        let core_group = both.replace("certificates.k8s.io", "");
        assert!(messages(&role(&core_group)).is_empty(), "the CSR API lives in certificates.k8s.io");
    }

    #[test]
    fn writes_to_rbac_and_webhooks() {
        assert_eq!(
            grants(&role(
                r#"[{"apiGroups":["rbac.authorization.k8s.io"],"resources":["rolebindings","roles"],"verbs":["get","list","patch"]}]"#
            )),
            ["patch on roles, rolebindings"]
        );
        assert!(
            grants(&role(
                r#"[{"apiGroups":["rbac.authorization.k8s.io"],"resources":["*"],"verbs":["get","list","watch"]}]"#
            ))
            .is_empty()
        );
        assert_eq!(
            grants(&role(
                r#"[{"apiGroups":["admissionregistration.k8s.io"],"resources":["validatingwebhookconfigurations"],"verbs":["delete"]}]"#
            )),
            ["delete on validatingwebhookconfigurations"]
        );
        assert!(
            grants(&role(r#"[{"apiGroups":["admissionregistration.k8s.io"],"resources":["mutatingwebhookconfigurations","validatingwebhookconfigurations"],"verbs":["get","list","watch"]}]"#))
                .is_empty()
        );
    }

    #[test]
    fn everything_at_once() {
        let all = r#"{"kind":"ClusterRole","metadata":{"name":"god"},"rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]}"#;
        let g = grants(all);
        assert_eq!(g.len(), 10, "every permission, CSR approval included: {g:?}");
        assert!(g.iter().all(|x| x.contains(r#"(through "*")"#)));
        let m = messages(all);
        // Peer suites pick findings out by these words.
        assert_eq!(m.iter().filter(|m| m.contains("verb")).count(), 3);
        assert_eq!(m.iter().filter(|m| m.contains("running containers")).count(), 2);
        let urls =
            r#"{"kind":"ClusterRole","metadata":{"name":"urls"},"rules":[{"nonResourceURLs":["*"],"verbs":["*"]}]}"#;
        assert!(messages(urls).is_empty());
    }

    #[test]
    fn aggregated_permissions_and_system_roles() {
        let exec = r#"{"kind":"ClusterRole","metadata":{"name":"debug-exec","labels":{"rbac.authorization.k8s.io/aggregate-to-support":"true"}},
            "rules":[{"apiGroups":[""],"resources":["pods/exec"],"verbs":["create"]}]}"#;
        let support = r#"{"kind":"ClusterRole","metadata":{"name":"support"},
            "aggregationRule":{"clusterRoleSelectors":[{"matchExpressions":[{"key":"rbac.authorization.k8s.io/aggregate-to-support","operator":"Exists"}]}]},
            "rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]}]}"#;
        testing::set(&[exec, support]);
        let rule = configure::<RbacPrivilegeEscalation>("{}").unwrap();
        let v = rule.evaluate(support, &Context::default()).unwrap();
        assert_eq!(v.len(), 1);
        assert!(v[0].message.starts_with(
            r#"ClusterRole "support" aggregates rules[0] of ClusterRole "debug-exec" (clusterRoleSelectors[0]), which grants create on pods/exec: "#
        ));
        assert_eq!(v[0].path, "/aggregationRule/clusterRoleSelectors/0");
        let admin = r#"{"kind":"ClusterRole","metadata":{"name":"admin"},"rules":[{"apiGroups":[""],"resources":["pods/attach"],"verbs":["create"]}]}"#;
        assert!(rule.evaluate(admin, &Context::default()).unwrap().is_empty(), "a default user-facing role");
        let all = configure::<RbacPrivilegeEscalation>(r#"{"includeSystem":true}"#).unwrap();
        assert_eq!(all.evaluate(admin, &Context::default()).unwrap().len(), 1);
    }
}
