//! One discovery connection per backend: lists everything at start-up, re-lists on `list_changed`,
//! reconnects with backoff when the backend goes away.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::{Catalog, Snapshot};
use crate::protocol::{Message, Request, RequestId, Response, methods};
use crate::upstream::handshake::{self, BackendInfo, CallError, ClientIdentity};
use crate::upstream::{EVENT_CHANNEL_CAPACITY, Upstream, UpstreamEvent, UpstreamPool};

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Upper bound on pages followed per list (a backend that never stops paginating is cut off).
const MAX_PAGES: usize = 1000;

/// Starts the discovery task of every backend; they stop when `shutdown` is cancelled.
pub fn spawn_discovery(catalog: Arc<Catalog>, pool: UpstreamPool, shutdown: CancellationToken) {
    for idx in 0..catalog.backends().len() {
        let name = catalog.backends()[idx].name.clone();
        let task = Discoverer {
            catalog: catalog.clone(),
            pool: pool.clone(),
            idx,
            next_id: 1,
            attempted: false,
        };
        let shutdown = shutdown.clone();
        tokio::spawn(
            async move {
                tokio::select! {
                    _ = task.run() => {}
                    _ = shutdown.cancelled() => {}
                }
            }
            .instrument(info_span!("discovery", backend = %name)),
        );
    }
}

struct Discoverer {
    catalog: Arc<Catalog>,
    pool: UpstreamPool,
    idx: usize,
    next_id: i64,
    /// The first discovery attempt has finished (readiness counts it once).
    attempted: bool,
}

impl Discoverer {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let result = self.session().await;
            self.catalog.set_up(self.idx, false);
            self.mark_attempted();
            match result {
                Ok(()) => backoff = Duration::from_millis(200),
                Err(error) => warn!(%error, "Backend discovery failed; retrying in {backoff:?}"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn mark_attempted(&mut self) {
        if !self.attempted {
            self.attempted = true;
            self.catalog.mark_attempted();
        }
    }

    /// One connection's life: handshake, full listing, then watch for changes until it closes.
    async fn session(&mut self) -> Result<(), CallError> {
        let cfg = &self.catalog.backends()[self.idx];
        let timeout = cfg.timeouts.connect;
        let (tx, mut rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let up = tokio::time::timeout(timeout, Upstream::connect(cfg, &self.pool, tx))
            .await
            .map_err(|_| crate::upstream::UpstreamError::Timeout(timeout))??;
        let mut backlog = Vec::new();
        let result = self.discover(&up, &mut rx, &mut backlog).await;
        up.close().await;
        result
    }

    async fn discover(
        &mut self,
        up: &Upstream,
        rx: &mut mpsc::Receiver<UpstreamEvent>,
        backlog: &mut Vec<Message>,
    ) -> Result<(), CallError> {
        let cfg = &self.catalog.backends()[self.idx];
        // Over HTTP this returns once the backend accepted `notifications/initialized` and
        // answered the GET stream: tools it registers on `initialized` (server-everything's
        // sampling and elicitation tools) are in the first listing, and every later
        // `list_changed` reaches the loop below.
        let info = handshake::open(
            up,
            rx,
            backlog,
            &ClientIdentity::gateway(),
            cfg.timeouts.connect,
            false,
        )
        .await?;
        let mut snap = Snapshot {
            info,
            ..Snapshot::default()
        };
        self.list_everything(up, rx, backlog, &mut snap).await?;
        info!(
            tools = snap.tools.len(),
            prompts = snap.prompts.len(),
            resources = snap.resources.len(),
            "Backend discovered"
        );
        let stateless = snap.info.stateless;
        self.catalog.publish(self.idx, snap);
        self.catalog.set_up(self.idx, true);
        self.mark_attempted();
        // A stateless (2026-07-28) backend has no session stream: list changes arrive on a
        // long-lived `subscriptions/listen` request instead. When it ends, reconnect (re-probe).
        let listen = if stateless {
            self.next_id += 1;
            let filter = json!({"notifications": {
                "toolsListChanged": true, "promptsListChanged": true, "resourcesListChanged": true,
            }});
            let req = Request::new(
                RequestId::Num(self.next_id),
                crate::protocol::era2026::SUBSCRIPTIONS_LISTEN,
                filter.as_object().cloned(),
            );
            up.send(req.into_message()).await?;
            Some(RequestId::Num(self.next_id))
        } else {
            None
        };
        // A backend may change a definition without saying so: re-list everything this often.
        let mut tick = self
            .catalog
            .integrity()
            .map(|c| c.refresh_interval())
            .filter(|d| !d.is_zero())
            .map(|d| tokio::time::interval_at(tokio::time::Instant::now() + d, d));
        loop {
            for msg in std::mem::take(backlog) {
                self.on_message(up, rx, backlog, msg).await?;
            }
            let catalog = self.catalog.clone();
            let refresh = async {
                match catalog.refreshed(self.idx) {
                    Some(n) => n.notified().await,
                    None => std::future::pending().await,
                }
            };
            let periodic = async {
                match tick.as_mut() {
                    Some(t) => {
                        t.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                e = rx.recv() => e,
                _ = periodic => {
                    debug!("Periodic re-listing");
                    for m in [methods::TOOLS_LIST_CHANGED, methods::PROMPTS_LIST_CHANGED, methods::RESOURCES_LIST_CHANGED] {
                        backlog.push(crate::protocol::Notification::new(m, None).into_message());
                    }
                    continue;
                }
                _ = refresh => {
                    debug!("A session saw list_changed; re-listing");
                    let list_changed = crate::protocol::Notification::new(methods::TOOLS_LIST_CHANGED, None);
                    backlog.push(list_changed.into_message());
                    for m in [methods::PROMPTS_LIST_CHANGED, methods::RESOURCES_LIST_CHANGED] {
                        backlog.push(crate::protocol::Notification::new(m, None).into_message());
                    }
                    continue;
                }
            };
            match event {
                Some(UpstreamEvent::Message { msg, .. }) => {
                    self.on_message(up, rx, backlog, msg).await?
                }
                Some(UpstreamEvent::Closed { error }) => return Err(error.into()),
                Some(UpstreamEvent::SessionExpired { .. }) => {
                    return Err(crate::upstream::UpstreamError::Closed(
                        "backend session expired".into(),
                    )
                    .into());
                }
                Some(UpstreamEvent::SendFailed { msg, error }) => {
                    if let (Message::Request(r), Some(l)) = (&msg, &listen)
                        && &r.id == l
                    {
                        return Err(error.into());
                    }
                }
                None => return Ok(()),
            }
        }
    }

    async fn on_message(
        &mut self,
        up: &Upstream,
        rx: &mut mpsc::Receiver<UpstreamEvent>,
        backlog: &mut Vec<Message>,
        msg: Message,
    ) -> Result<(), CallError> {
        match msg {
            Message::Notification(n) => {
                let which = match n.method.as_str() {
                    methods::TOOLS_LIST_CHANGED => Some("tools"),
                    methods::PROMPTS_LIST_CHANGED => Some("prompts"),
                    methods::RESOURCES_LIST_CHANGED => Some("resources"),
                    _ => None,
                };
                if let Some(which) = which {
                    debug!(list = which, "Backend list changed; re-listing");
                    let Some(old) = self.catalog.snapshot(self.idx) else {
                        return Ok(());
                    };
                    let mut snap = old.relisted();
                    self.list_kind(up, rx, backlog, &mut snap, which).await?;
                    debug!(list = which, tools = snap.tools.len(), "Re-listed");
                    self.catalog.publish(self.idx, snap);
                }
            }
            Message::Request(r) => {
                // The discovery connection has no developer behind it: answer ping and roots
                // (none), refuse the rest.
                let resp = if r.method == methods::PING {
                    Response::ok(r.id, &json!({}))
                } else if r.method == "roots/list" {
                    Response::ok(r.id, &json!({"roots": []}))
                } else {
                    Response::error(
                        r.id,
                        crate::protocol::ErrorObject::new(
                            crate::protocol::jsonrpc::codes::METHOD_NOT_FOUND,
                            "the gateway's discovery connection does not serve client requests",
                        ),
                    )
                };
                up.send(resp.into_message()).await?;
            }
            Message::Response(_) => {}
        }
        Ok(())
    }

    async fn list_everything(
        &mut self,
        up: &Upstream,
        rx: &mut mpsc::Receiver<UpstreamEvent>,
        backlog: &mut Vec<Message>,
        snap: &mut Snapshot,
    ) -> Result<(), CallError> {
        for which in ["tools", "prompts", "resources"] {
            self.list_kind(up, rx, backlog, snap, which).await?;
        }
        Ok(())
    }

    async fn list_kind(
        &mut self,
        up: &Upstream,
        rx: &mut mpsc::Receiver<UpstreamEvent>,
        backlog: &mut Vec<Message>,
        snap: &mut Snapshot,
        which: &str,
    ) -> Result<(), CallError> {
        if !snap.info.has_capability(which) {
            return Ok(());
        }
        match which {
            "tools" => {
                snap.tools = self
                    .list_all(up, rx, backlog, methods::TOOLS_LIST, "tools")
                    .await?
            }
            "prompts" => {
                snap.prompts = self
                    .list_all(up, rx, backlog, methods::PROMPTS_LIST, "prompts")
                    .await?
            }
            _ => {
                snap.resources = self
                    .list_all(up, rx, backlog, methods::RESOURCES_LIST, "resources")
                    .await?;
                snap.templates = self
                    .list_all(
                        up,
                        rx,
                        backlog,
                        methods::RESOURCES_TEMPLATES_LIST,
                        "resourceTemplates",
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Follows `nextCursor` until the list ends.
    async fn list_all(
        &mut self,
        up: &Upstream,
        rx: &mut mpsc::Receiver<UpstreamEvent>,
        backlog: &mut Vec<Message>,
        method: &str,
        key: &str,
    ) -> Result<Vec<Map<String, Value>>, CallError> {
        let timeout = self.catalog.backends()[self.idx].timeouts.request;
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            self.next_id += 1;
            let params = cursor.take().map(|c| {
                let mut m = Map::new();
                m.insert("cursor".into(), Value::String(c));
                m
            });
            let req = Request::new(RequestId::Num(self.next_id), method, params);
            let raw = handshake::call(up, rx, backlog, req, timeout).await?;
            let page: Value = serde_json::from_str(raw.get()).map_err(|e| {
                crate::upstream::UpstreamError::Protocol(format!("{method} result: {e}"))
            })?;
            if let Some(items) = page.get(key).and_then(Value::as_array) {
                out.extend(items.iter().filter_map(|i| i.as_object().cloned()));
            }
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
                _ => return Ok(out),
            }
        }
        warn!(
            method,
            "Backend kept paginating past {MAX_PAGES} pages; list truncated"
        );
        Ok(out)
    }
}

impl Snapshot {
    pub fn info(&self) -> &BackendInfo {
        &self.info
    }
}
