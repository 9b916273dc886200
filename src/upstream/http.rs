//! Streamable HTTP client transport to one backend (stub; being written).

use tokio::sync::mpsc;

use super::{UpstreamError, UpstreamEvent};
use crate::config::BackendConfig;
use crate::protocol::Message;

pub(crate) fn build_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder().build()
}

#[derive(Debug)]
pub struct HttpUpstream;

impl HttpUpstream {
    pub fn new(
        _cfg: &BackendConfig,
        _client: reqwest::Client,
        _events: mpsc::Sender<UpstreamEvent>,
    ) -> Result<Self, UpstreamError> {
        Err(UpstreamError::Connect("not implemented".into()))
    }
    pub async fn send(&self, _msg: Message) -> Result<(), UpstreamError> {
        Err(UpstreamError::Connect("not implemented".into()))
    }
    pub async fn close(self) {}
}
