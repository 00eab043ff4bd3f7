//! The ways in, each in its engine's wire format:
//! Kubernetes `AdmissionReview` (`admission.k8s.io/v1`) to validate and to
//! pin images to their digests, Gatekeeper external data
//! (`externaldata.gatekeeper.sh/v1beta1` ProviderRequest/ProviderResponse)
//! and a Kyverno `apiCall` service.

use std::time::Instant;

use serde_json::{Value, json};

use super::decision::{Decision, decide};
use super::engine::{Counted, Engine};
pub use super::wire::Refusal;
use super::wire::{self, Operation, ProviderKey, str_at};
use crate::runtime::wit;

/// What the server logs of one decision.
#[derive(Debug, Default, Clone)]
pub struct Logged {
    pub uid: String,
    /// `userInfo.username` of an AdmissionReview.
    pub user: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub operation: String,
    pub decision: &'static str,
    /// Rules that reported a violation, whatever they did with it.
    pub rules: Vec<String>,
    /// Rules that denied the request (enforced violations, failures that fail closed).
    pub rules_failed: Vec<String>,
    /// (rule index, result) of every evaluation: pass, fail, error or skipped.
    pub evaluations: Vec<(usize, Counted)>,
    /// `/mutate`: the images pinned, as `pointer=reference@digest`.
    pub pinned: Vec<String>,
}

impl Logged {
    /// What a decision made of the rules: `allowed`, `warned` (allowed, with
    /// warnings to the client) or `denied`.
    fn record(&mut self, d: &Decision) {
        self.rules = d.fired.clone();
        self.rules_failed = d.denied_by.clone();
        self.evaluations = tally(d);
        self.decision = match (d.allowed, d.warnings.is_empty()) {
            (false, _) => "denied",
            (true, true) => "allowed",
            (true, false) => "warned",
        };
    }
}

fn tally(d: &Decision) -> Vec<(usize, Counted)> {
    d.results.iter().map(|r| (r.index, r.verdict.result())).collect()
}

/// The engine's name for an operation that carries an object.
fn wit_operation(op: Operation) -> wit::Operation {
    match op {
        Operation::Create => wit::Operation::Create,
        Operation::Update => wit::Operation::Update,
        Operation::Delete => wit::Operation::Delete,
        Operation::Connect => wit::Operation::Connect,
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

/// What is logged of a review before it is judged.
fn logged_for(review: &wire::Review) -> Logged {
    Logged {
        uid: review.uid.clone(),
        user: review.username.clone(),
        kind: review.kind.clone(),
        namespace: review.namespace.clone(),
        name: review.name.clone(),
        operation: review.operation.as_str().to_string(),
        ..Logged::default()
    }
}

/// An AdmissionReview carrying `response`.
fn review_response(response: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// Whether the review is let through unjudged: DELETE and CONNECT carry no
/// new object; exempt namespaces and users pass.
fn unjudged(engine: &Engine, review: &wire::Review) -> Option<&'static str> {
    let exemptions = &engine.admission.exemptions;
    if !review.operation.judges_object() {
        Some("allowed (not evaluated)")
    } else if exemptions.namespaces.contains(&review.namespace) || exemptions.usernames.contains(&review.username) {
        Some("allowed (exempt)")
    } else {
        None
    }
}

/// `POST /validate`: an AdmissionReview in, the same with a response out.
pub fn admission_review(engine: &Engine, body: &[u8], deadline: Instant) -> Result<(Value, Logged), Refusal> {
    let review = wire::admission_review(body)?;
    let uid = review.uid.clone();
    let mut logged = logged_for(&review);
    let respond = review_response;
    if let Some(decision) = unjudged(engine, &review) {
        logged.decision = decision;
        return Ok((respond(json!({"uid": uid, "allowed": true})), logged));
    }
    let context = wit::AdmissionContext {
        operation: wit_operation(review.operation),
        namespace: Some(review.namespace.clone()).filter(|n| !n.is_empty()),
        old_object: review.old_object,
        user_info: Some(wit::UserInfo { username: review.username, uid: review.user_uid, groups: review.groups }),
        offline: false,
    };
    let object = &review.object;
    let decision =
        decide(engine.evaluate(&engine.object(object), &review.kind, &context, Some(deadline)), &label(object));
    logged.record(&decision);
    Ok((respond(admission_response(&uid, &decision)), logged))
}

/// `POST /mutate`: an AdmissionReview in; out, the same with a JSONPatch
/// that rewrites every container image that verified under its trust policy
/// from `name:tag` to `name:tag@sha256:…`, the digest that was verified, so
/// the kubelet pulls what was verified and not what the tag names later.
///
/// It never denies (`/validate` decides) and never changes anything else: an
/// image that did not verify, matched no policy, or is pinned already stays
/// as it is. On UPDATE only images that changed are pinned (re-pinning an
/// unchanged one would restart its pod). An image is pinned only when the
/// pinned reference falls under the same trust policy as the tag, so that
/// `/validate` judges the pinned object by the policy that verified it; the
/// verdict is cached under the digest too, so `/validate` does not fetch again.
pub fn mutate(engine: &Engine, body: &[u8], deadline: Instant) -> Result<(Value, Logged), Refusal> {
    use crate::images::Status;
    let review = wire::admission_review(body)?;
    let uid = review.uid.clone();
    let mut logged = Logged { decision: "unchanged", ..logged_for(&review) };
    let respond = review_response;
    let unchanged = json!({"uid": uid, "allowed": true});
    let images = engine.runtime().images();
    if unjudged(engine, &review).is_some() || images.status() != Status::Enabled || !images.mutate_digest() {
        return Ok((respond(unchanged), logged));
    }
    let object = &review.object;
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .or(Some(review.namespace.as_str()))
        .filter(|n| !n.is_empty());
    let old: Option<Value> = review.old_object.as_deref().and_then(|text| serde_json::from_str(text).ok());
    let mut pinned = Vec::new();
    let patch = crate::pin::pin_patch(object, old.as_ref(), &mut |site| {
        let digest = images.pin_digest(&site.image, site.namespace.as_deref().or(namespace), Some(deadline))?;
        pinned.push(format!("{}={}@{digest}", site.pointer, site.image));
        Some(digest)
    });
    if patch.is_empty() {
        return Ok((respond(unchanged), logged));
    }
    logged.decision = "pinned";
    logged.pinned = pinned;
    let patch = Value::Array(patch).to_string();
    Ok((
        respond(json!({
            "uid": uid,
            "allowed": true,
            "patchType": "JSONPatch",
            "patch": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, patch.as_bytes()),
        })),
        logged,
    ))
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
pub fn gatekeeper(engine: &Engine, body: &[u8], deadline: Instant) -> Result<(Value, Logged), Refusal> {
    let respond = |response: Value| json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderResponse", "response": response});
    let keys = match wire::provider_request(body) {
        Ok(keys) => keys,
        Err(message) => {
            return Ok((
                respond(json!({"idempotent": true, "items": [], "systemError": message})),
                Logged { decision: "system error", ..Logged::default() },
            ));
        }
    };
    let mut items = Vec::new();
    let mut failed = Vec::new();
    let mut evaluations = Vec::new();
    for key in keys {
        if Instant::now() >= deadline {
            return Err(Refusal(500, "no decision within the request deadline".into()));
        }
        let (text, object, kind) = match key {
            ProviderKey::Invalid { key, error } => {
                items.push(json!({"key": key, "error": error}));
                continue;
            }
            ProviderKey::Object { text, object, kind } => (text, object, kind),
        };
        let context = wit::AdmissionContext {
            operation: wit::Operation::Create,
            namespace: object.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string),
            old_object: None,
            user_info: None,
            offline: false,
        };
        // Handed over as written it could hold duplicate keys that pruning would drop: as read.
        let d = decide(engine.evaluate(&engine.object(&object), &kind, &context, Some(deadline)), &label(&object));
        failed.extend(d.denied_by.iter().cloned());
        evaluations.extend(tally(&d));
        let errors: Vec<Value> = d
            .results
            .iter()
            .filter_map(|r| match &r.verdict {
                super::engine::Verdict::Error(e) => {
                    Some(json!({"rule": &*r.rule, "error": e, "failurePolicy": r.failure_policy}))
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
pub fn kyverno(engine: &Engine, body: &[u8], deadline: Instant) -> Result<(Value, Logged), Refusal> {
    let call = wire::kyverno_call(body)?;
    let object = &call.object;
    let mut logged = Logged {
        kind: call.kind.clone(),
        namespace: str_at(object, "/metadata/namespace").to_string(),
        name: str_at(object, "/metadata/name").to_string(),
        operation: call.operation.as_str().to_string(),
        ..Logged::default()
    };
    if !call.operation.judges_object() {
        logged.decision = "allowed (not evaluated)";
        return Ok((json!({"allowed": true, "message": "", "violations": []}), logged));
    }
    let context = wit::AdmissionContext {
        operation: wit_operation(call.operation),
        namespace: object.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string),
        old_object: call.old_object.clone(),
        user_info: None,
        offline: false,
    };
    let d =
        decide(engine.evaluate(&engine.object(object), &logged.kind.clone(), &context, Some(deadline)), &label(object));
    logged.record(&d);
    let violations: Vec<Value> =
        d.causes.iter().map(|c| json!({"rule": c.rule, "message": c.message, "path": c.path})).collect();
    Ok((json!({"allowed": d.allowed, "message": d.message, "violations": violations, "warnings": d.warnings}), logged))
}
