# llmtest code harness (Python). Runs solution.py against the test described in
# llmtest_spec.json and writes one JSON line per event to llmtest_result.jsonl, ending with
# {"done": true}. A program that stops before that line did not finish its tests.
#
# Two processes: the judge (this one) reads the spec, runs the test and writes the results;
# the candidate, forked before the spec is read, loads solution.py and serves calls to its
# functions. Arguments and return values cross a pipe as tagged JSON that the judge decodes
# into plain values only, so nothing the program does inside its interpreter (walking
# frames, scanning the heap, patching builtins or modules) reaches the code that reports.
import json
import os
import sys

# Not dumpable: the candidate (same uid) can neither ptrace the judge nor read its memory.
try:
    import ctypes

    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
except Exception:  # noqa: BLE001 - the uid, namespaces and token still apply
    pass

_MAX_MESSAGE = 64 << 20  # longest message accepted from the candidate
_MAX_ITEMS = 1_000_000  # most items an iterator may yield into a message
_MAX_DEPTH = 100
# A request has "op"; a reply one of the others.
_MESSAGE_KEYS = ("op", "return", "raise", "compile_error", "missing")
# What an error of the candidate may be reported as.
_REMOTE_STATUSES = ("runtime_error", "memory_limit", "early_exit")


def _last_line(e):
    import traceback  # only on errors: it costs a third of the harness's start-up

    lines = "".join(traceback.format_exception_only(type(e), e)).strip().splitlines()
    return lines[-1] if lines else type(e).__name__


def _innermost(tb):
    frame = None
    while tb is not None:
        frame = tb
        tb = tb.tb_next
    return frame


def _where(tb, filename):
    """The innermost line of `filename` in a traceback, or None."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _kind(e):
    if isinstance(e, MemoryError):
        return "memory_limit"
    if isinstance(e, SystemExit):
        return "early_exit"
    return "runtime_error"


class _Opaque:
    """A value that is not plain data: kept as its type name and repr, equal only to itself."""

    __slots__ = ("type_name", "text")

    def __init__(self, type_name, text):
        self.type_name = type_name
        self.text = text

    def __repr__(self):
        return self.text


class _Peer:
    """One end of the pipe pair: tagged values both ways, calls both ways (a callable
    passed as an argument is called back on the side that owns it)."""

    def __init__(self, rfd, wfd, on_eof):
        self._r = os.fdopen(rfd, "rb", buffering=1 << 16)
        self._w = wfd
        self._on_eof = on_eof
        self._own = []  # callables of this side, by id
        self.serve_extra = None  # op name -> handler, for the candidate's load/resolve

    # -- values -------------------------------------------------------------------------
    def enc(self, v, depth=0):
        t = type(v)
        if v is None or t is bool or t is str:
            return v
        if t is int:
            return v if -(2**63) < v < 2**63 else {"i": hex(v)}
        if t is float:
            return v if v == v and v not in (float("inf"), float("-inf")) else {"f": repr(v)}
        if depth > _MAX_DEPTH:
            return self._opaque(v)
        d = depth + 1
        if t is list:
            return [self.enc(x, d) for x in v]
        if t is tuple:
            return {"t": [self.enc(x, d) for x in v]}
        if t is dict:
            return {"d": [[self.enc(k, d), self.enc(x, d)] for k, x in v.items()]}
        if t is set:
            return {"s": [self.enc(x, d) for x in v]}
        if t is frozenset:
            return {"fs": [self.enc(x, d) for x in v]}
        return self._enc_other(v, d)

    def _enc_other(self, v, d):
        import collections
        import collections.abc

        # Only modules the program imported can have made such values (importing them here
        # would cost every execution their import time).
        fractions = sys.modules.get("fractions")
        decimal = sys.modules.get("decimal")
        if callable(v) and not isinstance(v, type):
            self._own.append(v)
            return {"fn": len(self._own) - 1, "name": str(getattr(v, "__name__", "function"))[:200]}
        # Subclasses of the builtins go as their base type (their own hooks stay behind).
        if isinstance(v, int):
            return self.enc(int.__index__(v), d)
        if isinstance(v, float):
            return self.enc(float.__float__(v), d)
        if isinstance(v, str):
            return str.__str__(v)
        if isinstance(v, (bytes, bytearray)):
            return {"ba" if isinstance(v, bytearray) else "b": bytes(v).hex()}
        if isinstance(v, complex):
            return {"c": [float(v.real), float(v.imag)]}
        if fractions is not None and isinstance(v, fractions.Fraction):
            return {"q": [self.enc(v.numerator, d), self.enc(v.denominator, d)]}
        if decimal is not None and isinstance(v, decimal.Decimal):
            return {"dec": str(v)}
        if isinstance(v, collections.Counter):
            return {"ctr": [[self.enc(k, d), self.enc(x, d)] for k, x in dict.items(v)]}
        if isinstance(v, collections.OrderedDict):
            return {"od": [[self.enc(k, d), self.enc(x, d)] for k, x in dict.items(v)]}
        if isinstance(v, dict):
            return {"d": [[self.enc(k, d), self.enc(x, d)] for k, x in dict.items(v)]}
        if isinstance(v, tuple):
            return {"t": [self.enc(x, d) for x in tuple.__iter__(v)]}
        if isinstance(v, list):
            return [self.enc(x, d) for x in list.__iter__(v)]
        if isinstance(v, collections.deque):
            return {"dq": [self.enc(x, d) for x in v]}
        if isinstance(v, (set, frozenset)):
            return {"fs" if isinstance(v, frozenset) else "s": [self.enc(x, d) for x in v]}
        if isinstance(v, range):
            return {"r": [v.start, v.stop, v.step]}
        try:
            if hasattr(v, "tolist"):  # numpy arrays and scalars
                return self.enc(v.tolist(), d)
            if isinstance(v, collections.abc.Iterator):
                items = []
                for x in v:
                    if len(items) >= _MAX_ITEMS:
                        raise ValueError(f"an iterator longer than {_MAX_ITEMS} items")
                    items.append(self.enc(x, d))
                return {"it": items}
            if isinstance(v, collections.abc.Iterable):
                return [self.enc(x, d) for x in v]
        except ValueError:
            raise
        except Exception:  # noqa: BLE001 - a value that cannot be walked is opaque
            pass
        return self._opaque(v)

    @staticmethod
    def _opaque(v):
        try:
            text = repr(v)[:200]
        except Exception:  # noqa: BLE001
            text = "<unrepresentable>"
        return {"o": str(type(v).__name__)[:100], "repr": text}

    def dec(self, v):
        if not isinstance(v, (dict, list)):
            return v
        if isinstance(v, list):
            return [self.dec(x) for x in v]
        tag = next(iter(v), None)  # one tag a value, first; "fn" and "o" carry a second key
        x = v.get(tag)
        if tag == "t":
            return tuple(self.dec(y) for y in x)
        if tag == "d":
            return {self._key(k): self.dec(y) for k, y in x}
        if tag == "s":
            return {self._key(y) for y in x}
        if tag == "fs":
            return frozenset(self._key(y) for y in x)
        if tag == "i":
            return int(x, 16)
        if tag == "f":
            return float(x)
        if tag == "b":
            return bytes.fromhex(x)
        if tag == "ba":
            return bytearray.fromhex(x)
        if tag == "c":
            return complex(float(x[0]), float(x[1]))
        if tag == "q":
            import fractions

            return fractions.Fraction(int(self.dec(x[0])), int(self.dec(x[1])))
        if tag == "dec":
            import decimal

            return decimal.Decimal(str(x))
        if tag in ("ctr", "od"):
            import collections

            cls = collections.Counter if tag == "ctr" else collections.OrderedDict
            return cls({self._key(k): self.dec(y) for k, y in x})
        if tag == "dq":
            import collections

            return collections.deque(self.dec(y) for y in x)
        if tag == "r":
            return range(int(x[0]), int(x[1]), int(x[2]))
        if tag == "it":
            return iter([self.dec(y) for y in x])
        if tag == "fn":
            return self.proxy(int(x), str(v.get("name", "function")))
        if tag == "o":
            return _Opaque(str(x), str(v.get("repr", "")))
        raise ValueError(f"unknown value tag {tag!r}")

    def _key(self, k):
        k = self.dec(k)
        if isinstance(k, list):  # unhashable where a key belongs: keep its content
            return tuple(k)
        return k

    # -- messages ----------------------------------------------------------------------
    def send(self, obj):
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            n = os.write(self._w, view)
            view = view[n:]

    def recv(self):
        """The next well-formed message. Anything else (a program that writes into every
        descriptor it finds reaches this pipe too) is skipped, as if written to /dev/null."""
        while True:
            line = self._r.readline(_MAX_MESSAGE)
            if not line:
                self._on_eof()
            if not line.endswith(b"\n"):
                raise ValueError(f"a message longer than {_MAX_MESSAGE >> 20} MiB")
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if isinstance(m, dict) and any(k in m for k in _MESSAGE_KEYS):
                return m

    def request(self, msg):
        """Sends a request and serves the other side's requests until its reply comes."""
        self.send(msg)
        while True:
            m = self.recv()
            if "op" in m:
                self.send(self.serve(m))
            else:
                return m

    def serve(self, m):
        op = m["op"]
        if op == "call":
            fn = self._own[int(m["fn"])]
            return self.invoke(fn, m)
        return self.serve_extra[op](m)

    def invoke(self, fn, m):
        try:
            args = [self.dec(a) for a in m.get("args", [])]
            kwargs = {str(k): self.dec(a) for k, a in m.get("kwargs", {}).items()}
        except Exception as e:  # noqa: BLE001
            return {"raise": _error_info(e)}
        try:
            value = fn(*args, **kwargs)
            out = {"return": self.enc(value)}
        except BaseException as e:  # noqa: BLE001 - everything it raises is its result
            return {"raise": _error_info(e)}
        # Arguments the callee changed in place go back so the caller's objects change too.
        changed = {}
        for i, a in enumerate(args):
            if type(a) in (list, dict, set, bytearray):
                changed[str(i)] = self.enc(a)
        for k, a in kwargs.items():
            if type(a) in (list, dict, set, bytearray):
                changed[k] = self.enc(a)
        if changed:
            out["m"] = changed
        return out

    def proxy(self, fid, name):
        peer = self

        def remote(*args, **kwargs):
            reply = peer.request({
                "op": "call",
                "fn": fid,
                "args": [peer.enc(a) for a in args],
                "kwargs": {k: peer.enc(a) for k, a in kwargs.items()},
            })
            if "raise" in reply:
                raise _remote_error(reply["raise"])
            for k, new in reply.get("m", {}).items():
                orig = args[int(k)] if k.isdigit() else kwargs.get(k)
                _update_in_place(orig, peer.dec(new))
            return peer.dec(reply.get("return"))

        remote.__name__ = remote.__qualname__ = name
        return remote


def _update_in_place(orig, new):
    t = type(orig)
    if t is not type(new):
        return
    if t in (list, bytearray):
        orig[:] = new
    elif t in (dict, set):
        orig.clear()
        orig.update(new)


def _error_info(e):
    import builtins

    name = type(e).__name__
    builtin = getattr(builtins, name, None) is type(e)
    try:
        text = str(e)[:2000]
    except Exception:  # noqa: BLE001
        text = ""
    out = {"type": name if builtin else None, "text": text, "status": _kind(e)}
    try:
        out["message"] = _last_line(e)[:2000]
    except Exception:  # noqa: BLE001
        out["message"] = name
    line = _where(e.__traceback__, "solution.py")
    if line is not None:
        out["solution_line"] = line
    return out


class CandidateError(Exception):
    """An exception of the program's own type, raised again on the judge's side."""


def _remote_error(info):
    import builtins

    cls = getattr(builtins, str(info.get("type") or ""), None)
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        cls = CandidateError
    try:
        e = cls(str(info.get("text", "")))
    except Exception:  # noqa: BLE001 - exceptions with other constructors
        e = CandidateError(str(info.get("text", "")))
    # The candidate's side of this harness is the program's to change (its globals are a
    # `gc` walk away), so what it says is read as data: no status but an error's.
    status = info.get("status")
    line = info.get("solution_line")
    e.llmtest_remote = {
        "status": status if status in _REMOTE_STATUSES else "runtime_error",
        "message": str(info.get("message", ""))[:2000],
        "solution_line": line if type(line) is int else None,
    }
    return e


# -- the candidate's side ----------------------------------------------------------------
def _candidate(rfd, wfd):
    peer = _Peer(rfd, wfd, lambda: os._exit(0))  # the judge is gone
    ns = {"__name__": "solution", "__builtins__": __builtins__}

    def flush():
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:  # noqa: BLE001 - the program may have closed it
                pass

    def load(m):
        if m.get("typing"):
            exec("from typing import *", ns)
        try:
            src = open("solution.py", encoding="utf-8").read()
            code = compile(src, "solution.py", "exec")
        except SyntaxError as e:
            return {"compile_error": f"{type(e).__name__}: {e.msg} (line {e.lineno})"}
        except (ValueError, UnicodeDecodeError) as e:
            return {"compile_error": _last_line(e)}
        try:
            exec(code, ns)
        except BaseException as e:  # noqa: BLE001
            return {"raise": _error_info(e)}
        import types

        fns = {
            k: v
            for k, v in list(ns.items())
            if isinstance(v, types.FunctionType) and v.__code__.co_filename == "solution.py"
        }
        return {"return": peer.enc(fns)}

    def resolve(m):
        name = m["name"]
        try:
            if "." in name:
                cls, meth = name.split(".", 1)
                fn = getattr(ns[cls](), meth, None) if cls in ns else None
            elif name in ns and callable(ns[name]):
                fn = ns[name]
            else:  # LeetCode style: a method of class Solution
                sol = ns.get("Solution")
                fn = getattr(sol(), name) if isinstance(sol, type) and hasattr(sol, name) else None
        except BaseException as e:  # noqa: BLE001
            return {"raise": _error_info(e)}
        if fn is None or not callable(fn):
            return {"missing": True}
        peer._own.append(fn)
        return {"return": {"fn": len(peer._own) - 1, "name": str(getattr(fn, "__name__", name))}}

    peer.serve_extra = {"load": load, "resolve": resolve}
    while True:
        m = peer.recv()
        reply = peer.serve(m)
        flush()
        peer.send(reply)


_c_r, _j_w = os.pipe()  # requests to the candidate
_j_r, _c_w = os.pipe()  # the candidate's replies and callbacks
_CHILD = os.fork()
if _CHILD == 0:
    os.close(_j_w)
    os.close(_j_r)
    try:
        _candidate(_c_r, _c_w)
    finally:
        os._exit(1)
os.close(_c_r)
os.close(_c_w)

# -- the judge's side --------------------------------------------------------------------
with open("llmtest_spec.json", encoding="utf-8") as _f:
    _SPEC = json.load(_f)
# The spec goes before the candidate loads the solution: it holds the token that marks this
# harness's result lines (lines without it are ignored), and the test. Neither was in memory
# when the candidate was forked.
os.remove("llmtest_spec.json")
_OUT = open("llmtest_result.jsonl", "w", encoding="utf-8")


def _emitter(token, fd):
    def emit(obj):
        obj["k"] = token
        os.write(fd, (json.dumps(obj) + "\n").encode("utf-8"))

    return emit


_emit = _emitter(_SPEC.pop("token", ""), _OUT.fileno())


def _candidate_gone():
    """The candidate process ended on its own: the judge ends the same way, so the sandbox
    reports its exit status, signal or limit as it would for a single process."""
    import signal

    _, status = os.waitpid(_CHILD, 0)
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001
        pass
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


_PEER = _Peer(_j_r, _j_w, _candidate_gone)
_PEER.serve_extra = {}


def _error(e, phase):
    remote = getattr(e, "llmtest_remote", None)
    if remote is not None:
        out = {"status": remote["status"], "message": remote["message"], "phase": phase}
        if remote.get("solution_line") is not None:
            out["solution_line"] = remote["solution_line"]
        return out
    out = {"status": _kind(e), "message": _last_line(e), "phase": phase}
    line = _where(e.__traceback__, "solution.py")
    if line is not None:
        out["solution_line"] = line
    return out


def _jsonable(v, depth=0):
    if depth > 50:
        return {"__repr__": repr(v)[:200]}
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v if abs(v) < 2**63 else {"__int__": str(v)}
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return {"__float__": repr(v)}
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, depth + 1) for x in v]
    if isinstance(v, (set, frozenset)):
        return {"__set__": [_jsonable(x, depth + 1) for x in v]}
    if isinstance(v, dict):
        if all(isinstance(k, str) for k in v):
            return {k: _jsonable(x, depth + 1) for k, x in v.items()}
        return {"__dict__": [[_jsonable(k, depth + 1), _jsonable(x, depth + 1)] for k, x in v.items()]}
    if isinstance(v, (bytes, bytearray)):
        return {"__bytes__": bytes(v).hex()}
    if isinstance(v, _Opaque):
        return {"__repr__": v.text}
    if hasattr(v, "__iter__") and not hasattr(v, "keys"):  # iterators, ranges, deques
        return [_jsonable(x, depth + 1) for x in v]
    return {"__repr__": repr(v)[:200]}


def _load(typing):
    """Loads the solution in the candidate; its functions, or None once reported."""
    reply = _PEER.request({"op": "load", "typing": typing})
    if "compile_error" in reply:
        _emit({"status": "compile_error", "message": str(reply["compile_error"])[:2000]})
        return None
    if "raise" in reply:
        _emit(_error(_remote_error(reply["raise"]), "load"))
        return None
    return _PEER.dec(reply["return"])


def _resolve(name):
    """The candidate's callable `name`, or None once reported."""
    reply = _PEER.request({"op": "resolve", "name": name})
    if "raise" in reply:
        _emit(_error(_remote_error(reply["raise"]), "load"))
        return None
    if reply.get("missing"):
        _emit({"status": "missing_function", "message": f"the code defines no function `{name}`"})
        return None
    return _PEER.dec(reply["return"])


def _humaneval(fns):
    # The test sees the solution's own functions too (HumanEval/38's check uses encode_cyclic).
    ns = {"__name__": "test", "__builtins__": __builtins__}
    ns.update(fns)
    try:
        test = compile(_SPEC["test"], "test.py", "exec")
        exec(test, ns)
        check = ns["check"]
    except BaseException as e:  # noqa: BLE001
        _emit({"status": "test_error", "message": _last_line(e)})
        return
    candidate = _resolve(_SPEC["entry_point"])
    if candidate is None:
        return
    try:
        check(candidate)
    except AssertionError as e:
        if getattr(e, "llmtest_remote", None) is not None:  # the program's own assert
            _emit(_error(e, "check"))
            return
        line = _where(e.__traceback__, "test.py")
        out = {"status": "wrong_answer", "test_line": line}
        msg = str(e)
        if msg:
            out["message"] = msg[:500]
        _emit(out)
        return
    except BaseException as e:  # noqa: BLE001
        _emit(_error(e, "check"))
        return
    _emit({"status": "passed"})


def _cases():
    fn = _resolve(_SPEC["call"])
    if fn is None:
        return
    for i, case in enumerate(_SPEC["cases"]):
        try:
            value = fn(*case.get("args", []), **case.get("kwargs", {}))
            _emit({"case": i, "value": _jsonable(value)})
        except BaseException as e:  # noqa: BLE001
            out = _error(e, "call")
            out["case"] = i
            _emit(out)
            if out["status"] == "early_exit" or isinstance(e, KeyboardInterrupt):
                return
    _emit({"status": "finished"})


def _main():
    fns = _load(_SPEC["style"] == "call")
    if fns is not None:
        if _SPEC["style"] == "humaneval":
            _humaneval(fns)
        else:
            _cases()
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001
        pass
    _emit({"done": True})
    # Not waited for: the zygote (or the sandbox) reaps it after the judge exits.
    import signal

    os.kill(_CHILD, signal.SIGKILL)


_main()
