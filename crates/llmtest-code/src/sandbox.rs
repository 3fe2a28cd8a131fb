//! Runs one program in a sandbox: a fresh working directory, a scrubbed environment, resource
//! limits, a wall-clock timeout that kills everything the program started, no network and
//! a read-only file system outside the working directory where the kernel allows it.
//!
//! Isolation is assembled from plain Linux primitives in the forked child, before `exec`:
//!
//! | what | how | needs |
//! |---|---|---|
//! | network | a new network namespace (only a down loopback) | root, or unprivileged user namespaces |
//! | file system | a new mount namespace, everything remounted read-only except the working directory; a private `/proc` | same, Linux ≥ 5.12 (`mount_setattr`) |
//! | processes | a new PID namespace: the program is PID 1 of it, so killing it kills every descendant, `setsid` or not | same |
//! | user | as root: an unprivileged uid per execution slot, so the process limit applies and the program cannot signal or write anything of root's; otherwise a user namespace mapping the caller's uid | — |
//! | resources | `setrlimit`: CPU seconds, address space, file size, open files, processes, no core dumps | — |
//!
//! What works is probed once per process ([`isolation`]); what does not is reported in every
//! grade, never silently dropped.
//!
//! Python programs tested through the harness are forked from a warm interpreter per
//! execution slot (see `zygote.rs`) when the PID namespace is available, from a process's
//! second execution on (the first runs cold: a warm interpreter costs more than one cold
//! run): same isolation, a fresh process and directory per execution, without paying
//! Python's start-up each time. The processes of a nextest run (one per trial) share such
//! interpreters and the probe's result (see `shared.rs`).

use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `PATH` a sandboxed program sees. The caller's own `PATH` is not passed on (it may
/// point into a home directory the sandbox user cannot read, or at tools that are not
/// meant to be used); runners that need another program give its absolute path.
pub const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The first uid used for sandboxed programs when running as root. Each execution slot of
/// each process gets its own uid above it, so process limits never interfere.
pub(crate) const UID_BASE: u32 = 0x4000_0000;

/// Resource limits of one execution.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Wall-clock time before the whole process tree is killed.
    pub wall: Duration,
    /// CPU seconds (`RLIMIT_CPU`).
    pub cpu_s: u64,
    /// Address space in bytes (`RLIMIT_AS`); `None` leaves it unlimited (V8, compilers).
    pub address_space: Option<u64>,
    /// Bytes kept of stdout and of stderr each; a program writing more is killed.
    pub output: usize,
    /// Largest file the program may write (`RLIMIT_FSIZE`).
    pub file_size: u64,
    /// Open file descriptors (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Processes and threads (`RLIMIT_NPROC`).
    pub processes: u64,
}

/// What this machine's kernel lets the sandbox do, probed once per process.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Isolation {
    /// Programs run in their own network namespace (no network, not even loopback).
    pub network: bool,
    /// Everything outside the working directory is read-only, `/proc` is private.
    pub filesystem: bool,
    /// Programs run as PID 1 of their own PID namespace.
    pub pid: bool,
    /// Running as root: the uids sandboxed programs run as (first, last).
    pub uids: Option<(u32, u32)>,
    /// In a user namespace (not root).
    pub user_namespace: bool,
    /// Why a part is missing, for people.
    pub notes: Vec<String>,
}

impl Isolation {
    /// A warning to show beside every result when the sandbox is weaker than designed.
    pub fn warning(&self) -> Option<String> {
        let mut missing = Vec::new();
        if !self.network {
            missing.push("NETWORK NOT ISOLATED (no network namespace)");
        }
        if !self.filesystem {
            missing.push("file system writable outside the sandbox directory");
        }
        if !self.pid {
            missing.push("no PID namespace");
        }
        if missing.is_empty() {
            return None;
        }
        let mut w = format!("WARNING: weak sandbox: {}", missing.join("; "));
        if !self.notes.is_empty() {
            w.push_str(&format!(" ({})", self.notes.join("; ")));
        }
        Some(w)
    }

    /// A short description for reports.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        parts.push(if self.network {
            "no network"
        } else {
            "NETWORK OPEN"
        });
        parts.push(if self.filesystem {
            "read-only fs"
        } else {
            "writable fs"
        });
        if self.pid {
            parts.push("pid namespace");
        }
        if self.uids.is_some() {
            parts.push("unprivileged uid");
        } else if self.user_namespace {
            parts.push("user namespace");
        }
        parts.join(", ")
    }
}

/// The sandbox's capabilities on this machine (probed on first use).
pub fn isolation() -> &'static Isolation {
    static ISO: OnceLock<Isolation> = OnceLock::new();
    ISO.get_or_init(|| {
        // The processes of one run (`cargo nextest`: one per trial) share the probe's result.
        if let Some(iso) = crate::shared::cached_probe(process_uids()) {
            return iso;
        }
        let iso = probe();
        crate::shared::store_probe(&iso);
        iso
    })
}

/// As root: the uids this process's sandboxed programs run as (first, last).
fn process_uids() -> Option<(u32, u32)> {
    let root = unsafe { libc::geteuid() } == 0;
    let pid = std::process::id();
    root.then(|| {
        let first = UID_BASE + ((pid & 0xFFFF) << 8);
        (first, first + MAX_SLOTS as u32 - 1)
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Features {
    userns: bool,
    netns: bool,
    mntns: bool,
    pidns: bool,
    uid_drop: bool,
}

fn features_of(iso: &Isolation) -> Features {
    Features {
        userns: iso.user_namespace,
        netns: iso.network,
        mntns: iso.filesystem,
        pidns: iso.pid,
        uid_drop: iso.uids.is_some(),
    }
}

fn probe() -> Isolation {
    let root = unsafe { libc::geteuid() } == 0;
    let uids = process_uids();
    let mut notes = Vec::new();
    let candidates = [
        (true, true, true),
        (true, false, true),
        (true, false, false),
        (false, false, false),
    ];
    for (netns, mntns, pidns) in candidates {
        let f = Features {
            userns: !root && (netns || mntns || pidns),
            netns,
            mntns,
            pidns,
            uid_drop: root,
        };
        match probe_one(f, uids.map(|u| u.0)) {
            Ok(()) => {
                return Isolation {
                    network: netns,
                    filesystem: mntns,
                    pid: pidns,
                    uids,
                    user_namespace: f.userns,
                    notes,
                };
            }
            Err(e) => notes.push(format!(
                "{} unavailable: {e}",
                match (netns, mntns, pidns) {
                    (true, true, true) => "net+mount+pid namespaces",
                    (true, false, true) => "net+pid namespaces",
                    (true, false, false) => "net namespace",
                    _ => "plain rlimits",
                },
            )),
        }
    }
    Isolation {
        network: false,
        filesystem: false,
        pid: false,
        uids,
        user_namespace: false,
        notes,
    }
}

fn probe_one(f: Features, uid: Option<u32>) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("llmtest-code-probe-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    if let Some(uid) = uid {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid))
            .map_err(|e| format!("chown: {e}"))?;
    }
    let limits = Limits {
        wall: Duration::from_secs(10),
        cpu_s: 5,
        address_space: None,
        output: 4096,
        file_size: 1 << 20,
        open_files: 64,
        processes: 16,
    };
    // The probe checks what matters: the process starts, cannot reach the loopback network
    // interface (down in a fresh namespace) and cannot write outside its directory.
    let script = "test -w . && echo ok";
    let argv = ["/bin/sh".to_string(), "-c".to_string(), script.to_string()];
    let out = run_with(f, 0, &argv, dir.path(), None, &limits).map_err(|e| e.0)?;
    if out.exit != Exit::Code(0) || !out.stdout.starts_with(b"ok") {
        return Err(format!(
            "probe exited with {:?}: {}",
            out.exit,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// How a program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    Code(i32),
    Signal(i32),
}

/// The result of one execution.
#[derive(Debug)]
pub(crate) struct Output {
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Killed at the wall-clock limit.
    pub timed_out: bool,
    /// Killed for writing more than the output bound.
    pub output_exceeded: bool,
    /// Killed at the CPU limit (SIGXCPU, or SIGKILL past the hard limit).
    pub cpu_exceeded: bool,
    pub wall: Duration,
}

/// The sandbox could not run the program (not the program's fault).
#[derive(Debug)]
pub(crate) struct SandboxError(pub String);

const MAX_SLOTS: usize = 256;

/// Bounds concurrent executions to the number of cores: `grade()` is called from many
/// threads at once, and programs under a wall-clock limit must not compete for CPU.
struct Slots {
    free: Mutex<Vec<usize>>,
    cv: Condvar,
}

pub(crate) struct Slot {
    pub(crate) index: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let s = slots();
        s.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(self.index);
        s.cv.notify_one();
    }
}

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let n = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
            .clamp(1, MAX_SLOTS);
        Slots {
            free: Mutex::new((0..n).rev().collect()),
            cv: Condvar::new(),
        }
    })
}

/// Waits for a free execution slot.
pub(crate) fn acquire() -> Slot {
    let s = slots();
    let mut free = s.free.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if let Some(index) = free.pop() {
            return Slot { index };
        }
        free = s.cv.wait(free).unwrap_or_else(|p| p.into_inner());
    }
}

/// A fresh working directory for one graded sample, owned by the slot's sandbox user.
pub(crate) struct Workdir {
    dir: tempfile::TempDir,
    pub(crate) owner: Option<u32>,
}

impl Workdir {
    pub fn new(slot: &Slot) -> Result<Workdir, SandboxError> {
        Self::new_in(slot, &std::env::temp_dir())
    }

    /// A fresh directory under `parent` (a warm interpreter's writable slot directory).
    pub fn new_in(slot: &Slot, parent: &Path) -> Result<Workdir, SandboxError> {
        let owner = isolation().uids.map(|(first, _)| first + slot.index as u32);
        Self::new_owned(parent, owner)
    }

    /// A fresh directory under `parent` handed to `owner` (a sandbox uid), if any.
    pub fn new_owned(parent: &Path, owner: Option<u32>) -> Result<Workdir, SandboxError> {
        let dir = tempfile::Builder::new()
            .prefix("llmtest-code-")
            .tempdir_in(parent)
            .map_err(|e| SandboxError(format!("cannot create the sandbox directory: {e}")))?;
        let wd = Workdir { dir, owner };
        wd.chown(wd.path())?;
        Ok(wd)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file the program may read and overwrite.
    pub fn write(&self, name: &str, contents: &[u8]) -> Result<PathBuf, SandboxError> {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents)
            .map_err(|e| SandboxError(format!("cannot write `{name}` in the sandbox: {e}")))?;
        self.chown(&p)?;
        Ok(p)
    }

    fn chown(&self, p: &Path) -> Result<(), SandboxError> {
        if let Some(uid) = self.owner {
            std::os::unix::fs::chown(p, Some(uid), Some(uid)).map_err(|e| {
                SandboxError(format!(
                    "cannot hand `{}` to the sandbox user: {e}",
                    p.display()
                ))
            })?;
        }
        Ok(())
    }
}

/// Runs `argv` in `workdir` under `limits` with the isolation this machine allows.
pub(crate) fn run(
    slot: &Slot,
    argv: &[String],
    workdir: &Path,
    stdin: Option<&[u8]>,
    limits: &Limits,
) -> Result<Output, SandboxError> {
    let iso = isolation();
    run_with(features_of(iso), slot.index, argv, workdir, stdin, limits)
}

/// Everything the child needs, prepared before `fork` so that the child allocates nothing.
struct ChildPlan {
    f: Features,
    workdir: CString,
    uid: u32,
    outer_uid: u32,
    outer_gid: u32,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    rlimits: Vec<(libc::__rlimit_resource_t, libc::rlim_t, libc::rlim_t)>,
}

/// Who a sandboxed program runs as (when running as root).
#[derive(Clone, Copy, Debug)]
pub(crate) enum SandboxUser {
    /// The uid of this process's execution slot.
    Slot(usize),
    /// This uid (`None`: the caller's own, in a user namespace).
    Fixed(Option<u32>),
}

/// A command that runs `argv` in `workdir` inside the sandbox. `limits.cpu_s == 0` leaves
/// CPU time unlimited (a long-lived process whose children set their own).
pub(crate) fn sandboxed_command(
    f: Features,
    user: SandboxUser,
    argv: &[String],
    workdir: &Path,
    limits: &Limits,
) -> Result<Command, SandboxError> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| SandboxError("empty command".into()))?;
    let workdir_c = CString::new(workdir.as_os_str().as_bytes())
        .map_err(|_| SandboxError("sandbox path contains NUL".into()))?;
    let outer_uid = unsafe { libc::geteuid() };
    let outer_gid = unsafe { libc::getegid() };
    let uid = match (f.uid_drop, user) {
        (true, SandboxUser::Slot(slot)) => {
            UID_BASE + ((std::process::id() & 0xFFFF) << 8) + slot as u32
        }
        (true, SandboxUser::Fixed(Some(uid))) => uid,
        _ => outer_uid,
    };
    let mut rlimits = vec![
        (libc::RLIMIT_FSIZE, limits.file_size, limits.file_size),
        (libc::RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (libc::RLIMIT_NPROC, limits.processes, limits.processes),
        (libc::RLIMIT_CORE, 0, 0),
    ];
    if limits.cpu_s > 0 {
        rlimits.push((libc::RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 1));
    }
    if let Some(a) = limits.address_space {
        rlimits.push((libc::RLIMIT_AS, a, a));
    }
    let plan = ChildPlan {
        f,
        workdir: workdir_c,
        uid,
        outer_uid,
        outer_gid,
        uid_map: format!("{outer_uid} {outer_uid} 1\n").into_bytes(),
        gid_map: format!("{outer_gid} {outer_gid} 1\n").into_bytes(),
        rlimits,
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(workdir)
        .env_clear()
        .env("PATH", SANDBOX_PATH)
        .env("HOME", workdir)
        .env("TMPDIR", workdir)
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONHASHSEED", "0")
        .env("PYTHONIOENCODING", "utf-8")
        .process_group(0);
    // SAFETY: the closure runs in the forked child and only makes system calls on data
    // prepared above (no allocation, no locks).
    unsafe {
        cmd.pre_exec(move || child_setup(&plan));
    }
    Ok(cmd)
}

pub(crate) fn current_features() -> Features {
    features_of(isolation())
}

fn run_with(
    f: Features,
    slot: usize,
    argv: &[String],
    workdir: &Path,
    stdin: Option<&[u8]>,
    limits: &Limits,
) -> Result<Output, SandboxError> {
    let program = argv.first().map(String::as_str).unwrap_or("");
    let mut cmd = sandboxed_command(f, SandboxUser::Slot(slot), argv, workdir, limits)?;
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| SandboxError(spawn_error(program, &e, f)))?;
    let pid = child.id() as i32;
    let reaped = Arc::new(AtomicBool::new(false));
    let exceeded = Arc::new(AtomicBool::new(false));
    let pidns = f.pidns;
    let kill_group = {
        let reaped = reaped.clone();
        move || {
            if !reaped.load(Ordering::SeqCst) {
                // SAFETY: plain syscalls. With a PID namespace the relay kills the program and
                // reaps it; without, the group (the child's pid, process_group(0)) is killed.
                unsafe {
                    if pidns {
                        libc::kill(pid, libc::SIGTERM);
                    } else {
                        libc::kill(-pid, libc::SIGKILL);
                    }
                }
            }
        }
    };

    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let stdin_pipe = child.stdin.take();
    let stdin_data = stdin.map(<[u8]>::to_vec);
    let (tx, rx) = std::sync::mpsc::channel();
    let (out, err, status) = std::thread::scope(|s| {
        let read = |mut r: Box<dyn Read + Send>| {
            let kill = kill_group.clone();
            let exceeded = exceeded.clone();
            let bound = limits.output;
            move || {
                let mut kept = Vec::new();
                let mut buf = [0u8; 16384];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let room = bound.saturating_sub(kept.len());
                            kept.extend_from_slice(&buf[..n.min(room)]);
                            if n > room {
                                exceeded.store(true, Ordering::SeqCst);
                                kill();
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
                kept
            }
        };
        let h_out = s.spawn(read(Box::new(stdout)));
        let h_err = s.spawn(read(Box::new(stderr)));
        if let (Some(mut w), Some(data)) = (stdin_pipe, stdin_data) {
            s.spawn(move || {
                use std::io::Write;
                let _ = w.write_all(&data);
            });
        }
        let reaped2 = reaped.clone();
        s.spawn(move || {
            let st = child.wait();
            reaped2.store(true, Ordering::SeqCst);
            let _ = tx.send(st);
        });
        let mut timed_out = false;
        let status = match rx.recv_timeout(limits.wall) {
            Ok(st) => st,
            Err(_) => {
                timed_out = true;
                kill_group();
                match rx.recv_timeout(Duration::from_secs(5)) {
                    Ok(st) => st,
                    Err(_) => {
                        // The relay did not finish the job: kill the whole group.
                        unsafe { libc::kill(-pid, libc::SIGKILL) };
                        rx.recv().unwrap_or_else(|_| {
                            Err(std::io::Error::other("waiter thread vanished"))
                        })
                    }
                }
            }
        };
        // Everything in the group is dead once the PID-1 program exits (PID namespace);
        // without one, make sure no straggler keeps the pipes open.
        if !f.pidns {
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let out = h_out.join().unwrap_or_default();
        let err = h_err.join().unwrap_or_default();
        (out, err, status.map(|s| (s, timed_out)))
    });
    let wall = start.elapsed();
    let (status, timed_out) =
        status.map_err(|e| SandboxError(format!("cannot wait for the program: {e}")))?;
    let exit = match (status.code(), status.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        _ => Exit::Code(-1),
    };
    let cpu_exceeded = !timed_out && exit == Exit::Signal(libc::SIGXCPU);
    Ok(Output {
        exit,
        stdout: out,
        stderr: err,
        timed_out,
        output_exceeded: exceeded.load(Ordering::SeqCst),
        cpu_exceeded,
        wall,
    })
}

pub(crate) fn spawn_error(program: &str, e: &std::io::Error, f: Features) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "cannot start `{program}`: not found on the sandbox PATH ({SANDBOX_PATH}); give an absolute path in the runner"
        ),
        std::io::ErrorKind::PermissionDenied if f.uid_drop => format!(
            "cannot start `{program}`: permission denied for the sandbox user (programs run as an unprivileged uid: the interpreter must be readable and executable by all users)"
        ),
        _ => format!("cannot start `{program}` in the sandbox: {e}"),
    }
}

/// The program's pid, in the relay process (see `child_setup`).
static RELAY_CHILD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn relay_sigterm(_: libc::c_int) {
    let child = RELAY_CHILD.load(Ordering::SeqCst);
    unsafe {
        if child > 0 {
            libc::kill(child, libc::SIGKILL);
        } else {
            libc::_exit(128 + libc::SIGTERM);
        }
    }
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const AT_RECURSIVE: libc::c_uint = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn check(r: libc::c_int) -> std::io::Result<()> {
    if r == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

unsafe fn write_file(path: &[u8], data: &[u8]) -> std::io::Result<()> {
    // `path` is NUL-terminated by the caller.
    unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        libc::close(fd);
        if n < 0 || n as usize != data.len() {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// Runs in the forked child before `exec`. Async-signal-safe: system calls only.
fn child_setup(p: &ChildPlan) -> std::io::Result<()> {
    unsafe {
        let f = p.f;
        let mut flags = 0;
        if f.userns {
            flags |= libc::CLONE_NEWUSER;
        }
        if f.netns {
            flags |= libc::CLONE_NEWNET;
        }
        if f.mntns {
            flags |= libc::CLONE_NEWNS;
        }
        if f.pidns {
            flags |= libc::CLONE_NEWPID;
        }
        if flags != 0 {
            check(libc::unshare(flags))?;
        }
        if f.userns {
            write_file(b"/proc/self/setgroups\0", b"deny")?;
            write_file(b"/proc/self/uid_map\0", &p.uid_map)?;
            write_file(b"/proc/self/gid_map\0", &p.gid_map)?;
        }
        if f.pidns {
            // The caller stays outside the new PID namespace; its next child is PID 1 there.
            // This process becomes a small relay: it waits for that child and exits the same
            // way, so the parent sees the program's own status. SIGTERM to the relay kills
            // the program (PID 1, so its whole namespace) and the relay then reaps it, which
            // leaves no zombie for the system's init to collect.
            let handler = relay_sigterm as extern "C" fn(libc::c_int);
            libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
            let child = libc::fork();
            if child < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if child == 0 {
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                check(libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ))?;
            }
            if child > 0 {
                RELAY_CHILD.store(child, Ordering::SeqCst);
                // Close the descriptors the parent waits on (the exec-error pipe), keeping
                // stdio: the parent's spawn returns as soon as the program itself execs.
                if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
                    for fd in 3..1024 {
                        libc::close(fd);
                    }
                }
                let mut st = 0;
                loop {
                    let r = libc::waitpid(child, &mut st, 0);
                    if r == child {
                        break;
                    }
                    if r < 0 && *libc::__errno_location() != libc::EINTR {
                        libc::_exit(125);
                    }
                }
                if libc::WIFEXITED(st) {
                    libc::_exit(libc::WEXITSTATUS(st));
                }
                let sig = libc::WTERMSIG(st);
                libc::signal(sig, libc::SIG_DFL);
                libc::kill(libc::getpid(), sig);
                libc::_exit(128 + sig);
            }
        }
        if f.mntns {
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            if f.pidns {
                check(libc::mount(
                    c"proc".as_ptr(),
                    c"/proc".as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ))?;
            }
            let wd = p.workdir.as_ptr();
            check(libc::mount(
                wd,
                wd,
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ))?;
            let ro = MountAttr {
                attr_set: MOUNT_ATTR_RDONLY,
                attr_clr: 0,
                propagation: 0,
                userns_fd: 0,
            };
            let r = libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                c"/".as_ptr(),
                AT_RECURSIVE,
                &ro as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            );
            check(r as libc::c_int)?;
            let rw = MountAttr {
                attr_set: 0,
                attr_clr: MOUNT_ATTR_RDONLY,
                propagation: 0,
                userns_fd: 0,
            };
            let r = libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                wd,
                AT_RECURSIVE,
                &rw as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            );
            check(r as libc::c_int)?;
        }
        // Again after the mounts: the earlier chdir still points below the bind mount.
        check(libc::chdir(p.workdir.as_ptr()))?;
        for &(res, soft, hard) in &p.rlimits {
            let lim = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            check(libc::setrlimit(res, &lim))?;
        }
        if f.uid_drop && p.uid != p.outer_uid {
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setgid(p.uid))?;
            check(libc::setuid(p.uid))?;
        }
        if f.pidns {
            // A program that leaves the process group (setsid) must still die with the relay
            // above it when the parent kills the group. Set after the uid change, which
            // clears it.
            check(libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ))?;
        }
        let _ = p.outer_gid;
        Ok(())
    }
}
