//! The stage interface: one control on the request path (a guard, a limiter, a transform), asked
//! the listing question, the call question, and — when it wants — about the backend's answer.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use serde_json::value::RawValue;

use super::{Action, Principal};
use crate::protocol::ErrorObject;
use crate::protocol::jsonrpc::codes;

/// A refusal, with everything the client is told: its JSON-RPC code, message and `data`, and —
/// where the whole HTTP request is refused — the HTTP status. Never carries a secret.
#[derive(Clone, Debug, PartialEq)]
pub struct Deny {
    /// The rule that refused, as the audit log and the span name it (`<stage>:<rule>` there).
    pub rule: Cow<'static, str>,
    pub code: i64,
    pub message: String,
    /// Extra facts for the client (`retryAfterMs`, a limit); an object gets `rule` added.
    pub data: Option<Value>,
    /// `None`: the answer is a JSON-RPC error inside an HTTP 200, as for any call.
    pub http_status: Option<u16>,
}

impl Deny {
    /// The usual refusal: -32006, "Denied by policy: …". The pipeline adds `data.rule`
    /// (`<stage>:<rule>`) to every refusal.
    pub fn forbidden(rule: impl Into<Cow<'static, str>>, reason: impl fmt::Display) -> Self {
        Deny {
            data: None,
            rule: rule.into(),
            code: codes::FORBIDDEN,
            message: format!("Denied by policy: {reason}"),
            http_status: None,
        }
    }

    pub fn with_code(mut self, code: i64) -> Self {
        self.code = code;
        self
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn with_http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// The JSON-RPC error the client receives.
    pub fn to_error(&self) -> ErrorObject {
        let e = ErrorObject::new(self.code, self.message.clone());
        match &self.data {
            Some(d) => e.with_data(d.clone()),
            None => e,
        }
    }
}

/// A stage's answer to a call that must wait for I/O (Redis, a remote policy engine).
pub type Pending = Pin<Box<dyn Future<Output = Result<(), Deny>> + Send>>;

/// What a request stage decided.
pub enum Step {
    /// Allowed (arguments possibly rewritten in place): the next stage decides.
    Continue,
    Deny(Deny),
    /// Decided by I/O: the pipeline resumes with the next stage when it resolves. Only this
    /// costs a task hop; synchronous stages run inline.
    Wait(Pending),
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Continue => f.write_str("Continue"),
            Step::Deny(d) => f.debug_tuple("Deny").field(d).finish(),
            Step::Wait(_) => f.write_str("Wait(..)"),
        }
    }
}

/// A call as a request stage sees it.
pub struct CallRequest<'a> {
    pub principal: &'a Principal,
    pub session_id: &'a str,
    pub action: Action<'a>,
    /// `tools/call` arguments (or `prompts/get` arguments): a stage may rewrite them in place.
    pub arguments: Option<&'a mut Value>,
    /// Set by a stage that decided under a versioned policy (`rego`): the revision it used,
    /// which the pipeline writes into the decision record.
    pub policy_revision: Option<Arc<str>>,
}

/// A call as a response stage sees it.
pub struct CallResponse<'a> {
    pub principal: &'a Principal,
    pub session_id: &'a str,
    pub action: Action<'a>,
}

/// The backend's `result`, kept as raw JSON until a stage asks to change it.
pub struct ResultBody<'a> {
    raw: &'a RawValue,
    edited: Option<Value>,
}

impl<'a> ResultBody<'a> {
    pub fn new(raw: &'a RawValue) -> Self {
        ResultBody { raw, edited: None }
    }

    /// The result as the backend sent it, or as a stage rewrote it.
    pub fn text(&self) -> Cow<'_, str> {
        match &self.edited {
            Some(v) => Cow::Owned(v.to_string()),
            None => Cow::Borrowed(self.raw.get()),
        }
    }

    /// The result to rewrite (parsed on first use; unparseable JSON cannot reach here).
    pub fn value_mut(&mut self) -> &mut Value {
        let raw = self.raw;
        self.edited
            .get_or_insert_with(|| serde_json::from_str(raw.get()).unwrap_or(Value::Null))
    }

    /// The rewritten result, when a stage rewrote it.
    pub fn into_edited(self) -> Option<Value> {
        self.edited
    }
}

/// What reloading a stage's policy sources did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// The sources are the revision already in force.
    Unchanged { revision: Arc<str> },
    /// A new revision is in force (sessions keep running; the next decision uses it).
    Loaded {
        previous: Arc<str>,
        revision: Arc<str>,
    },
}

/// A reload that was refused: the policy in force stays.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error} (revision {kept} stays in force)")]
pub struct ReloadError {
    /// The refused sources' revision, when they could be read.
    pub rejected: Option<Arc<str>>,
    /// The revision still in force.
    pub kept: Arc<str>,
    /// Why (a compile error with file and line, an unreadable path).
    pub error: String,
}

/// Per-session state of one stage (counters, windows), owned by the session.
pub type SessionSlot = Box<dyn Any + Send>;

/// One control on the request path. Write one in its own file under `src/policy/` and register
/// its config in `policy/registry.rs`; the pipeline runs the stages in configured order.
///
/// - `permits` is the rule that depends only on who asks and what: listing asks it alone (so a
///   listed entry is exactly a callable one, and listing never counts as a call); a call asks it
///   first.
/// - `on_request` sees what only a call has: arguments (it may rewrite them), the session's slot,
///   counters. It may wait on I/O (`Step::Wait`).
/// - `on_response` may rewrite or block the backend's result (only when `sees_responses`).
pub trait Stage: Send + Sync + fmt::Debug {
    fn name(&self) -> &'static str;

    fn permits(&self, _principal: &Principal, _action: &Action<'_>) -> Result<(), Deny> {
        Ok(())
    }

    fn on_request(&self, _call: &mut CallRequest<'_>, _slot: Option<&mut SessionSlot>) -> Step {
        Step::Continue
    }

    /// Whether `on_response` does anything (the pipeline skips the result otherwise).
    fn sees_responses(&self) -> bool {
        false
    }

    fn on_response(
        &self,
        _call: &CallResponse<'_>,
        _result: &mut ResultBody<'_>,
        _slot: Option<&mut SessionSlot>,
    ) -> Result<(), Deny> {
        Ok(())
    }

    /// Whether `mark` says anything (listing skips it otherwise).
    fn marks_listings(&self) -> bool {
        false
    }

    /// A note for a listed entry's `_meta` (under `io.switchboard/<stage name>`), from the rule
    /// and the session's state: e.g. that calling it now would be refused. `slot` is `None`
    /// where the listing has no session (2026-07-28 lists).
    fn mark(
        &self,
        _principal: &Principal,
        _action: &Action<'_>,
        _slot: Option<&SessionSlot>,
    ) -> Option<Value> {
        None
    }

    /// This stage's state for a new session, if it keeps any.
    fn new_session(&self) -> Option<SessionSlot> {
        None
    }

    /// Whether this stage reads policy sources that can change while the gateway runs.
    fn reloadable(&self) -> bool {
        false
    }

    /// Re-reads the stage's sources (file watch, SIGHUP, admin): a new revision replaces the
    /// policy in force without touching sessions; one that fails to load is refused and the old
    /// one kept. Only asked when `reloadable`.
    fn reload(&self) -> Result<Reloaded, ReloadError> {
        Ok(Reloaded::Unchanged {
            revision: Arc::from(""),
        })
    }
}
