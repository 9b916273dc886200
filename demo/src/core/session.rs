//! Per-client session state: negotiated version, capabilities, log level, subscriptions,
//! in-flight requests (for cancellation) and pending server→client requests.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::lock;
use crate::jsonrpc::{RpcError, id_key};

/// Protocol revisions this server speaks, newest first.
pub(crate) const SUPPORTED_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// Log levels in increasing severity (RFC 5424 names used by MCP).
pub(crate) const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// Severity index of a level name.
pub(crate) fn log_level_index(level: &str) -> Option<u8> {
    LOG_LEVELS
        .iter()
        .position(|l| *l == level)
        .and_then(|i| u8::try_from(i).ok())
}

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

type Pending = oneshot::Sender<Result<Value, RpcError>>;

/// One client session (one stdio connection, or one `Mcp-Session-Id`).
pub(crate) struct Session {
    id: Option<String>,
    key: u64,
    state: Mutex<State>,
    log_level: AtomicU8,
    pending: Mutex<HashMap<String, Pending>>,
    in_flight: Mutex<HashMap<String, AbortHandle>>,
    next_out_id: AtomicU64,
}

struct State {
    protocol_version: String,
    client_capabilities: Value,
    subscriptions: HashSet<String>,
}

impl Session {
    pub(crate) fn new(id: Option<String>) -> Self {
        Self {
            id,
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(State {
                protocol_version: SUPPORTED_VERSIONS[2].to_owned(),
                client_capabilities: Value::Null,
                subscriptions: HashSet::new(),
            }),
            log_level: AtomicU8::new(0),
            pending: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            next_out_id: AtomicU64::new(1),
        }
    }

    /// The transport session id (`Mcp-Session-Id`), if any.
    pub(crate) fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Process-unique key, used to avoid echoing a change back twice to its origin.
    pub(crate) fn key(&self) -> u64 {
        self.key
    }

    pub(crate) fn set_negotiated(&self, version: &str, capabilities: Value) {
        let mut s = lock(&self.state);
        version.clone_into(&mut s.protocol_version);
        s.client_capabilities = capabilities;
    }

    pub(crate) fn protocol_version(&self) -> String {
        lock(&self.state).protocol_version.clone()
    }

    /// True when the client declared capability `name` at initialize.
    pub(crate) fn client_supports(&self, name: &str) -> bool {
        lock(&self.state)
            .client_capabilities
            .get(name)
            .is_some_and(|v| !v.is_null())
    }

    pub(crate) fn set_log_level(&self, level: u8) {
        self.log_level.store(level, Ordering::Relaxed);
    }

    pub(crate) fn log_enabled(&self, level: u8) -> bool {
        level >= self.log_level.load(Ordering::Relaxed)
    }

    pub(crate) fn subscribe(&self, uri: &str, on: bool) {
        let mut s = lock(&self.state);
        if on {
            s.subscriptions.insert(uri.to_owned());
        } else {
            s.subscriptions.remove(uri);
        }
    }

    pub(crate) fn is_subscribed(&self, uri: &str) -> bool {
        lock(&self.state).subscriptions.contains(uri)
    }

    /// Registers a pending server→client request; returns its id and the receiver.
    pub(crate) fn register_outgoing(&self) -> (Value, oneshot::Receiver<Result<Value, RpcError>>) {
        let n = self.next_out_id.fetch_add(1, Ordering::Relaxed);
        let id = Value::String(format!("srv-{n}"));
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id_key(&id), tx);
        (id, rx)
    }

    pub(crate) fn forget_outgoing(&self, id: &Value) {
        lock(&self.pending).remove(&id_key(id));
    }

    /// Routes a client's response to the waiting server→client request. False if unknown.
    pub(crate) fn resolve(&self, id: &Value, result: Result<Value, RpcError>) -> bool {
        match lock(&self.pending).remove(&id_key(id)) {
            Some(tx) => tx.send(result).is_ok(),
            None => false,
        }
    }

    /// Runs `spawn` while holding the in-flight table so the task cannot finish before it is registered.
    pub(crate) fn track(&self, id: &Value, spawn: impl FnOnce() -> AbortHandle) {
        let mut table = lock(&self.in_flight);
        table.insert(id_key(id), spawn());
    }

    pub(crate) fn untrack(&self, id: &Value) {
        lock(&self.in_flight).remove(&id_key(id));
    }

    /// Aborts the in-flight request `id` (notifications/cancelled). True if it was running.
    pub(crate) fn cancel(&self, id: &Value) -> bool {
        match lock(&self.in_flight).remove(&id_key(id)) {
            Some(handle) => {
                handle.abort();
                true
            }
            None => false,
        }
    }

    /// True while requests are running or waiting on the client.
    pub(crate) fn busy(&self) -> bool {
        !lock(&self.in_flight).is_empty() || !lock(&self.pending).is_empty()
    }

    /// Aborts every in-flight request (session end).
    pub(crate) fn cancel_all(&self) {
        for (_, handle) in lock(&self.in_flight).drain() {
            handle.abort();
        }
        lock(&self.pending).clear();
    }
}
