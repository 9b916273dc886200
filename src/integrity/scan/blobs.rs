//! `encoded-blob`: long base64 or hex runs, decoded when possible; a run that decodes to
//! instructions is high, one that decodes to other text or bytes medium, and a labelled hash or
//! an embedded image low.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use regex::Regex;

use super::phrases::Phrases;
use super::text::escape;
use super::{ENCODED_BLOB, Field, Hit, Severity};

/// Hex digest lengths (MD5, SHA-1, SHA-256, SHA-512).
const DIGEST_LENS: &[usize] = &[32, 40, 64, 128];
/// A label before a digest, or a key that holds one.
const DIGEST_LABEL: &str = r"(?i)(sha|md5|hash|digest|checksum|commit|integrity|fingerprint)";
/// Bytes before a run searched for a digest label or a `data:image/…;base64,` prefix.
const LOOK_BACK: usize = 40;
/// Characters of decoded text quoted in a message.
const PREVIEW_CHARS: usize = 60;

#[derive(Debug)]
pub(super) struct Blobs {
    min: usize,
    run: Regex,
    label: Regex,
}

impl Blobs {
    pub(super) fn new(min: usize) -> Result<Blobs, String> {
        let re = |p: &str| Regex::new(p).map_err(|e| format!("scanner pattern: {e}"));
        Ok(Blobs {
            min,
            run: re(r"[A-Za-z0-9+/_-]+={0,2}")?,
            label: re(DIGEST_LABEL)?,
        })
    }

    pub(super) fn check(&self, field: &Field<'_>, phrases: &Phrases, out: &mut Vec<Hit>) {
        for m in self.run.find_iter(field.text) {
            let body = m.as_str().trim_end_matches('=');
            if body.len() < self.min {
                continue;
            }
            let before = tail(&field.text[..m.start()], LOOK_BACK);
            if let Some((severity, message)) = self.weigh(field, body, before, phrases) {
                out.push(Hit {
                    rule: ENCODED_BLOB,
                    severity,
                    span: m.range(),
                    message,
                });
            }
        }
    }

    /// Severity and message for one run, `None` when it is not a blob (an identifier, a path).
    fn weigh(
        &self,
        field: &Field<'_>,
        body: &str,
        before: &str,
        phrases: &Phrases,
    ) -> Option<(Severity, String)> {
        let n = body.len();
        let hex = body.bytes().all(|b| b.is_ascii_hexdigit());
        let bytes = if hex {
            let decoded = n
                .is_multiple_of(2)
                .then(|| hex::decode(body).ok())
                .flatten();
            let binary = decoded.as_deref().is_none_or(|b| printable(b).is_none());
            // A digest: labelled as one, or digest-sized random bytes (instructions in hex
            // decode to text).
            let labelled = self.label.is_match(before) || self.label.is_match(&field.key);
            if DIGEST_LENS.contains(&n) && (binary || labelled) {
                return Some((
                    Severity::Low,
                    format!("The text holds a {n}-digit hex digest."),
                ));
            }
            decoded
        } else {
            let has = |f: fn(&u8) -> bool| body.as_bytes().iter().any(f);
            if !(has(u8::is_ascii_uppercase)
                && has(u8::is_ascii_lowercase)
                && has(u8::is_ascii_digit))
            {
                return None; // words and identifiers, not base64
            }
            let slashes = body.bytes().filter(|b| *b == b'/').count();
            if slashes >= 3 && slashes * 16 > n {
                return None; // a path
            }
            decode_base64(body)
        };
        let kind = if hex { "hex" } else { "base64" };
        let image = before
            .to_ascii_lowercase()
            .rsplit_once("data:")
            .is_some_and(|(_, t)| t.starts_with("image/") && t.ends_with(";base64,"));
        Some(match bytes.as_deref().and_then(printable) {
            Some(text) => {
                let quoted = escape(&text, PREVIEW_CHARS);
                match phrases.any_instruction(&text) {
                    Some(what) => (
                        Severity::High,
                        format!("A {kind} run of {n} characters decodes to {what}: \"{quoted}\"."),
                    ),
                    None => (
                        Severity::Medium,
                        format!(
                            "A {kind} run of {n} characters decodes to hidden text: \"{quoted}\"."
                        ),
                    ),
                }
            }
            None if image => (
                Severity::Low,
                format!("The text embeds a {n}-character base64 image."),
            ),
            None => (
                Severity::Medium,
                format!("A {kind} run of {n} characters hides data a reviewer cannot read."),
            ),
        })
    }
}

/// The last `n` bytes of `s` (or fewer, on a character boundary).
fn tail(s: &str, n: usize) -> &str {
    let mut from = s.len().saturating_sub(n);
    while !s.is_char_boundary(from) {
        from += 1;
    }
    &s[from..]
}

/// Decodes standard or URL-safe base64, padded or not.
fn decode_base64(body: &str) -> Option<Vec<u8>> {
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let url_safe = body.contains(['-', '_']);
    if url_safe && body.contains(['+', '/']) {
        return None;
    }
    let engine = GeneralPurpose::new(
        if url_safe {
            &alphabet::URL_SAFE
        } else {
            &alphabet::STANDARD
        },
        config,
    );
    // A run cut mid-quantum (length 4n+1) cannot be base64; drop the stray character.
    let body = if body.len() % 4 == 1 {
        &body[..body.len() - 1]
    } else {
        body
    };
    engine.decode(body).ok()
}

/// The bytes as text when they are UTF-8 and at least 90% printable.
fn printable(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let total = text.chars().count();
    let good = text
        .chars()
        .filter(|c| !c.is_control() || c.is_whitespace())
        .count();
    (total > 0 && good * 10 >= total * 9).then(|| text.to_owned())
}
