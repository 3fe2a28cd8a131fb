//! On a GPU machine (opt-in: `LLMTEST_ONNX_GPU=1`, with `onnxruntime-gpu` and the `cuda`
//! feature): the fixture model runs on the CUDA provider with the cache on the device, its
//! logits match the NumPy reference, and the results carry the GPU's facts.
//!
//! ```sh
//! LLMTEST_ONNX_GPU=1 cargo test -p llmtest-onnx --features cuda --test gpu -- --nocapture
//! ```

mod common;

use common::{f64s, max_abs_diff, model_dir, reference, root, u32s};
use llmtest_onnx::{LoadOptions, OnnxBackend, OnnxModel, Provider, Sampling};

fn wanted() -> bool {
    let on = std::env::var("LLMTEST_ONNX_GPU").as_deref() == Ok("1");
    if !on {
        eprintln!("skipped: set LLMTEST_ONNX_GPU=1 on a machine with an NVIDIA GPU to run");
    }
    on
}

fn gpu_options() -> LoadOptions {
    LoadOptions {
        root: root(),
        providers: vec![Provider::Cuda],
        require_gpu: true,
        ..LoadOptions::default()
    }
}

#[test]
fn cuda_provider_matches_the_reference() {
    if !wanted() {
        return;
    }
    if !cfg!(feature = "cuda") {
        panic!(
            "LLMTEST_ONNX_GPU=1 needs the `cuda` feature: cargo test -p llmtest-onnx --features cuda --test gpu"
        );
    }
    let model = OnnxModel::load(model_dir(), &gpu_options()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(model.provider(), Provider::Cuda);
    let r = reference();
    for case in r["cases"].as_array().unwrap() {
        let ids = u32s(&case["input_ids"]);
        let last = model.prompt_logits(&ids).unwrap().pop().unwrap();
        let d = max_abs_diff(&last, &f64s(&case["prefill_last"]));
        let want = u32s(&case["greedy_ids"]);
        let out = model
            .generate(
                &[ids],
                &Sampling {
                    record_logits: true,
                    ..Sampling::greedy(want.len() as u32 + 4)
                },
            )
            .unwrap();
        let steps = case["decode_steps"].as_u64().unwrap() as usize;
        let d2 = max_abs_diff(&out.logits[steps - 1], &f64s(&case["decode_last"]));
        eprintln!("cuda: prefill max |Δlogit| {d:.2e}, decode {d2:.2e}");
        assert!(d < 1e-4 && d2 < 1e-4);
        assert_eq!(out.sequences[0].text, case["greedy_text"].as_str().unwrap());
    }
}

#[test]
fn gpu_facts_are_reported() {
    if !wanted() {
        return;
    }
    let b =
        OnnxBackend::load(&model_dir(), &gpu_options(), 8, 64).unwrap_or_else(|e| panic!("{e}"));
    let facts = llmtest_backend::Backend::facts(&b);
    eprintln!("{}", serde_json::to_string_pretty(&facts).unwrap());
    assert_eq!(facts["execution_provider"], "cuda");
    for key in [
        "gpu",
        "gpu_driver",
        "gpu_memory_total_mib",
        "gpu_memory_before_load_mib",
        "gpu_memory_after_load_mib",
        "gpu_memory_peak_mib",
    ] {
        assert!(facts.contains_key(key), "missing {key} in {facts:?}");
    }
    eprintln!("{}", llmtest_onnx::doctor_at(&root()));
}
