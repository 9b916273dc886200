//! `confusable-name`: tool names built from lookalike characters (UTS #39 skeletons and
//! mixed-script detection), alone and across backends.

use std::collections::HashMap;

use unicode_security::{MixedScript, skeleton};

use super::text::{ascii_prototype, escape};
use super::{CONFUSABLE_NAME, Hit, Severity};

/// A single name: flagged when its non-ASCII characters all have ASCII lookalikes (a whole-name
/// disguise such as `reаd_file` with Cyrillic `а`, or full-width `ｒｅａｄ`), or when it mixes
/// scripts and one of its characters imitates an ASCII one.
pub(super) fn check_one(name: &str, out: &mut Vec<Hit>) {
    if name.is_ascii() {
        return;
    }
    let Some((looks_like, imitators)) = disguise(name) else {
        return;
    };
    let codes: Vec<String> = imitators
        .iter()
        .map(|c| format!("U+{:04X}", *c as u32))
        .collect();
    let message = if looks_like.is_ascii() && looks_like != name {
        format!(
            "The name \"{}\" is made to look like \"{looks_like}\" with lookalike characters ({}), to be picked instead of a trusted tool.",
            escape(name, 60),
            codes.join(", ")
        )
    } else {
        format!(
            "The name \"{}\" mixes scripts with lookalike characters ({}), a way to impersonate another tool's name.",
            escape(name, 60),
            codes.join(", ")
        )
    };
    out.push(Hit {
        rule: CONFUSABLE_NAME,
        severity: Severity::High,
        span: 0..name.len(),
        message,
    });
}

/// For a name with disguised characters: what it looks like (lookalikes replaced by their ASCII
/// prototype) and the disguised characters; `None` for an honest name.
fn disguise(name: &str) -> Option<(String, Vec<char>)> {
    let mut looks_like = String::new();
    let mut imitators = Vec::new();
    for c in name.chars() {
        let proto = ascii_prototype(c);
        if !c.is_ascii() && proto.iter().all(char::is_ascii) {
            imitators.push(c);
        }
        looks_like.extend(proto);
    }
    if imitators.is_empty() {
        return None;
    }
    let whole_ascii = looks_like.is_ascii();
    let mixed = !name.is_single_script();
    (whole_ascii || mixed).then_some((looks_like, imitators))
}

/// Across backends: names whose UTS #39 skeletons are equal but whose text differs from a name on
/// another backend, or equal names that disguise their characters. When a group mixes plain-ASCII
/// and non-ASCII names, only the non-ASCII ones are reported (the ASCII one is the imitated).
pub(super) fn cross_backend(names: &[(&str, &str)]) -> Vec<(usize, Hit)> {
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, (_, name)) in names.iter().enumerate() {
        groups.entry(skeleton(name).collect()).or_default().push(i);
    }
    let mut out = Vec::new();
    let mut keys: Vec<&String> = groups.keys().collect();
    keys.sort();
    for key in keys {
        let Some(members) = groups.get(key) else {
            continue;
        };
        let flagged: Vec<(usize, usize)> = members
            .iter()
            .filter_map(|&i| {
                let (backend, name) = names[i];
                members
                    .iter()
                    .find(|&&j| {
                        let (other_backend, other) = names[j];
                        other_backend != backend && (other != name || disguise(name).is_some())
                    })
                    .map(|&j| (i, j))
            })
            .collect();
        let any_plain = flagged.iter().any(|(i, _)| names[*i].1.is_ascii());
        let any_fancy = flagged.iter().any(|(i, _)| !names[*i].1.is_ascii());
        for (i, j) in flagged {
            let (backend, name) = names[i];
            if any_plain && any_fancy && name.is_ascii() {
                continue;
            }
            let (other_backend, other) = names[j];
            let message = format!(
                "Tool \"{}\" of backend `{backend}` looks like \"{}\" of backend `{other_backend}` (same Unicode skeleton), so a model or a person can mistake one for the other.",
                escape(name, 60),
                escape(other, 60)
            );
            out.push((
                i,
                Hit {
                    rule: CONFUSABLE_NAME,
                    severity: Severity::High,
                    span: 0..name.len(),
                    message,
                },
            ));
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out
}
