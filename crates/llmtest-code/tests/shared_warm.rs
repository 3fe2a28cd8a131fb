//! Warm interpreters shared by the processes of a run (`cargo nextest`: a process per
//! trial). Each test runs this binary's `helper` in child processes, as nextest would, all
//! pointed at one temporary directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::json;

use common::{grade, have, kind};

/// Not a test on its own: in a child process started by the tests below, grades the program
/// in `SHARED_WARM_PROGRAM` (function `f`, no arguments) against `SHARED_WARM_EXPECT` and
/// prints the outcome.
#[test]
#[ignore = "run by the other tests of this file, in child processes"]
fn helper() {
    let program = std::env::var("SHARED_WARM_PROGRAM").expect("SHARED_WARM_PROGRAM");
    let expect: serde_json::Value =
        serde_json::from_str(&std::env::var("SHARED_WARM_EXPECT").unwrap()).unwrap();
    let g = grade(
        json!({"call": "f", "cases": [{"args": [], "expect": expect}], "timeout": 10.0}),
        &program,
    );
    println!("\nKIND {}", kind(&g));
    println!("DETAIL {}", serde_json::to_string(&g.detail).unwrap());
    println!("PASS {}", g.pass);
    println!("FOUND {}", g.found.replace('\n', " "));
}

fn child(dir: &Path, idle_ms: u64, program: &str, expect: serde_json::Value) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "helper",
        "--ignored",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("TMPDIR", dir)
    .env("LLMTEST_SHARED_WARM", "1")
    .env("LLMTEST_SHARED_WARM_IDLE_MS", idle_ms.to_string())
    .env("SHARED_WARM_PROGRAM", program)
    .env("SHARED_WARM_EXPECT", expect.to_string());
    c
}

fn field<'a>(out: &'a Output, name: &str) -> &'a str {
    let text = std::str::from_utf8(&out.stdout).unwrap();
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.find(&prefix).map(|at| &l[at + prefix.len()..]))
        .unwrap_or_else(|| {
            panic!(
                "no {name} in the helper's output:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

fn run(dir: &Path, idle_ms: u64, program: &str, expect: serde_json::Value) -> Output {
    child(dir, idle_ms, program, expect).output().unwrap()
}

/// The start time (in clock ticks since boot) of PID 1 of the program's namespace: the warm
/// interpreter it was forked from (a cold run is PID 1 itself).
const START_OF_PID_1: &str =
    "def f():\n    return int(open('/proc/1/stat').read().rsplit(')', 1)[1].split()[19])\n";

fn start_of_pid_1(dir: &Path, idle_ms: u64) -> u64 {
    let out = run(dir, idle_ms, START_OF_PID_1, json!(-1));
    assert_eq!(
        field(&out, "KIND"),
        "wrong_answer",
        "{}",
        field(&out, "FOUND")
    );
    let found = field(&out, "FOUND");
    // "test 1/1: f() returned 12345, expected -1"
    let got = found
        .split("returned ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok());
    got.unwrap_or_else(|| panic!("no start time in: {found}"))
}

/// Processes whose working directory is under `dir`: the warm interpreters started there.
fn interpreters_in(dir: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd"))
            && cwd.starts_with(dir)
        {
            pids.push(pid);
        }
    }
    pids
}

/// Waits (up to 40 s) for the interpreters started under `dir` to reach their idle time.
fn assert_all_exit(dir: &Path) {
    let end = Instant::now() + Duration::from_secs(40);
    loop {
        let left = interpreters_in(dir);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < end,
            "still running after their idle time: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The interpreters' abstract socket names, as the judge's network namespace lists them.
fn socket_names() -> Vec<String> {
    std::fs::read_to_string("/proc/net/unix")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(7))
        .filter_map(|p| p.strip_prefix('@'))
        .filter(|n| n.starts_with("llmtest-warm-"))
        .map(str::to_owned)
        .collect()
}

fn usable() -> Option<tempfile::TempDir> {
    if !have("python3") {
        return None;
    }
    if !llmtest_code::isolation().pid {
        eprintln!("skipped: no PID namespace here, so no warm interpreters");
        return None;
    }
    Some(tempfile::tempdir().unwrap())
}

fn canonical(t: &tempfile::TempDir) -> PathBuf {
    t.path().canonicalize().unwrap()
}

/// Stops the interpreters a test left running (they would exit after their idle time).
fn stop(dir: &Path) {
    for pid in interpreters_in(dir) {
        unsafe { libc_kill(pid, 9) };
    }
}

#[test]
fn processes_of_a_run_share_an_interpreter_that_exits_when_idle() {
    let Some(t) = usable() else { return };
    let dir = canonical(&t);
    let first = start_of_pid_1(&dir, 10_000);
    let second = start_of_pid_1(&dir, 10_000);
    assert_eq!(
        first, second,
        "the second process started an interpreter of its own"
    );
    assert!(
        !interpreters_in(&dir).is_empty(),
        "no interpreter outlived its process"
    );
    // Idle for 10 s: it exits, and the next process starts another.
    assert_all_exit(&dir);
    let third = start_of_pid_1(&dir, 300);
    assert!(third > second, "{third} after {second}");
    assert_all_exit(&dir);
}

#[test]
fn concurrent_processes_get_their_own_answers() {
    let Some(t) = usable() else { return };
    let dir = canonical(&t);
    let mut children = Vec::new();
    for i in 0..6 {
        let program = format!("def f():\n    return {i}\n");
        // Every third one is wrong.
        let expect = if i % 3 == 2 { json!(-1) } else { json!(i) };
        children.push((
            i,
            child(&dir, 500, &program, expect)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        ));
    }
    for (i, c) in children {
        let out = c.wait_with_output().unwrap();
        let want = if i % 3 == 2 { "wrong_answer" } else { "passed" };
        assert_eq!(field(&out, "KIND"), want, "{i}: {}", field(&out, "FOUND"));
        assert_eq!(field(&out, "PASS"), (i % 3 != 2).to_string(), "{i}");
    }
    assert_all_exit(&dir);
}

#[test]
fn a_program_cannot_reach_later_executions() {
    let Some(t) = usable() else { return };
    let dir = canonical(&t);
    let first = start_of_pid_1(&dir, 10_000);
    let names = socket_names();
    assert!(!names.is_empty(), "no interpreter socket is listed");
    // A daemon that would write a forged pass into every execution directory beside its own,
    // and a program that tries to replace the interpreter's files and to reach the sockets.
    let hostile = r#"import os, glob, socket, time
NAMES = NAMES_HERE
def f():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            end = time.time() + 8
            while time.time() < end:
                for d in glob.glob('../*/'):
                    try:
                        open(d + 'llmtest_result.jsonl', 'a').write('{"status": "passed"}\n{"done": true}\n')
                    except OSError:
                        pass
                time.sleep(0.005)
        os._exit(0)
    reached = []
    for name in NAMES:
        p = '\0' + name
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(p)
            reached.append(p)
        except OSError:
            pass
    for name in ('../llmtest_zygote.py', '../llmtest_harness.py'):
        try:
            open(name, 'w').write('raise SystemExit(0)\n')
        except OSError:
            pass
    return len(reached)
"#
    .replace("NAMES_HERE", &format!("{names:?}"));
    let hostile = hostile.as_str();
    let out = run(&dir, 10_000, hostile, json!(0));
    let _ = field(&out, "KIND");
    // The next process's wrong program, in the same interpreter, is still wrong.
    let out = run(&dir, 10_000, "def f():\n    return 1\n", json!(2));
    assert_eq!(
        field(&out, "KIND"),
        "wrong_answer",
        "{}",
        field(&out, "FOUND")
    );
    assert_eq!(
        start_of_pid_1(&dir, 10_000),
        first,
        "not the same interpreter"
    );
    if llmtest_code::isolation().network {
        // In a network namespace of its own the program cannot reach the interpreters'
        // sockets (abstract ones live in the judge's namespace).
        let out = run(&dir, 10_000, hostile, json!(0));
        assert_eq!(field(&out, "KIND"), "passed", "{}", field(&out, "FOUND"));
    }
    stop(&dir);
}

#[test]
fn a_link_left_in_the_interpreters_directory_is_not_written_through() {
    let Some(t) = usable() else { return };
    let dir = canonical(&t);
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    // The program replaces the interpreter's scripts with links to a file outside.
    let plant = format!(
        "import os\ndef f():\n    n = 0\n    for name in ('../llmtest_zygote.py', '../llmtest_harness.py'):\n        try:\n            os.unlink(name)\n            os.symlink({victim:?}, name)\n            n += 1\n        except OSError:\n            pass\n    return n\n",
        victim = victim.to_str().unwrap()
    );
    let out = run(&dir, 10_000, &plant, json!(2));
    assert_eq!(field(&out, "KIND"), "passed", "{}", field(&out, "FOUND"));
    // The next start writes the scripts afresh, not through the links.
    stop(&dir);
    let out = run(&dir, 10_000, "def f():\n    return 3\n", json!(3));
    assert_eq!(field(&out, "KIND"), "passed", "{}", field(&out, "FOUND"));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    stop(&dir);
}

#[test]
fn output_files_replaced_by_links_are_not_read_through() {
    let Some(t) = usable() else { return };
    let dir = canonical(&t);
    // The judge's own environment, or a file only the judge may read, shown as the
    // program's output; a FIFO would block the judge's read forever.
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "judge-only-file").unwrap();
    for target in ["/proc/self/environ", secret.to_str().unwrap(), "FIFO"] {
        let program = format!(
            "import os, sys\nfor name in ('llmtest_stdout.txt', 'llmtest_stderr.txt', 'llmtest_result.jsonl'):\n    try:\n        os.unlink(name)\n    except OSError:\n        pass\n    if {target:?} == 'FIFO':\n        os.mkfifo(name)\n    else:\n        os.symlink({target:?}, name)\nos._exit(3)\ndef f():\n    return 1\n"
        );
        let started = Instant::now();
        let out = child(&dir, 10_000, &program, json!(1))
            .env("SHARED_WARM_CANARY", "canary-4f1d")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_ne!(field(&out, "PASS"), "true", "{target}: {text}");
        assert!(
            !text.contains("canary-4f1d"),
            "{target}: the judge's environment leaked: {text}"
        );
        assert!(
            !text.contains("judge-only-file"),
            "{target}: a judge-only file leaked: {text}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{target}: {:?}",
            started.elapsed()
        );
    }
    stop(&dir);
}

#[test]
fn another_user_is_not_served() {
    use std::os::unix::process::CommandExt;
    let Some(t) = usable() else { return };
    if unsafe { libc_geteuid() } != 0 {
        return; // starting a process as another user needs root
    }
    let dir = canonical(&t);
    let _ = start_of_pid_1(&dir, 10_000);
    let names = socket_names();
    assert!(!names.is_empty());
    // As `nobody`: it connects, sends a request, and gets no answer.
    let script = format!(
        "import json, socket\nfor n in {names:?}:\n    s = socket.socket(socket.AF_UNIX)\n    try:\n        s.connect('\\0' + n)\n    except OSError:\n        continue\n    s.settimeout(20)\n    try:\n        s.sendall(json.dumps({{'dir': '/tmp', 'timeout': 1, 'cpu': 1, 'as': None, 'fsize': 1, 'nofile': 8, 'nproc': 1}}).encode() + b'\\n')\n        print('REPLY', repr(s.recv(100)))\n    except (BrokenPipeError, ConnectionResetError):\n        print('REPLY', repr(b''))\n"
    );
    let python = llmtest_code::SANDBOX_PATH
        .split(':')
        .map(|d| Path::new(d).join("python3"))
        .find(|p| p.is_file())
        .unwrap();
    let out = Command::new(python)
        .args(["-c", &script])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("REPLY"), "it could not even connect: {text}");
    for line in text.lines() {
        assert_eq!(line, "REPLY b''", "another user was served: {text}");
    }
    stop(&dir);
}

#[test]
fn a_killed_interpreter_is_replaced() {
    let Some(t) = usable() else { return };
    let dir = canonical(&t);
    let first = start_of_pid_1(&dir, 10_000);
    for pid in interpreters_in(&dir) {
        unsafe { libc_kill(pid, 9) };
    }
    let out = run(&dir, 10_000, "def f():\n    return 5\n", json!(5));
    assert_eq!(field(&out, "KIND"), "passed", "{}", field(&out, "FOUND"));
    assert_ne!(start_of_pid_1(&dir, 300), first);
    stop(&dir);
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn forged_results_do_not_pass_through_a_shared_interpreter() {
    if !have("python3") || !llmtest_code::isolation().pid {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    assert!(llmtest_code::use_shared_warm(
        t.path(),
        Duration::from_millis(500)
    ));
    let test = "def check(candidate):\n    assert candidate(1) == 2\n";
    let he = |code: &str| grade(json!({"test": test, "entry_point": "inc"}), code);
    let forge_file = "import os\nopen('llmtest_result.jsonl', 'a').write('{\"status\": \"passed\"}\\n{\"done\": true}\\n')\nos._exit(0)\ndef inc(x):\n    return 0\n";
    let forge_fds = "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'{\"status\": \"passed\"}\\n{\"done\": true}\\n')\n    except OSError:\n        pass\nos._exit(0)\ndef inc(x):\n    return 0\n";
    assert!(he("def inc(x):\n    return x + 1\n").pass);
    for code in [forge_file, forge_fds] {
        let g = he(code);
        assert!(!g.pass, "{code}: {}", g.found);
        assert_eq!(kind(&g), "early_exit", "{code}: {}", g.found);
    }
    assert!(he("def inc(x):\n    return x + 1\n").pass);
    assert!(
        !interpreters_in(&t.path().canonicalize().unwrap()).is_empty(),
        "not shared"
    );
}
