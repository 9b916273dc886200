//! Offline verification of a log's files: every line parses, hashes match, links and seqs follow.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::chain::{GENESIS, check_line, sha256_hex};
use super::{AuditError, Break};

/// What an intact chain holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub files: usize,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The first record starts a new chain (`prev` is [`GENESIS`]). `false` when the files given
    /// continue an earlier file (e.g. older rotated files were archived).
    pub starts_new_chain: bool,
    /// Seqs of `chain_restart` markers (recoveries from a crash-truncated line).
    pub chain_restarts: Vec<u64>,
    /// SHA-256 of the last line: keep it elsewhere to detect a later truncation of the tail.
    pub last_line_hash: Option<String>,
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} records, chain intact", self.records)?;
        if let (Some(a), Some(b)) = (self.first_seq, self.last_seq) {
            write!(f, " (seq {a}..={b} in {} file(s)", self.files)?;
            if !self.starts_new_chain {
                f.write_str("; continues an earlier file")?;
            }
            if !self.chain_restarts.is_empty() {
                write!(f, "; chain restarts at seq {:?}", self.chain_restarts)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Checks `paths` in order as one chain. The error names the file, 1-based line and seq of the
/// FIRST broken record and what is wrong with it.
pub fn verify(paths: &[PathBuf]) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport {
        files: paths.len(),
        ..VerifyReport::default()
    };
    // (seq, hash of the line) of the last record seen.
    let mut last: Option<(u64, String)> = None;
    let mut buf = Vec::new();
    for path in paths {
        let file = File::open(path).map_err(|e| AuditError::io(path, "open", e))?;
        let mut reader = BufReader::with_capacity(64 * 1024, file);
        let mut line_no = 0u64;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| AuditError::io(path, "read", e))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let broken = |seq, problem| AuditError::Broken {
                file: path.clone(),
                line: line_no,
                seq,
                problem,
            };
            if buf.pop() != Some(b'\n') {
                return Err(broken(None, Break::Truncated));
            }
            let facts = check_line(&buf).map_err(|(seq, b)| broken(seq, b))?;
            let seq = Some(facts.seq);
            match &last {
                None => {
                    report.first_seq = seq;
                    report.starts_new_chain = facts.prev == GENESIS;
                }
                Some((last_seq, last_hash)) => {
                    let expected = last_seq + 1;
                    if facts.seq > expected {
                        let found = facts.seq;
                        return Err(broken(seq, Break::MissingRecord { expected, found }));
                    }
                    if facts.seq < expected {
                        let found = facts.seq;
                        return Err(broken(seq, Break::OutOfOrder { expected, found }));
                    }
                    if facts.prev != *last_hash {
                        return Err(broken(seq, Break::BrokenLink));
                    }
                }
            }
            if facts.restart {
                report.chain_restarts.push(facts.seq);
            }
            report.records += 1;
            report.last_seq = seq;
            last = Some((facts.seq, sha256_hex(&buf)));
        }
    }
    report.last_line_hash = last.map(|(_, h)| h);
    Ok(report)
}

/// Sorts paths into chain order: `x.1 < x.2 < … < x.10 < x` (a shell glob `x*` sorts `.10` before `.2`).
pub fn order_files(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.sort_by_cached_key(|p| rotation_key(p));
    paths
}

fn rotation_key(p: &Path) -> (PathBuf, u64) {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some((base, n)) = name.rsplit_once('.')
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = n.parse()
    {
        return (p.with_file_name(base), n);
    }
    (p.to_path_buf(), u64::MAX)
}
