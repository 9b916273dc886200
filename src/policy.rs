//! The policy chain: an ordered list of guards that every call passes, writing one decision record.
//!
//! Identity, RBAC, Rego, rate limits, the Rule of Two and tool pinning each become one `Guard`.
//! The same chain decides visibility in lists (`visible`) and permission to call (`authorize`), so a
//! tool that is listed is callable and one that is not listed is not.

use std::sync::Arc;

/// What is being asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    CallTool {
        backend: &'a str,
        tool: &'a str,
    },
    GetPrompt {
        backend: &'a str,
        prompt: &'a str,
    },
    ReadResource {
        backend: &'a str,
        uri: &'a str,
    },
    /// Any other request routed to a backend (completion, subscribe, logging).
    Other {
        backend: &'a str,
        method: &'a str,
    },
}

impl Action<'_> {
    pub fn backend(&self) -> &str {
        match self {
            Action::CallTool { backend, .. }
            | Action::GetPrompt { backend, .. }
            | Action::ReadResource { backend, .. }
            | Action::Other { backend, .. } => backend,
        }
    }
}

/// Who is asking. Filled by the identity guard once authentication exists.
#[derive(Clone, Debug, Default)]
pub struct Principal {
    pub subject: Option<Arc<str>>,
    pub roles: Vec<Arc<str>>,
}

/// The context a guard sees.
#[derive(Debug)]
pub struct CallContext<'a> {
    pub principal: &'a Principal,
    pub session_id: &'a str,
    pub action: Action<'a>,
    /// `tools/call` arguments, when the action is a tool call.
    pub arguments: Option<&'a serde_json::Value>,
}

/// Allow, or deny with a reason the client may see (never a secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny { rule: String, reason: String },
}

/// Everything the guards decided about one call; telemetry and the audit log read it.
#[derive(Clone, Debug, Default)]
pub struct DecisionRecord {
    pub principal: Option<Arc<str>>,
    pub roles: Vec<Arc<str>>,
    pub backend: Option<String>,
    pub original_name: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<&'static str>,
    pub deny_rule: Option<String>,
    pub deny_reason: Option<String>,
    pub policy_revision: Option<String>,
    pub tool_hash: Option<String>,
    pub redactions: u32,
    pub rate_limit: Option<String>,
}

/// One check on the request path.
pub trait Guard: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &'static str;
    /// Decides one call and records what it found.
    fn check(&self, ctx: &CallContext<'_>, record: &mut DecisionRecord) -> Verdict;
}

/// The ordered guards. Empty by default: everything the catalog lists is allowed.
#[derive(Clone, Debug, Default)]
pub struct PolicyChain {
    guards: Vec<Arc<dyn Guard>>,
}

impl PolicyChain {
    pub fn new(guards: Vec<Arc<dyn Guard>>) -> Self {
        Self { guards }
    }

    /// Runs every guard until one denies.
    pub fn authorize(&self, ctx: &CallContext<'_>, record: &mut DecisionRecord) -> Verdict {
        record.principal.clone_from(&ctx.principal.subject);
        record.roles.clone_from(&ctx.principal.roles);
        record.backend = Some(ctx.action.backend().to_string());
        for g in &self.guards {
            if let v @ Verdict::Deny { .. } = g.check(ctx, record) {
                if let Verdict::Deny { rule, reason } = &v {
                    record.decision = Some("deny");
                    record.deny_rule = Some(format!("{}:{rule}", g.name()));
                    record.deny_reason = Some(reason.clone());
                }
                return v;
            }
        }
        record.decision = Some("allow");
        Verdict::Allow
    }

    /// Whether an entry may be listed to this principal: the same decision as calling it.
    pub fn visible(&self, principal: &Principal, session_id: &str, action: Action<'_>) -> bool {
        if self.guards.is_empty() {
            return true;
        }
        let ctx = CallContext {
            principal,
            session_id,
            action,
            arguments: None,
        };
        matches!(
            self.authorize(&ctx, &mut DecisionRecord::default()),
            Verdict::Allow
        )
    }

    pub fn is_empty(&self) -> bool {
        self.guards.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct DenyTool(&'static str);

    impl Guard for DenyTool {
        fn name(&self) -> &'static str {
            "deny-tool"
        }
        fn check(&self, ctx: &CallContext<'_>, _r: &mut DecisionRecord) -> Verdict {
            match ctx.action {
                Action::CallTool { tool, .. } if tool == self.0 => Verdict::Deny {
                    rule: tool.into(),
                    reason: format!("{tool} is not allowed"),
                },
                _ => Verdict::Allow,
            }
        }
    }

    #[test]
    fn a_denying_guard_stops_the_chain_and_the_record_says_why() {
        let chain = PolicyChain::new(vec![Arc::new(DenyTool("rm"))]);
        let p = Principal {
            subject: Some("ana".into()),
            roles: vec![],
        };
        let ctx = CallContext {
            principal: &p,
            session_id: "s",
            action: Action::CallTool {
                backend: "fs",
                tool: "rm",
            },
            arguments: None,
        };
        let mut rec = DecisionRecord::default();
        assert!(matches!(
            chain.authorize(&ctx, &mut rec),
            Verdict::Deny { .. }
        ));
        assert_eq!(rec.decision, Some("deny"));
        assert_eq!(rec.deny_rule.as_deref(), Some("deny-tool:rm"));
        assert_eq!(rec.principal.as_deref(), Some("ana"));
        assert!(!chain.visible(
            &p,
            "s",
            Action::CallTool {
                backend: "fs",
                tool: "rm"
            }
        ));
        assert!(chain.visible(
            &p,
            "s",
            Action::CallTool {
                backend: "fs",
                tool: "ls"
            }
        ));
    }
}
