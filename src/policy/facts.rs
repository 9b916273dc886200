//! What the catalog knows about a target beyond its name — read-only or not, annotations, output
//! schema, its integrity verdict — computed once per catalog build and carried to every stage.

use std::sync::Arc;

use serde_json::Value;
use serde_json::value::RawValue;

/// A definition's standing after pinning and the poisoning scan (`integrity::assess`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Integrity {
    /// Pinned and unchanged, or not checked (pinning `off`, nothing found).
    #[default]
    Trusted,
    /// Exposed, but something is wrong with it (pinning `warn`, a scanner finding set to `warn`):
    /// logged and counted at discovery, not per call.
    Warned(Arc<str>),
    /// Hidden from lists and refused when called: the reason the client is told.
    Quarantined(Arc<Quarantine>),
}

/// Why a definition is quarantined: what a client and an administrator are told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantine {
    /// `changed`, `unpinned` or `poisoned` (the refusal's rule: `integrity:<reason>`).
    pub reason: &'static str,
    /// One sentence: what changed or what the scanner found.
    pub detail: String,
}

/// The facts of one tool, prompt, resource or template.
#[derive(Clone, Debug)]
pub struct Facts {
    /// A tool annotated `readOnlyHint: true`; every prompt, resource and template (reading them
    /// is all a client can do). A tool not known to be read-only is a write.
    pub read_only: bool,
    /// A tool's `annotations` as its backend declared them (policy-as-code input).
    pub annotations: Option<Arc<RawValue>>,
    /// A tool's `openWorldHint` as declared (absent: `None`; the MCP default is `true`).
    pub open_world_hint: Option<bool>,
    /// The tool may destroy: `destructiveHint` true, or absent on a tool that is not read-only
    /// (the MCP default).
    pub destructive: bool,
    /// A tool's `outputSchema` (response stages keep `structuredContent` valid against it).
    pub output_schema: Option<Arc<Value>>,
    /// `sha256:<hex>` over the definition's canonical JSON (JCS), when it was hashed.
    pub hash: Option<Arc<str>>,
    pub integrity: Integrity,
}

static UNKNOWN_TOOL: Facts = Facts::plain(false);
static READ: Facts = Facts::plain(true);

impl Facts {
    /// A tool the catalog knows nothing more about: a write.
    pub fn unknown_tool() -> &'static Facts {
        &UNKNOWN_TOOL
    }

    /// A prompt, resource or other target the catalog knows nothing more about: a read.
    pub fn read() -> &'static Facts {
        &READ
    }

    pub const fn plain(read_only: bool) -> Facts {
        Facts {
            read_only,
            annotations: None,
            open_world_hint: None,
            destructive: !read_only,
            output_schema: None,
            hash: None,
            integrity: Integrity::Trusted,
        }
    }

    /// A tool's facts from its definition: hints by the MCP defaults (`readOnlyHint` false,
    /// `destructiveHint` true, `openWorldHint` true), the annotations and output schema kept.
    pub fn of_tool(tool: &serde_json::Map<String, Value>) -> Facts {
        let ann = tool.get("annotations").filter(|a| a.is_object());
        let hint = |k: &str| ann.and_then(|a| a.get(k)).and_then(Value::as_bool);
        let read_only = hint("readOnlyHint") == Some(true);
        Facts {
            read_only,
            annotations: ann
                .and_then(|a| serde_json::value::to_raw_value(a).ok())
                .map(Arc::from),
            open_world_hint: hint("openWorldHint"),
            destructive: !read_only && hint("destructiveHint").unwrap_or(true),
            output_schema: tool
                .get("outputSchema")
                .filter(|s| s.is_object())
                .cloned()
                .map(Arc::new),
            hash: None,
            integrity: Integrity::Trusted,
        }
    }

    pub fn quarantine(&self) -> Option<&Quarantine> {
        match &self.integrity {
            Integrity::Quarantined(q) => Some(q),
            _ => None,
        }
    }
}
