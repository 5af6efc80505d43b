"""End to end with the data users have: one run mixing a Parquet domain, a .jsonl.gz and a
.jsonl.zst domain tokenized by a tokenizer.json (trained by the `tokenizers` package), a HF
`save_to_disk` folder and a Megatron .bin/.idx domain. A tiny torch LM trains 10 steps on
it from the Python client; the batches are identical across two server processes and
W = 1, 2; the tokenized windows equal what Python `tokenizers` makes of the same text,
packed as the server documents it (docs + EOS as a ring, window i from token i * seqLen).
Fixtures: test/fixtures/data17 (made by test/fixtures/make-data17.py with the real writers).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from mixflow_client import MixflowClient

from conftest import REPO, ServerProcess, write_server_config

FIX = REPO / "test" / "fixtures" / "data17"
SEQ = 32
STEPS = 10


def _config() -> dict:
    return {
        "id": "formats",
        "seed": 5,
        "batchSize": 10,
        "worldSize": 2,
        "maxSteps": 100,
        "seqLen": SEQ,
        "tokenizer": str(FIX / "tokenizer.json"),
        "strategy": {"name": "static"},
        "domains": [
            {"name": "parquet", "train": {"format": "parquet", "paths": [str(FIX / "fortunes.parquet")], "textColumn": "content"}},
            {"name": "gz", "train": {"format": "jsonl", "paths": [str(FIX / "code.jsonl.gz")]}},
            {"name": "zst", "train": {"format": "jsonl", "paths": [str(FIX / "german.jsonl.zst")]}},
            {"name": "hf", "train": {"format": "arrow", "paths": [str(FIX / "spanish_hf")]}},
            {"name": "megatron", "train": {"format": "megatron", "paths": [str(FIX / "licenses_text_document")]}},
        ],
    }


def _train(client: MixflowClient, world: int) -> tuple[list[np.ndarray], list[float]]:
    """10 steps of a tiny LM, every rank's slice fetched and reported; returns the global batches."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(800, 16), torch.nn.Linear(16, 800))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    batches, losses = [], []
    for step in range(STEPS):
        parts = [client.next_batch("formats", step, rank, world) for rank in range(world)]
        ids = np.concatenate([p.tokens.ids for p in parts]).astype(np.int64)
        x = torch.from_numpy(ids)
        logits = model(x[:, :-1])
        per = torch.nn.functional.cross_entropy(logits.reshape(-1, 800), x[:, 1:].reshape(-1), reduction="none").view(len(ids), -1).mean(1)
        opt.zero_grad()
        per.mean().backward()
        opt.step()
        at = 0
        for rank, p in enumerate(parts):
            n = p.slots
            client.report_signals("formats", step, rank, world, sample_losses=per[at : at + n].detach().numpy())
            at += n
        batches.append(np.concatenate([np.stack([p.slot_domains, p.slot_samples.astype(np.uint32)], 1) for p in parts]))
        batches.append(ids)
        losses.append(float(per.mean().detach()))
    return batches, losses


def test_mixed_sources_train_identically_across_processes_and_world_sizes(tmp_path: Path) -> None:
    runs = []
    for name, world in (("a", 2), ("b", 1)):
        cfg = write_server_config(tmp_path / f"{name}.json", [_config()])
        srv = ServerProcess(cfg, tmp_path / f"state-{name}").start(timeout=240)
        try:
            client = MixflowClient(srv.address)
            info = client.get_run("formats")
            assert info.payload == "tokens"
            runs.append(_train(client, world))
            if name == "a":
                tok = Tokenizer.from_file(str(FIX / "tokenizer.json"))
                _check_gz_windows(client, tok)
            client.close()
        finally:
            srv.stop()
    (a, la), (b, lb) = runs
    assert len(a) == len(b) == 2 * STEPS
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert la == lb
    assert la[-1] < la[0], la  # it trains
    domains = np.concatenate([a[2 * s][:, 0] for s in range(STEPS)])
    assert set(domains.tolist()) == {0, 1, 2, 3, 4}


def _check_gz_windows(client: MixflowClient, tok: Tokenizer) -> None:
    eos = tok.token_to_id("<|endoftext|>")
    ring: list[int] = []
    with gzip.open(FIX / "code.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            ring += tok.encode(json.loads(line)["text"], add_special_tokens=False).ids + [eos]
    checked = 0
    for step in range(STEPS):
        b = client.next_batch("formats", step, 0, 1)
        for i in range(b.slots):
            if b.slot_domains[i] != 1:
                continue
            s = int(b.slot_samples[i])
            want = [ring[(s * SEQ + k) % len(ring)] for k in range(SEQ + 1)]
            assert b.tokens.ids[i].tolist() == want
            checked += 1
    assert checked > 0
