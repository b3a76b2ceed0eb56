"""DFT reference properties of the molecules (docs/spec.md section 2.2): recipe and point store.

The builder is :mod:`workflows.molecule_reference` (``pansim molref ethanol``), which
runs the validation workflows on the stored DFT points; it computes, with PySCF RKS PBE/def2-SVP
(``conv_tol`` 1e-10, grid level 3, no density fitting: the labelling settings
and the labelling code, :mod:`pansim.data.workers.pyscf_worker`, run in-process):

1. **Start geometry**: the molecule's sampling start geometry relaxed with
   GFN2-xTB (tblite, fmax 1e-3 eV/A), stored once in ``points/start.json``.
2. **Vibrations** -> ``reference/vibrations.json``: DFT relaxation (ASE BFGS,
   fmax ``RELAX_FMAX``, at most ``RELAX_STEPS``), then central differences of the
   DFT forces (``DISPLACEMENT_A``, 6N single points) analysed by
   :func:`workflows.vibrations.vibrations`, the same code that analyses the
   models, so that model and reference frequencies differ only by the forces.
   The integration grid (no grid response) leaves a net force of a few meV/A and
   a net torque; both are removed from every force before use (exact forces have
   neither), as the undisplaced forces are subtracted for the crystal phonons.
3. **Repulsion** -> ``reference/repulsion.json``: at the relaxed geometry, the
   shortest X-H bond and the shortest bond between heavy atoms are compressed to
   ``FRACTIONS`` of their length by moving the smaller fragment on one side of
   the bond rigidly along it (no relaxation); energies relative to the
   uncompressed molecule, the force on the moved fragment along the bond
   (positive = repulsive), and the full forces.

Resumable: every finished single point is one JSON record,
``reference/points/<hash>.json``, written atomically and named by the sha256
of the complete job (structure and every setting). The optimiser is
deterministic, so a rerun walks the same path, finds every finished point on
disk and computes only the missing ones; an interrupted run loses at most the
point in flight. A failed SCF is recorded as a failed point (``--retry-failed``
reruns it): fatal during relaxation and Hessian, a gap in the repulsion curve.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from pansim.data import systems
from pansim.data.labelers import LabelError, atoms_to_dict, dict_to_atoms, job_hash
from pansim.data.manifest import write_json_atomic

#: molecules with a reference recipe (the molecules of :data:`pansim.data.systems.SYSTEMS`)
MOLECULES = tuple(n for n, s in systems.SYSTEMS.items() if s.kind == "molecule")
DISPLACEMENT_A = 0.01
RELAX_FMAX = 5e-4
RELAX_STEPS = 100
XTB_FMAX = 1e-3
FRACTIONS = (0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 1.00)
BOND_MULT = 1.2

Evaluate = Callable[[dict], dict]


def reference_dir(molecule: str, root: str | Path | None = None) -> Path:
    """``data/<molecule>/reference`` (:meth:`pansim.data.systems.System.reference_dir`)."""
    return systems.reference_dir(molecule, root)


def pyscf_single_point(job: dict) -> dict:
    """Run one PySCF job in this process with the labelling worker's code; never raises."""
    from pansim.data.workers.pyscf_worker import run

    try:
        return run(job)
    except Exception as exc:  # noqa: BLE001 - a failed SCF is a recorded failure
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


# --------------------------------------------------------------------------- point store
class PointStore:
    """Content-addressed single points: ``points/<sha256[:16]>.json``, one record per job.

    Parameters
    ----------
    directory : Path
        Where the records live.
    evaluate : callable
        ``evaluate(job) -> result`` (``{"ok", "energy" eV, "forces" eV/A [n, 3], ...}``).
    make_job : callable
        ``make_job(atoms) -> job``, the complete input (structure and every setting).
    retry_failed : bool
        Run again the jobs recorded as failed.
    """

    def __init__(
        self,
        directory: Path,
        evaluate: Evaluate,
        make_job: Callable[[Atoms], dict],
        retry_failed: bool = False,
        log: Callable[[str], None] | None = None,
    ):
        self.dir, self.evaluate, self.make_job = Path(directory), evaluate, make_job
        self.retry_failed, self.log = retry_failed, log or (lambda _msg: None)
        self.computed = self.reused = 0
        self.used: dict[tuple[str, str], float] = {}

    def result(self, atoms: Atoms, tag: str) -> dict:
        """The result of ``atoms``' job: from its record, or computed and recorded now."""
        job = self.make_job(atoms)
        key = job_hash(job)
        path = self.dir / f"{key[:16]}.json"
        if path.exists():
            record = json.loads(path.read_text())
            if record["hash"] == key and (record["result"].get("ok") or not self.retry_failed):
                self.reused += 1
                return self._use(key, tag, record["result"])
        t0 = time.perf_counter()
        result = self.evaluate(job)
        dt = time.perf_counter() - t0
        self.computed += 1
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        record = {"hash": key, "tag": tag, "finished": stamp, "job": job, "result": result}
        write_json_atomic(path, record)
        status = "ok" if result.get("ok") else f"FAILED {result.get('error', '')[:200]}"
        self.log(f"[{stamp}] {tag} {key[:16]} {dt:.1f} s {status}")
        return self._use(key, tag, result)

    def _use(self, key: str, tag: str, result: dict) -> dict:
        self.used[(tag.split()[0], key)] = float(result.get("seconds", 0.0))
        return result

    def stats(self, stage: str = "") -> dict[str, Any]:
        """Distinct points used by ``stage`` (first word of the tags; all when ``""``) and cost.

        ``dft_seconds`` sums the single-point times stored in the records, so it is the
        same on every rerun; ``computed``/``reused`` count this run's requests (all stages).
        """
        used = {k: sec for (st, k), sec in self.used.items() if stage in ("", st)}.values()
        return {
            "points": len(used),
            "dft_seconds": sum(used),
            "computed_this_run": self.computed,
            "reused_this_run": self.reused,
        }


def remove_rigid_body_forces(forces: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Forces ``[n, 3]`` (eV/A) without their net force and net torque (about the centroid).

    Exact forces have neither; PySCF's grid (no grid response) leaves a few meV/A of
    net force, on which an optimiser would drift and rotate the molecule forever.
    """
    from pansim.structures import rigid_body_basis

    f = np.asarray(forces, float).ravel()
    basis = rigid_body_basis(np.asarray(positions, float), np.ones(len(positions)))
    return (f - basis @ (basis.T @ f)).reshape(-1, 3)


class StoreCalculator(Calculator):
    """ASE face of a :class:`PointStore`: energy and forces; failed points raise LabelError.

    ``batch_evaluate(structures)`` returns the per-structure results, so that
    :func:`workflows.vibrations.vibrations` sends its displaced structures here.
    Unless ``keep_rigid_body`` the net force and torque are removed from the
    forces (:func:`remove_rigid_body_forces`); records keep the raw forces.
    """

    implemented_properties = ("energy", "forces")

    def __init__(
        self, store: PointStore, tag: str = "point", keep_rigid_body: bool = False, **kwargs
    ):
        super().__init__(**kwargs)
        self.store, self.tag, self.keep_rigid_body = store, tag, keep_rigid_body

    def _get(self, atoms: Atoms) -> dict:
        res = self.store.result(atoms, self.tag)
        if not res.get("ok"):
            raise LabelError(f"{self.tag}: single point failed: {res.get('error')}")
        forces = np.asarray(res["forces"], float)
        if not self.keep_rigid_body:
            forces = remove_rigid_body_forces(forces, atoms.positions)
        return {"energy": float(res["energy"]), "forces": forces}

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Energy (eV) and forces (eV/A) of ``atoms`` from the store."""
        super().calculate(atoms, properties, system_changes)
        res = self._get(self.atoms)
        self.results = {**res, "free_energy": res["energy"]}

    def batch_evaluate(self, structures: list[Atoms]) -> list[dict]:
        """Energy and forces of each structure, in order."""
        return [self._get(a) for a in structures]


# --------------------------------------------------------------------------- geometry
def xtb_start(molecule: str) -> Atoms:
    """The molecule's sampling start geometry relaxed with GFN2-xTB (fmax ``XTB_FMAX``)."""
    from ase.optimize import BFGS
    from tblite.ase import TBLite

    atoms = systems.get_system(molecule).initial_geometry()
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    BFGS(atoms, logfile=None).run(fmax=XTB_FMAX, steps=500)
    return Atoms(atoms.numbers, atoms.positions.copy())


def start_geometry(molecule: str, out: Path, start: Atoms | None = None) -> Atoms:
    """The stored start geometry (``points/start.json``); written on first use."""
    path = out / "points" / "start.json"
    if path.exists():
        return dict_to_atoms(json.loads(path.read_text())["atoms"])
    route = "given" if start is not None else "GFN2-xTB (tblite) relaxation of the sampling start"
    atoms = start.copy() if start is not None else xtb_start(molecule)
    atoms = Atoms(atoms.numbers, atoms.positions)
    write_json_atomic(path, {"molecule": molecule, "route": route, "atoms": atoms_to_dict(atoms)})
    return atoms


def bonds(atoms: Atoms, mult: float = BOND_MULT) -> list[tuple[int, int, float]]:
    """Covalent bonds ``(i, j, length A)``, ``i < j``: distance below ``mult`` x covalent radii."""
    from ase.data import covalent_radii

    radii = covalent_radii[atoms.numbers]
    d = atoms.get_all_distances()
    return [
        (i, j, float(d[i, j]))
        for i in range(len(atoms))
        for j in range(i + 1, len(atoms))
        if d[i, j] < mult * (radii[i] + radii[j])
    ]


def fragment(atoms: Atoms, i: int, j: int, mult: float = BOND_MULT) -> list[int]:
    """Atoms on ``j``'s side of bond i-j (``[j]`` alone when the bond is in a ring)."""
    graph: dict[int, set[int]] = {k: set() for k in range(len(atoms))}
    for a, b, _ in bonds(atoms, mult):
        if {a, b} != {i, j}:
            graph[a].add(b)
            graph[b].add(a)
    seen, todo = {j}, [j]
    while todo:
        for nb in graph[todo.pop()] - seen:
            seen.add(nb)
            todo.append(nb)
    return [j] if i in seen else sorted(seen)


def scan_bonds(atoms: Atoms) -> list[dict[str, Any]]:
    """The shortest X-H bond and the shortest heavy-atom bond, each with its moved fragment.

    Each entry: ``name`` (e.g. ``O-H``), fixed atom ``i``, moved atom ``j``,
    ``fragment`` (moved rigidly, the smaller side), ``r0_A``.
    """
    sym = atoms.get_chemical_symbols()
    found = bonds(atoms)
    xh = [b for b in found if (sym[b[0]] == "H") != (sym[b[1]] == "H")]
    heavy = [b for b in found if sym[b[0]] != "H" and sym[b[1]] != "H"]
    out = []
    for candidates in (xh, heavy):
        if not candidates:
            continue
        i, j, r0 = min(candidates, key=lambda b: b[2])
        if sym[j] != "H" and (
            sym[i] == "H" or len(fragment(atoms, j, i)) < len(fragment(atoms, i, j))
        ):
            i, j = j, i
        out.append(
            {
                "name": f"{sym[i]}-{sym[j]}",
                "i": i,
                "j": j,
                "fragment": fragment(atoms, i, j),
                "r0_A": r0,
            }
        )
    return out


def compress_bond(atoms: Atoms, bond: dict[str, Any], fraction: float) -> Atoms:
    """Copy of ``atoms`` with ``bond``'s fragment moved rigidly so that r_ij = fraction * r0."""
    work = Atoms(atoms.numbers, atoms.positions.copy(), cell=atoms.cell, pbc=atoms.pbc)
    vec = work.positions[bond["j"]] - work.positions[bond["i"]]
    r0 = float(np.linalg.norm(vec))
    work.positions[bond["fragment"]] -= (1.0 - fraction) * r0 * vec / r0
    return work


def bond_force(forces: np.ndarray, atoms: Atoms, bond: dict[str, Any]) -> float:
    """Total force on the moved fragment along the bond (eV/A, positive = repulsive)."""
    vec = atoms.positions[bond["j"]] - atoms.positions[bond["i"]]
    return float(np.asarray(forces)[bond["fragment"]].sum(axis=0) @ (vec / np.linalg.norm(vec)))


#: ``evaluate(structures) -> [(energy eV, forces [n, 3] eV/A) or None (a failed point), ...]``
BondEvaluate = Callable[[list[Atoms]], list[tuple[float, Any] | None]]


def bond_scan(
    geometry: Atoms, bond: dict[str, Any], evaluate: BondEvaluate, fractions=FRACTIONS
) -> dict[str, Any]:
    """One compressed-bond scan: the DFT reference's and the models' (one analysis).

    ``bond``'s fragment is moved rigidly (:func:`compress_bond`) to each of
    ``fractions`` of its length; ``evaluate`` gives energy and forces of each
    structure (stored DFT points, or a model). Returns ``fractions``, ``r_A``,
    ``energy_eV`` (relative to the largest fraction, the uncompressed molecule),
    ``energy_abs_eV``, ``force_eV_per_A`` (:func:`bond_force`) and
    ``forces_eV_per_A``; a failed point is None in each.
    """
    fractions = list(fractions)
    structures = [compress_bond(geometry, bond, f) for f in fractions]
    results = evaluate(structures)
    energies = [None if r is None else float(r[0]) for r in results]
    forces = [None if r is None else np.asarray(r[1], dtype=float) for r in results]
    e_ref = energies[int(np.argmax(fractions))]
    return {
        "fractions": fractions,
        "r_A": [f * bond["r0_A"] for f in fractions],
        "energy_eV": [None if e is None or e_ref is None else e - e_ref for e in energies],
        "energy_abs_eV": energies,
        "force_eV_per_A": [
            None if f is None else bond_force(f, a, bond)
            for f, a in zip(forces, structures, strict=True)
        ],
        "forces_eV_per_A": [None if f is None else f.tolist() for f in forces],
    }


# --------------------------------------------------------------------------- stages
def load_reference(molecule: str, root: str | Path | None = None) -> dict[str, Any]:
    """Reference blocks found in ``data/<molecule>/reference``: ``vibrations``, ``repulsion``."""
    out = reference_dir(molecule, root)
    return {
        name: json.loads((out / f"{name}.json").read_text())
        for name in ("vibrations", "repulsion")
        if (out / f"{name}.json").is_file()
    }
