"""Exploration: candidate structures from the committee's MD and from targeted distortions.

Each candidate carries ``info["route"]`` (``md``, ``compress``, ``contact``,
``vacancy``) and ``info["route_params"]`` (JSON) so its sampling route is kept
with its label, and the committee's disagreement (:func:`score`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

#: the exploration routes, the values of a candidate's ``info["route"]``
ROUTES = ("md", "compress", "contact", "vacancy")


def base_cell(cfg: dict[str, Any]) -> Atoms:
    """The unstrained reference cell of the exploration (before any distortion)."""
    ex = cfg["explore"]
    if ex["structure"] is not None:
        from ase.io import read

        atoms = read(ex["structure"])
    elif ex["bulk"] is not None:
        from ase.build import bulk

        atoms = bulk(**ex["bulk"])
    else:
        from pansim.data.systems import get_system

        atoms = get_system(cfg["system"]).conventional()
    return atoms.repeat(tuple(int(n) for n in ex["supercell"]))


def _tag(atoms: Atoms, route: str, **params: Any) -> Atoms:
    assert route in ROUTES, route
    atoms.info["route"] = route
    atoms.info["route_params"] = json.dumps(params, sort_keys=True)
    return atoms


def compressed(base: Atoms, rng: np.random.Generator, volumes, per_volume: int, rattle: float):
    """Cells scaled to each volume fraction of ``base`` (isotropic), rattled."""
    out = []
    for v in volumes:
        for k in range(int(per_volume)):
            a = base.copy()
            a.set_cell(a.cell * float(v) ** (1 / 3), scale_atoms=True)
            a.positions += rng.normal(0.0, rattle, a.positions.shape)
            out.append(_tag(a, "compress", volume_fraction=float(v), rattle=rattle, k=k))
    return out


def contacts(base: Atoms, rng: np.random.Generator, n: int, fraction) -> list[Atoms]:
    """One atom pushed toward its nearest neighbour to a fraction of their distance."""
    out = []
    lo, hi = float(fraction[0]), float(fraction[1])
    for k in range(int(n)):
        a = base.copy()
        a.positions += rng.normal(0.0, 0.02, a.positions.shape)
        i = int(rng.integers(len(a)))
        d = a.get_distances(i, range(len(a)), mic=True, vector=True)
        r = np.linalg.norm(d, axis=1)
        r[i] = np.inf
        j = int(np.argmin(r))
        f = rng.uniform(lo, hi)
        a.positions[i] += d[j] * (1.0 - f)  # moves i along the bond: new distance f * r_ij
        out.append(_tag(a, "contact", atom=i, neighbour=j, fraction=round(float(f), 4), k=k))
    return out


def vacancies(
    base: Atoms, rng: np.random.Generator, n: int, rattle: float, system: str = ""
) -> list[Atoms]:
    """Vacancy cells: a random site removed, the rest rattled.

    For an ionic system the site and its nearest unlike neighbour go together (a neutral
    Schottky pair, :func:`pansim.data.sampling.vacancy_sites`), as in the data sampler.
    """
    from pansim.data.sampling import vacancy_sites

    out = []
    for k in range(int(n)):
        a = base.copy()
        site = int(rng.integers(len(a)))
        del a[sorted(vacancy_sites(a, site, system), reverse=True)]
        a.positions += rng.normal(0.0, rattle, a.positions.shape)
        out.append(_tag(a, "vacancy", site=site, rattle=rattle, k=k))
    return out


def md_frames(base: Atoms, calc: Any, run: dict[str, Any], seed: int, outdir: Path) -> list[Atoms]:
    """Frames of one committee MD run (``workflows.md.run_md``; resumable in ``outdir``)."""
    from ase.io import read

    from workflows.md import run_md

    a = base.copy()
    scale = float(run.get("volume_scale", 1.0))
    a.set_cell(a.cell * scale ** (1 / 3), scale_atoms=True)
    pressure = run.get("pressure_GPa")
    ensemble = run.get("ensemble", "npt" if pressure is not None else "langevin")
    every = int(run.get("sample_every", 10))
    options = {
        "ensemble": ensemble,
        "temperature_K": float(run["temperature_K"]),
        "steps": int(run.get("steps", 100)),
        "timestep_fs": float(run.get("timestep_fs", 1.0)),
        "traj_every": every,
        "checkpoint_every": every,
        "seed": seed,
    }
    if pressure is not None:
        options["pressure_GPa"] = float(pressure)
    res = run_md(a, calc, outdir=outdir, **options)
    frames = read(str(outdir / "md.traj"), ":")[1:]  # frame 0 is the start
    params = {k: run[k] for k in sorted(run)}
    return [_tag(f, "md", **params, frame=k, md_status=res.status) for k, f in enumerate(frames)]


def explore(cfg: dict[str, Any], calc: Any, round_: int, outdir: Path) -> list[Atoms]:
    """Every candidate of one round (seeded by ``seed`` and the round: fresh each round)."""
    ex, seed = cfg["explore"], int(cfg["seed"]) * 1000 + round_
    rng = np.random.default_rng(seed)
    base = base_cell(cfg)
    comp = ex["compress"]
    cands = compressed(base, rng, comp["volumes"], comp["per_volume"], comp["rattle"])
    cands += contacts(base, rng, ex["contact"]["n"], ex["contact"]["fraction"])
    cands += vacancies(base, rng, ex["vacancy"]["n"], ex["vacancy"]["rattle"], cfg["system"])
    for k, run in enumerate(ex["md"]):
        cands += md_frames(base, calc, run, seed + 7919 * k, outdir / f"md-{k}")
    for a in cands:
        a.calc = None
        a.info["round"] = round_
    return cands


def score(calc: Any, candidates: list[Atoms]) -> None:
    """Store the committee disagreement of each candidate in its ``info``/``arrays``.

    ``info["forces_std_max"]`` (eV/A), ``info["energy_std"]`` (eV),
    ``arrays["forces_std"]`` [n_atoms] (eV/A); see :mod:`pansim.committee`.
    """
    results = calc.batch_evaluate(candidates, ("energy", "forces"), batch_size=8)
    for a, r in zip(candidates, results, strict=True):
        a.info["forces_std_max"] = float(r["forces_std_max"])
        a.info["energy_std"] = float(r["energy_std"])
        a.arrays["forces_std"] = np.asarray(r["forces_std"])
