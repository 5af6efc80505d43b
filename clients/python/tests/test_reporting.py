"""ReportSignals and the background SignalReporter: acks, idempotent re-sends, conflicting
re-sends, bad input, and eval answers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from conftest import DOMAINS, read_jsonl, run_config, wait_until
from mixflow_client import MixflowClient, MixflowError, ReportRejected, ReportResult


@pytest.fixture()
def run(client: MixflowClient, data_dir: Path) -> str:
    """A fresh two-rank run, so reports of one test never meet another's."""
    return client.create_run(run_config(data_dir)).run_id


def test_ack_complete_step_and_aggregation(client: MixflowClient, run: str) -> None:
    for rank in (0, 1):
        client.next_batch(run, 0, rank=rank)
    r0 = client.report_signals(run, 0, rank=0, sample_losses=[1.0, 2.0, 3.0, 4.0])
    assert r0 == ReportResult(duplicate=False, step_complete=False, version=1)
    r1 = client.report_signals(run, 0, rank=1, sample_losses=np.full(4, 0.5, dtype=np.float32))
    assert not r1.duplicate and r1.step_complete
    wait_until(lambda: client.get_run(run).last_aggregated_step == 0, what="step 0 aggregated")


def test_duplicate_resend_is_acknowledged_idempotently(client: MixflowClient, run: str) -> None:
    client.next_batch(run, 0, rank=0)
    losses = [0.25, 0.5, 0.75, 1.0]
    assert not client.report_signals(run, 0, rank=0, sample_losses=losses).duplicate
    again = client.report_signals(run, 0, rank=0, sample_losses=np.array(losses))
    assert again.duplicate and not again.step_complete


def test_different_values_for_the_same_step_are_rejected(client: MixflowClient, run: str) -> None:
    client.next_batch(run, 0, rank=0)
    client.report_signals(run, 0, rank=0, sample_losses=[1.0] * 4)
    with pytest.raises(MixflowError) as e:
        client.report_signals(run, 0, rank=0, sample_losses=[2.0] * 4)
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "already reported with different values" in e.value.message


@pytest.mark.parametrize(
    ("losses", "code", "message"),
    [
        ([1.0, float("nan"), 1.0, 1.0], grpc.StatusCode.INVALID_ARGUMENT, "sample_losses[1] is NaN: losses must be finite and >= 0"),
        ([1.0, 1.0, float("inf"), 1.0], grpc.StatusCode.INVALID_ARGUMENT, "sample_losses[2] is Infinity"),
        ([-1.0, 1.0, 1.0, 1.0], grpc.StatusCode.INVALID_ARGUMENT, "sample_losses[0] is -1"),
        ([1.0, 1.0], grpc.StatusCode.INVALID_ARGUMENT, "expected 4 float32 values"),
    ],
)
def test_bad_losses_are_invalid_argument(client: MixflowClient, run: str, losses: list[float], code: grpc.StatusCode, message: str) -> None:
    client.next_batch(run, 0, rank=0)
    with pytest.raises(MixflowError) as e:
        client.report_signals(run, 0, rank=0, sample_losses=losses)
    assert e.value.code == code and message in e.value.message
    # Bad input changes no state: a correct report afterwards is a first report.
    assert not client.report_signals(run, 0, rank=0, sample_losses=[1.0] * 4).duplicate


def test_report_errors_for_unknown_run_unserved_step_and_unknown_eval_domain(client: MixflowClient, run: str) -> None:
    with pytest.raises(MixflowError) as e:
        client.report_signals("no-such-run", 0, sample_losses=[1.0] * 4)
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(MixflowError) as e:
        client.report_signals(run, 5, rank=0, sample_losses=[1.0] * 4)
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION and "has not been served yet" in e.value.message
    client.next_batch(run, 0, rank=0)
    with pytest.raises(MixflowError) as e:
        client.report_signals(run, 0, rank=0, eval_losses={"nope": 1.0})
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and 'unknown domain "nope"' in e.value.message
    with pytest.raises(MixflowError) as e:
        client.report_signals(run, 300, rank=0, sample_losses=[1.0] * 4)
    assert e.value.code == grpc.StatusCode.OUT_OF_RANGE


def test_domain_losses(client: MixflowClient, run: str) -> None:
    b = client.next_batch(run, 0, rank=0)
    d = int(b.slot_domains[0])
    n = int((b.slot_domains == d).sum())
    assert not client.report_signals(run, 0, rank=0, domain_losses=[(d, 1.5 * n, n)]).duplicate
    with pytest.raises(MixflowError) as e:
        client.report_signals(run, 0, rank=1, domain_losses=[(7, 1.0, 1)])
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "not a domain index" in e.value.message


def test_reporter_never_blocks_and_acknowledges_everything(client: MixflowClient, run: str) -> None:
    acks: list[tuple[int, ReportResult]] = []
    lock = threading.Lock()

    def on_ack(step: int, r: ReportResult) -> None:
        with lock:
            acks.append((step, r))

    reporter = client.reporter(run, rank=0, on_ack=on_ack)
    batches = list(client.batches(run, rank=0, max_batches=20))
    t0 = time.perf_counter()
    for b in batches:
        reporter.report(b.step, np.full(b.slots, 1.0 + b.step / 10, dtype=np.float32))
    enqueue = time.perf_counter() - t0
    reporter.flush(timeout=20)
    assert enqueue < 0.05, f"report() blocked: {enqueue:.3f} s for 20 reports"
    assert reporter.acked == 20 and reporter.pending == 0
    assert sorted(s for s, _ in acks) == list(range(20)) and not any(r.duplicate for _, r in acks)
    reporter.close()


def test_reporter_surfaces_a_rejection_with_the_servers_message(client: MixflowClient, run: str) -> None:
    reporter = client.reporter(run, rank=0)
    client.next_batch(run, 0, rank=0)
    reporter.report(0, [1.0] * 4)
    reporter.flush()
    reporter.report(0, [9.0] * 4)  # conflicting re-send: rejected in the background
    with pytest.raises(ReportRejected) as e:
        reporter.flush()
    assert e.value.step == 0 and e.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "report of step 0 rejected" in str(e.value) and "already reported with different values" in e.value.message
    with pytest.raises(ReportRejected):  # sticky: the next call raises too
        reporter.report(1, [1.0] * 4)
    with pytest.raises(ReportRejected):
        reporter.close()
    assert not any(t.is_alive() for t in reporter._workers)


def test_eval_requested_and_answered(client: MixflowClient, data_dir: Path) -> None:
    """The mixflow strategy asks for eval losses; rank 0 gets the fixed probes."""
    run = client.create_run(run_config(data_dir, worldSize=1, strategy={"name": "mixflow", "params": {"evalEvery": 1}})).run_id
    for step in range(12):
        b = client.next_batch(run, step)
        if b.eval_requested:
            break
        client.report_signals(run, step, sample_losses=[1.0] * b.slots)
        wait_until(lambda s=step: client.get_run(run).last_aggregated_step >= s, what=f"step {step} aggregated")
    else:
        pytest.fail("the mixflow strategy never requested eval losses")
    assert [p.domain for p in b.probes] == [0, 1, 2]
    eval_docs = {n: read_jsonl(data_dir / f"{n}.eval.jsonl") for n in DOMAINS}
    for p in b.probes:
        # evalProbes 4; gamma's templated eval documents copy train documents (same generator),
        # so only the few whose copies fit in 5 % of training leave it and are probes (holdout auto).
        n = 4 if DOMAINS[p.domain] != "gamma" else len(p.text or [])
        assert p.text is not None and 1 <= n == len(p.text) and len(set(p.sample_indices.tolist())) == n
        for i, text in zip(p.sample_indices, p.text.texts()):
            assert text == eval_docs[DOMAINS[p.domain]][int(i)]
    again = client.next_batch(run, b.step)  # probes are fixed
    assert [p.text.data for p in again.probes] == [p.text.data for p in b.probes]  # type: ignore[union-attr]
    r = client.report_signals(run, b.step, sample_losses=[1.0] * b.slots, eval_losses={"alpha": 2.0, "beta": 1.0, "gamma": 0.5})
    assert not r.duplicate and r.step_complete
