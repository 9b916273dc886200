//! `examples/rbac-50-devs.yaml`, as shipped, in front of a real identity provider
//! (oauth2-mock-server): a sample of its developers — one per distinct role set in its
//! `subjects:`, alice, a subject known only by its token's roles, and a subject with no role —
//! walk through listing (the official Python SDK) and calling (raw Streamable HTTP).
//!
//! What each one should see is computed from the example's own roles and the unfiltered catalog
//! of its backends, never written down per developer: a tool is visible and callable when one
//! of the subject's roles grants its backend for `write`, or for `read` and the tool says
//! `readOnlyHint: true`. The Rego rule (examples/policy/acme.rego) then refuses every
//! `open_pr` but alice's in org acme. The virtual servers `/servers/<backend>/mcp` must give
//! the same answers (no side door).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/idp.rs"]
mod idp;
#[path = "common/peers.rs"]
mod peers;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use gateway::{RawClient, TestGateway, switchboard_bin};
use idp::{Idp, TokenRequest};
use peers::Sdk;
use serde_json::{Value, json};
use serde_norway::Value as Yaml;

/// The resource the test gateway names (tokens' `aud`).
const RESOURCE: &str = "http://switchboard.test/mcp";
/// Prefix naming: `<backend>__<tool>`.
const SEP: &str = "__";

/// The example file, parsed.
fn example() -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rbac-50-devs.yaml");
    let text = std::fs::read_to_string(&path).expect("examples/rbac-50-devs.yaml");
    serde_norway::from_str(&text).expect("the example is YAML")
}

fn text(y: &Yaml) -> &str {
    y.as_str().unwrap_or_else(|| panic!("not a string: {y:?}"))
}

fn strings(y: &Yaml) -> Vec<String> {
    let seq = y
        .as_sequence()
        .unwrap_or_else(|| panic!("not a list: {y:?}"));
    seq.iter().map(|s| text(s).to_owned()).collect()
}

/// The example as the test runs it: bound to 127.0.0.1:0, naming the test's resource, trusting
/// the test's IdP (the example reads it from `${env:ISSUER}`), its `${self}` backends run by
/// the switchboard binary under test and its Rego path made absolute. Roles, subjects, the
/// policy and the backends are as shipped.
fn runnable(mut y: Yaml, issuer: &str) -> String {
    let auth = &mut y["listeners"][0]["auth"];
    assert_eq!(text(&auth["issuers"][0]["issuer"]), "${env:ISSUER}");
    auth["issuers"][0]["issuer"] = issuer.into();
    auth["resource"] = RESOURCE.into();
    y["listeners"][0]["bind"] = "127.0.0.1:0".into();
    for b in y["backends"].as_sequence_mut().expect("backends") {
        assert_eq!(text(&b["command"]), "${self}");
        b["command"] = switchboard_bin().display().to_string().into();
    }
    for stage in y["policy"].as_sequence_mut().expect("policy") {
        if text(&stage["stage"]) == "rego" {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(text(&stage["path"]));
            assert!(path.is_file(), "{}", path.display());
            stage["path"] = path.display().to_string().into();
        }
    }
    serde_norway::to_string(&y).unwrap()
}

/// The same backends behind an open gateway with no policy: the unfiltered truth.
fn unfiltered(y: &Yaml) -> String {
    let mut backends = y["backends"].clone();
    for b in backends.as_sequence_mut().expect("backends") {
        b["command"] = switchboard_bin().display().to_string().into();
    }
    format!(
        "listeners: [{{name: open, bind: '127.0.0.1:0', auth: {{mode: none}}, naming: prefix}}]\nbackends: {}",
        serde_json::to_string(&backends).unwrap()
    )
}

/// The example's `stage: rbac`, as far as this test models it: grants of whole backends
/// (by name or `*`) for read or write, nothing granted by default.
struct Roles {
    grants: BTreeMap<String, Vec<(Vec<String>, bool)>>,
    subjects: BTreeMap<String, BTreeSet<String>>,
}

impl Roles {
    fn of(y: &Yaml) -> Roles {
        let stages = y["policy"].as_sequence().expect("policy");
        let rbac = stages
            .iter()
            .find(|s| text(&s["stage"]) == "rbac")
            .expect("a stage: rbac");
        assert!(
            rbac.get("default").is_none(),
            "the model assumes deny by default"
        );
        let mut grants = BTreeMap::new();
        for (role, list) in rbac["roles"].as_mapping().expect("roles") {
            let list = list.as_sequence().expect("grants").iter().map(|g| {
                for key in g.as_mapping().expect("grant").keys() {
                    assert!(matches!(text(key), "backends" | "access"), "model: {key:?}");
                }
                (strings(&g["backends"]), text(&g["access"]) == "write")
            });
            grants.insert(text(role).to_owned(), list.collect());
        }
        let subjects = rbac["subjects"].as_mapping().expect("subjects");
        let subjects = subjects
            .iter()
            .map(|(s, r)| (text(s).to_owned(), strings(r).into_iter().collect()))
            .collect();
        Roles { grants, subjects }
    }

    /// The roles a subject holds: its mapping plus its token's.
    fn of_subject(&self, subject: &str, token_roles: &[&str]) -> BTreeSet<String> {
        let mut roles = self.subjects.get(subject).cloned().unwrap_or_default();
        roles.extend(token_roles.iter().map(|r| r.to_string()));
        roles
    }

    fn may(&self, roles: &BTreeSet<String>, t: &Tool) -> bool {
        roles
            .iter()
            .filter_map(|r| self.grants.get(r))
            .flatten()
            .any(|(backends, write)| {
                backends.iter().any(|b| b == "*" || *b == t.backend) && (*write || t.read_only)
            })
    }
}

/// A tool of the unfiltered catalog.
#[derive(Debug)]
struct Tool {
    backend: String,
    name: String,
    read_only: bool,
}

impl Tool {
    fn listed(&self) -> String {
        format!("{}{SEP}{}", self.backend, self.name)
    }
}

async fn catalog(gw: &TestGateway) -> Vec<Tool> {
    let c = RawClient::connect(&gw.url).await;
    let list = c.call(1, "tools/list", json!({})).await;
    let tools = list["result"]["tools"].as_array().expect("tools").iter();
    tools
        .map(|t| {
            let listed = t["name"].as_str().unwrap();
            let (backend, name) = listed.split_once(SEP).expect("prefixed");
            Tool {
                backend: backend.to_owned(),
                name: name.to_owned(),
                read_only: t["annotations"]["readOnlyHint"] == json!(true),
            }
        })
        .collect()
}

/// A call each backend's fixture answers without error when allowed: one read, one write.
fn probes(backend: &str) -> [(&'static str, Value); 2] {
    match backend {
        "notes" => [
            ("list_notes", json!({})),
            ("add_note", json!({"title": "standup", "body": "ship it"})),
        ],
        "github" => [
            ("list_repos", json!({})),
            (
                "open_pr",
                json!({"repo": "acme/switchboard", "title": "Tidy"}),
            ),
        ],
        "postgres" => [
            ("list_tables", json!({})),
            (
                "execute",
                json!({"sql": "INSERT INTO deploys VALUES (7, 'api', 'ok')"}),
            ),
        ],
        "jira" => [
            ("list_tickets", json!({})),
            (
                "create_ticket",
                json!({"title": "flaky test", "priority": "low"}),
            ),
        ],
        "slack" => [
            ("list_channels", json!({})),
            (
                "post_message",
                json!({"channel": "dev", "text": "deployed"}),
            ),
        ],
        other => panic!("no probe for backend {other}: extend the test with the example"),
    }
}

/// Asserts a policy refusal (-32006) by `rule` (`stage:rule`, or a stage prefix like `rbac:`).
#[track_caller]
fn denied(resp: &Value, rule: &str, case: &str) {
    let e = &resp["error"];
    assert_eq!(e["code"], -32006, "{case}: {resp}");
    let got = e["data"]["rule"].as_str().unwrap_or_default();
    assert!(
        got.starts_with(rule),
        "{case}: rule {got:?}, wanted {rule}: {resp}"
    );
}

#[track_caller]
fn succeeded(resp: &Value, case: &str) {
    assert!(resp["result"]["content"].is_array(), "{case}: {resp}");
    assert_ne!(resp["result"]["isError"], json!(true), "{case}: {resp}");
}

/// Who the test walks through: one subject per distinct role set of the mapping, alice, a
/// contractor whose only role comes from its token, and a stranger with none.
fn sample(roles: &Roles) -> Vec<(String, Vec<&'static str>)> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<(String, Vec<&str>)> = roles
        .subjects
        .iter()
        .filter(|(s, r)| s.as_str() != "alice" && seen.insert((*r).clone()))
        .map(|(s, _)| (s.clone(), Vec::new()))
        .collect();
    let held: BTreeSet<&String> = roles.subjects.values().flatten().collect();
    let sampled: BTreeSet<&String> = seen.iter().flatten().collect();
    assert_eq!(held, sampled, "every mapped role is in the sample");
    assert!(roles.subjects.len() >= 50, "50 developers");
    assert!(!roles.subjects.contains_key("contractor") && !roles.subjects.contains_key("nobody"));
    out.push(("alice".into(), Vec::new()));
    out.push(("contractor".into(), vec!["reader"]));
    out.push(("nobody".into(), Vec::new()));
    out
}

#[tokio::test]
async fn a_sample_of_the_fifty_developers_lists_and_calls_what_their_roles_grant() {
    let y = example();
    let roles = Roles::of(&y);
    let open = TestGateway::start_yaml(&unfiltered(&y)).await;
    let tools = catalog(&open).await;
    open.stop().await;
    let backends: BTreeSet<&str> = tools.iter().map(|t| t.backend.as_str()).collect();
    assert_eq!(backends.len(), 5, "{tools:?}");
    for b in &backends {
        let [(read, _), (write, _)] = probes(b);
        let hint = |n: &str| {
            tools
                .iter()
                .find(|t| t.backend == *b && t.name == n)
                .map(|t| t.read_only)
        };
        assert_eq!(
            (hint(read), hint(write)),
            (Some(true), Some(false)),
            "{b}'s probes"
        );
    }

    let idp = Idp::start().await;
    let gw = TestGateway::start_yaml(&runnable(y, &idp.issuer)).await;
    for (subject, token_roles) in sample(&roles) {
        let held = roles.of_subject(&subject, &token_roles);
        let case = format!("{subject} {held:?}");
        let mut req = TokenRequest::subject(&subject).aud(RESOURCE).scope("mcp");
        if !token_roles.is_empty() {
            req = req.roles(&token_roles);
        }
        let token = idp.token(req).await;
        let expected: BTreeSet<String> = tools
            .iter()
            .filter(|t| roles.may(&held, t))
            .map(Tool::listed)
            .collect();

        // What the Python SDK lists.
        let out = peers::run_driver_as(
            Sdk::Python,
            &gw.url,
            Some(&token),
            &["list"],
            peers::DRIVER_TIMEOUT,
        )
        .await;
        let listed: BTreeSet<String> = out["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("{case}: {out}"))
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(listed, expected, "{case}");

        let merged = RawClient::connect_with_token(&gw.url, &token).await;
        let mut id = 10;
        for b in &backends {
            // The virtual server lists exactly this backend's part of the merged listing.
            let url = format!("{}/servers/{b}/mcp", gw.base);
            let virt = RawClient::connect_with_token(&url, &token).await;
            let list = virt.call(1, "tools/list", json!({})).await;
            let own: BTreeSet<String> = list["result"]["tools"]
                .as_array()
                .unwrap_or_else(|| panic!("{case} {b}: {list}"))
                .iter()
                .map(|t| format!("{b}{SEP}{}", t["name"].as_str().unwrap()))
                .collect();
            let part = expected
                .iter()
                .filter(|t| t.starts_with(&format!("{b}{SEP}")));
            assert_eq!(own, part.cloned().collect(), "{case}: /servers/{b}/mcp");

            for (name, args) in probes(b) {
                id += 1;
                let tool = tools
                    .iter()
                    .find(|t| t.backend == *b && t.name == name)
                    .unwrap();
                let what = format!("{case} calls {}", tool.listed());
                let resp = merged.tool(id, &tool.listed(), args.clone()).await;
                if !roles.may(&held, tool) {
                    denied(&resp, "rbac:", &what);
                    // Not through the virtual server either.
                    denied(
                        &virt.tool(id, name, args).await,
                        "rbac:",
                        &format!("{what} (virtual)"),
                    );
                } else if name == "open_pr" {
                    // The roles allow it; the Rego rule decides.
                    if subject == "alice" {
                        succeeded(&resp, &what);
                    } else {
                        denied(&resp, "rego:deny", &what);
                        let message = resp["error"]["message"].as_str().unwrap();
                        assert!(
                            message.contains("only alice may open pull requests"),
                            "{what}: {resp}"
                        );
                    }
                } else {
                    succeeded(&resp, &what);
                }
            }
        }
    }

    // alice, through the SDK: a pull request in acme opens; in another org the Rego rule's
    // reason is what her client reads.
    let alice = idp
        .token(TokenRequest::subject("alice").aud(RESOURCE).scope("mcp"))
        .await;
    let call = |repo: &'static str| {
        let args = json!({"repo": repo, "title": "From the SDK"}).to_string();
        let url = gw.url.clone();
        let alice = alice.clone();
        async move {
            let argv = ["call", "github__open_pr", args.as_str()];
            peers::run_driver_as(
                Sdk::Python,
                &url,
                Some(&alice),
                &argv,
                peers::DRIVER_TIMEOUT,
            )
            .await
        }
    };
    let opened = call("acme/switchboard").await;
    assert_eq!(
        opened["result"]["structuredContent"]["repo"], "acme/switchboard",
        "{opened}"
    );
    assert_eq!(
        opened["result"]["structuredContent"]["state"], "open",
        "{opened}"
    );
    let refused = call("other/tools").await;
    assert_eq!(refused["error"]["code"], -32006, "{refused}");
    assert_eq!(refused["error"]["data"]["rule"], "rego:deny", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(r#"alice may open pull requests only in org acme, not in "other""#),
        "{refused}"
    );
    gw.stop().await;
}
