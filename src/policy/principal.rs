//! Who is asking: the principal fixed when a session is created (anonymous until authentication
//! exists), carried by every session and every decision.

use std::sync::{Arc, LazyLock};

/// An authenticated caller, or the anonymous one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Principal {
    /// `None`: anonymous.
    pub subject: Option<Arc<str>>,
    pub roles: Vec<Arc<str>>,
}

static ANONYMOUS: LazyLock<Arc<Principal>> = LazyLock::new(|| Arc::new(Principal::default()));

impl Principal {
    /// The shared anonymous principal (no allocation per session).
    pub fn anonymous() -> Arc<Principal> {
        ANONYMOUS.clone()
    }

    /// The key sessions and limits are kept under: the subject, or `anonymous`.
    pub fn key(&self) -> &str {
        self.subject.as_deref().unwrap_or("anonymous")
    }
}
