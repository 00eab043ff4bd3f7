//! What a run produces: findings, errors, and the counts around them.

use serde::Serialize;

use crate::resources::{Resource, Source};
use crate::severity::Severity;

/// Which object a finding or error is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ResourceRef {
    pub fn of(r: &Resource) -> ResourceRef {
        ResourceRef {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        }
    }

    /// `Kind namespace/name`, or `Kind name` for cluster-scoped objects.
    pub fn label(&self) -> String {
        let name = if self.name.is_empty() { "<unnamed>" } else { &self.name };
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{name}", self.kind),
            None => format!("{} {name}", self.kind),
        }
    }
}

/// One violation of one rule by one object.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    /// JSON pointer into the object.
    pub path: String,
    pub resource: ResourceRef,
    pub source: Source,
    /// Set when an exception of the configuration covers the finding.
    #[serde(rename = "exempted", skip_serializing_if = "Option::is_none")]
    pub exemption: Option<crate::exceptions::Exemption>,
    /// Position of the object in the run's resources.
    #[serde(skip)]
    pub resource_index: usize,
}

impl Finding {
    /// Whether the finding counts: it is not exempted.
    pub fn is_active(&self) -> bool {
        self.exemption.is_none()
    }
}

/// Where an error arose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    /// An input that could not be read as Kubernetes objects.
    Input,
    /// A policy that failed on an object (trap, timeout, memory, or its own error).
    Policy,
}

/// Something that kept part of the input from being checked.
#[derive(Debug, Clone, Serialize)]
pub struct RunError {
    pub kind: ErrorKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceRef>,
    pub source: Source,
    pub message: String,
}
