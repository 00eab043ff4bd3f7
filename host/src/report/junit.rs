//! JUnit XML, as CI systems (Jenkins, GitLab, GitHub test reporters) read it:
//! one `<testsuite>` per file, one `<testcase>` per object and rule, failing
//! with the rule's findings, `<skipped>` when every finding is exempted,
//! `<error>` when the rule could not evaluate the object. Input errors are
//! test cases of their own, in error. Element and attribute names follow the
//! schema Jenkins and most consumers accept (`junit-10.xsd`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::check::Report;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[derive(Default)]
struct Case {
    name: String,
    classname: String,
    failures: Vec<String>,
    exempted: Vec<String>,
    errors: Vec<String>,
}

pub fn junit(report: &Report) -> String {
    // file → cases, in report order.
    let mut suites: BTreeMap<String, Vec<Case>> = BTreeMap::new();
    let mut index: BTreeMap<(String, usize, String, String), (String, usize)> = BTreeMap::new();
    for r in &report.resources {
        let label = r.resource.label();
        for rule in &r.rules {
            let cases = suites.entry(r.source.file.clone()).or_default();
            index.insert(
                (r.source.file.clone(), r.source.line, label.clone(), rule.clone()),
                (r.source.file.clone(), cases.len()),
            );
            cases.push(Case {
                name: format!("{rule}: {label}"),
                classname: format!("{}.{}", r.source.file, label.replace(['/', ' '], ".")),
                ..Case::default()
            });
        }
    }
    fn case<'a>(
        suites: &'a mut BTreeMap<String, Vec<Case>>,
        index: &BTreeMap<(String, usize, String, String), (String, usize)>,
        key: (String, usize, String, String),
    ) -> Option<&'a mut Case> {
        let (f, i) = index.get(&key)?;
        suites.get_mut(f)?.get_mut(*i)
    }
    for f in &report.findings {
        let text = format!("[{}] {} at {} ({}:{})", f.severity, f.message, f.path, f.source.file, f.source.line);
        // Cases are the resources': a finding's own line is its field's.
        let line = report.resources.get(f.resource_index).map_or(f.source.line, |r| r.source.line);
        if let Some(c) = case(&mut suites, &index, (f.source.file.clone(), line, f.resource.label(), f.rule.clone())) {
            match &f.exemption {
                None => c.failures.push(text),
                Some(x) => c.exempted.push(format!("{text}; exempted: {}", x.reason)),
            }
        }
    }
    let mut input_errors = Vec::new();
    for e in &report.errors {
        match (&e.rule, &e.resource) {
            (Some(rule), Some(r)) => {
                if let Some(c) =
                    case(&mut suites, &index, (e.source.file.clone(), e.source.line, r.label(), rule.clone()))
                {
                    c.errors.push(e.message.clone());
                }
            }
            _ => input_errors.push(e),
        }
    }
    for e in input_errors {
        suites.entry(e.source.file.clone()).or_default().push(Case {
            name: format!("read document {} (line {})", e.source.document, e.source.line),
            classname: e.source.file.clone(),
            errors: vec![e.message.clone()],
            ..Case::default()
        });
    }

    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let all: Vec<&Case> = suites.values().flatten().collect();
    let count = |f: &dyn Fn(&Case) -> bool| all.iter().filter(|c| f(c)).count();
    let _ = writeln!(
        out,
        "<testsuites name=\"palisade\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
        all.len(),
        count(&|c| c.errors.is_empty() && !c.failures.is_empty()),
        count(&|c| !c.errors.is_empty()),
        count(&|c| c.errors.is_empty() && c.failures.is_empty() && !c.exempted.is_empty()),
    );
    for (file, cases) in &suites {
        let n = |f: &dyn Fn(&Case) -> bool| cases.iter().filter(|c| f(c)).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            escape(file),
            cases.len(),
            n(&|c| c.errors.is_empty() && !c.failures.is_empty()),
            n(&|c| !c.errors.is_empty()),
            n(&|c| c.errors.is_empty() && c.failures.is_empty() && !c.exempted.is_empty()),
        );
        for c in cases {
            let _ = write!(out, "    <testcase name=\"{}\" classname=\"{}\"", escape(&c.name), escape(&c.classname));
            if !c.errors.is_empty() {
                let _ = writeln!(
                    out,
                    ">\n      <error message=\"{}\" type=\"error\">{}</error>\n    </testcase>",
                    escape(&c.errors[0]),
                    escape(&c.errors.join("\n"))
                );
            } else if !c.failures.is_empty() {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\" type=\"violation\">{}</failure>\n    </testcase>",
                    escape(&c.failures[0]),
                    escape(&c.failures.join("\n"))
                );
            } else if !c.exempted.is_empty() {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    escape(&c.exempted.join("\n"))
                );
            } else {
                out.push_str("/>\n");
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// JUnit XML of `palisade test`: one `<testsuite>` per suite, one
/// `<testcase>` per expectation and object, failing when they differ, in
/// error when the rule failed on the object; a file whose suites could not
/// run is a `<testsuite>` of its own with a test case in error per problem.
pub fn test_junit(run: &crate::suite::TestRun) -> String {
    use crate::suite::Actual;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let errors_in =
        |o: &crate::suite::Outcome| o.checks.iter().filter(|c| matches!(c.actual, Actual::Error(_))).count();
    let errors: usize = run.outcomes.iter().map(errors_in).sum::<usize>() + run.broken.len();
    let failures: usize = run.outcomes.iter().map(|o| o.differences() - errors_in(o)).sum();
    let _ = writeln!(
        out,
        "<testsuites name=\"palisade test\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\">",
        run.checks() + run.broken.len(),
    );
    for o in &run.outcomes {
        let errors = errors_in(o);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" file=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{errors}\" skipped=\"0\">",
            escape(&o.name),
            escape(&o.file),
            o.checks.len(),
            o.differences() - errors,
        );
        for c in &o.checks {
            let expected = c.expected.as_ref().map_or_else(|| "no error".to_string(), ToString::to_string);
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\"",
                escape(&format!("{}: {} expects {expected}", c.rule, c.resource.label())),
                escape(&format!("{}:{}", o.file, c.line)),
            );
            if c.agrees() {
                out.push_str("/>\n");
                continue;
            }
            let details = super::suite::difference_lines(c).join("\n");
            let (element, kind) =
                if matches!(c.actual, Actual::Error(_)) { ("error", "error") } else { ("failure", "difference") };
            let _ = writeln!(
                out,
                ">\n      <{element} message=\"{}\" type=\"{kind}\">{}</{element}>\n    </testcase>",
                escape(&format!("expected {expected}, got {}", c.actual_text())),
                escape(&details),
            );
        }
        out.push_str("  </testsuite>\n");
    }
    let mut broken: BTreeMap<&str, Vec<&crate::suite::SuiteError>> = BTreeMap::new();
    for e in &run.broken {
        broken.entry(e.file.as_str()).or_default().push(e);
    }
    for (file, errors) in broken {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" file=\"{}\" tests=\"{}\" failures=\"0\" errors=\"{}\" skipped=\"0\">",
            escape(file),
            escape(file),
            errors.len(),
            errors.len(),
        );
        for e in errors {
            let _ = writeln!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\">\n      <error message=\"{}\" type=\"broken suite\"/>\n    </testcase>",
                escape(&format!("read the suite (line {})", e.line)),
                escape(&format!("{}:{}", e.file, e.line)),
                escape(&e.to_string()),
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
