#!/usr/bin/env python3
"""Held-out protocol for the learning benchmark: does the default strategy win on kinds of
data it was never tuned on?

Leave one family out: the zoo (``zoo.py``) has four families of low-quality domains
(noise, repetition, irrelevant-but-learnable, mixed quality) and one set of clean structured
domains that join the real domains and must not be penalised. For each held-out family F,
``run.py`` trains on the nine real corpus domains + the clean ones + F's kinds as junk
(``--junk-dir``, ``--clean-dir``; F = irrelevant declares ``--objective real``), with
uniform, the oracle (junk weight 0), mixflow, mixflow with priors off and the published
strategies (doremi, exp3, ado, aioli) on the same seeds. Every constant of the default
strategy must be set on the other families only: a figure is held out only for runs that
informed no constant. (The current defaults were set on bench/learning's own junk and the
simulator, none of the zoo families, so every family is held out for them.)

Per family and seed: steps ratio (steps to reach uniform's final real-domain loss / uniform's
steps), share of the oracle's gain = (1 − ratio) / (1 − oracle's ratio), final and worst
real-domain loss, junk share served, clean domains' served share relative to uniform's.

    .venv/bin/python bench/learning/generalise.py                           # all families, seeds 0,1
    .venv/bin/python bench/learning/generalise.py --families noise --seeds 0
    .venv/bin/python bench/learning/generalise.py --collect                 # table from saved family results

Each family's run.py output goes to ``--results/<family>.last-line.json`` (and its raw logs
under ``--out``), so families can run as separate invocations (``--families``) and be
collected at the end. The LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from zoo import FAMILIES, generate_family  # noqa: E402

HELD_OUT = ("noise", "repetition", "irrelevant", "mixed")
STRATEGIES = ("uniform", "oracle", "mixflow", "mixflow_nopriors", "doremi", "exp3", "ado", "aioli")


def run_family(fam: str, args: argparse.Namespace, zoo: Path) -> dict[str, Any]:
    only = [s for s in STRATEGIES if s in args.only.split(",")]
    cmd = [sys.executable, str(HERE / "run.py"), "--corpus", str(args.corpus), "--junk-dir", str(zoo / fam),
           "--clean-dir", str(zoo / "clean"), "--objective", "real" if fam == "irrelevant" else "none",
           "--only", ",".join(only), "--multi-seed", ",".join(only), "--seeds", args.seeds, "--steps", str(args.steps),
           "--parallel", str(args.parallel), "--out", str(args.out / fam), *args.run_arg]
    print(f"[generalise] {fam}: {' '.join(cmd)}", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    (args.out / f"{fam}.stdout").write_text(proc.stdout)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or not last.startswith("{"):
        raise SystemExit(f"[generalise] {fam}: run.py exited {proc.returncode}; see {args.out / (fam + '.stdout')}")
    res = json.loads(last)
    (args.results / f"{fam}.last-line.json").write_text(last + "\n")
    return res


def figures(res: dict[str, Any]) -> dict[str, Any]:
    """Per strategy and seed: the protocol's figures from one family's run.py result."""
    st = res["strategies"]
    clean = [d for d in res["real_domains"] if d.startswith("clean_")]
    seeds = st["uniform"]["seeds"]
    orc = dict(zip(st["oracle"]["seeds"], st["oracle"]["steps_ratio_per_seed"])) if "oracle" in st else {}
    uni_served = dict(zip(seeds, st["uniform"]["served_per_seed"]))
    out: dict[str, Any] = {}
    for name, s in st.items():
        rows = []
        for i, seed in enumerate(s["seeds"]):
            r = s["steps_ratio_per_seed"][i]
            o = orc.get(seed)
            share = None if r is None or o is None or o >= 1 else round((1 - r) / (1 - o), 3)
            served = s["served_per_seed"][i]
            u = uni_served.get(seed, {})
            clean_rel = (round(min(served.get(d, 0) / u[d] for d in clean if u.get(d)), 3) if clean and u else None)
            rows.append({"seed": seed, "steps_ratio": r, "oracle_gain_share": share,
                         "final_loss": s["final_mean_loss_per_seed"][i], "worst_loss": s["worst_loss_per_seed"][i],
                         "junk_share": s["junk_share_per_seed"][i], "clean_vs_uniform_min": clean_rel})
        out[name] = rows
    return out


def fmt(x: Any, nd: int = 2) -> str:
    return "never" if x is None else f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    p.add_argument("--families", default=",".join(HELD_OUT))
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--only", default=",".join(STRATEGIES), help="strategies (uniform and oracle are always needed)")
    p.add_argument("--zoo-seed", type=int, default=0)
    p.add_argument("--zoo", type=Path, default=None, help="zoo folder (default: generated under OUT/zoo)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "generalise")
    p.add_argument("--results", type=Path, default=HERE / "results" / "generalise")
    p.add_argument("--collect", action="store_true", help="only build the table from --results/<family>.last-line.json")
    p.add_argument("--run-arg", action="append", default=[], help="extra run.py argument (repeatable)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    fams = [f for f in args.families.split(",") if f]
    for f in fams:
        if f not in HELD_OUT:
            raise SystemExit(f"unknown family {f!r}; families: {', '.join(HELD_OUT)}")
    if not args.collect:
        if "uniform" not in args.only.split(",") or "oracle" not in args.only.split(","):
            raise SystemExit("--only must include uniform and oracle (the ratios are against them)")
        zoo = args.zoo or args.out / "zoo"
        for f in (*fams, "clean"):
            if not (zoo / f).exists():
                generate_family(zoo / f, f, args.zoo_seed, args.corpus)
        for f in fams:
            run_family(f, args, zoo)
    table: dict[str, Any] = {}
    for f in fams:
        path = args.results / f"{f}.last-line.json"
        if not path.exists():
            print(f"[generalise] {f}: no {path} (run it first)", file=sys.stderr)
            continue
        table[f] = figures(json.loads(path.read_text()))
    print("\n| held-out family | strategy | seed | steps ratio | share of oracle gain | final loss | worst loss | junk share | clean vs uniform (min) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for f, per in table.items():
        for name, rows in per.items():
            for r in rows:
                print(f"| {f} | {name} | {r['seed']} | {fmt(r['steps_ratio'], 3)} | {fmt(r['oracle_gain_share'])} | "
                      f"{fmt(r['final_loss'], 4)} | {fmt(r['worst_loss'], 4)} | {fmt(r['junk_share'], 3)} | {fmt(r['clean_vs_uniform_min'])} |")
    print(json.dumps({"bench": "generalise", "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "steps": args.steps,
                      "families": {f: {"kinds": list(FAMILIES[f]), "strategies": per} for f, per in table.items()}}))


if __name__ == "__main__":
    main()
