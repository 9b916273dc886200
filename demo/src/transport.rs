//! Transports that carry JSON-RPC between a client and the [`crate::core::Server`].

pub(crate) mod http;
pub(crate) mod stdio;
