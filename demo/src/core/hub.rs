//! Server-wide change fan-out: list changes and resource updates reach every session.

use bytes::Bytes;
use serde_json::json;
use tokio::sync::broadcast;

use super::session::Session;
use crate::jsonrpc::encode_notification;

/// Something that changed on the server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    Tools,
    Resources,
    ResourceUpdated(String),
}

impl Change {
    /// The notification announcing this change.
    pub(crate) fn notification(&self) -> Bytes {
        match self {
            Change::Tools => encode_notification("notifications/tools/list_changed", &json!({})),
            Change::Resources => {
                encode_notification("notifications/resources/list_changed", &json!({}))
            }
            Change::ResourceUpdated(uri) => {
                encode_notification("notifications/resources/updated", &json!({ "uri": uri }))
            }
        }
    }

    /// Whether `session` should hear about this change.
    pub(crate) fn wanted_by(&self, session: &Session) -> bool {
        match self {
            Change::ResourceUpdated(uri) => session.is_subscribed(uri),
            _ => true,
        }
    }
}

#[derive(Debug, Clone)]
struct Event {
    origin: u64,
    change: Change,
}

/// Broadcasts changes to all sessions' unsolicited streams.
#[derive(Clone)]
pub(crate) struct Hub {
    tx: broadcast::Sender<Event>,
}

/// One session's view of the hub.
pub(crate) struct HubReceiver {
    rx: broadcast::Receiver<Event>,
}

impl Hub {
    pub(crate) fn new() -> Self {
        let (tx, _) = broadcast::channel(256);
        Self { tx }
    }

    pub(crate) fn publish(&self, origin: u64, change: Change) {
        // No receivers is fine: nobody is listening.
        let _ = self.tx.send(Event { origin, change });
    }

    pub(crate) fn subscribe(&self) -> HubReceiver {
        HubReceiver {
            rx: self.tx.subscribe(),
        }
    }
}

impl HubReceiver {
    /// Next notification for `session`, skipping changes it caused itself (those went out on
    /// the originating request's stream). `None` when the hub is gone.
    pub(crate) async fn next_for(&mut self, session: &Session) -> Option<Bytes> {
        loop {
            match self.rx.recv().await {
                Ok(ev) if ev.origin != session.key() && ev.change.wanted_by(session) => {
                    return Some(ev.change.notification());
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
