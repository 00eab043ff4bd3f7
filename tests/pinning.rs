//! Digest pinning, end to end: images pushed to a real registry (Debian's
//! docker-registry on loopback) and signed by a cosign key the test makes,
//! then
//! - `palisade serve`'s `POST /mutate`, whose JSONPatch is applied (RFC 6902,
//!   the `json-patch` crate) and the result compared, as JSON, with the
//!   object the test expects: only images that verified are pinned, to the
//!   digest the test computed when it pushed them, and nothing else moves;
//! - `palisade check --verify-images --pin`, whose output is compared byte
//!   for byte with the input with `@sha256:…` inserted after each verified
//!   image;
//! - `palisade export webhook`, which wires `/mutate` in only when trust
//!   policies are configured and pinning is not turned off.

mod common;
#[path = "common/sigstore.rs"]
mod sigstore;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use base64::Engine as _;
use common::server::{Server, get, post, start};
use serde_json::{Value, json};
use sigstore::*;

// ---------------------------------------------------------------------------
// The server

/// Every test pushes images under tags of its own: the server keeps its
/// cache in the shared test cache directory.
fn tag() -> String {
    format!("v1-{}", nonce())
}

/// `image` as `/mutate` should pin it: the tag kept, the digest appended.
fn pinned(image: &Image) -> String {
    format!("{}@{}", image.reference(), image.digest)
}

/// Push an image under `repository` and sign it with `key` (with a Rekor entry).
fn signed(fx: &Fixture, key: &Key, repository: &str) -> Image {
    let image = fx.push(repository, &tag());
    attach_signatures(&image, &[fx.sigstore.sign_with_key(key, &image.payload(), true)]);
    image
}

/// A server configuration (JSON is YAML, absolute paths): every rule but
/// `image-signature` disabled, one trust policy for `…/signed/**` with the
/// fixture's `cosign.pub`, other images allowed; `extra` merged into
/// `imageVerification`.
fn server_config(fx: &Fixture, extra: Value) -> String {
    let mut verification = json!({
        "trustedRoot": [fx.dir.path().join("trusted_root.json")],
        "unmatched": "allow",
        "policies": [{"name": "prod", "images": ["127.0.0.1:*/signed/**"], "keys": [fx.dir.path().join("cosign.pub")]}],
    });
    if let (Some(v), Some(e)) = (verification.as_object_mut(), extra.as_object()) {
        v.extend(e.clone());
    }
    json!({"disable": other_rules(), "imageVerification": verification}).to_string()
}

/// A registry, a Sigstore instance, a key written as `cosign.pub`, and a
/// server trusting it.
fn serve(extra: Value) -> (Fixture, Key, Server) {
    let fx = Fixture::start();
    let key = Key::p256();
    fx.key_file("cosign.pub", &key);
    let server = start(&["--insecure"], &server_config(&fx, extra), false);
    (fx, key, server)
}

/// An AdmissionReview v1 for `object` (its request kind and resource from
/// the object's kind), with `old` as the oldObject.
fn review(uid: &str, operation: &str, object: &Value, old: Option<&Value>) -> Value {
    let kind = object["kind"].as_str().unwrap();
    let (group, resource) = match kind {
        "Pod" => ("", "pods"),
        "Deployment" => ("apps", "deployments"),
        "CronJob" => ("batch", "cronjobs"),
        other => panic!("no resource for {other}"),
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": resource},
            "namespace": "prod",
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": old.cloned().unwrap_or(Value::Null),
        }
    })
}

/// The response of `path` to `review`, checked to be an AdmissionReview for its uid.
fn answer(server: &Server, path: &str, review: &Value) -> Value {
    let (status, answer) = post(server, path, review);
    assert_eq!(status, 200, "{path}: {answer}");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{answer:#}");
    assert_eq!(answer["kind"], "AdmissionReview", "{answer:#}");
    let response = answer["response"].clone();
    assert_eq!(response["uid"], review["request"]["uid"], "{answer:#}");
    response
}

fn mutate(server: &Server, uid: &str, operation: &str, object: &Value, old: Option<&Value>) -> Value {
    let response = answer(server, "/mutate", &review(uid, operation, object, old));
    assert_eq!(response["allowed"], true, "/mutate never denies: {response:#}");
    response
}

/// No patch at all: allowed, and neither `patchType` nor `patch`.
fn assert_unpatched(response: &Value) {
    assert_eq!(response["allowed"], true, "{response:#}");
    let keys: Vec<&String> = response.as_object().unwrap().keys().collect();
    assert!(response.get("patchType").is_none() && response.get("patch").is_none(), "expected no patch: {response:#}");
    assert_eq!(keys.len(), 2, "only uid and allowed: {response:#}");
}

/// `object` with the response's patch applied, after checking the patch is
/// a JSONPatch (standard base64) of `test` and `replace` operations on image
/// fields only, a `test` before each `replace` of the same path.
fn apply(response: &Value, object: &Value) -> Value {
    assert_eq!(response["patchType"], "JSONPatch", "{response:#}");
    let encoded = response["patch"].as_str().unwrap_or_else(|| panic!("no patch: {response:#}"));
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).expect("the patch is standard base64");
    let ops: Value = serde_json::from_slice(&bytes).expect("the patch is JSON");
    let list = ops.as_array().unwrap_or_else(|| panic!("the patch is not an array: {ops:#}"));
    assert!(!list.is_empty() && list.len().is_multiple_of(2), "{ops:#}");
    for pair in list.chunks(2) {
        assert_eq!(pair[0]["op"], "test", "{ops:#}");
        assert_eq!(pair[1]["op"], "replace", "{ops:#}");
        assert_eq!(pair[0]["path"], pair[1]["path"], "{ops:#}");
        assert!(pair[0]["path"].as_str().unwrap().ends_with("/image"), "{ops:#}");
    }
    let patch: json_patch::Patch = serde_json::from_value(ops.clone()).expect("an RFC 6902 patch");
    let mut doc = object.clone();
    json_patch::patch(&mut doc, &patch).unwrap_or_else(|e| panic!("the patch does not apply ({e}): {ops:#}"));
    doc
}

/// `object` with the string at each pointer replaced.
fn with(object: &Value, changes: &[(&str, String)]) -> Value {
    let mut out = object.clone();
    for (pointer, value) in changes {
        *out.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer}")) = Value::String(value.clone());
    }
    out
}

/// A container with fields around its image that must not move.
fn container(name: &str, image: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["--image", image],
        "env": [{"name": "IMAGE", "value": image}],
        "ports": [{"containerPort": 8080}],
    })
}

fn deployment(name: &str, containers: Vec<Value>) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "prod", "labels": {"app": name}, "annotations": {"image": "keep"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}},
        },
    })
}

const HITS: &str = "palisade_image_verification_cache_hits_total";
const MISSES: &str = "palisade_image_verification_cache_misses_total";

/// The sum of a counter's samples (every label set), 0 when absent.
fn counter(server: &Server, name: &str) -> f64 {
    let (status, metrics) = get(server, "/metrics");
    assert_eq!(status, 200);
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            (series.split('{').next()? == name).then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn mutate_pins_the_images_that_verified_and_nothing_else() {
    let (fx, key, server) = serve(json!({}));
    let app = signed(&fx, &key, "signed/app");
    let unsigned = fx.push("signed/unsigned", &tag());
    // Matches no policy (unmatched: allow), though the registry has it.
    let other = fx.push("other/tool", &tag());

    // A Deployment: only the signed image is pinned.
    let object = deployment(
        "web",
        vec![
            container("app", &app.reference()),
            container("unsigned", &unsigned.reference()),
            container("tool", &other.reference()),
        ],
    );
    let response = mutate(&server, "deployment", "CREATE", &object, None);
    let expected = with(&object, &[("/spec/template/spec/containers/0/image", pinned(&app))]);
    let pinned_deployment = apply(&response, &object);
    assert_eq!(pinned_deployment, expected);

    // A CronJob.
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "prod"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure",
            "containers": [container("job", &app.reference())],
        }}}}},
    });
    let response = mutate(&server, "cronjob", "CREATE", &job, None);
    let expected = with(&job, &[("/spec/jobTemplate/spec/template/spec/containers/0/image", pinned(&app))]);
    assert_eq!(apply(&response, &job), expected);

    // A Pod: init, regular and ephemeral containers, all signed, all pinned.
    let init = signed(&fx, &key, "signed/init");
    let debug = signed(&fx, &key, "signed/team/debug");
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "all-lists", "namespace": "prod"},
        "spec": {
            "initContainers": [container("init", &init.reference())],
            "containers": [container("app", &app.reference()), container("again", &app.reference())],
            "ephemeralContainers": [container("debug", &debug.reference())],
        },
    });
    let response = mutate(&server, "pod", "CREATE", &pod, None);
    let expected = with(
        &pod,
        &[
            ("/spec/initContainers/0/image", pinned(&init)),
            ("/spec/containers/0/image", pinned(&app)),
            ("/spec/containers/1/image", pinned(&app)),
            ("/spec/ephemeralContainers/0/image", pinned(&debug)),
        ],
    );
    let pinned_pod = apply(&response, &pod);
    assert_eq!(pinned_pod, expected);

    // Images that already name a digest are left alone: no patch at all.
    let already = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "already", "namespace": "prod"},
        "spec": {"containers": [container("by-digest", &app.pinned()), container("tag-and-digest", &pinned(&app))]},
    });
    assert_unpatched(&mutate(&server, "already", "CREATE", &already, None));
    // Nor is anything pinned when nothing verified.
    let nothing = deployment(
        "nothing",
        vec![container("unsigned", &unsigned.reference()), container("tool", &other.reference())],
    );
    assert_unpatched(&mutate(&server, "nothing", "CREATE", &nothing, None));

    // The pinned objects go to /validate as the API server would send them.
    // The Pod is admitted, judged from the verdict /mutate kept under the
    // digest: no new fetch.
    let misses = counter(&server, MISSES);
    let hits = counter(&server, HITS);
    let response = answer(&server, "/validate", &review("validate-pod", "CREATE", &pinned_pod, None));
    assert_eq!(response["allowed"], true, "the pinned Pod should be admitted: {response:#}");
    assert_eq!(counter(&server, MISSES), misses, "the pinned references should be answered from the cache");
    assert!(counter(&server, HITS) > hits, "the pinned references should be answered from the cache");
    // The Deployment is denied for its unsigned image alone.
    let response = answer(&server, "/validate", &review("validate-deployment", "CREATE", &pinned_deployment, None));
    assert_eq!(response["allowed"], false, "{response:#}");
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(RULE) && message.contains(&unsigned.reference()), "{message}");
    assert!(!message.contains(&app.reference()), "the pinned image should pass: {message}");
    let causes = response["status"]["details"]["causes"].as_array().expect("causes");
    assert_eq!(causes.len(), 1, "{response:#}");
    assert!(causes[0]["field"].as_str().unwrap().contains("containers[1]"), "{response:#}");
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn mutate_on_update_pins_only_the_images_that_changed() {
    let (fx, key, server) = serve(json!({}));
    let (app, sidecar, next) = (
        signed(&fx, &key, "signed/app"),
        signed(&fx, &key, "signed/sidecar"),
        signed(&fx, &key, "signed/sidecar-next"),
    );
    let old = deployment("web", vec![container("app", &app.reference()), container("sidecar", &sidecar.reference())]);

    // The same images (a scale, a label): nothing pinned, though both verify.
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    assert_unpatched(&mutate(&server, "same", "UPDATE", &scaled, Some(&old)));
    // The same object on CREATE is pinned: the UPDATE case is not vacuous.
    let response = mutate(&server, "create", "CREATE", &scaled, None);
    assert_eq!(
        apply(&response, &scaled),
        with(
            &scaled,
            &[
                ("/spec/template/spec/containers/0/image", pinned(&app)),
                ("/spec/template/spec/containers/1/image", pinned(&sidecar))
            ]
        )
    );

    // The sidecar changed: it alone is pinned.
    let updated = with(&old, &[("/spec/template/spec/containers/1/image", next.reference())]);
    let response = mutate(&server, "changed", "UPDATE", &updated, Some(&old));
    let expected = with(&updated, &[("/spec/template/spec/containers/1/image", pinned(&next))]);
    assert_eq!(apply(&response, &updated), expected);

    // `kubectl debug`: an UPDATE of the pods/ephemeralcontainers subresource
    // adds a container to a running Pod (whose other image is by tag: it was
    // admitted before pinning was on). Only the new container is pinned.
    let debug = signed(&fx, &key, "signed/debug");
    let running = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "prod"},
        "spec": {"containers": [container("app", &app.reference())]},
    });
    let mut debugged = running.clone();
    debugged["spec"]["ephemeralContainers"] = json!([container("debugger", &debug.reference())]);
    let mut request = review("debug", "UPDATE", &debugged, Some(&running));
    request["request"]["subResource"] = json!("ephemeralcontainers");
    let response = answer(&server, "/mutate", &request);
    let expected = with(&debugged, &[("/spec/ephemeralContainers/0/image", pinned(&debug))]);
    assert_eq!(apply(&response, &debugged), expected);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn mutate_digest_false_pins_nothing() {
    let (fx, key, server) = serve(json!({"mutateDigest": false}));
    let app = signed(&fx, &key, "signed/app");
    let object = deployment("web", vec![container("app", &app.reference())]);
    assert_unpatched(&mutate(&server, "off", "CREATE", &object, None));
    // Verification itself is still on.
    let response = answer(&server, "/validate", &review("validate", "CREATE", &object, None));
    assert_eq!(response["allowed"], true, "{response:#}");
    let unsigned = fx.push("signed/unsigned", &tag());
    let object = deployment("bad", vec![container("app", &unsigned.reference())]);
    let response = answer(&server, "/validate", &review("validate-unsigned", "CREATE", &object, None));
    assert_eq!(response["allowed"], false, "{response:#}");
}

// ---------------------------------------------------------------------------
// check --pin

/// `palisade check --config CONFIG --verify-images --insecure --format json
/// ARGS…`, in `dir`, with `stdin` as standard input.
fn check(fx: &Fixture, config: &Path, dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = fx.palisade();
    cmd.current_dir(dir).arg("check").arg("--config").arg(config).args(verify_flags()).args(["--format", "json"]);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("run palisade check");
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// The JSON report in `bytes` (a whole stream), with the command's output on failure.
fn report(bytes: &[u8], out: &Output) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}); exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn image_signature_findings(report: &Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == RULE)
        .map(|f| (f["resource"]["name"].as_str().unwrap().to_string(), f["path"].as_str().unwrap().to_string()))
        .collect();
    found.sort();
    found
}

/// A configuration (`palisade.yaml` in the fixture) trusting `cosign.pub` for `…/signed/**`.
fn check_config(fx: &Fixture, key: &Key) -> PathBuf {
    let pubkey = fx.key_file("cosign.pub", key);
    fx.config(Some(json!({
        "trustedRoot": ["trusted_root.json"],
        "policies": [{"name": "prod", "images": ["127.0.0.1:*/signed/**"], "keys": [pubkey]}],
    })))
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn check_pin_inserts_the_digest_after_verified_images_and_changes_no_other_byte() {
    let fx = Fixture::start();
    let key = Key::p256();
    let config = check_config(&fx, &key);
    let app = signed(&fx, &key, "signed/app");
    let anchored = signed(&fx, &key, "signed/anchored");
    let unsigned = fx.push("signed/unsigned", &tag());
    let (s, u, a) = (app.reference(), unsigned.reference(), anchored.reference());
    // Comments (one naming the signed image), both kinds of quotes, flow
    // style, CRLF in one document, and three documents.
    let input = format!(
        "# Workloads: the front end runs {s}, signed.\n\
         apiVersion: apps/v1\n\
         kind: Deployment\n\
         metadata:\n  name: web   # the front end\n  namespace: prod\n\
         spec:\n  selector: {{matchLabels: {{app: web}}}}\n\
         \x20 template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n\
         \x20       - name: web\n\
         \x20         image: \"{s}\"   # signed, double-quoted\n\
         \x20         args: ['--tag', \"x\"]\n\
         ---\r\n\
         apiVersion: v1\r\n\
         kind: Pod\r\n\
         metadata: {{name: 'unsigned', namespace: prod}}\r\n\
         spec:\r\n  containers: [{{name: app, image: '{u}'}}]  # not signed\r\n\
         ---\n\
         # The same signed image, unquoted, and one behind an anchor.\n\
         apiVersion: v1\n\
         kind: Pod\n\
         metadata: {{name: plain, namespace: prod}}\n\
         spec:\n  containers:\n  - name: a\n    image: {s}\n\
         \x20 - name: b\n    image: &img {a}\n  - name: c\n    image: *img\n"
    );
    let digest = &app.digest;
    let expected = input.replacen(&format!("\"{s}\""), &format!("\"{s}@{digest}\""), 1).replacen(
        &format!("    image: {s}\n"),
        &format!("    image: {s}@{digest}\n"),
        1,
    );
    assert_eq!(expected.len(), input.len() + 2 * (1 + digest.len()), "both signed images should be found in the input");
    std::fs::write(fx.dir.path().join("workloads.yaml"), &input).unwrap();

    let out = check(&fx, &config, fx.dir.path(), &["--pin", "workloads.yaml"], None);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(String::from_utf8(out.stdout.clone()).unwrap(), expected, "stderr: {stderr}");
    // The anchored image could not be edited in place: a note names where.
    let notes: Vec<&str> = stderr.lines().filter(|l| l.starts_with("palisade: note:")).collect();
    assert_eq!(notes.len(), 2, "{stderr}");
    assert!(notes[0].contains("workloads.yaml:32: /spec/containers/1/image not pinned"), "{stderr}");
    assert!(notes[1].contains("workloads.yaml:34: /spec/containers/2/image not pinned"), "{stderr}");
    // The report is on standard error, after the notes.
    let json_start = stderr.find('{').unwrap_or_else(|| panic!("no report on stderr: {stderr}"));
    let pinned_report = report(&stderr.as_bytes()[json_start..], &out);
    // The input file is not touched.
    assert_eq!(std::fs::read_to_string(fx.dir.path().join("workloads.yaml")).unwrap(), input);

    // The same run without --pin: the same findings and exit code (1: the unsigned image).
    let plain = check(&fx, &config, fx.dir.path(), &["workloads.yaml"], None);
    let plain_report = report(&plain.stdout, &plain);
    assert_eq!(image_signature_findings(&plain_report), [("unsigned".to_string(), POD_IMAGE.to_string())]);
    assert_eq!(image_signature_findings(&pinned_report), image_signature_findings(&plain_report));
    assert_eq!(pinned_report["findings"], plain_report["findings"]);
    assert_eq!(plain.status.code(), Some(1), "{}", String::from_utf8_lossy(&plain.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn check_pin_output_writes_each_input_at_its_path() {
    let fx = Fixture::start();
    let key = Key::p256();
    let config = check_config(&fx, &key);
    let app = signed(&fx, &key, "signed/app");
    let unsigned = fx.push("signed/unsigned", &tag());
    let manifest = |name: &str, image: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}  # {image}\n  namespace: prod\n\
             spec:\n  containers:\n  - name: app\n    image: {image}\n"
        )
    };
    let good = manifest("good", &app.reference());
    let bad = manifest("bad", &unsigned.reference());
    let good_pinned = good.replace(&format!("image: {}\n", app.reference()), &format!("image: {}\n", pinned(&app)));
    assert_ne!(good_pinned, good);
    std::fs::create_dir_all(fx.dir.path().join("manifests/team")).unwrap();
    std::fs::write(fx.dir.path().join("manifests/team/good.yaml"), &good).unwrap();
    std::fs::write(fx.dir.path().join("manifests/bad.yaml"), &bad).unwrap();
    let output = tempfile::tempdir().unwrap();
    let out_dir = output.path().join("pinned");
    let out_arg = out_dir.to_str().unwrap();

    // Verified only: exit 0, the report on standard output.
    let out = check(&fx, &config, fx.dir.path(), &["--pin", "--output", out_arg, "manifests/team/good.yaml"], None);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let first = report(&out.stdout, &out);
    assert!(image_signature_findings(&first).is_empty(), "{first:#}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(out_dir.join("manifests/team/good.yaml")).unwrap(), good_pinned);

    // A directory and standard input: every file at its path, stdin as stdin.yaml; exit 1.
    let out = check(&fx, &config, fx.dir.path(), &["--pin", "--output", out_arg, "manifests", "-"], Some(&good));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let second = report(&out.stdout, &out);
    assert_eq!(image_signature_findings(&second), [("bad".to_string(), POD_IMAGE.to_string())], "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(std::fs::read_to_string(out_dir.join("manifests/team/good.yaml")).unwrap(), good_pinned);
    assert_eq!(std::fs::read_to_string(out_dir.join("manifests/bad.yaml")).unwrap(), bad);
    assert_eq!(std::fs::read_to_string(out_dir.join("stdin.yaml")).unwrap(), good_pinned);
    // The inputs are untouched.
    assert_eq!(std::fs::read_to_string(fx.dir.path().join("manifests/team/good.yaml")).unwrap(), good);

    // Without --pin: the same exit code.
    let plain = check(&fx, &config, fx.dir.path(), &["manifests", "-"], Some(&good));
    assert_eq!(image_signature_findings(&report(&plain.stdout, &plain)), image_signature_findings(&second));
    assert_eq!(plain.status.code(), Some(1));
}

// ---------------------------------------------------------------------------
// export webhook

const SERVER_IMAGE: &str =
    "ghcr.io/example/palisade:0.1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// `palisade export webhook` with `config` (a file in `dir`), read back.
fn export_webhook(dir: &Path, config: Option<Value>) -> Vec<Value> {
    let mut cmd = common::palisade();
    cmd.args(["export", "webhook", "--image", SERVER_IMAGE, "--ca-bundle"]).arg(dir.join("ca.pem"));
    if let Some(config) = config {
        let path = dir.join("palisade.yaml");
        std::fs::write(&path, config.to_string()).unwrap();
        cmd.arg("--config").arg(&path);
    }
    let out = common::run(&mut cmd);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    palisade::documents::read_documents(&text, &Default::default())
        .into_iter()
        .map(|d| d.content.expect("the export reads back as YAML").value)
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

#[test]
fn export_webhook_wires_mutate_in_only_with_trust_policies() {
    let pki = common::server::Pki::new();
    let dir = pki.dir.path();
    let sigstore = Sigstore::new();
    std::fs::copy(sigstore.trusted_root_path(), dir.join("trusted_root.json")).unwrap();
    Key::p256().write_public(&dir.join("cosign.pub"));
    let verification = json!({
        "trustedRoot": ["trusted_root.json"],
        "policies": [{"name": "prod", "images": ["ghcr.io/acme/**"], "keys": ["cosign.pub"]}],
    });
    let dns_and_registries = json!([
        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        {"ports": [{"protocol": "TCP", "port": 443}]},
    ]);

    // Trust policies: a MutatingWebhookConfiguration for /mutate, after the validating one.
    let docs = export_webhook(dir, Some(json!({"imageVerification": verification})));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.last(), Some(&"MutatingWebhookConfiguration"), "{kinds:?}");
    let mutating = of_kind(&docs, "MutatingWebhookConfiguration");
    assert_eq!(mutating.len(), 1, "{kinds:?}");
    assert_eq!(mutating[0]["apiVersion"], "admissionregistration.k8s.io/v1");
    let webhooks = mutating[0]["webhooks"].as_array().unwrap();
    assert_eq!(webhooks.len(), 1, "{:#}", mutating[0]);
    let hook = &webhooks[0];
    let validating = &of_kind(&docs, "ValidatingWebhookConfiguration")[0]["webhooks"][0];
    assert_eq!(hook["clientConfig"]["service"]["path"], "/mutate", "{hook:#}");
    assert_eq!(validating["clientConfig"]["service"]["path"], "/validate", "{validating:#}");
    for field in ["name", "namespace", "port"] {
        assert_eq!(hook["clientConfig"]["service"][field], validating["clientConfig"]["service"][field], "{hook:#}");
    }
    assert_eq!(hook["clientConfig"]["caBundle"], validating["clientConfig"]["caBundle"], "{hook:#}");
    assert!(!hook["clientConfig"]["caBundle"].as_str().unwrap_or_default().is_empty(), "{hook:#}");
    assert_eq!(hook["reinvocationPolicy"], "IfNeeded", "{hook:#}");
    assert_eq!(hook["failurePolicy"], "Fail", "{hook:#}");
    assert_eq!(hook["sideEffects"], "None", "{hook:#}");
    assert_eq!(hook["admissionReviewVersions"], json!(["v1"]), "{hook:#}");
    assert_eq!(hook["namespaceSelector"], validating["namespaceSelector"], "{hook:#}");
    assert_ne!(hook["name"], validating["name"], "{hook:#}");
    // The nine pod-bearing kinds, pods with their ephemeral containers; CREATE and UPDATE.
    let mut resources: Vec<(String, String)> = Vec::new();
    for rule in hook["rules"].as_array().unwrap() {
        assert_eq!(rule["operations"], json!(["CREATE", "UPDATE"]), "{rule:#}");
        assert_eq!(rule["apiVersions"], json!(["v1"]), "{rule:#}");
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                resources.push((group.as_str().unwrap().to_string(), resource.as_str().unwrap().to_string()));
            }
        }
    }
    resources.sort();
    let mut expected: Vec<(String, String)> = [
        ("", "pods"),
        ("", "pods/ephemeralcontainers"),
        ("", "podtemplates"),
        ("", "replicationcontrollers"),
        ("apps", "replicasets"),
        ("apps", "deployments"),
        ("apps", "daemonsets"),
        ("apps", "statefulsets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
    ]
    .iter()
    .map(|(g, r)| (g.to_string(), r.to_string()))
    .collect();
    expected.sort();
    assert_eq!(resources, expected, "{hook:#}");
    let policy = *of_kind(&docs, "NetworkPolicy").iter().find(|p| p["metadata"]["name"] == "palisade").unwrap();
    assert_eq!(policy["spec"]["egress"], dns_and_registries, "{policy:#}");
    // The whole export still passes the hardened profile.
    let file = dir.join("webhook.yaml");
    std::fs::write(&file, docs.iter().map(|d| format!("---\n{d}\n")).collect::<String>()).unwrap();
    // (The server's port, and its egress to registries, are open to every
    // address: the API server's and the registries' are the cluster's own.)
    let exception = dir.join("exception.yaml");
    std::fs::write(
        &exception,
        "exceptions:\n  - rules: [network-policy-permissive]\n    kinds: [NetworkPolicy]\n    names: [palisade]\n    \
         reason: the API server's and the registries' addresses are the cluster's own\n",
    )
    .unwrap();
    let (code, report) = common::json_report(
        common::palisade()
            .args(["check", "--format", "json", "--profile", "hardened", "--config"])
            .arg(&exception)
            .arg(&file),
    );
    for f in report["findings"].as_array().unwrap() {
        assert!(f["rule"] == "network-policy-permissive" && f["exempted"].is_object(), "{f:#}");
    }
    assert_eq!(code, 0);

    // mutateDigest: false: no mutating webhook; the server still verifies (egress).
    let mut off = verification.clone();
    off["mutateDigest"] = json!(false);
    let docs = export_webhook(dir, Some(json!({"imageVerification": off})));
    assert!(of_kind(&docs, "MutatingWebhookConfiguration").is_empty(), "{docs:#?}");
    assert_eq!(of_kind(&docs, "ValidatingWebhookConfiguration").len(), 1);
    assert_eq!(of_kind(&docs, "NetworkPolicy")[1]["spec"]["egress"], dns_and_registries);

    // No trust policies (no configuration, or one without imageVerification):
    // neither a mutating webhook nor any egress.
    for config in [None, Some(json!({"profile": "baseline"}))] {
        let docs = export_webhook(dir, config.clone());
        assert!(of_kind(&docs, "MutatingWebhookConfiguration").is_empty(), "{config:?}: {docs:#?}");
        assert_eq!(of_kind(&docs, "ValidatingWebhookConfiguration").len(), 1, "{config:?}");
        assert_eq!(of_kind(&docs, "NetworkPolicy")[1]["spec"]["egress"], json!([]), "{config:?}");
    }
}
