use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

use super::*;
use crate::config::{ApiKeyConfig, ClaimsConfig, IssuerConfig, KeySource, Secret};

const SECRET: &str = "a-development-secret-of-32-bytes!!";
const ISS: &str = "https://idp.test";
const RESOURCE: &str = "http://127.0.0.1:8080/mcp";

fn cfg(required_scopes: &[&str]) -> OAuthConfig {
    let key = "sbk_known";
    OAuthConfig {
        resource: RESOURCE.into(),
        audiences: vec![],
        authorization_servers: vec![ISS.into()],
        required_scopes: required_scopes.iter().map(|s| s.to_string()).collect(),
        scopes_supported: vec![],
        leeway: Duration::from_secs(5),
        issuers: vec![IssuerConfig {
            name: "dev".into(),
            issuer: ISS.into(),
            keys: KeySource::Hs256(Secret::new(SECRET)),
            algorithms: vec!["HS256".into()],
            refresh_interval: Duration::from_secs(30),
            cache_ttl: Duration::from_secs(3600),
        }],
        claims: ClaimsConfig {
            subject: "sub".into(),
            roles: vec!["roles".into(), "realm_access.roles".into()],
        },
        api_keys: vec![
            ApiKeyConfig {
                name: "ci".into(),
                sha256: sha(key),
                roles: vec!["reader".into(), "reader".into()],
                expires: None,
            },
            ApiKeyConfig {
                name: "old".into(),
                sha256: sha("sbk_old"),
                roles: vec![],
                expires: Some(UNIX_EPOCH + Duration::from_secs(1)),
            },
        ],
    }
}

fn sha(k: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(k.as_bytes()).into()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(claims: Value) -> String {
    let mut c = json!({"iss": ISS, "aud": RESOURCE, "sub": "alice", "exp": now() + 300});
    for (k, v) in claims.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    encode(
        &Header::default(),
        &c,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn headers(auth: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(http::header::AUTHORIZATION, auth.parse().unwrap());
    h
}

async fn auth(a: &Authenticator, value: &str) -> Result<Arc<Principal>, AuthError> {
    a.authenticate(&headers(value)).await
}

#[tokio::test]
async fn a_valid_token_becomes_its_principal_and_is_cached() {
    let a = Authenticator::new(&AuthConfig::OAuth(Box::new(cfg(&[]))), &["notes"]);
    let t = token(
        json!({"roles": ["dev", "ops"], "realm_access": {"roles": ["dev", "admin"]}, "scope": "mcp read"}),
    );
    let p = auth(&a, &format!("Bearer {t}")).await.unwrap();
    assert_eq!(p.key(), "alice");
    let roles: Vec<&str> = p.roles.iter().map(|r| &**r).collect();
    assert_eq!(roles, ["admin", "dev", "ops"]);
    assert_eq!(p.scopes.len(), 2);
    assert_eq!(p.via, crate::policy::Via::Token);
    // The same token again: the very same principal, from the cache.
    let again = auth(&a, &format!("bearer {t}")).await.unwrap();
    assert!(Arc::ptr_eq(&p, &again));
}

#[tokio::test]
async fn every_broken_token_is_refused_with_its_reason() {
    let a = Authenticator::new(&AuthConfig::OAuth(Box::new(cfg(&[]))), &["notes"]);
    let cases = [
        (token(json!({"exp": now() - 60})), "token expired"),
        (token(json!({"nbf": now() + 600})), "not yet valid"),
        (token(json!({"aud": "http://elsewhere/mcp"})), "aud"),
        (
            token(json!({"iss": "https://evil.test"})),
            "untrusted issuer",
        ),
        (token(json!({"exp": null})), "required claim"),
        (token(json!({"sub": null})), "no subject"),
        // A token may not pass for a service account (RBAC maps `apikey:<name>` subjects).
        (token(json!({"sub": "apikey:ci"})), "reserved prefix"),
    ];
    for (t, why) in cases {
        match auth(&a, &format!("Bearer {t}")).await {
            Err(AuthError::Invalid(m)) => assert!(m.contains(why), "{m} should say {why}"),
            other => panic!("expected invalid ({why}), got {other:?}"),
        }
    }
    // A flipped signature byte.
    let t = token(json!({}));
    let mut bytes = t.into_bytes();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(bytes).unwrap();
    assert!(
        matches!(auth(&a, &format!("Bearer {forged}")).await, Err(AuthError::Invalid(m)) if m.contains("signature"))
    );
    // alg: none.
    let body = URL_SAFE_NO_PAD_ENCODE(
        &json!({"iss": ISS, "aud": RESOURCE, "sub": "alice", "exp": now() + 60}).to_string(),
    );
    let none = format!(
        "{}.{body}.",
        URL_SAFE_NO_PAD_ENCODE(r#"{"alg":"none","typ":"JWT"}"#)
    );
    assert!(matches!(
        auth(&a, &format!("Bearer {none}")).await,
        Err(AuthError::Invalid(_))
    ));
}

#[allow(non_snake_case)]
fn URL_SAFE_NO_PAD_ENCODE(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn headers_that_are_not_one_bearer_token_are_told_apart() {
    let a = Authenticator::new(&AuthConfig::OAuth(Box::new(cfg(&[]))), &["notes"]);
    assert_eq!(
        a.authenticate(&HeaderMap::new()).await,
        Err(AuthError::Missing)
    );
    assert_eq!(
        auth(&a, "Basic YWxpY2U6eA==").await,
        Err(AuthError::Missing)
    );
    assert!(matches!(
        auth(&a, "Bearer").await,
        Err(AuthError::Malformed(_))
    ));
    assert!(matches!(
        auth(&a, "Bearer a b").await,
        Err(AuthError::Malformed(_))
    ));
    let mut two = headers("Bearer x");
    two.append(http::header::AUTHORIZATION, "Bearer y".parse().unwrap());
    assert!(matches!(
        a.authenticate(&two).await,
        Err(AuthError::Malformed(_))
    ));
}

#[tokio::test]
async fn api_keys_by_hash_with_expiry_and_revocation() {
    let a = Authenticator::new(&AuthConfig::OAuth(Box::new(cfg(&["mcp"]))), &[]);
    let p = auth(&a, "Bearer sbk_known").await.unwrap();
    assert_eq!(p.key(), "apikey:ci");
    assert_eq!(p.roles.len(), 1, "roles deduplicated");
    assert!(
        matches!(auth(&a, "Bearer sbk_old").await, Err(AuthError::Invalid(m)) if m.contains("expired"))
    );
    assert!(
        matches!(auth(&a, "Bearer sbk_revoked").await, Err(AuthError::Invalid(m)) if m.contains("unknown"))
    );
}

#[tokio::test]
async fn a_token_without_a_required_scope_is_insufficient() {
    let a = Authenticator::new(&AuthConfig::OAuth(Box::new(cfg(&["mcp"]))), &[]);
    let without = token(json!({"scope": "read"}));
    assert_eq!(
        auth(&a, &format!("Bearer {without}")).await,
        Err(AuthError::InsufficientScope("mcp".into()))
    );
    let with = token(json!({"scp": ["read", "mcp"]}));
    assert!(auth(&a, &format!("Bearer {with}")).await.is_ok());
}

#[test]
fn generated_api_keys_match_their_hash_line() {
    let (key, hash) = apikey::generate();
    assert!(key.starts_with("sbk_") && key.len() > 40);
    assert_eq!(hash, crate::config::api_key_hash(&key));
    let (other, _) = apikey::generate();
    assert_ne!(key, other);
}
