//! MCP method names and how the gateway treats each: local, routed by name, or fanned out.

pub const INITIALIZE: &str = "initialize";
pub const INITIALIZED: &str = "notifications/initialized";
pub const PING: &str = "ping";
pub const TOOLS_LIST: &str = "tools/list";
pub const TOOLS_CALL: &str = "tools/call";
pub const PROMPTS_LIST: &str = "prompts/list";
pub const PROMPTS_GET: &str = "prompts/get";
pub const RESOURCES_LIST: &str = "resources/list";
pub const RESOURCES_TEMPLATES_LIST: &str = "resources/templates/list";
pub const RESOURCES_READ: &str = "resources/read";
pub const RESOURCES_SUBSCRIBE: &str = "resources/subscribe";
pub const RESOURCES_UNSUBSCRIBE: &str = "resources/unsubscribe";
pub const COMPLETION_COMPLETE: &str = "completion/complete";
pub const LOGGING_SET_LEVEL: &str = "logging/setLevel";
pub const CANCELLED: &str = "notifications/cancelled";
pub const PROGRESS: &str = "notifications/progress";
pub const MESSAGE: &str = "notifications/message";
pub const TOOLS_LIST_CHANGED: &str = "notifications/tools/list_changed";
pub const PROMPTS_LIST_CHANGED: &str = "notifications/prompts/list_changed";
pub const RESOURCES_LIST_CHANGED: &str = "notifications/resources/list_changed";
pub const RESOURCES_UPDATED: &str = "notifications/resources/updated";
pub const ROOTS_LIST_CHANGED: &str = "notifications/roots/list_changed";
pub const SERVER_DISCOVER: &str = "server/discover";

/// How the session handles a client request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Answered by the gateway itself (ping, lists from the catalog).
    Local,
    /// Sent to the one backend that owns the named tool/prompt/resource.
    Owner,
    /// Sent to every backend of the session (logging/setLevel).
    FanOut,
    /// Not a method the gateway serves.
    Unknown,
}

/// Classifies a client→gateway request method.
pub fn route(method: &str) -> Route {
    match method {
        INITIALIZE
        | PING
        | TOOLS_LIST
        | PROMPTS_LIST
        | RESOURCES_LIST
        | RESOURCES_TEMPLATES_LIST => Route::Local,
        TOOLS_CALL
        | PROMPTS_GET
        | RESOURCES_READ
        | RESOURCES_SUBSCRIBE
        | RESOURCES_UNSUBSCRIBE
        | COMPLETION_COMPLETE => Route::Owner,
        LOGGING_SET_LEVEL => Route::FanOut,
        _ => Route::Unknown,
    }
}
