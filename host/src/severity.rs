//! Severities as the host reports and compares them.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] =
        [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown severity {s:?} (expected info, low, medium, high or critical)"))
    }
}

/// A rule's severity as the contract writes it.
impl From<crate::runtime::wit::Severity> for Severity {
    fn from(s: crate::runtime::wit::Severity) -> Severity {
        use crate::runtime::wit::Severity as W;
        match s {
            W::Info => Severity::Info,
            W::Low => Severity::Low,
            W::Medium => Severity::Medium,
            W::High => Severity::High,
            W::Critical => Severity::Critical,
        }
    }
}

impl From<Severity> for crate::runtime::wit::Severity {
    fn from(s: Severity) -> crate::runtime::wit::Severity {
        use crate::runtime::wit::Severity as W;
        match s {
            Severity::Info => W::Info,
            Severity::Low => W::Low,
            Severity::Medium => W::Medium,
            Severity::High => W::High,
            Severity::Critical => W::Critical,
        }
    }
}
