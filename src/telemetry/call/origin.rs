//! Where and when a client message arrived: the listener's address, the peer, the network
//! protocol and the trace context of its HTTP request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderMap;
use tokio::time::Instant;

use crate::telemetry::context::Remote;

/// The network protocol a client message came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetProtocol {
    Http,
    WebSocket,
}

impl NetProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            NetProtocol::Http => "http",
            NetProtocol::WebSocket => "websocket",
        }
    }
}

/// A listener's own address, as spans name it (`server.address`/`server.port`), made once.
#[derive(Clone, Debug)]
pub struct Local {
    pub ip: Arc<str>,
    pub port: u16,
}

impl Local {
    pub fn of(addr: SocketAddr) -> Local {
        Local {
            ip: Arc::from(addr.ip().to_string()),
            port: addr.port(),
        }
    }
}

/// Where and when a client message arrived, and the trace context of its HTTP request.
#[derive(Clone, Debug)]
pub struct Origin {
    pub received: Instant,
    pub wall: SystemTime,
    pub peer: Option<SocketAddr>,
    pub local: Option<Local>,
    pub protocol: NetProtocol,
    /// `traceparent` & co. of the HTTP request (the WebSocket upgrade's, for `/ws`).
    pub parent: Option<Remote>,
}

impl Origin {
    pub fn new(
        protocol: NetProtocol,
        peer: Option<SocketAddr>,
        local: Option<Local>,
        headers: Option<&HeaderMap>,
    ) -> Origin {
        Origin {
            received: Instant::now(),
            wall: SystemTime::now(),
            peer,
            local,
            protocol,
            parent: headers.and_then(Remote::from_headers),
        }
    }

    /// A message the gateway made itself (tests, benches).
    pub fn internal() -> Origin {
        Origin::new(NetProtocol::Http, None, None, None)
    }
}
