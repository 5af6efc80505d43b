"""An iterator of batches over StreamBatches that survives dropped connections and server
restarts: it remembers the last step received and reopens the stream from the next one,
with exponential backoff and a bounded number of consecutive retries. Since a batch is a
pure function of (run, step, rank), the resumed sequence is exactly the one the first
stream would have sent.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import grpc

from . import _wire as pb
from .errors import MixflowError, MixflowRunGone
from .models import Batch

if TYPE_CHECKING:
    from .client import MixflowClient

#: Codes after which reconnecting can help.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

#: Longest wait between two reconnects, in seconds.
MAX_BACKOFF = 5.0


class BatchIterator(Iterator[Batch]):
    """Batches of one rank from ``from_step`` on (see :meth:`MixflowClient.batches`).

    Iteration ends when ``max_batches`` batches were yielded, when the run reaches
    ``max_steps`` or is closed, or after :meth:`cancel`. Raises :class:`MixflowRunGone` if
    the run does not exist (NOT_FOUND), :class:`MixflowError` for other non-retryable
    errors, and :class:`MixflowError` (UNAVAILABLE) after ``max_retries`` consecutive
    failed reconnects (the delay starts at ``backoff`` seconds and doubles, up to 5 s).

    Breaking out of a loop leaves the stream open (the server keeps it filled): use the
    iterator as a context manager, or call :meth:`close`.

    Attributes:
        next_step: the next step to receive (the resume point).
        reconnects: how many times the stream was reopened.
    """

    def __init__(
        self,
        client: MixflowClient,
        run_id: str,
        from_step: int = 0,
        rank: int = 0,
        world_size: int = 0,
        prefetch: int = 4,
        max_batches: int = 0,
        max_retries: int = 10,
        backoff: float = 0.1,
        pace_by_reports: bool = False,
    ) -> None:
        self.run_id = run_id
        self.pace_by_reports = pace_by_reports
        self.rank = rank
        self.world_size = world_size
        self.prefetch = prefetch
        self.next_step = from_step
        self.reconnects = 0
        self._client = client
        self._end = from_step + max_batches if max_batches > 0 else math.inf
        self._max_retries = max_retries
        self._backoff = backoff
        self._cancelled = threading.Event()
        self._call: Any = None
        self._gen = self._run()

    def __next__(self) -> Batch:
        return next(self._gen)

    def cancel(self) -> None:
        """Stop iterating; safe to call from another thread (the open stream is cancelled)."""
        self._cancelled.set()
        call = self._call
        if call is not None:
            call.cancel()

    def close(self) -> None:
        """Cancel and release the stream (call from the consuming thread)."""
        self.cancel()
        self._gen.close()

    def __enter__(self) -> BatchIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> Any:
        remaining = 0 if self._end == math.inf else int(self._end - self.next_step)
        req = pb.StreamBatchesRequest(
            run_id=self.run_id,
            from_step=self.next_step,
            rank=self.rank,
            world_size=self.world_size,
            prefetch=self.prefetch,
            max_batches=remaining,
            pace_by_reports=self.pace_by_reports,
        )
        return self._client._stub.StreamBatches(req, metadata=self._client._metadata)

    def _run_end(self) -> float | None:
        """After a clean end of stream: the run's end step, or None to stop (run closed), or
        ``math.inf`` if unknown or unbounded (reconnect)."""
        try:
            info = self._client.get_run(self.run_id)
        except MixflowRunGone:
            raise
        except MixflowError:
            return math.inf  # server draining or down: retry
        if info.state == "closed":
            return None
        return info.max_steps if info.max_steps > 0 else math.inf

    def _run(self) -> Iterator[Batch]:
        failures = 0
        run_end: float = math.inf
        while not self._cancelled.is_set() and self.next_step < min(self._end, run_end):
            call = self._open()
            self._call = call
            try:
                for m in call:
                    b = Batch.decode(m)
                    self.next_step = b.step + 1
                    failures = 0
                    yield b
                    if self._cancelled.is_set():
                        return
                if self.next_step >= self._end or self._cancelled.is_set():
                    return
                # The stream ended cleanly before we were done: the run ended, or the server drained.
                end = self._run_end()
                if end is None:
                    return
                run_end = end
                if self.next_step >= run_end:
                    return
            except grpc.RpcError as e:
                if self._cancelled.is_set():
                    return
                code = e.code()
                if code == grpc.StatusCode.NOT_FOUND:
                    raise MixflowRunGone(
                        f'run "{self.run_id}" is gone from the server ({e.details()}); check the run id or recreate the run'
                    ) from None
                if code == grpc.StatusCode.OUT_OF_RANGE:
                    return
                if code not in RETRYABLE:
                    raise MixflowError.from_rpc_error(e) from None
                if code == grpc.StatusCode.UNAVAILABLE:
                    self._client.failover()  # another replica serves the same bytes
            finally:
                self._call = None
                call.cancel()
            failures += 1
            if failures > self._max_retries:
                raise MixflowError(
                    grpc.StatusCode.UNAVAILABLE,
                    f'lost the batch stream of run "{self.run_id}" at step {self.next_step} and {self._max_retries} reconnects failed',
                )
            self.reconnects += 1
            self._cancelled.wait(min(MAX_BACKOFF, self._backoff * 2 ** (failures - 1)))
