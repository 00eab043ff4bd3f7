//! Every image names an explicit tag other than `latest`, or a digest.
//!
//! Source: the image reference grammar of `github.com/distribution/reference`;
//! without a tag the runtime pulls `latest`
//! (<https://kubernetes.io/docs/concepts/containers/images/#image-names>).
//! kube-score `container-image-tag`, Polaris `tagNotSpecified`, Kyverno
//! `disallow-latest-tag`. Every container, init and ephemeral included.

use palisade_sdk::image::ImageRef;
use palisade_sdk::{
    Context, Fields, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, PodRule, SettingsError, Severity, Violation,
    Workload,
};

pub struct ImageTag;

impl PodRule for ImageTag {
    type Settings = NoSettings;

    const READS: Fields = Fields::CONTAINERS;

    fn metadata() -> Metadata {
        Metadata {
            id: "image-tag",
            title: "Images must have an explicit tag other than latest",
            description: "Fails a pod with a container whose image has no tag or the tag `latest`, unless it \
                          is pinned by a digest.",
            rationale: "A missing or `latest` tag means the image that runs depends on when the node \
                        pulled it: rollbacks do not roll back, nodes run different code, and a \
                        compromised upstream push reaches production unreviewed.",
            remediation: "Use a versioned tag (nginx:1.27.3) or, better, pin the digest \
                          (nginx@sha256:...).",
            severity: Severity::Medium,
            category: "Images",
            applies_to: &palisade_sdk::POD_KINDS,
            reads_kinds: &[],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &["https://kubernetes.io/docs/concepts/containers/images/#image-names"],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(ImageTag)
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        let mut out = Vec::new();
        for c in w.containers() {
            let image = &c.container.image;
            let r = ImageRef::parse(image);
            if r.digest.is_some() {
                continue;
            }
            match r.tag.as_deref() {
                None | Some("") => out.push(Violation::new(
                    format!(
                        "container {:?} uses image {image:?} without a tag, so it pulls latest: each pull may get \
                         other content; set a version tag or a digest",
                        c.name()
                    ),
                    c.field("image"),
                )),
                Some("latest") => out.push(Violation::new(
                    format!(
                        "container {:?} uses image {image:?} with the tag latest: each pull may get other content; \
                         set a version tag or a digest",
                        c.name()
                    ),
                    c.field("image"),
                )),
                Some(_) => {}
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(ImageTag);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::check_pod;

    #[test]
    fn tags() {
        let v = check_pod(
            ImageTag,
            r#"{"kind":"Pod","spec":{"initContainers":[{"name":"i","image":"busybox"}],"containers":[
                {"name":"a","image":"nginx:latest"},{"name":"b","image":"nginx:1.27"},
                {"name":"c","image":"localhost:5000/app"},{"name":"d","image":"app@sha256:abc"}]}}"#,
        )
        .unwrap();
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/initContainers/0/image", "/spec/containers/0/image", "/spec/containers/2/image"]);
        assert_eq!(
            v[0].message,
            "container \"i\" uses image \"busybox\" without a tag, so it pulls latest: each pull may get other \
             content; set a version tag or a digest"
        );
        assert_eq!(
            v[1].message,
            "container \"a\" uses image \"nginx:latest\" with the tag latest: each pull may get other content; \
             set a version tag or a digest"
        );
    }
}
