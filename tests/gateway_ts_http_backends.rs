//! TypeScript-SDK servers as Streamable HTTP backends, driven by real SDK clients through the
//! gateway: `server-everything` in `streamableHttp` mode (tools it registers only after
//! `notifications/initialized`, for clients that can sample or elicit), and
//! `tests/peers/ts_unrelated_requests.mjs`, whose sampling and elicitation requests are tied to
//! no client request and so travel on the backend's standalone GET stream. Each path is checked
//! through the merged `/mcp` and through `/servers/<backend>/mcp`, and the backend's answer must
//! show what the client sent back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/peers.rs"]
mod peers;

use gateway::*;
use peers::{HttpPeer, Sdk};
use serde_json::Value;

/// The gateway in front of server-everything (`everything`) and the unrelated-requests peer
/// (`unrelated`), both over Streamable HTTP.
struct Fleet {
    gw: TestGateway,
    _everything: HttpPeer,
    _unrelated: HttpPeer,
}

impl Fleet {
    async fn start() -> Self {
        let everything = peers::ServerEverything::http().await;
        let unrelated = peers::TsUnrelatedRequestsServer::http().await;
        let gw = TestGateway::start(
            &[
                http_backend("everything", &everything.url),
                http_backend("unrelated", &unrelated.url),
            ],
            "sessions: {idle_ttl: 10m}",
        )
        .await;
        Fleet {
            gw,
            _everything: everything,
            _unrelated: unrelated,
        }
    }

    /// The merged endpoint and the backend's own endpoint.
    fn urls(&self, backend: &str) -> [String; 2] {
        [
            self.gw.url.clone(),
            format!("{}/servers/{backend}/mcp", self.gw.base),
        ]
    }
}

async fn drive(sdk: Sdk, url: &str, args: &[&str]) -> Value {
    peers::run_driver(sdk, url, args, peers::DRIVER_TIMEOUT).await
}

/// The methods of the server→client requests the driver answered.
fn server_requests(out: &Value) -> Vec<String> {
    out["serverRequests"]
        .as_array()
        .unwrap_or_else(|| panic!("no serverRequests: {out}"))
        .iter()
        .filter_map(|r| r["method"].as_str().map(str::to_string))
        .collect()
}

async fn server_everything_over_http(sdk: Sdk) {
    let f = Fleet::start().await;
    for url in f.urls("everything") {
        let list = drive(sdk, &url, &["list"]).await;
        let tools = strings(&list["tools"]);
        for t in [
            "echo",
            "trigger-sampling-request",
            "trigger-elicitation-request",
        ] {
            assert!(
                tools.contains(&t.to_string()),
                "{sdk:?} at {url}: {t} missing from {tools:?}"
            );
        }

        let s = drive(
            sdk,
            &url,
            &[
                "call",
                "trigger-sampling-request",
                r#"{"prompt":"tide?","maxTokens":5}"#,
            ],
        )
        .await;
        let st = result_text(&s);
        assert!(
            st.contains("sampled: ") && st.contains("tide?") && st.contains("driver-model"),
            "{sdk:?} at {url}: sampling result: {s}"
        );
        assert!(
            server_requests(&s).contains(&"sampling/createMessage".to_string()),
            "{s}"
        );

        let e = drive(
            sdk,
            &url,
            &[
                "--elicit",
                r#"{"name":"Ada Lovelace","check":true}"#,
                "call",
                "trigger-elicitation-request",
                "{}",
            ],
        )
        .await;
        let et = result_text(&e);
        assert!(
            et.contains("- Name: Ada Lovelace") && et.contains("- Agreed to terms: true"),
            "{sdk:?} at {url}: elicitation result: {e}"
        );
    }
    f.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_client_uses_server_everything_over_http() {
    server_everything_over_http(Sdk::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_client_uses_server_everything_over_http() {
    server_everything_over_http(Sdk::TypeScript).await;
}

async fn requests_on_the_backends_get_stream(sdk: Sdk) {
    let f = Fleet::start().await;
    for url in f.urls("unrelated") {
        // Sampling sent while the tool call is in flight, but not tied to it.
        let s = drive(
            sdk,
            &url,
            &["call", "sample-unrelated", r#"{"prompt":"low tide"}"#],
        )
        .await;
        assert_eq!(
            result_text(&s),
            "backend received: sampled: low tide (model driver-model)",
            "{sdk:?} at {url}: {s}"
        );
        assert_eq!(server_requests(&s), ["sampling/createMessage"], "{s}");

        // Elicitation, likewise.
        let e = drive(
            sdk,
            &url,
            &[
                "--elicit",
                r#"{"confirm":true,"who":"sdk"}"#,
                "call",
                "elicit-unrelated",
                r#"{"message":"proceed?"}"#,
            ],
        )
        .await;
        assert_eq!(
            result_text(&e),
            r#"backend received: accept {"confirm":true,"who":"sdk"}"#,
            "{sdk:?} at {url}: {e}"
        );
        assert_eq!(server_requests(&e), ["elicitation/create"], "{e}");

        // Sampling asked from a timer after the tool call was answered; the second call
        // returns what the backend got.
        let t = drive(
            sdk,
            &url,
            &[
                "call-twice",
                "sample-after-return",
                r#"{"prompt":"neap"}"#,
                "await-sampled",
                "{}",
            ],
        )
        .await;
        assert_eq!(result_text(&t["first"]), "scheduled", "{t}");
        assert_eq!(
            result_text(&t["second"]),
            "backend received: sampled: neap (model driver-model)",
            "{sdk:?} at {url}: {t}"
        );
        assert_eq!(server_requests(&t), ["sampling/createMessage"], "{t}");
    }
    f.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_client_answers_requests_from_the_backends_get_stream() {
    requests_on_the_backends_get_stream(Sdk::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_client_answers_requests_from_the_backends_get_stream() {
    requests_on_the_backends_get_stream(Sdk::TypeScript).await;
}
