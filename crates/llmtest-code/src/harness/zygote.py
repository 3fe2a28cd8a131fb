# llmtest warm Python: started once per execution slot inside the sandbox, it imports what
# the harness and typical solutions use, then forks a fresh process for every execution.
# Protocol: one JSON request a line, one JSON reply a line:
#   request: {"dir", "timeout", "cpu", "as", "fsize", "nofile", "nproc"}
#   reply:   {"exit": code | null, "signal": n | null, "timed_out": bool}
# Requests come on stdin and replies go to stdout (one process's own interpreter), or, with
# `--listen IDLE UID`, stdin is a Unix socket (abstract, bound by the process that started
# this one in its network namespace, which sandboxed programs are not in; this one listens on
# it): one request per connection from a client of uid UID, one at a time, and the
# interpreter exits after IDLE seconds without one (shared by the processes of a run).
# Each child runs in its own fresh directory with its own limits; after it ends, every other
# process in the namespace is killed (this process is its PID 1) and reaped.
import os
import sys
import json
import resource
import select
import signal
import time

# Preloaded: what the harness needs, and the modules most solutions import.
import bisect, collections, functools, heapq, itertools, math, re, string, typing  # noqa: E401,F401
import traceback  # noqa: F401

# Not dumpable: a program forked from here (same uid) cannot ptrace this process or read its
# memory to tamper with later executions.
try:
    import ctypes

    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
except Exception:  # noqa: BLE001 - without ctypes the namespace and uid still apply
    pass

HARNESS = compile(open(sys.argv[1], encoding="utf-8").read(), "llmtest_harness.py", "exec")
SELF = os.getpid()
_in = sys.stdin.buffer
_out = os.fdopen(1, "wb", buffering=0, closefd=False)


def _child(req):
    os.setpgid(0, 0)
    d = req["dir"]
    os.chdir(d)
    os.environ["HOME"] = d
    os.environ["TMPDIR"] = d
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    for fd, name in ((1, "llmtest_stdout.txt"), (2, "llmtest_stderr.txt")):
        f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    os.close(null)
    os.closerange(3, 4096)
    limits = [
        (resource.RLIMIT_CPU, req["cpu"], req["cpu"] + 1),
        (resource.RLIMIT_FSIZE, req["fsize"], req["fsize"]),
        (resource.RLIMIT_NOFILE, req["nofile"], req["nofile"]),
        (resource.RLIMIT_NPROC, req["nproc"], req["nproc"]),
    ]
    if req.get("as"):
        limits.append((resource.RLIMIT_AS, req["as"], req["as"]))
    for res, soft, hard in limits:
        resource.setrlimit(res, (soft, hard))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.argv = ["llmtest_harness.py"]
    code = 0
    try:
        exec(HARNESS, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _reap_all():
    try:
        os.kill(-1, signal.SIGKILL)  # as PID 1: every other process of the namespace
    except OSError:
        pass
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def execute(req):
    pid = os.fork()
    if pid == 0:
        try:
            _child(req)
        finally:
            os._exit(1)
    pidfd = os.pidfd_open(pid)
    deadline = time.monotonic() + req["timeout"]
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        r, _, _ = select.select([pidfd], [], [], left)
        if r:
            break
    if timed_out:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    os.close(pidfd)
    _reap_all()
    reply = {"timed_out": timed_out, "exit": None, "signal": None}
    if os.WIFEXITED(status):
        reply["exit"] = os.WEXITSTATUS(status)
    elif os.WIFSIGNALED(status):
        reply["signal"] = os.WTERMSIG(status)
    return (json.dumps(reply) + "\n").encode()


def serve_stdin():
    for line in _in:
        _out.write(execute(json.loads(line)))


def serve_socket(idle, client_uid):
    import socket
    import struct

    listener = socket.socket(fileno=os.dup(0))
    listener.listen(16)  # now: the credentials a client reads are this process's
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    while True:
        r, _, _ = select.select([listener], [], [], idle)
        if not r:
            return  # idle: the next process to need one starts another
        try:
            conn, _ = listener.accept()
        except OSError:
            continue
        with conn:
            try:
                cred = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
                if struct.unpack("3i", cred)[1] != client_uid:
                    continue  # not the user whose programs these are
                conn.settimeout(10)
                line = conn.makefile("rb").readline(1 << 20)
                req = json.loads(line)
            except (OSError, ValueError):
                continue  # a client that went away, or not one of ours
            reply = execute(req)
            try:
                conn.sendall(reply)
            except OSError:
                pass


if len(sys.argv) > 4 and sys.argv[2] == "--listen":
    serve_socket(float(sys.argv[3]), int(sys.argv[4]))
else:
    serve_stdin()
