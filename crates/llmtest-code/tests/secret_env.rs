//! A secret in the grader's environment never reaches the sandboxed program. In its own test
//! binary: planting the variable must not race other tests' reads of the environment.

mod common;

use serde_json::json;

#[test]
fn planted_secret_is_not_visible() {
    if !common::have("python3") {
        return;
    }
    let secret = "sk-llmtest-planted-4f1d2c";
    // SAFETY: the only test in this binary; no other thread reads the environment now.
    unsafe { std::env::set_var("LLMTEST_CODE_PLANTED_SECRET", secret) };
    let code = "import os\ndef f():\n    return os.environ.get('LLMTEST_CODE_PLANTED_SECRET', 'absent')\n\ndef g():\n    hits = 0\n    for p in os.listdir('/proc'):\n        try:\n            if b'sk-llmtest' in open('/proc/%s/environ' % p, 'rb').read():\n                hits += 1\n        except OSError:\n            pass\n    return hits\n\ndef h():\n    return sorted(os.environ)\n";
    let g = common::grade(json!({"call": "f", "cases": [{"expect": "absent"}]}), code);
    assert!(g.pass, "{}", g.found);
    let g = common::grade(json!({"call": "g", "cases": [{"expect": 0}]}), code);
    assert!(g.pass, "{}", g.found);
    let g = common::grade(
        json!({"call": "h", "cases": [{"expect": ["HOME", "LANG", "LC_ALL", "PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "PYTHONIOENCODING", "TMPDIR"]}]}),
        code,
    );
    assert!(g.pass, "{}", g.found);
    assert!(!format!("{g:?}").contains(secret));
}
