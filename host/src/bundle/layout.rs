//! OCI image layouts (<https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md>):
//! a directory with `oci-layout`, `index.json` and `blobs/sha256/…`, or the
//! same as a tar file, for carrying bundles into networks with no route out.
//! Entries of `index.json` are named by `org.opencontainers.image.ref.name`;
//! signatures travel as entries named `sha256-<hex>.sig`, as cosign tags them.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::content::{CheckLayer, Content, Fetch, check_layer, check_layer_hashed};
use super::{Descriptor, Error, INDEX_MEDIA_TYPE, Index, MAX_BLOB_BYTES, Result, annotations, digest_hex, io_error};

const LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

pub struct Layout {
    path: PathBuf,
    pub index: Index,
    /// Blobs written since the layout was opened.
    blobs: BTreeMap<String, Vec<u8>>,
    /// Where each blob of a tarball lies in it (offset, size): read when asked for.
    tar_blobs: BTreeMap<String, (u64, u64)>,
    /// The tarball those offsets are in, opened once: every blob is read from
    /// this one file, by position, on as many threads as read at once.
    tar_file: Option<std::fs::File>,
    is_tar: bool,
    /// Which layers [`Fetch::fetch_layers`] keeps ([`Layout::keep_only`]); `None`: every one.
    keep: Option<Keep>,
}

/// Whether to keep a layer's bytes once it is checked; see [`Layout::keep_only`].
pub type Keep = std::sync::Arc<dyn Fn(&Descriptor) -> bool + Send + Sync>;

/// How much of a blob is read at a time when it is hashed and not kept.
const PIECE: usize = 128 << 10;

/// Where an unread blob is: an entry of the tarball, or a file of the layout directory.
enum Extent {
    Entry { offset: u64, size: u64 },
    File,
}

/// A signature entry's name for the content it signs.
pub fn signature_tag(digest: &str) -> Result<String> {
    Ok(format!("sha256-{}.sig", digest_hex(digest)?))
}

impl Layout {
    /// An empty layout that [`Layout::save`] writes to `path` (a `.tar` file or a directory).
    pub fn create(path: &Path) -> Layout {
        Layout {
            path: path.to_path_buf(),
            index: Index {
                schema_version: 2,
                media_type: Some(INDEX_MEDIA_TYPE.into()),
                manifests: Vec::new(),
                annotations: None,
            },
            blobs: BTreeMap::new(),
            tar_blobs: BTreeMap::new(),
            tar_file: None,
            is_tar: path.extension().is_some_and(|e| e == "tar"),
            keep: None,
        }
    }

    /// Have [`Fetch::fetch_layers`] keep only the layers `keep` says yes to.
    /// Every other layer is still read in full and checked against its
    /// digest, but hashed a piece at a time as it is read and not kept: its
    /// piece of the content is empty. For a start whose compiled components
    /// are all in the compile cache: the whole bundle is checked without
    /// holding its components in memory. Content read so is for a start
    /// only, never to be saved or pushed.
    pub fn keep_only(&mut self, keep: Keep) {
        self.keep = Some(keep);
    }

    pub fn open(path: &Path) -> Result<Layout> {
        let meta = std::fs::metadata(path).map_err(|e| io_error(path, format!("cannot read the bundle: {e}")))?;
        let mut layout = Layout::create(path);
        let index_bytes = if meta.is_dir() {
            layout.is_tar = false;
            let marker = read_limited(&path.join("oci-layout"), MAX_MARKER_BYTES)
                .map_err(|e| io_error(path, format!("not an OCI image layout (oci-layout: {e})")))?;
            check_marker(path, &String::from_utf8_lossy(&marker))?;
            read_limited(&path.join("index.json"), super::MAX_MANIFEST_BYTES)?
        } else if meta.is_file() {
            layout.is_tar = true;
            let (marker, index, blobs, file) = read_tar(path)?;
            check_marker(
                path,
                &marker.ok_or_else(|| io_error(path, "not an OCI image layout tarball (no oci-layout)"))?,
            )?;
            layout.tar_blobs = blobs;
            layout.tar_file = Some(file);
            index.ok_or_else(|| io_error(path, "no index.json"))?
        } else {
            return Err(io_error(path, "not a bundle: neither a layout directory nor a regular (tar) file"));
        };
        layout.index = serde_json::from_slice(&index_bytes)
            .map_err(|e| io_error(path, format!("index.json is not an OCI image index: {e}")))?;
        Ok(layout)
    }

    /// The entries that are not signatures.
    pub fn bundles(&self) -> Vec<&Descriptor> {
        self.index.manifests.iter().filter(|d| !self.entry_name(d).is_some_and(|n| n.ends_with(".sig"))).collect()
    }

    fn entry_name<'d>(&self, d: &'d Descriptor) -> Option<&'d str> {
        d.annotation(annotations::REF_NAME)
    }

    /// The one bundle (or policy) this layout holds.
    pub fn root(&self) -> Result<Descriptor> {
        match self.bundles().as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(io_error(&self.path, "the layout holds no bundle")),
            many => Err(io_error(
                &self.path,
                format!(
                    "the layout holds {} entries ({}); keep one bundle per layout",
                    many.len(),
                    many.iter().map(|d| self.entry_name(d).unwrap_or(&d.digest)).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    /// The signature entry for `digest`, if the layout carries one.
    pub fn signature_for(&self, digest: &str) -> Result<Option<Descriptor>> {
        let tag = signature_tag(digest)?;
        Ok(self.index.manifests.iter().find(|d| self.entry_name(d) == Some(tag.as_str())).cloned())
    }

    /// Add (or replace) the entry `name` with the content under it.
    pub fn add(&mut self, name: &str, content: &Content) {
        self.index.manifests.retain(|d| d.annotation(annotations::REF_NAME) != Some(name));
        let mut root = content.root.clone();
        root.annotations.get_or_insert_with(BTreeMap::new).insert(annotations::REF_NAME.into(), name.into());
        self.index.manifests.push(root);
        for (descriptor, bytes) in &content.pieces {
            self.blobs.insert(descriptor.digest.clone(), bytes.clone());
        }
    }

    /// Write the layout: a directory gets the new blobs and a new `index.json`,
    /// a tarball is written anew (to a temporary file, then renamed).
    pub fn save(&mut self) -> Result<()> {
        let index = serde_json::to_vec_pretty(&self.index).map_err(|e| Error::Format(e.to_string()))?;
        if self.is_tar {
            // Blobs of the original tarball are copied from it (the file opened
            // with the layout), one at a time.
            // Written beside the file a link names, so the link still names the signed file.
            let target = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
            let tmp = target.with_extension("tar.partial");
            let file = std::fs::File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
            let mut builder = tar::Builder::new(file);
            let mut add = |name: &str, bytes: &[u8]| -> Result<()> {
                let mut header = tar::Header::new_ustar();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(0);
                header.set_entry_type(tar::EntryType::Regular);
                builder.append_data(&mut header, name, bytes).map_err(|e| io_error(&tmp, e))
            };
            add("oci-layout", LAYOUT_FILE.as_bytes())?;
            add("index.json", &index)?;
            for (digest, bytes) in &self.blobs {
                add(&format!("blobs/sha256/{}", digest_hex(digest)?), bytes)?;
            }
            for (digest, &(offset, size)) in &self.tar_blobs {
                if let (false, Some(file)) = (self.blobs.contains_key(digest), self.tar_file.as_ref()) {
                    let entry = Positioned { file, at: offset, end: offset.saturating_add(size) };
                    let bytes = read_entry(entry, &self.path, offset, size)?;
                    add(&format!("blobs/sha256/{}", digest_hex(digest)?), &bytes)?;
                }
            }
            builder.into_inner().and_then(|mut f| std::io::Write::flush(&mut f)).map_err(|e| io_error(&tmp, e))?;
            std::fs::rename(&tmp, &target).map_err(|e| io_error(&target, e))?;
            // Where each blob now lies, should this layout be read again.
            let (_, _, blobs, file) = read_tar(&target)?;
            (self.tar_blobs, self.tar_file) = (blobs, Some(file));
        } else {
            let blobs = self.path.join("blobs").join("sha256");
            std::fs::create_dir_all(&blobs).map_err(|e| io_error(&blobs, e))?;
            std::fs::write(self.path.join("oci-layout"), LAYOUT_FILE).map_err(|e| io_error(&self.path, e))?;
            for (digest, bytes) in &self.blobs {
                let file = blobs.join(digest_hex(digest)?);
                std::fs::write(&file, bytes).map_err(|e| io_error(&file, e))?;
            }
            let file = self.path.join("index.json");
            std::fs::write(&file, index).map_err(|e| io_error(&file, e))?;
        }
        Ok(())
    }
}

impl Fetch for Layout {
    fn fetch(&mut self, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        self.read_blob(descriptor, limit)
    }

    /// Read and checked on as many threads as there are cores, each layer on
    /// one thread (its bytes are still in that core's cache when hashed). A
    /// layer [`Layout::keep_only`] does not keep is checked as `check` (which
    /// is [`check_layer`]) checks one, from its pieces.
    fn fetch_layers(&mut self, layers: &[Descriptor], limit: u64, check: CheckLayer) -> Result<Vec<Vec<u8>>> {
        let this = &*self;
        // The largest first, so that no thread is left hashing a large layer alone.
        let read = crate::parallel::map_largest_first(
            layers,
            |d| d.size,
            |descriptor| {
                if this.keep.as_ref().is_some_and(|keep| !keep(descriptor)) {
                    this.check_blob(descriptor, limit)?;
                    return Ok(Vec::new());
                }
                let bytes = this.read_blob(descriptor, limit)?;
                check(descriptor, &bytes)?;
                Ok(bytes)
            },
        );
        read.into_iter().collect()
    }
}

impl Layout {
    fn read_blob(&self, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        if let Some(bytes) = self.blobs.get(&descriptor.digest) {
            return Ok(bytes.clone());
        }
        let (reader, path, extent) = self.open_blob(descriptor, limit)?;
        match extent {
            Extent::Entry { offset, size } => read_entry(reader, &path, offset, size),
            Extent::File => read_limited_from(reader, &path, limit),
        }
    }

    /// The layer checked against its descriptor as [`check_layer`] checks
    /// it, read a piece at a time into one buffer: nothing of its size is held.
    fn check_blob(&self, descriptor: &Descriptor, limit: u64) -> Result<()> {
        if let Some(bytes) = self.blobs.get(&descriptor.digest) {
            return check_layer(descriptor, bytes);
        }
        let (reader, path, extent) = self.open_blob(descriptor, limit)?;
        let (digest, size) = match extent {
            Extent::Entry { offset, size } => {
                let (digest, read) = hash_pieces(reader, &path)?;
                if read != size {
                    return Err(truncated(&path, offset, size));
                }
                (digest, read)
            }
            Extent::File => {
                let (digest, read) = hash_pieces(reader.take(limit + 1), &path)?;
                if read > limit {
                    return Err(io_error(&path, format!("over the limit of {limit} bytes")));
                }
                (digest, read)
            }
        };
        check_layer_hashed(descriptor, digest, size)
    }

    /// A blob not written since opening, as a reader: the tarball's entry
    /// (read by position from the file opened with the layout) or the
    /// layout directory's file; with the file's path and where the blob lies.
    fn open_blob(&self, descriptor: &Descriptor, limit: u64) -> Result<(Box<dyn Read + '_>, PathBuf, Extent)> {
        if self.is_tar {
            let (Some(&(offset, size)), Some(file)) = (self.tar_blobs.get(&descriptor.digest), self.tar_file.as_ref())
            else {
                return Err(io_error(
                    &self.path,
                    format!("{} is referenced but not in the tarball", descriptor.digest),
                ));
            };
            if size > limit {
                return Err(io_error(&self.path, format!("{}: over the limit of {limit} bytes", descriptor.digest)));
            }
            let entry = Positioned { file, at: offset, end: offset.saturating_add(size) };
            return Ok((Box::new(entry), self.path.clone(), Extent::Entry { offset, size }));
        }
        let path = blob_dir(&self.path)?.join(digest_hex(&descriptor.digest)?);
        Ok((Box::new(open_regular(&path, false)?), path, Extent::File))
    }
}

/// The bytes of a file from `at` to `end`, read by position (`pread`), so
/// that several threads read one open file at once.
struct Positioned<'a> {
    file: &'a std::fs::File,
    at: u64,
    end: u64,
}

impl Read for Positioned<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let left = usize::try_from(self.end.saturating_sub(self.at)).unwrap_or(usize::MAX);
        let want = buffer.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = std::os::unix::fs::FileExt::read_at(self.file, &mut buffer[..want], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

thread_local! {
    /// The buffer [`hash_pieces`] reads into, one a thread (made once, not once a layer).
    static PIECES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `sha256:<hex>` of what `reader` holds, and how many bytes that was, read
/// [`PIECE`] bytes at a time.
fn hash_pieces(mut reader: impl Read, path: &Path) -> Result<(String, u64)> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut total: u64 = 0;
    PIECES.with_borrow_mut(|buffer| {
        buffer.resize(PIECE, 0);
        loop {
            match reader.read(buffer) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    hasher.update(&buffer[..n]);
                    total += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(path, e)),
            }
        }
    })?;
    Ok((format!("sha256:{}", palisade_sigstore::keys::hex(&hasher.finalize())), total))
}

fn check_marker(path: &Path, marker: &str) -> Result<()> {
    let version = serde_json::from_str::<serde_json::Value>(marker)
        .ok()
        .and_then(|v| v.get("imageLayoutVersion").and_then(|v| v.as_str()).map(str::to_string));
    match version.as_deref() {
        Some("1.0.0") => Ok(()),
        other => Err(io_error(path, format!("unsupported OCI image layout version {other:?} (expected 1.0.0)"))),
    }
}

/// `blobs/sha256` of a layout directory, when neither it nor `blobs` is a
/// symbolic link (O_NOFOLLOW guards only a path's last part).
fn blob_dir(layout: &Path) -> Result<PathBuf> {
    let mut dir = layout.to_path_buf();
    for part in ["blobs", "sha256"] {
        dir.push(part);
        let kind = std::fs::symlink_metadata(&dir).map_err(|e| io_error(&dir, e))?.file_type();
        if !kind.is_dir() {
            let what = if kind.is_symlink() { "a symbolic link" } else { "not a directory" };
            return Err(io_error(&dir, format!("{what}; a bundle is read from regular files and directories only")));
        }
    }
    Ok(dir)
}

/// `oci-layout` is one short JSON line.
const MAX_MARKER_BYTES: u64 = 4096;

/// Open a file only if it is a regular file: never a device or a named pipe
/// (opened without blocking, then checked on the open descriptor, so nothing
/// can be swapped in between), and for a file inside a layout never through a
/// symbolic link (`O_NOFOLLOW`). The tarball the user names may be a link.
fn open_regular(path: &Path, follow: bool) -> Result<std::fs::File> {
    let flags = if follow { libc::O_NONBLOCK } else { libc::O_NOFOLLOW | libc::O_NONBLOCK };
    let file = std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            io_error(path, "a symbolic link; a bundle is read from regular files only")
        } else if e.raw_os_error() == Some(libc::ENXIO) {
            // open(2) of a UNIX socket fails so, before its type can be looked at.
            io_error(path, "a socket; a bundle is read from regular files only")
        } else {
            io_error(path, e)
        }
    })?;
    let kind = file.metadata().map_err(|e| io_error(path, e))?.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a named pipe"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(io_error(path, format!("{what}; a bundle is read from regular files only")));
    }
    Ok(file)
}

/// The `size` bytes of a tar entry at `offset`, from `reader` (which ends where the entry ends).
fn read_entry(mut reader: impl Read, path: &Path, offset: u64, size: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(size.min(MAX_BLOB_BYTES) as usize);
    reader.read_to_end(&mut bytes).map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 != size {
        return Err(truncated(path, offset, size));
    }
    Ok(bytes)
}

fn truncated(path: &Path, offset: u64, size: u64) -> Error {
    io_error(path, format!("truncated tar file: an entry of {size} bytes at offset {offset}"))
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    read_limited_from(open_regular(path, false)?, path, limit)
}

fn read_limited_from(file: impl Read, path: &Path, limit: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(io_error(path, format!("over the limit of {limit} bytes")));
    }
    Ok(bytes)
}

type TarParts = (Option<String>, Option<Vec<u8>>, BTreeMap<String, (u64, u64)>, std::fs::File);

/// The layout files of a tarball: `oci-layout` and `index.json` read, blobs
/// only located (read when fetched); anything else in it is ignored, and no
/// path from it ever reaches the file system.
fn read_tar(path: &Path) -> Result<TarParts> {
    let file = open_regular(path, true)?;
    let mut archive = tar::Archive::new(file);
    let (mut marker, mut index, mut blobs) = (None, None, BTreeMap::new());
    let mut total: u64 = 0;
    let not_layout = || io_error(path, "not an OCI image layout: neither a layout directory nor a tar file of one");
    // Seeking past each blob instead of reading it: blobs are read (and
    // hashed) when fetched, so this pass touches the headers only.
    for (n, entry) in archive.entries_with_seek().map_err(|_| not_layout())?.enumerate() {
        // The tar reader's messages quote header bytes, which for a stray
        // file are its text: say what it is instead.
        let mut entry = entry.map_err(|_| {
            if n == 0 { not_layout() } else { io_error(path, format!("damaged tar file (entry {})", n + 1)) }
        })?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = entry.path().map_err(|e| io_error(path, e))?.to_string_lossy().trim_start_matches("./").to_string();
        // The entry's size, a PAX `size` record included (the ustar field alone can say 0).
        let size = entry.size();
        let limit = match name.as_str() {
            "oci-layout" => MAX_MARKER_BYTES,
            "index.json" => super::MAX_MANIFEST_BYTES,
            _ => MAX_BLOB_BYTES,
        };
        if size > limit {
            return Err(io_error(path, format!("{name}: over the limit of {limit} bytes")));
        }
        total += size;
        if total > 16 * MAX_BLOB_BYTES {
            return Err(io_error(path, "the tarball holds more than a bundle can"));
        }
        let mut read = || -> Result<Vec<u8>> {
            let mut bytes = Vec::with_capacity(size as usize);
            (&mut entry).take(limit + 1).read_to_end(&mut bytes).map_err(|e| io_error(path, format!("{name}: {e}")))?;
            if bytes.len() as u64 > limit {
                return Err(io_error(path, format!("{name}: over the limit of {limit} bytes")));
            }
            Ok(bytes)
        };
        match name.as_str() {
            "oci-layout" => marker = Some(String::from_utf8_lossy(&read()?).into_owned()),
            "index.json" => index = Some(read()?),
            _ => {
                if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                    let digest = format!("sha256:{hex}");
                    if digest_hex(&digest).is_ok() {
                        blobs.insert(digest, (entry.raw_file_position(), size));
                    }
                }
            }
        }
    }
    Ok((marker, index, blobs, archive.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_tags() {
        let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
        assert_eq!(signature_tag(&digest).unwrap(), format!("sha256-{}.sig", "0123456789abcdef".repeat(4)));
    }
}
