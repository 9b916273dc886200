//! Unit tests of the scanner's rules (a hit and a near miss each), spans, excerpts, the config
//! and odd input; shared helpers here, the cases in `tests/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::LazyLock;

use serde_json::{Value, json};

use super::*;

mod characters;
mod input;
mod payloads;
mod phrases;

/// One scanner with the default config for all tests (compiling the patterns is the slow part).
pub(super) fn scanner() -> &'static Scanner {
    static SCANNER: LazyLock<Scanner> =
        LazyLock::new(|| Scanner::new(&ScanConfig::default()).unwrap());
    &SCANNER
}

pub(super) fn def(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

pub(super) fn scan_desc(desc: &str) -> Vec<Finding> {
    scanner().scan(
        DefKind::Tool,
        &def(json!({"name": "t", "description": desc})),
    )
}

/// The highest severity of `rule` among the findings for a description, if any.
pub(super) fn worst(desc: &str, rule: &str) -> Option<Severity> {
    scan_desc(desc)
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| f.severity)
        .max()
}

pub(super) fn one(desc: &str, rule: &str) -> Finding {
    let all = scan_desc(desc);
    let of_rule: Vec<&Finding> = all.iter().filter(|f| f.rule == rule).collect();
    assert_eq!(of_rule.len(), 1, "{all:#?}");
    of_rule[0].clone()
}
