"""PAN's ``c_max`` from the training data, through nequip's data-statistics hook.

The MACE route sets ``c_max`` to the 99th percentile of the smooth coordination
``c_i = sum_j u(r_ij)`` (species weights 1, the backbone's polynomial envelope
``u``) over all training atoms, floored at 1 (:func:`pansim.training.data.statistics`).
Here the same number comes out of ``nequip-train``'s own statistics pass: use
:func:`PANDataStatisticsManager` as the data module's ``stats_manager`` and
interpolate the result into the model::

    data:
      stats_manager:
        _target_: pansim_nequip.stats.PANDataStatisticsManager
        type_names: ${model_type_names}
        r_max: ${cutoff_radius}
        polynomial_cutoff_p: 6            # the backbone's envelope power
        c_max_percentile: 99.0
    training_module:
      model:
        c_max: ${training_data_stats:c_max}

The envelope is pansim's own :func:`pansim.training.data.polynomial_envelope`
(the formula of nequip's ``PolynomialCutoff``, which PAN sees in the model).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from nequip.data import (
    AtomicDataDict,
    DataStatisticsManager,
    Mean,
    NumNeighbors,
    PerAtomModifier,
    RootMeanSquare,
)
from nequip.nn.utils import with_edge_vectors_
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from pansim.training.data import polynomial_envelope

#: floor of c_max, as in the MACE route (a data set of isolated atoms has c = 0)
C_MAX_FLOOR = 1.0


class SmoothCoordination:
    """nequip data modifier: ``c_i = sum_j u(r_ij)`` [n_nodes] (dimensionless).

    Parameters
    ----------
    r_max : float
        Cutoff radius (Angstrom) of the envelope ``u``; edges beyond it add 0.
    polynomial_cutoff_p : int
        Power ``p`` of the backbone's polynomial envelope (nequip's default: 6).
    """

    type = "node"

    def __init__(self, r_max: float, polynomial_cutoff_p: int = 6) -> None:
        self.r_max = float(r_max)
        self.p = int(polynomial_cutoff_p)

    def __call__(self, data: AtomicDataDict.Type) -> torch.Tensor:
        """Coordination of every node of ``data`` (edge_index row 0: the centre)."""
        data = with_edge_vectors_(dict(data), with_lengths=True)
        lengths = data[AtomicDataDict.EDGE_LENGTH_KEY].detach().cpu().double().numpy().ravel()
        centres = data[AtomicDataDict.EDGE_INDEX_KEY][0].cpu().numpy()
        n_nodes = len(data[AtomicDataDict.POSITIONS_KEY])
        u = polynomial_envelope(lengths, self.r_max, self.p)
        return torch.from_numpy(np.bincount(centres, weights=u, minlength=n_nodes))

    def __str__(self) -> str:
        return "smooth_coordination"


class Percentile(Metric):
    """``max(percentile_q(values), floor)`` over every value seen (numpy's linear rule).

    Parameters
    ----------
    q : float
        Percentile, 0 to 100.
    floor : float
        Lower bound of the result.
    """

    def __init__(self, q: float = 99.0, floor: float = C_MAX_FLOOR, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"percentile must lie in [0, 100], got {q}")
        self.q, self.floor = float(q), float(floor)
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def update(self, data: torch.Tensor) -> None:
        """Keep ``data`` (any shape, flattened)."""
        self.values.append(data.detach().reshape(-1).double())

    def compute(self) -> torch.Tensor:
        """The floored percentile, a float64 scalar (the floor when nothing was seen)."""
        values = dim_zero_cat(self.values) if self.values else torch.zeros(0)
        if values.numel() == 0:
            return torch.tensor(self.floor, dtype=torch.float64)
        value = float(np.percentile(values.cpu().numpy(), self.q))
        return torch.tensor(max(value, self.floor), dtype=torch.float64)

    def __str__(self) -> str:
        return f"p{self.q:g}"


def PANDataStatisticsManager(  # noqa: N802 (a factory in nequip's naming, used as _target_)
    r_max: float,
    polynomial_cutoff_p: int = 6,
    c_max_percentile: float = 99.0,
    dataloader_kwargs: dict[str, Any] | None = None,
    type_names: list[str] | None = None,
) -> DataStatisticsManager:
    """The common data statistics of nequip plus PAN's ``c_max``.

    The statistics of ``nequip.data.CommonDataStatisticsManager`` (``num_neighbors_mean``,
    ``per_type_num_neighbors_mean``, ``per_atom_energy_mean``, ``forces_rms``,
    ``per_type_forces_rms``), same names and definitions, and ``c_max``: the
    ``c_max_percentile`` percentile of :class:`SmoothCoordination` over all training
    atoms, at least :data:`C_MAX_FLOOR`.

    Parameters
    ----------
    r_max : float
        Cutoff radius (Angstrom), the model's ``r_max``.
    polynomial_cutoff_p : int
        The model's polynomial envelope power.
    c_max_percentile : float
        Percentile of the coordinations (pansim's ``c_max_percentile``, default 99).
    dataloader_kwargs, type_names
        As for nequip's ``DataStatisticsManager``.
    """
    metrics = [
        {"name": "num_neighbors_mean", "field": NumNeighbors(), "metric": Mean()},
        {
            "name": "per_type_num_neighbors_mean",
            "field": NumNeighbors(),
            "metric": Mean(),
            "per_type": True,
        },
        {
            "name": "per_atom_energy_mean",
            "field": PerAtomModifier(AtomicDataDict.TOTAL_ENERGY_KEY),
            "metric": Mean(),
        },
        {"name": "forces_rms", "field": AtomicDataDict.FORCE_KEY, "metric": RootMeanSquare()},
        {
            "name": "per_type_forces_rms",
            "field": AtomicDataDict.FORCE_KEY,
            "metric": RootMeanSquare(),
            "per_type": True,
        },
        {
            "name": "c_max",
            "field": SmoothCoordination(r_max, polynomial_cutoff_p),
            "metric": Percentile(c_max_percentile),
        },
    ]
    return DataStatisticsManager(metrics, dataloader_kwargs, type_names)
