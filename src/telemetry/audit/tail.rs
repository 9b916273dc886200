//! `audit tail`: print a log's lines, and with `follow` keep printing them as they are appended,
//! across rotations (bounded polling).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use tokio::fs::File;
use tokio::io::AsyncReadExt;

use super::AuditError;

/// Calls `emit` with every complete line (without its newline) of `path`. With `follow`, polls
/// every `poll` for more; when the file is rotated away, finishes the old file and reopens `path`.
/// Without `follow`, returns at the end of the file.
pub async fn tail(
    path: &Path,
    follow: bool,
    poll: Duration,
    mut emit: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), AuditError> {
    let (mut file, mut ino) = open(path, follow, poll).await?;
    let mut pending = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut chunk)
            .await
            .map_err(|e| AuditError::io(path, "read", e))?;
        if n > 0 {
            pending.extend_from_slice(&chunk[..n]);
            emit_lines(&mut pending, &mut emit)?;
            continue;
        }
        if !follow {
            return Ok(());
        }
        // At the end. A different file at `path` means ours was rotated away: it gets no more
        // writes once renamed, so drain it to the end first, then switch.
        match tokio::fs::metadata(path).await {
            Ok(m) if m.ino() != ino => {
                file.read_to_end(&mut pending)
                    .await
                    .map_err(|e| AuditError::io(path, "read", e))?;
                emit_lines(&mut pending, &mut emit)?;
                pending.clear();
                (file, ino) = open(path, true, poll).await?;
            }
            _ => tokio::time::sleep(poll).await,
        }
    }
}

/// Emits every complete line in `pending` and keeps the unfinished rest.
fn emit_lines(
    pending: &mut Vec<u8>,
    emit: &mut impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), AuditError> {
    let mut start = 0;
    while let Some(i) = pending[start..].iter().position(|&b| b == b'\n') {
        emit(&pending[start..start + i]).map_err(|e| AuditError::io("stdout", "write", e))?;
        start += i + 1;
    }
    pending.drain(..start);
    Ok(())
}

/// Opens `path`; with `wait`, polls until it exists.
async fn open(path: &Path, wait: bool, poll: Duration) -> Result<(File, u64), AuditError> {
    loop {
        match File::open(path).await {
            Ok(f) => {
                let ino = f
                    .metadata()
                    .await
                    .map_err(|e| AuditError::io(path, "stat", e))?
                    .ino();
                return Ok((f, ino));
            }
            Err(e) if wait && e.kind() == std::io::ErrorKind::NotFound => {
                tokio::time::sleep(poll).await;
            }
            Err(e) => return Err(AuditError::io(path, "open", e)),
        }
    }
}
