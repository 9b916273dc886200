//! A per-session call budget: each session may make at most `max_calls` calls of the counted
//! methods (by default `tools/call`); the next ones are refused with -32003.

use serde::Deserialize;
use serde_json::json;

use super::stage::{CallRequest, Deny, SessionSlot, Stage, Step};
use crate::protocol::jsonrpc::codes;
use crate::protocol::methods;

/// `stage: call-budget` in `policy:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub max_calls: u64,
    /// Which methods count (default: `tools/call`).
    #[serde(default = "tool_calls")]
    pub methods: Vec<String>,
}

fn tool_calls() -> Vec<String> {
    vec![methods::TOOLS_CALL.into()]
}

impl Config {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.max_calls == 0 {
            out.push(("max_calls".into(), "must be greater than zero".into()));
        }
        if self.methods.is_empty() {
            out.push(("methods".into(), "must name at least one method".into()));
        }
        out
    }
}

/// The stage.
#[derive(Debug)]
pub(super) struct CallBudget {
    max: u64,
    methods: Vec<String>,
}

impl CallBudget {
    pub(super) fn new(c: &Config) -> Self {
        CallBudget {
            max: c.max_calls,
            methods: c.methods.clone(),
        }
    }
}

/// Calls this session has made so far.
struct Spent(u64);

impl Stage for CallBudget {
    fn name(&self) -> &'static str {
        "call-budget"
    }

    fn new_session(&self) -> Option<SessionSlot> {
        Some(Box::new(Spent(0)))
    }

    fn on_request(&self, call: &mut CallRequest<'_>, slot: Option<&mut SessionSlot>) -> Step {
        if !self.methods.iter().any(|m| m == call.action.method) {
            return Step::Continue;
        }
        let Some(spent) = slot.and_then(|s| s.downcast_mut::<Spent>()) else {
            return Step::Continue;
        };
        if spent.0 >= self.max {
            return Step::Deny(
                Deny::forbidden(
                    "max_calls",
                    format!("this session has made its {} calls", self.max),
                )
                .with_code(codes::LIMIT_EXCEEDED)
                .with_data(json!({
                    "limit": self.max,
                    "retryable": false,
                })),
            );
        }
        spent.0 += 1;
        Step::Continue
    }
}
