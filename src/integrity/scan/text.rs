//! Text plumbing for the scanner's rules: a folded view of a string that maps back to its bytes,
//! sentence windows, the hidden-character table and excerpt escaping.

use std::ops::Range;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Characters of context shown on each side of a match in an excerpt.
const CONTEXT_CHARS: usize = 8;
/// Room for those characters once escaped (one `\u{E0049}` fits).
const CONTEXT_ROOM: usize = 12;
/// Room for the match itself in an excerpt before it is cut with `…` (so an excerpt stays
/// within about 80 characters).
const MATCH_CHARS: usize = 56;
/// A sentence window never reaches further than this from the match, in folded bytes.
const SENTENCE_REACH: usize = 300;

/// A lower-cased, NFKD-folded (marks dropped), whitespace-collapsed (line breaks kept) copy of a string with invisible characters
/// dropped, control characters read as spaces, and lookalike letters (Cyrillic `а`, full-width `ａ`, mathematical `𝐚`)
/// replaced by their ASCII prototype, so phrase rules are not defeated by case, spacing,
/// zero-width padding or homoglyphs. Every folded byte remembers the original character it
/// came from.
pub(super) struct Folded<'a> {
    orig: &'a str,
    pub(super) text: String,
    /// For each byte of `text`, the byte offset in `orig` of the character it came from.
    src: Vec<usize>,
}

fn push(text: &mut String, src: &mut Vec<usize>, c: char, at: usize) {
    let before = text.len();
    text.push(c);
    src.extend(std::iter::repeat_n(at, text.len() - before));
}

/// Collapses a run of blanks into one space, or one line break when the run holds one (sentence
/// windows end at line breaks).
fn space(text: &mut String, src: &mut Vec<usize>, at: usize, line_break: bool) {
    if text.ends_with('\n') {
        return;
    }
    if text.ends_with(' ') {
        if line_break {
            text.pop();
            text.push('\n');
        }
        return;
    }
    push(text, src, if line_break { '\n' } else { ' ' }, at);
}

fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{B}' | '\u{C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Characters that render as an empty cell (Hangul fillers, the braille blank): word separators.
fn is_blank(c: char) -> bool {
    matches!(
        c,
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}'
    )
}

impl<'a> Folded<'a> {
    pub(super) fn new(orig: &'a str) -> Folded<'a> {
        let mut text = String::with_capacity(orig.len());
        let mut src = Vec::with_capacity(orig.len());
        for (at, c) in orig.char_indices() {
            if c.is_whitespace() || c.is_control() || is_blank(c) {
                // Control characters and blank fillers separate words on screen, so here too.
                space(&mut text, &mut src, at, is_line_break(c));
            } else if c.is_ascii() {
                push(&mut text, &mut src, c.to_ascii_lowercase(), at);
            } else if hidden_char(c).is_none() {
                // Compatibility decomposition without marks: `ｉ`, `𝐢`, `í` and `i\u{307}` → `i`.
                for d in std::iter::once(c).nfkd().filter(|d| !is_combining_mark(*d)) {
                    for e in ascii_prototype(d) {
                        for l in e.to_lowercase() {
                            if l.is_whitespace() {
                                space(&mut text, &mut src, at, false);
                            } else {
                                push(&mut text, &mut src, l, at);
                            }
                        }
                    }
                }
            }
        }
        Folded { orig, text, src }
    }

    /// The original byte range behind a folded byte range (whole characters).
    pub(super) fn span(&self, r: Range<usize>) -> Range<usize> {
        let Some(&start) = self.src.get(r.start) else {
            return self.orig.len()..self.orig.len();
        };
        let last = self
            .src
            .get(r.end.saturating_sub(1).max(r.start))
            .copied()
            .unwrap_or(start);
        let end = last + self.orig[last..].chars().next().map_or(0, char::len_utf8);
        start..end
    }
}

/// The folded replacement of one non-ASCII character: its UTS #39 confusable prototype when that
/// is plain ASCII (Cyrillic `о` → `o`, `’` → `'`), else the character itself.
pub(super) fn ascii_prototype(c: char) -> Vec<char> {
    if c.is_ascii() {
        return vec![c];
    }
    let mut buf = [0u8; 4];
    let proto: Vec<char> = unicode_security::skeleton(c.encode_utf8(&mut buf)).collect();
    if !proto.is_empty() && proto.iter().all(|p| p.is_ascii() && !p.is_ascii_control()) {
        proto
    } else {
        vec![c]
    }
}

/// The range of the sentence around `r` in folded text: from the last `.`/`!`/`?` followed by a
/// space (or a line break) before it to the next one after it, at most [`SENTENCE_REACH`] bytes
/// each way. Dots inside paths and URLs (`mcp.json`, `~/.ssh`) do not end a sentence.
pub(super) fn sentence(text: &str, r: &Range<usize>) -> Range<usize> {
    let bytes = text.as_bytes();
    let floor = r.start.saturating_sub(SENTENCE_REACH);
    let mut start = r.start;
    while start > floor {
        let b = bytes[start - 1];
        if b == b'\n' || (start >= 2 && b == b' ' && matches!(bytes[start - 2], b'.' | b'!' | b'?'))
        {
            break;
        }
        start -= 1;
    }
    let ceil = (r.end + SENTENCE_REACH).min(bytes.len());
    let mut end = r.end.min(bytes.len());
    while end < ceil {
        let b = bytes[end];
        if b == b'\n'
            || (matches!(b, b'.' | b'!' | b'?') && bytes.get(end + 1).is_none_or(|n| *n == b' '))
        {
            break;
        }
        end += 1;
    }
    // Keep the window on character boundaries (folded text can hold non-ASCII letters).
    while start < r.start && !text.is_char_boundary(start) {
        start += 1;
    }
    while end > r.end && !text.is_char_boundary(end) {
        end -= 1;
    }
    start..end
}

/// Domains reserved for documentation and tests (RFC 2606, RFC 6761): an address there is an
/// example, not a destination.
pub(super) fn reserved_domain(domain: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    ["example.com", "example.net", "example.org"]
        .iter()
        .any(|r| d == *r || d.ends_with(&format!(".{r}")))
        || [".example", ".test", ".invalid", ".localhost"]
            .iter()
            .any(|t| d.ends_with(t))
}

/// How a hidden character is classified by the scanner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hidden {
    /// Zero-width characters, fillers and other format (Cf) characters.
    Invisible,
    /// Unicode tag characters U+E0000–U+E007F (ASCII smuggling).
    Tag,
    /// Variation selectors (data smuggling when not attached to an emoji or ideograph).
    Selector,
    /// Bidirectional embeddings, overrides and isolates (Trojan Source).
    Bidi,
    /// Bidirectional marks (LRM, RLM, ALM): legitimate in right-to-left text.
    BidiMark,
}

/// Classifies characters that render as nothing (or reorder what is rendered).
pub(super) fn hidden_char(c: char) -> Option<Hidden> {
    let u = c as u32;
    Some(match u {
        0x202A..=0x202E | 0x2066..=0x2069 => Hidden::Bidi,
        0x200E | 0x200F | 0x061C => Hidden::BidiMark,
        0xE0000..=0xE007F => Hidden::Tag,
        0xFE00..=0xFE0F | 0xE0100..=0xE01EF => Hidden::Selector,
        0x00AD
        | 0x034F
        | 0x0600..=0x0605
        | 0x06DD
        | 0x070F
        | 0x0890..=0x0891
        | 0x08E2
        | 0x115F
        | 0x1160
        | 0x17B4
        | 0x17B5
        | 0x180B..=0x180F
        | 0x200B..=0x200D
        | 0x2060..=0x2064
        | 0x206A..=0x206F
        | 0x3164
        | 0xFEFF
        | 0xFFA0
        | 0xFFF9..=0xFFFB
        | 0x110BD
        | 0x110CD
        | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A => Hidden::Invisible,
        _ => return None,
    })
}

/// C0 and C1 control characters other than tab, line feed and carriage return, and DEL.
pub(super) fn is_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Writes a string for an excerpt or a message: hidden, bidi and control characters (and line
/// breaks) as `\u{XXXX}`, so it can be shown anywhere without hiding or reordering text. The
/// result is at most `max_chars` characters, ending in `…` when cut.
pub(super) fn escape(s: &str, max_chars: usize) -> String {
    let (pieces, cut) = escaped(s.chars(), max_chars);
    let mut out = pieces.concat();
    if cut {
        out.push('…');
    }
    out
}

/// The escaped pieces of `chars` that fit in `max_chars` (leaving room for `…` when cut), and
/// whether some were cut. Pieces are whole: an escape is never split.
fn escaped(chars: impl Iterator<Item = char>, max_chars: usize) -> (Vec<String>, bool) {
    let mut pieces = Vec::new();
    let mut n = 0;
    for c in chars {
        let piece = if hidden_char(c).is_some() || c.is_control() {
            format!("\\u{{{:X}}}", c as u32)
        } else {
            c.to_string()
        };
        n += piece.chars().count();
        pieces.push(piece);
        if n > max_chars {
            while n + 1 > max_chars {
                let Some(p) = pieces.pop() else { break };
                n -= p.chars().count();
            }
            return (pieces, true);
        }
    }
    (pieces, false)
}

/// The excerpt of a finding: the escaped match (cut to [`MATCH_CHARS`]) with up to
/// [`CONTEXT_CHARS`] characters of context each side: about 80 characters at most.
pub(super) fn excerpt(s: &str, span: &Range<usize>) -> String {
    let (Some(before), Some(matched), Some(after)) =
        (s.get(..span.start), s.get(span.clone()), s.get(span.end..))
    else {
        return String::new();
    };
    let (mut pre, pre_cut) = escaped(before.chars().rev().take(CONTEXT_CHARS), CONTEXT_ROOM);
    pre.reverse();
    let (post, post_cut) = escaped(after.chars().take(CONTEXT_CHARS), CONTEXT_ROOM);
    let mut out = String::new();
    if pre_cut || before.chars().rev().nth(CONTEXT_CHARS).is_some() {
        out.push('…');
    }
    out.push_str(&pre.concat());
    out.push_str(&escape(matched, MATCH_CHARS));
    out.push_str(&post.concat());
    if post_cut || after.chars().nth(CONTEXT_CHARS).is_some() {
        out.push('…');
    }
    out
}
