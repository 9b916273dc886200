//! The blocking file side of the writer: resume, append with rotation, sync. Owned by one task.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chain::{GENESIS, check_line, encode, sha256_hex};
use super::{AuditError, AuditRecord};

/// The files of the log at `active`, in chain order: `active.1`, `active.2`, …, then `active` if it exists.
pub fn log_files(active: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<_> = rotated_files(active)?.into_iter().map(|(_, p)| p).collect();
    if active.exists() {
        files.push(active.to_path_buf());
    }
    Ok(files)
}

/// `(N, path)` of every `active.N`, sorted by N.
pub(super) fn rotated_files(active: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let Some(name) = active.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let dir = parent_dir(active);
    let prefix = format!("{name}.");
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(n) = file_name
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((n, entry.path()));
    }
    out.sort_unstable_by_key(|(n, _)| *n);
    Ok(out)
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuditError::io(dir, "sync the directory", e))
}

/// The end of a file: its last complete line and any bytes after it.
struct Tail {
    last_line: Option<Vec<u8>>,
    /// Length up to and including the last `\n`.
    complete_len: u64,
}

/// Reads backwards in growing windows until the last complete line is found.
fn read_tail(file: &File, len: u64) -> std::io::Result<Tail> {
    let mut window = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(window);
        let mut buf = vec![0; usize::try_from(len - start).unwrap_or(usize::MAX)];
        file.read_exact_at(&mut buf, start)?;
        let Some(nl) = buf.iter().rposition(|&b| b == b'\n') else {
            if start == 0 {
                return Ok(Tail {
                    last_line: None,
                    complete_len: 0,
                });
            }
            window = window.saturating_mul(2);
            continue;
        };
        let line_start = match buf[..nl].iter().rposition(|&b| b == b'\n') {
            Some(p) => p + 1,
            None if start == 0 => 0,
            None => {
                window = window.saturating_mul(2);
                continue;
            }
        };
        return Ok(Tail {
            last_line: Some(buf[line_start..nl].to_vec()),
            complete_len: start + nl as u64 + 1,
        });
    }
}

fn file_len(f: &File, path: &Path) -> Result<u64, AuditError> {
    Ok(f.metadata()
        .map_err(|e| AuditError::io(path, "stat", e))?
        .len())
}

/// Where the chain stands at the end of `path`: `(prev, next seq, marker)`. A truncated last line
/// is cut off, and the returned `chain_restart` marker says so; a broken last complete line is
/// an error.
fn resume(path: &Path) -> Result<(String, u64, Option<AuditRecord>), AuditError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| AuditError::io(path, "open", e))?;
    let len = file_len(&file, path)?;
    let tail = read_tail(&file, len).map_err(|e| AuditError::io(path, "read", e))?;
    let (prev, next_seq) = match &tail.last_line {
        None => (GENESIS.to_string(), 1),
        Some(line) => {
            let facts = check_line(line).map_err(|(seq, problem)| AuditError::Corrupt {
                path: path.to_path_buf(),
                problem: format!(
                    "its last complete record{} is broken: {problem}; refusing to extend the chain (run `switchboard audit verify`)",
                    seq.map(|s| format!(" (seq {s})")).unwrap_or_default()
                ),
            })?;
            (sha256_hex(line), facts.seq + 1)
        }
    };
    let discarded = len - tail.complete_len;
    if discarded == 0 {
        return Ok((prev, next_seq, None));
    }
    let mut cut = vec![0; usize::try_from(discarded).unwrap_or(0)];
    let cut_hash = match file.read_exact_at(&mut cut, tail.complete_len) {
        Ok(()) => sha256_hex(&cut),
        Err(_) => "unreadable".into(),
    };
    file.set_len(tail.complete_len)
        .and_then(|()| file.sync_all())
        .map_err(|e| AuditError::io(path, "truncate", e))?;
    tracing::warn!(file = %path.display(), discarded, "audit log ended in a truncated line; the chain restarts from the last complete record");
    let note = format!(
        "unclean shutdown: discarded a truncated last line of {} ({discarded} bytes, sha256 {cut_hash}); the chain continues from seq {}",
        path.display(),
        next_seq - 1
    );
    Ok((prev, next_seq, Some(AuditRecord::chain_restart(note))))
}

/// The open log: the active file and where the chain stands.
pub(super) struct Sink {
    path: PathBuf,
    dir: PathBuf,
    file: File,
    size: u64,
    /// Hash of the last line written (or [`GENESIS`]).
    prev: String,
    next_seq: u64,
    next_rotation: u64,
    max_file_bytes: u64,
    instance: Arc<str>,
    buf: Vec<u8>,
    /// A failed rollback or rotation left the file in an unknown state: stop writing.
    poisoned: bool,
}

impl Sink {
    /// Opens (creating if needed) and resumes the log at `path`. Returns the marker to write first
    /// when a truncated last line was cut off.
    pub(super) fn open(
        path: &Path,
        max_file_bytes: u64,
        instance: Arc<str>,
    ) -> Result<(Sink, Option<AuditRecord>), AuditError> {
        let dir = parent_dir(path);
        std::fs::create_dir_all(&dir).map_err(|e| AuditError::io(&dir, "create", e))?;
        let rotated = rotated_files(path).map_err(|e| AuditError::io(&dir, "list", e))?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| AuditError::io(path, "open", e))?;
        sync_dir(&dir)?;
        // The chain's tail is in the active file, or (right after a rotation) the newest rotated one.
        let tail_path = match rotated.last() {
            Some((_, last)) if file_len(&file, path)? == 0 => last.clone(),
            _ => path.to_path_buf(),
        };
        let (prev, next_seq, marker) = resume(&tail_path)?;
        let sink = Sink {
            path: path.to_path_buf(),
            dir,
            size: file_len(&file, path)?,
            file,
            prev,
            next_seq,
            next_rotation: rotated.last().map_or(1, |(n, _)| n + 1),
            max_file_bytes,
            instance,
            buf: Vec::with_capacity(64 * 1024),
            poisoned: false,
        };
        Ok((sink, marker))
    }

    pub(super) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub(super) fn poisoned(&self) -> bool {
        self.poisoned
    }

    /// Assigns seqs, chains and writes `recs` (one `write_all` per file touched), rotating as needed.
    /// On error, the records before [`Self::next_seq`] were written and the rest were not.
    pub(super) fn append(&mut self, recs: &mut [AuditRecord]) -> Result<(), AuditError> {
        if self.poisoned {
            return Err(AuditError::Closed);
        }
        self.buf.clear();
        let mut prev = self.prev.clone();
        let mut count = 0u64;
        for rec in recs.iter_mut() {
            rec.seq = self.next_seq + count;
            if rec.instance.is_none() {
                rec.instance = Some(self.instance.clone());
            }
            let start = self.buf.len();
            encode(rec, &prev, &mut self.buf)?;
            let line_hash = sha256_hex(&self.buf[start..]);
            self.buf.push(b'\n');
            let over = self.size + self.buf.len() as u64 > self.max_file_bytes;
            if over && self.size + start as u64 > 0 {
                // This line opens the next file; what came before it closes this one.
                let line = self.buf.split_off(start);
                self.write_out(count, &prev)?;
                self.rotate()?;
                self.buf = line;
                count = 0;
            }
            prev = line_hash;
            count += 1;
        }
        self.write_out(count, &prev)
    }

    /// Writes the buffer (holding `count` records ending in a line hashing to `last`) and commits.
    fn write_out(&mut self, count: u64, last: &str) -> Result<(), AuditError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            // Cut any partial write so the file still ends on a complete line.
            if self.file.set_len(self.size).is_err() {
                self.poisoned = true;
            }
            return Err(AuditError::io(&self.path, "write", e));
        }
        self.size += self.buf.len() as u64;
        self.next_seq += count;
        self.prev = last.to_string();
        self.buf.clear();
        Ok(())
    }

    /// Syncs the active file, renames it to `path.N`, and opens a fresh active file.
    fn rotate(&mut self) -> Result<(), AuditError> {
        self.sync()?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "audit.jsonl".into());
        let to = self
            .path
            .with_file_name(format!("{name}.{}", self.next_rotation));
        if to.exists() {
            return Err(AuditError::Corrupt {
                path: to,
                problem: "the next rotated file name already exists".into(),
            });
        }
        std::fs::rename(&self.path, &to).map_err(|e| AuditError::io(&self.path, "rotate", e))?;
        self.next_rotation += 1;
        match OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
        {
            Ok(f) => self.file = f,
            Err(e) => {
                self.poisoned = true;
                return Err(AuditError::io(&self.path, "open", e));
            }
        }
        self.size = 0;
        sync_dir(&self.dir)
    }

    /// `fdatasync` of the active file; returns how long it took.
    pub(super) fn sync(&mut self) -> Result<Duration, AuditError> {
        let t = Instant::now();
        self.file
            .sync_data()
            .map_err(|e| AuditError::io(&self.path, "fsync", e))?;
        Ok(t.elapsed())
    }
}
