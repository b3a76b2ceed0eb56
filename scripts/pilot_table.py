#!/usr/bin/env python
"""Pilot table: calibrated scalar pathway against the spec modules and the baseline.

Usage (from the repository root, after the pilot runs of ``docs/calibrated_pgs.md``)::

    python scripts/pilot_table.py --system si

Evaluates, in one process and on the committed test split of ``--system``:

- every finished run of the shipped plan (``configs/pretrained/<system>``: baseline
  and the spec variants);
- every finished pilot run (``configs/pilot/<system>``), listed as
  ``<variant> calibrated``.

Inference time is measured across all models, interleaved. Error changes are against
the baseline on the same seeds. Writes ``results/pilot/<system>/ablation.{md,json}``
and prints the Markdown.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # lab/ (research bookkeeping, not installed)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="si")
    parser.add_argument("--configs", type=Path, default=ROOT / "configs" / "pilot")
    parser.add_argument("--spec-configs", type=Path, default=ROOT / "configs" / "pretrained")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "pilot")
    parser.add_argument("--cost-samples", type=int, default=8, help="structures per cost batch")
    args = parser.parse_args(argv)

    from lab import ablation, plan
    from pansim.training.config import load_config
    from pansim.training.data import load_dataset

    def finished(configs):
        jobs = plan.jobs_in(configs, [args.system], root=ROOT)
        for job in jobs:
            if plan.status(job) != "done":
                print(f"skipping unfinished run {job.out_dir}", file=sys.stderr)
        return [job for job in jobs if plan.status(job) == "done"]

    spec, pilot = finished(args.spec_configs), finished(args.configs)
    if not pilot or not any(job.variant == "baseline" for job in spec):
        print("need finished pilot runs and a finished baseline", file=sys.stderr)
        return 1
    config = load_config(spec[0].config)
    model, _ = ablation.load_run(spec[0])
    labels = (config.energy_key, config.forces_key, config.stress_key)
    numbers = [int(z) for z in model.atomic_numbers]
    samples = load_dataset(config.test_file, labels, numbers, float(model.r_max))
    rows = ablation.evaluate_jobs([*spec, *pilot], samples, args.cost_samples)
    for row in rows[len(spec) :]:
        row["variant"] += " calibrated"
    table = ablation.aggregate(rows)
    seeds = {r["variant"]: sorted(x["seed"] for x in rows if x["variant"] == r["variant"])
             for r in rows}  # fmt: skip
    note = (
        f"{args.system}: spec modules (shipped plan) against the calibrated scalar pathway "
        "(docs/calibrated_pgs.md), same data, backbone, budget and seeds. Seeds: "
        + "; ".join(f"{v} {s}" for v, s in sorted(seeds.items()))
        + ". Test split: "
        + str(Path(config.test_file))
        + "."
    )
    md, js = ablation.write(table, rows, args.out / args.system, note)
    print(md.read_text())
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
