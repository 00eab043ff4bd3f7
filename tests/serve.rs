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
    assert!(r["status"]["message"].as_str().unwrap().contains("[test-misbehave] could not evaluate: "), "{answer}");
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

/// A privileged Pod, and one that passes Pod Security's restricted level but
/// for a missing image digest (low) and the hardened profile's medium rules.
fn privileged_and_restricted() -> (Value, Value) {
    let privileged = pod("privileged", "shop", json!({"privileged": true}), json!({}));
    let restricted = pod(
        "restricted",
        "shop",
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}),
        json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}}),
    );
    (privileged, restricted)
}

#[test]
fn admission_denies_from_high_and_warns_below() {
    let (privileged, restricted) = privileged_and_restricted();
    // The default: enforce from high.
    let server = start(&[], "profile: hardened\n", false);
    let (_, answer) = post(&server, "/validate", &review("low", "CREATE", "shop", restricted.clone(), Value::Null));
    let r = &answer["response"];
    assert_eq!(r["allowed"], true, "a low finding must not deny: {answer}");
    let warnings: Vec<&str> = r["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(warnings.iter().any(|w| w.starts_with("image-digest: ")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.starts_with("liveness-probe: ")), "medium warns too: {warnings:?}");
    let (_, answer) = post(&server, "/validate", &review("high", "CREATE", "shop", privileged.clone(), Value::Null));
    let r = &answer["response"];
    assert_eq!(r["allowed"], false, "{answer}");
    assert_eq!(r["status"]["code"], 403);
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("[pss-privileged] "), "{message}");
    assert!(!message.contains("image-digest"), "below the threshold, not a reason to deny: {message}");
    assert!(r["status"]["details"]["causes"].as_array().unwrap().iter().all(|c| c["message"] != ""), "{answer}");
    assert!(
        r["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().starts_with("image-digest: ")),
        "a denial still carries the warnings: {answer}"
    );
    // Kyverno's service follows the same threshold.
    let (_, answer) = post(&server, "/kyverno/v1/validate", &json!({"object": restricted, "operation": "CREATE"}));
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(answer["violations"], json!([]));
    drop(server);

    // Configured to deny on every finding.
    let server = start(&[], "profile: hardened\nadmission:\n  enforceFrom: info\n", false);
    let (_, answer) = post(&server, "/validate", &review("all", "CREATE", "shop", restricted, Value::Null));
    let r = &answer["response"];
    assert_eq!(r["allowed"], false, "{answer}");
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("[image-digest] ") && message.contains("[liveness-probe] "), "{message}");
}

#[test]
fn a_denial_message_lists_each_cause_on_a_line_of_its_own() {
    let server = start(&[], BASELINE, false);
    let bad = pod("bad", "shop", json!({"privileged": true}), json!({"hostNetwork": true}));
    let (_, answer) = post(&server, "/validate", &review("m", "CREATE", "shop", bad, Value::Null));
    let message = answer["response"]["status"]["message"].as_str().unwrap().to_string();
    let mut lines = message.lines();
    assert_eq!(lines.next(), Some("palisade denied Pod shop/bad:"));
    let lines: Vec<&str> = lines.collect();
    let causes = answer["response"]["status"]["details"]["causes"].as_array().unwrap();
    assert_eq!(lines.len(), causes.len(), "{message}");
    for (line, cause) in lines.iter().zip(causes) {
        // `[rule] field: message`; the cause's message is `rule: message`.
        let (rule, text) = cause["message"].as_str().unwrap().split_once(": ").unwrap();
        assert_eq!(*line, format!("[{rule}] {}: {text}", cause["field"].as_str().unwrap()));
    }
    assert!(lines.iter().any(|l| l.starts_with("[pss-privileged] spec.containers[0].securityContext.privileged: ")));
    assert!(lines.iter().any(|l| l.starts_with("[pss-host-namespaces] spec.hostNetwork: ")), "{message}");
}

#[test]
fn plain_http_on_the_tls_port_is_answered_and_logged_as_such() {
    let (server, stderr) = start_logged(&[], BASELINE, false, None);
    let mut tcp = TcpStream::connect(&server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
    assert!(answer.ends_with("use https://\n"), "{answer}");
    let client = tcp.local_addr().unwrap().to_string();
    let line = wait_for_line(&stderr, |l| l["peer"] == client.as_str());
    assert_eq!(line["level"], "warn", "{line}");
    assert_eq!(line["msg"], "a client spoke plain HTTP to the TLS port; use https://", "{line}");
    let lines = stderr.lock().unwrap().join("\n");
    assert!(!lines.contains("InvalidContentType") && !lines.contains("handshake"), "{lines}");
    let (_, metrics) = get(&server, "/metrics");
    assert!(metrics.contains("palisade_connections_closed_total{reason=\"plain HTTP\"} 1"), "{metrics}");
    assert!(!metrics.contains("palisade_tls_handshake_failures_total"), "{metrics}");
    // TLS on the same port is unaffected, and a TLS client that gives up is still a handshake failure.
    assert_eq!(get(&server, "/healthz").0, 200);
    let mut tcp = TcpStream::connect(&server.addr).unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0x02, 0x01, 0x00]).unwrap();
    drop(tcp);
    let line = wait_for_line(&stderr, |l| l["msg"] == "TLS handshake failed");
    assert!(line["peer"].as_str().is_some_and(|p| p.starts_with("127.0.0.1:")), "{line}");
}

/// RFC 3339, UTC, with milliseconds: `2025-06-01T09:30:12.345Z`.
fn assert_timestamp(line: &Value) {
    let time = line["time"].as_str().unwrap_or_else(|| panic!("no time: {line}"));
    let pattern = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$").unwrap();
    assert!(pattern.is_match(time), "{time}");
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
}

#[test]
fn every_log_line_is_json_with_time_level_and_msg_and_decisions_name_user_and_rules() {
    // Every Pod Security control is high; one lowered to medium warns.
    let config = format!("{BASELINE}severity:\n  pss-host-ports: medium\n");
    let (mut server, stderr) = start_logged(&[], &config, false, None);
    let denied = pod("web", "shop", json!({"privileged": true}), json!({}));
    let mut warned = pod("ported", "shop", json!({}), json!({}));
    warned["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "hostPort": 80}]);
    let allowed = pod("fine", "shop", json!({}), json!({}));
    for (uid, object) in [("uid-denied", denied), ("uid-warned", warned), ("uid-allowed", allowed)] {
        assert_eq!(post(&server, "/validate", &review(uid, "CREATE", "shop", object, Value::Null)).0, 200);
    }
    assert_eq!(post(&server, "/validate", &json!({"kind": "Nope"})).0, 400);
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(server.child.wait().unwrap().success());
    wait_for_line(&stderr, |l| l["msg"] == "stopped");

    let err: Vec<Value> = stderr
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stderr line not JSON ({e}): {l}")))
        .collect();
    let mut out = String::new();
    server.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let out: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line not JSON ({e}): {l}")))
        .collect();
    for line in err.iter().chain(&out) {
        assert_timestamp(line);
        assert!(["info", "warn", "error"].contains(&line["level"].as_str().unwrap_or("")), "{line}");
        assert!(line["msg"].as_str().is_some_and(|m| !m.is_empty()), "{line}");
    }
    let messages: Vec<&str> = err.iter().map(|l| l["msg"].as_str().unwrap()).collect();
    for expected in ["listening", "ready", "shutting down; finishing the requests in flight", "stopped"] {
        assert!(messages.contains(&expected), "no {expected:?} line: {messages:?}");
    }
    let ready = err.iter().find(|l| l["msg"] == "ready").unwrap();
    assert_eq!(ready["rules"], 12, "{ready}");
    assert_eq!(ready["enforceFrom"], "high", "{ready}");

    let decision = |uid: &str| out.iter().find(|l| l["uid"] == uid).unwrap_or_else(|| panic!("no line for {uid}"));
    let d = decision("uid-denied");
    assert_eq!(d["msg"], "admission decision");
    assert_eq!(d["level"], "info");
    assert_eq!(d["endpoint"], "validate");
    assert_eq!(d["user"], "alice");
    assert_eq!(d["namespace"], "shop");
    assert_eq!(d["kind"], "Pod");
    assert_eq!(d["name"], "web");
    assert_eq!(d["operation"], "CREATE");
    assert_eq!(d["decision"], "denied");
    assert_eq!(d["rules"], json!(["pss-privileged"]));
    assert_eq!(d["rulesFailed"], json!(["pss-privileged"]));
    assert!(d["durationMs"].as_f64().is_some_and(|ms| ms >= 0.0), "{d}");
    let w = decision("uid-warned");
    assert_eq!(
        (&w["decision"], &w["rules"], &w["rulesFailed"]),
        (&json!("warned"), &json!(["pss-host-ports"]), &json!([]))
    );
    let a = decision("uid-allowed");
    assert_eq!((&a["decision"], &a["rules"]), (&json!("allowed"), &json!([])));
    let refused = out.iter().find(|l| l["msg"] == "request refused").expect("a line for the refused request");
    assert_eq!((&refused["level"], &refused["code"]), (&json!("warn"), &json!(400)), "{refused}");
}

#[test]
fn pss_version_selects_the_standard_the_server_enforces() {
    // Before v1.8 allowPrivilegeEscalation was not checked (as in tests/cli.rs).
    let mut object = pod(
        "p",
        "shop",
        json!({"capabilities": {"drop": ["ALL"]}}),
        json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}}),
    );
    object["spec"]["containers"][0]["image"] =
        "registry.example.com/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into();
    let restricted = "profile: restricted\n";
    let server = start(&[], restricted, false);
    let (_, answer) = post(&server, "/validate", &review("latest", "CREATE", "shop", object.clone(), Value::Null));
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert!(answer["response"]["status"]["message"].as_str().unwrap().contains("[pss-allow-privilege-escalation] "));
    drop(server);
    let server = start(&["--pss-version", "v1.7"], restricted, false);
    let (_, answer) = post(&server, "/validate", &review("v1.7", "CREATE", "shop", object, Value::Null));
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    drop(server);

    // A version that is not one: the server stops, saying why, in its JSON log.
    let pki = Pki::new();
    let out = run_within(
        palisade()
            .args(["serve", "--addr", "127.0.0.1:0", "--profile", "restricted", "--pss-version", "1.8x", "--tls-cert"])
            .arg(pki.path("server.pem"))
            .arg("--tls-key")
            .arg(pki.path("server-key.pem")),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error", "{stderr}");
    assert!(last["error"].as_str().unwrap().contains("1.8x"), "{stderr}");
}

/// The fenced block of `docs/serve.md` after the line `<!-- tests/serve.rs: NAME -->`.
fn documented(name: &str) -> String {
    let doc = std::fs::read_to_string(root().join("docs/serve.md")).unwrap();
    let marker = format!("<!-- tests/serve.rs: {name} -->");
    let after = &doc[doc.find(&marker).unwrap_or_else(|| panic!("no {marker} in docs/serve.md")) + marker.len()..];
    let start = after.find("```").unwrap();
    let body = &after[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("\n```").unwrap()].to_string()
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[cfg_attr(palisade_missing_openssl, ignore = "openssl is not installed (/usr/bin/openssl): apt-get install openssl")]
fn the_documented_openssl_recipe_makes_a_certificate_the_api_server_would_accept() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = documented("openssl recipe");
    let made =
        run(std::process::Command::new("bash").args(["-euo", "pipefail", "-c", &recipe]).current_dir(dir.path()));
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let mut child = palisade()
        .args(["serve", "--addr", "127.0.0.1:0", "--profile", "baseline", "--tls-cert"])
        .arg(dir.path().join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.path().join("tls.key"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = Killed(child);
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let addr = loop {
        let line = lines.next().expect("the server exited before listening").unwrap();
        if let Some(addr) = listening(&line) {
            break addr;
        }
    };
    // As the API server calls it: by the Service's name, trusting the CA only.
    let ca = client_trusting(&dir.path().join("ca.pem"));
    for name in ["palisade.palisade.svc", "palisade.palisade.svc.cluster.local"] {
        let (status, _, body, _) = request_at(&addr, name, ca.clone(), "GET", "/healthz", &[], b"").unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]), "{name}");
    }
    let wrong = request_at(&addr, "palisade.other.svc", ca, "GET", "/healthz", &[], b"");
    assert!(wrong.is_err(), "a certificate for another name must not be accepted");
    drop(child);
}

/// Fields of `object` that `schema` (a CRD's structural schema) does not
/// know: the API server would drop them without a word.
fn pruned(schema: &Value, object: &Value, at: &str) -> Vec<String> {
    if schema["x-kubernetes-preserve-unknown-fields"] == true {
        return Vec::new();
    }
    match object {
        Value::Object(map) => {
            let Some(properties) = schema["properties"].as_object() else { return Vec::new() };
            map.iter()
                .flat_map(|(key, value)| match properties.get(key) {
                    Some(s) => pruned(s, value, &format!("{at}.{key}")),
                    None => vec![format!("{at}.{key}")],
                })
                .collect()
        }
        Value::Array(items) => items.iter().flat_map(|i| pruned(&schema["items"], i, &format!("{at}[]"))).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn the_documented_cert_manager_recipe_matches_cert_manager_and_the_export() {
    let crd = |file: &str| -> Value {
        // The chart's CRD templates: only their first and last lines are Helm's.
        let path = corpus().join("charts/cert-manager/templates").join(file);
        let text: String = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("{{"))
            .map(|l| format!("{l}\n"))
            .collect();
        let crd = palisade::documents::read_documents(&text, &Default::default()).remove(0).content.unwrap().value;
        crd["spec"]["versions"].as_array().unwrap().iter().find(|v| v["name"] == "v1").unwrap()["schema"]
            ["openAPIV3Schema"]
            .clone()
    };
    let schemas = [
        ("Issuer", crd("crd-cert-manager.io_issuers.yaml")),
        ("Certificate", crd("crd-cert-manager.io_certificates.yaml")),
    ];
    let objects: Vec<Value> =
        palisade::documents::read_documents(&documented("cert-manager recipe"), &Default::default())
            .into_iter()
            .map(|d| d.content.unwrap().value)
            .collect();
    assert_eq!(objects.len(), 4);
    for object in &objects {
        assert_eq!(object["apiVersion"], "cert-manager.io/v1", "{object}");
        let schema = &schemas.iter().find(|(kind, _)| object["kind"] == *kind).expect("an Issuer or a Certificate").1;
        let validator = jsonschema::validator_for(schema).unwrap();
        let errors: Vec<String> =
            validator.iter_errors(object).map(|e| format!("{e} at {}", e.instance_path)).collect();
        assert!(errors.is_empty(), "{errors:#?}\n{object:#}");
        assert_eq!(pruned(schema, object, ""), Vec::<String>::new(), "{object:#}");
    }
    let of = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    // The chain: self-signed issuer -> CA certificate -> CA issuer -> serving certificate.
    let ca = of("Certificate", "palisade-ca");
    assert_eq!(ca["spec"]["isCA"], true);
    assert!(of("Issuer", ca["spec"]["issuerRef"]["name"].as_str().unwrap())["spec"]["selfSigned"].is_object());
    let serving = of("Certificate", "palisade");
    let ca_issuer = of("Issuer", serving["spec"]["issuerRef"]["name"].as_str().unwrap());
    assert_eq!(ca_issuer["spec"]["ca"]["secretName"], ca["spec"]["secretName"]);
    let names = serving["spec"]["dnsNames"].as_array().unwrap();
    assert!(names.contains(&json!("palisade.palisade.svc")), "{names:?}");

    // What `export` writes with the documented flag: the annotation names this
    // Certificate, the Deployment mounts its Secret, the Service has its name.
    let out = run(palisade().args([
        "export",
        "webhook",
        "--image",
        "registry.example.com/palisade:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "--cert-manager-certificate",
        "palisade/palisade",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let exported: Vec<Value> =
        palisade::documents::read_documents(&String::from_utf8(out.stdout).unwrap(), &Default::default())
            .into_iter()
            .map(|d| d.content.unwrap().value)
            .collect();
    let find = |kind: &str| exported.iter().find(|o| o["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"));
    let certificate = format!(
        "{}/{}",
        serving["metadata"]["namespace"].as_str().unwrap(),
        serving["metadata"]["name"].as_str().unwrap()
    );
    let webhook = find("ValidatingWebhookConfiguration");
    assert_eq!(webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"], certificate.as_str());
    assert!(webhook["webhooks"][0]["clientConfig"].get("caBundle").is_none(), "{webhook:#}");
    let volumes = find("Deployment")["spec"]["template"]["spec"]["volumes"].as_array().unwrap().clone();
    assert!(volumes.iter().any(|v| v["secret"]["secretName"] == serving["spec"]["secretName"]), "{volumes:?}");
    let service = find("Service");
    let host = format!(
        "{}.{}.svc",
        service["metadata"]["name"].as_str().unwrap(),
        service["metadata"]["namespace"].as_str().unwrap()
    );
    assert!(names.contains(&json!(host)), "{host} not in {names:?}");
}
