//! RBAC objects, and the API server's reading of them, for the rules about
//! roles and bindings.
//!
//! Types follow `k8s.io/api/rbac/v1` (`PolicyRule`, `AggregationRule`,
//! `Subject`, `RoleRef`). Matching follows the RBAC authorizer
//! (`VerbMatches`, `APIGroupMatches`, `ResourceMatches` in
//! `k8s.io/kubernetes/pkg/apis/rbac/v1/evaluation_helpers.go`): `*` matches
//! everything in its field, every other entry matches itself exactly (case
//! included), and a resource `*/scale` matches the `scale` subresource of any
//! resource.
//!
//! Aggregation follows the clusterrole-aggregation controller
//! (<https://kubernetes.io/docs/reference/access-authn-authz/rbac/#aggregated-clusterroles>):
//! a ClusterRole with an `aggregationRule` holds the rules of every ClusterRole
//! whose labels one of its `clusterRoleSelectors` matches (the selectors are
//! ORed; `{}` matches every ClusterRole), and an aggregated ClusterRole that
//! aggregates in turn passes its own aggregated rules on. Here the candidates
//! are the ClusterRoles of the checked set, read through the inventory. The
//! rules the role itself lists are judged too: the controller overwrites
//! them, but a manifest dumped from a cluster holds the union already, and
//! each distinct rule is judged once.
//!
//! System objects are skipped unless a rule's `includeSystem` setting is
//! true: names with the reserved `system:` prefix, objects with the label
//! `kubernetes.io/bootstrapping: rbac-defaults` that marks every default
//! role and binding, and the default user-facing ClusterRoles `cluster-admin`,
//! `admin`, `edit` and `view`, which the API server creates and reconciles
//! (<https://kubernetes.io/docs/reference/access-authn-authz/rbac/#default-roles-and-role-bindings>).

use std::collections::BTreeSet;
use std::rc::Rc;

use serde::{Deserialize, Deserializer};

use crate::inventory;
use crate::pod::{ObjectMeta, nullable};
use crate::selector::LabelSelector;
use crate::{SettingsError, Violation};

/// The API group of roles and bindings.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The label of the API server's default roles and bindings.
pub const BOOTSTRAP_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");

/// The default user-facing ClusterRoles, without the `system:` prefix.
pub const DEFAULT_CLUSTER_ROLES: [&str; 4] = ["cluster-admin", "admin", "edit", "view"];

/// Read a list of strings, where Go's decoder reads `null` as "" (an empty
/// `apiGroups` item is the core group).
fn strings<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    let items = Option::<Vec<Option<String>>>::deserialize(de)?.unwrap_or_default();
    Ok(items.into_iter().map(Option::unwrap_or_default).collect())
}

/// One rule of a Role or ClusterRole.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(default, deserialize_with = "strings")]
    pub verbs: Vec<String>,
    #[serde(default, deserialize_with = "strings")]
    pub api_groups: Vec<String>,
    #[serde(default, deserialize_with = "strings")]
    pub resources: Vec<String>,
    #[serde(default, deserialize_with = "strings")]
    pub resource_names: Vec<String>,
    #[serde(default, deserialize_with = "strings", rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

/// What a rule grants of a set of permissions asked about: the verbs and
/// resources (as asked, in the order asked) it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub verbs: Vec<String>,
    pub resources: Vec<String>,
    /// Whether a `*` of the rule matched something it does not name.
    pub through_wildcard: bool,
}

impl Grant {
    /// `get, list on secrets`, with `(through "*")` when a wildcard grants it.
    pub fn describe(&self) -> String {
        let through = if self.through_wildcard { " (through \"*\")" } else { "" };
        format!("{} on {}{through}", self.verbs.join(", "), self.resources.join(", "))
    }

    fn merge(into: &mut Option<Grant>, other: Grant) {
        match into {
            None => *into = Some(other),
            Some(g) => {
                for v in other.verbs {
                    if !g.verbs.contains(&v) {
                        g.verbs.push(v);
                    }
                }
                for r in other.resources {
                    if !g.resources.contains(&r) {
                        g.resources.push(r);
                    }
                }
                g.through_wildcard |= other.through_wildcard;
            }
        }
    }
}

impl PolicyRule {
    /// `VerbMatches`.
    pub fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    /// `APIGroupMatches`: `""` is the core group.
    pub fn group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == "*" || g == group)
    }

    /// `ResourceMatches`, for a resource written as RBAC writes it: `pods`,
    /// or `pods/exec` for a subresource.
    pub fn resource_matches(&self, resource: &str) -> bool {
        let sub = resource.split_once('/').map(|(_, s)| s);
        self.resources
            .iter()
            .any(|r| r == "*" || r == resource || sub.is_some_and(|s| r.strip_prefix("*/").is_some_and(|rs| rs == s)))
    }

    /// Whether the rule allows `verb` on `resource` of `group`.
    pub fn allows(&self, verb: &str, group: &str, resource: &str) -> bool {
        self.verb_matches(verb) && self.group_matches(group) && self.resource_matches(resource)
    }

    /// What the rule grants of `verbs` on `resources` of `group`; `None` when
    /// it allows no such combination.
    pub fn grant(&self, verbs: &[&str], group: &str, resources: &[&str]) -> Option<Grant> {
        if !self.group_matches(group) {
            return None;
        }
        let verbs: Vec<&str> = verbs.iter().copied().filter(|v| self.verb_matches(v)).collect();
        let resources: Vec<&str> = resources.iter().copied().filter(|r| self.resource_matches(r)).collect();
        if verbs.is_empty() || resources.is_empty() {
            return None;
        }
        let named = |list: &[String], item: &str| list.iter().any(|x| x == item);
        let through_wildcard = !named(&self.api_groups, group)
            || verbs.iter().any(|v| !named(&self.verbs, v))
            || resources.iter().any(|r| !named(&self.resources, r));
        Some(Grant {
            verbs: verbs.into_iter().map(String::from).collect(),
            resources: resources.into_iter().map(String::from).collect(),
            through_wildcard,
        })
    }

    /// What the rule grants of `verbs` on any of `targets`, each an API group
    /// and resources of it.
    pub fn grant_any(&self, verbs: &[&str], targets: &[(&str, &[&str])]) -> Option<Grant> {
        let mut out = None;
        for (group, resources) in targets {
            if let Some(g) = self.grant(verbs, group, resources) {
                Grant::merge(&mut out, g);
            }
        }
        out
    }

    /// Whether `verb` is written in the rule's verbs (not only through `*`).
    pub fn names_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// Whether the rule is about API resources (not `nonResourceURLs`).
    pub fn is_resource_rule(&self) -> bool {
        !self.resources.is_empty()
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregationRule {
    #[serde(default, deserialize_with = "nullable")]
    pub cluster_role_selectors: Vec<LabelSelector>,
}

/// A Role or a ClusterRole.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub rules: Vec<PolicyRule>,
    pub aggregation_rule: Option<AggregationRule>,
}

/// Where a rule that a role grants is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// In the role's own `rules`.
    Own,
    /// In the ClusterRole `role`, which the selector `selector` of the
    /// aggregating role matched, directly (`via` empty) or through the
    /// aggregating ClusterRoles `via`, outermost first.
    Aggregated { selector: usize, role: String, via: Vec<String> },
}

/// A rule a role grants, and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedRule {
    pub rule: PolicyRule,
    /// Its index in the `rules` of the role that writes it.
    pub index: usize,
    pub origin: Origin,
}

impl SourcedRule {
    /// Where the rule is written, for a message: `rules[2]`, or
    /// `rules[0] of ClusterRole "b"` for an aggregated one.
    pub fn location(&self) -> String {
        match &self.origin {
            Origin::Own => format!("rules[{}]", self.index),
            Origin::Aggregated { role, .. } => format!("rules[{}] of ClusterRole {role:?}", self.index),
        }
    }

    /// The subject of a sentence about the rule, before a verb:
    /// `rules[2]`, or `aggregates rules[0] of ClusterRole "b"
    /// (clusterRoleSelectors[1]), which`.
    pub fn subject(&self) -> String {
        match &self.origin {
            Origin::Own => self.location(),
            Origin::Aggregated { selector, via, .. } => {
                let through = via.iter().map(|v| format!(" through {v:?}")).collect::<String>();
                format!("aggregates {}{through} (clusterRoleSelectors[{selector}]), which", self.location())
            }
        }
    }

    /// JSON pointer, in the evaluated role, to the rule (or to `field` of it):
    /// the selector that brought it in for an aggregated rule.
    pub fn path(&self, field: Option<&str>) -> String {
        match (&self.origin, field) {
            (Origin::Own, None) => format!("/rules/{}", self.index),
            (Origin::Own, Some(f)) => format!("/rules/{}/{f}", self.index),
            (Origin::Aggregated { selector, .. }, _) => format!("/aggregationRule/clusterRoleSelectors/{selector}"),
        }
    }
}

impl Role {
    pub fn from_json(json: &str) -> Result<Role, String> {
        serde_json::from_str(json).map_err(|e| format!("cannot read the role: {e}"))
    }

    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// A ClusterRole whose rules the aggregation controller fills in.
    pub fn is_aggregating(&self) -> bool {
        self.kind == "ClusterRole" && self.aggregation_rule.is_some()
    }

    /// The rules the role grants: its own, then, for an aggregating
    /// ClusterRole, those of every ClusterRole of `cluster_roles` its
    /// selectors match, transitively; a rule equal to one already listed is
    /// left out.
    pub fn effective_rules(&self, cluster_roles: &[Role]) -> Result<Vec<SourcedRule>, String> {
        let mut out: Vec<SourcedRule> = Vec::new();
        let push = |out: &mut Vec<SourcedRule>, rule: &PolicyRule, index: usize, origin: Origin| {
            if !out.iter().any(|s| s.rule == *rule) {
                out.push(SourcedRule { rule: rule.clone(), index, origin });
            }
        };
        for (i, rule) in self.rules.iter().enumerate() {
            push(&mut out, rule, i, Origin::Own);
        }
        let Some(aggregation) = self.aggregation_rule.as_ref().filter(|_| self.is_aggregating()) else {
            return Ok(out);
        };
        let mut visited = BTreeSet::from([self.name().to_string()]);
        // (selector of this role, role to add, aggregating roles between)
        let mut queue: Vec<(usize, &Role, Vec<String>)> = Vec::new();
        for (k, selector) in aggregation.cluster_role_selectors.iter().enumerate() {
            for role in matching(selector, cluster_roles, self.name())? {
                queue.push((k, role, Vec::new()));
            }
        }
        let mut next = 0;
        while next < queue.len() {
            let (k, role, via) = queue[next].clone();
            next += 1;
            if !visited.insert(role.name().to_string()) {
                continue;
            }
            for (i, rule) in role.rules.iter().enumerate() {
                let origin = Origin::Aggregated { selector: k, role: role.name().to_string(), via: via.clone() };
                push(&mut out, rule, i, origin);
            }
            if let Some(inner) = role.aggregation_rule.as_ref() {
                let mut via = via.clone();
                via.push(role.name().to_string());
                for selector in &inner.cluster_role_selectors {
                    for r in matching(selector, cluster_roles, role.name())? {
                        queue.push((k, r, via.clone()));
                    }
                }
            }
        }
        Ok(out)
    }

    /// [`Role::effective_rules`] over the ClusterRoles of the checked set (read
    /// only for an aggregating ClusterRole).
    pub fn effective_rules_in_set(&self) -> Result<Vec<SourcedRule>, String> {
        if self.is_aggregating() { self.effective_rules(&cluster_roles()?) } else { self.effective_rules(&[]) }
    }
}

fn matching<'a>(selector: &LabelSelector, roles: &'a [Role], own: &str) -> Result<Vec<&'a Role>, String> {
    let mut out = Vec::new();
    for role in roles.iter().filter(|r| r.name() != own) {
        if selector.matches(&role.metadata.labels).map_err(|e| format!("an aggregation selector of {own:?}: {e}"))? {
            out.push(role);
        }
    }
    Ok(out)
}

/// The ClusterRoles of the checked set (read once per instance, see [`inventory`]).
pub fn cluster_roles() -> Result<Rc<Vec<Role>>, String> {
    inventory::parse_all_cached("ClusterRole", None)
}

/// The `kind` of an object, read alone: an object of another kind is none of
/// these rules' business, even when the rest of it does not parse (a template).
pub fn kind_of(json: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Kind {
        #[serde(default, deserialize_with = "nullable")]
        kind: String,
    }
    serde_json::from_str::<Kind>(json).map(|k| k.kind).map_err(|e| format!("cannot read the object: {e}"))
}

/// Whether an RBAC object is one of the API server's own (see the module documentation).
pub fn is_system(kind: &str, metadata: &ObjectMeta) -> bool {
    metadata.name.starts_with("system:")
        || metadata.labels.get(BOOTSTRAP_LABEL.0).is_some_and(|v| v == BOOTSTRAP_LABEL.1)
        || (kind == "ClusterRole" && DEFAULT_CLUSTER_ROLES.contains(&metadata.name.as_str()))
}

/// A subject of a binding.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub namespace: String,
    #[serde(default, deserialize_with = "nullable")]
    pub api_group: String,
}

impl Subject {
    /// `User "jane"`, `ServiceAccount "ci/deployer"`.
    pub fn describe(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {:?}", self.kind, self.name)
        } else {
            format!("{} {:?}", self.kind, format!("{}/{}", self.namespace, self.name))
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub api_group: String,
}

/// A RoleBinding or a ClusterRoleBinding.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub subjects: Vec<Subject>,
    #[serde(default, deserialize_with = "nullable")]
    pub role_ref: RoleRef,
}

impl Binding {
    pub fn from_json(json: &str) -> Result<Binding, String> {
        serde_json::from_str(json).map_err(|e| format!("cannot read the binding: {e}"))
    }

    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    pub fn namespace(&self) -> Option<&str> {
        Some(self.metadata.namespace.as_str()).filter(|n| !n.is_empty())
    }

    /// The role `roleRef` names, if the checked set holds it: a ClusterRole by
    /// name, a Role by name in the binding's namespace.
    pub fn role_in_set(&self) -> Result<Option<Role>, String> {
        let roles = match self.role_ref.kind.as_str() {
            "ClusterRole" => cluster_roles()?,
            "Role" => inventory::same_namespace_cached::<Role>("Role", self.namespace())?,
            _ => return Ok(None),
        };
        Ok(roles.iter().find(|r| r.name() == self.role_ref.name).cloned())
    }
}

/// A Role or ClusterRole named in an allow-list setting.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleName {
    pub kind: String,
    pub name: String,
    /// A Role's namespace; any namespace when absent.
    #[serde(default)]
    pub namespace: Option<String>,
}

impl RoleName {
    pub fn matches(&self, kind: &str, metadata: &ObjectMeta) -> bool {
        self.kind == kind
            && self.name == metadata.name
            && self.namespace.as_ref().is_none_or(|ns| *ns == metadata.namespace)
    }
}

/// The settings of a rule about the permissions of roles.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleSettings {
    /// Judge system roles too.
    #[serde(default)]
    pub include_system: bool,
    /// Roles the rule accepts.
    #[serde(default)]
    pub allowed_roles: Vec<RoleName>,
}

/// The JSON Schema of [`RoleSettings`].
pub const ROLE_SETTINGS_SCHEMA: &str = r#"{"type":"object","additionalProperties":false,"properties":{
    "includeSystem":{"type":"boolean","default":false,"description":"Also judge the API server's own roles: names starting system:, the label kubernetes.io/bootstrapping: rbac-defaults, and the ClusterRoles cluster-admin, admin, edit and view."},
    "allowedRoles":{"type":"array","default":[],"description":"Roles the rule accepts, by kind and name (and, for a Role, namespace; any namespace when absent).",
      "items":{"type":"object","additionalProperties":false,"required":["kind","name"],"properties":{
        "kind":{"enum":["Role","ClusterRole"]},
        "name":{"type":"string","minLength":1},
        "namespace":{"type":"string","minLength":1}}}}}}"#;

impl RoleSettings {
    /// Check what the schema says beyond the shape serde reads.
    pub fn validate(&self) -> Result<(), SettingsError> {
        for (i, r) in self.allowed_roles.iter().enumerate() {
            if r.kind != "Role" && r.kind != "ClusterRole" {
                return Err(SettingsError::new(
                    format!("/allowedRoles/{i}/kind"),
                    format!("kind must be Role or ClusterRole, not {:?}", r.kind),
                ));
            }
            if r.name.is_empty() {
                return Err(SettingsError::new(format!("/allowedRoles/{i}/name"), "the name cannot be empty"));
            }
            if r.kind == "ClusterRole" && r.namespace.is_some() {
                return Err(SettingsError::new(
                    format!("/allowedRoles/{i}/namespace"),
                    "a ClusterRole has no namespace",
                ));
            }
            if r.namespace.as_ref().is_some_and(|n| n.is_empty()) {
                return Err(SettingsError::new(
                    format!("/allowedRoles/{i}/namespace"),
                    "the namespace cannot be empty",
                ));
            }
        }
        Ok(())
    }

    /// Whether the settings exempt the role from judgement.
    pub fn exempts(&self, kind: &str, metadata: &ObjectMeta) -> bool {
        (!self.include_system && is_system(kind, metadata))
            || self.allowed_roles.iter().any(|r| r.matches(kind, metadata))
    }
}

/// One finding of a rule about a role's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFinding {
    /// Index into the rules given to the judge.
    pub rule: usize,
    /// The field of the rule concerned, if one (`verbs`).
    pub field: Option<&'static str>,
    /// The predicate: `grants get on secrets: ...`, after the rule's subject.
    pub text: String,
}

/// Evaluate a Role or ClusterRole (other kinds pass) that the settings do not
/// exempt: `judge` sees every rule the role grants, aggregated ones
/// included, and each finding becomes a violation that names the role and
/// where the rule is written.
pub fn check_role(
    object: &str,
    settings: &RoleSettings,
    judge: impl FnOnce(&[SourcedRule]) -> Vec<RuleFinding>,
) -> Result<Vec<Violation>, String> {
    let kind = kind_of(object)?;
    if kind != "Role" && kind != "ClusterRole" {
        return Ok(Vec::new());
    }
    let role = Role::from_json(object)?;
    if settings.exempts(&role.kind, &role.metadata) {
        return Ok(Vec::new());
    }
    let rules = role.effective_rules_in_set()?;
    Ok(judge(&rules)
        .into_iter()
        .map(|f| {
            let r = &rules[f.rule];
            Violation::new(format!("{} {:?} {} {}", role.kind, role.name(), r.subject(), f.text), r.path(f.field))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> PolicyRule {
        serde_json::from_str(json).unwrap()
    }

    fn role(json: &str) -> Role {
        Role::from_json(json).unwrap()
    }

    #[test]
    fn matching_follows_the_authorizer() {
        let r = rule(r#"{"apiGroups":[""],"resources":["pods","*/scale"],"verbs":["get","GET"]}"#);
        assert!(r.allows("get", "", "pods"));
        assert!(!r.allows("list", "", "pods"), "verbs match exactly");
        assert!(!r.allows("get", "apps", "pods"));
        assert!(!r.allows("get", "", "pods/exec"), "a resource does not cover its subresources");
        assert!(r.allows("get", "", "deployments/scale"), "*/scale matches any resource's scale");
        assert!(!r.allows("get", "", "scale"));
        let all = rule(r#"{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}"#);
        assert!(all.allows("impersonate", "", "users") && all.allows("create", "x.io", "pods/exec"));
        let nulls = rule(r#"{"apiGroups":[null],"resources":["secrets"],"verbs":["get"],"resourceNames":null}"#);
        assert!(nulls.allows("get", "", "secrets"), "a null group reads as the core group");
        let urls = rule(r#"{"nonResourceURLs":["/healthz"],"verbs":["*"]}"#);
        assert!(!urls.is_resource_rule() && !urls.allows("get", "", "pods"));
    }

    #[test]
    fn grants_name_what_matched() {
        let r = rule(r#"{"apiGroups":["*"],"resources":["secrets","pods"],"verbs":["get","list"]}"#);
        let g = r.grant(&["get", "list", "watch"], "", &["secrets"]).unwrap();
        assert_eq!(g.describe(), r#"get, list on secrets (through "*")"#);
        let explicit = rule(r#"{"apiGroups":[""],"resources":["secrets"],"verbs":["watch"]}"#);
        assert_eq!(explicit.grant(&["get", "watch"], "", &["secrets"]).unwrap().describe(), "watch on secrets");
        assert_eq!(explicit.grant(&["get"], "", &["secrets"]), None);
        let any = rule(r#"{"apiGroups":["*"],"resources":["users","uids"],"verbs":["impersonate"]}"#);
        let targets: &[(&str, &[&str])] = &[("", &["users", "groups"]), ("authentication.k8s.io", &["uids"])];
        assert_eq!(any.grant_any(&["impersonate"], targets).unwrap().resources, ["users", "uids"]);
    }

    const SOURCE: &str = r#"{"kind":"ClusterRole","metadata":{"name":"monitoring-endpoints","labels":{"agg":"monitoring"}},
        "rules":[{"apiGroups":[""],"resources":["secrets"],"verbs":["get"]}]}"#;
    const AGGREGATOR: &str = r#"{"kind":"ClusterRole","metadata":{"name":"monitoring"},
        "aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"other":"x"}},{"matchLabels":{"agg":"monitoring"}}]},"rules":[]}"#;

    #[test]
    fn aggregation_unions_the_selected_roles() {
        let set = [role(SOURCE), role(AGGREGATOR)];
        let rules = role(AGGREGATOR).effective_rules(&set).unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].subject(),
            r#"aggregates rules[0] of ClusterRole "monitoring-endpoints" (clusterRoleSelectors[1]), which"#
        );
        assert_eq!(rules[0].path(Some("verbs")), "/aggregationRule/clusterRoleSelectors/1");
        // Without the aggregation rule, or as a Role, the labels mean nothing.
        assert!(role(SOURCE).effective_rules(&set).unwrap().iter().all(|r| r.origin == Origin::Own));
        let as_role = AGGREGATOR.replace(r#""kind":"ClusterRole""#, r#""kind":"Role""#);
        assert!(role(&as_role).effective_rules(&set).unwrap().is_empty());
    }

    #[test]
    fn aggregation_is_transitive_deduplicated_and_survives_cycles() {
        let middle = r#"{"kind":"ClusterRole","metadata":{"name":"middle","labels":{"top":"yes","agg":"monitoring"}},
            "aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"agg":"monitoring"}}]},
            "rules":[{"apiGroups":[""],"resources":["secrets"],"verbs":["get"]}]}"#;
        let top = r#"{"kind":"ClusterRole","metadata":{"name":"top","labels":{"agg":"monitoring"}},
            "aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"top":"yes"}}]}}"#;
        let set = [role(SOURCE), role(middle), role(top)];
        let rules = role(top).effective_rules(&set).unwrap();
        // middle's own rule equals the source's: listed once, at middle.
        assert_eq!(rules.len(), 1, "{rules:?}");
        assert_eq!(rules[0].location(), r#"rules[0] of ClusterRole "middle""#);
        let extra = SOURCE.replace(r#""verbs":["get"]"#, r#""verbs":["list"]"#);
        let set = [role(&extra), role(middle), role(top)];
        let rules = role(top).effective_rules(&set).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[1].subject(),
            r#"aggregates rules[0] of ClusterRole "monitoring-endpoints" through "middle" (clusterRoleSelectors[0]), which"#
        );
    }

    #[test]
    fn an_empty_selector_selects_every_cluster_role_and_a_bad_one_is_an_error() {
        let all = r#"{"kind":"ClusterRole","metadata":{"name":"all"},"aggregationRule":{"clusterRoleSelectors":[{}]}}"#;
        assert_eq!(role(all).effective_rules(&[role(SOURCE), role(all)]).unwrap().len(), 1);
        let bad = r#"{"kind":"ClusterRole","metadata":{"name":"bad"},"aggregationRule":{"clusterRoleSelectors":[{"matchExpressions":[{"key":"a","operator":"Is"}]}]}}"#;
        let err = role(bad).effective_rules(&[role(SOURCE)]).unwrap_err();
        assert!(err.contains("\"bad\"") && err.contains("Is"), "{err}");
    }

    #[test]
    fn system_objects_and_allow_lists() {
        let meta = |json: &str| serde_json::from_str::<ObjectMeta>(json).unwrap();
        assert!(is_system("Role", &meta(r#"{"name":"system:controller:x"}"#)));
        assert!(is_system("ClusterRole", &meta(r#"{"name":"edit"}"#)));
        assert!(!is_system("Role", &meta(r#"{"name":"edit"}"#)), "a Role named edit is the user's own");
        assert!(is_system(
            "ClusterRoleBinding",
            &meta(r#"{"name":"x","labels":{"kubernetes.io/bootstrapping":"rbac-defaults"}}"#)
        ));
        assert!(!is_system("ClusterRoleBinding", &meta(r#"{"name":"cluster-admin"}"#)));
        let settings: RoleSettings = crate::parse_settings(
            r#"{"allowedRoles":[{"kind":"Role","name":"reader","namespace":"ci"},{"kind":"ClusterRole","name":"ops"}]}"#,
        )
        .unwrap();
        settings.validate().unwrap();
        assert!(settings.exempts("Role", &meta(r#"{"name":"reader","namespace":"ci"}"#)));
        assert!(!settings.exempts("Role", &meta(r#"{"name":"reader","namespace":"prod"}"#)));
        assert!(settings.exempts("ClusterRole", &meta(r#"{"name":"ops"}"#)));
        assert!(!settings.exempts("Role", &meta(r#"{"name":"ops"}"#)));
        assert!(settings.exempts("ClusterRole", &meta(r#"{"name":"system:x"}"#)));
        let all: RoleSettings = crate::parse_settings(r#"{"includeSystem":true}"#).unwrap();
        assert!(!all.exempts("ClusterRole", &meta(r#"{"name":"system:x"}"#)));
    }

    #[test]
    fn settings_errors_name_the_field() {
        let check = |json: &str| crate::parse_settings::<RoleSettings>(json).and_then(|s| s.validate()).unwrap_err();
        assert_eq!(check(r#"{"allowedRoles":[{"kind":"Pod","name":"x"}]}"#).field, "/allowedRoles/0/kind");
        assert_eq!(
            check(r#"{"allowedRoles":[{"kind":"Role","name":"x"},{"kind":"ClusterRole","name":"y","namespace":"n"}]}"#)
                .field,
            "/allowedRoles/1/namespace"
        );
        assert_eq!(check(r#"{"allowedRoles":[{"kind":"Role","name":""}]}"#).field, "/allowedRoles/0/name");
        assert_eq!(check(r#"{"allowRoles":[]}"#).field, "/allowRoles");
    }

    #[test]
    fn check_role_names_the_role_and_reads_the_set() {
        crate::inventory::testing::set(&[SOURCE, AGGREGATOR]);
        let judge = |rules: &[SourcedRule]| {
            (0..rules.len()).map(|i| RuleFinding { rule: i, field: Some("verbs"), text: "grants x".into() }).collect()
        };
        let v = check_role(AGGREGATOR, &RoleSettings::default(), judge).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            r#"ClusterRole "monitoring" aggregates rules[0] of ClusterRole "monitoring-endpoints" (clusterRoleSelectors[1]), which grants x"#
        );
        let v = check_role(SOURCE, &RoleSettings::default(), judge).unwrap();
        assert_eq!(
            (v[0].message.as_str(), v[0].path.as_str()),
            (r#"ClusterRole "monitoring-endpoints" rules[0] grants x"#, "/rules/0/verbs")
        );
        assert!(
            check_role(r#"{"kind":"Pod","metadata":{"name":"p"}}"#, &RoleSettings::default(), judge)
                .unwrap()
                .is_empty()
        );
        let template = r#"{"kind":"Service","metadata":{"name":{"{cell}":null}}}"#;
        assert!(check_role(template, &RoleSettings::default(), judge).unwrap().is_empty());
        assert!(check_role(r#"{"kind":"Role","rules":"x"}"#, &RoleSettings::default(), judge).is_err());
    }
}
