//! YAML (and JSON) parsed into the raw formats, the first error turned into a located
//! diagnostic with a hint: "did you mean" for unknown keys, the expected shape for a list
//! where a mapping belongs.

use std::path::Path;

use crate::diag::{Diagnostic, Loc, unknown_name_hint};

/// Parse YAML (or JSON, which this parser reads too) into `T`, turning the first error into a
/// located diagnostic with a "did you mean" hint for unknown keys.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
    file: &Path,
    src: &str,
) -> Result<T, Diagnostic> {
    serde_saphyr::from_str::<T>(src).map_err(|e| saphyr_diag(file, src, &e))
}

fn saphyr_diag(file: &Path, src: &str, err: &serde_saphyr::Error) -> Diagnostic {
    use serde_saphyr::Error as E;
    let mut e = err;
    while let E::WithSnippet { error, .. } = e {
        e = error;
    }
    let l = e
        .location()
        .map(|l| Loc::from_saphyr(file, &l))
        .unwrap_or_else(|| Loc::new(file, 0, 0));
    let d = match e {
        E::SerdeUnknownField {
            field, expected, ..
        } => {
            let hint = if expected.is_empty() {
                "this mapping takes no keys".to_string()
            } else {
                unknown_name_hint(field, expected.iter().copied())
            };
            Diagnostic::new(l, format!("unknown key `{field}`")).with_hint(hint)
        }
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => Diagnostic::new(l, format!("unknown value `{variant}`"))
            .with_hint(unknown_name_hint(variant, expected.iter().copied())),
        E::SerdeMissingField { field, .. } => {
            Diagnostic::new(l, format!("missing required key `{field}`"))
        }
        other => {
            let msg = other.to_string();
            let first = msg.lines().next().unwrap_or("invalid input").trim();
            let first = strip_at_line(first);
            let mut d = Diagnostic::new(l.clone(), lowercase_first(first));
            if let Some(h) = shape_hint(first, src, l.line, l.col) {
                d = d.with_hint(h);
            }
            d
        }
    };
    d.with_source(src)
}

/// A hint for a list where a mapping belongs, or the reverse, naming the key that owns it.
fn shape_hint(msg: &str, src: &str, line: u32, col: u32) -> Option<String> {
    let lines: Vec<&str> = src.lines().collect();
    let here = lines.get((line as usize).checked_sub(1)?)?;
    let at: String = here
        .chars()
        .skip((col as usize).saturating_sub(1))
        .collect();
    let indent = |s: &str| s.len() - s.trim_start().len();
    // `key: <here>`: the value of a key on this same line
    let before: String = here
        .chars()
        .take((col as usize).saturating_sub(1))
        .collect();
    let inline_key = before
        .trim_end()
        .strip_suffix(':')
        .map(|k| k.trim().trim_start_matches("- ").trim().to_owned())
        .filter(|k| !k.is_empty() && !k.contains([' ', '{', ',']));
    // else the owning key: the nearest line above, less indented, of the form `key:`
    let owner = lines[..line as usize - 1]
        .iter()
        .rev()
        .filter(|s| !s.trim().is_empty() && !s.trim_start().starts_with('#'))
        .find(|s| indent(s) < indent(here) || (indent(s) == indent(here) && at.starts_with("- ")))
        .and_then(|s| s.trim().trim_start_matches("- ").split(':').next())
        .map(|k| format!("`{}`", k.trim()))
        .unwrap_or_else(|| "this key".to_owned());
    let owner = match &inline_key {
        Some(k) => format!("`{k}`"),
        None => owner,
    };
    let msg = msg.to_lowercase();
    if msg.contains("expected mapping")
        || msg.contains("expected a map")
        || msg.contains("expected struct")
    {
        if at.starts_with("- ") {
            let extra = if owner == "`models`" {
                ": name each model by its key (`my-model:`) with its settings indented below"
            } else {
                ""
            };
            return Some(format!(
                "{owner} takes a mapping (`key: value` lines), not a list{extra}"
            ));
        }
        return Some(format!("{owner} takes a mapping (`key: value` lines)"));
    }
    if msg.contains("expected sequence") || msg.contains("expected a sequence") {
        return Some(format!("{owner} takes a list: `- item` lines or `[a, b]`"));
    }
    // a scalar of the wrong kind
    let key = match inline_key {
        Some(k) => format!("`{k}`"),
        None => "this key".to_owned(),
    };
    if [
        "invalid u8",
        "invalid u16",
        "invalid u32",
        "invalid u64",
        "invalid usize",
    ]
    .iter()
    .any(|p| msg.starts_with(p))
    {
        return Some(format!("{key} takes a whole number, 0 or more"));
    }
    if msg.starts_with("invalid i") {
        return Some(format!("{key} takes a whole number"));
    }
    if msg.starts_with("invalid f") {
        return Some(format!("{key} takes a number"));
    }
    None
}

fn strip_at_line(s: &str) -> &str {
    match s.rfind(" at line ") {
        Some(i) => &s[..i],
        None => s,
    }
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) if !s.starts_with("YAML") => f.to_lowercase().chain(c).collect(),
        _ => s.to_owned(),
    }
}
