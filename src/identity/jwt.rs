//! One JWT access token verified: its issuer chosen by `iss`, its algorithm one that issuer is
//! trusted with and that matches the key's type, its signature, `exp`, `nbf`, `iss` and `aud`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use serde_json::{Map, Value};

use super::AuthError;
use super::claims;
use super::jwks::KeySets;
use crate::config::OAuthConfig;
use crate::policy::Principal;

/// Verifies `token` and builds its principal.
pub(super) async fn verify(
    token: &str,
    cfg: &OAuthConfig,
    audiences: &[String],
    keys: &KeySets,
) -> Result<Principal, AuthError> {
    let invalid = |why: &str| AuthError::Invalid(why.to_string());
    let header = decode_header(token).map_err(|e| match e.kind() {
        // `alg: none` and other algorithms the library does not know land here.
        ErrorKind::Json(_) | ErrorKind::InvalidAlgorithmName => {
            invalid("unsupported or missing signature algorithm")
        }
        _ => invalid("malformed token"),
    })?;
    let iss = unverified_issuer(token).ok_or_else(|| invalid("malformed token (no iss)"))?;
    let issuer = keys
        .issuer(&iss)
        .ok_or_else(|| invalid("token from an untrusted issuer"))?;
    if !issuer.algorithms.contains(&header.alg) {
        return Err(invalid("signature algorithm not allowed for this issuer"));
    }
    let key = issuer.key(header.kid.as_deref(), header.alg).await?;
    let mut v = Validation::new(header.alg);
    v.leeway = cfg.leeway.as_secs();
    v.validate_nbf = true;
    v.set_issuer(&[&issuer.cfg.issuer]);
    v.set_audience(audiences);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    let data = decode::<Map<String, Value>>(token, &key, &v).map_err(|e| {
        invalid(match e.kind() {
            ErrorKind::ExpiredSignature => "token expired",
            ErrorKind::ImmatureSignature => "token not yet valid (nbf)",
            ErrorKind::InvalidIssuer => "wrong issuer",
            ErrorKind::InvalidAudience => "token not issued for this resource (aud)",
            ErrorKind::InvalidSignature => "signature does not verify",
            ErrorKind::InvalidAlgorithm => "signature algorithm does not match the key",
            ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim (exp, iss, aud)",
            _ => "malformed token",
        })
    })?;
    claims::principal(&data.claims, cfg, &issuer.cfg.name, keys.several())
}

/// `iss` of the unverified payload: only to choose whose keys verify the token.
fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    serde_json::from_slice::<Iss>(&bytes).ok().map(|i| i.iss)
}
