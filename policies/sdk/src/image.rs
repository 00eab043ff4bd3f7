//! Container image references, as the container runtime reads them
//! (`github.com/distribution/reference`, with Docker Hub as the default registry).

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (with port), `docker.io` when none is written.
    pub registry: String,
    /// Repository path, `library/` added for official Docker Hub images.
    pub repository: String,
    pub tag: Option<String>,
    /// `algorithm:hex`, e.g. `sha256:…`.
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(image: &str) -> ImageRef {
        let (name, digest) = match image.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (image, None),
        };
        // A tag follows the last `:` after the last `/` (a `:` before it is a registry port).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(name[last_slash + i + 1..].to_string())),
            None => (name, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let repository = if registry == "docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        ImageRef { registry, repository, tag, digest }
    }

    /// `registry/repository`, e.g. `docker.io/library/nginx`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Pinned by a sha256 digest.
    pub fn has_sha256_digest(&self) -> bool {
        self.digest.as_deref().is_some_and(|d| {
            d.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = ImageRef::parse("nginx");
        assert_eq!((r.full_name(), r.tag, r.digest), ("docker.io/library/nginx".into(), None, None));
        let r = ImageRef::parse("registry.example.com:5000/team/app:1.2");
        assert_eq!(r.registry, "registry.example.com:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        let r = ImageRef::parse("localhost:5000/app");
        assert_eq!((r.registry.as_str(), r.tag), ("localhost:5000", None));
        let r =
            ImageRef::parse("bitnami/redis:7@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        assert_eq!(r.full_name(), "docker.io/bitnami/redis");
        assert_eq!(r.tag.as_deref(), Some("7"));
        assert!(r.has_sha256_digest());
        assert!(!ImageRef::parse("a@sha256:short").has_sha256_digest());
    }
}
