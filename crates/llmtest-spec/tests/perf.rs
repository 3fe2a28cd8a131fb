//! `perf:` suites: scenarios become cases, bad blocks are located errors.

use llmtest_spec::{
    AssertionCheck, AssertionSpec, CheckError, Diagnostics, Project, Prompt, SnapshotMode, Suite,
    load_suites,
};

struct NoAssertions;

impl AssertionCheck for NoAssertions {
    fn check(&self, a: &AssertionSpec) -> Result<(), CheckError> {
        Err(CheckError::new(format!(
            "unexpected assertion `{}`",
            a.kind
        )))
    }
}

fn load(files: &[(&str, &str)]) -> Result<Vec<Suite>, Diagnostics> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("llmtest.yaml"),
        "version: 1\nmodels:\n  m: {backend: openai}\n",
    )
    .unwrap();
    for (p, content) in files {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let project = Project::load(dir.path()).expect("config loads");
    let found = project.discover(&[]).expect("discover");
    load_suites(&project, &found, &NoAssertions)
}

#[test]
fn scenarios_are_cases_with_exact_lengths_and_no_snapshot() {
    let suites = load(&[(
        "suites/lat.yaml",
        "version: 1\nsuite: lat\nmode: completion\ndefaults: {params: {temperature: 0}}\nperf:\n  prompt_tokens: [128, 2048]\n  output_tokens: 16\n  concurrency: [1, 8]\n  expect: {ttft_p90_ms: {max: 500}}\n",
    )])
    .expect("loads");
    let s = &suites[0];
    let ids: Vec<&str> = s.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["p128-c1", "p128-c8", "p2048-c1", "p2048-c8"]);
    assert_eq!(s.snapshot, SnapshotMode::Off);
    let c = &s.cases[0];
    assert_eq!(c.params.max_tokens, Some(16));
    assert_eq!(c.params.temperature, Some(0.0));
    assert_eq!(c.params.extra_body["ignore_eos"], true);
    assert!(matches!(c.prompt, Prompt::Completion(_)));
    let spec = s.perf.as_ref().expect("a perf suite");
    assert_eq!(spec.scenario("p2048-c8").unwrap().prompt_tokens, Some(2048));
    let metrics: Vec<&str> = spec.checks.iter().map(|c| c.metric.as_str()).collect();
    assert_eq!(
        metrics,
        ["ttft_p90_ms", "failed"],
        "no failures allowed unless said"
    );
    assert_eq!((spec.requests, spec.warmup, spec.timeout_s), (32, 1, 300.0));
}

#[test]
fn request_rates_sweep_and_cap_with_concurrency() {
    let suites = load(&[(
        "suites/rate.yaml",
        "version: 1\nsuite: rate\nperf:\n  prompt_tokens: [64]\n  request_rate: [0.5, 2]\n  burstiness: 0.5\n  concurrency: [4]\n  expect: {failed_ratio: {max: 0.05}}\n",
    )])
    .expect("loads");
    let ids: Vec<&str> = suites[0].cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["p64-c4-r0.5", "p64-c4-r2"]);
    let spec = suites[0].perf.as_ref().unwrap();
    assert_eq!(spec.burstiness, 0.5);
    assert_eq!(
        spec.checks.len(),
        1,
        "a failure bound given replaces the default"
    );
}

#[test]
fn prompts_from_a_file() {
    let suites = load(&[
        (
            "suites/file.yaml",
            "version: 1\nsuite: file\nperf:\n  prompts_from: data/prompts.jsonl\n  concurrency: [2]\n",
        ),
        (
            "suites/data/prompts.jsonl",
            "{\"prompt\": \"one\"}\n{\"prompt\": \"two\"}\n",
        ),
    ])
    .expect("loads");
    let spec = suites[0].perf.as_ref().unwrap();
    assert_eq!(
        spec.prompts.as_deref(),
        Some(&["one".to_string(), "two".to_string()][..])
    );
    assert_eq!(suites[0].cases[0].id, "prompts-c2");
}

#[test]
fn bad_perf_blocks_are_located_errors_with_hints() {
    let err = load(&[
        (
            "suites/a.yaml",
            "version: 1\nsuite: a\nperf:\n  prompt_tokens: [128]\n  expect:\n    ttft_p90: {max: 500}\n    output_tokens_per_s: {}\n    goodput_per_s: {min: 1}\n",
        ),
        (
            "suites/b.yaml",
            "version: 1\nsuite: b\nperf:\n  concurrency: [0]\n  request_rate: [-1]\n",
        ),
        (
            "suites/c.yaml",
            "version: 1\nsuite: c\nperf:\n  prompt_tokens: [8]\n  concurency: [2]\n",
        ),
        (
            "suites/d.yaml",
            "version: 1\nsuite: d\ncases:\n  - {id: x, prompt: hi}\nperf:\n  prompt_tokens: [8]\n",
        ),
    ])
    .unwrap_err()
    .to_string();
    for want in [
        "suites/a.yaml:6:15",
        "unknown perf metric `ttft_p90`",
        "ttft_p90_ms",
        "`output_tokens_per_s` has no bound",
        "`goodput_per_s` needs `slo:`",
        "a perf suite needs `prompt_tokens` or `prompts_from`",
        "`concurrency` values must be ≥ 1",
        "`request_rate` values must be finite and > 0",
        "suites/c.yaml:5:3",
        "concurency",
        "a perf suite has no `cases:` or `cases_from:`",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}
