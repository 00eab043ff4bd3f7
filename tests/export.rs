//! `palisade export`: the generated objects, checked for real. The webhook
//! manifests pass the `hardened` profile; every Gatekeeper and Kyverno object
//! validates against its engine's CRD schema; the ConstraintTemplate's Rego
//! runs in a Rego engine (regorus) with `external_data` calling a running
//! `palisade serve` over HTTPS; the ClusterPolicy's JMESPath runs on the
//! server's real answers.

mod common;

use common::server::*;
use common::*;
use serde_json::{Value, json};

const IMAGE: &str =
    "ghcr.io/example/palisade:0.1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn export(args: &[&str], ca: &std::path::Path) -> Vec<Value> {
    let out = run(palisade().arg("export").args(args).arg("--ca-bundle").arg(ca));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    palisade::documents::read_documents(&text, &Default::default())
        .into_iter()
        .map(|d| d.content.expect("the export reads back as YAML").value)
        .collect()
}

/// The one finding the exported objects keep, and why it is accepted: the
/// server's port is open to every source, because the API server's address
/// (and, verifying images, the registries') is the cluster's own to know.
pub fn open_port_exception(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let config = dir.path().join("exception.yaml");
    std::fs::write(
        &config,
        "exceptions:\n  - rules: [network-policy-permissive]\n    kinds: [NetworkPolicy]\n    names: [palisade]\n    \
         reason: the API server's address is the cluster's own\n",
    )
    .unwrap();
    config
}

/// Every finding is the open port's, and exempted.
pub fn assert_only_the_open_port(report: &Value) {
    for f in report["findings"].as_array().unwrap() {
        assert!(f["rule"] == "network-policy-permissive" && f["exempted"].is_object(), "{f:#}");
    }
}

fn crd_schema(file: &str, version: &str) -> Value {
    let text = std::fs::read_to_string(corpus().join("crds").join(file)).unwrap();
    let crd = palisade::documents::read_documents(&text, &Default::default()).remove(0).content.unwrap().value;
    crd["spec"]["versions"].as_array().unwrap().iter().find(|v| v["name"] == version).unwrap()["schema"]["openAPIV3Schema"].clone()
}

fn assert_valid(schema: &Value, object: &Value) {
    let validator = jsonschema::validator_for(schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(object).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{object:#}");
}

#[test]
fn webhook_manifests_pass_the_hardened_profile() {
    let pki = Pki::new();
    let docs = export(&["webhook", "--image", IMAGE], &pki.path("ca.pem"));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "NetworkPolicy",
            "ValidatingWebhookConfiguration"
        ]
    );
    // A default deny for the namespace, then what the server needs.
    assert_eq!(docs[5]["spec"], json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}));
    let vwc = &docs[7]["webhooks"][0];
    assert_eq!(vwc["admissionReviewVersions"], json!(["v1"]));
    assert_eq!(vwc["sideEffects"], "None");
    assert_eq!(vwc["failurePolicy"], "Fail");
    assert_eq!(vwc["timeoutSeconds"], 10);
    assert_eq!(vwc["namespaceSelector"]["matchExpressions"][0]["values"], json!(["palisade", "kube-system"]));
    assert!(!vwc["clientConfig"]["caBundle"].as_str().unwrap().is_empty());
    assert!(vwc["rules"].as_array().unwrap().iter().any(|r| r["resources"] == json!(["deployments"])));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("webhook.yaml");
    let out = run(palisade().args(["export", "webhook", "--image", IMAGE, "--ca-bundle"]).arg(pki.path("ca.pem")));
    std::fs::write(&file, &out.stdout).unwrap();
    let (code, report) = json_report(
        palisade()
            .args(["check", "--format", "json", "--profile", "hardened", "--config"])
            .arg(open_port_exception(&dir))
            .arg(&file),
    );
    assert_only_the_open_port(&report);
    assert_eq!(code, 0);

    // Without a way for the API server to trust the server, nothing is exported.
    let out = run(palisade().args(["export", "webhook", "--image", IMAGE]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(palisade().args([
        "export",
        "webhook",
        "--image",
        IMAGE,
        "--cert-manager-certificate",
        "palisade/palisade",
    ]));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cert-manager.io/inject-ca-from: palisade/palisade"));
}

#[test]
fn gatekeeper_objects_validate_and_the_rego_decides_through_the_server() {
    let server = start(&[], "profile: baseline\n", false);
    let docs = export(&["gatekeeper", "--profile", "baseline"], &server.pki.path("ca.pem"));
    let (provider, template, constraint) = (&docs[0], &docs[1], &docs[2]);
    assert_valid(&crd_schema("gatekeeper/provider-customresourcedefinition.yaml", "v1beta1"), provider);
    assert_valid(&crd_schema("gatekeeper/constrainttemplate-customresourcedefinition.yaml", "v1"), template);
    assert_eq!(constraint["kind"], template["spec"]["crd"]["spec"]["names"]["kind"]);
    assert_eq!(constraint["spec"]["enforcementAction"], "deny");
    assert!(provider["spec"]["url"].as_str().unwrap().starts_with("https://"));

    // Evaluate the template's Rego with external_data answered by the running server.
    let rego = template["spec"]["targets"][0]["rego"].as_str().unwrap().to_string();
    let mut engine = regorus::Engine::new();
    engine.set_rego_v0(true);
    engine.add_policy("palisade.rego".into(), rego).unwrap();
    let addr = server.addr.clone();
    let config = client_config(&server.pki, None);
    engine
        .add_extension(
            "external_data".into(),
            1,
            Box::new(move |args: Vec<regorus::Value>| {
                let request: Value = serde_json::from_str(&args[0].to_json_str()?)?;
                let body = json!({
                    "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
                    "kind": "ProviderRequest",
                    "request": {"keys": request["keys"]},
                });
                let (status, _, raw, _) =
                    request_raw(&addr, config.clone(), "/gatekeeper/v1/provider", &body.to_string())?;
                anyhow::ensure!(status == 200, "provider answered {status}");
                let answer: Value = serde_json::from_slice(&raw)?;
                // Gatekeeper hands Rego: responses [[key, value]], errors [[key, error]], system_error.
                let r = &answer["response"];
                let mut responses = Vec::new();
                let mut errors = Vec::new();
                for item in r["items"].as_array().cloned().unwrap_or_default() {
                    match item.get("error").filter(|e| !e.is_null()) {
                        Some(e) => errors.push(json!([item["key"], e])),
                        None => responses.push(json!([item["key"], item["value"]])),
                    }
                }
                let shaped = json!({"responses": responses, "errors": errors, "status_code": 200,
                    "system_error": r.get("systemError").cloned().unwrap_or(json!(""))});
                regorus::Value::from_json_str(&shaped.to_string())
            }),
        )
        .unwrap();
    let mut violations = |object: Value| -> Vec<String> {
        engine.set_input_json(&json!({"review": {"object": object}}).to_string()).unwrap();
        let result = engine.eval_rule("data.palisade.violation".into()).unwrap();
        let value: Value = serde_json::from_str(&result.to_json_str().unwrap()).unwrap();
        value.as_array().unwrap().iter().map(|v| v["msg"].as_str().unwrap().to_string()).collect()
    };
    let bad = violations(pod("bad", "shop", json!({"privileged": true}), json!({})));
    assert!(
        bad.iter()
            .any(|m| m.starts_with("pss-privileged: ") && m.contains("spec.containers[0].securityContext.privileged")),
        "{bad:?}"
    );
    assert!(violations(pod("good", "shop", json!({}), json!({}))).is_empty());
}

/// POST `body` to `path` of the server at `addr` (for use inside a Rego extension).
fn request_raw(
    addr: &str,
    config: std::sync::Arc<rustls::ClientConfig>,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, String, Vec<u8>, Vec<u8>)> {
    use std::io::{Read, Write};
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let conn = rustls::ClientConnection::new(config, name)?;
    let tcp = std::net::TcpStream::connect(addr)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| anyhow::anyhow!("no HTTP head"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut payload = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        payload = dechunk(&payload);
    }
    Ok((status, head, payload, Vec::new()))
}

#[test]
fn kyverno_policy_validates_and_its_jmespath_reads_the_server() {
    let server = start(&[], "profile: baseline\n", false);
    let docs = export(&["kyverno", "--profile", "baseline"], &server.pki.path("ca.pem"));
    assert_eq!(docs.len(), 1);
    let policy = &docs[0];
    assert_valid(&crd_schema("kyverno/kyverno.io_clusterpolicies.yaml", "v1"), policy);
    let rule = &policy["spec"]["rules"][0];
    let call = &rule["context"][0]["apiCall"];
    assert_eq!(call["method"], "POST");
    assert!(call["service"]["caBundle"].as_str().unwrap().contains("BEGIN CERTIFICATE"));
    assert_eq!(rule["validate"]["failureAction"], "Enforce");

    // The expressions between {{ }} in the policy, run on the server's real answers.
    let strip = |s: &str| s.trim().trim_start_matches("{{").trim_end_matches("}}").trim().to_string();
    let allowed_expr = strip(rule["validate"]["deny"]["conditions"]["any"][0]["key"].as_str().unwrap());
    let message_expr = strip(rule["validate"]["message"].as_str().unwrap());
    let allowed = jmespath::compile(&allowed_expr).unwrap();
    let message = jmespath::compile(&message_expr).unwrap();
    for (object, expect_allowed) in [
        (pod("bad", "shop", json!({"privileged": true}), json!({})), false),
        (pod("good", "shop", json!({}), json!({})), true),
    ] {
        let (status, answer) = post(&server, "/kyverno/v1/validate", &json!({"object": object, "operation": "CREATE"}));
        assert_eq!(status, 200);
        let context = jmespath::Variable::from_json(&json!({"palisade": answer}).to_string()).unwrap();
        let got = allowed.search(&context).unwrap();
        assert_eq!(got.as_boolean(), Some(expect_allowed), "{answer}");
        let text = message.search(&context).unwrap();
        if !expect_allowed {
            assert!(text.as_string().unwrap().contains("pss-privileged"), "{text:?}");
        }
    }
}

/// With `--config`, the server in the cluster runs with that configuration:
/// a ConfigMap carries the file and every file it names, mounted so the same
/// relative paths resolve, and `serve` is given `--config`. A path outside the
/// configuration's directory cannot be carried, and says so.
#[test]
fn webhook_carries_the_configuration_into_the_cluster() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    let key = "-----BEGIN PUBLIC KEY-----\nnot checked by export\n-----END PUBLIC KEY-----\n";
    std::fs::write(dir.path().join("keys/release.pub"), key).unwrap();
    let config = "imageVerification:\n  policies:\n    - name: prod\n      images: [\"ghcr.io/acme/**\"]\n      keys: [keys/release.pub]\n";
    let path = dir.path().join("palisade.yaml");
    std::fs::write(&path, config).unwrap();
    let docs = export(&["webhook", "--image", IMAGE, "--config", path.to_str().unwrap()], &pki.path("ca.pem"));
    let of = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"));
    let map = of("ConfigMap");
    assert_eq!(map["data"]["palisade.yaml"], config);
    assert_eq!(map["data"]["file-0"], key);
    let pod = &of("Deployment")["spec"]["template"]["spec"];
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "config").unwrap();
    assert_eq!(volume["configMap"]["name"], map["metadata"]["name"]);
    assert_eq!(
        volume["configMap"]["items"],
        json!([{"key": "palisade.yaml", "path": "palisade.yaml"}, {"key": "file-0", "path": "keys/release.pub"}])
    );
    let args: Vec<&str> =
        pod["containers"][0]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(args.windows(2).any(|w| w == ["--config", "/config/palisade.yaml"]), "{args:?}");
    // Trust policies: the server reaches registries, and pins what verified.
    let server_policy =
        docs.iter().find(|d| d["kind"] == "NetworkPolicy" && d["metadata"]["name"] == "palisade").unwrap();
    assert!(!server_policy["spec"]["egress"].as_array().unwrap().is_empty());
    assert_eq!(of("MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["service"]["path"], "/mutate");

    let outside = config.replace("keys/release.pub", "../release.pub");
    std::fs::write(&path, outside).unwrap();
    let out = run(palisade()
        .args(["export", "webhook", "--image", IMAGE, "--config"])
        .arg(&path)
        .arg("--ca-bundle")
        .arg(pki.path("ca.pem")));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("../release.pub") && err.contains("below the configuration"), "{err}");
}
