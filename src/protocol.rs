//! Pure JSON-RPC 2.0 and MCP message model: parse once, classify, rewrite ids, frame SSE. No I/O.

pub mod era;
pub mod era2026;
pub mod jsonrpc;
pub mod methods;
pub mod sse;

pub use era::{Era, ProtocolVersion};
pub use jsonrpc::{ErrorObject, Message, Notification, ParseError, Request, RequestId, Response};
