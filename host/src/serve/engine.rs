//! One object at a time, as admission sees it: every applicable rule, with
//! instances pooled across requests, and each rule's admission mode.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::{Admission, FailurePolicy, Mode};
use crate::evaluate::{Outcome, Slots, Worker};
use crate::inventory::Inventory;
use crate::policy_set::ActivePolicy;
use crate::runtime::{Runtime, wit};
use crate::severity::Severity;

/// What one rule made of the object.
#[derive(Debug, Clone)]
pub enum Verdict {
    Pass,
    Violations(Vec<wit::Violation>),
    /// The rule could not decide (its error, a trap, the deadline, memory).
    Error(String),
    /// Not evaluated: a cross-resource rule needs objects a single request does not carry.
    Skipped(&'static str),
}

#[derive(Debug, Clone)]
pub struct RuleResult {
    pub rule: String,
    pub severity: Severity,
    pub mode: Mode,
    pub failure_policy: FailurePolicy,
    pub verdict: Verdict,
}

pub struct Engine {
    runtime: Arc<Runtime>,
    policies: Vec<ActivePolicy>,
    pub admission: Admission,
    /// Admission requests carry one object: the inventory is empty.
    inventory: Arc<Inventory>,
    pool: Mutex<Vec<Slots>>,
}

pub const SKIPPED_CROSS_RESOURCE: &str =
    "reads other objects (a cross-resource rule), which one admission request does not carry";

impl Engine {
    /// The sandbox the policies run in (and the image verifier it answers with).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn new(runtime: Arc<Runtime>, policies: Vec<ActivePolicy>, admission: Admission) -> Engine {
        Engine { runtime, policies, admission, inventory: Arc::new(Inventory::default()), pool: Mutex::new(Vec::new()) }
    }

    pub fn policies(&self) -> &[ActivePolicy] {
        &self.policies
    }

    /// Instantiate one set of instances ahead of the first request.
    pub fn warm(&self, kinds: &[&str]) {
        let context = wit::AdmissionContext {
            operation: wit::Operation::Create,
            namespace: None,
            old_object: None,
            user_info: None,
            offline: false,
        };
        for kind in kinds {
            let _ = self.evaluate(
                &format!(r#"{{"apiVersion":"v1","kind":"{kind}","metadata":{{"name":"warm-up"}}}}"#),
                kind,
                &context,
                None,
            );
        }
    }

    /// Every applicable rule on `object` (JSON) of `kind`. Past `deadline`
    /// the running rule is interrupted and the rest are not started: each
    /// says so as an error, so the failure policy decides.
    pub fn evaluate(
        &self,
        object: &str,
        kind: &str,
        context: &wit::AdmissionContext,
        deadline: Option<Instant>,
    ) -> Vec<RuleResult> {
        let slots = self.pool.lock().ok().and_then(|mut p| p.pop()).unwrap_or_else(|| {
            let mut s = Slots::new();
            s.resize_with(self.policies.len(), || None);
            s
        });
        let mut worker = Worker { runtime: &self.runtime, policies: &self.policies, inventory: &self.inventory, slots };
        let mut out = Vec::new();
        for (p, policy) in self.policies.iter().enumerate() {
            if !policy.applies_to(kind) {
                continue;
            }
            let verdict = if !policy.policy.meta.reads_kinds.is_empty() {
                Verdict::Skipped(SKIPPED_CROSS_RESOURCE)
            } else {
                match worker.run(p, object, context, deadline) {
                    Outcome::Violations(v) if v.is_empty() => Verdict::Pass,
                    Outcome::Violations(v) => Verdict::Violations(v),
                    Outcome::Failed(e) => Verdict::Error(e),
                }
            };
            out.push(RuleResult {
                rule: policy.id().to_string(),
                severity: policy.severity,
                mode: self.admission.mode(policy.id(), policy.severity),
                failure_policy: self.admission.failure_policy(policy.id()),
                verdict,
            });
        }
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(worker.slots);
        }
        out
    }
}
