//! Shared by the integration tests: the fixture model, loaded once per test binary, or a
//! skip when the ONNX Runtime library is not installed (a failure under
//! `LLMTEST_REQUIRE_EXTERNAL=1`, as CI sets it).

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use llmtest_backend::BackendError;
use llmtest_onnx::{LoadOptions, OnnxModel};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

pub fn model_dir() -> PathBuf {
    root().join("fixtures/models/tiny-qwen2")
}

pub fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(model_dir().join("reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("reference.json is json")
}

/// `None` (after printing why) when the runtime library is missing and that is allowed.
pub fn skip_unless_runtime(err: &BackendError) -> Option<()> {
    let msg = err.to_string();
    if !msg.contains("onnx runtime library not found") {
        return None;
    }
    if std::env::var("LLMTEST_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
        panic!("LLMTEST_REQUIRE_EXTERNAL=1 but {msg}");
    }
    eprintln!("skipped: {msg}");
    Some(())
}

/// The fixture model on the CPU, loaded once; `None` when skipped.
pub fn model() -> Option<&'static OnnxModel> {
    static MODEL: OnceLock<Option<OnnxModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let opts = LoadOptions {
                root: root(),
                threads: Some(1),
                ..LoadOptions::default()
            };
            match OnnxModel::load(model_dir(), &opts) {
                Ok(m) => Some(m),
                Err(e) => {
                    skip_unless_runtime(&e)
                        .unwrap_or_else(|| panic!("loading the fixture model failed: {e}"));
                    None
                }
            }
        })
        .as_ref()
}

pub fn max_abs_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - y).abs())
        .fold(0.0, f64::max)
}

pub fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

pub fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("integer") as u32)
        .collect()
}
