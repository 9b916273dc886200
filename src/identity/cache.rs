//! Verified tokens, kept by a keyed hash of their text until they expire: a repeated token costs
//! one hash and one comparison, not a signature check.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::SystemTime;

use dashmap::DashMap;

use crate::policy::Principal;

/// Tokens kept at most; past it, expired entries are dropped first, then everything.
const CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
pub(super) struct TokenCache {
    /// Keyed by a per-process random SipHash of the token, so nobody can aim collisions.
    entries: DashMap<u64, Entry>,
    hasher: RandomState,
}

#[derive(Debug)]
struct Entry {
    token: Box<str>,
    principal: Arc<Principal>,
}

impl TokenCache {
    pub(super) fn get(&self, token: &str, now: SystemTime) -> Option<Arc<Principal>> {
        let e = self.entries.get(&self.hasher.hash_one(token))?;
        (ct_eq(e.token.as_bytes(), token.as_bytes()) && !e.principal.expired(now))
            .then(|| e.principal.clone())
    }

    /// Keeps a verified token (only one that expires: every JWT here has `exp`).
    pub(super) fn put(&self, token: &str, principal: Arc<Principal>, now: SystemTime) {
        if principal.expires_at.is_none() {
            return;
        }
        if self.entries.len() >= CAPACITY {
            self.entries.retain(|_, e| !e.principal.expired(now));
            if self.entries.len() >= CAPACITY {
                self.entries.clear();
            }
        }
        self.entries.insert(
            self.hasher.hash_one(token),
            Entry {
                token: token.into(),
                principal,
            },
        );
    }
}

/// Equality that takes the same time wherever the first difference is.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
