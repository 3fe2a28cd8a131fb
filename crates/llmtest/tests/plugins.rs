//! Plugins: a user's own backend and assertion type registered through the builder, used by
//! suites like built-ins; a missing credential skips; unknown names list the registered ones;
//! reasoning is stripped before grading and an unterminated think block is its own outcome.

use std::process::ExitCode;
use std::sync::Arc;

use llmtest::Llmtest;
use llmtest::backend::{
    Backend, BackendContext, BackendError, BackendFactory, Choice, InfraError, Request, Response,
};
use llmtest::grade::{FnFactory, Grade, Grader, Sample};
use llmtest::spec::ModelConfig;

/// A backend that answers from a table keyed by the prompt, like a tiny reasoning model.
struct Scripted;

#[async_trait::async_trait]
impl Backend for Scripted {
    async fn generate(&self, req: &Request) -> Result<Response, InfraError> {
        let p = req.prompt.text();
        let (text, finish) = if p.contains("think-then-answer") {
            (
                "<think>2023 was 53,529,941</think>\n\nANSWER 58,159,881",
                "stop",
            )
        } else if p.contains("prefilled") {
            (
                "the opening tag came from the template</think>ANSWER 142",
                "stop",
            )
        } else if p.contains("out-of-tokens") {
            ("<think>still adding up the rows of the table and", "length")
        } else {
            ("answer in lowercase", "stop")
        };
        let choices = (0..req.n)
            .map(|_| Choice {
                text: text.into(),
                finish_reason: Some(finish.into()),
                ..Choice::default()
            })
            .collect();
        Ok(Response {
            choices,
            ..Response::default()
        })
    }
}

struct ScriptedFactory;

impl BackendFactory for ScriptedFactory {
    fn name(&self) -> &str {
        "scripted"
    }
    fn create(
        &self,
        model: &ModelConfig,
        _: &BackendContext,
    ) -> Result<Arc<dyn Backend>, BackendError> {
        if let Some(var) = model.options.get("needs_env").and_then(|v| v.as_str())
            && std::env::var(var).is_err()
        {
            return Err(BackendError::MissingCredential { var: var.into() });
        }
        Ok(Arc::new(Scripted))
    }
}

fn all_caps() -> FnFactory<
    impl Fn(
        &serde_json::Map<String, serde_json::Value>,
        &llmtest::grade::GraderContext,
    ) -> Result<Arc<dyn Grader>, llmtest::spec::CheckError>
    + Send
    + Sync,
> {
    FnFactory::new("all-caps", |_p, _c| {
        Ok(Arc::new(|s: &Sample<'_>| {
            let ok = !s.answer.is_empty() && s.answer.chars().all(|c| !c.is_lowercase());
            Grade::binary(ok, "an answer in capitals", s.answer.to_owned())
        }) as Arc<dyn Grader>)
    })
}

fn project(models: &str, suite: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("llmtest.yaml"),
        format!("version: 1\nmodels:\n{models}"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("suites")).unwrap();
    std::fs::write(dir.path().join("suites/s.yaml"), suite).unwrap();
    dir
}

fn run(dir: &std::path::Path, args: &[&str]) -> ExitCode {
    let mut argv = vec!["llmtest", "--root", dir.to_str().unwrap()];
    argv.extend_from_slice(args);
    Llmtest::new()
        .backend(ScriptedFactory)
        .grader(all_caps())
        .cli_from(argv)
}

fn results(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("target/llmtest/results.json")).unwrap())
        .unwrap()
}

const REASONING_SUITE: &str = r#"version: 1
suite: s
mode: completion
cases:
  - {id: stripped, prompt: think-then-answer, expect: [{type: all-caps}, {type: not-contains, value: "53,529,941"}]}
  - {id: prefilled, prompt: prefilled, expect: [{type: contains, value: "ANSWER 142"}, {type: not-contains, value: template}]}
  - {id: unterminated, prompt: out-of-tokens, expect: [{type: all-caps}]}
  - {id: lowercase, prompt: plain, expect: [{type: all-caps}]}
"#;

#[test]
fn plugin_backend_and_grader_work_like_builtins_with_reasoning_policy() {
    let dir = project("  mine: {backend: scripted}\n", REASONING_SUITE);
    assert_eq!(
        run(
            dir.path(),
            &["run", "--format", "json", "--output", "/dev/null"]
        ),
        ExitCode::from(1)
    );
    let v = results(dir.path());
    let outcome = |id: &str| {
        v["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["case"] == id)
            .unwrap()
            .clone()
    };
    let s = outcome("stripped");
    assert_eq!(s["outcome"], "pass", "{s}");
    assert_eq!(s["samples"][0]["answer"], "ANSWER 58,159,881");
    assert_eq!(s["samples"][0]["reasoning_status"], "stripped");
    assert_eq!(
        s["samples"][0]["reasoning_chars"],
        "2023 was 53,529,941".chars().count()
    );
    assert_eq!(outcome("prefilled")["outcome"], "pass");
    assert_eq!(outcome("unterminated")["outcome"], "unterminated_reasoning");
    assert_eq!(outcome("lowercase")["outcome"], "fail");
}

#[test]
fn missing_credential_skips_and_unknown_names_are_listed() {
    let dir = project(
        "  cloud: {backend: scripted, needs_env: LLMTEST_TEST_SURELY_UNSET_KEY}\n",
        REASONING_SUITE,
    );
    assert_eq!(
        run(dir.path(), &["run", "--output", "/dev/null"]),
        ExitCode::from(0)
    );
    let v = results(dir.path());
    assert_eq!(v["summary"]["by_outcome"]["skipped"], 4, "{v}");
    assert!(
        v["cases"][0]["skipped"]
            .as_str()
            .unwrap()
            .contains("LLMTEST_TEST_SURELY_UNSET_KEY")
    );
    // The harness marks the trials ignored instead of failing them. An `--exact` filter that
    // matches nothing exits 0 too, so the log must show the trial itself.
    let harness_log = |name: &str| {
        let log = dir.path().join("harness.log");
        let logfile = log.to_str().unwrap();
        let code = run(
            dir.path(),
            &["test", "--", "--exact", name, "--logfile", logfile],
        );
        assert_eq!(code, ExitCode::SUCCESS, "{name}");
        std::fs::read_to_string(&log).unwrap()
    };
    let log = harness_log("s::stripped::cloud");
    assert!(log.contains("test s::stripped::cloud ... ignored"), "{log}");
    assert!(log.contains("0 passed; 0 failed; 1 ignored"), "{log}");
    let log = harness_log("s::no-such-case::cloud");
    assert!(log.contains("0 passed; 0 failed; 0 ignored"), "{log}");

    // `llmtest test --shard K/N` (the harness reads LLMTEST_SHARD): the shards partition the
    // trials by name, as `run --shard` and nextest's hash partition do.
    let listed = |extra: &[&str]| -> Vec<String> {
        let log = dir.path().join("list.log");
        let mut argv = vec!["test"];
        argv.extend_from_slice(extra);
        argv.extend_from_slice(&["--", "--list", "--logfile", log.to_str().unwrap()]);
        assert_eq!(run(dir.path(), &argv), ExitCode::SUCCESS, "{extra:?}");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let mut names: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_suffix(": test"))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    };
    let all = listed(&[]);
    assert_eq!(all.len(), 5, "4 cases and a snapshot: {all:?}");
    let shards: Vec<Vec<String>> = (1..=3)
        .map(|k| listed(&["--shard", &format!("{k}/3")]))
        .collect();
    let mut union: Vec<String> = shards.concat();
    union.sort();
    assert_eq!(union, all, "the shards partition the trials: {shards:?}");
    for (k, names) in shards.iter().enumerate() {
        let shard = llmtest::shard::Shard {
            k: k as u64 + 1,
            n: 3,
        };
        assert!(names.iter().all(|n| shard.contains(n)), "{shards:?}");
    }
    assert!(
        shards.iter().filter(|s| !s.is_empty()).count() >= 2,
        "{shards:?}"
    );

    let dir = project("  m: {backend: scriptd}\n", REASONING_SUITE);
    assert_eq!(
        run(dir.path(), &["run"]),
        ExitCode::from(2),
        "an unknown backend is invalid config"
    );
    let dir = project(
        "  m: {backend: scripted}\n",
        "version: 1\nsuite: s\ncases: [{id: a, prompt: p, expect: [{type: all-cap}]}]\n",
    );
    assert_eq!(
        run(dir.path(), &["validate"]),
        ExitCode::from(2),
        "an unknown assertion type is invalid input"
    );
}
