#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The tool-poisoning corpus: every definition under `tests/fixtures/poisoning/poisoned` must be
//! caught (a finding of medium or high, and every rule its `expect` names), every definition under
//! `tests/fixtures/poisoning/benign` (the real reference servers' tools and prompts plus
//! hand-written ones) must stay at low. Run with `--nocapture` to see the table for the README, and with
//! `SCAN_CORPUS_VERBOSE=1` to see every case's findings.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use switchboard::integrity::scan::{DefKind, Finding, RULES, ScanConfig, Scanner, Severity};

struct Case {
    file: String,
    source: String,
    kind: DefKind,
    expect: Vec<String>,
    def: Map<String, Value>,
}

fn fixtures(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/poisoning")
        .join(sub)
}

fn load(sub: &str) -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let kind = match v.get("kind").and_then(Value::as_str).unwrap_or("tool") {
                "tool" => DefKind::Tool,
                "prompt" => DefKind::Prompt,
                "resourceTemplate" => DefKind::ResourceTemplate,
                other => panic!("{}: unknown kind {other}", path.display()),
            };
            Case {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                source: v["source"]
                    .as_str()
                    .expect("every fixture names its source")
                    .to_owned(),
                kind,
                expect: v
                    .get("expect")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|r| r.as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default(),
                def: v["definition"]
                    .as_object()
                    .expect("a definition object")
                    .clone(),
            }
        })
        .collect()
}

fn dump(case: &Case, findings: &[Finding]) -> String {
    let mut s = format!("  {} ({})\n", case.file, case.source);
    if findings.is_empty() {
        s.push_str("    (no findings)\n");
    }
    for f in findings {
        s.push_str(&format!(
            "    {:?} {} at {} {:?}: {} | {}\n",
            f.severity, f.rule, f.pointer, f.span, f.excerpt, f.message
        ));
    }
    s
}

/// Per rule: poisoned cases it caught at medium or high, benign cases it touched at low, benign
/// cases it raised above low.
#[derive(Default)]
struct RuleCount {
    poisoned: usize,
    benign_low: usize,
    benign_high: usize,
}

#[test]
fn corpus_is_detected_without_false_positives() {
    let scanner = Scanner::new(&ScanConfig::default()).unwrap();
    let poisoned = load("poisoned");
    let benign = load("benign");
    assert!(poisoned.len() >= 25, "at least 25 poisoned cases");
    assert!(benign.len() >= 40, "at least 40 benign cases");

    // In the order of RULES (the rule list), for the README.
    let mut counts: Vec<(&str, RuleCount)> =
        RULES.iter().map(|r| (*r, RuleCount::default())).collect();
    let mut failures = String::new();
    let mut detected = 0;
    for case in &poisoned {
        for rule in &case.expect {
            assert!(
                RULES.contains(&rule.as_str()),
                "{}: unknown rule {rule}",
                case.file
            );
        }
        let findings = scanner.scan(case.kind, &case.def);
        let caught = findings.iter().any(|f| f.severity >= Severity::Medium);
        let missing: Vec<&String> = case
            .expect
            .iter()
            .filter(|r| !findings.iter().any(|f| f.rule == r.as_str()))
            .collect();
        if caught {
            detected += 1;
        }
        for rule in RULES {
            if findings
                .iter()
                .any(|f| f.rule == *rule && f.severity >= Severity::Medium)
            {
                counts
                    .iter_mut()
                    .find(|(r, _)| r == rule)
                    .unwrap()
                    .1
                    .poisoned += 1;
            }
        }
        if std::env::var_os("SCAN_CORPUS_VERBOSE").is_some() {
            print!("poisoned:\n{}", dump(case, &findings));
        }
        if !caught || !missing.is_empty() {
            failures.push_str(&format!(
                "missed (caught: {caught}, missing rules: {missing:?}):\n"
            ));
            failures.push_str(&dump(case, &findings));
        }
    }
    let mut false_positives = 0;
    for case in &benign {
        let findings = scanner.scan(case.kind, &case.def);
        for rule in RULES {
            let of_rule = findings.iter().filter(|f| f.rule == *rule);
            if of_rule.clone().any(|f| f.severity > Severity::Low) {
                counts
                    .iter_mut()
                    .find(|(r, _)| r == rule)
                    .unwrap()
                    .1
                    .benign_high += 1;
            } else if of_rule.count() > 0 {
                counts
                    .iter_mut()
                    .find(|(r, _)| r == rule)
                    .unwrap()
                    .1
                    .benign_low += 1;
            }
        }
        if std::env::var_os("SCAN_CORPUS_VERBOSE").is_some() && !findings.is_empty() {
            print!("benign:\n{}", dump(case, &findings));
        }
        if findings.iter().any(|f| f.severity > Severity::Low) {
            false_positives += 1;
            failures.push_str("false positive:\n");
            failures.push_str(&dump(case, &findings));
        }
    }

    println!("\n| corpus | cases | detected (medium or high) | false positives (above low) |");
    println!("|---|---:|---:|---:|");
    println!("| poisoned | {} | {detected} | – |", poisoned.len());
    println!("| benign | {} | – | {false_positives} |", benign.len());
    println!("\n| rule | poisoned cases caught | benign cases at low | benign cases above low |");
    println!("|---|---:|---:|---:|");
    for (rule, c) in &counts {
        println!(
            "| `{rule}` | {} | {} | {} |",
            c.poisoned, c.benign_low, c.benign_high
        );
    }
    assert!(failures.is_empty(), "\n{failures}");
}

#[test]
fn lookalike_read_file_next_to_the_real_one_is_flagged() {
    let scanner = Scanner::new(&ScanConfig::default()).unwrap();
    // Every real tool name of the three reference servers, plus the Cyrillic lookalike.
    let benign = load("benign");
    let mut names: Vec<(String, String)> = benign
        .iter()
        .filter(|c| c.kind == DefKind::Tool)
        .map(|c| {
            let backend = c.file.split('-').next().unwrap().to_owned();
            (backend, c.def["name"].as_str().unwrap().to_owned())
        })
        .collect();
    assert!(names.contains(&("filesystem".to_owned(), "read_file".to_owned())));
    names.push(("lookalike".to_owned(), "re\u{430}d_file".to_owned()));
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .map(|(b, n)| (b.as_str(), n.as_str()))
        .collect();

    let hits = scanner.confusables(&pairs);
    let flagged: Vec<&str> = hits.iter().map(|(i, _)| pairs[*i].1).collect();
    assert_eq!(flagged, ["re\u{430}d_file"], "{hits:#?}");
    let (_, finding) = &hits[0];
    assert_eq!(finding.rule, "confusable-name");
    assert_eq!(finding.severity, Severity::High);
    assert_eq!(finding.pointer, "/name");
    assert!(finding.message.contains("read_file"), "{}", finding.message);
}
