"""The Python client: typed methods for every RPC of ``mixflow.v1.Mixer``, a deadline on
every unary call, a resuming batch iterator (:meth:`MixflowClient.batches`) and a
non-blocking signal reporter (:meth:`MixflowClient.reporter`).

It mirrors the TypeScript client in ``src/client/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import numpy as np

from . import _wire as pb
from .errors import MixflowError
from .models import Batch, ReportResult, RunInfo, WeightsTimeline, WeightsVersion

if TYPE_CHECKING:
    from .iterator import BatchIterator
    from .reporter import SignalReporter

#: Largest message either way (the server's default limit).
MAX_MESSAGE_BYTES = 256 * 1024 * 1024

T = TypeVar("T")

#: Per-domain loss sums: ``(domain index, sum of per-sample mean losses, sample count)``.
DomainLoss = tuple[int, float, int]


def _f32_bytes(x: Sequence[float] | np.ndarray | None) -> bytes:
    """Losses as float32 little-endian bytes (accepts lists, numpy arrays, CPU tensors)."""
    if x is None:
        return b""
    return np.ascontiguousarray(np.asarray(x, dtype="<f4")).tobytes()


class MixflowClient:
    """A connection to a mixflow server.

    Args:
        address: ``host:port`` of the server's gRPC listener; or several (a list, or
            comma-separated) for replicas of one cluster: a call failing with UNAVAILABLE
            moves to the next address and is retried there, and the batch iterator resumes
            there (batches are a pure function of run, step and rank, so the bytes are the same).
        token: bearer token sent as ``authorization`` metadata on every call.
        deadline: seconds allowed for each unary call (streams have none).
        credentials: channel credentials (``grpc.ssl_channel_credentials()``); default insecure.
        max_message_bytes: largest message either way (default 256 MiB, as the server).
        channel_options: extra gRPC channel options, e.g.
            ``[("grpc.ssl_target_name_override", "mixflow.internal")]`` to reach a server by IP
            address whose certificate names only a DNS name. They replace defaults of the same key.

    The client is thread-safe (gRPC channels are). Use it as a context manager or call
    :meth:`close`.
    """

    def __init__(
        self,
        address: str | Sequence[str],
        token: str | None = None,
        deadline: float = 30.0,
        credentials: grpc.ChannelCredentials | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        parts = address.split(",") if isinstance(address, str) else list(address)
        self.addresses: tuple[str, ...] = tuple(a.strip() for a in parts if a.strip())
        if not self.addresses:
            raise ValueError("MixflowClient: no server address given")
        self._current = 0
        self.deadline = deadline
        self._args = (address, token, deadline, credentials, max_message_bytes, tuple(channel_options))
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # Reconnect quickly after a server restart (the default backoff grows to 120 s).
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 5000),
        ]
        overridden = {k for k, _ in channel_options}
        options = [o for o in options if o[0] not in overridden] + list(channel_options)
        if credentials is None:
            self._make_channel: Callable[[str], grpc.Channel] = lambda a: grpc.insecure_channel(a, options=options)
        else:
            self._make_channel = lambda a: grpc.secure_channel(a, credentials, options=options)
        self._channels: list[grpc.Channel | None] = [None] * len(self.addresses)
        self._stubs: list[pb.MixerStub | None] = [None] * len(self.addresses)
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()

    @property
    def address(self) -> str:
        """The address calls go to now."""
        return self.addresses[self._current]

    @property
    def _channel(self) -> grpc.Channel:
        i = self._current
        if self._channels[i] is None:
            self._channels[i] = self._make_channel(self.addresses[i])
        return self._channels[i]  # type: ignore[return-value]

    @property
    def _stub(self) -> pb.MixerStub:
        i = self._current
        if self._stubs[i] is None:
            self._stubs[i] = pb.MixerStub(self._channel)
        return self._stubs[i]  # type: ignore[return-value]

    def failover(self) -> None:
        """Move to the next address (after UNAVAILABLE from this one); no-op with one address."""
        self._current = (self._current + 1) % len(self.addresses)

    # ------------------------------------------------------------------------------------
    # Plumbing

    def _unary(self, method: Callable[..., T], request: Any) -> T:
        stub = self._stub
        for tried in range(1, len(self.addresses) + 1):
            try:
                return method(request, timeout=self.deadline, metadata=self._metadata)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or tried >= len(self.addresses):
                    raise MixflowError.from_rpc_error(e) from None
                # The same method on the next replica's stub.
                name = next(k for k, v in vars(stub).items() if v is method)
                self.failover()
                stub = self._stub
                method = getattr(stub, name)
        raise AssertionError("unreachable")

    def _stream(self, method: Callable[..., Any], request: Any, decode: Callable[[Any], T]) -> Iterator[T]:
        """A server stream as an iterator of decoded messages; closing it cancels the call."""
        call = method(request, metadata=self._metadata)
        try:
            for m in call:
                yield decode(m)
        except grpc.RpcError as e:
            raise MixflowError.from_rpc_error(e) from None
        finally:
            call.cancel()

    # ------------------------------------------------------------------------------------
    # Runs

    def create_run(self, config: Mapping[str, Any]) -> RunInfo:
        """Create a run from a run config (the same JSON as a run in the server config file)."""
        return RunInfo.decode(self._unary(self._stub.CreateRun, pb.CreateRunRequest(config_json=json.dumps(config))))

    def get_run(self, run_id: str) -> RunInfo:
        return RunInfo.decode(self._unary(self._stub.GetRun, pb.GetRunRequest(run_id=run_id)))

    def list_runs(self) -> list[RunInfo]:
        return [RunInfo.decode(r) for r in self._unary(self._stub.ListRuns, pb.ListRunsRequest()).runs]

    def close_run(self, run_id: str) -> RunInfo:
        """Close a run: its streams end, and it serves and accepts nothing more."""
        return RunInfo.decode(self._unary(self._stub.CloseRun, pb.CloseRunRequest(run_id=run_id)))

    # ------------------------------------------------------------------------------------
    # Batches

    def next_batch(self, run_id: str, step: int, rank: int = 0, world_size: int = 0) -> Batch:
        """The batch of ``(step, rank)``. ``world_size`` 0 means the run's."""
        req = pb.NextBatchRequest(run_id=run_id, step=step, rank=rank, world_size=world_size)
        return Batch.decode(self._unary(self._stub.NextBatch, req))

    def stream_batches(
        self,
        run_id: str,
        from_step: int = 0,
        rank: int = 0,
        world_size: int = 0,
        prefetch: int = 4,
        max_batches: int = 0,
        pace_by_reports: bool = False,
    ) -> Iterator[Batch]:
        """One StreamBatches call, without resuming; most callers want :meth:`batches`."""
        req = pb.StreamBatchesRequest(
            run_id=run_id,
            from_step=from_step,
            rank=rank,
            world_size=world_size,
            prefetch=prefetch,
            max_batches=max_batches,
            pace_by_reports=pace_by_reports,
        )
        return self._stream(self._stub.StreamBatches, req, Batch.decode)

    def batches(
        self,
        run_id: str,
        from_step: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        prefetch: int = 4,
        max_batches: int = 0,
        max_retries: int = 10,
        backoff: float = 0.1,
        pace_by_reports: bool = False,
    ) -> BatchIterator:
        """Batches from ``from_step`` on, resuming after dropped connections and server
        restarts (see :class:`~mixflow_client.iterator.BatchIterator`). Set
        ``pace_by_reports`` when this rank reports signals: the server then stays at most
        ``prefetch`` steps ahead of its last report, so new weights reach training promptly."""
        from .iterator import BatchIterator

        return BatchIterator(
            self,
            run_id,
            from_step=from_step,
            rank=rank or 0,
            world_size=world_size or 0,
            prefetch=prefetch,
            max_batches=max_batches,
            max_retries=max_retries,
            backoff=backoff,
            pace_by_reports=pace_by_reports,
        )

    # ------------------------------------------------------------------------------------
    # Signals

    def report_signals(
        self,
        run_id: str,
        step: int,
        rank: int = 0,
        world_size: int = 0,
        sample_losses: Sequence[float] | np.ndarray | None = None,
        domain_losses: Sequence[DomainLoss] | None = None,
        eval_losses: Mapping[str, float] | None = None,
        reference_losses: Sequence[float] | np.ndarray | None = None,
    ) -> ReportResult:
        """Report one rank's signals for one step (synchronously; see :meth:`reporter`).

        ``sample_losses``: per-sample mean losses aligned with the rank's slots; or
        ``domain_losses``: ``(domain, loss_sum, count)`` triples; ``eval_losses``: mean eval
        loss per domain name (the answer to ``eval_requested``); ``reference_losses``:
        reference-model losses aligned like ``sample_losses``.
        """
        req = pb.ReportSignalsRequest(
            run_id=run_id,
            step=step,
            rank=rank,
            world_size=world_size,
            sample_losses=_f32_bytes(sample_losses),
            domain_losses=[pb.DomainLoss(domain=d, loss_sum=s, count=c) for d, s, c in (domain_losses or [])],
            eval_losses=dict(eval_losses or {}),
            reference_losses=_f32_bytes(reference_losses),
        )
        r = self._unary(self._stub.ReportSignals, req)
        return ReportResult(duplicate=r.duplicate, step_complete=r.step_complete, version=r.version)

    def reporter(
        self,
        run_id: str,
        rank: int = 0,
        world_size: int = 0,
        concurrency: int = 4,
        max_retries: int = 8,
        on_ack: Callable[[int, ReportResult], None] | None = None,
    ) -> SignalReporter:
        """A background reporter whose ``report()`` never blocks the training step."""
        from .reporter import SignalReporter

        return SignalReporter(self, run_id, rank=rank, world_size=world_size, concurrency=concurrency, max_retries=max_retries, on_ack=on_ack)

    # ------------------------------------------------------------------------------------
    # Weights

    def get_weights(self, run_id: str) -> WeightsTimeline:
        return WeightsTimeline.decode(self._unary(self._stub.GetWeights, pb.GetWeightsRequest(run_id=run_id)))

    def watch_weights(self, run_id: str, after_version: int = 0) -> Iterator[WeightsVersion]:
        """Versions with id > ``after_version`` as they are committed; ends when the run
        closes. Close the iterator (or break out of the loop) to cancel."""
        req = pb.WatchWeightsRequest(run_id=run_id, after_version=after_version)
        return self._stream(self._stub.WatchWeights, req, WeightsVersion.decode)

    # ------------------------------------------------------------------------------------

    def clone(self) -> MixflowClient:
        """A new client with the same address, token and options on a channel of its own:
        what a DataLoader worker process needs (a gRPC channel does not survive a fork)."""
        return MixflowClient(*self._args[:4], max_message_bytes=self._args[4], channel_options=self._args[5])

    def close(self) -> None:
        for c in self._channels:
            if c is not None:
                c.close()

    def __enter__(self) -> MixflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
