"""MixflowIterableDataset (numpy and torch), rank resolution and byte windows."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, SEQ_LEN, ServerProcess, run_config, token_run_config, wait_until
from mixflow_client import MixflowClient, MixflowIterableDataset, TextBlock, resolve_rank, to_bytes_windows


def text_block(docs: list[bytes]) -> TextBlock:
    offsets = np.cumsum([0, *map(len, docs)]).astype("<u8")
    return TextBlock(data=b"".join(docs), offsets=offsets)


def test_byte_windows_crop_deterministically_and_pad() -> None:
    long_doc = bytes(range(65, 91)) * 4  # 104 bytes
    block = text_block([b"short", long_doc, b""])
    w = to_bytes_windows(block, seq_len=15, step=3, slot_offset=8, seed=1)
    assert w.windows.dtype == np.uint8 and w.windows.shape == (3, 16)
    assert w.lengths.tolist() == [5, 16, 0]
    assert bytes(w.windows[0, :5]) == b"short" and not w.windows[0, 5:].any()
    assert bytes(w.windows[1]) in long_doc  # a contiguous crop
    assert not w.windows[2].any()
    again = to_bytes_windows(block, seq_len=15, step=3, slot_offset=8, seed=1)
    assert np.array_equal(w.windows, again.windows)
    starts = {long_doc.index(bytes(to_bytes_windows(block, 15, step=s, slot_offset=8, seed=1).windows[1])) for s in range(40)}
    assert len(starts) > 10  # the crop moves with the step
    with pytest.raises(ValueError):
        to_bytes_windows(block, seq_len=0)


def test_resolve_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert resolve_rank() == (0, 1)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert resolve_rank() == (3, 4)
    assert resolve_rank(rank=1) == (1, 4)
    assert resolve_rank(0, 2) == (0, 2)
    with pytest.raises(ValueError, match="rank 4 is out of range"):
        resolve_rank(4, 4)


def test_numpy_dataset_yields_rank_slices_and_reports(client: MixflowClient, data_dir: Path) -> None:
    run = client.create_run(run_config(data_dir)).run_id
    # Collects every step before reporting, so the stream must not wait for reports.
    ds = [
        MixflowIterableDataset(client, run, rank=r, world_size=2, max_steps=6, seq_len=31, as_torch=False, pace_by_reports=False)
        for r in (0, 1)
    ]
    items = [list(d) for d in ds]
    assert [it["step"] for it in items[0]] == list(range(6)) == [it["step"] for it in items[1]]
    for a, b in zip(*items):
        assert a["slot_offset"] == 0 and b["slot_offset"] == 4
        whole = client.next_batch(run, a["step"], world_size=1)
        assert np.array_equal(np.concatenate([a["domains"], b["domains"]]), whole.slot_domains)
        assert a["tokens"].dtype == np.uint8 and a["tokens"].shape == (4, 32)
        for i, doc in enumerate(a["text"]):
            n = int(a["lengths"][i])
            assert bytes(a["tokens"][i, :n]) in doc.encode() and n == min(len(doc.encode()), 32)
        assert "eval" not in a
    for r, (d, its) in enumerate(zip(ds, items)):
        for it in its:
            d.report(it["step"], np.full(4, 1.0 + r, dtype=np.float32))
        d.close()
    wait_until(lambda: client.get_run(run).last_aggregated_step == 5, what="all six steps aggregated")
    assert list(ds[0]) == []  # max_steps reached: iterating again yields nothing more


def test_dataset_continues_where_it_stopped(client: MixflowClient, data_dir: Path) -> None:
    run = client.create_run(run_config(data_dir, worldSize=1)).run_id
    ds = MixflowIterableDataset(client, run, as_torch=False, from_step=3, pace_by_reports=False)
    first = []
    for it in ds:
        first.append(it["step"])
        if len(first) == 4:
            break
    second = [it["step"] for _, it in zip(range(2), ds)]
    assert first == [3, 4, 5, 6] and second == [7, 8] and ds.next_step == 9


def test_dataset_eval_round_trip(client: MixflowClient, data_dir: Path) -> None:
    run = client.create_run(run_config(data_dir, worldSize=1, strategy={"name": "mixflow", "params": {"evalEvery": 1}})).run_id
    ds = MixflowIterableDataset(client, run, seq_len=15, as_torch=False, prefetch=1)
    for it in ds:
        if "eval" in it:
            probes = it["eval"]
            assert sorted(probes) == ["alpha", "beta", "gamma"]
            # evalProbes 4; gamma's templated eval documents copy train documents, so fewer of
            # them are disjoint probes (holdout auto).
            assert all(p["tokens"].shape == (4, 16) for n, p in probes.items() if n != "gamma")
            assert 1 <= probes["gamma"]["tokens"].shape[0] <= 4 and probes["gamma"]["tokens"].shape[1] == 16
            ds.report_eval(it["step"], {name: 1.0 for name in probes})  # eval first...
            ds.report(it["step"], np.ones(8))  # ...then train: sent as one report
            ds.flush()
            break
        with pytest.raises(ValueError, match="did not request eval losses"):
            ds.report_eval(it["step"], {"alpha": 1.0})
        ds.report(it["step"], np.ones(8))
        ds.flush()
        wait_until(lambda s=it["step"]: client.get_run(run).last_aggregated_step >= s, what="aggregation")
        assert it["step"] < 100, "the mixflow strategy never requested eval losses"
    eval_step = it["step"]
    wait_until(lambda: client.get_run(run).last_aggregated_step >= eval_step, what="eval step aggregated")
    ds.close()


def test_torch_tensors(client: MixflowClient, data_dir: Path) -> None:
    import torch  # the test extra installs it
    run = client.create_run(token_run_config(data_dir)).run_id
    ds = MixflowIterableDataset(client, run, max_steps=2)
    assert isinstance(ds, torch.utils.data.IterableDataset)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=0)
    items = list(loader)
    assert [it["step"] for it in items] == [0, 1]
    tokens = items[1]["tokens"]
    assert tokens.dtype == torch.int64 and tokens.shape == (8, SEQ_LEN + 1)
    assert torch.equal(tokens[:, 1:] - tokens[:, :-1], torch.ones(8, SEQ_LEN, dtype=torch.int64))
    assert items[1]["domains"].dtype == torch.int64
    ds.report(1, torch.full((8,), 2.0, requires_grad=True))  # tensors with grad are fine
    ds.report(0, torch.full((8,), 2.0))
    ds.close()


def test_dataset_works_without_torch(server: ServerProcess) -> None:
    """Everything but the torch parts works with numpy alone (torch made unimportable)."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # import torch -> ImportError
        from mixflow_client import MixflowIterableDataset
        ds = MixflowIterableDataset({server.address!r}, "shared", rank=1, world_size=2, from_step=100, max_steps=2, seq_len=7)
        items = list(ds)
        assert not ds.as_torch and [it["step"] for it in items] == [100, 101], items
        assert items[0]["tokens"].shape == (4, 8) and type(items[0]["tokens"]).__module__ == "numpy"
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "clients" / "python")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
