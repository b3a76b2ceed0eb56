"""Fixtures: tiny models of every variant (at init and perturbed) and random structures."""

import copy

import pytest
from _tiny_mace import STRUCTURES, tiny_model

from pansim.backbones import VARIANTS
from pansim.testing import perturb_parameters


@pytest.fixture(scope="session")
def init_models():
    """variant -> model at initialisation."""
    return {v: tiny_model(v) for v in VARIANTS}


@pytest.fixture(scope="session")
def trained_models(init_models):
    """variant -> model with every parameter moved away from its initial value.

    Zero-initialised PAN/PGS layers become active, as after training.
    """
    return {
        v: perturb_parameters(copy.deepcopy(m), scale=0.2, seed=1) for v, m in init_models.items()
    }


@pytest.fixture(params=sorted(STRUCTURES))
def structure(request):
    """One random structure per boundary condition (periodic, open, mixed)."""
    return STRUCTURES[request.param]()
