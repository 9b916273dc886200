//! The stages a config can name: one line per stage kind here registers it (its config type and
//! how it is built); `policy:` in the YAML lists them in the order they run.

use std::sync::Arc;

use serde::Deserialize;

use super::stage::Stage;
use super::{access_list, call_budget};

/// One entry of `policy:`: `stage: <kind>` and that stage's own fields.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "stage", rename_all = "kebab-case")]
pub enum StageConfig {
    AccessList(access_list::Config),
    CallBudget(call_budget::Config),
}

impl StageConfig {
    pub fn build(&self) -> Arc<dyn Stage> {
        match self {
            StageConfig::AccessList(c) => Arc::new(access_list::AccessList::new(c)),
            StageConfig::CallBudget(c) => Arc::new(call_budget::CallBudget::new(c)),
        }
    }

    /// Problems with this stage's fields, as (field below the stage, problem).
    pub fn problems(&self, backends: &[&str]) -> Vec<(String, String)> {
        match self {
            StageConfig::AccessList(c) => c.problems(backends),
            StageConfig::CallBudget(c) => c.problems(),
        }
    }
}
