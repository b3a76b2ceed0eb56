#!/usr/bin/env python
r"""Evaluate the trained ablation runs on their committed test splits; write the table.

Usage (from the repository root, after ``scripts/train_pretrained.py run``)::

    python scripts/ablation_table.py                          # all finished runs
    python scripts/ablation_table.py --systems si ag --out results/ablation
    python scripts/ablation_table.py --rows-from results/ablation/ablation.json  # re-aggregate
    # evaluate one system alone, then put its rows into the committed table:
    python scripts/ablation_table.py --systems ag --merge --out runs/ablation-ag
    python scripts/ablation_table.py --rows-from results/ablation/ablation.json \
        runs/ablation-ag/ablation.json

Writes ``ablation.md`` and ``ablation.json`` (per-run metrics included) and
prints the Markdown; into the project's ``results/ablation`` it also rewrites
the table of docs/results.md (between ``README_MARKERS``). Only finished runs count; the
note under the table lists the seeds and epochs that actually went in.

The NequIP / Allegro rows (issue 7) are evaluated in the second environment by
``.venv-nequip/bin/python -m pansim_nequip.comparison table`` into
``results/nequip/ablation.json``; ``--merge`` (default: that file, when it exists)
adds its per-run rows, system names ``<system> (nequip)`` / ``<system> (allegro)``,
to this table, aggregated the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # lab/ (research bookkeeping, not installed)
#: the ablation table of docs/results.md sits between these lines
README_MARKERS = ("<!-- ablation table: start", "<!-- ablation table: end -->")


def _note(rows, planned_seeds: int) -> str:
    """Seeds and epochs per system (per variant where they differ), and when it was timed."""
    seeds = defaultdict(lambda: defaultdict(set))
    epochs = defaultdict(set)
    timing = {}  # system -> (first timed_at, highest 1-minute load) of rows that record it
    for row in rows:
        seeds[row["system"]][row["variant"]].add(row["seed"])
        epochs[row["system"]].add(row["epochs"])
        if "timed_at" in row:
            at, load = timing.get(row["system"], (row["timed_at"], row["load_1min"]))
            timing[row["system"]] = (min(at, row["timed_at"]), max(load, row["load_1min"]))
    parts = []
    for system in sorted(seeds):
        by_variant = seeds[system]
        short = any(len(s) < planned_seeds for s in by_variant.values())
        if len({frozenset(s) for s in by_variant.values()}) == 1:
            text = f"seeds {sorted(next(iter(by_variant.values())))}"
        else:
            text = "seeds " + ", ".join(
                f"{sorted(s)} ({variant})" for variant, s in sorted(by_variant.items())
            )
        short_text = " (fewer seeds than planned)" if short else ""
        timed = timing.get(system)
        when = f", timed {timed[0]} at load {timed[1]:.1f}" if timed else ""
        parts.append(f"{system}: {text}{short_text}, epochs {sorted(epochs[system])}{when}")
    return "Runs included: " + "; ".join(parts) + "."


def merged_rows(paths, systems=None) -> list[dict]:
    """Per-run rows of other ablation tables (``runs`` of their ablation.json)."""
    rows = []
    for path in paths or ():
        path = Path(path)
        if not path.exists():
            continue
        try:
            runs = json.loads(path.read_text())["runs"]
        except (json.JSONDecodeError, KeyError) as exc:
            raise SystemExit(f"{path}: not an ablation.json with per-run rows ({exc})") from exc
        rows += [r for r in runs if not systems or r["system"].split(" (")[0] in systems]
    return rows


def stored_rows(paths, systems=None) -> list[dict]:
    """Per-run rows of ``paths``; a later file's rows replace every earlier row of their systems.

    So a system re-evaluated alone (``--systems``) updates a committed table without
    re-timing the others. Each row keeps when and under what load it was timed.
    """
    rows: list[dict] = []
    for path in paths:
        if not Path(path).exists():
            raise SystemExit(f"{path}: no such file")
        new = defaultdict(list)
        for r in merged_rows([path], systems):
            new[r["system"]].append(r)
        # a replaced system keeps its place, so the committed table's order stays put
        kept, placed = [], set()
        for r in rows:
            if r["system"] not in new:
                kept.append(r)
            elif r["system"] not in placed:
                kept += new[r["system"]]
                placed.add(r["system"])
        rows = kept + [r for system, rs in new.items() if system not in placed for r in rs]
    return rows


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=Path, default=ROOT / "configs" / "pretrained")
    parser.add_argument("--systems", nargs="*")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "ablation")
    parser.add_argument("--cost-samples", type=int, default=8, help="structures per cost batch")
    parser.add_argument("--planned-seeds", type=int, default=3)
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="*",
        default=[ROOT / "results" / "nequip" / "ablation.json"],
        help="ablation.json files whose per-run rows join the table (missing files skipped)",
    )
    parser.add_argument(
        "--rows-from",
        type=Path,
        nargs="+",
        default=None,
        help="rebuild the table from the per-run rows of these ablation.json files (no "
        "evaluation, no timing, no --merge: the files already hold the merged rows); "
        "a later file's rows replace the earlier rows of each system it has",
    )
    args = parser.parse_args(argv)

    from lab import ablation, plan
    from pansim.training.config import load_config
    from pansim.training.data import load_dataset

    if args.rows_from is not None:
        return _write_table(ablation, stored_rows(args.rows_from, args.systems), args)
    groups = defaultdict(list)
    for job in plan.jobs_in(args.configs, args.systems, root=ROOT):
        if plan.status(job) == "done":
            groups[job.system].append(job)
        else:
            print(f"skipping unfinished run {job.out_dir}", file=sys.stderr)
    rows = []
    for jobs in groups.values():
        config = load_config(jobs[0].config)
        model, _ = ablation.load_run(jobs[0])
        labels = (config.energy_key, config.forces_key, config.stress_key)
        numbers = [int(z) for z in model.atomic_numbers]
        samples = load_dataset(config.test_file, labels, numbers, float(model.r_max))
        rows += ablation.evaluate_jobs(jobs, samples, args.cost_samples)
    rows += merged_rows(args.merge, args.systems)
    return _write_table(ablation, rows, args)


def _write_table(ablation, rows: list[dict], args) -> int:
    if not rows:
        print("no finished runs found", file=sys.stderr)
        return 1
    table = ablation.aggregate(rows)
    note = _note(rows, args.planned_seeds)
    md, js = ablation.write(table, rows, args.out, note)
    print(md.read_text())
    print(f"wrote {md} and {js}")
    if args.out.resolve() == (ROOT / "results" / "ablation").resolve():
        from lab.splice import replace_between_markers

        start, end = README_MARKERS
        lines = [line for line in md.read_text().splitlines() if line.startswith("|")]
        header = f"{start} (written by `python scripts/ablation_table.py`) -->"
        block = "\n".join([header, *lines, end])
        if replace_between_markers(ROOT / "docs" / "results.md", start, end, block):
            print(f"wrote the ablation table of {ROOT / 'docs' / 'results.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
