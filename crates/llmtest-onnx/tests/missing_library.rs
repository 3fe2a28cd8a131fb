//! No ONNX Runtime library: a clear "unavailable" error naming what was tried, never a panic.
//! Its own test binary, because the library is loaded once per process.

use llmtest_backend::BackendError;
use llmtest_onnx::{LoadOptions, OnnxModel};

#[test]
fn a_wrong_ort_dylib_path_is_a_clear_unavailable_error() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bogus = root.join("target/no-such-dir/libonnxruntime.so.1.31.1");
    // SAFETY: the only test in this binary; set before any thread reads the environment.
    unsafe { std::env::set_var("ORT_DYLIB_PATH", &bogus) };
    let opts = LoadOptions {
        root: root.clone(),
        ..LoadOptions::default()
    };
    let err = OnnxModel::load(root.join("fixtures/models/tiny-qwen2"), &opts)
        .err()
        .expect("loading must fail");
    let BackendError::Unavailable(msg) = &err else {
        panic!("expected unavailable, got {err:?}")
    };
    assert!(msg.starts_with("onnx runtime library not found"), "{msg}");
    assert!(
        msg.contains(&format!("ORT_DYLIB_PATH={}: no such file", bogus.display())),
        "{msg}"
    );
    assert!(msg.contains("pip install onnxruntime==1.31.1"), "{msg}");
    // an explicit path that is wrong is not papered over by finding .venv
    assert!(!msg.contains(".venv:"), "{msg}");
    let doctor = llmtest_onnx::doctor_at(&root);
    assert!(
        doctor.starts_with("onnx runtime: not available: onnx runtime library not found"),
        "{doctor}"
    );
}
