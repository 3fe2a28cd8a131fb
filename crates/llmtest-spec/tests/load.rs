//! Loader behaviour: located diagnostics (snapshotted), all errors reported together,
//! templates, includes, cases_from, defaults.

use std::path::{Path, PathBuf};

use llmtest_spec::{
    AssertionCheck, AssertionSpec, CheckError, Diagnostics, Project, Prompt, Suite, load_suites,
};

/// Knows `contains` and `regex` (with a real pattern check), like the grader registry.
struct Checker;

impl AssertionCheck for Checker {
    fn check(&self, a: &AssertionSpec) -> Result<(), CheckError> {
        match a.kind.as_str() {
            "contains" => match a.params.get("value") {
                Some(_) => Ok(()),
                None => Err(CheckError::new("missing key `value`")),
            },
            "regex" => {
                let p = a.params.get("value").and_then(|v| v.as_str()).unwrap_or("");
                regex::Regex::new(p)
                    .map(|_| ())
                    .map_err(|_| CheckError::new("invalid regex"))
            }
            other => Err(
                CheckError::new(format!("unknown assertion type `{other}`")).with_hint(
                    llmtest_spec::unknown_name_hint(other, ["contains", "regex"]),
                ),
            ),
        }
    }
}

fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    for (p, content) in files {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let project = Project::load(dir.path()).expect("config loads");
    (dir, project)
}

fn load(files: &[(&str, &str)]) -> Result<Vec<Suite>, Diagnostics> {
    let (_dir, project) = project(files);
    let found = project.discover(&[]).expect("discover");
    load_suites(&project, &found, &Checker)
}

const CONFIG: &str =
    "version: 1\nmodels:\n  qwen2.5-7b: {backend: openai}\n  qwq-32b-awq: {backend: openai}\n";

#[test]
fn every_error_of_every_suite_is_reported_with_file_line_col() {
    let a = r#"version: 1
suite: alpha
cases:
  - id: one
    prompt: hi
    exepct:
      - {type: contains, value: x}
"#;
    let b = r#"version: 1
suite: beta
models: [qwen2.5-7B]
cases:
  - id: dup
    prompt: "{{ missing_var }}"
  - id: dup
    prompt: hello
    expect:
      - {type: regex, value: "(unclosed"}
      - {type: contians, value: y}
      - {value: z}
  - id: inc
    prompt: '{{ file("fixtures/nope.txt") }}'
"#;
    let err = load(&[
        ("llmtest.yaml", CONFIG),
        ("suites/a.yaml", a),
        ("suites/b.yaml", b),
    ])
    .unwrap_err();
    insta::assert_snapshot!("diagnostics", err.to_string());
}

#[test]
fn json_suites_get_the_same_checks() {
    let s =
        r#"{"version": 1, "suite": "j", "cases": [{"id": "a", "prompt": "p", "weight": "heavy"}]}"#;
    let err = load(&[("suites/j.json", s)]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("suites/j.json:1:"), "{text}");
    assert!(
        text.contains("weight") || text.contains("invalid type"),
        "{text}"
    );
}

#[test]
fn unknown_top_level_key_hints_the_right_one() {
    let s = "version: 1\nsuite: s\ndefault:\n  params: {temperature: 0}\ncases:\n  - {id: a, prompt: p}\n";
    let err = load(&[("suites/s.yaml", s)]).unwrap_err();
    let d = &err.0[0];
    assert_eq!((d.loc.line, d.loc.col), (3, 1), "{err}");
    assert_eq!(d.hint.as_deref(), Some("did you mean `defaults`?"), "{err}");
}

#[test]
fn defaults_templates_and_includes_are_resolved() {
    let s = r#"version: 1
suite: s
defaults:
  system: "You answer in {{ lang }}."
  params: {temperature: 0, max_tokens: 64}
  vars: {lang: Chinese}
  expect:
    - {type: contains, value: "{{ gold }}"}
cases:
  - id: a
    vars: {gold: "142"}
    prompt: "{{ file('fixtures/t.txt') }}Q?"
    params: {max_tokens: 8}
    weight: 2
"#;
    let suites = load(&[("suites/s.yaml", s), ("fixtures/t.txt", "TABLE\n")]).unwrap();
    let c = &suites[0].cases[0];
    match &c.prompt {
        Prompt::Chat(m) => {
            assert_eq!(m[0].content, "You answer in Chinese.");
            assert_eq!(m[1].content, "TABLE\nQ?");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.expect[0].params["value"], "142");
    assert_eq!(c.params.max_tokens, Some(8));
    assert_eq!(c.params.temperature, Some(0.0));
    assert_eq!(c.weight, 2.0);
}

#[test]
fn completion_mode_keeps_the_prompt_byte_exact() {
    let s = "version: 1\nsuite: s\nmode: completion\ncases:\n  - id: a\n    prompt: |-\n      {{ file(\"fixtures/t.txt\") }}\n\n      continue here\n";
    let suites = load(&[("suites/s.yaml", s), ("fixtures/t.txt", "a\tb\n")]).unwrap();
    assert_eq!(
        suites[0].cases[0].prompt,
        Prompt::Completion("a\tb\n\n\ncontinue here".into())
    );
}

#[test]
fn cases_from_jsonl_and_csv_with_mapping() {
    let s = r#"version: 1
suite: gsm
cases_from:
  - path: data/g.jsonl
    prompt: "Q: {{ question }}"
    vars: {target: "{{ (answer | split('####'))[1] | trim }}"}
    expect: [{type: contains, value: "{{ target }}"}]
  - path: data/c.csv
    id: "csv-{{ name }}"
    prompt: "{{ name }}?"
    expect: [{type: contains, value: "{{ gold }}"}]
"#;
    let jsonl = "{\"question\": \"1+1\", \"answer\": \"so #### 2\"}\n{\"question\": \"2+2\", \"answer\": \"#### 4\"}\n";
    let csv = "name,gold\nalpha,\"1,000\"\n";
    let suites = load(&[
        ("suites/gsm.yaml", s),
        ("suites/data/g.jsonl", jsonl),
        ("suites/data/c.csv", csv),
    ])
    .unwrap();
    let cases = &suites[0].cases;
    assert_eq!(cases.len(), 3);
    assert_eq!(cases[0].id, "g-0000");
    assert_eq!(cases[1].expect[0].params["value"], "4");
    assert_eq!(cases[2].id, "csv-alpha");
    assert_eq!(cases[2].expect[0].params["value"], "1,000");
    assert_eq!(cases[0].prompt.text(), "Q: 1+1");
}

#[test]
fn cases_from_errors_point_at_the_data_row() {
    let s = "version: 1\nsuite: s\ncases_from:\n  - path: data/x.jsonl\n    prompt: \"{{ question }}\"\n";
    let jsonl = "{\"question\": \"ok\"}\n{\"other\": 1}\n";
    let err = load(&[("suites/s.yaml", s), ("suites/data/x.jsonl", jsonl)]).unwrap_err();
    assert_eq!(err.0[0].loc.file, PathBuf::from("suites/data/x.jsonl"));
    assert_eq!(err.0[0].loc.line, 2, "{err}");
}

#[test]
fn a_path_that_matches_nothing_is_an_error() {
    let (_d, project) = project(&[(
        "suites/a.yaml",
        "version: 1\nsuite: a\ncases: [{id: x, prompt: p}]\n",
    )]);
    let err = project
        .discover(&[PathBuf::from("suites/typo.yaml")])
        .unwrap_err();
    assert!(err.to_string().contains("no such suite file"), "{err}");
    assert_eq!(
        project
            .discover(&[Path::new("suites").to_path_buf()])
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn config_errors_are_located() {
    let cfg = "version: 1\ndefault_profile: nightly\nmodels:\n  m: {backend: openai, max_concurrency: 0}\nprofiles:\n  ci: {models: [mm], mode: replay}\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("llmtest.yaml"), cfg).unwrap();
    let err = Project::load(dir.path()).unwrap_err();
    insta::assert_snapshot!("config_diagnostics", err.to_string());
}

#[test]
fn schemas_are_committed_and_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (file, fresh) in [
        ("schemas/suite.schema.json", llmtest_spec::suite_schema()),
        ("schemas/llmtest.schema.json", llmtest_spec::config_schema()),
    ] {
        let committed = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        assert!(
            committed == fresh,
            "{file} is stale: run `cargo run -p llmtest-cli -- schema --write`"
        );
    }
}

#[test]
fn wrong_shapes_get_a_hint_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = "version: 1\nmodels:\n  - name: answers\n    backend: outputs\n";
    std::fs::write(dir.path().join("llmtest.yaml"), cfg).unwrap();
    let err = Project::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("llmtest.yaml:3:3"), "{err}");
    assert!(
        err.contains("hint: `models` takes a mapping (`key: value` lines), not a list"),
        "{err}"
    );
    let suite = "version: 1\nsuite: s\ncases:\n  - id: a\n    prompt: hi\n    samples: -1\n";
    let err = load(&[("llmtest.yaml", CONFIG), ("suites/s.yaml", suite)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("suites/s.yaml:6:14"), "{err}");
    assert!(
        err.contains("hint: `samples` takes a whole number"),
        "{err}"
    );
    let suite = "version: 1\nsuite: s\ntags: fast\ncases:\n  - id: a\n    prompt: hi\n";
    let err = load(&[("llmtest.yaml", CONFIG), ("suites/s.yaml", suite)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("suites/s.yaml:3:"), "{err}");
    assert!(err.contains("hint: `tags` takes a list"), "{err}");
}
