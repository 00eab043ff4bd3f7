//! Seed corpora for the fuzz targets, made from the shared test corpus:
//! `cargo run --release --bin seed -- ../../shared/corpus corpus`.
//! `documents` gets manifest files (up to 64 KiB) and hand-made hostile
//! inputs; the decoders get their wire formats wrapped around real objects.

use std::path::{Path, PathBuf};

use palisade_fuzz::documents::{Limits, read_documents};
use serde_json::{Value, json};

const MAX_SEED: u64 = 64 << 10;
const MAX_OBJECTS: usize = 400;

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
    let dirs = ["documents", "admission_review", "provider_request", "kyverno_call"].map(|d| out.join(d));
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
    }
    println!(
        "seed: {} manifest files, {} hostile inputs, {} objects wrapped for the decoders",
        files.len(),
        hostile().len(),
        objects.len()
    );
}
