//! A small real OAuth 2.0 token endpoint for the credential tests (axum on 127.0.0.1:0): it
//! answers client-credentials requests with fresh bearer tokens, or refuses them, and records
//! every request (headers and form) for the tests to inspect.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// How the endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// 200 with a new token (`expires_in` 3600).
    Issue,
    /// 401 `invalid_client`, with a description echoing what the client sent (a hostile IdP:
    /// the gateway must not repeat it).
    Refuse,
    /// 503 without a body.
    Down,
}

/// One token request as received.
#[derive(Debug, Clone)]
pub(crate) struct TokenRequest {
    pub(crate) headers: HeaderMap,
    pub(crate) form: Vec<(String, String)>,
}

impl TokenRequest {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    pub(crate) fn form(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The client id and secret of a Basic `Authorization`, form-decoded (RFC 6749 §2.3.1).
    pub(crate) fn basic_credentials(&self) -> Option<(String, String)> {
        use base64::Engine as _;
        let b64 = self.header("authorization")?.strip_prefix("Basic ")?;
        let pair = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        let pair = String::from_utf8(pair).ok()?;
        let (id, secret) = pair.split_once(':')?;
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Some((decode(id), decode(secret)))
    }
}

struct Inner {
    mode: Mode,
    prefix: String,
    requests: Vec<TokenRequest>,
    issued: Vec<String>,
}

/// The endpoint; stops when dropped.
pub(crate) struct TokenEndpoint {
    url: String,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokenEndpoint {
    pub(crate) async fn start(mode: Mode) -> Self {
        Self::start_with_prefix(mode, "tok-").await
    }

    /// Issued tokens are `<prefix><n>`.
    pub(crate) async fn start_with_prefix(mode: Mode, prefix: &str) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            mode,
            prefix: prefix.to_string(),
            requests: Vec::new(),
            issued: Vec::new(),
        }));
        let app = Router::new()
            .route("/token", post(token))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenEndpoint { url, inner, task }
    }

    pub(crate) fn url(&self) -> String {
        self.url.clone()
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }

    pub(crate) fn requests(&self) -> Vec<TokenRequest> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub(crate) fn issued_tokens(&self) -> Vec<String> {
        self.inner.lock().unwrap().issued.clone()
    }
}

async fn token(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let mut st = inner.lock().unwrap();
    let req = TokenRequest { headers, form };
    let echoed = format!("{:?} {:?}", req.basic_credentials(), req.form);
    st.requests.push(req);
    match st.mode {
        Mode::Issue => {
            let token = format!("{}{}", st.prefix, st.issued.len() + 1);
            st.issued.push(token.clone());
            let body = serde_json::json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 3600,
            });
            (
                StatusCode::OK,
                [
                    ("content-type", "application/json"),
                    ("cache-control", "no-store"),
                ],
                body.to_string(),
            )
                .into_response()
        }
        Mode::Refuse => {
            let body = serde_json::json!({
                "error": "invalid_client",
                "error_description": format!("client authentication failed for {echoed}"),
            });
            (
                StatusCode::UNAUTHORIZED,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Mode::Down => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
