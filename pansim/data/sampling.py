"""Deterministic configuration sampling for the crystal reference sets (SPEC 2.1).

Each system has a few *supercell families*; a family is one reference cell whose
Monkhorst-Pack mesh (``settings.kmesh`` of the unstrained cell) is kept for every
strained, rattled or defective variant, so a family is one consistent energy surface.

Sampling routes and why:

- ``strain``: isotropic volume change of -10..+10 % combined with random shear up
  to 4 %, small rattle: covers the equation of state (+-6 %) and elastic strains;
- ``thermal``: Gaussian displacements with per-direction width
  ``sigma_300 * sqrt(T / 300 K)`` (harmonic equipartition, sigma_300 from the
  measured Debye-Waller factors: Si 0.055, Ag 0.085, LiF 0.09 A) for T from
  300 K to 0.95 of melting, on a slightly strained cell: phonons, MD;
- ``vacancy``: thermal rattle, then one atom removed (LiF: a neutral Li-F
  Schottky pair, so the cell stays closed-shell and stoichiometric);
- ``contact``: one atom pushed toward its nearest neighbour to 0.62-0.88 of the
  bond length (short-range repulsion check), plus a small rattle;
- ``liquid`` (Si, Ag): random positions at liquid density with a hard-core
  minimum distance of 0.78 d_nn, then a rattle: disordered, liquid-like
  coordination for the liquid RDF check.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import bulk, make_supercell

from pansim.data.settings import CRYSTALS, kmesh

SIGMA_300 = {"si": 0.055, "ag": 0.085, "lif": 0.09}

#: route -> fraction of the configurations of a system
ROUTES = {
    "si": {"strain": 0.25, "thermal": 0.35, "vacancy": 0.1, "contact": 0.1, "liquid": 0.2},
    "ag": {"strain": 0.25, "thermal": 0.35, "vacancy": 0.1, "contact": 0.1, "liquid": 0.2},
    "lif": {"strain": 0.3, "thermal": 0.45, "vacancy": 0.1, "contact": 0.15},
}


@dataclass(frozen=True)
class Family:
    """A supercell family: reference cell + its fixed k mesh."""

    name: str
    atoms: Atoms
    kpts: tuple[int, int, int]


def families(system: str) -> list[Family]:
    """The supercell families of ``system`` with their fixed Monkhorst-Pack meshes."""
    s = CRYSTALS[system]
    a = s.lattice_constant
    if system == "si":
        cells = {"si-cubic8": bulk("Si", "diamond", a, cubic=True)}
    elif system == "lif":
        cells = {"lif-cubic8": bulk("LiF", "rocksalt", a, cubic=True)}
    elif system == "ag":
        prim = bulk("Ag", "fcc", a)
        cells = {
            "ag-cubic4": bulk("Ag", "fcc", a, cubic=True),
            "ag-prim222": make_supercell(prim, 2 * np.eye(3)),
        }
    else:
        raise ValueError(f"unknown crystal system {system!r}; known: {sorted(CRYSTALS)}")
    return [Family(n, c, kmesh(c.cell, s.dk)) for n, c in cells.items()]


def _nn_distance(atoms: Atoms) -> float:
    d = atoms.get_all_distances(mic=True)
    return float(d[d > 1e-6].min())


def _strain_matrix(rng: np.random.Generator, dvol: float, shear: float) -> np.ndarray:
    eps = rng.uniform(-shear, shear, size=(3, 3))
    eps = 0.5 * (eps + eps.T)
    eps -= np.trace(eps) / 3 * np.eye(3)
    return (1 + dvol) ** (1 / 3) * (np.eye(3) + eps)


def _strained(ref: Atoms, rng, dvol: float, shear: float) -> Atoms:
    atoms = ref.copy()
    atoms.set_cell(ref.cell.array @ _strain_matrix(rng, dvol, shear), scale_atoms=True)
    return atoms


def _route_strain(ref, rng, system):
    dvol = rng.uniform(-0.10, 0.10)
    atoms = _strained(ref, rng, dvol, 0.04)
    atoms.positions += rng.normal(0, 0.02, atoms.positions.shape)
    return atoms, {"volume_strain": round(dvol, 5), "shear_max": 0.04, "rattle_A": 0.02}


def _route_thermal(ref, rng, system):
    t = rng.uniform(300.0, 0.95 * CRYSTALS[system].melting_K)
    sigma = SIGMA_300[system] * np.sqrt(t / 300.0)
    atoms = _strained(ref, rng, rng.uniform(-0.03, 0.05), 0.015)
    atoms.positions += rng.normal(0, sigma, atoms.positions.shape)
    return atoms, {"temperature_K": round(t, 1), "rattle_A": round(sigma, 4)}


def _route_vacancy(ref, rng, system):
    atoms, info = _route_thermal(ref, rng, system)
    k = int(rng.integers(len(atoms)))
    removed = [k]
    if system == "lif":  # a neutral Schottky pair keeps the cell closed-shell and stoichiometric
        d = atoms.get_distances(k, range(len(atoms)), mic=True)
        other = [j for j in np.argsort(d) if atoms.numbers[j] != atoms.numbers[k]]
        removed.append(int(other[0]))
    del atoms[sorted(removed, reverse=True)]
    return atoms, {**info, "vacancy_sites": removed}


def _route_contact(ref, rng, system):
    atoms = _strained(ref, rng, rng.uniform(-0.04, 0.04), 0.01)
    d = atoms.get_all_distances(mic=True, vector=True)
    i = int(rng.integers(len(atoms)))
    r = np.linalg.norm(d[i], axis=1)
    r[i] = np.inf
    j = int(np.argmin(r))
    frac = rng.uniform(0.62, 0.88)
    atoms.positions[i] += d[i, j] * (1 - frac)
    atoms.positions += rng.normal(0, 0.01, atoms.positions.shape)
    return atoms, {"contact_pair": [i, j], "contact_fraction": round(frac, 4)}


def _route_liquid(ref, rng, system):
    dnn = _nn_distance(ref)
    dvol = {"si": -0.10, "ag": 0.08}[system] + rng.uniform(-0.03, 0.03)
    atoms = _strained(ref, rng, dvol, 0.0)
    frac = np.empty((0, 3))
    while len(frac) < len(atoms):
        trial = rng.random(3)
        test = Atoms(
            "X" * (len(frac) + 1),
            scaled_positions=np.vstack([frac, trial]),
            cell=atoms.cell,
            pbc=True,
        )
        if (
            len(frac) == 0
            or test.get_distances(len(frac), range(len(frac)), mic=True).min() > 0.78 * dnn
        ):
            frac = np.vstack([frac, trial])
    atoms.set_scaled_positions(frac)
    atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
    return atoms, {"volume_strain": round(dvol, 5), "hard_core_A": round(0.78 * dnn, 4)}


_ROUTE_FUNCS = {
    "strain": _route_strain,
    "thermal": _route_thermal,
    "vacancy": _route_vacancy,
    "contact": _route_contact,
    "liquid": _route_liquid,
}


def config_hash(atoms: Atoms) -> str:
    """sha256 of numbers, positions (1e-8 A), cell and pbc: the content hash of a structure."""
    payload = json.dumps(
        {
            "numbers": atoms.numbers.tolist(),
            "positions": np.round(atoms.positions, 8).tolist(),
            "cell": np.round(atoms.cell.array, 8).tolist(),
            "pbc": atoms.pbc.tolist(),
        }
    )
    return hashlib.sha256(payload.encode()).hexdigest()


BLOCK = 20


def _route_plan(system: str, seed: int, block: int) -> list[str]:
    """Routes of one block of ``BLOCK`` consecutive configurations, stratified by weight."""
    counts = {r: round(f * BLOCK) for r, f in ROUTES[system].items()}
    plan = [r for r, c in counts.items() for _ in range(c)][:BLOCK]
    plan += [max(ROUTES[system], key=ROUTES[system].get)] * (BLOCK - len(plan))
    order = np.random.default_rng([seed, 10**6 + block]).permutation(BLOCK)
    return [plan[i] for i in order]


def crystal_config(system: str, k: int, seed: int = 0) -> Atoms:
    """Configuration number ``k`` of ``system`` for ``seed``: depends on (system, k, seed) only.

    Routes come in blocks of ``BLOCK`` with the weights of ``ROUTES`` (shuffled per
    block); families alternate. ``Atoms.info`` holds ``config_id``, ``system``,
    ``family``, ``kpts``, ``route``, ``seed``, ``index``, the route's parameters and
    ``config_hash``.
    """
    fams = families(system)
    route = _route_plan(system, seed, k // BLOCK)[k % BLOCK]
    fam = fams[k % len(fams)]
    if route == "vacancy":  # the largest cell, so a vacancy cell keeps >= 4 atoms (7 of 8)
        fam = max(fams, key=lambda f: len(f.atoms))
    atoms, params = _ROUTE_FUNCS[route](fam.atoms, np.random.default_rng([seed, k]), system)
    atoms.pbc = True
    atoms.info.update(
        config_id=f"{system}-s{seed}-{k:04d}",
        system=system,
        family=fam.name,
        kpts=list(fam.kpts),
        route=route,
        seed=seed,
        index=k,
        route_params=json.dumps(params),
    )
    atoms.info["config_hash"] = config_hash(atoms)
    return atoms


def sample_crystal(system: str, n: int, seed: int = 0, start: int = 0) -> list[Atoms]:
    """Configurations ``start .. start+n-1`` of ``system`` (see :func:`crystal_config`).

    Any prefix (what a partially finished labelling run has done) covers every
    route, and sampling more later never changes the configurations already drawn.
    """
    return [crystal_config(system, k, seed) for k in range(start, start + n)]
