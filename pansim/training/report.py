"""Evaluation reports: resolve a model, evaluate a file, print a table, draw parity plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase.units import GPa

from pansim._io import atomic_path, write_text_atomic
from pansim.training.data import load_dataset
from pansim.training.evaluate import metrics, predict

UNITS = {"energy_per_atom": "meV/atom", "forces": "meV/A", "stress": "GPa"}


def evaluate_file(
    model: torch.nn.Module,
    path: str | Path,
    keys: tuple[str, str, str] = ("REF_energy", "REF_forces", "REF_stress"),
    batch_size: int = 16,
    device: str | torch.device = "cpu",
) -> tuple[dict[str, Any], list, list]:
    """Metrics of ``model`` on a labelled file, with its samples and predictions."""
    numbers = [int(z) for z in model.atomic_numbers]
    samples = load_dataset(path, keys, numbers, float(model.r_max))
    model = model.to(device)
    preds = predict(model, samples, batch_size=batch_size, device=device)
    return metrics(samples, preds), samples, preds


def format_table(result: dict[str, Any]) -> str:
    """Plain-text table of MAE / RMSE, forces per element below."""
    lines = [f"{'quantity':<22}{'MAE':>12}{'RMSE':>12}  unit"]
    for key, unit in UNITS.items():
        lines.append(_row(key, result[key], unit))
    for symbol, value in result["forces_per_element"].items():
        lines.append(_row(f"forces {symbol}", value, "meV/A"))
    lines.append(
        f"({result['n_structures']} structures, {result['n_atoms']} atoms, "
        f"{result['n_stress']} with stress)"
    )
    return "\n".join(lines)


def _row(name: str, value: dict[str, float | None], unit: str) -> str:
    if value["mae"] is None:
        return f"{name:<22}{'-':>12}{'-':>12}  (no labels)"
    return f"{name:<22}{value['mae']:>12.3f}{value['rmse']:>12.3f}  {unit}"


def parity_data(samples, preds) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """Reference and predicted values for each parity plot: (ref, pred, axis label)."""
    e_ref = np.array([s.energy / s.n_atoms for s in samples])
    e_pred = np.array([p["energy"] / s.n_atoms for s, p in zip(samples, preds, strict=True)])
    out = {"energy": (e_ref, e_pred, "energy (eV/atom)")}
    f_ref = np.concatenate([s.forces.ravel() for s in samples])
    f_pred = np.concatenate([p["forces"].ravel() for p in preds])
    out["forces"] = (f_ref, f_pred, "force components (eV/A)")
    pairs = [
        (s.stress, p["stress"]) for s, p in zip(samples, preds, strict=True) if s.stress is not None
    ]
    if pairs:
        ref = np.concatenate([a.ravel() for a, _ in pairs]) / GPa
        pred = np.concatenate([b.ravel() for _, b in pairs]) / GPa
        out["stress"] = (ref, pred, "stress components (GPa)")
    return out


def parity_plots(samples, preds, folder: str | Path) -> list[Path]:
    """One PNG per quantity (``parity_energy.png``, ...) drawn with the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    paths = []
    for name, (ref, pred, label) in parity_data(samples, preds).items():
        fig = Figure(figsize=(4, 4))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.scatter(ref, pred, s=4, alpha=0.6)
        low, high = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([low, high], [low, high], "k--", lw=0.8)
        ax.set(xlabel=f"reference {label}", ylabel=f"model {label}", title=name)
        fig.tight_layout()
        path = Path(folder) / f"parity_{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
        paths.append(path)
    return paths


def write_report(result: dict[str, Any], samples, preds, folder: str | Path) -> list[Path]:
    """Write ``metrics.json`` and the parity plots into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "metrics.json", json.dumps(result, indent=1))
    return [folder / "metrics.json", *parity_plots(samples, preds, folder)]
