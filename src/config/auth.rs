//! A listener's `auth:` section: its YAML shape, its validation into `AuthConfig`, and the API-key
//! hash format shared with `switchboard apikey new`.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::Secret;
use super::validate::{Env, Errors, expand};

/// How a listener authenticates its callers.
#[derive(Clone, Debug)]
pub enum AuthConfig {
    /// Everyone is anonymous. Allowed only on a loopback bind.
    None,
    /// Bearer tokens: JWT access tokens from the configured issuers, or API keys.
    OAuth(Box<OAuthConfig>),
}

/// The OAuth 2.1 resource server's settings.
#[derive(Clone, Debug)]
pub struct OAuthConfig {
    /// The gateway's canonical URI (RFC 8707): tokens must name it (or one of `audiences`) in `aud`.
    pub resource: String,
    /// Audiences accepted besides `resource` (and its `/servers/<backend>/mcp` forms).
    pub audiences: Vec<String>,
    /// Authorization servers listed in the protected resource metadata (default: the issuers).
    pub authorization_servers: Vec<String>,
    /// Scopes every token must carry; a token without them gets 403 `insufficient_scope`.
    pub required_scopes: Vec<String>,
    /// Scopes advertised in the metadata and the 401 challenge (default: `required_scopes`).
    pub scopes_supported: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    pub issuers: Vec<IssuerConfig>,
    pub claims: ClaimsConfig,
    pub api_keys: Vec<ApiKeyConfig>,
}

/// One trusted token issuer.
#[derive(Clone, Debug)]
pub struct IssuerConfig {
    /// Short name (prefixes subjects when several issuers are trusted).
    pub name: String,
    /// `iss` must equal this exactly.
    pub issuer: String,
    pub keys: KeySource,
    /// Signature algorithms accepted from this issuer.
    pub algorithms: Vec<String>,
    /// The shortest time between two key-set fetches caused by an unknown `kid`.
    pub refresh_interval: Duration,
    /// How long a fetched key set is used before it is fetched again.
    pub cache_ttl: Duration,
}

/// Where an issuer's verification keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// A JWKS document.
    Jwks(String),
    /// OIDC discovery (`/.well-known/openid-configuration`, then RFC 8414's
    /// `/.well-known/oauth-authorization-server`): its `jwks_uri`.
    Discovery,
    /// A shared HS256 secret: development only, never the default.
    Hs256(Secret),
}

/// Which claims hold what.
#[derive(Clone, Debug)]
pub struct ClaimsConfig {
    /// The subject claim (dotted path), `sub` by default.
    pub subject: String,
    /// Claims whose string or string-array values become roles (`roles`, `groups`,
    /// `realm_access.roles`).
    pub roles: Vec<String>,
}

/// A service account's API key: only its SHA-256 is configured.
#[derive(Clone, Debug)]
pub struct ApiKeyConfig {
    pub name: String,
    pub sha256: [u8; 32],
    pub roles: Vec<String>,
    pub expires: Option<SystemTime>,
}

/// The YAML shape of `auth:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    mode: Option<String>,
    resource: Option<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    authorization_servers: Vec<String>,
    #[serde(default)]
    required_scopes: Vec<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    leeway: Option<Duration>,
    #[serde(default)]
    issuers: Vec<RawIssuer>,
    #[serde(default)]
    claims: RawClaims,
    #[serde(default)]
    api_keys: Vec<RawApiKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    name: Option<String>,
    issuer: Option<String>,
    jwks_url: Option<String>,
    discovery: Option<bool>,
    hs256_secret: Option<String>,
    #[serde(default)]
    algorithms: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    refresh_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    cache_ttl: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaims {
    subject: Option<String>,
    roles: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    name: Option<String>,
    hash: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    expires: Option<String>,
}

/// Algorithms a JWKS issuer may use (HS256 only with `hs256_secret`).
const ASYMMETRIC: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];
const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// The hash line an API key has in the config: `sha256:<64 hex>`.
pub fn api_key_hash(key: &str) -> String {
    use sha2::Digest;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    )
}

/// Validates `auth:` of the listener at `at` bound to `bind`. No section: an error — a listener
/// says explicitly that it is open (`mode: none`, loopback only).
pub(super) fn validate(
    raw: Option<RawAuth>,
    bind: SocketAddr,
    at: &str,
    env: &Env,
    errs: &mut Errors,
) -> AuthConfig {
    let at = format!("{at}.auth");
    let Some(raw) = raw else {
        errs.push(
            at,
            "is required: configure `mode: oauth` (issuers and/or api_keys), or `mode: none` to \
             serve without authentication (loopback binds only)",
        );
        return AuthConfig::None;
    };
    match raw.mode.as_deref() {
        Some("none") => {
            if !bind.ip().is_loopback() {
                errs.push(
                    format!("{at}.mode"),
                    format!(
                        "`none` is allowed only on a loopback bind (this listener binds {bind}); \
                         configure `mode: oauth`"
                    ),
                );
            }
            let stray =
                raw.resource.is_some() || !raw.issuers.is_empty() || !raw.api_keys.is_empty();
            if stray {
                errs.push(
                    format!("{at}.mode"),
                    "is `none`, but issuers, api_keys or resource are configured: set `mode: oauth`",
                );
            }
            AuthConfig::None
        }
        Some("oauth") => oauth(raw, bind, &at, env, errs),
        None => {
            errs.push(format!("{at}.mode"), "is required: `oauth` or `none`");
            AuthConfig::None
        }
        Some(other) => {
            errs.push(
                format!("{at}.mode"),
                format!("expected \"oauth\" or \"none\", got {other:?}"),
            );
            AuthConfig::None
        }
    }
}

fn oauth(raw: RawAuth, bind: SocketAddr, at: &str, env: &Env, errs: &mut Errors) -> AuthConfig {
    let resource = match raw.resource {
        Some(r) => {
            let r = expand(&r, env, &format!("{at}.resource"), errs);
            if url::Url::parse(&r).map_or(true, |u| !matches!(u.scheme(), "http" | "https"))
                || r.contains('#')
            {
                errs.push(
                    format!("{at}.resource"),
                    format!("expected an absolute http(s) URI without a fragment, got {r:?}"),
                );
            }
            r
        }
        None => format!("http://{bind}/mcp"),
    };
    if raw.issuers.is_empty() && raw.api_keys.is_empty() {
        errs.push(
            at,
            "`mode: oauth` needs at least one entry in `issuers` or `api_keys`",
        );
    }
    let several = raw.issuers.len() > 1;
    let mut issuers = Vec::new();
    for (i, r) in raw.issuers.into_iter().enumerate() {
        let field = format!("{at}.issuers[{i}]");
        if let Some(iss) = issuer(r, &field, several, env, errs) {
            if issuers.iter().any(|o: &IssuerConfig| o.name == iss.name) {
                errs.push(
                    format!("{field}.name"),
                    format!("duplicate issuer name {:?}", iss.name),
                );
            }
            issuers.push(iss);
        }
    }
    let mut api_keys = Vec::new();
    for (i, k) in raw.api_keys.into_iter().enumerate() {
        let field = format!("{at}.api_keys[{i}]");
        if let Some(k) = api_key(k, &field, errs) {
            if api_keys
                .iter()
                .any(|o: &ApiKeyConfig| o.name == k.name || o.sha256 == k.sha256)
            {
                errs.push(
                    field,
                    format!("duplicate API key {:?} (name or hash)", k.name),
                );
            }
            api_keys.push(k);
        }
    }
    let authorization_servers = if raw.authorization_servers.is_empty() {
        issuers
            .iter()
            .filter(|i| !matches!(i.keys, KeySource::Hs256(_)))
            .map(|i| i.issuer.clone())
            .collect()
    } else {
        raw.authorization_servers
    };
    let scopes_supported = if raw.scopes_supported.is_empty() {
        raw.required_scopes.clone()
    } else {
        raw.scopes_supported
    };
    for (i, s) in raw.required_scopes.iter().enumerate() {
        if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
            errs.push(
                format!("{at}.required_scopes[{i}]"),
                "a scope is a non-empty token without spaces, quotes or backslashes",
            );
        }
    }
    let claims = ClaimsConfig {
        subject: raw.claims.subject.unwrap_or_else(|| "sub".into()),
        roles: raw
            .claims
            .roles
            .unwrap_or_else(|| vec!["roles".into(), "groups".into()]),
    };
    AuthConfig::OAuth(Box::new(OAuthConfig {
        resource,
        audiences: raw.audiences,
        authorization_servers,
        required_scopes: raw.required_scopes,
        scopes_supported,
        leeway: raw.leeway.unwrap_or(DEFAULT_LEEWAY),
        issuers,
        claims,
        api_keys,
    }))
}

fn issuer(
    r: RawIssuer,
    at: &str,
    several: bool,
    env: &Env,
    errs: &mut Errors,
) -> Option<IssuerConfig> {
    let Some(issuer) = r.issuer else {
        errs.push(
            format!("{at}.issuer"),
            "is required (the exact `iss` of its tokens)",
        );
        return None;
    };
    let issuer = expand(&issuer, env, &format!("{at}.issuer"), errs);
    let name = match r.name {
        Some(n) => n,
        None if several => {
            errs.push(
                format!("{at}.name"),
                "is required when several issuers are trusted",
            );
            return None;
        }
        None => "default".into(),
    };
    let sources = usize::from(r.jwks_url.is_some())
        + usize::from(r.discovery == Some(true))
        + usize::from(r.hs256_secret.is_some());
    if sources != 1 {
        errs.push(
            at,
            "set exactly one of `jwks_url`, `discovery: true` or `hs256_secret` (development only)",
        );
        return None;
    }
    let keys = if let Some(u) = r.jwks_url {
        let u = expand(&u, env, &format!("{at}.jwks_url"), errs);
        if url::Url::parse(&u).is_err() {
            errs.push(format!("{at}.jwks_url"), format!("not a URL: {u:?}"));
        }
        KeySource::Jwks(u)
    } else if let Some(s) = r.hs256_secret {
        let s = expand(&s, env, &format!("{at}.hs256_secret"), errs);
        if s.len() < 32 {
            errs.push(
                format!("{at}.hs256_secret"),
                "must be at least 32 bytes (it is a development-only shared secret)",
            );
        }
        KeySource::Hs256(Secret::new(s))
    } else {
        if url::Url::parse(&issuer).is_err() {
            errs.push(
                format!("{at}.issuer"),
                "discovery needs the issuer to be a URL",
            );
        }
        KeySource::Discovery
    };
    let algorithms = if matches!(keys, KeySource::Hs256(_)) {
        if !r.algorithms.is_empty() && r.algorithms != ["HS256"] {
            errs.push(
                format!("{at}.algorithms"),
                "an hs256_secret issuer accepts only HS256",
            );
        }
        vec!["HS256".to_string()]
    } else if r.algorithms.is_empty() {
        vec!["RS256".into(), "ES256".into(), "EdDSA".into()]
    } else {
        for (i, a) in r.algorithms.iter().enumerate() {
            if !ASYMMETRIC.contains(&a.as_str()) {
                errs.push(
                    format!("{at}.algorithms[{i}]"),
                    format!("expected one of {}, got {a:?}", ASYMMETRIC.join(", ")),
                );
            }
        }
        r.algorithms
    };
    Some(IssuerConfig {
        name,
        issuer,
        keys,
        algorithms,
        refresh_interval: r.refresh_interval.unwrap_or(Duration::from_secs(30)),
        cache_ttl: r.cache_ttl.unwrap_or(Duration::from_secs(3600)),
    })
}

fn api_key(k: RawApiKey, at: &str, errs: &mut Errors) -> Option<ApiKeyConfig> {
    let Some(name) = k.name else {
        errs.push(format!("{at}.name"), "is required");
        return None;
    };
    let hash = k.hash.unwrap_or_default();
    let Some(sha256) = hash
        .strip_prefix("sha256:")
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
    else {
        errs.push(
            format!("{at}.hash"),
            "expected sha256:<64 hex digits> (print one with `switchboard apikey new`)",
        );
        return None;
    };
    let expires = match k.expires.as_deref() {
        None => None,
        Some(t) => match humantime::parse_rfc3339_weak(t) {
            Ok(t) => Some(t),
            Err(_) => {
                errs.push(
                    format!("{at}.expires"),
                    format!("expected an RFC 3339 time like 2027-06-01T00:00:00Z, got {t:?}"),
                );
                return None;
            }
        },
    };
    Some(ApiKeyConfig {
        name,
        sha256,
        roles: k.roles,
        expires,
    })
}
