//! The credential the gateway injects on the upstream hop: its own, never the client's. Static
//! `headers:` are sent as configured (`http::header_map`); this module obtains the dynamic
//! kind, an OAuth 2.0 client-credentials access token (RFC 6749 §4.4), caches it until shortly
//! before it expires, refreshes it once for all concurrent requests (single flight), and hands
//! out the `Authorization: Bearer` value every HTTP request and WebSocket handshake carries.
//!
//! Nothing here prints a secret: errors name the backend's token endpoint outcome (status,
//! OAuth `error` code), never the client secret, the request body or the token.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::UpstreamError;
use super::http::{Client, describe};
use crate::config::{BackendAuth, BackendConfig, ClientAuthMethod, ClientCredentialsConfig};

/// Largest token endpoint answer read.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// Lifetime assumed when the token endpoint gives no `expires_in` (RFC 6749 leaves it open).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// A token is refreshed this long before it expires at most (10 % of its lifetime when shorter).
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Longest OAuth `error` code repeated in an error message.
const MAX_ERROR_CODE: usize = 64;

/// The dynamic credential of one backend, shared by every connection to it (discovery and all
/// sessions), so they share one cached token. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    source: Option<Arc<TokenSource>>,
}

impl Credentials {
    /// No dynamic credential (static headers, if any, are the whole story).
    pub fn none() -> Self {
        Self::default()
    }

    /// The credential configured for `cfg` (`auth:`), fetched with `client` when needed.
    pub fn for_backend(cfg: &BackendConfig, client: Client) -> Result<Self, UpstreamError> {
        match &cfg.auth {
            None => Ok(Self::none()),
            Some(BackendAuth::ClientCredentials(cc)) => Ok(Self {
                source: Some(Arc::new(TokenSource::new(
                    &cfg.name,
                    cc,
                    client,
                    cfg.timeouts.connect,
                )?)),
            }),
        }
    }

    /// Whether requests carry a credential from here (and so any `Authorization` is replaced).
    pub fn is_configured(&self) -> bool {
        self.source.is_some()
    }

    /// The `Authorization` value to send now (marked sensitive), or `None` when the backend has
    /// no dynamic credential. Fetches a token when none is cached or it is about to expire.
    pub async fn authorization(&self) -> Result<Option<HeaderValue>, UpstreamError> {
        match &self.source {
            None => Ok(None),
            Some(s) => s.authorization().await.map(Some),
        }
    }

    /// The backend refused `sent` (HTTP 401): forget it, so the next request fetches a new
    /// token instead of sending a revoked one until it expires.
    pub fn rejected(&self, sent: &HeaderValue) {
        if let Some(s) = &self.source {
            s.rejected(sent);
        }
    }
}

/// A cached token: the header value and when to refresh it / stop using it.
struct Cached {
    value: HeaderValue,
    refresh_at: Instant,
    expires_at: Instant,
}

/// One backend's client-credentials grant: the prepared token request and the cached token.
struct TokenSource {
    backend: Arc<str>,
    token_uri: Uri,
    /// The form body (with the client secret in it for `client_secret_post`).
    form: Bytes,
    /// `Basic …` for `client_secret_basic`.
    basic: Option<HeaderValue>,
    client: Client,
    timeout: Duration,
    cache: TokenCache,
}

/// A cached token refreshed by one fetch at a time (single flight), apart from how a token is
/// fetched.
#[derive(Default)]
struct TokenCache {
    /// Read without a lock on every request.
    current: ArcSwapOption<Cached>,
    /// Fetches finished so far. A caller notes it before waiting for the lock: if a fetch
    /// finished (and failed) meanwhile, it was the one this caller waited for, and its error
    /// is shared instead of starting another fetch (single flight for failures too).
    finished: AtomicU64,
    /// Held while fetching: concurrent callers wait for the one fetch. Holds the number (in
    /// `finished`) and error of the last fetch when it failed.
    fetching: tokio::sync::Mutex<Option<(u64, UpstreamError)>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    fn new(
        backend: &str,
        cfg: &ClientCredentialsConfig,
        client: Client,
        timeout: Duration,
    ) -> Result<Self, UpstreamError> {
        let token_uri = token_uri(&cfg.token_url)?;
        let (form, basic) = token_request(cfg)?;
        Ok(Self {
            backend: backend.into(),
            token_uri,
            form,
            basic,
            client,
            timeout,
            cache: TokenCache::default(),
        })
    }

    async fn authorization(&self) -> Result<HeaderValue, UpstreamError> {
        self.cache.get(&self.backend, || self.fetch()).await
    }

    fn rejected(&self, sent: &HeaderValue) {
        if self.cache.forget(sent) {
            debug!(backend = %self.backend, "Backend refused the access token; fetching a new one on the next request");
        }
    }

    /// One token request, bounded by the backend's connect timeout.
    async fn fetch(&self) -> Result<Cached, UpstreamError> {
        let mut req = Request::new(Full::new(self.form.clone()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.token_uri.clone();
        let h = req.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(basic) = &self.basic {
            h.insert(AUTHORIZATION, basic.clone());
        }
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| failed(format!("token endpoint unreachable: {}", describe(&e))))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_TOKEN_RESPONSE)
                .collect()
                .await
                .map_err(|_| failed("token endpoint answer unreadable or too large".into()))?
                .to_bytes();
            Ok::<_, UpstreamError>((status, body))
        };
        let started = Instant::now();
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                failed(format!(
                    "token endpoint did not answer within {:?}",
                    self.timeout
                ))
            })??;
        if !status.is_success() {
            return Err(failed(format!(
                "token endpoint answered HTTP {}{}",
                status.as_u16(),
                oauth_error(&body)
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )));
        }
        parse_token(&body, started)
    }
}

impl TokenCache {
    /// The cached value while it is fresh (before its refresh time).
    fn fresh(&self) -> Option<HeaderValue> {
        let cached = self.current.load();
        let c = cached.as_ref()?;
        (Instant::now() < c.refresh_at).then(|| c.value.clone())
    }

    /// The cached value while it has not expired (refresh time passed or not).
    fn still_valid(&self) -> Option<HeaderValue> {
        let cached = self.current.load();
        let c = cached.as_ref()?;
        (Instant::now() < c.expires_at).then(|| c.value.clone())
    }

    /// The cached value, or the outcome of one `fetch` shared by every caller waiting for it.
    /// A failed fetch is shared by those waiting and retried by the next caller; meanwhile a
    /// token past its refresh time but not yet expired is still handed out.
    async fn get<F, Fut>(&self, backend: &str, fetch: F) -> Result<HeaderValue, UpstreamError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Cached, UpstreamError>>,
    {
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        let seen = self.finished.load(Ordering::Acquire);
        let mut last_failure = self.fetching.lock().await;
        // Whoever held the lock may have refreshed it meanwhile.
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        if let Some((fetch, error)) = &*last_failure
            && *fetch > seen
        {
            // The fetch this caller waited for failed: share its outcome.
            return self.still_valid().ok_or_else(|| error.clone());
        }
        let outcome = fetch().await;
        let number = self.finished.fetch_add(1, Ordering::AcqRel) + 1;
        match outcome {
            Ok(cached) => {
                let value = cached.value.clone();
                debug!(backend, lifetime = ?cached.expires_at.saturating_duration_since(Instant::now()), "Fetched an access token for the backend");
                self.current.store(Some(Arc::new(cached)));
                *last_failure = None;
                Ok(value)
            }
            Err(error) => {
                warn!(backend, %error, "Could not obtain an access token for the backend");
                *last_failure = Some((number, error.clone()));
                self.still_valid().ok_or(error)
            }
        }
    }

    /// Drops the cached token if it is still `sent` (a concurrent refresh may have replaced it).
    fn forget(&self, sent: &HeaderValue) -> bool {
        let cached = self.current.load();
        if cached.as_ref().is_none_or(|c| c.value != sent) {
            return false;
        }
        let _ = self.current.compare_and_swap(&*cached, None::<Arc<Cached>>);
        true
    }
}

/// A credentials failure; retrying later may help (the IdP may come back).
fn failed(why: String) -> UpstreamError {
    UpstreamError::Credentials(why)
}

fn token_uri(url: &str) -> Result<Uri, UpstreamError> {
    let url = url::Url::parse(url)
        .map_err(|_| UpstreamError::Connect("token_url is not a valid URL".into()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UpstreamError::Connect(
            "token_url must be http:// or https://".into(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UpstreamError::Connect(
            "token_url must not carry credentials (use client_id and client_secret)".into(),
        ));
    }
    url.as_str()
        .parse::<Uri>()
        .map_err(|_| UpstreamError::Connect("token_url is not a valid request URI".into()))
}

/// The form body and, for `client_secret_basic`, the `Authorization` value of the token request.
fn token_request(
    cfg: &ClientCredentialsConfig,
) -> Result<(Bytes, Option<HeaderValue>), UpstreamError> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if !cfg.scopes.is_empty() {
        form.append_pair("scope", &cfg.scopes.join(" "));
    }
    if let Some(a) = &cfg.audience {
        form.append_pair("audience", a);
    }
    if let Some(r) = &cfg.resource {
        form.append_pair("resource", r);
    }
    let basic = match cfg.auth_method {
        ClientAuthMethod::Post => {
            form.append_pair("client_id", &cfg.client_id);
            form.append_pair("client_secret", cfg.client_secret.expose());
            None
        }
        ClientAuthMethod::Basic => {
            // RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!(
                "{}:{}",
                enc(&cfg.client_id),
                enc(cfg.client_secret.expose())
            );
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
            let mut v = HeaderValue::from_str(&format!("Basic {b64}"))
                .map_err(|_| UpstreamError::Connect("client credentials are invalid".into()))?;
            v.set_sensitive(true);
            Some(v)
        }
    };
    Ok((Bytes::from(form.finish()), basic))
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: Option<String>,
    expires_in: Option<Lifetime>,
}

/// `expires_in`: a number of seconds (some IdPs send it as a string).
#[derive(Deserialize)]
#[serde(untagged)]
enum Lifetime {
    Seconds(f64),
    Text(String),
}

impl Lifetime {
    fn duration(&self) -> Option<Duration> {
        let secs = match self {
            Lifetime::Seconds(s) => *s,
            Lifetime::Text(t) => t.trim().parse().ok()?,
        };
        (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
    }
}

/// A successful token response (RFC 6749 §5.1) as a cached bearer value. `started`: when the
/// request went out, so the lifetime counts from before the IdP issued the token.
fn parse_token(body: &[u8], started: Instant) -> Result<Cached, UpstreamError> {
    let t: TokenResponse = serde_json::from_slice(body)
        .map_err(|_| failed("token endpoint answer is not a token response".into()))?;
    if let Some(kind) = &t.token_type
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(failed(format!(
            "token endpoint issued a token of type {:?}, not Bearer",
            truncate(kind, MAX_ERROR_CODE)
        )));
    }
    if t.access_token.is_empty() {
        return Err(failed("token endpoint issued an empty access token".into()));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {}", t.access_token))
        .map_err(|_| failed("access token is not a valid header value".into()))?;
    value.set_sensitive(true);
    let lifetime = match &t.expires_in {
        None => DEFAULT_LIFETIME,
        Some(l) => l
            .duration()
            .ok_or_else(|| failed("token endpoint sent an invalid expires_in".into()))?,
    };
    let margin = MAX_REFRESH_MARGIN.min(lifetime / 10);
    Ok(Cached {
        value,
        refresh_at: started + (lifetime - margin),
        expires_at: started + lifetime,
    })
}

/// The OAuth `error` code of an error answer (RFC 6749 §5.2), if it is a plain one. Its
/// description is left out: it is free text from the IdP.
fn oauth_error(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorResponse {
        error: String,
    }
    let e: ErrorResponse = serde_json::from_slice(body).ok()?;
    let plain = e
        .error
        .bytes()
        .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\');
    plain.then(|| truncate(&e.error, MAX_ERROR_CODE).to_string())
}

fn truncate(s: &str, max: usize) -> &str {
    super::truncate_for_log(s, max)
}

#[cfg(test)]
mod tests;
