//! `sensitive-path`: credential files and secrets a description names, weighed by whether the
//! same sentence tells the model to read or send them.

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;

use super::text::{Folded, sentence};
use super::{Hit, SENSITIVE_PATH, Severity};

/// Secret files whose mere reading is a breach: high with a read verb, not only a send verb.
const SECRET_FILES: &[&str] = &[
    "~/.ssh",
    ".ssh/",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "authorized_keys",
    ".aws/credentials",
    "aws_secret_access_key",
    ".git-credentials",
    ".netrc",
    "_netrc",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".my.cnf",
    "/etc/shadow",
    "/etc/sudoers",
    ".kube/config",
    ".docker/config.json",
    "mcp.json",
    "claude_desktop_config.json",
    ".claude.json",
    ".gnupg",
    "secring.gpg",
    "wallet.dat",
    ".bash_history",
    ".zsh_history",
    "application_default_credentials.json",
    ".config/gcloud",
    ".config/gh/hosts.yml",
    ".cargo/credentials",
    ".vault-token",
    "credentials.tfrc.json",
    ".azure/",
    "cookies.sqlite",
    "-----begin rsa private key",
    "-----begin openssh private key",
    "-----begin ec private key",
    "-----begin private key",
    "-----begin pgp private key",
];
/// Files that are sensitive but often named for honest reasons (a dotenv loader, a user lookup).
const OTHER_FILES: &[&str] = &[".env", "/etc/passwd", "known_hosts"];

/// Verbs that move data somewhere: with a sensitive path in the sentence, high.
const SEND_VERBS: &str = r"\b(send|pass|include|attach|upload|forward|copy|paste|exfiltrate|leak|post|e-?mail|share|put|append|embed|provide|transmit|submit)\b";
/// Verbs that read: with a secret file in the sentence, high.
const READ_VERBS: &str = r"\b(read|cat|open|load|dump|print|output|fetch|retrieve|grab|collect|extract|copy)\b|\bcontents? of\b";
/// A secret handed on: verb, owner, kind of secret.
const SECRET_SEND: &str = r"\b(send|forward|post|upload|transmit|e-?mail|leak|exfiltrate|share|pass|attach|append|include|paste|copy|provide|gather|collect|harvest|grab|extract|place|put|insert|embed|dump)\s+(\w+\s+){0,3}?(the user's|user's|users'|your|their|all|any|the|his|her|stored|saved|local|environment|env)\s+(\w+\s+)?(?P<what>api[ _-]?keys?|access[ _-]?tokens?|auth(entication)?[ _-]?tokens?|bearer tokens?|session (cookies?|tokens?)|(api|github|gitlab|slack|npm|pypi|oauth|refresh|id|aws|openai|anthropic|jwt|login|service account) tokens?|cookies|passwords?|passphrases?|private[ _-]?keys?|secret[ _-]?keys?|secrets|credentials|ssh keys?|seed phrases?|mnemonic|recovery (phrase|codes?))\b(?P<next>\s+\w+)?";
/// Words after a secret noun that make it a topic rather than the secret itself.
const TOPIC_WORDS: &[&str] = &[
    "reset",
    "policy",
    "policies",
    "strength",
    "hash",
    "manager",
    "field",
    "requirements",
    "rules",
    "rotation",
    "expiry",
    "prompt",
    "form",
];

#[derive(Debug)]
pub(super) struct Paths {
    files: AhoCorasick,
    /// Per pattern of `files`: a secret file (true) or an other file (false).
    secret: Vec<bool>,
    send: Regex,
    read: Regex,
    secret_send: Regex,
}

impl Paths {
    pub(super) fn new(extra: &[String]) -> Result<Paths, String> {
        let mut pats: Vec<String> = SECRET_FILES.iter().map(|s| (*s).to_owned()).collect();
        pats.extend(extra.iter().map(|p| Folded::new(p).text.trim().to_owned()));
        let mut secret = vec![true; pats.len()];
        pats.extend(OTHER_FILES.iter().map(|s| (*s).to_owned()));
        secret.resize(pats.len(), false);
        let re = |p: &str| Regex::new(p).map_err(|e| format!("scanner pattern: {e}"));
        Ok(Paths {
            files: AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&pats)
                .map_err(|e| format!("extra_sensitive_paths: {e}"))?,
            secret,
            send: re(SEND_VERBS)?,
            read: re(READ_VERBS)?,
            secret_send: re(SECRET_SEND)?,
        })
    }

    pub(super) fn check(&self, folded: &Folded<'_>, out: &mut Vec<Hit>) {
        let text = folded.text.as_str();
        for (range, secret) in self.files_in(text) {
            let window = sentence(text, &range);
            let around = [
                &text[window.start..range.start],
                &text[range.end..window.end],
            ];
            let sends = around.iter().any(|t| self.send.is_match(t));
            let reads = secret && around.iter().any(|t| self.read.is_match(t));
            let path = &text[range.clone()];
            let (severity, message) = if sends || reads {
                (
                    Severity::High,
                    format!(
                        "The text tells the model to {} `{path}`, a credential or secret file; a tool has no reason to ask for it.",
                        if sends { "send or pass on" } else { "read" }
                    ),
                )
            } else {
                (
                    Severity::Medium,
                    format!("The text names `{path}`, a file that holds credentials or secrets."),
                )
            };
            out.push(Hit {
                rule: SENSITIVE_PATH,
                severity,
                span: folded.span(range),
                message,
            });
        }
        for caps in self.secret_send.captures_iter(text) {
            let (Some(m), Some(what)) = (caps.get(0), caps.name("what")) else {
                continue;
            };
            let next = caps.name("next").map_or("", |n| n.as_str().trim());
            if TOPIC_WORDS.contains(&next) || negated(&text[..m.start()]) {
                continue;
            }
            let span = m.start()..what.end();
            out.push(Hit {
                rule: SENSITIVE_PATH,
                severity: Severity::High,
                span: folded.span(span),
                message: format!(
                    "The text asks the model to hand over {}; secrets are never a tool's input.",
                    what.as_str()
                ),
            });
        }
    }

    /// Some sensitive path or secret hand-over in folded text (for decoded payloads).
    pub(super) fn any(&self, text: &str) -> Option<&'static str> {
        if self.files_in(text).next().is_some() {
            return Some("a credential or secret file path");
        }
        self.secret_send
            .is_match(text)
            .then_some("a request to hand over a secret")
    }

    /// Sensitive names in folded text that stand on word boundaries (`.env` but not
    /// `.environment` or `process.env`), widened to the whole path token.
    fn files_in<'t>(
        &'t self,
        text: &'t str,
    ) -> impl Iterator<Item = (std::ops::Range<usize>, bool)> + 't {
        let bytes = text.as_bytes();
        let word = |b: u8| b.is_ascii_alphanumeric();
        let path_char = |b: u8| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'~' | b'-' | b'\\')
        };
        self.files.find_iter(text).filter_map(move |m| {
            let (s, e) = (m.start(), m.end());
            let first = bytes[s];
            let last = bytes[e - 1];
            if word(first) && s > 0 && word(bytes[s - 1]) {
                return None;
            }
            if first == b'.' && s > 0 && word(bytes[s - 1]) {
                return None;
            }
            if word(last) && bytes.get(e).is_some_and(|b| word(*b)) {
                return None;
            }
            let mut start = s;
            while start > 0 && path_char(bytes[start - 1]) {
                start -= 1;
            }
            let mut end = e;
            while end < bytes.len() && path_char(bytes[end]) {
                end += 1;
            }
            // A trailing sentence dot is not part of the path.
            while end > e && matches!(bytes[end - 1], b'.' | b'-') {
                end -= 1;
            }
            let secret = self
                .secret
                .get(m.pattern().as_usize())
                .copied()
                .unwrap_or(true);
            Some((start..end, secret))
        })
    }
}

/// Whether the words just before a match negate it ("never paste your password").
fn negated(before: &str) -> bool {
    let words: Vec<&str> = before.split_whitespace().rev().take(2).collect();
    words.iter().any(|w| {
        matches!(
            *w,
            "never" | "not" | "don't" | "dont" | "no" | "cannot" | "mustn't" | "shouldn't"
        )
    })
}
