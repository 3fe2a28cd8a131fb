//! Warm Python interpreters: one per execution slot, started inside the sandbox, forking a
//! fresh process for each execution. Python's start-up and the imports nearly every solution
//! makes (`typing`, `math`, `collections`, …) then cost nothing per execution, which is how
//! a few-millisecond HumanEval test is not dominated by a 30-millisecond interpreter start.
//!
//! Each execution still gets a fresh process, a fresh directory, its own limits and a clean
//! namespace: the warm interpreter is PID 1 of its PID namespace and kills every other
//! process in it after each execution. Used only when the sandbox has a PID namespace and
//! the runner is the built-in `python3`; anything unexpected falls back to a cold start.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::sandbox::{self, Exit, Limits, Output, SandboxError, Slot, Workdir};

pub(crate) const ZYGOTE_PY: &str = include_str!("harness/zygote.py");
pub(crate) const HARNESS_PY: &str = include_str!("harness/harness.py");

/// A warm interpreter's own limits: it lives long; each execution sets its own.
pub(crate) const LONG_LIVED: Limits = Limits {
    wall: Duration::ZERO,
    cpu_s: 0, // unlimited
    address_space: None,
    output: 0,
    file_size: 1 << 30,
    open_files: 256,
    processes: 256,
};

struct Zygote {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    dir: tempfile::TempDir,
}

impl Drop for Zygote {
    fn drop(&mut self) {
        // SIGTERM to the relay kills the interpreter (PID 1) and with it the namespace.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

static ZYGOTES: OnceLock<Vec<Mutex<Option<Zygote>>>> = OnceLock::new();

fn zygotes() -> &'static Vec<Mutex<Option<Zygote>>> {
    ZYGOTES.get_or_init(|| (0..256).map(|_| Mutex::new(None)).collect())
}

/// Stops every warm interpreter and removes its directory when the process exits (statics
/// are never dropped).
extern "C" fn shutdown_all() {
    if let Some(all) = ZYGOTES.get() {
        for z in all {
            if let Ok(mut g) = z.try_lock() {
                g.take();
            }
        }
    }
}

fn start(slot: &Slot) -> Result<Zygote, SandboxError> {
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    AT_EXIT.call_once(|| unsafe {
        libc::atexit(shutdown_all);
    });
    let dir = tempfile::Builder::new()
        .prefix("llmtest-code-slot-")
        .tempdir()
        .map_err(|e| SandboxError(format!("cannot create the slot directory: {e}")))?;
    let owner = sandbox::isolation()
        .uids
        .map(|(first, _)| first + slot.index as u32);
    let put = |name: &str, text: &str| -> Result<(), SandboxError> {
        let p = dir.path().join(name);
        std::fs::write(&p, text)
            .map_err(|e| SandboxError(format!("cannot write `{name}`: {e}")))?;
        if let Some(uid) = owner {
            std::os::unix::fs::chown(&p, Some(uid), Some(uid))
                .map_err(|e| SandboxError(format!("chown `{name}`: {e}")))?;
        }
        Ok(())
    };
    if let Some(uid) = owner {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid))
            .map_err(|e| SandboxError(format!("chown slot directory: {e}")))?;
    }
    put("llmtest_zygote.py", ZYGOTE_PY)?;
    put("llmtest_harness.py", HARNESS_PY)?;
    let argv: Vec<String> = ["python3", "llmtest_zygote.py", "llmtest_harness.py"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut cmd = sandbox::sandboxed_command(
        sandbox::current_features(),
        sandbox::SandboxUser::Slot(slot.index),
        &argv,
        dir.path(),
        &LONG_LIVED,
    )?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| {
        SandboxError(sandbox::spawn_error(
            "python3",
            &e,
            sandbox::current_features(),
        ))
    })?;
    let stdin = child.stdin.take().expect("piped");
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    Ok(Zygote {
        child,
        stdin,
        stdout,
        dir,
    })
}

/// Runs the Python harness on `files` in a fresh directory, forked from the slot's warm
/// interpreter. `Ok(None)`: no warm interpreter here; run cold instead.
pub(crate) fn run(
    slot: &Slot,
    files: &[(&str, &[u8])],
    limits: &Limits,
) -> Result<Option<(Output, Vec<Value>)>, SandboxError> {
    if !sandbox::isolation().pid {
        return Ok(None); // killing "every other process" needs a namespace of its own
    }
    // A run's processes share interpreters (`cargo nextest`: a process per trial).
    if let Some(done) = crate::shared::run(files, limits)? {
        return Ok(Some(done));
    }
    // A process's first execution runs cold: a warm interpreter costs more than one cold
    // run (it preloads modules) and pays off from the second execution on. (Under nextest,
    // where a process runs one trial, the shared interpreters above serve it.)
    static EXECUTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if EXECUTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
        return Ok(None);
    }
    let mut guard = zygotes()[slot.index]
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        match start(slot) {
            Ok(z) => *guard = Some(z),
            Err(_) => return Ok(None),
        }
    }
    let z = guard.as_mut().expect("started");
    let wd = Workdir::new_in(slot, z.dir.path())?;
    for (name, data) in files {
        wd.write(name, data)?;
    }
    let req = request(&wd, limits);
    let start = Instant::now();
    if writeln!(z.stdin, "{req}")
        .and_then(|_| z.stdin.flush())
        .is_err()
    {
        *guard = None;
        return Ok(None);
    }
    // The interpreter enforces the wall-clock limit itself; if it stops answering, it is
    // replaced and the execution is a sandbox failure.
    let mut line = String::new();
    let reply = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = &mut z.stdout;
        let line = &mut line;
        s.spawn(move || {
            let r = reader.read_line(line);
            let _ = tx.send(r);
        });
        match rx.recv_timeout(limits.wall + Duration::from_secs(10)) {
            Ok(Ok(n)) if n > 0 => Ok(()),
            Ok(_) => Err("the warm interpreter exited"),
            Err(_) => {
                unsafe { libc::kill(z.child.id() as i32, libc::SIGTERM) };
                Err("the warm interpreter stopped answering")
            }
        }
    });
    let wall = start.elapsed();
    if let Err(msg) = reply {
        *guard = None;
        if msg.contains("exited") {
            return Ok(None);
        }
        return Err(SandboxError(msg.into()));
    }
    finish(&line, &wd, limits, wall).map(Some)
}

/// The request line for one execution in `wd`.
pub(crate) fn request(wd: &Workdir, limits: &Limits) -> Value {
    json!({
        "dir": wd.path(),
        "timeout": limits.wall.as_secs_f64(),
        "cpu": limits.cpu_s,
        "as": limits.address_space,
        "fsize": limits.file_size,
        "nofile": limits.open_files,
        "nproc": limits.processes,
    })
}

/// The execution's outcome from the interpreter's reply line and the files it left in `wd`.
pub(crate) fn finish(
    line: &str,
    wd: &Workdir,
    limits: &Limits,
    wall: Duration,
) -> Result<(Output, Vec<Value>), SandboxError> {
    let v: Value = serde_json::from_str(line.trim())
        .map_err(|e| SandboxError(format!("bad reply from the warm interpreter: {e}")))?;
    let exit = match (v["exit"].as_i64(), v["signal"].as_i64()) {
        (Some(c), _) => Exit::Code(c as i32),
        (None, Some(s)) => Exit::Signal(s as i32),
        _ => Exit::Code(-1),
    };
    let timed_out = v["timed_out"].as_bool().unwrap_or(false);
    let (stdout, out_full) = read_bounded(&wd.path().join("llmtest_stdout.txt"), limits.output);
    let (stderr, err_full) = read_bounded(&wd.path().join("llmtest_stderr.txt"), limits.output);
    let output_exceeded = !timed_out && (out_full || err_full);
    let out = Output {
        exit,
        stdout,
        stderr,
        timed_out,
        output_exceeded,
        cpu_exceeded: !timed_out && exit == Exit::Signal(libc::SIGXCPU),
        wall,
    };
    let lines = crate::run::read_results(&wd.path().join("llmtest_result.jsonl"));
    Ok((out, lines))
}

/// The first `bound` bytes of a file, and whether it was longer.
fn read_bounded(p: &Path, bound: usize) -> (Vec<u8>, bool) {
    use std::io::Read;
    let Some(f) = crate::run::open_left_file(p) else {
        return (Vec::new(), false);
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = Vec::new();
    let _ = f.take(bound as u64).read_to_end(&mut buf);
    (buf, len > bound as u64)
}
