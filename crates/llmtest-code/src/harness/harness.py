# llmtest code harness (Python). Runs solution.py against the test described in
# llmtest_spec.json and writes one JSON line per event to llmtest_result.jsonl, ending with
# {"done": true}. A program that stops before that line did not finish its tests.
import json
import os
import sys

with open("llmtest_spec.json", encoding="utf-8") as _f:
    _SPEC = json.load(_f)
# The spec goes before the solution runs: it holds the token that marks this harness's
# result lines (lines without it are ignored), so a program that writes its own "passed"
# into the result file, or into any file descriptor it finds, forges nothing.
os.remove("llmtest_spec.json")
_OUT = open("llmtest_result.jsonl", "w", encoding="utf-8")


def _emitter(token, fd):
    def emit(obj):
        obj["k"] = token
        os.write(fd, (json.dumps(obj) + "\n").encode("utf-8"))

    return emit


_emit = _emitter(_SPEC.pop("token", ""), _OUT.fileno())


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


def _error(e, phase):
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
    try:
        # generators, ranges, numpy arrays, …: compare what they hold
        if hasattr(v, "tolist"):
            return _jsonable(v.tolist(), depth + 1)
        if hasattr(v, "__iter__") and not hasattr(v, "keys"):
            return [_jsonable(x, depth + 1) for x in v]
    except Exception:
        pass
    return {"__repr__": repr(v)[:200]}


def _load(ns):
    try:
        src = open("solution.py", encoding="utf-8").read()
        code = compile(src, "solution.py", "exec")
    except SyntaxError as e:
        msg = f"{type(e).__name__}: {e.msg} (line {e.lineno})"
        _emit({"status": "compile_error", "message": msg})
        return False
    except (ValueError, UnicodeDecodeError) as e:
        _emit({"status": "compile_error", "message": _last_line(e)})
        return False
    try:
        exec(code, ns)
    except BaseException as e:  # noqa: BLE001 - everything the solution raises is its result
        _emit(_error(e, "load"))
        return False
    return True


class _Untrusted(BaseException):  # not caught by a test's own `except Exception`
    pass


# Comparison, truth and conversion hooks: a returned value whose type implements one of
# these outside the standard library (`class A: __eq__ = lambda s, o: True`) would make the
# test's own `assert candidate(x) == y` pass, so such a value is not accepted as an answer.
_HOOKS = (
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__len__",
    "__sub__", "__rsub__", "__abs__", "__float__", "__int__", "__index__", "__round__",
    "__contains__", "__iter__", "__getitem__", "__hash__", "__str__", "__repr__",
)
_STDLIB = os.path.dirname(os.__file__)


def _foreign_hook(t):
    for name in _HOOKS:
        code = getattr(getattr(t, name, None), "__code__", None)
        if code is not None and not code.co_filename.startswith(_STDLIB):
            return name
    return None


def _check_value(v, budget):
    # Builtin containers are walked (up to `budget` items); anything else is judged by its type.
    stack = [v]
    while stack and budget[0] > 0:
        budget[0] -= 1
        x = stack.pop()
        t = type(x)
        if t in (list, tuple, set, frozenset):
            stack.extend(x)
        elif t is dict:
            stack.extend(x.keys())
            stack.extend(x.values())
        elif t not in (int, float, str, bool, bytes, complex, type(None)):
            hook = _foreign_hook(t)
            if hook is not None:
                raise _Untrusted(
                    f"the function returned a `{t.__name__}` whose `{hook}` is defined by the "
                    "program; such values cannot be compared with the expected answer"
                )


def _guarded(fn):
    def candidate(*args, **kwargs):
        v = fn(*args, **kwargs)
        _check_value(v, [10000])
        return v

    try:
        candidate.__name__ = fn.__name__
        candidate.__doc__ = fn.__doc__
    except Exception:  # noqa: BLE001 - a callable object without these
        pass
    return candidate


def _humaneval(ns):
    try:
        test = compile(_SPEC["test"], "test.py", "exec")
        exec(test, ns)
        check = ns["check"]
    except BaseException as e:  # noqa: BLE001
        _emit({"status": "test_error", "message": _last_line(e)})
        return
    entry = _SPEC["entry_point"]
    if entry not in ns or not callable(ns[entry]):
        _emit({"status": "missing_function", "message": f"the code defines no function `{entry}`"})
        return
    try:
        check(_guarded(ns[entry]))
    except _Untrusted as e:
        _emit({"status": "wrong_answer", "message": str(e)})
        return
    except AssertionError as e:
        inner = _innermost(e.__traceback__)
        if inner is not None and inner.tb_frame.f_code.co_filename == "solution.py":
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


def _resolve(ns, name):
    if "." in name:
        cls, meth = name.split(".", 1)
        if cls not in ns:
            return None
        return getattr(ns[cls](), meth, None)
    if name in ns and callable(ns[name]):
        return ns[name]
    # LeetCode style: a method of class Solution
    sol = ns.get("Solution")
    if isinstance(sol, type) and hasattr(sol, name):
        return getattr(sol(), name)
    return None


def _cases(ns):
    name = _SPEC["call"]
    try:
        fn = _resolve(ns, name)
    except BaseException as e:  # noqa: BLE001
        _emit(_error(e, "load"))
        return
    if fn is None:
        _emit({"status": "missing_function", "message": f"the code defines no function `{name}`"})
        return
    for i, case in enumerate(_SPEC["cases"]):
        try:
            value = fn(*case.get("args", []), **case.get("kwargs", {}))
            _emit({"case": i, "value": _jsonable(value)})
        except BaseException as e:  # noqa: BLE001
            out = _error(e, "call")
            out["case"] = i
            _emit(out)
            if isinstance(e, (SystemExit, KeyboardInterrupt)):
                return
    _emit({"status": "finished"})


def _main():
    ns = {"__name__": "solution", "__builtins__": __builtins__}
    if _SPEC["style"] == "call":
        exec("from typing import *", ns)
    if not _load(ns):
        _emit({"done": True})
        return
    if _SPEC["style"] == "humaneval":
        _humaneval(ns)
    else:
        _cases(ns)
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001 - the solution may have closed it
        pass
    _emit({"done": True})


_main()
