#!/usr/bin/env python
"""Relabel stored configurations with their stored settings and record the agreement.

Issue 3's reproducibility check: a relabel must reproduce the stored labels within
1 meV/atom (energy) and 5 meV/A (largest force component). For each system this
picks ``--per-system`` finished configurations (seeded, so reruns pick the same ones),
reruns each with :func:`pansim.data.build.relabel` (the manifest is not changed) and
merges the outcome into ``data/relabel_checks.json`` (written atomically after each
configuration; configurations already checked are skipped).

Usage::

    python scripts/relabel_check.py                      # every system, 1 configuration each
    python scripts/relabel_check.py si ag --per-system 2
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import datetime, timezone
from pathlib import Path

from pansim.data.build import relabel
from pansim.data.datasets import SYSTEMS, data_dir, manifest_path
from pansim.data.manifest import Manifest, write_json_atomic


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("systems", nargs="*", default=list(SYSTEMS))
    parser.add_argument("--per-system", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = data_dir() / "relabel_checks.json"
    record = json.loads(out.read_text()) if out.exists() else {"checks": {}}
    failed = 0
    for system in args.systems:
        path = manifest_path(system)
        if not Path(path).exists():
            print(f"{system}: no manifest, skipped")
            continue
        done = sorted(Manifest.load(path).done())
        picks = random.Random(f"{args.seed}:{system}").sample(done, min(args.per_system, len(done)))
        for key in picks:
            if f"{system}/{key}" in record["checks"]:
                print(f"{system}/{key}: checked already")
                continue
            t0 = time.time()
            res = relabel(system, key)
            res.update(
                seconds=round(time.time() - t0, 1),
                checked=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
            record["checks"][f"{system}/{key}"] = res
            record["tolerance"] = {"dE_meV_per_atom": 1.0, "dF_max_meV_A": 5.0}
            write_json_atomic(out, record, indent=1)
            failed += not res.get("reproduced")
            print(f"{system}/{key}: {json.dumps(res)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
