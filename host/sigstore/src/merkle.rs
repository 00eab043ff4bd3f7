//! Merkle inclusion proofs and signed-note checkpoints.
//!
//! Sources of truth:
//! - RFC 9162 §2.1.1 (hashes: leaf `SHA-256(0x00 || leaf)`, node `SHA-256(0x01 || left || right)`)
//!   and §2.1.3.2 (verifying an inclusion proof), the same tree as RFC 6962;
//! - the checkpoint body, <https://github.com/transparency-dev/formats/blob/main/log/README.md>
//!   and C2SP `tlog-checkpoint.md`: origin line, decimal tree size, base64 root hash, optional
//!   extension lines, each ending in `\n`;
//! - the note envelope, C2SP `signed-note.md` (as `golang.org/x/mod/sumdb/note` reads it): the text,
//!   one blank line, then lines `— <name> <base64(key hash[4] || signature)>`; signatures whose
//!   name or key hash no known key has are ignored, one that matches must verify, and at least
//!   one must;
//! - the key hash Rekor uses, `rekor-tiles/pkg/note/note.go` (`KeyHash`): ECDSA keys take the first
//!   4 bytes of SHA-256 of the DER SubjectPublicKeyInfo (Rekor v1 and v2); Ed25519 keys the note
//!   standard's SHA-256(name || `\n` || 0x01 || 32-byte key); RSA keys
//!   SHA-256(name || `\n` || 0xff || `PKIX-RSA-PKCS#1v1.5` || DER SPKI).
//!
//! Rekor v1 checkpoints name their signer by host (`rekor.sigstore.dev`) but their origin adds the
//! tree id (`rekor.sigstore.dev - 2605736670972794746`) and private deployments use a pod name, so
//! for them (as in `rekor/pkg/util/signed_note.go`) only the key hash selects signatures. Rekor v2
//! (tiles) checkpoints are standard: origin and signer name are the log's host.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use crate::keys::PublicKey;
use crate::{Error, Result, malformed};

/// `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &[u8], right: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root an inclusion proof leads to (RFC 9162 §2.1.3.2) from the leaf's hash at
/// `index` in a tree of `size` leaves.
pub fn root_from_inclusion_proof(index: u64, size: u64, leaf_hash: &[u8; 32], proof: &[[u8; 32]]) -> Result<[u8; 32]> {
    if index >= size {
        return Err(Error::TransparencyLog(format!("leaf index {index} is not below tree size {size}")));
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if s_n == 0 {
            return Err(Error::TransparencyLog("inclusion proof has too many hashes".into()));
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(Error::TransparencyLog("inclusion proof has too few hashes".into()));
    }
    Ok(r)
}

/// Checks that `leaf` is at `index` in the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &[u8], proof: &[[u8; 32]], root: &[u8]) -> Result<()> {
    let computed = root_from_inclusion_proof(index, size, &leaf_hash(leaf), proof)?;
    if computed.as_slice() != root {
        return Err(Error::TransparencyLog("inclusion proof does not lead to the root hash it claims".into()));
    }
    Ok(())
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_hash: [u8; 4],
    pub signature: Vec<u8>,
}

/// A parsed (not yet verified) checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root_hash: Vec<u8>,
    /// Lines after the root hash (Rekor v1: `Timestamp: ...`).
    pub extensions: Vec<String>,
    /// The signed text: every body line with its `\n`.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

const SIG_PREFIX: &str = "\u{2014} ";
/// `golang.org/x/mod/sumdb/note` refuses notes with more signatures than this.
const MAX_SIGNATURES: usize = 100;

impl Checkpoint {
    /// Parses a signed note holding a checkpoint.
    pub fn parse(envelope: &str) -> Result<Checkpoint> {
        let bad = |detail: &str| malformed("checkpoint", detail);
        // The text ends at the first blank line; signatures follow it.
        let split = envelope.find("\n\n").ok_or_else(|| bad("no blank line between the text and the signatures"))?;
        let text = &envelope[..split + 1];
        let sigs = &envelope[split + 2..];
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(bad("control character in the text"));
        }
        let mut lines = text.strip_suffix('\n').unwrap_or(text).split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(bad("empty origin line"));
        }
        let size_line = lines.next().ok_or_else(|| bad("no tree size line"))?;
        if size_line.is_empty()
            || !size_line.bytes().all(|b| b.is_ascii_digit())
            || (size_line.len() > 1 && size_line.starts_with('0'))
        {
            return Err(bad("the tree size line is not a decimal number"));
        }
        let size: u64 = size_line.parse().map_err(|_| bad("the tree size does not fit 64 bits"))?;
        let hash_line = lines.next().ok_or_else(|| bad("no root hash line"))?;
        let root_hash = B64.decode(hash_line).map_err(|_| bad("the root hash line is not base64"))?;
        if root_hash.len() != 32 {
            return Err(bad("the root hash is not 32 bytes"));
        }
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("empty line in the text"));
        }

        if sigs.is_empty() {
            return Err(Error::TransparencyLog("checkpoint has no signature".into()));
        }
        if !sigs.ends_with('\n') {
            return Err(bad("the signatures do not end with a newline"));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            let rest =
                line.strip_prefix(SIG_PREFIX).ok_or_else(|| bad("a signature line does not start with an em dash"))?;
            let (name, b64) = rest.split_once(' ').ok_or_else(|| bad("a signature line has no name"))?;
            if name.is_empty() || name.contains('+') || b64.contains(' ') {
                return Err(bad("malformed signature line"));
            }
            let raw = B64.decode(b64).map_err(|_| bad("a signature is not base64"))?;
            if raw.len() < 5 {
                return Err(bad("a signature is shorter than its key hash"));
            }
            let mut key_hash = [0u8; 4];
            key_hash.copy_from_slice(&raw[..4]);
            signatures.push(NoteSignature { name: name.to_string(), key_hash, signature: raw[4..].to_vec() });
        }
        if signatures.is_empty() {
            return Err(Error::TransparencyLog("checkpoint has no signature".into()));
        }
        if signatures.len() > MAX_SIGNATURES {
            return Err(bad("too many signatures"));
        }
        Ok(Checkpoint { origin: origin.to_string(), size, root_hash, extensions, text: text.to_string(), signatures })
    }
}

/// The 4-byte key hash a note signature by `key` under `name` carries (see the module doc).
pub fn key_hash(name: &str, key: &PublicKey) -> [u8; 4] {
    let der = key.der();
    let sum: [u8; 32] = match key.algorithm() {
        "ed25519" => {
            let raw = &der[der.len().saturating_sub(32)..];
            let mut h = Sha256::new();
            h.update(name.as_bytes());
            h.update(b"\n");
            h.update([1u8]);
            h.update(raw);
            h.finalize().into()
        }
        "rsa" => {
            let mut h = Sha256::new();
            h.update(name.as_bytes());
            h.update(b"\n");
            h.update([0xffu8]);
            h.update(b"PKIX-RSA-PKCS#1v1.5");
            h.update(der);
            h.finalize().into()
        }
        _ => Sha256::digest(der).into(),
    };
    [sum[0], sum[1], sum[2], sum[3]]
}

/// Which signatures of a checkpoint are the log's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer<'a> {
    /// A Rekor v1 log: any signature with the key's hash (the name is not checked).
    KeyOnly,
    /// A standard signed note (Rekor v2): the origin must be this name, and so must the signer's.
    Named(&'a str),
}

/// Verifies the checkpoint's signature by the log's `key` (see [`Signer`]). A signature is the
/// log's when its key hash is the one [`key_hash`] derives, or `trusted_hint` (the first 4 bytes
/// of the trusted root's `checkpointKeyId`, else its `logId`, which protobuf-specs says the key
/// hash is taken from).
pub fn verify_checkpoint(
    checkpoint: &Checkpoint,
    key: &PublicKey,
    signer: Signer<'_>,
    trusted_hint: Option<[u8; 4]>,
) -> Result<()> {
    let name = match signer {
        Signer::Named(name) => {
            if checkpoint.origin != name {
                return Err(Error::TransparencyLog(format!(
                    "checkpoint origin {:?} is not the log's {name:?}",
                    checkpoint.origin
                )));
            }
            Some(name)
        }
        Signer::KeyOnly => None,
    };
    let mut verified = 0;
    for sig in &checkpoint.signatures {
        if let Some(name) = name
            && sig.name != name
        {
            continue;
        }
        if sig.key_hash != key_hash(&sig.name, key) && Some(sig.key_hash) != trusted_hint {
            continue;
        }
        key.verify(checkpoint.text.as_bytes(), &sig.signature)
            .map_err(|_| Error::TransparencyLog(format!("checkpoint signature by {} does not verify", sig.name)))?;
        verified += 1;
    }
    if verified == 0 {
        return Err(Error::TransparencyLog("no checkpoint signature by the log's key".into()));
    }
    Ok(())
}

/// The host of a log's base URL (`https://rekor.sigstore.dev` → `rekor.sigstore.dev`), which
/// Rekor v2 uses as its checkpoint origin.
pub fn origin_of(base_url: &str) -> &str {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_root(leaves: &[Vec<u8>]) -> [u8; 32] {
        // RFC 9162 §2.1.1 MTH, by recursion.
        match leaves.len() {
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = (n as u64).next_power_of_two() as usize / 2;
                let k = if k == n { k / 2 } else { k };
                node_hash(&tree_root(&leaves[..k]), &tree_root(&leaves[k..]))
            }
        }
    }

    fn path(m: usize, leaves: &[Vec<u8>]) -> Vec<[u8; 32]> {
        let n = leaves.len();
        if n == 1 {
            return vec![];
        }
        let k = (n as u64).next_power_of_two() as usize / 2;
        let k = if k == n { k / 2 } else { k };
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(tree_root(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(tree_root(&leaves[..k]));
            p
        }
    }

    #[test]
    fn proofs_of_every_leaf_of_small_trees_verify() {
        for n in 1..20usize {
            let leaves: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; i + 1]).collect();
            let root = tree_root(&leaves);
            for m in 0..n {
                let proof = path(m, &leaves);
                verify_inclusion(m as u64, n as u64, &leaves[m], &proof, &root).unwrap();
                assert!(verify_inclusion(m as u64, n as u64, b"other", &proof, &root).is_err());
                if !proof.is_empty() {
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert!(verify_inclusion(m as u64, n as u64, &leaves[m], &bad, &root).is_err());
                    assert!(verify_inclusion(m as u64, n as u64, &leaves[m], &proof[1..], &root).is_err());
                }
            }
        }
    }

    #[test]
    fn checkpoint_lines() {
        let note = "log.example\n736\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n\u{2014} log.example AAAAAAAA\n";
        let cp = Checkpoint::parse(note).unwrap();
        assert_eq!(cp.origin, "log.example");
        assert_eq!(cp.size, 736);
        assert_eq!(cp.text, "log.example\n736\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n");
        assert_eq!(cp.signatures.len(), 1);
        for bad in [
            "736\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n\u{2014} log.example AAAAAAAA\n",
            "log.example\n736\n\n\u{2014} log.example AAAAAAAA\n",
            "log.example\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n\u{2014} log.example AAAAAAAA\n",
            "log.example\n736\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n",
            "log.example\n736\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n- log.example AAAAAAAA\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn origin_is_the_host() {
        assert_eq!(origin_of("https://log2025-alpha1.rekor.sigstage.dev"), "log2025-alpha1.rekor.sigstage.dev");
        assert_eq!(origin_of("https://rekor.sigstore.dev/api/"), "rekor.sigstore.dev");
    }
}
