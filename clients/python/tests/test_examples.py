"""The README's "My data, my model" example as a user runs it (issue 16): the README's exact
command (default 200 steps, the demo data's five domains, DataLoader with 2 workers, eval
answers, checkpoints), against the server it starts itself. Checks that it finishes, that
training lowered the loss, that the strategy moved the weights, and that the checkpoint
holds a dataset state to resume from. Bounded by work (200 steps of 16 windows of 32 bytes;
mixflow's first learnability gains count after its 100-step warm-up, so with the demo's
priors the weights in force first move at step ~150); 17 s for 150 steps with
OMP_NUM_THREADS=1 in a fresh-clone CI run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO

pytestmark = pytest.mark.slow


def test_my_data_my_model_example_trains_moves_the_mix_and_checkpoints() -> None:
    files = sorted(str(p) for p in (REPO / "examples" / "demo" / "data").glob("*.train.jsonl"))
    assert len(files) == 5
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, str(REPO / "examples" / "python" / "my_data_my_model.py"), *files],
                         cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    print(f"my_data_my_model.py: {time.monotonic() - t0:.1f} s")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = re.findall(r"^step +(\d+) +loss ([\d.]+) +version (\d+) +weights (.*)$", out.stdout, flags=re.M)
    assert [int(s) for s, _, _, _ in rows] == list(range(0, 200, 25))
    loss = [float(x) for _, x, _, _ in rows]
    assert loss[-1] < loss[0] / 2, loss  # it trained
    versions = [int(v) for _, _, v, _ in rows]
    assert versions == sorted(versions) and versions[-1] > versions[0]
    assert rows[-1][3] != rows[0][3]  # the weights in force moved
    work = re.search(r"checkpoint and journal in (\S+);", out.stdout)
    assert work, out.stdout[-1000:]
    try:
        ckpt = torch.load(Path(work.group(1)) / "checkpoint.pt", weights_only=True)
        assert ckpt["data"]["run_id"] == "mine" and ckpt["data"]["step"] == 176  # saved after reporting step 175
        assert set(ckpt["model"]) >= {"emb.weight", "out.weight"}
    finally:
        shutil.rmtree(work.group(1), ignore_errors=True)
