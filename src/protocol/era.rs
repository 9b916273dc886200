//! MCP protocol revisions and the two eras they fall into (sessionful 2025, stateless 2026).

use std::fmt;

/// The two eras of MCP transport semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Era {
    /// 2025-03-26 .. 2025-11-25: `initialize` handshake, `Mcp-Session-Id`, GET SSE stream.
    Sessionful,
    /// 2026-07-28 and later: no sessions, per-request `_meta` protocol version.
    Stateless,
}

/// A protocol revision the gateway knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
    V2026_07_28,
}

impl ProtocolVersion {
    /// Every revision served, oldest first.
    pub const ALL: [ProtocolVersion; 4] = [
        ProtocolVersion::V2025_03_26,
        ProtocolVersion::V2025_06_18,
        ProtocolVersion::V2025_11_25,
        ProtocolVersion::V2026_07_28,
    ];

    /// The newest sessionful revision: what the gateway offers in `initialize`.
    pub const LATEST_SESSIONFUL: ProtocolVersion = ProtocolVersion::V2025_11_25;

    /// Assumed when a sessionful client omits `MCP-Protocol-Version` (per the 2025-06-18 spec).
    pub const DEFAULT_HEADERLESS: ProtocolVersion = ProtocolVersion::V2025_03_26;

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V2025_03_26 => "2025-03-26",
            ProtocolVersion::V2025_06_18 => "2025-06-18",
            ProtocolVersion::V2025_11_25 => "2025-11-25",
            ProtocolVersion::V2026_07_28 => "2026-07-28",
        }
    }

    pub fn era(self) -> Era {
        match self {
            ProtocolVersion::V2026_07_28 => Era::Stateless,
            _ => Era::Sessionful,
        }
    }

    /// The revision to answer an `initialize` that asked for `requested`:
    /// the same one if it is a sessionful revision we serve, else our latest sessionful.
    pub fn negotiate(requested: &str) -> ProtocolVersion {
        match Self::parse(requested) {
            Some(v) if v.era() == Era::Sessionful => v,
            _ => Self::LATEST_SESSIONFUL,
        }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_rejects_unknown() {
        assert_eq!(
            ProtocolVersion::parse("2025-06-18"),
            Some(ProtocolVersion::V2025_06_18)
        );
        assert_eq!(ProtocolVersion::parse("2024-11-05"), None);
        assert_eq!(ProtocolVersion::V2026_07_28.era(), Era::Stateless);
    }

    #[test]
    fn negotiation_echoes_supported_and_falls_back_to_latest() {
        assert_eq!(
            ProtocolVersion::negotiate("2025-03-26"),
            ProtocolVersion::V2025_03_26
        );
        assert_eq!(
            ProtocolVersion::negotiate("1999-01-01"),
            ProtocolVersion::V2025_11_25
        );
        // A stateless revision is never negotiated through initialize.
        assert_eq!(
            ProtocolVersion::negotiate("2026-07-28"),
            ProtocolVersion::V2025_11_25
        );
    }
}
