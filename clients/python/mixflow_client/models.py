"""Decoded, typed shapes of the mixflow.v1 messages.

Per-slot arrays and token payloads are ``numpy.frombuffer`` views on the received bytes:
decoding a batch copies nothing. The views are read-only (they share memory with the
protobuf message); copy them (``arr.copy()``, ``astype``) before writing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from . import _wire as pb

_U32 = np.dtype("<u4")
_U64 = np.dtype("<u8")
_TOKEN_DTYPES = {pb.DTYPE_UINT16: np.dtype("<u2"), pb.DTYPE_UINT32: np.dtype("<u4")}


def _u64(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype=_U64)


@dataclass(frozen=True)
class TextBlock:
    """UTF-8 documents in one buffer; document ``i`` is ``data[offsets[i]:offsets[i+1]]``."""

    data: bytes
    offsets: np.ndarray  # uint64, len(self) + 1 entries

    def __len__(self) -> int:
        return max(0, len(self.offsets) - 1)

    def __getitem__(self, i: int) -> bytes:
        """The raw UTF-8 bytes of document ``i``."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"document {i} out of range for {n} documents")
        i %= n
        return self.data[int(self.offsets[i]) : int(self.offsets[i + 1])]

    def texts(self) -> list[str]:
        """Every document decoded as ``str`` (invalid UTF-8 is replaced, never raised)."""
        return [self[i].decode("utf-8", errors="replace") for i in range(len(self))]

    @staticmethod
    def decode(m: pb.TextPayload) -> TextBlock:
        return TextBlock(data=m.data, offsets=_u64(m.offsets))


@dataclass(frozen=True)
class TokenBlock:
    """Token ids. Windows mode: ``ids`` has shape ``[slots, seq_len + 1]``. Documents mode:
    ``ids`` is flat and ``offsets`` (``slots + 1`` entries) delimits each slot's document."""

    ids: np.ndarray  # uint16 or uint32
    offsets: np.ndarray  # uint64; empty in windows mode

    def document(self, i: int) -> np.ndarray:
        """Documents mode: the token ids of slot ``i``."""
        if len(self.offsets) == 0:
            return self.ids[i]
        return self.ids[int(self.offsets[i]) : int(self.offsets[i + 1])]

    @staticmethod
    def decode(m: pb.TokenPayload) -> TokenBlock:
        dtype = _TOKEN_DTYPES.get(m.dtype)
        if dtype is None:
            raise ValueError(f"unknown token dtype {m.dtype} in TokenPayload")
        ids = np.frombuffer(m.data, dtype=dtype)
        shape = tuple(int(s) for s in m.shape)
        if shape and int(np.prod(shape)) == ids.size:
            ids = ids.reshape(shape)
        return TokenBlock(ids=ids, offsets=_u64(m.offsets))


def _payload(m: pb.Batch | pb.EvalProbe) -> tuple[TextBlock | None, TokenBlock | None]:
    kind = m.WhichOneof("payload")
    if kind == "text":
        return TextBlock.decode(m.text), None
    if kind == "tokens":
        return None, TokenBlock.decode(m.tokens)
    return None, None


@dataclass(frozen=True)
class EvalProbe:
    """Fixed held-out probe samples of one domain (the same for every rank and replay)."""

    domain: int  # index into RunInfo.domains
    sample_indices: np.ndarray  # uint64 indices into the domain's eval split
    text: TextBlock | None
    tokens: TokenBlock | None

    @staticmethod
    def decode(m: pb.EvalProbe) -> EvalProbe:
        text, tokens = _payload(m)
        return EvalProbe(domain=m.domain, sample_indices=_u64(m.sample_indices), text=text, tokens=tokens)


@dataclass(frozen=True)
class Batch:
    """One rank's slice of one global step: slots ``[slot_offset, slot_offset + slots)``."""

    run_id: str
    step: int
    rank: int
    world_size: int
    version: int  # weights version the batch was drawn under
    slot_offset: int
    slots: int
    slot_domains: np.ndarray  # uint32 per slot: index into RunInfo.domains
    slot_samples: np.ndarray  # uint64 per slot: sample index in the domain's train split
    text: TextBlock | None
    tokens: TokenBlock | None
    eval_requested: bool  # answer with per-domain eval losses on `probes`
    probes: list[EvalProbe]
    digest: str  # 16 hex digits identifying the global batch's composition

    @staticmethod
    def decode(m: pb.Batch) -> Batch:
        text, tokens = _payload(m)
        return Batch(
            run_id=m.run_id,
            step=m.step,
            rank=m.rank,
            world_size=m.world_size,
            version=m.version,
            slot_offset=m.slot_offset,
            slots=m.slots,
            slot_domains=np.frombuffer(m.slot_domains, dtype=_U32),
            slot_samples=_u64(m.slot_samples),
            text=text,
            tokens=tokens,
            eval_requested=m.eval_requested,
            probes=[EvalProbe.decode(p) for p in m.eval.probes],
            digest=m.digest,
        )


@dataclass(frozen=True)
class WeightsVersion:
    """One set of domain weights and the first step drawn under it."""

    version: int
    from_step: int
    weights: list[float]
    reason: str
    committed_at_step: int
    competence: list[float] = field(default_factory=list)

    @staticmethod
    def decode(m: pb.WeightsVersion) -> WeightsVersion:
        return WeightsVersion(
            version=m.version,
            from_step=m.from_step,
            weights=list(m.weights),
            reason=m.reason,
            committed_at_step=m.committed_at_step,
            competence=list(m.competence),
        )


@dataclass(frozen=True)
class WeightsTimeline:
    """A run's versions, oldest first, with the domain names the weights refer to."""

    run_id: str
    domains: list[str]
    versions: list[WeightsVersion]

    @staticmethod
    def decode(m: pb.WeightsTimeline) -> WeightsTimeline:
        return WeightsTimeline(run_id=m.run_id, domains=list(m.domains), versions=[WeightsVersion.decode(v) for v in m.versions])


@dataclass(frozen=True)
class DomainInfo:
    name: str
    train_samples: int
    eval_samples: int  # 0 if the domain has no eval split
    min_weight: float
    max_weight: float
    pinned: bool

    @staticmethod
    def decode(m: pb.DomainInfo) -> DomainInfo:
        return DomainInfo(m.name, m.train_samples, m.eval_samples, m.min_weight, m.max_weight, m.pinned)


@dataclass(frozen=True)
class RunInfo:
    """A run as the server sees it (GetRun / CreateRun / ListRuns / CloseRun)."""

    run_id: str
    state: Literal["open", "closed"]
    strategy: str
    batch_size: int
    world_size: int
    seed: int
    max_steps: int  # 0 = unbounded
    payload: Literal["text", "tokens"]
    domains: list[DomainInfo]
    current: WeightsVersion
    frontier: int  # highest step served to any rank; -1 before the first
    last_aggregated_step: int  # -1 if none
    resolved_config: dict[str, Any]
    seq_len: int
    run_token: str  # CreateRun with auth on: the run's bearer token for its trainers (once); else ""

    @property
    def domain_names(self) -> list[str]:
        return [d.name for d in self.domains]

    @staticmethod
    def decode(m: pb.RunInfo) -> RunInfo:
        return RunInfo(
            run_id=m.run_id,
            state="closed" if m.state == pb.RUN_STATE_CLOSED else "open",
            strategy=m.strategy,
            batch_size=m.batch_size,
            world_size=m.world_size,
            seed=m.seed,
            max_steps=m.max_steps,
            payload="tokens" if m.payload == pb.PAYLOAD_KIND_TOKENS else "text",
            domains=[DomainInfo.decode(d) for d in m.domains],
            current=WeightsVersion.decode(m.current),
            frontier=m.frontier,
            last_aggregated_step=m.last_aggregated_step,
            resolved_config=json.loads(m.resolved_config_json) if m.resolved_config_json else {},
            seq_len=m.seq_len,
            run_token=m.run_token,
        )


@dataclass(frozen=True)
class ReportResult:
    """Acknowledgement of a report (it is in the server's journal)."""

    duplicate: bool  # not recorded: an identical report was, or the step was already aggregated (a resumed trainer)
    step_complete: bool  # all ranks of the step have reported
    version: int  # latest committed weights version
