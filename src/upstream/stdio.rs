//! stdio transport: a spawned backend process (stub; being written).

use tokio::sync::mpsc;

use super::{UpstreamError, UpstreamEvent};
use crate::config::BackendConfig;
use crate::protocol::Message;

#[derive(Debug)]
pub struct StdioUpstream;

impl StdioUpstream {
    pub async fn spawn(
        _cfg: &BackendConfig,
        _events: mpsc::Sender<UpstreamEvent>,
    ) -> Result<Self, UpstreamError> {
        Err(UpstreamError::Connect("not implemented".into()))
    }
    pub async fn send(&self, _msg: Message) -> Result<(), UpstreamError> {
        Err(UpstreamError::Connect("not implemented".into()))
    }
    pub async fn close(self) {}
}
