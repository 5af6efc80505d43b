"""What to log next to a loss curve: the weights in force for a step, the share each domain
actually got in its batch, and the mean loss per domain, as flat ``{name: float}`` scalars
that W&B (``wandb.log``), TensorBoard (:func:`log_tensorboard`) or Lightning
(``self.log_dict``) take as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, on any device, with or without grad
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def mix_metrics(item: Mapping[str, Any], per_sample_losses: Any = None, prefix: str = "mixflow") -> dict[str, float]:
    """Scalars of one item of :class:`~mixflow_client.MixflowIterableDataset`:
    ``{prefix}/weight/{domain}`` (the version's target weight), ``{prefix}/share/{domain}``
    (the domain's share of this rank's slots), ``{prefix}/version``, and with
    ``per_sample_losses`` ``{prefix}/loss/{domain}`` (mean over the domain's slots, for the
    domains present). Example: ``wandb.log(mix_metrics(item, losses), step=item["step"])``."""
    names = list(item["weights"])
    domains = _numpy(item["domains"]).astype(np.int64)
    counts = np.bincount(domains, minlength=len(names))
    out: dict[str, float] = {f"{prefix}/version": float(item["version"])}
    for i, name in enumerate(names):
        out[f"{prefix}/weight/{name}"] = float(item["weights"][name])
        out[f"{prefix}/share/{name}"] = float(counts[i]) / max(1, len(domains))
    if per_sample_losses is not None:
        losses = _numpy(per_sample_losses).astype(np.float64).reshape(-1)
        if losses.shape != domains.shape:
            raise ValueError(f"per_sample_losses has {losses.size} values for {domains.size} slots")
        sums = np.bincount(domains, weights=losses, minlength=len(names))
        for i, name in enumerate(names):
            if counts[i]:
                out[f"{prefix}/loss/{name}"] = float(sums[i] / counts[i])
    return out


def log_tensorboard(writer: Any, item: Mapping[str, Any], per_sample_losses: Any = None, prefix: str = "mixflow") -> None:
    """Write :func:`mix_metrics` of ``item`` to a ``torch.utils.tensorboard.SummaryWriter``
    (or anything with ``add_scalar(tag, value, global_step)``) at the item's step."""
    for tag, value in mix_metrics(item, per_sample_losses, prefix).items():
        writer.add_scalar(tag, value, global_step=int(item["step"]))
