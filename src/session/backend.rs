//! The BackendSession child actor: owns one backend connection for one developer session, does the
//! MCP handshake (and re-handshakes when the backend forgets the session), pumps what the backend
//! says to the parent SessionActor, and closes the connection on every way it ends.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info};

use super::msg::{BackendMsg, SessionMsg};
use super::{ClientInfo, Shared};
use crate::protocol::{Message, Notification, Request, RequestId, Response, methods};
use crate::upstream::handshake::{self, ClientIdentity};
use crate::upstream::{EVENT_CHANNEL_CAPACITY, EventSink, Upstream, UpstreamError, UpstreamEvent};

const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub(super) struct BackendSession;

pub(super) struct BackendArgs {
    pub shared: Arc<Shared>,
    pub backend: usize,
    pub session: ActorRef<SessionMsg>,
    pub session_id: Arc<str>,
    pub client: ClientInfo,
    /// Consecutive failures before this start: sets the backoff delay.
    pub attempt: u32,
    pub log_level: Option<Value>,
}

pub(super) struct BackendState {
    args: BackendArgs,
    up: Option<Upstream>,
    pump: Option<JoinHandle<()>>,
    next_own: i64,
    /// While re-initializing: the id of our `initialize` and the messages waiting for it.
    reinit: Option<(i64, Vec<Message>)>,
    /// `backend_session{session, backend}`: what the connection's work is logged under.
    span: tracing::Span,
    started: tokio::time::Instant,
    /// Set once the session's end is recorded (the gauge and duration count each session once).
    ended: bool,
}

/// Exponential backoff: 0 for the first start, then 100 ms doubling up to 10 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    if attempt == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(100)
        .saturating_mul(1u32 << (attempt - 1).min(10))
        .min(MAX_BACKOFF)
}

impl BackendState {
    fn name(&self) -> &str {
        &self.args.shared.catalog.backends()[self.args.backend].name
    }

    fn identity(&self) -> ClientIdentity {
        let mut capabilities = Map::new();
        for k in ["sampling", "elicitation", "roots"] {
            if let Some(v) = self.args.client.capabilities.get(k) {
                capabilities.insert(k.into(), v.clone());
            }
        }
        ClientIdentity {
            name: format!("switchboard ({})", self.args.client.name),
            version: self.args.client.version.clone(),
            capabilities,
        }
    }

    fn own_id(&mut self) -> i64 {
        self.next_own -= 1;
        self.next_own
    }

    async fn connect(&mut self, myself: &ActorRef<BackendMsg>) -> Result<(), ActorProcessingErr> {
        let delay = backoff(self.args.attempt);
        if !delay.is_zero() {
            debug!(backend = %self.name(), ?delay, "Backing off before reconnecting");
            tokio::time::sleep(delay).await;
        }
        let cfg = &self.args.shared.catalog.backends()[self.args.backend];
        let timeout = cfg.timeouts.connect;
        let (tx, mut rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        // Every line the connection's tasks log (stderr of a stdio backend, HTTP failures)
        // carries the session and the backend.
        let span = tracing::info_span!("backend_session", session = %self.args.session_id, backend = %cfg.name);
        // Exported as its own short span when traces are on (the `tracing` bridge).
        let connecting = tracing::info_span!(
            parent: None,
            "backend.connect",
            otel.kind = "client",
            switchboard.backend = %cfg.name,
            switchboard.transport = cfg.transport.kind(),
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        );
        let mut backlog = Vec::new();
        let identity = self.identity();
        // The discovery connection probed this backend; a known 2025 server is not re-probed.
        let known_sessionful = self
            .args
            .shared
            .catalog
            .snapshot(self.args.backend)
            .is_some_and(|s| !s.info().stateless);
        let pool = &self.args.shared.pool;
        let opened = async {
            let connect = Upstream::connect(cfg, pool, tx).instrument(span.clone());
            let up = tokio::time::timeout(timeout, connect)
                .await
                .map_err(|_| UpstreamError::Timeout(timeout))??;
            let info = handshake::open(
                &up,
                &mut rx,
                &mut backlog,
                &identity,
                timeout,
                known_sessionful,
            )
            .await?;
            Ok::<_, ActorProcessingErr>((up, info))
        }
        .instrument(connecting.clone())
        .await;
        if let Err(e) = &opened {
            connecting.record("otel.status_code", "ERROR");
            connecting.record("otel.status_message", e.to_string());
        }
        drop(connecting);
        let (up, info) = opened?;
        debug!(session = %self.args.session_id, backend = %self.name(), version = %info.protocol_version, "Backend session open");
        self.up = Some(up);
        // A stateless backend has no session-wide log level (2026: per request).
        if let Some(level) = self.args.log_level.clone().filter(|_| !info.stateless) {
            let mut p = Map::new();
            p.insert("level".into(), level);
            self.internal(methods::LOGGING_SET_LEVEL.into(), Some(p))
                .await;
        }
        for msg in backlog {
            let _ = self.args.session.cast(SessionMsg::Upstream {
                backend: self.args.backend,
                msg,
                related: None,
            });
        }
        let router = Arc::new(Router {
            backend: self.args.backend,
            session: self.args.session.clone(),
            child: myself.clone(),
        });
        let direct = self
            .up
            .as_ref()
            .and_then(|up| up.attach_direct(router.clone()));
        self.pump = Some(tokio::spawn(pump(rx, router).instrument(span.clone())));
        self.span = span;

        let _ = self.args.session.cast(SessionMsg::BackendReady {
            backend: self.args.backend,
            direct,
        });
        Ok(())
    }

    async fn internal(&mut self, method: String, params: Option<Map<String, Value>>) {
        let id = self.own_id();
        self.send(Request::new(RequestId::Num(id), method, params).into_message())
            .await;
    }

    async fn send(&mut self, msg: Message) {
        if let Some((_, queue)) = &mut self.reinit {
            queue.push(msg);
            return;
        }
        let Some(up) = &self.up else { return };
        let id = request_id(&msg);
        if let Err(error) = up.send(msg).instrument(self.span.clone()).await {
            let _ = self.args.session.cast(SessionMsg::SendFailed {
                backend: self.args.backend,
                id,
                error,
            });
        }
    }

    async fn reinit(&mut self, unsent: Message) {
        if let Some((_, queue)) = &mut self.reinit {
            queue.push(unsent);
            return;
        }
        info!(session = %self.args.session_id, backend = %self.name(), "Backend session expired; re-initializing");
        let id = self.own_id();
        let identity = self.identity();
        let params = serde_json::json!({
            "protocolVersion": crate::protocol::ProtocolVersion::LATEST_SESSIONFUL.as_str(),
            "capabilities": identity.capabilities,
            "clientInfo": {"name": identity.name, "version": identity.version},
        });
        let req = Request::new(
            RequestId::Num(id),
            methods::INITIALIZE,
            params.as_object().cloned(),
        );
        if let Some(up) = &self.up
            && let Err(error) = up.send(req.into_message()).await
        {
            let _ = self.args.session.cast(SessionMsg::SendFailed {
                backend: self.args.backend,
                id: request_id(&unsent),
                error,
            });
            return;
        }
        self.reinit = Some((id, vec![unsent]));
    }

    async fn on_own(&mut self, r: Response) -> Result<(), ActorProcessingErr> {
        let RequestId::Num(id) = r.id else {
            return Ok(());
        };
        match &self.reinit {
            Some((init_id, _)) if *init_id == id => {
                if let Err(e) = r.outcome {
                    return Err(format!("re-initialize failed: {}", e.message).into());
                }
                let queue = self.reinit.take().map(|(_, q)| q).unwrap_or_default();
                self.send(Notification::new(methods::INITIALIZED, None).into_message())
                    .await;
                for m in queue {
                    self.send(m).await;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn request_id(msg: &Message) -> Option<RequestId> {
    match msg {
        Message::Request(r) => Some(r.id.clone()),
        _ => None,
    }
}

/// Where this connection's events go: answers to the child's own requests (ids ≤ 0), expiry
/// and the connection's end to the child, everything else to the session. The pump uses it for
/// the event channel, and the HTTP transport calls it directly for a POST's JSON answer.
struct Router {
    backend: usize,
    session: ActorRef<SessionMsg>,
    child: ActorRef<BackendMsg>,
}

impl EventSink for Router {
    fn deliver(&self, ev: UpstreamEvent) -> bool {
        match ev {
            UpstreamEvent::Message {
                msg: Message::Response(r),
                ..
            } if matches!(r.id, RequestId::Num(n) if n <= 0) => {
                self.child.cast(BackendMsg::Own(r)).is_ok()
            }
            UpstreamEvent::Message { msg, related } => self
                .session
                .cast(SessionMsg::Upstream {
                    backend: self.backend,
                    msg,
                    related,
                })
                .is_ok(),
            UpstreamEvent::SessionExpired { unsent } => {
                self.child.cast(BackendMsg::Reinit(unsent)).is_ok()
            }
            UpstreamEvent::SendFailed { msg, error } => self
                .session
                .cast(SessionMsg::SendFailed {
                    backend: self.backend,
                    id: request_id(&msg),
                    error,
                })
                .is_ok(),
            UpstreamEvent::Closed { error } => {
                let _ = self.child.cast(BackendMsg::Closed(error));
                false
            }
        }
    }
}

async fn pump(mut rx: mpsc::Receiver<UpstreamEvent>, router: Arc<Router>) {
    while let Some(ev) = rx.recv().await {
        if !router.deliver(ev) {
            return;
        }
    }
    let _ = router.child.cast(BackendMsg::Closed(UpstreamError::Closed(
        "connection ended".into(),
    )));
}

impl Actor for BackendSession {
    type Msg = BackendMsg;
    type State = BackendState;
    type Arguments = BackendArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<BackendMsg>,
        args: BackendArgs,
    ) -> Result<BackendState, ActorProcessingErr> {
        myself.cast(BackendMsg::Connect)?;
        let tel = &args.shared.telemetry;
        tel.metrics
            .backend_session_opened(&tel.backends[args.backend].name);
        Ok(BackendState {
            args,
            up: None,
            pump: None,
            next_own: 0,
            reinit: None,
            span: tracing::Span::none(),
            started: tokio::time::Instant::now(),
            ended: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<BackendMsg>,
        msg: BackendMsg,
        st: &mut BackendState,
    ) -> Result<(), ActorProcessingErr> {
        let done = match msg {
            BackendMsg::Connect => st.connect(&myself).await,
            BackendMsg::Send(m) => {
                st.send(m).await;
                Ok(())
            }
            BackendMsg::Internal { method, params } => {
                st.internal(method, params).await;
                Ok(())
            }
            BackendMsg::Own(r) => st.on_own(r).await,
            BackendMsg::Reinit(m) => {
                st.reinit(m).await;
                Ok(())
            }
            BackendMsg::Closed(e) => Err(e.to_string().into()),
        };
        if done.is_err() {
            // ractor skips post_stop for a failing actor: close the backend session here.
            st.end().await;
        }
        done
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<BackendMsg>,
        st: &mut BackendState,
    ) -> Result<(), ActorProcessingErr> {
        st.end().await;
        Ok(())
    }
}

impl BackendState {
    /// Closes the connection (HTTP DELETE, stdio process group) and records the session's end.
    async fn end(&mut self) {
        if let Some(p) = self.pump.take() {
            p.abort();
        }
        if let Some(up) = self.up.take() {
            up.close().await;
        }
        self.record_end();
    }

    fn record_end(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let tel = &self.args.shared.telemetry;
        let facts = &tel.backends[self.args.backend];
        tel.metrics
            .backend_session_closed(&facts.name, facts.transport, self.started.elapsed());
    }
}

/// The last resort (a killed or panicking actor): the state is dropped without `end`.
impl Drop for BackendState {
    fn drop(&mut self) {
        if let Some(p) = self.pump.take() {
            p.abort();
        }
        if let Some(up) = self.up.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move { up.close().await });
        }
        self.record_end();
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_starts_at_zero_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(400));
        assert_eq!(backoff(40), Duration::from_secs(10));
    }
}
