//! Memory per idle session: the gateway's RSS before and after opening many sessions that
//! only `initialize` (no GET stream, no calls), divided by their number.

use std::time::Duration;

use anyhow::Context;
use hyper::header::HeaderValue;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::mcp;
use crate::procfs;
use crate::transport::{Conn, Target};

/// Connections the sessions are opened over (kept open during both RSS reads).
const CONNECTIONS: u64 = 8;
/// Sessions opened on each connection before the baseline, to warm lazy allocations.
const WARM_PER_CONNECTION: u64 = 4;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct IdleSessions {
    pub(crate) sessions: u64,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_after_kib: u64,
}

impl IdleSessions {
    /// Bytes of RSS growth per session (0 if RSS shrank).
    pub(crate) fn bytes_per_session(&self) -> f64 {
        if self.sessions == 0 {
            return 0.0;
        }
        (self.rss_after_kib.saturating_sub(self.rss_before_kib) * 1024) as f64
            / self.sessions as f64
    }
}

/// Opens `sessions` idle sessions on `target` and reads the RSS of `pid` around it.
pub(crate) async fn measure(
    target: &Target,
    pid: u32,
    sessions: u64,
) -> anyhow::Result<IdleSessions> {
    let mut conns = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut conn = Conn::new(target.clone());
        for _ in 0..WARM_PER_CONNECTION {
            warm.extend(
                mcp::initialize(&mut conn, TIMEOUT)
                    .await
                    .context("warm-up session")?,
            );
        }
        conns.push(conn);
    }
    let rss_before_kib = procfs::rss_kib(pid)?;

    let mut tasks = JoinSet::new();
    for (index, mut conn) in (0u64..).zip(conns) {
        let share = sessions / CONNECTIONS + u64::from(index < sessions % CONNECTIONS);
        tasks.spawn(async move {
            let mut ids: Vec<HeaderValue> = Vec::new();
            for _ in 0..share {
                ids.extend(mcp::initialize(&mut conn, TIMEOUT).await?);
            }
            anyhow::Ok((conn, ids))
        });
    }
    let mut opened = Vec::new();
    while let Some(result) = tasks.join_next().await {
        opened.push(result.context("session task")??);
    }
    let rss_after_kib = procfs::rss_kib(pid)?;

    let count: usize = opened.iter().map(|(_, ids)| ids.len()).sum();
    if count as u64 != sessions {
        anyhow::bail!("the gateway assigned {count} session ids for {sessions} initializes");
    }
    // Clean up so the latency runs see a quiet gateway.
    for (mut conn, ids) in opened {
        for id in ids.iter().chain(warm.iter()) {
            mcp::delete_session(&mut conn, id, TIMEOUT).await;
        }
        warm.clear();
    }
    Ok(IdleSessions {
        sessions,
        rss_before_kib,
        rss_after_kib,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bytes_per_session_math() {
        let m = IdleSessions {
            sessions: 1000,
            rss_before_kib: 10_000,
            rss_after_kib: 12_000,
        };
        assert_eq!(m.bytes_per_session(), 2048.0);
        let shrank = IdleSessions {
            rss_after_kib: 9_000,
            ..m
        };
        assert_eq!(shrank.bytes_per_session(), 0.0);
        assert_eq!(IdleSessions { sessions: 0, ..m }.bytes_per_session(), 0.0);
    }
}
