//! Issuers' verification keys: each issuer's JWKS (found directly or by discovery), fetched at
//! start, kept for `cache_ttl`, fetched again on an unknown `kid` at most once per
//! `refresh_interval`; a failed fetch keeps the keys already known.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::AuthError;
use crate::config::{IssuerConfig, KeySource, Timeouts};
use crate::upstream::http::{Client, build_client};

/// The largest JWKS or discovery document read.
const MAX_DOCUMENT: usize = 1 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Every trusted issuer's keys.
#[derive(Debug)]
pub struct KeySets {
    issuers: Vec<Arc<IssuerKeys>>,
}

/// One issuer: its config and the keys known now.
#[derive(Debug)]
pub(super) struct IssuerKeys {
    pub(super) cfg: IssuerConfig,
    pub(super) algorithms: Vec<Algorithm>,
    keys: ArcSwap<Keys>,
    /// Serializes fetches; holds when the last one was tried.
    fetch: Mutex<Fetch>,
    client: Option<Client>,
}

#[derive(Debug, Default)]
struct Fetch {
    last_try: Option<Instant>,
    jwks_uri: Option<String>,
}

/// One fetched key set.
#[derive(Debug, Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    /// Keys published without a `kid` (usable only by tokens without one).
    unnamed: Vec<DecodingKey>,
    fetched: Option<Instant>,
}

impl KeySets {
    pub fn new(issuers: &[IssuerConfig]) -> Self {
        let client = build_client(&Timeouts {
            connect: Duration::from_secs(5),
            request: FETCH_TIMEOUT,
        })
        .ok();
        let issuers = issuers
            .iter()
            .map(|cfg| {
                let algorithms = cfg
                    .algorithms
                    .iter()
                    .filter_map(|a| a.parse::<Algorithm>().ok())
                    .collect();
                let keys = match &cfg.keys {
                    KeySource::Hs256(secret) => Keys {
                        unnamed: DecodingKey::from_secret(secret.expose().as_bytes())
                            .into_iter()
                            .collect(),
                        ..Keys::default()
                    },
                    _ => Keys::default(),
                };
                Arc::new(IssuerKeys {
                    cfg: cfg.clone(),
                    algorithms,
                    keys: ArcSwap::from_pointee(keys),
                    fetch: Mutex::new(Fetch::default()),
                    client: client.clone(),
                })
            })
            .collect();
        KeySets { issuers }
    }

    /// The issuer whose `iss` this is.
    pub(super) fn issuer(&self, iss: &str) -> Option<&Arc<IssuerKeys>> {
        self.issuers.iter().find(|i| i.cfg.issuer == iss)
    }

    pub(super) fn several(&self) -> bool {
        self.issuers.len() > 1
    }

    pub(super) async fn prefetch(&self) {
        for i in &self.issuers {
            if !matches!(i.cfg.keys, KeySource::Hs256(_)) {
                let _ = i.refresh(true).await;
            }
        }
    }
}

impl IssuerKeys {
    /// The key that should have signed a token with this `kid` and algorithm family.
    pub(super) async fn key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, AuthError> {
        if let Some(k) = self.find(kid, alg, true) {
            return Ok(k);
        }
        if matches!(self.cfg.keys, KeySource::Hs256(_)) {
            return Err(AuthError::Invalid("unknown signing key".into()));
        }
        // Unknown (or stale) key: fetch again, at most once per refresh interval.
        self.refresh(false).await?;
        self.find(kid, alg, false)
            .ok_or_else(|| AuthError::Invalid("unknown signing key (kid)".into()))
    }

    fn find(&self, kid: Option<&str>, alg: Algorithm, fresh_only: bool) -> Option<DecodingKey> {
        let keys = self.keys.load();
        if fresh_only
            && !matches!(self.cfg.keys, KeySource::Hs256(_))
            && keys
                .fetched
                .is_none_or(|t| t.elapsed() >= self.cfg.cache_ttl)
        {
            return None;
        }
        let family = alg.family();
        match kid {
            Some(kid) => keys
                .by_kid
                .get(kid)
                .filter(|k| k.family() == family)
                .cloned(),
            None => {
                let mut same = keys.unnamed.iter().filter(|k| k.family() == family);
                match (same.next(), same.next()) {
                    (Some(k), None) => Some(k.clone()),
                    _ => None,
                }
            }
        }
    }

    /// Fetches the key set again unless an unknown key caused a fetch within the refresh
    /// interval (`startup`: always, and it does not count). Failing, the keys already known stay.
    async fn refresh(&self, startup: bool) -> Result<(), AuthError> {
        let mut f = self.fetch.lock().await;
        if !startup {
            if f.last_try
                .is_some_and(|t| t.elapsed() < self.cfg.refresh_interval)
            {
                return Ok(());
            }
            f.last_try = Some(Instant::now());
        }
        match self.fetch_keys(&mut f).await {
            Ok(keys) => {
                tracing::info!(issuer = %self.cfg.name, keys = keys.by_kid.len() + keys.unnamed.len(), "Fetched the issuer's signing keys");
                self.keys.store(Arc::new(keys));
                Ok(())
            }
            Err(why) => {
                tracing::warn!(issuer = %self.cfg.name, error = %why, "Cannot fetch the issuer's signing keys; keeping the keys already known");
                if self.keys.load().fetched.is_none() {
                    Err(AuthError::KeysUnavailable(format!(
                        "the signing keys of issuer {:?} cannot be fetched",
                        self.cfg.name
                    )))
                } else {
                    Ok(())
                }
            }
        }
    }

    async fn fetch_keys(&self, f: &mut Fetch) -> Result<Keys, String> {
        let uri = match (&self.cfg.keys, &f.jwks_uri) {
            (KeySource::Jwks(u), _) => u.clone(),
            (KeySource::Discovery, Some(u)) => u.clone(),
            (KeySource::Discovery, None) => {
                let u = self.discover().await?;
                f.jwks_uri = Some(u.clone());
                u
            }
            (KeySource::Hs256(_), _) => return Err("no key set to fetch".into()),
        };
        let body = self.get(&uri).await?;
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| format!("{uri}: not a JWKS: {e}"))?;
        let mut keys = Keys {
            fetched: Some(Instant::now()),
            ..Keys::default()
        };
        for jwk in &set.keys {
            // Only public signature keys: a symmetric (`oct`) key in a JWKS is never trusted.
            if matches!(
                jwk.algorithm,
                AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_)
            ) {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            match &jwk.common.key_id {
                Some(kid) => {
                    keys.by_kid.insert(kid.clone(), key);
                }
                None => keys.unnamed.push(key),
            }
        }
        Ok(keys)
    }

    /// The `jwks_uri` from OIDC discovery, else RFC 8414 metadata.
    async fn discover(&self) -> Result<String, String> {
        let base = self.cfg.issuer.trim_end_matches('/');
        let mut last = String::new();
        for well_known in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ] {
            let url = format!("{base}{well_known}");
            match self.get(&url).await {
                Ok(body) => {
                    let doc: serde_json::Value = serde_json::from_slice(&body)
                        .map_err(|e| format!("{url}: not JSON: {e}"))?;
                    if doc.get("issuer").and_then(|v| v.as_str()) != Some(&self.cfg.issuer) {
                        return Err(format!("{url}: its issuer is not {:?}", self.cfg.issuer));
                    }
                    return doc
                        .get("jwks_uri")
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                        .ok_or_else(|| format!("{url}: no jwks_uri"));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn get(&self, url: &str) -> Result<Bytes, String> {
        let client = self.client.as_ref().ok_or("no HTTP client")?;
        let req = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("{url}: {e}"))?;
        let resp = tokio::time::timeout(FETCH_TIMEOUT, client.request(req))
            .await
            .map_err(|_| format!("{url}: timed out"))?
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        let body = tokio::time::timeout(
            FETCH_TIMEOUT,
            Limited::new(resp.into_body(), MAX_DOCUMENT).collect(),
        )
        .await
        .map_err(|_| format!("{url}: timed out"))?
        .map_err(|e| format!("{url}: {e}"))?;
        Ok(body.to_bytes())
    }
}
