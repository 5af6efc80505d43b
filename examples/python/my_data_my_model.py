"""My data, my model: train a small PyTorch model on your own JSONL files through mixflow.

    .venv/bin/python examples/python/my_data_my_model.py examples/demo/data/*.train.jsonl

Each file is one domain (``{"text": ...}`` per line; ``NAME.train.jsonl`` with an optional
``NAME.eval.jsonl`` next to it). The script starts a mixflow server on loopback, trains a
byte-level model through ``DataLoader(num_workers=2)``, reports per-sample losses and the
eval answers the ``mixflow`` strategy asks for, checkpoints the dataset with
``state_dict()``, and prints the weights as they move. About a minute on a laptop CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "clients" / "python"))
from mixflow_client import MixflowClient, MixflowIterableDataset  # noqa: E402
from mixflow_client.hf import per_sample_lm_loss, window_inputs  # noqa: E402


class ByteLM(torch.nn.Module):
    """The model: bytes in, next-byte logits out (replace with yours)."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(256, dim)
        self.conv = torch.nn.Conv1d(dim, dim, kernel_size=4)
        self.out = torch.nn.Linear(dim, 256)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids).transpose(1, 2)
        h = self.conv(torch.nn.functional.pad(h, (3, 0)))  # causal: byte t sees bytes t-3..t
        return self.out(torch.relu(h).transpose(1, 2))


def losses(model: ByteLM, window: dict[str, torch.Tensor]) -> torch.Tensor:
    x = window_inputs(window["tokens"], window["lengths"])
    return per_sample_lm_loss(model(x["input_ids"]), x["input_ids"], x["attention_mask"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path, help="NAME.train.jsonl files, one domain each")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--strategy", default="mixflow")
    args = ap.parse_args()
    domains = []
    for f in args.files:
        name = f.name.split(".")[0]
        d = {"name": name, "train": {"format": "jsonl", "paths": [str(f.resolve())]}}
        if (f.parent / f"{name}.eval.jsonl").exists():
            d["eval"] = {"format": "jsonl", "paths": [str((f.parent / f"{name}.eval.jsonl").resolve())]}
        domains.append(d)
    work = Path(tempfile.mkdtemp(prefix="mixflow-mine-"))
    run = {"id": "mine", "batchSize": 16, "worldSize": 1, "seed": 1, "maxSteps": args.steps,
           "strategy": {"name": args.strategy}, "domains": domains}
    (work / "mixflow.json").write_text(json.dumps({"metrics": {"enabled": False}, "logLevel": "warn", "runs": [run]}))
    server = subprocess.Popen([str(REPO / "bin" / "mixflow.mjs"), "serve", "--config", str(work / "mixflow.json"),
                               "--listen", "127.0.0.1:0", "--data-dir", str(work / "state")], stdout=subprocess.PIPE)
    try:
        address = json.loads(server.stdout.readline())["grpc"]  # type: ignore[union-attr]
        client = MixflowClient(address)
        ds = MixflowIterableDataset(client, "mine", seq_len=32)
        torch.manual_seed(0)
        model = ByteLM()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for item in DataLoader(ds, batch_size=None, num_workers=2):
            per_sample = losses(model, item)
            opt.zero_grad()
            per_sample.mean().backward()
            opt.step()
            answers = None
            if "eval" in item:  # the strategy asks (rank 0): mean loss per domain on fixed probes
                with torch.no_grad():
                    answers = {name: float(losses(model, p).mean()) for name, p in item["eval"].items()}
            ds.report(item, per_sample, eval_losses=answers)
            if item["step"] % 25 == 0:
                w = "  ".join(f"{k} {v:.3f}" for k, v in item["weights"].items())
                print(f"step {item['step']:4d}  loss {per_sample.mean().item():.3f}  version {item['version']}  weights {w}", flush=True)
                torch.save({"model": model.state_dict(), "data": ds.state_dict()}, work / "checkpoint.pt")
        ds.close()
        print(f"done: {args.steps} steps; checkpoint and journal in {work}; draw the run with\n"
              f"  npx mixflow report --journal {work / 'state'} --run mine -o report.html")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
