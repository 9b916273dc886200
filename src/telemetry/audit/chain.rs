//! The hash chain, without I/O: a record's canonical line, and what one line says about itself.

use serde::Deserialize;
use serde_json::Value;
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
    let value = serde_json::to_value(record).map_err(|e| AuditError::Encode(e.to_string()))?;
    let Value::Object(mut map) = value else {
        return Err(AuditError::Encode("a record is not a JSON object".into()));
    };
    map.remove("hash");
    map.insert("prev".into(), Value::String(prev.into()));
    let start = out.len();
    write_canonical(&Value::Object(map), out)?;
    let hash = Sha256::digest(&out[start..]);
    out.pop(); // the closing brace; the object is never empty (it has `prev`)
    out.extend_from_slice(HASH_MEMBER);
    out.extend_from_slice(hex::encode(hash).as_bytes());
    out.extend_from_slice(b"\"}");
    Ok(())
}

/// Compact JSON with object keys sorted by their UTF-8 bytes, recursively.
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
