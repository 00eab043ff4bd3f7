//! The three ways in, each in its engine's wire format:
//! Kubernetes `AdmissionReview` (`admission.k8s.io/v1`), Gatekeeper external
//! data (`externaldata.gatekeeper.sh/v1beta1` ProviderRequest/ProviderResponse)
//! and a Kyverno `apiCall` service.

use serde_json::{Value, json};

use super::decision::{Decision, decide};
use super::engine::Engine;
use crate::runtime::wit;

/// A request the endpoint refuses: HTTP status and message.
#[derive(Debug)]
pub struct Refusal(pub u16, pub String);

/// What the server logs of one decision.
#[derive(Debug, Default, Clone)]
pub struct Logged {
    pub uid: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub operation: String,
    pub decision: &'static str,
    pub rules_failed: Vec<String>,
    /// (rule, result) of every evaluation: pass, fail, error or skipped.
    pub evaluations: Vec<(String, &'static str)>,
}

fn tally(d: &Decision) -> Vec<(String, &'static str)> {
    d.results
        .iter()
        .map(|r| {
            let result = match &r.verdict {
                super::engine::Verdict::Pass => "pass",
                super::engine::Verdict::Violations(_) => "fail",
                super::engine::Verdict::Error(_) => "error",
                super::engine::Verdict::Skipped(_) => "skipped",
            };
            (r.rule.clone(), result)
        })
        .collect()
}

fn parse(body: &[u8]) -> Result<Value, Refusal> {
    serde_json::from_slice(body).map_err(|e| Refusal(400, format!("the body is not JSON: {e}")))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn operation(op: &str) -> Option<wit::Operation> {
    match op {
        "CREATE" => Some(wit::Operation::Create),
        "UPDATE" => Some(wit::Operation::Update),
        _ => None,
    }
}

fn label(object: &Value) -> String {
    let kind = str_at(object, "/kind");
    let name = str_at(object, "/metadata/name");
    let name = if name.is_empty() { str_at(object, "/metadata/generateName") } else { name };
    match object.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// `POST /validate`: an AdmissionReview in, the same with a response out.
pub fn admission_review(engine: &Engine, body: &[u8]) -> Result<(Value, Logged), Refusal> {
    let review = parse(body)?;
    if review["apiVersion"] != "admission.k8s.io/v1" || review["kind"] != "AdmissionReview" {
        return Err(Refusal(
            400,
            format!(
                "expected an AdmissionReview of apiVersion admission.k8s.io/v1, got kind {} apiVersion {}",
                review["kind"], review["apiVersion"]
            ),
        ));
    }
    let request = review
        .get("request")
        .filter(|r| r.is_object())
        .ok_or_else(|| Refusal(400, "the AdmissionReview has no request".into()))?;
    let uid = str_at(request, "/uid").to_string();
    if uid.is_empty() {
        return Err(Refusal(400, "request.uid is missing".into()));
    }
    let op = str_at(request, "/operation").to_string();
    let namespace = str_at(request, "/namespace").to_string();
    let username = str_at(request, "/userInfo/username").to_string();
    let object = request.get("object").cloned().unwrap_or(Value::Null);
    let kind = match str_at(&object, "/kind") {
        "" => str_at(request, "/kind/kind").to_string(),
        k => k.to_string(),
    };
    let mut logged = Logged {
        uid: uid.clone(),
        kind: kind.clone(),
        namespace: namespace.clone(),
        name: match str_at(request, "/name") {
            "" => str_at(&object, "/metadata/name").to_string(),
            n => n.to_string(),
        },
        operation: op.clone(),
        ..Logged::default()
    };
    let respond =
        |response: Value| json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
    let exemptions = &engine.admission.exemptions;
    // DELETE and CONNECT carry no new object to judge; exempt namespaces and users pass.
    let Some(operation) = operation(&op) else {
        logged.decision = "allowed (not evaluated)";
        return Ok((respond(json!({"uid": uid, "allowed": true})), logged));
    };
    if exemptions.namespaces.contains(&namespace) || exemptions.usernames.contains(&username) {
        logged.decision = "allowed (exempt)";
        return Ok((respond(json!({"uid": uid, "allowed": true})), logged));
    }
    if !object.is_object() {
        return Err(Refusal(400, format!("request.object of a {op} is not an object")));
    }
    let groups = request
        .pointer("/userInfo/groups")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let context = wit::AdmissionContext {
        operation,
        namespace: Some(namespace.clone()).filter(|n| !n.is_empty()),
        old_object: request.get("oldObject").filter(|o| o.is_object()).map(Value::to_string),
        user_info: Some(wit::UserInfo { username, uid: str_at(request, "/userInfo/uid").to_string(), groups }),
        offline: false,
    };
    let decision = decide(engine.evaluate(&object.to_string(), &kind, &context), &label(&object));
    logged.rules_failed = decision.denied_by.clone();
    logged.evaluations = tally(&decision);
    logged.decision = if decision.allowed { "allowed" } else { "denied" };
    Ok((respond(admission_response(&uid, &decision)), logged))
}

fn admission_response(uid: &str, d: &Decision) -> Value {
    let mut response = json!({"uid": uid, "allowed": d.allowed});
    if !d.allowed {
        response["status"] = json!({
            "code": d.code,
            "reason": if d.code == 403 { "Forbidden" } else { "InternalError" },
            "message": d.message,
            "details": {"causes": d.causes.iter().map(|c| json!({
                "reason": "FieldValueForbidden",
                "field": c.field,
                "message": format!("{}: {}", c.rule, c.message),
            })).collect::<Vec<_>>()},
        });
    }
    if !d.warnings.is_empty() {
        response["warnings"] = json!(d.warnings);
    }
    response
}

/// `POST /gatekeeper/v1/provider`: one object per key.
pub fn gatekeeper(engine: &Engine, body: &[u8]) -> Result<(Value, Logged), Refusal> {
    let request = parse(body)?;
    let respond = |response: Value| json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderResponse", "response": response});
    if request["apiVersion"] != "externaldata.gatekeeper.sh/v1beta1" || request["kind"] != "ProviderRequest" {
        let message = format!(
            "expected a ProviderRequest of apiVersion externaldata.gatekeeper.sh/v1beta1, got kind {} apiVersion {}",
            request["kind"], request["apiVersion"]
        );
        return Ok((
            respond(json!({"idempotent": true, "items": [], "systemError": message})),
            Logged { decision: "system error", ..Logged::default() },
        ));
    }
    let Some(keys) = request.pointer("/request/keys").and_then(Value::as_array) else {
        return Ok((
            respond(json!({"idempotent": true, "items": [], "systemError": "request.keys is missing"})),
            Logged { decision: "system error", ..Logged::default() },
        ));
    };
    let mut items = Vec::new();
    let mut failed = Vec::new();
    let mut evaluations = Vec::new();
    for key in keys {
        let Some(text) = key.as_str() else {
            items.push(json!({"key": key, "error": "a key must be a string holding one object as JSON"}));
            continue;
        };
        let object: Value = match serde_json::from_str(text) {
            Ok(o @ Value::Object(_)) => o,
            Ok(_) => {
                items.push(json!({"key": text, "error": "the key is JSON but not an object"}));
                continue;
            }
            Err(e) => {
                items.push(json!({"key": text, "error": format!("the key is not JSON: {e}")}));
                continue;
            }
        };
        let kind = str_at(&object, "/kind").to_string();
        let context = wit::AdmissionContext {
            operation: wit::Operation::Create,
            namespace: object.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string),
            old_object: None,
            user_info: None,
            offline: false,
        };
        let d = decide(engine.evaluate(text, &kind, &context), &label(&object));
        failed.extend(d.denied_by.iter().cloned());
        evaluations.extend(tally(&d));
        let errors: Vec<Value> = d
            .results
            .iter()
            .filter_map(|r| match &r.verdict {
                super::engine::Verdict::Error(e) => {
                    Some(json!({"rule": r.rule, "error": e, "failurePolicy": r.failure_policy}))
                }
                _ => None,
            })
            .collect();
        let violations: Vec<Value> = d
            .violations
            .iter()
            .map(|c| json!({"rule": c.rule, "message": c.message, "path": c.path, "field": c.field, "mode": c.mode}))
            .collect();
        let mut value = json!(violations);
        if !errors.is_empty() {
            // A rule that could not decide is an error item, so the template fails closed.
            items.push(json!({"key": text, "value": value.take(), "error": format!("{} rule(s) could not evaluate: {}", errors.len(), errors.iter().map(|e| format!("{}: {}", e["rule"].as_str().unwrap_or(""), e["error"].as_str().unwrap_or(""))).collect::<Vec<_>>().join("; "))}));
        } else {
            items.push(json!({"key": text, "value": value}));
        }
    }
    let logged = Logged { decision: "provided", rules_failed: failed, evaluations, ..Logged::default() };
    Ok((respond(json!({"idempotent": true, "items": items})), logged))
}

/// `POST /kyverno/v1/validate`: the body a policy's `apiCall.data` builds.
pub fn kyverno(engine: &Engine, body: &[u8]) -> Result<(Value, Logged), Refusal> {
    let call = parse(body)?;
    let object =
        call.get("object").filter(|o| o.is_object()).ok_or_else(|| Refusal(400, "the body has no `object`".into()))?;
    let op = call.get("operation").and_then(Value::as_str).unwrap_or("CREATE").to_string();
    let mut logged = Logged {
        kind: str_at(object, "/kind").to_string(),
        namespace: str_at(object, "/metadata/namespace").to_string(),
        name: str_at(object, "/metadata/name").to_string(),
        operation: op.clone(),
        ..Logged::default()
    };
    let Some(operation) = operation(&op) else {
        logged.decision = "allowed (not evaluated)";
        return Ok((json!({"allowed": true, "message": "", "violations": []}), logged));
    };
    let context = wit::AdmissionContext {
        operation,
        namespace: object.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string),
        old_object: call.get("oldObject").filter(|o| o.is_object()).map(Value::to_string),
        user_info: None,
        offline: false,
    };
    let d = decide(engine.evaluate(&object.to_string(), &logged.kind.clone(), &context), &label(object));
    logged.rules_failed = d.denied_by.clone();
    logged.evaluations = tally(&d);
    logged.decision = if d.allowed { "allowed" } else { "denied" };
    let violations: Vec<Value> =
        d.causes.iter().map(|c| json!({"rule": c.rule, "message": c.message, "path": c.path})).collect();
    Ok((json!({"allowed": d.allowed, "message": d.message, "violations": violations, "warnings": d.warnings}), logged))
}
