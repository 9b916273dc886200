//! Gateway-held sessions for stateless (2026-07-28) clients: one SessionActor per principal and
//! scope keeps that principal's sessions with sessionful backends, and the calls parked while
//! the client answers an MRTR `input_required` result, keyed by an unguessable `requestState`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use rand::RngCore;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{ClientInfo, Outbound, Scope, SessionHandle};
use crate::policy::{Principal, Via};
use crate::protocol::jsonrpc::codes;
use crate::protocol::{ErrorObject, Message, Notification, ProtocolVersion, RequestId, Response};

/// How long a parked call waits for the client's retry.
pub const PARK_TTL: Duration = Duration::from_secs(300);
/// Parked calls per principal and scope (each holds a backend request open).
pub(super) const MAX_PARKED: usize = 256;

/// The principal's key in the registry: its subject (`anonymous` on an unauthenticated listener).
pub(super) fn principal_key(p: &Principal) -> Arc<str> {
    p.subject.clone().unwrap_or_else(|| Arc::from(p.key()))
}

/// The client a gateway-held session stands for: it can do whatever MRTR can carry; each request
/// declares its own capabilities and the listener checks them per call.
pub(super) fn stateless_client() -> ClientInfo {
    let mut capabilities = Map::new();
    for cap in ["sampling", "elicitation", "roots"] {
        capabilities.insert(cap.into(), json!({}));
    }
    ClientInfo {
        name: "stateless clients".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        capabilities,
        protocol_version: ProtocolVersion::V2026_07_28,
        transport: crate::telemetry::NetProtocol::Http,
    }
}

/// Every principal's gateway-held sessions.
#[derive(Debug, Default)]
pub(super) struct PrincipalSessions {
    /// By how the principal authenticated as well as its key: a token whose subject happens to
    /// read `anonymous` never shares the anonymous callers' session of an open listener.
    entries: DashMap<(Via, Arc<str>, Scope), Arc<PrincipalEntry>>,
    /// Serializes creation so one principal never gets two sessions for one scope.
    pub(super) creating: tokio::sync::Mutex<()>,
}

impl PrincipalSessions {
    pub(super) fn get(&self, p: &Principal, scope: Scope) -> Option<Arc<PrincipalEntry>> {
        self.entries
            .get(&(p.via, principal_key(p), scope))
            .map(|e| e.value().clone())
    }

    pub(super) fn insert(
        &self,
        p: &Principal,
        scope: Scope,
        session: SessionHandle,
    ) -> Arc<PrincipalEntry> {
        let e = Arc::new(PrincipalEntry {
            session,
            next_id: AtomicU64::new(1),
            parked: std::sync::Mutex::new(HashMap::new()),
        });
        self.entries
            .insert((p.via, principal_key(p), scope), e.clone());
        e
    }
}

/// One principal's gateway-held session and its parked MRTR calls.
#[derive(Debug)]
pub struct PrincipalEntry {
    pub session: SessionHandle,
    next_id: AtomicU64,
    parked: std::sync::Mutex<HashMap<String, Parked>>,
}

/// A call whose backend asked the client something: the rest of its answer waits here.
#[derive(Debug)]
pub struct Parked {
    /// The call's stream from the session (its final response arrives here).
    pub rx: mpsc::Receiver<Outbound>,
    /// The id the session knows the call by.
    pub internal_id: RequestId,
    /// The retry must be the same request: same method and target.
    pub method: String,
    pub target: Option<String>,
    /// `inputRequests` key → the session's id for the backend's server→client request.
    pub waiting: Vec<(String, i64)>,
    /// What was asked, to ask again for whatever the retry left out.
    pub input_requests: Map<String, Value>,
    pub expires: Instant,
}

/// Why a retry's `requestState` was refused.
#[derive(Debug, thiserror::Error)]
pub enum UnparkError {
    #[error("requestState is unknown, expired or already used")]
    Unknown,
    #[error("requestState belongs to a different request ({0})")]
    OtherRequest(String),
}

/// 128 random bits, hex: unguessable.
fn token() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl PrincipalEntry {
    /// A session-unique id for the next stateless call (client ids may repeat across clients).
    pub fn next_request_id(&self) -> RequestId {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        RequestId::Str(format!("stateless-{n}").into())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Parked>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Parks a call; returns its `requestState`. Refused (the call is abandoned) when full.
    pub fn park(&self, parked: Parked) -> Result<String, ErrorObject> {
        let expired = {
            let mut map = self.lock();
            let now = Instant::now();
            let gone: Vec<String> = map
                .iter()
                .filter(|(_, p)| p.expires <= now)
                .map(|(k, _)| k.clone())
                .collect();
            let expired: Vec<Parked> = gone.iter().filter_map(|k| map.remove(k)).collect();
            if map.len() >= MAX_PARKED {
                drop(map);
                self.abandon(parked);
                return Err(ErrorObject::new(
                    codes::LIMIT_EXCEEDED,
                    format!("too many calls awaiting client input (limit {MAX_PARKED})"),
                ));
            }
            let t = token();
            map.insert(t.clone(), parked);
            (expired, t)
        };
        for p in expired.0 {
            self.abandon(p);
        }
        Ok(expired.1)
    }

    /// Takes the parked call for a retry: the state must exist here (this principal), be
    /// unexpired, and belong to the same method and target. Single use.
    pub fn unpark(
        &self,
        state: &str,
        method: &str,
        target: Option<&str>,
    ) -> Result<Parked, UnparkError> {
        let p = self.lock().remove(state).ok_or(UnparkError::Unknown)?;
        if p.expires <= Instant::now() {
            self.abandon(p);
            return Err(UnparkError::Unknown);
        }
        if p.method != method || p.target.as_deref() != target {
            let what = format!("{} {}", p.method, p.target.as_deref().unwrap_or_default());
            self.abandon(p);
            return Err(UnparkError::OtherRequest(what));
        }
        Ok(p)
    }

    /// Gives up on a parked call: the backend's questions get an error, the call is cancelled.
    pub fn abandon(&self, p: Parked) {
        for (_, g) in &p.waiting {
            let e = ErrorObject::new(
                codes::REQUEST_CANCELLED,
                "the client did not answer this request",
            );
            let _ = self
                .session
                .deliver(Response::error(RequestId::Num(*g), e).into_message());
        }
        self.cancel(&p.internal_id, "the client abandoned the request");
    }

    /// Cancels an in-flight call at its backend.
    pub fn cancel(&self, id: &RequestId, reason: &str) {
        let mut params = Map::new();
        params.insert(
            "requestId".into(),
            serde_json::to_value(id).unwrap_or(Value::Null),
        );
        params.insert("reason".into(), Value::String(reason.into()));
        let n = Notification::new(crate::protocol::methods::CANCELLED, Some(params));
        let _ = self.session.deliver(Message::Notification(n));
    }
}
