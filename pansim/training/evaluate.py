"""Batched predictions and error metrics (MAE, RMSE) of a model on labelled samples.

Units of the reported metrics: energy per atom in meV/atom, forces in meV/A,
stress in GPa.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ase.data import chemical_symbols
from ase.units import GPa

from pansim.training.data import Sample, batch_to_tensors

#: order of the entries of an error-sum vector (see :func:`error_sums`)
SUM_KEYS = ("e_abs", "e_sq", "e_n", "f_abs", "f_sq", "f_n", "s_abs", "s_sq", "s_n")


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """Floating dtype of a model's parameters."""
    return next(p.dtype for p in model.parameters() if p.is_floating_point())


def forward(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], training: bool, stress: bool
) -> dict[str, torch.Tensor]:
    """Call a model of the pansim contract with forces (and stress if asked)."""
    with torch.enable_grad():
        return model(batch, training=training, compute_force=True, compute_stress=stress)


def wants_stress(samples: Sequence[Sample]) -> bool:
    """True when any sample carries a stress label."""
    return any(s.stress is not None for s in samples)


def predict(
    model: torch.nn.Module,
    samples: Sequence[Sample],
    batch_size: int = 16,
    device: str | torch.device = "cpu",
) -> list[dict[str, Any]]:
    """Energy (eV), forces [n, 3] (eV/A) and stress [3, 3] (eV/A^3 or None) per sample."""
    dtype = model_dtype(model)
    out = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        batch = batch_to_tensors(chunk, dtype, device)
        pred = forward(model, batch, training=False, stress=wants_stress(chunk))
        out.extend(_split(pred, batch, chunk))
    return out


def _split(pred, batch, chunk) -> list[dict[str, Any]]:
    energy = pred["energy"].detach().cpu().numpy()
    forces = pred["forces"].detach().cpu().numpy()
    stress = pred.get("stress")
    stress = None if stress is None else stress.detach().cpu().numpy()
    ptr = batch["ptr"].cpu().numpy()
    return [
        {
            "energy": float(energy[g]),
            "forces": forces[ptr[g] : ptr[g + 1]],
            "stress": None if stress is None or s.stress is None else stress[g],
        }
        for g, s in enumerate(chunk)
    ]


def error_sums(pred: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sums of absolute and squared errors and their counts, in :data:`SUM_KEYS` order.

    Energies per atom (eV/atom), force and stress components (eV/A, eV/A^3); a
    vector that can be summed over batches and processes.
    """
    e = ((pred["energy"] - batch["ref_energy"]) / batch["n_atoms"]).detach()
    f = (pred["forces"] - batch["ref_forces"]).detach()
    mask = batch["stress_mask"].bool()
    if pred.get("stress") is not None and bool(mask.any()):
        s = (pred["stress"].detach() - batch["ref_stress"])[mask]
    else:
        s = e.new_zeros((0,))
    values = [
        *(e.abs().sum(), (e**2).sum(), e.new_tensor(float(e.numel()))),
        *(f.abs().sum(), (f**2).sum(), f.new_tensor(float(f.numel()))),
        *(s.abs().sum(), (s**2).sum(), s.new_tensor(float(s.numel()))),
    ]
    return torch.stack(values)


def metrics_from_sums(sums: torch.Tensor) -> dict[str, float | None]:
    """MAE/RMSE in meV/atom, meV/A and GPa from an (all-reduced) error-sum vector."""
    d = dict(zip(SUM_KEYS, sums.tolist(), strict=True))
    out: dict[str, float | None] = {}
    for tag, prefix, scale in (
        ("energy", "e", 1e3),
        ("forces", "f", 1e3),
        ("stress", "s", 1 / GPa),
    ):
        n = d[f"{prefix}_n"]
        out[f"{tag}_mae"] = scale * d[f"{prefix}_abs"] / n if n else None
        out[f"{tag}_rmse"] = scale * float(np.sqrt(d[f"{prefix}_sq"] / n)) if n else None
    return out


def _mae_rmse(errors: np.ndarray, scale: float) -> dict[str, float | None]:
    if errors.size == 0:
        return {"mae": None, "rmse": None}
    return {
        "mae": float(scale * np.mean(np.abs(errors))),
        "rmse": float(scale * np.sqrt(np.mean(errors**2))),
    }


def error_arrays(samples: Sequence[Sample], preds: Sequence[dict]) -> dict[str, np.ndarray]:
    """Flat error arrays: energy per atom (eV/atom), force and stress components."""
    e = np.array(
        [(p["energy"] - s.energy) / s.n_atoms for s, p in zip(samples, preds, strict=True)]
    )
    f = np.concatenate([(p["forces"] - s.forces) for s, p in zip(samples, preds, strict=True)])
    labelled = [(s, p) for s, p in zip(samples, preds, strict=True) if s.stress is not None]
    st = np.array([(p["stress"] - s.stress).ravel() for s, p in labelled]).reshape(-1)
    return {"energy": e, "forces": f, "stress": st}


def metrics(samples: Sequence[Sample], preds: Sequence[dict]) -> dict[str, Any]:
    """Error table of predictions against labels.

    Returns
    -------
    dict
        ``energy_per_atom`` (meV/atom), ``forces`` (meV/A), ``stress`` (GPa),
        each ``{"mae", "rmse"}`` (None where unlabelled); ``forces_per_element``
        symbol -> ``{"mae", "rmse"}`` (meV/A); counts ``n_structures``,
        ``n_atoms``, ``n_stress``.
    """
    err = error_arrays(samples, preds)
    numbers = np.concatenate([s.numbers for s in samples])
    per_element = {
        chemical_symbols[z]: _mae_rmse(err["forces"][numbers == z], 1e3)
        for z in sorted(set(numbers.tolist()))
    }
    return {
        "energy_per_atom": _mae_rmse(err["energy"], 1e3),
        "forces": _mae_rmse(err["forces"], 1e3),
        "stress": _mae_rmse(err["stress"], 1 / GPa),
        "forces_per_element": per_element,
        "n_structures": len(samples),
        "n_atoms": int(numbers.size),
        "n_stress": int(sum(s.stress is not None for s in samples)),
    }
