//! A verified token's claims read into a principal: subject, roles (from the configured claims),
//! scopes (`scope` or `scp`) and expiry.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::AuthError;
use crate::config::OAuthConfig;
use crate::policy::{Principal, Via};

pub(super) fn principal(
    claims: &Map<String, Value>,
    cfg: &OAuthConfig,
    issuer: &str,
    several_issuers: bool,
) -> Result<Principal, AuthError> {
    let sub = path(claims, &cfg.claims.subject)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            AuthError::Invalid(format!(
                "token has no subject claim {:?}",
                cfg.claims.subject
            ))
        })?;
    // `apikey:` names service accounts (and RBAC's subject mappings grant them roles): a token
    // may not claim to be one.
    if sub.starts_with(super::apikey::SUBJECT_PREFIX) {
        return Err(AuthError::Invalid(format!(
            "token subject uses the reserved prefix {:?}",
            super::apikey::SUBJECT_PREFIX
        )));
    }
    let subject: Arc<str> = if several_issuers {
        format!("{issuer}:{sub}").into()
    } else {
        sub.into()
    };
    let mut roles = Vec::new();
    for claim in &cfg.claims.roles {
        strings(path(claims, claim), false, &mut roles);
    }
    roles.sort();
    roles.dedup();
    let mut scopes = Vec::new();
    strings(claims.get("scope"), true, &mut scopes);
    strings(claims.get("scp"), true, &mut scopes);
    let expires_at = claims
        .get("exp")
        .and_then(Value::as_u64)
        .map(|s| UNIX_EPOCH + Duration::from_secs(s));
    Ok(Principal {
        subject: Some(subject),
        issuer: several_issuers.then(|| Arc::from(issuer)),
        roles,
        scopes,
        via: Via::Token,
        expires_at,
    })
}

/// A dotted claim path (`realm_access.roles`).
fn path<'a>(claims: &'a Map<String, Value>, dotted: &str) -> Option<&'a Value> {
    let mut parts = dotted.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

/// A string (split on spaces when `split`) or an array of strings, appended to `out`.
fn strings(v: Option<&Value>, split: bool, out: &mut Vec<Arc<str>>) {
    match v {
        Some(Value::String(s)) if split => {
            out.extend(s.split_ascii_whitespace().map(Arc::from));
        }
        Some(Value::String(s)) if !s.is_empty() => out.push(Arc::from(s.as_str())),
        Some(Value::Array(a)) => {
            out.extend(
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(Arc::from),
            );
        }
        _ => {}
    }
}
