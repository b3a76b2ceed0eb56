"""Tiny float64 MACE models and random structures shared by the adapter tests."""

import torch
from _tiny_models import TINY_HYPERPARAMETERS, build_tiny

from pansim.testing import random_atoms

R_MAX = 4.0
TINY = {
    **TINY_HYPERPARAMETERS,
    "atomic_energies": [-1.5, -2.0],
    "atomic_inter_shift": 0.1,
    "atomic_inter_scale": 1.3,
}


def tiny_model(variant: str, seed: int = 0) -> torch.nn.Module:
    """A float64 tiny model of ``variant`` for elements Si, O."""
    return build_tiny(variant=variant, elements=["Si", "O"], r_max=R_MAX, seed=seed, **TINY)


STRUCTURES = {
    "bulk": lambda: random_atoms("Si3O2", pbc=True, seed=2, volume_per_atom=14.0),
    "cluster": lambda: random_atoms("Si3O2", pbc=False, seed=3, volume_per_atom=10.0),
    "slab": lambda: random_atoms("Si2O2", pbc=(True, True, False), seed=4, volume_per_atom=12.0),
}
