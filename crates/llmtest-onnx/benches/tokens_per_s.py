#!/usr/bin/env python3
"""onnxruntime's Python API driving the same decoder graph with the same greedy loop as
llmtest-onnx (prefill, then one token per step feeding `present.*` back as `past_key_values.*`).
Run by benches/tokens_per_s.rs, which prints both rates side by side; prints one JSON line.

    python benches/tokens_per_s.py --model fixtures/models/tiny-qwen2 --ids 1,2,3 --tokens 256
"""

import argparse
import json
import statistics
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True, help="prompt token ids, comma-separated")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--io-binding", action="store_true", help="keep the cache in ORT values")
    args = ap.parse_args()

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(f"{args.model}/model.onnx", so, providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in sess.get_inputs()}
    out_names = [o.name for o in sess.get_outputs()]
    past_names = [n for n in inputs if n.startswith("past_key_values.")]
    present_of = {p: p.replace("past_key_values.", "present.") for p in past_names}
    kv_heads, head_dim = inputs[past_names[0]].shape[1], inputs[past_names[0]].shape[3]
    ids = [int(x) for x in args.ids.split(",")]

    def generate(n):
        feeds = {
            "input_ids": np.array([ids], dtype=np.int64),
            "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
            "position_ids": np.arange(len(ids), dtype=np.int64)[None],
        }
        for p in past_names:
            feeds[p] = np.zeros((1, kv_heads, 0, head_dim), dtype=np.float32)
        start = time.perf_counter()
        outs = dict(zip(out_names, sess.run(out_names, feeds)))
        tokens, first, in_run = [], None, 0.0
        for step in range(n):
            nxt = int(np.argmax(outs["logits"][0, -1]))
            tokens.append(nxt)
            if first is None:
                first = time.perf_counter()
            if step + 1 == n:
                break
            total = len(ids) + step + 1
            feeds = {
                "input_ids": np.array([[nxt]], dtype=np.int64),
                "attention_mask": np.ones((1, total), dtype=np.int64),
                "position_ids": np.array([[total - 1]], dtype=np.int64),
            }
            for p in past_names:
                feeds[p] = outs[present_of[p]]
            t = time.perf_counter()
            outs = dict(zip(out_names, sess.run(out_names, feeds)))
            in_run += time.perf_counter() - t
        end = time.perf_counter()
        return tokens, (n - 1) / (end - first), first - start, in_run / (n - 1)

    def generate_bound(n):
        # The same loop with IoBinding: present values stay ORT values, never numpy arrays.
        binding = sess.io_binding()
        past = {p: ort.OrtValue.ortvalue_from_numpy(np.zeros((1, kv_heads, 0, head_dim), np.float32)) for p in past_names}
        tokens, first, start = [], None, time.perf_counter()
        cur, pos = ids, list(range(len(ids)))
        for step in range(n):
            total = len(ids) + step
            binding.clear_binding_inputs()
            binding.clear_binding_outputs()
            binding.bind_cpu_input("input_ids", np.array([cur], dtype=np.int64))
            binding.bind_cpu_input("attention_mask", np.ones((1, total if step else len(ids)), dtype=np.int64))
            binding.bind_cpu_input("position_ids", np.array([pos], dtype=np.int64))
            for p in past_names:
                binding.bind_ortvalue_input(p, past[p])
            for o in out_names:
                binding.bind_output(o, "cpu")
            sess.run_with_iobinding(binding)
            outs = dict(zip(out_names, binding.get_outputs()))
            nxt = int(np.argmax(outs["logits"].numpy()[0, -1]))
            tokens.append(nxt)
            if first is None:
                first = time.perf_counter()
            past = {p: outs[present_of[p]] for p in past_names}
            cur, pos = [nxt], [total if step else len(ids)]
        end = time.perf_counter()
        return tokens, (n - 1) / (end - first), first - start, None

    fn = generate_bound if args.io_binding else generate
    fn(min(args.tokens, 16))  # warm-up
    runs = [fn(args.tokens) for _ in range(args.runs)]
    print(json.dumps({
        "onnxruntime": ort.__version__,
        "tokens": runs[0][0],
        "tokens_per_s": statistics.median(r[1] for r in runs),
        "ttft_ms": statistics.median(r[2] for r in runs) * 1000,
        # time inside session.run per decode step (includes numpy <-> OrtValue conversion)
        "run_us_per_token": None if runs[0][3] is None else statistics.median(r[3] for r in runs) * 1e6,
    }))


if __name__ == "__main__":
    main()
