//! `palisade serve` is strict about what it is asked, end to end through the
//! real server: an AdmissionReview whose `request.operation` is not exactly
//! CREATE, UPDATE, DELETE or CONNECT is refused (400) rather than let through
//! unevaluated; DELETE and CONNECT are allowed without evaluation; an object
//! without `kind`/`apiVersion` is judged as the kind `request.kind` names, or
//! refused when nothing names one. The Kyverno and Gatekeeper endpoints are
//! held to the same: no operation they cannot name, no object without a kind
//! passing every rule.

mod common;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::server::*;
use serde_json::{Value, json};

const BASELINE: &str = "profile: baseline\n";

fn privileged_pod(name: &str) -> Value {
    pod(name, "shop", json!({"privileged": true}), json!({}))
}

/// `object` without its `kind` and `apiVersion`.
fn without_kind(mut object: Value) -> Value {
    let map = object.as_object_mut().unwrap();
    map.remove("kind");
    map.remove("apiVersion");
    object
}

/// The sum of every `palisade_evaluations_total` series.
fn evaluations_total(server: &Server) -> u64 {
    let (status, metrics) = get(server, "/metrics");
    assert_eq!(status, 200);
    metrics
        .lines()
        .filter(|l| l.starts_with("palisade_evaluations_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// The value of one counter series (0 when absent).
fn counter(server: &Server, series: &str) -> u64 {
    let (_, metrics) = get(server, "/metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0, |v| v.parse().unwrap())
}

/// The `error` of a refusal body.
fn refusal(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_else(|| panic!("not a refusal: {body}"))
}

/// Decision lines of the server's stdout, read as they come (the logging
/// thread writes them after the answer, so wait for them rather than kill).
fn decision_lines(server: &mut Server) -> mpsc::Receiver<Value> {
    let stdout = server.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    rx
}

fn wait_for_line(lines: &mpsc::Receiver<Value>, uid: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).unwrap_or_else(|_| panic!("no decision line for {uid}"));
        if line["uid"] == uid {
            return line;
        }
    }
}

#[test]
fn an_operation_not_exactly_one_of_the_four_is_refused() {
    let server = start(&[], BASELINE, false);
    // (operation, or None for a request without one; what the refusal must name)
    let cases: Vec<(Option<Value>, String)> = vec![
        (Some(json!("create")), r#""create""#.into()),
        (Some(json!("Create")), r#""Create""#.into()),
        (Some(json!("")), r#"not """#.into()),
        (None, "operation is missing".into()),
        (Some(json!("PATCH")), r#""PATCH""#.into()),
        (Some(json!(" CREATE")), r#"" CREATE""#.into()),
        (Some(json!("CREATE ")), r#""CREATE ""#.into()),
        (Some(json!("\tUPDATE")), r#""\tUPDATE""#.into()),
        (Some(json!("delete")), r#""delete""#.into()),
        (Some(json!(1)), "not 1".into()),
        (Some(Value::Null), "not null".into()),
    ];
    for (i, (operation, named)) in cases.iter().enumerate() {
        let uid = format!("bad-{i}");
        let mut body = review(&uid, "CREATE", "shop", privileged_pod("p"), Value::Null);
        match operation {
            Some(op) => body["request"]["operation"] = op.clone(),
            None => {
                body["request"].as_object_mut().unwrap().remove("operation");
            }
        }
        let (status, answer) = post(&server, "/validate", &body);
        assert_eq!(status, 400, "operation {operation:?} must be refused: {answer}");
        assert_ne!(answer["response"]["allowed"], true, "operation {operation:?} let a privileged pod in: {answer}");
        let message = refusal(&answer);
        assert!(message.contains("operation"), "operation {operation:?}: {message}");
        assert!(message.contains(named.as_str()), "operation {operation:?} is not named ({named}): {message}");
    }
    // Refused before any rule ran, and never once answered 200.
    assert_eq!(counter(&server, r#"palisade_requests_total{endpoint="validate",code="400"}"#), cases.len() as u64);
    assert_eq!(counter(&server, r#"palisade_requests_total{endpoint="validate",code="200"}"#), 0);
    assert_eq!(evaluations_total(&server), 0);

    // The same privileged pod, under a real CREATE, is denied: the refusals
    // above are about the operation, not the pod.
    let (status, answer) =
        post(&server, "/validate", &review("ok", "CREATE", "shop", privileged_pod("p"), Value::Null));
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
}

#[test]
fn delete_and_connect_are_allowed_without_evaluation() {
    let server = start(&[], BASELINE, false);
    // One evaluation first, so the counter is known to move when a rule runs.
    let (_, answer) = post(&server, "/validate", &review("c", "CREATE", "shop", privileged_pod("p"), Value::Null));
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let before = evaluations_total(&server);
    assert!(before > 0, "the CREATE was not counted");

    let bad = privileged_pod("p");
    for op in ["DELETE", "CONNECT"] {
        // The privileged pod both as object and as oldObject: neither is judged.
        let uid = format!("{op}-uid");
        let (status, answer) = post(&server, "/validate", &review(&uid, op, "shop", bad.clone(), bad.clone()));
        assert_eq!(status, 200, "{op}: {answer}");
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(answer["response"]["uid"], uid.as_str());
        assert_eq!(answer["response"]["allowed"], true, "{op}: {answer}");
        // As the API server sends a DELETE: no object at all.
        let (status, answer) = post(&server, "/validate", &review(&uid, op, "shop", Value::Null, bad.clone()));
        assert_eq!(status, 200, "{op}: {answer}");
        assert_eq!(answer["response"]["allowed"], true, "{op}: {answer}");
    }
    assert_eq!(evaluations_total(&server), before, "DELETE or CONNECT was evaluated");

    // And the counter still moves for an evaluation after them.
    let (_, answer) = post(&server, "/validate", &review("u", "UPDATE", "shop", bad.clone(), bad));
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert!(evaluations_total(&server) > before);
}

#[test]
fn an_object_without_kind_is_judged_as_request_kind_or_refused() {
    let mut server = start(&[], BASELINE, false);
    let lines = decision_lines(&mut server);

    // A privileged Pod without kind/apiVersion, request.kind naming Pod.
    let object = without_kind(privileged_pod("nk-pod"));
    let (status, answer) = post(&server, "/validate", &review("nk-pod", "CREATE", "shop", object, Value::Null));
    assert_eq!(status, 200, "{answer}");
    let r = &answer["response"];
    assert_eq!(r["allowed"], false, "a Pod without kind got through: {answer}");
    assert_eq!(r["status"]["code"], 403);
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("pss-privileged"), "{message}");
    assert!(message.contains("Pod shop/nk-pod"), "not judged as a Pod: {message}");
    let causes = r["status"]["details"]["causes"].as_array().unwrap();
    assert!(causes.iter().any(|c| c["field"] == "spec.containers[0].securityContext.privileged"), "{causes:?}");

    // UPDATE too.
    let object = without_kind(privileged_pod("nk-pod"));
    let old = pod("nk-pod", "shop", json!({}), json!({}));
    let (_, answer) = post(&server, "/validate", &review("nk-pod-u", "UPDATE", "shop", object, old));
    assert_eq!(answer["response"]["allowed"], false, "{answer}");

    // A privileged Deployment without kind/apiVersion, request.kind naming apps/v1 Deployment.
    let deployment = json!({
        "metadata": {"name": "nk-deploy", "namespace": "shop"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "i", "securityContext": {"privileged": true}}]},
            },
        },
    });
    let mut body = review("nk-deploy", "CREATE", "shop", deployment.clone(), Value::Null);
    body["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    body["request"]["resource"] = json!({"group": "apps", "version": "v1", "resource": "deployments"});
    let (status, answer) = post(&server, "/validate", &body);
    assert_eq!(status, 200, "{answer}");
    let r = &answer["response"];
    assert_eq!(r["allowed"], false, "a Deployment without kind got through: {answer}");
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("pss-privileged"), "{message}");
    assert!(message.contains("Deployment shop/nk-deploy"), "not judged as a Deployment: {message}");
    let causes = r["status"]["details"]["causes"].as_array().unwrap();
    assert!(
        causes.iter().any(|c| c["field"] == "spec.template.spec.containers[0].securityContext.privileged"),
        "{causes:?}"
    );

    // Neither the object nor the request names a kind: refused.
    let mut body = review("nk-none", "CREATE", "shop", without_kind(privileged_pod("p")), Value::Null);
    body["request"].as_object_mut().unwrap().remove("kind");
    let (status, answer) = post(&server, "/validate", &body);
    assert_eq!(status, 400, "{answer}");
    assert_ne!(answer["response"]["allowed"], true);
    assert!(refusal(&answer).contains("kind"), "{answer}");
    // request.kind without a version cannot give an apiVersion either.
    let mut body = review("nk-nover", "CREATE", "shop", without_kind(privileged_pod("p")), Value::Null);
    body["request"]["kind"] = json!({"group": "", "kind": "Pod"});
    let (status, answer) = post(&server, "/validate", &body);
    assert_eq!(status, 400, "{answer}");
    // Nor a request.kind whose kind is empty.
    let mut body = review("nk-empty", "CREATE", "shop", without_kind(privileged_pod("p")), Value::Null);
    body["request"]["kind"] = json!({"group": "", "version": "v1", "kind": ""});
    let (status, answer) = post(&server, "/validate", &body);
    assert_eq!(status, 400, "{answer}");

    // The rules ran on those objects and failed them.
    let fails =
        counter(&server, r#"palisade_evaluations_total{endpoint="validate",rule="pss-privileged",result="fail"}"#);
    assert_eq!(fails, 3, "pss-privileged failures (Pod CREATE, Pod UPDATE, Deployment)");

    // The decision log names the kind each was judged as.
    let pod_line = wait_for_line(&lines, "nk-pod");
    assert_eq!(pod_line["kind"], "Pod", "{pod_line}");
    assert_eq!(pod_line["decision"], "denied", "{pod_line}");
    assert!(pod_line["rulesFailed"].as_array().unwrap().contains(&json!("pss-privileged")), "{pod_line}");
    let deploy_line = wait_for_line(&lines, "nk-deploy");
    assert_eq!(deploy_line["kind"], "Deployment", "{deploy_line}");
    assert_eq!(deploy_line["decision"], "denied", "{deploy_line}");
    assert!(deploy_line["rulesFailed"].as_array().unwrap().contains(&json!("pss-privileged")), "{deploy_line}");
}

#[test]
fn kyverno_operations_and_objects_without_kind() {
    let server = start(&[], BASELINE, false);
    let bad = privileged_pod("p");
    for op in [json!("create"), json!("Create"), json!(""), json!("PATCH"), json!(" CREATE"), json!(1), Value::Null] {
        let (status, answer) = post(&server, "/kyverno/v1/validate", &json!({"object": bad, "operation": op}));
        assert_eq!(status, 400, "operation {op}: {answer}");
        assert_ne!(answer["allowed"], true, "operation {op}: {answer}");
        let message = refusal(&answer);
        assert!(message.contains("operation"), "operation {op}: {message}");
        if let Some(s) = op.as_str() {
            assert!(message.contains(&format!("{s:?}")), "operation {op} is not named: {message}");
        }
    }
    assert_eq!(evaluations_total(&server), 0, "a refused Kyverno call was evaluated");

    // No operation: a CREATE, evaluated.
    let (status, answer) = post(&server, "/kyverno/v1/validate", &json!({"object": bad}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["allowed"], false, "{answer}");
    assert_eq!(answer["violations"][0]["rule"], "pss-privileged", "{answer}");
    assert!(evaluations_total(&server) > 0);

    // An object without kind or apiVersion (with or without an operation): refused.
    let no_kind = without_kind(bad.clone());
    let mut kind_only = bad.clone();
    kind_only.as_object_mut().unwrap().remove("apiVersion");
    let mut version_only = bad.clone();
    version_only.as_object_mut().unwrap().remove("kind");
    for body in [
        json!({"object": no_kind, "operation": "CREATE"}),
        json!({"object": no_kind}),
        json!({"object": kind_only, "operation": "CREATE"}),
        json!({"object": version_only, "operation": "UPDATE", "oldObject": bad}),
    ] {
        let (status, answer) = post(&server, "/kyverno/v1/validate", &body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert_ne!(answer["allowed"], true, "{answer}");
        assert!(refusal(&answer).contains("kind"), "{answer}");
    }
}

#[test]
fn gatekeeper_key_without_kind_is_an_error_item() {
    let server = start(&[], BASELINE, false);
    let bad = privileged_pod("bad");
    let no_kind = without_kind(privileged_pod("no-kind"));
    let mut kind_only = privileged_pod("kind-only");
    kind_only.as_object_mut().unwrap().remove("apiVersion");
    let request = json!({
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": [no_kind.to_string(), bad.to_string(), kind_only.to_string()]},
    });
    let (status, answer) = post(&server, "/gatekeeper/v1/provider", &request);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["kind"], "ProviderResponse");
    assert!(answer["response"].get("systemError").is_none(), "{answer}");
    let items = answer["response"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{answer}");

    for (item, key) in [(&items[0], &no_kind), (&items[2], &kind_only)] {
        assert_eq!(item["key"], key.to_string());
        let error = item["error"].as_str().unwrap_or_else(|| panic!("no error item for a key without kind: {item}"));
        assert!(error.contains("kind"), "{error}");
        assert!(item.get("value").is_none_or(|v| v.as_array().is_none_or(|a| a.is_empty())), "{item}");
    }
    // The normal key of the same request still gets its violations.
    assert_eq!(items[1]["key"], bad.to_string());
    assert!(items[1].get("error").is_none(), "{}", items[1]);
    let violations = items[1]["value"].as_array().unwrap();
    let v = violations.iter().find(|v| v["rule"] == "pss-privileged").expect("pss-privileged on the privileged pod");
    assert_eq!(v["mode"], "enforce", "{v}");
    assert_eq!(v["field"], "spec.containers[0].securityContext.privileged", "{v}");
}
