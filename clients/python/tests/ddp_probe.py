"""One rank of a two-process torchrun job (CPU, gloo), run by tests/test_ddp_frameworks.py:
trains a tiny randomly initialised model for a few steps on a mixflow run through
``MixflowTrainer`` (``--framework hf``, with ``--workers N`` DataLoader workers) or a
Lightning DDP ``Trainer`` (``--framework lightning``), recording what this rank was served
and what it reported in ``OUT/rank{R}.jsonl`` for the test to check against the server.

Every record is written by the rank's main process: with DataLoader workers, the order in
which workers fetch is not the order the loop consumes, so the HF items are traced as
``training_step`` receives them (the collator, run in the worker, only adds which worker
fetched the step).

    python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_probe.py \\
        --framework hf --workers 2 --server ADDR --run-id RUN --steps 6 --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from mixflow_client import MixflowIterableDataset
from mixflow_client.hf import per_sample_lm_loss, window_inputs


class TracedDataset(MixflowIterableDataset):
    """Writes each item served (with ``trace_items``: as iterated, so only without
    DataLoader workers) and each report sent by this rank to a JSONL file."""

    def __init__(self, *args: Any, trace: Path, trace_items: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trace = trace
        self.trace_items = trace_items

    def _write(self, record: dict[str, Any]) -> None:
        with open(self.trace, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for item in super().__iter__():
            if self.trace_items:
                    self._write({"kind": "item", "step": item["step"], "slot_offset": item["slot_offset"],
                             "domains": item["domains"].tolist(), "samples": item["samples"].tolist(),
                             "eval": sorted(item.get("eval", {}))})
            yield item

    def report(self, step: Any, losses: Any, reference_losses: Any = None, *, eval_losses: Any = None) -> None:
        s = int(step["step"] if isinstance(step, dict) else step)
        self._write({"kind": "report", "step": s, "losses": [float(x) for x in losses], "eval": sorted(eval_losses or {})})
        super().report(step, losses, reference_losses, eval_losses=eval_losses)


def train_hf(ds: TracedDataset, steps: int, out: Path, workers: int) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM, TrainingArguments

    from mixflow_client.hf import MixflowTrainer

    def collate_with_trace(collate: Any) -> Any:
        def collate_item(item: dict[str, Any]) -> dict[str, Any]:
            out = collate(item)  # the Trainer's own collation; what this adds is popped before it
            worker = torch.utils.data.get_worker_info()
            out["probe_trace"] = {"slot_offset": item["slot_offset"], "domains": item["domains"].tolist(),
                                  "samples": item["samples"].tolist(), "worker": None if worker is None else worker.id}
            return out
        return collate_item

    class TracedTrainer(MixflowTrainer):
        """Traces each item in the main process, as the Trainer's training step gets it."""

        def get_train_dataloader(self) -> Any:
            loader = super().get_train_dataloader()
            loader.collate_fn = collate_with_trace(loader.collate_fn)  # read by each new iterator
            return loader

        def training_step(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            t = inputs.pop("probe_trace")
            ds._write({"kind": "item", "step": int(inputs["mixflow_step"]), **t, "eval": sorted(inputs.get("mixflow_eval", {}))})
            return super().training_step(model, inputs, *args, **kwargs)

    torch.manual_seed(0)  # the same initial weights on both ranks
    # Llama, not GPT-2: its rotary embedding holds buffers, which DDP broadcasts on every
    # forward of the wrapped model, so a forward that only rank 0 runs (the eval probes)
    # must not go through the wrapper.
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=64, bos_token_id=0, eos_token_id=0, pad_token_id=0,
    ))
    assert any(True for _ in model.buffers())
    args = TrainingArguments(
        str(out / "hf"), max_steps=steps, learning_rate=1e-3, report_to="none", save_strategy="no",
        use_cpu=True, ddp_backend="gloo", logging_steps=1000, disable_tqdm=True, dataloader_num_workers=workers,
    )
    trainer = TracedTrainer(model=model, args=args, mixflow_dataset=ds)
    trainer.train()
    # DDP kept the replicas in step: rank 0 reads rank 1's parameters through a collective.
    flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(2)]
    torch.distributed.all_gather(gathered, flat)
    ds._write({"kind": "params", "max_diff": float((gathered[0] - gathered[1]).abs().max())})


def train_lightning(ds: TracedDataset, steps: int, out: Path) -> None:
    import lightning as L

    class TinyByteLM(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.emb = torch.nn.Embedding(256, 16)
            self.out = torch.nn.Linear(16, 256)

        def training_step(self, item: dict[str, Any], _: int) -> torch.Tensor:
            inputs = window_inputs(item["tokens"], item["lengths"])
            per_sample = per_sample_lm_loss(self.out(self.emb(inputs["input_ids"])), inputs["input_ids"], inputs["attention_mask"])
            eval_losses = None
            if "eval" in item:
                with torch.no_grad():
                    eval_losses = {}
                    for name, p in item["eval"].items():
                        e = window_inputs(p["tokens"], p["lengths"])
                        eval_losses[name] = float(per_sample_lm_loss(self.out(self.emb(e["input_ids"])), e["input_ids"], e["attention_mask"]).mean())
            ds.report(item, per_sample.detach(), eval_losses=eval_losses)
            return per_sample.mean()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = L.Trainer(
        max_steps=steps, accelerator="cpu", devices=2, num_nodes=1, strategy="ddp", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=str(out / "lightning"),
    )
    trainer.fit(TinyByteLM(), torch.utils.data.DataLoader(ds, batch_size=None, num_workers=0))
    ds.flush()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--framework", choices=["hf", "lightning"], required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--run-id", required=True)  # torchrun takes --run for its own --run-path
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--workers", type=int, default=0)  # DataLoader workers (hf only)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    rank = int(os.environ["RANK"])
    ds = TracedDataset(a.server, a.run_id, seq_len=31, trace=a.out / f"rank{rank}.jsonl", trace_items=a.framework != "hf")
    assert (ds.rank, ds.world_size) == (rank, 2), (ds.rank, ds.world_size)
    if a.framework == "hf":
        train_hf(ds, a.steps, a.out, a.workers)
    else:
        assert a.workers == 0, "the Lightning probe iterates in the main process"
        train_lightning(ds, a.steps, a.out)
    ds.close()
    # Tear the process group down before exit, as torch asks of every DDP script: left to the
    # interpreter's teardown, gloo once aborted rank 0 after all work was done ("terminate
    # called without an active exception", exit -6; CI on 2026-12-03, hf with 2 workers).
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
