//! Service accounts' API keys: `sbk_` and 32 random bytes (base64url), known to the gateway only
//! by their SHA-256; made by `switchboard apikey new`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::AuthError;
use crate::config::ApiKeyConfig;
use crate::policy::{Principal, Via};

/// What every API key starts with (and no JWT does: a JWT starts with `ey`).
pub const PREFIX: &str = "sbk_";
/// A service account's subject is `apikey:<name>`; no token subject may start so.
pub const SUBJECT_PREFIX: &str = "apikey:";

/// A new key: the secret to hand over once, and the hash line for the config.
pub fn generate() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = crate::config::api_key_hash(&key);
    (key, hash)
}

/// The configured keys, by hash.
#[derive(Debug, Default)]
pub(super) struct ApiKeys {
    by_hash: HashMap<[u8; 32], Key>,
}

#[derive(Debug)]
struct Key {
    name: String,
    expires: Option<SystemTime>,
    principal: Arc<Principal>,
}

impl ApiKeys {
    /// Service accounts are granted the listener's required scopes: their roles say what they may do.
    pub(super) fn new(keys: &[ApiKeyConfig], scopes: &[String]) -> Self {
        let by_hash = keys
            .iter()
            .map(|k| {
                let mut roles: Vec<Arc<str>> =
                    k.roles.iter().map(|r| Arc::from(r.as_str())).collect();
                roles.sort();
                roles.dedup();
                let principal = Principal {
                    subject: Some(format!("{SUBJECT_PREFIX}{}", k.name).into()),
                    issuer: None,
                    roles,
                    scopes: scopes.iter().map(|s| Arc::from(s.as_str())).collect(),
                    via: Via::ApiKey,
                    expires_at: k.expires,
                };
                let key = Key {
                    name: k.name.clone(),
                    expires: k.expires,
                    principal: Arc::new(principal),
                };
                (k.sha256, key)
            })
            .collect();
        ApiKeys { by_hash }
    }

    /// `key` is what follows the prefix.
    pub(super) fn check(&self, key: &str, now: SystemTime) -> Result<Arc<Principal>, AuthError> {
        let mut h = Sha256::new();
        h.update(PREFIX.as_bytes());
        h.update(key.as_bytes());
        let hash: [u8; 32] = h.finalize().into();
        let Some(k) = self.by_hash.get(&hash) else {
            return Err(AuthError::Invalid("unknown or revoked API key".into()));
        };
        if k.expires.is_some_and(|t| t <= now) {
            return Err(AuthError::Invalid(format!(
                "API key {:?} has expired",
                k.name
            )));
        }
        Ok(k.principal.clone())
    }
}
