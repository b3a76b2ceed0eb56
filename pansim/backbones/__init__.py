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

State dict names
----------------
``model.state_dict()`` holds the names a model file stores (:mod:`pansim.model_io`).
An adapter may nest its modules under other paths than those names (the MACE
adapter keeps mace's names and the model files' names while its PAN / PGS
adapters nest mace's blocks, see :mod:`pansim.backbones.mace`). Code that names
or orders parameters for anything that outlives the process (optimizer and EMA
state in checkpoints, frozen parameters, calibration reports) goes by the state
dict: :func:`state_dict_parameters`, :func:`state_dict_owners`.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from pansim._compat import quiet_library_noise

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
    with quiet_library_noise():  # e3nn scripts its generated code on every build
        return builder(
            variant=variant, elements=elements, r_max=r_max, seed=seed, **hyperparameters
        )


def state_dict_parameters(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """(name, parameter) of ``model`` under the names and in the order of its state dict.

    Optimizer and EMA state index parameters by position, so training builds
    them from this list: a module tree that nests modules differently (while
    the state dict keeps its names and order) resumes old checkpoints unchanged.
    A parameter that appears under several names is listed once, under the first.
    """
    seen: set[int] = set()
    pairs = []
    for name, value in model.state_dict(keep_vars=True).items():
        if isinstance(value, torch.nn.Parameter) and id(value) not in seen:
            seen.add(id(value))
            pairs.append((name, value))
    return pairs


def state_dict_owners(model: torch.nn.Module) -> dict[str, tuple[torch.nn.Module, str]]:
    """The module that holds each state dict entry of ``model``, and its name there.

    Returns
    -------
    dict
        ``{state dict name: (module, local name)}``, e.g. ``{"edge_mixer.fb_scale":
        (the mixer, "fb_scale")}`` whatever the mixer's module path.
    """
    owners = {}
    for module in model.modules():
        for local, tensor in [*module._parameters.items(), *module._buffers.items()]:
            if tensor is not None:
                owners.setdefault(id(tensor), (module, local))
    state = model.state_dict(keep_vars=True)
    return {name: owners[id(value)] for name, value in state.items() if id(value) in owners}
