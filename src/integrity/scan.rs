//! Placeholder for the poisoning scanner (being written on branch `scan`): same API, no rules.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use super::hash::DefKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub pointer: String,
    pub span: std::ops::Range<usize>,
    pub excerpt: String,
    pub message: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanConfig {}

#[derive(Debug)]
pub struct Scanner;

impl Scanner {
    pub fn new(_cfg: &ScanConfig) -> Result<Scanner, String> {
        Ok(Scanner)
    }

    pub fn scan(&self, _kind: DefKind, _def: &Map<String, Value>) -> Vec<Finding> {
        Vec::new()
    }

    pub fn confusables(&self, _names: &[(&str, &str)]) -> Vec<(usize, Finding)> {
        Vec::new()
    }
}
