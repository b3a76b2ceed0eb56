"""Backbone adapters and the one public model builder.

Model contract (every adapter returns exactly this; see also ``pansim.graph``)
-------------------------------------------------------------------------------
A pansim model is a ``torch.nn.Module`` with attributes

- ``atomic_numbers``: ``torch.Tensor`` [n_elements] (int64), the element order of
  the one-hot ``node_attrs``;
- ``r_max``: ``torch.Tensor`` scalar, cutoff radius in Angstrom;
- ``pansim_config``: ``dict`` (JSON-serialisable), the exact keyword arguments of
  :func:`build_model` that rebuild it;

and ``forward(data, training=False, compute_force=True, compute_stress=False)``
taking ``data: Dict[str, Tensor]`` (MACE's graph keys):

==============  ======================  ==========================================
key             shape                   meaning
==============  ======================  ==========================================
positions       [n_atoms, 3]            Cartesian positions, Angstrom
node_attrs      [n_atoms, n_elements]   one-hot species in ``atomic_numbers`` order
edge_index      [2, n_edges]            (sender, receiver); ``vector =``
                                        ``pos[recv] - pos[send] + shifts``
shifts          [n_edges, 3]            Cartesian periodic shifts, Angstrom
unit_shifts     [n_edges, 3]            integer shifts (as float) in cell units
cell            [n_graphs * 3, 3]       cell rows per graph (zeros for no cell)
batch           [n_atoms]               graph index of every atom (int64)
ptr             [n_graphs + 1]          CSR offsets of graphs (int64)
head            [n_graphs]              zeros (int64), MACE's head index
==============  ======================  ==========================================

returning a dict with ``energy`` [n_graphs] (eV), ``node_energy`` [n_atoms] (eV),
``forces`` [n_atoms, 3] (eV/A, or None if not asked) and ``stress``
[n_graphs, 3, 3] (eV/A^3, ASE sign convention, or None if not asked).
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

#: the ablation variants, always built from one code path (defined once, torch-free)
from pansim.variants import VARIANTS

#: backbone name -> "module:builder function"
BACKBONES: dict[str, str] = {
    "mace": "pansim.backbones.mace:build_mace",
}


def build_model(
    backbone: str = "mace",
    variant: str = "pan+pgs",
    *,
    elements: list[str] | list[int],
    r_max: float = 5.0,
    seed: int = 0,
    **hyperparameters: Any,
) -> torch.nn.Module:
    """Build a pansim model (see the module docstring for its contract).

    With the same ``seed`` and hyperparameters every variant gets identical
    backbone weights, and at initialisation all variants give the same
    energies and forces (docs/spec.md §1.3 invariant 3).
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; available: {sorted(BACKBONES)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; available: {list(VARIANTS)}")
    module_name, func_name = BACKBONES[backbone].split(":")
    builder = getattr(importlib.import_module(module_name), func_name)
    return builder(variant=variant, elements=elements, r_max=r_max, seed=seed, **hyperparameters)
