"""Guards of an MD output folder and of a running MD: fingerprint, lock, close contacts, RDF range.

- **Fingerprint** (:func:`fingerprint`, :func:`check_run_folder`): ``OUT/inputs.json``
  holds a sha256 of everything that decides the trajectory (structure, model
  file hash, ensemble, timestep, temperatures, thermostat and barostat settings,
  seed, sampling). A restart in a folder made with other inputs is refused with a
  message listing what differs; ``restart=False`` (CLI ``--restart-fresh``) starts over.
  ``steps`` is not part of it: continuing a run to more steps is what restarts are for.
- **Lock** (:func:`folder_lock`): an ``flock`` on ``OUT/.lock`` held for the whole
  run, so two processes never write one folder; the kernel drops it when a
  process dies, so a killed run never leaves a stale lock.
- **Close contacts** (:func:`closest_pair`): the MD loop stops when two atoms come
  closer than ``MDConfig.min_distance_A``.
- **RDF range** (:func:`rdf_range`): at most half the shortest perpendicular width
  of a periodic cell (beyond it g(r) counts the same neighbour twice).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from pansim.files import write_text_atomic

#: MDConfig fields that decide the trajectory (a restart must keep them)
FINGERPRINT_FIELDS = (
    "ensemble",
    "timestep_fs",
    "temperature_K",
    "init_temperature_K",
    "friction_per_fs",
    "tdamp_fs",
    "pressure_GPa",
    "pdamp_fs",
    "seed",
    "sample_every",
    "traj_every",
)


class RunFolderError(ValueError):
    """An MD output folder that cannot be used for this run (other inputs, or in use)."""


def fingerprint_inputs(atoms: Atoms, model: dict[str, str], config: dict[str, Any]) -> dict:
    """The inputs that decide a trajectory, JSON-ready (see :data:`FINGERPRINT_FIELDS`)."""
    return {
        "structure": {
            "numbers": [int(z) for z in atoms.numbers],
            "positions_A": np.round(atoms.positions, 10).tolist(),
            "cell_A": np.round(atoms.cell.array, 10).tolist(),
            "pbc": [bool(p) for p in atoms.pbc],
        },
        "model": {k: model.get(k, "") for k in ("model_name", "model_sha256", "dtype")},
        "config": {k: config[k] for k in FINGERPRINT_FIELDS if k in config},
    }


def fingerprint(inputs: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of :func:`fingerprint_inputs`."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human list of what changed between two fingerprint inputs."""
    out = []
    if old.get("structure") != new.get("structure"):
        out.append("structure")
    for block in ("model", "config"):
        a, b = old.get(block, {}), new.get(block, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append(f"{key} {a.get(key)!r} -> {b.get(key)!r}")
    return out


def check_run_folder(outdir: Path, inputs: dict[str, Any], restart: bool) -> None:
    """Refuse to reuse ``outdir`` when its run was made with other inputs; record ours.

    With ``restart=False`` the folder's previous run is discarded (its checkpoint
    removed, the fingerprint replaced). A checkpoint without ``inputs.json``
    (written before fingerprints existed) is continued as before.
    """
    record = outdir / "inputs.json"
    checkpoint = outdir / "checkpoint.json"
    new = {"fingerprint": fingerprint(inputs), "inputs": inputs}
    if restart and record.exists():
        try:
            old = json.loads(record.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise RunFolderError(f"{record} is unreadable ({err}); use --restart-fresh") from None
        if old.get("fingerprint") != new["fingerprint"]:
            changed = "; ".join(_differences(old.get("inputs", {}), inputs)) or "inputs"
            raise RunFolderError(
                f"{outdir} holds an MD run made with other inputs ({changed}): "
                "use another --out, or --restart-fresh to discard that run"
            )
    if not restart:
        checkpoint.unlink(missing_ok=True)
    write_text_atomic(record, json.dumps(new, indent=1) + "\n")


@contextlib.contextmanager
def folder_lock(outdir: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``outdir/.lock``; :class:`RunFolderError` if taken."""
    outdir.mkdir(parents=True, exist_ok=True)
    with open(outdir / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderError(
                f"{outdir} is in use by another MD run (lock {outdir / '.lock'})"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def closest_pair(atoms: Atoms, cutoff: float) -> float | None:
    """The smallest interatomic distance below ``cutoff`` (A, periodic images), or None."""
    from ase.neighborlist import neighbor_list

    if cutoff <= 0 or len(atoms) < 2 and not atoms.pbc.any():
        return None
    d = neighbor_list("d", atoms, cutoff, self_interaction=False)
    return float(d.min()) if len(d) else None


def perpendicular_widths(atoms: Atoms) -> np.ndarray:
    """Distances (A) between opposite faces of the cell, one per cell vector."""
    cell = atoms.cell.array
    volume = abs(np.linalg.det(cell))
    areas = [np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)]
    return np.array([volume / a if a > 0 else np.inf for a in areas])


def rdf_range(atoms: Atoms, rmax: float) -> tuple[float, str]:
    """``rmax`` capped at half the shortest periodic perpendicular width; a warning if capped."""
    if not atoms.pbc.any() or atoms.cell.rank < 3:
        return rmax, ""
    widths = perpendicular_widths(atoms)[atoms.pbc]
    limit = 0.5 * float(widths.min())
    if rmax <= limit:
        return rmax, ""
    return limit, (
        f"RDF range capped at {limit:.3f} A (half the shortest perpendicular cell width, "
        f"{2 * limit:.3f} A) instead of {rmax:g} A: beyond it the same neighbour is counted "
        "twice; use a larger supercell for a longer range"
    )
