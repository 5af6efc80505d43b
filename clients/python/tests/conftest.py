"""Fixtures: a REAL mixflow server (``tsx src/cli/main.ts serve``) on loopback, fed by tiny
JSONL and token domains generated in a temp dir, and helpers to make run configs.

The session server is shared by the fast tests; tests that restart a server start their
own with :class:`ServerProcess`. Every run config uses absolute paths, so CreateRun works
whatever the server's base directory is.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mixflow_client import MixflowClient

REPO = Path(__file__).resolve().parents[3]
DOMAINS = ("alpha", "beta", "gamma")
TRAIN_DOCS = 120
EVAL_DOCS = 12
SEQ_LEN = 16
TOKEN_COUNT = 16 * 200 + 1


def _server_cmd() -> list[str]:
    """``node --import tsx``: ONE process. The ``tsx`` wrapper binary runs the server as a
    child of its own, so SIGKILL of the wrapper left the real server running (and, with
    grpc-js's SO_REUSEPORT, still answering on the port a restarted server bound again)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the tests need a real mixflow server (install Node 20)")
    return [node, "--import", "tsx"]


class ServerProcess:
    """``mixflow serve`` as a child process; ``address`` is set once it is listening."""

    def __init__(self, config: Path, data_dir: Path, listen: str = "127.0.0.1:0") -> None:
        self.config = config
        self.data_dir = data_dir
        self.listen = listen
        self.address = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"server-{data_dir.name}.log"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        cmd = [*_server_cmd(), "src/cli/main.ts", "serve", "--config", str(self.config), "--listen", self.listen]
        cmd += ["--data-dir", str(self.data_dir), "--durability", "none"]
        with open(self.log, "ab") as err:
            # Its own process group, so kill() takes down anything it started with it.
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not line or not line[0]:
            self.kill()
            raise RuntimeError(f"mixflow server did not start; log:\n{self.log.read_text(errors='replace')[-4000:]}")
        event = json.loads(line[0])
        assert event["event"] == "listening", event
        self.address = event["grpc"]
        self.listen = self.address  # a restart binds the same port
        return self

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (drain) and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL the server's whole process group (a crash, or clean-up) and wait for it."""
        if self.proc is not None:
            # poll() reaps a server that already exited; one still running (or a zombie not
            # yet reaped, which keeps its group id) has a group for killpg to find.
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


def write_jsonl(path: Path, texts: list[str]) -> None:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")


def _docs(domain: str, n: int, rng: random.Random) -> list[str]:
    if domain == "alpha":
        words = "the quiet river carries a bright letter over old stone bridges at night".split()
        return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 40))) + f" #{i}" for i in range(n)]
    if domain == "beta":
        return [f"{a} + {b} = {a + b}; " * rng.randint(1, 6) for a, b in ((rng.randint(0, 999), rng.randint(0, 999)) for _ in range(n))]
    return [f"def f{i}(x):\n    return x * {rng.randint(2, 9)} + {i}\n" for i in range(n)]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alpha/beta/gamma JSONL domains (train + eval) and a uint16 token file."""
    d = tmp_path_factory.mktemp("data")
    rng = random.Random(1234)
    for name in DOMAINS:
        write_jsonl(d / f"{name}.train.jsonl", _docs(name, TRAIN_DOCS, rng))
        write_jsonl(d / f"{name}.eval.jsonl", _docs(name, EVAL_DOCS, rng))
    np.arange(TOKEN_COUNT, dtype="<u2").tofile(d / "tokens.train.bin")
    return d


def run_config(data_dir: Path, run_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A text run over alpha/beta/gamma with eval splits (absolute paths)."""
    cfg: dict[str, Any] = {
        "id": run_id or f"r-{uuid.uuid4().hex[:10]}",
        "seed": 11,
        "batchSize": 8,
        "worldSize": 2,
        "maxSteps": 200,
        "evalProbes": 4,
        "aggregationTimeoutMs": 60_000,
        "strategy": {"name": "static"},
        "domains": [
            {
                "name": n,
                "train": {"format": "jsonl", "paths": [str(data_dir / f"{n}.train.jsonl")]},
                "eval": {"format": "jsonl", "paths": [str(data_dir / f"{n}.eval.jsonl")]},
            }
            for n in DOMAINS
        ],
    }
    cfg.update(overrides)
    return cfg


def token_run_config(data_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A tokens run (windows of SEQ_LEN + 1 over 0, 1, 2, ...)."""
    return run_config(
        data_dir,
        worldSize=1,
        seqLen=SEQ_LEN,
        domains=[{"name": "counting", "train": {"format": "tokens", "paths": [str(data_dir / "tokens.train.bin")], "dtype": "uint16"}}],
        **overrides,
    )


def write_server_config(path: Path, runs: list[dict[str, Any]], **extra: Any) -> Path:
    """A server config with ``runs``; ``extra`` adds top-level sections (``auth``, ``tls``,
    ``limits``...), whose relative paths resolve against ``path``'s folder."""
    path.write_text(json.dumps({"metrics": {"enabled": False}, "logLevel": "warn", "runs": runs, **extra}), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[ServerProcess]:
    """A shared server with one configured run, "shared" (text, 2 ranks, 200 steps)."""
    root = tmp_path_factory.mktemp("server")
    config = write_server_config(root / "mixflow.json", [run_config(data_dir, "shared")])
    srv = ServerProcess(config, root / "state").start()
    yield srv
    try:
        assert srv.stop() == 0, "server did not drain cleanly"
    finally:
        srv.kill()


@pytest.fixture()
def client(server: ServerProcess) -> Iterator[MixflowClient]:
    with MixflowClient(server.address, deadline=20.0) as c:
        yield c


def wait_until(pred: Any, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``pred()`` until true (aggregation is asynchronous on the server)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def read_jsonl(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def corpus(data_dir: Path) -> dict[str, list[str]]:
    """Train documents per domain, by sample index."""
    return {n: read_jsonl(data_dir / f"{n}.train.jsonl") for n in DOMAINS}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """gRPC honours http_proxy; loopback tests must not go through one."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
