"""The resuming iterator across a server restart (SIGTERM, then the same data dir and port)."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest

from conftest import ServerProcess, run_config, wait_until, write_jsonl, write_server_config
from mixflow_client import MixflowClient, MixflowError
from test_client import same_batch


def test_batches_resume_after_server_restart(tmp_path: Path, data_dir: Path) -> None:
    # exp3 commits a new version after every aggregated step: the batches depend on the
    # journaled versions, so equality after the restart shows they were recovered.
    cfg = run_config(data_dir, "restart", strategy={"name": "exp3", "params": {"warmupSteps": 0}}, maxSteps=40)
    srv = ServerProcess(write_server_config(tmp_path / "mixflow.json", [cfg]), tmp_path / "state").start()
    try:
        with MixflowClient(srv.address, deadline=10.0) as client:
            for step in range(15):
                for rank in (0, 1):
                    b = client.next_batch("restart", step, rank=rank)
                    losses = np.linspace(0.5, 3.0, b.slots, dtype=np.float32) * (1 + (step + rank) % 3)
                    client.report_signals("restart", step, rank=rank, sample_losses=losses)
            wait_until(lambda: client.get_run("restart").last_aggregated_step == 14, what="steps 0..14 aggregated")
            before = [client.next_batch("restart", s, rank=1) for s in range(40)]
            assert len({b.version for b in before}) > 5, "exp3 should have committed versions"

            srv.stop()
            srv.start()  # same port, same data dir: recovers the run from the journal

            with client.batches("restart", rank=1, prefetch=2, backoff=0.05) as it:
                after = list(it)
            info = client.get_run("restart")
        assert [b.step for b in after] == list(range(40))  # ends at maxSteps
        for a, b in zip(after, before):
            same_batch(a, b)
        assert info.last_aggregated_step == 14
    finally:
        srv.kill()


def test_iterator_reconnects_through_a_restart_mid_stream(tmp_path: Path, data_dir: Path) -> None:
    # 64 KiB batches, so the stream cannot have buffered the whole run when the server stops.
    write_jsonl(tmp_path / "big.jsonl", [f"{i:05d} " + "x" * 4090 for i in range(300)])
    cfg = run_config(data_dir, "midstream", worldSize=1, batchSize=16, maxSteps=400, domains=[{"name": "big", "train": {"format": "jsonl", "paths": [str(tmp_path / "big.jsonl")]}}])
    srv = ServerProcess(write_server_config(tmp_path / "mixflow.json", [cfg]), tmp_path / "state").start()
    try:
        with MixflowClient(srv.address, deadline=10.0) as client:
            with client.batches("midstream", prefetch=2, backoff=0.05, max_retries=30) as it:
                got = [next(it)]
                srv.stop()  # the open stream ends; the iterator drains what it has, then retries...
                srv.start()  # ...until the server is back
                got += list(it)
            reference = list(client.stream_batches("midstream", max_batches=400))
        assert [b.step for b in got] == list(range(400))
        assert it.reconnects >= 1
        for a, b in zip(got, reference):
            assert (a.step, a.digest, a.text.data) == (b.step, b.digest, b.text.data)  # type: ignore[union-attr]
    finally:
        srv.kill()


def test_iterator_gives_up_after_bounded_retries(tmp_path: Path, data_dir: Path) -> None:
    cfg = run_config(data_dir, "gone", worldSize=1)
    srv = ServerProcess(write_server_config(tmp_path / "mixflow.json", [cfg]), tmp_path / "state").start()
    try:
        with MixflowClient(srv.address, deadline=2.0) as client:
            it = client.batches("gone", prefetch=1, backoff=0.01, max_retries=3)
            assert next(it).step == 0
            srv.stop()
            with pytest.raises(MixflowError) as e:
                for _ in it:
                    pass
        assert e.value.code == grpc.StatusCode.UNAVAILABLE and "3 reconnects failed" in e.value.message
        assert it.reconnects == 3
    finally:
        srv.kill()
