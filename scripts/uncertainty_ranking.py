#!/usr/bin/env python
r"""How well the committee force disagreement ranks the true force error (issue 24).

Usage (from the repository root; a few minutes on one core)::

    python scripts/uncertainty_ranking.py            # si lif ag ethanol, every variant
    python scripts/uncertainty_ranking.py --systems si --variants pan+pgs

For each system and variant the committee is the three training seeds
``results/training/<system>/<variant>-seed{0,1,2}/best_model.safetensors``
(``PANCalculator(model=[...])``, :mod:`pansim.committee`), evaluated on the
held-back test split ``data/<system>/test.extxyz``. The error is that of the
committee mean (what the calculator returns) against the DFT forces.

- per atom: disagreement ``forces_std`` (rms over members of the force-vector
  deviation) against the error ``|F_mean - F_DFT|``;
- per structure: ``forces_std_max`` against the structure's force RMSE.

Reported: Spearman rank correlation (with a 95 % bootstrap interval, 1000
resamples), and the mean error of the top decile selected by disagreement
divided by the mean error of all (what a random selection gets on average), next
to the same ratio for the oracle top decile (selected by the true error).
Writes ``results/active/uncertainty_ranking.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from ase.io import read
from scipy.stats import spearmanr

from pansim._io import atomic_path, write_json_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = ("si", "lif", "ag", "ethanol")
VARIANTS = ("baseline", "pan", "pgs", "pan+pgs")


def committee_files(system: str, variant: str) -> list[Path]:
    """The seed 0-2 model files of one system and variant."""
    base = ROOT / "results" / "training" / system
    return [base / f"{variant}-seed{k}" / "best_model.safetensors" for k in (0, 1, 2)]


def ranking(disagreement: np.ndarray, error: np.ndarray, rng: np.random.Generator) -> dict:
    """Spearman (with a bootstrap interval) and top-decile error ratios."""
    rho = float(spearmanr(disagreement, error).statistic)
    boot = []
    for _ in range(1000):
        idx = rng.integers(0, len(error), len(error))
        if np.ptp(disagreement[idx]) > 0 and np.ptp(error[idx]) > 0:
            boot.append(spearmanr(disagreement[idx], error[idx]).statistic)
    k = max(1, int(round(0.1 * len(error))))
    top = np.argsort(-disagreement)[:k]
    oracle = np.argsort(-error)[:k]
    mean = float(error.mean())
    return {
        "n": int(len(error)),
        "spearman": rho,
        "spearman_ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
        "mean_error": mean,
        "top_decile_error": float(error[top].mean()),
        "top_decile_ratio": float(error[top].mean() / mean),
        "oracle_decile_ratio": float(error[oracle].mean() / mean),
    }


def evaluate(system: str, variant: str, seed: int = 0, split: str = "test.extxyz") -> dict:
    """Per-atom and per-structure ranking quality of one committee on one labelled file."""
    from pansim.calculator import PANCalculator

    frames = read(ROOT / "data" / system / split, ":")
    calc = PANCalculator(model=[str(f) for f in committee_files(system, variant)])
    t0 = time.time()
    out = calc.batch_evaluate(frames, ("energy", "forces"), batch_size=8)
    atom_std, atom_err, struct_std, struct_err = [], [], [], []
    for atoms, r in zip(frames, out, strict=True):
        err = np.linalg.norm(r["forces"] - atoms.arrays["REF_forces"], axis=1)
        atom_std.append(r["forces_std"])
        atom_err.append(err)
        struct_std.append(r["forces_std_max"])
        struct_err.append(np.sqrt(np.mean(err**2)))
    rng = np.random.default_rng(seed)
    return {
        "system": system,
        "variant": variant,
        "test_file": f"data/{system}/{split}",
        "members": [str(f.relative_to(ROOT)) for f in committee_files(system, variant)],
        "eval_seconds": round(time.time() - t0, 1),
        "per_atom": ranking(np.concatenate(atom_std), np.concatenate(atom_err), rng),
        "per_structure": ranking(np.array(struct_std), np.array(struct_err), rng),
    }


def table(rows: list[dict]) -> str:
    """Markdown table of the rows."""
    lines = [
        "| system | variant | atoms | Spearman per atom [95% CI] | top-10% / mean error (oracle) "
        "per atom | structures | Spearman per structure [95% CI] | top-10% / mean (oracle) "
        "per structure | force error mean (meV/A) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, s = r["per_atom"], r["per_structure"]
        lines.append(
            f"| {r['system']} | {r['variant']} | {a['n']} | {a['spearman']:.2f} "
            f"[{a['spearman_ci95'][0]:.2f}, {a['spearman_ci95'][1]:.2f}] | "
            f"{a['top_decile_ratio']:.2f} ({a['oracle_decile_ratio']:.2f}) | {s['n']} | "
            f"{s['spearman']:.2f} [{s['spearman_ci95'][0]:.2f}, {s['spearman_ci95'][1]:.2f}] | "
            f"{s['top_decile_ratio']:.2f} ({s['oracle_decile_ratio']:.2f}) | "
            f"{1e3 * a['mean_error']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Spearman per atom and per structure, one group of bars per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(dict.fromkeys(r["system"] for r in rows))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    width = 0.8 / len(variants)
    for ax, level in zip(axes, ("per_atom", "per_structure"), strict=True):
        for j, v in enumerate(variants):
            ys, errs, xs = [], [], []
            for i, s in enumerate(systems):
                r = next((r for r in rows if r["system"] == s and r["variant"] == v), None)
                if r is None:
                    continue
                q = r[level]
                xs.append(i + j * width)
                ys.append(q["spearman"])
                errs.append(
                    [q["spearman"] - q["spearman_ci95"][0], q["spearman_ci95"][1] - q["spearman"]]
                )
            ax.bar(xs, ys, width, yerr=np.array(errs).T, label=v, capsize=2)
        ax.set_xticks(np.arange(len(systems)) + 0.4 - width / 2, systems)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(f"Spearman: disagreement vs force error ({level.replace('_', ' ')})")
    axes[0].set_ylabel("Spearman rho")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Evaluate, then write the JSON, Markdown and PNG files."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS))
    p.add_argument(
        "--split", default="test.extxyz", help="labelled file under data/<system>/ to rank on"
    )
    p.add_argument("--out", default=str(ROOT / "results" / "active" / "uncertainty_ranking"))
    args = p.parse_args(argv)
    rows = []
    for system in args.systems:
        for variant in args.variants:
            rows.append(evaluate(system, variant, split=args.split))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    out = Path(args.out)
    meta = {
        "made_by": "scripts/uncertainty_ranking.py",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": rows,
    }
    write_json_atomic(out.with_suffix(".json"), meta, indent=1)
    text = (
        f"# Committee disagreement vs true force error (data/<system>/{args.split})\n\n"
        f"Made by `python scripts/uncertainty_ranking.py` on {meta['date']}. Committee: "
        "seeds 0-2 of each variant; error of the committee mean. Top-10% / mean: mean "
        "error of the 10 % with the largest disagreement over the mean error of all "
        "(a random selection: 1 on average); oracle: the same for the 10 % with the "
        "largest true error.\n\n" + table(rows)
    )
    write_text_atomic(out.with_suffix(".md"), text)
    plot(rows, out.with_suffix(".png"))
    print(f"wrote {out}.{{json,md,png}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
