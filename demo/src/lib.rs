//! Switchboard demo MCP servers: small, correct backends used as demos and as test,
//! benchmark and conformance fixtures.
//!
//! Map of the crate (a request walks down, its answer walks back up):
//! - `transport/` — `stdio` (newline-delimited JSON-RPC) and `http` (Streamable HTTP at `/mcp`:
//!   admission `guard`, `sse` framing, resumable `streams`).
//! - `jsonrpc` — the pure JSON-RPC message model (decode, classify, encode).
//! - `core/` — dispatch of MCP methods to a fixture; `session` state, per-request `context`
//!   (progress, logs, server→client requests), the change `hub`.
//! - `fixtures/` — `notes`, `tickets`, `conformance`, `lab`, and the small `github`, `postgres`
//!   and `slack` look-alikes of the RBAC example (`examples/rbac-50-devs.yaml`).

mod core;
mod fixtures;
mod jsonrpc;
mod transport;

use std::fmt;
use std::str::FromStr;

/// Which demo server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fixture {
    /// In-memory notebook (demo).
    Notes,
    /// Tiny issue tracker (demo); its `search` tool collides with notes on purpose.
    Tickets,
    /// What the `@modelcontextprotocol/conformance` server scenarios expect.
    Conformance,
    /// Test and benchmark tools (echo, sleep, exit, progress, server→client requests …).
    Lab,
    /// Repositories and pull requests in memory (read: list, get; write: open, merge).
    Github,
    /// A toy database: read-only `query` (SELECT only) and a writing `execute`.
    Postgres,
    /// Channels and messages in memory (read: list, read; write: post).
    Slack,
}

impl Fixture {
    /// Every fixture, in a stable order.
    pub const ALL: [Fixture; 7] = [
        Fixture::Notes,
        Fixture::Tickets,
        Fixture::Conformance,
        Fixture::Lab,
        Fixture::Github,
        Fixture::Postgres,
        Fixture::Slack,
    ];

    /// The fixture's command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            Fixture::Notes => "notes",
            Fixture::Tickets => "tickets",
            Fixture::Conformance => "conformance",
            Fixture::Lab => "lab",
            Fixture::Github => "github",
            Fixture::Postgres => "postgres",
            Fixture::Slack => "slack",
        }
    }
}

impl fmt::Display for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown fixture name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFixture(pub String);

impl fmt::Display for UnknownFixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown fixture {:?} (expected one of: ", self.0)?;
        for (i, fixture) in Fixture::ALL.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{fixture}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownFixture {}

impl FromStr for Fixture {
    type Err = UnknownFixture;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fixture::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownFixture(s.to_owned()))
    }
}

/// Serves `fixture` over stdin/stdout (newline-delimited JSON-RPC); logs go to stderr only.
/// Returns when stdin closes.
pub async fn serve_stdio(fixture: Fixture) -> anyhow::Result<()> {
    transport::stdio::serve(core::Server::new(fixture)).await
}

/// Serves `fixture` as Streamable HTTP at `/mcp` on `listener`.
pub async fn serve_http(fixture: Fixture, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    transport::http::serve(core::Server::new(fixture), listener).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fixture_names_round_trip() {
        for f in Fixture::ALL {
            assert_eq!(f.to_string().parse::<Fixture>(), Ok(f));
        }
        let err = "nope".parse::<Fixture>().unwrap_err().to_string();
        assert!(
            err.ends_with(
                "(expected one of: notes, tickets, conformance, lab, github, postgres, slack)"
            ),
            "{err}"
        );
    }
}
