"""Client failover across replicas: a client given several addresses moves on when one is
UNAVAILABLE, and its batch iterator resumes there with the same bytes.

Two real single-process servers serve the same configured run (same config and seed, a
static strategy), so they serve identical batches, as replicas of a cluster do; the
cluster itself is tested against etcd in test/cluster."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from conftest import ServerProcess, run_config, write_jsonl, write_server_config
from mixflow_client import MixflowClient
from test_client import same_batch


def _dead_address() -> str:
    """A loopback port nobody listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"


def _kill9(srv: ServerProcess) -> None:
    """SIGKILL the server and its child processes (tsx runs the server in a child node
    process, which a SIGKILL of tsx alone would leave serving)."""
    assert srv.proc is not None
    pids = [srv.proc.pid]
    i = 0
    while i < len(pids):
        for task in Path(f"/proc/{pids[i]}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
        i += 1
    for pid in reversed(pids):
        os.kill(pid, signal.SIGKILL)
    srv.proc.wait()
    srv.proc = None


def test_unary_calls_move_to_the_next_address_on_unavailable(tmp_path: Path, data_dir: Path) -> None:
    cfg = run_config(data_dir, "twin", maxSteps=50)
    srv = ServerProcess(write_server_config(tmp_path / "mixflow.json", [cfg]), tmp_path / "state").start()
    try:
        with MixflowClient([_dead_address(), srv.address], deadline=10.0) as client, MixflowClient(srv.address, deadline=10.0) as direct:
            b = client.next_batch("twin", 7, rank=1)
            assert client.address == srv.address
            same_batch(b, direct.next_batch("twin", 7, rank=1))
    finally:
        srv.kill()


def test_iterator_fails_over_to_another_replica_when_its_replica_is_killed(tmp_path: Path, data_dir: Path) -> None:
    cfg = run_config(data_dir, "twins", maxSteps=120)
    a = ServerProcess(write_server_config(tmp_path / "a.json", [cfg]), tmp_path / "state-a").start()
    b = ServerProcess(write_server_config(tmp_path / "b.json", [cfg]), tmp_path / "state-b").start()
    try:
        with MixflowClient([a.address, b.address], deadline=10.0) as client:
            first = client.next_batch("twins", 0, rank=1)  # connected to a
            assert client.address == a.address
            _kill9(a)  # the stream the iterator opens next finds it UNAVAILABLE
            with client.batches("twins", rank=1, prefetch=2, backoff=0.05, max_retries=30) as it:
                got = list(it)
            assert client.address == b.address
            assert it.reconnects >= 1
        with MixflowClient(b.address, deadline=10.0) as direct:
            reference = list(direct.stream_batches("twins", rank=1, max_batches=120))
        assert [x.step for x in got] == list(range(120))
        same_batch(first, got[0])
        for x, y in zip(got, reference):
            same_batch(x, y)
    finally:
        a.kill()
        b.kill()


def test_iterator_fails_over_mid_stream_when_its_replica_is_killed(tmp_path: Path, data_dir: Path) -> None:
    # 64 KiB batches, so the stream cannot have buffered the whole run when its server dies.
    write_jsonl(tmp_path / "big.jsonl", [f"{i:05d} " + "x" * 4090 for i in range(300)])
    cfg = run_config(data_dir, "bigtwins", worldSize=1, batchSize=16, maxSteps=400, domains=[{"name": "big", "train": {"format": "jsonl", "paths": [str(tmp_path / "big.jsonl")]}}])
    a = ServerProcess(write_server_config(tmp_path / "a.json", [cfg]), tmp_path / "state-a").start()
    b = ServerProcess(write_server_config(tmp_path / "b.json", [cfg]), tmp_path / "state-b").start()
    try:
        with MixflowClient([a.address, b.address], deadline=10.0) as client:
            with client.batches("bigtwins", prefetch=2, backoff=0.05, max_retries=30) as it:
                got = [next(it)]
                _kill9(a)
                got += list(it)
            assert client.address == b.address
            assert it.reconnects >= 1
        with MixflowClient(b.address, deadline=10.0) as direct:
            reference = list(direct.stream_batches("bigtwins", max_batches=400))
        assert [x.step for x in got] == list(range(400))
        for x, y in zip(got, reference):
            same_batch(x, y)
    finally:
        a.kill()
        b.kill()
