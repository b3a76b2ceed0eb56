"""Golden values: every shipped model gives the committed numbers, to 1e-10 (float64).

``tests/golden/shipped_models.json`` is written by ``scripts/make_golden.py``
(energy, forces, stress of one fixed structure per system, stored with the
structure). Refactors must leave these numbers alone; a change that is meant
to move them regenerates the file and says why.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

import pansim.pretrained as pre

GOLDEN = json.loads((Path(__file__).parent / "golden" / "shipped_models.json").read_text())
TOL = 1e-10


def test_every_shipped_model_has_golden_values():
    assert sorted(GOLDEN) == pre.list_models()


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_values(name):
    from pansim import PANCalculator

    ref = GOLDEN[name]
    atoms = Atoms(**ref["structure"])
    assert len(atoms) > 1
    atoms.calc = PANCalculator(model=name, default_dtype="float64", keep_memory=False)
    assert abs(atoms.get_potential_energy() - ref["energy"]) < TOL
    forces = np.array(ref["forces"])
    assert np.abs(forces).max() > 1e-3  # the structure is off its minimum: forces pin the model
    np.testing.assert_allclose(atoms.get_forces(), forces, rtol=0, atol=TOL)
    if "stress" in ref:
        np.testing.assert_allclose(atoms.get_stress(), ref["stress"], rtol=0, atol=TOL)
