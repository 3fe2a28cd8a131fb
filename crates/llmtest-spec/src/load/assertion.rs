//! One `expect:` entry parsed: its type, negation, weight and parameters.

use serde_json::Value;

use crate::diag::{Loc, did_you_mean};
use crate::model::AssertionSpec;

/// The keys an assertion entry may have besides its type's own parameters.
const ASSERTION_META: &[&str] = &["type", "not", "weight"];

/// Parses one assertion entry: `{type: contains, value: …, weight: 2}`,
/// `{type: not-contains, …}` or `{not: {type: contains, …}}`.
pub fn parse_assertion(v: &Value, l: Loc) -> Result<AssertionSpec, (String, Option<String>)> {
    let Value::Object(map) = v else {
        return Err((
            "an assertion must be a mapping".into(),
            Some("e.g. `{type: contains, value: \"142\"}`".into()),
        ));
    };
    let weight = match map.get("weight") {
        None => 1.0,
        Some(w) => match w.as_f64() {
            Some(w) if w.is_finite() && w >= 0.0 => w,
            _ => return Err(("`weight` must be a finite number ≥ 0".into(), None)),
        },
    };
    if let Some(inner) = map.get("not") {
        if let Some(extra) = map.keys().find(|k| *k != "not" && *k != "weight") {
            return Err((
                format!("unexpected key `{extra}` beside `not`"),
                Some("put the assertion's keys inside `not: {…}`".into()),
            ));
        }
        let mut spec = parse_assertion(inner, l)?;
        spec.negate = !spec.negate;
        spec.weight = weight;
        return Ok(spec);
    }
    let kind = match map.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => return Err(("`type` must be a string".into(), None)),
        None => {
            let hint = map
                .keys()
                .find_map(|k| did_you_mean(k, ASSERTION_META.iter().copied()));
            return Err((
                "assertion has no `type`".into(),
                hint.or(Some("e.g. `type: contains`".into())),
            ));
        }
    };
    let (kind, negate) = match kind.strip_prefix("not-") {
        Some(k) => (k.to_owned(), true),
        None => (kind, false),
    };
    let params = map
        .iter()
        .filter(|(k, _)| !ASSERTION_META.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(AssertionSpec {
        kind,
        negate,
        weight,
        params,
        loc: l,
    })
}
