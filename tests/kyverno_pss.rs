//! A second oracle: the Kyverno pod-security policies' own tests
//! (`../shared/corpus/kyverno/pod-security/**/.kyverno-test/`). Each Kyverno
//! policy is mapped to the Palisade rules that implement the same control;
//! every `fail` resource must get a finding from one of them and every `pass`
//! resource none, except the cases listed in `DELIBERATE` where Kyverno's
//! pattern semantics differ from the Pod Security Standards on purpose.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use serde_json::Value;

/// Kyverno test folder → (profile to run, Palisade rules that implement it).
const MAPPING: &[(&str, &str, &[&str])] = &[
    ("baseline/disallow-capabilities", "baseline", &["pss-capabilities-baseline"]),
    ("baseline/disallow-host-namespaces", "baseline", &["pss-host-namespaces"]),
    ("baseline/disallow-host-path", "baseline", &["pss-host-path-volumes"]),
    ("baseline/disallow-host-ports", "baseline", &["pss-host-ports"]),
    ("baseline/disallow-host-ports-range", "baseline", &["pss-host-ports"]),
    ("baseline/disallow-host-process", "baseline", &["pss-windows-host-process"]),
    ("baseline/disallow-privileged-containers", "baseline", &["pss-privileged"]),
    ("baseline/disallow-proc-mount", "baseline", &["pss-proc-mount"]),
    ("baseline/disallow-selinux", "baseline", &["pss-selinux"]),
    ("baseline/restrict-apparmor-profiles", "baseline", &["pss-apparmor"]),
    ("baseline/restrict-seccomp", "baseline", &["pss-seccomp-baseline"]),
    ("baseline/restrict-sysctls", "baseline", &["pss-sysctls"]),
    ("restricted/disallow-capabilities-strict", "restricted", &["pss-capabilities-restricted"]),
    ("restricted/disallow-privilege-escalation", "restricted", &["pss-allow-privilege-escalation"]),
    ("restricted/require-run-as-non-root-user", "restricted", &["pss-run-as-user"]),
    ("restricted/require-run-as-nonroot", "restricted", &["pss-run-as-non-root"]),
    ("restricted/restrict-seccomp-strict", "restricted", &["pss-seccomp-restricted"]),
    ("restricted/restrict-volume-types", "restricted", &["pss-volume-types"]),
    ("subrule/podsecurity-subrule-baseline", "baseline", &["*"]),
    ("subrule/restricted/restricted-latest", "restricted", &["*"]),
    // `exclude: controlName: Seccomp` for every image: the seccomp rules off.
    (
        "subrule/restricted/restricted-exclude-seccomp",
        "restricted",
        &["*", "!pss-seccomp-baseline", "!pss-seccomp-restricted"],
    ),
    // Not mapped: restricted-exclude-capabilities excludes a control for some
    // images only, which needs per-image exceptions (a later issue).
];

fn selects(rules: &[&str], rule: &str) -> bool {
    if rules.contains(&format!("!{rule}").as_str()) {
        return false;
    }
    rules.contains(&"*") || rules.contains(&rule)
}

/// Kyverno rules that check only part of a Palisade rule: (test folder,
/// Kyverno rule, the part of the finding path that belongs to it).
const PARTS: &[(&str, &str, &str)] = &[
    ("restricted/disallow-capabilities-strict", "require-drop-all", "/capabilities/drop"),
    ("restricted/disallow-capabilities-strict", "adding-capabilities-strict", "/capabilities/add"),
];

/// Where Palisade follows the Pod Security Standards and a Kyverno policy does
/// not, on purpose: (test folder, why). Only "Kyverno passes, Palisade fails"
/// is tolerated there: Palisade is never laxer than Kyverno.
const DELIBERATE: &[(&str, &str)] = &[(
    "baseline/disallow-host-ports-range",
    "Kyverno's variant allows host ports 5000-6000; the Pod Security Standards \
     (check_hostPorts.go) allow no host port at all, so pss-host-ports reports them",
)];

struct Case {
    folder: String,
    rule: String,
    kind: String,
    name: String,
    expect_fail: bool,
}

fn cases(folder: &str, test: &Value) -> Vec<Case> {
    let mut out = Vec::new();
    for r in test["results"].as_array().unwrap() {
        let result = r["result"].as_str().unwrap();
        if result == "skip" {
            continue;
        }
        for name in r["resources"].as_array().unwrap() {
            out.push(Case {
                folder: folder.to_string(),
                rule: r["rule"].as_str().unwrap_or_default().to_string(),
                kind: r["kind"].as_str().unwrap().to_string(),
                name: name.as_str().unwrap().to_string(),
                expect_fail: result == "fail",
            });
        }
    }
    out
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let docs = palisade::documents::read_documents(&text, &Default::default());
    docs[0].content.as_ref().unwrap().value.clone()
}

#[test]
fn kyverno_pod_security_tests_agree() {
    let base = corpus().join("kyverno").join("pod-security");
    let mut total = 0;
    let mut agree = 0;
    let mut deliberate = 0;
    let mut disagreements = Vec::new();
    for (folder, profile, rules) in MAPPING {
        let dir = base.join(folder).join(".kyverno-test");
        let test = read_yaml(&dir.join("kyverno-test.yaml"));
        let (_, report) = json_report(
            palisade().args(["check", "--format", "json", "--profile", profile]).arg(dir.join("resource.yaml")),
        );
        assert!(errors(&report).is_empty(), "{folder}: {:#}", report["errors"]);
        for case in cases(folder, &test) {
            total += 1;
            let part = PARTS.iter().find(|(f, r, _)| *f == case.folder && *r == case.rule).map(|(_, _, p)| *p);
            let found: BTreeSet<String> = report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["resource"]["kind"] == case.kind.as_str() && f["resource"]["name"] == case.name.as_str())
                .filter(|f| selects(rules, f["rule"].as_str().unwrap()))
                .filter(|f| part.is_none_or(|p| f["path"].as_str().unwrap().contains(p)))
                .map(|f| f["rule"].as_str().unwrap().to_string())
                .collect();
            let failed = !found.is_empty();
            if failed == case.expect_fail {
                agree += 1;
            } else if failed && DELIBERATE.iter().any(|(f, _)| *f == case.folder) {
                deliberate += 1;
            } else {
                disagreements.push(format!(
                    "{} {} {}: Kyverno expects {}, Palisade found {:?}",
                    case.folder,
                    case.kind,
                    case.name,
                    if case.expect_fail { "fail" } else { "pass" },
                    found
                ));
            }
        }
    }
    println!("Kyverno pod-security: {agree}/{total} agree, {deliberate} deliberate differences");
    assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
    assert!(total > 500, "only {total} cases were read");
}
