use std::sync::Arc;

use super::*;
use crate::protocol::methods;

const CONFIG: &str = r#"
default: deny
roles:
  reader:
    - backends: [notes, "git*"]
      tools: ["*"]
      access: read
  writer:
    - backends: ["*"]
      tools: ["*"]
      prompts: ["*"]
      resources: ["*"]
      access: write
  notes-admin:
    - backends: [notes]
      tools: ["delete_*"]
      access: write
  docs:
    - backends: [notes]
      prompts: ["summarize"]
      resources: ["note://public/*"]
subjects:
  alice: [writer]
  apikey:ci-bot: [reader]
"#;

fn rbac(yaml: &str) -> Rbac {
    Rbac::new(&serde_norway::from_str::<Config>(yaml).expect("config"))
}

fn who(subject: Option<&str>, roles: &[&str]) -> Principal {
    Principal {
        subject: subject.map(Arc::from),
        roles: roles.iter().map(|r| Arc::from(*r)).collect(),
        ..Principal::default()
    }
}

fn tool<'a>(method: &'a str, backend: &'a str, name: &'a str, read_only: bool) -> Action<'a> {
    let facts = if read_only {
        crate::policy::Facts::read()
    } else {
        crate::policy::Facts::unknown_tool()
    };
    Action::new(method, backend, name).with_facts(facts)
}

/// The call and the listing of the same tool get the same answer, always.
fn may_call(s: &Rbac, p: &Principal, backend: &str, name: &str, read_only: bool) -> bool {
    let call = s
        .permits(p, &tool(methods::TOOLS_CALL, backend, name, read_only))
        .is_ok();
    let list = s
        .permits(p, &tool(methods::TOOLS_LIST, backend, name, read_only))
        .is_ok();
    assert_eq!(call, list, "listing and calling {backend}/{name} disagree");
    call
}

#[test]
fn roles_come_from_the_token_and_from_the_subject_mapping() {
    let s = rbac(CONFIG);
    let from_token = who(Some("bob"), &["reader"]);
    assert!(may_call(&s, &from_token, "notes", "search", true));
    let mapped = who(Some("apikey:ci-bot"), &[]);
    assert!(may_call(&s, &mapped, "github", "list_prs", true));
    let alice = who(Some("alice"), &[]);
    assert!(may_call(&s, &alice, "postgres", "drop_table", false));
    // Roles the config does not know grant nothing; neither does an unmapped subject.
    let stranger = who(Some("mallory"), &["admin", "root"]);
    assert!(!may_call(&s, &stranger, "notes", "search", true));
    assert!(!may_call(
        &s,
        &Principal::default(),
        "notes",
        "search",
        true
    ));
}

#[test]
fn read_grants_only_read_only_tools_and_write_implies_read() {
    let s = rbac(CONFIG);
    let reader = who(Some("bob"), &["reader"]);
    assert!(may_call(&s, &reader, "notes", "search", true));
    assert!(!may_call(&s, &reader, "notes", "add_note", false));
    let writer = who(Some("carol"), &["writer"]);
    assert!(may_call(&s, &writer, "notes", "search", true));
    assert!(may_call(&s, &writer, "notes", "add_note", false));
    // Two roles together: reader's reads plus notes-admin's deletes, but not other writes.
    let both = who(Some("dan"), &["notes-admin", "reader"]);
    assert!(may_call(&s, &both, "notes", "delete_page", false));
    assert!(may_call(&s, &both, "notes", "search", true));
    assert!(!may_call(&s, &both, "notes", "add_note", false));
    assert!(!may_call(&s, &both, "github", "delete_repo", false));
}

#[test]
fn backend_and_target_globs_match_as_written() {
    let s = rbac(CONFIG);
    let reader = who(None, &["reader"]);
    assert!(may_call(&s, &reader, "github", "search", true));
    assert!(may_call(&s, &reader, "gitlab", "search", true));
    assert!(!may_call(&s, &reader, "jira", "search", true));
    let docs = who(None, &["docs"]);
    let ok = |a: Action<'_>| s.permits(&docs, &a).is_ok();
    assert!(ok(Action::new(methods::PROMPTS_GET, "notes", "summarize")));
    assert!(ok(Action::new(methods::PROMPTS_LIST, "notes", "summarize")));
    assert!(!ok(Action::new(methods::PROMPTS_GET, "notes", "rewrite")));
    assert!(ok(Action::new(
        methods::RESOURCES_READ,
        "notes",
        "note://public/7"
    )));
    assert!(!ok(Action::new(
        methods::RESOURCES_READ,
        "notes",
        "note://private/7"
    )));
    assert!(
        !ok(tool(methods::TOOLS_CALL, "notes", "search", true)),
        "a grant naming prompts and resources grants no tools"
    );
    // Completing a prompt's argument is asked as that prompt.
    let complete =
        |name| Action::new(methods::COMPLETION_COMPLETE, "notes", name).with_kind(Kind::Prompt);
    assert!(ok(complete("summarize")));
    assert!(!ok(complete("rewrite")));
}

#[test]
fn case_variants_and_look_alike_names_get_no_grant() {
    let s = rbac(
        "roles:\n  deleter:\n    - {backends: [notes], tools: [delete_page], access: write}\n",
    );
    let p = who(None, &["deleter"]);
    assert!(may_call(&s, &p, "notes", "delete_page", false));
    for other in [
        "Delete_page",
        "DELETE_PAGE",
        "delete_pag\u{0435}",  // Cyrillic е
        "del\u{0435}te_page",  // Cyrillic е
        "delete_page\u{200b}", // zero-width space
        "ｄelete_page",        // fullwidth d
        "notes__delete_page",  // the exposed (prefixed) name is not the backend's
        "delete_page ",
    ] {
        assert!(
            !may_call(&s, &p, "notes", other, false),
            "{other:?} must not borrow delete_page's grant"
        );
    }
    assert!(
        !may_call(&s, &p, "Notes", "delete_page", false),
        "backend case"
    );
    // The role name itself is case-sensitive too.
    assert!(!may_call(
        &s,
        &who(None, &["Deleter"]),
        "notes",
        "delete_page",
        false
    ));
}

#[test]
fn the_denial_names_what_was_denied_and_the_rule_but_no_ones_grants() {
    let s = rbac(CONFIG);
    let reader = who(Some("bob"), &["reader"]);
    let d = s
        .permits(
            &reader,
            &tool(methods::TOOLS_CALL, "notes", "delete_page", false),
        )
        .expect_err("a reader cannot delete");
    assert_eq!(d.rule, "no-grant");
    assert_eq!(
        d.message,
        r#"Denied by policy: role set has no grant for tool "delete_page" of backend "notes" (write)"#
    );
    let data = d.data.expect("data").to_string();
    for secret in ["writer", "notes-admin", "alice", "ci-bot"] {
        assert!(
            !data.contains(secret) && !d.message.contains(secret),
            "{secret} leaked"
        );
    }
    let d = s
        .permits(
            &reader,
            &Action::new(methods::RESOURCES_READ, "notes", "note://x"),
        )
        .expect_err("no resource grant");
    assert!(
        d.message
            .ends_with(r#"resource "note://x" of backend "notes" (read)"#),
        "{}",
        d.message
    );
}

#[test]
fn default_allow_opens_only_what_no_role_mentions() {
    let s = rbac(
        "default: allow\nroles:\n  gh:\n    - {backends: [github], tools: ['*'], access: write}\n",
    );
    let nobody = who(Some("eve"), &[]);
    assert!(
        may_call(&s, &nobody, "notes", "add_note", false),
        "not governed"
    );
    assert!(
        !may_call(&s, &nobody, "github", "open_pr", false),
        "governed"
    );
    assert!(may_call(
        &s,
        &who(None, &["gh"]),
        "github",
        "open_pr",
        false
    ));
    let closed = rbac("roles:\n  gh:\n    - {backends: [github], access: write}\n");
    assert!(
        !may_call(&closed, &nobody, "notes", "add_note", false),
        "default deny"
    );
}

#[test]
fn a_grant_without_targets_covers_the_whole_backend_and_other_methods_need_any_grant() {
    let s = rbac("roles:\n  notes-ro:\n    - {backends: [notes]}\n");
    let p = who(None, &["notes-ro"]);
    assert!(may_call(&s, &p, "notes", "search", true));
    assert!(
        !may_call(&s, &p, "notes", "add_note", false),
        "read by default"
    );
    let other = Action::new(
        methods::COMPLETION_COMPLETE,
        "notes",
        methods::COMPLETION_COMPLETE,
    );
    assert_eq!(other.kind, Kind::Other);
    assert!(s.permits(&p, &other).is_ok());
    let elsewhere = Action::new(
        methods::COMPLETION_COMPLETE,
        "jira",
        methods::COMPLETION_COMPLETE,
    );
    let d = s.permits(&p, &elsewhere).expect_err("no grant on jira");
    assert!(
        d.message
            .contains(r#"completion/complete on backend "jira""#),
        "{}",
        d.message
    );
}

#[test]
fn cached_decisions_are_per_role_set_and_access() {
    let s = rbac(CONFIG);
    let reader = who(Some("bob"), &["reader"]);
    let writer = who(Some("carol"), &["writer"]);
    for _ in 0..3 {
        assert!(!may_call(&s, &reader, "notes", "add_note", false));
        assert!(may_call(&s, &writer, "notes", "add_note", false));
        assert!(
            may_call(&s, &reader, "notes", "add_note", true),
            "same name, read-only"
        );
    }
    let cached = s.decisions.read().map(|m| m.len()).unwrap_or_default();
    assert_eq!(cached, 3, "one entry per (role set, target, access)");
}

#[test]
fn config_problems_name_the_field() {
    let c: Config = serde_norway::from_str(
        "roles:\n  r:\n    - {backends: [nots, 'n*'], tools: ['']}\n    - {backends: []}\nsubjects:\n  alice: [r, writr]\n",
    )
    .expect("parses");
    let fields: Vec<String> = c.problems(&["notes"]).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "roles.r[0].backends[0]",
            "roles.r[0].tools[0]",
            "roles.r[1].backends",
            "subjects.alice[1]"
        ]
    );
    for bad in [
        "roles: {r: [{backends: [x], tool: [y]}]}",
        "roles: {r: [{access: admin}]}",
        "default: maybe",
        "grants: {}",
    ] {
        assert!(serde_norway::from_str::<Config>(bad).is_err(), "{bad}");
    }
}
