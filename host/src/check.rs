//! One run of `palisade check`: the whole data path, from paths to a report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::documents::{Limits, read_documents};
use crate::evaluate::evaluate;
use crate::findings::{ErrorKind, Finding, ResourceRef, RunError};
use crate::input;
use crate::inventory::Inventory;
use crate::policy_set::ActivePolicy;
use crate::resources::{self, Resource, Source};
use crate::runtime::Runtime;
use crate::severity::Severity;

/// Everything a run read.
#[derive(Debug, Default)]
pub struct Loaded {
    pub files: usize,
    pub resources: Vec<Resource>,
    pub errors: Vec<RunError>,
    /// Files not read as manifests, with why: a Helm values file beside a chart.
    pub skipped: BTreeMap<String, String>,
}

/// Read every input into resources; unreadable parts become errors.
pub fn load(paths: &[String], limits: &Limits) -> Loaded {
    load_keeping(paths, limits, &mut |_, _| {})
}

/// [`load`], handing each input's text to `keep` as it is read (for
/// `check --pin`, which edits the text after the run; standard input can be
/// read only once).
pub fn load_keeping(paths: &[String], limits: &Limits, keep: &mut dyn FnMut(&input::InputSource, &str)) -> Loaded {
    load_all(paths, Vec::new(), limits, keep)
}

/// [`load_keeping`], with texts that are not files first: (name, text, or why
/// there is none), as `check --helm` renders them.
pub fn load_all(
    paths: &[String],
    rendered: Vec<(String, Result<String, String>)>,
    limits: &Limits,
    keep: &mut dyn FnMut(&input::InputSource, &str),
) -> Loaded {
    let (sources, missing) = input::expand(paths);
    let mut loaded = Loaded { files: sources.len() + rendered.len(), ..Loaded::default() };
    for e in missing {
        loaded.errors.push(input_error(&e.path, 0, 0, e.message));
    }
    for (name, text) in rendered {
        match text {
            Ok(text) => read_text(&name, read_documents(&text, limits), &mut loaded),
            Err(message) => loaded.errors.push(input_error(&name, 0, 0, message)),
        }
    }
    for source in &sources {
        let name = source.display_name();
        let text = match input::read(source) {
            Ok(t) => t,
            Err(e) => {
                loaded.errors.push(input_error(&e.path, 0, 0, e.message));
                continue;
            }
        };
        keep(source, &text);
        let documents = read_documents(&text, limits);
        if let input::InputSource::File(path) = source
            && holds_no_object(&documents)
            && input::beside_chart(path)
        {
            loaded.skipped.insert(
                name,
                "a Helm values file beside a chart, not a manifest (no document has a `kind`)".to_string(),
            );
            continue;
        }
        read_text(&name, documents, &mut loaded);
    }
    // An empty render (a failed `helm template`, a wrong directory) must not pass as clean.
    if loaded.resources.is_empty() && loaded.errors.is_empty() {
        let what = if paths.is_empty() && loaded.files > 0 {
            "the rendered chart".to_string()
        } else if paths.is_empty() {
            "<none>".to_string()
        } else {
            paths.join(", ")
        };
        loaded.errors.push(input_error(
            &what,
            0,
            0,
            format!("no Kubernetes objects found in {} file(s)", loaded.files),
        ));
    }
    loaded
}

/// Whether every document reads as YAML and none is an object Kubernetes
/// could take: no `kind` (a Helm values file, say).
fn holds_no_object(documents: &[crate::documents::Document]) -> bool {
    documents.iter().all(|d| d.content.as_ref().is_ok_and(|c| c.value.get("kind").is_none()))
}

/// One input's documents → its resources, and errors for what is not one.
fn read_text(name: &str, documents: Vec<crate::documents::Document>, loaded: &mut Loaded) {
    let mut errors = Vec::new();
    resources::from_documents(name, documents, &mut loaded.resources, &mut errors);
    loaded.errors.extend(errors.into_iter().map(|e| RunError {
        kind: ErrorKind::Input,
        rule: None,
        resource: None,
        source: e.source,
        message: e.message,
    }));
}

fn input_error(file: &str, document: usize, line: usize, message: String) -> RunError {
    RunError { kind: ErrorKind::Input, rule: None, resource: None, source: Source::new(file, document, line), message }
}

/// Counts for the end of a report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub files: usize,
    pub resources: usize,
    /// Resources at least one loaded rule applies to.
    pub resources_evaluated: usize,
    /// Resources with at least one finding.
    pub resources_failing: usize,
    /// (resource, rule) evaluations made.
    pub evaluations: usize,
    pub policies: usize,
    /// Findings that count (not exempted).
    pub findings: usize,
    /// Findings an exception covers.
    pub exempted: usize,
    pub findings_by_severity: BTreeMap<Severity, usize>,
    pub findings_by_rule: BTreeMap<String, usize>,
    pub errors: usize,
    /// Kinds present in the input that no loaded rule evaluates, with counts.
    pub kinds_not_evaluated: BTreeMap<String, usize>,
    /// Rules that ran but can report nothing as configured, with the reason
    /// (`image-signature` without `--verify-images`, say): a pass of theirs proves nothing.
    pub inactive: BTreeMap<String, String>,
    /// Files not read as manifests, with why (a Helm values file beside a chart).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped: BTreeMap<String, String>,
}

/// One resource read, and the rules that evaluated it: the evidence that an
/// object without findings was checked, not skipped.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    #[serde(flatten)]
    pub resource: ResourceRef,
    pub source: Source,
    /// Ids of the rules that evaluated it (none: no loaded rule applies to its kind).
    pub rules: Vec<String>,
}

/// The outcome of a run, ready to print.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub errors: Vec<RunError>,
    pub resources: Vec<Checked>,
    /// How each exception of the configuration fared.
    pub exceptions: Vec<crate::exceptions::ExceptionStatus>,
    pub summary: Summary,
    /// Where the policies came from, when that was a bundle: evidence of
    /// exactly which signed policy set judged the manifests.
    #[serde(rename = "policyBundle", skip_serializing_if = "Option::is_none")]
    pub policy_bundle: Option<PolicyBundle>,
    /// Where the run's time went, for `palisade bench`; never printed.
    #[serde(skip)]
    pub timing: Timing,
}

/// Where a run's time went (wall-clock, for `palisade bench`).
#[derive(Debug, Clone, Default)]
pub struct Timing {
    /// The worker phase: every policy on every resource, findings placed on
    /// their lines, on all threads (wall time), and gathering them in order.
    pub evaluate: Duration,
    /// After the workers: sorting, exceptions, summary.
    pub report: Duration,
    /// Per policy, in policy order.
    pub per_policy: Vec<PolicyTime>,
}

/// The calls to one policy, over all threads.
#[derive(Debug, Clone, Default)]
pub struct PolicyTime {
    pub rule: String,
    pub calls: usize,
    /// Summed time inside `Worker::run` for that policy, all threads.
    pub time: Duration,
}

/// The bundle a run's policies came from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyBundle {
    /// The reference as given (`oci://…:tag`, a digest reference or a layout path).
    pub reference: String,
    /// The same, pinned to the digest that was run.
    pub pinned: String,
    pub digest: String,
    /// The public key whose signature verified, if verification was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<String>,
}

impl Report {
    /// 2 if anything could not be read or evaluated, 1 for a finding at or
    /// above `fail_on`, 0 otherwise.
    pub fn exit_code(&self, fail_on: Severity) -> i32 {
        if !self.errors.is_empty() {
            2
        } else if self.findings.iter().any(|f| f.is_active() && f.severity >= fail_on) {
            1
        } else {
            0
        }
    }
}

/// Evaluate loaded resources and build the report.
pub fn run(
    runtime: &Runtime,
    policies: &[ActivePolicy],
    loaded: Loaded,
    exceptions: &[crate::exceptions::Exception],
    threads: usize,
) -> Report {
    let inventory = Arc::new(Inventory::new(&loaded.resources));
    let evaluation = evaluate(runtime, policies, &loaded.resources, inventory, threads);
    let report_start = Instant::now();
    let mut errors = loaded.errors;
    errors.extend(evaluation.errors);
    errors.sort_by(|a, b| a.source.cmp(&b.source));
    let mut findings = evaluation.findings;
    let exception_status =
        crate::exceptions::apply(&mut findings, &loaded.resources, exceptions, crate::exceptions::Date::today());
    let mut kinds_not_evaluated = BTreeMap::new();
    // Kinds that rules read through the inventory are used, if not evaluated.
    let read: std::collections::HashSet<&str> =
        policies.iter().flat_map(|p| p.policy.meta.reads_kinds.iter().map(String::as_str)).collect();
    for &i in &evaluation.unevaluated {
        let kind = &loaded.resources[i].kind;
        if !read.contains(kind.as_str()) {
            *kinds_not_evaluated.entry(kind.clone()).or_insert(0) += 1;
        }
    }
    let mut findings_by_severity = BTreeMap::new();
    let mut findings_by_rule = BTreeMap::new();
    for f in findings.iter().filter(|f| f.is_active()) {
        *findings_by_severity.entry(f.severity).or_insert(0) += 1;
        *findings_by_rule.entry(f.rule.clone()).or_insert(0) += 1;
    }
    // A finding's source is the line of its field: the resource is its file,
    // document and reference.
    let failing: std::collections::BTreeSet<(&str, usize, &ResourceRef)> = findings
        .iter()
        .filter(|f| f.is_active())
        .map(|f| (f.source.file.as_str(), f.source.document, &f.resource))
        .collect();
    let summary = Summary {
        files: loaded.files,
        resources: loaded.resources.len(),
        resources_evaluated: loaded.resources.len() - evaluation.unevaluated.len(),
        resources_failing: failing.len(),
        evaluations: evaluation.evaluations,
        policies: policies.len(),
        findings: findings.iter().filter(|f| f.is_active()).count(),
        exempted: findings.iter().filter(|f| !f.is_active()).count(),
        findings_by_severity,
        findings_by_rule,
        errors: errors.len(),
        kinds_not_evaluated,
        inactive: policies
            .iter()
            .filter_map(|p| p.inactive.as_ref().map(|why| (p.id().to_string(), why.clone())))
            .collect(),
        skipped: loaded.skipped,
    };
    let resources = loaded
        .resources
        .iter()
        .zip(&evaluation.evaluated_by)
        .map(|(r, by)| Checked {
            resource: ResourceRef::of(r),
            source: r.source.clone(),
            rules: by.iter().map(|&p| policies[p].id().to_string()).collect(),
        })
        .collect();
    let timing = Timing {
        evaluate: evaluation.elapsed,
        report: report_start.elapsed(),
        per_policy: policies
            .iter()
            .zip(&evaluation.policy_time)
            .map(|(p, &(calls, time))| PolicyTime { rule: p.id().to_string(), calls, time })
            .collect(),
    };
    Report { findings, errors, resources, exceptions: exception_status, summary, policy_bundle: None, timing }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::read_documents;
    use crate::policy_set::{Catalog, Selection};
    use crate::runtime::SandboxLimits;

    #[test]
    fn findings_are_in_order_whatever_the_threads_and_the_time_is_counted_per_rule() {
        // The compile cache the end-to-end tests share.
        let cache = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-cache");
        let runtime = Arc::new(Runtime::new(Some(cache), SandboxLimits::default()).unwrap());
        let catalog = Catalog::load(runtime.clone(), true, &[]).unwrap();
        let selection = Selection { profile: "restricted".into(), ..Selection::default() };
        let policies = catalog.select(&selection).unwrap();
        let pod = |name: &str| {
            format!(
                "- apiVersion: v1\n  kind: Pod\n  metadata: {{name: {name}}}\n  spec:\n    hostNetwork: true\n    \
                 containers:\n    - name: c\n      image: x\n      securityContext: {{privileged: true}}\n"
            )
        };
        let text = format!(
            "apiVersion: v1\nkind: List\nitems:\n{}{}- {{apiVersion: v1, kind: Service, metadata: {{name: s}}}}\n{}",
            pod("a"),
            pod("b"),
            pod("c")
        );
        let report = |threads: usize| {
            let mut loaded = Loaded { files: 1, ..Loaded::default() };
            read_text("list.yaml", read_documents(&text, &Limits::default()), &mut loaded);
            assert_eq!(loaded.resources.len(), 4, "{:?}", loaded.errors);
            run(&runtime, &policies, loaded, &[], threads)
        };
        let one = report(1);
        let three = report(3);
        let json = |r: &Report| serde_json::to_value(r).unwrap();
        assert_eq!(json(&one), json(&three));
        assert!(json(&one).get("timing").is_none(), "the timing is not part of the report");
        // By resource, then by rule in the order of the policies.
        let position = |id: &str| policies.iter().position(|p| p.id() == id).unwrap();
        let order: Vec<(usize, usize)> = one.findings.iter().map(|f| (f.resource_index, position(&f.rule))).collect();
        assert!(order.len() > 6 && order.is_sorted(), "{order:?}");
        assert_eq!(order.iter().map(|o| o.0).collect::<std::collections::BTreeSet<_>>(), [0, 1, 3].into());
        // Findings on the lines of their fields, in the List's items.
        let privileged = one.findings.iter().find(|f| f.rule == "pss-privileged" && f.resource_index == 1).unwrap();
        assert_eq!(
            (privileged.path.as_str(), privileged.source.line, privileged.source.column),
            ("/spec/containers/0/securityContext/privileged", 21, Some(25))
        );
        for r in [&one, &three] {
            let t = &r.timing;
            let rules: Vec<&str> = t.per_policy.iter().map(|p| p.rule.as_str()).collect();
            assert_eq!(rules, policies.iter().map(ActivePolicy::id).collect::<Vec<_>>());
            assert_eq!(t.per_policy.iter().map(|p| p.calls).sum::<usize>(), r.summary.evaluations);
            // Three Pods for each PSS rule, the Service for none.
            assert!(t.per_policy.iter().all(|p| p.calls == 3), "{:?}", t.per_policy);
        }
        // On one thread, the calls are inside the worker phase.
        assert!(one.timing.evaluate >= one.timing.per_policy.iter().map(|p| p.time).sum::<Duration>());
    }
}
