//! One policy decision on the call path (issue #9: authorization stays in microseconds):
//! - `rbac/*`: the `rbac` stage's `permits` for a principal with roles from its token and a
//!   subject mapping, a cached hit (allowed and denied) and a miss (a target not seen before:
//!   the grants are walked and the decision cached);
//! - `rego/*`: the `rego` stage's `on_request` with `examples/policy/acme.rego` (input document
//!   built, the policy's bytecode run on the session's VM, verdict read), allowed and denied;
//! - `pipeline/rbac+rego`: both stages through `Pipeline::request`, as the session runs them;
//! - `integrity/pin_check`: the whole call question of a pipeline with only the always-present
//!   quarantine stage (the pin check: the catalog's verdict read, the definition's hash copied
//!   into the decision record), for a pinned tool;
//! - `integrity/rule_of_two`: the `rule-of-two` stage through `Pipeline::request` (labels from
//!   the facts and two config globs, the session's held set updated).
//!
//! `cargo bench --bench policy` (about half a minute).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use switchboard::policy::{
    Action, CallRequest, DecisionRecord, Outcome, Pipeline, Principal, StageConfig, Step,
};

const RBAC: &str = r#"
stage: rbac
roles:
  reader:
    - {backends: [notes, "git*"], tools: ["*"], access: read}
  writer:
    - {backends: ["*"], tools: ["*"], prompts: ["*"], resources: ["*"], access: write}
  gh-admin:
    - {backends: [github], tools: ["delete_*", "admin_*"], access: write}
subjects:
  alice: [writer]
"#;

fn stage(yaml: &str) -> StageConfig {
    serde_norway::from_str(yaml).expect("stage config")
}

fn alice() -> Principal {
    Principal {
        subject: Some(Arc::from("alice")),
        roles: ["dev", "eng", "reader", "staff"].map(Arc::from).to_vec(),
        ..Principal::default()
    }
}

fn rego_config() -> StageConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy/acme.rego");
    stage(&format!("stage: rego\npath: {path}\n"))
}

fn rbac(c: &mut Criterion) {
    let s = stage(RBAC).build().expect("rbac");
    let alice = alice();
    let bob = Principal {
        subject: Some(Arc::from("bob")),
        roles: vec![Arc::from("reader")],
        ..Principal::default()
    };
    let write = Action::new("tools/call", "github", "open_pr")
        .with_facts(switchboard::policy::Facts::unknown_tool());
    let mut g = c.benchmark_group("rbac");
    g.bench_function("allow_cached", |b| {
        b.iter(|| black_box(s.permits(black_box(&alice), black_box(&write)).is_ok()))
    });
    g.bench_function("deny_cached", |b| {
        b.iter(|| black_box(s.permits(black_box(&bob), black_box(&write)).is_err()))
    });
    // Fresh names each time: the grants walked, the decision cached (and the cache started over
    // every 16 384 entries).
    let names: Vec<String> = (0..100_000).map(|i| format!("tool_{i}")).collect();
    let mut i = 0;
    g.bench_function("allow_miss", |b| {
        b.iter(|| {
            i = (i + 1) % names.len();
            let a = Action::new("tools/call", "github", &names[i])
                .with_facts(switchboard::policy::Facts::unknown_tool());
            black_box(s.permits(&alice, &a).is_ok())
        })
    });
    g.finish();
}

fn rego(c: &mut Criterion) {
    let s = rego_config().build().expect("rego");
    let alice = alice();
    let mut g = c.benchmark_group("rego");
    // With the session's slot, as the session runs it (its VM and principal object reused).
    let mut slot = s.new_session();
    for (name, repo) in [("allow", "acme/widgets"), ("deny", "evilcorp/widgets")] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut args = json!({"repo": repo, "title": "Fix the build", "draft": false});
                let mut call = CallRequest {
                    principal: &alice,
                    session_id: "0b7e6a0c-5c1d-4f59-9a53-1c2d3e4f5a6b",
                    action: Action::new("tools/call", "github", "open_pr"),
                    arguments: Some(&mut args),
                    policy_revision: None,
                };
                black_box(matches!(
                    s.on_request(&mut call, slot.as_mut()),
                    Step::Continue
                ))
            })
        });
    }
    g.finish();
}

fn pipeline(c: &mut Criterion) {
    let p = Pipeline::from_config(&[stage(RBAC), rego_config()], Vec::new()).expect("pipeline");
    let alice = alice();
    let mut slots = p.new_session();
    c.bench_function("pipeline/rbac+rego", |b| {
        b.iter(|| {
            let mut args = json!({"repo": "acme/widgets", "title": "Fix the build"});
            let mut call = CallRequest {
                principal: &alice,
                session_id: "s",
                action: Action::new("tools/call", "github", "open_pr"),
                arguments: Some(&mut args),
                policy_revision: None,
            };
            let mut record = DecisionRecord::default();
            let out = p.request(&mut call, &mut slots, &mut record);
            black_box(matches!(out, Outcome::Allow))
        })
    });
}

fn integrity(c: &mut Criterion) {
    use switchboard::policy::Facts;
    let pinned = Facts {
        hash: Some(Arc::from(
            "sha256:64bd99bf9a1c91425bae539d8c3450516cd9618ebbb419b9dece6b383488ae3c",
        )),
        ..Facts::plain(false)
    };
    let alice = alice();
    let mut g = c.benchmark_group("integrity");
    let only = Pipeline::from_config(&[], Vec::new()).expect("pipeline");
    let mut slots = only.new_session();
    g.bench_function("pin_check", |b| {
        b.iter(|| {
            let mut call = CallRequest {
                principal: &alice,
                session_id: "s",
                action: Action::new("tools/call", "facts", "get_fact_of_the_day")
                    .with_facts(black_box(&pinned)),
                arguments: None,
                policy_revision: None,
            };
            let mut record = DecisionRecord::default();
            black_box(matches!(
                only.request(&mut call, &mut slots, &mut record),
                Outcome::Allow
            ))
        })
    });
    let r2 = stage(
        "stage: rule-of-two
labels:
  - {backend: web, tools: [fetch], add: [untrusted-input]}
  - {backend: crm, add: [private-data]}
",
    );
    let p = Pipeline::from_config(&[r2], Vec::new()).expect("pipeline");
    let mut slots = p.new_session();
    g.bench_function("rule_of_two", |b| {
        b.iter(|| {
            let mut call = CallRequest {
                principal: &alice,
                session_id: "s",
                action: Action::new("tools/call", "facts", "get_fact_of_the_day")
                    .with_facts(black_box(&pinned)),
                arguments: None,
                policy_revision: None,
            };
            let mut record = DecisionRecord::default();
            black_box(matches!(
                p.request(&mut call, &mut slots, &mut record),
                Outcome::Allow
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, rbac, rego, pipeline, integrity);
criterion_main!(benches);
