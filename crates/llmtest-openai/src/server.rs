//! Managed servers: a model server llmtest starts on a free loopback port and stops by its
//! process group.
//!
//! The child runs in its own process group (so stopping it also stops the workers a server
//! such as vLLM forks) and is spawned from a thread that lives exactly as long as the server,
//! with `PR_SET_PDEATHSIG`: if llmtest dies without running destructors (SIGINT's default
//! action, SIGKILL, a panic that aborts), the kernel sends the server SIGTERM. Normal ends go
//! through [`Server::stop`] (from `Backend::shutdown` or `Drop`): SIGTERM to the group, then
//! SIGKILL after `stop_timeout_s`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::options::ResolvedServer;

const LOG_LINES: usize = 40;
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Process groups of the servers now running, for [`stop_managed_servers`].
static LIVE: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Stops every managed server of this process now (SIGTERM to each group, SIGKILL to those
/// still there after 2 s). For a SIGINT handler that exits without running destructors;
/// `Backend::shutdown` is the ordinary way.
pub fn stop_managed_servers() {
    let groups: Vec<i32> = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    for g in &groups {
        signal_group(*g, libc::SIGTERM);
    }
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && groups.iter().any(|g| group_alive(*g)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for g in &groups {
        signal_group(*g, libc::SIGKILL);
    }
}

fn signal_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
        unsafe { libc::kill(-pgid, sig) };
    }
}

fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks that the group exists.
    pgid > 1 && unsafe { libc::kill(-pgid, 0) } == 0
}

/// Picks a free loopback port (the OS's choice; released before the server binds it).
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// The server's memory as sampled: the largest sum of resident memory over its process
/// group, or the leader's own high-water mark, whichever is larger.
fn sample_rss(pgid: i32, page: u64) -> u64 {
    let mut sum = 0u64;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state ppid pgrp …
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let pgrp = rest
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse::<i32>().ok());
        if pgrp != Some(pgid) {
            continue;
        }
        if let Ok(statm) = std::fs::read_to_string(format!("/proc/{pid}/statm"))
            && let Some(pages) = statm
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u64>().ok())
        {
            sum += pages * page;
        }
    }
    sum.max(leader_hwm(pgid))
}

fn leader_hwm(pid: i32) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A running server.
pub(crate) struct Server {
    pub pid: i32,
    pub port: Option<u16>,
    pub program: String,
    peak_rss: Arc<AtomicU64>,
    exited: Arc<Mutex<Option<String>>>,
    log: Arc<Mutex<VecDeque<String>>>,
    stop_tx: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stopped: AtomicBool,
    stop_timeout: Duration,
}

fn keep_lines(src: impl Read + Send + 'static, log: Arc<Mutex<VecDeque<String>>>) {
    std::thread::spawn(move || {
        // Bounded per line (a binary blob on stdout must not grow a String forever).
        let mut r = BufReader::new(src.take(u64::MAX));
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.by_ref().take(64 * 1024).read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line: String = String::from_utf8_lossy(&buf)
                        .trim_end()
                        .chars()
                        .take(500)
                        .collect();
                    if line.is_empty() {
                        continue;
                    }
                    let mut l = log.lock().unwrap();
                    if l.len() >= LOG_LINES {
                        l.pop_front();
                    }
                    l.push_back(line);
                }
            }
        }
    });
}

impl Server {
    /// Spawns the server with `{port}` and `{host}` substituted.
    pub fn spawn(cfg: &ResolvedServer, port: Option<u16>) -> Result<Server, String> {
        let subst = |s: &str| {
            let s = s.replace("{host}", "127.0.0.1");
            match port {
                Some(p) => s.replace("{port}", &p.to_string()),
                None => s,
            }
        };
        let program = cfg.program.clone();
        let args: Vec<String> = cfg.args.iter().map(|a| subst(a)).collect();
        let env = cfg.env.clone();
        let cwd = cfg.cwd.clone();
        let display = program
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let peak_rss = Arc::new(AtomicU64::new(0));
        let exited = Arc::new(Mutex::new(None));
        let (pid_tx, pid_rx) = mpsc::channel::<Result<i32, String>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let stop_timeout = cfg.stop_timeout;
        let thread = {
            let (log, peak_rss, exited) = (log.clone(), peak_rss.clone(), exited.clone());
            std::thread::Builder::new()
                .name("llmtest-server".into())
                .spawn(move || {
                    let mut cmd = Command::new(&program);
                    cmd.args(&args)
                        .envs(env)
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .process_group(0);
                    if !cwd.as_os_str().is_empty() {
                        cmd.current_dir(&cwd);
                    }
                    // SAFETY: between fork and exec only async-signal-safe calls: prctl, getppid.
                    unsafe {
                        let parent = libc::getpid();
                        cmd.pre_exec(move || {
                            if libc::prctl(
                                libc::PR_SET_PDEATHSIG,
                                libc::SIGTERM as libc::c_ulong,
                                0,
                                0,
                                0,
                            ) != 0
                            {
                                return Err(std::io::Error::last_os_error());
                            }
                            if libc::getppid() != parent {
                                // The parent died before prctl took effect.
                                libc::_exit(1);
                            }
                            Ok(())
                        });
                    }
                    let mut child = match cmd.spawn() {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = pid_tx
                                .send(Err(format!("cannot start `{}`: {e}", program.display())));
                            return;
                        }
                    };
                    let pid = child.id() as i32;
                    LIVE.lock().unwrap().push(pid);
                    if let Some(o) = child.stdout.take() {
                        keep_lines(o, log.clone());
                    }
                    if let Some(e) = child.stderr.take() {
                        keep_lines(e, log.clone());
                    }
                    let _ = pid_tx.send(Ok(pid));
                    // SAFETY: sysconf has no preconditions.
                    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
                    // Until a stop request, or the owner is gone.
                    while let Err(mpsc::RecvTimeoutError::Timeout) =
                        stop_rx.recv_timeout(SAMPLE_EVERY)
                    {
                        peak_rss.fetch_max(sample_rss(pid, page), Ordering::Relaxed);
                        if let Ok(Some(status)) = child.try_wait() {
                            *exited.lock().unwrap() = Some(status.to_string());
                            break;
                        }
                    }
                    peak_rss.fetch_max(leader_hwm(pid), Ordering::Relaxed);
                    signal_group(pid, libc::SIGTERM);
                    let until = Instant::now() + stop_timeout;
                    let mut status = None;
                    while Instant::now() < until {
                        if let Ok(Some(s)) = child.try_wait() {
                            status = Some(s);
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    // Workers that outlived the leader, or a leader that ignored SIGTERM.
                    signal_group(pid, libc::SIGKILL);
                    let status = status.or_else(|| child.wait().ok());
                    let mut ex = exited.lock().unwrap();
                    if ex.is_none() {
                        *ex = Some(
                            status
                                .map(|s| s.to_string())
                                .unwrap_or_else(|| "unknown".into()),
                        );
                    }
                    LIVE.lock().unwrap().retain(|p| *p != pid);
                })
                .map_err(|e| format!("cannot start a thread for the server: {e}"))?
        };
        let pid = match pid_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(pid)) => pid,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => return Err(format!("`{display}` did not start within 30 s")),
        };
        Ok(Server {
            pid,
            port,
            program: display,
            peak_rss,
            exited,
            log,
            stop_tx: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
            stopped: AtomicBool::new(false),
            stop_timeout,
        })
    }

    /// `Some(status)` once the server has exited.
    pub fn exit_status(&self) -> Option<String> {
        self.exited.lock().unwrap().clone()
    }

    /// The last lines the server printed.
    pub fn log_tail(&self, lines: usize) -> String {
        let l = self.log.lock().unwrap();
        let skip = l.len().saturating_sub(lines);
        l.iter().skip(skip).cloned().collect::<Vec<_>>().join("\n")
    }

    pub fn peak_rss_bytes(&self) -> u64 {
        self.peak_rss.load(Ordering::Relaxed)
    }

    /// Stops the server and waits for it (at most `stop_timeout_s` plus a second).
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(tx) = self.stop_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.lock().unwrap().take() {
            let until = Instant::now() + self.stop_timeout + Duration::from_secs(2);
            while !t.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn sh(script: &str) -> ResolvedServer {
        ResolvedServer {
            program: PathBuf::from("sh"),
            args: vec!["-c".into(), script.into()],
            env: vec![],
            cwd: std::env::temp_dir(),
            ready_timeout: Duration::from_secs(5),
            stop_timeout: Duration::from_secs(2),
            ready_check: Default::default(),
        }
    }

    fn alive(pid: i32) -> bool {
        // A zombie still answers kill(0); read its state instead.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
            .unwrap_or(false)
    }

    #[test]
    fn stop_kills_the_whole_group() {
        // A server that forks a worker and ignores SIGTERM in both.
        let s = Server::spawn(
            &sh("trap '' TERM; sleep 30 & echo worker=$!; echo port={port}; wait"),
            Some(4242),
        )
        .unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        while !s.log_tail(5).contains("worker=") && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let log = s.log_tail(5);
        assert!(log.contains("port=4242"), "{log}");
        let worker: i32 = log
            .lines()
            .find_map(|l| l.strip_prefix("worker="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(alive(s.pid) && alive(worker));
        std::thread::sleep(SAMPLE_EVERY * 2);
        assert!(s.peak_rss_bytes() > 0, "memory was sampled");
        let t = Instant::now();
        s.stop();
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(!alive(s.pid), "leader stopped");
        assert!(!alive(worker), "worker stopped with its group");
        assert!(s.exit_status().is_some());
        assert!(!LIVE.lock().unwrap().contains(&s.pid));
    }

    #[test]
    fn an_exit_is_noticed_and_a_bad_program_is_an_error() {
        let s = Server::spawn(&sh("echo failing >&2; exit 3"), None).unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        while s.exit_status().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(s.exit_status().unwrap().contains('3'));
        assert!(s.log_tail(3).contains("failing"));
        let mut bad = sh("");
        bad.program = PathBuf::from("/nonexistent/llmtest-server");
        assert!(
            Server::spawn(&bad, None)
                .err()
                .unwrap()
                .contains("cannot start")
        );
    }
}
