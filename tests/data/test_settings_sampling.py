"""k-mesh rule (docs/spec.md §2.1) and the deterministic crystal sampler."""

import json

import numpy as np
import pytest
from ase.build import bulk, make_supercell

from pansim.data.labelers import LabelError, crystal_job
from pansim.data.sampling import (
    CONTACT_FRACTION,
    ROUTES,
    SAMPLER_VERSION,
    crystal_config,
    families,
    sample_crystal,
)
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


def test_the_grown_lif_data_is_stoichiometric_and_lists_what_it_left_out():
    """The two single-ion vacancy labels of LiF round 1 are out of data/lif/grown, listed."""
    from pathlib import Path

    from ase.io import read

    from pansim.data.sampling import off_stoichiometry

    folder = Path(__file__).resolve().parents[2] / "data" / "lif" / "grown"
    for split in ("train", "val", "test", "test_active"):
        assert all(
            off_stoichiometry(a, "lif") is None for a in read(folder / f"{split}.extxyz", ":")
        )
    record = json.loads((folder / "manifest.json").read_text())
    assert [(e["split"], e["route"]) for e in record["left_out"]] == [
        ("train", "vacancy"),
        ("val", "vacancy"),
    ]
    assert off_stoichiometry(bulk("Si", "diamond", 5.43, cubic=True)[1:], "si") is None


def test_element_not_covered_by_settings_is_refused():
    with pytest.raises(LabelError, match="not covered"):
        crystal_job(bulk("Cu", "fcc", 3.6), "ag", (4, 4, 4))


@pytest.mark.parametrize("system", ["si", "ag"])
def test_liquid_configurations_have_physical_closest_approaches(system):
    from pansim.data.sampling import LIQUID_FLOOR, _nn_distance, min_distance

    dnn = _nn_distance(families(system)[0].atoms)
    liquid = [c for c in sample_crystal(system, 60) if c.info["route"] == "liquid"]
    assert len(liquid) >= 10
    for c in liquid:
        assert min_distance(c) >= 0.85 * dnn, (c.info["config_id"], min_distance(c) / dnn)
        assert min_distance(c) >= LIQUID_FLOOR * dnn - 1e-9
        params = json.loads(c.info["route_params"])
        assert params["rattle_A"] > 0  # the thermal rattle was applied
    # not a lattice: distances spread over the first shell
    d = liquid[0].get_all_distances(mic=True)
    assert np.ptp(d[(d > 0) & (d < 1.3 * dnn)]) > 0.1


@pytest.mark.parametrize("system", ["si", "ag"])
def test_liquid_and_contact_routes_are_deterministic(system):
    routes = [crystal_config(system, k) for k in range(40)]
    picked = [c for c in routes if c.info["route"] in ("liquid", "contact")]
    again = [crystal_config(system, c.info["index"]) for c in picked]
    assert [c.info["config_hash"] for c in picked] == [c.info["config_hash"] for c in again]
    other = [crystal_config(system, c.info["index"], seed=1) for c in picked]
    assert not {c.info["config_hash"] for c in picked} & {c.info["config_hash"] for c in other}
    assert all(c.info["sampler_version"] == SAMPLER_VERSION for c in picked)


def test_contact_distances_stay_in_the_contact_range():
    from pansim.data.sampling import _nn_distance

    lo, hi = CONTACT_FRACTION
    for system in CRYSTALS:
        dnn = _nn_distance(families(system)[0].atoms)
        contacts = [c for c in sample_crystal(system, 60) if c.info["route"] == "contact"]
        assert contacts
        for c in contacts:
            params = json.loads(c.info["route_params"])
            assert lo <= params["contact_fraction"] <= hi
            r = c.get_distance(*params["contact_pair"], mic=True) / dnn  # +-1.5 % strain, rattle
            assert 0.98 * lo - 0.02 < r < 1.02 * hi + 0.02, (c.info["config_id"], r)


def test_soft_sphere_relax_removes_every_overlap():
    from pansim.data.sampling import _pair_vectors, soft_sphere_relax

    rng = np.random.default_rng(3)
    cell = make_supercell(bulk("Ag", "fcc", 4.3), 2 * np.eye(3)).cell.array  # skewed cell
    pos = rng.random((8, 3)) @ cell
    relaxed, reached = soft_sphere_relax(pos, cell, 2.6)
    assert reached >= 2.6 - 1e-3
    assert _pair_vectors(relaxed, cell, 2.6 - 1e-3)[0].size == 0
