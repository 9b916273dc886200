//! The quarantine stage: a definition the integrity check quarantined (changed since pinned,
//! unpinned under `enforce`, poisoned) is hidden from lists and refused when called. Always the
//! pipeline's first stage; the verdict was computed at discovery, so this is one field read.

use serde_json::json;

use super::stage::{Deny, Stage};
use super::{Action, Principal};
use crate::protocol::jsonrpc::codes;

#[derive(Debug, Default)]
pub(super) struct QuarantineStage;

impl Stage for QuarantineStage {
    fn name(&self) -> &'static str {
        "integrity"
    }

    fn permits(&self, _principal: &Principal, action: &Action<'_>) -> Result<(), Deny> {
        let Some(q) = action.facts.quarantine() else {
            return Ok(());
        };
        let kind = action.kind.as_str();
        Err(Deny {
            rule: q.reason.into(),
            code: codes::FORBIDDEN,
            message: format!(
                "The {kind} '{}' of backend '{}' is quarantined: {} An administrator must \
                 approve it (switchboard pin, or the admin API) before it can be used.",
                action.name, action.backend, q.detail
            ),
            data: Some(json!({
                "quarantined": true,
                "reason": q.reason,
                "hash": action.facts.hash.as_deref(),
            })),
            http_status: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::policy::{Facts, Integrity, Quarantine};
    use crate::protocol::methods;

    #[test]
    fn a_quarantined_target_is_refused_with_its_reason_and_others_pass() {
        let p = Principal::default();
        let stage = QuarantineStage;
        let trusted = Facts::plain(false);
        let a = Action::new(methods::TOOLS_CALL, "notes", "search").with_facts(&trusted);
        assert!(stage.permits(&p, &a).is_ok());
        let bad = Facts {
            integrity: Integrity::Quarantined(Arc::new(Quarantine {
                reason: "changed",
                detail: "Its definition changed since it was pinned.".into(),
            })),
            hash: Some("sha256:ab".into()),
            ..Facts::plain(false)
        };
        let a = Action::new(methods::TOOLS_CALL, "notes", "search").with_facts(&bad);
        let d = stage.permits(&p, &a).expect_err("quarantined");
        assert_eq!(d.rule, "changed");
        assert!(
            d.message
                .contains("'search' of backend 'notes' is quarantined")
        );
        assert!(d.message.contains("changed since it was pinned"));
        assert_eq!(
            d.data.as_ref().and_then(|v| v["hash"].as_str()),
            Some("sha256:ab")
        );
        let listing = Action::new(methods::TOOLS_LIST, "notes", "search").with_facts(&bad);
        assert!(
            stage.permits(&p, &listing).is_err(),
            "hidden from lists too"
        );
    }
}
