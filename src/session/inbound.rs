//! The backend → client path of one session: backend answers, requests (sampling, elicitation,
//! roots) and notifications mapped back to client ids and put on the right client stream; the
//! client's notifications and answers to backend requests mapped forward; catalog changes.

use serde_json::{Value, json};
use tracing::debug;

use super::Scope;
use super::actor::SessionState;
use super::msg::BackendMsg;
use super::pending::ServerRequest;
use super::streams::GET_STREAM;
use crate::catalog::Changed;
use crate::protocol::jsonrpc::codes;
use crate::protocol::{ErrorObject, Message, Notification, Request, RequestId, Response, methods};

impl SessionState {
    /// A message the client sent that is not a request.
    pub(super) fn on_client_message(&mut self, msg: Message) {
        match msg {
            Message::Notification(n) if n.method == methods::CANCELLED => self.on_client_cancel(&n),
            Message::Notification(n) if n.method == methods::ROOTS_LIST_CHANGED => {
                for c in self.children.iter().flatten() {
                    let _ = c.cast(BackendMsg::Send(n.clone().into_message()));
                }
            }
            Message::Notification(_) | Message::Request(_) => {}
            Message::Response(mut r) => {
                let RequestId::Num(g) = r.id else { return };
                let Some(sr) = self.pending.server_requests.remove(&g) else {
                    debug!(session = %self.id, id = g, "Response to an unknown server request ignored");
                    return;
                };
                r.id = sr.original_id;
                self.send_to(sr.backend, r.into_message());
            }
        }
    }

    fn send_to(&self, backend: usize, msg: Message) {
        if let Some(c) = &self.children[backend] {
            let _ = c.cast(BackendMsg::Send(msg));
        }
    }

    /// The client stream a backend message belongs on.
    fn stream_for(&self, backend: usize, related: Option<&RequestId>) -> u64 {
        if let Some(RequestId::Num(n)) = related
            && let Some(e) = self.pending.get(*n)
        {
            return e.stream;
        }
        self.pending
            .sole_for_backend(backend)
            .map(|e| e.stream)
            .unwrap_or(GET_STREAM)
    }

    pub(super) fn on_upstream(&mut self, backend: usize, msg: Message, related: Option<RequestId>) {
        match msg {
            Message::Response(r) => self.on_response(backend, r),
            Message::Request(mut r) => self.on_server_request(backend, &mut r, related),
            Message::Notification(n) => self.on_backend_notification(backend, n, related),
        }
    }

    fn on_server_request(&mut self, backend: usize, r: &mut Request, related: Option<RequestId>) {
        let refuse = |e: ErrorObject| Response::error(r.id.clone(), e).into_message();
        let needs = match r.method.as_str() {
            methods::PING => {
                return self.send_to(
                    backend,
                    Response::ok(r.id.clone(), &json!({})).into_message(),
                );
            }
            "sampling/createMessage" => Some("sampling"),
            "elicitation/create" => Some("elicitation"),
            "roots/list" => Some("roots"),
            _ => None,
        };
        if let Some(cap) = needs
            && !self.client.capabilities.contains_key(cap)
        {
            let e = ErrorObject::new(
                codes::METHOD_NOT_FOUND,
                format!("the client did not declare the {cap} capability"),
            );
            return self.send_to(backend, refuse(e));
        }
        let stream = self.stream_for(backend, related.as_ref());
        if stream == GET_STREAM
            && self.client.protocol_version.era() == crate::protocol::Era::Stateless
        {
            // Stateless clients are only reachable inside a request (MRTR): nobody would answer.
            let e = ErrorObject::new(
                codes::METHOD_NOT_FOUND,
                format!(
                    "{} outside a client request cannot reach a 2026-07-28 client",
                    r.method
                ),
            );
            return self.send_to(backend, refuse(e));
        }
        let g = self.pending.add_server_request(ServerRequest {
            backend,
            original_id: r.id.clone(),
            stream,
        });
        r.id = RequestId::Num(g);
        let bytes = Message::Request(r.clone()).to_bytes();
        self.streams.interim(stream, bytes);
    }

    fn on_backend_notification(
        &mut self,
        backend: usize,
        mut n: Notification,
        related: Option<RequestId>,
    ) {
        match n.method.as_str() {
            methods::PROGRESS => {
                let Some(RequestId::Num(up)) = n
                    .param("progressToken")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                else {
                    return;
                };
                let Some(e) = self.pending.get(up) else {
                    return;
                };
                let (stream, token) = (e.stream, e.progress_token.clone());
                if let (Some(p), Some(token)) = (n.params.as_mut(), token) {
                    p.insert("progressToken".into(), token);
                    self.streams.interim(stream, n.into_message().to_bytes());
                }
            }
            methods::CANCELLED => {
                let Some(id) = n
                    .param("requestId")
                    .and_then(|v| serde_json::from_value::<RequestId>(v.clone()).ok())
                else {
                    return;
                };
                if let Some(g) = self.pending.find_server_request(backend, &id)
                    && let Some(sr) = self.pending.server_requests.remove(&g)
                    && let Some(p) = n.params.as_mut()
                {
                    p.insert("requestId".into(), Value::from(g));
                    self.streams.interim(sr.stream, n.into_message().to_bytes());
                }
            }
            methods::TOOLS_LIST_CHANGED
            | methods::PROMPTS_LIST_CHANGED
            | methods::RESOURCES_LIST_CHANGED => {
                // Lists are shared: the catalog re-discovers and every session hears about it.
                self.shared.catalog.request_refresh(backend);
            }
            methods::RESOURCES_UPDATED => {
                if let Some(uri) = n.param("uri").and_then(Value::as_str).map(str::to_string) {
                    let view = self.scope.view(&self.shared.catalog);
                    if let Some(e) = view
                        .resources
                        .iter()
                        .find(|e| e.backend == backend && e.original == uri)
                        && let Some(p) = n.params.as_mut()
                    {
                        p.insert("uri".into(), Value::String(e.name.clone()));
                    }
                }
                self.streams
                    .interim(GET_STREAM, n.into_message().to_bytes());
            }
            _ => {
                let stream = self.stream_for(backend, related.as_ref());
                self.streams.interim(stream, n.into_message().to_bytes());
            }
        }
    }

    pub(super) fn on_catalog_changed(&mut self, backend: usize, changed: Changed) {
        let in_scope = match self.scope {
            Scope::Merged(_) => true,
            Scope::Backend(b) => backend == usize::MAX || b == backend,
        };
        if !in_scope {
            return;
        }
        for (flag, method) in [
            (changed.tools, methods::TOOLS_LIST_CHANGED),
            (changed.prompts, methods::PROMPTS_LIST_CHANGED),
            (changed.resources, methods::RESOURCES_LIST_CHANGED),
        ] {
            if flag {
                self.streams.interim(
                    GET_STREAM,
                    Notification::new(method, None).into_message().to_bytes(),
                );
            }
        }
    }
}
