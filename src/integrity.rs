//! Tool integrity and content guardrails: pinning, quarantine, the poisoning scanner, PII redaction.

pub mod scan;
