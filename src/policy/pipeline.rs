//! The pipeline: the configured stages in order, asked the listing question (`visible`), the call
//! question (`request`, resumable after a stage that waits) and the answer question (`response`);
//! it writes the outcome into the call's decision record.

use std::sync::Arc;

use serde_json::Value;

use super::stage::{
    CallRequest, CallResponse, Deny, Pending, ReloadError, Reloaded, ResultBody, SessionSlot,
    Stage, Step,
};
use super::{Action, DecisionRecord, Principal};

/// The ordered stages. Empty: everything the catalog lists is allowed.
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    stages: Vec<Arc<dyn Stage>>,
    sees_responses: bool,
    marks_listings: bool,
}

/// How the request stages decided, so far.
pub enum Outcome {
    Allow,
    Deny(Deny),
    /// Stage `stage` waits on I/O: await `pending`, then `resume` at `stage + 1`.
    Wait {
        stage: usize,
        pending: Pending,
    },
}

/// One stage's answer to a reload.
#[derive(Debug)]
pub struct StageReload {
    /// The stage's place in `policy:` and its kind.
    pub index: usize,
    pub stage: &'static str,
    pub result: Result<Reloaded, ReloadError>,
}

/// Each stage's state for one session (a stage that keeps none has `None`).
#[derive(Default)]
pub struct SessionSlots(Vec<Option<SessionSlot>>);

impl Pipeline {
    pub fn new(stages: Vec<Arc<dyn Stage>>) -> Self {
        let sees_responses = stages.iter().any(|s| s.sees_responses());
        let marks_listings = stages.iter().any(|s| s.marks_listings());
        Pipeline {
            stages,
            sees_responses,
            marks_listings,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    pub fn stage_names(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.name()).collect()
    }

    /// A new session's slots.
    pub fn new_session(&self) -> SessionSlots {
        SessionSlots(self.stages.iter().map(|s| s.new_session()).collect())
    }

    /// The listing question: every stage's static rule permits it. Never counts as a call.
    pub fn visible(&self, principal: &Principal, action: &Action<'_>) -> bool {
        self.stages
            .iter()
            .all(|s| s.permits(principal, action).is_ok())
    }

    /// Whether any stage marks listed entries (`Stage::mark`).
    pub fn marks_listings(&self) -> bool {
        self.marks_listings
    }

    /// The `_meta` notes the stages have for a listed entry: (`io.switchboard/<stage>`, note).
    pub fn marks(
        &self,
        principal: &Principal,
        action: &Action<'_>,
        slots: Option<&SessionSlots>,
    ) -> Vec<(String, Value)> {
        if !self.marks_listings {
            return Vec::new();
        }
        self.stages
            .iter()
            .enumerate()
            .filter(|(_, s)| s.marks_listings())
            .filter_map(|(i, s)| {
                let slot = slots.and_then(|x| x.0.get(i)).and_then(Option::as_ref);
                let note = s.mark(principal, action, slot)?;
                Some((format!("io.switchboard/{}", s.name()), note))
            })
            .collect()
    }

    /// The listing question with its answer's reason: the first stage that refuses, and why
    /// (the admin's "why can bob not see this?").
    pub fn explain(
        &self,
        principal: &Principal,
        action: &Action<'_>,
    ) -> Result<(), (&'static str, Deny)> {
        for s in &self.stages {
            s.permits(principal, action).map_err(|d| (s.name(), d))?;
        }
        Ok(())
    }

    /// Starts the call question: identity into the record, then every stage from the first.
    pub fn request(
        &self,
        call: &mut CallRequest<'_>,
        slots: &mut SessionSlots,
        record: &mut DecisionRecord,
    ) -> Outcome {
        record.principal.clone_from(&call.principal.subject);
        record.roles.clone_from(&call.principal.roles);
        record.backend = Some(call.action.backend.to_string());
        record.original_name = Some(call.action.name.to_string());
        record.tool_hash.clone_from(&call.action.facts.hash);
        self.resume(call, slots, record, 0)
    }

    /// Runs the stages from `from` on (after a waiting stage allowed, `from` is the next one).
    pub fn resume(
        &self,
        call: &mut CallRequest<'_>,
        slots: &mut SessionSlots,
        record: &mut DecisionRecord,
        from: usize,
    ) -> Outcome {
        for (i, stage) in self.stages.iter().enumerate().skip(from) {
            let step = match stage.permits(call.principal, &call.action) {
                Err(d) => Step::Deny(d),
                Ok(()) => stage.on_request(call, slots.0.get_mut(i).and_then(Option::as_mut)),
            };
            if let Some(r) = call.policy_revision.take() {
                record.policy_revision = Some(r.to_string());
            }
            match step {
                Step::Continue => {}
                Step::Deny(mut d) => {
                    self.deny(i, &mut d, record);
                    return Outcome::Deny(d);
                }
                Step::Wait(pending) => return Outcome::Wait { stage: i, pending },
            }
        }
        record.decision = Some("allow");
        Outcome::Allow
    }

    /// Qualifies a refusal by stage `stage` (`data.rule` = `<stage>:<rule>`, the same name the
    /// record, span and audit line carry) and writes it into the record (also for a waiting
    /// stage's answer).
    pub fn deny(&self, stage: usize, d: &mut Deny, record: &mut DecisionRecord) {
        let name = self.stages.get(stage).map_or("?", |s| s.name());
        let rule = format!("{name}:{}", d.rule);
        match &mut d.data {
            Some(Value::Object(o)) => {
                o.insert("rule".into(), Value::String(rule.clone()));
            }
            Some(_) => {}
            None => d.data = Some(serde_json::json!({ "rule": rule })),
        }
        record.decision = Some("deny");
        record.deny_rule = Some(rule);
        record.deny_reason = Some(d.message.clone());
    }

    /// Whether any stage has policy sources to reload.
    pub fn reloadable(&self) -> bool {
        self.stages.iter().any(|s| s.reloadable())
    }

    /// Reloads every stage that has sources (the others are not asked). Blocking: it reads
    /// files and compiles policies.
    pub fn reload(&self) -> Vec<StageReload> {
        self.stages
            .iter()
            .enumerate()
            .filter(|(_, s)| s.reloadable())
            .map(|(index, s)| StageReload {
                index,
                stage: s.name(),
                result: s.reload(),
            })
            .collect()
    }

    /// Whether any stage looks at results (otherwise they are forwarded untouched).
    pub fn sees_responses(&self) -> bool {
        self.sees_responses
    }

    /// The answer question, in reverse order (the stage nearest the backend first). `Ok(Some)`:
    /// a stage rewrote the result.
    pub fn response(
        &self,
        call: &CallResponse<'_>,
        result: &mut ResultBody<'_>,
        slots: &mut SessionSlots,
        record: &mut DecisionRecord,
    ) -> Result<(), Deny> {
        for (i, stage) in self.stages.iter().enumerate().rev() {
            if !stage.sees_responses() {
                continue;
            }
            if let Err(mut d) =
                stage.on_response(call, result, slots.0.get_mut(i).and_then(Option::as_mut))
            {
                self.deny(i, &mut d, record);
                return Err(d);
            }
        }
        Ok(())
    }
}

/// The rewritten result as bytes, when a response stage changed it.
pub fn edited_bytes(result: ResultBody<'_>) -> Option<Vec<u8>> {
    result
        .into_edited()
        .map(|v: Value| serde_json::to_vec(&v).unwrap_or_default())
}

#[cfg(test)]
#[path = "pipeline/tests.rs"]
mod tests;
