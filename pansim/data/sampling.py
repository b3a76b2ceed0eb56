"""Deterministic configuration sampling for the crystal reference sets (docs/spec.md §2.1).

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
- ``contact``: one atom pushed toward its nearest neighbour to 0.70-0.92 of the
  bond length (short-range repulsion; see :func:`_route_contact` for the range),
  plus a small rattle;
- ``liquid`` (Si, Ag): random placement at liquid density, relaxed with a purely
  repulsive soft-sphere penalty until no pair is closer than about 0.9 d_nn, then a
  thermal rattle with a floor of 0.88 d_nn: liquid-like structures with physical
  closest approaches and forces (see :func:`_route_liquid`).

``SAMPLER_VERSION`` is stored in every configuration's provenance
(``sampler_version``; entries without it were drawn by version 1). Version 2
changed only the ``contact`` (was 0.62-0.88 d_nn) and ``liquid`` (was plain random
placement with a 0.78 d_nn hard core) routes; the other routes draw the same
structures as version 1. Finished labels of version 1 stay valid data: their
provenance says how they were drawn. ``pansim data sample SYSTEM --refresh-pending``
redraws the configurations that are not labelled yet.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import make_supercell

from pansim.data.settings import kmesh
from pansim.data.systems import CRYSTALS, crystal_cell

#: version of the crystal sampler; recorded as ``sampler_version`` in the provenance
SAMPLER_VERSION = 2

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
    if system == "si":
        cells = {"si-cubic8": crystal_cell(system, cubic=True)}
    elif system == "lif":
        cells = {"lif-cubic8": crystal_cell(system, cubic=True)}
    elif system == "ag":
        cells = {
            "ag-cubic4": crystal_cell(system, cubic=True),
            "ag-prim222": make_supercell(crystal_cell(system), 2 * np.eye(3)),
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


#: ionic systems whose cells must keep the formula's ratio: removing one ion would leave a
#: charged, open-shell cell that the rest of the data (and a local potential with fixed
#: per-element energies) cannot describe; their vacancies are neutral Schottky pairs
STOICHIOMETRIC = {"lif": {"Li": 1, "F": 1}}


def vacancy_sites(atoms, site: int, system: str) -> list[int]:
    """Atoms to remove for a vacancy at ``site`` (indices of ``atoms``).

    The site itself and, for an ionic system (:data:`STOICHIOMETRIC`), its nearest
    unlike neighbour: a neutral Schottky pair.
    """
    removed = [int(site)]
    if system in STOICHIOMETRIC:
        d = atoms.get_distances(site, range(len(atoms)), mic=True)
        other = [j for j in np.argsort(d) if atoms.numbers[j] != atoms.numbers[site]]
        removed.append(int(other[0]))
    return removed


def off_stoichiometry(atoms, system: str) -> str | None:
    """Why a cell breaks ``system``'s stoichiometry (:data:`STOICHIOMETRIC`), else None."""
    ratio = STOICHIOMETRIC.get(system)
    if ratio is None:
        return None
    symbols = atoms.get_chemical_symbols()
    counts = {el: symbols.count(el) for el in ratio}
    units = {el: counts[el] / n for el, n in ratio.items()}
    if len(set(units.values())) == 1 and len(symbols) == sum(counts.values()):
        return None
    return (
        f"{atoms.get_chemical_formula()} is not {''.join(ratio)}-stoichiometric: a charged, "
        "open-shell cell (an ionic vacancy must be a neutral pair)"
    )


def _route_vacancy(ref, rng, system):
    atoms, info = _route_thermal(ref, rng, system)
    k = int(rng.integers(len(atoms)))
    removed = vacancy_sites(atoms, k, system)
    del atoms[sorted(removed, reverse=True)]
    return atoms, {**info, "vacancy_sites": removed}


#: contact distance as a fraction of the nearest-neighbour bond, (low, high)
CONTACT_FRACTION = (0.70, 0.92)


def _route_contact(ref, rng, system):
    """One atom pushed toward its nearest neighbour to ``CONTACT_FRACTION`` of the bond.

    0.70-0.92 d_nn covers what the validation workflows visit plus a margin: the
    0.80 V0 point of the reference EOS is 0.93 d_nn, NVE/liquid MD closest approaches
    are about 0.85-0.9 d_nn, and the repulsion workflow's contact scan
    (:mod:`workflows.repulsion`, 0.60-1.0 d_nn) is covered from 0.70 up; its few
    shortest points are deliberately an extrapolation (the softening check). Below
    0.70 the labels are dominated by one pair force (Si at 0.65 d_nn, 1.52 A: force
    rms 12 eV/A over the cell), which would swamp the force loss.
    """
    atoms = _strained(ref, rng, rng.uniform(-0.04, 0.04), 0.01)
    d = atoms.get_all_distances(mic=True, vector=True)
    i = int(rng.integers(len(atoms)))
    r = np.linalg.norm(d[i], axis=1)
    r[i] = np.inf
    j = int(np.argmin(r))
    frac = rng.uniform(*CONTACT_FRACTION)
    atoms.positions[i] += d[i, j] * (1 - frac)
    atoms.positions += rng.normal(0, 0.01, atoms.positions.shape)
    return atoms, {"contact_pair": [i, j], "contact_fraction": round(frac, 4)}


#: liquid route, in units of the crystal's nearest-neighbour distance d_nn
LIQUID_PLACE_CORE = 0.75  # hard core of the random sequential placement
LIQUID_DIAMETER = {"si": (0.92, 1.00), "ag": (0.90, 0.94)}  # soft-sphere diameter, uniform
LIQUID_FLOOR = 0.88  # no pair closer than this after the thermal rattle
LIQUID_RATTLE_A = 0.05  # thermal rattle (A, Gaussian sigma per direction)
LIQUID_DVOL = {"si": -0.10, "ag": 0.08}  # liquid density vs the crystal (Si densifies)


def _images(cell: np.ndarray) -> np.ndarray:
    """Lattice translations ``[27, 3]`` (A) of the cell and its 26 neighbours."""
    shifts = np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)])
    return shifts @ cell


def _pair_vectors(pos: np.ndarray, cell: np.ndarray, cutoff: float):
    """Pairs ``i < j`` closer than ``cutoff`` (A), every periodic image, with ``r_j - r_i``.

    Exact while ``cutoff`` is below the cell's smallest plane spacing (the 27
    nearest images then hold every such pair). Returns ``(i, j, vec [n, 3], r [n])``.
    """
    frac = np.linalg.solve(cell.T, pos.T).T
    dfrac = frac[None, :, :] - frac[:, None, :]
    dfrac -= np.round(dfrac)
    vec = (dfrac @ cell)[:, :, None, :] + _images(cell)[None, None]
    r = np.linalg.norm(vec, axis=-1)
    n = len(pos)
    upper = np.triu(np.ones((n, n), bool), 1)[:, :, None]
    i, j, k = np.nonzero(upper & (r < cutoff))
    return i, j, vec[i, j, k], r[i, j, k]


def min_distance(atoms: Atoms) -> float:
    """Shortest interatomic distance (A), periodic images included."""
    d = atoms.get_all_distances(mic=True)
    return float(d[d > 1e-8].min()) if len(atoms) > 1 else float("inf")


def soft_sphere_relax(
    pos: np.ndarray, cell: np.ndarray, diameter: float, steps: int = 3000, step: float = 0.15
) -> tuple[np.ndarray, float]:
    """Steepest descent on the harmonic overlap penalty ``sum_(r < d) (d - r)^2 / 2``.

    A purely repulsive soft-sphere potential (zero beyond ``diameter``, A): pairs
    closer than ``diameter`` are pushed apart until none overlaps, others do not
    move. Deterministic. ``pos`` is ``[n, 3]`` (A), ``cell`` ``[3, 3]`` (A);
    returns the relaxed positions and the shortest pair distance reached (A).
    """
    pos = pos.copy()
    for _ in range(steps):
        i, j, vec, r = _pair_vectors(pos, cell, diameter)
        if len(r) == 0 or r.min() >= diameter - 1e-4:
            break
        push = ((diameter - r) / np.maximum(r, 1e-6))[:, None] * vec  # on j, away from i
        force = np.zeros_like(pos)
        np.add.at(force, j, push)
        np.add.at(force, i, -push)
        move = step * force
        big = np.linalg.norm(move, axis=1, keepdims=True)
        pos += move * np.minimum(1.0, 0.1 / np.maximum(big, 1e-12))  # at most 0.1 A a step
    i, j, vec, r = _pair_vectors(pos, cell, diameter)
    return pos, float(r.min()) if len(r) else float(diameter)


def _random_placement(cell: np.ndarray, n: int, core: float, rng) -> np.ndarray:
    """``n`` random positions (A) no two closer than ``core`` (A); restarts when stuck."""
    while True:
        pos = np.empty((0, 3))
        for _ in range(200 * n):
            trial = rng.random(3) @ cell
            both = np.vstack([pos, trial])
            if len(pos) == 0 or _pair_vectors(both, cell, core)[0].size == 0:
                pos = both
                if len(pos) == n:
                    return pos


def _route_liquid(ref, rng, system):
    """Liquid-like configuration: random placement, soft-sphere relaxation, thermal rattle.

    The cell is the family cell at liquid density (``LIQUID_DVOL`` +- 3 %). Atoms are
    placed at random with a hard core of ``LIQUID_PLACE_CORE`` d_nn, then relaxed with
    the purely repulsive penalty of :func:`soft_sphere_relax` until no pair is closer
    than a diameter drawn from ``LIQUID_DIAMETER`` (d_nn), then rattled by
    ``LIQUID_RATTLE_A``; a rattle that brings a pair under ``LIQUID_FLOOR`` d_nn is
    redrawn. Deterministic from ``rng``.

    Why these numbers (measured here; GPAW PBE at 300 eV and a 2x2x2 mesh, which
    reproduces the full-setting force rms of these cells to 0.02 eV/A): version 1's
    plain random placement (0.78 d_nn core) gave Si pairs at 1.82 A (0.77 d_nn),
    1.2-1.5 eV/atom above the crystal and force rms 4-5 eV/A, Ag 0.5-0.6 eV/atom and
    1.9 eV/A. With this route Si (diameter 0.92 -> 1.00 d_nn) gives 0.81 -> 0.53
    eV/atom and 1.8 -> 0.8 eV/A, around the equilibrium liquid near melting (about
    0.7 eV/atom, from the latent heat plus the thermal potential energy, and
    sqrt(kT k_opt) ~ 1.2 eV/A); Ag (0.90-0.94 d_nn; a denser packing jams) gives
    0.17-0.29 eV/atom and 0.5-0.7 eV/A, like the liquid near melting (about 0.28
    eV/atom; EMT liquid MD at 1600 K in the same cells: 0.27 eV/atom, 0.7 eV/A).
    """
    dnn = _nn_distance(ref)
    dvol = LIQUID_DVOL[system] + rng.uniform(-0.03, 0.03)
    atoms = _strained(ref, rng, dvol, 0.0)
    cell = atoms.cell.array
    diameter = rng.uniform(*LIQUID_DIAMETER[system])
    for _ in range(100):
        pos = _random_placement(cell, len(atoms), LIQUID_PLACE_CORE * dnn, rng)
        pos, reached = soft_sphere_relax(pos, cell, diameter * dnn)
        if reached >= (diameter - 0.005) * dnn:  # converged; else a jammed start: redraw
            break
    else:
        raise RuntimeError(f"{system}: no unjammed packing at diameter {diameter:.3f} d_nn")
    rattle = 0.0
    for _ in range(50):
        trial = pos + rng.normal(0, LIQUID_RATTLE_A, pos.shape)
        if _pair_vectors(trial, cell, LIQUID_FLOOR * dnn)[0].size == 0:
            pos, rattle = trial, LIQUID_RATTLE_A
            break
    atoms.positions = pos
    atoms.wrap()
    return atoms, {
        "volume_strain": round(dvol, 5),
        "hard_core_A": round(LIQUID_PLACE_CORE * dnn, 4),
        "soft_sphere_diameter_A": round(diameter * dnn, 4),
        "min_distance_floor_A": round(LIQUID_FLOOR * dnn, 4),
        "rattle_A": rattle,
    }


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
    ``family``, ``kpts``, ``route``, ``seed``, ``index``, the route's parameters,
    ``sampler_version`` and ``config_hash``.
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
        sampler_version=SAMPLER_VERSION,
    )
    atoms.info["config_hash"] = config_hash(atoms)
    return atoms


def sample_crystal(system: str, n: int, seed: int = 0, start: int = 0) -> list[Atoms]:
    """Configurations ``start .. start+n-1`` of ``system`` (see :func:`crystal_config`).

    Any prefix (what a partially finished labelling run has done) covers every
    route, and sampling more later never changes the configurations already drawn.
    """
    return [crystal_config(system, k, seed) for k in range(start, start + n)]
