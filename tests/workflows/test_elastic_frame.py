"""Elastic constants do not depend on how the crystal is written (issue 25).

A primitive cell as ASE writes and reads it through a CIF file (``a`` along x)
and the conventional cubic cell must give the same C, in the standard frame,
to 1 %. Before the fix the CIF cell of Ag gave C11/C12/C44 of about 161/76/31
GPa against 126/87/54 from the conventional cell (EMT).
"""

import warnings

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read, write

from workflows.elastic import elastic_constants

CRYSTALS = {
    "Ag": ("Ag", "fcc", 4.09),
    "Si": ("Si", "diamond", 5.47),
    "LiF": ("LiF", "rocksalt", 4.07),
}


def via_cif(atoms, tmp_path):
    path = tmp_path / "cell.cif"
    write(path, atoms)
    return read(path)


def assert_same_c(a, b, rel=0.01):
    a, b = np.array(a.C), np.array(b.C)
    np.testing.assert_allclose(a, b, atol=rel * np.abs(b).max())


def _calc(name):
    if name == "Ag":
        return EMT()
    from pansim import PANCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PANCalculator(name.lower(), keep_memory=False)


@pytest.fixture(scope="module")
def ag_conventional():
    return elastic_constants(bulk(*CRYSTALS["Ag"], cubic=True), EMT(), fmax=1e-3, n_strains=2)


def test_ag_primitive_cif_agrees_with_conventional(ag_conventional, tmp_path):
    primitive = via_cif(bulk(*CRYSTALS["Ag"]), tmp_path)
    assert abs(primitive.cell[0, 1]) < 1e-9 and abs(primitive.cell[0, 2]) < 1e-9  # a along x
    result = elastic_constants(primitive, EMT(), fmax=1e-3, n_strains=2)
    assert_same_c(result, ag_conventional)
    assert result.frame["spacegroup"] == "Fm-3m (225)"
    # the input frame differs: the rotation did the work
    c_in = np.array(result.C_input_frame)
    assert abs(c_in[3, 3] - np.array(ag_conventional.C)[3, 3]) > 0.1 * c_in[3, 3]


def test_ag_randomly_rotated_conventional_cell_agrees(ag_conventional):
    atoms = bulk(*CRYSTALS["Ag"], cubic=True)
    atoms.rotate(37.0, (1, 2, 3), rotate_cell=True)
    atoms.rotate(-71.0, (0.3, -1, 0.2), rotate_cell=True)
    result = elastic_constants(atoms, EMT(), fmax=1e-3, n_strains=2)
    assert_same_c(result, ag_conventional)
    rotation = np.array(result.frame["rotation"])
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-8)


def test_input_frame_is_kept_on_request(ag_conventional, tmp_path):
    primitive = via_cif(bulk(*CRYSTALS["Ag"]), tmp_path)
    result = elastic_constants(primitive, EMT(), fmax=1e-3, n_strains=2, frame="input")
    assert result.frame["name"] == "input"
    np.testing.assert_allclose(result.C, result.C_input_frame)
    with pytest.raises(ValueError, match="frame must be 'standard' or 'input'"):
        elastic_constants(primitive, EMT(), frame="ieee")


@pytest.mark.parametrize("name", ["Si", "LiF"])
def test_clamped_ion_constants_of_shipped_models_agree_across_settings(name, tmp_path):
    """Fast form (no relaxation, clamped ions): the frame alone is under test."""
    calc = _calc(name)
    kw = dict(relax_ions=False, relax_cell_first=False, n_strains=2)
    conventional = elastic_constants(bulk(*CRYSTALS[name], cubic=True), calc, **kw)
    primitive = elastic_constants(via_cif(bulk(*CRYSTALS[name]), tmp_path), calc, **kw)
    assert_same_c(primitive, conventional)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["Si", "LiF"])
def test_relaxed_ion_constants_of_shipped_models_agree_across_settings(name, tmp_path):
    calc = _calc(name)
    conventional = elastic_constants(bulk(*CRYSTALS[name], cubic=True), calc, fmax=1e-3)
    primitive = elastic_constants(via_cif(bulk(*CRYSTALS[name]), tmp_path), calc, fmax=1e-3)
    assert_same_c(primitive, conventional)
