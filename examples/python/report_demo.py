"""Record a small exp3 run with N domains against a real server and draw its report: how
docs/img/report-5.png and report-12.png were made.

    .venv/bin/python examples/python/report_demo.py --domains 5 --out /tmp/r5
    chromium --headless --no-sandbox --window-size=1400,4000 --screenshot=docs/img/report-5.png file:///tmp/r5/report.html

Domain 0 is noise (loss ~10); the others have near-equal losses that fall at different rates.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "clients" / "python"))
from mixflow_client import MixflowClient  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=5)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    names = ["noise"] + [f"d{i:02d}" for i in range(1, args.domains)]
    rng = random.Random(0)
    for i, n in enumerate(names):
        size = 40 + 60 * i  # different sizes: small domains repeat (epochs > 1)
        (out / f"{n}.jsonl").write_text("".join(json.dumps({"text": f"{n} doc {j} " + "x" * rng.randint(5, 50)}) + "\n" for j in range(size)))
    run = {
        "id": "demo", "batchSize": 16, "worldSize": 1, "seed": 3, "maxSteps": args.steps,
        "strategy": {"name": "exp3", "params": {"warmupSteps": 10}},
        "domains": [{"name": n, "train": {"format": "jsonl", "paths": [str(out / f"{n}.jsonl")]}} for n in names],
    }
    (out / "mixflow.json").write_text(json.dumps({"metrics": {"enabled": False}, "logLevel": "warn", "runs": [run]}))
    srv = subprocess.Popen([str(REPO / "bin" / "mixflow.mjs"), "serve", "--config", str(out / "mixflow.json"), "--listen", "127.0.0.1:0",
                            "--data-dir", str(out / "state"), "--durability", "none"], stdout=subprocess.PIPE)
    try:
        address = json.loads(srv.stdout.readline())["grpc"]  # type: ignore[union-attr]
        with MixflowClient(address) as client, client.reporter("demo") as rep:
            for b in client.batches("demo", max_batches=args.steps, pace_by_reports=True):
                d = b.slot_domains.astype(np.int64)
                base = np.where(d == 0, 10.0, 2.0 + 0.05 * d)
                learnt = np.where(d == 0, 0.0, (1.0 + d % 3) * (1 - math.exp(-b.step / 120)))
                losses = base - learnt + np.random.default_rng(b.step).normal(0, 0.3, d.size) * np.where(d == 0, 3, 0.2)
                rep.report(b.step, np.maximum(losses, 0.01).astype(np.float32))
    finally:
        srv.terminate()
        srv.wait()
    subprocess.run([str(REPO / "bin" / "mixflow.mjs"), "report", "--journal", str(out / "state"), "--run", "demo", "-o", str(out / "report.html")], check=True)


if __name__ == "__main__":
    main()
