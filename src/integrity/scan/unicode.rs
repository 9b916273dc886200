//! Character rules: `invisible-unicode` (zero-width and format characters, tag-character ASCII
//! smuggling, variation selectors used as data), `bidi-control` (Trojan Source reordering) and
//! `control-character` (ANSI escape sequences and other terminal controls).

use std::ops::Range;

use super::text::{Hidden, escape, hidden_char, is_control};
use super::{BIDI_CONTROL, CONTROL_CHARACTER, Hit, INVISIBLE_UNICODE, Severity};

/// Characters of smuggled text quoted in a message.
const PREVIEW_CHARS: usize = 60;
/// The longest escape sequence consumed as one (an OSC hyperlink can be long).
const MAX_ESCAPE: usize = 512;
/// Visible characters allowed between two hidden characters of one finding.
const MAX_GAP: usize = 3;

/// Runs the three character rules over one string.
pub(super) fn check(s: &str, out: &mut Vec<Hit>) {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) || b == b'\n' || b == b'\t')
    {
        return; // printable ASCII: nothing hidden (the common case, and cheap for huge strings)
    }
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let rtl = chars.iter().any(|(_, c)| is_rtl(*c));
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if c == '\u{1b}' || c == '\u{9b}' {
            let end = escape_end(&chars, i);
            out.push(control_hit(s, at..byte_end(s, &chars, end), true));
            i = end;
            continue;
        }
        if is_control(c) || (c == '\r' && chars.get(i + 1).is_none_or(|(_, n)| *n != '\n')) {
            let mut end = i + 1;
            while end < chars.len() && is_control(chars[end].1) && chars[end].1 != '\u{1b}' {
                end += 1;
            }
            out.push(control_hit(s, at..byte_end(s, &chars, end), false));
            i = end;
            continue;
        }
        let Some(kind) = flagged(&chars, i, rtl) else {
            i += 1;
            continue;
        };
        let bidi = matches!(kind, Hidden::Bidi | Hidden::BidiMark);
        let (run, end) = cluster(&chars, i, rtl, bidi);
        let span = at..byte_end(s, &chars, end);
        out.push(if bidi {
            bidi_hit(&run, span)
        } else {
            invisible_hit(&run, span)
        });
        i = end;
    }
}

/// The cluster of flagged characters of one rule (bidi or not) starting at `chars[i]`, with at
/// most [`MAX_GAP`] visible characters between two of them (`i\u{200B}g\u{200B}n…` is one
/// problem), and the index past its last flagged character.
fn cluster(chars: &[(usize, char)], i: usize, rtl: bool, bidi: bool) -> (Vec<char>, usize) {
    let same = |k: usize| {
        flagged(chars, k, rtl).is_some_and(|h| matches!(h, Hidden::Bidi | Hidden::BidiMark) == bidi)
    };
    let mut run = vec![chars[i].1];
    let mut end = i + 1;
    let mut k = i + 1;
    while k < chars.len() && k <= end + MAX_GAP {
        if same(k) {
            run.push(chars[k].1);
            end = k + 1;
        } else if is_control(chars[k].1) {
            break;
        }
        k += 1;
    }
    (run, end)
}

/// The hidden-character class of `chars[i]` when it is flagged in its context, `None` when it is
/// visible or legitimately used (emoji joiners and selectors, a leading BOM, bidi marks in
/// right-to-left text, a subdivision flag's tags).
fn flagged(chars: &[(usize, char)], i: usize, rtl: bool) -> Option<Hidden> {
    let c = chars[i].1;
    let kind = hidden_char(c)?;
    let prev = i.checked_sub(1).map(|p| chars[p].1);
    let next = chars.get(i + 1).map(|(_, n)| *n);
    let visible_non_ascii =
        |x: Option<char>| x.is_some_and(|x| !x.is_ascii() && hidden_char(x).is_none());
    let allowed = match c {
        '\u{FEFF}' => i == 0,
        '\u{200D}' => visible_non_ascii(prev) && visible_non_ascii(next),
        '\u{200C}' => visible_non_ascii(prev) || visible_non_ascii(next),
        '\u{FE00}'..='\u{FE0F}' => {
            let single = next.is_none_or(|n| hidden_char(n) != Some(Hidden::Selector));
            let keycap = prev.is_some_and(|p| p.is_ascii_digit() || p == '#' || p == '*')
                && next == Some('\u{20E3}');
            single && (visible_non_ascii(prev) || keycap)
        }
        '\u{E0100}'..='\u{E01EF}' => {
            let single = next.is_none_or(|n| hidden_char(n) != Some(Hidden::Selector));
            single && prev.is_some_and(is_ideograph)
        }
        '\u{E0000}'..='\u{E007F}' => in_flag(chars, i),
        _ => kind == Hidden::BidiMark && rtl,
    };
    (!allowed).then_some(kind)
}

fn invisible_hit(run: &[char], span: Range<usize>) -> Hit {
    let n = run.len();
    let tags: String = run
        .iter()
        .filter_map(|c| match *c as u32 {
            t @ 0xE0020..=0xE007E => char::from_u32(t - 0xE0000),
            _ => None,
        })
        .collect();
    let selectors: Vec<u8> = run
        .iter()
        .filter_map(|c| match *c as u32 {
            v @ 0xFE00..=0xFE0F => u8::try_from(v - 0xFE00).ok(),
            v @ 0xE0100..=0xE01EF => u8::try_from(v - 0xE0100 + 16).ok(),
            _ => None,
        })
        .collect();
    let soft_hyphens_only = run.iter().all(|c| *c == '\u{AD}');
    let message = if !tags.is_empty() {
        format!(
            "{n} invisible Unicode tag characters spell \"{}\": the model reads them, people see nothing (ASCII smuggling).",
            escape(&tags, PREVIEW_CHARS)
        )
    } else if selectors.len() >= 2 {
        let decoded = String::from_utf8_lossy(&selectors);
        format!(
            "{n} variation selectors in a row carry hidden data (as bytes: \"{}\"); they render as nothing.",
            escape(&decoded, PREVIEW_CHARS)
        )
    } else if soft_hyphens_only {
        format!(
            "{n} soft hyphen(s) (U+00AD) split words invisibly, which can hide a phrase from a filter."
        )
    } else {
        let first = run.first().map_or(0, |c| *c as u32);
        format!(
            "{n} invisible character(s) starting with U+{first:04X}: text a reviewer cannot see, used to hide or split instructions."
        )
    };
    Hit {
        rule: INVISIBLE_UNICODE,
        severity: if soft_hyphens_only {
            Severity::Medium
        } else {
            Severity::High
        },
        span,
        message,
    }
}

fn bidi_hit(run: &[char], span: Range<usize>) -> Hit {
    let marks_only = run
        .iter()
        .all(|c| hidden_char(*c) == Some(Hidden::BidiMark));
    let first = run.first().map_or(0, |c| *c as u32);
    Hit {
        rule: BIDI_CONTROL,
        severity: if marks_only {
            Severity::Medium
        } else {
            Severity::High
        },
        span,
        message: if marks_only {
            format!(
                "A bidirectional mark (U+{first:04X}) in left-to-right text can reorder what is displayed."
            )
        } else {
            format!(
                "{} bidirectional control character(s) starting with U+{first:04X} make the displayed text differ from what the model reads (Trojan Source).",
                run.len()
            )
        },
    }
}

fn control_hit(s: &str, span: Range<usize>, ansi: bool) -> Hit {
    let shown = escape(s.get(span.clone()).unwrap_or(""), 24);
    Hit {
        rule: CONTROL_CHARACTER,
        severity: Severity::High,
        span,
        message: if ansi {
            format!(
                "An ANSI escape sequence ({shown}) can hide, recolour or overwrite text shown in a terminal."
            )
        } else {
            format!(
                "Control character(s) ({shown}) can erase or overwrite text shown in a terminal or log."
            )
        },
    }
}

/// Index past the escape sequence starting at `chars[i]` (ESC or CSI): CSI `ESC [ … final`,
/// OSC `ESC ] … BEL|ESC \`, or ESC and one character.
fn escape_end(chars: &[(usize, char)], i: usize) -> usize {
    let limit = (i + MAX_ESCAPE).min(chars.len());
    let at = |k: usize| chars.get(k).map(|(_, c)| *c);
    let (csi, mut k) = match (chars[i].1, at(i + 1)) {
        ('\u{9b}', _) => (true, i + 1),
        (_, Some('[')) => (true, i + 2),
        (_, Some(']')) => {
            let mut k = i + 2;
            while k < limit {
                match at(k) {
                    Some('\u{7}') => return k + 1,
                    Some('\u{1b}') if at(k + 1) == Some('\\') => return k + 2,
                    _ => k += 1,
                }
            }
            return k;
        }
        (_, Some(_)) => return i + 2,
        (_, None) => return i + 1,
    };
    if csi {
        while k < limit && at(k).is_some_and(|c| ('\u{20}'..='\u{3f}').contains(&c)) {
            k += 1;
        }
        if at(k).is_some_and(|c| ('\u{40}'..='\u{7e}').contains(&c)) {
            k += 1;
        }
    }
    k
}

/// Byte offset of `chars[end]` (or the end of `s`).
fn byte_end(s: &str, chars: &[(usize, char)], end: usize) -> usize {
    chars.get(end).map_or(s.len(), |(b, _)| *b)
}

/// Whether the tag run around `chars[i]` belongs to a subdivision flag (🏴 + tags + U+E007F).
fn in_flag(chars: &[(usize, char)], i: usize) -> bool {
    let is_tag = |k: usize| {
        chars
            .get(k)
            .is_some_and(|(_, c)| ('\u{E0000}'..='\u{E007F}').contains(c))
    };
    let mut start = i;
    while start > 0 && is_tag(start - 1) {
        start -= 1;
    }
    let mut end = i;
    while is_tag(end + 1) {
        end += 1;
    }
    let flag = start > 0 && chars[start - 1].1 == '\u{1F3F4}';
    flag && chars[end].1 == '\u{E007F}' && end - start <= 7
}

fn is_ideograph(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3FFFF)
}

fn is_rtl(c: char) -> bool {
    matches!(c as u32, 0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFE | 0x10800..=0x10FFF | 0x1E800..=0x1EFFF)
}
