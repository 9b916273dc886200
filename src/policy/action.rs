//! What a call asks for: the kind of target, its backend and its backend-side name — one mapping
//! from MCP methods to kinds, shared by routing, listing and every stage.

use serde_json::value::RawValue;

use super::Facts;
use crate::protocol::methods;

/// The kind of thing a request touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Tool,
    Prompt,
    Resource,
    /// Anything else routed to a backend. (`completion/complete` is asked as the prompt or
    /// resource its `ref` names: see `Kind::of_ref`.)
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

    /// The kind a `completion/complete` request's `ref.type` names: completing a prompt's or a
    /// resource template's argument is authorized as that prompt or resource.
    pub fn of_ref(ref_type: Option<&str>) -> Kind {
        match ref_type {
            Some("ref/prompt") => Kind::Prompt,
            Some("ref/resource") => Kind::Resource,
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
#[derive(Clone, Copy, Debug)]
pub struct Action<'a> {
    pub kind: Kind,
    pub backend: &'a str,
    /// The backend's own tool/prompt name or resource URI (for `Other`: the method).
    pub name: &'a str,
    /// The MCP method asked (`tools/call`, or `tools/list` when listing).
    pub method: &'a str,
    /// What the catalog knows about the target (read-only, annotations, integrity): a tool not
    /// known to be read-only is a write.
    pub facts: &'a Facts,
}

/// The same question about the same target (annotations compared as text).
impl PartialEq for Action<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.kind == o.kind
            && self.backend == o.backend
            && self.name == o.name
            && self.method == o.method
            && self.read_only() == o.read_only()
            && self.annotations().map(RawValue::get) == o.annotations().map(RawValue::get)
    }
}

impl Eq for Action<'_> {}

impl<'a> Action<'a> {
    /// The question for `method` on `name`; a tool counts as a write until `with_facts` says
    /// otherwise.
    pub fn new(method: &'a str, backend: &'a str, name: &'a str) -> Self {
        let kind = Kind::of_method(method);
        Action {
            kind,
            backend,
            name,
            method,
            facts: if kind == Kind::Tool {
                Facts::unknown_tool()
            } else {
                Facts::read()
            },
        }
    }

    /// With the catalog's facts about the target (`Exposed::facts`, or the same carried by a
    /// `Route`).
    pub fn with_facts(mut self, facts: &'a Facts) -> Self {
        self.facts = facts;
        self
    }

    /// Whether the target only reads: a tool annotated `readOnlyHint: true`; every prompt and
    /// resource.
    pub fn read_only(&self) -> bool {
        self.facts.read_only
    }

    /// A tool's `annotations` as its backend declared them, when known.
    pub fn annotations(&self) -> Option<&'a RawValue> {
        self.facts.annotations.as_deref()
    }

    /// Asked as `kind` instead of the method's kind (a completion asks about its `ref`).
    pub fn with_kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
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
        assert_eq!(Kind::of_ref(Some("ref/prompt")), Kind::Prompt);
        assert_eq!(Kind::of_ref(Some("ref/resource")), Kind::Resource);
        assert_eq!(Kind::of_ref(Some("ref/tool")), Kind::Other);
    }

    #[test]
    fn a_tool_is_a_write_unless_the_catalog_says_it_only_reads() {
        assert!(!Action::new(methods::TOOLS_CALL, "b", "t").read_only());
        assert!(
            Action::new(methods::TOOLS_LIST, "b", "t")
                .with_facts(Facts::read())
                .read_only()
        );
        assert!(Action::new(methods::PROMPTS_GET, "b", "p").read_only());
        assert!(Action::new(methods::RESOURCES_READ, "b", "r://x").read_only());
    }
}
