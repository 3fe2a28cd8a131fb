#!/usr/bin/env python3
"""Runs math-verify's own test cases through llmtest's `math` grader (a peer's suite as a benchmark).

    python3 ci/math_verify_suite.py [--version 0.9.0] [--sdist FILE] [--grader PATH] [--out FILE]

Downloads math-verify's source distribution from PyPI at run time
(`pip download --no-deps --no-binary :all: math-verify==VERSION`; nothing of it is kept in this
repository), reads every `@pytest.mark.parametrize` table of (gold, pred, expected) cases in its
tests with Python's `ast` (no test code is run), and grades each pair with `math` through the
`grade_corpus` example (`cargo build --release -p llmtest-grade --example grade_corpus` unless
--grader is given). It prints the agreement with math-verify's expected verdicts, split by
expected-equivalent and expected-not-equivalent, and lists every disagreement with the argument
for it where llmtest disagrees on purpose (ARGUED below).

Skipped, because their verdict depends on a math-verify setting that `math` does not have:
  * a (gold, pred) pair expected both ways under different settings: `strict` (test_strict.py:
    `f(x)` vs `f(y)` is equal only with strict=False) and `allow_set_relation_comp`
    (test_set_rel_assymetry: a gold `x \\in [-2,7]` against `-2 \\le x \\le 7`);
  * `precision` other than the default 6 (test_complex_math_expressions): `0.33` for 1/3 passes
    only because the case rounds to 2 decimals.
Kept although their test passes `precision=5`: `4` vs `4\\sqrt{2}`, `\\text{13}` vs `13` and a
15-digit decimal vs `\\sqrt{17}` come out the same at any precision from 5 to 15.
Everything else counts, including math-verify's `expr`-only and `latex`-only extraction cases (an
extraction setting, not a verdict setting). Identical (gold, pred, expected) cases are counted once.

Exit status: 0 when agreement is at least --goal (default 95%) and every false pass (an answer
math-verify expects to be wrong that `math` accepts) is argued in ARGUED, 1 otherwise, 2 when a
prerequisite is missing.
"""

import argparse
import ast
import json
import os
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_FILES = [
    "test_all.py",
    "test_numina_cases.py",
    "test_open_thoughts.py",
    "test_yujianll.py",
    "test_boxed.py",
    "test_strict.py",
]
SETTINGS = {"strict", "allow_set_relation_comp", "precision"}

# Disagreements llmtest keeps on purpose, for math-verify 0.9.0's tests: (file, line) -> the
# argument. Each is still counted as a disagreement; the argument is printed next to it.
DECIMAL_COMMA = (
    "a decimal comma: `math` reads `,` as thousands grouping (three digits after it) or as a "
    "separator between answers, so this is two numbers; reading `1,22` as 1.22 would turn the "
    "two roots of `x = 1,22` into one decimal"
)
ARGUED = {
    ("test_all.py", 70): DECIMAL_COMMA,
    ("test_all.py", 71): DECIMAL_COMMA,
    ("test_all.py", 72): DECIMAL_COMMA,
    ("test_all.py", 87): DECIMAL_COMMA + " (`0,111` cannot be thousands grouping, but is as likely `0, 111`)",
    ("test_all.py", 132): (
        "the answer is 9, written in `$…$` split over lines; math-verify expects its LaTeX "
        "extractor to skip inline math that spans lines, `math` takes the 9 from the last line "
        "with math in it, as a reader would"
    ),
    ("test_all.py", 577): (
        "the gold (and answer) holds a form feed where `\\frac` was meant (`\\\\\\frac` in a "
        "non-raw Python string); `math` refuses a gold with a control character and says how to "
        "quote it, since in a YAML suite the same slip (`\"\\text{…}\"`) is a tab"
    ),
    ("test_numina_cases.py", 9): (
        "a duplicated tuple: the answer lists six tuples, `(3,17,3,7)` twice, against five; "
        "`math` matches answers one to one, so a repeated (or extra) answer is not the gold's list"
    ),
    ("test_yujianll.py", 28): (
        "math-verify's expectation is wrong: 1 − 1/e ≈ 0.632 and 1 + 1/e ≈ 1.368 are different "
        "numbers"
    ),
}


def download(version, dest):
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", f"math-verify=={version}", "-d", dest]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"error: `{' '.join(cmd)}` failed:\n{r.stderr.strip()}\nhint: needs PyPI; or pass --sdist FILE")
    files = [f for f in os.listdir(dest) if f.endswith(".tar.gz")]
    if not files:
        sys.exit(f"error: pip download left no .tar.gz in {dest}")
    return os.path.join(dest, files[0])


def test_sources(sdist):
    """(file name, source) for each test file, read from the sdist without extracting it."""
    out = []
    with tarfile.open(sdist) as tar:
        members = {os.path.basename(m.name): m for m in tar.getmembers() if "/tests/" in m.name and m.name.endswith(".py")}
        for name in TEST_FILES:
            m = members.get(name)
            if m is None:
                sys.exit(f"error: {name} is not in {os.path.basename(sdist)}")
            out.append((name, tar.extractfile(m).read().decode("utf-8")))
    return out


def call_settings(fn):
    """Keyword settings passed by the test body (`compare_strings(..., precision=5)`)."""
    found = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg in SETTINGS and isinstance(kw.value, ast.Constant):
                    found[kw.arg] = kw.value.value
    return found


def cases(name, source):
    """Every parametrized case: dict(file, test, line, gold, pred, expected, settings)."""
    tree = ast.parse(source, filename=name)
    out = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        body_settings = call_settings(fn)
        for dec in fn.decorator_list:
            if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", None) == "parametrize"):
                continue
            names = [n.strip() for n in ast.literal_eval(dec.args[0]).split(",")]
            if "gold" not in names or "pred" not in names:
                continue
            verdict = "expected" if "expected" in names else "result"
            for elt in dec.args[1].elts:
                try:
                    values = ast.literal_eval(elt)
                except ValueError:
                    # an f-string case: evaluate it with only the `math` module in scope
                    code = compile(ast.Expression(elt), name, "eval")
                    values = eval(code, {"math": __import__("math")})
                row = dict(zip(names, values))
                settings = dict(body_settings)
                settings.update({k: v for k, v in row.items() if k in SETTINGS})
                out.append({
                    "file": name,
                    "test": fn.name,
                    "line": elt.lineno,
                    "gold": row["gold"],
                    "pred": row["pred"],
                    "expected": bool(row[verdict]),
                    "settings": settings,
                })
    return out


def skip_reason(case, both_ways):
    s = case["settings"]
    if (case["gold"], case["pred"]) in both_ways:
        named = ", ".join(f"{k}={v}" for k, v in sorted(s.items())) or "defaults"
        return f"expected both ways under different settings (this one: {named})"
    if s.get("precision", 6) != 6 and case["test"] == "test_complex_math_expressions":
        return f"precision={s['precision']}: the verdict rests on rounding to {s['precision']} decimals"
    return None


def build_grader():
    cmd = ["cargo", "build", "--release", "--quiet", "-p", "llmtest-grade", "--example", "grade_corpus"]
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(2)
    return os.path.join(ROOT, "target", "release", "examples", "grade_corpus")


def grade(grader, rows):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for i, c in enumerate(rows):
            f.write(json.dumps({"id": str(i), "grader": "math", "gold": c["gold"], "answer": c["pred"]}, ensure_ascii=False) + "\n")
        path = f.name
    try:
        out = subprocess.run([grader, path], check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(path)
    return {r["id"]: r for r in map(json.loads, out.splitlines())}


def cell(s, n=90):
    s = s.replace("\n", "⏎").replace("|", "\\|")
    return s if len(s) <= n else s[: n - 1] + "…"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--version", default="0.9.0")
    ap.add_argument("--sdist", help="a math-verify sdist already downloaded")
    ap.add_argument("--grader", help="a built grade_corpus example")
    ap.add_argument("--goal", type=float, default=95.0)
    ap.add_argument("--out", help="also write the report to this file")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist or download(args.version, tmp)
        sources = test_sources(sdist)
    all_cases = [c for name, src in sources for c in cases(name, src)]
    seen, unique = set(), []
    for c in all_cases:
        key = (c["gold"], c["pred"], c["expected"])
        if key not in seen:
            seen.add(key)
            unique.append(c)
    verdicts = {}
    for c in all_cases:
        verdicts.setdefault((c["gold"], c["pred"]), set()).add(c["expected"])
    both_ways = {k for k, v in verdicts.items() if len(v) > 1}
    skipped = [(c, skip_reason(c, both_ways)) for c in unique if skip_reason(c, both_ways)]
    run = [c for c in unique if not skip_reason(c, both_ways)]
    grader = args.grader or build_grader()
    results = grade(grader, run)

    lines = []
    p = lines.append
    p(f"## math-verify {args.version}'s own test cases, graded by llmtest `math`\n")
    p(f"Command: `python3 ci/math_verify_suite.py` ({len(all_cases)} parametrized cases in "
      f"{', '.join(TEST_FILES)}; {len(unique)} distinct; {len(skipped)} skipped for a setting; {len(run)} graded).\n")
    agree = {True: 0, False: 0}
    total = {True: 0, False: 0}
    refused, disagree, false_pass = [], [], []
    for i, c in enumerate(run):
        r = results[str(i)]
        total[c["expected"]] += 1
        got = bool(r.get("pass"))
        if "error" in r:
            refused.append((c, r))
        if got == c["expected"]:
            agree[c["expected"]] += 1
        else:
            disagree.append((c, r))
            if got and not c["expected"]:
                false_pass.append(c)
    n_agree = agree[True] + agree[False]
    n = total[True] + total[False]
    pct = 100.0 * n_agree / n if n else 0.0
    p("| expected by math-verify | cases | llmtest agrees |")
    p("|---|---:|---:|")
    for k, label in ((True, "equivalent"), (False, "not equivalent")):
        p(f"| {label} | {total[k]} | {agree[k]} ({100.0 * agree[k] / max(total[k], 1):.1f}%) |")
    p(f"| all | {n} | {n_agree} ({pct:.1f}%) |\n")
    p(f"False passes (math-verify expects not equivalent, llmtest passes): {len(false_pass)}. "
      f"Golds refused at load: {len(refused)}.\n")
    p("### Skipped\n")
    p("| test | line | gold | pred | why |")
    p("|---|---:|---|---|---|")
    for c, why in skipped:
        p(f"| {c['file']}::{c['test']} | {c['line']} | `{cell(c['gold'], 40)}` | `{cell(c['pred'], 40)}` | {why} |")
    p("\n### Disagreements\n")
    p("| test | line | expected | llmtest | gold | pred | llmtest read | argument |")
    p("|---|---:|---|---|---|---|---|---|")
    for c, r in disagree:
        seen_as = r.get("error") or r.get("found") or ""
        why = ARGUED.get((c["file"], c["line"]), "")
        p(f"| {c['file']}::{c['test']} | {c['line']} | {'equiv' if c['expected'] else 'not'} | "
          f"{'pass' if r.get('pass') else 'fail'} | `{cell(c['gold'], 50)}` | `{cell(c['pred'], 50)}` | {cell(seen_as, 90)} | {why} |")
    report = "\n".join(lines) + "\n"
    sys.stdout.write(report)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(report)
    unargued = [c for c in false_pass if (c["file"], c["line"]) not in ARGUED]
    p(f"\nUnargued false passes: {len(unargued)}. Unargued disagreements: "
      f"{sum(1 for c, _ in disagree if (c['file'], c['line']) not in ARGUED)}.")
    sys.stdout.write(lines[-1] + "\n")
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(lines[-1] + "\n")
    return 0 if pct >= args.goal and not unargued else 1


if __name__ == "__main__":
    sys.exit(main())
