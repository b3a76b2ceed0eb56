"""k-mesh rule (SPEC 2.1) and the deterministic crystal sampler."""

import numpy as np
import pytest
from ase.build import bulk, make_supercell

from pansim.data.labelers import LabelError, crystal_job
from pansim.data.sampling import ROUTES, crystal_config, families, sample_crystal
from pansim.data.settings import CRYSTALS, kmesh


@pytest.mark.parametrize(
    "atoms, system, expected",
    [
        (bulk("Ag", "fcc", 4.16, cubic=True), "ag", (6, 6, 6)),
        (make_supercell(bulk("Ag", "fcc", 4.16), 2 * np.eye(3)), "ag", (4, 4, 4)),
        (bulk("Si", "diamond", 5.47, cubic=True), "si", (4, 4, 4)),
        (bulk("LiF", "rocksalt", 4.07, cubic=True), "lif", (4, 4, 4)),
    ],
)
def test_kmesh_rule_gives_the_spec_meshes(atoms, system, expected):
    assert kmesh(atoms.cell, CRYSTALS[system].dk) == expected


def test_mesh_is_the_family_mesh_for_every_variant():
    for system in CRYSTALS:
        meshes = {f.name: list(f.kpts) for f in families(system)}
        for atoms in sample_crystal(system, 20):
            assert atoms.info["kpts"] == meshes[atoms.info["family"]]


def test_sampler_is_deterministic_and_prefix_stable():
    a = sample_crystal("lif", 25)
    b = sample_crystal("lif", 5, start=20)
    assert [x.info["config_hash"] for x in a[20:]] == [x.info["config_hash"] for x in b]
    assert crystal_config("lif", 3).info["config_hash"] == a[3].info["config_hash"]
    assert crystal_config("lif", 3, seed=1).info["config_hash"] != a[3].info["config_hash"]


def test_first_block_covers_every_route_with_4_to_16_atoms():
    for system in CRYSTALS:
        confs = sample_crystal(system, 20)
        assert {c.info["route"] for c in confs} == set(ROUTES[system])
        assert all(4 <= len(c) <= 16 for c in confs)


def test_lif_vacancy_keeps_stoichiometry():
    vac = [c for c in sample_crystal("lif", 40) if c.info["route"] == "vacancy"]
    assert vac and all(
        c.get_chemical_symbols().count("Li") == c.get_chemical_symbols().count("F") for c in vac
    )


def test_element_not_covered_by_settings_is_refused():
    with pytest.raises(LabelError, match="not covered"):
        crystal_job(bulk("Cu", "fcc", 3.6), "ag", (4, 4, 4))
