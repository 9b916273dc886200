//! What each client era sees of a 2026-07-28 backend's result (the Python SDK reference server,
//! which stamps its own serverInfo and `resultType` on every result): a 2026 client gets
//! `resultType: "complete"` and the gateway's serverInfo stamp, never the backend's; a 2025
//! client gets the result without any 2026 envelope.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/peers.rs"]
mod peers;

use gateway::*;
use serde_json::json;

const V: &str = "2026-07-28";
const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

#[tokio::test]
async fn a_2026_backends_result_carries_the_gateways_envelope_or_none() {
    let py = peers::PySdkServer::http().await;
    let gw = TestGateway::start(&[http_backend("py", &py.url)], "").await;
    let call = json!({"name": "echo", "arguments": {"message": "shape"}});

    let modern = RawClient::new(&gw.url);
    let mut params = call.clone();
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let b = modern
        .bare_post()
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", V)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .body(
            json!({"jsonrpc": "2.0", "id": "m-1", "method": "tools/call", "params": params})
                .to_string(),
        );
    let r = modern.send(b).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let m = r.final_message();
    assert_eq!(m["id"], "m-1", "{m}");
    assert_eq!(result_text(&m), "Echo: shape", "{m}");
    let result = &m["result"];
    assert_eq!(result["resultType"], "complete", "{m}");
    assert_eq!(result["_meta"][SERVER_INFO]["name"], "switchboard", "{m}");
    assert!(result.get("ttlMs").is_none(), "{m}");

    let legacy = RawClient::connect(&gw.url).await;
    let r = legacy
        .post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let m = r.final_message();
    assert_eq!(result_text(&m), "Echo: shape", "{m}");
    let result = &m["result"];
    for k in ["resultType", "ttlMs", "cacheScope"] {
        assert!(
            result.get(k).is_none(),
            "a 2025 client must not see {k}: {m}"
        );
    }
    assert!(
        result
            .pointer(&format!("/_meta/{}", SERVER_INFO.replace('/', "~1")))
            .is_none(),
        "a 2025 client must not see a serverInfo stamp: {m}"
    );
    gw.stop().await;
}
