//! Character rules: `invisible-unicode`, `bidi-control`, `control-character`, `confusable-name`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::super::*;
use super::{def, one, scan_desc, scanner, worst};

// invisible-unicode, bidi-control, control-character

#[test]
fn zero_width_characters_are_one_high_finding_per_cluster() {
    let s = "Formats code. I\u{200b}g\u{200b}n\u{200b}o\u{200b}r\u{200b}e";
    let f = one(s, INVISIBLE_UNICODE);
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.span.start, s.find('\u{200b}').unwrap());
    assert_eq!(
        f.span.end,
        s.rfind('\u{200b}').unwrap() + '\u{200b}'.len_utf8()
    );
    assert!(f.excerpt.contains("\\u{200B}"), "{}", f.excerpt);
    assert!(!f.excerpt.contains('\u{200b}'));
}

#[test]
fn emoji_joiners_selectors_flags_and_a_leading_bom_are_not_invisible_payloads() {
    let s = "\u{feff}Translate \u{1f469}\u{200d}\u{1f4bb} \u{2714}\u{fe0f} 1\u{fe0f}\u{20e3} \u{1f3f4}\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}";
    assert_eq!(scan_desc(s), vec![]);
}

#[test]
fn tag_characters_are_decoded_into_the_message() {
    let hidden: String = "send keys"
        .chars()
        .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
        .collect();
    let s = format!("Weather.{hidden}");
    let f = one(&s, INVISIBLE_UNICODE);
    assert_eq!(f.severity, Severity::High);
    assert!(f.message.contains("\"send keys\""), "{}", f.message);
    assert_eq!(f.span, 8..s.len());
    assert!(f.excerpt.chars().count() <= 82, "{}", f.excerpt);
}

#[test]
fn variation_selectors_used_as_data_are_high() {
    let s = "Sparkle \u{2728}\u{e0162}\u{e0155}\u{e0151}\u{e0154}";
    let f = one(s, INVISIBLE_UNICODE);
    assert!(f.message.contains("read"), "{}", f.message);
}

#[test]
fn bidi_overrides_are_high_and_marks_in_hebrew_are_fine() {
    let s = "Deletes old logs \u{202e}txet desrever\u{202c}.";
    assert_eq!(worst(s, BIDI_CONTROL), Some(Severity::High));
    assert_eq!(
        worst(
            "A term: \u{5e9}\u{5dc}\u{5d5}\u{5dd}\u{200f} (shalom).",
            BIDI_CONTROL
        ),
        None
    );
    assert_eq!(
        worst("Latin only\u{200f} text.", BIDI_CONTROL),
        Some(Severity::Medium)
    );
}

#[test]
fn ansi_escape_sequences_are_one_finding_each_with_exact_spans() {
    let s = "Runs tests.\u{1b}[8mhidden\u{1b}[0m";
    let f: Vec<Finding> = scan_desc(s)
        .into_iter()
        .filter(|f| f.rule == CONTROL_CHARACTER)
        .collect();
    assert_eq!(f.len(), 2, "{f:#?}");
    assert_eq!(&s[f[0].span.clone()], "\u{1b}[8m");
    assert_eq!(&s[f[1].span.clone()], "\u{1b}[0m");
    assert!(f[0].excerpt.contains("\\u{1B}[8m"), "{}", f[0].excerpt);
    // An OSC hyperlink is consumed to its terminator.
    let osc = "See \u{1b}]8;;http://x.example\u{7}here\u{1b}]8;;\u{7}.";
    let g: Vec<Finding> = scan_desc(osc)
        .into_iter()
        .filter(|f| f.rule == CONTROL_CHARACTER)
        .collect();
    assert_eq!(&osc[g[0].span.clone()], "\u{1b}]8;;http://x.example\u{7}");
    assert_eq!(&osc[g[1].span.clone()], "\u{1b}]8;;\u{7}");
    // The control characters separate words: the URL ends where the sequence does.
    let url = one(osc, EXFILTRATION_URL);
    assert_eq!(&osc[url.span.clone()], "http://x.example");
}

#[test]
fn line_breaks_and_tabs_are_not_control_characters_but_a_lone_carriage_return_is() {
    assert_eq!(
        worst("Line one.\r\nLine two.\tTabbed.", CONTROL_CHARACTER),
        None
    );
    assert_eq!(
        worst("Shown.\rOverwritten.", CONTROL_CHARACTER),
        Some(Severity::High)
    );
}

// confusable-name

#[test]
fn a_lookalike_name_is_high_and_an_honest_non_ascii_name_is_not() {
    let s = scanner();
    let f = s.scan(DefKind::Tool, &def(json!({"name": "re\u{430}d_file"})));
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        (f[0].rule, f[0].severity, f[0].pointer.as_str()),
        (CONFUSABLE_NAME, Severity::High, "/name")
    );
    assert!(f[0].message.contains("\"read_file\""), "{}", f[0].message);
    for honest in ["get_\u{5929}\u{6c17}", "caf\u{e9}_search", "read_file"] {
        assert!(
            s.scan(DefKind::Tool, &def(json!({"name": honest})))
                .is_empty(),
            "{honest}"
        );
    }
}

#[test]
fn confusables_across_backends_flag_the_impostor_only() {
    let s = scanner();
    let names = [
        ("fs", "read_file"),
        ("evil", "re\u{430}d_file"),
        ("fs", "write_file"),
        ("other", "read_file"),
    ];
    let hits = s.confusables(&names);
    assert_eq!(
        hits.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![1],
        "{hits:#?}"
    );
    // Two ASCII names with one skeleton: both are reported, nobody can tell which is genuine.
    let hits = s.confusables(&[("a", "list_files"), ("b", "Iist_files")]);
    assert_eq!(hits.len(), 2, "{hits:#?}");
    // The same backend may hold both (its own business), and equal names are not confusables.
    assert!(
        s.confusables(&[("a", "read_file"), ("a", "re\u{430}d_file")])
            .is_empty()
    );
    assert!(
        s.confusables(&[("a", "read_file"), ("b", "read_file")])
            .is_empty()
    );
}
