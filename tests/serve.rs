//! `palisade serve`, end to end: the real binary on a loopback port with a
//! CA made here, spoken to over HTTPS.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::server::*;
use common::*;
use serde_json::{Value, json};

const BASELINE: &str = "profile: baseline\n";

#[test]
fn health_readiness_and_metrics() {
    let server = start(&[], BASELINE, false);
    assert_eq!(get(&server, "/healthz"), (200, "ok\n".into()));
    assert_eq!(get(&server, "/readyz").0, 200);
    let (status, metrics) = get(&server, "/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("palisade_policy_set_info{digest=\"sha256:"), "{metrics}");
    assert!(metrics.contains("palisade_requests_total{endpoint=\"readyz\",code=\"200\"}"), "{metrics}");
    assert_eq!(get(&server, "/nowhere").0, 404);
    assert_eq!(post(&server, "/healthz", &json!({})).0, 405);
}

#[test]
fn allow_and_deny_with_the_admission_review_wire_format() {
    let server = start(&[], BASELINE, false);
    let good = pod("good", "shop", json!({}), json!({}));
    let (status, answer) = post(&server, "/validate", &review("uid-1", "CREATE", "shop", good, Value::Null));
    assert_eq!(status, 200);
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], "uid-1");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");

    let bad = pod("bad", "shop", json!({"privileged": true}), json!({"hostNetwork": true}));
    let (_, answer) = post(&server, "/validate", &review("uid-2", "CREATE", "shop", bad, Value::Null));
    let r = &answer["response"];
    assert_eq!(r["uid"], "uid-2");
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 403);
    assert_eq!(r["status"]["reason"], "Forbidden");
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("pss-privileged") && message.contains("pss-host-namespaces"), "{message}");
    let causes = r["status"]["details"]["causes"].as_array().unwrap();
    assert!(causes.iter().any(|c| c["field"] == "spec.containers[0].securityContext.privileged"), "{causes:?}");
    assert!(causes.iter().any(|c| c["field"] == "spec.hostNetwork"), "{causes:?}");
}

#[test]
fn warn_audit_update_delete_and_exemptions() {
    let config = "profile: baseline
admission:
  mode: enforce
  rules:
    pss-host-ports: {mode: warn}
    pss-host-namespaces: {mode: audit}
  exemptions:
    namespaces: [kube-system]
";
    let mut server = start(&[], config, false);
    let host_port =
        json!({"containers": [{"name": "app", "image": "i", "ports": [{"containerPort": 80, "hostPort": 80}]}]});
    let mut warned = pod("warned", "shop", json!({}), json!({}));
    warned["spec"] = host_port;
    let (_, answer) = post(&server, "/validate", &review("w", "CREATE", "shop", warned, Value::Null));
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let warnings = answer["response"]["warnings"].as_array().unwrap();
    assert!(warnings[0].as_str().unwrap().starts_with("pss-host-ports: "), "{warnings:?}");
    assert!(warnings.iter().all(|w| w.as_str().unwrap().len() < 120));

    let audited = pod("audited", "shop", json!({}), json!({"hostPID": true}));
    let (_, answer) = post(&server, "/validate", &review("a", "CREATE", "shop", audited.clone(), Value::Null));
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"].get("warnings").is_none(), "{answer}");

    // UPDATE judges the new object; DELETE is not evaluated; kube-system is exempt.
    let bad = pod("p", "shop", json!({"privileged": true}), json!({}));
    let good = pod("p", "shop", json!({}), json!({}));
    let (_, answer) = post(&server, "/validate", &review("u1", "UPDATE", "shop", bad.clone(), good.clone()));
    assert_eq!(answer["response"]["allowed"], false);
    let (_, answer) = post(&server, "/validate", &review("u2", "UPDATE", "shop", good, bad.clone()));
    assert_eq!(answer["response"]["allowed"], true);
    let (_, answer) = post(&server, "/validate", &review("d", "DELETE", "shop", Value::Null, bad.clone()));
    assert_eq!(answer["response"]["allowed"], true);
    let (_, answer) = post(&server, "/validate", &review("k", "CREATE", "kube-system", bad, Value::Null));
    assert_eq!(answer["response"]["allowed"], true);

    let (_, metrics) = get(&server, "/metrics");
    assert!(
        metrics
            .contains("palisade_evaluations_total{endpoint=\"validate\",rule=\"pss-host-namespaces\",result=\"fail\"}"),
        "{metrics}"
    );
    // One JSON line per decision on stdout.
    drop(server.child.kill());
    let mut out = String::new();
    server.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let denied = lines.iter().find(|l| l["uid"] == "u1").expect("a log line for u1");
    assert_eq!(denied["decision"], "denied");
    assert_eq!(denied["operation"], "UPDATE");
    assert_eq!(denied["rulesFailed"][0], "pss-privileged");
    assert!(denied["durationMs"].as_f64().is_some());
}

#[test]
fn malformed_oversized_and_mistyped_requests() {
    let server = start(&[], BASELINE, false);
    let config = || client_config(&server.pki, None);
    let json_ct = [("Content-Type", "application/json")];
    let (status, _, body, _) = request_with(&server, config(), "POST", "/validate", &json_ct, b"{not json").unwrap();
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let wrong = json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}});
    assert_eq!(post(&server, "/validate", &wrong).0, 400);
    // A body declared over 3 MiB is refused before it is read (the rest of it
    // would only be thrown away), so the client sends the head alone here.
    let (status, head, _, _) = request_with(
        &server,
        config(),
        "POST",
        "/validate",
        &[("Content-Type", "application/json"), ("Content-Length", "3145738")],
        b"",
    )
    .unwrap();
    assert_eq!(status, 413);
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    let (status, _, _, _) =
        request_with(&server, config(), "POST", "/validate", &[("Content-Type", "text/plain")], b"{}").unwrap();
    assert_eq!(status, 415);
    // The server is still healthy afterwards.
    assert_eq!(get(&server, "/healthz").0, 200);
}

#[test]
fn a_trapping_policy_fails_closed_unless_ignored() {
    let misbehave = testing_component("test-misbehave");
    let extra = ["--policies", misbehave.to_str().unwrap()];
    let trap = "profile: baseline\nsettings:\n  test-misbehave: {mode: trap}\n";
    let server = start(&extra, trap, false);
    let bad = pod("bad-pod", "shop", json!({}), json!({}));
    let (_, answer) = post(&server, "/validate", &review("t", "CREATE", "shop", bad.clone(), Value::Null));
    let r = &answer["response"];
    assert_eq!(r["allowed"], false, "{answer}");
    assert_eq!(r["status"]["code"], 500);
    assert!(r["status"]["message"].as_str().unwrap().contains("test-misbehave failed"), "{answer}");
    let fine = pod("fine", "shop", json!({}), json!({}));
    let (_, answer) = post(&server, "/validate", &review("f", "CREATE", "shop", fine, Value::Null));
    assert_eq!(answer["response"]["allowed"], true, "the next request gets a fresh instance: {answer}");
    drop(server);

    let ignore = format!("{trap}admission:\n  rules:\n    test-misbehave: {{failurePolicy: ignore}}\n");
    let server = start(&extra, &ignore, false);
    let (_, answer) = post(&server, "/validate", &review("i", "CREATE", "shop", bad, Value::Null));
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(answer["response"]["warnings"][0].as_str().unwrap().contains("could not evaluate"), "{answer}");
}

#[test]
fn mutual_tls_refuses_clients_without_a_certificate() {
    let server = start(&[], BASELINE, true);
    assert!(request_with(&server, client_config(&server.pki, None), "GET", "/healthz", &[], b"").is_err());
    let (status, _, _, _) =
        request_with(&server, client_config(&server.pki, Some("client")), "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(status, 200);
}

#[test]
fn certificates_are_reloaded_when_rotated() {
    let server = start(&[], BASELINE, false);
    let (_, _, _, first) =
        request_with(&server, client_config(&server.pki, None), "GET", "/healthz", &[], b"").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let rotated = server.pki.issue("server", &["localhost", "127.0.0.1"], false);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, _, peer) =
            request_with(&server, client_config(&server.pki, None), "GET", "/healthz", &[], b"").unwrap();
        if peer == rotated.der().to_vec() {
            assert_ne!(peer, first);
            break;
        }
        assert!(Instant::now() < deadline, "the rotated certificate was never served");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn gatekeeper_provider_and_kyverno_service() {
    let server = start(&[], BASELINE, false);
    let bad = pod("bad", "shop", json!({"privileged": true}), json!({}));
    let good = pod("good", "shop", json!({}), json!({}));
    let request = json!({
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": [bad.to_string(), good.to_string(), "{oops"]},
    });
    let (status, answer) = post(&server, "/gatekeeper/v1/provider", &request);
    assert_eq!(status, 200);
    assert_eq!(answer["kind"], "ProviderResponse");
    assert_eq!(answer["response"]["idempotent"], true);
    let items = answer["response"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["key"], bad.to_string());
    assert_eq!(items[0]["value"][0]["rule"], "pss-privileged");
    assert_eq!(items[1]["value"], json!([]));
    assert!(items[2]["error"].as_str().unwrap().contains("not JSON"));
    let (_, answer) = post(&server, "/gatekeeper/v1/provider", &json!({"kind": "Other"}));
    assert!(answer["response"]["systemError"].as_str().is_some(), "{answer}");

    // Kyverno's apiCall may send no Content-Type, and a bearer token.
    let body = json!({"object": bad, "operation": "CREATE"}).to_string();
    let (status, _, raw, _) = request_with(
        &server,
        client_config(&server.pki, None),
        "POST",
        "/kyverno/v1/validate",
        &[("Authorization", "Bearer abc")],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(answer["allowed"], false);
    assert_eq!(answer["violations"][0]["rule"], "pss-privileged");
    assert_eq!(answer["violations"][0]["path"], "/spec/containers/0/securityContext/privileged");
    assert!(answer["message"].as_str().unwrap().contains("pss-privileged"));
    let (_, answer) = post(&server, "/kyverno/v1/validate", &json!({"object": good, "operation": "CREATE"}));
    assert_eq!(answer["allowed"], true);
    assert_eq!(answer["violations"], json!([]));
}

#[test]
fn cross_resource_rules_are_skipped_and_counted() {
    let server = start(&[], "profile: hardened\n", false);
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "shop"},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let mut r = review("x", "CREATE", "shop", deploy, Value::Null);
    r["request"]["kind"]["kind"] = "Deployment".into();
    let (_, answer) = post(&server, "/validate", &r);
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(!message.contains("network-policy-coverage"), "{message}");
    let (_, metrics) = get(&server, "/metrics");
    assert!(metrics.contains("rule=\"network-policy-coverage\",result=\"skipped\""), "{metrics}");
}

#[test]
fn sigterm_finishes_requests_in_flight() {
    // A policy that loops on objects named bad* holds a request in the server
    // for its whole execution bound (1.5 s) before `failurePolicy: ignore`
    // lets it through: SIGTERM lands while that request is surely in flight.
    let misbehave = testing_component("test-misbehave");
    let config = "profile: baseline\nsettings:\n  test-misbehave: {mode: loop}\nadmission:\n  rules:\n    test-misbehave: {failurePolicy: ignore}\n";
    let server = start(&["--policies", misbehave.to_str().unwrap(), "--policy-timeout-ms", "1500"], config, false);
    let pki_config = client_config(&server.pki, None);
    let addr = server.addr.clone();
    let mut handles = Vec::new();
    for i in 0..8 {
        let (config, addr) = (pki_config.clone(), addr.clone());
        let name = if i == 0 { "bad-slow".to_string() } else { format!("p{i}") };
        handles.push(std::thread::spawn(move || {
            let body =
                review(&format!("s{i}"), "CREATE", "shop", pod(&name, "shop", json!({}), json!({})), Value::Null)
                    .to_string();
            let started = Instant::now();
            (ServerAddr(addr).post(config, &body), started.elapsed())
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = server.child.id();
    let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let results: Vec<(Result<u16, String>, Duration)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // Every request was sent before the signal, and every one gets its whole answer,
    // the held one included (after its 1.5 s, well after the signal).
    for (i, (status, _)) in results.iter().enumerate() {
        assert_eq!(status.as_ref().ok(), Some(&200), "request {i}: {status:?}");
    }
    assert!(results[0].1 >= Duration::from_millis(1400), "the slow request was held: {:?}", results[0].1);
    let mut server = server;
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// A client that needs only the address (for threads).
struct ServerAddr(String);

impl ServerAddr {
    fn post(&self, config: Arc<rustls::ClientConfig>, body: &str) -> Result<u16, String> {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(config, name).unwrap();
        let tcp = TcpStream::connect(&self.0).map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let head = format!(
            "POST /validate HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        tls.write_all(body.as_bytes()).map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw);
        text.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| "no answer".to_string())
    }
}
