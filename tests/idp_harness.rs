//! The auth tests' identity provider is real: tokens minted by `tests/peers/idp.mjs`
//! (oauth2-mock-server) verify against the JWKS it publishes over HTTP, carry the claims the
//! test asked for, rotate to new keys, and every forged token fails that same verification.
//! The SDK drivers carry a bearer token and report an HTTP refusal in a parseable way.
//!
//! None of this needs the gateway: the verifier here is `jsonwebtoken` against the JWKS, so a
//! broken harness fails here rather than as a puzzling gateway test.

#[path = "common/idp.rs"]
mod idp;
#[path = "common/peers.rs"]
mod peers;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use idp::{Alg, Idp, TokenRequest, forged, rsa_public_pem};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use peers::Sdk;
use serde_json::{Value, json};

const RESOURCE: &str = "http://127.0.0.1:9/mcp";

/// Why the verifier refused a token.
#[derive(Debug)]
enum Rejected {
    Header(ErrorKind),
    NoKid,
    UnknownKid(String),
    Jwt(ErrorKind),
}

/// What a correct resource server does: the key comes from the JWKS by `kid`, the algorithm
/// from that key (never from the token header), then signature, `iss`, `exp` and `nbf`
/// (no leeway) are checked.
fn verify(token: &str, jwks: &JwkSet, issuer: &str) -> Result<Value, Rejected> {
    verify_with(token, jwks, issuer, |_| {})
}

fn verify_with(
    token: &str,
    jwks: &JwkSet,
    issuer: &str,
    tweak: impl FnOnce(&mut Validation),
) -> Result<Value, Rejected> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| Rejected::Header(e.into_kind()))?;
    let kid = header.kid.ok_or(Rejected::NoKid)?;
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| Rejected::UnknownKid(kid.clone()))?;
    let alg = match jwk.common.key_algorithm {
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
        other => panic!("IdP published a key with alg {other:?}"),
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| Rejected::Jwt(e.into_kind()))?;
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[RESOURCE]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.leeway = 0;
    validation.validate_nbf = true;
    tweak(&mut validation);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| Rejected::Jwt(e.into_kind()))
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("fits")
}

fn alice() -> TokenRequest {
    TokenRequest::subject("alice")
        .aud(RESOURCE)
        .scope("mcp tools:call")
        .roles(&["admin", "reader"])
        .claim("tenant", json!("acme"))
}

#[tokio::test]
async fn discovery_names_the_endpoints_of_the_ready_line() {
    let idp = Idp::start().await;
    let discovery = idp.discovery().await;
    assert_eq!(discovery["issuer"], json!(idp.issuer));
    assert_eq!(discovery["jwks_uri"], json!(idp.jwks_uri));
    assert_eq!(discovery["token_endpoint"], json!(idp.token_endpoint));
    assert!(
        idp.issuer.starts_with("http://127.0.0.1:"),
        "{}",
        idp.issuer
    );
    assert_eq!(idp.issuer, format!("http://127.0.0.1:{}", idp.port));

    let jwks = idp.jwks().await;
    let current = idp.current_kids().await;
    for alg in Alg::ALL {
        let kid = &current[&alg];
        let jwk = jwks
            .find(kid)
            .unwrap_or_else(|| panic!("{alg:?} kid {kid} not in JWKS"));
        assert_eq!(
            jwk.common.key_algorithm.map(|a| a.to_string()),
            Some(alg.as_str().to_owned())
        );
    }
    // Public keys only: no private member of any key type leaks.
    let raw = serde_json::to_value(&jwks).expect("JWKS serializes");
    for key in raw["keys"].as_array().expect("keys") {
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(key.get(private).is_none(), "JWKS leaks {private}: {key}");
        }
    }
}

#[tokio::test]
async fn tokens_of_every_algorithm_verify_against_the_jwks_with_the_asked_claims() {
    let idp = Idp::start().await;
    let jwks = idp.jwks().await;
    let current = idp.current_kids().await;
    for alg in Alg::ALL {
        let token = idp.token(alice().alg(alg)).await;
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, alg.jwt(), "{alg:?}");
        assert_eq!(header.kid.as_ref(), Some(&current[&alg]), "{alg:?}");

        let claims = verify(&token, &jwks, &idp.issuer)
            .unwrap_or_else(|e| panic!("{alg:?} token does not verify: {e:?}"));
        assert_eq!(claims["iss"], json!(idp.issuer));
        assert_eq!(claims["sub"], json!("alice"));
        assert_eq!(claims["aud"], json!(RESOURCE));
        assert_eq!(claims["scope"], json!("mcp tools:call"));
        assert_eq!(claims["roles"], json!(["admin", "reader"]));
        assert_eq!(claims["tenant"], json!("acme"));
        let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
        assert_eq!(exp.zip(iat).map(|(e, i)| e - i), Some(3600), "{claims}");
    }

    // Several audiences become an array; a claim can replace a standard one.
    let token = idp
        .token(
            TokenRequest::subject("bob")
                .aud(RESOURCE)
                .aud("http://other.example/mcp")
                .claim("iss", json!("http://evil.example")),
        )
        .await;
    let claims = verify_with(&token, &jwks, "http://evil.example", |_| {}).expect("verifies");
    assert_eq!(claims["aud"], json!([RESOURCE, "http://other.example/mcp"]));
    assert!(matches!(
        verify(&token, &jwks, &idp.issuer),
        Err(Rejected::Jwt(ErrorKind::InvalidIssuer))
    ));
}

#[tokio::test]
async fn expiry_and_not_before_are_the_tests_to_choose() {
    let idp = Idp::start().await;
    let jwks = idp.jwks().await;

    let answer = idp.token_response(alice().expires_in(-120)).await;
    assert_eq!(answer["expires_in"], json!(-120));
    let expired = answer["access_token"].as_str().expect("token");
    let claims = verify_with(expired, &jwks, &idp.issuer, |v| v.validate_exp = false)
        .expect("the signature of an expired token is still good");
    let exp = claims["exp"].as_i64().expect("exp");
    assert!(exp < now() - 60, "exp {exp} is not in the past");
    assert!(matches!(
        verify(expired, &jwks, &idp.issuer),
        Err(Rejected::Jwt(ErrorKind::ExpiredSignature))
    ));

    let future = now() + 3600;
    let early = idp.token(alice().claim("nbf", json!(future))).await;
    assert!(matches!(
        verify(&early, &jwks, &idp.issuer),
        Err(Rejected::Jwt(ErrorKind::ImmatureSignature))
    ));

    // `null` deletes a claim: a token without exp.
    let forever = idp.token(alice().claim("exp", Value::Null)).await;
    assert!(matches!(
        verify(&forever, &jwks, &idp.issuer),
        Err(Rejected::Jwt(ErrorKind::MissingRequiredClaim(c))) if c == "exp"
    ));
}

#[tokio::test]
async fn rotation_publishes_a_new_kid_that_signs_the_next_token() {
    let idp = Idp::start().await;
    let before = idp.jwks().await;
    let old_token = idp.token(alice()).await;
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .expect("header")
        .kid
        .expect("kid");

    let new_kid = idp.rotate_key(Alg::Rs256).await;
    assert_ne!(new_kid, old_kid);
    assert!(before.find(&new_kid).is_none());
    let after = idp.jwks().await;
    assert!(after.find(&new_kid).is_some(), "new kid not published");
    assert!(
        after.find(&old_kid).is_some(),
        "old key must stay until removed"
    );

    let next = idp.token(alice()).await;
    let header = jsonwebtoken::decode_header(&next).expect("header");
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    // A verifier holding the cached JWKS misses the kid; a refetch finds it.
    assert!(
        matches!(verify(&next, &before, &idp.issuer), Err(Rejected::UnknownKid(k)) if k == new_kid)
    );
    verify(&next, &after, &idp.issuer).expect("verifies against the refetched JWKS");
    // The old key still signs on request, and old tokens still verify.
    let by_old = idp.token(alice().kid(&old_kid)).await;
    verify(&by_old, &after, &idp.issuer).expect("old key still published");

    // Removal: the old key leaves the JWKS, and tokens it signed no longer verify.
    idp.remove_key(&old_kid).await;
    let pruned = idp.jwks().await;
    assert!(
        pruned.find(&old_kid).is_none(),
        "removed key still published"
    );
    assert!(matches!(
        verify(&old_token, &pruned, &idp.issuer),
        Err(Rejected::UnknownKid(_))
    ));
    verify(&next, &pruned, &idp.issuer).expect("the new key survives");
    assert_eq!(idp.current_kids().await[&Alg::Rs256], new_kid);
}

#[tokio::test]
async fn forged_tokens_fail_verification_against_the_jwks() {
    let idp = Idp::start().await;
    let jwks = idp.jwks().await;
    let request = alice();
    let claims = idp.claims(&request);
    let current = idp.current_kids().await;

    // The forgeries carry claims that are valid in every way, so only the signature fails.
    let genuine = idp.token(request.clone()).await;
    verify(&genuine, &jwks, &idp.issuer).expect("the genuine token verifies");

    for alg in Alg::ALL {
        let token = idp.token(request.clone().alg(alg)).await;
        let tampered = forged::bad_signature(&token);
        assert!(
            matches!(verify(&tampered, &jwks, &idp.issuer), Err(Rejected::Jwt(_))),
            "{alg:?} token with a flipped signature bit verified"
        );
    }

    for alg in [Alg::Rs256, Alg::Es256] {
        let foreign = forged::foreign_key(&idp, alg, None, &claims).await;
        let header = jsonwebtoken::decode_header(&foreign).expect("header");
        assert_eq!(
            header.kid.as_ref(),
            Some(&current[&alg]),
            "claims a trusted kid"
        );
        assert!(
            matches!(
                verify(&foreign, &jwks, &idp.issuer),
                Err(Rejected::Jwt(ErrorKind::InvalidSignature))
            ),
            "{alg:?} token signed by a foreign key verified"
        );
    }

    // jsonwebtoken knows no `none` algorithm: the header itself does not parse.
    for token in [forged::unsigned(&claims), forged::with_alg("None", &claims)] {
        let verdict = verify(&token, &jwks, &idp.issuer);
        assert!(
            matches!(verdict, Err(Rejected::Header(ErrorKind::Json(_)))),
            "alg none: {verdict:?}"
        );
    }

    // Algorithm confusion: HS256 keyed with the IdP's RSA public key.
    let rsa = jwks.find(&current[&Alg::Rs256]).expect("RSA key");
    let pem = rsa_public_pem(rsa);
    // A 2048-bit RSA key with e = 65537 in SubjectPublicKeyInfo always starts like this.
    assert!(
        pem.starts_with("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"),
        "{pem}"
    );
    let confused = forged::hs_confusion(&claims, pem.as_bytes(), Some(&current[&Alg::Rs256]));
    // It is well made: a verifier that trusted the header would accept it…
    let mut naive = Validation::new(Algorithm::HS256);
    naive.set_audience(&[RESOURCE]);
    jsonwebtoken::decode::<Value>(
        &confused,
        &DecodingKey::from_secret(pem.as_bytes()).expect("an HMAC key"),
        &naive,
    )
    .expect("HS256 with the PEM as secret");
    // …and the JWKS verifier does not.
    assert!(matches!(
        verify(&confused, &jwks, &idp.issuer),
        Err(Rejected::Jwt(ErrorKind::InvalidAlgorithm))
    ));

    let verdict = verify(&forged::garbage(), &jwks, &idp.issuer);
    assert!(
        matches!(verdict, Err(Rejected::Header(ErrorKind::Base64(_)))),
        "garbage: {verdict:?}"
    );
}

/// A resource server that refuses everything: 401 without a bearer or with `Bearer bad`, 403
/// otherwise; it records each request's Authorization header.
async fn refusing_server() -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let handler = move |headers: HeaderMap| {
        let log = Arc::clone(&log);
        async move {
            let auth = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            log.lock().expect("lock").push(auth.clone());
            let (status, challenge) = match auth.as_deref() {
                None | Some("Bearer bad") => (
                    StatusCode::UNAUTHORIZED,
                    r#"Bearer error="invalid_token", resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource""#,
                ),
                Some(_) => (
                    StatusCode::FORBIDDEN,
                    r#"Bearer error="insufficient_scope", scope="mcp""#,
                ),
            };
            (
                status,
                [(header::WWW_AUTHENTICATE, challenge)],
                r#"{"error":"refused"}"#,
            )
                .into_response()
        }
    };
    let app = Router::new().route("/mcp", axum::routing::any(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn drivers_send_the_bearer_token_and_report_the_refusal() {
    let idp = Idp::start().await;
    let token = idp.token(alice()).await;
    let (url, seen) = refusing_server().await;
    let limit = Duration::from_secs(60);
    let args = ["--report-refusal", "list"];
    for sdk in Sdk::ALL {
        for (bearer, status) in [(Some(token.as_str()), 403), (Some("bad"), 401), (None, 401)] {
            seen.lock().expect("lock").clear();
            let out = peers::run_driver_as(sdk, &url, bearer, &args, limit).await;
            let refused = peers::refusal(&out)
                .unwrap_or_else(|| panic!("{sdk:?} reported no refusal: {out}"));
            assert_eq!(refused.status, status, "{sdk:?} {out}");
            assert_eq!(refused.method, "POST");
            let challenge = refused.www_authenticate.expect("WWW-Authenticate reported");
            assert!(challenge.starts_with("Bearer error="), "{challenge}");
            assert_eq!(refused.body, r#"{"error":"refused"}"#);
            assert!(!peers::http_errors(&out).is_empty());
            let expected = bearer.map(|t| format!("Bearer {t}"));
            let seen = seen.lock().expect("lock").clone();
            assert!(!seen.is_empty(), "{sdk:?} sent nothing");
            assert!(
                seen.iter().all(|got| *got == expected),
                "{sdk:?} sent Authorization {seen:?}, expected {expected:?}"
            );
        }
    }
}
