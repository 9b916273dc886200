//! A definition's identity for pinning: the fields that shape what an agent is told, projected,
//! canonicalized by RFC 8785 (JCS) and hashed with SHA-256 into `sha256:<hex>`.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// What is pinned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DefKind {
    Tool,
    Prompt,
    ResourceTemplate,
}

impl DefKind {
    pub const ALL: [DefKind; 3] = [DefKind::Tool, DefKind::Prompt, DefKind::ResourceTemplate];

    /// The key a definition is known by: `name`, or `uriTemplate` for a template.
    pub fn key(self) -> &'static str {
        match self {
            DefKind::Tool | DefKind::Prompt => "name",
            DefKind::ResourceTemplate => "uriTemplate",
        }
    }

    /// The fields a hash covers: everything an agent reads or a schema constrains; never
    /// `_meta`, icons or anything else a server may vary without changing what the tool is.
    pub fn pinned_fields(self) -> &'static [&'static str] {
        match self {
            DefKind::Tool => &[
                "name",
                "title",
                "description",
                "inputSchema",
                "outputSchema",
                "annotations",
            ],
            DefKind::Prompt => &["name", "title", "description", "arguments"],
            DefKind::ResourceTemplate => {
                &["uriTemplate", "name", "title", "description", "mimeType"]
            }
        }
    }

    /// As the manifest and the admin API name it.
    pub fn as_str(self) -> &'static str {
        match self {
            DefKind::Tool => "tool",
            DefKind::Prompt => "prompt",
            DefKind::ResourceTemplate => "resource template",
        }
    }

    /// The manifest's section for this kind.
    pub fn section(self) -> &'static str {
        match self {
            DefKind::Tool => "tools",
            DefKind::Prompt => "prompts",
            DefKind::ResourceTemplate => "resourceTemplates",
        }
    }
}

/// The pinned projection of a definition (only the `pinned_fields`, as the backend sent them).
pub fn projection(kind: DefKind, def: &Map<String, Value>) -> Map<String, Value> {
    kind.pinned_fields()
        .iter()
        .filter_map(|&k| def.get(k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

/// `sha256:<hex>` of the JCS form of the projection.
pub fn hash(kind: DefKind, def: &Map<String, Value>) -> String {
    hash_projection(&projection(kind, def))
}

/// `sha256:<hex>` of an already projected definition (a manifest entry's `definition`).
pub fn hash_projection(projected: &Map<String, Value>) -> String {
    // JCS fails only on numbers JSON cannot carry (NaN, infinities), which serde_json cannot
    // hold; fall back to serde_json's sorted-key form rather than fail discovery.
    let canonical = serde_json_canonicalizer::to_vec(projected)
        .unwrap_or_else(|_| serde_json::to_vec(projected).unwrap_or_default());
    format!("sha256:{}", hex::encode(Sha256::digest(&canonical)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn key_order_whitespace_and_number_spelling_do_not_change_the_hash() {
        let a = obj(json!({"name": "add", "description": "Adds", "inputSchema":
            {"type": "object", "properties": {"a": {"type": "number", "maximum": 1e2}}}}));
        let b: Map<String, Value> = serde_json::from_str(
            r#"{ "inputSchema": {"properties": {"a": {"maximum": 100.0, "type": "number"}},
                 "type": "object"}, "description": "Adds", "name": "add" }"#,
        )
        .unwrap();
        assert_eq!(hash(DefKind::Tool, &a), hash(DefKind::Tool, &b));
        assert!(hash(DefKind::Tool, &a).starts_with("sha256:"));
        assert_eq!(hash(DefKind::Tool, &a).len(), 7 + 64);
    }

    #[test]
    fn what_an_agent_reads_changes_the_hash_and_meta_does_not() {
        let base = obj(json!({"name": "add", "description": "Adds two numbers."}));
        let h = hash(DefKind::Tool, &base);
        let mut changed = base.clone();
        changed.insert(
            "description".into(),
            json!("Adds two numbers. <IMPORTANT>…"),
        );
        assert_ne!(hash(DefKind::Tool, &changed), h);
        let mut annotated = base.clone();
        annotated.insert("annotations".into(), json!({"readOnlyHint": true}));
        assert_ne!(hash(DefKind::Tool, &annotated), h);
        let mut meta = base.clone();
        meta.insert("_meta".into(), json!({"x": 1}));
        meta.insert("icons".into(), json!([{"src": "https://x/i.png"}]));
        assert_eq!(hash(DefKind::Tool, &meta), h);
    }

    #[test]
    fn the_hash_is_the_jcs_sha256_of_the_projection() {
        // RFC 8785: keys sorted by UTF-16 code units, no whitespace, shortest number form.
        let def = obj(json!({"name": "n", "description": "d", "_meta": {}}));
        let expected = Sha256::digest(br#"{"description":"d","name":"n"}"#);
        assert_eq!(
            hash(DefKind::Tool, &def),
            format!("sha256:{}", hex::encode(expected))
        );
        let t =
            obj(json!({"uriTemplate": "notes://{id}", "name": "note", "mimeType": "text/plain"}));
        let expected = Sha256::digest(
            br#"{"mimeType":"text/plain","name":"note","uriTemplate":"notes://{id}"}"#,
        );
        assert_eq!(
            hash(DefKind::ResourceTemplate, &t),
            format!("sha256:{}", hex::encode(expected))
        );
    }
}
