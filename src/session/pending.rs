//! Id maps of one session: gateway→backend requests in flight, and backend→client requests.

use rustc_hash::FxHashMap as HashMap;

use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::protocol::RequestId;

/// A client request forwarded to a backend, keyed by its upstream id.
#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) client_id: RequestId,
    pub(super) stream: u64,
    pub(super) backend: usize,
    pub(super) method: String,
    /// The client's own progress token (the backend sees the upstream id instead).
    pub(super) progress_token: Option<Value>,
    pub(super) deadline: Instant,
    /// Holds one of the session's in-flight slots until the answer.
    pub(super) permit: Option<OwnedSemaphorePermit>,
    /// The call's telemetry (spans, metrics, audit record), finished with its answer.
    pub(super) call: Option<Box<crate::telemetry::CallEvent>>,
}

/// A backend's request to the client (sampling, elicitation, roots), keyed by the gateway's id.
#[derive(Debug)]
pub(super) struct ServerRequest {
    pub(super) backend: usize,
    pub(super) original_id: RequestId,
    pub(super) stream: u64,
}

/// Both maps, with the indices that cancellation needs.
#[derive(Debug, Default)]
pub(super) struct Pending {
    pub(super) in_flight: HashMap<i64, InFlight>,
    by_client: HashMap<RequestId, i64>,
    pub(super) server_requests: HashMap<i64, ServerRequest>,
    next_upstream: i64,
    next_server: i64,
}

impl Pending {
    /// Registers a forwarded request; returns its upstream id (never ≤ 0: those are the child's own).
    /// Gives the entry back when the client id is already in flight.
    pub(super) fn insert(&mut self, entry: InFlight) -> Result<i64, Box<InFlight>> {
        if self.by_client.contains_key(&entry.client_id) {
            return Err(Box::new(entry));
        }
        self.next_upstream += 1;
        let id = self.next_upstream;
        self.by_client.insert(entry.client_id.clone(), id);
        self.in_flight.insert(id, entry);
        Ok(id)
    }

    pub(super) fn get_mut(&mut self, upstream: i64) -> Option<&mut InFlight> {
        self.in_flight.get_mut(&upstream)
    }

    pub(super) fn take(&mut self, upstream: i64) -> Option<InFlight> {
        let e = self.in_flight.remove(&upstream)?;
        self.by_client.remove(&e.client_id);
        Some(e)
    }

    pub(super) fn by_client(&self, id: &RequestId) -> Option<i64> {
        self.by_client.get(id).copied()
    }

    pub(super) fn get(&self, upstream: i64) -> Option<&InFlight> {
        self.in_flight.get(&upstream)
    }

    /// Removes and returns every request in flight to `backend`.
    pub(super) fn drain_backend(&mut self, backend: usize) -> Vec<InFlight> {
        let ids: Vec<i64> = self
            .in_flight
            .iter()
            .filter(|(_, e)| e.backend == backend)
            .map(|(k, _)| *k)
            .collect();
        ids.into_iter().filter_map(|id| self.take(id)).collect()
    }

    /// Removes and returns the requests whose deadline has passed.
    pub(super) fn drain_expired(&mut self, now: Instant) -> Vec<(i64, InFlight)> {
        let ids: Vec<i64> = self
            .in_flight
            .iter()
            .filter(|(_, e)| e.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.take(id).map(|e| (id, e)))
            .collect()
    }

    /// The only request in flight to `backend`, if there is exactly one.
    pub(super) fn sole_for_backend(&self, backend: usize) -> Option<&InFlight> {
        let mut it = self.in_flight.values().filter(|e| e.backend == backend);
        match (it.next(), it.next()) {
            (Some(e), None) => Some(e),
            _ => None,
        }
    }

    pub(super) fn add_server_request(&mut self, req: ServerRequest) -> i64 {
        self.next_server += 1;
        self.server_requests.insert(self.next_server, req);
        self.next_server
    }

    pub(super) fn find_server_request(&self, backend: usize, original: &RequestId) -> Option<i64> {
        self.server_requests
            .iter()
            .find(|(_, r)| r.backend == backend && &r.original_id == original)
            .map(|(k, _)| *k)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(client: i64, backend: usize) -> InFlight {
        InFlight {
            client_id: RequestId::Num(client),
            stream: 1,
            backend,
            method: "tools/call".into(),
            progress_token: None,
            deadline: Instant::now(),
            permit: None,
            call: None,
        }
    }

    #[tokio::test]
    async fn duplicate_client_ids_are_refused_and_indices_stay_consistent() {
        let mut p = Pending::default();
        let a = p.insert(entry(1, 0)).unwrap();
        assert!(a > 0);
        assert!(
            p.insert(entry(1, 1)).is_err(),
            "a client id in flight twice is ambiguous"
        );
        let b = p.insert(entry(2, 1)).unwrap();
        assert_eq!(p.by_client(&RequestId::Num(2)), Some(b));
        assert_eq!(
            p.sole_for_backend(1).map(|e| e.client_id.clone()),
            Some(RequestId::Num(2))
        );
        assert_eq!(p.drain_backend(0).len(), 1);
        assert_eq!(p.by_client(&RequestId::Num(1)), None);
        assert!(p.take(b).is_some() && p.is_empty());
    }
}
