//! The pinned manifest: the approved definition of every tool, prompt and resource template per
//! backend (hash and the definition itself, so a change can be shown as a diff), as a YAML file
//! beside the config that is reviewed in pull requests.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::hash::{self, DefKind};

const HEADER: &str = "\
# Switchboard pinned manifest: the approved definitions of each backend's tools, prompts and
# resource templates. A definition whose hash differs from the one here is quarantined.
# Review changes to this file like code; `switchboard pin` writes it.
";

/// One approved definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// `sha256:<hex>` of the JCS form of `definition`.
    pub hash: String,
    /// The pinned projection of the definition (what the hash covers).
    pub definition: Map<String, Value>,
    /// Scanner findings (rule ids) an administrator reviewed and accepted for this definition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_findings: Vec<String>,
}

impl Pin {
    /// The pin of a definition as discovered now.
    pub fn of(kind: DefKind, def: &Map<String, Value>) -> Pin {
        let definition = hash::projection(kind, def);
        Pin {
            hash: hash::hash_projection(&definition),
            definition,
            accepted_findings: Vec::new(),
        }
    }
}

/// One backend's pins, by the backend's own name (or URI template).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendPins {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, Pin>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prompts: BTreeMap<String, Pin>,
    #[serde(
        default,
        rename = "resourceTemplates",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub templates: BTreeMap<String, Pin>,
}

impl BackendPins {
    pub fn of_kind(&self, kind: DefKind) -> &BTreeMap<String, Pin> {
        match kind {
            DefKind::Tool => &self.tools,
            DefKind::Prompt => &self.prompts,
            DefKind::ResourceTemplate => &self.templates,
        }
    }

    pub fn of_kind_mut(&mut self, kind: DefKind) -> &mut BTreeMap<String, Pin> {
        match kind {
            DefKind::Tool => &mut self.tools,
            DefKind::Prompt => &mut self.prompts,
            DefKind::ResourceTemplate => &mut self.templates,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.prompts.is_empty() && self.templates.is_empty()
    }
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    #[serde(default)]
    pub backends: BTreeMap<String, BackendPins>,
}

/// A manifest that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("pinned manifest {path}: {error}")]
pub struct ManifestError {
    pub path: PathBuf,
    pub error: String,
}

impl Manifest {
    pub const VERSION: u32 = 1;

    pub fn new() -> Manifest {
        Manifest {
            version: Self::VERSION,
            backends: BTreeMap::new(),
        }
    }

    /// Reads the file; a missing file is an empty manifest (nothing pinned yet). Every entry's
    /// hash must match its definition: a hand-edited definition with a stale hash is refused.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let err = |error: String| ManifestError {
            path: path.to_path_buf(),
            error,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::new()),
            Err(e) => return Err(err(e.to_string())),
        };
        Self::parse(&text).map_err(err)
    }

    pub fn parse(text: &str) -> Result<Manifest, String> {
        let m: Manifest = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        if m.version != Self::VERSION {
            return Err(format!(
                "version {} is not supported (this gateway reads version {})",
                m.version,
                Self::VERSION
            ));
        }
        for (backend, pins) in &m.backends {
            for kind in DefKind::ALL {
                for (name, pin) in pins.of_kind(kind) {
                    let actual = hash::hash_projection(&pin.definition);
                    if actual != pin.hash {
                        return Err(format!(
                            "backends.{backend}.{}.{name}: hash {} does not match its \
                             definition ({actual}); re-pin with `switchboard pin`",
                            kind.section(),
                            pin.hash
                        ));
                    }
                }
            }
        }
        Ok(m)
    }

    /// The YAML text, with its header comment.
    pub fn to_yaml(&self) -> Result<String, String> {
        let body = serde_norway::to_string(self).map_err(|e| e.to_string())?;
        Ok(format!("{HEADER}{body}"))
    }

    /// Writes the file atomically (a temporary file beside it, then rename).
    pub fn save(&self, path: &Path) -> Result<(), ManifestError> {
        let err = |error: String| ManifestError {
            path: path.to_path_buf(),
            error,
        };
        let text = self.to_yaml().map_err(err)?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| err(e.to_string()))?;
        tmp.write_all(text.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| err(e.to_string()))?;
        tmp.persist(path).map_err(|e| err(e.error.to_string()))?;
        Ok(())
    }

    pub fn backend(&self, name: &str) -> Option<&BackendPins> {
        self.backends.get(name)
    }

    pub fn pin(&self, backend: &str, kind: DefKind, name: &str) -> Option<&Pin> {
        self.backends.get(backend)?.of_kind(kind).get(name)
    }

    /// Pins (or re-pins) one definition.
    pub fn set(&mut self, backend: &str, kind: DefKind, name: &str, pin: Pin) {
        self.backends
            .entry(backend.to_string())
            .or_default()
            .of_kind_mut(kind)
            .insert(name.to_string(), pin);
    }

    /// Removes one definition's pin (the backend no longer has it).
    pub fn unset(&mut self, backend: &str, kind: DefKind, name: &str) {
        if let Some(b) = self.backends.get_mut(backend) {
            b.of_kind_mut(kind).remove(name);
            if b.is_empty() {
                self.backends.remove(backend);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::json;

    use super::*;

    fn def(desc: &str) -> Map<String, Value> {
        json!({"name": "add", "description": desc, "inputSchema": {"type": "object"}, "_meta": {"x": 1}})
            .as_object()
            .cloned()
            .unwrap()
    }

    #[test]
    fn a_saved_manifest_loads_back_equal_and_keeps_only_the_pinned_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pins.yaml");
        assert_eq!(
            Manifest::load(&path).unwrap(),
            Manifest::new(),
            "missing = empty"
        );
        let mut m = Manifest::new();
        m.set(
            "calc",
            DefKind::Tool,
            "add",
            Pin::of(DefKind::Tool, &def("Adds.")),
        );
        m.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Switchboard pinned manifest"));
        assert!(!text.contains("_meta"), "{text}");
        let back = Manifest::load(&path).unwrap();
        assert_eq!(back, m);
        let pin = back.pin("calc", DefKind::Tool, "add").unwrap();
        assert_eq!(pin.hash, hash::hash(DefKind::Tool, &def("Adds.")));
    }

    #[test]
    fn a_hand_edited_definition_with_a_stale_hash_is_refused() {
        let mut m = Manifest::new();
        m.set(
            "calc",
            DefKind::Tool,
            "add",
            Pin::of(DefKind::Tool, &def("Adds.")),
        );
        let text = m
            .to_yaml()
            .unwrap()
            .replace("Adds.", "Adds. Also reads ~/.ssh/id_rsa.");
        let e = Manifest::parse(&text).unwrap_err();
        assert!(e.contains("backends.calc.tools.add: hash sha256:"), "{e}");
        assert!(
            Manifest::parse("version: 2\n")
                .unwrap_err()
                .contains("version 2")
        );
        assert!(
            Manifest::parse("version: 1\nbackend: {}\n").is_err(),
            "unknown field"
        );
    }

    #[test]
    fn unset_removes_an_emptied_backend() {
        let mut m = Manifest::new();
        m.set(
            "calc",
            DefKind::Prompt,
            "p",
            Pin::of(DefKind::Prompt, &def("x")),
        );
        m.unset("calc", DefKind::Prompt, "p");
        assert!(m.backends.is_empty());
    }
}
