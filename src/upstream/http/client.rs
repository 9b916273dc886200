//! The pooled HTTP client of one backend (hyper-util over TCP or rustls, connect bounded as a
//! whole) and the parsing of a backend's URL and configured headers, secrets kept sensitive.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use url::Url;

use crate::config::Timeouts;
use crate::upstream::UpstreamError;

const USER_AGENT_VALUE: HeaderValue =
    HeaderValue::from_static(concat!("switchboard/", env!("CARGO_PKG_VERSION")));

/// The keep-alive HTTP client of one backend: hyper's pooled client over plain TCP or rustls
/// (Mozilla roots; HTTP/2 when the server offers it by ALPN). It never follows redirects, so
/// configured credential headers cannot leak to another host.
pub type Client = hyper_util::client::legacy::Client<Connector, Full<Bytes>>;

/// TCP (+ TLS for https) connector whose whole connect, TLS handshake included, is bounded by
/// `timeouts.connect`, as reqwest's was (hyper's own connect timeout covers TCP only).
#[derive(Clone, Debug)]
pub struct Connector {
    inner: HttpsConnector<HttpConnector>,
    timeout: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Connector {
    type Response = <HttpsConnector<HttpConnector> as tower_service::Service<Uri>>::Response;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect (TCP and TLS) timed out",
                )
                .into()),
            }
        })
    }
}

/// Builds the keep-alive client of one HTTP backend. No overall request timeout: long tool
/// calls stream, and the owner enforces per-request deadlines.
pub(crate) fn build_client(t: &Timeouts) -> Result<Client, UpstreamError> {
    let mut tcp = HttpConnector::new();
    tcp.set_connect_timeout(Some(t.connect));
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| UpstreamError::Connect(format!("cannot build the TLS client: {e}")))?
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(tcp);
    let connector = Connector {
        inner: tls,
        timeout: t.connect,
    };
    Ok(
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector),
    )
}

/// Validated configured headers, their values marked sensitive so `Debug` hides them.
pub(crate) fn header_map(
    headers: &std::collections::BTreeMap<String, crate::config::Secret>,
) -> Result<HeaderMap, UpstreamError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| UpstreamError::Connect(format!("header name `{k}` is invalid")))?;
        let mut value = HeaderValue::from_str(v.expose())
            .map_err(|_| UpstreamError::Connect(format!("value of header `{k}` is invalid")))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// The backend URL as a request URI: http(s) only, without fragment. User info (which
/// `http::Uri` would put on the wire nowhere) becomes a Basic `Authorization` header unless
/// one is configured, as reqwest did.
pub(super) fn parse_url(url: &str, headers: &mut HeaderMap) -> Result<Uri, UpstreamError> {
    let mut url = Url::parse(url)
        .map_err(|e| UpstreamError::Connect(format!("backend url is invalid: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UpstreamError::Connect(
            "backend url must be http:// or https://".into(),
        ));
    }
    url.set_fragment(None);
    if !url.username().is_empty() || url.password().is_some() {
        let user = percent_decode(url.username());
        let password = url.password().map(percent_decode);
        let mut credentials = format!("{user}:");
        if let Some(p) = password {
            credentials.push_str(&p);
        }
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
            .map_err(|_| UpstreamError::Connect("backend url credentials are invalid".into()))?;
        value.set_sensitive(true);
        if !headers.contains_key(AUTHORIZATION) {
            headers.insert(AUTHORIZATION, value);
        }
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    if !headers.contains_key(USER_AGENT) {
        headers.insert(USER_AGENT, USER_AGENT_VALUE);
    }
    // Not echoing the parser's error: the URL may hold a token.
    url.as_str()
        .parse::<Uri>()
        .map_err(|_| UpstreamError::Connect("backend url is not a valid request URI".into()))
}

pub(super) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether a client error was the connect timeout (an I/O `TimedOut` among its causes).
pub(super) fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// An error and its causes. hyper's errors carry neither the request URL nor headers.
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
