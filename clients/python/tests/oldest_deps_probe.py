"""Run by tests/test_oldest_deps.py inside a fresh virtualenv holding the oldest protobuf,
grpcio and numpy the package index offers, and the client installed from a copy of the
checkout (not editable). A short real session against the server at argv[1]: create a run
(exp3, training losses only), stream and report its steps, wait for the aggregation, read the
weights. Prints one JSON line for the test to check."""

from __future__ import annotations

import json
import sys
import time

import google.protobuf
import grpc
import numpy as np

import mixflow_client
from mixflow_client import MixflowClient

address, config = sys.argv[1], json.loads(sys.argv[2])
steps = int(config["maxSteps"])
with MixflowClient(address, deadline=20.0) as client:
    run = client.create_run(config).run_id
    seen = []
    with client.reporter(run, rank=0, world_size=1) as reporter, client.batches(run, rank=0, world_size=1) as batches:
        for b in batches:
            seen.append((b.step, b.text.texts()[0] if b.text else "", b.digest))
            reporter.report(b.step, 1.0 + b.slot_domains.astype(np.float32) / 4)
    deadline = time.monotonic() + 60
    while client.get_run(run).last_aggregated_step < steps - 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    info = client.get_run(run)
    timeline = client.get_weights(run)
    print(json.dumps({
        "versions": {"protobuf": google.protobuf.__version__, "grpcio": grpc.__version__, "numpy": np.__version__},
        "client_file": mixflow_client.__file__,
        "run": run,
        "steps": [s for s, _, _ in seen],
        "digests": [d for _, _, d in seen],
        "first_text": seen[0][1],
        "last_aggregated_step": info.last_aggregated_step,
        "versions_committed": len(timeline.versions),
    }))
