//! The admin listener: it needs the admin role; it lists sessions with their principal and ends
//! one; it explains a principal's effective permissions; a reload revokes an API key removed
//! from the config without touching anyone's session, and an invalid config changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;

use gateway::{RawClient, fixture_stdio};
use serde_json::{Value, json};
use switchboard::config::{Config, api_key_hash};
use switchboard::gateway::Gateway;

const ALICE: &str = "sbk_alice-admin-test-000000000000000000000";
const BOB: &str = "sbk_bob-admin-test-00000000000000000000000";
const ROOT: &str = "sbk_root-admin-test-0000000000000000000000";
const SCRAPER: &str = "sbk_scraper-admin-test-000000000000000000";

fn config(keys: &[(&str, &str)], policy: &str) -> String {
    let keys: String = keys
        .iter()
        .map(|(name, key)| {
            format!(
                "        - {{name: {name}, hash: '{}', roles: [dev]}}\n",
                api_key_hash(key)
            )
        })
        .collect();
    format!(
        "listeners:\n  - name: t\n    bind: '127.0.0.1:0'\n    auth:\n      mode: oauth\n      api_keys:\n{keys}admin:\n  bind: '127.0.0.1:0'\n  auth:\n    mode: oauth\n    api_keys:\n      - {{name: root, hash: '{}', roles: [admin]}}\n      - {{name: alice, hash: '{}', roles: [dev]}}\n      - {{name: scraper, hash: '{}', roles: [metrics]}}\n{policy}backends:\n{}",
        api_key_hash(ROOT),
        api_key_hash(ALICE),
        api_key_hash(SCRAPER),
        fixture_stdio("notes", "notes"),
    )
}

const POLICY: &str = "policy:\n  - stage: access-list\n    rules:\n      - {effect: deny, backend: notes, tool: delete_note}\n";

struct Admin {
    base: String,
    http: reqwest::Client,
}

impl Admin {
    async fn send(&self, method: reqwest::Method, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut b = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            b = b.bearer_auth(k);
        }
        let r = b.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

async fn start(dir: &tempfile::TempDir, yaml: &str) -> (Gateway, Admin) {
    let path = dir.path().join("switchboard.yaml");
    std::fs::write(&path, yaml).unwrap();
    let gw = Gateway::start(Config::load(&path).unwrap()).await.unwrap();
    gw.ready().await;
    let admin = Admin {
        base: format!("http://{}", gw.admin_addr().expect("admin listener")),
        http: reqwest::Client::new(),
    };
    (gw, admin)
}

#[tokio::test]
async fn only_admins_see_sessions_and_can_end_one() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, admin) = start(&dir, &config(&[("alice", ALICE), ("bob", BOB)], "")).await;
    let alice = RawClient::connect_with_token(&gw.url(), ALICE).await;
    let bob = RawClient::connect_with_token(&gw.url(), BOB).await;

    // Health needs nothing; everything else needs a credential with the admin role.
    let (s, _) = admin.send(reqwest::Method::GET, "/healthz", None).await;
    assert_eq!(s, 200);
    let (s, _) = admin
        .send(reqwest::Method::GET, "/admin/sessions", None)
        .await;
    assert_eq!(s, 401);
    let (s, body) = admin
        .send(reqwest::Method::GET, "/admin/sessions", Some(ALICE))
        .await;
    assert_eq!(s, 403, "{body}");

    let (s, body) = admin
        .send(reqwest::Method::GET, "/admin/sessions", Some(ROOT))
        .await;
    assert_eq!(s, 200, "{body}");
    let sessions = body["sessions"].as_array().unwrap();
    let of = |who: &str| {
        sessions
            .iter()
            .find(|s| s["principal"] == who)
            .unwrap_or_else(|| panic!("no session of {who}: {body}"))
            .clone()
    };
    let a = of("apikey:alice");
    assert_eq!(a["id"], json!(alice.session.clone().unwrap()));
    assert_eq!(a["backends"], json!(["notes"]));
    assert_eq!(a["roles"], json!(["dev"]));
    of("apikey:bob");

    // Ending Bob's session: his next request is 404; Alice's session goes on.
    let bob_id = bob.session.clone().unwrap();
    let (s, body) = admin
        .send(
            reqwest::Method::DELETE,
            &format!("/admin/sessions/{bob_id}"),
            Some(ROOT),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["principal"], "apikey:bob");
    let r = bob
        .post(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let listed = alice.call(2, "tools/list", json!({})).await;
    assert!(listed["result"]["tools"].is_array());
    let (s, _) = admin
        .send(reqwest::Method::DELETE, "/admin/sessions/nope", Some(ROOT))
        .await;
    assert_eq!(s, 404);

    // Metrics: any credential of the admin listener (a scraper's key), no admin role needed —
    // and that key opens nothing else. Bob's refused request above is counted there.
    let (s, _) = admin.send(reqwest::Method::GET, "/metrics", None).await;
    assert_eq!(s, 401);
    let (s, text) = admin
        .send(reqwest::Method::GET, "/metrics", Some(SCRAPER))
        .await;
    assert_eq!(s, 200);
    let text = text.as_str().unwrap().to_string();
    assert!(
        text.lines()
            .any(|l| l.contains("switchboard_reason=\"unknown_session\"") && !l.ends_with(" 0")),
        "{text}"
    );
    let (s, _) = admin
        .send(reqwest::Method::GET, "/admin/sessions", Some(SCRAPER))
        .await;
    assert_eq!(s, 403);
    gw.shutdown().await;
}

#[tokio::test]
async fn effective_permissions_name_the_rule_that_hides_a_tool() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, admin) = start(&dir, &config(&[("alice", ALICE)], POLICY)).await;
    let (s, body) = admin
        .send(
            reqwest::Method::GET,
            "/admin/permissions?subject=bob&roles=dev",
            Some(ROOT),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let tools = body["tools"].as_array().unwrap();
    let delete = tools
        .iter()
        .find(|t| t["name"] == "notes__delete_note")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(delete["allowed"], false);
    assert!(
        delete["rule"].as_str().unwrap().starts_with("access-list:"),
        "{delete}"
    );
    let search = tools.iter().find(|t| t["name"] == "notes__search").unwrap();
    assert_eq!(search["allowed"], true);
    // The same answer a session of that principal gets: the tool is not listed.
    let alice = RawClient::connect_with_token(&gw.url(), ALICE).await;
    let listed = alice.call(1, "tools/list", json!({})).await.to_string();
    assert!(
        !listed.contains("delete_note") && listed.contains("search"),
        "{listed}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_reload_revokes_a_removed_key_and_an_invalid_config_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, admin) = start(&dir, &config(&[("alice", ALICE), ("bob", BOB)], "")).await;
    let alice = RawClient::connect_with_token(&gw.url(), ALICE).await;
    let bobs = RawClient::connect_with_token(&gw.url(), BOB)
        .await
        .call(1, "tools/list", json!({}))
        .await;
    assert!(bobs["result"]["tools"].is_array(), "{bobs}");

    // An invalid config: 422 with the reason, and both keys still work.
    let path = dir.path().join("switchboard.yaml");
    std::fs::write(&path, "listeners: [{bind: nope}]\n").unwrap();
    let (s, body) = admin
        .send(reqwest::Method::POST, "/admin/reload", Some(ROOT))
        .await;
    assert_eq!(s, 422, "{body}");
    assert!(
        body["rejected"]
            .as_str()
            .unwrap()
            .contains("listeners[0].bind"),
        "{body}"
    );
    let r = RawClient::with_token(&gw.url(), BOB)
        .post(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Bob's key removed and a backend added: the key is revoked at once; the backend waits for a
    // restart, and the answer says so.
    let mut next = config(&[("alice", ALICE)], "");
    next.push_str(&fixture_stdio("tickets", "tickets"));
    std::fs::write(&path, next).unwrap();
    let (s, body) = admin
        .send(reqwest::Method::POST, "/admin/reload", Some(ROOT))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["listeners"], json!(["t"]), "{body}");
    assert_eq!(body["needsRestart"], json!(["backends"]), "{body}");
    let r = RawClient::with_token(&gw.url(), BOB)
        .post(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    // Alice's session was never interrupted.
    assert!(alice.call(2, "tools/list", json!({})).await["result"]["tools"].is_array());
    gw.shutdown().await;
}
