"""The weighted energy / forces / stress loss, written as sums over a batch.

Every term is a sum of squared errors divided by a count of the *global*
batch, so a batch split across processes gives exactly the loss (and, summed,
the gradient) of the whole batch on one process:

``L = w_E * sum_g ((E_g - E_g^ref) / N_g)^2 / n_graphs
    + w_F * sum_i |F_i - F_i^ref|^2 / (3 n_atoms)
    + w_S * sum_g m_g |S_g - S_g^ref|^2 / (9 n_stress)``

with ``m_g`` = 1 where the stress is labelled (``n_stress`` = sum of ``m_g``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pansim.training.data import Sample


def squared_errors(
    pred: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Sums of squared errors of one (local) batch.

    Returns
    -------
    dict
        ``energy`` (eV^2/atom^2, per-atom energies), ``forces`` ((eV/A)^2),
        ``stress`` ((eV/A^3)^2, labelled structures only); scalars.
    """
    e_err = (pred["energy"] - batch["ref_energy"]) / batch["n_atoms"]
    out = {
        "energy": (e_err**2).sum(),
        "forces": ((pred["forces"] - batch["ref_forces"]) ** 2).sum(),
    }
    if pred.get("stress") is not None:
        s_err = ((pred["stress"] - batch["ref_stress"]) ** 2).sum(dim=(1, 2))
        labelled = batch["stress_mask"] > 0
        out["stress"] = torch.where(labelled, s_err, torch.zeros_like(s_err)).sum()
    else:
        out["stress"] = torch.zeros((), dtype=e_err.dtype, device=e_err.device)
    return out


def global_counts(samples: Sequence[Sample]) -> dict[str, int]:
    """Normalising counts of a global batch: graphs, force components, stress components."""
    return {
        "energy": len(samples),
        "forces": 3 * sum(s.n_atoms for s in samples),
        "stress": 9 * sum(s.stress is not None for s in samples),
    }


def weighted_loss(
    sse: dict[str, torch.Tensor], counts: dict[str, int], weights: dict[str, float]
) -> torch.Tensor:
    """Combine squared-error sums with global counts and weights (see module docstring)."""
    total = sse["energy"].new_zeros(())
    for key, weight in weights.items():
        if counts[key] > 0 and weight != 0.0:
            total = total + weight * sse[key] / counts[key]
    return total
