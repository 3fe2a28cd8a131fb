//! Hostile programs: each must be contained by the sandbox and reported with the right
//! outcome, quickly, leaving nothing behind.

mod common;

use std::time::{Duration, Instant};

use llmtest_grade::Outcome;
use serde_json::json;

use common::{grade, have, kind};

fn call_f(expect: serde_json::Value, timeout: f64) -> serde_json::Value {
    json!({"call": "f", "cases": [{"args": [], "expect": expect}], "timeout": timeout})
}

#[test]
fn infinite_loop_times_out() {
    if !have("python3") {
        return;
    }
    let t = Instant::now();
    let g = grade(
        call_f(json!(1), 1.0),
        "def f():\n    while True:\n        pass\n",
    );
    assert!(!g.pass);
    assert_eq!(g.outcome, Some(Outcome::CodeTimeout), "{}", g.found);
    assert_eq!(kind(&g), "timeout");
    assert!(g.found.contains("timed out after 1.0 s"), "{}", g.found);
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
}

#[test]
fn allocating_10_gb_hits_the_memory_limit() {
    if !have("python3") {
        return;
    }
    let g = grade(
        call_f(json!(1), 10.0),
        "def f():\n    x = bytearray(10 * 1024 ** 3)\n    return len(x)\n",
    );
    assert!(!g.pass);
    assert_eq!(g.outcome, Some(Outcome::CodeError), "{}", g.found);
    assert_eq!(kind(&g), "memory_limit", "{}", g.found);
    assert!(g.found.contains("MemoryError"), "{}", g.found);
    // Loading the code may allocate too.
    let g = grade(
        call_f(json!(1), 10.0),
        "BIG = [0] * (10 * 1024 ** 3 // 8)\ndef f():\n    return 1\n",
    );
    assert_eq!(kind(&g), "memory_limit", "{}", g.found);
}

#[test]
fn writing_outside_the_sandbox_directory_fails() {
    if !have("python3") {
        return;
    }
    // A world-writable directory: only a read-only mount keeps the program out of it.
    let outside = tempfile::Builder::new()
        .prefix("llmtest-code-outside-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        outside.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let target = outside.path().join("pwned.txt");
    let code = format!(
        "def f():\n    with open({:?}, 'w') as fh:\n        fh.write('pwned')\n    return 1\n",
        target.display().to_string()
    );
    let g = grade(call_f(json!(1), 5.0), &code);
    if llmtest_code::isolation().filesystem {
        assert!(!target.exists(), "the program wrote {}", target.display());
        assert!(!g.pass);
        assert_eq!(kind(&g), "runtime_error", "{}", g.found);
        assert!(
            g.found.contains("Read-only file system") || g.found.contains("Permission denied"),
            "{}",
            g.found
        );
    } else {
        assert!(
            g.found.contains("WARNING"),
            "a weak sandbox must say so: {}",
            g.found
        );
    }
    // The sandbox directory itself is writable.
    let g = grade(
        call_f(json!("ok"), 5.0),
        "def f():\n    open('scratch.txt', 'w').write('ok')\n    return open('scratch.txt').read()\n",
    );
    assert!(g.pass, "{}", g.found);
}

#[test]
fn connecting_to_localhost_fails() {
    if !have("python3") {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let code = format!(
        "import socket\ndef f():\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    s.sendall(b'leak')\n    return 1\n"
    );
    let g = grade(call_f(json!(1), 5.0), &code);
    let connected = listener.accept().is_ok();
    if llmtest_code::isolation().network {
        assert!(!connected, "the program reached 127.0.0.1:{port}");
        assert!(!g.pass);
        assert_eq!(kind(&g), "runtime_error", "{}", g.found);
        assert!(g.found.contains("Network is unreachable"), "{}", g.found);
    } else {
        assert!(
            g.found.contains("NETWORK NOT ISOLATED"),
            "an open network must be reported loudly: {}",
            g.found
        );
    }
}

#[test]
fn killing_the_parent_does_not_reach_the_grader() {
    if !have("python3") {
        return;
    }
    // Tries SIGKILL on every process it can see; returns those it hit. Left out: PID 1 (the
    // system's init refuses (EPERM) and a namespace's init, the sandbox's own, ignores
    // signals from inside, though kill() reports success; that it survived shows in the next
    // grade working) and the parent, the harness's judge (killing it is the next check).
    let code = "import os, signal\ndef f():\n    me = os.getpid()\n    targets = {int(p) for p in os.listdir('/proc') if p.isdigit()}\n    hit = []\n    for pid in sorted(targets - {0, 1, me, os.getppid()}):\n        try:\n            os.kill(pid, signal.SIGKILL)\n            hit.append(pid)\n        except OSError:\n            pass\n    return hit\n";
    let g = grade(call_f(json!([]), 5.0), code);
    assert!(
        g.pass,
        "the program could signal other processes: {}",
        g.found
    );
    // Its parent is the judge that reports the result: killing it fails the program itself.
    let g = grade(
        call_f(json!(1), 5.0),
        "import os, signal\ndef f():\n    os.kill(os.getppid(), signal.SIGKILL)\n    return 1\n",
    );
    assert!(!g.pass, "{}", g.found);
    assert_eq!(g.outcome, Some(Outcome::CodeError), "{}", g.found);
    assert!(g.found.contains("SIGKILL"), "{}", g.found);
    // Its own process group (what `kill(0)` reaches) is the judge and itself.
    let g = grade(
        call_f(json!(1), 5.0),
        "import os, signal\ndef f():\n    os.kill(0, signal.SIGKILL)\n    return 1\n",
    );
    assert!(
        matches!(g.outcome, None | Some(Outcome::CodeError)),
        "{}",
        g.found
    );
    // Still here, and the sandbox still works.
    let g = grade(call_f(json!(2), 5.0), "def f():\n    return 2\n");
    assert!(g.pass, "{}", g.found);
}

#[test]
fn printing_1_gb_is_cut_off() {
    if !have("python3") {
        return;
    }
    let t = Instant::now();
    let code = "import sys\ndef f():\n    chunk = 'x' * (1 << 20)\n    for _ in range(1024):\n        sys.stdout.write(chunk)\n    return 1\n";
    let g = grade(call_f(json!(1), 30.0), code);
    assert!(!g.pass);
    assert_eq!(g.outcome, Some(Outcome::CodeError), "{}", g.found);
    assert_eq!(kind(&g), "output_limit", "{}", g.found);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // The same through stdin/stdout tests.
    let g = grade(
        json!({"io": [{"stdout": "1\n"}], "timeout": 30}),
        "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n",
    );
    assert_eq!(kind(&g), "output_limit", "{}", g.found);
}

#[test]
fn exiting_before_the_tests_is_not_a_pass() {
    if !have("python3") {
        return;
    }
    let test = "def check(candidate):\n    assert candidate(1) == 2\n";
    let he = |code: &str| grade(json!({"test": test, "entry_point": "inc"}), code);
    for code in [
        "import sys\nsys.exit(0)\ndef inc(x):\n    return x + 1\n",
        "import os\nos._exit(0)\ndef inc(x):\n    return x + 1\n",
        "import sys\ndef inc(x):\n    sys.exit(0)\n",
        "import os\ndef inc(x):\n    os._exit(0)\n",
        "raise SystemExit\n",
    ] {
        let g = he(code);
        assert!(!g.pass, "{code}");
        assert_eq!(g.outcome, Some(Outcome::CodeError), "{code}: {}", g.found);
        assert_eq!(kind(&g), "early_exit", "{code}: {}", g.found);
    }
    assert!(he("def inc(x):\n    return x + 1\n").pass);
    // Function I/O: exiting inside the call.
    let g = grade(
        call_f(json!(1), 5.0),
        "import sys\ndef f():\n    sys.exit(0)\n",
    );
    assert_eq!(kind(&g), "early_exit", "{}", g.found);
    // stdin/stdout programs are judged by their output, so an early exit just prints less.
    let g = grade(
        json!({"io": [{"stdin": "", "stdout": "done\n"}]}),
        "import sys\nsys.exit(0)\nprint('done')\n",
    );
    assert!(!g.pass);
    assert_eq!(kind(&g), "wrong_answer", "{}", g.found);
}

#[test]
fn forged_results_and_always_equal_objects_do_not_pass() {
    if !have("python3") {
        return;
    }
    let test = "def check(candidate):\n    assert candidate(1) == 2\n";
    let he = |code: &str| grade(json!({"test": test, "entry_point": "inc"}), code);
    // Lines written into the result file, or into every descriptor the program can find,
    // lack the execution's token and are ignored.
    let forge_file = "import os\nopen('llmtest_result.jsonl', 'a').write('{\"status\": \"passed\"}\\n{\"done\": true}\\n')\nos._exit(0)\ndef inc(x):\n    return 0\n";
    let forge_fds = "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'{\"status\": \"passed\"}\\n{\"done\": true}\\n')\n    except OSError:\n        pass\nos._exit(0)\ndef inc(x):\n    return 0\n";
    // The token is not on disk for the program to read.
    let read_spec = "import json, os\nspec = json.load(open('llmtest_spec.json'))\nopen('llmtest_result.jsonl', 'a').write(json.dumps({'status': 'passed', 'k': spec.get('token')}) + '\\n' + json.dumps({'done': True, 'k': spec.get('token')}) + '\\n')\nos._exit(0)\ndef inc(x):\n    return 0\n";
    // A process's first execution runs cold; this one is it if no other test came first,
    // so that `he` below goes through the warm interpreter.
    assert!(he("def inc(x):\n    return x + 1\n").pass);
    // Warm (forked) and cold (a runner of one's own: a fresh interpreter) executions alike.
    let cold = |code: &str| {
        grade(
            json!({"test": test, "entry_point": "inc", "runner": {"file": "solution.py", "run": ["python3", "-I", "{file}"]}}),
            code,
        )
    };
    for (code, want) in [
        (forge_file, "early_exit"),
        (forge_fds, "early_exit"),
        (read_spec, "runtime_error"),
    ] {
        for g in [he(code), cold(code)] {
            assert!(!g.pass, "{code}: {}", g.found);
            assert_eq!(kind(&g), want, "{code}: {}", g.found);
        }
    }
    assert!(cold("def inc(x):\n    return x + 1\n").pass);
    // Reaching into the interpreter: walking frames and the heap for the harness's reporting
    // function or its token, patching the modules the harness reports with. The program runs
    // in a process apart from the judge, so there is nothing of the judge's to find.
    let walk_frames = "import os, sys\ndef inc(x):\n    f = sys._getframe()\n    while f is not None:\n        for name, v in list(f.f_globals.items()):\n            if 'emit' in name and callable(v):\n                try:\n                    v({'status': 'passed'})\n                    v({'done': True})\n                    os._exit(0)\n                except TypeError:\n                    pass\n        f = f.f_back\n    return 0\n";
    let scan_heap = "import gc, os\ndef inc(x):\n    for o in gc.get_objects():\n        if callable(o) and getattr(o, '__name__', '') == 'emit':\n            try:\n                o({'status': 'passed'})\n                o({'done': True})\n                os._exit(0)\n            except TypeError:\n                pass\n        if isinstance(o, dict) and isinstance(o.get('token'), str):\n            t = o['token']\n            open('llmtest_result.jsonl', 'a').write('{\"status\": \"passed\", \"k\": \"%s\"}\\n{\"done\": true, \"k\": \"%s\"}\\n' % (t, t))\n            os._exit(0)\n    return 0\n";
    let patch_json = "import json\n_dumps = json.dumps\ndef _forge(o, *a, **k):\n    if isinstance(o, dict) and o.get('status') == 'wrong_answer':\n        o = {'status': 'passed', 'k': o.get('k')}\n    return _dumps(o, *a, **k)\njson.dumps = _forge\ndef inc(x):\n    return 0\n";
    let patch_builtins = "import builtins\nbuiltins.AssertionError = type('AssertionError', (Exception,), {})\n_isinstance = builtins.isinstance\nbuiltins.isinstance = lambda o, t: True\ndef inc(x):\n    return 0\n";
    for code in [walk_frames, scan_heap, patch_json] {
        for g in [he(code), cold(code)] {
            assert!(!g.pass, "{code}: {}", g.found);
            assert_eq!(kind(&g), "wrong_answer", "{code}: {}", g.found);
        }
    }
    // The candidate's copy of the harness is the program's to change (its globals are a `gc`
    // walk away): a reply that calls its own exception a pass is read as the error it reports.
    let forge_status = "import gc\nfor g in [o for o in gc.get_objects() if isinstance(o, dict) and callable(o.get('_error_info'))]:\n    g['_error_info'] = (lambda orig: lambda e: dict(orig(e), status='passed'))(g['_error_info'])\ndef inc(x):\n    raise ValueError('nope')\n";
    for g in [he(forge_status), cold(forge_status)] {
        assert!(!g.pass, "{}", g.found);
        assert_eq!(kind(&g), "runtime_error", "{}", g.found);
    }
    // Patched builtins break the program's own process (it can no longer answer), not the
    // judge's.
    for g in [he(patch_builtins), cold(patch_builtins)] {
        assert!(!g.pass, "{}", g.found);
        assert!(
            matches!(kind(&g), "wrong_answer" | "runtime_error"),
            "{}: {}",
            kind(&g),
            g.found
        );
    }
    // An object equal to everything would make `assert candidate(1) == 2` hold, but values
    // reach the test as data: its own `__eq__` stays behind with the program.
    for code in [
        "class A:\n    def __eq__(self, o):\n        return True\ndef inc(x):\n    return A()\n",
        "class I(int):\n    def __eq__(self, o):\n        return True\n    __hash__ = int.__hash__\ndef inc(x):\n    return [I(0)][0]\n",
        "def inc(x):\n    return (type('A', (), {'__eq__': lambda s, o: True})(),)[0]\n",
    ] {
        let g = he(code);
        assert!(!g.pass, "{code}: {}", g.found);
        assert_eq!(kind(&g), "wrong_answer", "{code}: {}", g.found);
        assert!(g.found.contains("test line 2 failed"), "{}", g.found);
    }
    // Standard-library values with Python-level comparisons are still fine.
    let test = "def check(candidate):\n    assert candidate() == {'a': 2, 'b': 1}\n    assert candidate.__name__ == 'hist'\n";
    let g = grade(
        json!({"test": test, "entry_point": "hist"}),
        "from collections import Counter\ndef hist():\n    return Counter('aab')\n",
    );
    assert!(g.pass, "{}", g.found);
    let test = "def check(candidate):\n    assert candidate() == 0.5\n";
    let g = grade(
        json!({"test": test, "entry_point": "half"}),
        "from fractions import Fraction\ndef half():\n    return Fraction(1, 2)\n",
    );
    assert!(g.pass, "{}", g.found);
}

#[test]
fn javascript_programs_cannot_forge_a_pass() {
    if !have("node") {
        return;
    }
    // The program runs in a node process apart from the judge's: what it changes in its own
    // interpreter (the `fs` and `JSON` the harness reports with) or writes anywhere it can
    // (lines without the execution's token) does not reach the verdict.
    let test = "const assert = require('assert');\nfunction check(candidate) {\n  assert.strictEqual(candidate(1), 2);\n}\n";
    let he = |code: &str| {
        grade(
            json!({"language": "javascript", "test": test, "entry_point": "inc"}),
            code,
        )
    };
    let patch_fs = "const fs = require('fs');\nconst write = fs.writeSync;\nfs.writeSync = function (fd, s, ...rest) {\n  if (typeof s === 'string') s = s.replace(/\"status\":\"wrong_answer\"[^}]*?,\"k\"/, '\"status\":\"passed\",\"k\"');\n  return write.call(fs, fd, s, ...rest);\n};\nfunction inc(x) { return 0; }\n";
    let patch_json = "const J = require('vm').runInThisContext('JSON');\nconst stringify = J.stringify;\nJ.stringify = function (o, ...rest) {\n  if (o && o.status === 'wrong_answer') o = { status: 'passed', k: o.k };\n  return stringify.call(J, o, ...rest);\n};\nfunction inc(x) { return 0; }\n";
    let forge_fds = "const fs = require('fs');\nfs.appendFileSync('llmtest_result.jsonl', '{\"status\":\"passed\"}\\n{\"done\":true}\\n');\nfor (let fd = 3; fd < 64; fd++) {\n  try { fs.writeSync(fd, '{\"status\":\"passed\"}\\n{\"done\":true}\\n'); } catch (e) {}\n}\nfunction inc(x) { return 0; }\n";
    for code in [patch_fs, patch_json] {
        let g = he(code);
        assert!(!g.pass, "{code}: {}", g.found);
        assert_eq!(kind(&g), "wrong_answer", "{code}: {}", g.found);
    }
    // Garbage written into node's own descriptors (its signal pipe among them) breaks the
    // candidate's process, not the verdict.
    let g = he(forge_fds);
    assert!(!g.pass, "{}", g.found);
    assert!(
        matches!(kind(&g), "wrong_answer" | "early_exit" | "runtime_error"),
        "{}: {}",
        kind(&g),
        g.found
    );
    // The candidate's copy of the harness is the program's to change: a reply that calls its
    // own exception a pass is read as the error it reports.
    let forge_status = "const fs = require('fs');\nconst write = fs.writeSync;\nfs.writeSync = function (fd, data, ...rest) {\n  const s = Buffer.isBuffer(data) ? data.toString() : String(data);\n  return write.call(fs, fd, s.replace(/\"status\":\"runtime_error\"/g, '\"status\":\"passed\"'));\n};\nfunction inc(x) { throw new Error('nope'); }\n";
    let g = he(forge_status);
    assert!(!g.pass, "{}", g.found);
    assert_eq!(kind(&g), "runtime_error", "{}", g.found);
    assert!(he("function inc(x) { return x + 1; }").pass);
    // What crosses keeps its meaning in the test: arguments changed in place, callbacks,
    // builtin error types, BigInt, Set and Map compared deeply in the test's own realm, and
    // the program's other functions (`const` ones too) visible to the test.
    let test = "const assert = require('assert');\nfunction check(candidate) {\n  const a = [3, 1, 2];\n  assert.strictEqual(candidate(a), undefined);\n  assert.deepStrictEqual(a, [1, 2, 3]);\n  assert.deepStrictEqual(byKey([1, 3, 2], (x) => -x), [3, 2, 1]);\n  assert.throws(() => candidate(null), TypeError);\n  assert.deepStrictEqual(stats([1n, 2n]), { sum: 3n, seen: new Set([1n, 2n]), n: new Map([['n', 2]]) });\n}\n";
    let code = "function sortInPlace(a) { a.sort((x, y) => x - y); }\nconst byKey = (xs, key) => xs.slice().sort((p, q) => key(p) - key(q));\nfunction stats(xs) {\n  return { sum: xs.reduce((p, q) => p + q, 0n), seen: new Set(xs), n: new Map([['n', xs.length]]) };\n}\n";
    let g = grade(
        json!({"language": "javascript", "test": test, "entry_point": "sortInPlace"}),
        code,
    );
    assert!(g.pass, "{}", g.found);
    // The program ending itself mid-test is an early exit, as in one process.
    let g = he("function inc(x) { process.exit(0); }");
    assert!(!g.pass);
    assert_eq!(kind(&g), "early_exit", "{}", g.found);
}
