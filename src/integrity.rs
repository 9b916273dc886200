//! Tool integrity and content guardrails: pinning, quarantine, the poisoning scanner, PII
//! redaction.
//!
//! At discovery every definition is hashed (`hash`), held to the pinned manifest (`manifest`) or
//! to what was first seen, and scanned; `check::Checker` turns that into each definition's
//! `policy::Facts` (hash and verdict), which the catalog carries to the pipeline, whose
//! quarantine stage hides and refuses what was quarantined. Nothing is re-hashed per call.

pub mod check;
pub mod diff;
pub mod hash;
pub mod manifest;
pub mod pin;
pub mod report;
pub mod scan;

pub use check::{Checker, IntegrityEvent, QuarantineEntry};
pub use hash::DefKind;
pub use manifest::{Manifest, Pin};
