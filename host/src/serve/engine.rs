//! One object at a time, as admission sees it: every applicable rule, with
//! instances pooled across requests, and each rule's admission mode.
//!
//! The pool holds a fixed number of instance sets (one instance per rule
//! each), all made at start: a request takes a free set, or waits for one up
//! to its deadline. So no more evaluations run at once than there are sets
//! (by default the cores), memory is bounded, and no request pays for an
//! instantiation. What each request would otherwise work out again (a rule's
//! mode, failure policy and id, the rules that judge a kind) is worked out
//! once, at start.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::config::{Admission, FailurePolicy, Mode};
use crate::evaluate::{Outcome, Slots, Worker};
use crate::inventory::Inventory;
use crate::policy_set::ActivePolicy;
use crate::runtime::{CallError, Runtime, wit};
use crate::severity::Severity;
use crate::view::{Object, Views};

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

impl Verdict {
    /// The `result` label of `palisade_evaluations_total`.
    pub fn result(&self) -> Counted {
        match self {
            Verdict::Pass => Counted::Pass,
            Verdict::Violations(_) => Counted::Fail,
            Verdict::Error(_) => Counted::Error,
            Verdict::Skipped(_) => Counted::Skipped,
        }
    }
}

/// An evaluation's result, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Pass,
    Fail,
    Error,
    Skipped,
}

impl Counted {
    pub const ALL: [Counted; 4] = [Counted::Pass, Counted::Fail, Counted::Error, Counted::Skipped];

    pub fn as_str(self) -> &'static str {
        match self {
            Counted::Pass => "pass",
            Counted::Fail => "fail",
            Counted::Error => "error",
            Counted::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RuleResult {
    /// The rule's place in [`Engine::policies`].
    pub index: usize,
    pub rule: Arc<str>,
    pub severity: Severity,
    pub mode: Mode,
    pub failure_policy: FailurePolicy,
    pub verdict: Verdict,
}

/// What admission makes of one rule, worked out at start.
struct Rule {
    id: Arc<str>,
    mode: Mode,
    failure_policy: FailurePolicy,
    /// A cross-resource rule: skipped, since a request carries one object.
    skipped: bool,
    /// The rule said that, as configured, it can report nothing
    /// (`inactive-reason`): it passes without a call.
    inactive: bool,
}

/// Instance sets, each one instance per rule, handed to one request at a time.
struct Pool {
    free: Mutex<Vec<Slots>>,
    returned: Condvar,
}

/// A set taken from the pool; it goes back when dropped, even if the
/// evaluation panicked (then as an empty set, filled again on use).
struct Lease<'a> {
    pool: &'a Pool,
    slots: Option<Slots>,
    rules: usize,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let slots = self.slots.take().unwrap_or_else(|| empty(self.rules));
        if let Ok(mut free) = self.pool.free.lock() {
            free.push(slots);
        }
        self.pool.returned.notify_one();
    }
}

fn empty(rules: usize) -> Slots {
    (0..rules).map(|_| None).collect()
}

pub struct Engine {
    runtime: Arc<Runtime>,
    policies: Vec<ActivePolicy>,
    pub admission: Admission,
    /// Admission requests carry one object: the inventory is empty.
    inventory: Arc<Inventory>,
    rules: Vec<Rule>,
    /// Kind → the rules that judge it, for every kind a rule names.
    by_kind: HashMap<String, Arc<[usize]>>,
    /// The rules for any other kind: those that judge every kind.
    any_kind: Arc<[usize]>,
    pool: Pool,
    pool_size: usize,
    /// What each rule reads of an object.
    views: Views,
}

pub const SKIPPED_CROSS_RESOURCE: &str =
    "reads other objects (a cross-resource rule), which one admission request does not carry";

impl Engine {
    /// The sandbox the policies run in (and the image verifier it answers with).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// An engine evaluating at most `pool_size` objects at once (at least one).
    pub fn new(runtime: Arc<Runtime>, policies: Vec<ActivePolicy>, admission: Admission, pool_size: usize) -> Engine {
        let rules = policies
            .iter()
            .map(|p| Rule {
                id: Arc::from(p.id()),
                mode: admission.mode(p.id(), p.severity),
                failure_policy: admission.failure_policy(p.id()),
                skipped: !p.policy.meta.reads_kinds.is_empty(),
                inactive: p.needs_no_call(),
            })
            .collect();
        let applicable = |kind: &str| -> Arc<[usize]> {
            policies.iter().enumerate().filter(|(_, p)| p.applies_to(kind)).map(|(i, _)| i).collect()
        };
        let mut by_kind = HashMap::new();
        for kind in policies.iter().flat_map(|p| &p.policy.meta.applies_to).filter(|k| *k != "*") {
            if !by_kind.contains_key(kind) {
                by_kind.insert(kind.clone(), applicable(kind));
            }
        }
        let any_kind = policies
            .iter()
            .enumerate()
            .filter(|(_, p)| p.policy.meta.applies_to.iter().any(|k| k == "*"))
            .map(|(i, _)| i)
            .collect();
        let pool_size = pool_size.max(1);
        Engine {
            runtime,
            inventory: Arc::new(Inventory::default()),
            rules,
            by_kind,
            any_kind,
            pool: Pool {
                free: Mutex::new((0..pool_size).map(|_| empty(policies.len())).collect()),
                returned: Condvar::new(),
            },
            pool_size,
            views: Views::new(policies.iter().map(|p| p.policy.view.as_ref())),
            policies,
            admission,
        }
    }

    pub fn policies(&self) -> &[ActivePolicy] {
        &self.policies
    }

    /// An object to evaluate, given parsed (so written once, canonically).
    pub fn object<'a>(&self, value: &'a serde_json::Value) -> Object<'a> {
        Object::from_value(value, &self.views)
    }

    /// How many objects can be evaluated at once.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// Every rule's id, in [`Engine::policies`] order.
    pub fn rule_ids(&self) -> Vec<Arc<str>> {
        self.rules.iter().map(|r| r.id.clone()).collect()
    }

    /// The rules (indices) that judge `kind`.
    fn applicable(&self, kind: &str) -> &[usize] {
        self.by_kind.get(kind).unwrap_or(&self.any_kind)
    }

    /// Fill every instance set ahead of the first request: each rule that
    /// runs on a request is instantiated, configured and called once on a
    /// minimal object of a kind it judges, in every set.
    pub fn warm(&self) {
        let context = wit::AdmissionContext {
            operation: wit::Operation::Create,
            namespace: None,
            old_object: None,
            user_info: None,
            offline: false,
        };
        let objects: Vec<Option<String>> = self
            .policies
            .iter()
            .zip(&self.rules)
            .map(|(p, rule)| {
                let kind = p.policy.meta.applies_to.first()?;
                let kind = if kind == "*" { "Pod" } else { kind.as_str() };
                (!rule.skipped && !rule.inactive).then(|| {
                    serde_json::json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": "warm-up"}}).to_string()
                })
            })
            .collect();
        let sets: Vec<Slots> = self.pool.free.lock().map(|mut free| std::mem::take(&mut *free)).unwrap_or_default();
        for slots in sets {
            let mut worker =
                Worker { runtime: &self.runtime, policies: &self.policies, inventory: &self.inventory, slots };
            for (p, object) in objects.iter().enumerate() {
                if let Some(object) = object {
                    let _ = worker.run(p, object, &context, None);
                }
            }
            if let Ok(mut free) = self.pool.free.lock() {
                free.push(worker.slots);
            }
            self.pool.returned.notify_one();
        }
    }

    /// A free instance set, waiting for one up to `deadline`.
    fn lease(&self, deadline: Option<Instant>) -> Option<Lease<'_>> {
        // Only pushes and pops run under the lock: a poisoned one holds a sound list.
        let mut free = self.pool.free.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(slots) = free.pop() {
                return Some(Lease { pool: &self.pool, slots: Some(slots), rules: self.policies.len() });
            }
            free = match deadline {
                None => self.pool.returned.wait(free).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
                    self.pool.returned.wait_timeout(free, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }

    fn result(&self, index: usize, verdict: Verdict) -> RuleResult {
        let (policy, rule) = (&self.policies[index], &self.rules[index]);
        RuleResult {
            index,
            rule: rule.id.clone(),
            severity: policy.severity,
            mode: rule.mode,
            failure_policy: rule.failure_policy,
            verdict,
        }
    }

    /// Every applicable rule on `object` (made by [`Engine::object`]) of
    /// `kind`, each handed what it reads of it. Past `deadline` (waiting for a
    /// free instance set, or evaluating) the running rule is interrupted and
    /// the rest are not started: each says so as an error, so the failure
    /// policy decides.
    pub fn evaluate(
        &self,
        object: &Object<'_>,
        kind: &str,
        context: &wit::AdmissionContext,
        deadline: Option<Instant>,
    ) -> Vec<RuleResult> {
        let applicable = self.applicable(kind);
        let mut out = Vec::with_capacity(applicable.len());
        let Some(mut lease) = self.lease(deadline) else {
            for &p in applicable {
                let rule = &self.rules[p];
                let verdict = if rule.skipped {
                    Verdict::Skipped(SKIPPED_CROSS_RESOURCE)
                } else if rule.inactive {
                    Verdict::Pass
                } else {
                    Verdict::Error(CallError::Deadline.to_string())
                };
                out.push(self.result(p, verdict));
            }
            return out;
        };
        let slots = lease.slots.take().unwrap_or_else(|| empty(self.policies.len()));
        let mut worker = Worker { runtime: &self.runtime, policies: &self.policies, inventory: &self.inventory, slots };
        for &p in applicable {
            let verdict = if self.rules[p].skipped {
                Verdict::Skipped(SKIPPED_CROSS_RESOURCE)
            } else if self.rules[p].inactive {
                Verdict::Pass
            } else {
                match worker.run(p, object.for_policy(&self.views, p), context, deadline) {
                    Outcome::Violations(v) if v.is_empty() => Verdict::Pass,
                    Outcome::Violations(v) => Verdict::Violations(v),
                    Outcome::Failed(e) => Verdict::Error(e),
                }
            };
            out.push(self.result(p, verdict));
        }
        lease.slots = Some(worker.slots);
        out
    }
}
