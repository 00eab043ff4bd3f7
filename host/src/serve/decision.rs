//! Rule results → an admission decision, shared by the three endpoints.

use serde::Serialize;

use super::engine::{RuleResult, Verdict};
use crate::config::{FailurePolicy, Mode};

/// One violation, for `status.details.causes` and the other endpoints' lists.
#[derive(Debug, Clone, Serialize)]
pub struct Cause {
    pub rule: String,
    /// Kubernetes' dotted field form: `spec.containers[0].image`.
    pub field: String,
    /// The JSON pointer the rule gave.
    pub path: String,
    pub message: String,
    /// What the finding does: the rule's mode, `warn` for a rule in enforce
    /// mode whose severity is below `admission.enforceFrom`.
    pub mode: Mode,
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub allowed: bool,
    /// 200 allowed, 403 denied by a rule, 500 denied because a rule failed (fail closed).
    pub code: u16,
    pub message: String,
    /// Violations of rules in enforce mode.
    pub causes: Vec<Cause>,
    /// Every violation, whatever its rule's mode.
    pub violations: Vec<Cause>,
    pub warnings: Vec<String>,
    /// Rules whose enforce-mode violations (or failures) denied the request.
    pub denied_by: Vec<String>,
    /// Rules that reported a violation, whatever its mode.
    pub fired: Vec<String>,
    pub results: Vec<RuleResult>,
}

/// A JSON pointer in the dotted form Kubernetes uses for field paths.
pub fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{token}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token);
        }
    }
    out
}

/// A warning line, kept under 120 characters where the text allows.
fn warning(rule: &str, message: &str) -> String {
    let text = format!("{rule}: {message}");
    if text.chars().count() <= 119 {
        return text;
    }
    let mut cut: String = text.chars().take(116).collect();
    cut.push_str("...");
    cut
}

/// Causes listed in a denial message, at most [`LISTED`] of them.
const LISTED: usize = 10;

/// One line per cause, as Kubernetes words a field error and Gatekeeper
/// names the rule: `[rule] field: message` (rules' messages hold `:` and `;`
/// of their own, so neither can separate causes), then how many more there are.
fn listed(causes: &[Cause]) -> String {
    let mut lines: Vec<String> = causes
        .iter()
        .take(LISTED)
        .map(|c| match c.field.as_str() {
            "" => format!("[{}] {}", c.rule, c.message),
            field => format!("[{}] {field}: {}", c.rule, c.message),
        })
        .collect();
    if causes.len() > LISTED {
        lines.push(format!("and {} more in status.details.causes", causes.len() - LISTED));
    }
    lines.join("\n")
}

pub fn decide(results: Vec<RuleResult>, subject: &str) -> Decision {
    let mut causes = Vec::new();
    let mut violations = Vec::new();
    let mut warnings = Vec::new();
    let mut denied_by: Vec<String> = Vec::new();
    let mut fired: Vec<String> = Vec::new();
    let mut failures = Vec::new();
    for r in &results {
        match &r.verdict {
            Verdict::Violations(vs) => {
                if !fired.iter().any(|f| **f == *r.rule) {
                    fired.push(r.rule.to_string());
                }
                for v in vs {
                    let cause = Cause {
                        rule: r.rule.to_string(),
                        field: dotted(&v.path),
                        path: v.path.clone(),
                        message: v.message.clone(),
                        mode: r.mode,
                    };
                    match r.mode {
                        Mode::Enforce => causes.push(cause.clone()),
                        Mode::Warn => warnings.push(warning(&r.rule, &v.message)),
                        Mode::Audit => {}
                    }
                    violations.push(cause);
                }
                if r.mode == Mode::Enforce && !denied_by.iter().any(|d| **d == *r.rule) {
                    denied_by.push(r.rule.to_string());
                }
            }
            Verdict::Error(e) if r.failure_policy == FailurePolicy::Fail => {
                failures.push(format!("[{}] could not evaluate: {e}", r.rule));
                denied_by.push(r.rule.to_string());
            }
            Verdict::Error(e) => {
                warnings.push(warning(&r.rule, &format!("could not evaluate, allowed as failurePolicy is ignore: {e}")))
            }
            Verdict::Pass | Verdict::Skipped(_) => {}
        }
    }
    let (allowed, code, message) = if !failures.is_empty() {
        (
            false,
            500,
            format!("palisade denied {subject}, failing closed as failurePolicy is fail:\n{}", failures.join("\n")),
        )
    } else if !causes.is_empty() {
        (false, 403, format!("palisade denied {subject}:\n{}", listed(&causes)))
    } else {
        (true, 200, String::new())
    };
    Decision { allowed, code, message, causes, violations, warnings, denied_by, fired, results }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths() {
        assert_eq!(
            dotted("/spec/containers/0/securityContext/privileged"),
            "spec.containers[0].securityContext.privileged"
        );
        assert_eq!(dotted("/metadata/annotations/a~1b"), "metadata.annotations.a/b");
        assert_eq!(dotted(""), "");
    }

    #[test]
    fn a_denial_lists_each_cause_without_nesting() {
        let cause = |rule: &str, message: &str, path: &str| Cause {
            rule: rule.into(),
            field: dotted(path),
            path: path.into(),
            message: message.into(),
            mode: Mode::Enforce,
        };
        let causes = [
            cause("pss-privileged", "privileged (container \"app\")", "/spec/containers/0/securityContext/privileged"),
            cause("pss-host-namespaces", "hostNetwork is true", "/spec/hostNetwork"),
            cause("custom", "the object is wrong", ""),
        ];
        assert_eq!(
            listed(&causes),
            "[pss-privileged] spec.containers[0].securityContext.privileged: privileged (container \"app\")\n\
             [pss-host-namespaces] spec.hostNetwork: hostNetwork is true\n\
             [custom] the object is wrong"
        );
        let many: Vec<Cause> = (0..12).map(|i| cause("r", &format!("m{i}"), "/spec")).collect();
        let text = listed(&many);
        assert!(text.starts_with("[r] spec: m0\n[r] spec: m1\n"), "{text}");
        assert!(text.ends_with("[r] spec: m9\nand 2 more in status.details.causes"), "{text}");
    }

    #[test]
    fn warnings_are_short() {
        let long = "x".repeat(300);
        assert!(warning("rule", &long).chars().count() < 120);
        assert_eq!(warning("r", "short"), "r: short");
    }
}
