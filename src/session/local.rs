//! Requests the session answers itself: ping and the list methods, served from the catalog view.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::json;

use super::Shared;
use crate::catalog::{Exposed, View};
use crate::policy::{Action, Principal};
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
) -> Result<Bytes, ErrorObject> {
    let names = shared.backend_names();
    let visible = |e: &Exposed| {
        let backend = names.get(e.backend).copied().unwrap_or_default();
        let action = Action::new(&req.method, backend, &e.original).with_facts(&e.facts);
        shared.policy.visible(principal, &action)
    };
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
            out.put_slice(e.json.get().as_bytes());
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
