//! The `palisade` command line, end to end: inputs, exit codes, reports,
//! configuration, and rule documentation.

mod common;

use std::io::Write;

use common::*;
use serde_json::Value;

fn example(name: &str) -> String {
    root().join("examples").join(name).to_string_lossy().into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const PRIVILEGED_POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ns}
spec:
  containers:
  - name: c
    image: busybox
    securityContext: {privileged: true}
";

#[test]
fn the_insecure_example_fails_with_findings_in_text() {
    let out = run(palisade().args(["check", &example("insecure-deployment.yaml")]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("insecure-deployment.yaml:2  Deployment shop/web"), "{text}");
    assert!(text.contains("pss-privileged"), "{text}");
    assert!(text.contains("at /spec/template/spec/containers/0/securityContext/privileged"), "{text}");
    assert!(text.contains("Findings by rule:"), "{text}");
    assert!(!text.contains('\x1b'), "no colour when not on a terminal");
}

#[test]
fn the_hardened_example_passes() {
    let out = run(palisade().args(["check", &example("hardened-deployment.yaml")]));
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).starts_with("0 findings"), "{}", stdout(&out));
}

#[test]
fn json_report_carries_every_documented_field() {
    let (code, report) =
        json_report(palisade().args(["check", "--format", "json", &example("insecure-deployment.yaml")]));
    assert_eq!(code, 1);
    assert_eq!(report["schema"], "palisade.report/v1");
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "pss-host-ports")
        .expect("a host port finding");
    assert_eq!(f["severity"], "high");
    assert_eq!(f["path"], "/spec/template/spec/containers/0/ports/0/hostPort");
    assert!(f["message"].as_str().unwrap().contains("80"), "{f}");
    assert_eq!(f["resource"]["apiVersion"], "apps/v1");
    assert_eq!(f["resource"]["kind"], "Deployment");
    assert_eq!(f["resource"]["namespace"], "shop");
    assert_eq!(f["resource"]["name"], "web");
    assert!(f["source"]["file"].as_str().unwrap().ends_with("insecure-deployment.yaml"));
    assert_eq!(f["source"]["document"], 1);
    // The line and column of the field itself (`hostPort:`), not of the document.
    assert_eq!(f["source"]["line"], 21);
    assert_eq!(f["source"]["column"], 15);
    let s = &report["summary"];
    assert_eq!(s["resources"], 1);
    // The default `hardened` profile: 18 PSS rules and 33 more; 37 apply to a Deployment.
    assert_eq!(s["policies"], 51);
    assert_eq!(s["evaluations"], 37);
    assert_eq!(s["findings"].as_u64().unwrap() as usize, report["findings"].as_array().unwrap().len());
    assert_eq!(report["resources"][0]["rules"].as_array().unwrap().len(), 37);
    assert!(errors(&report).is_empty());
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let out = with_stdin(&["check", "--format", "json", "-"], PRIVILEGED_POD);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"][0]["source"]["file"], "<stdin>");
    assert!(rules_by_file(&report)["<stdin>"].contains("pss-privileged"));
}

#[test]
fn malformed_documents_are_reported_and_the_rest_is_checked() {
    let input = format!(
        "{PRIVILEGED_POD}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: broken\nspec: [\n---\n{}",
        PRIVILEGED_POD.replace("name: p,", "name: q,")
    );
    let out = with_stdin(&["check", "--format", "json", "-"], &input);
    assert_eq!(out.status.code(), Some(2), "errors win over findings");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let errs = errors(&report);
    assert_eq!(errs.len(), 1, "{report}");
    assert_eq!(errs[0]["kind"], "input");
    assert_eq!(errs[0]["source"]["file"], "<stdin>");
    assert_eq!(errs[0]["source"]["document"], 2);
    assert!(errs[0]["source"]["line"].as_u64().unwrap() >= 10, "{}", errs[0]);
    let names: Vec<&str> =
        report["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["p", "q"]);

    let out = with_stdin(&["check", "-"], &input);
    let text = stdout(&out);
    assert!(text.contains("error: <stdin>:"), "{text}");
    assert!(text.contains("(document 2)"), "{text}");
}

#[test]
fn wrong_field_types_and_unknown_shapes_are_errors_not_passes() {
    let input = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: 7\n---\n- just\n- a list\n---\nkind: Pod\nmetadata: {name: x}\n";
    let (code, report) = {
        let out = with_stdin(&["check", "--format", "json", "-"], input);
        (out.status.code(), serde_json::from_slice::<Value>(&out.stdout).unwrap())
    };
    assert_eq!(code, Some(2), "{report}");
    let messages: Vec<String> = errors(&report).iter().map(|e| e.to_string()).collect();
    assert!(
        messages.iter().any(|m| m.contains("\"policy\"") && m.contains("field `spec.containers`")),
        "a policy names the mistyped field: {messages:?}"
    );
    assert!(messages.iter().any(|m| m.contains("\"document\":2")), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("\"document\":3") && m.contains("apiVersion")), "{messages:?}");
}

/// `kubectl apply` reads `yes`, `on` and `y` as true (go-yaml v2, YAML 1.1), so
/// the API server gets a privileged, host-network Pod: so must the rules.
#[test]
fn yaml_1_1_booleans_are_read_as_kubectl_reads_them() {
    let input = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns}\nspec:\n  hostNetwork: on\n  containers:\n  - name: c\n    image: nginx\n    securityContext:\n      privileged: yes\n      allowPrivilegeEscalation: y\n";
    let out = with_stdin(&["check", "--format", "json", "--profile", "restricted", "-"], input);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "findings, not errors: {report:#}");
    assert!(errors(&report).is_empty(), "{report:#}");
    let rules: Vec<&str> = report["findings"].as_array().unwrap().iter().filter_map(|f| f["rule"].as_str()).collect();
    for rule in ["pss-privileged", "pss-host-namespaces", "pss-allow-privilege-escalation"] {
        assert!(rules.contains(&rule), "{rule} missing from {rules:?}");
    }
    // Quoted, the same words are strings: a bool field then cannot be read, which is an error, never a pass.
    let quoted = input.replace("privileged: yes", "privileged: \"yes\"");
    let out = with_stdin(&["check", "--format", "json", "--profile", "restricted", "-"], &quoted);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_endless_input_is_cut_at_its_limit() {
    let out = run_within(palisade().args(["check", "/dev/zero"]), std::time::Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains("/dev/zero: over the limit of 256 MiB for one input"), "{said}");
}

#[test]
fn empty_input_is_an_error() {
    let out = with_stdin(&["check", "-"], "# nothing rendered\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("no Kubernetes objects"), "{}", stdout(&out));
}

#[test]
fn missing_files_are_errors() {
    let out = run(palisade().args(["check", "no/such/file.yaml", &example("hardened-deployment.yaml")]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("no/such/file.yaml"), "{}", stdout(&out));
}

#[test]
fn fail_on_and_exit_zero_set_the_exit_code() {
    let insecure = example("insecure-deployment.yaml");
    // The worst finding of the example is critical (privileged).
    let out = run(palisade().args(["check", "--fail-on", "critical", &insecure]));
    assert_eq!(out.status.code(), Some(1));
    let out = run(palisade()
        .args(["check", "--profile", "restricted", "--config"])
        .arg(write_config("disable: [pss-privileged]\n").path())
        .args(["--fail-on", "critical", &insecure]));
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let out = run(palisade().args(["check", "--exit-zero", &insecure]));
    assert_eq!(out.status.code(), Some(0));
    // --exit-zero never hides errors.
    let out = run(palisade().args(["check", "--exit-zero", "no/such/file.yaml"]));
    assert_eq!(out.status.code(), Some(2));
}

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn profiles_choose_the_rules() {
    let insecure = example("insecure-deployment.yaml");
    let (_, baseline) = json_report(palisade().args(["check", "--format", "json", "--profile", "baseline", &insecure]));
    assert_eq!(baseline["summary"]["policies"], 12);
    assert!(!rules_by_file(&baseline).values().any(|r| r.contains("pss-run-as-non-root")));
    let (_, restricted) =
        json_report(palisade().args(["check", "--format", "json", "--profile", "restricted", &insecure]));
    assert_eq!(restricted["summary"]["policies"], 18);
    assert!(rules_by_file(&restricted).values().any(|r| r.contains("pss-run-as-non-root")));
    let out = run(palisade().args(["check", "--profile", "paranoid", &insecure]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("paranoid"), "{}", stderr(&out));
}

#[test]
fn pss_version_changes_verdicts() {
    // Before v1.8 allowPrivilegeEscalation was not checked.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n  containers:\n  - name: c\n    image: i\n    securityContext: {capabilities: {drop: [ALL]}}\n";
    let old = with_stdin(&["check", "--format", "json", "--profile", "restricted", "--pss-version", "v1.7", "-"], pod);
    assert_eq!(old.status.code(), Some(0), "{}", stdout(&old));
    let new = with_stdin(&["check", "--format", "json", "--profile", "restricted", "--pss-version", "v1.8", "-"], pod);
    assert_eq!(new.status.code(), Some(1));
    assert!(stdout(&new).contains("pss-allow-privilege-escalation"));
    let bad = with_stdin(&["check", "--pss-version", "1.8x", "-"], pod);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn configuration_overrides_severity_and_disables_rules() {
    let config = write_config(
        "profile: restricted\nfailOn: high\nseverity:\n  pss-privileged: low\ndisable: [pss-host-ports]\n",
    );
    let (_, report) = json_report(
        palisade()
            .args(["check", "--format", "json", "--config"])
            .arg(config.path())
            .arg(example("insecure-deployment.yaml")),
    );
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.iter().all(|f| f["rule"] != "pss-host-ports"));
    let privileged = findings.iter().find(|f| f["rule"] == "pss-privileged").unwrap();
    assert_eq!(privileged["severity"], "low");
    assert_eq!(report["summary"]["policies"], 17);
}

#[test]
fn configuration_errors_name_the_key() {
    let insecure = example("insecure-deployment.yaml");
    for (text, expected) in [
        ("profil: restricted\n", "profil"),
        ("disable: [pss-no-such-rule]\n", "pss-no-such-rule"),
        ("settings:\n  pss-sysctls: {level: extreme}\n", "settings.pss-sysctls.level"),
        ("settings:\n  pss-sysctls: {colour: red}\n", "colour"),
        ("failOn: dreadful\n", "dreadful"),
    ] {
        let config = write_config(text);
        let out = run(palisade().args(["check", "--config"]).arg(config.path()).arg(&insecure));
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = stderr(&out);
        assert!(err.contains(expected), "{text:?} → {err}");
        assert!(err.contains(&config.path().display().to_string()), "names the file: {err}");
    }
}

/// A rule's answer about its settings, given without a host call, is kept
/// in the compile cache by the first start and read back by the next.
#[test]
fn a_rules_answer_about_its_settings_is_kept_in_the_cache_and_read_back() {
    let cache = tempfile::tempdir().unwrap();
    let component = root().join("target/components/image-registry.wasm");
    let start = || {
        let mut cmd = palisade();
        cmd.env("PALISADE_CACHE_DIR", cache.path()).args(["policies", "--no-builtin", "--policies"]).arg(&component);
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        stdout(&out)
    };
    let kept = || -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        for dir in std::fs::read_dir(cache.path()).unwrap().flatten() {
            for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
                if file.file_name().to_string_lossy().contains(".settings-") {
                    found.push(file.path());
                }
            }
        }
        found
    };
    let unconfigured = "(unconfigured: no `allowed` registries set)";
    assert!(start().contains(unconfigured));
    let files = kept();
    assert_eq!(files.len(), 1, "one answer, for the one configuration: {files:?}");
    // What the next start reads is that file.
    let mut answer: Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert!(answer["inactive"].as_str().is_some_and(|r| r.contains("no `allowed` registries")), "{answer}");
    answer["inactive"] = Value::from("as kept in the cache");
    std::fs::write(&files[0], answer.to_string()).unwrap();
    assert!(start().contains("(as kept in the cache)"));
    // A damaged file is not used: the rule is asked again, and its answer kept anew.
    std::fs::write(&files[0], "{").unwrap();
    assert!(start().contains(unconfigured));
    assert!(std::fs::read_to_string(&files[0]).unwrap().contains("no `allowed` registries"));
}

#[test]
fn policies_lists_the_rules_and_explain_documents_one() {
    let out = run(palisade().args(["policies"]));
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("pss-privileged") && text.contains("critical"), "{text}");
    assert!(text.ends_with("51 rules\n"), "{text}");
    assert!(text.contains("(unconfigured: no `allowed` registries set)"), "{text}");
    let config = write_config("settings:\n  image-registry: {allowed: [registry.example.com]}\n");
    let out = run(palisade().args(["policies", "--config"]).arg(config.path()));
    assert!(!stdout(&out).contains("unconfigured"), "{}", stdout(&out));
    let out = run(palisade().args(["policies", "--profile", "restricted"]));
    assert!(stdout(&out).ends_with("18 rules\n"));
    let out = run(palisade().args(["policies", "--profile", "baseline"]));
    assert!(stdout(&out).ends_with("12 rules\n"));

    let out = run(palisade().args(["explain", "pss-sysctls"]));
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for section in
        ["What it checks", "Why it matters", "How to fix", "Settings (JSON Schema)", "References", "check_sysctls.go"]
    {
        assert!(text.contains(section), "{section} missing:\n{text}");
    }
    let out = run(palisade().args(["explain", "pss-sysctl"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("pss-sysctls"), "suggests the loaded ids");
}

#[test]
fn every_rule_is_documented() {
    let out = run(palisade().args(["policies", "--format", "json"]));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    for p in list.as_array().unwrap() {
        let id = p["id"].as_str().unwrap();
        let out = run(palisade().args(["explain", "--format", "json", id]));
        let m: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(m["category"].as_str().is_some_and(|s| !s.is_empty()), "{id}: no category");
        for field in ["title", "description", "rationale", "remediation"] {
            assert!(m[field].as_str().is_some_and(|s| s.len() > 10), "{id}: {field} is thin: {m}");
        }
        assert!(!m["references"].as_array().unwrap().is_empty(), "{id} cites no source");
        assert!(!m["appliesTo"].as_array().unwrap().is_empty(), "{id}");
        assert_eq!(m["settingsSchema"]["type"], "object", "{id}");
    }
}

/// `palisade bench` names what produced its figures: the command line, the
/// machine, the rules that ran (inactive ones with their reason), each figure
/// with its aim, and with --per-rule one row per rule that was called.
/// Nothing here is timed: only the report's shape and counts are checked.
#[test]
fn bench_prints_its_command_machine_rules_and_each_rule() {
    let fixture = root().join("host/benches/fixtures/deployment-2k.json");
    let mut cmd = palisade();
    cmd.args(["bench", "--skip-cold", "--rounds", "2", "--threads", "1", "--per-rule"]).arg(&fixture);
    let out = run(&mut cmd);
    let text = succeeded(&cmd, &out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("$ ") && lines[0].contains(" bench --skip-cold --rounds 2 --threads 1 --per-rule "),
        "{text}"
    );
    assert!(lines[1].starts_with("machine: ") && lines[1].contains(" cores, "), "{text}");
    assert!(!text.contains("cold start"), "--skip-cold: {text}");
    let rules_line = lines.iter().find(|l| l.starts_with("rules: ")).unwrap_or_else(|| panic!("{text}"));
    let count = |after: &str| -> usize {
        let at = rules_line.find(after).unwrap_or_else(|| panic!("{after:?} in {rules_line}"));
        rules_line[..at]
            .rsplit([' ', ','])
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{rules_line}"))
    };
    let (total, active, inactive) = (count(" rules (profile hardened)"), count(" active"), count(" inactive"));
    assert_eq!(active + inactive, total, "{rules_line}");
    let named: Vec<&&str> = lines.iter().filter(|l| l.starts_with("  inactive: ")).collect();
    assert_eq!(named.len(), inactive, "{text}");
    assert!(text.contains("  inactive: image-registry: "), "unconfigured, so inactive: {text}");
    assert!(
        lines.iter().any(|l| l.starts_with("resources/s (best round)")
            && l.ends_with("(aim ≥ 15,000/s, whole default set on ../shared/corpus/real-world)")),
        "{text}"
    );
    // One Deployment: each rule that judges Deployments is called once a round.
    let evaluations: usize = lines
        .iter()
        .find_map(|l| l.strip_prefix("evaluations per round"))
        .and_then(|n| n.trim().replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    let table = text.split_once("per rule, per round").unwrap_or_else(|| panic!("{text}")).1;
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with("  ") && !l.starts_with("  no calls"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), evaluations, "{text}");
    assert!(rows.iter().all(|r| r.len() == 5 && r[1] == "1" && r[4].ends_with('%')), "{text}");
    let idle = table.lines().find_map(|l| l.strip_prefix("  no calls (")).unwrap_or_else(|| panic!("{text}"));
    let idle: usize = idle.split(')').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(rows.len() + idle, total, "every rule is in the table or among those not called: {text}");
}
