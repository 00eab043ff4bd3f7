//! Every image comes from an allowed registry or repository prefix.
//!
//! Source: the image reference grammar of `github.com/distribution/reference`
//! (Docker Hub is the registry of a name without one, and `library/` the
//! repository of an official image); Kyverno `restrict-image-registries`.
//! With no allow-list the rule has nothing to enforce: it reports nothing and
//! says so, and `palisade policies` shows it as unconfigured.

use palisade_sdk::image::ImageRef;
use palisade_sdk::{Context, Fields, HARDENED, Metadata, PodRule, SettingsError, Severity, Violation, Workload};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub allowed: Vec<String>,
}

pub struct ImageRegistry {
    allowed: Vec<String>,
}

impl ImageRegistry {
    /// An entry allows an image when it is the image's registry, or a prefix
    /// of `registry/repository` that ends at a path boundary; entries are read
    /// as written and also with Docker Hub's defaults (`nginx` ≡
    /// `docker.io/library/nginx`).
    fn allows(&self, image: &str) -> bool {
        let r = ImageRef::parse(image);
        let full = r.full_name();
        self.allowed.iter().any(|entry| {
            let entry = entry.trim_end_matches('/');
            let normalised = if entry.contains('.') || entry.contains(':') || entry == "localhost" {
                entry.to_string()
            } else {
                ImageRef::parse(entry).full_name()
            };
            [entry, normalised.as_str()].iter().any(|prefix| {
                full == *prefix
                    || full.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
                    || image == *prefix
                    || image.strip_prefix(prefix).is_some_and(|rest| rest.starts_with(['/', ':', '@']))
            })
        })
    }
}

impl PodRule for ImageRegistry {
    type Settings = Settings;

    const READS: Fields = Fields::CONTAINERS;

    fn metadata() -> Metadata {
        Metadata {
            id: "image-registry",
            title: "Images must come from an allowed registry",
            description: "Fails a pod with a container whose image is not under one of the `allowed` \
                          registries or repository prefixes. Reports nothing until `allowed` is set.",
            rationale: "Images from arbitrary registries bypass the organisation's scanning, signing and \
                        mirroring; a typo-squatted or compromised public image then runs with the \
                        workload's privileges.",
            remediation: "Pull the image through an approved registry or mirror (for example \
                          registry.example.com/mirror/nginx), or add the registry to `allowed` after review.",
            severity: Severity::High,
            category: "Images",
            applies_to: &palisade_sdk::POD_KINDS,
            reads_kinds: &[],
            settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{
                "allowed":{"type":"array","items":{"type":"string","minLength":1},
                  "description":"Registries (registry.example.com) or repository prefixes (registry.example.com/team, docker.io/library)."}}}"#,
            references: &["https://kubernetes.io/docs/concepts/containers/images/#image-names"],
            profiles: HARDENED,
        }
    }

    fn configure(s: Settings) -> Result<Self, SettingsError> {
        if let Some(i) = s.allowed.iter().position(|a| a.trim().is_empty()) {
            return Err(SettingsError::new(format!("/allowed/{i}"), "an allowed registry cannot be empty"));
        }
        Ok(ImageRegistry { allowed: s.allowed })
    }

    fn inactive_reason(&self) -> Option<String> {
        self.allowed.is_empty().then(|| "unconfigured: no `allowed` registries set".to_string())
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        if self.allowed.is_empty() {
            return Vec::new();
        }
        w.containers()
            .filter(|c| !self.allows(&c.container.image))
            .map(|c| {
                Violation::new(
                    format!(
                        "container {:?} uses image {:?}, which is not from an allowed registry; \
                         use an image from one of: {}",
                        c.name(),
                        c.container.image,
                        self.allowed.join(", ")
                    ),
                    c.field("image"),
                )
            })
            .collect()
    }
}

palisade_sdk::export_pod_rule!(ImageRegistry);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::{PodRule, check_pod, configure_pod};

    fn images(rule: ImageRegistry, images: &[&str]) -> Vec<usize> {
        let containers: Vec<String> =
            images.iter().enumerate().map(|(i, im)| format!(r#"{{"name":"c{i}","image":"{im}"}}"#)).collect();
        let pod = format!(r#"{{"kind":"Pod","spec":{{"containers":[{}]}}}}"#, containers.join(","));
        check_pod(rule, &pod)
            .unwrap()
            .iter()
            .map(|v| v.path.trim_start_matches("/spec/containers/").trim_end_matches("/image").parse().unwrap())
            .collect()
    }

    #[test]
    fn unconfigured_reports_nothing_and_says_so() {
        let rule = configure_pod::<ImageRegistry>("{}").unwrap();
        assert!(rule.inactive_reason().is_some());
        assert!(images(rule, &["evil.example/x:1"]).is_empty());
    }

    #[test]
    fn registry_and_prefix_boundaries() {
        let rule =
            configure_pod::<ImageRegistry>(r#"{"allowed":["registry.example.com","ghcr.io/acme/","nginx"]}"#).unwrap();
        assert!(rule.inactive_reason().is_none());
        let bad = images(
            rule,
            &[
                "registry.example.com/team/app:1",     // 0 ok
                "registry.example.com.evil.io/app:1",  // 1 not the same host
                "ghcr.io/acme/tool:2",                 // 2 ok
                "ghcr.io/acmecorp/tool:2",             // 3 not a path boundary
                "nginx:1.27",                          // 4 ok (docker.io/library/nginx)
                "docker.io/library/nginx@sha256:0000", // 5 ok
                "redis:7",                             // 6 not allowed
            ],
        );
        assert_eq!(bad, [1, 3, 6]);
        let rule = configure_pod::<ImageRegistry>(r#"{"allowed":["registry.example.com","ghcr.io/acme/"]}"#).unwrap();
        let v = check_pod(rule, r#"{"kind":"Pod","spec":{"containers":[{"name":"a","image":"redis:7"}]}}"#).unwrap();
        assert_eq!(
            v[0].message,
            "container \"a\" uses image \"redis:7\", which is not from an allowed registry; use an image from one \
             of: registry.example.com, ghcr.io/acme/"
        );
        assert!(configure_pod::<ImageRegistry>(r#"{"allowed":[""]}"#).is_err());
    }
}
