"""A signal reporter that never blocks the training step: :meth:`SignalReporter.report`
enqueues and returns; background threads send the reports, retrying transient failures
with backoff. A report the server rejects (bad input) is surfaced by the next ``report()``
or ``flush()`` as a :class:`~mixflow_client.errors.ReportRejected` carrying the server's
message, so bugs are not silently dropped.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
import numpy as np

from .errors import MixflowError, ReportRejected
from .models import ReportResult

if TYPE_CHECKING:
    from .client import DomainLoss, MixflowClient

#: Codes worth retrying: the report was not recorded, or we cannot know (then the re-send
#: is acknowledged as a duplicate, since reports are idempotent).
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED})
MAX_BACKOFF = 5.0


@dataclass(frozen=True)
class _Report:
    step: int
    sample_losses: np.ndarray | None
    domain_losses: Sequence[DomainLoss] | None
    eval_losses: Mapping[str, float] | None
    reference_losses: np.ndarray | None


def _snapshot(x: Sequence[float] | np.ndarray | None) -> np.ndarray | None:
    """A private float32 copy, so the caller may reuse its buffer right after report()."""
    return None if x is None else np.array(x, dtype="<f4", copy=True)


class SignalReporter:
    """Queues one rank's reports and sends them from background threads.

    Args:
        client: the connection.
        run_id, rank, world_size: who is reporting (world_size 0 = the run's).
        concurrency: reports in flight at once (worker threads).
        max_retries: retries per report for transient errors (backoff 0.1 s doubling, up to 5 s).
        on_ack: called from a worker thread with ``(step, result)`` for each acknowledgement.

    Use as a context manager, or call :meth:`close` (which flushes) at the end of training.
    """

    def __init__(
        self,
        client: MixflowClient,
        run_id: str,
        rank: int = 0,
        world_size: int = 0,
        concurrency: int = 4,
        max_retries: int = 8,
        on_ack: Callable[[int, ReportResult], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.run_id = run_id
        self.rank = rank
        self.world_size = world_size
        self.acked = 0
        self._client = client
        self._max_retries = max_retries
        self._on_ack = on_ack
        self._queue: queue.Queue[_Report | None] = queue.Queue()
        self._lock = threading.Condition()
        self._pending = 0
        self._error: Exception | None = None
        self._closed = threading.Event()
        self._workers = [
            threading.Thread(target=self._work, name=f"mixflow-reporter-{rank}-{i}", daemon=True) for i in range(concurrency)
        ]
        for t in self._workers:
            t.start()

    @property
    def pending(self) -> int:
        """Reports queued or in flight."""
        with self._lock:
            return self._pending

    def report(
        self,
        step: int,
        sample_losses: Sequence[float] | np.ndarray | None = None,
        domain_losses: Sequence[DomainLoss] | None = None,
        eval_losses: Mapping[str, float] | None = None,
        reference_losses: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        """Queue the report of one step and return at once. Raises the first earlier
        rejection (:class:`ReportRejected`), if any."""
        self._raise_if_failed()
        if self._closed.is_set():
            raise RuntimeError("SignalReporter is closed")
        r = _Report(
            step=step,
            sample_losses=_snapshot(sample_losses),
            domain_losses=list(domain_losses) if domain_losses is not None else None,
            eval_losses=dict(eval_losses) if eval_losses is not None else None,
            reference_losses=_snapshot(reference_losses),
        )
        with self._lock:
            self._pending += 1
        self._queue.put(r)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued report is acknowledged; raises the first rejection.
        Raises ``TimeoutError`` if ``timeout`` seconds pass first."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._pending == 0, timeout):
                raise TimeoutError(f"{self._pending} mixflow reports still pending after {timeout} s")
        self._raise_if_failed()

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the worker threads (they stop even if the flush raises)."""
        try:
            if not self._closed.is_set():
                self.flush(timeout)
        finally:
            if not self._closed.is_set():
                self._closed.set()
                for _ in self._workers:
                    self._queue.put(None)
                for t in self._workers:
                    t.join(timeout=1.0)

    def __enter__(self) -> SignalReporter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except Exception:  # noqa: BLE001 - the exception already propagating matters more
            pass

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        while True:
            r = self._queue.get()
            if r is None:
                return
            try:
                result = self._send(r)
                with self._lock:
                    self.acked += 1
                if self._on_ack is not None:
                    self._on_ack(r.step, result)
            except Exception as e:  # a rejection, or a bug in on_ack: surfaced to the trainer
                with self._lock:
                    if self._error is None:
                        self._error = ReportRejected(r.step, e) if isinstance(e, MixflowError) else e
            finally:
                with self._lock:
                    self._pending -= 1
                    self._lock.notify_all()

    def _send(self, r: _Report) -> ReportResult:
        attempt = 0
        while True:
            try:
                return self._client.report_signals(
                    self.run_id,
                    r.step,
                    rank=self.rank,
                    world_size=self.world_size,
                    sample_losses=r.sample_losses,
                    domain_losses=r.domain_losses,
                    eval_losses=r.eval_losses,
                    reference_losses=r.reference_losses,
                )
            except MixflowError as e:
                if e.code not in TRANSIENT or attempt >= self._max_retries or self._closed.is_set():
                    raise
                self._closed.wait(min(MAX_BACKOFF, 0.1 * 2**attempt))
                attempt += 1
