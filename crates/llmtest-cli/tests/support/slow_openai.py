"""A slow OpenAI-compatible chat server for the resume tests (standard library only).

Answers `Question N` with `answer-N` when N is even and `no idea` otherwise, after a delay,
and appends every prompt it is asked to a log file (one line, flushed before answering),
so a test can count requests per case. Writes its pid to the log's `.pid` file.

    python3 slow_openai.py --port P --log FILE [--delay SECONDS]
"""
import argparse, json, os, re, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--delay", type=float, default=0.3)
args = ap.parse_args()
with open(args.log + ".pid", "w") as f:
    f.write(str(os.getpid()))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.reply(200, {"object": "list", "data": [{"id": "slow", "object": "model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        msgs = body.get("messages") or [{"content": body.get("prompt", "")}]
        prompt = msgs[-1].get("content", "")
        if isinstance(prompt, list):
            prompt = " ".join(p.get("text", "") for p in prompt)
        with open(args.log, "a") as f:
            f.write(prompt.replace("\n", " ") + "\n")
            f.flush()
        m = re.search(r"Question (\d+)", prompt)
        if m:
            time.sleep(args.delay)
        n = int(m.group(1)) if m else 0
        text = f"answer-{n}" if n % 2 == 0 else "no idea"
        self.reply(200, {
            "id": "c", "object": "chat.completion", "created": 0, "model": "slow",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        })

    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that hung up (the tests kill it)


Server(("127.0.0.1", args.port), Handler).serve_forever()
