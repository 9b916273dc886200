//! The audit record: what one call was, who made it and what the gateway decided (never its arguments).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::policy::DecisionRecord;

/// What a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// One routed call (allowed or denied).
    Call,
    /// The writer found a truncated last line on start and continued the chain without it.
    ChainRestart,
    /// A tool, prompt or template definition's standing changed (`event`: quarantined,
    /// released, warned, approved, blocked), with its previous and current hash.
    Integrity,
}

/// The policy chain's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
}

/// How the call ended: written as `"ok"`, `"tool_error"` or the JSON-RPC error code as a string
/// (`"-32602"`), like OpenTelemetry's `error.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Outcome {
    Ok,
    /// A result with `isError: true`.
    ToolError,
    /// A JSON-RPC error response with this code.
    Error(i64),
}

impl From<Outcome> for String {
    fn from(o: Outcome) -> String {
        match o {
            Outcome::Ok => "ok".into(),
            Outcome::ToolError => "tool_error".into(),
            Outcome::Error(code) => code.to_string(),
        }
    }
}

impl TryFrom<String> for Outcome {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "ok" => Ok(Outcome::Ok),
            "tool_error" => Ok(Outcome::ToolError),
            code => code
                .parse()
                .map(Outcome::Error)
                .map_err(|_| format!("unknown outcome {code:?}")),
        }
    }
}

/// The facts of one call that the policy chain does not know.
#[derive(Clone, Copy, Debug)]
pub struct CallFacts<'a> {
    /// The gateway's session id (the one the client sees).
    pub session_id: Option<&'a str>,
    pub client_addr: Option<IpAddr>,
    pub protocol_version: Option<&'a str>,
    /// The JSON-RPC method, e.g. `tools/call`.
    pub method: &'a str,
    /// The tool or prompt name as exposed to the client (possibly `backend__name`).
    pub target: Option<&'a str>,
    pub outcome: Outcome,
    pub duration: Duration,
    /// The call's SERVER span (trace id, span id), when it was traced.
    pub trace: Option<([u8; 16], [u8; 8])>,
}

/// One audit record. `seq` and `instance` are filled in by the writer.
///
/// Most fields are optional and omitted from the line when absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339, UTC, milliseconds (`2026-11-25T17:50:51.123Z`).
    #[serde(with = "rfc3339_ms")]
    pub time: SystemTime,
    /// Assigned by the writer: 1, 2, 3, … across rotations and restarts.
    #[serde(default)]
    pub seq: u64,
    pub kind: RecordKind,
    /// The gateway instance; the writer fills it in when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The tool or prompt name as exposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The name on the backend, when it differs from `target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Milliseconds, microsecond precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_revision: Option<String>,
    /// The pinned definition hash of the tool called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_hash: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redactions: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// The trace and SERVER span of the call (hex), when it was traced: the way from a record to
    /// its trace in Jaeger/Tempo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// Free text for marker records (e.g. why the chain restarted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `integrity` records: what happened to the definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// `integrity` records: the approved hash before (`tool_hash` is the current one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_hash: Option<String>,
    /// `integrity` records: how many places (JSON pointers) differ between the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<u32>,
}

pub(super) fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl AuditRecord {
    fn empty(kind: RecordKind) -> Self {
        AuditRecord {
            time: SystemTime::now(),
            seq: 0,
            kind,
            instance: None,
            session: None,
            principal: None,
            roles: Vec::new(),
            client_addr: None,
            protocol_version: None,
            method: None,
            target: None,
            backend: None,
            original_name: None,
            decision: None,
            deny_rule: None,
            deny_reason: None,
            outcome: None,
            duration_ms: None,
            policy_revision: None,
            tool_hash: None,
            redactions: 0,
            rate_limit: None,
            trace_id: None,
            span_id: None,
            note: None,
            event: None,
            previous_hash: None,
            changes: None,
        }
    }

    /// The record of a definition's change of standing (`Integrity`), stamped now.
    #[allow(clippy::too_many_arguments)]
    pub fn integrity(
        event: &str,
        backend: &str,
        kind: &str,
        name: &str,
        previous_hash: Option<&str>,
        hash: Option<&str>,
        changes: usize,
        note: String,
        by: Option<&str>,
    ) -> Self {
        let mut r = AuditRecord::empty(RecordKind::Integrity);
        r.event = Some(event.to_string());
        r.backend = Some(backend.to_string());
        r.method = Some(kind.to_string());
        r.target = Some(name.to_string());
        r.previous_hash = previous_hash.map(str::to_owned);
        r.tool_hash = hash.map(str::to_owned);
        r.changes = Some(u32::try_from(changes).unwrap_or(u32::MAX));
        r.note = Some(note);
        r.principal = by.map(Arc::from);
        r
    }

    /// The record of one call, stamped now: what the guards decided plus the call's facts.
    ///
    /// Copies only names, ids and verdicts; the `DecisionRecord` holds no argument values.
    pub fn call(decision: &DecisionRecord, facts: &CallFacts<'_>) -> Self {
        let mut r = AuditRecord::empty(RecordKind::Call);
        r.session = facts.session_id.map(str::to_owned);
        r.principal.clone_from(&decision.principal);
        r.roles.clone_from(&decision.roles);
        r.client_addr = facts.client_addr;
        r.protocol_version = facts.protocol_version.map(str::to_owned);
        r.method = Some(facts.method.to_owned());
        r.target = facts.target.map(str::to_owned);
        r.backend.clone_from(&decision.backend);
        r.original_name.clone_from(&decision.original_name);
        r.decision = match decision.decision {
            Some("allow") => Some(Decision::Allow),
            Some("deny") => Some(Decision::Deny),
            _ => None,
        };
        r.deny_rule.clone_from(&decision.deny_rule);
        r.deny_reason.clone_from(&decision.deny_reason);
        r.outcome = Some(facts.outcome);
        r.duration_ms = Some((facts.duration.as_micros() as f64) / 1000.0);
        r.policy_revision.clone_from(&decision.policy_revision);
        r.tool_hash = decision.tool_hash.as_deref().map(str::to_owned);
        r.redactions = decision.redactions;
        r.rate_limit.clone_from(&decision.rate_limit);
        if let Some((t, s)) = facts.trace {
            r.trace_id = Some(hex::encode(t));
            r.span_id = Some(hex::encode(s));
        }
        r
    }

    /// The marker written when the chain continues past a discarded, truncated line.
    pub(super) fn chain_restart(note: String) -> Self {
        let mut r = AuditRecord::empty(RecordKind::ChainRestart);
        r.note = Some(note);
        r
    }
}

pub(super) mod rfc3339_ms {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(in crate::telemetry::audit) fn serialize<S: Serializer>(
        t: &SystemTime,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*t))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}
