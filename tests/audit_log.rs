//! The audit log through the real binary: `audit verify` exit codes, crash durability of the fsync
//! writer under SIGKILL, and `audit tail --follow` across rotations.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use switchboard::policy::DecisionRecord;
use switchboard::telemetry::audit::{
    AuditConfig, AuditDurability, AuditError, AuditHandle, AuditLog, AuditRecord, Break, CallFacts,
    Outcome, log_files, verify,
};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(60);

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_switchboard"))
}

fn config(path: &Path, max_file_bytes: u64) -> AuditConfig {
    AuditConfig {
        path: path.to_path_buf(),
        durability: AuditDurability::Fsync,
        max_file_bytes,
    }
}

fn record(i: u64) -> AuditRecord {
    let decision = DecisionRecord {
        principal: Some("alice".into()),
        backend: Some("notes".into()),
        decision: Some("allow"),
        ..DecisionRecord::default()
    };
    AuditRecord::call(
        &decision,
        &CallFacts {
            session_id: Some("s-1"),
            client_addr: None,
            protocol_version: Some("2026-07-28"),
            method: "tools/call",
            target: Some("notes__search"),
            outcome: Outcome::Ok,
            duration: Duration::from_micros(100 + i),
            trace: None,
        },
    )
}

async fn append(h: &AuditHandle, from: u64, n: u64) {
    for i in from..from + n {
        assert!(h.record(record(i)));
    }
    timeout(WAIT, h.flush()).await.unwrap().unwrap();
}

/// Every seq in the complete lines of `files`.
fn seqs_in(files: &[PathBuf]) -> Vec<u64> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            out.push(v["seq"].as_u64().unwrap());
        }
    }
    out
}

async fn next_seq(lines: &mut Lines<BufReader<ChildStdout>>, what: &str) -> Option<u64> {
    let line = timeout(WAIT, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
        .unwrap()?;
    Some(match line.trim().parse() {
        Ok(seq) => seq,
        Err(_) => serde_json::from_str::<serde_json::Value>(&line).unwrap()["seq"]
            .as_u64()
            .unwrap(),
    })
}

#[tokio::test]
async fn verify_exits_zero_on_an_intact_log_and_one_naming_the_first_broken_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (h, task) = AuditLog::start(config(&path, 4096)).await.unwrap();
    append(&h, 0, 40).await;
    drop(h);
    task.await.unwrap().unwrap();
    let mut files = log_files(&path).unwrap();
    assert!(files.len() >= 3, "{files:?}");

    // Given in reverse (as a glob might), the CLI still verifies in chain order.
    files.reverse();
    let out = std::process::Command::new(bin())
        .arg("audit")
        .arg("verify")
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("40 records, chain intact"), "{stdout}");

    let first = dir.path().join("audit.jsonl.1");
    let text = std::fs::read_to_string(&first).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let tampered = lines[6].replace("\"alice\"", "\"mallory\"");
    lines[6] = &tampered;
    std::fs::write(&first, lines.join("\n") + "\n").unwrap();
    let out = std::process::Command::new(bin())
        .arg("audit")
        .arg("verify")
        .args(&files)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("audit.jsonl.1:7 (seq 7): hash mismatch"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_fsync_writer_killed_mid_stream_keeps_every_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut child = Command::new(bin())
        .args(["audit", "selftest-writer"])
        .arg(&path)
        .args(["1000000", "--concurrency", "8", "--max-file-bytes", "65536"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = BTreeSet::new();
    while acked.len() < 400 {
        let seq = next_seq(&mut lines, "acknowledged seq").await;
        acked.insert(seq.expect("the writer exited before it was killed"));
    }
    child.kill().await.unwrap(); // SIGKILL
    // Seqs printed before the kill may still be in the pipe.
    while let Some(seq) = next_seq(&mut lines, "end of output").await {
        acked.insert(seq);
    }

    let files = log_files(&path).unwrap();
    assert!(files.len() >= 2, "rotation under load: {files:?}");
    match verify(&files) {
        Ok(_) => {}
        // Only the very last line may be cut short by the kill.
        Err(AuditError::Broken {
            file,
            problem: Break::Truncated,
            ..
        }) => assert_eq!(Some(&file), files.last()),
        Err(e) => panic!("{e}"),
    }
    let on_disk: BTreeSet<u64> = seqs_in(&files).into_iter().collect();
    let lost: Vec<_> = acked.difference(&on_disk).collect();
    assert!(lost.is_empty(), "acknowledged but not on disk: {lost:?}");

    // A restart resumes the chain and the whole log verifies.
    let (h, task) = AuditLog::start(config(&path, 65536)).await.unwrap();
    let seq = timeout(WAIT, h.record_durable(record(0)))
        .await
        .unwrap()
        .unwrap();
    drop(h);
    task.await.unwrap().unwrap();
    let report = verify(&log_files(&path).unwrap()).unwrap();
    assert_eq!(report.last_seq, Some(seq));
    assert!(seq > *on_disk.iter().max().unwrap());
}

#[tokio::test]
async fn tail_follow_prints_appended_records_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (h, task) = AuditLog::start(config(&path, 2048)).await.unwrap();
    append(&h, 0, 3).await;
    let mut tail = Command::new(bin())
        .args(["audit", "tail", "--follow"])
        .arg(&path)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.extend(next_seq(&mut lines, "existing record").await);
    }
    // Several rotations between two polls of the tail must not skip a file.
    append(&h, 3, 30).await;
    assert!(log_files(&path).unwrap().len() >= 4);
    while seen.len() < 33 {
        seen.extend(next_seq(&mut lines, "appended record").await);
    }
    assert_eq!(seen, (1..=33).collect::<Vec<_>>());
    tail.kill().await.unwrap();
    drop(h);
    task.await.unwrap().unwrap();
}
