//! Routing a request to its backend: exposed tool/prompt name or resource URI → backend and the
//! backend's own name (exact, collided, by template, or sole provider), and the rewrite of params.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{Exposed, View};
use crate::policy::Facts;
use crate::protocol::jsonrpc::codes;
use crate::protocol::{ErrorObject, Request, methods};

/// Where a routed request goes and how its params are rewritten for the backend.
#[derive(Debug, Clone)]
pub struct Route {
    pub backend: usize,
    /// The params key (`a.b`: nested) where the backend's own name or URI goes before forwarding.
    pub rewrite: &'static str,
    /// The backend's own name or URI.
    pub original: String,
    /// The target's policy facts from the catalog (`Exposed::facts`); a resource routed by URI
    /// is a plain read.
    pub facts: Option<Arc<Facts>>,
}

impl Route {
    /// The facts policy reads (a plain read where the catalog has none).
    pub fn facts(&self) -> &Facts {
        self.facts.as_deref().unwrap_or(Facts::read())
    }

    /// Puts the backend's own name or URI into `params` (moves `original` out).
    pub fn apply(&mut self, params: &mut Map<String, Value>) {
        let value = Value::String(std::mem::take(&mut self.original));
        match self.rewrite.split_once('.') {
            None => {
                params.insert(self.rewrite.into(), value);
            }
            Some((outer, inner)) => {
                if let Some(Value::Object(o)) = params.get_mut(outer) {
                    o.insert(inner.into(), value);
                }
            }
        }
    }
}

/// Where a resource request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRoute {
    pub backend: usize,
    /// The URI as the backend knows it.
    pub uri: String,
}

impl View {
    /// Routes a request the client sent (`tools/call`, `prompts/get`, `resources/*`,
    /// `completion/complete`): what is listed in this view is exactly what routes.
    /// `backend_names` is asked only for resource routes (collided URIs name their backend).
    pub fn route<'n>(
        &self,
        req: &Request,
        backend_names: impl Fn() -> Vec<&'n str>,
    ) -> Result<Route, ErrorObject> {
        let invalid = |m: String| ErrorObject::new(codes::INVALID_PARAMS, m);
        let named = |rewrite, e: &Exposed| Route {
            backend: e.backend,
            rewrite,
            original: e.original.clone(),
            facts: Some(e.facts.clone()),
        };
        match req.method.as_str() {
            methods::TOOLS_CALL | methods::PROMPTS_GET => {
                let is_tool = req.method == methods::TOOLS_CALL;
                let kind = if is_tool { "tool" } else { "prompt" };
                let name = req
                    .param_str("name")
                    .ok_or_else(|| invalid(format!("params.name (the {kind} name) is required")))?;
                let e = if is_tool {
                    self.tool(name)
                } else {
                    self.prompt(name)
                };
                let e = e.ok_or_else(|| {
                    invalid(format!("Unknown {kind}: {name}")).with_data(json!({kind: name}))
                })?;
                Ok(named("name", e))
            }
            methods::RESOURCES_READ
            | methods::RESOURCES_SUBSCRIBE
            | methods::RESOURCES_UNSUBSCRIBE => {
                let uri = req
                    .param_str("uri")
                    .ok_or_else(|| invalid("params.uri is required".into()))?;
                let r = self.route_resource(uri, &backend_names()).ok_or_else(|| {
                    ErrorObject::new(
                        codes::RESOURCE_NOT_FOUND,
                        format!("Resource not found: {uri}"),
                    )
                    .with_data(json!({"uri": uri}))
                })?;
                Ok(Route {
                    backend: r.backend,
                    rewrite: "uri",
                    original: r.uri,
                    facts: None,
                })
            }
            methods::COMPLETION_COMPLETE => {
                let r = req
                    .params
                    .as_ref()
                    .and_then(|p| p.get("ref"))
                    .ok_or_else(|| invalid("params.ref is required".into()))?;
                let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
                match r.get("type").and_then(Value::as_str) {
                    Some("ref/prompt") => {
                        let name = field("name");
                        let e = self
                            .prompt(name)
                            .ok_or_else(|| invalid(format!("Unknown prompt: {name}")))?;
                        Ok(named("ref.name", e))
                    }
                    Some("ref/resource") => {
                        let uri = field("uri");
                        if let Some(t) = self.template(uri) {
                            return Ok(named("ref.uri", t));
                        }
                        let route = self
                            .route_resource(uri, &backend_names())
                            .ok_or_else(|| invalid(format!("Unknown resource: {uri}")))?;
                        Ok(Route {
                            backend: route.backend,
                            rewrite: "ref.uri",
                            original: route.uri,
                            facts: None,
                        })
                    }
                    _ => Err(invalid(
                        "params.ref.type must be ref/prompt or ref/resource".into(),
                    )),
                }
            }
            other => Err(ErrorObject::new(
                codes::METHOD_NOT_FOUND,
                format!("Method not found: {other}"),
            )),
        }
    }

    /// Routes a resource URI; `backend_names` maps indices to names for collided URIs.
    pub fn route_resource(&self, uri: &str, backend_names: &[&str]) -> Option<ResourceRoute> {
        if let Some(e) = self.resource(uri) {
            return Some(ResourceRoute {
                backend: e.backend,
                uri: e.original.clone(),
            });
        }
        if let Some(rest) = uri.strip_prefix("switchboard://") {
            let (name, original) = rest.split_once('/')?;
            let backend = backend_names.iter().position(|n| *n == name)?;
            return self.members.contains(&backend).then(|| ResourceRoute {
                backend,
                uri: original.to_string(),
            });
        }
        if let Some(t) = self
            .templates
            .iter()
            .find(|t| template_matches(&t.original, uri))
        {
            return Some(ResourceRoute {
                backend: t.backend,
                uri: uri.to_string(),
            });
        }
        let mut owners = self.members.iter().filter(|b| {
            self.resources.iter().any(|r| r.backend == **b)
                || self.templates.iter().any(|t| t.backend == **b)
        });
        match (owners.next(), owners.next()) {
            (Some(&only), None) => Some(ResourceRoute {
                backend: only,
                uri: uri.to_string(),
            }),
            _ => None,
        }
    }
}

/// Whether `uri` can be an expansion of an RFC 6570 template (literal parts in order).
pub(crate) fn template_matches(template: &str, uri: &str) -> bool {
    let mut literals = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        literals.push(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => rest = &rest[open + close + 1..],
            None => return false,
        }
    }
    let tail = rest;
    if literals.is_empty() {
        return template == uri;
    }
    let Some(mut remaining) = uri.strip_prefix(literals[0]) else {
        return false;
    };
    for lit in &literals[1..] {
        if lit.is_empty() {
            continue;
        }
        match remaining.find(lit) {
            Some(i) if i > 0 => remaining = &remaining[i + lit.len()..],
            _ => return false,
        }
    }
    !remaining.is_empty() && remaining.ends_with(tail) && remaining.len() > tail.len()
}

#[cfg(test)]
mod tests {
    use super::template_matches;

    #[test]
    fn template_matching_requires_literals_in_order_and_nonempty_vars() {
        assert!(template_matches(
            "test://template/{id}/data",
            "test://template/42/data"
        ));
        assert!(!template_matches(
            "test://template/{id}/data",
            "test://template//data"
        ));
        assert!(!template_matches(
            "test://template/{id}/data",
            "test://other/42/data"
        ));
        assert!(template_matches("note://{id}", "note://7"));
        assert!(!template_matches("note://{id}", "note://"));
        assert!(template_matches("file:///{path}", "file:///etc/hosts"));
    }
}
