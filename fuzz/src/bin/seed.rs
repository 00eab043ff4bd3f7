//! Seed corpora for the fuzz targets, made from the shared test corpus:
//! `cargo run --release --bin seed -- ../../shared/corpus corpus`.
//! `documents` gets manifest files (up to 64 KiB) and hand-made hostile
//! inputs; the decoders get their wire formats wrapped around real objects.
//! The Sigstore targets get the corpus's bundles, cosign signatures (stored and
//! split forms), and the checkpoints, certificates, keys, trust roots, DSSE
//! envelopes and timestamps found in its files and inside its bundles.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use palisade_fuzz::documents::{Limits, read_documents};
use palisade_fuzz::sigstore::{CONTAINERS_MAGIC, FIXTURES, legacy_signature, split_form};
use serde_json::{Value, json};

const MAX_SEED: u64 = 64 << 10;
const MAX_OBJECTS: usize = 400;

/// `input.reads` answers for the `view` seeds (one path a line), like the SDK's.
const VIEW_PATHS: [&str; 4] = [
    "/kind\n/metadata/name\n/spec/containers/*/securityContext\n/spec/template/spec/containers/*/image",
    "/kind\n/metadata/labels\n/spec/template\n/spec/*/metadata/*",
    "",
    "/*/*/*\n/spec/template/spec/volumes/*/name\n/data\n/rules/*/verbs",
];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            walk(&path, out);
        } else if kind.is_file()
            && matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
            && entry.metadata().is_ok_and(|m| m.len() <= MAX_SEED)
        {
            out.push(path);
        }
    }
}

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: nginx\n    securityContext:\n      privileged: true\n";

fn hostile() -> Vec<(&'static str, String)> {
    vec![
        ("ls-after-kind", POD.replacen("kind: Pod\n", "kind: Pod\u{2028}", 1)),
        ("ps-after-kind", POD.replacen("kind: Pod\n", "kind: Pod\u{2029}", 1)),
        ("nel-everywhere", POD.replace('\n', "\u{85}")),
        ("cr-only", POD.replace('\n', "\r")),
        ("cr-only-comment", format!("# c\r{}", POD.replace('\n', "\r"))),
        ("cr-only-directive", format!("%YAML 1.2\r---\r{}", POD.replace('\n', "\r"))),
        ("crlf", POD.replace('\n', "\r\n")),
        (
            "list-in-list",
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  - apiVersion: v1\n    kind: Pod\n    metadata: {name: p}\n    spec: {containers: [{name: c, image: x, securityContext: {privileged: true}}]}\n".into(),
        ),
        ("kind-space", POD.replacen("kind: Pod", "kind: \"Pod \"", 1)),
        ("anchors", "a: &a {x: 1}\nb: *a\nc:\n  <<: *a\n".into()),
        ("multi", format!("{POD}---\n{POD}--- # c\n{POD}...\n")),
        ("json", "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"}}".into()),
        ("bom", format!("\u{feff}{POD}")),
    ]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    if let Err(e) = std::fs::write(&path, bytes) {
        eprintln!("seed: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, corpus, out] = args.as_slice() else {
        eprintln!("usage: seed CORPUS_DIR OUT_DIR");
        std::process::exit(2);
    };
    let out = PathBuf::from(out);
    let dirs =
        ["documents", "admission_review", "provider_request", "kyverno_call", "view", "json_eq"].map(|d| out.join(d));
    for d in &dirs {
        if let Err(e) = std::fs::create_dir_all(d) {
            eprintln!("seed: cannot create {}: {e}", d.display());
            std::process::exit(1);
        }
    }
    let mut files = Vec::new();
    for sub in ["real-world", "kube-score", "polaris", "kyverno", "kubeaudit", "istio"] {
        walk(&Path::new(corpus).join(sub), &mut files);
    }
    files.sort();
    let mut objects: Vec<Value> = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let Ok(bytes) = std::fs::read(file) else { continue };
        write(&dirs[0], &format!("corpus-{n:05}"), &bytes);
        if objects.len() < MAX_OBJECTS
            && let Ok(text) = std::str::from_utf8(&bytes)
        {
            for doc in read_documents(text, &Limits::default()) {
                if let Ok(parsed) = doc.content
                    && parsed.value.get("kind").is_some()
                {
                    objects.push(parsed.value);
                }
            }
        }
    }
    for (name, text) in hostile() {
        write(&dirs[0], &format!("hostile-{name}"), text.as_bytes());
    }
    objects.truncate(MAX_OBJECTS);
    let ops = ["CREATE", "UPDATE", "DELETE", "CONNECT", "create", ""];
    for (n, object) in objects.iter().enumerate() {
        let mut bare = object.clone();
        if n % 5 == 0
            && let Some(map) = bare.as_object_mut()
        {
            map.remove("kind");
        }
        let review = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": format!("u{n}"), "operation": ops[n % ops.len()],
                "kind": {"group": "", "version": "v1", "kind": object["kind"]},
                "namespace": "default", "object": bare, "oldObject": if n % 3 == 0 { object.clone() } else { Value::Null },
                "userInfo": {"username": "u", "uid": "1", "groups": ["g"]},
            }
        });
        write(&dirs[1], &format!("review-{n:04}"), review.to_string().as_bytes());
        let provider = json!({
            "apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
            "request": {"keys": [object.to_string(), bare.to_string(), "not json", 3]}
        });
        write(&dirs[2], &format!("provider-{n:04}"), provider.to_string().as_bytes());
        let call = json!({"object": object, "operation": ops[n % ops.len()], "oldObject": Value::Null});
        write(&dirs[3], &format!("kyverno-{n:04}"), call.to_string().as_bytes());
        let paths = VIEW_PATHS[n % VIEW_PATHS.len()];
        write(&dirs[4], &format!("view-{n:04}"), format!("{paths}\0{object}").as_bytes());
    }
    // Each container's probes, two by two (as liveness-probe compares them).
    let mut probes = Vec::new();
    for object in &objects {
        probes_in(object, &mut probes);
    }
    for (n, pair) in probes.windows(2).enumerate() {
        write(&dirs[5], &format!("probes-{n:04}"), format!("{}\0{}", pair[0], pair[1]).as_bytes());
    }
    println!(
        "seed: {} manifest files, {} hostile inputs, {} objects wrapped for the decoders",
        files.len(),
        hostile().len(),
        objects.len()
    );
    seed_sigstore(&Path::new(corpus).join("sigstore"), &out);
}

/// The values of every `livenessProbe`, `readinessProbe` and `startupProbe` in `value`.
fn probes_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key.ends_with("Probe") {
                    out.push(v.to_string());
                }
                probes_in(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| probes_in(v, out)),
        _ => {}
    }
}

/// One target's seeds, each written once (by content).
struct Seeds {
    dir: PathBuf,
    seen: HashSet<Vec<u8>>,
}

impl Seeds {
    fn new(dir: PathBuf) -> Seeds {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("seed: cannot create {}: {e}", dir.display());
            std::process::exit(1);
        }
        Seeds { dir, seen: HashSet::new() }
    }

    fn add(&mut self, prefix: &str, bytes: &[u8]) {
        if bytes.is_empty() || bytes.len() as u64 > MAX_SEED || !self.seen.insert(bytes.to_vec()) {
            return;
        }
        write(&self.dir, &format!("{prefix}-{:05}", self.seen.len()), bytes);
    }
}

/// `(kind, [(role, path)])` of each line of `cases.tsv`.
fn sigstore_cases(dir: &Path) -> Vec<(String, Vec<(String, String)>)> {
    let Ok(text) = std::fs::read_to_string(dir.join("cases.tsv")) else { return Vec::new() };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let files = cols.get(2)?.split(',').filter_map(|p| p.split_once('=')).map(|(r, v)| (r.into(), v.into()));
            Some((cols.get(1)?.to_string(), files.collect()))
        })
        .collect()
}

fn sigstore_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            sigstore_files(&path, out);
        } else if kind.is_file() && entry.metadata().is_ok_and(|m| m.len() <= MAX_SEED) {
            out.push(path);
        }
    }
}

/// What lies inside a bundle (or a trust root) for the parsers: certificates, keys and
/// timestamps (`rawBytes`, `signedTimestamp`), checkpoints, DSSE envelopes and their
/// statements; inclusion proofs as the parsers' Merkle input (index, size, hashes).
fn inside(value: &Value, parsers: &mut Seeds) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("rawBytes" | "raw_bytes" | "signedTimestamp" | "signed_timestamp", Value::String(b64)) => {
                        if let Ok(der) = B64.decode(b64) {
                            parsers.add("der", &der);
                        }
                    }
                    ("envelope", Value::String(note)) => parsers.add("checkpoint", note.as_bytes()),
                    ("dsseEnvelope" | "dsse_envelope", env) => {
                        parsers.add("dsse", env.to_string().as_bytes());
                        if let Some(payload) =
                            env.get("payload").and_then(Value::as_str).and_then(|p| B64.decode(p).ok())
                        {
                            parsers.add("statement", &payload);
                        }
                    }
                    ("inclusionProof" | "inclusion_proof", proof) => {
                        let int = |k: &str| {
                            proof.get(k).and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok())).unwrap_or(0)
                        };
                        let mut bytes = int("logIndex").to_le_bytes().to_vec();
                        bytes.extend(int("treeSize").to_le_bytes());
                        for h in proof.get("hashes").and_then(Value::as_array).into_iter().flatten() {
                            bytes.extend(h.as_str().and_then(|h| B64.decode(h).ok()).unwrap_or_default());
                        }
                        parsers.add("merkle", &bytes);
                    }
                    _ => {}
                }
                inside(v, parsers);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| inside(v, parsers)),
        _ => {}
    }
}

fn is_bundle(value: &Value) -> bool {
    value.get("mediaType").and_then(Value::as_str).is_some_and(|m| m.contains("sigstore.bundle"))
}

/// Seeds for `sigstore_bundle`, `cosign_signature` and `sigstore_parsers`.
fn seed_sigstore(dir: &Path, out: &Path) {
    let mut bundles = Seeds::new(out.join("sigstore_bundle"));
    let mut cosign = Seeds::new(out.join("cosign_signature"));
    let mut parsers = Seeds::new(out.join("sigstore_parsers"));
    let read = |rel: &str| std::fs::read(dir.join(rel)).ok().filter(|b| b.len() as u64 <= MAX_SEED);

    // Bundles: every file a case names as one (JSON Lines: each line), then any other
    // `.sigstore.json` / `.sigstore` / `.json` file whose media type is a bundle's.
    let cases = sigstore_cases(dir);
    let mut docs: Vec<Vec<u8>> = Vec::new();
    for (kind, files) in &cases {
        for (role, path) in files {
            let Some(bytes) = read(path) else { continue };
            match role.as_str() {
                "bundle" => docs.push(bytes),
                "bundles_jsonl" | "trusted_root_jsonl" => {
                    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                        if role == "bundles_jsonl" {
                            docs.push(line.to_vec());
                        } else {
                            parsers.add("root", line);
                        }
                    }
                }
                "signature" if kind.starts_with("cosign-") => {
                    cosign.add("stored", &bytes);
                    if let Ok(sig) = legacy_signature(&bytes) {
                        cosign.add("split", &split_form(&sig));
                    }
                }
                "checkpoint"
                | "certificate"
                | "chain"
                | "fulcio_ca"
                | "ca_roots"
                | "ca_intermediates"
                | "key"
                | "rekor_key"
                | "public_key"
                | "trusted_root"
                | "trust_config"
                | "certificate_authority"
                | "envelope"
                | "timestamp_response"
                | "set"
                | "payload" => parsers.add(role, &bytes),
                _ => {}
            }
        }
    }
    let mut files = Vec::new();
    sigstore_files(dir, &mut files);
    files.sort();
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let Ok(bytes) = std::fs::read(path) else { continue };
        if name.ends_with(".sigstore.json") || name.ends_with(".sigstore") || name.ends_with(".json") {
            if serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| is_bundle(&v)) {
                docs.push(bytes);
            } else if name.starts_with("trusted_root") || name.starts_with("trusted-root") {
                parsers.add("root", &bytes);
            }
        } else if [".pem", ".crt", ".pub", ".tsr"].iter().any(|ext| name.ends_with(ext))
            || path.to_string_lossy().contains("/checkpoints/")
        {
            parsers.add("file", &bytes);
        } else if bytes.starts_with(CONTAINERS_MAGIC) {
            cosign.add("stored", &bytes);
            if let Ok(sig) = legacy_signature(&bytes) {
                cosign.add("split", &split_form(&sig));
            }
        }
    }
    for doc in &docs {
        bundles.add("bundle", doc);
        if let Ok(value) = serde_json::from_slice::<Value>(doc) {
            inside(&value, &mut parsers);
        }
    }
    for root in parsers.seen.clone() {
        if let Ok(value) = serde_json::from_slice::<Value>(&root)
            && (value.get("tlogs").is_some() || value.get("trustedRoot").is_some())
        {
            inside(&value, &mut parsers);
        }
    }

    // cosign: the containers/image Rekor fixtures as one split signature (payload,
    // signature, certificate, chain if any, Rekor bundle); a layer with its payload
    // only; one with an empty signature.
    for base in [FIXTURES.to_string(), FIXTURES.replace("fixtures", "internal/testdata")] {
        let (Some(payload), Some(sig), Some(set)) = (
            read(&format!("{base}/rekor-payload")),
            read(&format!("{base}/rekor-sig")),
            read(&format!("{base}/rekor-set")),
        ) else {
            continue;
        };
        let cert = read(&format!("{base}/fulcio-cert")).or_else(|| read(&format!("{base}/rekor-cert")));
        let chain = read(&format!("{base}/fulcio-chain")).unwrap_or_default();
        let fields = [sig.trim_ascii().to_vec(), cert.unwrap_or_default(), chain, set.clone()];
        let mut split = payload.clone();
        for field in &fields {
            split.push(0);
            split.extend_from_slice(field);
        }
        cosign.add("fixture", &split);
        parsers.add("rekor-set", &set);
        parsers.add("payload", &payload);
        cosign.add("payload-only", &payload);
        let mut empty_sig = payload.clone();
        empty_sig.push(0);
        cosign.add("empty-signature", &empty_sig);
    }
    println!(
        "seed: sigstore: {} bundles, {} cosign signatures, {} parser inputs",
        bundles.seen.len(),
        cosign.seen.len(),
        parsers.seen.len()
    );
}
