//! Policy-as-code: a Rego policy (one `.rego` file, or every `.rego` file of a directory),
//! compiled once by regorus and evaluated per call against an input document (who, what, the
//! arguments, the tool's annotations, the session, the time). Reloaded without touching
//! sessions; a policy that does not compile is refused and the one in force kept.
//!
//! Only calls are decided here: `permits` (the listing question) always answers `Ok`, because a
//! rule may depend on arguments, which a listing does not have. Visibility is RBAC's job; a
//! Rego rule only narrows what a listed target may be called with.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::vm::RegoVM;
use regorus::{CompiledPolicy, Engine, Value};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use super::stage::{CallRequest, Deny, ReloadError, Reloaded, SessionSlot, Stage, Step};
use super::{Kind, Principal};

/// `stage: rego` in `policy:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A `.rego` file, or a directory whose `.rego` files (not its subdirectories) form the
    /// policy.
    pub path: PathBuf,
    /// The rule that decides: `{allow: bool, reason: string}`, or a plain boolean.
    #[serde(default = "default_query")]
    pub query: String,
}

fn default_query() -> String {
    "data.switchboard.decision".into()
}

impl Config {
    /// Problems with the query and the policy itself (it is loaded and compiled here).
    pub fn problems(&self) -> Vec<(String, String)> {
        if !self.query.starts_with("data.") || self.query.len() <= "data.".len() {
            return vec![(
                "query".into(),
                "must be a rule path such as data.switchboard.decision".into(),
            )];
        }
        match Policy::load(&self.path, &self.query) {
            Ok(_) => Vec::new(),
            Err(e) => vec![("path".into(), e.to_string())],
        }
    }
}

/// Why a policy did not load.
#[derive(Debug, thiserror::Error)]
pub(super) enum LoadError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0} holds no .rego file")]
    Empty(PathBuf),
    /// The policy as read (its revision) does not compile.
    #[error("policy revision {revision} does not compile: {error}")]
    Compile { revision: Arc<str>, error: String },
}

/// The policy sources as read, and their revision.
struct Sources {
    files: Vec<(PathBuf, String)>,
    revision: Arc<str>,
}

impl Sources {
    fn read(path: &Path) -> Result<Sources, LoadError> {
        let read_err = |path: &Path| {
            let path = path.to_path_buf();
            move |error| LoadError::Read { path, error }
        };
        let mut files = Vec::new();
        if path.is_dir() {
            for entry in std::fs::read_dir(path).map_err(read_err(path))? {
                let p = entry.map_err(read_err(path))?.path();
                if p.extension().is_some_and(|e| e == "rego") && p.is_file() {
                    let text = std::fs::read_to_string(&p).map_err(read_err(&p))?;
                    files.push((p, text));
                }
            }
            files.sort();
            if files.is_empty() {
                return Err(LoadError::Empty(path.to_path_buf()));
            }
        } else {
            let text = std::fs::read_to_string(path).map_err(read_err(path))?;
            files.push((path.to_path_buf(), text));
        }
        Ok(Sources {
            revision: revision(&files),
            files,
        })
    }
}

/// The sources' revision: sha256 over each file's name and text, the first 12 hex digits.
fn revision(files: &[(PathBuf, String)]) -> Arc<str> {
    let mut h = Sha256::new();
    for (path, text) in files {
        let name = path.file_name().map(|n| n.to_string_lossy());
        h.update(name.as_deref().unwrap_or_default().as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    let digest = hex::encode(h.finalize());
    Arc::from(digest.get(..12).unwrap_or(&digest))
}

/// A compiled policy and the revision of its sources.
struct Policy {
    /// The interpreter's form: the reference, and the fallback.
    compiled: CompiledPolicy,
    /// The same policy as regorus VM bytecode (about 4× faster per call), when the VM compiler
    /// takes it.
    program: Option<Arc<Program>>,
    revision: Arc<str>,
}

impl Policy {
    fn load(path: &Path, query: &str) -> Result<Policy, LoadError> {
        Self::compile(Sources::read(path)?, query)
    }

    fn compile(sources: Sources, query: &str) -> Result<Policy, LoadError> {
        let failed = |e: anyhow::Error| LoadError::Compile {
            revision: sources.revision.clone(),
            error: format!("{e:#}"),
        };
        let mut engine = Engine::new();
        for (path, text) in &sources.files {
            engine
                .add_policy(path.display().to_string(), text.clone())
                .map_err(failed)?;
        }
        let compiled = engine
            .compile_with_entrypoint(&regorus::Rc::from(query))
            .map_err(failed)?;
        let program = match Compiler::compile_from_policy(&compiled, &[query]) {
            Ok(p) => Some(p),
            Err(error) => {
                debug!(error = %format!("{error:#}"), "Rego policy runs in the interpreter");
                None
            }
        };
        Ok(Policy {
            compiled,
            program,
            revision: sources.revision,
        })
    }

    /// Evaluates the query: on the session's VM when the policy has bytecode (the VM is made
    /// or re-loaded for this revision), else — or when the VM fails, e.g. at its instruction
    /// limit — in the interpreter.
    fn eval(&self, input: Value, slot: Option<&mut Session>) -> anyhow::Result<Value> {
        if let Some(program) = &self.program {
            let mut fresh = None;
            let vm = match slot {
                Some(s) => &mut s.vm,
                None => &mut fresh,
            };
            let vm = match vm {
                Some((rev, vm)) if *rev == self.revision => vm,
                _ => {
                    let mut v = RegoVM::new();
                    v.load_program(program.clone());
                    &mut vm.insert((self.revision.clone(), v)).1
                }
            };
            vm.set_input(input.clone());
            match vm.execute() {
                Ok(v) => return Ok(v),
                Err(error) => {
                    debug!(%error, revision = %self.revision, "Rego VM failed; using the interpreter");
                }
            }
        }
        self.compiled.eval_with_input(input)
    }
}

/// The stage.
pub(super) struct Rego {
    path: PathBuf,
    query: String,
    current: ArcSwap<Policy>,
    /// The last refused sources (revision, error): held while reloading, so reloads run one at
    /// a time, and a poll does not compile the same broken sources again.
    rejected: Mutex<Option<(Arc<str>, String)>>,
}

impl fmt::Debug for Rego {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rego")
            .field("path", &self.path)
            .field("query", &self.query)
            .field("revision", &self.revision())
            .finish()
    }
}

impl Rego {
    pub(super) fn load(c: &Config) -> Result<Rego, LoadError> {
        let policy = Policy::load(&c.path, &c.query)?;
        Ok(Rego {
            path: c.path.clone(),
            query: c.query.clone(),
            current: ArcSwap::from_pointee(policy),
            rejected: Mutex::new(None),
        })
    }

    /// The revision in force.
    pub(super) fn revision(&self) -> Arc<str> {
        self.current.load().revision.clone()
    }

    /// Evaluates the policy in force for one call: `Ok(())` allowed, else the refusal.
    fn decide(
        &self,
        call: &mut CallRequest<'_>,
        mut slot: Option<&mut Session>,
    ) -> Result<(), Deny> {
        let policy = self.current.load();
        call.policy_revision = Some(policy.revision.clone());
        let principal = match slot.as_deref_mut() {
            Some(s) => s.principal(call.principal),
            None => principal(call.principal),
        };
        let result = policy.eval(input(call, principal), slot);
        let refuse = |rule: &'static str, reason: &str| {
            Deny::forbidden(rule, reason).with_data(json!({ "policyRevision": &*policy.revision }))
        };
        match result.map(|v| verdict(&v)) {
            Ok(Verdict::Allow) => Ok(()),
            Ok(Verdict::Deny(reason)) => Err(refuse("deny", &reason)),
            Ok(Verdict::Undefined) => Err(refuse(
                "undefined",
                &format!("the policy's {} gave no decision", self.query),
            )),
            Err(error) => {
                warn!(error = %format!("{error:#}"), revision = %policy.revision, backend = %call.action.backend,
                    name = %call.action.name, "Rego evaluation failed; call refused");
                Err(refuse("error", "the policy could not be evaluated"))
            }
        }
    }
}

/// What a session keeps between its calls: its VM (loaded with the revision it was made for)
/// and its principal's part of the input document.
#[derive(Default)]
struct Session {
    vm: Option<(Arc<str>, RegoVM)>,
    principal: Option<(Principal, Value)>,
}

impl Session {
    /// The principal's input object, built once per session (rebuilt if the principal differs).
    fn principal(&mut self, p: &Principal) -> Value {
        match &self.principal {
            Some((known, v)) if known == p => v.clone(),
            _ => {
                let v = principal(p);
                self.principal = Some((p.clone(), v.clone()));
                v
            }
        }
    }
}

/// The input document's keys, allocated once (a `Value` clone is a reference count).
struct Keys {
    principal: Value,
    method: Value,
    backend: Value,
    kind: Value,
    name: Value,
    read_only: Value,
    arguments: Value,
    annotations: Value,
    session: Value,
    id: Value,
    time: Value,
    rfc3339: Value,
    unix: Value,
    tool: Value,
    prompt: Value,
    resource: Value,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys {
    principal: s("principal"),
    method: s("method"),
    backend: s("backend"),
    kind: s("kind"),
    name: s("name"),
    read_only: s("read_only"),
    arguments: s("arguments"),
    annotations: s("annotations"),
    session: s("session"),
    id: s("id"),
    time: s("time"),
    rfc3339: s("rfc3339"),
    unix: s("unix"),
    tool: s("tool"),
    prompt: s("prompt"),
    resource: s("resource"),
});

/// What a query's value says.
#[derive(Debug, PartialEq)]
enum Verdict {
    Allow,
    Deny(String),
    /// Undefined, or not a boolean nor an object with a boolean `allow`.
    Undefined,
}

fn verdict(v: &Value) -> Verdict {
    let deny = |reason: Option<&Value>| {
        let reason = reason.and_then(|r| r.as_string().ok()).map(|r| r.trim());
        Verdict::Deny(match reason {
            Some(r) if !r.is_empty() => r.to_string(),
            _ => "the policy does not allow this call".to_string(),
        })
    };
    match v {
        Value::Bool(true) => Verdict::Allow,
        Value::Bool(false) => deny(None),
        Value::Object(o) => match o.get(&Value::from("allow")) {
            Some(Value::Bool(true)) => Verdict::Allow,
            Some(Value::Bool(false)) => deny(o.get(&Value::from("reason"))),
            _ => Verdict::Undefined,
        },
        _ => Verdict::Undefined,
    }
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn strings(v: &[Arc<str>]) -> Value {
    Value::from(v.iter().map(|r| s(r)).collect::<Vec<_>>())
}

fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::from(
        fields
            .into_iter()
            .map(|(k, v)| (s(k), v))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn principal(p: &Principal) -> Value {
    object([
        ("subject", p.subject.as_deref().map_or(Value::Null, s)),
        ("roles", strings(&p.roles)),
        ("scopes", strings(&p.scopes)),
        ("via", s(p.via.as_str())),
    ])
}

/// The input document (`docs/policy.md` lists its fields), with `principal` already built.
fn input(call: &CallRequest<'_>, principal: Value) -> Value {
    let (a, k) = (&call.action, &*KEYS);
    let now = SystemTime::now();
    let unix = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let annotations = a
        .annotations()
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
        .unwrap_or_else(Value::new_object);
    let arguments = call
        .arguments
        .as_deref()
        .map_or_else(Value::new_object, to_rego);
    let time = BTreeMap::from([
        (
            k.rfc3339.clone(),
            s(&humantime::format_rfc3339_seconds(now).to_string()),
        ),
        (k.unix.clone(), Value::from(unix)),
    ]);
    let mut doc = BTreeMap::from([
        (k.principal.clone(), principal),
        (k.method.clone(), s(a.method)),
        (k.backend.clone(), s(a.backend)),
        (k.kind.clone(), s(a.kind.as_str())),
        (k.name.clone(), s(a.name)),
        (k.read_only.clone(), Value::from(a.read_only())),
        (k.arguments.clone(), arguments),
        (k.annotations.clone(), annotations),
        (
            k.session.clone(),
            Value::from(BTreeMap::from([(k.id.clone(), s(call.session_id))])),
        ),
        (k.time.clone(), Value::from(time)),
    ]);
    // `input.tool`, `input.prompt` or `input.resource`: the backend's own name or URI.
    let by_kind = match a.kind {
        Kind::Tool => Some(&k.tool),
        Kind::Prompt => Some(&k.prompt),
        Kind::Resource => Some(&k.resource),
        Kind::Other => None,
    };
    if let Some(key) = by_kind {
        doc.insert(key.clone(), s(a.name));
    }
    Value::from(doc)
}

/// A JSON value as Rego's, converted without copying it first.
fn to_rego(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::from(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(u)) => Value::from(u),
            _ => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(t) => s(t),
        J::Array(a) => Value::from(a.iter().map(to_rego).collect::<Vec<_>>()),
        J::Object(o) => Value::from(
            o.iter()
                .map(|(k, v)| (s(k), to_rego(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

impl Stage for Rego {
    fn name(&self) -> &'static str {
        "rego"
    }

    // `permits` keeps the default (`Ok`): see the module doc.

    fn new_session(&self) -> Option<SessionSlot> {
        Some(Box::new(Session::default()))
    }

    fn on_request(&self, call: &mut CallRequest<'_>, slot: Option<&mut SessionSlot>) -> Step {
        match self.decide(call, slot.and_then(|s| s.downcast_mut::<Session>())) {
            Ok(()) => Step::Continue,
            Err(d) => Step::Deny(d),
        }
    }

    fn reloadable(&self) -> bool {
        true
    }

    fn reload(&self) -> Result<Reloaded, ReloadError> {
        // One reload at a time; a poisoned lock only means an earlier reload panicked.
        let mut rejected = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        let kept = self.revision();
        let refused = |rejected: Option<Arc<str>>, error: String| ReloadError {
            rejected,
            kept: kept.clone(),
            error,
        };
        let sources = Sources::read(&self.path).map_err(|e| refused(None, e.to_string()))?;
        if sources.revision == kept {
            *rejected = None;
            return Ok(Reloaded::Unchanged { revision: kept });
        }
        if let Some((revision, error)) = rejected.as_ref()
            && *revision == sources.revision
        {
            return Err(refused(Some(revision.clone()), error.clone()));
        }
        let revision = sources.revision.clone();
        match Policy::compile(sources, &self.query) {
            Ok(policy) => {
                self.current.store(Arc::new(policy));
                *rejected = None;
                Ok(Reloaded::Loaded {
                    previous: kept.clone(),
                    revision,
                })
            }
            Err(e) => {
                let error = e.to_string();
                *rejected = Some((revision.clone(), error.clone()));
                Err(refused(Some(revision), error))
            }
        }
    }
}

#[cfg(test)]
mod tests;
