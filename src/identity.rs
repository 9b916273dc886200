//! Authentication: a request's bearer credential turned into a `Principal` — a JWT access token
//! verified against its issuer's keys, or a service account's API key — with verified tokens
//! cached until they expire.

pub mod apikey;
mod cache;
mod claims;
mod jwks;
mod jwt;

use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderMap;

use crate::config::{AuthConfig, OAuthConfig};
use crate::policy::Principal;

pub use jwks::KeySets;

/// Why a request was not authenticated. Every message is safe to show the client: it names what
/// was wrong, never a key, a token or another principal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` credential (401, no error code: RFC 6750 §3.1).
    #[error("authentication required: send Authorization: Bearer <access token or API key>")]
    Missing,
    /// An `Authorization` header that is not one well-formed bearer credential (400).
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    /// A credential that does not verify, has expired, or is not for this gateway (401).
    #[error("invalid token: {0}")]
    Invalid(String),
    /// A valid token lacking a scope this resource requires (403).
    #[error("insufficient scope: this resource requires scope \"{0}\"")]
    InsufficientScope(String),
    /// The issuer's keys cannot be fetched right now (503): nothing is decided without them.
    #[error("cannot verify tokens right now: {0}")]
    KeysUnavailable(String),
}

/// A listener's authentication: off (everyone anonymous) or bearer credentials.
#[derive(Debug)]
pub enum Authenticator {
    None,
    OAuth(Box<Verifier>),
}

/// Verifies bearer credentials for one listener.
#[derive(Debug)]
pub struct Verifier {
    cfg: OAuthConfig,
    keys: KeySets,
    api_keys: apikey::ApiKeys,
    cache: cache::TokenCache,
    audiences: Vec<String>,
}

impl Authenticator {
    /// `backends`: the virtual servers' names (their resource URIs are accepted audiences).
    pub fn new(cfg: &AuthConfig, backends: &[&str]) -> Self {
        match cfg {
            AuthConfig::None => Authenticator::None,
            AuthConfig::OAuth(c) => Authenticator::OAuth(Box::new(Verifier::new(c, backends))),
        }
    }

    /// The principal of a request with these headers.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Principal>, AuthError> {
        match self {
            Authenticator::None => Ok(Principal::anonymous()),
            Authenticator::OAuth(v) => v.authenticate(bearer(headers)?).await,
        }
    }

    pub fn oauth(&self) -> Option<&OAuthConfig> {
        match self {
            Authenticator::None => None,
            Authenticator::OAuth(v) => Some(&v.cfg),
        }
    }

    /// Fetches every issuer's keys now (at start), so the first caller does not wait for them.
    pub async fn prefetch(&self) {
        if let Authenticator::OAuth(v) = self {
            v.keys.prefetch().await;
        }
    }
}

/// The one bearer credential of `Authorization`, if any.
fn bearer(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthError::Missing);
    };
    if values.next().is_some() {
        return Err(AuthError::Malformed("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::Malformed("not visible ASCII"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic, …) is no bearer credential at all.
        return Err(AuthError::Missing);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Malformed("Bearer without a token"));
    }
    if !token.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
    }) {
        return Err(AuthError::Malformed(
            "the token has characters RFC 6750 does not allow",
        ));
    }
    Ok(token)
}

impl Verifier {
    fn new(cfg: &OAuthConfig, backends: &[&str]) -> Self {
        let mut audiences = vec![cfg.resource.clone()];
        audiences.extend(cfg.audiences.iter().cloned());
        if let Some(base) = cfg.resource.strip_suffix("/mcp") {
            audiences.extend(backends.iter().map(|b| format!("{base}/servers/{b}/mcp")));
        }
        Verifier {
            keys: KeySets::new(&cfg.issuers),
            api_keys: apikey::ApiKeys::new(&cfg.api_keys, &cfg.required_scopes),
            cache: cache::TokenCache::default(),
            audiences,
            cfg: cfg.clone(),
        }
    }

    async fn authenticate(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        let now = SystemTime::now();
        if let Some(key) = token.strip_prefix(apikey::PREFIX) {
            return self.api_keys.check(key, now);
        }
        let principal = match self.cache.get(token, now) {
            Some(p) => p,
            None => {
                let p = Arc::new(jwt::verify(token, &self.cfg, &self.audiences, &self.keys).await?);
                self.cache.put(token, p.clone(), now);
                p
            }
        };
        self.scopes(&principal)?;
        Ok(principal)
    }

    fn scopes(&self, p: &Principal) -> Result<(), AuthError> {
        match self
            .cfg
            .required_scopes
            .iter()
            .find(|s| !p.scopes.iter().any(|g| **g == ***s))
        {
            Some(_) => Err(AuthError::InsufficientScope(
                self.cfg.required_scopes.join(" "),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
