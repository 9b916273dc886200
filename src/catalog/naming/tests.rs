use super::*;
use crate::upstream::handshake::BackendInfo;

fn tool(name: &str) -> Map<String, Value> {
    json!({"name": name, "inputSchema": {"type": "object"}})
        .as_object()
        .cloned()
        .unwrap()
}

fn snap(tools: &[&str], prompts: &[&str], resources: &[&str]) -> Option<Arc<Snapshot>> {
    let mut info = BackendInfo::default();
    info.capabilities.insert("tools".into(), json!({}));
    Some(Arc::new(Snapshot {
        info,
        tools: tools.iter().map(|t| tool(t)).collect(),
        prompts: prompts
            .iter()
            .map(|p| json!({"name": p}).as_object().cloned().unwrap())
            .collect(),
        resources: resources
            .iter()
            .map(|u| json!({"uri": u, "name": u}).as_object().cloned().unwrap())
            .collect(),
        templates: vec![],
        ..Snapshot::default()
    }))
}

fn names(v: &[Exposed]) -> Vec<&str> {
    v.iter().map(|e| e.name.as_str()).collect()
}

#[test]
fn on_collision_prefixes_only_colliding_names_and_routes_each() {
    let snaps = vec![
        snap(&["add_note", "search"], &["p"], &["note://1"]),
        snap(&["search", "create_ticket"], &[], &["note://1"]),
    ];
    let v = View::merged(&["notes", "tickets"], &snaps, NamingPolicy::OnCollision);
    assert_eq!(
        names(&v.tools),
        [
            "add_note",
            "create_ticket",
            "notes__search",
            "tickets__search"
        ]
    );
    let t = v.tool("tickets__search").unwrap();
    assert_eq!((t.backend, t.original.as_str()), (1, "search"));
    assert!(
        v.tool("search").is_none(),
        "a bare colliding name must not route anywhere"
    );
    assert!(v.tools[2].json.get().contains(r#""name":"notes__search""#));
    assert_eq!(names(&v.prompts), ["p"]);
    assert_eq!(
        names(&v.resources),
        [
            "switchboard://notes/note://1",
            "switchboard://tickets/note://1"
        ]
    );
}

#[test]
fn prefix_policy_prefixes_every_tool_and_prompt() {
    let snaps = vec![
        snap(&["a"], &["p"], &["r://x"]),
        None,
        snap(&["b"], &[], &[]),
    ];
    let v = View::merged(&["one", "down", "three"], &snaps, NamingPolicy::Prefix);
    assert_eq!(names(&v.tools), ["one__a", "three__b"]);
    assert_eq!(names(&v.prompts), ["one__p"]);
    assert_eq!(
        names(&v.resources),
        ["r://x"],
        "non-colliding URIs are kept"
    );
}

#[test]
fn single_backend_view_is_unprefixed_and_order_is_deterministic() {
    let snaps = vec![
        snap(&["z", "search", "a"], &[], &[]),
        snap(&["search"], &[], &[]),
    ];
    let v = View::single(&["notes", "tickets"], &snaps, 0);
    assert_eq!(names(&v.tools), ["a", "search", "z"]);
    assert_eq!(v.members, [0]);
}

#[test]
fn resources_route_by_exact_collided_and_sole_owner() {
    let snaps = vec![
        snap(&[], &[], &["note://1"]),
        snap(&[], &[], &["note://1", "t://9"]),
    ];
    let v = View::merged(&["notes", "tickets"], &snaps, NamingPolicy::OnCollision);
    let n = ["notes", "tickets"];
    assert_eq!(v.route_resource("t://9", &n).unwrap().backend, 1);
    let r = v
        .route_resource("switchboard://notes/note://1", &n)
        .unwrap();
    assert_eq!((r.backend, r.uri.as_str()), (0, "note://1"));
    assert_eq!(
        v.route_resource("unknown://x", &n),
        None,
        "two owners: ambiguous"
    );
    let single = View::single(&n, &snaps, 1);
    assert_eq!(
        single.route_resource("t://other", &n).unwrap().backend,
        1,
        "sole owner takes unknown URIs"
    );
}

#[test]
fn only_a_true_read_only_hint_makes_a_tool_read_only_and_annotations_are_kept() {
    let mut s = snap(&["plain"], &["p"], &["note://1"]);
    if let Some(s) = s.as_mut().and_then(Arc::get_mut) {
        for (name, ann) in [
            ("reader", json!({"readOnlyHint": true, "title": "Reader"})),
            ("writer", json!({"readOnlyHint": false})),
            ("stringly", json!({"readOnlyHint": "true"})),
        ] {
            let mut t = tool(name);
            t.insert("annotations".into(), ann);
            s.tools.push(t);
        }
    }
    let v = View::single(&["notes"], &[s], 0);
    let facts = |n: &str| {
        let t = v.tool(n).expect("listed");
        (
            t.facts.read_only,
            t.facts.annotations.as_ref().map(|a| a.get().to_string()),
        )
    };
    assert_eq!(facts("plain"), (false, None), "no hint: a write");
    assert_eq!(
        facts("reader"),
        (
            true,
            Some(r#"{"readOnlyHint":true,"title":"Reader"}"#.to_string())
        )
    );
    assert!(!facts("writer").0);
    assert!(!facts("stringly").0, "only the JSON boolean true counts");
    assert!(v.prompts[0].facts.read_only && v.resources[0].facts.read_only);
}
