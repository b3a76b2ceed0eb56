r"""Paired errors of each variant against its baseline, with bootstrap intervals (issue 23).

Is a variant's error difference larger than the noise of the split?

For every finished PAN/PGS run of a system and the baseline run of the same seed
(``RUNS/<system>/<variant>-seed<k>/best_model.safetensors``, the best-validation
weights), evaluates both on the same split, structure by structure, and reports the
relative change of the variant's MAE against the baseline's with a 95 % paired
bootstrap interval over structures: resampling the structures (with replacement, the
same draw for both models) and recomputing each pooled MAE (sum of absolute errors over
the resampled structures / their count, so the full sample gives exactly ``pansim
eval``'s MAE). ``P(lower)`` is the fraction of resamples in which the variant's MAE is
the lower one. An interval that straddles zero says the split cannot tell the two
models apart, whatever the point estimate.

The validation split is the one that selects; the test split is the one the trainer
already evaluated once on these weights (this script chooses nothing and adds no
choice); ``--splits train`` shows the same on the training split, i.e. how much better
a variant fits what it was trained on (``python scripts/paired_errors.py --system si
--splits train --out results/converged/paired_si_train``).
Writes ``RUNS/paired_<system>.{md,json}``:

    python scripts/paired_errors.py --system si
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # lab/ (research bookkeeping, not installed)

from lab.runs import VARIANT_ORDER, collect  # noqa: E402

#: the compared MAEs: energy per atom (meV/atom), forces (meV/A), stress (GPa)
QUANTITIES = ("energy", "forces", "stress")
SPLITS = {"valid": "valid_file", "test": "test_file", "train": "train_file"}


def per_structure(samples, preds) -> dict[str, np.ndarray]:
    """Absolute-error sums and counts per structure: ``{q: [n, 2]}`` (sum, count)."""
    from ase.units import GPa

    out = {q: [] for q in QUANTITIES}
    for sample, pred in zip(samples, preds, strict=True):
        n = sample.n_atoms
        out["energy"].append((1000.0 * abs(pred["energy"] - sample.energy) / n, 1))
        f = 1000.0 * np.abs(np.asarray(pred["forces"]) - sample.forces)
        out["forces"].append((f.sum(), f.size))
        if sample.stress is None or pred["stress"] is None:
            out["stress"].append((0.0, 0))
        else:
            s = np.abs(np.asarray(pred["stress"]) - sample.stress) / GPa
            out["stress"].append((s.sum(), s.size))
    return {q: np.asarray(v, dtype=float) for q, v in out.items()}


def paired_change(base: np.ndarray, var: np.ndarray, resamples: int = 10000, seed: int = 0):
    """Relative MAE change of ``var`` against ``base`` with a paired bootstrap.

    ``base``/``var``: [n_structures, 2] (absolute-error sum, count) on the same structures.
    Returns ``None`` when nothing is labelled, else a dict with the two MAEs, the
    change, its 2.5/97.5 percentiles and ``p_lower`` (share of resamples with var < base).
    """
    if base.shape != var.shape:
        raise ValueError(
            f"the two models were evaluated on different structures: {base.shape} vs {var.shape}"
        )
    if base[:, 1].sum() == 0:
        return None
    mae_b = base[:, 0].sum() / base[:, 1].sum()
    mae_v = var[:, 0].sum() / var[:, 1].sum()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(base), size=(resamples, len(base)))
    counts = base[idx, 1].sum(axis=1)
    keep = counts > 0
    mb = base[idx, 0].sum(axis=1)[keep] / counts[keep]
    mv = var[idx, 0].sum(axis=1)[keep] / counts[keep]
    change = mv / mb - 1.0
    low, high = np.percentile(change, [2.5, 97.5])
    return {
        "baseline_mae": float(mae_b),
        "variant_mae": float(mae_v),
        "change": float(mae_v / mae_b - 1.0),
        "ci95": [float(low), float(high)],
        "p_lower": float(np.mean(mv < mb)),
        "n_structures": int(len(base)),
    }


def compare(
    system: str,
    runs_dir: Path,
    splits=("valid", "test"),
    resamples: int = 10000,
    baseline_runs: Path | None = None,
) -> list:
    """One row per (variant, seed, split) with a finished baseline of the same seed.

    The baselines come from ``baseline_runs`` (default: ``runs_dir``), e.g. to set a
    two-stage run against the baseline it started from.
    """
    from lab.errors import evaluate

    runs = [r for r in collect(runs_dir).get(system, []) if r["status"] == "finished"]
    if baseline_runs is not None:
        runs = [r for r in runs if r["variant"] != "baseline"]
        runs += [
            r
            for r in collect(baseline_runs).get(system, [])
            if r["status"] == "finished" and r["variant"] == "baseline"
        ]
    baselines = {r["seed"]: r for r in runs if r["variant"] == "baseline"}
    errors: dict[tuple[str, str], dict] = {}

    def errors_of(run, split):
        key = (run["path"], split)
        if key not in errors:
            config = json.loads((ROOT / run["path"] / "summary.json").read_text())["config"]
            data = ROOT / config[SPLITS[split]]
            _, samples, preds = evaluate(ROOT / run["path"] / "best_model.safetensors", data)
            errors[key] = per_structure(samples, preds)
        return errors[key]

    rows = []
    for run in runs:
        base = baselines.get(run["seed"])
        if run["variant"] == "baseline" or base is None:
            continue
        for split in splits:
            b, v = errors_of(base, split), errors_of(run, split)
            row = {"variant": run["variant"], "seed": run["seed"], "split": split}
            row.update({q: paired_change(b[q], v[q], resamples) for q in QUANTITIES})
            rows.append(row)
    rank = {v: i for i, v in enumerate(VARIANT_ORDER)}
    rows.sort(key=lambda r: (list(SPLITS).index(r["split"]), rank.get(r["variant"], 9), r["seed"]))
    return rows


def markdown(system: str, rows: list, resamples: int, command: str | None = None) -> str:
    """Table: per split, variant and seed, the change of each MAE with its interval."""
    lines = [
        f"# Paired errors against the baseline, {system}",
        "",
        f"Written by `{command or f'python scripts/paired_errors.py --system {system}'}`. "
        "Each cell: the "
        "variant's MAE relative to the same seed's baseline on the same structures, "
        f"[95 % paired bootstrap interval over structures, {resamples} resamples], and "
        "P(lower) = share of resamples in which the variant's MAE is lower. Best-validation "
        "weights of each run; the test split is the one each run was already evaluated on "
        "once (nothing is chosen here).",
        "",
        "| split | variant | seed | n | energy | forces | stress |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = []
        n = "-"
        for q in QUANTITIES:
            c = row[q]
            if c is None:
                cells.append("-")
                continue
            n = c["n_structures"]
            cells.append(
                f"{100 * c['change']:+.1f} % [{100 * c['ci95'][0]:+.1f}, "
                f"{100 * c['ci95'][1]:+.1f}] P(lower) {c['p_lower']:.2f}"
            )
        lines.append(
            f"| {row['split']} | {row['variant']} | {row['seed']} | {n} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    from pansim.files import write_text_atomic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True)
    parser.add_argument("--runs", type=Path, default=ROOT / "results" / "converged")
    parser.add_argument(
        "--splits",
        nargs="+",
        choices=list(SPLITS),
        default=["valid", "test"],
        help="train: the generalisation gap (what the extra parameters fit, not what they learn)",
    )
    parser.add_argument("--resamples", type=int, default=10000)
    parser.add_argument(
        "--baseline-runs", type=Path, default=None, help="where the baselines are (default: RUNS)"
    )
    parser.add_argument("--out", type=Path, default=None, help="default: RUNS/paired_<system>")
    args = parser.parse_args(argv)
    rows = compare(args.system, args.runs, tuple(args.splits), args.resamples, args.baseline_runs)
    if not rows:
        print(
            f"no finished PAN/PGS run of {args.system!r} with a finished baseline "
            f"of the same seed under {args.runs}",
            file=sys.stderr,
        )
        return 1
    out = args.out or args.runs / f"paired_{args.system}"
    write_text_atomic(
        out.with_suffix(".json"),
        json.dumps({"system": args.system, "resamples": args.resamples, "rows": rows}, indent=1),
    )
    command = "python scripts/paired_errors.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    text = markdown(args.system, rows, args.resamples, command)
    write_text_atomic(out.with_suffix(".md"), text)
    print(text)
    print(f"wrote {out.with_suffix('.json')} {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
