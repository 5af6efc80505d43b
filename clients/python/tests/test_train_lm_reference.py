"""examples/python/train_lm.py --save / --reference: a reference model trained and saved by
one run is loaded frozen by a ``doremi`` run, whose weights then move by the per-batch excess
loss (train − reference) the trainer reports. Without ``--reference`` (and no
``referenceLosses``) the same ``doremi`` run has no excess loss and stays uniform."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, ServerProcess, run_config, write_server_config
from mixflow_client import MixflowClient

STEPS = 8
MODEL = ["--layers", "1", "--d-model", "32", "--heads", "2", "--seq-len", "32", "--threads", "1", "--eval-every", "0",
         "--val-docs", "4", "--log-every", "0"]


def train(address: str, run_id: str, *extra: str) -> dict:
    cmd = [sys.executable, str(REPO / "examples" / "python" / "train_lm.py"), "--server", address, "--run-id", run_id,
           "--steps", str(STEPS), *MODEL, *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO / "clients" / "python"), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_save_then_reference_drives_doremi(tmp_path: Path, data_dir: Path) -> None:
    import torch  # the test extra installs it
    doremi = {"name": "doremi", "params": {"every": 1, "output": "current"}}
    runs = [run_config(data_dir, "ref", worldSize=1, maxSteps=STEPS),
            run_config(data_dir, "proxy", worldSize=1, maxSteps=STEPS, strategy=doremi),
            run_config(data_dir, "noref", worldSize=1, maxSteps=STEPS, strategy=doremi)]
    srv = ServerProcess(write_server_config(tmp_path / "mixflow.json", runs), tmp_path / "state").start()
    try:
        ckpt = tmp_path / "ckpt" / "ref.pt"
        train(srv.address, "ref", "--save", str(ckpt), "--lr", "1e-2")
        saved = torch.load(ckpt, weights_only=True)
        assert saved["arch"] == {"layers": 1, "d_model": 32, "heads": 2, "context": 32}
        assert "head.weight" in saved["state_dict"]

        final = train(srv.address, "proxy", "--reference", str(ckpt), "--seed", "1")
        w = final["weights"]
        # The untrained proxy's loss (~ln 256 = 5.5) exceeds the trained reference's on every
        # domain, so the excess is large and unequal: the weights leave uniform by far.
        assert final["weights_version"] >= STEPS - 1
        assert max(w) - min(w) > 0.05, w

        control = train(srv.address, "noref", "--seed", "1")
        assert control["weights"] == pytest.approx([1 / 3] * 3, abs=1e-9)
        with MixflowClient(srv.address) as c:
            assert c.get_run("proxy").last_aggregated_step == STEPS - 1
    finally:
        srv.kill()
