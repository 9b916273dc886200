//! The session's audit hook: one record per routed call or denial, written when the call ends
//! (off the request path; in `fsync` mode the answer waits until its record is on disk).

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::policy::DecisionRecord;
use crate::protocol::methods;
use crate::telemetry::audit::{AuditHandle, AuditRecord, CallFacts, Outcome};

/// The gateway's audit log as sessions see it.
#[derive(Debug, Clone)]
pub struct AuditSink {
    pub handle: AuditHandle,
    /// `fsync` durability: a call's answer is released only after its record is durable.
    pub durable: bool,
}

/// What a call's record needs that is only known when it starts.
#[derive(Debug)]
pub(super) struct CallAudit {
    /// The tool/prompt name or URI as the client sent it.
    pub(super) target: Option<String>,
    pub(super) decision: DecisionRecord,
    pub(super) started: Instant,
    pub(super) method: String,
}

/// The session facts every record of a session repeats.
pub(super) struct SessionFacts<'a> {
    pub(super) session_id: &'a str,
    pub(super) protocol_version: &'a str,
}

impl CallAudit {
    pub(super) fn new(method: &str, target: Option<&str>, decision: DecisionRecord) -> Box<Self> {
        Box::new(CallAudit {
            target: target.map(str::to_string),
            decision,
            started: Instant::now(),
            method: method.to_string(),
        })
    }

    pub(super) fn record(&self, s: &SessionFacts<'_>, outcome: Outcome) -> AuditRecord {
        let facts = CallFacts {
            session_id: Some(s.session_id),
            client_addr: None,
            protocol_version: Some(s.protocol_version),
            method: &self.method,
            target: self.target.as_deref(),
            outcome,
            duration: self.started.elapsed(),
        };
        AuditRecord::call(&self.decision, &facts)
    }
}

#[derive(Deserialize)]
struct IsError {
    #[serde(default, rename = "isError")]
    is_error: bool,
}

/// The outcome of a backend's successful answer: a tool result with `isError: true` is a
/// `tool_error`, everything else `ok`.
pub(super) fn outcome_of_result(method: &str, raw: &RawValue) -> Outcome {
    if method == methods::TOOLS_CALL
        && serde_json::from_str::<IsError>(raw.get()).is_ok_and(|r| r.is_error)
    {
        Outcome::ToolError
    } else {
        Outcome::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_errors_are_told_apart_from_results_that_merely_mention_is_error() {
        let raw = |s: &str| RawValue::from_string(s.to_string()).unwrap();
        let err = raw(r#"{"content":[],"isError":true}"#);
        assert_eq!(
            outcome_of_result(methods::TOOLS_CALL, &err),
            Outcome::ToolError
        );
        let text = raw(r#"{"content":[{"type":"text","text":"\"isError\":true"}]}"#);
        assert_eq!(outcome_of_result(methods::TOOLS_CALL, &text), Outcome::Ok);
        assert_eq!(outcome_of_result(methods::PROMPTS_GET, &err), Outcome::Ok);
    }
}
