//! Label selectors, with the semantics of `k8s.io/apimachinery/pkg/apis/meta/v1`
//! (`LabelSelectorAsSelector`) and `k8s.io/apimachinery/pkg/labels`.
//!
//! An empty selector (`{}`) selects everything; an absent one (`None` at the
//! call site) selects nothing. `matchLabels` and `matchExpressions` are ANDed.
//! Operators: `In` and `NotIn` need values; `Exists` and `DoesNotExist` must
//! have none. `NotIn` and `DoesNotExist` match objects without the key.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::pod::nullable;

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, deserialize_with = "nullable")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub match_expressions: Vec<Requirement>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct Requirement {
    #[serde(default, deserialize_with = "nullable")]
    pub key: String,
    #[serde(default, deserialize_with = "nullable")]
    pub operator: String,
    #[serde(default, deserialize_with = "nullable")]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// A selector from a plain map, as ReplicationController and Service use.
    pub fn from_map(labels: BTreeMap<String, String>) -> LabelSelector {
        LabelSelector { match_labels: labels, match_expressions: Vec::new() }
    }

    /// True for `{}`, which selects every object.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Whether the selector selects an object with `labels`. An invalid
    /// selector (unknown operator, values where none belong) is an error, as
    /// the API server would refuse it.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> Result<bool, String> {
        for r in &self.match_expressions {
            r.validate()?;
        }
        if self.match_labels.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            return Ok(false);
        }
        Ok(self.match_expressions.iter().all(|r| r.matches(labels)))
    }
}

impl Requirement {
    fn validate(&self) -> Result<(), String> {
        match self.operator.as_str() {
            "In" | "NotIn" if self.values.is_empty() => {
                Err(format!("selector operator {} on {:?} needs values", self.operator, self.key))
            }
            "Exists" | "DoesNotExist" if !self.values.is_empty() => {
                Err(format!("selector operator {} on {:?} takes no values", self.operator, self.key))
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => Ok(()),
            other => Err(format!("unknown selector operator {other:?} on {:?}", self.key)),
        }
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator.as_str() {
            "In" => value.is_some_and(|v| self.values.contains(v)),
            "NotIn" => value.is_none_or(|v| !self.values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn sel(json: &str) -> LabelSelector {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn empty_selects_everything() {
        assert!(sel("{}").matches(&labels(&[])).unwrap());
        assert!(sel(r#"{"matchLabels":null}"#).matches(&labels(&[("a", "b")])).unwrap());
    }

    #[test]
    fn match_labels_and_expressions_are_anded() {
        let s = sel(
            r#"{"matchLabels":{"app":"web"},"matchExpressions":[{"key":"tier","operator":"In","values":["a","b"]}]}"#,
        );
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "a")])).unwrap());
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "c")])).unwrap());
        assert!(!s.matches(&labels(&[("app", "web")])).unwrap());
        assert!(!s.matches(&labels(&[("app", "db"), ("tier", "a")])).unwrap());
    }

    #[test]
    fn operators() {
        let not_in = sel(r#"{"matchExpressions":[{"key":"env","operator":"NotIn","values":["prod"]}]}"#);
        assert!(not_in.matches(&labels(&[])).unwrap(), "NotIn matches a missing key");
        assert!(not_in.matches(&labels(&[("env", "dev")])).unwrap());
        assert!(!not_in.matches(&labels(&[("env", "prod")])).unwrap());
        let exists = sel(r#"{"matchExpressions":[{"key":"env","operator":"Exists"}]}"#);
        assert!(exists.matches(&labels(&[("env", "")])).unwrap());
        assert!(!exists.matches(&labels(&[])).unwrap());
        let absent = sel(r#"{"matchExpressions":[{"key":"env","operator":"DoesNotExist"}]}"#);
        assert!(absent.matches(&labels(&[])).unwrap());
        assert!(!absent.matches(&labels(&[("env", "x")])).unwrap());
    }

    #[test]
    fn invalid_selectors_are_errors() {
        assert!(
            sel(r#"{"matchExpressions":[{"key":"a","operator":"Equals","values":["x"]}]}"#)
                .matches(&labels(&[]))
                .is_err()
        );
        assert!(sel(r#"{"matchExpressions":[{"key":"a","operator":"In"}]}"#).matches(&labels(&[])).is_err());
        assert!(
            sel(r#"{"matchExpressions":[{"key":"a","operator":"Exists","values":["x"]}]}"#)
                .matches(&labels(&[]))
                .is_err()
        );
    }
}
