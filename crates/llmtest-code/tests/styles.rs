//! The three test styles, deep equality, extraction in chat and completion mode, runners
//! for other languages and the outcome of each kind of failure.

mod common;

use llmtest_grade::Outcome;
use llmtest_spec::Prompt;
use serde_json::json;

use common::{case, grade, grade_with, grader, have, kind};

#[test]
fn function_io_deep_equality() {
    if !have("python3") {
        return;
    }
    // A tuple equals a list, ints equal floats, sets match lists in any order, dict keys
    // that are ints match YAML's string keys, floats within the tolerance.
    let code = "def f(kind):\n    return {'tuple': (1, 2), 'float': 0.1 + 0.2, 'set': {3, 1, 2}, 'dict': {1: 'a'}, 'nested': [(1, [2.0, None])], 'bool': True}[kind]\n";
    let p = json!({"call": "f", "cases": [
        {"args": ["tuple"], "expect": [1, 2]},
        {"args": ["float"], "expect": 0.3},
        {"args": ["set"], "expect": [1, 2, 3]},
        {"args": ["dict"], "expect": {"1": "a"}},
        {"args": ["nested"], "expect": [[1, [2, null]]]},
        {"args": [], "kwargs": {"kind": "bool"}, "expect": true},
    ]});
    let g = grade(p, code);
    assert!(g.pass, "{}", g.found);
    assert_eq!(g.extracted.as_deref(), Some("6/6 tests"));
    // Exact floats on request; booleans are not numbers.
    let g = grade(
        json!({"call": "f", "cases": [{"args": ["float"], "expect": 0.3}], "float_tolerance": 0}),
        code,
    );
    assert!(!g.pass);
    assert!(
        g.found
            .contains("returned 0.30000000000000004, expected 0.3"),
        "{}",
        g.found
    );
    let g = grade(
        json!({"call": "f", "cases": [{"args": ["bool"], "expect": 1}]}),
        code,
    );
    assert!(!g.pass, "{}", g.found);
}

#[test]
fn partial_results_and_worst_outcome() {
    if !have("python3") {
        return;
    }
    let code = "def inv(x):\n    if x == 3:\n        return 0\n    return 1 / x\n";
    let p = json!({"call": "inv", "cases": [{"args": [1], "expect": 1}, {"args": [2], "expect": 0.5}, {"args": [3], "expect": 0.25}, {"args": [0], "expect": null}]});
    let g = grade(p, code);
    assert!(!g.pass);
    assert_eq!(g.score, 0.5);
    // A crash outranks a wrong value.
    assert_eq!(g.outcome, Some(Outcome::CodeError));
    assert_eq!(kind(&g), "runtime_error");
    assert!(
        g.found
            .contains("test 4/4: inv(0) raised ZeroDivisionError: division by zero"),
        "{}",
        g.found
    );
    let tests = &g.detail.as_ref().unwrap()["tests"];
    assert_eq!(tests[2]["kind"], "wrong_answer");
    assert!(
        tests[2]["message"]
            .as_str()
            .unwrap()
            .contains("inv(3) returned 0, expected 0.25")
    );
    assert_eq!(g.extracted.as_deref(), Some("2/4 tests, runtime_error"));
}

#[test]
fn leetcode_class_style_and_missing_functions() {
    if !have("python3") {
        return;
    }
    let p = json!({"call": "twoSum", "cases": [{"args": [[2, 7, 11, 15], 9], "expect": [0, 1]}]});
    let code = "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen:\n                return [seen[target - x], i]\n            seen[x] = i\n";
    assert!(grade(p.clone(), code).pass);
    let p2 = json!({"call": "Solution.twoSum", "cases": [{"args": [[2, 7, 11, 15], 9], "expect": [0, 1]}]});
    assert!(grade(p2, code).pass);
    let g = grade(p, "def two_sum(nums, target):\n    return [0, 1]\n");
    assert!(!g.pass);
    assert_eq!(g.outcome, None, "a missing function is a wrong answer");
    assert_eq!(kind(&g), "missing_function");
    let g = grade(
        json!({"call": "f", "cases": [{"expect": 1}]}),
        "There is no code in this answer.",
    );
    assert!(!g.pass);
}

#[test]
fn compile_errors_and_runtime_errors_while_loading() {
    if !have("python3") {
        return;
    }
    let p = json!({"call": "f", "cases": [{"expect": 1}]});
    let g = grade(p.clone(), "```python\ndef f(:\n    return 1\n```");
    assert_eq!(g.outcome, Some(Outcome::CodeError));
    assert_eq!(kind(&g), "compile_error");
    assert!(g.found.contains("SyntaxError"), "{}", g.found);
    let g = grade(
        p,
        "import numpy_that_does_not_exist\ndef f():\n    return 1\n",
    );
    assert_eq!(kind(&g), "runtime_error");
    assert!(
        g.found
            .contains("while loading the code: ModuleNotFoundError"),
        "{}",
        g.found
    );
}

#[test]
fn humaneval_style_reports_the_failing_assertion() {
    if !have("python3") {
        return;
    }
    let test = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(3) == 9, 'squares'\n";
    let p = json!({"test": test, "entry_point": "sq"});
    let g = grade(p.clone(), "def sq(x):\n    return x * 2\n");
    assert!(!g.pass);
    assert_eq!(g.outcome, None);
    assert_eq!(
        g.found,
        "wrong answer: test line 3 failed: assert candidate(3) == 9, 'squares' (squares)"
    );
    assert_eq!(g.extracted.as_deref(), Some("wrong_answer"));
    // An assert inside the solution is the solution's error, not a failed test.
    let g = grade(
        p.clone(),
        "def sq(x):\n    assert x < 3, 'too big'\n    return x * x\n",
    );
    assert_eq!(kind(&g), "runtime_error", "{}", g.found);
    assert!(
        g.found
            .contains("AssertionError: too big (solution line 2)"),
        "{}",
        g.found
    );
    // A test program that needs a missing module is the suite's problem.
    let g = grade(
        json!({"test": "import not_installed_here\ndef check(c):\n    pass\n", "entry_point": "sq"}),
        "def sq(x):\n    return x * x\n",
    );
    assert_eq!(g.outcome, Some(Outcome::InfraError), "{}", g.found);
}

#[test]
fn humaneval_values_cross_to_the_judge_with_their_semantics() {
    if !have("python3") {
        return;
    }
    // The program runs in a process apart from the test; what a test can do with a function
    // it calls must still hold: in-place changes to arguments, callables passed both ways,
    // iterators, exact types, exceptions of the builtin kinds, the program's own helpers.
    let he = |test: &str, entry: &str, code: &str| {
        grade(json!({"test": test, "entry_point": entry}), code)
    };
    let cases = [
        (
            "def check(candidate):\n    xs = [3, 1, 2]\n    d = {}\n    assert candidate(xs, d) is None\n    assert xs == [1, 2, 3] and d == {'n': 3}\n",
            "sort_in_place",
            "def sort_in_place(xs, d):\n    xs.sort()\n    d['n'] = len(xs)\n",
        ),
        (
            "def check(candidate):\n    seen = []\n    assert candidate([3, 1, 2], lambda x: seen.append(x) or -x) == [3, 2, 1]\n    assert sorted(seen) == [1, 2, 3]\n",
            "by_key",
            "def by_key(xs, key):\n    return sorted(xs, key=key)\n",
        ),
        (
            "def check(candidate):\n    add2 = candidate(2)\n    assert add2(3) == 5 and add2.__name__ == 'add'\n    assert candidate.__name__ == 'adder'\n",
            "adder",
            "def adder(n):\n    def add(x):\n        return x + n\n    return add\n",
        ),
        (
            "def check(candidate):\n    assert candidate(3) != [0, 1, 2]\n    assert list(candidate(3)) == [0, 1, 2]\n    assert candidate(0) is not None\n",
            "count",
            "def count(n):\n    yield from range(n)\n",
        ),
        (
            "def check(candidate):\n    assert candidate() == (1, [2], {3}, {'a': 1.5}, 2**70, b'x')\n    assert candidate()[4] - 2**70 == 0\n",
            "values",
            "def values():\n    return (1, [2], {3}, {'a': 1.5}, 2**70, b'x')\n",
        ),
        (
            "def check(candidate):\n    try:\n        candidate(-1)\n    except ValueError as e:\n        assert 'negative' in str(e)\n    else:\n        assert False\n    assert candidate(4) == 2\n",
            "root",
            "def root(x):\n    if x < 0:\n        raise ValueError('negative input')\n    return int(x ** 0.5)\n",
        ),
        (
            "def check(candidate):\n    assert candidate(encode_shift('abc')) == 'abc'\n",
            "decode_shift",
            "def encode_shift(s):\n    return ''.join(chr(ord(c) + 1) for c in s)\ndef decode_shift(s):\n    return ''.join(chr(ord(c) - 1) for c in s)\n",
        ),
        (
            "def check(candidate):\n    c = candidate('abca')\n    assert c.most_common(1) == [('a', 2)]\n    assert candidate('') == {}\n",
            "hist",
            "from collections import Counter\ndef hist(s):\n    return Counter(s)\n",
        ),
        (
            "def check(candidate):\n    assert candidate(0) == 1\n    assert candidate(1) == 2\n    assert candidate(2) == 3\n",
            "counter",
            "calls = []\ndef counter(x):\n    calls.append(x)\n    return len(calls)\n",
        ),
    ];
    for (test, entry, code) in cases {
        let g = he(test, entry, code);
        assert!(g.pass, "{entry}: {}", g.found);
    }
    // Exact types: a list is not the tuple the test expects.
    let g = he(
        "def check(candidate):\n    assert candidate() == (1, 2)\n",
        "pair",
        "def pair():\n    return [1, 2]\n",
    );
    assert_eq!(kind(&g), "wrong_answer", "{}", g.found);
    // An exception of the program's own class is still the program's runtime error.
    let g = he(
        "def check(candidate):\n    assert candidate() == 1\n",
        "f",
        "class Oops(Exception):\n    pass\ndef f():\n    raise Oops('mine')\n",
    );
    assert_eq!(kind(&g), "runtime_error", "{}", g.found);
    assert!(
        g.found.contains("Oops: mine (solution line 4)"),
        "{}",
        g.found
    );
}

#[test]
fn completion_mode_joins_prompt_and_completion() {
    if !have("python3") {
        return;
    }
    let prompt = "from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    \"\"\"Sum of xs.\"\"\"\n";
    let test = "def check(candidate):\n    assert candidate([1, 2, 3]) == 6\n";
    let g = grader(json!({"test": test, "entry_point": "total"}));
    let c = case("t", Prompt::Completion(prompt.into()));
    // A body continuation, as a base model writes it.
    let r = grade_with(&*g, &c, "    return sum(xs)\n");
    assert!(r.pass, "{}", r.found);
    assert!(
        r.detail.as_ref().unwrap()["extraction"]
            .as_str()
            .unwrap()
            .contains("body appended")
    );
    // The model repeated the signature (uses List from the prompt's imports).
    let r = grade_with(
        &*g,
        &c,
        "def total(xs: List[int]) -> int:\n    return sum(xs)\n",
    );
    assert!(r.pass, "{}", r.found);
    // Chat mode: the code prompt comes from the `prompt` parameter.
    let g = grader(json!({"test": test, "entry_point": "total", "prompt": prompt}));
    let r = grade(
        json!({"test": test, "entry_point": "total", "prompt": prompt}),
        "Here you go:\n```python\ndef total(xs):\n    return sum(xs)\n```",
    );
    assert!(r.pass, "{}", r.found);
    let r = grade_with(
        &*g,
        &common::chat_case("t"),
        "```python\nreturn sum(xs)\n```",
    );
    assert!(r.pass, "dedented body: {}", r.found);
}

#[test]
fn stdin_stdout_programs_and_whitespace() {
    if !have("python3") {
        return;
    }
    let code = "a, b = map(int, input().split())\nprint(a + b, ' ')\nprint()\n";
    let io = json!([{"stdin": "1 2\n", "stdout": "3\n"}, {"stdin": "5 5\n", "stdout": "10"}]);
    assert!(grade(json!({"io": io}), code).pass);
    let g = grade(json!({"io": io, "whitespace": "exact"}), code);
    assert!(!g.pass);
    assert_eq!(kind(&g), "wrong_answer");
    assert!(
        g.found.contains("printed \"3  \\n\\n\", expected \"3\\n\""),
        "{}",
        g.found
    );
    assert!(
        grade(
            json!({"io": [{"stdin": "1 2", "stdout": "3"}], "whitespace": "tokens"}),
            "print(sum(map(int, input().split())))"
        )
        .pass
    );
    let g = grade(
        json!({"io": [{"stdin": "", "stdout": "3"}]}),
        "print(int(input()))",
    );
    assert_eq!(kind(&g), "runtime_error");
    assert!(g.found.contains("EOFError"), "{}", g.found);
}

#[test]
fn javascript_runner() {
    if !have("node") {
        return;
    }
    let code = "Here:\n```javascript\nfunction twoSum(nums, target) {\n  const seen = new Map();\n  for (let i = 0; i < nums.length; i++) {\n    if (seen.has(target - nums[i])) return [seen.get(target - nums[i]), i];\n    seen.set(nums[i], i);\n  }\n  return [];\n}\n```\n```python\ndef twoSum(n, t): return None\n```";
    let p = json!({"language": "javascript", "call": "twoSum", "cases": [{"args": [[2, 7, 11, 15], 9], "expect": [0, 1]}, {"args": [[3, 3], 6], "expect": [0, 1]}]});
    let g = grade(p.clone(), code);
    assert!(g.pass, "{}", g.found);
    assert!(
        g.detail.as_ref().unwrap()["extraction"]
            .as_str()
            .unwrap()
            .starts_with("tagged `javascript`")
    );
    let g = grade(
        p.clone(),
        "```js\nconst twoSum = (nums, target) => { throw new TypeError('nope'); };\n```",
    );
    assert_eq!(kind(&g), "runtime_error");
    assert!(g.found.contains("TypeError: nope"), "{}", g.found);
    let g = grade(p, "```js\nfunction twoSum(nums, target) {\n```");
    assert_eq!(kind(&g), "compile_error", "{}", g.found);
    let he = json!({"language": "js", "entry_point": "add", "test": "const assert = require('assert');\nfunction check(candidate) {\n  assert.strictEqual(candidate(1, 2), 3);\n  assert.strictEqual(candidate(2, 2), 4);\n}\n"});
    assert!(grade(he.clone(), "function add(a, b) { return a + b; }").pass);
    let g = grade(
        he,
        "function add(a, b) { return a + b + (a === 2 ? 1 : 0); }",
    );
    assert_eq!(g.outcome, None);
    assert!(
        g.found.starts_with("wrong answer: test line 4 failed"),
        "{}",
        g.found
    );
    let g = grade(
        json!({"language": "javascript", "io": [{"stdin": "4\n", "stdout": "16\n"}]}),
        "const n = Number(require('fs').readFileSync(0, 'utf8'));\nconsole.log(n * n);\n",
    );
    assert!(g.pass, "{}", g.found);
    let g = grade(
        json!({"language": "javascript", "call": "f", "cases": [{"expect": 1}], "timeout": 1}),
        "function f() { while (true) {} }",
    );
    assert_eq!(g.outcome, Some(Outcome::CodeTimeout), "{}", g.found);
}

#[test]
fn custom_runner_with_a_compile_step() {
    if !have("sh") {
        return;
    }
    // Any language through a runner definition; `sh -n` stands in for a compiler.
    let p = json!({"language": "shell", "runner": {"file": "main.sh", "compile": ["sh", "-n", "{file}"], "run": ["sh", "{file}"], "fence_tags": ["sh", "bash"]}, "io": [{"stdin": "2 3\n", "stdout": "5\n"}]});
    let g = grade(p.clone(), "```bash\nread a b\necho $((a + b))\n```");
    assert!(g.pass, "{}", g.found);
    let g = grade(p, "```sh\nif then fi (\n```");
    assert_eq!(g.outcome, Some(Outcome::CodeError));
    assert_eq!(kind(&g), "compile_error", "{}", g.found);
}

#[test]
fn rust_runner_compiles_and_runs_in_the_sandbox() {
    // The sandbox user needs a rustc it can read: a system one (ci/setup.sh installs
    // Debian's), not rustup's in a private home directory.
    if !have("rustc") {
        return;
    }
    let p = json!({"language": "rust", "io": [{"stdin": "2 3\n", "stdout": "5\n"}, {"stdin": "-4 4\n", "stdout": "0\n"}]});
    let code = "```rust\nuse std::io::Read;\nfn main() {\n    let mut s = String::new();\n    std::io::stdin().read_to_string(&mut s).unwrap();\n    let v: Vec<i64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();\n    println!(\"{}\", v[0] + v[1]);\n}\n```";
    let g = grade(p.clone(), code);
    assert!(g.pass, "{}", g.found);
    assert_eq!(g.found, "all 2 tests passed");
    // Compiles, runs, prints the wrong sum for the second test.
    let wrong = code.replace("v[0] + v[1]", "(v[0] + v[1]).abs() + 1");
    let g = grade(p.clone(), &wrong);
    assert!(!g.pass);
    assert_eq!(kind(&g), "wrong_answer", "{}", g.found);
    assert_eq!(g.score, 0.0, "{}", g.found);
    let wrong = code.replace("v[0] + v[1]", "if v[0] < 0 { 1 } else { v[0] + v[1] }");
    let g = grade(p.clone(), &wrong);
    assert_eq!(kind(&g), "wrong_answer", "{}", g.found);
    assert!(
        g.found.starts_with("test 2/2: printed \"1\\n\""),
        "{}",
        g.found
    );
    assert_eq!(g.score, 0.5);
    // A panic is the program's runtime error.
    let g = grade(
        p.clone(),
        "```rust\nfn main() { let v: Vec<i32> = Vec::new(); println!(\"{}\", v[1]); }\n```",
    );
    assert_eq!(kind(&g), "runtime_error", "{}", g.found);
    assert_eq!(g.outcome, Some(Outcome::CodeError));
    let g = grade(p, "```rust\nfn main() { let x: i32 = \"no\"; }\n```");
    assert_eq!(kind(&g), "compile_error", "{}", g.found);
    assert!(g.found.contains("error[E0308]"), "{}", g.found);
}

#[test]
fn a_runner_that_cannot_start_is_a_sandbox_failure_not_a_wrong_answer() {
    let p = json!({"language": "mystery", "runner": {"file": "main.x", "run": ["llmtest-no-such-interpreter", "{file}"]}, "io": [{"stdout": "1"}]});
    let g = grade(p, "print(1)");
    assert!(!g.pass);
    assert_eq!(g.outcome, Some(Outcome::InfraError), "{}", g.found);
    assert_eq!(kind(&g), "sandbox");
    assert!(
        g.found.contains("not found on the sandbox PATH"),
        "{}",
        g.found
    );
}
