use std::sync::Arc;

use serde_json::{Value as Json, json};

use super::*;
use crate::policy::{Action, Deny};
use crate::protocol::methods;

const ACME: &str = include_str!("../../../examples/policy/acme.rego");

fn who(subject: Option<&str>) -> Principal {
    Principal {
        subject: subject.map(Arc::from),
        ..Principal::default()
    }
}

/// A policy file in its own directory (kept alive by the returned guard).
fn policy_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.rego");
    std::fs::write(&path, text).expect("write policy");
    (dir, path)
}

fn load(path: &Path, query: Option<&str>) -> Rego {
    Rego::load(&Config {
        path: path.to_path_buf(),
        query: query.map_or_else(default_query, str::to_string),
    })
    .expect("policy loads")
}

/// Runs one `tools/call` through the stage: the refusal, if any, and the revision it used.
fn call(
    stage: &Rego,
    p: &Principal,
    backend: &str,
    tool: &str,
    mut args: Json,
) -> (Result<(), Deny>, Option<Arc<str>>) {
    let mut c = CallRequest {
        principal: p,
        session_id: "s-1",
        action: Action::new(methods::TOOLS_CALL, backend, tool),
        arguments: Some(&mut args),
        policy_revision: None,
    };
    let outcome = match stage.on_request(&mut c, None) {
        Step::Continue => Ok(()),
        Step::Deny(d) => Err(d),
        Step::Wait(_) => panic!("rego decides inline"),
    };
    (outcome, c.policy_revision)
}

fn acme() -> (tempfile::TempDir, Rego) {
    let (dir, path) = policy_file(ACME);
    (dir, load(&path, None))
}

#[test]
fn alice_may_open_pull_requests_only_in_acme() {
    let (_d, stage) = acme();
    let alice = who(Some("alice"));
    let (allowed, revision) = call(
        &stage,
        &alice,
        "github",
        "open_pr",
        json!({"repo": "acme/x"}),
    );
    assert_eq!(allowed, Ok(()));
    assert_eq!(
        revision.as_deref(),
        Some(&*stage.revision()),
        "the record names the revision"
    );
    assert_eq!(stage.revision().len(), 12);

    let (denied, _) = call(
        &stage,
        &alice,
        "github",
        "open_pr",
        json!({"repo": "evilcorp/x"}),
    );
    let d = denied.expect_err("another org");
    assert_eq!(d.rule, "deny");
    assert_eq!(
        d.message,
        r#"Denied by policy: alice may open pull requests only in org acme, not in "evilcorp""#
    );
    assert_eq!(d.data, Some(json!({"policyRevision": &*stage.revision()})));

    let (denied, _) = call(
        &stage,
        &who(Some("bob")),
        "github",
        "open_pr",
        json!({"repo": "acme/x"}),
    );
    assert_eq!(
        denied.expect_err("bob").message,
        "Denied by policy: only alice may open pull requests"
    );
    let (denied, _) = call(
        &stage,
        &who(None),
        "github",
        "open_pr",
        json!({"repo": "acme/x"}),
    );
    assert!(denied.is_err(), "anonymous is not alice");
}

#[test]
fn the_example_refuses_malformed_repos_and_leaves_other_calls_alone() {
    let (_d, stage) = acme();
    let alice = who(Some("alice"));
    for args in [
        json!({}),
        json!({"repo": 7}),
        json!({"repo": "acme"}),
        json!({"repo": "/acme/x"}),
    ] {
        let (denied, _) = call(&stage, &alice, "github", "open_pr", args.clone());
        assert!(
            denied.is_err_and(|d| d.message.contains("org/name")),
            "{args} must not pass"
        );
    }
    // Not about open_pr on github: this policy does not govern it.
    assert_eq!(
        call(&stage, &who(Some("bob")), "github", "list_prs", json!({})).0,
        Ok(())
    );
    assert_eq!(
        call(&stage, &who(Some("bob")), "gitlab", "open_pr", json!({})).0,
        Ok(())
    );
}

#[test]
fn listing_is_left_to_rbac() {
    let (_d, stage) = acme();
    let listing = Action::new(methods::TOOLS_LIST, "github", "open_pr");
    assert!(stage.permits(&who(Some("bob")), &listing).is_ok());
}

#[test]
fn a_broken_policy_on_reload_is_refused_and_the_old_one_keeps_deciding() {
    let (_d, path) = policy_file(ACME);
    let stage = load(&path, None);
    let first = stage.revision();
    std::fs::write(
        &path,
        "package switchboard\n\ndecision := {\"allow\": true} if {\n",
    )
    .expect("write");
    let e = stage.reload().expect_err("does not compile");
    assert_eq!(e.kept, first);
    assert!(e.rejected.as_ref().is_some_and(|r| *r != first));
    assert!(
        e.error.contains("policy.rego"),
        "the error names the file: {}",
        e.error
    );
    assert!(
        e.to_string()
            .contains(&format!("revision {first} stays in force"))
    );
    // Asked again (a poll): the same refusal, and still the old policy.
    assert_eq!(stage.reload().expect_err("still broken"), e);
    assert_eq!(stage.revision(), first);
    let alice = who(Some("alice"));
    let (allowed, revision) = call(
        &stage,
        &alice,
        "github",
        "open_pr",
        json!({"repo": "acme/x"}),
    );
    assert_eq!((allowed, revision), (Ok(()), Some(first.clone())));
    let (denied, _) = call(&stage, &alice, "github", "open_pr", json!({"repo": "x/y"}));
    assert!(denied.is_err());
}

#[test]
fn a_good_policy_on_reload_takes_over_with_a_new_revision() {
    let (_d, path) = policy_file(ACME);
    let stage = load(&path, None);
    let first = stage.revision();
    assert_eq!(
        stage.reload(),
        Ok(Reloaded::Unchanged {
            revision: first.clone()
        })
    );
    let frozen = ACME.replace(
        "default decision := {\"allow\": true, \"reason\": \"not governed by this policy\"}",
        "default decision := {\"allow\": false, \"reason\": \"change freeze\"}",
    );
    assert_ne!(frozen, ACME);
    std::fs::write(&path, frozen).expect("write");
    let Ok(Reloaded::Loaded { previous, revision }) = stage.reload() else {
        panic!("the new policy loads");
    };
    assert_eq!(previous, first);
    assert_ne!(revision, first);
    assert_eq!(stage.revision(), revision);
    let (denied, used) = call(&stage, &who(Some("bob")), "notes", "search", json!({}));
    assert_eq!(
        denied.expect_err("frozen").message,
        "Denied by policy: change freeze"
    );
    assert_eq!(used, Some(revision));
}

#[test]
fn a_directory_is_one_policy_of_its_rego_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("a.rego"),
        "package switchboard\n\nimport rego.v1\n\ndefault allow := false\n\nallow if data.lib.trusted[input.principal.subject]\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("README.md"), "not a policy {").expect("write");
    let lib = dir.path().join("b.rego");
    std::fs::write(&lib, "package lib\n\ntrusted := {\"alice\"}\n").expect("write");
    let stage = load(dir.path(), Some("data.switchboard.allow"));
    assert_eq!(
        call(&stage, &who(Some("alice")), "notes", "search", json!({})).0,
        Ok(())
    );
    let d = call(&stage, &who(Some("bob")), "notes", "search", json!({}))
        .0
        .expect_err("a plain false");
    assert_eq!(
        d.message,
        "Denied by policy: the policy does not allow this call"
    );
    let before = stage.revision();
    std::fs::write(&lib, "package lib\n\ntrusted := {\"alice\", \"bob\"}\n").expect("write");
    assert!(matches!(stage.reload(), Ok(Reloaded::Loaded { .. })));
    assert_ne!(stage.revision(), before);
    assert_eq!(
        call(&stage, &who(Some("bob")), "notes", "search", json!({})).0,
        Ok(())
    );
}

#[test]
fn the_input_document_carries_who_what_arguments_annotations_session_and_time() {
    let (_d, path) = policy_file(
        r#"package switchboard

import rego.v1

default decision := {"allow": false, "reason": "input mismatch"}

decision := {"allow": true} if {
	input.principal == {"subject": "apikey:ci", "roles": ["dev", "ops"], "scopes": ["mcp"], "via": "api-key"}
	input.method == "tools/call"
	input.backend == "github"
	input.kind == "tool"
	input.tool == "open_pr"
	input.name == "open_pr"
	input.read_only == false
	input.arguments == {"repo": "acme/x", "draft": true, "n": 3}
	input.annotations.destructiveHint == true
	input.session.id == "s-1"
	endswith(input.time.rfc3339, "Z")
	input.time.unix > 1700000000
}
"#,
    );
    let stage = load(&path, None);
    let p = Principal {
        subject: Some(Arc::from("apikey:ci")),
        roles: vec![Arc::from("dev"), Arc::from("ops")],
        scopes: vec![Arc::from("mcp")],
        via: crate::policy::principal::Via::ApiKey,
        ..Principal::default()
    };
    let facts = crate::policy::Facts {
        annotations: Some(
            serde_json::value::to_raw_value(&json!({"destructiveHint": true}))
                .expect("raw")
                .into(),
        ),
        ..crate::policy::Facts::plain(false)
    };
    let run = |args: Json| {
        let mut args = args;
        let mut c = CallRequest {
            principal: &p,
            session_id: "s-1",
            action: Action::new(methods::TOOLS_CALL, "github", "open_pr").with_facts(&facts),
            arguments: Some(&mut args),
            policy_revision: None,
        };
        matches!(stage.on_request(&mut c, None), Step::Continue)
    };
    assert!(run(json!({"repo": "acme/x", "draft": true, "n": 3})));
    assert!(
        !run(json!({"repo": "acme/x", "draft": true, "n": 4})),
        "not vacuous"
    );
}

#[test]
fn an_undefined_or_failing_decision_refuses_the_call() {
    let (_d, path) = policy_file(
        "package switchboard\n\nimport rego.v1\n\ndecision := {\"allow\": true} if input.arguments.ok == true\n\ndecision := {\"allow\": 1 / input.arguments.zero} if input.arguments.divide\n",
    );
    let stage = load(&path, None);
    let p = who(Some("alice"));
    assert_eq!(call(&stage, &p, "b", "t", json!({"ok": true})).0, Ok(()));
    let d = call(&stage, &p, "b", "t", json!({}))
        .0
        .expect_err("undefined");
    assert_eq!(d.rule, "undefined");
    assert!(
        d.message
            .contains("data.switchboard.decision gave no decision"),
        "{}",
        d.message
    );
    let d = call(&stage, &p, "b", "t", json!({"divide": true, "zero": 0}))
        .0
        .expect_err("fails closed");
    assert!(matches!(&*d.rule, "error" | "undefined"), "{}", d.rule);
}

#[test]
fn config_problems_name_the_path_or_the_query() {
    let (_d, path) = policy_file("package switchboard\n\ndecision := {\n");
    let problems = |path: &Path, query: &str| {
        Config {
            path: path.to_path_buf(),
            query: query.into(),
        }
        .problems()
    };
    let p = problems(&path, "data.switchboard.decision");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].0, "path");
    assert!(
        p[0].1.contains("does not compile") && p[0].1.contains("policy.rego"),
        "{}",
        p[0].1
    );
    let missing = problems(Path::new("/nonexistent/policy.rego"), "data.x.y");
    assert!(
        missing[0]
            .1
            .starts_with("cannot read /nonexistent/policy.rego"),
        "{missing:?}"
    );
    assert_eq!(problems(&path, "allow")[0].0, "query");
    let (_e, example) = policy_file(ACME);
    assert!(problems(&example, "data.switchboard.decision").is_empty());
    assert!(
        !problems(&example, "data.switchboard.nothing").is_empty(),
        "a query naming no rule is refused"
    );
    assert!(serde_norway::from_str::<Config>("{path: x, querry: y}").is_err());
}

#[test]
fn the_vm_and_the_interpreter_decide_alike_and_a_sessions_vm_follows_reloads() {
    let (_d, path) = policy_file(ACME);
    let stage = load(&path, None);
    assert!(
        stage.current.load().program.is_some(),
        "the example runs on the VM"
    );
    let mut slot = stage.new_session().expect("a session slot");
    for (subject, repo) in [("alice", "acme/x"), ("alice", "evil/x"), ("bob", "acme/x")] {
        let p = who(Some(subject));
        let mut args = json!({"repo": repo});
        let c = CallRequest {
            principal: &p,
            session_id: "s-1",
            action: Action::new(methods::TOOLS_CALL, "github", "open_pr"),
            arguments: Some(&mut args),
            policy_revision: None,
        };
        let doc = input(&c, principal(&p));
        let policy = stage.current.load();
        let vm = policy.eval(doc.clone(), None).expect("vm");
        let interpreted = policy.compiled.eval_with_input(doc).expect("interpreter");
        assert_eq!(vm, interpreted, "{subject} {repo}");
    }
    let run = |slot: &mut SessionSlot| {
        let p = who(Some("alice"));
        let mut args = json!({"repo": "acme/x"});
        let mut c = CallRequest {
            principal: &p,
            session_id: "s-1",
            action: Action::new(methods::TOOLS_CALL, "github", "open_pr"),
            arguments: Some(&mut args),
            policy_revision: None,
        };
        let step = stage.on_request(&mut c, Some(slot));
        (matches!(step, Step::Continue), c.policy_revision)
    };
    assert_eq!(run(&mut slot), (true, Some(stage.revision())));
    std::fs::write(
        &path,
        ACME.replace("org == \"acme\"", "org == \"acme-corp\""),
    )
    .expect("write");
    assert!(matches!(stage.reload(), Ok(Reloaded::Loaded { .. })));
    assert_eq!(
        run(&mut slot),
        (false, Some(stage.revision())),
        "the session's VM runs the new revision"
    );
}
