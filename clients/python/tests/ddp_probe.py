"""One rank of a two-process torchrun job (CPU, gloo), run by tests/test_ddp_frameworks.py:
trains a tiny randomly initialised model for a few steps on a mixflow run through
``MixflowTrainer`` (``--framework hf``) or a Lightning DDP ``Trainer`` (``--framework
lightning``), recording what this rank was served and what it reported in
``OUT/rank{R}.jsonl`` for the test to check against the server.

    python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_probe.py \\
        --framework hf --server ADDR --run-id RUN --steps 6 --out DIR
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
    """Writes each item served and each report sent by this rank to a JSONL file."""

    def __init__(self, *args: Any, trace: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trace = trace

    def _write(self, record: dict[str, Any]) -> None:
        with open(self.trace, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for item in super().__iter__():
            self._write({"kind": "item", "step": item["step"], "slot_offset": item["slot_offset"],
                         "domains": item["domains"].tolist(), "samples": item["samples"].tolist(),
                         "eval": sorted(item.get("eval", {}))})
            yield item

    def report(self, step: Any, losses: Any, reference_losses: Any = None, *, eval_losses: Any = None) -> None:
        s = int(step["step"] if isinstance(step, dict) else step)
        self._write({"kind": "report", "step": s, "losses": [float(x) for x in losses], "eval": sorted(eval_losses or {})})
        super().report(step, losses, reference_losses, eval_losses=eval_losses)


def train_hf(ds: TracedDataset, steps: int, out: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM, TrainingArguments

    from mixflow_client.hf import MixflowTrainer

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
        use_cpu=True, ddp_backend="gloo", logging_steps=1000, disable_tqdm=True, dataloader_num_workers=0,
    )
    trainer = MixflowTrainer(model=model, args=args, mixflow_dataset=ds)
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
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    rank = int(os.environ["RANK"])
    ds = TracedDataset(a.server, a.run_id, seq_len=31, trace=a.out / f"rank{rank}.jsonl")
    assert (ds.rank, ds.world_size) == (rank, 2), (ds.rank, ds.world_size)
    (train_hf if a.framework == "hf" else train_lightning)(ds, a.steps, a.out)
    ds.close()


if __name__ == "__main__":
    main()
