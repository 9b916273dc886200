//! The tamper-evident, durable audit log: one hash-chained JSON line per audited call, written off the request path.
//!
//! # File format
//! JSON Lines. Each line is one [`AuditRecord`] plus two members:
//! - `prev`: hex SHA-256 of the previous line's exact bytes (without its `\n`); 64 zeros (`"0"*64`,
//!   [`GENESIS`]) for the first record of a new chain. The chain continues across rotated files.
//! - `hash`: hex SHA-256 of the record's canonical serialization with `prev` included and `hash`
//!   excluded. Canonical = compact JSON, object keys sorted by their UTF-8 bytes, recursively.
//!   The line is exactly that canonical text with `,"hash":"<hex>"` inserted before the final `}`,
//!   so `hash` is always the last member and the verifier hashes the bytes as written.
//!
//! `seq` starts at 1 and increases by one per record, across rotations and restarts.
//!
//! # Rotation
//! The active file is always the configured path (say `audit.jsonl`). Before a write would take it
//! past `max_file_bytes`, it is synced and renamed to `audit.jsonl.N` with N one above the highest
//! existing number: `.1` is the OLDEST file, and a rotated file never changes name again (easy to
//! ship and retain). Chain order is therefore `.1, .2, …, audit.jsonl` ([`log_files`]).
//!
//! # Durability
//! [`AuditHandle::record`] never waits: when the bounded queue is full the record is dropped and
//! counted ([`AuditHandle::dropped`]). Callers that must not lose a record use
//! [`AuditHandle::record_durable`], which applies back-pressure (waits for queue room) and resolves
//! once the record is on disk (after the `fsync` that covers it). The writer group-commits: it
//! drains everything queued, writes it with one `write_all`, then syncs per [`AuditDurability`]:
//! `Fsync` before acknowledging every batch, `Interval(d)` at most every `d` (a machine crash loses
//! at most `d` of written records; a process crash loses only what was still queued).
//!
//! # Restart
//! On start an existing log is resumed from its last complete line (`seq` and `prev` continue). A
//! truncated last line (a crash mid-write) is reported, cut off, and a `chain_restart` marker record
//! saying so continues the chain from the last complete record. A last complete line whose hash does
//! not match is not repaired: [`AuditLog::start`] fails with [`AuditError::Corrupt`].
//!
//! Records never hold argument values, results or credentials: there is no field for them.

use std::path::PathBuf;
use std::sync::Arc;

mod chain;
pub mod cmd;
mod record;
mod sink;
mod tail;
mod verify;
mod writer;

pub use crate::config::{AuditConfig, AuditDurability};
pub use chain::GENESIS;
pub use record::{AuditRecord, CallFacts, Decision, Outcome, RecordKind};
pub use sink::log_files;
pub use tail::tail;
pub use verify::{VerifyReport, order_files, verify};
pub use writer::{AuditHandle, AuditLog, AuditOptions, AuditStats, FsyncHook};

/// What is wrong with the first broken record [`verify`] finds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Break {
    /// Not a JSON object with `seq`, `prev` and a final `hash` member.
    Unparsable(String),
    /// The last line has no newline: a write was cut short.
    Truncated,
    /// `hash` does not match the record's bytes: the record was altered.
    HashMismatch,
    /// `prev` is not the hash of the line before: a record was altered, removed or inserted there.
    BrokenLink,
    /// `seq` skipped forward.
    MissingRecord { expected: u64, found: u64 },
    /// `seq` went backwards or repeated.
    OutOfOrder { expected: u64, found: u64 },
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Unparsable(why) => write!(f, "unparsable record ({why})"),
            Break::Truncated => f.write_str("truncated record (no newline at the end)"),
            Break::HashMismatch => f.write_str("hash mismatch (the record was altered)"),
            Break::BrokenLink => {
                f.write_str("broken link (prev is not the hash of the line before)")
            }
            Break::MissingRecord { expected, found } => {
                write!(f, "missing record (expected seq {expected}, found {found})")
            }
            Break::OutOfOrder { expected, found } => {
                write!(
                    f,
                    "record out of order (expected seq {expected}, found {found})"
                )
            }
        }
    }
}

/// Everything that goes wrong writing, resuming or verifying an audit log.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AuditError {
    /// (The I/O error is part of the message, not a `source`, so chains are not printed twice.)
    #[error("audit log {}: cannot {op}: {error}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        error: Arc<std::io::Error>,
    },
    /// Resume found a tail it will not repair (only a truncated last line is repaired).
    #[error("audit log {} is corrupt: {problem}", path.display())]
    Corrupt { path: PathBuf, problem: String },
    /// The first broken record found by [`verify`].
    #[error("audit chain broken at {}:{line}{}: {problem}", file.display(), seq.map(|s| format!(" (seq {s})")).unwrap_or_default())]
    Broken {
        file: PathBuf,
        /// 1-based line number in `file`.
        line: u64,
        seq: Option<u64>,
        problem: Break,
    },
    #[error("cannot encode an audit record: {0}")]
    Encode(String),
    /// The writer task has stopped (after a fatal error, or because it was shut down).
    #[error("the audit writer has stopped")]
    Closed,
}

/// The name for [`verify`]'s error: the module keeps one error enum.
pub type VerifyError = AuditError;

impl AuditError {
    fn io(path: impl Into<PathBuf>, op: &'static str, error: std::io::Error) -> Self {
        AuditError::Io {
            path: path.into(),
            op,
            error: Arc::new(error),
        }
    }
}

#[cfg(test)]
mod tests;
