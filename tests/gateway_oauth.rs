//! The gateway as an OAuth 2.1 resource server in front of a real identity provider
//! (oauth2-mock-server, tests/peers/idp.mjs): real SDK clients with its RS256/ES256/EdDSA
//! tokens in both eras, the negative suite (each forged or unfit token with its documented
//! status and reason), key rotation, sessions bound to their principal, and a token that
//! expires during a session.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/idp.rs"]
mod idp;
#[path = "common/peers.rs"]
mod peers;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateway::{RawClient, Reply, TestGateway, fixture_stdio};
use idp::{Alg, Idp, TokenRequest, forged};
use peers::Sdk;
use serde_json::{Value, json};

/// The gateway's canonical resource URI (tokens' `aud`).
const RESOURCE: &str = "http://switchboard.test/mcp";

async fn gateway(idp: &Idp, extra_auth: &str) -> TestGateway {
    let yaml = format!(
        "listeners:\n  - name: t\n    bind: '127.0.0.1:0'\n    auth:\n      mode: oauth\n      resource: {RESOURCE}\n      required_scopes: [mcp]\n      issuers:\n        - issuer: '{}'\n          jwks_url: '{}'\n          refresh_interval: 1h\n{extra_auth}backends:\n{}",
        idp.issuer,
        idp.jwks_uri,
        fixture_stdio("notes", "notes"),
    );
    TestGateway::start_yaml(&yaml).await
}

/// A token the gateway should accept: our audience, the `mcp` scope.
fn good(sub: &str) -> TokenRequest {
    TokenRequest::subject(sub).aud(RESOURCE).scope("mcp")
}

fn initialize() -> Value {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},
        "clientInfo":{"name":"oauth-test","version":"1"}}})
}

async fn present(gw: &TestGateway, token: &str) -> Reply {
    RawClient::with_token(&gw.url, token)
        .post(initialize())
        .await
}

fn challenge(r: &Reply) -> String {
    r.headers
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Asserts a refusal: its status, `error=` in the challenge, and the reason in the body.
#[track_caller]
fn refused(r: &Reply, status: u16, error: &str, reason: &str, case: &str) {
    assert_eq!(r.status, status, "{case}: {}", r.body);
    assert!(
        challenge(r).contains(&format!("error=\"{error}\"")),
        "{case}: {}",
        challenge(r)
    );
    assert!(
        r.body.contains(reason),
        "{case}: body should say {reason:?}: {}",
        r.body
    );
}

#[tokio::test]
async fn sdk_clients_in_both_eras_connect_with_the_idps_tokens() {
    let idp = Idp::start().await;
    let gw = gateway(&idp, "").await;
    for (sdk, era) in [
        (Sdk::Python, "legacy"),
        (Sdk::Python, "2026"),
        (Sdk::TypeScript, "legacy"),
    ] {
        for alg in Alg::ALL {
            let token = idp.token(good("alice").alg(alg)).await;
            let out = peers::run_driver_as(
                sdk,
                &gw.url,
                Some(&token),
                &["--era", era, "call", "search", r#"{"query":"a"}"#],
                peers::DRIVER_TIMEOUT,
            )
            .await;
            assert!(
                out["result"]["content"].is_array(),
                "{sdk:?} {era} {alg:?}: {out}"
            );
        }
        // No token: the SDK sees the 401 challenge pointing at the metadata.
        let out = peers::run_driver_as(
            sdk,
            &gw.url,
            None,
            &["--era", era, "--report-refusal", "list"],
            peers::DRIVER_TIMEOUT,
        )
        .await;
        let r = peers::refusal(&out).unwrap_or_else(|| panic!("{sdk:?} {era}: {out}"));
        assert_eq!(r.status, 401, "{sdk:?} {era}: {out}");
        let c = r.www_authenticate.unwrap_or_default();
        assert!(
            c.contains("resource_metadata=\"http://switchboard.test/.well-known/oauth-protected-resource/mcp\""),
            "{c}"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn every_unfit_token_is_refused_with_its_documented_status_and_reason() {
    let idp = Idp::start().await;
    let gw = gateway(&idp, "").await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let valid = idp.token(good("alice")).await;
    assert_eq!(present(&gw, &valid).await.status, 200);

    let claims = idp.claims(&good("mallory"));
    let jwks = idp.jwks().await;
    let rsa = jwks
        .keys
        .iter()
        .find(|k| matches!(k.algorithm, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)))
        .unwrap();
    let rsa_kid = rsa.common.key_id.clone();
    let cases: Vec<(&str, String, u16, &str, &str)> = vec![
        (
            "bad signature",
            forged::bad_signature(&valid),
            401,
            "invalid_token",
            "signature does not verify",
        ),
        (
            "alg none",
            forged::unsigned(&claims),
            401,
            "invalid_token",
            "unsupported or missing signature algorithm",
        ),
        (
            "HS256 keyed with the IdP's RSA public key (PEM)",
            forged::hs_confusion(
                &claims,
                idp::rsa_public_pem(rsa).as_bytes(),
                rsa_kid.as_deref(),
            ),
            401,
            "invalid_token",
            "algorithm not allowed",
        ),
        (
            "HS256 keyed with the IdP's RSA public key (DER)",
            forged::hs_confusion(&claims, &idp::rsa_public_der(rsa), rsa_kid.as_deref()),
            401,
            "invalid_token",
            "algorithm not allowed",
        ),
        (
            "signed by a key the IdP never published",
            forged::foreign_key(&idp, Alg::Rs256, Some("not-published"), &claims).await,
            401,
            "invalid_token",
            "unknown signing key",
        ),
        (
            "signed by a foreign key under a published kid",
            forged::foreign_key(&idp, Alg::Rs256, rsa_kid.as_deref(), &claims).await,
            401,
            "invalid_token",
            "signature does not verify",
        ),
        (
            "expired",
            idp.token(good("alice").expires_in(-120)).await,
            401,
            "invalid_token",
            "token expired",
        ),
        (
            "not yet valid",
            idp.token(good("alice").claim("nbf", json!(now + 600))).await,
            401,
            "invalid_token",
            "not yet valid",
        ),
        (
            "wrong issuer",
            forged::foreign_key(
                &idp,
                Alg::Rs256,
                None,
                &json!({"iss": "https://evil.example", "sub": "x", "aud": RESOURCE, "exp": now + 60}),
            )
            .await,
            401,
            "invalid_token",
            "untrusted issuer",
        ),
        (
            "wrong audience",
            idp.token(TokenRequest::subject("alice").aud("http://other.test/mcp").scope("mcp"))
                .await,
            401,
            "invalid_token",
            "not issued for this resource",
        ),
        (
            "no audience",
            idp.token(TokenRequest::subject("alice").scope("mcp")).await,
            401,
            "invalid_token",
            "required claim",
        ),
        (
            "no expiry",
            idp.token(good("alice").claim("exp", Value::Null)).await,
            401,
            "invalid_token",
            "required claim",
        ),
        (
            "garbage",
            "not-a-jwt.at-all.really".to_string(),
            401,
            "invalid_token",
            "malformed token",
        ),
        (
            "missing scope",
            idp.token(TokenRequest::subject("alice").aud(RESOURCE).scope("other"))
                .await,
            403,
            "insufficient_scope",
            "requires scope",
        ),
    ];
    for (case, token, status, error, reason) in &cases {
        let r = present(&gw, token).await;
        refused(&r, *status, error, reason, case);
        if *status == 403 {
            assert!(challenge(&r).contains("scope=\"mcp\""), "{case}");
        }
        // Nothing about the token, the keys or other principals comes back.
        assert!(!r.body.contains(token.as_str()), "{case}");
    }
    // The valid token still works after all of it.
    assert_eq!(present(&gw, &valid).await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_an_unknown_kid_cannot_force_fetches() {
    let idp = Idp::start().await;
    let gw = gateway(&idp, "").await;
    assert_eq!(
        present(&gw, &idp.token(good("alice")).await).await.status,
        200
    );
    // The IdP rotates: the first token with the new kid makes the gateway fetch the JWKS again.
    let kid = idp.rotate_key(Alg::Es256).await;
    let rotated = idp.token(good("alice").alg(Alg::Es256).kid(&kid)).await;
    assert_eq!(present(&gw, &rotated).await.status, 200);
    // Another rotation inside the refresh interval (1 h here): the gateway does not fetch again,
    // so any number of unknown kids costs the IdP nothing — at the price of this token's 401.
    let kid2 = idp.rotate_key(Alg::Es256).await;
    let too_soon = idp.token(good("alice").alg(Alg::Es256).kid(&kid2)).await;
    refused(
        &present(&gw, &too_soon).await,
        401,
        "invalid_token",
        "unknown signing key",
        "second rotation within the interval",
    );
    // The key fetched before is still trusted.
    assert_eq!(present(&gw, &rotated).await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn sessions_are_bound_to_their_subject_and_survive_a_token_refresh() {
    let idp = Idp::start().await;
    let gw = gateway(&idp, "      leeway: 0s\n").await;
    // Alice's first token expires in two seconds; her session outlives it.
    let short = idp.token(good("alice").expires_in(2)).await;
    let mut alice = RawClient::connect_with_token(&gw.url, &short).await;
    let first = alice.call(1, "tools/list", json!({})).await;
    assert!(first["result"]["tools"].as_array().unwrap().len() > 1);

    // Bob, with his own valid token, presenting Alice's session id: 404.
    let mut bob = RawClient::with_token(&gw.url, &idp.token(good("bob")).await);
    bob.session = alice.session.clone();
    let r = bob
        .post(json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // Past the expiry (a known instant, not a guess): the next request is refused with 401 …
    let exp = idp::decode_exp(&short);
    let wait =
        exp.duration_since(SystemTime::now()).unwrap_or_default() + Duration::from_millis(1100);
    tokio::time::sleep(wait).await;
    let r = alice
        .post(json!({"jsonrpc":"2.0","id":3,"method":"tools/list"}))
        .await;
    refused(
        &r,
        401,
        "invalid_token",
        "token expired",
        "expired mid-session",
    );
    // … and with a fresh token the same session answers again.
    alice.token = Some(idp.token(good("alice")).await);
    let again = alice.call(4, "tools/list", json!({})).await;
    assert_eq!(again["result"], first["result"]);
    gw.stop().await;
}
