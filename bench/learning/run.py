#!/usr/bin/env python3
"""Learning-efficiency benchmark: does a mixing strategy make real training faster?

Trains the byte-level GPT of ``examples/python/train_lm.py`` through a real mixflow server
on the nine real corpus domains (``../shared/corpus``) plus three generated low-quality
domains (``junk.py``: random base64, repeated boilerplate, near-duplicates), for a fixed
number of steps, once per strategy (and seed). The objective is the mean validation loss
over the nine REAL domains (their ``val.jsonl``, the first ``--val-docs`` documents cropped
to fixed windows); the junk domains are evaluated too (shown) but never count.

Per strategy it reports the final mean and worst-domain validation loss, the steps needed
to reach uniform's final mean loss as a ratio of uniform's steps (linear interpolation on
the eval curve, against the uniform run of the same seed), the total training steps
including reference/proxy runs, and the final weights. DoReMi runs its full workflow:
reference run (= the uniform run of the same seed, counted; saved with ``train_lm.py
--save``) -> proxy run with ``doremi`` whose trainer loads that checkpoint as a frozen
reference model (``--reference``) and reports its per-sample losses on the same windows
(the paper's per-batch excess loss) -> transfer of the proxy's step-averaged weights
(``mixflow replay transfer --average``) to a target run. ``--doremi-reference final-val``
runs the older variant instead: no reference model, the proxy's ``referenceLosses`` param =
the reference run's final per-domain validation losses. ``mixflow_carved`` is ``mixflow``
on run configs without eval splits: the server carves its probes from the train splits
(cluster-disjoint holdouts); the trainer's own validation still reads ``val.jsonl``.

Usage (defaults: a ~140k-parameter model, 500 steps, batch 32, seq 128, two jobs at a time
with one torch thread each; a few minutes per job pair on 2 CPU cores)::

    .venv/bin/python bench/learning/run.py                      # everything
    .venv/bin/python bench/learning/run.py --only uniform,mixflow --seeds 0
    .venv/bin/python bench/learning/run.py --device cuda --layers 6 --d-model 256 --steps 5000 --threads 0

The LAST line printed is one JSON object: ``{"bench": "learning", ..., "strategies": {name:
{"steps_ratio", "final_mean_loss", "worst_loss", ...}}}``. Weight timelines of adaptive runs
go to ``--svg-dir`` (``mixflow report --format svg``); raw logs to ``--out``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from junk import JUNK_DOMAINS, generate  # noqa: E402

sys.path.insert(0, str(HERE.parent / "support"))
from mixflow_server import ServerProcess  # noqa: E402

REAL_DOMAINS = ("fortunes_en", "fortunes_de", "fortunes_es", "fortunes_zh", "code_python", "code_c",
                "man_pages", "changelogs", "licenses")
ADAPTIVE = ("temperature", "exp3", "exp3s", "doremi", "ado", "aioli", "mixflow", "mixflow_carved", "mixflow_nopriors")
ENTRIES = ("uniform", "oracle", "temperature", "exp3", "exp3s", "doremi", "ado", "aioli", "mixflow", "mixflow_carved",
           "mixflow_nopriors")
# Entries whose run configs give no eval split: the server carves probes from train.
NO_EVAL_SPLITS = ("mixflow_carved",)


def strategy_specs(steps: int) -> dict[str, dict[str, Any]]:
    """Strategy config per benchmark entry. Defaults everywhere, except where a default is
    sized for runs far longer than this one (scaled to the run length; listed in the output)."""
    return {
        "uniform": {"name": "static", "params": {}},
        "oracle": {"name": "static", "params": {"weights": {**{d: 1.0 for d in REAL_DOMAINS}, **{d: 0.0 for d in JUNK_DOMAINS}}}},
        "temperature": {"name": "temperature", "params": {}},
        # ODM's 2000 warm-up steps would leave it uniform for the whole run: 10 % of the run.
        "exp3": {"name": "exp3", "params": {"warmupSteps": max(1, steps // 10)}},
        "exp3s": {"name": "exp3s", "params": {}},
        # ADO's ignoreInitial 500 / refitEvery 1000 would never fit: 10 % / 20 % of the run.
        "ado": {"name": "ado", "params": {"ignoreInitial": max(1, steps // 10), "refitEvery": max(1, steps // 5)}},
        "aioli": {"name": "aioli", "params": {}},
        "mixflow": {"name": "mixflow", "params": {}},
        "mixflow_carved": {"name": "mixflow", "params": {}},
        # The same runs with the indexing-time priors off: the training signal alone.
        "mixflow_nopriors": {"name": "mixflow", "params": {"priors": False}},
        # Reference: per-sample losses of the reference model (--reference), or with
        # --doremi-reference final-val, referenceLosses filled in from the reference run.
        "doremi": {"name": "doremi", "params": {}},
    }


class Server:
    """One mixflow server for all runs of the benchmark."""

    def __init__(self, work: Path) -> None:
        self.log = open(work / "server.log", "w")
        self.process = ServerProcess(work, self.log)
        self.address = self.process.address
        self.data_dir = self.process.data_dir
        self.lock = threading.Lock()

    def create(self, cfg: dict[str, Any]) -> None:
        """CreateRun, one at a time and with a long deadline (loading domains blocks the server a while)."""
        sys.path.insert(0, str(ROOT / "clients/python"))
        from mixflow_client import MixflowClient

        with self.lock:
            client = MixflowClient(self.address, deadline=600)
            client.create_run(cfg)
            client.close()

    def close(self) -> None:
        self.process.close()
        self.log.close()


def domain_entry(name: str, folder: Path, with_eval: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "train": {"format": "jsonl", "paths": [str(folder / "train.jsonl")]}}
    if with_eval:
        entry["eval"] = {"format": "jsonl", "paths": [str(folder / "val.jsonl")]}
    return entry


def run_job(args: argparse.Namespace, server: Server, folders: dict[str, Path], run_id: str, seed: int,
            strategy: dict[str, Any], out: Path, extra: list[str] | None = None, with_eval: bool = True) -> dict[str, Any]:
    """Create the run, train it with train_lm.py (``extra``: more trainer flags, e.g. --save
    or --reference), and return its eval curve."""
    cfg = {"id": run_id, "seed": seed, "batchSize": args.batch, "worldSize": 1, "maxSteps": args.steps,
           "seqLen": args.seq_len, "aggregationTimeoutMs": 60_000, "strategy": strategy,
           "domains": [domain_entry(n, folders[n], with_eval) for n in (*REAL_DOMAINS, *JUNK_DOMAINS)]}
    if args.eval_probes is not None:
        cfg["evalProbes"] = args.eval_probes
    if args.objective == "real":
        cfg["objective"] = {d: 1.0 for d in REAL_DOMAINS}
    cfg_path = out / f"{run_id}.json"
    cfg_path.write_text(json.dumps(cfg, indent=1))
    server.create(cfg)
    wrapper = [str(HERE / "lowlag.py")] if args.low_lag else []
    cmd = [sys.executable, *wrapper, str(ROOT / "examples/python/train_lm.py"), "--server", server.address, "--run-id", run_id,
           "--steps", str(args.steps), "--seed", str(seed), "--seq-len", str(args.seq_len), "--layers", str(args.layers),
           "--d-model", str(args.d_model), "--heads", str(args.heads), "--lr", str(args.lr), "--device", args.device,
           "--eval-every", str(args.eval_every), "--val-docs", str(args.val_docs), "--threads", str(args.threads),
           "--log-every", "100", "--json-val", *(extra or [])]
    for n in (*REAL_DOMAINS, *JUNK_DOMAINS):
        cmd += ["--val", f"{n}={folders[n] / 'val.jsonl'}"]
    t0 = time.time()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "clients/python")}
    for attempt in range(4):
        with open(out / f"{run_id}.log", "w" if attempt == 0 else "a") as log:
            proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        (out / f"{run_id}.log").open("a").write(proc.stdout)
        # A trainer that could not connect (server busy loading another run's domains on a
        # loaded machine) never trained: start it again; the run re-serves the same batches.
        if proc.returncode == 0 or "step " in proc.stdout:
            break
        print(f"[learning] {run_id}: trainer failed before its first step, retrying", file=sys.stderr, flush=True)
        time.sleep(5)
    if proc.returncode != 0:
        raise RuntimeError(f"{run_id}: trainer exited {proc.returncode}; see {out / (run_id + '.log')}")
    curve: list[tuple[int, dict[str, float]]] = []
    final: dict[str, Any] | None = None
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        ev = json.loads(line)
        if ev.get("event") == "val":
            curve.append((ev["step"] + 1, ev["val_loss"]))
        elif ev.get("event") == "final":
            final = ev
    if final is None:
        raise RuntimeError(f"{run_id}: no final line")
    curve.append((final["step"] + 1, final["val_loss"]))
    names = (*REAL_DOMAINS, *JUNK_DOMAINS)
    res = {"run": run_id, "seed": seed, "steps": final["step"] + 1, "seconds": round(time.time() - t0, 1),
           "curve": [(x, mean_real(v)) for x, v in curve], "final_val": final["val_loss"],
           "final_mean_loss": mean_real(final["val_loss"]), "worst_loss": max(final["val_loss"][d] for d in REAL_DOMAINS),
           "worst_domain": max(REAL_DOMAINS, key=lambda d: final["val_loss"][d]),
           "weights": {n: round(w, 4) for n, w in zip(names, final["weights"])}}
    print(f"[{time.strftime('%H:%M:%S')}] {run_id}: mean {res['final_mean_loss']:.4f} worst {res['worst_loss']:.4f} "
          f"({res['worst_domain']}) in {res['seconds']}s", flush=True)
    return res


def mean_real(val: dict[str, float]) -> float:
    return sum(val[d] for d in REAL_DOMAINS) / len(REAL_DOMAINS)


def steps_to_reach(curve: list[tuple[int, float]], target: float) -> float | None:
    """First step at which the eval curve reaches ``target`` (linear interpolation between evals)."""
    prev: tuple[int, float] | None = None
    for x, y in curve:
        if y <= target:
            if prev is None:
                return float(x)
            px, py = prev
            return px + (x - px) * (py - target) / (py - y) if py != y else float(x)
        prev = (x, y)
    return None


def warm_up(server: Server, folders: dict[str, Path], args: argparse.Namespace) -> None:
    """Create one throwaway run so the server indexes every domain (duplicate clusters,
    compressibility; cached in its data dir) before the timed trainers connect."""
    t0 = time.time()
    server.create({"id": "warmup", "batchSize": args.batch, "maxSteps": 1,
                   "domains": [domain_entry(n, folders[n]) for n in (*REAL_DOMAINS, *JUNK_DOMAINS)]})
    print(f"[learning] domains indexed in {time.time() - t0:.1f}s", flush=True)


COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#000000", "#555555", "#aaaaaa")


def weights_svg(csv_path: Path, steps: int, title: str) -> str:
    """A small stacked-area SVG of a run's weights timeline (from `mixflow replay export --weights`)."""
    import csv

    rows = list(csv.DictReader(csv_path.open()))
    names = [k for k in rows[0] if k not in ("from_step", "version", "committed_at_step", "reason")]
    pts: list[tuple[int, list[float]]] = []
    for r in rows:  # later versions at the same from_step replace earlier ones
        x = int(r["from_step"])
        w = [float(r[n]) for n in names]
        if pts and pts[-1][0] == x:
            pts[-1] = (x, w)
        elif x < steps:
            pts.append((x, w))
    W, H, L, T = 640, 260, 40, 24
    pw, ph = W - L - 150, H - T - 30
    sx = lambda x: L + pw * x / steps  # noqa: E731
    sy = lambda y: T + ph * (1 - y)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
           f'<text x="{L}" y="14" font-size="12">{title}</text>']
    base = [0.0] * len(pts)
    for k, n in enumerate(names):
        top = [b + w[k] for b, (_, w) in zip(base, pts)]
        poly = []
        for i, (x, _) in enumerate(pts):
            x2 = pts[i + 1][0] if i + 1 < len(pts) else steps
            poly += [(sx(x), sy(top[i])), (sx(x2), sy(top[i]))]
        for i in range(len(pts) - 1, -1, -1):
            x2 = pts[i + 1][0] if i + 1 < len(pts) else steps
            poly += [(sx(x2), sy(base[i])), (sx(pts[i][0]), sy(base[i]))]
        d = " ".join(f"{a:.1f},{b:.1f}" for a, b in poly)
        out.append(f'<polygon points="{d}" fill="{COLORS[k % len(COLORS)]}" fill-opacity="0.85"/>')
        out.append(f'<rect x="{L + pw + 10}" y="{T + 14 * k}" width="10" height="10" fill="{COLORS[k % len(COLORS)]}"/>'
                   f'<text x="{L + pw + 24}" y="{T + 14 * k + 9}">{n}</text>')
        base = top
    out.append(f'<line x1="{L}" y1="{sy(0)}" x2="{L + pw}" y2="{sy(0)}" stroke="black"/>')
    for y in (0, 0.5, 1):
        out.append(f'<text x="{L - 6}" y="{sy(y) + 4}" text-anchor="end">{y:g}</text>')
    for x in range(0, steps + 1, max(1, steps // 5)):
        out.append(f'<text x="{sx(x)}" y="{sy(0) + 14}" text-anchor="middle">{x}</text>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 2}" text-anchor="middle">step (weights in force; stacked, sum 1)</text></svg>')
    return "\n".join(out) + "\n"


def served_shares(csv_path: Path, steps: int) -> dict[str, float]:
    """Mean weights in force over steps [0, steps) from a weights timeline: the mixture served."""
    import csv

    rows = list(csv.DictReader(csv_path.open()))
    names = [k for k in rows[0] if k not in ("from_step", "version", "committed_at_step", "reason")]
    pts: list[tuple[int, list[float]]] = []
    for r in rows:
        x = int(r["from_step"])
        w = [float(r[n]) for n in names]
        if pts and pts[-1][0] == x:
            pts[-1] = (x, w)
        elif x < steps:
            pts.append((x, w))
    acc = [0.0] * len(names)
    for i, (x, w) in enumerate(pts):
        x2 = pts[i + 1][0] if i + 1 < len(pts) else steps
        for k in range(len(names)):
            acc[k] += w[k] * (x2 - x)
    return {n: round(a / steps, 4) for n, a in zip(names, acc)}


def cli(*args: str) -> None:
    subprocess.run(["npx", "tsx", "src/cli/main.ts", *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads per trainer (0: torch default)")
    p.add_argument("--parallel", type=int, default=2, help="trainings at a time")
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--val-docs", type=int, default=64)
    p.add_argument("--seeds", default="0,1", help="seeds for uniform and for --multi-seed strategies")
    p.add_argument("--multi-seed", default="mixflow", help="strategies run on every seed (uniform always is)")
    p.add_argument("--only", default="", help="comma list of entries to run (default: all)")
    p.add_argument("--param", action="append", default=[], metavar="ENTRY=JSON",
                   help="override an entry's strategy params (e.g. mixflow='{\"evalEvery\":10}')")
    p.add_argument("--eval-probes", type=int, default=None, metavar="N",
                   help="run configs' evalProbes: probe windows per domain that strategies asking for eval losses get "
                        "(default: the server's, 8); the trainer evaluates them on each eval step")
    p.add_argument("--low-lag", action="store_true",
                   help="diagnostic: trainers' gRPC channels without HTTP/2 BDP probing (see lowlag.py), so the "
                        "batch stream runs only a few steps ahead and new weights take effect sooner")
    p.add_argument("--baseline", type=Path, default=None,
                   help="reuse the uniform runs of an earlier result-*.json (same settings) instead of training them again")
    p.add_argument("--doremi-reference", choices=("per-batch", "final-val"), default="per-batch",
                   help="DoReMi's reference: per-batch = the reference run's saved model scores the proxy's own "
                        "windows every step (reported as reference_losses, as in the paper; default); final-val = the "
                        "reference run's final per-domain validation losses as the proxy's referenceLosses param")
    p.add_argument("--junk-dir", type=Path, default=None,
                   help="every DIR/<name>/{train,val}.jsonl is a junk domain, in place of the generated ones")
    p.add_argument("--clean-dir", type=Path, default=None,
                   help="every DIR/<name>/{train,val}.jsonl joins the real domains (and the objective): clean data "
                        "that must not be penalised")
    p.add_argument("--objective", choices=("none", "real"), default="none",
                   help="real: the run configs declare the real domains (with --clean-dir ones) as the objective")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "learning")
    p.add_argument("--svg-dir", type=Path, default=None, help="weights timelines (default: OUT/svg)")
    args = p.parse_args()

    seeds = [int(s) for s in args.seeds.split(",") if s != ""]
    global REAL_DOMAINS, JUNK_DOMAINS
    extra_folders: dict[str, Path] = {}
    if args.clean_dir:
        clean = sorted(d for d in args.clean_dir.iterdir() if (d / "train.jsonl").exists() and (d / "val.jsonl").exists())
        if not clean:
            raise SystemExit(f"--clean-dir {args.clean_dir}: no <name>/train.jsonl + val.jsonl inside")
        REAL_DOMAINS = (*REAL_DOMAINS, *(d.name for d in clean))
        extra_folders |= {d.name: d for d in clean}
    if args.junk_dir:
        junk = sorted(d for d in args.junk_dir.iterdir() if (d / "train.jsonl").exists() and (d / "val.jsonl").exists())
        if not junk:
            raise SystemExit(f"--junk-dir {args.junk_dir}: no <name>/train.jsonl + val.jsonl inside")
        JUNK_DOMAINS = tuple(d.name for d in junk)
        extra_folders |= {d.name: d for d in junk}
    clash = set(REAL_DOMAINS) & set(JUNK_DOMAINS)
    if clash or len(set(REAL_DOMAINS)) != len(REAL_DOMAINS):
        raise SystemExit(f"domain names must be unique across real, clean and junk domains: {sorted(clash)}")
    specs = strategy_specs(args.steps)
    for ov in args.param:
        k, _, v = ov.partition("=")
        specs[k]["params"].update(json.loads(v))
    entries = [e for e in ENTRIES if not args.only or e in args.only.split(",")]
    if "doremi" in entries and "uniform" not in entries and not args.baseline:
        entries.insert(0, "uniform")
    per_batch_ref = "doremi" in entries and args.doremi_reference == "per-batch"
    if per_batch_ref and args.baseline:
        raise SystemExit("--baseline reuses uniform runs without their models; DoReMi's per-batch reference needs the "
                         "reference run's checkpoint: drop --baseline or use --doremi-reference final-val")
    multi = set(args.multi_seed.split(",")) | {"uniform"}
    args.out.mkdir(parents=True, exist_ok=True)
    svg_dir = args.svg_dir or args.out / "svg"
    svg_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mixflow-learning-"))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folders = {d: args.corpus / d for d in REAL_DOMAINS if d not in extra_folders}
    folders |= extra_folders if args.junk_dir else extra_folders | generate(work / "junk", seed=0)
    results: dict[str, dict[int, dict[str, Any]]] = {}
    if args.baseline:
        for row in json.loads(args.baseline.read_text())["uniform"]["runs"]:
            results.setdefault("uniform", {})[row["seed"]] = {
                "run": "baseline", "seed": row["seed"], "steps": row["total_steps"], "curve": [tuple(c) for c in row["curve"]],
                "final_val": row["val_loss"], "final_mean_loss": row["final_mean_loss"], "worst_loss": row["worst_loss"],
                "worst_domain": row["worst_domain"], "weights": row["weights"], "seconds": row["seconds"]}
        entries = [e for e in entries if e != "uniform"]
    server = Server(work)
    print(f"[learning] server {server.address}, work dir {work}, logs {args.out}", flush=True)
    warm_up(server, folders, args)
    lock = threading.Lock()

    def job(entry: str, seed: int, spec: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
        rid = run_id or f"{entry}-s{seed}-{stamp}"
        extra: list[str] = []
        if entry == "uniform" and per_batch_ref:  # DoReMi's reference run: keep its model
            extra = ["--save", str(args.out / f"{rid}.pt")]
        r = run_job(args, server, folders, rid, seed, spec, args.out, extra, with_eval=entry not in NO_EVAL_SPLITS)
        if extra:
            r["checkpoint"] = extra[1]
        with lock:
            results.setdefault(entry, {})[seed] = r
        return r

    def doremi_chain(seed: int, ref_future: cf.Future) -> dict[str, Any]:
        ref = ref_future.result()  # the uniform run of this seed is DoReMi's reference run
        spec = json.loads(json.dumps(specs["doremi"]))
        extra: list[str] = []
        if per_batch_ref:  # the paper's setting: the reference model scores the proxy's own batches
            extra = ["--reference", ref["checkpoint"]]
        else:
            spec["params"]["referenceLosses"] = {d: ref["final_val"][d] for d in (*REAL_DOMAINS, *JUNK_DOMAINS)}
        proxy_id = f"doremi-proxy-s{seed}-{stamp}"
        proxy = run_job(args, server, folders, proxy_id, seed, spec, args.out, extra)
        target_cfg = args.out / f"doremi-target-s{seed}-{stamp}.transfer.json"
        cli("replay", "transfer", "--journal", str(server.data_dir), "--run", proxy_id, "--as", f"doremi-s{seed}-{stamp}",
            "--average", "-o", str(target_cfg))
        tspec = json.loads(target_cfg.read_text())["strategy"]
        target = run_job(args, server, folders, f"doremi-s{seed}-{stamp}", seed, tspec, args.out)
        target["proxy_run"] = proxy_id
        target["proxy_final_mean_loss"] = proxy["final_mean_loss"]
        target["proxy_weights"] = proxy["weights"]
        target["extra_steps"] = ref["steps"] + proxy["steps"]
        with lock:
            results.setdefault("doremi", {})[seed] = target
        return target

    t_start = time.time()
    with cf.ThreadPoolExecutor(max_workers=args.parallel) as pool, cf.ThreadPoolExecutor(max_workers=len(seeds) + 1) as chains:
        futures: list[cf.Future] = []
        uni: dict[int, cf.Future] = {}
        for seed in seeds:
            if "uniform" in entries:
                uni[seed] = pool.submit(job, "uniform", seed, specs["uniform"])
                futures.append(uni[seed])
            elif seed in results.get("uniform", {}):
                uni[seed] = cf.Future()
                uni[seed].set_result(results["uniform"][seed])
        for entry in entries:
            if entry in ("uniform", "doremi"):
                continue
            for seed in (seeds if entry in multi else seeds[:1]):
                futures.append(pool.submit(job, entry, seed, specs[entry]))
        if "doremi" in entries:
            # The chain waits for its reference (the uniform run), then runs proxy and target in one pool slot.
            def chain(seed: int) -> dict[str, Any]:
                uni[seed].result()
                return pool.submit(doremi_chain, seed, uni[seed]).result()

            for seed in (seeds if "doremi" in multi else seeds[:1]):
                futures.append(chains.submit(chain, seed))
        errors = []
        for f in futures:
            try:
                f.result()
            except Exception as e:  # keep the others' results
                errors.append(str(e))
                print(f"[learning] ERROR {e}", file=sys.stderr, flush=True)
    server_dir = server.data_dir
    server.close()

    # Weight timelines of the adaptive runs.
    for entry in ADAPTIVE:
        for seed, r in results.get(entry, {}).items():
            rid = r.get("proxy_run", r["run"])
            try:
                # The full report (weights and losses) and a compact weights-only picture.
                cli("report", "--journal", str(server_dir), "--run", rid, "-o", str(svg_dir / f"{entry}-s{seed}.report.svg"), "--format", "svg")
                csv_path = args.out / f"{rid}.weights.csv"
                cli("replay", "export", "--journal", str(server_dir), "--run", rid, "-o", str(args.out / f"{rid}.slots.jsonl"),
                    "--weights", str(csv_path))
                if "proxy_run" not in r:
                    r["served"] = served_shares(csv_path, args.steps)
                what = "proxy run's weights (the target serves their average)" if "proxy_run" in r else "weights"
                (svg_dir / f"{entry}-s{seed}.svg").write_text(weights_svg(csv_path, args.steps, f"{entry} seed {seed}: {what}"))
            except subprocess.CalledProcessError as e:
                print(f"[learning] report {rid} failed: {e.stderr.decode()[:300]}", file=sys.stderr)

    summary: dict[str, Any] = {}
    for entry in (["uniform"] if args.baseline else []) + entries:
        per_seed = results.get(entry, {})
        if not per_seed:
            continue
        rows = []
        for seed, r in sorted(per_seed.items()):
            served = r.get("served") or r["weights"]  # static mixtures serve their weights
            base = results.get("uniform", {}).get(seed) or results.get("uniform", {}).get(seeds[0])
            target = base["final_mean_loss"] if base else None
            reach = steps_to_reach(r["curve"], target) if target is not None else None
            ratio = reach / base["steps"] if reach is not None and base else None
            rows.append({"seed": seed, "steps_ratio": None if ratio is None else round(ratio, 3),
                         "final_mean_loss": round(r["final_mean_loss"], 4), "worst_loss": round(r["worst_loss"], 4),
                         "worst_domain": r["worst_domain"], "total_steps": r["steps"] + r.get("extra_steps", 0),
                         "junk_share": round(sum(served.get(d, 0.0) for d in JUNK_DOMAINS), 4), "served": served,
                         "weights": r["weights"], "seconds": r["seconds"],
                         **({"proxy_weights": r["proxy_weights"], "proxy_final_mean_loss": round(r["proxy_final_mean_loss"], 4)}
                            if "proxy_weights" in r else {}),
                         "curve": [[x, round(y, 4)] for x, y in r["curve"]],
                         "val_loss": {k: round(v, 4) for k, v in r["final_val"].items()}})
        ratios = [x["steps_ratio"] for x in rows]
        summary[entry] = {
            "steps_ratio": None if any(x is None for x in ratios) else round(sum(ratios) / len(ratios), 3),
            "steps_ratio_per_seed": ratios,
            "final_mean_loss": round(sum(x["final_mean_loss"] for x in rows) / len(rows), 4),
            "worst_loss": round(sum(x["worst_loss"] for x in rows) / len(rows), 4),
            "worst_loss_per_seed": [x["worst_loss"] for x in rows],
            "final_mean_loss_per_seed": [x["final_mean_loss"] for x in rows],
            "junk_share_per_seed": [x["junk_share"] for x in rows],
            "served_per_seed": [x["served"] for x in rows],
            "total_steps": rows[0]["total_steps"],
            "seeds": [x["seed"] for x in rows],
            "weights": rows[0]["weights"],
            "strategy": specs[entry] if entry != "doremi" else {"name": "doremi → transfer(average) → static",
                                                                "reference": args.doremi_reference},
            "runs": rows,
        }
    (args.out / f"result-{stamp}.json").write_text(json.dumps(summary, indent=1))
    print("\n| strategy | seeds | steps ratio (per seed) | final mean val loss | worst-domain val loss | total steps |")
    print("| --- | --- | --- | --- | --- | --- |")
    for entry, s in summary.items():
        per = ", ".join("never" if x is None else f"{x:.2f}" for x in s["steps_ratio_per_seed"])
        print(f"| {entry} | {','.join(map(str, s['seeds']))} | {per} | {s['final_mean_loss']:.4f} | {s['worst_loss']:.4f} | {s['total_steps']} |")
    print("\nfinal weights (first seed):")
    for entry, s in summary.items():
        print(f"  {entry:12s} " + " ".join(f"{k}={v:.3f}" for k, v in s["weights"].items()))
    compact = {e: {k: s[k] for k in ("steps_ratio", "steps_ratio_per_seed", "final_mean_loss", "worst_loss", "total_steps", "seeds",
                                     "weights", "worst_loss_per_seed", "final_mean_loss_per_seed", "junk_share_per_seed",
                                     "served_per_seed")}
               for e, s in summary.items()}
    print(json.dumps({"bench": "learning", "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": f"{platform.machine()} {os.cpu_count()} cpus",
                      "device": args.device, "steps": args.steps, "batch": args.batch, "seq_len": args.seq_len,
                      "model": {"layers": args.layers, "d_model": args.d_model, "heads": args.heads},
                      "real_domains": list(REAL_DOMAINS), "junk_domains": list(JUNK_DOMAINS), "objective": args.objective,
                      "eval_probes": args.eval_probes, "wall_s": round(time.time() - t_start, 1), "errors": errors, "strategies": compact}))


if __name__ == "__main__":
    main()
