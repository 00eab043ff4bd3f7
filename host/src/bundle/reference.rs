//! Where a bundle is: `oci://REGISTRY/REPOSITORY:TAG`, `oci://…@sha256:…`, or a
//! local OCI image layout (a directory, or a `.tar` of one).

use std::path::PathBuf;

use super::{Error, Result};

#[derive(Debug, Clone)]
pub enum Location {
    Registry(oci_client::Reference),
    Layout(PathBuf),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Registry(r) => write!(f, "oci://{}", r.whole()),
            Location::Layout(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Read a bundle reference as the commands take it.
pub fn parse(text: &str) -> Result<Location> {
    if let Some(rest) = text.strip_prefix("oci://") {
        let reference: oci_client::Reference = rest.parse().map_err(|e| {
            Error::Format(format!("{text:?} is not a registry reference (oci://HOST/REPO:TAG or @sha256:…): {e}"))
        })?;
        // Without a host the parser falls back to Docker Hub; a policy
        // reference should say where it is.
        let host = rest.split('/').next().unwrap_or_default();
        if !rest.contains('/') || !(host.contains('.') || host.contains(':') || host == "localhost") {
            return Err(Error::Format(format!("{text:?}: name the registry host (oci://registry.example.com/{rest})")));
        }
        if let Some(digest) = reference.digest() {
            super::digest_hex(digest)?;
        }
        return Ok(Location::Registry(reference));
    }
    if text.contains("://") {
        return Err(Error::Format(format!(
            "{text:?}: unknown scheme (use oci://HOST/REPO:TAG, or a path to an OCI layout directory or .tar)"
        )));
    }
    Ok(Location::Layout(PathBuf::from(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let Ok(Location::Registry(r)) = parse("oci://127.0.0.1:5000/policies/hardened:1.0.0") else { panic!() };
        assert_eq!((r.registry(), r.repository(), r.tag()), ("127.0.0.1:5000", "policies/hardened", Some("1.0.0")));
        let digest = format!("sha256:{}", "a".repeat(64));
        let Ok(Location::Registry(r)) = parse(&format!("oci://registry.example.com/p@{digest}")) else { panic!() };
        assert_eq!(r.digest(), Some(digest.as_str()));
        assert!(parse("oci://hardened:1.0").is_err());
        assert!(parse("https://example.com/x").is_err());
        assert!(matches!(parse("bundle.tar"), Ok(Location::Layout(_))));
    }
}
