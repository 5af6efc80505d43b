"""Reference-model losses through MixflowIterableDataset.report(..., reference_losses=...):
the server receives them (a ``doremi`` run moves its weights by train − reference excess
loss, per batch, as in the DoReMi paper), including on steps whose train report is held
until report_eval, and rejects a length mismatch."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest

from conftest import DOMAINS, run_config, wait_until
from mixflow_client import MixflowClient, MixflowError, MixflowIterableDataset


def doremi_run(client: MixflowClient, data_dir: Path) -> str:
    # output "current" + every 1: the served weights are the proxy's α_t after each step.
    cfg = run_config(data_dir, worldSize=1, strategy={"name": "doremi", "params": {"every": 1, "output": "current"}})
    return client.create_run(cfg).run_id


def test_reference_losses_drive_doremi_weights(client: MixflowClient, data_dir: Path) -> None:
    """Train loss 2.0 everywhere; the reference model is reported at 0.5 on beta and 2.0
    elsewhere, so only beta has excess loss (1.5 per step): its weight must grow to nearly
    all of the mix. Without the reference losses every excess is 0 and weights stay uniform."""
    run = doremi_run(client, data_dir)
    beta = DOMAINS.index("beta")
    ds = MixflowIterableDataset(client, run, seq_len=15, as_torch=False, max_steps=6)
    for it in ds:
        domains = np.asarray(it["domains"])
        ref = np.where(domains == beta, 0.5, 2.0).astype(np.float32)
        ds.report(it["step"], np.full(len(domains), 2.0, dtype=np.float32), reference_losses=ref)
    ds.flush()
    wait_until(lambda: client.get_run(run).last_aggregated_step >= 5, what="step 5 aggregated")
    w = client.get_run(run).current.weights
    # α after k steps with beta seen every step ∝ (1, e^{1.5k}, 1), smoothed by c = 1e-3.
    assert w[beta] > 0.99, w
    assert all(w[i] < 0.005 for i in range(len(DOMAINS)) if i != beta), w
    ds.close()


def test_without_reference_losses_doremi_stays_uniform(client: MixflowClient, data_dir: Path) -> None:
    """The control for the test above: same losses, no reference → no excess, uniform."""
    run = doremi_run(client, data_dir)
    ds = MixflowIterableDataset(client, run, seq_len=15, as_torch=False, max_steps=6)
    for it in ds:
        ds.report(it["step"], np.full(len(it["domains"]), 2.0, dtype=np.float32))
    ds.flush()
    wait_until(lambda: client.get_run(run).last_aggregated_step >= 5, what="step 5 aggregated")
    assert client.get_run(run).current.weights == pytest.approx([1 / 3] * 3, abs=1e-9)
    ds.close()


def test_reference_losses_length_mismatch_is_rejected(client: MixflowClient, data_dir: Path) -> None:
    run = doremi_run(client, data_dir)
    ds = MixflowIterableDataset(client, run, seq_len=15, as_torch=False, max_steps=1)
    for it in ds:
        ds.report(it["step"], np.ones(8, dtype=np.float32), reference_losses=np.ones(5, dtype=np.float32))
    with pytest.raises(MixflowError) as e:
        ds.flush()
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "reference_losses" in e.value.message and "8" in e.value.message, e.value.message
    # The client call itself says the same, synchronously.
    with pytest.raises(MixflowError) as e2:
        client.report_signals(run, 0, sample_losses=[1.0] * 8, reference_losses=[1.0] * 3)
    assert e2.value.code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("eval_first", [False, True])
def test_reference_losses_survive_the_held_eval_step(client: MixflowClient, data_dir: Path, eval_first: bool) -> None:
    """On an eval_requested step the train report waits for report_eval; the reference
    losses must travel with it: a mismatched one is rejected only if it was sent."""
    run = client.create_run(run_config(data_dir, worldSize=1, strategy={"name": "mixflow", "params": {"evalEvery": 1}})).run_id
    ds = MixflowIterableDataset(client, run, seq_len=15, as_torch=False, prefetch=1)
    for it in ds:
        step = it["step"]
        if "eval" in it:
            bad_ref = np.ones(3, dtype=np.float32)
            if eval_first:
                ds.report_eval(step, {name: 1.0 for name in it["eval"]})
                ds.report(step, np.ones(8, dtype=np.float32), reference_losses=bad_ref)
            else:
                ds.report(step, np.ones(8, dtype=np.float32), reference_losses=bad_ref)
                ds.reporter.flush()  # held until report_eval: nothing sent yet, so nothing rejected yet
                assert step in ds._held_train
                ds.report_eval(step, {name: 1.0 for name in it["eval"]})
            with pytest.raises(MixflowError) as e:
                ds.flush()
            assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "reference_losses" in e.value.message
            break
        ds.report(step, np.ones(8, dtype=np.float32), reference_losses=np.ones(8, dtype=np.float32))
        ds.flush()
        wait_until(lambda s=step: client.get_run(run).last_aggregated_step >= s, what="aggregation")
        assert step < 100, "the mixflow strategy never requested eval losses"
    else:
        pytest.fail("no eval step")
    with pytest.raises(MixflowError):  # a rejection is sticky: close() (which flushes) raises it again
        ds.close()
