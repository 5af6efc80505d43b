"""A mixflow server as a child process, for the Python benchmarks (bench/learning,
bench/overhead): started with ``npx tsx src/cli/main.ts serve`` on a free loopback port in
its own process group, and stopped as a group (npx -> tsx -> node all go together)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    """``address`` is the bound gRPC address; ``data_dir`` the server's state (journal)."""

    def __init__(self, work: Path, log: IO[str] | None = None) -> None:
        cfg = work / "server.json"
        cfg.write_text(json.dumps({"metrics": {"enabled": False}, "logLevel": "warn", "runs": []}))
        self.data_dir = work / "data"
        self.proc = subprocess.Popen(
            ["npx", "tsx", "src/cli/main.ts", "serve", "--config", str(cfg), "--listen", "127.0.0.1:0",
             "--data-dir", str(self.data_dir), "--durability", "none"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=log if log is not None else subprocess.DEVNULL, text=True,
            start_new_session=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                ev = json.loads(line)
                if ev.get("event") == "listening":
                    self.address: str = ev["grpc"]
                    break
        else:
            raise SystemExit("mixflow server did not start" + (f"; see {log.name}" if log is not None else ""))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    def close(self, grace: float = 20.0) -> None:
        """SIGTERM the process group, wait for it to drain, SIGKILL what is left after ``grace`` s."""

        def alive() -> bool:
            try:
                os.killpg(self.proc.pid, 0)
                return True
            except ProcessLookupError:
                return False

        if alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            deadline = time.time() + grace
            while time.time() < deadline and alive():
                self.proc.poll()  # reap npx itself
                time.sleep(0.2)
            if alive():
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
