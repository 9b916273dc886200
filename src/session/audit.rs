//! The session's side of the audit log: the sink it writes to, and how a backend's answer is
//! classified (`ok` / `tool_error`) for the record, the span and the metrics.

use crate::protocol::methods;
use crate::telemetry::audit::{AuditHandle, Outcome};
use serde::Deserialize;

/// The gateway's audit log as sessions see it.
#[derive(Debug, Clone)]
pub struct AuditSink {
    pub handle: AuditHandle,
    /// `fsync` durability: a call's answer is released only after its record is durable.
    pub durable: bool,
}

#[derive(Deserialize)]
struct IsError {
    #[serde(default, rename = "isError")]
    is_error: bool,
}

/// The outcome of a backend's successful answer: a tool result with `isError: true` is a
/// `tool_error`, everything else `ok`.
pub(super) fn outcome_of_result(method: &str, raw: &str) -> Outcome {
    if method == methods::TOOLS_CALL
        && serde_json::from_str::<IsError>(raw).is_ok_and(|r| r.is_error)
    {
        Outcome::ToolError
    } else {
        Outcome::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    #[test]
    fn tool_errors_are_told_apart_from_results_that_merely_mention_is_error() {
        let raw = |s: &str| RawValue::from_string(s.to_string()).unwrap();
        let err = raw(r#"{"content":[],"isError":true}"#);
        assert_eq!(
            outcome_of_result(methods::TOOLS_CALL, err.get()),
            Outcome::ToolError
        );
        let text = raw(r#"{"content":[{"type":"text","text":"\"isError\":true"}]}"#);
        assert_eq!(
            outcome_of_result(methods::TOOLS_CALL, text.get()),
            Outcome::Ok
        );
        assert_eq!(
            outcome_of_result(methods::PROMPTS_GET, err.get()),
            Outcome::Ok
        );
    }
}
