"""The dataset inside a real torch training loop: DataLoader workers, checkpoint and resume
with losses that differ after the restore, unanswered eval requests, iterating without
reporting (issue 16, points 1 to 4)."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from conftest import run_config, wait_until
from mixflow_client import MixflowClient, MixflowIterableDataset, MixflowWarning


def losses_of(item: dict[str, Any], shift: float = 0.0) -> torch.Tensor:
    """Deterministic per-sample 'losses' of an item (a stand-in for a model's)."""
    return 1.0 + item["domains"].to(torch.float32) / 4 + item["step"] / 100 + shift


def test_dataloader_workers_serve_each_step_once_in_order_and_main_reports(client: MixflowClient, data_dir: Path) -> None:
    run = client.create_run(run_config(data_dir, worldSize=1, maxSteps=12, strategy={"name": "exp3", "params": {"warmupSteps": 0}})).run_id
    ds = MixflowIterableDataset(client, run, seq_len=15)
    steps, digests = [], []
    for item in DataLoader(ds, batch_size=None, num_workers=2):
        steps.append(item["step"])
        digests.append(item["digest"])
        assert isinstance(item["weights"], dict) and sum(item["weights"].values()) == pytest.approx(1.0, abs=1e-6)
        ds.report(item, losses_of(item))  # from the main process
    ds.close()
    assert steps == list(range(12))
    assert digests == [client.next_batch(run, s, world_size=1).digest for s in range(12)]
    wait_until(lambda: client.get_run(run).last_aggregated_step == 11, what="all 12 steps aggregated")
    assert ds.state_dict()["step"] == 12  # the main process learnt the progress from the reports


def test_dataloader_workers_with_bare_step_reports_and_eval_answers(client: MixflowClient, data_dir: Path) -> None:
    """A report by step number waits for report_eval of its step until the next report."""
    cfg = run_config(data_dir, worldSize=1, maxSteps=10, strategy={"name": "mixflow", "params": {"evalEvery": 1}})
    run = client.create_run(cfg).run_id
    ds = MixflowIterableDataset(client, run, seq_len=15)
    answered = []
    for item in DataLoader(ds, batch_size=None, num_workers=2):
        ds.report(item["step"], losses_of(item))
        if "eval" in item:
            ds.report_eval(item["step"], {name: 1.0 + i for i, name in enumerate(item["eval"])})
            answered.append(item["step"])
    ds.close()
    assert answered, "the mixflow strategy should have asked for eval losses"
    wait_until(lambda: client.get_run(run).last_aggregated_step == 9, what="all steps aggregated")


def test_resume_from_a_checkpoint_with_perturbed_losses_trains_to_the_end(client: MixflowClient, data_dir: Path) -> None:
    run = client.create_run(run_config(data_dir, worldSize=1, maxSteps=16, strategy={"name": "exp3", "params": {"warmupSteps": 0}})).run_id
    ds = MixflowIterableDataset(client, run, seq_len=15)
    checkpoint = None
    for item in ds:
        ds.report(item, losses_of(item))
        if item["step"] == 5:
            checkpoint = ds.state_dict()
        if item["step"] == 10:
            break  # the trainer dies after step 10 ...
    ds.close()
    wait_until(lambda: client.get_run(run).last_aggregated_step == 10, what="steps 0..10 aggregated")
    assert checkpoint == {"format": "mixflow-dataset/1", "run_id": run, "step": 6}

    # ... and restarts from the step-5 checkpoint at another world size: steps 6..10 are
    # trained again, and their losses differ (nondeterministic kernels), which must not fail.
    resumed = [MixflowIterableDataset(client, run, seq_len=15, rank=r, world_size=2) for r in (0, 1)]
    for d in resumed:
        d.load_state_dict(checkpoint)
    got = []
    for a, b in zip(*resumed):
        got.append(a["step"])
        assert a["digest"] == b["digest"] == client.next_batch(run, a["step"], world_size=1).digest
        for d, it in ((resumed[0], a), (resumed[1], b)):
            d.report(it, losses_of(it, shift=1e-4 * (it["step"] <= 10)))
    for d in resumed:
        d.close()  # raises if any report was rejected
    assert got == list(range(6, 16))
    wait_until(lambda: client.get_run(run).last_aggregated_step == 15, what="the resumed run aggregated to the end")


def test_an_unanswered_eval_request_is_warned_at_the_first_miss(client: MixflowClient, data_dir: Path) -> None:
    cfg = run_config(data_dir, worldSize=1, maxSteps=12, strategy={"name": "mixflow", "params": {"evalEvery": 1}})
    run = client.create_run(cfg).run_id
    ds = MixflowIterableDataset(client, run, seq_len=15)
    missed = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for item in ds:
            if missed is not None and item["step"] == missed + 2:
                break
            ds.report(item, losses_of(item))  # never answers item["eval"]
            if "eval" in item and missed is None:
                missed = item["step"]
        ours = [w for w in caught if issubclass(w.category, MixflowWarning)]
    assert missed is not None, "the mixflow strategy should have asked for eval losses"
    # Warned while training (at the report after the miss), not at close(); once.
    assert len(ours) == 1, [str(w.message) for w in ours]
    msg = str(ours[0].message)
    assert f"step {missed} asked for eval losses" in msg and "report_eval" in msg and "item['eval']" in msg
    ds.close()
    # The missed step was sent with its train losses at once: no aggregation timeout.
    wait_until(lambda: client.get_run(run).last_aggregated_step >= missed + 1, what="the missed step aggregated")


def _iterate(ds: MixflowIterableDataset, out: list[int]) -> None:
    out.extend(item["step"] for item in ds)


def test_iterating_without_reporting_does_not_stall_with_report_false(client: MixflowClient, data_dir: Path) -> None:
    # An aggregation timeout of 10 minutes: a stream held for reports would hang the test.
    run = client.create_run(run_config(data_dir, worldSize=1, maxSteps=20, aggregationTimeoutMs=600_000)).run_id
    ds = MixflowIterableDataset(client, run, prefetch=2, report=False)
    steps: list[int] = []
    t = threading.Thread(target=_iterate, args=(ds, steps), daemon=True)
    t.start()
    t.join(timeout=120)
    assert not t.is_alive(), f"iteration without reporting stalled after {len(steps)} steps"
    assert steps == list(range(20))
    with pytest.raises(ValueError, match="report=False"):
        ds.report(0, [1.0] * 8)


def test_a_stream_held_for_reports_is_warned_once_with_the_reason(client: MixflowClient, data_dir: Path) -> None:
    run = client.create_run(run_config(data_dir, worldSize=1, maxSteps=8, aggregationTimeoutMs=1_000)).run_id
    ds = MixflowIterableDataset(client, run, prefetch=2)
    with pytest.warns(MixflowWarning) as caught:
        steps = [item["step"] for item in ds]  # never reports: held ~1 s per step past the prefetch
    assert steps == list(range(8))
    msgs = [str(w.message) for w in caught if issubclass(w.category, MixflowWarning)]
    assert len(msgs) == 1 and "paced by reports" in msgs[0] and "report=False" in msgs[0] and "1 s" in msgs[0]
