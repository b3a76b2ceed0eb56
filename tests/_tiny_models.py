"""Tiny float64 MACE models, shared by the root fixtures and the adapter tests."""

import torch

from pansim.backbones import build_model
from pansim.model_io import default_dtype

#: hyperparameters of a model that evaluates a few atoms in milliseconds
TINY_HYPERPARAMETERS = {
    "num_channels": 8,
    "max_L": 1,
    "max_ell": 2,
    "correlation": 2,
    "num_interactions": 2,
    "num_bessel": 6,
    "radial_MLP": [16, 16],
    "MLP_irreps": "8x0e",
    "avg_num_neighbors": 6.0,
    "c_max": 6.0,
}


def build_tiny(**kwargs) -> torch.nn.Module:
    """``build_model(**TINY_HYPERPARAMETERS, **kwargs)`` built in float64 (kwargs win)."""
    with default_dtype(torch.float64):
        return build_model(**{**TINY_HYPERPARAMETERS, **kwargs})
