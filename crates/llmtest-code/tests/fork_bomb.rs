//! A fork bomb is contained and leaves no process behind. In its own test binary, so that no
//! other test's sandboxed processes are running while it looks for leftovers.

mod common;

use std::time::{Duration, Instant};

use llmtest_grade::Outcome;
use serde_json::json;

use common::{grade, have};

fn call_f(expect: serde_json::Value, timeout: f64) -> serde_json::Value {
    json!({"call": "f", "cases": [{"args": [], "expect": expect}], "timeout": timeout})
}

/// Processes still running as one of this test process's sandbox uids, apart from the
/// slots' warm interpreters.
fn sandbox_processes() -> Vec<String> {
    let Some((first, last)) = llmtest_code::isolation().uids else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse::<u32>().ok());
        // A slot's warm interpreter is PID 1 of its namespace and stays; its forks go.
        let ns_init = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|l| l.split_whitespace().last())
            == Some("1");
        if uid.is_some_and(|u| (first..=last).contains(&u)) && !ns_init {
            found.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

#[test]
fn fork_bomb_is_contained_and_cleaned_up() {
    if !have("python3") {
        return;
    }
    let bomb = "import os\ndef f():\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n";
    let t = Instant::now();
    let g = grade(call_f(json!(1), 2.0), bomb);
    assert!(!g.pass);
    assert!(
        matches!(g.outcome, Some(Outcome::CodeTimeout | Outcome::CodeError)),
        "{:?}: {}",
        g.outcome,
        g.found
    );
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    // Every forked process died with the program.
    std::thread::sleep(Duration::from_millis(200));
    let left = sandbox_processes();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
