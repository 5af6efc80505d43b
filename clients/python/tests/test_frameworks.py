"""Framework glue against the real libraries and a real server (issue 16, point 5): HF
Transformers' Trainer with a tiny randomly initialised model (no hub download), Lightning,
torchdata's StatefulDataLoader (with and without workers), and the TensorBoard helper."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from torchdata.stateful_dataloader import StatefulDataLoader

from conftest import run_config, wait_until
from mixflow_client import MixflowClient, MixflowIterableDataset, MixflowWarning
from mixflow_client.hf import per_sample_lm_loss, window_inputs
from mixflow_client.tracking import log_tensorboard, mix_metrics


class SpyDataset(MixflowIterableDataset):
    """Records what the training loop reports (then reports it for real)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[int, int, dict[str, float] | None]] = []

    def report(self, step: Any, losses: Any, reference_losses: Any = None, *, eval_losses: Any = None) -> None:
        self.sent.append((int(step["step"] if isinstance(step, dict) else step), len(losses), eval_losses))
        super().report(step, losses, reference_losses, eval_losses=eval_losses)


def test_hf_trainer_reports_per_sample_losses_and_answers_eval_requests(client: MixflowClient, data_dir: Path, tmp_path: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel, TrainingArguments

    from mixflow_client.hf import MixflowTrainer

    steps = 8
    run = client.create_run(run_config(data_dir, worldSize=1, maxSteps=steps, strategy={"name": "mixflow", "params": {"evalEvery": 1}})).run_id
    ds = SpyDataset(client, run, seq_len=31)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=256, n_positions=32, n_embd=32, n_layer=1, n_head=2))
    args = TrainingArguments(
        str(tmp_path / "out"), max_steps=steps, learning_rate=1e-3, report_to="none", save_strategy="no",
        use_cpu=True, logging_steps=100, dataloader_num_workers=2, disable_tqdm=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", MixflowWarning)  # every eval request is answered
        MixflowTrainer(model=model, args=args, mixflow_dataset=ds).train()
    assert [s for s, _, _ in ds.sent] == list(range(steps))
    assert all(n == 8 for _, n, _ in ds.sent)  # per-sample losses: one per slot
    answered = [e for _, _, e in ds.sent if e is not None]
    assert answered and all(set(e) == {"alpha", "beta", "gamma"} for e in answered)
    wait_until(lambda: client.get_run(run).last_aggregated_step == steps - 1, what="every step aggregated")
    ds.close()


class TinyByteLM(L.LightningModule):
    def __init__(self, ds: MixflowIterableDataset) -> None:
        super().__init__()
        self.ds = ds
        self.emb = torch.nn.Embedding(256, 16)
        self.out = torch.nn.Linear(16, 256)
        self.seen: list[tuple[int, dict[str, float]]] = []

    def training_step(self, item: dict[str, Any], _: int) -> torch.Tensor:
        inputs = window_inputs(item["tokens"], item["lengths"])
        per_sample = per_sample_lm_loss(self.out(self.emb(inputs["input_ids"])), inputs["input_ids"], inputs["attention_mask"])
        self.ds.report(item, per_sample)
        self.seen.append((item["step"], item["weights"]))
        return per_sample.mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_trains_on_the_items(client: MixflowClient, data_dir: Path, tmp_path: Path) -> None:
    run = client.create_run(run_config(data_dir, worldSize=1, maxSteps=6)).run_id
    ds = MixflowIterableDataset(client, run, seq_len=15)
    module = TinyByteLM(ds)
    trainer = L.Trainer(
        max_steps=6, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path),
    )
    trainer.fit(module, torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2))
    ds.close()
    assert [s for s, _ in module.seen] == list(range(6))
    assert all(set(w) == {"alpha", "beta", "gamma"} for _, w in module.seen)
    wait_until(lambda: client.get_run(run).last_aggregated_step == 5, what="every step aggregated")


class CountingClient(MixflowClient):
    """Records the first step of every batch stream it opens."""

    opened: list[int]

    def batches(self, run_id: str, from_step: int = 0, **kw: Any) -> Any:
        self.opened.append(from_step)
        return super().batches(run_id, from_step=from_step, **kw)


@pytest.mark.parametrize("workers", [0, 2])
def test_stateful_dataloader_resumes_at_the_step(client: MixflowClient, data_dir: Path, workers: int) -> None:
    run = client.create_run(run_config(data_dir, worldSize=1, maxSteps=12, strategy={"name": "exp3", "params": {"warmupSteps": 0}})).run_id

    def loader() -> tuple[StatefulDataLoader, MixflowIterableDataset, CountingClient]:
        c = CountingClient(client.address)
        c.opened = []
        ds = MixflowIterableDataset(c, run, seq_len=15)
        return StatefulDataLoader(ds, batch_size=None, num_workers=workers), ds, c

    dl, ds, _ = loader()
    first = []
    for item in dl:
        first.append(item["step"])
        ds.report(item, torch.ones(8))
        if item["step"] == 4:
            break
    state = dl.state_dict()
    ds.close()
    wait_until(lambda: client.get_run(run).last_aggregated_step == 4, what="steps 0..4 aggregated")

    dl2, ds2, c2 = loader()
    dl2.load_state_dict(state)
    rest = []
    for item in dl2:
        rest.append(item["step"])
        assert item["digest"] == client.next_batch(run, item["step"], world_size=1).digest
        ds2.report(item, torch.ones(8))
    ds2.close()
    assert first == list(range(5)) and rest == list(range(5, 12))
    if workers == 0:
        assert c2.opened == [5]  # resumed at the step: nothing earlier re-streamed
    wait_until(lambda: client.get_run(run).last_aggregated_step == 11, what="the resumed run aggregated to the end")


def test_mix_metrics_and_tensorboard_logging(client: MixflowClient, data_dir: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    run = client.create_run(run_config(data_dir, worldSize=1, maxSteps=3)).run_id
    ds = MixflowIterableDataset(client, run, seq_len=15, report=False)
    items = list(ds)
    losses = torch.arange(8, dtype=torch.float32)
    m = mix_metrics(items[0], losses)
    counts = torch.bincount(items[0]["domains"], minlength=3)
    for i, name in enumerate(["alpha", "beta", "gamma"]):
        assert m[f"mixflow/weight/{name}"] == pytest.approx(items[0]["weights"][name])
        assert m[f"mixflow/share/{name}"] == pytest.approx(float(counts[i]) / 8)
        if counts[i]:
            assert m[f"mixflow/loss/{name}"] == pytest.approx(float(losses[items[0]["domains"] == i].mean()))
    with pytest.raises(ValueError, match="3 values for 8 slots"):
        mix_metrics(items[0], [1.0, 2.0, 3.0])
    writer = SummaryWriter(str(tmp_path / "tb"))
    for item in items:
        log_tensorboard(writer, item, losses)
    writer.close()
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    got = acc.Scalars("mixflow/weight/beta")
    assert [e.step for e in got] == [0, 1, 2]
    assert got[0].value == pytest.approx(items[0]["weights"]["beta"])
