use std::path::{Path, PathBuf};
use std::time::Duration;

use super::chain::{encode, sha256_hex};
use super::*;
use crate::policy::DecisionRecord;

const WAIT: Duration = Duration::from_secs(10);

fn cfg(path: &Path, durability: AuditDurability, max_file_bytes: u64) -> AuditConfig {
    AuditConfig {
        path: path.to_path_buf(),
        durability,
        max_file_bytes,
    }
}

fn opts(instance: &str) -> AuditOptions {
    AuditOptions {
        instance_id: Some(instance.into()),
        ..AuditOptions::default()
    }
}

fn call(principal: &str, i: u64) -> AuditRecord {
    let decision = DecisionRecord {
        principal: Some(principal.into()),
        roles: vec!["dev".into()],
        backend: Some("notes".into()),
        original_name: Some("search".into()),
        decision: Some(if i.is_multiple_of(3) { "deny" } else { "allow" }),
        deny_rule: (i.is_multiple_of(3)).then(|| "rbac:no-notes".to_string()),
        policy_revision: Some("r7".into()),
        ..DecisionRecord::default()
    };
    AuditRecord::call(
        &decision,
        &CallFacts {
            session_id: Some("sess-1"),
            client_addr: Some([127, 0, 0, 1].into()),
            protocol_version: Some("2025-11-25"),
            method: "tools/call",
            target: Some("notes__search"),
            outcome: Outcome::Ok,
            duration: Duration::from_micros(1234 + i),
            trace: None,
        },
    )
}

/// Writes `n` records by `principal` and stops the writer (which syncs on the way out).
async fn write_log(path: &Path, n: u64, max: u64, instance: &str) -> AuditStats {
    let (h, task) = AuditLog::start_with(cfg(path, AuditDurability::Fsync, max), opts(instance))
        .await
        .unwrap();
    for i in 0..n {
        assert!(h.record(call("alice", i)));
    }
    tokio::time::timeout(WAIT, h.flush())
        .await
        .unwrap()
        .unwrap();
    drop(h);
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

fn verify1(path: &Path) -> Result<VerifyReport, AuditError> {
    verify(&[path.to_path_buf()])
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn broken(e: AuditError) -> (PathBuf, u64, Option<u64>, Break) {
    match e {
        AuditError::Broken {
            file,
            line,
            seq,
            problem,
        } => (file, line, seq, problem),
        other => panic!("expected a broken chain, got {other}"),
    }
}

/// Rewrites a line as a forger would: change the record, recompute its own hash, keep its `prev`.
fn forge(line: &str, change: impl FnOnce(&mut AuditRecord)) -> String {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let prev = v["prev"].as_str().unwrap().to_string();
    let mut rec: AuditRecord = serde_json::from_value(v).unwrap();
    change(&mut rec);
    let mut out = Vec::new();
    encode(&rec, &prev, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn chain_round_trip_and_line_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let stats = write_log(&path, 10, 1 << 20, "gw-1").await;
    assert_eq!(stats.records_written, 10);
    assert!(stats.fsyncs >= 1 && stats.batches >= 1, "{stats:?}");

    let report = verify1(&path).unwrap();
    assert_eq!(report.records, 10);
    assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(10)));
    assert!(report.starts_new_chain);
    assert_eq!(
        report.to_string().split(" (").next(),
        Some("10 records, chain intact")
    );

    let ls = lines(&path);
    assert_eq!(
        report.last_line_hash.as_deref(),
        Some(sha256_hex(ls[9].as_bytes()).as_str())
    );
    let mut prev = GENESIS.to_string();
    for (i, l) in ls.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["seq"], i as u64 + 1);
        assert_eq!(v["prev"], prev.as_str(), "line {}", i + 1);
        // Canonical: sorted keys, compact, `hash` appended last.
        assert!(l.starts_with("{\"backend\":\"notes\","), "{l}");
        assert!(l.contains(",\"hash\":\"") && l.ends_with("\"}"), "{l}");
        assert!(!l.contains(": ") && !l.contains("arguments"), "{l}");
        prev = sha256_hex(l.as_bytes());
    }
    let first: AuditRecord = serde_json::from_str(&ls[0]).unwrap();
    assert_eq!(first.instance.as_deref(), Some("gw-1"));
    assert_eq!(first.decision, Some(Decision::Deny));
    assert_eq!(first.deny_rule.as_deref(), Some("rbac:no-notes"));
    assert_eq!(first.outcome, Some(Outcome::Ok));
    assert_eq!(first.duration_ms, Some(1.234));
    let v: serde_json::Value = serde_json::from_str(&ls[0]).unwrap();
    let time = v["time"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.ends_with('Z') && time.as_bytes()[19] == b'.',
        "{time}"
    );
    assert_eq!(v["client_addr"], "127.0.0.1");
    assert_eq!(v["roles"], serde_json::json!(["dev"]));
}

#[tokio::test]
async fn tampering_with_a_field_names_that_record_and_a_forged_hash_breaks_the_next_link() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_log(&path, 10, 1 << 20, "gw").await;
    let good = lines(&path);

    let mut ls = good.clone();
    ls[4] = ls[4].replace("\"alice\"", "\"mallory\"");
    assert_ne!(ls[4], good[4]);
    write_lines(&path, &ls);
    let (file, line, seq, problem) = broken(verify1(&path).unwrap_err());
    assert_eq!(
        (file, line, seq, problem),
        (path.clone(), 5, Some(5), Break::HashMismatch)
    );

    let mut ls = good.clone();
    ls[4] = forge(&ls[4], |r| r.principal = Some("mallory".into()));
    write_lines(&path, &ls);
    let (_, line, seq, problem) = broken(verify1(&path).unwrap_err());
    assert_eq!((line, seq, problem), (6, Some(6), Break::BrokenLink));
}

#[tokio::test]
async fn deleting_reordering_or_duplicating_lines_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_log(&path, 10, 1 << 20, "gw").await;
    let good = lines(&path);

    let mut ls = good.clone();
    ls.remove(4);
    write_lines(&path, &ls);
    let e = verify1(&path).unwrap_err();
    assert!(e.to_string().contains("missing record"), "{e}");
    let (_, line, seq, problem) = broken(e);
    assert_eq!(
        (line, seq, problem),
        (
            5,
            Some(6),
            Break::MissingRecord {
                expected: 5,
                found: 6
            }
        )
    );

    let mut ls = good.clone();
    ls.swap(3, 4);
    write_lines(&path, &ls);
    let (_, line, seq, _) = broken(verify1(&path).unwrap_err());
    assert_eq!((line, seq), (4, Some(5)));

    let mut ls = good.clone();
    ls.insert(5, ls[4].clone());
    write_lines(&path, &ls);
    let (_, line, _, problem) = broken(verify1(&path).unwrap_err());
    assert_eq!(
        (line, problem),
        (
            6,
            Break::OutOfOrder {
                expected: 6,
                found: 5
            }
        )
    );

    // Deleting the first record: the chain no longer starts at genesis, which the report says.
    let ls = good[1..].to_vec();
    write_lines(&path, &ls);
    assert!(!verify1(&path).unwrap().starts_new_chain);

    let mut ls = good.clone();
    ls[2] = "not json".into();
    write_lines(&path, &ls);
    let (_, line, seq, problem) = broken(verify1(&path).unwrap_err());
    assert_eq!((line, seq), (3, None));
    assert!(matches!(problem, Break::Unparsable(_)), "{problem}");
}

#[tokio::test]
async fn rotation_keeps_the_chain_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_log(&path, 40, 2048, "gw").await;
    let files = log_files(&path).unwrap();
    assert!(files.len() >= 4, "{files:?}");
    assert_eq!(files.last(), Some(&path));
    assert_eq!(files[0], dir.path().join("audit.jsonl.1"));
    for f in &files {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= 2048 && len > 0, "{} is {len} bytes", f.display());
    }
    let report = verify(&files).unwrap();
    assert_eq!((report.records, report.files), (40, files.len()));

    let (a, b) = (lines(&files[0]), lines(&files[1]));
    let v: serde_json::Value = serde_json::from_str(&b[0]).unwrap();
    assert_eq!(v["prev"], sha256_hex(a.last().unwrap().as_bytes()).as_str());

    // Later files alone verify (older ones archived), but not out of order or with a gap.
    let report = verify(&files[1..]).unwrap();
    assert!(!report.starts_new_chain);
    let mut swapped = files.clone();
    swapped.swap(0, 1);
    let (file, line, _, _) = broken(verify(&swapped).unwrap_err());
    assert_eq!((file, line), (files[0].clone(), 1));
    let gap = [files[0].clone(), files[2].clone()];
    let (_, _, _, problem) = broken(verify(&gap).unwrap_err());
    assert!(matches!(problem, Break::MissingRecord { .. }), "{problem}");

    // The CLI's ordering copes with `.10` sorting before `.2` in a glob.
    let names = ["a.jsonl", "a.jsonl.10", "a.jsonl.2", "a.jsonl.1"].map(PathBuf::from);
    assert_eq!(
        order_files(names.to_vec()),
        ["a.jsonl.1", "a.jsonl.2", "a.jsonl.10", "a.jsonl"].map(PathBuf::from)
    );
}

#[tokio::test]
async fn a_restart_continues_seq_and_prev() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/audit.jsonl");
    write_log(&path, 5, 1 << 20, "first").await;
    write_log(&path, 5, 1 << 20, "second").await;
    let report = verify1(&path).unwrap();
    assert_eq!((report.records, report.last_seq), (10, Some(10)));
    assert!(report.chain_restarts.is_empty());
    let sixth: AuditRecord = serde_json::from_str(&lines(&path)[5]).unwrap();
    assert_eq!((sixth.seq, sixth.instance.as_deref()), (6, Some("second")));

    // A crash between rotating and writing the new file leaves no active file: resume from `.N`.
    std::fs::rename(&path, dir.path().join("logs/audit.jsonl.1")).unwrap();
    write_log(&path, 3, 1 << 20, "third").await;
    let report = verify(&log_files(&path).unwrap()).unwrap();
    assert_eq!(
        (report.records, report.last_seq, report.files),
        (13, Some(13), 2)
    );
}

#[tokio::test]
async fn a_truncated_last_line_is_cut_and_a_chain_restart_marker_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_log(&path, 5, 1 << 20, "gw").await;
    let partial = "{\"backend\":\"notes\",\"decision\":\"al";
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(partial);
    std::fs::write(&path, &text).unwrap();
    let (_, line, seq, problem) = broken(verify1(&path).unwrap_err());
    assert_eq!((line, seq, problem), (6, None, Break::Truncated));

    write_log(&path, 1, 1 << 20, "gw").await;
    let report = verify1(&path).unwrap();
    assert_eq!(
        (report.records, report.chain_restarts.clone()),
        (7, vec![6])
    );
    let ls = lines(&path);
    let marker: AuditRecord = serde_json::from_str(&ls[5]).unwrap();
    assert_eq!(marker.kind, RecordKind::ChainRestart);
    let note = marker.note.unwrap();
    assert!(
        note.contains("truncated") && note.contains(&format!("{} bytes", partial.len())),
        "{note}"
    );
    assert!(!std::fs::read_to_string(&path).unwrap().contains(partial));
    let seventh: AuditRecord = serde_json::from_str(&ls[6]).unwrap();
    assert_eq!((seventh.seq, seventh.kind), (7, RecordKind::Call));
}

#[tokio::test]
async fn a_corrupt_last_complete_record_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_log(&path, 3, 1 << 20, "gw").await;
    let mut ls = lines(&path);
    ls[2] = ls[2].replace("alice", "eve");
    write_lines(&path, &ls);
    let e = AuditLog::start(cfg(&path, AuditDurability::Fsync, 1 << 20))
        .await
        .unwrap_err();
    assert!(matches!(e, AuditError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("seq 3"), "{e}");
}

#[tokio::test]
async fn record_durable_resolves_once_the_record_is_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for durability in [
        AuditDurability::Fsync,
        AuditDurability::Interval(Duration::from_millis(20)),
    ] {
        let path = dir.path().join(format!("{durability:?}.jsonl"));
        let (h, task) = AuditLog::start(cfg(&path, durability, 1 << 20))
            .await
            .unwrap();
        for expected in 1..=3 {
            let seq = tokio::time::timeout(WAIT, h.record_durable(call("bob", expected)))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(seq, expected);
            assert_eq!(lines(&path).len() as u64, expected);
        }
        let stats = h.stats();
        assert_eq!((stats.records_written, stats.dropped), (3, 0));
        assert!(stats.fsyncs >= 3, "{durability:?}: {stats:?}");
        drop(h);
        tokio::time::timeout(WAIT, task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let options = AuditOptions {
        channel_capacity: 2,
        ..opts("gw")
    };
    let (h, task) = AuditLog::start_with(cfg(&path, AuditDurability::Fsync, 1 << 20), options)
        .await
        .unwrap();
    // This current-thread test never yields here, so the writer cannot drain the queue.
    let accepted = (0..100).filter(|&i| h.record(call("carol", i))).count();
    assert_eq!((accepted, h.dropped()), (2, 98));
    tokio::time::timeout(WAIT, h.flush())
        .await
        .unwrap()
        .unwrap();
    drop(h);
    let stats = tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((stats.records_written, stats.dropped), (2, 98));
    assert_eq!(verify(&[path]).unwrap().records, 2);
}

#[test]
fn outcomes_serialize_like_otel_error_type() {
    for (o, s) in [
        (Outcome::Ok, "\"ok\""),
        (Outcome::ToolError, "\"tool_error\""),
        (Outcome::Error(-32602), "\"-32602\""),
    ] {
        assert_eq!(serde_json::to_string(&o).unwrap(), s);
        assert_eq!(serde_json::from_str::<Outcome>(s).unwrap(), o);
    }
    assert!(serde_json::from_str::<Outcome>("\"maybe\"").is_err());
}

/// Enqueue cost on the request path: build a record from a `DecisionRecord` and `record()` it.
/// `cargo test --release --lib telemetry::audit::tests::enqueue_cost -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, not a check"]
fn enqueue_cost() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let interval = AuditDurability::Interval(Duration::from_millis(50));
    let (h, task) = rt
        .block_on(AuditLog::start_with(
            cfg(&path, interval, 1 << 30),
            opts("gw"),
        ))
        .unwrap();
    let n = 200_000u64;
    let decision = DecisionRecord {
        principal: Some("alice".into()),
        roles: vec!["dev".into()],
        backend: Some("notes".into()),
        original_name: Some("search".into()),
        decision: Some("allow"),
        policy_revision: Some("r7".into()),
        ..DecisionRecord::default()
    };
    let facts = CallFacts {
        session_id: Some("0195f6c2-7c1e-7d2a-9b1e-3f4a5b6c7d8e"),
        client_addr: Some([127, 0, 0, 1].into()),
        protocol_version: Some("2025-11-25"),
        method: "tools/call",
        target: Some("notes__search"),
        outcome: Outcome::Ok,
        duration: Duration::from_micros(900),
        trace: None,
    };
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(AuditRecord::call(&decision, &facts));
    }
    let build = t.elapsed();
    // Enqueue from a runtime task, as the session actors will, in bursts of 1000 that the
    // writer drains in between (so the queue stays short and its blocks are reused, as in service).
    let h2 = h.clone();
    let (d, f) = (decision.clone(), facts);
    let t = std::time::Instant::now();
    let enqueue = rt
        .block_on(rt.spawn(async move {
            let mut spent = Duration::ZERO;
            for _ in 0..n / 1000 {
                let t = std::time::Instant::now();
                for _ in 0..1000 {
                    h2.record(AuditRecord::call(&d, &f));
                }
                spent += t.elapsed();
                h2.flush().await.unwrap();
            }
            spent
        }))
        .unwrap();
    let total = t.elapsed();
    let stats = h.stats();
    drop(h);
    rt.block_on(task).unwrap().unwrap();
    println!(
        "AuditRecord::call alone: {:.0} ns; enqueue (AuditRecord::call + record, from a runtime task): {:.0} ns/record; writer throughput {:.0} records/s (one fsync per 1000) over {} batches; dropped {}",
        build.as_nanos() as f64 / n as f64,
        enqueue.as_nanos() as f64 / n as f64,
        stats.records_written as f64 / total.as_secs_f64(),
        stats.batches,
        stats.dropped
    );

    // Durable latency: one record_durable at a time in fsync mode (one fsync per record).
    let path = dir.path().join("durable.jsonl");
    let (h, task) = rt
        .block_on(AuditLog::start(cfg(&path, AuditDurability::Fsync, 1 << 30)))
        .unwrap();
    let n = 200u32;
    let t = std::time::Instant::now();
    for _ in 0..n {
        rt.block_on(h.record_durable(AuditRecord::call(&decision, &facts)))
            .unwrap();
    }
    let per = t.elapsed() / n;
    let stats = h.stats();
    drop(h);
    rt.block_on(task).unwrap().unwrap();
    println!(
        "record_durable (fsync, one at a time): {per:?}/record; last fsync {:?}",
        stats.last_fsync
    );
}
