//! The Streamable HTTP transport as the generator uses it: one keep-alive HTTP/1.1
//! connection to a loopback endpoint, MCP headers, whole responses.
//!
//! The connection is a bare `hyper::client::conn::http1` handshake on a `TcpStream` with
//! `TCP_NODELAY`: no pool, no retries, no tower stack, so the generator costs little next to
//! the server it measures. A closed connection is re-opened on the next request and counted.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The MCP protocol revision the generator speaks.
pub(crate) const PROTOCOL_VERSION: &str = "2025-11-25";
const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");
const ACCEPT_BOTH: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A parsed loopback `http://` endpoint.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) addr: SocketAddr,
    authority: HeaderValue,
    path: String,
}

impl Target {
    /// Accepts only `http://` URLs whose host is a loopback address or `localhost`.
    pub(crate) fn parse(url: &str) -> anyhow::Result<Self> {
        let uri: hyper::Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only http:// URLs are supported, got {url:?}");
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("no host in {url:?}"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse()
                .with_context(|| format!("host of {url:?} is not an IP"))?
        };
        if !ip.is_loopback() {
            bail!("refusing non-loopback target {url:?}: traffic stays on 127.0.0.1");
        }
        let port = authority.port_u16().unwrap_or(80);
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        Ok(Self {
            url: url.to_owned(),
            addr: SocketAddr::new(ip, port),
            authority: HeaderValue::from_str(authority.as_str())?,
            path,
        })
    }

    /// The same server at another path (e.g. `/readyz`).
    pub(crate) fn with_path(&self, path: &str) -> Self {
        Self {
            url: format!("http://{}{path}", self.addr),
            path: path.to_owned(),
            ..self.clone()
        }
    }
}

/// The MCP headers a request carries.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Headers<'a> {
    /// None: `initialize`, or a plain HTTP request such as `/readyz`.
    Plain,
    /// After `initialize`: `MCP-Protocol-Version`, and `Mcp-Session-Id` if the server gave one.
    Session(Option<&'a HeaderValue>),
}

/// A complete HTTP response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<HeaderValue>,
    pub(crate) session_id: Option<HeaderValue>,
    pub(crate) body: Bytes,
}

/// One persistent HTTP/1.1 connection, re-opened when the server closes it.
pub(crate) struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
    pub(crate) connects: u64,
}

impl Conn {
    pub(crate) fn new(target: Target) -> Self {
        Self {
            target,
            sender: None,
            connects: 0,
        }
    }

    async fn ready_sender(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        let usable = match self.sender.as_mut() {
            Some(sender) => !sender.is_closed() && sender.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            let stream = TcpStream::connect(self.target.addr)
                .await
                .with_context(|| format!("connecting to {}", self.target.addr))?;
            stream.set_nodelay(true)?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            self.connects += 1;
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| anyhow!("no connection after connecting"))
    }

    /// Sends one request and reads the whole body, within `timeout`.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        body: Bytes,
        headers: Headers<'_>,
        timeout: Duration,
    ) -> anyhow::Result<Reply> {
        let mut request = Request::builder()
            .method(method)
            .uri(self.target.path.as_str())
            .header(HOST, self.target.authority.clone())
            .header(ACCEPT, ACCEPT_BOTH)
            .header(CONTENT_TYPE, JSON);
        if let Headers::Session(id) = headers {
            request = request.header(PROTOCOL_HEADER, PROTOCOL_VERSION);
            if let Some(id) = id {
                request = request.header(SESSION_ID, id.clone());
            }
        }
        let request = request.body(Full::new(body))?;
        let exchange = async {
            let response = self.ready_sender().await?.send_request(request).await?;
            let status = response.status();
            let content_type = response.headers().get(CONTENT_TYPE).cloned();
            let session_id = response.headers().get(SESSION_ID).cloned();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok(Reply {
                status,
                content_type,
                session_id,
                body,
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                bail!("no complete response within {timeout:?}")
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn targets_must_be_loopback_http() {
        let t = Target::parse("http://127.0.0.1:3001/mcp").unwrap();
        assert_eq!(t.addr, "127.0.0.1:3001".parse().unwrap());
        assert_eq!(t.path, "/mcp");
        assert_eq!(
            Target::parse("http://localhost:9/x?y=1").unwrap().path,
            "/x?y=1"
        );
        assert!(Target::parse("http://[::1]:9/").is_ok());
        assert!(Target::parse("http://10.0.0.1:80/mcp").is_err());
        assert!(Target::parse("https://127.0.0.1/mcp").is_err());
        assert!(Target::parse("http://example.com/mcp").is_err());
        assert_eq!(t.with_path("/readyz").url, "http://127.0.0.1:3001/readyz");
    }
}
