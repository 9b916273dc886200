//! Switchboard: an enterprise MCP gateway. A request walks down this list and its answer walks back up:
//!
//! - [`cli`]: command line (`serve`, `check-config`, `demo-backend`).
//! - [`config`]: YAML → validated `Config`.
//! - [`protocol`]: pure JSON-RPC/MCP message model and SSE framing (no I/O).
//! - [`upstream`]: backend transports (HTTP, stdio, WebSocket) behind one enum.

pub mod config;
pub mod protocol;
pub mod upstream;
