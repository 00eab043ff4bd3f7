//! The first hour of a new user, end to end through the real binary: the
//! README's numbers are what its commands print, compiling says so, a Helm
//! chart is recognised, and messages point at the fix (YAML columns, "did you
//! mean", `palisade explain`, one name for standard input).

mod common;

use common::*;
use serde_json::Value;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The number written just after `before` in `readme`, e.g. `gets 21`.
fn number_after(readme: &str, before: &str) -> usize {
    let at = readme.find(before).unwrap_or_else(|| panic!("the README no longer says {before:?}"));
    let digits: String = readme[at + before.len()..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no number after {before:?} in the README"))
}

fn findings_in(report: &Value, file: &str) -> usize {
    report["findings"].as_array().expect("findings").iter().filter(|f| f["source"]["file"] == file).count()
}

#[test]
fn the_readme_numbers_are_what_its_commands_print() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("read README.md");
    let examples = root().join("examples");
    let insecure = examples.join("insecure-deployment.yaml").display().to_string();
    let hardened = examples.join("hardened-deployment.yaml").display().to_string();

    // "`examples/insecure-deployment.yaml` gets 21 findings (25 when checked alone: …)"
    let (code, together) = json_report(palisade().args(["check", "--format", "json"]).arg(&examples));
    assert_eq!(code, 1);
    assert_eq!(
        findings_in(&together, &insecure),
        number_after(&readme, "insecure-deployment.yaml` gets "),
        "README: examples/"
    );
    assert_eq!(findings_in(&together, &hardened), 0, "README: the hardened example gets none");
    let (_, alone) = json_report(palisade().args(["check", "--format", "json", &insecure]));
    assert_eq!(findings_in(&alone, &insecure), number_after(&readme, "findings ("), "README: checked alone");
    // Every finding is on the one insecure Deployment.
    assert_eq!(together["summary"]["resourcesFailing"], 1, "{}", together["summary"]);

    // "`palisade policies` lists all 51 rules."
    let out = run(palisade().args(["policies", "--format", "json"]));
    let listed: Value = serde_json::from_slice(&out.stdout).expect("policies as JSON");
    assert_eq!(
        listed.as_array().expect("a list").len(),
        number_after(&readme, "`palisade policies` lists all "),
        "README: palisade policies"
    );
}

#[test]
fn compiling_components_says_so_once() {
    let cache = tempfile::tempdir().expect("temp dir");
    let component = root().join("target").join("components").join("image-tag.wasm");
    let check = || {
        run(palisade()
            .env("PALISADE_CACHE_DIR", cache.path())
            .args(["check", "--exit-zero", "--no-builtin", "--policies"])
            .arg(&component)
            .arg(root().join("examples")))
    };
    let first = text(&check().stderr);
    assert!(first.contains("palisade: compiling 1 policy component to native code (once; kept in"), "{first}");
    assert!(first.contains("palisade: compiled 1 policy component in"), "{first}");
    let second = text(&check().stderr);
    assert!(!second.contains("compil"), "the second run finds it in the cache: {second}");
}

#[test]
fn a_chart_directory_is_recognised_and_values_beside_it_are_skipped() {
    let chart = corpus().join("charts").join("cert-manager");
    let out = run(palisade().arg("check").arg(&chart));
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("a Helm chart (it has Chart.yaml)"), "{stdout}");
    assert!(stdout.contains(&format!("palisade check --helm {}", chart.display())), "{stdout}");
    assert_eq!(stdout.matches("error: ").count(), 1, "one error for the chart, not one per template: {stdout}");
    // A template named directly gets the same hint.
    let out = run(palisade().arg("check").arg(chart.join("templates").join("deployment.yaml")));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).contains("--helm"), "{}", text(&out.stdout));

    // A manifests folder with a chart and a values file beside it: the
    // manifests are checked, the chart is an error (it must be rendered), the
    // values file a note.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("values-prod.yaml"), "replicaCount: 2\nimage: {tag: v1}\n").expect("write");
    std::fs::copy(root().join("examples").join("hardened-deployment.yaml"), dir.path().join("app.yaml")).expect("copy");
    std::fs::create_dir(dir.path().join("chart")).expect("mkdir");
    std::fs::write(dir.path().join("chart").join("Chart.yaml"), "apiVersion: v2\nname: c\nversion: 1.0.0\n")
        .expect("write");
    let (code, report) = json_report(palisade().args(["check", "--format", "json"]).arg(dir.path()));
    assert_eq!(code, 2, "the unrendered chart is an error");
    let values = dir.path().join("values-prod.yaml").display().to_string();
    assert!(report["summary"]["skipped"][&values].as_str().is_some_and(|s| s.contains("Helm values")), "{report}");
    let errors = errors(&report);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["source"]["file"], dir.path().join("chart").display().to_string());
    assert!(report["summary"]["resources"].as_u64() > Some(0), "the manifests beside it are checked");

    // Without a chart beside it, a file with no object stays an error.
    let lone = tempfile::tempdir().expect("temp dir");
    std::fs::write(lone.path().join("values.yaml"), "replicaCount: 2\n").expect("write");
    let (code, report) = json_report(palisade().args(["check", "--format", "json"]).arg(lone.path()));
    assert_eq!(code, 2, "{report}");
    assert!(report["summary"].get("skipped").is_none(), "{report}");
}

#[test]
fn a_misindented_key_is_reported_at_its_column() {
    let out = with_stdin(
        &["check", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n     image: x\n",
    );
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("error: <stdin>:8 (document 1): invalid YAML"), "{stdout}");
    assert!(stdout.contains("(column 6)"), "the key `image` starts at column 6: {stdout}");
}

#[test]
fn mistyped_names_get_a_suggestion() {
    let out = run(palisade().args(["explain", "pss-privilegd"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no rule \"pss-privilegd\" (did you mean \"pss-privileged\"?)"),
        "{}",
        text(&out.stderr)
    );

    let out = run(palisade().args(["check", "--profile", "basline"]).arg(root().join("examples")));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(
            "unknown profile \"basline\" (expected one of baseline, restricted, hardened; did you mean \"baseline\"?)"
        ),
        "{}",
        text(&out.stderr)
    );

    let out = run(palisade().args(["policies", "--profile", "hardend"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("(expected one of baseline, restricted, hardened; did you mean \"hardened\"?)"),
        "{}",
        text(&out.stderr)
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "disable: [pss-privilegd]\n",
            "disable: no rule with the id \"pss-privilegd\" (did you mean \"pss-privileged\"?)",
        ),
        ("profle: baseline\n", "did you mean `profile`?"),
        ("settings:\n  image-registry:\n    alowed: [registry.example]\n", "did you mean `allowed`?"),
        (
            "settings:\n  image-regsitry: {}\n",
            "settings.image-regsitry: no rule with this id (did you mean \"image-registry\"?)",
        ),
        (
            "exceptions:\n- rules: [image-tagg]\n  reason: r\n",
            "exceptions[0].rules: no rule with the id \"image-tagg\" (did you mean \"image-tag\"?)",
        ),
    ];
    for (i, (config, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.yaml"));
        std::fs::write(&path, config).expect("write config");
        let out = run(palisade().arg("check").arg("--config").arg(&path).arg(root().join("examples")));
        assert_eq!(out.status.code(), Some(2), "{config}");
        assert!(text(&out.stderr).contains(expected), "{config}: {}", text(&out.stderr));
    }
}

#[test]
fn the_text_report_ends_with_the_explain_command_for_its_rules() {
    let out = run(palisade().arg("check").arg(root().join("examples").join("insecure-deployment.yaml")));
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().expect("a report");
    let rules = last.strip_prefix("Why these matter and how to fix them: palisade explain ").expect(&stdout);
    let (_, report) = json_report(
        palisade().args(["check", "--format", "json"]).arg(root().join("examples").join("insecure-deployment.yaml")),
    );
    let mut named: Vec<&str> = rules.split(' ').collect();
    named.sort();
    let mut reported: Vec<&str> =
        report["summary"]["findingsByRule"].as_object().expect("by rule").keys().map(String::as_str).collect();
    reported.sort();
    assert_eq!(named, reported);
    // The command works as printed.
    let out = run(palisade().arg("explain").args(rules.split(' ')));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).matches("\nHow to fix\n").count(), reported.len());
}

#[test]
fn standard_input_has_one_name_everywhere() {
    let pod =
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: c, image: x}\n---\na: [\n";
    for format in ["text", "json", "sarif", "junit"] {
        let out = with_stdin(&["check", "--format", format, "-"], pod);
        assert_eq!(out.status.code(), Some(2), "{format}");
        let all = text(&out.stdout) + &text(&out.stderr);
        assert!(all.contains("<stdin>") || all.contains("&lt;stdin&gt;"), "{format}: {all}");
        for other in ["\"-\"", "'-'", "(-)", "`-`", " -:", "stdin.yaml", "STDIN"] {
            assert!(!all.contains(other), "{format} names standard input {other}: {all}");
        }
    }
}
