//! The policy pipeline: the ordered stages every routed call passes (request stages before the
//! backend, response stages after it), the listing question they answer with the same rules, and
//! the decision record they write. A new control is one file here plus a line in `registry.rs`.

mod access_list;
mod action;
mod call_budget;
mod decision;
mod pipeline;
mod principal;
mod registry;
pub mod stage;

pub use action::{Action, Kind};
pub use decision::DecisionRecord;
pub use pipeline::{Outcome, Pipeline, SessionSlots, edited_bytes};
pub use principal::{Principal, Via};
pub use registry::StageConfig;
pub use stage::{CallRequest, CallResponse, Deny, ResultBody, Stage, Step};

impl Pipeline {
    /// The pipeline a config's `policy:` list describes, in that order.
    pub fn from_config(stages: &[StageConfig]) -> Pipeline {
        Pipeline::new(stages.iter().map(StageConfig::build).collect())
    }
}
