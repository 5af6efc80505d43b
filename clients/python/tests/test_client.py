"""Runs, batches, decoding, determinism, rank slices and error mapping against a real server."""

from __future__ import annotations

import math
from pathlib import Path

import grpc
import numpy as np
import pytest

from conftest import DOMAINS, EVAL_DOCS, SEQ_LEN, TRAIN_DOCS, run_config, token_run_config
from mixflow_client import Batch, MixflowClient, MixflowError, MixflowRunGone


def same_batch(a: Batch, b: Batch) -> None:
    """Byte-for-byte equality of two batches (composition and payload)."""
    assert (a.step, a.rank, a.slot_offset, a.slots, a.version, a.digest) == (b.step, b.rank, b.slot_offset, b.slots, b.version, b.digest)
    assert a.slot_domains.tobytes() == b.slot_domains.tobytes()
    assert a.slot_samples.tobytes() == b.slot_samples.tobytes()
    assert a.text is not None and b.text is not None
    assert a.text.data == b.text.data and a.text.offsets.tobytes() == b.text.offsets.tobytes()


def test_run_info(client: MixflowClient) -> None:
    info = client.get_run("shared")
    assert (info.run_id, info.state, info.strategy, info.payload) == ("shared", "open", "static", "text")
    assert (info.batch_size, info.world_size, info.seed, info.max_steps) == (8, 2, 11, 200)
    assert info.domain_names == list(DOMAINS)
    assert [(d.train_samples, d.eval_samples) for d in info.domains] == [(TRAIN_DOCS, EVAL_DOCS)] * 3
    assert math.isclose(sum(info.current.weights), 1.0) and info.current.version == 1
    assert info.resolved_config["id"] == "shared"
    assert "shared" in [r.run_id for r in client.list_runs()]


def test_batch_decodes_to_the_documents_of_its_slots(client: MixflowClient, corpus: dict[str, list[str]]) -> None:
    b = client.next_batch("shared", 0, rank=0)
    assert (b.run_id, b.step, b.rank, b.world_size, b.slot_offset, b.slots) == ("shared", 0, 0, 2, 0, 4)
    assert b.slot_domains.dtype == np.dtype("<u4") and b.slot_samples.dtype == np.dtype("<u8")
    assert b.text is not None and b.tokens is None and len(b.text) == 4 and len(b.text.offsets) == 5
    assert len(b.digest) == 16 and not b.eval_requested and b.probes == []
    expected = [corpus[DOMAINS[d]][s] for d, s in zip(b.slot_domains, b.slot_samples)]
    assert b.text.texts() == expected
    assert b.text[1] == expected[1].encode()


def test_same_step_twice_gives_identical_bytes(client: MixflowClient) -> None:
    first = [client.next_batch("shared", s, rank=1) for s in range(5, 10)]
    again = [client.next_batch("shared", s, rank=1) for s in range(5, 10)]
    streamed = list(client.stream_batches("shared", from_step=5, rank=1, max_batches=5))
    assert [b.step for b in streamed] == list(range(5, 10))
    for a, b, c in zip(first, again, streamed):
        same_batch(a, b)
        same_batch(a, c)
    assert len({b.digest for b in first}) == 5  # different steps differ


def test_two_ranks_are_disjoint_and_make_the_global_batch(client: MixflowClient) -> None:
    for step in (0, 3, 17):
        r0 = client.next_batch("shared", step, rank=0, world_size=2)
        r1 = client.next_batch("shared", step, rank=1, world_size=2)
        whole = client.next_batch("shared", step, rank=0, world_size=1)
        assert (r0.slot_offset, r0.slots, r1.slot_offset, r1.slots, whole.slots) == (0, 4, 4, 4, 8)
        assert r0.digest == r1.digest == whole.digest
        pairs0 = set(zip(r0.slot_domains.tolist(), r0.slot_samples.tolist()))
        pairs1 = set(zip(r1.slot_domains.tolist(), r1.slot_samples.tolist()))
        assert not pairs0 & pairs1
        assert np.array_equal(np.concatenate([r0.slot_domains, r1.slot_domains]), whole.slot_domains)
        assert np.array_equal(np.concatenate([r0.slot_samples, r1.slot_samples]), whole.slot_samples)
        assert r0.text is not None and r1.text is not None and whole.text is not None
        assert r0.text.texts() + r1.text.texts() == whole.text.texts()


def test_token_windows_are_reshaped_views(client: MixflowClient, data_dir: Path) -> None:
    info = client.create_run(token_run_config(data_dir))
    assert (info.payload, info.seq_len) == ("tokens", SEQ_LEN)
    b = client.next_batch(info.run_id, 2)
    assert b.tokens is not None and b.text is None
    ids = b.tokens.ids
    assert ids.dtype == np.dtype("<u2") and ids.shape == (8, SEQ_LEN + 1)
    # The file holds 0, 1, 2, ...: window j starts at token j * SEQ_LEN.
    for row, sample in zip(ids, b.slot_samples):
        assert np.array_equal(row, np.arange(int(sample) * SEQ_LEN, int(sample) * SEQ_LEN + SEQ_LEN + 1))


def test_create_and_close_run(client: MixflowClient, data_dir: Path) -> None:
    cfg = run_config(data_dir, worldSize=1)
    info = client.create_run(cfg)
    assert info.run_id == cfg["id"] and info.state == "open" and info.world_size == 1
    with pytest.raises(MixflowError) as e:
        client.create_run(cfg)
    assert e.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert client.close_run(cfg["id"]).state == "closed"
    with pytest.raises(MixflowError) as e:
        client.next_batch(cfg["id"], 0)
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION and "is closed" in e.value.message


def test_invalid_config_is_rejected_with_the_servers_message(client: MixflowClient, data_dir: Path) -> None:
    with pytest.raises(MixflowError) as e:
        client.create_run(run_config(data_dir, batchSize=9, worldSize=2))
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not divisible by worldSize 2" in e.value.message


def test_unknown_run_is_not_found(client: MixflowClient) -> None:
    with pytest.raises(MixflowRunGone) as e:
        client.get_run("no-such-run")
    assert e.value.code == grpc.StatusCode.NOT_FOUND and "no-such-run" in e.value.message
    with pytest.raises(MixflowRunGone):
        client.next_batch("no-such-run", 0)
    with pytest.raises(MixflowRunGone):
        next(iter(client.batches("no-such-run")))


def test_step_past_max_steps_is_out_of_range(client: MixflowClient) -> None:
    with pytest.raises(MixflowError) as e:
        client.next_batch("shared", 200)
    assert e.value.code == grpc.StatusCode.OUT_OF_RANGE
    assert "past the end" in e.value.message and "maxSteps 200" in e.value.message


def test_bad_rank_is_invalid_argument(client: MixflowClient) -> None:
    with pytest.raises(MixflowError) as e:
        client.next_batch("shared", 0, rank=2)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "rank 2 is out of range" in e.value.message


def test_weights_and_watch(client: MixflowClient) -> None:
    tl = client.get_weights("shared")
    assert tl.domains == list(DOMAINS) and tl.versions[0].version == 1 and tl.versions[0].reason == "init"
    watch = client.watch_weights("shared")
    first = next(watch)
    watch.close()  # cancels the stream
    assert first == tl.versions[0]


def test_deadline_and_unreachable_server() -> None:
    with MixflowClient("127.0.0.1:1", deadline=0.5) as c:
        with pytest.raises(MixflowError) as e:
            c.list_runs()
    assert e.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
