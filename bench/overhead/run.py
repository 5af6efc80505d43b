#!/usr/bin/env python3
"""Overhead benchmark: what does feeding a training loop through mixflow cost per step?

The same byte-level GPT training step (model and loss from ``examples/python/train_lm.py``)
is fed, in alternating repetitions within one process:

(a) by mixflow over gRPC (``MixflowIterableDataset``, a static mix, per-sample losses
    reported back every step, as ``train_lm.py`` does), against a local server;
(b) by a plain in-process loader: the same JSONL files loaded into memory, the same
    weights, per-step domain counts by largest-remainder apportionment, documents drawn
    without replacement per domain epoch, cropped to the same byte windows with the same
    function (``to_bytes_windows``); no reporting.

Each repetition builds the model from the same seed and times ``--steps`` steps after
``--warmup`` untimed ones (startup, the first batches and allocator warm-up excluded); the
order alternates a, b, b, a, a, b, ... so drift on a shared machine hits both. The ratio is
(mean step time of a) / (mean step time of b) over all timed steps; the per-repetition
ratios are printed too. Last line: one JSON object with ``overhead_ratio``.

Usage::

    .venv/bin/python bench/overhead/run.py                  # 4L/128d GPT, batch 16, seq 128, 1 thread
    .venv/bin/python bench/overhead/run.py --reps 6 --steps 100 --device cuda --threads 0
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "clients/python"))
from mixflow_client import MixflowClient, MixflowIterableDataset, TextBlock, to_bytes_windows  # noqa: E402

sys.path.insert(0, str(ROOT / "bench/support"))
from mixflow_server import ServerProcess  # noqa: E402

_spec = importlib.util.spec_from_file_location("train_lm", ROOT / "examples/python/train_lm.py")
assert _spec and _spec.loader
train_lm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_lm)

DOMAINS = ("fortunes_en", "fortunes_de", "fortunes_es", "fortunes_zh", "code_python", "code_c", "man_pages",
           "changelogs", "licenses")


class LocalLoader:
    """The plain in-process baseline: same files, same weights, same windows."""

    def __init__(self, corpus: Path, weights: dict[str, float], batch: int, seq_len: int, seed: int) -> None:
        self.docs = {d: [json.loads(line)["text"].encode("utf-8") for line in (corpus / d / "train.jsonl").open(encoding="utf-8") if line.strip()]
                     for d in weights}
        self.names = list(weights)
        total = sum(weights.values())
        self.w = np.array([weights[d] / total for d in self.names])
        self.batch, self.seq_len, self.seed = batch, seq_len, seed
        self.rng = np.random.default_rng(seed)
        self.perm = {d: self.rng.permutation(len(self.docs[d])) for d in self.names}
        self.cursor = dict.fromkeys(self.names, 0)
        self.acc = np.zeros(len(self.names))

    def _counts(self) -> np.ndarray:
        # Largest remainder on the accumulated deficit: exact integers tracking the weights.
        want = self.acc + self.w * self.batch
        base = np.floor(want).astype(int)
        rest = self.batch - base.sum()
        if rest > 0:
            base[np.argsort(-(want - base))[:rest]] += 1
        self.acc = want - base
        return base

    def batch_at(self, step: int) -> dict[str, torch.Tensor]:
        docs: list[bytes] = []
        for d, n in zip(self.names, self._counts()):
            for _ in range(n):
                if self.cursor[d] == len(self.perm[d]):
                    self.perm[d], self.cursor[d] = self.rng.permutation(len(self.docs[d])), 0
                docs.append(self.docs[d][self.perm[d][self.cursor[d]]])
                self.cursor[d] += 1
        offsets = np.cumsum([0, *map(len, docs)]).astype("<u8")
        w = to_bytes_windows(TextBlock(b"".join(docs), offsets), self.seq_len, step=step, seed=self.seed)
        return {"step": step, "tokens": torch.from_numpy(w.windows), "lengths": torch.from_numpy(w.lengths)}


def train_rep(args: argparse.Namespace, batches, report) -> list[float]:
    """Train warmup + steps on ``batches``; return the timed steps' durations (data included)."""
    torch.manual_seed(args.seed)
    model = train_lm.ByteGPT(args.layers, args.d_model, args.heads, args.seq_len).to(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    times: list[float] = []
    it = iter(batches)
    t = time.perf_counter()
    for i in range(args.warmup + args.steps):
        item = next(it)
        windows, lengths = item["tokens"].to(args.device), item["lengths"].to(args.device)
        losses = train_lm.per_sample_loss(model, windows, lengths)
        loss = losses.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        report(item["step"], losses)
        loss.item()  # the loop reads the loss (logging), as train_lm.py does: a sync point on GPU
        now = time.perf_counter()
        if i >= args.warmup:
            times.append(now - t)
        t = now
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    p.add_argument("--reps", type=int, default=4, help="repetitions of each of (a) and (b)")
    p.add_argument("--steps", type=int, default=60, help="timed steps per repetition")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps per repetition")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    weights = dict.fromkeys(DOMAINS, 1.0 / len(DOMAINS))
    work = Path(tempfile.mkdtemp(prefix="mixflow-overhead-"))
    server = ServerProcess(work)
    addr = server.address
    try:
        client = MixflowClient(addr, deadline=600)
        per_rep = args.warmup + args.steps
        client.create_run({"id": "overhead", "seed": args.seed, "batchSize": args.batch, "seqLen": args.seq_len,
                           "maxSteps": per_rep * args.reps, "strategy": {"name": "static", "params": {"weights": weights}},
                           "domains": [{"name": d, "train": {"format": "jsonl", "paths": [str(args.corpus / d / "train.jsonl")]}} for d in DOMAINS]})
        local = LocalLoader(args.corpus, weights, args.batch, args.seq_len, args.seed)
        a_times: list[list[float]] = []
        b_times: list[list[float]] = []
        next_a = 0
        order = [("a", "b") if r % 2 == 0 else ("b", "a") for r in range(args.reps)]
        for r, pair in enumerate(order):
            for kind in pair:
                if kind == "a":
                    ds = MixflowIterableDataset(client, "overhead", from_step=next_a, max_steps=per_rep, seq_len=args.seq_len)
                    times = train_rep(args, ds, ds.report)
                    ds.close()
                    next_a += per_rep
                    a_times.append(times)
                else:
                    gen = (local.batch_at(s) for s in range(r * per_rep, (r + 1) * per_rep))
                    b_times.append(train_rep(args, gen, lambda s, l: None))
                print(f"rep {r} {kind}: {statistics.mean((a_times if kind == 'a' else b_times)[-1]) * 1000:.2f} ms/step", flush=True)
        client.close()
    finally:
        server.close()
    a_mean = statistics.mean(t for ts in a_times for t in ts)
    b_mean = statistics.mean(t for ts in b_times for t in ts)
    rep_ratios = [statistics.mean(a) / statistics.mean(b) for a, b in zip(a_times, b_times)]
    a_med = statistics.median(t for ts in a_times for t in ts)
    b_med = statistics.median(t for ts in b_times for t in ts)
    print(f"(a) mixflow gRPC: mean {a_mean * 1000:.2f} ms/step, median {a_med * 1000:.2f}")
    print(f"(b) in-process:   mean {b_mean * 1000:.2f} ms/step, median {b_med * 1000:.2f}")
    print(f"per-repetition ratios: {', '.join(f'{x:.3f}' for x in rep_ratios)}")
    print(json.dumps({"bench": "overhead", "overhead_ratio": round(a_mean / b_mean, 4), "median_ratio": round(a_med / b_med, 4),
                      "rep_ratios": [round(x, 4) for x in rep_ratios], "a_ms_per_step": round(a_mean * 1000, 3),
                      "b_ms_per_step": round(b_mean * 1000, 3), "steps_per_rep": args.steps, "reps": args.reps,
                      "batch": args.batch, "seq_len": args.seq_len, "model": {"layers": args.layers, "d_model": args.d_model, "heads": args.heads},
                      "device": args.device, "threads": args.threads, "machine": f"{platform.machine()} {os.cpu_count()} cpus",
                      "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}))


if __name__ == "__main__":
    main()
