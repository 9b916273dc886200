//! The integrity endpoints of the admin listener: the quarantined definitions with their diffs
//! and scanner findings, and an administrator's review — approve (re-pin) or keep blocked.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::{AdminState, refuse};
use crate::integrity::DefKind;
use crate::integrity::check::{DefKey, ReviewError};
use crate::policy::Principal;

/// `GET /admin/quarantine`: every quarantined definition (reason, pinned and current hash, the
/// changes by JSON pointer, scanner findings) and each backend's pinning mode.
pub(super) async fn list(State(st): State<Arc<AdminState>>) -> Response {
    let Some(checker) = st.shared.catalog.integrity() else {
        return Json(json!({"quarantined": [], "backends": {}})).into_response();
    };
    let modes: serde_json::Map<String, serde_json::Value> = st
        .shared
        .catalog
        .backends()
        .iter()
        .map(|b| (b.name.clone(), checker.mode(&b.name).as_str().into()))
        .collect();
    Json(json!({
        "quarantined": checker.quarantined(),
        "backends": modes,
        "manifest": checker.manifest_path().map(|p| p.display().to_string()),
    }))
    .into_response()
}

/// A review's target: `{"backend", "kind": "tool"|"prompt"|"resource template", "name"}`, and
/// for an approval the `hash` the reviewer saw (a definition that changed again is refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Review {
    backend: String,
    #[serde(default = "tool")]
    kind: String,
    name: String,
    hash: Option<String>,
}

fn tool() -> String {
    "tool".into()
}

impl Review {
    /// The definition it names; `None`: an unknown kind.
    fn key(&self) -> Option<DefKey> {
        let kind = DefKind::ALL
            .into_iter()
            .find(|k| k.as_str() == self.kind || k.section() == self.kind)?;
        Some(DefKey {
            backend: self.backend.clone(),
            kind,
            name: self.name.clone(),
        })
    }
}

fn bad_kind() -> Response {
    refuse(
        StatusCode::BAD_REQUEST,
        "kind must be tool, prompt or resource template",
    )
}

fn review_error(e: &ReviewError) -> Response {
    let status = match e {
        ReviewError::NotQuarantined(_) => StatusCode::NOT_FOUND,
        ReviewError::HashMismatch { .. } => StatusCode::CONFLICT,
        ReviewError::Manifest(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    refuse(status, e.to_string())
}

/// `POST /admin/quarantine/approve`: pins the definition as it is now; sessions see it again
/// (`list_changed`).
pub(super) async fn approve(
    State(st): State<Arc<AdminState>>,
    Extension(who): Extension<Arc<Principal>>,
    Json(r): Json<Review>,
) -> Response {
    let Some(key) = r.key() else {
        return bad_kind();
    };
    let Some(hash) = r.hash.as_deref() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "hash (the definition's current hash, as listed) is required to approve",
        );
    };
    let Some(checker) = st.shared.catalog.integrity() else {
        return refuse(StatusCode::NOT_FOUND, "integrity checking is off");
    };
    if let Err(e) = checker.approve(&key, hash, who.key()) {
        return review_error(&e);
    }
    if let Some(i) = st.shared.catalog.backend_index(&key.backend) {
        st.shared.catalog.reassess(i);
    }
    Json(json!({"approved": key, "hash": hash})).into_response()
}

/// `POST /admin/quarantine/block`: records that it was reviewed and stays blocked.
pub(super) async fn block(
    State(st): State<Arc<AdminState>>,
    Extension(who): Extension<Arc<Principal>>,
    Json(r): Json<Review>,
) -> Response {
    let Some(key) = r.key() else {
        return bad_kind();
    };
    let Some(checker) = st.shared.catalog.integrity() else {
        return refuse(StatusCode::NOT_FOUND, "integrity checking is off");
    };
    match checker.block(&key, who.key()) {
        Ok(()) => Json(json!({"blocked": key})).into_response(),
        Err(e) => review_error(&e),
    }
}
