//! Authentication on the call path, through the public API: a JWT seen before (the cache hit
//! every request after a session's first pays), a JWT never seen (signature verification
//! against a JWKS fetched over HTTP, then cached), and an API key.
//!
//! `cargo bench --bench auth`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use switchboard::config::{
    ApiKeyConfig, AuthConfig, ClaimsConfig, IssuerConfig, KeySource, OAuthConfig, api_key_hash,
};
use switchboard::identity::Authenticator;

const RESOURCE: &str = "http://127.0.0.1:8080/mcp";
const API_KEY: &str = "sbk_benchmark-key-000000000000000000000000";

/// A fixed Ed25519 key: its PKCS#8 DER (the 16-byte prefix + seed) and public `x`.
fn key() -> (EncodingKey, String) {
    let seed = [7u8; 32];
    let mut der = hex_decode("302e020100300506032b657004220420");
    der.extend_from_slice(&seed);
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    (
        EncodingKey::from_ed_der(&der),
        URL_SAFE_NO_PAD.encode(public),
    )
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn token(key: &EncodingKey, issuer: &str, jti: u64) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let mut h = Header::new(Algorithm::EdDSA);
    h.kid = Some("k1".into());
    let claims = json!({"iss": issuer, "aud": RESOURCE, "sub": "alice", "exp": exp, "jti": jti,
        "scope": "mcp", "roles": ["dev", "reader"]});
    encode(&h, &claims, key).unwrap()
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    h
}

fn auth(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (signing, x) = key();
    // The issuer's JWKS, served over loopback HTTP as an IdP would.
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": "EdDSA", "use": "sig"}]});
    let addr = rt.block_on(async {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
        tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
        addr
    });
    let issuer = format!("http://{addr}");
    let cfg = AuthConfig::OAuth(Box::new(OAuthConfig {
        resource: RESOURCE.into(),
        audiences: vec![],
        authorization_servers: vec![issuer.clone()],
        required_scopes: vec!["mcp".into()],
        scopes_supported: vec!["mcp".into()],
        leeway: Duration::from_secs(30),
        issuers: vec![IssuerConfig {
            name: "bench".into(),
            issuer: issuer.clone(),
            keys: KeySource::Jwks(format!("http://{addr}/jwks")),
            algorithms: vec!["EdDSA".into()],
            refresh_interval: Duration::from_secs(30),
            cache_ttl: Duration::from_secs(3600),
        }],
        claims: ClaimsConfig {
            subject: "sub".into(),
            roles: vec!["roles".into()],
        },
        api_keys: vec![ApiKeyConfig {
            name: "ci".into(),
            sha256: hex_decode(api_key_hash(API_KEY).trim_start_matches("sha256:"))
                .try_into()
                .unwrap(),
            roles: vec!["reader".into()],
            expires: None,
        }],
    }));
    let a = Authenticator::new(&cfg, &["notes"]);
    rt.block_on(a.prefetch());

    let seen = bearer(&token(&signing, &issuer, 0));
    assert!(
        rt.block_on(a.authenticate(&seen)).is_ok(),
        "the benchmark token verifies"
    );
    let mut g = c.benchmark_group("auth");
    g.bench_function("jwt_cache_hit", |b| {
        b.iter(|| rt.block_on(a.authenticate(black_box(&seen))).unwrap())
    });
    let mut jti = 1;
    g.bench_function("jwt_verify_miss_eddsa", |b| {
        b.iter_batched(
            || {
                jti += 1;
                bearer(&token(&signing, &issuer, jti))
            },
            |h| rt.block_on(a.authenticate(&h)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let key = bearer(API_KEY);
    g.bench_function("api_key", |b| {
        b.iter(|| rt.block_on(a.authenticate(black_box(&key))).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = auth
}
criterion_main!(benches);
