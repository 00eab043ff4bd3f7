//! Pods do not get a service-account token unless they need one.
//!
//! Source: `PodSpec.automountServiceAccountToken` and
//! `ServiceAccount.automountServiceAccountToken` of `k8s.io/api/core/v1`: the
//! pod's field wins when set; otherwise the ServiceAccount's; the token is
//! mounted when neither says false. The ServiceAccount is
//! `spec.serviceAccountName` (or the deprecated `serviceAccount`), `default`
//! when unset
//! (<https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/#opt-out-of-api-credential-automounting>).
//! Workloads that do call the API server are exempted with a config exception.

use palisade_sdk::inventory::{self};
use palisade_sdk::{
    Context, Fields, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, PodRule, SettingsError, Severity, Violation,
    Workload,
};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ServiceAccount {
    #[serde(default)]
    metadata: palisade_sdk::pod::ObjectMeta,
    automount_service_account_token: Option<bool>,
}

pub struct ServiceAccountToken;

/// What every finding asks for.
const FIX: &str = "set spec.automountServiceAccountToken to false unless the pod calls the Kubernetes API";

impl PodRule for ServiceAccountToken {
    type Settings = NoSettings;

    const READS: Fields = Fields::SERVICE_ACCOUNT;

    fn metadata() -> Metadata {
        Metadata {
            id: "service-account-token",
            title: "Pods must not mount a service-account token they do not need",
            description: "Fails a pod that would get an API token mounted: automountServiceAccountToken is \
                          not false on the pod spec, nor (when the pod leaves it unset) on its \
                          ServiceAccount, when that ServiceAccount is in the checked set.",
            rationale: "A mounted token lets anyone who gets code execution in the pod act against the API \
                        server with the ServiceAccount's permissions; most applications never use it.",
            remediation: "Set automountServiceAccountToken: false on the pod spec (or on its \
                          ServiceAccount). For workloads that call the API server, add an exception \
                          with the reason, and give the ServiceAccount only the RBAC it needs.",
            severity: Severity::Medium,
            category: "Access control",
            applies_to: &palisade_sdk::POD_KINDS,
            reads_kinds: &["ServiceAccount"],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/#opt-out-of-api-credential-automounting",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(ServiceAccountToken)
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        let path = w.spec_field("automountServiceAccountToken");
        match w.spec.automount_service_account_token {
            Some(false) => return Vec::new(),
            Some(true) => {
                return vec![Violation::new(
                    format!("automountServiceAccountToken is true: the pod gets an API token; {FIX}"),
                    path,
                )];
            }
            None => {}
        }
        let name = w
            .spec
            .service_account_name
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| w.spec.service_account.clone().filter(|n| !n.is_empty()))
            .unwrap_or_else(|| "default".to_string());
        let accounts = match inventory::same_namespace_cached::<ServiceAccount>("ServiceAccount", w.namespace()) {
            Ok(a) => a,
            Err(e) => return vec![Violation::new(format!("cannot read the ServiceAccounts: {e}"), path)],
        };
        let account = accounts.iter().find(|a| a.metadata.name == name);
        if account.and_then(|a| a.automount_service_account_token) == Some(false) {
            return Vec::new();
        }
        let why = match account {
            Some(_) => format!("its ServiceAccount {name:?} does not set it to false either"),
            None => format!("its ServiceAccount {name:?} is not in the checked set"),
        };
        vec![Violation::new(
            format!("automountServiceAccountToken is unset and {why}: the pod gets an API token; {FIX}"),
            path,
        )]
    }
}

palisade_sdk::export_pod_rule!(ServiceAccountToken);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::check_pod;
    use palisade_sdk::inventory::testing;

    fn count(spec: &str, objects: &[&str]) -> usize {
        testing::set(objects);
        let json = format!(r#"{{"kind":"Pod","metadata":{{"name":"p","namespace":"ns"}},"spec":{spec}}}"#);
        check_pod(ServiceAccountToken, &json).unwrap().len()
    }

    #[test]
    fn pod_field_wins_then_the_service_account() {
        let sa_off = r#"{"kind":"ServiceAccount","metadata":{"name":"app","namespace":"ns"},"automountServiceAccountToken":false}"#;
        let sa_on = r#"{"kind":"ServiceAccount","metadata":{"name":"app","namespace":"ns"}}"#;
        assert_eq!(count(r#"{"automountServiceAccountToken":false}"#, &[]), 0);
        assert_eq!(count(r#"{"automountServiceAccountToken":true,"serviceAccountName":"app"}"#, &[sa_off]), 1);
        assert_eq!(count(r#"{"serviceAccountName":"app"}"#, &[sa_off]), 0);
        assert_eq!(count(r#"{"serviceAccountName":"app"}"#, &[sa_on]), 1);
        assert_eq!(count(r#"{"serviceAccountName":"app"}"#, &[]), 1);
        assert_eq!(count(r#"{}"#, &[sa_off]), 1, "the default ServiceAccount is meant, not app");
        let default_off = sa_off.replace(r#""name":"app""#, r#""name":"default""#);
        assert_eq!(count(r#"{}"#, &[&default_off]), 0);
    }

    #[test]
    fn messages_say_where_the_token_comes_from() {
        let message = |spec: &str, objects: &[&str]| {
            testing::set(objects);
            let json = format!(r#"{{"kind":"Pod","metadata":{{"name":"p","namespace":"ns"}},"spec":{spec}}}"#);
            check_pod(ServiceAccountToken, &json).unwrap().remove(0).message
        };
        let sa_on = r#"{"kind":"ServiceAccount","metadata":{"name":"app","namespace":"ns"}}"#;
        assert_eq!(
            message(r#"{"serviceAccountName":"app"}"#, &[sa_on]),
            "automountServiceAccountToken is unset and its ServiceAccount \"app\" does not set it to false either: \
             the pod gets an API token; set spec.automountServiceAccountToken to false unless the pod calls the \
             Kubernetes API"
        );
        assert_eq!(
            message(r#"{"automountServiceAccountToken":true}"#, &[]),
            "automountServiceAccountToken is true: the pod gets an API token; set spec.automountServiceAccountToken \
             to false unless the pod calls the Kubernetes API"
        );
        assert!(message("{}", &[]).starts_with(
            "automountServiceAccountToken is unset and its ServiceAccount \"default\" is not in the checked set: "
        ));
    }
}
