//! The policy pipeline seen by real clients: an access list hides and refuses the same tools for
//! the official Python SDK (2025 and 2026-07-28) and the TypeScript SDK, and a per-session call
//! budget refuses the call after the last one while listing never counts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/peers.rs"]
mod peers;

use gateway::*;
use peers::Sdk;
use serde_json::json;

const ACCESS_LIST: &str = "policy:
  - stage: access-list
    rules:
      - {effect: deny, backend: everything, tool: 'trigger-*'}
      - {effect: deny, backend: everything, prompt: '*'}
";

/// What each SDK client sees through the gateway: denied tools and prompts are not listed, and
/// calling one anyway is refused with the rule that refused it; the rest works.
#[tokio::test]
async fn an_access_list_hides_and_refuses_the_same_tools_for_every_sdk_and_era() {
    let gw = TestGateway::start(
        &[
            peers::server_everything_stdio_command().stdio_backend("everything"),
            fixture_stdio("notes", "notes"),
        ],
        ACCESS_LIST,
    )
    .await;
    for (sdk, era) in [
        (Sdk::Python, "legacy"),
        (Sdk::Python, "2026"),
        (Sdk::TypeScript, "legacy"),
    ] {
        let who = format!("{sdk:?} {era}");
        let list =
            peers::run_driver(sdk, &gw.url, &["--era", era, "list"], peers::DRIVER_TIMEOUT).await;
        let tools = strings(&list["tools"]);
        assert!(tools.contains(&"echo".to_string()), "{who}: {tools:?}");
        assert!(
            tools.contains(&"list_notes".to_string()),
            "{who}: {tools:?}"
        );
        assert!(
            !tools.iter().any(|t| t.starts_with("trigger-")),
            "{who}: denied tools listed: {tools:?}"
        );
        let prompts = strings(&list["prompts"]);
        assert!(
            prompts.iter().all(|p| p == "summarize_notes"),
            "{who}: everything's prompts listed: {prompts:?}"
        );

        let denied = peers::run_driver(
            sdk,
            &gw.url,
            &[
                "--era",
                era,
                "call",
                "trigger-long-running-operation",
                r#"{"duration":1,"steps":1}"#,
            ],
            peers::DRIVER_TIMEOUT,
        )
        .await;
        let err = &denied["error"];
        assert_eq!(err["code"], -32006, "{who}: {denied}");
        let msg = err["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(
                "tool 'trigger-long-running-operation' of backend 'everything' is not allowed"
            ),
            "{who}: {msg}"
        );
        assert_eq!(
            err["data"]["rule"], "access-list:rules[0]",
            "{who}: {denied}"
        );

        let ok = peers::run_driver(
            sdk,
            &gw.url,
            &["--era", era, "call", "echo", r#"{"message":"through"}"#],
            peers::DRIVER_TIMEOUT,
        )
        .await;
        assert!(result_text(&ok).contains("through"), "{who}: {ok}");
    }
    gw.stop().await;
}

/// A session's budget of tool calls: the calls after the last one are refused with -32003 and
/// the limit; lists do not count, and another session has its own budget.
#[tokio::test]
async fn a_call_budget_refuses_calls_past_the_limit_per_session_and_lists_do_not_count() {
    let gw = TestGateway::start(
        &[fixture_stdio("notes", "notes")],
        "policy:\n  - stage: call-budget\n    max_calls: 3\n",
    )
    .await;
    let one = RawClient::connect(&gw.url).await;
    for i in 0..5 {
        let list = one.call(100 + i, "tools/list", json!({})).await;
        assert!(!list["result"]["tools"].as_array().unwrap().is_empty());
    }
    for i in 1..=3 {
        let r = one
            .call(
                i,
                "tools/call",
                json!({"name": "list_notes", "arguments": {}}),
            )
            .await;
        assert!(r.get("result").is_some(), "call {i} of 3 must pass: {r}");
    }
    let refused = one
        .call(
            4,
            "tools/call",
            json!({"name": "list_notes", "arguments": {}}),
        )
        .await;
    assert_eq!(refused["error"]["code"], -32003, "{refused}");
    assert_eq!(refused["error"]["data"]["limit"], 3, "{refused}");
    assert_eq!(
        refused["error"]["data"]["rule"], "call-budget:max_calls",
        "{refused}"
    );
    let still = one.call(5, "tools/list", json!({})).await;
    assert!(
        still.get("result").is_some(),
        "a spent budget still lists: {still}"
    );

    let two = RawClient::connect(&gw.url).await;
    let r = two
        .call(
            1,
            "tools/call",
            json!({"name": "list_notes", "arguments": {}}),
        )
        .await;
    assert!(
        r.get("result").is_some(),
        "a new session has its own budget: {r}"
    );
    gw.stop().await;
}

/// A config whose rule names no backend is refused at start-up, naming the field.
#[test]
fn a_rule_for_an_unknown_backend_is_a_config_error_naming_the_field() {
    let yaml = format!(
        "backends:\n{}policy:\n  - stage: access-list\n    rules: [{{effect: deny, backend: nots}}]\n  - stage: call-budget\n    max_calls: 0\n",
        fixture_stdio("notes", "notes")
    );
    let err = switchboard::config::Config::from_yaml(&yaml)
        .expect_err("invalid")
        .to_string();
    assert!(
        err.contains("policy[0].rules[0].backend: no backend is named \"nots\""),
        "{err}"
    );
    assert!(
        err.contains("policy[1].max_calls: must be greater than zero"),
        "{err}"
    );
}

mod embedded {
    //! Stages of an embedder's own (`Gateway::start_with_stages`): one that waits on I/O before
    //! deciding, refusing with its own HTTP status and `data`, and one that rewrites results.

    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::{Value, json};
    use switchboard::config::Config;
    use switchboard::gateway::Gateway;
    use switchboard::policy::stage::SessionSlot;
    use switchboard::policy::{Action, CallRequest, CallResponse, Deny, ResultBody, Stage, Step};
    use tokio::sync::Semaphore;

    use super::gateway::*;

    /// `search` waits for the test to release it, then refuses queries containing "deny".
    #[derive(Debug)]
    struct Gate(Arc<Semaphore>);

    impl Stage for Gate {
        fn name(&self) -> &'static str {
            "gate"
        }
        fn on_request(&self, c: &mut CallRequest<'_>, _s: Option<&mut SessionSlot>) -> Step {
            if c.action.name != "search" {
                return Step::Continue;
            }
            let deny = c
                .arguments
                .as_deref()
                .is_some_and(|a| a.to_string().contains("deny"));
            let gate = self.0.clone();
            Step::Wait(Box::pin(async move {
                if let Ok(p) = gate.acquire().await {
                    p.forget();
                }
                if deny {
                    return Err(Deny::forbidden("quota", "the remote quota said no")
                        .with_code(-32003)
                        .with_data(json!({"retryAfterMs": 1500}))
                        .with_http_status(429));
                }
                Ok(())
            }))
        }
    }

    /// Redacts the word "Switchboard" in `get_note` results.
    #[derive(Debug)]
    struct Redact;

    fn redact(v: &mut Value) {
        match v {
            Value::String(s) => *s = s.replace("Switchboard", "[redacted]"),
            Value::Array(a) => a.iter_mut().for_each(redact),
            Value::Object(o) => o.values_mut().for_each(redact),
            _ => {}
        }
    }

    impl Stage for Redact {
        fn name(&self) -> &'static str {
            "redact"
        }
        fn sees_responses(&self) -> bool {
            true
        }
        fn on_response(
            &self,
            c: &CallResponse<'_>,
            r: &mut ResultBody<'_>,
            _s: Option<&mut SessionSlot>,
        ) -> Result<(), Deny> {
            if c.action == Action::new("tools/call", "notes", "get_note")
                && r.text().contains("Switchboard")
            {
                redact(r.value_mut());
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_waiting_stage_holds_only_its_call_and_refuses_with_its_own_status_and_a_response_stage_rewrites()
     {
        let yaml = format!(
            "listeners: [{{name: t, bind: '127.0.0.1:0', auth: {{mode: none}}}}]\nbackends:\n{}",
            fixture_stdio("notes", "notes")
        );
        let gate = Arc::new(Semaphore::new(0));
        let gw = Gateway::start_with_stages(
            Config::from_yaml(&yaml).unwrap(),
            vec![
                Arc::new(Gate(gate.clone())) as Arc<dyn Stage>,
                Arc::new(Redact),
            ],
        )
        .await
        .unwrap();
        tokio::time::timeout(Duration::from_secs(30), gw.ready())
            .await
            .unwrap();
        let c = RawClient::connect(&gw.url()).await;

        // The held call does not hold the session: another call of it is answered meanwhile.
        let held = {
            let c = c.clone();
            tokio::spawn(async move { c.tool(1, "search", json!({"query": "welcome"})).await })
        };
        let other = c.tool(2, "list_notes", json!({})).await;
        assert!(other.get("result").is_some(), "{other}");
        assert!(!held.is_finished(), "the gated call must still be waiting");
        gate.add_permits(1);
        let answered = held.await.unwrap();
        assert!(result_text(&answered).contains("Welcome"), "{answered}");

        // Refused after the wait: the stage's HTTP status, code and data reach the client.
        let refusing = {
            let c = c.clone();
            tokio::spawn(async move {
                c.post(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": "search", "arguments": {"query": "please deny"}}}))
                    .await
            })
        };
        gate.add_permits(1);
        let r = refusing.await.unwrap();
        assert_eq!(r.status, 429, "{}", r.body);
        let body = r.json();
        assert_eq!(body["error"]["code"], -32003, "{body}");
        assert_eq!(body["error"]["data"]["retryAfterMs"], 1500, "{body}");

        // The same refusal reaches a 2026-07-28 (stateless) client with the same HTTP status.
        let modern = {
            let c = RawClient::new(&gw.url());
            tokio::spawn(async move {
                let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
                    "name": "search", "arguments": {"query": "deny me too"},
                    "_meta": {
                        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                        "io.modelcontextprotocol/clientCapabilities": {},
                        "io.modelcontextprotocol/clientInfo": {"name": "raw-2026", "version": "1"}}}});
                let b = c
                    .bare_post()
                    .header("accept", "application/json, text/event-stream")
                    .header("content-type", "application/json")
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", "tools/call")
                    .header("mcp-name", "search")
                    .body(body.to_string());
                c.send(b).await
            })
        };
        gate.add_permits(1);
        let r = modern.await.unwrap();
        assert_eq!(r.status, 429, "{}", r.body);
        assert_eq!(
            r.json()["error"]["data"]["retryAfterMs"],
            1500,
            "{}",
            r.body
        );

        // The response stage rewrote the result before the client saw it.
        let note = c.tool(4, "get_note", json!({"id": 1})).await;
        let text = result_text(&note);
        assert!(text.contains("[redacted] demo notebook"), "{text}");
        assert!(!text.contains("Switchboard"), "{text}");
        gw.shutdown().await;
    }
}
