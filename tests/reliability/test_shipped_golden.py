"""Every shipped model still gives its golden energy, forces and stress (see golden_shipped.py)."""

import json

import numpy as np
import pytest
from golden_shipped import GOLDEN, evaluate, tensor_sha256

import pansim.pretrained as pre

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
GOLDEN_VALUES = json.loads(GOLDEN.read_text())


def test_every_registered_model_has_golden_values():
    assert sorted(GOLDEN_VALUES) == pre.list_models()


@pytest.mark.parametrize("name", sorted(GOLDEN_VALUES))
def test_shipped_model_weights_are_unchanged(name):
    assert tensor_sha256(name) == GOLDEN_VALUES[name]["tensor_sha256"]


QUICK = ("si", "ethanol")  # evaluated in the default run; every model with -m slow


@pytest.mark.parametrize(
    "name",
    [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in sorted(GOLDEN_VALUES)],
)
def test_shipped_model_reproduces_its_golden_values(name):
    got, want = evaluate(name), GOLDEN_VALUES[name]
    assert got["energy"] == pytest.approx(want["energy"], rel=1e-12, abs=1e-10)
    np.testing.assert_allclose(got["forces"], want["forces"], rtol=1e-10, atol=1e-10)
    if "stress" in want:
        np.testing.assert_allclose(got["stress"], want["stress"], rtol=1e-10, atol=1e-12)
