"""Training-loop glue: a (PyTorch) iterable dataset over a mixflow run, rank detection,
and byte windows for byte-level models on text payloads.

torch is optional. Without it (or with ``as_torch=False``) the dataset yields numpy arrays
and is a plain iterable; with it, it is a ``torch.utils.data.IterableDataset`` that yields
tensors.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import grpc
import numpy as np

from .client import MixflowClient
from .iterator import BatchIterator
from .models import Batch, RunInfo, TextBlock, TokenBlock
from .reporter import SignalReporter

try:
    import torch
    from torch.utils.data import IterableDataset as _DatasetBase
except ImportError:  # torch is optional
    torch = None  # type: ignore[assignment]
    _DatasetBase = object  # type: ignore[assignment,misc]

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

    Each item is a dict:

    - ``step`` (int), ``batch`` (the decoded :class:`Batch`);
    - ``domains``, ``samples``: per-slot domain index and sample index (int64);
    - ``tokens``: token windows ``[slots, seq_len + 1]`` for a token run (int64 tensor, one
      copy of the received bytes; the zero-copy uint16/uint32 view with ``as_torch=False``), or
      byte windows (uint8) for a text run when ``seq_len`` is given, with ``lengths``
      (documents-mode token runs: flat ``tokens`` and ``offsets``);
    - ``text``: the :class:`TextBlock` of a text run;
    - ``eval``: only when the server asks for eval losses (``eval_requested``, rank 0):
      ``{domain name: {"tokens": ..., ["lengths": ...]}}`` (or ``{"text": TextBlock}``)
      with the fixed probe windows to evaluate. Answer with :meth:`report_eval`.

    Rank and world size come from :func:`resolve_rank`. Iterating again continues after
    the last step yielded. Use it directly or with ``DataLoader(ds, batch_size=None,
    num_workers=0)``: the server already prefetches, and the gRPC channel does not fork.

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
        pace_by_reports: keep the server's stream at most ``prefetch`` steps ahead of the
            last step reported through :meth:`report` (default), so new weights reach
            training promptly. Pass False if you iterate without reporting as you go: a paced
            stream otherwise waits for reports until the run's aggregation timeout.
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
        pace_by_reports: bool = True,
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        if as_torch and torch is None:
            raise ImportError("as_torch=True needs torch installed")
        if isinstance(client, MixflowClient):
            if token is not None or credentials is not None:
                raise ValueError("token and credentials go to the MixflowClient you pass (MixflowClient(address, token=..., credentials=...)), or pass an address instead")
            self.client = client
        else:
            self.client = MixflowClient(client, token=token, credentials=credentials)
        self.run_id = run_id
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.next_step = from_step
        self.prefetch = prefetch
        self.seq_len = seq_len
        self.pace_by_reports = pace_by_reports
        self.as_torch = torch is not None if as_torch is None else as_torch
        self._end = from_step + max_steps if max_steps > 0 else 0
        try:
            self.info: RunInfo = self.client.get_run(run_id)
        except BaseException:
            if not isinstance(client, MixflowClient):
                self.client.close()  # ours, and nobody else can reach it to close it
            raise
        self._reporter: SignalReporter | None = None
        self._iterator: BatchIterator | None = None
        # Steps with eval_requested whose train losses or eval losses wait for the other half.
        self._eval_steps: set[int] = set()
        self._held_train: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        self._held_eval: dict[int, dict[str, float]] = {}

    @property
    def domain_names(self) -> list[str]:
        return self.info.domain_names

    @property
    def reporter(self) -> SignalReporter:
        """The background reporter behind :meth:`report` (created on first use)."""
        if self._reporter is None:
            self._reporter = self.client.reporter(self.run_id, rank=self.rank, world_size=self.world_size)
        return self._reporter

    # ------------------------------------------------------------------------------------
    # Iteration

    def __iter__(self) -> Iterator[dict[str, Any]]:
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
                if b.eval_requested:
                    self._eval_steps.add(b.step)
                yield self._item(b)
        finally:
            self._iterator.close()
            self._iterator = None

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
        return {"text": text}

    def _item(self, b: Batch) -> dict[str, Any]:
        item: dict[str, Any] = {
            "step": b.step,
            "batch": b,
            "domains": self._array(b.slot_domains, np.int64),
            "samples": self._array(b.slot_samples, np.int64),
            **self._windows(b.text, b.tokens, b.step, b.slot_offset),
        }
        if b.text is not None:
            item["text"] = b.text
        if b.eval_requested:
            names = self.domain_names
            # Probes are cropped with a fixed key (step 0, slot 0) so they never change.
            item["eval"] = {names[p.domain]: self._windows(p.text, p.tokens, 0, 0) for p in b.probes}
        return item

    # ------------------------------------------------------------------------------------
    # Reporting

    def report(
        self,
        step: int,
        per_sample_losses: Sequence[float] | np.ndarray | Any,
        reference_losses: Sequence[float] | np.ndarray | Any | None = None,
    ) -> None:
        """Report this rank's per-sample mean losses of ``step`` (aligned with its slots).
        Never blocks. On a step with ``eval_requested`` the report is held until
        :meth:`report_eval` of the same step, since the server takes one report per step
        and rank.

        ``reference_losses``: optionally, a reference model's per-sample losses on the same
        windows, aligned like ``per_sample_losses`` (tensor or array-like). The server sums
        them per domain next to the training losses, so strategies that compare against a
        reference (``doremi``: excess loss = train − reference, per batch, as in the DoReMi
        paper) use them; a length mismatch is rejected (``INVALID_ARGUMENT``, surfaced as
        :class:`ReportRejected` by a later call)."""
        losses = _as_numpy(per_sample_losses)
        ref = None if reference_losses is None else _as_numpy(reference_losses)
        if step in self._eval_steps:
            if step not in self._held_eval:
                self._held_train[step] = (losses, ref)
                return
            self._send(step, (losses, ref), self._held_eval.pop(step))
            return
        self.reporter.report(step, sample_losses=losses, reference_losses=ref)

    def report_eval(self, step: int, eval_losses: Mapping[str, float]) -> None:
        """Answer ``eval_requested`` of ``step`` with the mean loss per domain name on the
        probes (``item["eval"]``); sent together with the step's :meth:`report`."""
        if step not in self._eval_steps:
            raise ValueError(f"step {step} did not request eval losses (eval_requested is false for this rank)")
        losses = {k: float(v) for k, v in eval_losses.items()}
        if step in self._held_train:
            self._send(step, self._held_train.pop(step), losses)
        else:
            self._held_eval[step] = losses

    def _send(self, step: int, train: tuple[np.ndarray, np.ndarray | None], eval_losses: dict[str, float]) -> None:
        self._eval_steps.discard(step)
        losses, ref = train
        self.reporter.report(step, sample_losses=losses, eval_losses=eval_losses, reference_losses=ref)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every report is acknowledged (raises the first rejection). A step
        whose eval answer never came is sent with its train losses alone."""
        for step in sorted(self._held_train):
            warnings.warn(f"mixflow: step {step} requested eval losses but report_eval was not called; sending train losses only", stacklevel=2)
            self._eval_steps.discard(step)
            losses, ref = self._held_train.pop(step)
            self.reporter.report(step, sample_losses=losses, reference_losses=ref)
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
