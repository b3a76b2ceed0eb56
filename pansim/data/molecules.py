"""MD17-level molecule sampling (docs/spec.md §2.2): 500 K GFN2-xTB Langevin MD through tblite.

Geometries are built here (nothing can be downloaded): ethanol from
``ase.build.molecule("CH3CH2OH")``, malonaldehyde from hand-written coordinates
of its intramolecularly H-bonded enol form, both pre-relaxed with GFN2-xTB.
The trajectory runs at 500 K (Langevin, 0.5 fs, friction 0.01/fs) after a 2 ps
equilibration, and a frame is kept every ``STRIDE`` steps (50 fs, well past the
C-H, O-H and C-O vibration periods of 11-35 fs), so kept frames are decorrelated
in the fast modes; slow torsions stay correlated over a few frames, which is why
splits go by block. Frames are grouped in contiguous blocks of
``BLOCK`` frames; splits are drawn per block, never per frame.
"""

from __future__ import annotations

import json

import numpy as np
from ase import Atoms, units
from ase.build import molecule

from pansim.data.sampling import config_hash

TEMPERATURE_K = 500.0
TIMESTEP_FS = 0.5
STRIDE = 100
EQUIL_STEPS = 4000
BLOCK = 10

_MALONALDEHYDE = Atoms(
    "OCCCOHHHH",
    positions=[
        [-1.264, 1.180, 0.0],
        [-1.213, -0.063, 0.0],
        [0.000, -0.744, 0.0],
        [1.208, -0.095, 0.0],
        [1.308, 1.207, 0.0],
        [0.371, 1.589, 0.0],
        [-2.155, -0.636, 0.0],
        [0.005, -1.830, 0.0],
        [2.160, -0.632, 0.0],
    ],
)


def initial_geometry(name: str) -> Atoms:
    """Starting geometry (not yet relaxed) of a registered molecule."""
    if name == "ethanol":
        return molecule("CH3CH2OH")
    if name == "malonaldehyde":
        return _MALONALDEHYDE.copy()
    raise KeyError(f"unknown molecule {name!r}")


def _xtb(atoms: Atoms) -> None:
    from tblite.ase import TBLite

    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)


def trajectory(name: str, n_frames: int, seed: int = 0) -> list[Atoms]:
    """``n_frames`` decorrelated 500 K GFN2-xTB MD frames of ``name`` (deterministic)."""
    from ase.md.langevin import Langevin
    from ase.optimize import BFGS

    from pansim._compat import thermalize

    atoms = initial_geometry(name)
    _xtb(atoms)
    BFGS(atoms, logfile=None).run(fmax=0.01, steps=300)
    rng = np.random.default_rng(seed)
    thermalize(atoms, TEMPERATURE_K, rng=rng)
    dyn = Langevin(
        atoms,
        TIMESTEP_FS * units.fs,
        temperature_K=TEMPERATURE_K,
        friction=0.01 / units.fs,
        rng=np.random.RandomState(seed),
    )
    dyn.run(EQUIL_STEPS)
    frames = []
    for _ in range(n_frames):
        dyn.run(STRIDE)
        frames.append(Atoms(atoms.numbers, atoms.positions.copy()))
    return frames


def sample_molecule(name: str, n: int, seed: int = 0, start: int = 0) -> list[Atoms]:
    """Frames ``start .. start+n-1`` of the seed's trajectory with provenance in ``info``."""
    frames = trajectory(name, start + n, seed)[start:]
    out = []
    for k, atoms in enumerate(frames, start=start):
        atoms.info.update(
            config_id=f"{name}-s{seed}-{k:04d}",
            system=name,
            route="md",
            method="GFN2-xTB (tblite)",
            temperature_K=TEMPERATURE_K,
            timestep_fs=TIMESTEP_FS,
            stride_steps=STRIDE,
            equilibration_steps=EQUIL_STEPS,
            seed=seed,
            frame=k,
            block=f"s{seed}-b{k // BLOCK}",
            route_params=json.dumps({"thermostat": "Langevin", "friction_per_fs": 0.01}),
        )
        atoms.info["config_hash"] = config_hash(atoms)
        out.append(atoms)
    return out
