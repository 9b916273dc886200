//! The policy pipeline: the ordered stages every routed call passes (request stages before the
//! backend, response stages after it), the listing question they answer with the same rules, and
//! the decision record they write. A new control is one file here plus a line in `registry.rs`.

mod access_list;
mod action;
mod call_budget;
mod decision;
mod pipeline;
mod principal;
mod rbac;
mod registry;
mod rego;
pub mod reload;
pub mod stage;

pub use action::{Action, Kind};
pub use decision::DecisionRecord;
pub use pipeline::{Outcome, Pipeline, SessionSlots, StageReload, edited_bytes};
pub use principal::{Principal, Via};
pub use registry::{BuildError, StageConfig};
pub use stage::{CallRequest, CallResponse, Deny, ReloadError, Reloaded, ResultBody, Stage, Step};

impl Pipeline {
    /// The pipeline a config's `policy:` list describes, in that order, then `extra` (an
    /// embedder's own stages).
    pub fn from_config(
        stages: &[StageConfig],
        extra: Vec<std::sync::Arc<dyn Stage>>,
    ) -> Result<Pipeline, BuildError> {
        let mut built = stages
            .iter()
            .map(StageConfig::build)
            .collect::<Result<Vec<_>, _>>()?;
        built.extend(extra);
        Ok(Pipeline::new(built))
    }
}
