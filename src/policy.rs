//! The policy pipeline: the ordered stages every routed call passes (request stages before the
//! backend, response stages after it), the listing question they answer with the same rules, and
//! the decision record they write. A new control is one file here plus a line in `registry.rs`.

mod access_list;
mod action;
mod call_budget;
mod decision;
mod facts;
mod pipeline;
mod principal;
mod quarantine;
mod rbac;
mod registry;
mod rego;
pub mod reload;
mod rule_of_two;
pub mod stage;

pub use action::{Action, Kind};
pub use decision::DecisionRecord;
pub use facts::{Facts, Integrity, Quarantine};
pub use pipeline::{Outcome, Pipeline, SessionSlots, StageReload, edited_bytes};
pub use principal::{Principal, Via};
pub use registry::{BuildError, StageConfig};
pub use stage::{CallRequest, CallResponse, Deny, ReloadError, Reloaded, ResultBody, Stage, Step};

impl Pipeline {
    /// The pipeline a config's `policy:` list describes, in that order, after the quarantine
    /// check and before `extra` (an embedder's own stages).
    pub fn from_config(
        stages: &[StageConfig],
        extra: Vec<std::sync::Arc<dyn Stage>>,
    ) -> Result<Pipeline, BuildError> {
        // The quarantine check comes first, always: what integrity hid is never asked further.
        let mut built: Vec<std::sync::Arc<dyn Stage>> =
            vec![std::sync::Arc::new(quarantine::QuarantineStage)];
        for s in stages {
            built.push(s.build()?);
        }
        built.extend(extra);
        Ok(Pipeline::new(built))
    }
}
