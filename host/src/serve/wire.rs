//! Request bodies → what the engine evaluates, for the three ways in:
//! Kubernetes `AdmissionReview` (`admission.k8s.io/v1`), Gatekeeper external
//! data (`externaldata.gatekeeper.sh/v1beta1` `ProviderRequest`) and a Kyverno
//! `apiCall` body. Decoding only: nothing here evaluates, so the decoders
//! depend on nothing but `serde_json` and are fuzzed on their own
//! (`fuzz/fuzz_targets/admission.rs`).
//!
//! Strict where leniency would let an object through unjudged: the operation
//! must be exactly one the API server sends, and an object without `kind` or
//! `apiVersion` takes the request's or is refused.

use serde_json::Value;

/// A request the endpoint refuses: HTTP status and message.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal(pub u16, pub String);

/// `AdmissionRequest.operation`
/// (<https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#request>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    /// Exactly one of the four the API server sends: another case, padding
    /// or nothing is refused rather than let through unevaluated.
    pub fn parse(op: &str) -> Result<Operation, Refusal> {
        match op {
            "CREATE" => Ok(Operation::Create),
            "UPDATE" => Ok(Operation::Update),
            "DELETE" => Ok(Operation::Delete),
            "CONNECT" => Ok(Operation::Connect),
            other => Err(Refusal(400, format!("operation must be CREATE, UPDATE, DELETE or CONNECT, not {other:?}"))),
        }
    }

    /// CREATE and UPDATE carry a new object to judge; DELETE and CONNECT do not.
    pub fn judges_object(self) -> bool {
        matches!(self, Operation::Create | Operation::Update)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

pub fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn parse(body: &[u8]) -> Result<Value, Refusal> {
    serde_json::from_slice(body).map_err(|e| Refusal(400, format!("the body is not JSON: {e}")))
}

fn operation_field(v: &Value, field: &str, missing: Option<Operation>) -> Result<Operation, Refusal> {
    match (v.get(field), missing) {
        (Some(Value::String(op)), _) => Operation::parse(op),
        (None, Some(default)) => Ok(default),
        (None, None) => Err(Refusal(400, format!("{field} is missing"))),
        (Some(other), _) => Err(Refusal(400, format!("{field} must be a string, not {other}"))),
    }
}

/// The object's kind and apiVersion, else the request's (`request.kind`, a
/// GroupVersionKind), written into the object so every rule sees them.
fn settle_kind(object: &mut Value, request: &Value) -> Result<String, Refusal> {
    let own_kind = str_at(object, "/kind").to_string();
    let own_version = str_at(object, "/apiVersion").to_string();
    if !own_kind.is_empty() && !own_version.is_empty() {
        return Ok(own_kind);
    }
    // Half a type from the object and half from the request would be a type
    // nobody sent: take the request's whole, and only if it agrees.
    let request_kind = str_at(request, "/kind/kind");
    let request_version = match (str_at(request, "/kind/group"), str_at(request, "/kind/version")) {
        (_, "") => String::new(),
        ("", v) => v.to_string(),
        (g, v) => format!("{g}/{v}"),
    };
    if request_kind.is_empty() || request_version.is_empty() {
        return Err(Refusal(400, "the object has no kind and apiVersion, and request.kind does not give them".into()));
    }
    if (!own_kind.is_empty() && own_kind != request_kind) || (!own_version.is_empty() && own_version != request_version)
    {
        return Err(Refusal(
            400,
            format!(
                "the object's type ({own_version:?}, {own_kind:?}) disagrees with request.kind ({request_version:?}, {request_kind:?})"
            ),
        ));
    }
    if let Some(map) = object.as_object_mut() {
        map.insert("kind".into(), Value::String(request_kind.to_string()));
        map.insert("apiVersion".into(), Value::String(request_version));
    }
    Ok(request_kind.to_string())
}

/// What an `AdmissionReview` asks.
#[derive(Debug)]
pub struct Review {
    pub uid: String,
    pub operation: Operation,
    pub namespace: String,
    pub name: String,
    /// The object's kind (for DELETE and CONNECT, the request's).
    pub kind: String,
    /// The object to judge, its kind and apiVersion settled; `Null` for DELETE and CONNECT.
    pub object: Value,
    pub old_object: Option<String>,
    pub username: String,
    pub user_uid: String,
    pub groups: Vec<String>,
}

/// Decode a `POST /validate` body.
pub fn admission_review(body: &[u8]) -> Result<Review, Refusal> {
    let mut review = parse(body)?;
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
    let operation = operation_field(request, "operation", None)
        .map_err(|Refusal(code, message)| Refusal(code, format!("request.{message}")))?;
    let mut object = Value::Null;
    if operation.judges_object() {
        // Moved out, not copied: nothing below reads request.object.
        object = review.pointer_mut("/request/object").map(Value::take).unwrap_or(Value::Null);
    }
    let request = &review["request"];
    let kind = if operation.judges_object() {
        if !object.is_object() {
            return Err(Refusal(400, format!("request.object of a {} is not an object", operation.as_str())));
        }
        settle_kind(&mut object, request)?
    } else {
        str_at(request, "/kind/kind").to_string()
    };
    let name = match str_at(request, "/name") {
        "" => str_at(&object, "/metadata/name").to_string(),
        n => n.to_string(),
    };
    Ok(Review {
        uid,
        operation,
        namespace: str_at(request, "/namespace").to_string(),
        name,
        kind,
        object,
        old_object: request.get("oldObject").filter(|o| o.is_object()).map(Value::to_string),
        username: str_at(request, "/userInfo/username").to_string(),
        user_uid: str_at(request, "/userInfo/uid").to_string(),
        groups: request
            .pointer("/userInfo/groups")
            .and_then(Value::as_array)
            .map(|g| g.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// One key of a `ProviderRequest`: an object to judge, or why it cannot be.
#[derive(Debug)]
pub enum ProviderKey {
    Object { text: String, object: Value, kind: String },
    Invalid { key: Value, error: String },
}

/// Decode a `POST /gatekeeper/v1/provider` body. `Err`: a system error for
/// the whole request (Gatekeeper's wire format has no HTTP-level refusal).
pub fn provider_request(body: &[u8]) -> Result<Vec<ProviderKey>, String> {
    let request = parse(body).map_err(|Refusal(_, message)| message)?;
    if request["apiVersion"] != "externaldata.gatekeeper.sh/v1beta1" || request["kind"] != "ProviderRequest" {
        return Err(format!(
            "expected a ProviderRequest of apiVersion externaldata.gatekeeper.sh/v1beta1, got kind {} apiVersion {}",
            request["kind"], request["apiVersion"]
        ));
    }
    let Some(keys) = request.pointer("/request/keys").and_then(Value::as_array) else {
        return Err("request.keys is missing".into());
    };
    Ok(keys.iter().map(provider_key).collect())
}

fn provider_key(key: &Value) -> ProviderKey {
    let invalid = |error: String| ProviderKey::Invalid { key: key.clone(), error };
    let Some(text) = key.as_str() else {
        return invalid("a key must be a string holding one object as JSON".into());
    };
    let object: Value = match serde_json::from_str(text) {
        Ok(o @ Value::Object(_)) => o,
        Ok(_) => return invalid("the key is JSON but not an object".into()),
        Err(e) => return invalid(format!("the key is not JSON: {e}")),
    };
    let kind = str_at(&object, "/kind").to_string();
    if kind.is_empty() || str_at(&object, "/apiVersion").is_empty() {
        return invalid("the object has no kind or apiVersion".into());
    }
    ProviderKey::Object { text: text.to_string(), object, kind }
}

/// What a Kyverno `apiCall` asks.
#[derive(Debug)]
pub struct KyvernoCall {
    pub object: Value,
    pub kind: String,
    pub operation: Operation,
    pub old_object: Option<String>,
}

/// Decode a `POST /kyverno/v1/validate` body. The exported policy always
/// sends `operation`; a call without one is a CREATE.
pub fn kyverno_call(body: &[u8]) -> Result<KyvernoCall, Refusal> {
    let call = parse(body)?;
    let object =
        call.get("object").filter(|o| o.is_object()).ok_or_else(|| Refusal(400, "the body has no `object`".into()))?;
    let kind = str_at(object, "/kind").to_string();
    if kind.is_empty() || str_at(object, "/apiVersion").is_empty() {
        return Err(Refusal(400, "the object has no kind or apiVersion".into()));
    }
    let operation = operation_field(&call, "operation", Some(Operation::Create))?;
    Ok(KyvernoCall {
        object: object.clone(),
        kind,
        operation,
        old_object: call.get("oldObject").filter(|o| o.is_object()).map(Value::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn review(request: Value) -> Result<Review, Refusal> {
        admission_review(
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
                .to_string()
                .as_bytes(),
        )
    }

    #[test]
    fn operations_are_exactly_the_four() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod"});
        for bad in [json!("create"), json!(""), json!("PATCH"), json!(" CREATE"), json!("CREATE "), json!(1)] {
            let r = review(json!({"uid": "u", "operation": bad, "object": pod}));
            assert_eq!(r.unwrap_err().0, 400, "{bad}");
        }
        let r = review(json!({"uid": "u", "object": pod}));
        assert_eq!(r.unwrap_err(), Refusal(400, "request.operation is missing".into()));
        for (op, judged) in [("CREATE", true), ("UPDATE", true), ("DELETE", false), ("CONNECT", false)] {
            let r = review(json!({"uid": "u", "operation": op, "object": pod})).unwrap();
            assert_eq!(r.operation.judges_object(), judged);
        }
        let k = kyverno_call(json!({"object": pod, "operation": "Create"}).to_string().as_bytes());
        assert_eq!(k.unwrap_err().0, 400);
        assert_eq!(kyverno_call(json!({"object": pod}).to_string().as_bytes()).unwrap().operation, Operation::Create);
    }

    #[test]
    fn an_object_without_kind_takes_the_requests() {
        let r = review(json!({"uid": "u", "operation": "CREATE", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"}, "object": {"metadata": {"name": "d"}}})).unwrap();
        assert_eq!(r.kind, "Deployment");
        assert_eq!(r.object["kind"], "Deployment");
        assert_eq!(r.object["apiVersion"], "apps/v1");
        let r = review(json!({"uid": "u", "operation": "CREATE", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "object": {}})).unwrap();
        assert_eq!(r.object["apiVersion"], "v1");
        let r = review(json!({"uid": "u", "operation": "CREATE", "object": {"metadata": {}}}));
        assert_eq!(r.unwrap_err().0, 400);
        // Half a type from each side is refused.
        let r = review(
            json!({"uid": "u", "operation": "CREATE", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"}, "object": {"kind": "Pod"}}),
        );
        assert!(r.unwrap_err().1.contains("disagrees"));
        let r = review(json!({"uid": "u", "operation": "CREATE", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"}, "object": {"kind": "Deployment"}})).unwrap();
        assert_eq!(r.object["apiVersion"], "apps/v1");
        assert_eq!(kyverno_call(json!({"object": {"metadata": {}}}).to_string().as_bytes()).unwrap_err().0, 400);
        let keys = provider_request(
            json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest", "request": {"keys": ["{\"metadata\":{}}"]}})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert!(matches!(&keys[0], ProviderKey::Invalid { error, .. } if error.contains("no kind")));
    }
}
