"""Two-rank torchrun smoke test of examples/python/train_lm.py (CPU, gloo).

Checks, through the server's own state, that the ranks took disjoint slices that make up
each global batch, and that both ranks' reports were aggregated for every step.
Run with ``pytest -m slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, ServerProcess, run_config, write_server_config
from mixflow_client import MixflowClient

pytestmark = pytest.mark.slow

STEPS = 6


def test_train_lm_two_ranks(tmp_path: Path, data_dir: Path) -> None:
    cfg = run_config(data_dir, "ddp", worldSize=2, batchSize=8, maxSteps=100, aggregationTimeoutMs=600_000)
    srv = ServerProcess(write_server_config(tmp_path / "mixflow.json", [cfg]), tmp_path / "state").start()
    try:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "examples" / "python" / "train_lm.py"), "--server", srv.address, "--run-id", "ddp",
               "--steps", str(STEPS), "--layers", "1", "--d-model", "32", "--heads", "2", "--seq-len", "32",
               "--eval-every", "3", "--val-docs", "8", "--trace", str(tmp_path / "trace")]
        env = {**os.environ, "PYTHONPATH": str(REPO / "clients" / "python"), "OMP_NUM_THREADS": "1"}
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        final = json.loads(out.stdout.strip().splitlines()[-1])
        assert final["event"] == "final" and final["step"] == STEPS - 1 and final["world_size"] == 2
        assert sorted(final["val_loss"]) == ["alpha", "beta", "gamma"]
        assert all(0 < v < 10 for v in final["val_loss"].values())

        traces = {r: [json.loads(x) for x in (tmp_path / f"trace.rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)}
        with MixflowClient(srv.address) as client:
            info = client.get_run("ddp")
            # Aggregation needs both slices of a step (timeout is 10 minutes): every step made it.
            assert info.last_aggregated_step == STEPS - 1 and info.frontier >= STEPS - 1
            for step in range(STEPS):
                t0, t1 = traces[0][step], traces[1][step]
                assert (t0["step"], t1["step"]) == (step, step)
                assert (t0["slot_offset"], t0["slots"], t1["slot_offset"], t1["slots"]) == (0, 4, 4, 4)
                whole = client.next_batch("ddp", step, world_size=1)
                pairs = list(zip(t0["domains"] + t1["domains"], t0["samples"] + t1["samples"]))
                assert pairs == list(zip(whole.slot_domains.tolist(), whole.slot_samples.tolist()))
                assert len(set(pairs)) == 8  # disjoint slices
    finally:
        srv.kill()
