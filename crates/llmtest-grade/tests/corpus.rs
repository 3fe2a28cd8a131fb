//! The hand-labelled corpus (fixtures/math-corpus/pairs.jsonl): every verdict of `number`
//! and `math` must match its human label. ci/math_corpus.py compares the same pairs with
//! math-verify and adds the GSM8K rewrites.

use std::path::Path;

use llmtest_grade::math::MathGrader;
use llmtest_grade::number::NumberGrader;
use serde_json::{Map, Value};

#[test]
fn verdicts_match_the_labels() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/math-corpus/pairs.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut wrong = Vec::new();
    let mut count = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let pair: Map<String, Value> = serde_json::from_str(line).expect("a JSON object per line");
        let get = |k: &str| {
            pair.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let label = pair["label"].as_bool().expect("label");
        let grade = if get("grader") == "number" {
            let mut params = Map::new();
            params.insert("value".into(), Value::String(get("gold")));
            for k in ["unit", "tolerance", "pick"] {
                if let Some(v) = pair.get(k) {
                    params.insert(k.into(), v.clone());
                }
            }
            NumberGrader::from_params(&params)
                .expect("gold")
                .grade_answer(&get("answer"))
        } else {
            MathGrader::new(&get("gold"), true)
                .expect("gold")
                .grade_answer(&get("answer"))
        };
        count += 1;
        if grade.pass != label {
            wrong.push(format!(
                "{}: label {label}, got {}: {}",
                get("id"),
                grade.pass,
                grade.found
            ));
        }
    }
    assert!(count >= 300, "{count} pairs");
    assert!(
        wrong.is_empty(),
        "{} of {count} verdicts differ from the labels:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
