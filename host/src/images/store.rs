//! The on-disk cache of fetched signature material, so that an offline run
//! (`palisade check --verify-images --offline`, air-gapped CI) can verify
//! what an earlier online run fetched.
//!
//! Two kinds of file, each named by the sha256 of a key (never by the
//! reference itself):
//! - `materials/<sha256 of "registry/repository@digest">.json`: the
//!   [`Material`] (signatures belong to a digest *in a repository*);
//! - `references/<sha256 of the normalised reference>.json`: the digest a
//!   tag resolved to when it was last fetched.
//!
//! Files are written to a temporary name and renamed into place, and read
//! with a bound. Nothing here is trusted: the verifier checks the material
//! as it would fresh from the registry.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::fetch::{FetchError, Material, parse};
use crate::bundle::digest_hex;

/// The largest cache file read.
pub const MAX_CACHED_BYTES: u64 = 128 << 20;
/// The format of the files; another value is refused (and overwritten by the next save).
const FORMAT: u32 = 1;

pub struct Store {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct SavedMaterial {
    format: u32,
    material: Material,
}

#[derive(Serialize, Deserialize)]
struct SavedReference {
    format: u32,
    reference: String,
    digest: String,
}

/// `registry/repository@digest`: whose signatures a material holds.
fn material_key(reference: &oci_client::Reference, digest: &str) -> String {
    format!("{}/{}@{digest}", reference.registry(), reference.repository())
}

fn file_name(key: &str) -> String {
    format!("{}.json", crate::runtime::sha256_hex(key.as_bytes()))
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn material_path(&self, key: &str) -> PathBuf {
        self.dir.join("materials").join(file_name(key))
    }

    fn reference_path(&self, reference: &str) -> PathBuf {
        self.dir.join("references").join(file_name(reference))
    }

    /// Keep `material`: under its repository and digest, and, when its
    /// reference is a tag, as what that tag resolved to.
    pub fn save(&self, material: &Material) -> std::io::Result<()> {
        let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
        let reference = parse(&material.reference).map_err(|e| invalid(e.to_string()))?;
        digest_hex(&material.digest).map_err(|e| invalid(format!("{}: {e}", material.reference)))?;
        if let Some(digest) = reference.digest()
            && digest != material.digest
        {
            return Err(invalid(format!(
                "{}: the material's digest is {}, not the reference's",
                material.reference, material.digest
            )));
        }
        let json = serde_json::to_vec(&SavedMaterial { format: FORMAT, material: material.clone() })
            .map_err(|e| invalid(format!("{}: {e}", material.reference)))?;
        if json.len() as u64 > MAX_CACHED_BYTES {
            return Err(invalid(format!(
                "{}: its signatures take {} bytes, over the cache's bound of {MAX_CACHED_BYTES}",
                material.reference,
                json.len()
            )));
        }
        write_atomically(&self.material_path(&material_key(&reference, &material.digest)), &json)?;
        if reference.digest().is_none() {
            let normalised = reference.whole();
            let json = serde_json::to_vec(&SavedReference {
                format: FORMAT,
                reference: normalised.clone(),
                digest: material.digest.clone(),
            })
            .map_err(|e| invalid(format!("{normalised}: {e}")))?;
            write_atomically(&self.reference_path(&normalised), &json)?;
        }
        Ok(())
    }

    /// What was saved for `reference` (a tag: what it last resolved to; a
    /// digest: that digest in that repository), with `reference` set to the
    /// normalised one asked for; `None` when nothing was.
    pub fn load(&self, reference: &str) -> Result<Option<Material>, FetchError> {
        let parsed = parse(reference)?;
        let normalised = parsed.whole();
        let digest = match parsed.digest() {
            Some(digest) => digest.to_string(),
            None => {
                let path = self.reference_path(&normalised);
                let Some(saved) = read_json::<SavedReference>(&path)? else {
                    return Ok(None);
                };
                if saved.reference != normalised {
                    return Err(damaged(&path, &format!("it is about {:?}, not {normalised:?}", saved.reference)));
                }
                digest_hex(&saved.digest).map_err(|e| damaged(&path, &e))?;
                saved.digest
            }
        };
        let path = self.material_path(&material_key(&parsed, &digest));
        let Some(saved) = read_json::<SavedMaterial>(&path)? else {
            return Ok(None);
        };
        let mut material = saved.material;
        let same_repository = parse(&material.reference)
            .is_ok_and(|r| r.registry() == parsed.registry() && r.repository() == parsed.repository());
        if material.digest != digest || !same_repository {
            return Err(damaged(
                &path,
                &format!("it holds {}@{}, not {normalised}@{digest}", material.reference, material.digest),
            ));
        }
        material.reference = normalised;
        Ok(Some(material))
    }
}

fn damaged(path: &Path, why: &dyn std::fmt::Display) -> FetchError {
    FetchError::Malformed(format!(
        "{}: the image signature cache entry is damaged ({why}); delete it, or fetch again online",
        path.display()
    ))
}

/// A cache file as `T`, `None` when there is none, an error when it cannot
/// be read, is over [`MAX_CACHED_BYTES`], or is not `T` of this [`FORMAT`].
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, FetchError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(FetchError::Malformed(format!(
                "{}: cannot read the image signature cache: {e}",
                path.display()
            )));
        }
    };
    let mut bytes = Vec::new();
    file.take(MAX_CACHED_BYTES + 1).read_to_end(&mut bytes).map_err(|e| {
        FetchError::Malformed(format!("{}: cannot read the image signature cache: {e}", path.display()))
    })?;
    if bytes.len() as u64 > MAX_CACHED_BYTES {
        return Err(damaged(path, &format!("over {MAX_CACHED_BYTES} bytes")));
    }
    #[derive(Deserialize)]
    struct Format {
        format: u32,
    }
    let format = serde_json::from_slice::<Format>(&bytes).map_err(|e| damaged(path, &e))?.format;
    if format != FORMAT {
        return Err(damaged(path, &format!("format {format}, this palisade reads {FORMAT}")));
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| damaged(path, &e))
}

/// Write to a new temporary file beside `path`, then rename it over `path`:
/// readers see the old file or the new one, never part of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let context =
        |what: &str, p: &Path, e: std::io::Error| std::io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()));
    let dir = path.parent().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{}: no parent directory", path.display()))
    })?;
    std::fs::create_dir_all(dir).map_err(|e| context("cannot create", dir, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    let tmp = dir.join(format!(".tmp-{}-{}-{name}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .map_err(|e| context("cannot write", &tmp, e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| context("cannot rename into", path, e)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::images::fetch::LegacyLayer;

    fn material(reference: &str, digest: &str) -> Material {
        Material {
            reference: reference.into(),
            digest: digest.into(),
            legacy: vec![LegacyLayer {
                payload: b"{\"critical\":{\"type\":\"cosign container image signature\"}}".to_vec(),
                annotations: BTreeMap::from([
                    ("dev.cosignproject.cosign/signature".to_string(), "MEUCIQ==".to_string()),
                    ("dev.sigstore.cosign/certificate".to_string(), "-----BEGIN CERTIFICATE-----".to_string()),
                ]),
            }],
            bundles: vec![b"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\"}".to_vec(), vec![0xff]],
            attestations: Some(vec![LegacyLayer {
                payload: b"{\"payload\":\"\"}".to_vec(),
                annotations: BTreeMap::new(),
            }]),
            problems: Vec::new(),
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("images"));
        let d1 = format!("sha256:{}", "1".repeat(64));
        let d2 = format!("sha256:{}", "2".repeat(64));
        assert_eq!(store.load("nginx"), Ok(None));

        let saved = material("docker.io/library/nginx:latest", &d1);
        store.save(&saved).unwrap();
        // By tag, in any spelling of it.
        assert_eq!(store.load("nginx").unwrap().as_ref(), Some(&saved));
        assert_eq!(store.load("docker.io/library/nginx:latest").unwrap().as_ref(), Some(&saved));
        // By digest: the same material, named as asked.
        let by_digest = store.load(&format!("nginx@{d1}")).unwrap().unwrap();
        assert_eq!(by_digest.reference, format!("docker.io/library/nginx@{d1}"));
        assert_eq!((by_digest.legacy, by_digest.bundles), (saved.legacy.clone(), saved.bundles.clone()));
        // Another tag, another digest, another repository: not there.
        assert_eq!(store.load("nginx:1.27"), Ok(None));
        assert_eq!(store.load(&format!("nginx@{d2}")), Ok(None));
        assert_eq!(store.load(&format!("example.com/nginx@{d1}")), Ok(None));

        // The tag moves: the newest save wins; the old digest stays loadable.
        let moved = material("docker.io/library/nginx:latest", &d2);
        store.save(&moved).unwrap();
        assert_eq!(store.load("nginx").unwrap().map(|m| m.digest), Some(d2.clone()));
        assert!(store.load(&format!("nginx@{d1}")).unwrap().is_some());

        // A digest reference is saved under its digest only.
        let pinned = material(&format!("ghcr.io/org/app@{d1}"), &d1);
        store.save(&pinned).unwrap();
        assert_eq!(store.load(&format!("ghcr.io/org/app@{d1}")).unwrap().as_ref(), Some(&pinned));
        assert_eq!(store.load("ghcr.io/org/app"), Ok(None));

        // File names are digests, never the reference; no temporary files remain.
        for sub in ["materials", "references"] {
            for entry in std::fs::read_dir(store.dir().join(sub)).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                assert!(name.len() == 69 && name.ends_with(".json") && !name.starts_with('.'), "{name}");
            }
        }
    }

    #[test]
    fn refuses_what_it_should() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf());
        let d1 = format!("sha256:{}", "1".repeat(64));
        let d2 = format!("sha256:{}", "2".repeat(64));
        assert!(store.save(&material("nginx:latest", "sha256:abc")).is_err());
        assert!(store.save(&material(&format!("nginx@{d1}"), &d2)).is_err());
        assert!(store.save(&material("Not A Reference", &d1)).is_err());
        assert!(matches!(store.load("a b"), Err(FetchError::InvalidReference(_))));

        let too_big = Material { bundles: vec![vec![0; 97 << 20]], ..material("nginx", &d1) };
        assert!(store.save(&too_big).is_err());

        store.save(&material("docker.io/library/nginx:latest", &d1)).unwrap();
        let reference_file = store.reference_path("docker.io/library/nginx:latest");
        let material_file = store.material_path(&material_key(&parse("nginx").unwrap(), &d1));
        // Over the bound, not JSON, another format, about something else: errors, not used.
        std::fs::write(&material_file, vec![b' '; (MAX_CACHED_BYTES + 1) as usize]).unwrap();
        assert!(matches!(store.load("nginx"), Err(FetchError::Malformed(m)) if m.contains("over")));
        std::fs::write(&material_file, b"{").unwrap();
        assert!(matches!(store.load("nginx"), Err(FetchError::Malformed(_))));
        std::fs::write(&reference_file, br#"{"format":2,"reference":"x","digest":"y"}"#).unwrap();
        assert!(matches!(store.load("nginx"), Err(FetchError::Malformed(m)) if m.contains("format 2")));
        let other = format!(r#"{{"format":1,"reference":"docker.io/library/redis:latest","digest":"{d1}"}}"#);
        std::fs::write(&reference_file, other).unwrap();
        assert!(matches!(store.load("nginx"), Err(FetchError::Malformed(m)) if m.contains("redis")));
    }
}
