//! Host and Origin validation (DNS-rebinding protection): 403 for anything not allowed.

use http::HeaderMap;
use http::header::{HOST, ORIGIN};

use crate::config::ListenerConfig;

const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Which Host and Origin headers a listener accepts.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// Allowed hosts (lowercase, `host` or `host:port`); empty = any host.
    hosts: Vec<String>,
    origins: Vec<String>,
}

/// Why a request's Host or Origin was refused (safe to show the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("Host header is missing")]
    NoHost,
    #[error("Host {0:?} is not allowed")]
    Host(String),
    #[error("Origin {0:?} is not allowed")]
    Origin(String),
}

impl HostPolicy {
    /// Loopback listeners with no configured hosts accept only loopback names (any port);
    /// other listeners with no configured hosts accept any Host.
    pub fn new(cfg: &ListenerConfig) -> Self {
        let hosts = if !cfg.allowed_hosts.is_empty() {
            cfg.allowed_hosts.clone()
        } else if cfg.bind.ip().is_loopback() {
            LOOPBACK_NAMES.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        };
        HostPolicy {
            hosts,
            origins: cfg.allowed_origins.clone(),
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(host.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(host)
        };
        let bare = strip_port(&host);
        self.hosts.iter().any(|h| *h == host || *h == bare)
    }

    /// Checks the Host header, and the Origin header when present.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Rejected> {
        let host = headers
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .ok_or(Rejected::NoHost)?;
        if !self.host_allowed(host) {
            return Err(Rejected::Host(truncate(host)));
        }
        if let Some(origin) = headers.get(ORIGIN) {
            let origin = origin
                .to_str()
                .map_err(|_| Rejected::Origin("<non-ASCII>".into()))?;
            if self.origins.iter().any(|o| o == origin) {
                return Ok(());
            }
            // Same-site: an origin whose host passes the Host rule.
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            match authority {
                Some(a) if !a.contains('/') && !self.hosts.is_empty() && self.host_allowed(a) => {}
                _ => return Err(Rejected::Origin(truncate(origin))),
            }
        }
        Ok(())
    }
}

/// `host:port` → `host`, keeping bracketed IPv6 literals whole.
fn strip_port(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(bind: &str, hosts: &[&str], origins: &[&str]) -> HostPolicy {
        let yaml = format!(
            "listeners: [{{bind: '{bind}', allowed_hosts: [{}], allowed_origins: [{}], auth: {{mode: oauth, api_keys: [{{name: k, hash: 'sha256:{zeros}'}}]}}}}]\nbackends: [{{name: a, transport: stdio, command: x}}]",
            hosts
                .iter()
                .map(|h| format!("'{h}'"))
                .collect::<Vec<_>>()
                .join(","),
            origins
                .iter()
                .map(|h| format!("'{h}'"))
                .collect::<Vec<_>>()
                .join(","),
            zeros = "0".repeat(64),
        );
        let cfg = crate::config::Config::from_yaml(&yaml).unwrap();
        HostPolicy::new(&cfg.listeners[0])
    }

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn loopback_listener_rejects_rebinding_and_accepts_localhost() {
        let p = policy("127.0.0.1:0", &[], &[]);
        assert!(
            p.check(&headers("127.0.0.1:8080", Some("http://127.0.0.1:8080")))
                .is_ok()
        );
        assert!(p.check(&headers("localhost", None)).is_ok());
        assert!(p.check(&headers("[::1]:9", None)).is_ok());
        assert_eq!(
            p.check(&headers("evil.example.com", None)),
            Err(Rejected::Host("evil.example.com".into()))
        );
        assert!(matches!(
            p.check(&headers("127.0.0.1:1", Some("http://evil.example.com"))),
            Err(Rejected::Origin(_))
        ));
        assert!(p.check(&HeaderMap::new()).is_err());
    }

    #[test]
    fn configured_hosts_and_origins_are_exact() {
        let p = policy(
            "0.0.0.0:0",
            &["gw.corp.example"],
            &["https://ide.corp.example"],
        );
        assert!(
            p.check(&headers(
                "gw.corp.example:443",
                Some("https://ide.corp.example")
            ))
            .is_ok()
        );
        assert!(p.check(&headers("gw.corp.example.evil", None)).is_err());
        assert!(
            p.check(&headers(
                "gw.corp.example",
                Some("https://ide.corp.example.evil")
            ))
            .is_err()
        );
        let open = policy("0.0.0.0:0", &[], &[]);
        assert!(open.check(&headers("anything", None)).is_ok());
        assert!(
            open.check(&headers("anything", Some("http://x"))).is_err(),
            "no origin list: cross-origin browsers refused"
        );
    }
}
