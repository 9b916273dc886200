//! The messages of the session tree — what a SessionActor and its BackendSession children are
//! told — in a leaf module, so that neither actor depends on the other's implementation.

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::SessionError;
use super::streams::Outbound;
use crate::catalog::{Changed, Route};
use crate::policy::Deny;
use crate::protocol::{Message, Request, RequestId, Response};
use crate::telemetry::{CallEvent, Origin};
use crate::upstream::UpstreamError;
use crate::upstream::http::DirectSender;

/// Everything a session actor is told.
pub enum SessionMsg {
    /// A client request; its answer goes to `tx`.
    Request {
        req: Request,
        stream: u64,
        tx: mpsc::Sender<Outbound>,
        permit: OwnedSemaphorePermit,
        origin: Box<Origin>,
    },
    /// A client notification, or a client response to a server→client request; with the origin
    /// when the client itself sent it (not a bridge inside the gateway).
    Client(Message, Option<Box<Origin>>),
    /// A GET stream was opened (or resumed with `Last-Event-ID`); replies with the priming event id.
    OpenStream {
        last_event_id: Option<String>,
        tx: mpsc::Sender<Outbound>,
        reply: oneshot::Sender<Result<(u64, u64), SessionError>>,
    },
    /// A policy stage that waited on I/O has decided: the call goes on at the next stage.
    Resume(Box<Paused>, Result<(), Deny>),
    /// Something a backend child's connection delivered.
    Upstream {
        backend: usize,
        msg: Message,
        related: Option<RequestId>,
    },
    /// Sending a message to a backend failed.
    SendFailed {
        backend: usize,
        /// The id of the failed message, when it was a request.
        id: Option<RequestId>,
        error: UpstreamError,
    },
    /// A backend child finished its handshake; over HTTP, with a sender the session may use
    /// without a hop through the child.
    BackendReady {
        backend: usize,
        direct: Option<DirectSender>,
    },
    /// The shared catalog changed (`backend == usize::MAX`: unknown, assume all).
    CatalogChanged { backend: usize, changed: Changed },
    /// Check in-flight deadlines.
    Sweep,
    /// Release an answer whose audit record is now durable.
    Finish {
        stream: u64,
        bytes: Bytes,
        status: Option<u16>,
    },
}

/// A client request routed to a backend, on its way through the pipeline: everything the
/// session needs to forward it, refuse it, or park it.
pub(super) struct Routed {
    pub(super) req: Request,
    pub(super) stream: u64,
    pub(super) permit: OwnedSemaphorePermit,
    pub(super) call: CallEvent,
    pub(super) route: Route,
}

/// A routed call waiting for a policy stage's I/O.
pub struct Paused {
    pub(super) routed: Routed,
    /// The stage that waited.
    pub(super) stage: usize,
}

/// Everything a backend child is told.
pub(super) enum BackendMsg {
    /// First message: connect and handshake (messages sent meanwhile wait in the mailbox).
    Connect,
    /// Forward a message to the backend.
    Send(Message),
    /// A request of the child's own (e.g. logging/setLevel fan-out); its answer is dropped.
    Internal {
        method: String,
        params: Option<Map<String, Value>>,
    },
    /// The answer to one of the child's own requests (ids ≤ 0).
    Own(Response),
    /// The backend forgot the session: re-initialize, then send `unsent` and what queued meanwhile.
    Reinit(Message),
    /// The connection ended.
    Closed(UpstreamError),
}
