//! Every image is pinned by a sha256 digest.
//!
//! Source: the image reference grammar of `github.com/distribution/reference`
//! (<https://kubernetes.io/docs/concepts/containers/images/#image-names>);
//! Kyverno `require-image-digest` (other/). Every container.

use palisade_sdk::image::ImageRef;
use palisade_sdk::{
    Context, Fields, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, PodRule, SettingsError, Severity, Violation,
    Workload,
};

pub struct ImageDigest;

impl PodRule for ImageDigest {
    type Settings = NoSettings;

    const READS: Fields = Fields::CONTAINERS;

    fn metadata() -> Metadata {
        Metadata {
            id: "image-digest",
            title: "Images should be pinned by digest",
            description: "Reports a container whose image is not pinned with @sha256:<64 hex digits>.",
            rationale: "Tags are mutable: the same tag can point at different content tomorrow. A digest \
                        names exactly the bytes that were scanned, signed and approved.",
            remediation: "Reference images as name@sha256:<digest> (a tag may stay for readability: \
                          name:1.2@sha256:...). Tools such as crane digest or Renovate keep digests current.",
            severity: Severity::Low,
            category: "Images",
            applies_to: &palisade_sdk::POD_KINDS,
            reads_kinds: &[],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &["https://kubernetes.io/docs/concepts/containers/images/#image-names"],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(ImageDigest)
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        w.containers()
            .filter_map(|c| {
                let image = &c.container.image;
                let r = ImageRef::parse(image);
                if r.has_sha256_digest() {
                    return None;
                }
                let fix = match r.digest {
                    None => format!("pin it by digest, as in {image}@sha256:<digest>"),
                    Some(_) => "pin it by its full sha256 digest of 64 hex digits".to_string(),
                };
                Some(Violation::new(
                    format!(
                        "container {:?} uses image {image:?} without a sha256 digest: what it runs can change \
                         under the same reference; {fix}",
                        c.name()
                    ),
                    c.field("image"),
                ))
            })
            .collect()
    }
}

palisade_sdk::export_pod_rule!(ImageDigest);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::check_pod;

    #[test]
    fn only_full_sha256_digests_pass() {
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let v = check_pod(
            ImageDigest,
            &format!(
                r#"{{"kind":"Pod","spec":{{"containers":[{{"name":"a","image":"nginx:1.2@{digest}"}},{{"name":"b","image":"nginx:1.2"}},{{"name":"c","image":"nginx@sha256:12"}}]}}}}"#
            ),
        )
        .unwrap();
        let names: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(names, ["/spec/containers/1/image", "/spec/containers/2/image"]);
        let messages: Vec<_> = v.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "container \"b\" uses image \"nginx:1.2\" without a sha256 digest: what it runs can change under the \
                 same reference; pin it by digest, as in nginx:1.2@sha256:<digest>",
                "container \"c\" uses image \"nginx@sha256:12\" without a sha256 digest: what it runs can change under \
                 the same reference; pin it by its full sha256 digest of 64 hex digits",
            ]
        );
    }
}
