//! Findings → exempted findings: the exceptions of the configuration file.
//!
//! An exception names rules (or `*`), narrows the objects by kind, namespace,
//! name (`*` and `?` globs) and label selector, optionally the containers or
//! images a finding concerns, and must give a reason. After its `expires` date
//! it no longer applies and the report says so. Exempted findings stay in
//! every report, marked with the reason; they do not fail the run.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use palisade_sdk::selector::LabelSelector;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::findings::Finding;
use crate::resources::Resource;

/// One entry of `exceptions:` in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Exception {
    /// Rule ids, or `*` for every rule.
    pub rules: Vec<String>,
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub names: Vec<String>,
    /// Labels of the object (`metadata.labels`).
    pub selector: Option<LabelSelector>,
    #[serde(default)]
    pub containers: Vec<String>,
    #[serde(default)]
    pub images: Vec<String>,
    pub reason: String,
    /// `YYYY-MM-DD`: the last day the exception applies.
    pub expires: Option<String>,
}

/// How an exception fared in a run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionStatus {
    /// 0-based position in `exceptions:`.
    pub index: usize,
    pub rules: Vec<String>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `active`, `expired` (no longer applied) or `unused` (matched nothing).
    pub status: &'static str,
    /// Findings it exempted (or, expired, would have exempted).
    pub matched: usize,
}

/// Why a finding does not count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exemption {
    pub exception: usize,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// A calendar date, compared as (year, month, day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub i64, pub u32, pub u32);

impl Date {
    pub fn parse(text: &str) -> Option<Date> {
        let mut parts = text.split('-');
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        let date = Date(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
        let leap = (date.0 % 4 == 0 && date.0 % 100 != 0) || date.0 % 400 == 0;
        let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        ((1..=12).contains(&date.1) && date.2 >= 1 && date.2 <= days[date.1 as usize - 1]).then_some(date)
    }

    /// Today (UTC), from the system clock.
    pub fn today() -> Date {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Date::from_days((secs / 86_400) as i64)
    }

    /// The civil date `days` after 1970-01-01 (Howard Hinnant's algorithm).
    fn from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        Date(yoe + era * 400 + i64::from(m <= 2), m, d)
    }
}

/// `*` matches any run of characters, `?` any one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn any_glob(patterns: &[String], text: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| glob(p, text))
}

/// Check the exceptions of a configuration: every error names its entry and key.
/// `hint` is what to add to an unknown rule id ("did you mean").
pub fn validate(
    exceptions: &[Exception],
    known_rule: impl Fn(&str) -> bool,
    hint: impl Fn(&str) -> String,
) -> Vec<String> {
    let mut errors = Vec::new();
    for (i, e) in exceptions.iter().enumerate() {
        let at = format!("exceptions[{i}]");
        if e.reason.trim().is_empty() {
            errors.push(format!("{at}.reason: an exception must give its reason"));
        }
        if e.rules.is_empty() {
            errors.push(format!("{at}.rules: name the rules it exempts, or \"*\""));
        }
        for r in &e.rules {
            if r != "*" && !known_rule(r) {
                errors.push(format!("{at}.rules: no rule with the id {r:?}{}", hint(r)));
            }
        }
        if let Some(expires) = &e.expires
            && Date::parse(expires).is_none()
        {
            errors.push(format!("{at}.expires: {expires:?} is not a date (YYYY-MM-DD)"));
        }
        if let Some(selector) = &e.selector
            && let Err(message) = selector.matches(&BTreeMap::new())
        {
            errors.push(format!("{at}.selector: {message}"));
        }
    }
    errors
}

/// The container a finding's path points into, if any: `(name, image)`.
fn container_of(object: &Value, path: &str) -> Option<(String, String)> {
    let segments: Vec<&str> = path.split('/').collect();
    let at = segments.windows(2).position(|w| {
        matches!(w[0], "containers" | "initContainers" | "ephemeralContainers") && w[1].parse::<usize>().is_ok()
    })?;
    let pointer = segments[..at + 2].join("/");
    let container = object.pointer(&pointer)?;
    let field = |k: &str| container.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    Some((field("name"), field("image")))
}

impl Exception {
    /// Whether the exception covers `finding` of `resource`. `object` is the
    /// resource's parsed JSON, parsed only when a selector, container or
    /// image pattern needs it.
    fn matches(&self, finding: &Finding, resource: &Resource, object: &OnceCell<Value>) -> bool {
        let object = || object.get_or_init(|| serde_json::from_str(&resource.json).unwrap_or(Value::Null));
        let r = &finding.resource;
        if !self.rules.iter().any(|x| x == "*" || *x == finding.rule)
            || !any_glob(&self.kinds, &r.kind)
            || !any_glob(&self.namespaces, resource.namespace.as_deref().unwrap_or(""))
            || !any_glob(&self.names, &r.name)
        {
            return false;
        }
        if let Some(selector) = &self.selector {
            let labels: BTreeMap<String, String> = object()
                .pointer("/metadata/labels")
                .and_then(|l| serde_json::from_value(l.clone()).ok())
                .unwrap_or_default();
            if !selector.matches(&labels).unwrap_or(false) {
                return false;
            }
        }
        if !self.containers.is_empty() || !self.images.is_empty() {
            let Some((name, image)) = container_of(object(), &finding.path) else { return false };
            if !any_glob(&self.containers, &name) || !any_glob(&self.images, &image) {
                return false;
            }
        }
        true
    }
}

/// Mark the findings that an exception covers, and say how each exception fared.
pub fn apply(
    findings: &mut [Finding],
    resources: &[Resource],
    exceptions: &[Exception],
    today: Date,
) -> Vec<ExceptionStatus> {
    let mut matched = vec![0usize; exceptions.len()];
    // The object of the findings' current resource, parsed once if an exception asks.
    let mut parsed: (usize, OnceCell<Value>) = (usize::MAX, OnceCell::new());
    for f in findings.iter_mut() {
        let Some(resource) = resources.get(f.resource_index) else { continue };
        if parsed.0 != f.resource_index {
            parsed = (f.resource_index, OnceCell::new());
        }
        let object = &parsed.1;
        for (i, e) in exceptions.iter().enumerate() {
            if e.matches(f, resource, object) {
                matched[i] += 1;
                let expired = e.expires.as_deref().and_then(Date::parse).is_some_and(|d| d < today);
                if !expired {
                    f.exemption =
                        Some(Exemption { exception: i, reason: e.reason.clone(), expires: e.expires.clone() });
                    break;
                }
            }
        }
    }
    exceptions
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let expired = e.expires.as_deref().and_then(Date::parse).is_some_and(|d| d < today);
            ExceptionStatus {
                index: i,
                rules: e.rules.clone(),
                reason: e.reason.clone(),
                expires: e.expires.clone(),
                status: if expired {
                    "expired"
                } else if matched[i] == 0 {
                    "unused"
                } else {
                    "active"
                },
                matched: matched[i],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("team-*", "team-a"));
        assert!(!glob("team-*", "teams"));
        assert!(glob("a?c*", "abcdef"));
        assert!(glob("*-proxy", "istio-proxy"));
        assert!(!glob("istio", "istio-proxy"));
    }

    #[test]
    fn dates() {
        assert_eq!(Date::parse("2026-02-28"), Some(Date(2026, 2, 28)));
        assert_eq!(Date::parse("2024-02-29"), Some(Date(2024, 2, 29)));
        assert_eq!(Date::parse("2026-02-29"), None);
        assert_eq!(Date::parse("2026-13-01"), None);
        assert_eq!(Date::parse("26-01-01"), None);
        assert_eq!(Date::from_days(0), Date(1970, 1, 1));
        assert_eq!(Date::from_days(20_415), Date(2025, 11, 23));
        assert!(Date(2026, 1, 31) < Date(2026, 2, 1));
    }

    #[test]
    fn container_paths() {
        let object = serde_json::json!({"spec":{"template":{"spec":{"containers":[{"name":"app","image":"a:1"},{"name":"istio-proxy","image":"docker.io/istio/proxyv2:1.2"}]}}}});
        assert_eq!(
            container_of(&object, "/spec/template/spec/containers/1/securityContext/runAsUser"),
            Some(("istio-proxy".into(), "docker.io/istio/proxyv2:1.2".into()))
        );
        assert_eq!(container_of(&object, "/spec/template/spec/hostNetwork"), None);
    }
}
