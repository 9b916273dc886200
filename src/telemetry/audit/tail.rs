//! `audit tail`: print a log's lines, and with `follow` keep printing them as they are appended,
//! across rotations (bounded polling).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::fs::File;
use tokio::io::AsyncReadExt;

use super::AuditError;
use super::sink::rotated_files;

/// Calls `emit` with every complete line (without its newline) of `path`. With `follow`, polls
/// every `poll` for more; when the file is rotated away, finishes it, then every file rotated after
/// it (`path.N+1`, …), then continues with the new `path`. Without `follow`, returns at the end.
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
        // At the end of our file. A different file at `path` means ours was rotated away; it gets
        // no more writes once renamed, so what follows it is the next rotated file or `path`.
        match tokio::fs::metadata(path).await {
            Ok(m) if m.ino() != ino => {
                file.read_to_end(&mut pending)
                    .await
                    .map_err(|e| AuditError::io(path, "read", e))?;
                emit_lines(&mut pending, &mut emit)?;
                pending.clear();
                (file, ino) = match successor(path, ino).await? {
                    Some(next) => open(&next, false, poll).await?,
                    None => {
                        let (f, i) = open(path, true, poll).await?;
                        // A rotation between the listing and the open would skip a file: re-check.
                        match successor(path, ino).await? {
                            Some(next) if file_ino(&next).await != Some(i) => {
                                open(&next, false, poll).await?
                            }
                            _ => (f, i),
                        }
                    }
                };
            }
            _ => tokio::time::sleep(poll).await,
        }
    }
}

/// The rotated file that follows the one with inode `ino`, if any.
async fn successor(path: &Path, ino: u64) -> Result<Option<PathBuf>, AuditError> {
    let active = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let files =
            rotated_files(&active).map_err(|e| AuditError::io(&active, "list rotated files", e))?;
        let pos = files
            .iter()
            .position(|(_, p)| std::fs::metadata(p).is_ok_and(|m| m.ino() == ino));
        Ok(pos.and_then(|i| files.get(i + 1)).map(|(_, p)| p.clone()))
    })
    .await
    .map_err(|_| AuditError::Closed)?
}

async fn file_ino(p: &Path) -> Option<u64> {
    tokio::fs::metadata(p).await.ok().map(|m| m.ino())
}

/// Emits every complete line in `pending` and keeps the unfinished rest.
fn emit_lines(
    pending: &mut Vec<u8>,
    emit: &mut impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), AuditError> {
    let mut start = 0;
    while let Some(i) = pending[start..].iter().position(|&b| b == b'\n') {
        emit(&pending[start..start + i]).map_err(|e| AuditError::io("<output>", "write", e))?;
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
