//! The scanner's operator settings (`ScanConfig`) and their validation.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{RULES, Severity};

/// Shortest extra phrase accepted: anything shorter would match ordinary prose.
const MIN_PHRASE_CHARS: usize = 4;
/// Longest extra phrase or sensitive path accepted.
const MAX_PHRASE_CHARS: usize = 200;
/// Bounds of `min_blob_len`.
const BLOB_LEN_RANGE: std::ops::RangeInclusive<usize> = 16..=4096;

/// Settings of the poisoning scanner. Every field is optional; the defaults scan with every rule.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// Scan at all (default true). When false, [`super::Scanner::scan`] finds nothing.
    pub enabled: bool,
    /// Rule ids to switch off, e.g. `encoded-blob` for a backend that ships key material.
    pub disabled_rules: Vec<String>,
    /// More phrases for `hidden-instruction`, matched case-insensitively on folded text.
    pub extra_phrases: Vec<String>,
    /// Hosts a URL may point at without an `exfiltration-url` finding (`github.com` also allows
    /// its subdomains; `*.example.com` allows only subdomains).
    pub allowed_hosts: Vec<String>,
    /// More file names or paths for `sensitive-path` (e.g. `~/.corp/token`).
    pub extra_sensitive_paths: Vec<String>,
    /// Severity overrides per rule id, e.g. `{encoded-blob: high}`.
    pub severity: BTreeMap<String, Severity>,
    /// Shortest base64 or hex run reported by `encoded-blob` (default 64).
    pub min_blob_len: usize,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            enabled: true,
            disabled_rules: Vec::new(),
            extra_phrases: Vec::new(),
            allowed_hosts: Vec::new(),
            extra_sensitive_paths: Vec::new(),
            severity: BTreeMap::new(),
            min_blob_len: 64,
        }
    }
}

impl ScanConfig {
    /// Every invalid value as `(field, problem)`; empty when the config is usable.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |field: &str, problem: String| out.push((field.to_owned(), problem));
        for rule in &self.disabled_rules {
            if !RULES.contains(&rule.as_str()) {
                bad("disabled_rules", unknown_rule(rule));
            }
        }
        for rule in self.severity.keys() {
            if !RULES.contains(&rule.as_str()) {
                bad("severity", unknown_rule(rule));
            }
        }
        for phrase in &self.extra_phrases {
            let visible = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
            let n = visible.chars().count();
            if n < MIN_PHRASE_CHARS {
                bad(
                    "extra_phrases",
                    format!(
                        "`{phrase}` is shorter than {MIN_PHRASE_CHARS} characters and would match ordinary text"
                    ),
                );
            } else if n > MAX_PHRASE_CHARS {
                bad(
                    "extra_phrases",
                    format!("a phrase is longer than {MAX_PHRASE_CHARS} characters"),
                );
            }
        }
        for path in &self.extra_sensitive_paths {
            let n = path.trim().chars().count();
            if !(3..=MAX_PHRASE_CHARS).contains(&n) || path.trim() != path {
                bad(
                    "extra_sensitive_paths",
                    format!(
                        "`{path}` must be 3 to {MAX_PHRASE_CHARS} characters without surrounding spaces"
                    ),
                );
            }
        }
        for host in &self.allowed_hosts {
            if let Err(why) = check_host(host) {
                bad("allowed_hosts", format!("`{host}` {why}"));
            }
        }
        if !BLOB_LEN_RANGE.contains(&self.min_blob_len) {
            bad(
                "min_blob_len",
                format!(
                    "{} is outside {}..={}",
                    self.min_blob_len,
                    BLOB_LEN_RANGE.start(),
                    BLOB_LEN_RANGE.end()
                ),
            );
        }
        out
    }
}

fn unknown_rule(rule: &str) -> String {
    format!("unknown rule `{rule}` (known: {})", RULES.join(", "))
}

/// A host for `allowed_hosts`: a DNS name (optionally `*.`-prefixed) or an IP literal, no scheme,
/// port or path.
fn check_host(host: &str) -> Result<(), &'static str> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.is_empty() {
        return Err("is empty");
    }
    if name.contains("://") || name.contains('/') {
        return Err("must be a host name, without scheme or path");
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err("is not a valid host name (letters, digits, `-` and `.`; no port)");
    }
    Ok(())
}
