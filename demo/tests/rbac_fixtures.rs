//! The github, postgres and slack look-alikes (and the read-only hints on notes and tickets)
//! over real stdio: which tools say they are read-only, and what each tool does.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

/// `tools/list` as (name, readOnlyHint) pairs.
async fn hints(s: &mut StdioServer) -> Vec<(String, bool)> {
    s.send(&request(1, "tools/list", json!({}))).await;
    let result = s.until_response(1).await.0["result"].clone();
    result["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let ro = t["annotations"]["readOnlyHint"].as_bool() == Some(true);
            (t["name"].as_str().unwrap().to_owned(), ro)
        })
        .collect()
}

/// Calls a tool and returns its result (`isError` included).
async fn call_tool(s: &mut StdioServer, id: i64, tool: &str, args: Value) -> Value {
    s.send(&call(id, tool, args)).await;
    s.until_response(id).await.0["result"].clone()
}

#[tokio::test]
async fn read_tools_say_they_are_read_only() {
    let cases: [(&str, &[&str], &[&str]); 5] = [
        (
            "github",
            &["list_repos", "get_pull_request"],
            &["open_pr", "merge_pr"],
        ),
        ("postgres", &["list_tables", "query"], &["execute"]),
        (
            "slack",
            &["list_channels", "read_channel"],
            &["post_message"],
        ),
        (
            "notes",
            &["list_notes", "get_note", "search"],
            &["add_note", "delete_note"],
        ),
        (
            "tickets",
            &["list_tickets", "get_ticket", "search"],
            &["create_ticket", "close_ticket", "triage"],
        ),
    ];
    for (fixture, read, write) in cases {
        let mut s = StdioServer::spawn(fixture);
        s.initialize(json!({})).await;
        let mut expected: Vec<(String, bool)> = read
            .iter()
            .map(|n| (n.to_string(), true))
            .chain(write.iter().map(|n| (n.to_string(), false)))
            .collect();
        let mut got = hints(&mut s).await;
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "{fixture}");
    }
}

#[tokio::test]
async fn github_opens_and_merges_pull_requests() {
    let mut s = StdioServer::spawn("github");
    s.initialize(json!({})).await;
    let args = json!({"repo": "acme/switchboard", "title": "Fix it"});
    let opened = call_tool(&mut s, 2, "open_pr", args).await;
    assert_eq!(opened["structuredContent"]["number"], 2, "{opened}");
    let merged = call_tool(
        &mut s,
        3,
        "merge_pr",
        json!({"repo": "acme/switchboard", "number": 2}),
    )
    .await;
    assert_eq!(merged["structuredContent"]["state"], "merged", "{merged}");
    let again = call_tool(
        &mut s,
        4,
        "merge_pr",
        json!({"repo": "acme/switchboard", "number": 2}),
    )
    .await;
    assert_eq!(again["isError"], true);
    assert_eq!(first_text(&again), "acme/switchboard#2 is already merged");
    let bad = call_tool(&mut s, 5, "open_pr", json!({"repo": "acme", "title": "x"})).await;
    assert_eq!(bad["isError"], true);
    assert_eq!(
        first_text(&bad),
        "repo must have the form org/name, not \"acme\""
    );
    let unknown = call_tool(
        &mut s,
        6,
        "get_pull_request",
        json!({"repo": "acme/nope", "number": 1}),
    )
    .await;
    assert_eq!(first_text(&unknown), "No repository acme/nope");
}

#[tokio::test]
async fn postgres_query_refuses_writes_and_execute_writes() {
    let mut s = StdioServer::spawn("postgres");
    s.initialize(json!({})).await;
    let refused = call_tool(&mut s, 2, "query", json!({"sql": "DELETE FROM users"})).await;
    assert_eq!(refused["isError"], true);
    assert_eq!(
        first_text(&refused),
        "query is read-only: only SELECT statements; use execute to change data"
    );
    let inserted = call_tool(
        &mut s,
        3,
        "execute",
        json!({"sql": "INSERT INTO users VALUES (3, 'carol', 'web');"}),
    )
    .await;
    assert_eq!(
        inserted["structuredContent"]["rows_affected"], 1,
        "{inserted}"
    );
    let rows = call_tool(&mut s, 4, "query", json!({"sql": "select * from users"})).await;
    assert_eq!(
        rows["structuredContent"]["rows"][2],
        json!(["3", "carol", "web"]),
        "{rows}"
    );
    let deleted = call_tool(&mut s, 5, "execute", json!({"sql": "DELETE FROM deploys"})).await;
    assert_eq!(
        deleted["structuredContent"]["rows_affected"], 1,
        "{deleted}"
    );
    let unsupported = call_tool(&mut s, 6, "execute", json!({"sql": "DROP TABLE users"})).await;
    assert_eq!(unsupported["isError"], true);
    let short = call_tool(
        &mut s,
        7,
        "execute",
        json!({"sql": "INSERT INTO users VALUES (4)"}),
    )
    .await;
    assert_eq!(
        first_text(&short),
        "users has 3 columns, the statement gives 1"
    );
}

#[tokio::test]
async fn slack_posts_and_reads_messages() {
    let mut s = StdioServer::spawn("slack");
    s.initialize(json!({})).await;
    let posted = call_tool(
        &mut s,
        2,
        "post_message",
        json!({"channel": "#incidents", "text": "db slow"}),
    )
    .await;
    assert_eq!(posted["structuredContent"]["posted"], true, "{posted}");
    let read = call_tool(&mut s, 3, "read_channel", json!({"channel": "incidents"})).await;
    assert_eq!(
        read["structuredContent"]["messages"],
        json!([{"user": "switchboard-bot", "text": "db slow"}])
    );
    let missing = call_tool(&mut s, 4, "read_channel", json!({"channel": "random"})).await;
    assert_eq!(first_text(&missing), "No channel #random");
}
