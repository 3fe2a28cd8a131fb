#!/usr/bin/env python3
"""The same cases through llmtest and its peers against one loopback mock; prints each tool's
median wall time and peak memory, and its wall time over llmtest's.

Not part of the required CI run: it installs the peers (pinned below) under ci/cache/peers/
and is run by hand:

    python3 ci/bench_peers.py [--cases 500] [--rounds 3] [--only llmtest,python-pool,promptfoo]

The mock is a one-event-loop Python HTTP/1.1 server answering every chat completion at once with
the same short answer; every tool runs 8 requests at a time. llmtest is its release build
(`cargo build --release -p llmtest-cli`), `stream: false`.
"""

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "ci" / "cache" / "peers"
PROMPTFOO = "0.121.20"
LM_EVAL = "0.4.13"
INSPECT = "0.3.285"
CONCURRENCY = 8

ANSWER = json.dumps(
    {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "mock",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The answer is 42."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }
).encode()


MODELS = json.dumps({"object": "list", "data": [{"id": "mock", "object": "model"}]}).encode()


class Mock(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one event loop: a chat completion is answered with ANSWER at once,
    anything else with the model list. Bodies by Content-Length or chunked. About 30 µs a
    request, so that the tools are measured, not the mock (a threaded http.server costs
    ≈ 0.2 ms a request under the GIL, more than llmtest spends per case)."""

    def connection_made(self, transport):
        sock = transport.get_extra_info("socket")
        # Headers and body go in one write, but a client's delayed ACK must not wait either.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.t = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].decode("latin-1").lower()
            start = head_end + 4
            if "transfer-encoding: chunked" in head:
                end = self.buf.find(b"\r\n0\r\n\r\n", start - 2)
                if end < 0:
                    return
                end += 7
            else:
                n = 0
                for line in head.split("\r\n"):
                    if line.startswith("content-length:"):
                        n = int(line.split(":", 1)[1])
                end = start + n
                if len(self.buf) < end:
                    return
            self.buf = self.buf[end:]
            body = ANSWER if head.startswith("post") else MODELS
            self.t.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (len(body), body)
            )


def start_mock():
    loop = asyncio.new_event_loop()
    srv = loop.run_until_complete(loop.create_server(Mock, "127.0.0.1", 0))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return loop, srv.sockets[0].getsockname()[1]


def rows(n):
    return [{"q": f"What is {i} plus 42 minus {i}?", "a": "42"} for i in range(n)]


def timed(cmd, env=None, cwd=None):
    """Runs cmd; (wall seconds, peak RSS MiB of the process tree as wait4 reports it)."""
    # GNU time reports the peak RSS: a child forked from this script would count the
    # script's own pages until it execs.
    with tempfile.NamedTemporaryFile("r") as rss:
        t = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd], env=env, cwd=cwd,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - t
        if p.returncode not in (0, 1):
            err = p.stderr.decode(errors="replace")
            raise RuntimeError(f"{cmd[0]} failed ({p.returncode}):\n{err[-2000:]}")
        return wall, int(rss.read().split()[-1]) / 1024


# --- the tools -------------------------------------------------------------------------


def llmtest(work, port, n):
    exe = ROOT / "target" / "release" / "llmtest"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--release", "-p", "llmtest-cli"], cwd=ROOT, check=True)
    d = work / "llmtest"
    (d / "suites" / "data").mkdir(parents=True, exist_ok=True)
    (d / "llmtest.yaml").write_text(
        "version: 1\nmodels:\n"
        f"  mock: {{backend: openai, base_url: 'http://127.0.0.1:{port}/v1', model: mock, stream: false, max_concurrency: {CONCURRENCY}}}\n"
        "profiles:\n  bench: {mode: live, models: [mock]}\ndefault_profile: bench\n"
    )
    (d / "suites" / "data" / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(n)))
    (d / "suites" / "bench.yaml").write_text(
        "version: 1\nsuite: bench\nsnapshot: off\ncases_from:\n  - path: data/rows.jsonl\n"
        "    prompt: '{{ q }}'\n    expect: [{type: contains, value: '{{ a }}'}]\n"
    )
    return lambda: timed([str(exe), "--root", str(d), "run", "--format", "json", "-o", os.devnull])


def python_pool(work, port, n):
    script = work / "pool.py"
    script.write_text(
        f"""
import concurrent.futures, http.client, json, threading
local = threading.local()
def ask(i):
    c = getattr(local, "c", None)
    if c is None:
        c = local.c = http.client.HTTPConnection("127.0.0.1", {port})
    body = json.dumps({{"model": "mock", "messages": [{{"role": "user", "content": f"What is {{i}} plus 42 minus {{i}}?"}}]}})
    c.request("POST", "/v1/chat/completions", body, {{"content-type": "application/json"}})
    r = json.loads(c.getresponse().read())
    return "42" in r["choices"][0]["message"]["content"]
with concurrent.futures.ThreadPoolExecutor({CONCURRENCY}) as ex:
    assert all(ex.map(ask, range({n})))
"""
    )
    return lambda: timed([sys.executable, str(script)])


def promptfoo(work, port, n):
    node = CACHE / "node"
    exe = node / "node_modules" / ".bin" / "promptfoo"
    if not exe.exists():
        node.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(node), f"promptfoo@{PROMPTFOO}"], check=True)
    d = work / "promptfoo"
    d.mkdir(exist_ok=True)
    tests = [{"vars": r, "assert": [{"type": "contains", "value": "{{a}}"}]} for r in rows(n)]
    cfg = {
        "prompts": ["{{q}}"],
        "providers": [
            {"id": "openai:chat:mock", "config": {"apiBaseUrl": f"http://127.0.0.1:{port}/v1", "apiKey": "none"}}
        ],
        "tests": tests,
    }
    (d / "promptfooconfig.json").write_text(json.dumps(cfg))
    env = dict(
        os.environ,
        PROMPTFOO_DISABLE_TELEMETRY="1",
        PROMPTFOO_DISABLE_UPDATE="1",
        PROMPTFOO_DISABLE_SHARING="1",
        PROMPTFOO_CONFIG_DIR=str(d / ".promptfoo"),
    )
    cmd = [str(exe), "eval", "-c", str(d / "promptfooconfig.json"), "-j", str(CONCURRENCY),
           "--no-cache", "--no-write", "--no-table", "--no-progress-bar"]
    return lambda: timed(cmd, env=env, cwd=d)


def venv():
    v = CACHE / "venv"
    if not (v / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(v)], check=True)
    return v


def lm_eval(work, port, n):
    v = venv()
    if not (v / "bin" / "lm_eval").exists():
        # lm-eval depends on torch; PyPI's wheel is what it gets here.
        subprocess.run([str(v / "bin" / "pip"), "install", f"lm-eval[api]=={LM_EVAL}"], check=True)
    d = work / "lm_eval"
    (d / "tasks").mkdir(parents=True, exist_ok=True)
    (d / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(n)))
    (d / "tasks" / "bench.yaml").write_text(
        "task: llmtest_bench\ndataset_path: json\n"
        f"dataset_kwargs: {{data_files: {{test: {d / 'rows.jsonl'}}}}}\n"
        "test_split: test\noutput_type: generate_until\ndoc_to_text: '{{q}}'\ndoc_to_target: '{{a}}'\n"
        "generation_kwargs: {until: [], max_gen_toks: 16}\n"
        "metric_list: [{metric: exact_match}]\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OPENAI_API_KEY="none",
               HF_HOME=str(d / "hf"))
    cmd = [str(v / "bin" / "lm_eval"), "--model", "local-chat-completions", "--model_args",
           f"model=mock,base_url=http://127.0.0.1:{port}/v1/chat/completions,num_concurrent={CONCURRENCY},tokenized_requests=False",
           "--tasks", "llmtest_bench", "--include_path", str(d / "tasks"), "--apply_chat_template"]
    return lambda: timed(cmd, env=env, cwd=d)


def inspect(work, port, n):
    v = venv()
    if not (v / "bin" / "inspect").exists():
        subprocess.run([str(v / "bin" / "pip"), "install", f"inspect-ai=={INSPECT}", "openai"], check=True)
    d = work / "inspect"
    d.mkdir(exist_ok=True)
    (d / "rows.jsonl").write_text("".join(json.dumps({"input": r["q"], "target": r["a"]}) + "\n" for r in rows(n)))
    (d / "bench_task.py").write_text(
        "from inspect_ai import Task, task\nfrom inspect_ai.dataset import json_dataset\n"
        "from inspect_ai.scorer import includes\nfrom inspect_ai.solver import generate\n"
        "@task\ndef bench():\n    return Task(dataset=json_dataset('rows.jsonl'), solver=generate(), scorer=includes())\n"
    )
    env = dict(os.environ, MOCK_API_KEY="none", MOCK_BASE_URL=f"http://127.0.0.1:{port}/v1",
               INSPECT_LOG_DIR=str(d / "logs"))
    cmd = [str(v / "bin" / "inspect"), "eval", "bench_task.py", "--model", "openai-api/mock/mock",
           "--max-connections", str(CONCURRENCY), "--display", "none"]
    return lambda: timed(cmd, env=env, cwd=d)


TOOLS = {
    "llmtest": llmtest,
    "python-pool": python_pool,
    "promptfoo": promptfoo,
    "lm-eval": lm_eval,
    "inspect-ai": inspect,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=",".join(TOOLS))
    a = ap.parse_args()
    names = [t for t in a.only.split(",") if t]
    if "llmtest" not in names:
        names.insert(0, "llmtest")
    srv, port = start_mock()
    work = Path(tempfile.mkdtemp(prefix="llmtest-peers-"))
    results = {}
    try:
        for name in names:
            run = TOOLS[name](work, port, a.cases)
            walls, mems = [], []
            for _ in range(a.rounds):
                w, m = run()
                walls.append(w)
                mems.append(m)
            walls.sort()
            results[name] = (walls[len(walls) // 2], max(mems))
            print(f"{name}: {results[name][0]:.3f} s, {results[name][1]:.0f} MiB", file=sys.stderr)
    finally:
        srv.call_soon_threadsafe(srv.stop)
        shutil.rmtree(work, ignore_errors=True)
    base = results["llmtest"][0]
    print(f"| tool ({a.cases} cases, {CONCURRENCY} at a time) | median wall | peak RSS | over llmtest |")
    print("|---|---:|---:|---:|")
    for name, (w, m) in results.items():
        print(f"| {name} | {w:.2f} s | {m:.0f} MiB | {w / base:.1f}× |")


if __name__ == "__main__":
    main()
