"""The harness's own contract: ``ServerProcess.kill()`` is a crash of the real server.

The crash and failover tests rely on it. It once SIGKILLed only the ``tsx`` wrapper: the
real server, its child, kept running (orphaned, found 45 minutes later on the CI machine)
and, with grpc-js's SO_REUSEPORT, went on answering next to the server the test restarted
on the same port.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest

from conftest import ServerProcess, run_config, write_server_config
from mixflow_client import MixflowClient
from mixflow_client.errors import MixflowError


def test_kill_leaves_no_server_process_and_nothing_answering(tmp_path: Path, data_dir: Path) -> None:
    srv = ServerProcess(write_server_config(tmp_path / "mixflow.json", [run_config(data_dir, "k")]), tmp_path / "state").start()
    address = srv.address
    assert srv.proc is not None
    group = srv.proc.pid
    with MixflowClient(address, deadline=10.0) as client:
        assert [r.run_id for r in client.list_runs()] == ["k"]
    srv.kill()
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)  # no process of the server's group is left
    with MixflowClient(address, deadline=2.0) as client:
        with pytest.raises(MixflowError) as e:
            client.list_runs()
    assert e.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
