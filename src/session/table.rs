//! The table of live sessions (id → handle) and the admission count that bounds it; shared by the
//! registry, which adds and ends sessions, and the supervisor, which forgets the ones that stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;

use super::SessionHandle;

#[derive(Debug, Default)]
pub(super) struct SessionTable {
    pub(super) sessions: DashMap<Arc<str>, SessionHandle>,
    /// Sessions admitted (reserved before the actor spawns, so concurrent creates cannot overshoot).
    admitted: AtomicUsize,
}

impl SessionTable {
    /// Reserves a place under `max`; false when full.
    pub(super) fn admit(&self, max: usize) -> bool {
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back a reservation whose session never started.
    pub(super) fn unadmit(&self) {
        self.admitted.fetch_sub(1, Ordering::AcqRel);
    }

    /// Removes a session; true when it was there (its place is given back).
    pub(super) fn remove(&self, id: &str) -> Option<SessionHandle> {
        let (_, h) = self.sessions.remove(id)?;
        self.unadmit();
        Some(h)
    }

    /// Empties the table (shutdown) and returns what was in it.
    pub(super) fn drain(&self) -> Vec<SessionHandle> {
        let all: Vec<SessionHandle> = self.sessions.iter().map(|e| e.value().clone()).collect();
        self.sessions.clear();
        self.admitted.store(0, Ordering::Release);
        all
    }
}
