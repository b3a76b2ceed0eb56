r"""Data-size curve (issue 23): test error against training-set size, per variant.

Nested training subsets of one system's training split (the first N structures of one
fixed, seeded permutation of ``data/<system>/train.extxyz``; the same subsets for every
variant and model seed, and each smaller subset inside each larger one), trained with
the converged recipe (``configs/converged/base/<system>.yaml``; only ``train_file``,
``variant``, ``seed`` and ``out_dir`` change). The full-size point is the converged run
itself (``results/converged/<system>/<variant>-seed<k>``), so it is not trained twice.
Validation and test splits are the system's own, unchanged; each run evaluates the test
split once, at its end, on its best-validation weights.

    python scripts/datasize.py write --systems si ethanol --sizes 60 120      # subsets + configs
    python scripts/train_pretrained.py list --configs configs/datasize        # status + commands
    python scripts/train_pretrained.py run --configs configs/datasize --systems si \
        --jobs 2 --threads 1                                                  # train (resumes)
    python scripts/datasize.py report                                          # table + plot

Training goes through the plan runner of ``scripts/train_pretrained.py`` (the configs are
named ``<variant>-n<N>-seed<k>.yaml`` and carry ``variant`` and ``seed``, as it expects).

Outputs: ``data/<system>/subsets/train-n<N>.extxyz`` (with the indices they hold in
``subsets.json``), ``configs/datasize/<system>/<variant>-n<N>-seed<k>.yaml``,
``results/datasize/<system>/<variant>-n<N>-seed<k>/``, and ``results/datasize/report.{md,json}``
with ``results/datasize/<system>.png`` (log-log test force and energy MAE against N,
mean and min-max over seeds).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
SUBSET_SEED = 20261207
VARIANTS = ("baseline", "pan", "pan+pgs")
SEEDS = (0, 1, 2)
RUN = re.compile(r"^(?P<variant>.+)-n(?P<n>\d+)-seed(?P<seed>\d+)$")
METRICS = {"energy_per_atom": "meV/atom", "forces": "meV/A", "stress": "GPa"}


def subset_indices(n_total: int, n: int, seed: int = SUBSET_SEED) -> list[int]:
    """The first ``n`` of one fixed permutation of ``range(n_total)``, sorted (nested in n)."""
    if not 0 < n <= n_total:
        raise ValueError(f"subset size {n} must lie in 1..{n_total}")
    order = np.random.default_rng(seed).permutation(n_total)
    return sorted(int(i) for i in order[:n])


def write_subsets(system: str, sizes: list[int], root: Path = ROOT) -> dict[int, Path]:
    """``data/<system>/subsets/train-n<N>.extxyz`` for each size, and ``subsets.json``."""
    from ase.io import read, write

    from pansim.files import write_json_atomic

    frames = read(root / "data" / system / "train.extxyz", ":")
    folder = root / "data" / system / "subsets"
    folder.mkdir(parents=True, exist_ok=True)
    out, record = {}, {"seed": SUBSET_SEED, "source": f"data/{system}/train.extxyz", "subsets": {}}
    for n in sizes:
        picks = subset_indices(len(frames), n)
        path = folder / f"train-n{n}.extxyz"
        tmp = path.with_suffix(".extxyz.tmp")
        write(tmp, [frames[i] for i in picks], format="extxyz")
        tmp.replace(path)
        out[n] = path
        record["subsets"][str(n)] = picks
    write_json_atomic(folder / "subsets.json", record)
    return out


def write_configs(system: str, sizes: list[int], root: Path = ROOT) -> list[Path]:
    """One config per variant x size x seed from the converged base of ``system``."""
    from pansim.files import write_text_atomic

    base = yaml.safe_load((root / "configs" / "converged" / "base" / f"{system}.yaml").read_text())
    paths = []
    for n in sizes:
        for variant in VARIANTS:
            for seed in SEEDS:
                name = f"{variant}-n{n}-seed{seed}"
                full = {
                    **base,
                    "train_file": f"data/{system}/subsets/train-n{n}.extxyz",
                    "variant": variant,
                    "seed": seed,
                    "out_dir": f"results/datasize/{system}/{name}",
                }
                path = root / "configs" / "datasize" / system / f"{name}.yaml"
                path.parent.mkdir(parents=True, exist_ok=True)
                head = (
                    f"# generated from configs/converged/base/{system}.yaml by "
                    "scripts/datasize.py write; do not edit\n"
                )
                write_text_atomic(path, head + yaml.safe_dump(full, sort_keys=False))
                paths.append(path)
    return paths


def status(config: Path, root: Path = ROOT) -> str:
    """``done``, ``partial`` or ``todo`` of one config (``lab.plan.status``)."""
    sys.path.insert(0, str(ROOT))  # lab/ (research bookkeeping, not installed)
    from lab import plan

    data = yaml.safe_load(config.read_text())
    job = plan.Job(config.parent.name, data["variant"], int(data["seed"]), config,
                   root / data["out_dir"])  # fmt: skip
    return plan.status(job)


def collect(root: Path = ROOT) -> list[dict]:
    """Finished runs: the data-size runs, plus the full-size converged runs."""
    rows = []
    for summary in sorted((root / "results" / "datasize").glob("*/*/summary.json")):
        match = RUN.match(summary.parent.name)
        if match:
            rows.append(_row(summary, summary.parent.parent.name, match["variant"],
                             int(match["n"]), int(match["seed"])))  # fmt: skip
    systems = {r["system"] for r in rows}
    for system in sorted(systems):
        for summary in sorted((root / "results" / "converged" / system).glob("*/summary.json")):
            variant, _, seed = summary.parent.name.rpartition("-seed")
            if variant in VARIANTS and seed.isdigit():
                n = _n_train(summary, root)
                rows.append(_row(summary, system, variant, n, int(seed)))
    return rows


def _n_train(summary: Path, root: Path) -> int:
    """Structures in the training file of a finished run."""
    return _count_structures(root / json.loads(summary.read_text())["config"]["train_file"])


@functools.cache
def _count_structures(path: Path) -> int:
    """Structures in an extended XYZ file (read once per file: seeds share their data)."""
    from ase.io import iread

    return sum(1 for _ in iread(path, index=":"))


def _row(summary: Path, system: str, variant: str, n: int, seed: int) -> dict:
    """One finished run: its place in the curve and its test MAEs."""
    data = json.loads(summary.read_text())
    test = data.get("test") or {}
    return {
        "system": system,
        "variant": variant,
        "n_train": n,
        "seed": seed,
        "stop_reason": data.get("stop_reason"),
        "test": {k: (test.get(k) or {}).get("mae") for k in METRICS},
    }


def aggregate(rows: list[dict]) -> list[dict]:
    """Mean, min and max over seeds per (system, variant, n_train, metric)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["system"], r["variant"], r["n_train"]), []).append(r)
    out = []
    for (system, variant, n), runs in sorted(groups.items()):
        entry = {"system": system, "variant": variant, "n_train": n, "seeds": len(runs)}
        for metric in METRICS:
            vals = [r["test"][metric] for r in runs if r["test"][metric] is not None]
            if vals:
                entry[metric] = {"mean": float(np.mean(vals)), "min": min(vals), "max": max(vals)}
        out.append(entry)
    return out


def markdown(table: list[dict]) -> str:
    """Test MAE per system, size and variant (mean over seeds, [min, max]) and the gain."""
    lines = [
        "# Data-size curve: test MAE against training-set size",
        "",
        "Made by `python scripts/datasize.py report`. Converged recipe, nested subsets of "
        "the training split; mean over seeds [min, max]; 'vs baseline': relative change of "
        "the mean against the baseline at the same size.",
        "",
    ]
    for system in sorted({t["system"] for t in table}):
        lines += [f"## {system}", ""]
        lines += [
            "| N train | variant | seeds | energy (meV/atom) | forces (meV/A) | stress (GPa) | "
            "forces vs baseline |",
            "|---|---|---|---|---|---|---|",
        ]
        base = {
            t["n_train"]: t for t in table if t["system"] == system and t["variant"] == "baseline"
        }
        for t in (t for t in table if t["system"] == system):
            cells = [str(t["n_train"]), t["variant"], str(t["seeds"])]
            for metric in METRICS:
                m = t.get(metric)
                cells.append(f"{m['mean']:.3g} [{m['min']:.3g}, {m['max']:.3g}]" if m else "")
            b = base.get(t["n_train"], {}).get("forces")
            f = t.get("forces")
            gain = f"{100 * (f['mean'] / b['mean'] - 1):+.1f} %" if b and f else ""
            cells.append(gain if t["variant"] != "baseline" else "")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(table: list[dict], out_dir: Path) -> list[Path]:
    """One log-log PNG per system: test force and energy MAE against N (mean, min-max bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for system in sorted({t["system"] for t in table}):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for ax, metric in zip(axes, ("forces", "energy_per_atom"), strict=True):
            for variant in VARIANTS:
                pts = [t for t in table if t["system"] == system and t["variant"] == variant
                       and metric in t]  # fmt: skip
                if not pts:
                    continue
                n = [t["n_train"] for t in pts]
                mean = np.array([t[metric]["mean"] for t in pts])
                lo = mean - np.array([t[metric]["min"] for t in pts])
                hi = np.array([t[metric]["max"] for t in pts]) - mean
                ax.errorbar(n, mean, yerr=[lo, hi], marker="o", capsize=3, label=variant)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("training structures")
            ax.set_ylabel(f"test {metric} MAE ({METRICS[metric]})")
            ax.grid(True, which="both", alpha=0.3)
        axes[0].legend()
        fig.suptitle(f"{system}: test error against training-set size")
        fig.tight_layout()
        path = out_dir / f"{system}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command-line entry (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--systems", nargs="+", default=["si", "ethanol"])
    w.add_argument("--sizes", nargs="+", type=int, default=[60, 120])
    r = sub.add_parser("report")
    r.add_argument("--out-dir", type=Path, default=ROOT / "results" / "datasize")
    args = p.parse_args(argv)
    if args.cmd == "write":
        for system in args.systems:
            write_subsets(system, args.sizes)
            print(f"{system}: {len(write_configs(system, args.sizes))} configs")
        return 0
    from pansim.files import write_json_atomic, write_text_atomic

    rows = collect()
    table = aggregate(rows)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out_dir / "report.md", markdown(table))
    write_json_atomic(args.out_dir / "report.json", {"runs": rows, "table": table})
    plot(table, args.out_dir)
    print(markdown(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
