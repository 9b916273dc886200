//! `subscriptions/listen` (2026-07-28): a long-lived SSE response that first acknowledges the
//! honoured filter, then carries the catalog's list changes the client opted in to, each tagged
//! with the subscription id; it ends with a graceful result when the gateway shuts down.

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};

use super::{error, sse_response};
use crate::catalog::Changed;
use crate::listener::ListenerState;
use crate::protocol::era2026::SUBSCRIPTION_ID;
use crate::protocol::jsonrpc::codes;
use crate::protocol::{ErrorObject, Notification, RequestId, methods};
use crate::session::Scope;

const ACKNOWLEDGED: &str = "notifications/subscriptions/acknowledged";

/// The list-change kinds a filter can ask for, with the notification each one brings.
const KINDS: [(&str, &str); 3] = [
    ("toolsListChanged", methods::TOOLS_LIST_CHANGED),
    ("promptsListChanged", methods::PROMPTS_LIST_CHANGED),
    ("resourcesListChanged", methods::RESOURCES_LIST_CHANGED),
];

fn notification(method: &str, mut params: Map<String, Value>, meta: &Value) -> Bytes {
    params.insert("_meta".into(), meta.clone());
    Notification::new(method, Some(params))
        .into_message()
        .to_bytes()
}

fn wanted(changed: Changed, kind: &str) -> bool {
    match kind {
        "toolsListChanged" => changed.tools,
        "promptsListChanged" => changed.prompts,
        _ => changed.resources,
    }
}

pub(super) fn listen(
    st: &ListenerState,
    scope: Scope,
    id: RequestId,
    params: Option<&Map<String, Value>>,
) -> axum::response::Response {
    let Some(filter) = params
        .and_then(|p| p.get("notifications"))
        .and_then(Value::as_object)
    else {
        return error(
            id,
            ErrorObject::new(
                codes::INVALID_PARAMS,
                "params.notifications (the subscription filter) is required",
            ),
        );
    };
    // Resource subscriptions are not offered yet: the acknowledgement omits them.
    let honoured: Vec<(&str, &str)> = KINDS
        .into_iter()
        .filter(|(k, _)| filter.get(*k).and_then(Value::as_bool) == Some(true))
        .collect();
    let mut ack = Map::new();
    for (k, _) in &honoured {
        ack.insert((*k).into(), Value::Bool(true));
    }
    let meta = json!({ SUBSCRIPTION_ID: serde_json::to_value(&id).unwrap_or(Value::Null) });
    let first = notification(
        ACKNOWLEDGED,
        Map::from_iter([("notifications".to_string(), Value::Object(ack))]),
        &meta,
    );
    let goodbye =
        crate::protocol::Response::ok(id, &json!({"resultType": "complete", "_meta": meta}))
            .into_message()
            .to_bytes();
    let mut changes = st.shared.catalog.subscribe();
    let closing = st.registry.closing();
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        if tx.send(first).await.is_err() {
            return;
        }
        loop {
            let change = tokio::select! {
                c = changes.recv() => c,
                _ = closing.cancelled() => {
                    let _ = tx.send(goodbye).await;
                    return;
                }
                _ = tx.closed() => return,
            };
            let (backend, changed) = match change {
                Ok(c) => c,
                Err(broadcast::error::RecvError::Lagged(_)) => (usize::MAX, Changed::ALL),
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let in_scope = match scope {
                Scope::Merged(_) => true,
                Scope::Backend(b) => backend == usize::MAX || backend == b,
            };
            if !in_scope {
                continue;
            }
            for (kind, method) in &honoured {
                if wanted(changed, kind)
                    && tx
                        .send(notification(method, Map::new(), &meta))
                        .await
                        .is_err()
                {
                    return;
                }
            }
        }
    });
    sse_response(rx, Some(st.shared.limits.keep_alive))
}
