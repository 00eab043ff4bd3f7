//! The CI report formats, each checked against its schema or format:
//! SARIF 2.1.0 (the OASIS JSON Schema), JUnit XML (structure and counts),
//! OpenReports (the Report and ClusterReport CRD schemas).

mod common;

use common::*;
use serde_json::Value;

const MIXED: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        securityContext: {privileged: true}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {type: NodePort, selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: plain}
provisioner: ebs.csi.aws.com
---
apiVersion: v1
kind: Pod
metadata: {name: broken, namespace: shop}
spec: {containers: 3}
---
kind: [not, valid
";

/// Run `check` on MIXED with an exception for pss-privileged, in `format`.
fn render(format: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.yaml");
    std::fs::write(&file, MIXED).unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(&config, "exceptions:\n  - {rules: [pss-privileged], names: [web], reason: reviewed in SEC-1}\n")
        .unwrap();
    let out = run(palisade().args(["check", "--format", format, "--config"]).arg(&config).arg(&file));
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap())
}

fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).expect("a valid schema");
    validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path)).collect()
}

#[test]
fn sarif_is_valid_sarif_2_1_0() {
    let (code, text) = render("sarif");
    assert_eq!(code, 2, "the unreadable document and the mistyped pod are errors");
    let sarif: Value = serde_json::from_str(&text).unwrap();
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("tests/schemas/sarif-schema-2.1.0.json")).unwrap())
            .unwrap();
    let errors = schema_errors(&schema, &sarif);
    assert!(errors.is_empty(), "{errors:#?}");
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["level"] = "severe".into();
    assert!(!schema_errors(&schema, &broken).is_empty(), "the schema check can fail");

    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 51, "one rule entry per policy");
    for r in rules {
        assert!(r["help"]["text"].as_str().unwrap().contains("Fix:"), "{r}");
        assert!(r["helpUri"].as_str().unwrap().starts_with("https://"), "{r}");
    }
    let results = run["results"].as_array().unwrap();
    let privileged = results.iter().find(|r| r["ruleId"] == "pss-privileged").unwrap();
    assert_eq!(privileged["suppressions"][0]["justification"], "reviewed in SEC-1");
    let node_port = results.iter().find(|r| r["ruleId"] == "service-type").unwrap();
    let loc = &node_port["locations"][0]["physicalLocation"];
    assert!(loc["artifactLocation"]["uri"].as_str().unwrap().ends_with("mixed.yaml"));
    // The field's own line and column: `type` inside `spec: {type: NodePort, ...}`.
    assert_eq!(loc["region"]["startLine"], 18);
    assert_eq!(loc["region"]["startColumn"], 8);
    assert_eq!(rules[node_port["ruleIndex"].as_u64().unwrap() as usize]["id"], "service-type");
    assert_eq!(run["invocations"][0]["executionSuccessful"], false);
    assert!(!run["invocations"][0]["toolExecutionNotifications"].as_array().unwrap().is_empty());
}

#[test]
fn junit_has_a_test_case_per_resource_and_rule() {
    let (_, text) = render("junit");
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let cases: Vec<_> = root.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    let failures = cases.iter().filter(|c| c.children().any(|n| n.has_tag_name("failure"))).count();
    let errors = cases.iter().filter(|c| c.children().any(|n| n.has_tag_name("error"))).count();
    let skipped = cases.iter().filter(|c| c.children().any(|n| n.has_tag_name("skipped"))).count();
    assert_eq!(root.attribute("tests").unwrap().parse::<usize>().unwrap(), cases.len());
    assert_eq!(root.attribute("failures").unwrap().parse::<usize>().unwrap(), failures);
    assert_eq!(root.attribute("errors").unwrap().parse::<usize>().unwrap(), errors);
    assert_eq!(root.attribute("skipped").unwrap().parse::<usize>().unwrap(), skipped);
    for c in &cases {
        assert!(c.attribute("name").is_some() && c.attribute("classname").is_some());
    }
    let case =
        |name: &str| cases.iter().find(|c| c.attribute("name") == Some(name)).unwrap_or_else(|| panic!("{name}"));
    assert!(case("service-type: Service shop/web").children().any(|n| n.has_tag_name("failure")));
    assert!(case("pss-privileged: Deployment shop/web").children().any(|n| n.has_tag_name("skipped")));
    assert!(case("pss-host-ports: Deployment shop/web").children().all(|n| !n.is_element()), "a pass");
    // The mistyped pod: every rule errors; the unreadable document is a case of its own.
    assert!(case("pss-privileged: Pod shop/broken").children().any(|n| n.has_tag_name("error")));
    assert!(cases.iter().any(|c| c.attribute("name").unwrap().starts_with("read document 5")));
}

#[test]
fn openreports_validate_against_their_crds() {
    let (_, text) = render("report");
    let docs = palisade::documents::read_documents(&text, &palisade::documents::Limits::default());
    assert_eq!(docs.len(), 2, "a Report for shop, a ClusterReport for the StorageClass:\n{text}");
    let crd_schema = |file: &str| -> Value {
        let text = std::fs::read_to_string(corpus().join("crds/openreports").join(file)).unwrap();
        let crd = palisade::documents::read_documents(&text, &palisade::documents::Limits::default())
            .remove(0)
            .content
            .unwrap()
            .value;
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    };
    let report_schema = crd_schema("openreports.io_reports.yaml");
    let cluster_schema = crd_schema("openreports.io_clusterreports.yaml");
    for doc in docs {
        let v = doc.content.unwrap().value;
        assert_eq!(v["apiVersion"], "openreports.io/v1alpha1");
        let schema = if v["kind"] == "Report" { &report_schema } else { &cluster_schema };
        let errors = schema_errors(schema, &v);
        assert!(errors.is_empty(), "{errors:#?}\n{v}");
        let mut broken = v.clone();
        broken["results"][0]["result"] = "maybe".into();
        assert!(!schema_errors(schema, &broken).is_empty(), "the schema check can fail");
        let results = v["results"].as_array().unwrap();
        let count = |r: &str| results.iter().filter(|x| x["result"] == r).count() as u64;
        for key in ["pass", "fail", "error", "skip"] {
            assert_eq!(v["summary"][key].as_u64().unwrap(), count(key), "{key}");
        }
        if v["kind"] == "Report" {
            assert_eq!(v["metadata"]["namespace"], "shop");
            assert!(count("pass") > 0 && count("fail") > 0 && count("skip") == 1 && count("error") > 0);
            let skip = results.iter().find(|x| x["result"] == "skip").unwrap();
            assert_eq!(skip["properties"]["exempted"], "reviewed in SEC-1");
        } else {
            assert_eq!(v["kind"], "ClusterReport");
            assert!(results.iter().any(|x| x["policy"] == "storage-encryption" && x["result"] == "fail"));
        }
    }
}
