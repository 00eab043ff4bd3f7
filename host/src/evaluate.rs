//! Every applicable policy evaluates every resource, in parallel across cores.
//!
//! Each worker thread keeps one configured instance per policy and reuses it
//! for every resource; an instance that trapped is dropped and recreated on
//! its next use, since a trapped component instance cannot be entered again.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::findings::{ErrorKind, Finding, ResourceRef, RunError};
use crate::inventory::Inventory;
use crate::policy_set::ActivePolicy;
use crate::resources::Resource;
use crate::runtime::{CallError, Instance, Runtime, wit};
use crate::view::{Object, Views};

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
    /// For each policy: (calls, summed time inside [`Worker::run`] over all threads).
    pub policy_time: Vec<(usize, Duration)>,
    /// Wall time of the worker phase, with the gathering of its results.
    pub elapsed: Duration,
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

/// What the policies said of one resource, in policy order.
#[derive(Default)]
struct Judged {
    by: Vec<usize>,
    findings: Vec<Finding>,
    errors: Vec<RunError>,
}

/// Evaluate `resources` with `policies` on up to `threads` threads. The result
/// is in resource order, then policy order, whatever the scheduling. Findings
/// are built (and placed on their lines) in the worker threads.
pub fn evaluate(
    runtime: &Runtime,
    policies: &[ActivePolicy],
    resources: &[Resource],
    inventory: Arc<Inventory>,
    threads: usize,
) -> Evaluation {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Judged)>> = Mutex::new(Vec::with_capacity(resources.len()));
    let policy_time: Mutex<Vec<(usize, Duration)>> = Mutex::new(vec![(0, Duration::ZERO); policies.len()]);
    let threads = threads.clamp(1, resources.len().max(1));
    // Resources a worker takes at a time: up to 64, fewer as the input runs
    // out, so the threads end together (and every thread gets work).
    let take = || {
        let mut first = next.load(Ordering::Relaxed);
        loop {
            let left = resources.len().checked_sub(first).filter(|&n| n > 0)?;
            let chunk = (left / (threads * 4)).clamp(1, 64);
            match next.compare_exchange_weak(first, first + chunk, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(first..first + chunk),
                Err(now) => first = now,
            }
        }
    };
    let views = Views::new(policies.iter().map(|p| p.policy.view.as_ref()));
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
                let mut times = vec![(0usize, Duration::ZERO); policies.len()];
                while let Some(taken) = take() {
                    let contexts: Vec<_> = taken.clone().map(|r| offline_context(&resources[r])).collect();
                    // Each object is pruned once per view (from the tape written with its JSON),
                    // for the rules that read part of it.
                    let objects: Vec<Object> = taken
                        .clone()
                        .map(|r| Object::from_written(&resources[r].json, &resources[r].tape, &views))
                        .collect();
                    let mut judged: Vec<Judged> = taken.clone().map(|_| Judged::default()).collect();
                    // Policy after policy over the resources taken, so each
                    // component's code and memory stay warm in the CPU's caches.
                    for (p, policy) in policies.iter().enumerate() {
                        for (i, r) in taken.clone().enumerate() {
                            let resource = &resources[r];
                            if !policy.applies_to(&resource.kind) {
                                continue;
                            }
                            times[p].0 += 1;
                            let outcome = if policy.needs_no_call() {
                                // The rule said that, as configured, it can report
                                // nothing at all (`inactive-reason`): not called.
                                Outcome::Violations(Vec::new())
                            } else {
                                let call = Instant::now();
                                let outcome = worker.run(p, objects[i].for_policy(&views, p), &contexts[i], None);
                                times[p].1 += call.elapsed();
                                outcome
                            };
                            judged[i].by.push(p);
                            judge(resource, r, policy, outcome, &mut judged[i]);
                        }
                    }
                    local.extend(taken.zip(judged));
                }
                if let Ok(mut all) = results.lock() {
                    all.extend(local);
                }
                if let Ok(mut all) = policy_time.lock() {
                    for (sum, (calls, time)) in all.iter_mut().zip(times) {
                        sum.0 += calls;
                        sum.1 += time;
                    }
                }
            });
        }
    });
    let mut by_resource: Vec<Option<Judged>> = (0..resources.len()).map(|_| None).collect();
    for (r, judged) in results.into_inner().unwrap_or_default() {
        by_resource[r] = Some(judged);
    }
    let policy_time = policy_time.into_inner().unwrap_or_default();
    let mut out = Evaluation {
        evaluations: policy_time.iter().map(|(calls, _)| calls).sum(),
        policy_time,
        ..Evaluation::default()
    };
    out.evaluated_by.reserve(resources.len());
    for (r, judged) in by_resource.into_iter().enumerate() {
        let judged = judged.unwrap_or_default();
        if judged.by.is_empty() {
            out.unevaluated.push(r);
        }
        out.evaluated_by.push(judged.by);
        out.findings.extend(judged.findings);
        out.errors.extend(judged.errors);
    }
    out.elapsed = started.elapsed();
    out
}

/// One policy's outcome on resource `r` → its findings, each on the line of
/// its field, or its error.
fn judge(resource: &Resource, r: usize, policy: &ActivePolicy, outcome: Outcome, judged: &mut Judged) {
    match outcome {
        Outcome::Violations(violations) => {
            for v in violations {
                let source = resource.source_of(&v.path);
                judged.findings.push(Finding {
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
        Outcome::Failed(message) => judged.errors.push(RunError {
            kind: ErrorKind::Policy,
            rule: Some(policy.id().to_string()),
            resource: Some(ResourceRef::of(resource)),
            source: resource.source.clone(),
            message,
        }),
    }
}
