#!/usr/bin/env python3
"""Add an earlier run's oracle (static, junk weight 0) to a family's new run.py result, so that
``generalise.py --collect`` can build the table without training the oracle again.

Static runs are deterministic (same data, seed and code path give the same batches and the same
model), so the oracle of an earlier result stands if the new result's uniform runs reproduce the
earlier uniform runs' final losses exactly; this script refuses otherwise.

    python bench/learning/merge_oracle.py NEW_LAST_LINE OLD_LAST_LINE OUT [--carry NAME ...]

``--carry NAME`` also keeps the earlier result's entry NAME (when the new run did not train it),
recorded under ``carried_from`` with the earlier date: for an entry whose code path a change
provably leaves alone (e.g. ``mixflow_nopriors`` under a rule that only acts on prior-starved
domains); the table must say it is carried.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    new_path, old_path, out = (Path(a) for a in sys.argv[1:4])
    rest = sys.argv[4:]
    carry = [rest[i + 1] for i, a in enumerate(rest) if a == "--carry" and i + 1 < len(rest)]
    new = json.loads(new_path.read_text().strip().splitlines()[-1])
    old = json.loads(old_path.read_text().strip().splitlines()[-1])
    nu, ou = new["strategies"]["uniform"], old["strategies"]["uniform"]
    if nu["seeds"] != ou["seeds"] or nu["final_mean_loss_per_seed"] != ou["final_mean_loss_per_seed"]:
        raise SystemExit(f"uniform runs differ (new {nu['final_mean_loss_per_seed']} vs old {ou['final_mean_loss_per_seed']}): "
                         "train the oracle again")
    if "oracle" not in old["strategies"]:
        raise SystemExit(f"{old_path}: no oracle")
    new["strategies"] = {"uniform": nu, "oracle": old["strategies"]["oracle"],
                         **{k: v for k, v in new["strategies"].items() if k not in ("uniform", "oracle")}}
    new["oracle_from"] = {"file": str(old_path), "date": old.get("date")}
    for name in carry:
        if name in new["strategies"]:
            continue
        if name not in old["strategies"]:
            raise SystemExit(f"{old_path}: no {name} to carry")
        new["strategies"][name] = old["strategies"][name]
        new.setdefault("carried_from", {})[name] = {"file": str(old_path), "date": old.get("date")}
    out.write_text(json.dumps(new) + "\n")
    print(f"{out}: uniform reproduced {nu['final_mean_loss_per_seed']}; oracle from {old.get('date')}")


if __name__ == "__main__":
    main()
