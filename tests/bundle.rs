//! Policy bundles end to end, through the real binary and a real registry:
//! build → push → pull (by tag and digest) → `check --bundle`; signing and
//! verification; tampering of every kind; contract versions; offline use of
//! the cache; HTTPS with a test CA and basic auth; air-gapped transfer with
//! save/load; and what other tools make of the artifacts (skopeo, the OCI
//! image-spec schemas, the Bytecode Alliance's Wasm OCI client).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::registry::{Mode, PASSWORD, Registry, USER, docker_config, tool};
use common::{copy_layout, corpus, palisade, root, run, succeeded};
use serde_json::Value;
use sha2::Digest as _;

/// Run, expect success, return stdout (trimmed).
fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    succeeded(cmd, &out)
}

/// Run, expect exit `code`, return stderr.
fn fails(cmd: &mut Command, code: i32) -> String {
    let out = run(cmd);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}: expected exit {code}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

/// A private cache for the OCI content, sharing the compiled-component cache
/// of the test run (so nothing compiles twice) but none of the pulled content.
fn private_cache(dir: &Path) -> PathBuf {
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let shared = root().join("target").join("test-cache");
    std::fs::create_dir_all(&shared).unwrap();
    // The compiled cache lives in wasmtime-<version>-<hash> directories.
    palisade().args(["policies", "--profile", "baseline"]).output().unwrap();
    for entry in std::fs::read_dir(&shared).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("wasmtime-") {
            std::os::unix::fs::symlink(entry.path(), cache.join(entry.file_name())).unwrap();
        }
    }
    cache
}

fn with_cache(cache: &Path) -> Command {
    let mut cmd = palisade();
    cmd.env("PALISADE_CACHE_DIR", cache);
    cmd
}

const SMALL: [&str; 3] = ["pss-privileged", "pss-run-as-non-root", "image-tag"];

/// A bundle of a few built-in components: small and quick to move.
fn small_bundle(output: &Path, version: &str, components: &[&str]) -> String {
    let mut cmd = palisade();
    cmd.args([
        "bundle",
        "build",
        "--name",
        "small",
        "--version",
        version,
        "--source",
        "https://git.example.com/security/policies",
    ]);
    cmd.arg("--output").arg(output);
    for name in components {
        cmd.arg("--policies").arg(root().join("target").join("components").join(format!("{name}.wasm")));
    }
    ok(&mut cmd)
}

/// The default bundle, built once per test binary: (tarball, digest).
fn default_bundle() -> &'static (PathBuf, String) {
    static BUILT: OnceLock<(PathBuf, String)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = root().join("target").join("test-bundles");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hardened.tar");
        let digest =
            ok(palisade().args(["bundle", "build", "--name", "hardened", "--version", "1.0.0", "--output"]).arg(&path));
        (path, digest)
    })
}

fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    ok(palisade().env("COSIGN_PASSWORD", "pw").args(["bundle", "keygen", "--output-prefix"]).arg(&prefix));
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

/// The findings of a JSON report, as comparable JSON.
fn findings(out: &Output) -> Value {
    let code = out.status.code();
    // Exit 2 with a report: some input files are not manifests (the corpus has a Chart.yaml).
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report ({code:?}, {e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        report["errors"].as_array().unwrap().iter().all(|e| e["kind"] == "input"),
        "policy errors: {}",
        report["errors"]
    );
    let mut list = report["findings"].as_array().unwrap().clone();
    list.sort_by_key(|f| f.to_string());
    assert!(!list.is_empty());
    Value::Array(list)
}

/// `palisade bundle inspect --format json` of a plain-HTTP registry reference.
fn inspect_json(cache: &Path, reference: &str) -> Value {
    let text = ok(with_cache(cache).args(["bundle", "inspect", reference, "--insecure", "--format", "json"]));
    serde_json::from_str(&text).unwrap()
}

fn inputs() -> Vec<PathBuf> {
    vec![root().join("examples"), corpus().join("kube-score").join("score").join("testdata")]
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn default_bundle_round_trip_gives_the_builtin_findings() {
    let registry = Registry::start(Mode::Http);
    let (tarball, digest) = default_bundle();
    assert!(digest.starts_with("sha256:"), "{digest}");

    // Reproducible: the same policies, name and version give the same digest.
    let dir = tempfile::tempdir().unwrap();
    let again = ok(palisade()
        .args(["bundle", "build", "--name", "hardened", "--version", "1.0.0", "--output"])
        .arg(dir.path().join("layout")));
    assert_eq!(&again, digest);

    let tag = registry.reference("policies/hardened:1.0.0");
    let pushed = ok(palisade().args(["bundle", "push"]).arg(tarball).arg(&tag).arg("--insecure"));
    assert_eq!(&pushed, digest, "push prints the pushed digest");
    let cache = private_cache(dir.path());
    assert_eq!(&ok(with_cache(&cache).args(["bundle", "pull", &tag, "--insecure"])), digest);
    let pinned = format!("{}@{digest}", registry.reference("policies/hardened"));
    assert_eq!(&ok(with_cache(&cache).args(["bundle", "pull", &pinned, "--insecure"])), digest);

    let builtin = findings(&run(palisade().args(["check", "--format", "json"]).args(inputs())));
    for reference in [&tag, &pinned] {
        let from_bundle = findings(&run(with_cache(&cache)
            .args(["check", "--format", "json", "--insecure", "--bundle", reference])
            .args(inputs())));
        assert_eq!(from_bundle, builtin, "check --bundle {reference} differs from the built-in set");
    }
    // The layout directory and the tarball read the same.
    let from_layout = findings(&run(palisade()
        .args(["check", "--format", "json", "--bundle"])
        .arg(dir.path().join("layout"))
        .args(inputs())));
    assert_eq!(from_layout, builtin);

    let inspect = inspect_json(&cache, &tag);
    assert_eq!(inspect["digest"], digest.as_str());
    assert_eq!(inspect["contractCompatible"], true);
    assert_eq!(inspect["annotations"]["io.palisade.bundle.name"], "hardened");
    assert_eq!(inspect["annotations"]["io.palisade.contract"], "palisade:policy@0.3.2");
    let policies = inspect["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 51);
    for p in policies {
        assert_eq!(p["version"], "1.0.0");
        assert!(p["exports"].as_array().unwrap().iter().any(|e| e == "palisade:policy/policy@0.3.2"), "{p}");
    }

    // HTTPS is the default: a plain-HTTP registry is refused without --insecure.
    let err = fails(with_cache(&cache).args(["bundle", "pull", &tag]), 2);
    assert!(err.contains(&registry.addr), "{err}");
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn signatures_are_required_and_checked() {
    let mut registry = Registry::start(Mode::Http);
    let dir = tempfile::tempdir().unwrap();
    let cache = private_cache(dir.path());
    let (key1, pub1) = keypair(dir.path(), "team");
    let (_, pub2) = keypair(dir.path(), "other");
    let layout = dir.path().join("small");
    let digest = small_bundle(&layout, "1.0.0", &SMALL);
    let tag = registry.reference("policies/small:1.0.0");
    let pinned = format!("{}@{digest}", registry.reference("policies/small"));
    ok(with_cache(&cache).args(["bundle", "push"]).arg(&layout).arg(&tag).arg("--insecure"));

    // Unsigned: verification refuses, naming the missing signature.
    let err = fails(
        with_cache(&cache).args(["check", "--insecure", "--bundle", &tag, "--verify-key"]).arg(&pub1).arg("examples"),
        2,
    );
    assert!(err.contains("not signed") && err.contains(&digest), "{err}");

    let signed = ok(with_cache(&cache)
        .env("COSIGN_PASSWORD", "pw")
        .args(["bundle", "sign", &tag, "--insecure", "--key"])
        .arg(&key1));
    assert_eq!(signed, digest);
    let wrong_password = fails(
        with_cache(&cache)
            .env("COSIGN_PASSWORD", "nope")
            .args(["bundle", "sign", &tag, "--insecure", "--key"])
            .arg(&key1),
        2,
    );
    assert!(wrong_password.contains("wrong password"), "{wrong_password}");

    let verified = ok(with_cache(&cache).args(["bundle", "verify", &tag, "--insecure", "--key"]).arg(&pub1));
    assert!(verified.contains("verified") && verified.contains(&digest), "{verified}");
    let err = fails(with_cache(&cache).args(["bundle", "verify", &tag, "--insecure", "--key"]).arg(&pub2), 1);
    assert!(err.contains("none of the trusted keys"), "{err}");

    // check and its config file refuse a bundle the key did not sign, and run one it did.
    let check = |extra: &[&str], key: &Path| {
        let mut cmd = with_cache(&cache);
        cmd.current_dir(root())
            .args(["check", "--insecure", "--format", "json"])
            .args(extra)
            .arg("--verify-key")
            .arg(key);
        cmd.arg("examples");
        run(&mut cmd)
    };
    let good = check(&["--bundle", &tag], &pub1);
    assert!(matches!(good.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&good.stderr));
    let bad = check(&["--bundle", &tag], &pub2);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no valid signature"));
    std::fs::write(dir.path().join("verify.yaml"), "verify:\n  keys: [other.pub]\n").unwrap();
    let err = fails(
        with_cache(&cache)
            .current_dir(root())
            .args(["check", "--insecure", "--bundle", &tag, "--config"])
            .arg(dir.path().join("verify.yaml"))
            .arg("examples"),
        2,
    );
    assert!(err.contains("no valid signature") && err.contains("other.pub"), "{err}");
    std::fs::write(dir.path().join("verify.yaml"), "verify:\n  keys: [team.pub]\n").unwrap();
    let out = run(with_cache(&cache)
        .current_dir(root())
        .args(["check", "--insecure", "--bundle", &tag, "--config"])
        .arg(dir.path().join("verify.yaml"))
        .arg("examples"));
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    // With keys configured, nothing unsigned runs: not the built-in set, not --policies.
    let err = fails(palisade().current_dir(root()).args(["check", "examples", "--verify-key"]).arg(&pub1), 2);
    assert!(err.contains("signed bundle"), "{err}");
    let err = fails(
        palisade()
            .current_dir(root())
            .args(["check", "examples", "--bundle", &tag, "--insecure", "--verify-key"])
            .arg(&pub1)
            .arg("--policies")
            .arg(root().join("target/components/image-tag.wasm")),
        2,
    );
    assert!(err.contains("--policies"), "{err}");

    // serve refuses to start on a bundle its key did not sign.
    let pki = common::server::Pki::new();
    let err = fails(
        with_cache(&cache)
            .args(["serve", "--addr", "127.0.0.1:0", "--insecure", "--bundle", &tag, "--verify-key"])
            .arg(&pub2)
            .arg("--tls-cert")
            .arg(pki.path("server.pem"))
            .arg("--tls-key")
            .arg(pki.path("server-key.pem")),
        2,
    );
    assert!(err.contains("no valid signature"), "{err}");

    // The registry serves altered bytes under the old digest: caught by the digest check.
    let layer = inspect_json(&cache, &tag)["policies"][0]["component"]["digest"].as_str().unwrap().to_string();
    let blob = registry.blob_file(&layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    let fresh = dir.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let err =
        fails(with_cache(&fresh).args(["check", "--insecure", "--bundle", &pinned]).arg(root().join("examples")), 2);
    assert!(err.contains("does not match its digest") || err.contains("digest"), "{err}");
    bytes[middle] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();

    // Re-pushing other content under the same tag: the signature no longer covers what the tag names.
    let other = dir.path().join("other");
    let other_digest = small_bundle(&other, "1.0.0", &SMALL[..2]);
    ok(palisade().args(["bundle", "push"]).arg(&other).arg(&tag).arg("--insecure"));
    let err = fails(
        with_cache(&cache)
            .args(["check", "--insecure", "--bundle", &tag, "--verify-key"])
            .arg(&pub1)
            .arg(root().join("examples")),
        2,
    );
    assert!(err.contains(&other_digest) && err.contains("not signed"), "{err}");

    registry.stop();
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn the_cache_works_offline_and_refuses_tampering() {
    let mut registry = Registry::start(Mode::Http);
    let dir = tempfile::tempdir().unwrap();
    let cache = private_cache(dir.path());
    let (key, public) = keypair(dir.path(), "team");
    let layout = dir.path().join("small");
    let digest = small_bundle(&layout, "2.0.0", &SMALL);
    let tag = registry.reference("p/small:2.0.0");
    let pinned = format!("{}@{digest}", registry.reference("p/small"));
    ok(palisade().args(["bundle", "push"]).arg(&layout).arg(&tag).arg("--insecure"));
    ok(palisade().env("COSIGN_PASSWORD", "pw").args(["bundle", "sign", &tag, "--insecure", "--key"]).arg(&key));
    let online = findings(&run(with_cache(&cache)
        .args(["check", "--format", "json", "--insecure", "--bundle", &pinned, "--verify-key"])
        .arg(&public)
        .arg(root().join("examples"))));

    registry.stop();
    // Registry down: a tag cannot be resolved, and the error says why and what works instead.
    let err = fails(with_cache(&cache).args(["check", "--insecure", "--bundle", &tag]).arg(root().join("examples")), 2);
    assert!(err.contains("Connection refused") || err.contains("connect"), "{err}");
    assert!(err.contains("digest reference"), "{err}");
    // A digest reference pulled before runs from the cache, signature included.
    let out = run(with_cache(&cache)
        .args(["check", "--format", "json", "--insecure", "--bundle", &pinned, "--verify-key"])
        .arg(&public)
        .arg(root().join("examples")));
    assert_eq!(findings(&out), online);
    // The report names exactly what ran, and who signed it.
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["policyBundle"]["digest"], digest.as_str());
    assert_eq!(report["policyBundle"]["pinned"], pinned.as_str());
    assert_eq!(report["policyBundle"]["verifiedBy"], public.display().to_string());

    // One flipped byte in a cached layer: refused, and the entry is dropped.
    let layer = inspect_json(&cache, &pinned)["policies"][1]["component"]["digest"].as_str().unwrap().to_string();
    let cached = cache.join("oci/blobs/sha256").join(layer.strip_prefix("sha256:").unwrap());
    let mut bytes = std::fs::read(&cached).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&cached, &bytes).unwrap();
    let err =
        fails(with_cache(&cache).args(["check", "--insecure", "--bundle", &pinned]).arg(root().join("examples")), 2);
    assert!(err.contains("tampered") && err.contains(&layer), "{err}");
    assert!(!cached.exists(), "the damaged entry is removed");
}

/// Read a layout directory's index.json, change it, write it back.
fn edit_layout_index(layout: &Path, edit: impl FnOnce(&mut Value)) {
    let path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut index);
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

fn write_blob(layout: &Path, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    std::fs::write(layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap()), bytes).unwrap();
    digest
}

#[test]
fn layouts_refuse_swapped_signatures_tampering_and_unknown_contracts() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path(), "team");
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let digest_a = small_bundle(&a, "1.0.0", &SMALL);
    let digest_b = small_bundle(&b, "1.0.1", &SMALL);
    for layout in [&a, &b] {
        ok(palisade().env("COSIGN_PASSWORD", "pw").args(["bundle", "sign"]).arg(layout).arg("--key").arg(&key));
    }
    let verified = ok(palisade().args(["bundle", "verify"]).arg(&a).arg("--key").arg(&public));
    assert!(verified.contains(&digest_a), "{verified}");

    // A signing key's tarball round trip: sign a .tar in place, verify it.
    let tar = dir.path().join("a.tar");
    ok(palisade().args(["bundle", "save"]).arg(&a).arg(&tar));
    ok(palisade().args(["bundle", "verify"]).arg(&tar).arg("--key").arg(&public));

    // Swap: a's signature entry now points at b's (valid, same key) signature.
    let swapped = dir.path().join("swapped");
    copy_layout(&a, &swapped);
    let b_index: Value = serde_json::from_slice(&std::fs::read(b.join("index.json")).unwrap()).unwrap();
    let b_sig = b_index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().ends_with(".sig"))
        .unwrap()
        .clone();
    for entry in std::fs::read_dir(b.join("blobs/sha256")).unwrap().flatten() {
        std::fs::copy(entry.path(), swapped.join("blobs/sha256").join(entry.file_name())).unwrap();
    }
    edit_layout_index(&swapped, |index| {
        for m in index["manifests"].as_array_mut().unwrap() {
            if m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().ends_with(".sig") {
                m["digest"] = b_sig["digest"].clone();
                m["size"] = b_sig["size"].clone();
            }
        }
    });
    let err = fails(palisade().args(["bundle", "verify"]).arg(&swapped).arg("--key").arg(&public), 1);
    assert!(err.contains(&digest_b) && err.contains(&format!("not {digest_a}")), "{err}");
    let err = fails(
        palisade()
            .args(["check", "--bundle"])
            .arg(&swapped)
            .arg("--verify-key")
            .arg(&public)
            .arg(root().join("examples")),
        2,
    );
    assert!(err.contains("no valid signature"), "{err}");

    // A flipped byte in the index, a manifest, a config or a layer: refused by digest.
    let a_index: Value = serde_json::from_slice(&std::fs::read(a.join("index.json")).unwrap()).unwrap();
    let root_entry =
        a_index["manifests"].as_array().unwrap().iter().find(|m| m["digest"] == digest_a.as_str()).unwrap().clone();
    let index_blob: Value = serde_json::from_slice(
        &std::fs::read(a.join("blobs/sha256").join(digest_a.strip_prefix("sha256:").unwrap())).unwrap(),
    )
    .unwrap();
    let manifest_digest = index_blob["manifests"][0]["digest"].as_str().unwrap().to_string();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(a.join("blobs/sha256").join(manifest_digest.strip_prefix("sha256:").unwrap())).unwrap(),
    )
    .unwrap();
    let targets = [
        digest_a.clone(),
        manifest_digest.clone(),
        manifest["config"]["digest"].as_str().unwrap().to_string(),
        manifest["layers"][0]["digest"].as_str().unwrap().to_string(),
    ];
    for (n, target) in targets.iter().enumerate() {
        let copy = dir.path().join(format!("tampered-{n}"));
        copy_layout(&a, &copy);
        let file = copy.join("blobs/sha256").join(target.strip_prefix("sha256:").unwrap());
        let mut bytes = std::fs::read(&file).unwrap();
        let at = bytes.len() / 3;
        bytes[at] ^= 0x01;
        std::fs::write(&file, bytes).unwrap();
        let err = fails(palisade().args(["check", "--bundle"]).arg(&copy).arg(root().join("examples")), 2);
        assert!(err.contains("does not match its digest") && err.contains(target), "piece {n}: {err}");
    }

    // An index that asks for a contract this palisade does not implement.
    let future = dir.path().join("future");
    copy_layout(&a, &future);
    let mut index = index_blob.clone();
    index["annotations"]["io.palisade.contract"] = "palisade:policy@9.0.0".into();
    let bytes = serde_json::to_vec(&index).unwrap();
    let new_digest = write_blob(&future, &bytes);
    edit_layout_index(&future, |layout_index| {
        layout_index["manifests"] = serde_json::json!([{
            "mediaType": root_entry["mediaType"], "digest": new_digest, "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "1.0.0"}
        }]);
    });
    let err = fails(palisade().args(["check", "--bundle"]).arg(&future).arg(root().join("examples")), 2);
    assert!(err.contains("palisade:policy@9.0.0") && err.contains("0.3.2"), "{err}");
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn https_basic_auth_and_air_gapped_transfer() {
    let public_registry = Registry::start(Mode::Https);
    let air_gapped = Registry::start(Mode::HttpsWithBasicAuth);
    let dir = tempfile::tempdir().unwrap();
    let cache = private_cache(dir.path());
    let (key, public) = keypair(dir.path(), "team");
    let layout = dir.path().join("small");
    let digest = small_bundle(&layout, "3.0.0", &SMALL);
    let tag = public_registry.reference("security/small:3.0.0");

    // HTTPS with a CA made here: refused without it, and --insecure is no way around it.
    let err = fails(palisade().args(["bundle", "push"]).arg(&layout).arg(&tag), 2);
    assert!(err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"), "{err}");
    fails(palisade().args(["bundle", "push"]).arg(&layout).arg(&tag).arg("--insecure"), 2);
    let ca = public_registry.ca();
    let ca_args = |cmd: &mut Command| {
        cmd.arg("--registry-ca").arg(&ca);
    };
    let mut push = palisade();
    push.args(["bundle", "push"]).arg(&layout).arg(&tag);
    ca_args(&mut push);
    assert_eq!(ok(&mut push), digest);
    let mut sign = palisade();
    sign.env("COSIGN_PASSWORD", "pw").args(["bundle", "sign", &tag, "--key"]).arg(&key);
    ca_args(&mut sign);
    ok(&mut sign);

    // Carry it across: save (with its signature) to a tarball, load into the other registry.
    let tarball = dir.path().join("transfer.tar");
    let mut save = with_cache(&cache);
    save.args(["bundle", "save", &tag]).arg(&tarball);
    ca_args(&mut save);
    assert_eq!(ok(&mut save), digest);
    ok(palisade().args(["bundle", "verify"]).arg(&tarball).arg("--key").arg(&public));

    let inside = air_gapped.reference("mirror/small:3.0.0");
    let inside_ca = air_gapped.ca();
    let err =
        fails(palisade().args(["bundle", "load"]).arg(&tarball).arg(&inside).arg("--registry-ca").arg(&inside_ca), 2);
    assert!(err.contains("401") || err.to_lowercase().contains("auth"), "{err}");
    let wrong = docker_config(&dir.path().join("wrong"), &air_gapped.addr, USER, "not-the-password");
    fails(
        palisade()
            .env("DOCKER_CONFIG", &wrong)
            .args(["bundle", "load"])
            .arg(&tarball)
            .arg(&inside)
            .arg("--registry-ca")
            .arg(&inside_ca),
        2,
    );
    let docker = docker_config(dir.path(), &air_gapped.addr, USER, PASSWORD);
    let loaded = ok(palisade()
        .env("DOCKER_CONFIG", &docker)
        .args(["bundle", "load"])
        .arg(&tarball)
        .arg(&inside)
        .arg("--registry-ca")
        .arg(&inside_ca));
    assert_eq!(loaded, digest);

    // Inside: verified with the same key, credentials from the environment this time.
    let inside_pinned = format!("{}@{digest}", air_gapped.reference("mirror/small"));
    let fresh = dir.path().join("inside-cache");
    std::fs::create_dir_all(&fresh).unwrap();
    let verified = ok(with_cache(&fresh)
        .env("PALISADE_REGISTRY_USERNAME", USER)
        .env("PALISADE_REGISTRY_PASSWORD", PASSWORD)
        .args(["bundle", "verify", &inside_pinned, "--key"])
        .arg(&public)
        .arg("--registry-ca")
        .arg(&inside_ca));
    assert!(verified.contains(&digest), "{verified}");
    let out = run(with_cache(&fresh)
        .env("DOCKER_CONFIG", &docker)
        .args(["check", "--format", "json", "--bundle", &inside_pinned, "--verify-key"])
        .arg(&public)
        .arg("--registry-ca")
        .arg(&inside_ca)
        .arg(root().join("examples")));
    let direct =
        run(palisade().args(["check", "--format", "json", "--bundle"]).arg(&layout).arg(root().join("examples")));
    assert_eq!(findings(&out), findings(&direct));
}

/// The OCI image-spec schemas, from Debian's golang-github-opencontainers-image-spec-dev.
fn oci_schema(name: &str) -> jsonschema::Validator {
    let dir = tool(
        "the OCI image-spec schemas",
        &["/usr/share/gocode/src/github.com/opencontainers/image-spec/schema/image-manifest-schema.json"],
    )
    .parent()
    .unwrap()
    .to_path_buf();
    struct ByFileName(PathBuf);
    impl jsonschema::Retrieve for ByFileName {
        fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
            let name = uri.path().as_str().rsplit('/').next().unwrap_or_default().to_string();
            let mut schema: Value = serde_json::from_slice(&std::fs::read(self.0.join(name))?)?;
            // Their "$schema" is draft-04 under an https address the validator does not know.
            schema.as_object_mut().map(|o| o.remove("$schema"));
            Ok(schema)
        }
    }
    let retriever = ByFileName(dir);
    let schema =
        jsonschema::Retrieve::retrieve(&retriever, &jsonschema::Uri::parse(format!("file:///{name}")).unwrap())
            .unwrap();
    jsonschema::options().with_draft(jsonschema::Draft::Draft4).with_retriever(retriever).build(&schema).unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}\n{instance:#}");
}

#[test]
#[cfg_attr(
    any(palisade_missing_registry, palisade_missing_skopeo, palisade_missing_image_spec),
    ignore = "needs docker-registry, skopeo and the OCI image-spec schemas: \
              apt-get install docker-registry skopeo golang-github-opencontainers-image-spec-dev"
)]
fn other_tools_read_the_artifacts() {
    let registry = Registry::start(Mode::Http);
    let skopeo = tool("skopeo", &["/usr/bin/skopeo"]);
    let manifest_schema = oci_schema("image-manifest-schema.json");
    let index_schema = oci_schema("image-index-schema.json");
    let config_schema = oci_schema("config-schema.json");
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("small");
    let digest = small_bundle(&layout, "1.2.3", &SMALL);
    let tag = registry.reference("interop/small:1.2.3");
    ok(palisade().args(["bundle", "push"]).arg(&layout).arg(&tag).arg("--insecure"));
    let docker = |suffix: &str| format!("docker://{}/interop/small{suffix}", registry.addr);

    // skopeo reads the index as pushed, byte for byte.
    let index_bytes =
        Command::new(&skopeo).args(["inspect", "--tls-verify=false", "--raw", &docker(":1.2.3")]).output().unwrap();
    assert!(index_bytes.status.success(), "{}", String::from_utf8_lossy(&index_bytes.stderr));
    assert_eq!(sha256(&index_bytes.stdout), digest);
    let index: Value = serde_json::from_slice(&index_bytes.stdout).unwrap();
    assert_valid(&index_schema, &index, "index");
    assert_eq!(index["manifests"].as_array().unwrap().len(), 3);

    // reqwest is built without a provider of its own here (as in palisade).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let wasm_client = oci_wasm::WasmClient::new(oci_client_wasm::Client::new(oci_client_wasm::client::ClientConfig {
        protocol: oci_client_wasm::client::ClientProtocol::Http,
        ..Default::default()
    }));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for entry in index["manifests"].as_array().unwrap() {
        let manifest_digest = entry["digest"].as_str().unwrap();
        let out = Command::new(&skopeo)
            .args(["inspect", "--tls-verify=false", "--raw", &docker(&format!("@{manifest_digest}"))])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_valid(&manifest_schema, &manifest, "manifest");
        assert_eq!(manifest["config"]["mediaType"], "application/vnd.wasm.config.v0+json");
        assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
        for key in ["title", "version", "description", "licenses", "created"] {
            assert!(
                manifest["annotations"][format!("org.opencontainers.image.{key}")].is_string(),
                "{key}: {manifest}"
            );
        }
        for key in ["id", "severity", "category", "kinds"] {
            assert!(manifest["annotations"][format!("io.palisade.policy.{key}")].is_string(), "{key}: {manifest}");
        }
        let out = Command::new(&skopeo)
            .args(["inspect", "--tls-verify=false", "--config", "--raw", &docker(&format!("@{manifest_digest}"))])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let config: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_valid(&config_schema, &config, "config");
        assert_eq!((config["architecture"].as_str(), config["os"].as_str()), (Some("wasm"), Some("wasip2")));

        // The Wasm OCI client wkg is built on pulls the policy, and its own
        // reading of the component's WIT agrees with the config.
        let reference: oci_client_wasm::Reference =
            format!("{}/interop/small@{manifest_digest}", registry.addr).parse().unwrap();
        let (_, wasm_config, _) = rt
            .block_on(
                wasm_client.pull_manifest_and_config(&reference, &oci_client_wasm::secrets::RegistryAuth::Anonymous),
            )
            .unwrap();
        let image =
            rt.block_on(wasm_client.pull(&reference, &oci_client_wasm::secrets::RegistryAuth::Anonymous)).unwrap();
        let decoded = oci_wasm::Component::from_raw_component(&image.layers[0].data).unwrap();
        let ours = wasm_config.component.expect("a component section");
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(sorted(ours.exports), sorted(decoded.exports));
        assert_eq!(sorted(ours.imports), sorted(decoded.imports));
    }

    // A single policy, by its manifest digest, is a policy set of one, and signs like a bundle.
    let first = &index["manifests"][0];
    let id = first["annotations"]["io.palisade.policy.id"].as_str().unwrap();
    let single = format!("{}@{}", registry.reference("interop/small"), first["digest"].as_str().unwrap());
    let report: Value = serde_json::from_slice(
        &run(palisade()
            .args(["check", "--format", "json", "--insecure", "--bundle", &single])
            .arg(root().join("examples")))
        .stdout,
    )
    .unwrap();
    assert_eq!(report["summary"]["policies"], 1, "{}", report["summary"]);
    assert!(report["findings"].as_array().unwrap().iter().all(|f| f["rule"] == id));
    let (key, public) = keypair(dir.path(), "team");
    ok(palisade().env("COSIGN_PASSWORD", "pw").args(["bundle", "sign", &single, "--insecure", "--key"]).arg(&key));
    ok(palisade().args(["bundle", "verify", &single, "--insecure", "--key"]).arg(&public));
    // ...and signing one policy does not sign the bundle.
    fails(palisade().args(["bundle", "verify", &tag, "--insecure", "--key"]).arg(&public), 1);

    // skopeo's own copy into an OCI layout is a bundle palisade runs.
    let copied = dir.path().join("skopeo-layout");
    let out = Command::new(&skopeo)
        .args(["copy", "--all", "--src-tls-verify=false", &docker(":1.2.3")])
        .arg(format!("oci:{}:1.2.3", copied.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let via_skopeo =
        run(palisade().args(["check", "--format", "json", "--bundle"]).arg(&copied).arg(root().join("examples")));
    let direct =
        run(palisade().args(["check", "--format", "json", "--bundle"]).arg(&layout).arg(root().join("examples")));
    assert_eq!(findings(&via_skopeo), findings(&direct));
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn serve_runs_a_signed_bundle_from_the_registry() {
    let registry = Registry::start(Mode::Http);
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path(), "team");
    let layout = dir.path().join("small");
    let digest = small_bundle(&layout, "4.0.0", &SMALL);
    let tag = registry.reference("admission/small:4.0.0");
    ok(palisade().args(["bundle", "push"]).arg(&layout).arg(&tag).arg("--insecure"));
    ok(palisade().env("COSIGN_PASSWORD", "pw").args(["bundle", "sign", &tag, "--insecure", "--key"]).arg(&key));
    let pinned = format!("{}@{digest}", registry.reference("admission/small"));
    let config = format!("profile: baseline\nverify:\n  keys: [{}]\n", public.display());
    let server = common::server::start(&["--bundle", &pinned, "--insecure"], &config, false);
    let bad = common::server::pod("bad", "shop", serde_json::json!({"privileged": true}), serde_json::json!({}));
    let (status, answer) =
        common::server::post(&server, "/validate", &common::server::review("u", "CREATE", "shop", bad, Value::Null));
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert!(answer["response"]["status"]["message"].as_str().unwrap().contains("pss-privileged"), "{answer}");
    let (_, metrics) = common::server::get(&server, "/metrics");
    assert!(metrics.contains("pss-privileged"), "{metrics}");
    assert!(!metrics.contains("pss-host-namespaces"), "only the bundle's policies run: {metrics}");
}

#[test]
fn bad_references_and_layouts_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let examples = root().join("examples");
    let cases: Vec<(String, &str)> = vec![
        (dir.path().join("missing").display().to_string(), "cannot read the bundle"),
        (root().join("README.md").display().to_string(), "not an OCI image layout"),
        (dir.path().display().to_string(), "not an OCI image layout"),
        ("oci://hardened:1.0".to_string(), "name the registry host"),
        ("https://registry.example.com/p:1".to_string(), "unknown scheme"),
        ("oci://registry.example.com/p@sha256:1234".to_string(), "registry reference"),
    ];
    for (reference, expected) in cases {
        let err = fails(palisade().args(["check", "--bundle", &reference]).arg(&examples), 2);
        assert!(err.contains(expected), "--bundle {reference}: {err}");
    }
    // A layout whose index names a blob it does not hold.
    let layout = dir.path().join("small");
    small_bundle(&layout, "1.0.0", &SMALL[..1]);
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let root_digest = index["manifests"][0]["digest"].as_str().unwrap().to_string();
    let blob: Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(&root_digest[7..])).unwrap()).unwrap();
    let manifest = blob["manifests"][0]["digest"].as_str().unwrap();
    std::fs::remove_file(layout.join("blobs/sha256").join(&manifest[7..])).unwrap();
    let err = fails(palisade().args(["check", "--bundle"]).arg(&layout).arg(&examples), 2);
    assert!(err.contains(&manifest[7..]), "{err}");
    // Keys that are not keys.
    let err = fails(palisade().args(["bundle", "verify"]).arg(&layout).arg("--key").arg(root().join("README.md")), 2);
    assert!(err.contains("not a PEM public key"), "{err}");
    let err = fails(palisade().args(["bundle", "sign"]).arg(&layout).arg("--key").arg(root().join("README.md")), 2);
    assert!(err.contains("not a PEM key"), "{err}");
}

#[test]
fn export_sends_the_server_the_kinds_its_bundle_judges() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("services");
    small_bundle(&layout, "1.0.0", &["service-type"]);
    let pki = common::server::Pki::new();
    let out = ok(palisade()
        .args([
            "export",
            "webhook",
            "--image",
            "registry.example.com/palisade:1@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "--ca-bundle",
        ])
        .arg(pki.path("ca.pem"))
        .arg("--bundle")
        .arg(&layout));
    let webhook = out.split("\n---").find(|d| d.contains("kind: ValidatingWebhookConfiguration")).expect("a webhook");
    assert!(webhook.contains("services"), "{webhook}");
    assert!(!webhook.contains("deployments") && !webhook.contains("pods"), "only the bundle's kinds: {webhook}");
}

/// The signature entry of a layout directory: (its manifest file, the manifest).
fn signature_manifest(layout: &Path) -> (PathBuf, Value) {
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().ends_with(".sig"))
        .expect("a signature entry")
        .clone();
    let file = layout.join("blobs/sha256").join(&entry["digest"].as_str().unwrap()[7..]);
    let manifest = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    (file, manifest)
}

/// OpenSSL, an implementation that shares no code with ours, agrees on the
/// signatures both ways: it verifies Palisade's, and Palisade verifies one
/// OpenSSL made over the same payload (the route cosign documents for
/// signatures made outside cosign). Keys are OpenSSL's own SEC1 and PKCS#8 PEM.
#[test]
#[cfg_attr(palisade_missing_openssl, ignore = "openssl is not installed (/usr/bin/openssl): apt-get install openssl")]
fn openssl_agrees_with_the_signatures() {
    let openssl = tool("openssl", &["/usr/bin/openssl"]);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let sh = |args: &[&str]| {
        let out = Command::new(&openssl).args(args).current_dir(dir.path()).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    sh(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sec1.key"]);
    sh(&["ec", "-in", "sec1.key", "-pubout", "-out", "key.pub"]);
    sh(&["pkcs8", "-topk8", "-nocrypt", "-in", "sec1.key", "-out", "pkcs8.key"]);

    let layout = path("small");
    let digest = small_bundle(&layout, "1.0.0", &SMALL[..1]);
    ok(palisade().args(["bundle", "sign"]).arg(&layout).arg("--key").arg(path("sec1.key")));
    ok(palisade().args(["bundle", "verify"]).arg(&layout).arg("--key").arg(path("key.pub")));

    // OpenSSL verifies Palisade's signature over the payload it names.
    let (manifest_file, manifest) = signature_manifest(&layout);
    let layer = &manifest["layers"][0];
    let payload = std::fs::read(layout.join("blobs/sha256").join(&layer["digest"].as_str().unwrap()[7..])).unwrap();
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["critical"]["image"]["docker-manifest-digest"], digest.as_str());
    std::fs::write(path("payload.json"), &payload).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let der = b64.decode(layer["annotations"]["dev.cosignproject.cosign/signature"].as_str().unwrap()).unwrap();
    std::fs::write(path("palisade.sig"), der).unwrap();
    let said = sh(&["dgst", "-sha256", "-verify", "key.pub", "-signature", "palisade.sig", "payload.json"]);
    assert!(said.contains("Verified OK"), "{said}");

    // Palisade verifies OpenSSL's signature of the same payload, put in the annotation.
    sh(&["dgst", "-sha256", "-sign", "pkcs8.key", "-out", "openssl.sig", "payload.json"]);
    let mut swapped = manifest.clone();
    swapped["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] =
        b64.encode(std::fs::read(path("openssl.sig")).unwrap()).into();
    let bytes = serde_json::to_vec(&swapped).unwrap();
    let new_digest = write_blob(&layout, &bytes);
    let old_digest = format!("sha256:{}", manifest_file.file_name().unwrap().to_str().unwrap());
    edit_layout_index(&layout, |index| {
        for m in index["manifests"].as_array_mut().unwrap() {
            if m["digest"] == old_digest.as_str() {
                m["digest"] = new_digest.clone().into();
                m["size"] = bytes.len().into();
            }
        }
    });
    let verified = ok(palisade().args(["bundle", "verify"]).arg(&layout).arg("--key").arg(path("key.pub")));
    assert!(verified.contains(&digest), "{verified}");
    // And a PKCS#8 key signs as well as a SEC1 one.
    ok(palisade().args(["bundle", "sign"]).arg(&layout).arg("--key").arg(path("pkcs8.key")));
    ok(palisade().args(["bundle", "verify"]).arg(&layout).arg("--key").arg(path("key.pub")));
}
