//! Every applicable policy evaluates every resource, in parallel across cores.
//!
//! Each worker thread keeps one configured instance per policy and reuses it
//! for every resource; an instance that trapped is dropped and recreated on
//! its next use, since a trapped component instance cannot be entered again.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::findings::{ErrorKind, Finding, ResourceRef, RunError};
use crate::inventory::Inventory;
use crate::policy_set::ActivePolicy;
use crate::resources::Resource;
use crate::runtime::{CallError, Instance, Runtime, wit};

/// What the policies said about the resources.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    pub errors: Vec<RunError>,
    /// (resource, policy) pairs evaluated.
    pub evaluations: usize,
    /// Resources no loaded policy applies to.
    pub unevaluated: Vec<usize>,
    /// For each resource, the policies (indices) that evaluated it.
    pub evaluated_by: Vec<Vec<usize>>,
}

/// The instances one thread uses: one slot per policy, filled on first use.
pub type Slots = Vec<Option<Instance>>;

/// Evaluates objects with one instance per policy, reused call after call.
pub struct Worker<'a> {
    pub runtime: &'a Runtime,
    pub policies: &'a [ActivePolicy],
    pub inventory: &'a Arc<Inventory>,
    pub slots: Slots,
}

/// What one policy said of one object.
pub enum Outcome {
    Violations(Vec<wit::Violation>),
    Failed(String),
}

impl Worker<'_> {
    fn instance(&mut self, p: usize) -> Result<&mut Instance, String> {
        if self.slots[p].is_none() {
            let policy = &self.policies[p];
            let mut instance = self
                .runtime
                .instantiate(&policy.policy.compiled, self.inventory.clone())
                .map_err(|e| format!("cannot instantiate: {e}"))?;
            match self.runtime.configure(&mut instance, &policy.settings) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(format!("settings refused at {}: {}", e.field, e.message));
                }
                Err(e) => return Err(format!("configuring failed: {e}")),
            }
            self.slots[p] = Some(instance);
        }
        self.slots[p].as_mut().ok_or_else(|| "no instance".to_string())
    }

    /// Evaluate the object `json` with policy `p`, stopping at `deadline` if
    /// one is given. An instance that trapped is dropped, to be made anew on
    /// its next use.
    pub fn run(
        &mut self,
        p: usize,
        json: &str,
        context: &wit::AdmissionContext,
        deadline: Option<std::time::Instant>,
    ) -> Outcome {
        let runtime = self.runtime;
        if deadline.is_some_and(|d| d <= std::time::Instant::now()) {
            return Outcome::Failed(CallError::Deadline.to_string());
        }
        let result = match self.instance(p) {
            Ok(instance) => runtime.evaluate(instance, json, context, deadline),
            Err(e) => return Outcome::Failed(e),
        };
        match result {
            Ok(Ok(v)) => Outcome::Violations(v),
            Ok(Err(message)) => Outcome::Failed(message),
            Err(e) => {
                if !matches!(e, CallError::Host(_) | CallError::TooManyViolations(_)) {
                    self.slots[p] = None;
                }
                Outcome::Failed(e.to_string())
            }
        }
    }
}

/// The context of an offline check: a CREATE of the object in its own namespace.
pub fn offline_context(resource: &Resource) -> wit::AdmissionContext {
    wit::AdmissionContext {
        operation: wit::Operation::Create,
        namespace: resource.namespace.clone(),
        old_object: None,
        user_info: None,
        offline: true,
    }
}

/// Evaluate `resources` with `policies` on up to `threads` threads. The result
/// is in resource order, then policy order, whatever the scheduling.
pub fn evaluate(
    runtime: &Runtime,
    policies: &[ActivePolicy],
    resources: &[Resource],
    inventory: Arc<Inventory>,
    threads: usize,
) -> Evaluation {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, usize, Outcome)>> = Mutex::new(Vec::new());
    let evaluations = AtomicUsize::new(0);
    let threads = threads.clamp(1, resources.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut worker = Worker {
                    runtime,
                    policies,
                    inventory: &inventory,
                    slots: (0..policies.len()).map(|_| None).collect(),
                };
                let mut local = Vec::new();
                let mut count = 0;
                loop {
                    let r = next.fetch_add(1, Ordering::Relaxed);
                    let Some(resource) = resources.get(r) else {
                        break;
                    };
                    let context = offline_context(resource);
                    for (p, policy) in policies.iter().enumerate() {
                        if policy.applies_to(&resource.kind) {
                            count += 1;
                            local.push((r, p, worker.run(p, &resource.json, &context, None)));
                        }
                    }
                }
                evaluations.fetch_add(count, Ordering::Relaxed);
                if let Ok(mut all) = results.lock() {
                    all.extend(local);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(r, p, _)| (*r, *p));
    let mut out = Evaluation { evaluations: evaluations.into_inner(), ..Evaluation::default() };
    out.evaluated_by = vec![Vec::new(); resources.len()];
    for (r, p, outcome) in results {
        out.evaluated_by[r].push(p);
        let resource = &resources[r];
        let policy = &policies[p];
        match outcome {
            Outcome::Violations(violations) => {
                for v in violations {
                    let source = resource.source_of(&v.path);
                    out.findings.push(Finding {
                        rule: policy.id().to_string(),
                        severity: policy.severity,
                        message: v.message,
                        path: v.path,
                        resource: ResourceRef::of(resource),
                        source,
                        exemption: None,
                        resource_index: r,
                    });
                }
            }
            Outcome::Failed(message) => out.errors.push(RunError {
                kind: ErrorKind::Policy,
                rule: Some(policy.id().to_string()),
                resource: Some(ResourceRef::of(resource)),
                source: resource.source.clone(),
                message,
            }),
        }
    }
    out.unevaluated = out.evaluated_by.iter().enumerate().filter(|(_, by)| by.is_empty()).map(|(i, _)| i).collect();
    out
}
