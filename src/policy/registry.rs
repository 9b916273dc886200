//! The stages a config can name: one line per stage kind here registers it (its config type and
//! how it is built); `policy:` in the YAML lists them in the order they run.

use std::sync::Arc;

use serde::Deserialize;

use super::stage::Stage;
use super::{access_list, call_budget, rbac, rego, rule_of_two};

/// One entry of `policy:`: `stage: <kind>` and that stage's own fields.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "stage", rename_all = "kebab-case")]
pub enum StageConfig {
    AccessList(access_list::Config),
    CallBudget(call_budget::Config),
    Rbac(rbac::Config),
    Rego(rego::Config),
    RuleOfTwo(rule_of_two::Config),
}

/// A stage that could not be built (its policy sources do not load).
#[derive(Debug, thiserror::Error)]
#[error("policy stage {stage}: {error}")]
pub struct BuildError {
    pub stage: &'static str,
    pub error: String,
}

impl StageConfig {
    pub fn build(&self) -> Result<Arc<dyn Stage>, BuildError> {
        Ok(match self {
            StageConfig::AccessList(c) => Arc::new(access_list::AccessList::new(c)),
            StageConfig::CallBudget(c) => Arc::new(call_budget::CallBudget::new(c)),
            StageConfig::Rbac(c) => Arc::new(rbac::Rbac::new(c)),
            StageConfig::RuleOfTwo(c) => Arc::new(rule_of_two::RuleOfTwo::new(c)),
            StageConfig::Rego(c) => Arc::new(rego::Rego::load(c).map_err(|e| BuildError {
                stage: "rego",
                error: e.to_string(),
            })?),
        })
    }

    /// Problems with this stage's fields, as (field below the stage, problem). A `rego` stage's
    /// policy is loaded and compiled here, so `check-config` reports its errors.
    pub fn problems(&self, backends: &[&str]) -> Vec<(String, String)> {
        match self {
            StageConfig::AccessList(c) => c.problems(backends),
            StageConfig::CallBudget(c) => c.problems(),
            StageConfig::Rbac(c) => c.problems(backends),
            StageConfig::Rego(c) => c.problems(),
            StageConfig::RuleOfTwo(c) => c.problems(),
        }
    }
}
