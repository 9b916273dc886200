//! How a call's facts become labels: the bounded method name, `error.type`, and the decision
//! record's span attributes.

use crate::policy::DecisionRecord;
use crate::protocol::methods;
use crate::telemetry::audit::Outcome;
use crate::telemetry::export::otlp::SpanWriter;

pub(super) fn decision_attrs(d: &DecisionRecord, backend: Option<&str>, w: &mut SpanWriter<'_>) {
    if let Some(b) = backend {
        w.str("switchboard.backend", b);
    }
    if let Some(o) = &d.original_name {
        w.str("switchboard.tool.original_name", o);
    }
    if let Some(x) = d.decision {
        w.str("switchboard.decision", x);
    }
    let strings = [
        ("switchboard.deny.rule", &d.deny_rule),
        ("switchboard.deny.reason", &d.deny_reason),
        ("switchboard.policy.revision", &d.policy_revision),
        ("switchboard.rate_limit", &d.rate_limit),
    ];
    for (k, v) in strings {
        if let Some(v) = v {
            w.str(k, v);
        }
    }
    if let Some(h) = &d.tool_hash {
        w.str("switchboard.tool.hash", h);
    }
    if let Some(p) = &d.principal {
        w.str("switchboard.principal", p);
    }
    if !d.roles.is_empty() {
        w.strs("switchboard.roles", d.roles.iter().map(|r| &**r));
    }
    if d.redactions > 0 {
        w.int("switchboard.redactions", i64::from(d.redactions));
    }
}

/// `{method} {target}`, or just `{method}` (bounded: unknown methods are `_OTHER`).
#[cfg(test)]
pub(super) fn span_name(method: &str, target: Option<&str>) -> std::borrow::Cow<'static, str> {
    use std::borrow::Cow;
    let m = bounded_method(method);
    match target {
        Some(t) => Cow::Owned(format!("{m} {t}")),
        None => Cow::Borrowed(m),
    }
}

/// `error.type`: the JSON-RPC code, or `tool_error`.
pub(super) fn error_type(o: Outcome) -> Option<String> {
    (o != Outcome::Ok).then(|| String::from(o))
}

/// The method as a label: one of MCP's, or `_OTHER` (clients can send anything).
pub fn bounded_method(m: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        methods::INITIALIZE,
        methods::INITIALIZED,
        methods::PING,
        methods::TOOLS_LIST,
        methods::TOOLS_CALL,
        methods::PROMPTS_LIST,
        methods::PROMPTS_GET,
        methods::RESOURCES_LIST,
        methods::RESOURCES_TEMPLATES_LIST,
        methods::RESOURCES_READ,
        methods::RESOURCES_SUBSCRIBE,
        methods::RESOURCES_UNSUBSCRIBE,
        methods::COMPLETION_COMPLETE,
        methods::LOGGING_SET_LEVEL,
        methods::CANCELLED,
        methods::PROGRESS,
        methods::ROOTS_LIST_CHANGED,
        methods::SERVER_DISCOVER,
        "subscriptions/listen",
    ];
    KNOWN.iter().copied().find(|k| *k == m).unwrap_or("_OTHER")
}
