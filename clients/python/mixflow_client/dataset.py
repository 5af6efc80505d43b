"""Training-loop glue: a (PyTorch) iterable dataset over a mixflow run, rank detection,
and byte windows for byte-level models on text payloads.

torch is optional. Without it (or with ``as_torch=False``) the dataset yields numpy arrays
and is a plain iterable; with it, it is a ``torch.utils.data.IterableDataset`` that yields
tensors.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import grpc
import numpy as np

from .client import MixflowClient
from .errors import MixflowError, MixflowWarning
from .iterator import RETRYABLE, BatchIterator
from .models import Batch, RunInfo, TextBlock, TokenBlock
from .reporter import SignalReporter

try:
    import torch
    from torch.utils.data import IterableDataset as _DatasetBase
except ImportError:  # torch is optional
    torch = None  # type: ignore[assignment]
    _DatasetBase = object  # type: ignore[assignment,misc]

#: State dict format of :meth:`MixflowIterableDataset.state_dict`.
STATE_FORMAT = "mixflow-dataset/1"

_MASK64 = (1 << 64) - 1


def resolve_rank(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """This process's ``(rank, world_size)``: the arguments if given, else
    ``torch.distributed`` if initialised, else the ``RANK`` / ``WORLD_SIZE`` environment
    variables (set by torchrun), else ``(0, 1)``."""
    if rank is None or world_size is None:
        if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
            r, w = torch.distributed.get_rank(), torch.distributed.get_world_size()
        else:
            r, w = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        rank = r if rank is None else rank
        world_size = w if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is out of range for world_size {world_size}")
    return rank, world_size


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _key(*words: int) -> int:
    h = 0
    for w in words:
        h = _splitmix64(h ^ (w & _MASK64))
    return h


class ByteWindows(NamedTuple):
    """Fixed-length byte windows: ``windows[i, :lengths[i]]`` are document bytes, the rest is 0."""

    windows: np.ndarray  # uint8, [n, window]
    lengths: np.ndarray  # int64, [n]


def to_bytes_windows(text: TextBlock, seq_len: int, step: int = 0, slot_offset: int = 0, seed: int = 0) -> ByteWindows:
    """Turn UTF-8 documents into fixed windows of ``seq_len + 1`` bytes (inputs and shifted
    targets of a byte-level LM, like the server's token windows).

    A longer document is cropped at a pseudo-random start that depends only on
    ``(seed, step, slot_offset + i)``, so every rank, rerun and resume sees the same window;
    a shorter one is padded with 0 (mask the loss with ``lengths``). Use a fixed ``step``
    (e.g. 0) for eval probes so they stay identical over training.
    """
    if seq_len < 1:
        raise ValueError("seq_len must be >= 1")
    width = seq_len + 1
    n = len(text)
    out = np.zeros((n, width), dtype=np.uint8)
    lengths = np.zeros(n, dtype=np.int64)
    buf = np.frombuffer(text.data, dtype=np.uint8)
    for i in range(n):
        a, b = int(text.offsets[i]), int(text.offsets[i + 1])
        size = b - a
        if size > width:
            a += _key(seed, step, slot_offset + i) % (size - width + 1)
            size = width
        out[i, :size] = buf[a : a + size]
        lengths[i] = size
    return ByteWindows(out, lengths)


def _as_numpy(x: Any) -> np.ndarray:
    """Losses from a tensor (any device, with grad) or array-like, as float32 numpy."""
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().to(dtype=torch.float32, device="cpu").numpy()
    return np.asarray(x, dtype=np.float32)


class MixflowIterableDataset(_DatasetBase):  # type: ignore[misc,valid-type]
    """The batches of one rank of a mixflow run, one item per global step.

    Each item is a plain dict (tensors, numbers, strings, dicts: safe for Lightning's
    device transfer and for DataLoader workers):

    - ``step``, ``version`` (the weights version it was drawn under), ``slot_offset`` (int),
      ``digest`` (str), ``weights`` (``{domain: weight}`` of that version, e.g. to log);
    - ``domains``, ``samples``: per-slot domain index and sample index (int64);
    - ``tokens``: token windows ``[slots, seq_len + 1]`` for a token run (int64 tensor, one
      copy of the received bytes; the zero-copy uint16/uint32 view with ``as_torch=False``), or
      byte windows (uint8) for a text run when ``seq_len`` is given, with ``lengths``
      (documents-mode token runs: flat ``tokens`` and ``offsets``);
    - ``text``: the documents (``list[str]``) of a text run;
    - ``eval_requested`` (bool) and, when true (the strategy asks, rank 0 only), ``eval``:
      ``{domain name: {"tokens": ..., ["lengths": ...]}}`` (or ``{"text": [...]}``) with the
      fixed probe windows to evaluate. Answer with :meth:`report_eval`;
    - ``batch``: the decoded :class:`Batch`, only with ``include_batch=True``.

    Rank and world size come from :func:`resolve_rank`. Iterating again continues after the
    last step yielded (with DataLoader workers: after the last step reported).

    ``DataLoader(ds, batch_size=None, num_workers=n)`` works for any ``n``: worker ``k``
    serves steps ``from + k, from + k + n, ...`` on a channel of its own, and the loader's
    round robin hands them to the training loop in step order, each exactly once. Report
    from the main process as usual (passing the item, ``ds.report(item, losses)``, tells
    the dataset whether the step asked for eval losses; with a bare step number a report
    waits for :meth:`report_eval` until the next step's report). With workers, pacing is
    the loader's own prefetch (``prefetch_factor`` per worker).

    :meth:`state_dict` / :meth:`load_state_dict` make it resumable at the step (O(1); also
    in torchdata's ``StatefulDataLoader``, with or without workers), at any world size that
    divides the batch.

    Args:
        client: a :class:`MixflowClient` or a server address (``host:port``).
        run_id: the run.
        token: bearer token for a server with auth on (the run's token from CreateRun or
            the server config, or the admin token). Only with an address: a
            :class:`MixflowClient` you pass already carries its own.
        credentials: channel credentials for a TLS server, e.g.
            ``grpc.ssl_channel_credentials(root_certificates=ca_pem)`` (add the client key
            and certificate for mutual TLS). Only with an address, like ``token``.
        from_step: first step (e.g. the step of a checkpoint being resumed).
        max_steps: stop after this many steps (0: until the run ends).
        seq_len: byte window length for text runs (see :func:`to_bytes_windows`).
        as_torch: yield tensors (default: when torch is importable).
        report: False to iterate without reporting (looking at batches, evaluating a
            mixture): the stream is then not paced and :meth:`report` raises.
        pace_by_reports: keep the server's stream at most ``prefetch`` steps ahead of the
            last step reported through :meth:`report` (default: ``report``), so new weights
            reach training promptly. A loop that falls behind is warned once
            (:class:`MixflowWarning`), since the server then holds the stream.
        include_batch: also put the decoded :class:`Batch` in each item (not Lightning-safe:
            it is a frozen dataclass).
    """

    def __init__(
        self,
        client: MixflowClient | str,
        run_id: str,
        *,
        from_step: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        prefetch: int = 4,
        max_steps: int = 0,
        seq_len: int | None = None,
        as_torch: bool | None = None,
        report: bool = True,
        pace_by_reports: bool | None = None,
        include_batch: bool = False,
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        if as_torch and torch is None:
            raise ImportError("as_torch=True needs torch installed")
        if isinstance(client, MixflowClient):
            if token is not None or credentials is not None:
                raise ValueError("token and credentials go to the MixflowClient you pass (MixflowClient(address, token=..., credentials=...)), or pass an address instead")
            self.client: MixflowClient | None = client
        else:
            self.client = MixflowClient(client, token=token, credentials=credentials)
        self._client_args = self.client._args
        self.run_id = run_id
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.next_step = from_step
        self.prefetch = prefetch
        self.seq_len = seq_len
        self.report_enabled = report
        self.pace_by_reports = report if pace_by_reports is None else pace_by_reports
        self.include_batch = include_batch
        self.as_torch = torch is not None if as_torch is None else as_torch
        self._end = from_step + max_steps if max_steps > 0 else 0
        try:
            self.info: RunInfo = self.client.get_run(run_id)
        except BaseException:
            if not isinstance(client, MixflowClient):
                self.client.close()  # ours, and nobody else can reach it to close it
            raise
        self._weights: dict[int, dict[str, float]] = {self.info.current.version: dict(zip(self.domain_names, self.info.current.weights))}
        self._reporter: SignalReporter | None = None
        self._iterator: BatchIterator | None = None
        self._worker_state: dict[str, Any] | None = None  # this copy's position in a DataLoader worker
        # Eval answers: steps this process iterated are known (eval-requested ones listed);
        # reports of other steps (a DataLoader worker iterated them) wait one step for theirs.
        self._known_through = from_step - 1
        self._eval_steps: set[int] = set()
        self._held_train: dict[int, tuple[np.ndarray, np.ndarray | None, bool]] = {}
        self._held_eval: dict[int, dict[str, float]] = {}
        self._last_reported = from_step - 1
        self._warned: set[str] = set()

    @property
    def domain_names(self) -> list[str]:
        return self.info.domain_names

    @property
    def reporter(self) -> SignalReporter:
        """The background reporter behind :meth:`report` (created on first use)."""
        if self._reporter is None:
            if self.client is None:
                raise RuntimeError("this copy of the dataset lives in a DataLoader worker: report from the main process")
            self._reporter = self.client.reporter(self.run_id, rank=self.rank, world_size=self.world_size)
        return self._reporter

    def __getstate__(self) -> dict[str, Any]:
        """For DataLoader workers started by 'spawn' / 'forkserver': without the channel
        and threads (a worker opens its own channel)."""
        if self._client_args[3] is not None:
            raise TypeError(
                "a MixflowIterableDataset with TLS credentials cannot be pickled (DataLoader workers with the 'spawn' or "
                "'forkserver' context): use the default 'fork' context, or num_workers=0"
            )
        state = self.__dict__.copy()
        state.update(client=None, _reporter=None, _iterator=None)
        return state

    # ------------------------------------------------------------------------------------
    # Iteration

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = torch.utils.data.get_worker_info() if torch is not None else None
        if worker is not None:
            yield from self._iter_worker(worker.id, worker.num_workers)
            return
        if self.client is None:
            raise RuntimeError("this dataset was unpickled without its channel: iterate the original, or in a DataLoader worker")
        remaining = 0
        if self._end:
            remaining = self._end - self.next_step
            if remaining <= 0:
                return
        self._iterator = self.client.batches(
            self.run_id,
            from_step=self.next_step,
            rank=self.rank,
            world_size=self.world_size,
            prefetch=self.prefetch,
            max_batches=remaining,
            pace_by_reports=self.pace_by_reports,
        )
        try:
            for b in self._iterator:
                self.next_step = b.step + 1
                self._known_through = b.step
                if b.eval_requested:
                    self._eval_steps.add(b.step)
                yield self._item(b, self.client)
                self._warn_if_paced()
        finally:
            self._iterator.close()
            self._iterator = None

    def _iter_worker(self, worker: int, workers: int) -> Iterator[dict[str, Any]]:
        """Steps ``start + worker + i * workers`` by NextBatch on this worker's own channel."""
        resume = self._worker_state
        if resume is not None and (resume["worker"], resume["workers"]) == (worker, workers):
            step = int(resume["step"])
        else:
            step = self.next_step + worker
        end: float = self._end or (self.info.max_steps if self.info.max_steps > 0 else math.inf)
        client = MixflowClient(*self._client_args[:4], max_message_bytes=self._client_args[4], channel_options=self._client_args[5])
        try:
            while step < end:
                b = self._fetch(client, step)
                if b is None:
                    return
                self._worker_state = {"worker": worker, "workers": workers, "step": step + workers}
                yield self._item(b, client)
                step += workers
        finally:
            client.close()

    def _fetch(self, client: MixflowClient, step: int, max_retries: int = 10) -> Batch | None:
        """One batch, retrying what reconnecting can fix; None past the run's end."""
        for attempt in range(max_retries + 1):
            try:
                return client.next_batch(self.run_id, step, rank=self.rank, world_size=self.world_size)
            except MixflowError as e:
                if e.code == grpc.StatusCode.OUT_OF_RANGE:
                    return None
                if e.code == grpc.StatusCode.FAILED_PRECONDITION and client.get_run(self.run_id).state == "closed":
                    return None
                if e.code not in RETRYABLE or attempt == max_retries:
                    raise
                time.sleep(min(5.0, 0.1 * 2**attempt))
        raise AssertionError("unreachable")

    def _warn_if_paced(self) -> None:
        if self.pace_by_reports and self.next_step > self._last_reported + self.prefetch:
            timeout = self.info.resolved_config.get("aggregationTimeoutMs", 30_000) / 1000
            self._warn_once(
                "paced",
                f"mixflow: the batch stream of run '{self.run_id}' is paced by reports (pace_by_reports): step "
                f"{self.next_step} is sent only after step {self.next_step - self.prefetch} is reported, or after the "
                f"run's aggregation timeout ({timeout:g} s). Call ds.report(step, losses) every step, or create the "
                "dataset with report=False to iterate without reporting",
            )

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, MixflowWarning, stacklevel=3)

    def _array(self, a: np.ndarray, dtype: type | None = None) -> Any:
        """numpy (as is) or a tensor (converted to ``dtype``: one copy)."""
        if not self.as_torch:
            return a
        return torch.from_numpy(a.astype(dtype) if dtype is not None else a)

    def _windows(self, text: TextBlock | None, tokens: TokenBlock | None, step: int, slot_offset: int) -> dict[str, Any]:
        if tokens is not None:
            out = {"tokens": self._array(tokens.ids, np.int64)}
            if len(tokens.offsets):  # documents mode: slot i is tokens[offsets[i]:offsets[i+1]]
                out["offsets"] = self._array(tokens.offsets, np.int64)
            return out
        if text is not None and self.seq_len is not None:
            w = to_bytes_windows(text, self.seq_len, step=step, slot_offset=slot_offset, seed=self.info.seed)
            return {"tokens": self._array(w.windows), "lengths": self._array(w.lengths)}
        return {"text": text.texts() if text is not None else []}

    def _weights_of(self, version: int, client: MixflowClient) -> dict[str, float]:
        """The weights of a version (GetWeights once per version not seen yet)."""
        if version not in self._weights:
            timeline = client.get_weights(self.run_id)
            for v in timeline.versions:
                self._weights[v.version] = dict(zip(timeline.domains, v.weights))
        return dict(self._weights.get(version, {}))

    def _item(self, b: Batch, client: MixflowClient) -> dict[str, Any]:
        item: dict[str, Any] = {
            "step": b.step,
            "version": b.version,
            "slot_offset": b.slot_offset,
            "digest": b.digest,
            "weights": self._weights_of(b.version, client),
            "eval_requested": b.eval_requested,
            "domains": self._array(b.slot_domains, np.int64),
            "samples": self._array(b.slot_samples, np.int64),
            **self._windows(b.text, b.tokens, b.step, b.slot_offset),
        }
        if b.text is not None:
            item["text"] = b.text.texts()
        if self.include_batch:
            item["batch"] = b
        if b.eval_requested:
            names = self.domain_names
            # Probes are cropped with a fixed key (step 0, slot 0) so they never change.
            item["eval"] = {names[p.domain]: self._windows(p.text, p.tokens, 0, 0) for p in b.probes}
        return item

    # ------------------------------------------------------------------------------------
    # Checkpointing

    def state_dict(self) -> dict[str, Any]:
        """Where to resume: the next step (O(1), independent of world size). In a
        DataLoader worker (torchdata's ``StatefulDataLoader`` asks there), the worker's own
        next step. With plain DataLoader workers, the main process's copy knows the steps
        reported, so save it after reporting."""
        state: dict[str, Any] = {"format": STATE_FORMAT, "run_id": self.run_id, "step": self.next_step}
        worker = torch.utils.data.get_worker_info() if torch is not None else None
        if worker is not None:
            state.update(self._worker_state or {"worker": worker.id, "workers": worker.num_workers, "step": self.next_step + worker.id})
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume at the step of :meth:`state_dict` (nothing earlier is re-streamed)."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a mixflow dataset state (format {state.get('format')!r}, expected {STATE_FORMAT!r})")
        if state.get("run_id") != self.run_id:
            raise ValueError(f"the state is of run {state.get('run_id')!r}, this dataset reads run {self.run_id!r}")
        if "worker" in state:
            worker = torch.utils.data.get_worker_info() if torch is not None else None
            if worker is None or (worker.id, worker.num_workers) != (state["worker"], state["workers"]):
                raise ValueError(
                    f"the state is of DataLoader worker {state['worker']} of {state['workers']}; resume with the same "
                    "num_workers, or save ds.state_dict() from the main process"
                )
            self._worker_state = dict(state)
            return
        self.next_step = int(state["step"])
        self._known_through = self._last_reported = self.next_step - 1

    # ------------------------------------------------------------------------------------
    # Reporting

    def _step_of(self, step: int | Mapping[str, Any]) -> tuple[int, bool | None]:
        """The step number, and whether it asked for eval losses (None: not known here)."""
        if isinstance(step, Mapping):
            return int(step["step"]), bool(step.get("eval_requested", "eval" in step))
        s = int(step)
        if s in self._eval_steps:
            return s, True
        return s, (False if s <= self._known_through else None)

    def report(
        self,
        step: int | Mapping[str, Any],
        per_sample_losses: Sequence[float] | np.ndarray | Any,
        reference_losses: Sequence[float] | np.ndarray | Any | None = None,
        *,
        eval_losses: Mapping[str, float] | None = None,
    ) -> None:
        """Report this rank's per-sample mean losses of ``step`` (the step number or the
        item; aligned with its slots). Never blocks. On a step with ``eval_requested`` the
        report waits for :meth:`report_eval` of the same step (the server takes one report
        per step and rank), or pass ``eval_losses`` here. A step whose eval request goes
        unanswered is sent with its train losses when the next step is reported, with a
        :class:`MixflowWarning` the first time.

        ``reference_losses``: optionally, a reference model's per-sample losses on the same
        windows, aligned like ``per_sample_losses`` (tensor or array-like). The server sums
        them per domain next to the training losses, so strategies that compare against a
        reference (``doremi``: excess loss = train − reference, per batch, as in the DoReMi
        paper) use them; a length mismatch is rejected (``INVALID_ARGUMENT``, surfaced as
        :class:`ReportRejected` by a later call)."""
        if not self.report_enabled:
            raise ValueError("this dataset was created with report=False; create it with report=True to report losses")
        s, wants_eval = self._step_of(step)
        if isinstance(step, Mapping) and wants_eval:
            self._eval_steps.add(s)
        losses = _as_numpy(per_sample_losses)
        ref = None if reference_losses is None else _as_numpy(reference_losses)
        self.next_step = max(self.next_step, s + 1)
        self._last_reported = max(self._last_reported, s)
        self._release_before(s)
        if eval_losses is not None:
            self._send(s, losses, ref, {k: float(v) for k, v in eval_losses.items()})
        elif s in self._held_eval:
            self._send(s, losses, ref, self._held_eval.pop(s))
        elif wants_eval is False:
            self.reporter.report(s, sample_losses=losses, reference_losses=ref)
        else:
            self._held_train[s] = (losses, ref, bool(wants_eval))

    def report_eval(self, step: int | Mapping[str, Any], eval_losses: Mapping[str, float]) -> None:
        """Answer ``eval_requested`` of ``step`` with the mean loss per domain name on the
        probes (``item["eval"]``); sent together with the step's :meth:`report`."""
        s, wants_eval = self._step_of(step)
        if wants_eval is False:
            raise ValueError(f"step {s} did not request eval losses (eval_requested is false for this rank)")
        losses = {k: float(v) for k, v in eval_losses.items()}
        if s in self._held_train:
            losses_train, ref, _ = self._held_train.pop(s)
            self._send(s, losses_train, ref, losses)
        elif s <= self._last_reported:
            raise ValueError(
                f"the train losses of step {s} were already sent: call report_eval({s}, ...) before reporting step "
                f"{s + 1}, or pass eval_losses= to report({s}, ...)"
            )
        else:
            self._held_eval[s] = losses

    def _release_before(self, step: int) -> None:
        """Send held reports of steps before ``step``: their eval answer did not come."""
        for s in sorted(k for k in self._held_train if k < step):
            losses, ref, asked = self._held_train.pop(s)
            if asked:
                self._warn_missing_eval(s)
            self._eval_steps.discard(s)
            self.reporter.report(s, sample_losses=losses, reference_losses=ref)

    def _warn_missing_eval(self, step: int) -> None:
        self._warn_once(
            "eval",
            f"mixflow: step {step} asked for eval losses and got none, so strategy '{self.info.strategy}' cannot use "
            "them; evaluate the model on each item['eval'][domain] and call ds.report_eval(step, {domain: mean_loss}) "
            "before reporting the next step (or pass eval_losses= to ds.report). Sending its train losses alone",
        )

    def _send(self, step: int, losses: np.ndarray, ref: np.ndarray | None, eval_losses: dict[str, float]) -> None:
        self._eval_steps.discard(step)
        self.reporter.report(step, sample_losses=losses, eval_losses=eval_losses, reference_losses=ref)

    def flush(self, timeout: float | None = None) -> None:
        """Send what is held and wait until every report is acknowledged (raises the first
        rejection). A step whose eval answer never came is sent with its train losses."""
        self._release_before(self._last_reported + 1)
        if self._reporter is not None:
            self._reporter.flush(timeout)

    def close(self) -> None:
        """Flush the reports and stop the background threads (the client stays open)."""
        if self._iterator is not None:
            self._iterator.cancel()
        self.flush()
        if self._reporter is not None:
            self._reporter.close()
            self._reporter = None
