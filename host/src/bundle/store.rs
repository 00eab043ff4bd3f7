//! The local content-addressed cache of pulled content
//! (`<cache>/oci/blobs/sha256/<hex>`), checked against its digest on every read.
//! It also remembers which signature manifest was seen for a digest, so a
//! digest reference can be verified with no network at all.

use std::path::{Path, PathBuf};

use super::content::Fetch;
use super::registry::Registry;
use super::{Descriptor, Error, Result, check_digest, digest_hex, io_error};

pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    /// `<palisade cache>/oci`, when there is a cache directory at all.
    pub fn default_location() -> Option<Store> {
        crate::runtime::default_cache_dir().map(|dir| Store::new(dir.join("oci")))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.dir.join("blobs").join("sha256").join(digest_hex(digest)?))
    }

    /// The cached bytes, if present. A file that no longer matches its digest
    /// is removed and reported: it is never used.
    pub fn read(&self, descriptor: &Descriptor) -> Result<Option<Vec<u8>>> {
        let path = self.blob_path(&descriptor.digest)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, e)),
        };
        if let Err(e) = check_digest(&format!("cached {}", path.display()), descriptor, &bytes) {
            let _ = std::fs::remove_file(&path);
            return Err(Error::Format(format!(
                "{e}; the cache entry was tampered with or damaged and has been removed (it is fetched again on the \
                 next run that can reach the registry)"
            )));
        }
        Ok(Some(bytes))
    }

    pub fn write(&self, descriptor: &Descriptor, bytes: &[u8]) -> Result<()> {
        let path = self.blob_path(&descriptor.digest)?;
        write_atomically(&path, bytes)
    }

    fn signature_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.dir.join("signatures").join(format!("sha256-{}.json", digest_hex(digest)?)))
    }

    /// Remember the signature manifest last seen for `digest`.
    pub fn remember_signature(&self, digest: &str, signature: &Descriptor) -> Result<()> {
        let path = self.signature_path(digest)?;
        let json = serde_json::to_vec(signature).map_err(|e| Error::Format(e.to_string()))?;
        write_atomically(&path, &json)
    }

    pub fn signature(&self, digest: &str) -> Result<Option<Descriptor>> {
        let path = self.signature_path(digest)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path, e)),
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().ok_or_else(|| io_error(path, "no parent directory"))?;
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let tmp =
        dir.join(format!(".tmp-{}-{}", std::process::id(), path.file_name().and_then(|n| n.to_str()).unwrap_or("x")));
    std::fs::write(&tmp, bytes).map_err(|e| io_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

/// Content through the cache: what is cached is read from it, the rest
/// from the registry (when there is one) and then cached.
pub struct Cached<'a> {
    pub store: Option<&'a Store>,
    pub remote: Option<&'a mut Registry>,
}

impl Fetch for Cached<'_> {
    /// Cache reads and registry fetches are both checked here, before the
    /// bytes are used or cached.
    fn checks_digests(&self) -> bool {
        true
    }

    fn fetch(&mut self, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        if let Some(store) = self.store
            && let Some(bytes) = store.read(descriptor)?
        {
            return Ok(bytes);
        }
        let Some(remote) = self.remote.as_deref_mut() else {
            return Err(Error::NotCached(descriptor.digest.clone()));
        };
        let bytes = remote.fetch(descriptor, limit)?;
        check_digest(&format!("{} from the registry", descriptor.digest), descriptor, &bytes)?;
        if let Some(store) = self.store {
            store.write(descriptor, &bytes)?;
        }
        Ok(bytes)
    }
}
