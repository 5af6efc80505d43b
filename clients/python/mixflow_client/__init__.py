"""mixflow-client: the Python client of the mixflow data-mixing server.

Quick start::

    from mixflow_client import MixflowClient

    with MixflowClient("127.0.0.1:50051") as client:
        reporter = client.reporter("demo")
        for batch in client.batches("demo", max_batches=100):
            losses = train_step(batch)          # one float per slot
            reporter.report(batch.step, losses)  # never blocks
        reporter.close()

For PyTorch, see :class:`MixflowIterableDataset`.
"""

from ._protogen import ensure_compiled as _ensure_compiled

_ensure_compiled()  # a source checkout or editable install compiles proto/ on first import

from .client import MixflowClient  # noqa: E402
from .errors import MixflowError, MixflowRunGone, MixflowWarning, ReportRejected  # noqa: E402
from .iterator import BatchIterator  # noqa: E402
from .models import (  # noqa: E402
    Batch,
    DomainInfo,
    EvalProbe,
    ReportResult,
    RunInfo,
    TextBlock,
    TokenBlock,
    WeightsTimeline,
    WeightsVersion,
)
from .reporter import SignalReporter  # noqa: E402

__version__ = "0.1.0"

_DATASET_NAMES = frozenset({"ByteWindows", "MixflowIterableDataset", "resolve_rank", "to_bytes_windows"})


def __getattr__(name: str) -> object:
    """The dataset helpers load lazily: they import torch (when installed), which is slow."""
    if name in _DATASET_NAMES:
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'mixflow_client' has no attribute {name!r}")

__all__ = [
    "Batch",
    "BatchIterator",
    "ByteWindows",
    "DomainInfo",
    "EvalProbe",
    "MixflowClient",
    "MixflowError",
    "MixflowIterableDataset",
    "MixflowRunGone",
    "MixflowWarning",
    "ReportRejected",
    "ReportResult",
    "RunInfo",
    "SignalReporter",
    "TextBlock",
    "TokenBlock",
    "WeightsTimeline",
    "WeightsVersion",
    "resolve_rank",
    "to_bytes_windows",
]
