"""Shared fixtures: tiny float64 pansim models and a one-thread torch setting."""

import copy

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_model_factory():
    """``make(variant="pan+pgs", elements=("Si", "O", "H"), r_max=4.0, seed=1, perturb=True)``.

    Returns a fresh float64 model of the pansim contract (a copy of a cached
    build, so callers may change it). ``perturb`` randomises the PAN/PGS
    parameters, which start as identities, so that they are exercised.
    """
    from _tiny_models import build_tiny

    from pansim.testing import perturb_parameters

    cache: dict[tuple, torch.nn.Module] = {}

    def make(variant="pan+pgs", elements=("Si", "O", "H"), r_max=4.0, seed=1, perturb=True):
        key = (variant, tuple(elements), float(r_max), seed, perturb)
        if key not in cache:
            model = build_tiny(
                variant=variant,
                elements=list(elements),
                r_max=r_max,
                seed=seed,
                atomic_energies=[-1.5 - 0.5 * k for k in range(len(elements))],
            )
            if perturb:
                perturb_parameters(model, seed=seed + 2)
            cache[key] = model
        return copy.deepcopy(cache[key])

    return make


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a test module on one torch intra-op thread (restored afterwards).

    Tiny models on a busy 2-core machine run about 20x faster this way, since
    the threads of a second would mostly wait for each other.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
