//! The hash chain, without I/O: a record's canonical line, and what one line says about itself.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AuditError, AuditRecord, Break};

/// `prev` of the first record of a new chain: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_MEMBER: &[u8] = b",\"hash\":\"";
/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = HASH_MEMBER.len() + 64 + 2;

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Appends the line of `record` chained to `prev` (without a newline) to `out`.
pub(super) fn encode(
    record: &AuditRecord,
    prev: &str,
    out: &mut Vec<u8>,
) -> Result<(), AuditError> {
    let start = out.len();
    serde_json::to_writer(&mut *out, &Canonical::of(record, prev))
        .map_err(|e| AuditError::Encode(e.to_string()))?;
    let hash = Sha256::digest(&out[start..]);
    out.pop(); // the closing brace; the object is never empty (it has `prev`)
    out.extend_from_slice(HASH_MEMBER);
    out.extend_from_slice(hex::encode(hash).as_bytes());
    out.extend_from_slice(b"\"}");
    Ok(())
}

/// Compact JSON with object keys sorted by their UTF-8 bytes, recursively.
/// A record in its canonical form, written straight from the record: the members in byte order
/// of their names (as `write_canonical` sorts them) with `prev` among them, compact. Every value
/// is a scalar or an array of strings, so serde_json's compact output of each is canonical too;
/// `canonical_form_matches_the_sorted_re_encoding` holds the two equal.
#[derive(Serialize)]
struct Canonical<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    backend: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_addr: Option<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<super::Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deny_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deny_rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
    kind: super::RecordKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<super::Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_revision: Option<&'a str>,
    prev: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<&'a str>,
    #[serde(skip_serializing_if = "super::record::is_zero")]
    redactions: u32,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    roles: &'a [std::sync::Arc<str>],
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    span_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    #[serde(serialize_with = "super::record::rfc3339_ms::serialize")]
    time: std::time::SystemTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
}

impl<'a> Canonical<'a> {
    fn of(r: &'a AuditRecord, prev: &'a str) -> Self {
        Canonical {
            backend: r.backend.as_deref(),
            client_addr: r.client_addr,
            decision: r.decision,
            deny_reason: r.deny_reason.as_deref(),
            deny_rule: r.deny_rule.as_deref(),
            duration_ms: r.duration_ms,
            changes: r.changes,
            event: r.event.as_deref(),
            instance: r.instance.as_deref(),
            kind: r.kind,
            method: r.method.as_deref(),
            note: r.note.as_deref(),
            original_name: r.original_name.as_deref(),
            outcome: r.outcome,
            policy_revision: r.policy_revision.as_deref(),
            prev,
            previous_hash: r.previous_hash.as_deref(),
            principal: r.principal.as_deref(),
            protocol_version: r.protocol_version.as_deref(),
            rate_limit: r.rate_limit.as_deref(),
            redactions: r.redactions,
            roles: &r.roles,
            seq: r.seq,
            session: r.session.as_deref(),
            span_id: r.span_id.as_deref(),
            target: r.target.as_deref(),
            time: r.time,
            tool_hash: r.tool_hash.as_deref(),
            trace_id: r.trace_id.as_deref(),
        }
    }
}

/// The chain facts of one intact line.
#[derive(Debug)]
pub(super) struct LineFacts {
    pub(super) seq: u64,
    pub(super) prev: String,
    pub(super) restart: bool,
}

#[derive(Deserialize)]
struct Head {
    seq: u64,
    prev: String,
    hash: String,
    #[serde(default)]
    kind: Option<String>,
}

/// Checks that `line` (without its newline) parses and its `hash` matches its bytes.
/// On failure, also returns the line's `seq` when it could be read.
pub(super) fn check_line(line: &[u8]) -> Result<LineFacts, (Option<u64>, Break)> {
    let head: Head = serde_json::from_slice(line)
        .map_err(|e| (seq_of(line), Break::Unparsable(e.to_string())))?;
    let seq = Some(head.seq);
    if !is_hex64(&head.prev) {
        return Err((seq, Break::Unparsable("prev is not 64 hex digits".into())));
    }
    let n = line.len();
    let suffix_ok = n > HASH_SUFFIX_LEN
        && line[n - HASH_SUFFIX_LEN..].starts_with(HASH_MEMBER)
        && line.ends_with(b"\"}")
        && &line[n - 66..n - 2] == head.hash.as_bytes()
        && is_hex64(&head.hash);
    if !suffix_ok {
        return Err((seq, Break::Unparsable("hash is not the last member".into())));
    }
    let mut hasher = Sha256::new();
    hasher.update(&line[..n - HASH_SUFFIX_LEN]);
    hasher.update(b"}");
    if hex::encode(hasher.finalize()) != head.hash {
        return Err((seq, Break::HashMismatch));
    }
    Ok(LineFacts {
        seq: head.seq,
        prev: head.prev,
        restart: head.kind.as_deref() == Some("chain_restart"),
    })
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The `seq` of a line that does not parse as a record, if it has one.
fn seq_of(line: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    serde_json::from_slice::<SeqOnly>(line).ok().map(|s| s.seq)
}

#[cfg(test)]
mod canonical_tests {
    use super::*;
    use serde_json::Value;

    /// The reference canonical form: every object's members sorted by name, compact.
    fn write_canonical(v: &Value, out: &mut Vec<u8>) -> Result<(), AuditError> {
        let enc = |e: serde_json::Error| AuditError::Encode(e.to_string());
        match v {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                out.push(b'{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, k).map_err(enc)?;
                    out.push(b':');
                    write_canonical(v, out)?;
                }
                out.push(b'}');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_canonical(v, out)?;
                }
                out.push(b']');
            }
            scalar => serde_json::to_writer(&mut *out, scalar).map_err(enc)?,
        }
        Ok(())
    }

    use crate::policy::DecisionRecord;
    use crate::telemetry::audit::{CallFacts, Outcome};

    /// The old way: serialize to a `Value`, add `prev`, sort every member, write compactly.
    fn re_encoded(r: &AuditRecord, prev: &str) -> Vec<u8> {
        let Value::Object(mut map) = serde_json::to_value(r).unwrap() else {
            panic!("not an object")
        };
        map.insert("prev".into(), Value::String(prev.into()));
        let mut out = Vec::new();
        write_canonical(&Value::Object(map), &mut out).unwrap();
        out
    }

    #[test]
    fn canonical_form_matches_the_sorted_re_encoding() {
        let d = DecisionRecord {
            principal: Some("ana \"q\"".into()),
            roles: vec!["dev".into(), "sre".into()],
            backend: Some("notes".into()),
            original_name: Some("add_note".into()),
            decision: Some("deny"),
            deny_rule: Some("rbac:1".into()),
            deny_reason: Some("nope\n".into()),
            policy_revision: Some("r7".into()),
            tool_hash: Some("ab".into()),
            redactions: 3,
            rate_limit: Some("ok".into()),
        };
        let facts = CallFacts {
            session_id: Some("s1"),
            client_addr: Some("::1".parse().unwrap()),
            protocol_version: Some("2025-11-25"),
            method: "tools/call",
            target: Some("notes__add_note"),
            outcome: Outcome::Error(-32602),
            duration: std::time::Duration::from_micros(1234),
            trace: Some(([1; 16], [2; 8])),
        };
        let mut full = AuditRecord::call(&d, &facts);
        full.seq = 42;
        full.instance = Some("gw-1".into());
        full.note = Some("n".into());
        let minimal = AuditRecord::call(
            &DecisionRecord::default(),
            &CallFacts {
                session_id: None,
                client_addr: None,
                protocol_version: None,
                method: "ping",
                target: None,
                outcome: Outcome::Ok,
                duration: std::time::Duration::ZERO,
                trace: None,
            },
        );
        for r in [full, minimal] {
            let mut direct = Vec::new();
            serde_json::to_writer(&mut direct, &Canonical::of(&r, GENESIS)).unwrap();
            assert_eq!(
                String::from_utf8(direct).unwrap(),
                String::from_utf8(re_encoded(&r, GENESIS)).unwrap()
            );
        }
    }
}
