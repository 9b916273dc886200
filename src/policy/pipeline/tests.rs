use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use super::*;
use crate::policy::StageConfig;
use crate::policy::stage::Deny;
use crate::protocol::methods;

/// Denies one tool by name; counts how often it was asked about calls.
#[derive(Debug, Default)]
struct DenyTool(&'static str, AtomicUsize);

impl Stage for DenyTool {
    fn name(&self) -> &'static str {
        "deny-tool"
    }
    fn permits(&self, _p: &Principal, a: &Action<'_>) -> Result<(), Deny> {
        if a.name == self.0 {
            return Err(Deny::forbidden(
                self.0,
                format!("{} is not allowed", self.0),
            ));
        }
        Ok(())
    }
    fn on_request(&self, _c: &mut CallRequest<'_>, _s: Option<&mut SessionSlot>) -> Step {
        self.1.fetch_add(1, Ordering::Relaxed);
        Step::Continue
    }
}

/// Rewrites `arguments.path` to lower case.
#[derive(Debug)]
struct Lower;

impl Stage for Lower {
    fn name(&self) -> &'static str {
        "lower"
    }
    fn on_request(&self, c: &mut CallRequest<'_>, _s: Option<&mut SessionSlot>) -> Step {
        if let Some(Value::Object(a)) = c.arguments.as_deref_mut()
            && let Some(Value::String(p)) = a.get_mut("path")
        {
            *p = p.to_lowercase();
        }
        Step::Continue
    }
}

/// Decides after I/O: denies `slow_no`, allows the rest.
#[derive(Debug)]
struct Remote;

impl Stage for Remote {
    fn name(&self) -> &'static str {
        "remote"
    }
    fn on_request(&self, c: &mut CallRequest<'_>, _s: Option<&mut SessionSlot>) -> Step {
        let no = c.action.name == "slow_no";
        Step::Wait(Box::pin(async move {
            tokio::task::yield_now().await;
            if no {
                Err(Deny::forbidden("remote", "the remote engine said no"))
            } else {
                Ok(())
            }
        }))
    }
}

/// Masks digits in results.
#[derive(Debug)]
struct MaskDigits;

impl Stage for MaskDigits {
    fn name(&self) -> &'static str {
        "mask"
    }
    fn sees_responses(&self) -> bool {
        true
    }
    fn on_response(
        &self,
        _c: &CallResponse<'_>,
        r: &mut ResultBody<'_>,
        _s: Option<&mut SessionSlot>,
    ) -> Result<(), Deny> {
        if r.text().contains("secret") {
            return Err(Deny::forbidden("secret", "the result holds a secret"));
        }
        if r.text().chars().any(|c| c.is_ascii_digit()) {
            let masked: String = r
                .text()
                .chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .collect();
            *r.value_mut() = serde_json::from_str(&masked).unwrap_or(Value::Null);
        }
        Ok(())
    }
}

fn ana() -> Principal {
    Principal {
        subject: Some("ana".into()),
        roles: vec!["dev".into()],
        ..Default::default()
    }
}

fn run(
    p: &Pipeline,
    tool: &str,
    args: &mut Value,
    slots: &mut SessionSlots,
) -> (Outcome, DecisionRecord) {
    let who = ana();
    let mut rec = DecisionRecord::default();
    let mut call = CallRequest {
        principal: &who,
        session_id: "s1",
        action: Action::new(methods::TOOLS_CALL, "fs", tool),
        policy_revision: None,
        arguments: Some(args),
    };
    let out = p.request(&mut call, slots, &mut rec);
    (out, rec)
}

#[test]
fn a_denying_stage_stops_the_pipeline_and_the_record_says_who_and_why() {
    let deny = Arc::new(DenyTool("rm", AtomicUsize::new(0)));
    let p = Pipeline::new(vec![deny.clone(), Arc::new(Lower)]);
    let mut slots = p.new_session();
    let (out, rec) = run(&p, "rm", &mut json!({}), &mut slots);
    let Outcome::Deny(d) = out else {
        panic!("expected a denial")
    };
    assert_eq!(d.code, crate::protocol::jsonrpc::codes::FORBIDDEN);
    assert_eq!(d.to_error().data, Some(json!({"rule": "deny-tool:rm"})));
    assert_eq!(rec.decision, Some("deny"));
    assert_eq!(rec.deny_rule.as_deref(), Some("deny-tool:rm"));
    assert_eq!(rec.principal.as_deref(), Some("ana"));
    assert_eq!(rec.backend.as_deref(), Some("fs"));
    assert_eq!(rec.original_name.as_deref(), Some("rm"));
    assert_eq!(
        deny.1.load(Ordering::Relaxed),
        0,
        "permits refused before on_request"
    );
}

#[test]
fn listing_asks_the_same_rule_and_never_counts_as_a_call() {
    let deny = Arc::new(DenyTool("rm", AtomicUsize::new(0)));
    let p = Pipeline::new(vec![deny.clone()]);
    let who = ana();
    assert!(!p.visible(&who, &Action::new(methods::TOOLS_LIST, "fs", "rm")));
    assert!(p.visible(&who, &Action::new(methods::TOOLS_LIST, "fs", "ls")));
    assert_eq!(deny.1.load(Ordering::Relaxed), 0);
    let mut slots = p.new_session();
    assert!(matches!(
        run(&p, "ls", &mut json!({}), &mut slots).0,
        Outcome::Allow
    ));
    assert_eq!(deny.1.load(Ordering::Relaxed), 1);
}

#[test]
fn a_stage_rewrites_arguments_in_place() {
    let p = Pipeline::new(vec![Arc::new(Lower)]);
    let mut args = json!({"path": "/ETC/Hosts"});
    let mut slots = p.new_session();
    let (out, rec) = run(&p, "read", &mut args, &mut slots);
    assert!(matches!(out, Outcome::Allow));
    assert_eq!(rec.decision, Some("allow"));
    assert_eq!(args, json!({"path": "/etc/hosts"}));
}

#[tokio::test]
async fn a_waiting_stage_resumes_at_the_next_stage() {
    let deny = Arc::new(DenyTool("rm", AtomicUsize::new(0)));
    let p = Pipeline::new(vec![Arc::new(Remote), Arc::new(Lower), deny.clone()]);
    let mut slots = p.new_session();
    let mut args = json!({"path": "A"});
    let (out, mut rec) = run(&p, "slow_yes", &mut args, &mut slots);
    let Outcome::Wait { stage, pending } = out else {
        panic!("expected a wait")
    };
    assert_eq!(stage, 0);
    assert_eq!(
        args,
        json!({"path": "A"}),
        "nothing after the waiting stage ran yet"
    );
    pending.await.expect("allowed");
    let who = ana();
    let mut call = CallRequest {
        principal: &who,
        session_id: "s1",
        action: Action::new(methods::TOOLS_CALL, "fs", "slow_yes"),
        policy_revision: None,
        arguments: Some(&mut args),
    };
    assert!(matches!(
        p.resume(&mut call, &mut slots, &mut rec, stage + 1),
        Outcome::Allow
    ));
    assert_eq!(args, json!({"path": "a"}));
    assert_eq!(deny.1.load(Ordering::Relaxed), 1);

    let (out, mut rec) = run(&p, "slow_no", &mut json!({}), &mut slots);
    let Outcome::Wait { stage, pending } = out else {
        panic!("expected a wait")
    };
    let mut d = pending.await.expect_err("denied after I/O");
    p.deny(stage, &mut d, &mut rec);
    assert_eq!(rec.deny_rule.as_deref(), Some("remote:remote"));
    assert_eq!(
        d.data,
        Some(json!({"rule": "remote:remote"})),
        "the client sees the same name"
    );
}

#[test]
fn response_stages_rewrite_or_block_the_result_and_are_skipped_when_absent() {
    let who = ana();
    let call = CallResponse {
        principal: &who,
        session_id: "s1",
        action: Action::new(methods::TOOLS_CALL, "fs", "read"),
    };
    let quiet = Pipeline::new(vec![Arc::new(Lower)]);
    assert!(!quiet.sees_responses());
    let p = Pipeline::new(vec![Arc::new(MaskDigits)]);
    assert!(p.sees_responses());
    let mut slots = p.new_session();

    let raw =
        serde_json::value::RawValue::from_string(r#"{"text":"card 4111"}"#.into()).expect("raw");
    let mut body = ResultBody::new(&raw);
    let mut rec = DecisionRecord::default();
    p.response(&call, &mut body, &mut slots, &mut rec)
        .expect("passes");
    let out = edited_bytes(body).expect("rewritten");
    assert_eq!(out, br#"{"text":"card ####"}"#);

    let raw = serde_json::value::RawValue::from_string(r#"{"text":"plain"}"#.into()).expect("raw");
    let mut body = ResultBody::new(&raw);
    p.response(&call, &mut body, &mut slots, &mut rec)
        .expect("passes");
    assert!(
        edited_bytes(body).is_none(),
        "an untouched result is forwarded as it came"
    );

    let raw =
        serde_json::value::RawValue::from_string(r#"{"text":"a secret"}"#.into()).expect("raw");
    let mut body = ResultBody::new(&raw);
    let d = p
        .response(&call, &mut body, &mut slots, &mut rec)
        .expect_err("blocked");
    assert_eq!(d.rule, "secret");
    assert_eq!(rec.deny_rule.as_deref(), Some("mask:secret"));
}

#[test]
fn the_call_budget_counts_calls_per_session_not_listings() {
    let cfg: StageConfig =
        serde_norway::from_str("stage: call-budget\nmax_calls: 2\n").expect("config");
    let p = Pipeline::from_config(&[cfg], Vec::new()).expect("builds");
    let who = ana();
    assert!(p.visible(&who, &Action::new(methods::TOOLS_LIST, "fs", "ls")));
    let mut one = p.new_session();
    let mut two = p.new_session();
    assert!(matches!(
        run(&p, "ls", &mut json!({}), &mut one).0,
        Outcome::Allow
    ));
    assert!(matches!(
        run(&p, "ls", &mut json!({}), &mut one).0,
        Outcome::Allow
    ));
    let (out, rec) = run(&p, "ls", &mut json!({}), &mut one);
    let Outcome::Deny(d) = out else {
        panic!("third call refused")
    };
    assert_eq!(d.code, crate::protocol::jsonrpc::codes::LIMIT_EXCEEDED);
    assert_eq!(
        d.data.as_ref().and_then(|v| v.get("limit")),
        Some(&json!(2))
    );
    assert_eq!(rec.deny_rule.as_deref(), Some("call-budget:max_calls"));
    assert!(
        matches!(run(&p, "ls", &mut json!({}), &mut two).0, Outcome::Allow),
        "another session has its own budget"
    );
    assert!(
        p.visible(&who, &Action::new(methods::TOOLS_LIST, "fs", "ls")),
        "a spent budget hides nothing"
    );
}

#[test]
fn stage_configs_are_tagged_and_strict() {
    assert!(
        serde_norway::from_str::<StageConfig>("stage: call-budget\nmax_calls: 1\nmax: 2\n")
            .is_err()
    );
    assert!(serde_norway::from_str::<StageConfig>("stage: teleport\n").is_err());
    let c: StageConfig = serde_norway::from_str("stage: access-list\nrules: []\n").expect("parses");
    assert_eq!(
        Pipeline::from_config(&[c], Vec::new())
            .expect("builds")
            .stage_names(),
        ["integrity", "access-list"],
        "the quarantine check always runs first"
    );
}
