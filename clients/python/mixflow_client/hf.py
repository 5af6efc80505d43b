"""Hugging Face Transformers glue: a :class:`MixflowTrainer` (a ``transformers.Trainer``)
that trains a causal LM on a mixflow run and reports what the mixing strategy needs: the
per-sample losses of every step, and the eval losses on the probes when a step asks.

::

    ds = MixflowIterableDataset("127.0.0.1:50051", "my-run", seq_len=128)
    args = TrainingArguments("out", max_steps=1000, report_to="none")
    MixflowTrainer(model=model, args=args, mixflow_dataset=ds).train()

Each mixflow step is one micro-batch (its slots are this rank's share of the global batch),
so the data is never re-batched, re-sharded or dispatched by accelerate: the Trainer's
``per_device_train_batch_size`` does not apply. ``args.max_steps`` must be set (the stream
has no length); ``dataloader_num_workers`` is honoured (see the dataset's docs).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback

from .dataset import MixflowIterableDataset


def window_inputs(tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Model inputs of token (or byte) windows: ``input_ids`` and ``attention_mask``
    (positions past ``lengths`` are padding)."""
    ids = tokens.long()
    if lengths is None:
        mask = torch.ones_like(ids)
    else:
        mask = (torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths.to(ids.device)[:, None]).long()
    return {"input_ids": ids, "attention_mask": mask}


def per_sample_lm_loss(logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy per sample over its real (unpadded) targets."""
    targets = input_ids[:, 1:]
    valid = attention_mask[:, 1:].to(logits.dtype)
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), targets, reduction="none")
    return (nll * valid).sum(1) / valid.sum(1).clamp(min=1)


def collate_item(item: dict[str, Any]) -> dict[str, Any]:
    """A dataset item as Trainer inputs; the step and the probes ride along under
    ``mixflow_*`` keys and are removed before the forward pass."""
    out: dict[str, Any] = window_inputs(item["tokens"], item.get("lengths"))
    out["mixflow_step"] = torch.tensor(item["step"])
    out["mixflow_eval_requested"] = torch.tensor(bool(item["eval_requested"]))
    if "eval" in item:
        out["mixflow_eval"] = {name: window_inputs(p["tokens"], p.get("lengths")) for name, p in item["eval"].items()}
    return out


class _FlushAtEnd(TrainerCallback):
    def __init__(self, ds: MixflowIterableDataset) -> None:
        self.ds = ds

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.ds.flush()


class MixflowTrainer(Trainer):
    """A ``transformers.Trainer`` whose training data is a mixflow run.

    Args:
        mixflow_dataset: the rank's :class:`MixflowIterableDataset` (token runs, or text
            runs with ``seq_len`` for byte windows).
        *args, **kwargs: as for ``Trainer`` (no ``train_dataset``).
    """

    def __init__(self, *args: Any, mixflow_dataset: MixflowIterableDataset, **kwargs: Any) -> None:
        if kwargs.get("train_dataset") is not None:
            raise ValueError("MixflowTrainer takes its data from mixflow_dataset; drop train_dataset")
        super().__init__(*args, **kwargs)
        self.mixflow = mixflow_dataset
        self.add_callback(_FlushAtEnd(mixflow_dataset))

    def get_train_dataloader(self) -> DataLoader:
        # Not passed through accelerator.prepare: mixflow already gives each rank its slice
        # of every step, so dispatching or re-sharding would serve slots twice or not at all.
        return DataLoader(
            self.mixflow,
            batch_size=None,
            num_workers=self.args.dataloader_num_workers,
            collate_fn=collate_item,
            pin_memory=self.args.dataloader_pin_memory and torch.cuda.is_available(),
        )

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
        step = int(inputs.pop("mixflow_step"))
        requested = bool(inputs.pop("mixflow_eval_requested"))
        probes = inputs.pop("mixflow_eval", None)
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        per_sample = per_sample_lm_loss(outputs.logits, inputs["input_ids"], inputs["attention_mask"])
        eval_losses = self._probe_losses(model, probes) if probes else None
        self.mixflow.report({"step": step, "eval_requested": requested}, per_sample.detach(), eval_losses=eval_losses)
        loss = per_sample.mean()
        return (loss, outputs) if return_outputs else loss

    @torch.no_grad()
    def _probe_losses(self, model: Any, probes: dict[str, dict[str, torch.Tensor]]) -> dict[str, float]:
        """Mean loss per domain on the fixed probe windows (model in eval mode meanwhile).

        Through the unwrapped model: only rank 0 gets probes, and a DDP-wrapped model
        broadcasts its buffers (a Llama's rotary ``inv_freq``) on every forward, a collective
        the other ranks never join, so under torchrun the job would hang."""
        model = self.accelerator.unwrap_model(model)
        was_training = model.training
        model.eval()
        try:
            out = {}
            for name, p in probes.items():
                logits = model(input_ids=p["input_ids"], attention_mask=p["attention_mask"]).logits
                out[name] = float(per_sample_lm_loss(logits, p["input_ids"], p["attention_mask"]).mean())
            return out
        finally:
            model.train(was_training)
