//! The tool-poisoning scanner: finds hidden instructions, invisible or reordering characters,
//! sensitive paths, cross-tool shadowing, exfiltration URLs, encoded blobs and lookalike names in
//! the tool, prompt and resource-template definitions a backend announces. Pure: no I/O, no async.
//!
//! Every string a model reads is scanned: the name, title and description, every string anywhere
//! in `inputSchema`/`outputSchema`/`arguments` (property names, enum values, defaults and nested
//! descriptions included), `annotations.title` and a template's `uriTemplate`. Schemas are walked
//! to [`MAX_DEPTH`] levels; strings nested deeper are not scanned and that is not reported as a
//! finding (no real schema nests that far; a caller that cares can reject such schemas).
//! Phrase rules match on a folded copy of each string (see `text::Folded`), so case, spacing,
//! zero-width padding, full-width letters and Cyrillic lookalikes do not hide a phrase.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod blobs;
mod config;
mod names;
mod paths;
mod phrases;
mod shadowing;
mod text;
mod unicode;
mod urls;

#[cfg(test)]
mod tests;

pub use config::ScanConfig;

/// How deep into a definition's schemas the scanner walks (the definition itself is level 0).
pub const MAX_DEPTH: usize = 32;
/// At most this many findings of one rule in one string (a string full of zero-width characters
/// is one problem, not a thousand).
const MAX_PER_STRING_RULE: usize = 8;
/// At most this many findings for one definition.
const MAX_PER_DEFINITION: usize = 256;

/// Every rule id the scanner reports, in the order of the rule list.
pub const RULES: &[&str] = &[
    HIDDEN_INSTRUCTION,
    INVISIBLE_UNICODE,
    BIDI_CONTROL,
    CONTROL_CHARACTER,
    SENSITIVE_PATH,
    TOOL_SHADOWING,
    EXFILTRATION_URL,
    ENCODED_BLOB,
    CONFUSABLE_NAME,
];
pub const HIDDEN_INSTRUCTION: &str = "hidden-instruction";
pub const INVISIBLE_UNICODE: &str = "invisible-unicode";
pub const BIDI_CONTROL: &str = "bidi-control";
pub const CONTROL_CHARACTER: &str = "control-character";
pub const SENSITIVE_PATH: &str = "sensitive-path";
pub const TOOL_SHADOWING: &str = "tool-shadowing";
pub const EXFILTRATION_URL: &str = "exfiltration-url";
pub const ENCODED_BLOB: &str = "encoded-blob";
pub const CONFUSABLE_NAME: &str = "confusable-name";

/// How much a finding should worry an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

pub use super::hash::DefKind;

/// One problem in one string of a definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable kebab-case rule id (one of [`RULES`]).
    pub rule: &'static str,
    pub severity: Severity,
    /// RFC 6901 pointer to the string inside the definition. For an object key (a property
    /// name) it points at that member, and `span` is within the key.
    pub pointer: String,
    /// Byte range of the match within that string.
    pub span: Range<usize>,
    /// The matched text with a little context, hidden characters written as `\u{XXXX}`.
    pub excerpt: String,
    /// One sentence: what was found and why it matters.
    pub message: String,
}

/// The scanner, compiled once from a [`ScanConfig`].
#[derive(Debug)]
pub struct Scanner {
    enabled: bool,
    disabled: HashSet<&'static str>,
    severity: BTreeMap<&'static str, Severity>,
    phrases: phrases::Phrases,
    urls: urls::Urls,
    blobs: blobs::Blobs,
}

/// What a string is to the definition; rules weigh the same text differently by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The definition's own `name`.
    Name,
    /// An object key inside a schema or argument (a property name, a keyword).
    Key,
    /// Prose: descriptions, titles, anything not below.
    Text,
    /// A value: `default`, `const`, `examples`, `enum` members.
    Value,
    /// `$schema`, `$id`, `$ref`: references for validators, not read as instructions.
    Meta,
}

/// One string to scan and where it sits.
struct Field<'a> {
    pointer: String,
    text: &'a str,
    role: Role,
    /// The key under which the value sits (or the property a `default` belongs to), lower case.
    key: String,
}

/// A rule's raw result, before excerpt and severity overrides.
struct Hit {
    rule: &'static str,
    severity: Severity,
    span: Range<usize>,
    message: String,
}

impl Scanner {
    /// Compiles the scanner; `Err` lists every invalid config value.
    pub fn new(cfg: &ScanConfig) -> Result<Scanner, String> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|(f, p)| format!("{f}: {p}")).collect();
            return Err(list.join("; "));
        }
        let known = |r: &str| RULES.iter().copied().find(|k| *k == r);
        Ok(Scanner {
            enabled: cfg.enabled,
            disabled: cfg.disabled_rules.iter().filter_map(|r| known(r)).collect(),
            severity: cfg
                .severity
                .iter()
                .filter_map(|(r, s)| known(r).map(|k| (k, *s)))
                .collect(),
            phrases: phrases::Phrases::new(&cfg.extra_phrases, &cfg.extra_sensitive_paths)?,
            urls: urls::Urls::new(&cfg.allowed_hosts)?,
            blobs: blobs::Blobs::new(cfg.min_blob_len)?,
        })
    }

    /// Every string of the definition: name, title, description, and every string anywhere
    /// inside inputSchema/outputSchema/arguments (property names too, enum values, defaults,
    /// nested descriptions), annotations' title.
    pub fn scan(&self, kind: DefKind, def: &Map<String, Value>) -> Vec<Finding> {
        if !self.enabled {
            return Vec::new();
        }
        let own_name = def.get("name").and_then(Value::as_str).unwrap_or("");
        let own_folded = text::Folded::new(own_name).text;
        let mut findings = Vec::new();
        for field in fields(kind, def) {
            let mut hits = Vec::new();
            self.check(&field, &own_folded, &mut hits);
            self.finish(&field.pointer, field.text, hits, &mut findings);
        }
        if findings.len() > MAX_PER_DEFINITION {
            // Keep the most severe, in document order.
            let mut ranked: Vec<(usize, Finding)> = findings.into_iter().enumerate().collect();
            ranked.sort_by_key(|(i, f)| (std::cmp::Reverse(f.severity), *i));
            ranked.truncate(MAX_PER_DEFINITION);
            ranked.sort_by_key(|(i, _)| *i);
            findings = ranked.into_iter().map(|(_, f)| f).collect();
        }
        findings
    }

    /// Cross-backend: tool names (exposed or original) that are Unicode confusables of another
    /// backend's tool name (skeletons equal, names differ, or equal skeleton with mixed scripts).
    /// Input: (backend, tool name) pairs of all backends; output: index into input + finding
    /// (pointer "/name").
    pub fn confusables(&self, names: &[(&str, &str)]) -> Vec<(usize, Finding)> {
        if !self.enabled || self.disabled.contains(CONFUSABLE_NAME) {
            return Vec::new();
        }
        names::cross_backend(names)
            .into_iter()
            .map(|(i, hit)| {
                let name = names.get(i).map_or("", |(_, n)| n);
                (i, self.finding("/name", name, hit))
            })
            .collect()
    }

    /// Runs every rule on one string.
    fn check(&self, field: &Field<'_>, own_name: &str, out: &mut Vec<Hit>) {
        let folded = text::Folded::new(field.text);
        unicode::check(field.text, out);
        self.phrases.check(&folded, own_name, out);
        if matches!(field.role, Role::Name | Role::Key) && field.text.contains(['_', '-']) {
            let spaced = field.text.replace(['_', '-'], " ");
            self.phrases
                .check_identifier(&text::Folded::new(&spaced), own_name, out);
        }
        if field.role != Role::Meta {
            self.urls.check(field, &folded, out);
            self.blobs.check(field, &self.phrases, out);
        }
        if field.role == Role::Name {
            names::check_one(field.text, out);
        }
    }

    /// Applies the config to raw hits (disabled rules), keeps the most severe of overlapping
    /// hits of one rule and at most [`MAX_PER_STRING_RULE`] per rule (the most severe), and writes
    /// the findings in the order they occur in the string.
    fn finish(&self, pointer: &str, s: &str, mut hits: Vec<Hit>, out: &mut Vec<Finding>) {
        hits.retain(|h| !self.disabled.contains(h.rule));
        hits.sort_by_key(|h| (h.rule, std::cmp::Reverse(h.severity), h.span.start));
        let overlap = |a: &Range<usize>, b: &Range<usize>| {
            a.start < b.end.max(b.start + 1) && b.start < a.end.max(a.start + 1)
        };
        let mut kept: Vec<Hit> = Vec::new();
        for h in hits {
            let same: Vec<&Hit> = kept.iter().filter(|k| k.rule == h.rule).collect();
            if same.len() < MAX_PER_STRING_RULE && !same.iter().any(|k| overlap(&k.span, &h.span)) {
                kept.push(h);
            }
        }
        kept.sort_by_key(|h| (h.span.start, h.rule));
        out.extend(kept.into_iter().map(|h| self.finding(pointer, s, h)));
    }

    fn finding(&self, pointer: &str, s: &str, hit: Hit) -> Finding {
        Finding {
            rule: hit.rule,
            severity: self.severity.get(hit.rule).copied().unwrap_or(hit.severity),
            pointer: pointer.to_owned(),
            excerpt: text::excerpt(s, &hit.span),
            span: hit.span,
            message: hit.message,
        }
    }
}

/// The strings of a definition, in document order, with their pointers and roles.
fn fields(kind: DefKind, def: &Map<String, Value>) -> Vec<Field<'_>> {
    let mut out = Vec::new();
    let scalar = |key: &'static str, role: Role| {
        def.get(key).and_then(Value::as_str).map(|text| Field {
            pointer: format!("/{}", escape_pointer(key)),
            text,
            role,
            key: key.to_owned(),
        })
    };
    out.extend(scalar("name", Role::Name));
    out.extend(scalar("title", Role::Text));
    out.extend(scalar("description", Role::Text));
    let nested: &[&str] = match kind {
        DefKind::Tool => &["inputSchema", "outputSchema"],
        DefKind::Prompt => &["arguments"],
        DefKind::ResourceTemplate => &[],
    };
    if kind == DefKind::ResourceTemplate {
        out.extend(scalar("uriTemplate", Role::Value));
        out.extend(scalar("mimeType", Role::Value));
    }
    if let Some(title) = def
        .get("annotations")
        .and_then(|a| a.get("title"))
        .and_then(Value::as_str)
    {
        out.push(Field {
            pointer: "/annotations/title".to_owned(),
            text: title,
            role: Role::Text,
            key: "title".to_owned(),
        });
    }
    for key in nested {
        if let Some(v) = def.get(*key) {
            walk(v, format!("/{key}"), key, &mut out);
        }
    }
    out
}

/// Collects every string (and object key) under `root`, depth-first, up to [`MAX_DEPTH`].
fn walk<'a>(root: &'a Value, pointer: String, key: &str, out: &mut Vec<Field<'a>>) {
    // (value, pointer, depth, key it sits under, property name it describes)
    let mut stack: Vec<(&'a Value, String, usize, String)> =
        vec![(root, pointer, 1, key.to_owned())];
    while let Some((v, ptr, depth, key)) = stack.pop() {
        match v {
            Value::String(s) => out.push(Field {
                role: role_of(&key),
                text: s,
                pointer: ptr,
                key,
            }),
            Value::Array(items) if depth < MAX_DEPTH => {
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push((item, format!("{ptr}/{i}"), depth + 1, key.clone()));
                }
            }
            Value::Object(map) if depth < MAX_DEPTH => {
                let mut children = Vec::with_capacity(map.len());
                for (k, item) in map {
                    let child = format!("{ptr}/{}", escape_pointer(k));
                    out.push(Field {
                        pointer: child.clone(),
                        text: k,
                        role: Role::Key,
                        key: key.to_ascii_lowercase(),
                    });
                    // A `default` is weighed by the property it belongs to (`callback_url`).
                    let under = if matches!(k.as_str(), "default" | "const" | "examples" | "enum") {
                        format!("{k} {key}")
                    } else {
                        k.to_ascii_lowercase()
                    };
                    children.push((item, child, depth + 1, under));
                }
                stack.extend(children.into_iter().rev());
            }
            _ => {}
        }
    }
}

/// The role of a string value from the key it sits under (see [`walk`]).
fn role_of(key: &str) -> Role {
    let first = key.split(' ').next().unwrap_or("");
    match first {
        "$schema" | "$id" | "$ref" => Role::Meta,
        "default" | "const" | "examples" | "enum" => Role::Value,
        _ => Role::Text,
    }
}

/// RFC 6901: `~` → `~0`, `/` → `~1`.
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
