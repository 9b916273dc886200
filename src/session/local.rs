//! Requests the session answers itself: ping and the list methods, served from the catalog view.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::json;

use super::Shared;
use crate::catalog::{Exposed, View};
use crate::policy::{Action, Principal, SessionSlots};
use crate::protocol::jsonrpc::codes;
use crate::protocol::{ErrorObject, Request, methods};

/// Builds the raw `result` JSON for a locally answered request. Lists show only what the policy
/// pipeline's stages permit this principal (the same rules that decide a call; listing never
/// counts as one).
pub(super) fn answer(
    shared: &Shared,
    view: &View,
    principal: &Principal,
    req: &Request,
    slots: Option<&SessionSlots>,
) -> Result<Bytes, ErrorObject> {
    let names = shared.backend_names();
    let visible = |e: &Exposed| {
        shared
            .policy
            .visible(principal, &action_of(&req.method, &names, e))
    };
    let marking = shared.policy.marks_listings();
    let list = |key: &str, items: &[Exposed]| {
        let mut out = BytesMut::with_capacity(
            64 + items.iter().map(|e| e.json.get().len() + 1).sum::<usize>(),
        );
        out.put_slice(b"{\"");
        out.put_slice(key.as_bytes());
        out.put_slice(b"\":[");
        let mut first = true;
        for e in items
            .iter()
            .filter(|e| shared.policy.is_empty() || visible(e))
        {
            if !first {
                out.put_u8(b',');
            }
            first = false;
            let marks = if marking {
                shared
                    .policy
                    .marks(principal, &action_of(&req.method, &names, e), slots)
            } else {
                Vec::new()
            };
            match marked(e, marks) {
                Some(json) => out.put_slice(json.as_bytes()),
                None => out.put_slice(e.json.get().as_bytes()),
            }
        }
        out.put_slice(b"]}");
        out.freeze()
    };
    match req.method.as_str() {
        methods::PING => Ok(Bytes::from_static(b"{}")),
        methods::TOOLS_LIST => Ok(list("tools", &view.tools)),
        methods::PROMPTS_LIST => Ok(list("prompts", &view.prompts)),
        methods::RESOURCES_LIST => Ok(list("resources", &view.resources)),
        methods::RESOURCES_TEMPLATES_LIST => Ok(list("resourceTemplates", &view.templates)),
        methods::INITIALIZE => Err(ErrorObject::new(
            codes::INVALID_REQUEST,
            "this session is already initialized; send initialize without Mcp-Session-Id to start a new one",
        )),
        other => Err(ErrorObject::new(
            codes::METHOD_NOT_FOUND,
            format!("Method not found: {other}"),
        )
        .with_data(json!({"method": other}))),
    }
}

/// The listing question about one entry.
fn action_of<'a>(method: &'a str, names: &[&'a str], e: &'a Exposed) -> Action<'a> {
    let backend = names.get(e.backend).copied().unwrap_or_default();
    Action::new(method, backend, &e.original).with_facts(&e.facts)
}

/// The entry with the stages' notes in its `_meta` (`None`: no notes, send it as it is).
fn marked(e: &Exposed, marks: Vec<(String, serde_json::Value)>) -> Option<String> {
    if marks.is_empty() {
        return None;
    }
    let mut def: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(e.json.get()).ok()?;
    let meta = def
        .entry("_meta")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    if let serde_json::Value::Object(m) = meta {
        m.extend(marks);
    }
    serde_json::to_string(&def).ok()
}
