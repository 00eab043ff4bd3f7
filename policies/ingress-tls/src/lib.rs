//! Every Ingress terminates TLS for every host it routes.
//!
//! Source: `IngressSpec.tls` and `IngressRule.host` of `k8s.io/api/networking/v1`
//! (<https://kubernetes.io/docs/concepts/services-networking/ingress/#tls>).
//! A TLS entry covers a rule's host when one of its `hosts` equals it, or is a
//! wildcard `*.domain` and the host is exactly one label more than `domain`
//! (RFC 6125 section 6.4.3: the wildcard stands for one whole left-most label).
//! A rule without a host matches every host name and names none to certify;
//! it needs only `spec.tls` to exist (as Polaris' `tlsSettingsMissing` reads it).
//!
//! A TLS entry without `hosts` covers every host: the `IngressTLS.hosts` API
//! documentation says the list "Defaults to the wildcard host setting for the
//! loadbalancer controller fulfilling this Ingress, if left unspecified". An
//! empty list counts as unspecified: the field is `omitempty`, so the API
//! server stores `hosts: []` as absent.

use palisade_sdk::inventory::Header;
use palisade_sdk::{
    Context, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, Rule, SettingsError, Severity, Violation,
};
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct Ingress {
    #[serde(default)]
    spec: Option<Spec>,
}

#[derive(Deserialize, Default)]
struct Spec {
    tls: Option<Vec<Tls>>,
    rules: Option<Vec<IngressRule>>,
}

#[derive(Deserialize, Default)]
struct Tls {
    hosts: Option<Vec<String>>,
}

impl Tls {
    /// Whether this entry covers `host`: every host when it lists none.
    fn covers(&self, host: &str) -> bool {
        match self.hosts.as_deref() {
            None | Some([]) => true,
            Some(hosts) => hosts.iter().any(|p| covers(p, host)),
        }
    }
}

#[derive(Deserialize, Default)]
struct IngressRule {
    host: Option<String>,
}

/// Whether the certificate name `pattern` covers `host` (case-insensitive).
pub fn covers(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    if let Some(domain) = pattern.strip_prefix("*.") {
        return host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && !label.contains('*') && rest == domain);
    }
    pattern == host
}

pub struct IngressTls;

impl Rule for IngressTls {
    type Settings = NoSettings;

    fn metadata() -> Metadata {
        Metadata {
            id: "ingress-tls",
            title: "Ingresses must terminate TLS for every host",
            description: "Fails an Ingress without spec.tls, and every host of spec.rules that no \
                          spec.tls[].hosts entry covers (exact name or a single-label wildcard). A \
                          spec.tls entry without hosts covers every host.",
            rationale: "Traffic to a host without TLS crosses the network in clear text: credentials, \
                        session cookies and personal data can be read and altered in transit, which \
                        regulated environments forbid outright.",
            remediation: "Add a spec.tls entry whose hosts list every host of spec.rules, with a \
                          secretName holding the certificate (or let cert-manager issue it).",
            severity: Severity::High,
            category: "Network",
            applies_to: &["Ingress"],
            reads_kinds: &[],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/concepts/services-networking/ingress/#tls",
                "https://www.rfc-editor.org/rfc/rfc6125#section-6.4.3",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(IngressTls)
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        let header = Header::read(object)?;
        if header.kind != "Ingress" {
            return Ok(Vec::new());
        }
        let ingress: Ingress = serde_json::from_str(object).map_err(|e| format!("cannot read the Ingress: {e}"))?;
        let spec = ingress.spec.unwrap_or_default();
        let tls = spec.tls.unwrap_or_default();
        if tls.is_empty() {
            return Ok(vec![Violation::new(
                format!(
                    "Ingress {:?} has no spec.tls: it serves plain HTTP; add a spec.tls entry listing its hosts, \
                     with a secretName holding the certificate",
                    header.metadata.name
                ),
                "/spec/tls",
            )]);
        }
        let mut out = Vec::new();
        for (i, rule) in spec.rules.unwrap_or_default().iter().enumerate() {
            let Some(host) = rule.host.as_deref().filter(|h| !h.is_empty()) else { continue };
            if !tls.iter().any(|t| t.covers(host)) {
                out.push(Violation::new(
                    format!(
                        "host {host:?} is not covered by any spec.tls entry: it is served over plain HTTP; \
                         add it to the hosts of a spec.tls entry"
                    ),
                    format!("/spec/rules/{i}/host"),
                ));
            }
        }
        Ok(out)
    }
}

palisade_sdk::export_rule!(IngressTls);

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(spec: &str) -> Vec<String> {
        let json = format!(r#"{{"kind":"Ingress","metadata":{{"name":"i"}},"spec":{spec}}}"#);
        IngressTls.evaluate(&json, &Context::default()).unwrap().into_iter().map(|v| v.path).collect()
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(covers("*.example.com", "www.example.com"));
        assert!(covers("*.Example.com", "WWW.example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(covers("example.com", "example.com"));
    }

    #[test]
    fn messages_say_what_to_add() {
        let messages = |spec: &str| -> Vec<String> {
            let json = format!(r#"{{"kind":"Ingress","metadata":{{"name":"i"}},"spec":{spec}}}"#);
            IngressTls.evaluate(&json, &Context::default()).unwrap().into_iter().map(|v| v.message).collect()
        };
        assert_eq!(
            messages(r#"{"rules":[{"host":"a.example.com"}]}"#),
            ["Ingress \"i\" has no spec.tls: it serves plain HTTP; add a spec.tls entry listing its hosts, with a \
              secretName holding the certificate"]
        );
        assert_eq!(
            messages(r#"{"tls":[{"hosts":["a.example.com"]}],"rules":[{"host":"b.example.com"}]}"#),
            ["host \"b.example.com\" is not covered by any spec.tls entry: it is served over plain HTTP; add it to \
              the hosts of a spec.tls entry"]
        );
    }

    #[test]
    fn hosts_must_be_covered() {
        assert_eq!(eval(r#"{"rules":[{"host":"a.example.com"}]}"#), ["/spec/tls"]);
        assert!(eval(r#"{"tls":[{"hosts":["*.example.com"]}],"rules":[{"host":"a.example.com"}]}"#).is_empty());
        assert_eq!(
            eval(
                r#"{"tls":[{"hosts":["a.example.com"]}],"rules":[{"host":"a.example.com"},{"host":"b.example.com"},{}]}"#
            ),
            ["/spec/rules/1/host"]
        );
        assert!(eval(r#"{"tls":[{"secretName":"default"}],"rules":[{}]}"#).is_empty());
        assert!(eval(r#"{"tls":[{"hosts":["example.com"]}],"rules":[{"http":{}}]}"#).is_empty());
    }

    #[test]
    fn a_tls_entry_without_hosts_covers_every_host() {
        let rules = r#""rules":[{"host":"a.example.com"},{"host":"b.other.org"},{}]"#;
        assert!(eval(&format!(r#"{{"tls":[{{"secretName":"wildcard"}}],{rules}}}"#)).is_empty());
        assert!(eval(&format!(r#"{{"tls":[{{"hosts":null,"secretName":"wildcard"}}],{rules}}}"#)).is_empty());
        assert!(eval(&format!(r#"{{"tls":[{{"hosts":[],"secretName":"wildcard"}}],{rules}}}"#)).is_empty());
        assert!(
            eval(&format!(r#"{{"tls":[{{"hosts":["a.example.com"]}},{{"secretName":"default"}}],{rules}}}"#))
                .is_empty()
        );
        assert_eq!(
            eval(&format!(r#"{{"tls":[{{"hosts":["a.example.com"],"secretName":"a"}}],{rules}}}"#)),
            ["/spec/rules/1/host"],
            "an entry that lists hosts covers only those"
        );
    }
}
