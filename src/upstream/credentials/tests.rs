use std::sync::atomic::AtomicUsize;

use super::*;
use crate::config::Secret;

/// A token response with `lifetime` seconds, parsed as the token endpoint's answer would be.
fn token(name: &str, lifetime: u64) -> Result<Cached, UpstreamError> {
    let body =
        format!(r#"{{"access_token":"{name}","token_type":"Bearer","expires_in":{lifetime}}}"#);
    parse_token(body.as_bytes(), Instant::now())
}

fn bearer(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {name}")).unwrap()
}

/// Gets a value from `cache`, counting fetches in `n`; the fetched token is `t<count>`.
async fn get(
    cache: &TokenCache,
    n: &AtomicUsize,
    lifetime: u64,
) -> Result<HeaderValue, UpstreamError> {
    cache
        .get("b", || async {
            let k = n.fetch_add(1, Ordering::SeqCst) + 1;
            token(&format!("t{k}"), lifetime)
        })
        .await
}

#[tokio::test(start_paused = true)]
async fn a_token_is_cached_until_a_minute_before_it_expires() {
    let cache = TokenCache::default();
    let n = AtomicUsize::new(0);
    assert_eq!(get(&cache, &n, 3600).await.unwrap(), bearer("t1"));
    tokio::time::advance(Duration::from_secs(3539)).await;
    assert_eq!(get(&cache, &n, 3600).await.unwrap(), bearer("t1"));
    assert_eq!(n.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(get(&cache, &n, 3600).await.unwrap(), bearer("t2"));
    assert_eq!(n.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_short_lived_token_is_refreshed_at_ninety_percent_of_its_life() {
    let cache = TokenCache::default();
    let n = AtomicUsize::new(0);
    get(&cache, &n, 100).await.unwrap();
    tokio::time::advance(Duration::from_millis(89_999)).await;
    assert_eq!(get(&cache, &n, 100).await.unwrap(), bearer("t1"));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(get(&cache, &n, 100).await.unwrap(), bearer("t2"));
}

/// Lets every spawned task run until it blocks: with the clock paused, the runtime advances
/// time (and so ends this sleep) only once no task can make progress.
async fn until_all_blocked() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// `callers` concurrent `get`s whose fetches count themselves in `fetches` and end, with
/// `outcome`, only once `open` is sent `true` (a gate that stays open).
fn spawn_callers(
    cache: &Arc<TokenCache>,
    fetches: &Arc<AtomicUsize>,
    open: &tokio::sync::watch::Sender<bool>,
    callers: usize,
    outcome: fn() -> Result<Cached, UpstreamError>,
) -> Vec<tokio::task::JoinHandle<Result<HeaderValue, UpstreamError>>> {
    (0..callers)
        .map(|_| {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            let mut gate = open.subscribe();
            tokio::spawn(async move {
                cache
                    .get("b", || async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        let _ = gate.wait_for(|open| *open).await;
                        outcome()
                    })
                    .await
            })
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_fetch() {
    let cache = Arc::new(TokenCache::default());
    let fetches = Arc::new(AtomicUsize::new(0));
    let (open, _) = tokio::sync::watch::channel(false);
    let callers = spawn_callers(&cache, &fetches, &open, 16, || token("shared", 3600));
    until_all_blocked().await;
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "the others wait on the lock"
    );
    open.send_replace(true);
    for c in callers {
        assert_eq!(c.await.unwrap().unwrap(), bearer("shared"));
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_fetch_is_shared_by_its_waiters_and_retried_by_the_next_call() {
    let cache = Arc::new(TokenCache::default());
    let fetches = Arc::new(AtomicUsize::new(0));
    let (open, _) = tokio::sync::watch::channel(false);
    let callers = spawn_callers(&cache, &fetches, &open, 4, || {
        Err(failed("token endpoint answered HTTP 503".into()))
    });
    until_all_blocked().await;
    open.send_replace(true);
    for c in callers {
        let e = c.await.unwrap().unwrap_err();
        assert!(matches!(e, UpstreamError::Credentials(_)), "{e:?}");
        assert!(e.retryable());
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "one fetch for all waiters"
    );
    // The next call tries again.
    let n = AtomicUsize::new(0);
    assert_eq!(get(&cache, &n, 3600).await.unwrap(), bearer("t1"));
}

#[tokio::test(start_paused = true)]
async fn a_token_past_its_refresh_time_serves_while_the_refresh_fails() {
    let cache = TokenCache::default();
    let n = AtomicUsize::new(0);
    get(&cache, &n, 3600).await.unwrap();
    tokio::time::advance(Duration::from_secs(3550)).await;
    let failing = || async { Err::<Cached, _>(failed("down".into())) };
    assert_eq!(cache.get("b", failing).await.unwrap(), bearer("t1"));
    tokio::time::advance(Duration::from_secs(50)).await;
    assert!(cache.get("b", failing).await.is_err(), "expired: no token");
}

#[tokio::test(start_paused = true)]
async fn a_refused_token_is_forgotten() {
    let cache = TokenCache::default();
    let n = AtomicUsize::new(0);
    get(&cache, &n, 3600).await.unwrap();
    assert!(
        !cache.forget(&bearer("other")),
        "only the token that was sent"
    );
    assert!(cache.forget(&bearer("t1")));
    assert_eq!(get(&cache, &n, 3600).await.unwrap(), bearer("t2"));
}

#[test]
fn token_responses_are_read_leniently_and_checked() {
    let now = Instant::now();
    let t = parse_token(
        br#"{"access_token":"a","token_type":"bearer","expires_in":"120"}"#,
        now,
    )
    .unwrap();
    assert_eq!(t.expires_at - now, Duration::from_secs(120));
    assert_eq!(t.refresh_at - now, Duration::from_secs(108));
    assert!(t.value.is_sensitive());
    let t = parse_token(br#"{"access_token":"a"}"#, now).unwrap();
    assert_eq!(t.expires_at - now, DEFAULT_LIFETIME);
    for bad in [
        &br#"{"access_token":"a","token_type":"mac"}"#[..],
        br#"{"access_token":""}"#,
        br#"{"access_token":"a\nb"}"#,
        br#"{"access_token":"a","expires_in":-5}"#,
        br#"{"token_type":"Bearer"}"#,
        b"<html>",
    ] {
        let e = parse_token(bad, now).map(|_| ()).unwrap_err();
        assert!(matches!(e, UpstreamError::Credentials(_)), "{e:?}");
    }
}

#[test]
fn oauth_errors_keep_the_code_not_the_description() {
    assert_eq!(
        oauth_error(br#"{"error":"invalid_client","error_description":"secret s3cr3t is wrong"}"#),
        Some("invalid_client".into())
    );
    assert_eq!(oauth_error(br#"{"error":"bad\"quote"}"#), None);
    assert_eq!(oauth_error(b"Internal Server Error"), None);
}

fn cc(method: ClientAuthMethod) -> ClientCredentialsConfig {
    ClientCredentialsConfig {
        token_url: "http://127.0.0.1:9/token".into(),
        client_id: "switch board".into(),
        client_secret: Secret::new("p@ss:w/rd"),
        scopes: vec!["repo".into(), "read:org".into()],
        audience: Some("https://github-mcp.example".into()),
        resource: Some("https://github-mcp.example/mcp".into()),
        auth_method: method,
    }
}

#[test]
fn basic_auth_form_encodes_the_id_and_secret_and_keeps_them_out_of_the_body() {
    let (form, basic) = token_request(&cc(ClientAuthMethod::Basic)).unwrap();
    let form = std::str::from_utf8(&form).unwrap();
    assert_eq!(
        form,
        "grant_type=client_credentials&scope=repo+read%3Aorg&audience=https%3A%2F%2Fgithub-mcp.example&resource=https%3A%2F%2Fgithub-mcp.example%2Fmcp"
    );
    let basic = basic.unwrap();
    assert!(basic.is_sensitive());
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.to_str().unwrap().strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(decoded, b"switch+board:p%40ss%3Aw%2Frd");
}

#[test]
fn client_secret_post_puts_them_in_the_body() {
    let (form, basic) = token_request(&cc(ClientAuthMethod::Post)).unwrap();
    assert!(basic.is_none());
    let form = std::str::from_utf8(&form).unwrap();
    assert!(
        form.ends_with("&client_id=switch+board&client_secret=p%40ss%3Aw%2Frd"),
        "{form}"
    );
}

#[test]
fn token_urls_with_credentials_or_other_schemes_are_refused_without_echoing_them() {
    for bad in ["ftp://x/token", "http://u:s3cr3t@x/token", "not a url"] {
        let e = token_uri(bad).unwrap_err().to_string();
        assert!(!e.contains("s3cr3t") && !e.contains("ftp"), "{e}");
    }
    assert!(token_uri("https://idp.example/oauth2/token").is_ok());
}
