//! Warm Python interpreters shared by the processes of one test run. Under `cargo nextest`
//! every trial is a process of its own and runs one program, so a process's own warm
//! interpreter (`zygote.rs`) never pays off and each HumanEval trial paid Python's start-up,
//! its imports and the harness's compilation (≈35 ms). Here the first process that needs
//! one starts a warm interpreter per slot that outlives it; the next processes connect to it
//! and it forks their executions exactly as a process's own one does (same sandbox, a fresh
//! process, directory and limits per execution, every other process of the namespace killed
//! after each). It exits after a few idle seconds.
//!
//! Layout, in the temporary directory: `llmtest-warm-EUID/KEY/` (both mode 0711, owned by
//! the caller; KEY hashes the interpreter's scripts, the sandbox's features and this
//! version, so a different build never talks to another's interpreter), and in it per slot
//! `K`: `slot-K.lock` (an exclusive `flock` held for the whole start or execution: one client
//! per interpreter at a time, one starter) and `slot-K/` (the interpreter's working
//! directory, where each execution gets its fresh directory). The socket is an abstract one,
//! `@llmtest-warm-EUID-HASH-K` (HASH: of that directory's path), bound by the starter: it
//! lives in the network namespace it was made in, so sandboxed programs (each in a fresh
//! one) cannot reach it, and it leaves no file behind. The interpreter inherits it, listens,
//! and serves only clients of the caller's uid; a client checks the interpreter's uid before
//! sending anything. `llmtest-warm-EUID/probe-BOOT.json` keeps the sandbox probe's result
//! (≈5 ms: a program started in fresh namespaces) for the run's other processes, for ten
//! minutes of the same boot.
//!
//! On by default in processes run by nextest (`NEXTEST_RUN_ID` is set); `LLMTEST_SHARED_WARM`
//! = `1` or `0` turns it on or off anywhere, `LLMTEST_SHARED_WARM_IDLE_MS` sets the idle time
//! (default 10,000). Anything unexpected falls back to the process's own interpreter or a
//! cold start.

use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sandbox::{self, Limits, Output, SandboxError, Workdir};
use crate::zygote::{self, HARNESS_PY, ZYGOTE_PY};

/// Where the shared interpreters live and how long they wait.
#[derive(Clone, Debug)]
struct Config {
    base: PathBuf,
    idle: Duration,
    slots: usize,
    key: u64,
    /// `llmtest-warm-EUID-HASH-`: the abstract socket names' common part (HASH: of `base`).
    socket_prefix: String,
}

static CONFIG: OnceLock<Option<Config>> = OnceLock::new();

/// Turns shared warm interpreters on for this process with their directory under `parent`
/// and the given idle time, whatever the environment says (for tests). Returns false when
/// the setting was already fixed by an earlier execution.
#[doc(hidden)]
pub fn use_shared_warm(parent: &Path, idle: Duration) -> bool {
    let mut set = false;
    CONFIG.get_or_init(|| {
        set = true;
        config_in(parent, idle)
    });
    set
}

/// Whether this process's environment asks for shared interpreters.
fn wanted() -> bool {
    match std::env::var("LLMTEST_SHARED_WARM").as_deref() {
        Ok("1" | "on" | "true") => true,
        Ok("0" | "off" | "false") => false,
        _ => std::env::var_os("NEXTEST_RUN_ID").is_some(),
    }
}

fn config() -> Option<&'static Config> {
    CONFIG
        .get_or_init(|| {
            if !wanted() {
                return None;
            }
            let idle = std::env::var("LLMTEST_SHARED_WARM_IDLE_MS")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_millis)
                .unwrap_or(Duration::from_secs(10));
            config_in(&user_dir()?, idle)
        })
        .as_ref()
}

/// `llmtest-warm-EUID` in the temporary directory: the caller's own, mode 0711.
fn user_dir() -> Option<PathBuf> {
    let euid = unsafe { libc::geteuid() };
    let dir = std::env::temp_dir().join(format!("llmtest-warm-{euid}"));
    own_dir(&dir, 0o711, euid).then_some(dir)
}

/// How long a probe's result is shared.
const PROBE_FRESH: Duration = Duration::from_secs(600);

/// Where this boot's probe result is kept for the processes of a run.
fn probe_file() -> Option<PathBuf> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let boot = boot.trim();
    if boot.is_empty() || !boot.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return None;
    }
    Some(user_dir()?.join(format!("probe-{boot}.json")))
}

/// The sandbox probe's result as another process of this run found it in the last ten
/// minutes of this boot (`uids`: this process's own), when interpreters are shared.
pub(crate) fn cached_probe(uids: Option<(u32, u32)>) -> Option<sandbox::Isolation> {
    if !wanted() {
        return None;
    }
    let p = probe_file()?;
    let m = std::fs::symlink_metadata(&p).ok()?;
    let fresh = m
        .modified()
        .ok()?
        .elapsed()
        .is_ok_and(|age| age < PROBE_FRESH);
    let ours = m.is_file() && m.uid() == unsafe { libc::geteuid() } && m.mode() & 0o022 == 0;
    if !fresh || !ours {
        return None;
    }
    let v: Value = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
    let flag = |k: &str| v.get(k).and_then(Value::as_bool);
    Some(sandbox::Isolation {
        network: flag("network")?,
        filesystem: flag("filesystem")?,
        pid: flag("pid")?,
        uids,
        user_namespace: flag("user_namespace")?,
        notes: v
            .get("notes")?
            .as_array()?
            .iter()
            .map(|n| n.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()?,
    })
}

/// Keeps this process's probe result for the other processes of its run.
pub(crate) fn store_probe(iso: &sandbox::Isolation) {
    if !wanted() {
        return;
    }
    let Some(p) = probe_file() else { return };
    let text = serde_json::json!({
        "network": iso.network,
        "filesystem": iso.filesystem,
        "pid": iso.pid,
        "user_namespace": iso.user_namespace,
        "notes": iso.notes,
    })
    .to_string();
    let tmp = p.with_extension(format!("{}.tmp", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if written.is_err() || std::fs::rename(&tmp, &p).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

fn config_in(parent: &Path, idle: Duration) -> Option<Config> {
    if !sandbox::isolation().pid {
        return None; // killing "every other process" needs a namespace of its own
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ZYGOTE_PY.hash(&mut h);
    HARNESS_PY.hash(&mut h);
    format!("{:?}", sandbox::current_features()).hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    let key = h.finish();
    let euid = unsafe { libc::geteuid() };
    let base = parent.join(format!("{key:016x}"));
    if !own_dir(&base, 0o711, euid) {
        return None;
    }
    let slots = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, 64);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    base.hash(&mut h);
    let socket_prefix = format!("llmtest-warm-{euid}-{:016x}-", h.finish());
    Some(Config {
        base,
        idle,
        slots,
        key,
        socket_prefix,
    })
}

/// Creates `dir` with `mode` owned by `owner`, or checks that an existing one is a real
/// directory (not a link) of that owner that nobody else can write.
fn own_dir(dir: &Path, mode: u32, owner: u32) -> bool {
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {
            if std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).is_err() {
                return false;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return false,
    }
    match std::fs::symlink_metadata(dir) {
        Ok(m) => m.is_dir() && m.uid() == owner && m.mode() & 0o022 == 0,
        Err(_) => false,
    }
}

/// The uid the shared interpreter of slot `k` runs as: as root, one of a range apart from
/// the per-process ones (which depend on the pid); otherwise the caller's own (a user
/// namespace maps it).
fn sandbox_uid(c: &Config, k: usize) -> Option<u32> {
    sandbox::isolation()
        .uids
        .map(|_| sandbox::UID_BASE + ((0x1_0000 + (c.key as u32 & 0xFFFF)) << 8) + k as u32)
}

/// An exclusive hold on one slot, released when dropped (the lock file is closed).
struct Held {
    k: usize,
    _lock: File,
}

fn flock(f: &File, nonblocking: bool) -> bool {
    let op = libc::LOCK_EX | if nonblocking { libc::LOCK_NB } else { 0 };
    loop {
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return true;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

fn open_lock(c: &Config, k: usize) -> Option<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(c.base.join(format!("slot-{k}.lock")))
        .ok()
}

/// The lowest free slot (so one process at a time keeps using the same interpreter), else
/// waits for one chosen by pid.
fn hold(c: &Config) -> Option<Held> {
    for k in 0..c.slots {
        let f = open_lock(c, k)?;
        if flock(&f, true) {
            return Some(Held { k, _lock: f });
        }
    }
    let k = std::process::id() as usize % c.slots;
    let f = open_lock(c, k)?;
    flock(&f, false).then_some(Held { k, _lock: f })
}

/// Runs the Python harness on `files` in a fresh directory, forked from a shared warm
/// interpreter. `Ok(None)`: none is usable here; the caller runs it another way.
pub(crate) fn run(
    files: &[(&str, &[u8])],
    limits: &Limits,
) -> Result<Option<(Output, Vec<Value>)>, SandboxError> {
    let Some(c) = config() else {
        return Ok(None);
    };
    let Some(held) = hold(c) else {
        return Ok(None);
    };
    // One retry: an interpreter that reached its idle time just as we connected closes the
    // connection without an answer.
    for _ in 0..2 {
        let stream = match connect(c, held.k) {
            Some(s) => s,
            None => match start(c, held.k) {
                Some(s) => s,
                None => return Ok(None),
            },
        };
        if let Some(done) = execute(c, held.k, stream, files, limits)? {
            return Ok(Some(done));
        }
    }
    Ok(None)
}

/// The pid and uid of the process at the other end of a Unix socket.
fn peer(s: &UnixStream) -> Option<(i32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0 && cred.pid > 0).then_some((cred.pid, cred.uid))
}

/// The abstract name of slot `k`'s socket: of this user, directory (and so key) and slot.
fn socket_name(c: &Config, k: usize) -> String {
    format!("{}{k}", c.socket_prefix)
}

/// A connection to slot `k`'s running interpreter, checked to be ours.
fn connect(c: &Config, k: usize) -> Option<UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(socket_name(c, k)).ok()?;
    let s = UnixStream::connect_addr(&addr).ok()?;
    let (_, uid) = peer(&s)?;
    let expected = sandbox_uid(c, k).unwrap_or_else(|| unsafe { libc::geteuid() });
    (uid == expected).then_some(s)
}

/// Starts slot `k`'s interpreter (the caller holds the slot) and connects to it.
fn start(c: &Config, k: usize) -> Option<UnixStream> {
    let uid = sandbox_uid(c, k);
    let dir = c.base.join(format!("slot-{k}"));
    let owner = uid.unwrap_or_else(|| unsafe { libc::geteuid() });
    match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() && !m.file_type().is_symlink() && m.uid() == owner => {}
        Ok(_) => return None,
        Err(_) => {
            std::fs::DirBuilder::new().mode(0o700).create(&dir).ok()?;
            if let Some(uid) = uid {
                std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).ok()?;
            }
        }
    }
    // Written by us into the interpreter's directory: it compiles them once at start.
    put_fresh(&dir.join("llmtest_zygote.py"), ZYGOTE_PY).ok()?;
    put_fresh(&dir.join("llmtest_harness.py"), HARNESS_PY).ok()?;
    // Fails while another process holds the name (an interpreter still exiting): run cold.
    let listener = bound_socket(&socket_name(c, k))?;
    let idle = format!("{:.3}", c.idle.as_secs_f64());
    let client_uid = unsafe { libc::geteuid() }.to_string();
    let argv: Vec<String> = [
        "python3",
        "llmtest_zygote.py",
        "llmtest_harness.py",
        "--listen",
        &idle,
        &client_uid,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut cmd = sandbox::sandboxed_command(
        sandbox::current_features(),
        sandbox::SandboxUser::Fixed(uid),
        &argv,
        &dir,
        &zygote::LONG_LIVED,
    )
    .ok()?;
    cmd.stdin(Stdio::from(listener))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().ok()?;
    // The interpreter calls `listen` itself once it is ready (so the peer credentials a
    // client reads are its own): until then connecting is refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut wait = Duration::from_millis(1);
    let stream = loop {
        if let Some(s) = connect(c, k) {
            break Some(s);
        }
        if Instant::now() > deadline || !matches!(child.try_wait(), Ok(None)) {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            break None;
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_millis(20));
    };
    // Reaped by this process if it lives that long; otherwise the system's init does it.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    stream
}

/// Writes `text` to a new file at `path`, removing whatever is there first. The directory is
/// the sandbox user's: an earlier program may have left a link there, which a plain write
/// would follow (as root, anywhere).
fn put_fresh(path: &Path, text: &str) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?
        .write_all(text.as_bytes())
}

/// A Unix stream socket bound to the abstract `name`, not yet listening.
fn bound_socket(name: &str) -> Option<OwnedFd> {
    use std::os::fd::FromRawFd;
    let raw = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: a descriptor we just opened and own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = name.as_bytes();
    if bytes.len() + 1 > addr.sun_path.len() {
        return None;
    }
    // An abstract address: a NUL, then the name (no terminator; the length says where it ends).
    for (d, s) in addr.sun_path[1..].iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + 1 + bytes.len()) as libc::socklen_t;
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    };
    (r == 0).then_some(fd)
}

/// Sends one execution to slot `k`'s interpreter and reads its result. `Ok(None)`: the
/// interpreter went away before answering.
fn execute(
    c: &Config,
    k: usize,
    stream: UnixStream,
    files: &[(&str, &[u8])],
    limits: &Limits,
) -> Result<Option<(Output, Vec<Value>)>, SandboxError> {
    let owner = sandbox_uid(c, k);
    let wd = Workdir::new_owned(&c.base.join(format!("slot-{k}")), owner)?;
    for (name, data) in files {
        wd.write(name, data)?;
    }
    let req = zygote::request(&wd, limits);
    let start = Instant::now();
    let mut w = &stream;
    if writeln!(w, "{req}").and_then(|_| w.flush()).is_err() {
        return Ok(None);
    }
    // The interpreter enforces the wall-clock limit itself; one that stops answering is
    // killed (it is PID 1 of its namespace: everything in it goes too).
    let _ = stream.set_read_timeout(Some(limits.wall + Duration::from_secs(10)));
    let mut line = String::new();
    match BufReader::new(&stream).read_line(&mut line) {
        Ok(n) if n > 0 => {}
        Ok(_) => return Ok(None),
        // Reset: it died with our connection still waiting to be accepted.
        Err(e)
            if !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            return Ok(None);
        }
        Err(_) => {
            if let Some((pid, _)) = peer(&stream) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            return Err(SandboxError(
                "the shared warm interpreter stopped answering".into(),
            ));
        }
    }
    let wall = start.elapsed();
    zygote::finish(&line, &wd, limits, wall).map(Some)
}
