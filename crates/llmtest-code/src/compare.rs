//! Deep equality between an expected value written in YAML/JSON and a value a program
//! returned, as the harnesses encode it (tuples arrive as lists; sets, non-finite floats,
//! huge integers, non-string dict keys and other objects as tagged objects).
//!
//! Rules: numbers compare by value (`1 == 1.0`), floats within `tolerance` relative to the
//! larger magnitude (absolute below 1); booleans only equal booleans; `null` is `None`;
//! lists compare in order; a returned set equals an expected list holding the same elements
//! in any order; dicts with non-string keys compare through the keys' JSON text.

use serde_json::Value;

fn special<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) if m.len() == 1 => m.get(tag),
        _ => None,
    }
}

fn num_eq(a: f64, b: f64, tol: f64) -> bool {
    if a == b {
        return true;
    }
    if tol <= 0.0 || !a.is_finite() || !b.is_finite() {
        return false;
    }
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => special(v, "__int__")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok()),
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Is `got` (harness encoding) equal to `expected` (suite value)?
pub(crate) fn equal(expected: &Value, got: &Value, tol: f64) -> bool {
    if let Some(f) = special(got, "__float__").and_then(Value::as_str) {
        let want = match expected {
            Value::String(s) => s.trim_start_matches('.').to_lowercase(),
            _ => return false,
        };
        let f = f.to_lowercase();
        return want == f
            || (want == "+inf" && f == "inf")
            || (want == "infinity" && f == "inf")
            || (want == "-infinity" && f == "-inf");
    }
    if let Some(Value::Array(items)) = special(got, "__set__") {
        let Value::Array(want) = expected else {
            return false;
        };
        if want.len() != items.len() {
            return false;
        }
        let mut used = vec![false; items.len()];
        return want.iter().all(|w| {
            for (i, g) in items.iter().enumerate() {
                if !used[i] && equal(w, g, tol) {
                    used[i] = true;
                    return true;
                }
            }
            false
        });
    }
    if let Some(Value::Array(pairs)) = special(got, "__dict__") {
        let Value::Object(want) = expected else {
            return false;
        };
        if want.len() != pairs.len() {
            return false;
        }
        return pairs.iter().all(|p| match p.as_array().map(Vec::as_slice) {
            Some([k, v]) => want.get(&key_text(k)).is_some_and(|w| equal(w, v, tol)),
            _ => false,
        });
    }
    if special(got, "__int__").is_some() {
        return match (as_f64(expected), as_f64(got)) {
            (Some(a), Some(b)) => match (expected, special(got, "__int__").and_then(Value::as_str))
            {
                (Value::String(s), Some(g)) => s == g,
                _ => num_eq(a, b, tol),
            },
            _ => {
                matches!((expected, special(got, "__int__")), (Value::String(s), Some(Value::String(g))) if s == g)
            }
        };
    }
    match (expected, got) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => {
            if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
                return x == y;
            }
            if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
                return x == y;
            }
            match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => num_eq(x, y, tol),
                _ => false,
            }
        }
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equal(x, y, tol))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| equal(x, y, tol)))
        }
        _ => false,
    }
}

/// A value for people, in Python-like notation, at most `max` characters.
pub(crate) fn show(v: &Value, max: usize) -> String {
    fn go(v: &Value, out: &mut String) {
        if let Some(Value::String(s)) = special(v, "__float__")
            .or_else(|| special(v, "__int__"))
            .or_else(|| special(v, "__repr__"))
        {
            out.push_str(s);
            return;
        }
        if let Some(Value::String(s)) = special(v, "__bytes__") {
            out.push_str(&format!("bytes.fromhex('{s}')"));
            return;
        }
        if let Some(Value::Array(items)) = special(v, "__set__") {
            out.push('{');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                go(x, out);
            }
            out.push('}');
            return;
        }
        if let Some(Value::Array(pairs)) = special(v, "__dict__") {
            out.push('{');
            for (i, p) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if let Some([k, x]) = p.as_array().map(Vec::as_slice) {
                    go(k, out);
                    out.push_str(": ");
                    go(x, out);
                }
            }
            out.push('}');
            return;
        }
        match v {
            Value::Null => out.push_str("None"),
            Value::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
            Value::Array(items) => {
                out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    go(x, out);
                }
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push_str(": ");
                    go(x, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    go(v, &mut s);
    truncate(&s, max)
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_lists_and_tolerance() {
        assert!(equal(
            &json!([[0, 3], [1, 2]]),
            &json!([[0, 3], [1, 2]]),
            0.0
        ));
        assert!(!equal(
            &json!([[0, 3], [1, 2]]),
            &json!([[1, 2], [0, 3]]),
            0.0
        ));
        assert!(equal(&json!(1), &json!(1.0), 0.0));
        assert!(equal(&json!(0.3), &json!(0.30000000000000004), 1e-9));
        assert!(!equal(&json!(0.3), &json!(0.30000000000000004), 0.0));
        assert!(!equal(&json!(1), &json!(true), 1e-9));
        assert!(equal(&json!(null), &json!(null), 0.0));
        assert!(!equal(&json!([1]), &json!([1, 2]), 0.0));
    }

    #[test]
    fn python_specials() {
        assert!(equal(
            &json!([3, 1, 2]),
            &json!({"__set__": [1, 2, 3]}),
            0.0
        ));
        assert!(!equal(&json!([3, 1, 1]), &json!({"__set__": [1, 3]}), 0.0));
        assert!(equal(
            &json!({"1": "a"}),
            &json!({"__dict__": [[1, "a"]]}),
            0.0
        ));
        assert!(equal(&json!(".inf"), &json!({"__float__": "inf"}), 0.0));
        assert!(equal(
            &json!("123456789012345678901234567890"),
            &json!({"__int__": "123456789012345678901234567890"}),
            0.0
        ));
        assert!(!equal(&json!("x"), &json!({"__repr__": "x"}), 0.0));
        assert_eq!(
            show(&json!({"__set__": [1, null, true]}), 100),
            "{1, None, True}"
        );
        assert_eq!(show(&json!("abcdef"), 4), "\"ab…");
    }
}
