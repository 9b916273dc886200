//! Who is asking: the principal a request authenticated as (or the anonymous one, on a listener
//! with `auth: {mode: none}`), fixed for a session at its creation and carried by every decision.

use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

/// How a principal proved who it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Via {
    /// No authentication (`auth: {mode: none}`, loopback only).
    #[default]
    Anonymous,
    /// A JWT access token from a configured issuer.
    Token,
    /// A service account's API key.
    ApiKey,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Anonymous => "anonymous",
            Via::Token => "token",
            Via::ApiKey => "api-key",
        }
    }
}

/// An authenticated caller, or the anonymous one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Principal {
    /// `None`: anonymous. A token's subject claim, or `apikey:<name>` for a service account.
    pub subject: Option<Arc<str>>,
    /// The issuer's configured name when several issuers are trusted (part of the key).
    pub issuer: Option<Arc<str>>,
    /// Roles and groups from the configured claims (or the API key's roles), sorted, no repeats.
    pub roles: Vec<Arc<str>>,
    /// Granted OAuth scopes (`scope` or `scp`).
    pub scopes: Vec<Arc<str>>,
    pub via: Via,
    /// When the credential stops being valid (`exp`, or the API key's expiry).
    pub expires_at: Option<SystemTime>,
}

static ANONYMOUS: LazyLock<Arc<Principal>> = LazyLock::new(|| Arc::new(Principal::default()));

impl Principal {
    /// The shared anonymous principal (no allocation per session).
    pub fn anonymous() -> Arc<Principal> {
        ANONYMOUS.clone()
    }

    /// The key sessions, gateway-held sessions and limits are kept under: the subject (behind
    /// its issuer's name when several issuers are trusted), or `anonymous`.
    pub fn key(&self) -> &str {
        self.subject.as_deref().unwrap_or("anonymous")
    }

    /// Whether this principal is the one `other` is: same key and issuer. A session answers only
    /// to the principal that created it.
    pub fn same_as(&self, other: &Principal) -> bool {
        self.subject == other.subject && self.issuer == other.issuer && self.via == other.via
    }

    /// Whether the credential has expired at `now`.
    pub fn expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| &**r == role)
    }
}
