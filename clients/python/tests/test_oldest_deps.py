"""The client on the oldest protobuf / grpcio / numpy the package index here offers (issue 16,
packaging): a fresh virtualenv, those versions pinned, the client installed from a copy of the
checkout as a user would (``pip install ./clients/python``, build isolation and all), and a
real session against a real server (tests/oldest_deps_probe.py).

The suite's own venv covers the newest (protobuf 7.x). The declared floors in pyproject.toml
are lower still; the local mirror has nothing older than these, so those are only declared.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, ServerProcess, read_jsonl, run_config

pytestmark = pytest.mark.slow  # a fresh venv and a build: ~40 s

#: The oldest of each the mirror has (``pip download --no-deps protobuf==5.29.0`` finds none).
OLDEST = {"protobuf": "6.33.6", "grpcio": "1.84.0", "numpy": "1.26.4"}
STEPS = 6


def pip(venv_python: Path, *args: str) -> None:
    """``pip install`` into the fresh venv with the suite's own pip (``--python``, pip >= 22.3),
    so the venv needs no pip of its own. No retries: the index may be a local mirror only, and
    retrying an unreachable default index cost a minute a build."""
    cmd = [sys.executable, "-m", "pip", "--python", str(venv_python), "install", "-q", "--retries", "0",
           "--no-compile", "--disable-pip-version-check", *args]
    # The environment too: the build-isolation pip that pip starts reads only that.
    env = {**os.environ, "PIP_RETRIES": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_COMPILE": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    if out.returncode != 0:
        noise = "WARNING: Location 'file:"
        log = "\n".join(line for line in (out.stdout + out.stderr).splitlines() if not line.startswith(noise))
        pytest.fail(f"pip install {' '.join(args)} failed (the test needs these versions from the package index):\n{log[-3000:]}")


def test_client_on_the_oldest_protobuf_grpcio_and_numpy(tmp_path: Path, server: ServerProcess, data_dir: Path) -> None:
    # A copy of the checkout's client and protos: the build writes into its source folder.
    src = tmp_path / "repo"
    shutil.copytree(REPO / "proto", src / "proto")
    shutil.copytree(REPO / "clients" / "python", src / "clients" / "python",
                    ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "mixer.binpb", "_proto", ".*"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    t0 = time.monotonic()
    pip(py, *(f"{name}=={version}" for name, version in OLDEST.items()))
    t1 = time.monotonic()
    pip(py, str(src / "clients" / "python"))
    print(f"pinned runtimes installed in {t1 - t0:.1f} s, the client built and installed in {time.monotonic() - t1:.1f} s")

    cfg = run_config(data_dir, worldSize=1, maxSteps=STEPS, strategy={"name": "exp3", "params": {"warmupSteps": 0}})
    out = subprocess.run([str(py), str(Path(__file__).with_name("oldest_deps_probe.py")), server.address, json.dumps(cfg)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "no_proxy": "127.0.0.1,localhost"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["versions"] == OLDEST  # pip kept the pinned runtimes: the requirements allow them
    assert Path(got["client_file"]).is_relative_to(venv)  # the installed copy, not the checkout
    assert got["steps"] == list(range(STEPS))
    # The same batches as the suite's client (protobuf 7) decodes from the same run config.
    from mixflow_client import MixflowClient

    with MixflowClient(server.address) as client:
        run = got["run"]
        assert [client.next_batch(run, s, world_size=1).digest for s in range(STEPS)] == got["digests"]
        first = client.next_batch(run, 0, world_size=1)
    texts = {n: read_jsonl(data_dir / f"{n}.train.jsonl") for n in ("alpha", "beta", "gamma")}
    assert got["first_text"] == texts[("alpha", "beta", "gamma")[int(first.slot_domains[0])]][int(first.slot_samples[0])]
    assert got["last_aggregated_step"] == STEPS - 1  # every report was taken
    assert got["versions_committed"] > 1  # exp3 moved the mix on those reports
