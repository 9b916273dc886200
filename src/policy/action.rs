//! What a call asks for: the kind of target, its backend and its backend-side name — one mapping
//! from MCP methods to kinds, shared by routing, listing and every stage.

use crate::protocol::methods;

/// The kind of thing a request touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Tool,
    Prompt,
    Resource,
    /// Anything else routed to a backend (completion, logging, …).
    Other,
}

impl Kind {
    /// The one method → kind mapping: `tools/call` and `tools/list` are about tools, and so on.
    pub fn of_method(method: &str) -> Kind {
        match method {
            methods::TOOLS_CALL | methods::TOOLS_LIST => Kind::Tool,
            methods::PROMPTS_GET | methods::PROMPTS_LIST => Kind::Prompt,
            methods::RESOURCES_READ
            | methods::RESOURCES_LIST
            | methods::RESOURCES_TEMPLATES_LIST
            | methods::RESOURCES_SUBSCRIBE
            | methods::RESOURCES_UNSUBSCRIBE => Kind::Resource,
            _ => Kind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Prompt => "prompt",
            Kind::Resource => "resource",
            Kind::Other => "other",
        }
    }
}

/// One question to the pipeline: may the caller do `method` on `name` (a tool, prompt or resource
/// as the backend knows it) of `backend`? Listing asks it with the list method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action<'a> {
    pub kind: Kind,
    pub backend: &'a str,
    /// The backend's own tool/prompt name or resource URI (for `Other`: the method).
    pub name: &'a str,
    /// The MCP method asked (`tools/call`, or `tools/list` when listing).
    pub method: &'a str,
}

impl<'a> Action<'a> {
    pub fn new(method: &'a str, backend: &'a str, name: &'a str) -> Self {
        Action {
            kind: Kind::of_method(method),
            backend,
            name,
            method,
        }
    }

    /// Whether this is the listing question (never counts as a call).
    pub fn is_listing(&self) -> bool {
        self.method.ends_with("/list")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calling_and_listing_map_to_the_same_kind() {
        for (call, list, kind) in [
            (methods::TOOLS_CALL, methods::TOOLS_LIST, Kind::Tool),
            (methods::PROMPTS_GET, methods::PROMPTS_LIST, Kind::Prompt),
            (
                methods::RESOURCES_READ,
                methods::RESOURCES_LIST,
                Kind::Resource,
            ),
        ] {
            assert_eq!(Kind::of_method(call), kind);
            assert_eq!(Kind::of_method(list), kind);
            assert!(Action::new(list, "b", "n").is_listing());
            assert!(!Action::new(call, "b", "n").is_listing());
        }
        assert_eq!(Kind::of_method("completion/complete"), Kind::Other);
    }
}
