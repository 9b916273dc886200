//! Switchboard: an enterprise MCP gateway. A request walks down this list and its answer walks back up:
//!
//! - [`listener`]: downstream Streamable HTTP endpoint (sessionful 2025 and stateless 2026 clients),
//!   WebSocket, Host/Origin checks, SSE framing of replies.
//! - [`session`]: one `SessionActor` per developer session, one `BackendSession` child per backend;
//!   id rewriting, stream fan-in, the session registry.
//! - [`policy`]: the guard chain every routed call passes (visibility and authorization).
//! - [`catalog`]: shared discovery of backends' tools/prompts/resources and the merged views.
//! - [`upstream`]: backend transports (Streamable HTTP, stdio, WebSocket) behind one enum.
//! - [`protocol`]: pure JSON-RPC/MCP message model and SSE codec (no I/O).
//! - [`telemetry`]: logging set-up and the hash-chained audit log.
//! - [`config`], [`cli`], [`gateway`]: YAML → validated config, the command line, assembly.

pub mod admin;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod gateway;
pub mod identity;
pub mod integrity;
pub mod listener;
pub mod policy;
pub mod protocol;
pub mod session;
pub mod telemetry;
pub mod upstream;
