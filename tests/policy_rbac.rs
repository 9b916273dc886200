//! RBAC seen by real clients with API keys: the official Python SDK (2025 and 2026-07-28) lists
//! exactly what the key's roles (from the key, or from the subject mapping) grant, and calling
//! anything else is refused with the target and the rule — through the merged endpoint, the
//! virtual server path `/servers/<backend>/mcp`, a resource URI, a prompt and a completion.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/peers.rs"]
mod peers;

use gateway::*;
use peers::Sdk;
use serde_json::{Value, json};
use switchboard::config::api_key_hash;

const ALICE: &str = "sbk_alice-rbac-key-for-tests-000000000000000";
const CI: &str = "sbk_ci-rbac-key-for-tests-000000000000000000000";

async fn gateway() -> TestGateway {
    let yaml = format!(
        "listeners:\n  - name: t\n    bind: '127.0.0.1:0'\n    auth:\n      mode: oauth\n      api_keys:\n        - {{name: alice, hash: '{}', roles: [notes-editor]}}\n        - {{name: ci, hash: '{}'}}\nbackends:\n{}{}policy:\n  - stage: rbac\n    default: deny\n    roles:\n      notes-editor:\n        - {{backends: [notes], access: write}}\n      ticket-searcher:\n        - {{backends: [tickets], tools: [search], resources: ['ticket://*'], access: write}}\n    subjects:\n      'apikey:ci': [ticket-searcher]\n",
        api_key_hash(ALICE),
        api_key_hash(CI),
        fixture_stdio("notes", "notes"),
        fixture_stdio("tickets", "tickets"),
    );
    TestGateway::start_yaml(&yaml).await
}

fn denial(resp: &Value) -> (i64, String, String) {
    let e = &resp["error"];
    (
        e["code"].as_i64().unwrap_or_default(),
        e["message"].as_str().unwrap_or_default().to_string(),
        e["data"]["rule"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn each_key_lists_exactly_what_its_roles_grant_and_is_refused_the_rest() {
    let gw = gateway().await;
    for era in ["legacy", "2026"] {
        let list = |token| {
            let url = gw.url.clone();
            async move {
                let l = peers::run_driver_as(
                    Sdk::Python,
                    &url,
                    Some(token),
                    &["--era", era, "list"],
                    peers::DRIVER_TIMEOUT,
                )
                .await;
                strings(&l["tools"])
            }
        };
        let alice = list(ALICE).await;
        assert!(alice.contains(&"add_note".to_string()), "{era}: {alice:?}");
        assert!(
            alice.contains(&"notes__search".to_string()),
            "{era}: {alice:?}"
        );
        assert!(
            !alice
                .iter()
                .any(|t| t == "create_ticket" || t == "tickets__search"),
            "{era}: alice sees tickets' tools: {alice:?}"
        );
        let ci = list(CI).await;
        assert_eq!(
            ci,
            ["tickets__search"],
            "{era}: the subject mapping's grant only"
        );

        let call = |token, tool: &'static str, args: &'static str| {
            let url = gw.url.clone();
            async move {
                peers::run_driver_as(
                    Sdk::Python,
                    &url,
                    Some(token),
                    &["--era", era, "call", tool, args],
                    peers::DRIVER_TIMEOUT,
                )
                .await
            }
        };
        let refused = call(ALICE, "create_ticket", r#"{"title":"x","body":"y"}"#).await;
        let (code, message, rule) = denial(&refused);
        assert_eq!(
            (code, rule.as_str()),
            (-32006, "rbac:no-grant"),
            "{era}: {refused}"
        );
        assert_eq!(
            message,
            r#"Denied by policy: role set has no grant for tool "create_ticket" of backend "tickets" (write)"#
        );
        assert!(!message.contains("ticket-searcher"), "another role leaked");
        let refused = call(CI, "add_note", r#"{"title":"x","body":"y"}"#).await;
        assert_eq!(denial(&refused).2, "rbac:no-grant", "{era}: {refused}");
        let ok = call(CI, "tickets__search", r#"{"query":"gateway"}"#).await;
        assert!(ok["error"].is_null(), "{era}: {ok}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn virtual_paths_resource_uris_prompts_and_completions_are_no_side_door() {
    let gw = gateway().await;
    // Alice on tickets' own endpoint: nothing listed, nothing callable.
    let virt = format!("{}/servers/tickets/mcp", gw.base);
    let c = RawClient::connect_with_token(&virt, ALICE).await;
    let tools = c.call(1, "tools/list", json!({})).await;
    assert_eq!(tools["result"]["tools"], json!([]), "{tools}");
    let r = c
        .call(
            2,
            "tools/call",
            json!({"name": "search", "arguments": {"query": "x"}}),
        )
        .await;
    assert_eq!(denial(&r).2, "rbac:no-grant", "{r}");
    let r = c
        .call(3, "resources/read", json!({"uri": "ticket://1"}))
        .await;
    let (code, message, _) = denial(&r);
    assert_eq!(code, -32006, "{r}");
    assert!(
        message.contains(r#"resource "ticket://1" of backend "tickets""#),
        "{message}"
    );

    // The CI key on the merged endpoint: notes' URIs, prompts and completions are refused.
    let c = RawClient::connect_with_token(&gw.url, CI).await;
    let r = c
        .call(4, "resources/read", json!({"uri": "note://1"}))
        .await;
    assert_eq!(denial(&r).0, -32006, "{r}");
    let templates = c.call(5, "resources/templates/list", json!({})).await;
    let listed = templates["result"]["resourceTemplates"].to_string();
    assert!(
        listed.contains("ticket://") && !listed.contains("note://"),
        "{listed}"
    );
    let r = c
        .call(
            6,
            "prompts/get",
            json!({"name": "summarize_notes", "arguments": {}}),
        )
        .await;
    let (_, message, rule) = denial(&r);
    assert_eq!(rule, "rbac:no-grant", "{r}");
    assert!(
        message.contains(r#"prompt "summarize_notes" of backend "notes""#),
        "{message}"
    );
    let r = c
        .call(
            7,
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "summarize_notes"},
                   "argument": {"name": "topic", "value": "x"}}),
        )
        .await;
    assert_eq!(
        denial(&r).2,
        "rbac:no-grant",
        "completion is asked as its prompt: {r}"
    );
    // Case and look-alike variants of a granted name route nowhere (unknown), never to a grant.
    for name in [
        "Tickets__search",
        "tickets__Search",
        "tickets__s\u{0435}arch",
    ] {
        let r = c
            .call(
                8,
                "tools/call",
                json!({"name": name, "arguments": {"query": "x"}}),
            )
            .await;
        assert!(r["result"].is_null(), "{name}: {r}");
    }
    gw.stop().await;
}
