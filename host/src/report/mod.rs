//! Reports: text for people, JSON for machines, and the CI formats
//! ([`sarif`], [`junit`], [`openreports`]).
//!
//! JSON schema (`palisade.report/v1`): `{"schema": "palisade.report/v1",
//! "findings": [{rule, severity, message, path, resource: {apiVersion, kind,
//! namespace?, name}, source: {file, document, line}}], "errors": [{kind:
//! "input"|"policy", rule?, resource?, source, message}], "summary": {...}}`.
//! Documented in full in `docs/report-json.md`.

use std::fmt::Write as _;

mod junit;
mod openreports;
mod sarif;
mod suite;

pub use junit::junit;
pub use junit::test_junit;
pub use openreports::openreports;
pub use sarif::sarif;
pub use suite::test_text;

use crate::check::Report;
use crate::severity::Severity;

/// The JSON report.
pub fn json(report: &Report) -> String {
    let mut value = serde_json::to_value(report).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("schema".into(), "palisade.report/v1".into());
    }
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

struct Paint(bool);

impl Paint {
    fn severity(&self, s: Severity) -> String {
        if !self.0 {
            return s.as_str().to_string();
        }
        let code = match s {
            Severity::Critical => "1;35",
            Severity::High => "1;31",
            Severity::Medium => "33",
            Severity::Low => "36",
            Severity::Info => "2",
        };
        format!("\x1b[{code}m{s}\x1b[0m")
    }

    fn bold(&self, text: &str) -> String {
        if self.0 { format!("\x1b[1m{text}\x1b[0m") } else { text.to_string() }
    }

    fn dim(&self, text: &str) -> String {
        if self.0 { format!("\x1b[2m{text}\x1b[0m") } else { text.to_string() }
    }
}

/// The text report, grouped by resource, then errors, then a summary.
pub fn text(report: &Report, colour: bool) -> String {
    let paint = Paint(colour);
    let mut out = String::new();
    let mut current: Option<(&str, usize, &crate::findings::ResourceRef)> = None;
    for f in &report.findings {
        // One heading a resource, at its own line (and its Helm template);
        // each finding then names the line of its field.
        let line = report.resources.get(f.resource_index).map_or(f.source.line, |r| r.source.line);
        let key = (f.source.file.as_str(), line, &f.resource);
        if current != Some(key) {
            if current.is_some() {
                out.push('\n');
            }
            let template = f.source.template.as_ref().map(|t| format!("  ({t})")).unwrap_or_default();
            let _ = writeln!(
                out,
                "{}  {}{}",
                paint.bold(&format!("{}:{line}", f.source.file)),
                f.resource.label(),
                paint.dim(&template)
            );
            current = Some(key);
        }
        match &f.exemption {
            None => {
                let _ = writeln!(out, "  {:>8}  {}  {}", paint.severity(f.severity), f.rule, f.message);
            }
            Some(_) => {
                let _ = writeln!(out, "  {:>8}  {}  {}", paint.dim("exempted"), f.rule, paint.dim(&f.message));
            }
        }
        if !f.path.is_empty() {
            let _ = writeln!(out, "            {}", paint.dim(&format!("at {} (line {})", f.path, f.source.line)));
        }
        if let Some(x) = &f.exemption {
            let until = x.expires.as_ref().map(|d| format!(", until {d}")).unwrap_or_default();
            let _ =
                writeln!(out, "            {}", paint.dim(&format!("exception {}: {}{until}", x.exception, x.reason)));
        }
    }
    if !report.errors.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        for e in &report.errors {
            let mut place = e.source.file.clone();
            if e.source.line > 0 {
                let _ = write!(place, ":{}", e.source.line);
            }
            if e.source.document > 0 {
                let _ = write!(place, " (document {})", e.source.document);
            }
            let what = match (&e.rule, &e.resource) {
                (Some(rule), Some(r)) => format!("{rule} failed on {}: ", r.label()),
                _ => String::new(),
            };
            let _ = writeln!(out, "{}: {place}: {what}{}", paint.bold("error"), e.message);
        }
    }
    for x in &report.exceptions {
        match x.status {
            "expired" => {
                let _ = writeln!(
                    out,
                    "{}: exception {} ({}) expired on {}; the {} finding{} it covered count again",
                    paint.bold("warning"),
                    x.index,
                    x.reason,
                    x.expires.as_deref().unwrap_or("?"),
                    x.matched,
                    if x.matched == 1 { "" } else { "s" }
                );
            }
            "unused" => {
                let _ = writeln!(out, "note: exception {} ({}) matched no finding", x.index, x.reason);
            }
            _ => {}
        }
    }
    let s = &report.summary;
    if !out.is_empty() {
        out.push('\n');
    }
    let mut rules: Vec<_> = s.findings_by_rule.iter().collect();
    rules.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if !rules.is_empty() {
        let _ = writeln!(out, "Findings by rule:");
        for (rule, n) in &rules {
            let _ = writeln!(out, "  {n:>6}  {rule}");
        }
        out.push('\n');
    }
    let by_severity: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|sev| s.findings_by_severity.get(sev).map(|n| format!("{n} {sev}")))
        .collect();
    let _ = writeln!(
        out,
        "{} finding{}{}{} in {} of {} resource{} ({} file{}, {} rule{}, {} evaluations); {} error{}",
        s.findings,
        if s.findings == 1 { "" } else { "s" },
        if by_severity.is_empty() { String::new() } else { format!(" ({})", by_severity.join(", ")) },
        if s.exempted == 0 { String::new() } else { format!(" and {} exempted", s.exempted) },
        s.resources_failing,
        s.resources,
        if s.resources == 1 { "" } else { "s" },
        s.files,
        if s.files == 1 { "" } else { "s" },
        s.policies,
        if s.policies == 1 { "" } else { "s" },
        s.evaluations,
        s.errors,
        if s.errors == 1 { "" } else { "s" },
    );
    if !s.kinds_not_evaluated.is_empty() {
        let kinds: Vec<String> = s.kinds_not_evaluated.iter().map(|(k, n)| format!("{k} ({n})")).collect();
        let _ = writeln!(out, "No loaded rule evaluates: {}", kinds.join(", "));
    }
    for (rule, reason) in &s.inactive {
        let _ = writeln!(out, "Inactive: {rule}: {reason}");
    }
    for (file, reason) in &s.skipped {
        let _ = writeln!(out, "Skipped: {file}: {reason}");
    }
    if !rules.is_empty() {
        let ids: Vec<&str> = rules.iter().map(|(rule, _)| rule.as_str()).collect();
        let _ = writeln!(out, "Why these matter and how to fix them: palisade explain {}", ids.join(" "));
    }
    out
}
