//! The decision record: everything the pipeline decided about one call, read by the span, the
//! metric labels and the audit line alike.

use std::sync::Arc;

/// Everything the stages decided about one call; telemetry and the audit log read it.
#[derive(Clone, Debug, Default)]
pub struct DecisionRecord {
    pub principal: Option<Arc<str>>,
    pub roles: Vec<Arc<str>>,
    pub backend: Option<String>,
    pub original_name: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<&'static str>,
    /// `<stage>:<rule>` of the denying stage.
    pub deny_rule: Option<String>,
    pub deny_reason: Option<String>,
    pub policy_revision: Option<String>,
    /// The called definition's `sha256:<hex>` (JCS), from the catalog.
    pub tool_hash: Option<Arc<str>>,
    pub redactions: u32,
    pub rate_limit: Option<String>,
}
