"""One real single point per code on a tiny input (docs/spec.md §2: the labelling path runs)."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from pansim.data.labelers import crystal_job, molecule_job, run_job

pytestmark = pytest.mark.dft


def test_gpaw_si2_low_cutoff(tmp_path):
    atoms = bulk("Si", "diamond", 5.47)
    atoms.positions[1] += [0.05, 0.0, 0.0]
    job = crystal_job(atoms, "si", (2, 2, 2))
    job["calc"]["ecut"] = 200.0
    res = run_job(job, tmp_path)
    assert res["ok"], res
    assert res["code"] == "gpaw" and -12.5 < res["energy"] < -9.0
    f = np.array(res["forces"])
    np.testing.assert_allclose(f.sum(0), 0.0, atol=0.02)
    assert np.array(res["stress"]).shape == (3, 3)
    assert 0 < res["cpu_seconds"] <= res["seconds"] * 1.5  # the worker's CPU time, recorded


def test_pyscf_h2(tmp_path):
    res = run_job(molecule_job(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])), tmp_path)
    assert res["ok"], res
    assert abs(res["energy"] / 27.211386245988 - (-1.16)) < 0.03  # PBE/def2-SVP H2 ~ -1.16 Ha
    f = np.array(res["forces"])
    np.testing.assert_allclose(f[0], -f[1], atol=1e-6)
    assert res["cpu_seconds"] > 0
