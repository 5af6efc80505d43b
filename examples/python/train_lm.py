#!/usr/bin/env python3
"""Train a small byte-level GPT on a mixflow run.

Each step the trainer takes its rank's slice of the global batch from the server, turns the
documents into fixed byte windows, trains, and reports one loss per sample back (without
blocking). When the server's strategy asks for eval losses (``eval_requested``), rank 0
evaluates the server's fixed probe windows and answers with one loss per domain. Every
``--eval-every`` steps rank 0 also logs its own validation loss per domain, measured on:

* the files given with ``--val DOMAIN=PATH`` (JSONL, one ``{"text": ...}`` per line), else
* the run's eval splits (the JSONL ``eval`` paths of its config; relative paths resolve
  against the ``--config`` file's folder),

always on the first ``--val-docs`` documents of each, cropped to the same windows every
time. The last line printed is a JSON object with the final per-domain validation losses:

    {"event": "final", "run": ..., "step": ..., "val_loss": {"prose": 1.23, ...}, ...}

Examples::

    # one process, against a run the server already has
    python examples/python/train_lm.py --server 127.0.0.1:50051 --run-id demo --steps 300

    # create the run from a run config (or a server config's first run)
    python examples/python/train_lm.py --config examples/demo/mixflow.json --steps 300

    # DoReMi with a per-batch reference model: train the reference, save it, then report its
    # per-sample losses on the same windows next to the proxy's (run with strategy doremi)
    python examples/python/train_lm.py --run-id ref --steps 500 --save ref.pt
    python examples/python/train_lm.py --run-id proxy --steps 500 --reference ref.pt

    # two data-parallel ranks on CPU (the run's worldSize should be 2, or any W dividing B)
    # (spell it --run-id under torchrun: torchrun takes --run for its own --run-path)
    torchrun --nproc_per_node 2 examples/python/train_lm.py --server 127.0.0.1:50051 --run-id demo
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

try:
    from mixflow_client import MixflowClient, MixflowError, MixflowIterableDataset, TextBlock, to_bytes_windows
except ImportError:  # running from a checkout without `pip install ./clients/python`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
    from mixflow_client import MixflowClient, MixflowError, MixflowIterableDataset, TextBlock, to_bytes_windows

# ------------------------------------------------------------------------------------------
# The model: a plain pre-norm GPT over bytes (vocabulary 256).


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class ByteGPT(nn.Module):
    def __init__(self, n_layers: int, d_model: int, n_heads: int, context: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(256, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 256, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def per_sample_loss(model: nn.Module, windows: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean next-byte cross-entropy of each window, over its real (unpadded) bytes.

    ``windows`` is ``[n, seq_len + 1]`` bytes; position t predicts byte t + 1, which counts
    when t + 1 < length. Windows with fewer than two bytes get loss 0.
    """
    x, y = windows[:, :-1].long(), windows[:, 1:].long()
    logits = model(x)
    nll = F.cross_entropy(logits.reshape(-1, 256), y.reshape(-1), reduction="none").view_as(y)
    mask = (torch.arange(y.shape[1], device=y.device)[None, :] + 1) < lengths[:, None]
    return (nll * mask).sum(1) / mask.sum(1).clamp(min=1)


def save_checkpoint(path: Path, model: nn.Module, args: argparse.Namespace) -> None:
    """The model's weights and the architecture to rebuild it (``load_reference``)."""
    arch = {"layers": args.layers, "d_model": args.d_model, "heads": args.heads, "context": args.seq_len}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"arch": arch, "state_dict": model.state_dict()}, path)


def load_reference(path: Path, device: str, seq_len: int) -> nn.Module:
    """A frozen model from a ``--save`` checkpoint, in eval mode, on ``device``."""
    ckpt = torch.load(path, map_location=device, weights_only=True)
    a = ckpt["arch"]
    if a["context"] < seq_len:
        raise SystemExit(f"--reference {path}: its context {a['context']} is shorter than --seq-len {seq_len}")
    ref = ByteGPT(a["layers"], a["d_model"], a["heads"], a["context"]).to(device)
    ref.load_state_dict(ckpt["state_dict"])
    ref.eval()
    for q in ref.parameters():
        q.requires_grad_(False)
    return ref


# ------------------------------------------------------------------------------------------
# Validation sets: fixed byte windows per domain.


def read_jsonl_texts(path: Path, field: str, limit: int) -> list[bytes]:
    docs = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                docs.append(json.loads(line)[field].encode("utf-8"))
                if len(docs) == limit:
                    break
    return docs


def validation_sets(args: argparse.Namespace, config: dict[str, Any], base: Path | None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{domain: (windows, lengths)}`` from ``--val`` files, else the run's eval splits."""
    sources: dict[str, tuple[Path, str]] = {}
    for spec in args.val:
        name, _, path = spec.partition("=")
        sources[name] = (Path(path), "text")
    if not sources:
        for d in config.get("domains", []):
            ev = d.get("eval")
            if ev and ev.get("format") == "jsonl":
                path = Path(ev["paths"][0])
                sources[d["name"]] = ((base / path) if base and not path.is_absolute() else path, ev.get("textField", "text"))
    out = {}
    for name, (path, field) in sources.items():
        if not path.is_file():
            print(f"[val] skipping {name}: {path} is not readable here (use --val {name}=PATH)", file=sys.stderr)
            continue
        docs = read_jsonl_texts(path, field, args.val_docs)
        offsets = np.cumsum([0, *map(len, docs)]).astype("<u8")
        w = to_bytes_windows(TextBlock(b"".join(docs), offsets), args.seq_len)
        out[name] = (torch.from_numpy(w.windows).to(args.device), torch.from_numpy(w.lengths).to(args.device))
    return out


@torch.no_grad()
def evaluate(model: nn.Module, sets: dict[str, tuple[torch.Tensor, torch.Tensor]], batch: int = 64) -> dict[str, float]:
    """Mean per-sample loss per domain."""
    model.eval()
    out = {}
    for name, (windows, lengths) in sets.items():
        losses = [per_sample_loss(model, windows[i : i + batch], lengths[i : i + batch]) for i in range(0, len(windows), batch)]
        out[name] = torch.cat(losses).mean().item()
    model.train()
    return out


# ------------------------------------------------------------------------------------------
# Setup


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="127.0.0.1:50051", help="mixflow gRPC address")
    p.add_argument("--token", default=os.environ.get("MIXFLOW_TOKEN"), help="bearer token (default $MIXFLOW_TOKEN)")
    # `--run-id` is the spelling to use under torchrun, whose own parser mistakes `--run` for `--run-path`.
    p.add_argument("--run-id", "--run", dest="run", help="run id (with --config: which of the file's runs; default its first)")
    p.add_argument("--config", type=Path, help="create the run from this run config, or from a server config's run")
    p.add_argument("--steps", type=int, default=200, help="steps to train (0: until the run's maxSteps)")
    p.add_argument("--from-step", type=int, default=0, help="first step (resuming a checkpoint)")
    p.add_argument("--seq-len", type=int, default=128, help="context: windows are seq_len + 1 bytes")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=20, help="linear learning-rate warmup steps")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0, help="model initialisation seed (the data order is the run's)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--eval-every", type=int, default=50, help="log validation losses every N steps (0: only at the end)")
    p.add_argument("--val", action="append", default=[], metavar="DOMAIN=PATH", help="validation JSONL per domain (repeatable)")
    p.add_argument("--val-docs", type=int, default=64, help="documents per validation domain")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--json-val", action="store_true", help="also print each validation as one JSON line {\"event\": \"val\", ...}")
    p.add_argument("--save", type=Path, help="at the end, save the model (state_dict + architecture) here (rank 0)")
    p.add_argument("--reference", type=Path,
                   help="a --save checkpoint used as a frozen reference model: each step its per-sample losses on the same "
                        "windows are reported as reference_losses (DoReMi's per-batch reference; one extra forward pass)")
    p.add_argument("--trace", type=Path, help="append each rank's per-step slots to TRACE.rank<R>.jsonl (auditing, tests)")
    return p.parse_args()


def load_run_config(path: Path, run_id: str | None) -> dict[str, Any]:
    """A run config from a run-config file or a server config; relative paths made absolute
    (CreateRun resolves them against the *server's* folder, not ours)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    if "runs" in doc:
        runs = doc["runs"]
        matches = [r for r in runs if run_id in (None, r["id"])]
        if not matches:
            raise SystemExit(f"{path}: no run {run_id!r} in it")
        doc = matches[0]
    base = path.resolve().parent
    for d in doc["domains"]:
        for split in ("train", "eval"):
            if split in d:
                d[split]["paths"] = [str(base / p) for p in d[split]["paths"]]
    return doc


def open_run(client: MixflowClient, args: argparse.Namespace, rank: int) -> str:
    """The run id; with --config, rank 0 creates the run (or finds it already there)."""
    if args.config is None:
        if not args.run:
            raise SystemExit("give --run-id (an existing run) or --config (to create one)")
        return args.run
    cfg = load_run_config(args.config, args.run)
    if rank == 0:
        try:
            client.create_run(cfg)
        except MixflowError as e:
            if e.code != grpc.StatusCode.ALREADY_EXISTS:
                raise
    if dist.is_initialized():
        dist.barrier()
    return cfg["id"]


def main() -> None:
    args = parse_args()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("nccl" if args.device.startswith("cuda") else "gloo")
        if args.device == "cuda":
            args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    rank = dist.get_rank() if dist.is_initialized() else 0
    torch.manual_seed(args.seed)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    client = MixflowClient(args.server, token=args.token)
    run_id = open_run(client, args, rank)
    info = client.get_run(run_id)
    if info.payload != "text":
        raise SystemExit(f"run {run_id} serves tokens; this example trains on text (bytes)")
    steps = args.steps or info.max_steps
    if steps <= 0:
        raise SystemExit("the run is unbounded: give --steps")

    model = ByteGPT(args.layers, args.d_model, args.heads, args.seq_len).to(args.device)
    ddp = nn.parallel.DistributedDataParallel(model) if dist.is_initialized() else model
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, args.warmup)))
    n_params = sum(p.numel() for p in model.parameters())
    ref_model = load_reference(args.reference, args.device, args.seq_len) if args.reference else None

    # Rank and world size come from torch.distributed (torchrun): each rank gets its slice.
    ds = MixflowIterableDataset(client, run_id, from_step=args.from_step, max_steps=steps - args.from_step, seq_len=args.seq_len)
    base = args.config.resolve().parent if args.config else None
    val_sets = validation_sets(args, info.resolved_config, base) if rank == 0 else {}
    if rank == 0:
        print(f"[mixflow] run {run_id}: {ds.world_size} rank(s), batch {info.batch_size}, model {n_params:,} params, "
              f"validation on {sorted(val_sets) or 'nothing'}"
              + (f", reference model {args.reference}" if args.reference else ""), flush=True)
    trace = open(f"{args.trace}.rank{rank}.jsonl", "a", encoding="utf-8") if args.trace else None

    t0 = time.perf_counter()
    step = args.from_step - 1
    val: dict[str, float] = {}
    running = math.nan
    for item in ds:
        step = item["step"]
        windows, lengths = item["tokens"].to(args.device), item["lengths"].to(args.device)
        losses = per_sample_loss(ddp, windows, lengths)
        loss = losses.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if ref_model is not None:  # the reference model's losses on the very same windows
            with torch.no_grad():
                ref_losses = per_sample_loss(ref_model, windows, lengths)
            ds.report(step, losses, reference_losses=ref_losses)
        else:
            ds.report(step, losses)  # queued; never blocks the step

        if "eval" in item:  # the strategy asked (rank 0 only): loss per domain on its probes
            probes = {name: (p["tokens"].to(args.device), p["lengths"].to(args.device)) for name, p in item["eval"].items()}
            ds.report_eval(step, evaluate(model, probes))
        if trace:
            trace.write(json.dumps({"rank": rank, "step": step, "slot_offset": item["slot_offset"], "slots": len(item["domains"]),
                                    "domains": item["domains"].tolist(), "samples": item["samples"].tolist()}) + "\n")
        running = loss.item() if math.isnan(running) else 0.9 * running + 0.1 * loss.item()
        if rank == 0 and args.log_every and step % args.log_every == 0:
            print(f"step {step:6d}  loss {running:.4f}  version {item['version']}  {time.perf_counter() - t0:.1f}s", flush=True)
        if rank == 0 and args.eval_every and step > 0 and step % args.eval_every == 0 and val_sets:
            val = evaluate(model, val_sets)
            print(f"step {step:6d}  val " + "  ".join(f"{k} {v:.4f}" for k, v in sorted(val.items())), flush=True)
            if args.json_val:
                print(json.dumps({"event": "val", "step": step, "val_loss": val}), flush=True)

    ds.close()  # flush the reports: the server has every loss before we exit
    if trace:
        trace.close()
    if rank == 0:
        if args.save:
            save_checkpoint(args.save, model, args)
        if val_sets:
            val = evaluate(model, val_sets)
        weights = client.get_run(run_id).current
        print(json.dumps({"event": "final", "run": run_id, "step": step, "world_size": ds.world_size, "params": n_params,
                          "train_loss": running, "val_loss": val, "weights_version": weights.version,
                          "weights": weights.weights, "seconds": round(time.perf_counter() - t0, 3)}), flush=True)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    client.close()


if __name__ == "__main__":
    main()
