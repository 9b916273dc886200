//! One policy decision on the call path (issue #9: authorization stays in microseconds):
//! - `rbac/*`: the `rbac` stage's `permits` for a principal with roles from its token and a
//!   subject mapping, a cached hit (allowed and denied) and a miss (a target not seen before:
//!   the grants are walked and the decision cached);
//! - `rego/*`: the `rego` stage's `on_request` with `examples/policy/acme.rego` (input document
//!   built, the policy's bytecode run on the session's VM, verdict read), allowed and denied;
//! - `pipeline/rbac+rego`: both stages through `Pipeline::request`, as the session runs them.
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

criterion_group!(benches, rbac, rego, pipeline);
criterion_main!(benches);
