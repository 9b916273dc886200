//! The `switchboard audit …` commands: verify, tail, and the hidden crash-test writer.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::cli::AuditCommand;
use crate::policy::DecisionRecord;

use super::{
    AuditConfig, AuditDurability, AuditError, AuditLog, AuditRecord, CallFacts, Outcome,
    order_files, tail, verify,
};

const TAIL_POLL: Duration = Duration::from_millis(200);

/// Runs one `audit` subcommand. A broken chain is an error (exit status 1).
pub async fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify { files } => {
            let files = order_files(files);
            let report = tokio::task::spawn_blocking(move || verify(&files)).await??;
            println!("{report}");
            Ok(())
        }
        AuditCommand::Tail { follow, file } => {
            let mut out = std::io::stdout().lock();
            let tailed = tail(&file, follow, TAIL_POLL, |line| {
                out.write_all(line)?;
                out.write_all(b"\n")?;
                out.flush()
            })
            .await;
            match tailed {
                // The reader went away (`| head`): done, not an error.
                Err(AuditError::Io { error, .. })
                    if error.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    Ok(())
                }
                other => Ok(other?),
            }
        }
        AuditCommand::SelftestWriter {
            file,
            count,
            concurrency,
            max_file_bytes,
        } => selftest_writer(file, count, concurrency, max_file_bytes).await,
    }
}

/// Appends `count` records in `fsync` mode from `concurrency` tasks, printing each seq only after
/// `record_durable` resolved (for the crash test).
async fn selftest_writer(
    path: PathBuf,
    count: u64,
    concurrency: usize,
    max_file_bytes: u64,
) -> anyhow::Result<()> {
    let (handle, task) = AuditLog::start(AuditConfig {
        path,
        durability: AuditDurability::Fsync,
        max_file_bytes,
    })
    .await?;
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (handle, next) = (handle.clone(), next.clone());
        workers.spawn(async move {
            let decision = DecisionRecord {
                principal: Some("selftest".into()),
                backend: Some("selftest".into()),
                decision: Some("allow"),
                ..DecisionRecord::default()
            };
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let facts = CallFacts {
                    session_id: Some("selftest"),
                    client_addr: None,
                    protocol_version: None,
                    method: "tools/call",
                    target: Some("selftest__echo"),
                    outcome: Outcome::Ok,
                    duration: Duration::from_micros(1),
                    trace: None,
                };
                let seq = handle
                    .record_durable(AuditRecord::call(&decision, &facts))
                    .await?;
                let mut out = std::io::stdout().lock();
                writeln!(out, "{seq}")?;
                out.flush()?;
            }
            anyhow::Ok(())
        });
    }
    drop(handle);
    while let Some(r) = workers.join_next().await {
        r??;
    }
    task.await??;
    Ok(())
}
