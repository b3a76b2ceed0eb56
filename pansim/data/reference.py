"""DFT reference properties of the crystals (SPEC 2.4), as resumable jobs of the same labeller.

Jobs live in ``data/<system>/reference/jobs.json`` (a :class:`Manifest`) and run
through the same round-robin driver as the datasets. After each finished job
:func:`analyse` fits what is complete and writes ``data/<system>/reference/*.json``:

1. ``eos``: primitive cell, 9 volumes over +-6 % plus 0.80/0.85/0.90 V0 (repulsion),
   one fixed mesh (rule of SPEC 2.1 on the unstrained primitive cell);
   Birch-Murnaghan fit (V0, E0, B0, B0') -> ``eos.json``; the compressed points
   are the short-range repulsion curve -> ``repulsion.json``.
2. Once the EOS is fitted, ``elastic`` jobs are queued: conventional cubic cell at
   V0, +-0.5 % uniaxial strain (C11, C12) and +-0.5 % engineering shear (C44, ions
   relaxed for Si, which has internal strain); Ag uses a 12x12x12 mesh
   (SPEC 2.4), Si and LiF their rule mesh -> ``elastic.json``.
3. Also at V0: ``phonon`` jobs: phonopy finite displacements (0.01 A) on the 2x2x2
   supercell of the primitive cell plus the undisplaced supercell, whose residual
   forces are subtracted; frequencies at Gamma, X, L -> ``phonons.json`` (LiF: TO
   modes only, no non-analytic correction: pansim models are short-ranged).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk

from pansim.data.datasets import data_dir
from pansim.data.labelers import atoms_to_dict, crystal_job, dict_to_atoms, job_hash
from pansim.data.manifest import Manifest, write_json_atomic
from pansim.data.settings import CRYSTALS, kmesh

EV_A3_TO_GPA = 160.21766208
EOS_SCALES = tuple(np.round(np.linspace(0.94, 1.06, 9), 4)) + (0.80, 0.85, 0.90)
STRAIN = 0.005
DISPLACEMENT_A = 0.01
ELASTIC_KPTS = {"ag": (12, 12, 12)}
_STRUCT = {"si": ("Si", "diamond"), "ag": ("Ag", "fcc"), "lif": ("LiF", "rocksalt")}


def jobs_path(system: str, root=None) -> Path:
    """``data/<system>/reference/jobs.json``: the manifest of the reference-property jobs."""
    return data_dir(root) / system / "reference" / "jobs.json"


def _cell(system: str, a: float, cubic: bool) -> Atoms:
    sym, kind = _STRUCT[system]
    return bulk(sym, kind, a, cubic=cubic)


def _add(m: Manifest, key: str, job: dict, prov: dict) -> int:
    return int(m.add(key, job, prov, job_hash(job)))


def queue(system: str, root=None) -> int:
    """Queue the EOS (+ repulsion) jobs of ``system``; :func:`analyse` queues later stages."""
    s = CRYSTALS[system]
    prim = _cell(system, s.lattice_constant, cubic=False)
    kpts = kmesh(prim.cell, s.dk)
    added = 0
    with Manifest.update(jobs_path(system, root), {"system": system, "kind": "reference"}) as m:
        for scale in EOS_SCALES:
            atoms = prim.copy()
            atoms.set_cell(prim.cell * scale ** (1 / 3), scale_atoms=True)
            prov = {"stage": "eos", "volume_scale": float(scale), "kpts": list(kpts)}
            added += _add(m, f"eos-{scale:.4f}", crystal_job(atoms, s, kpts), prov)
    return added


def _done(m: Manifest, stage: str) -> dict[str, dict]:
    return {k: e for k, e in m.entries.items() if e["provenance"].get("stage") == stage}


def fit_eos(volumes: np.ndarray, energies: np.ndarray) -> dict:
    """Birch-Murnaghan fit; V0 (A^3/cell), E0 (eV/cell), B0 (GPa), B0'."""
    from ase.eos import EquationOfState

    eos = EquationOfState(volumes, energies, eos="birchmurnaghan")
    v0, e0, b = eos.fit()
    b0p = float(eos.eos_parameters[2]) if hasattr(eos, "eos_parameters") else float("nan")
    return {
        "V0_A3": float(v0),
        "E0_eV": float(e0),
        "B0_GPa": float(b * EV_A3_TO_GPA),
        "B0_prime": b0p,
    }


def _eos(system: str, m: Manifest, out: Path) -> dict | None:
    jobs = _done(m, "eos")
    if not jobs or any(e["status"] != "done" for e in jobs.values()):
        return None
    near = [e for e in jobs.values() if e["provenance"]["volume_scale"] >= 0.94]
    vol = np.array([abs(np.linalg.det(e["job"]["atoms"]["cell"])) for e in near])
    en = np.array([e["result"]["energy"] for e in near])
    res = {
        "system": system,
        **fit_eos(vol, en),
        "n_atoms": len(near[0]["job"]["atoms"]["numbers"]),
        "points": sorted(zip(vol.tolist(), en.tolist(), strict=True)),
        "settings": near[0]["job"]["calc"],
    }
    write_json_atomic(out / "eos.json", res, indent=1)
    rep = [(e["provenance"]["volume_scale"], e["result"]["energy"]) for e in jobs.values()]
    write_json_atomic(
        out / "repulsion.json",
        {
            "system": system,
            "volume_scale_energy_eV": sorted(rep),
            "note": "compressed primitive cells, E(V/V0_ref)",
        },
        indent=1,
    )
    return res


def _queue_elastic(system: str, m: Manifest, v0: float) -> None:
    s = CRYSTALS[system]
    prim = _cell(system, s.lattice_constant, cubic=False)
    a0 = s.lattice_constant * (v0 / prim.get_volume()) ** (1 / 3)
    conv = _cell(system, a0, cubic=True)
    kpts = ELASTIC_KPTS.get(system, kmesh(conv.cell, s.dk))
    for comp, (i, j) in {"xx": (0, 0), "yz": (1, 2)}.items():
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            if i == j:
                eps[i, i] = sign * STRAIN
            else:
                eps[i, j] = eps[j, i] = sign * STRAIN / 2
            atoms = conv.copy()
            atoms.set_cell(conv.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            task = "relax" if (i != j and system == "si") else "single"
            job = crystal_job(atoms, s, kpts, task=task)
            prov = {
                "stage": "elastic",
                "component": comp,
                "strain": sign * STRAIN,
                "a0_A": a0,
                "kpts": list(kpts),
                "ions_relaxed": task == "relax",
            }
            _add(m, f"elastic-{comp}-{'p' if sign > 0 else 'm'}", job, prov)


def _queue_phonons(system: str, m: Manifest, v0: float) -> None:
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    s = CRYSTALS[system]
    prim = _cell(system, s.lattice_constant, cubic=False)
    prim.set_cell(prim.cell * (v0 / prim.get_volume()) ** (1 / 3), scale_atoms=True)
    unit = PhonopyAtoms(
        symbols=prim.get_chemical_symbols(),
        cell=prim.cell.array,
        scaled_positions=prim.get_scaled_positions(),
    )
    ph = Phonopy(unit, supercell_matrix=2 * np.eye(3, dtype=int))
    ph.generate_displacements(distance=DISPLACEMENT_A)
    sc = [ph.supercell] + list(ph.supercells_with_displacements)
    kpts = kmesh(sc[0].cell, s.dk)
    for n, cell in enumerate(sc):
        atoms = Atoms(
            cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions, pbc=True
        )
        prov = {
            "stage": "phonon",
            "displacement": n,
            "n_displacements": len(sc) - 1,
            "unitcell": atoms_to_dict(prim),
            "kpts": list(kpts),
            "distance_A": DISPLACEMENT_A,
        }
        job = crystal_job(atoms, s, kpts)
        job["stress"] = False
        _add(m, f"phonon-{n:02d}", job, prov)


def _elastic(system: str, m: Manifest, out: Path) -> dict | None:
    jobs = {
        e["provenance"]["component"] + ("p" if e["provenance"]["strain"] > 0 else "m"): e
        for e in _done(m, "elastic").values()
    }
    if len(jobs) < 4 or any(e["status"] != "done" for e in jobs.values()):
        return None
    st = {k: np.array(e["result"]["stress"]) for k, e in jobs.items()}
    d = 2 * STRAIN
    c11 = (st["xxp"][0, 0] - st["xxm"][0, 0]) / d
    c12 = 0.5 * (st["xxp"][1, 1] - st["xxm"][1, 1] + st["xxp"][2, 2] - st["xxm"][2, 2]) / d
    c44 = (st["yzp"][1, 2] - st["yzm"][1, 2]) / d
    prov = next(iter(jobs.values()))["provenance"]
    res = {
        "system": system,
        "C11_GPa": c11 * EV_A3_TO_GPA,
        "C12_GPa": c12 * EV_A3_TO_GPA,
        "C44_GPa": c44 * EV_A3_TO_GPA,
        "a0_A": prov["a0_A"],
        "kpts": prov["kpts"],
        "strain": STRAIN,
        "C44_ions_relaxed": system == "si",
    }
    if system == "ag":
        res["note"] = (
            "12x12x12 mesh; the training data's 6x6x6 mesh limits how close a model can come"
        )
    write_json_atomic(out / "elastic.json", res, indent=1)
    return res


def _phonons(system: str, m: Manifest, out: Path) -> dict | None:
    jobs = _done(m, "phonon")
    if not jobs or any(e["status"] != "done" for e in jobs.values()):
        return None
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    first = next(iter(jobs.values()))["provenance"]
    prim = dict_to_atoms(first["unitcell"])
    unit = PhonopyAtoms(
        symbols=prim.get_chemical_symbols(),
        cell=prim.cell.array,
        scaled_positions=prim.get_scaled_positions(),
    )
    ph = Phonopy(unit, supercell_matrix=2 * np.eye(3, dtype=int))
    ph.generate_displacements(distance=DISPLACEMENT_A)
    ordered = [jobs[f"phonon-{n:02d}"]["result"]["forces"] for n in range(len(jobs))]
    f0 = np.array(ordered[0])
    ph.forces = np.array([np.array(f) - f0 for f in ordered[1:]])
    ph.produce_force_constants()
    qpts = {"Gamma": [0, 0, 0], "X": [0.5, 0.0, 0.5], "L": [0.5, 0.5, 0.5]}
    ph.run_qpoints(list(qpts.values()))
    freqs = dict(zip(qpts, ph.qpoints.frequencies.tolist(), strict=True))
    res = {
        "system": system,
        "frequencies_THz": freqs,
        "q_points_reduced": qpts,
        "residual_force_max_eV_A": float(np.abs(f0).max()),
        "distance_A": DISPLACEMENT_A,
        "supercell": "2x2x2 primitive",
        "kpts": first["kpts"],
    }
    if system == "lif":
        res["note"] = "TO modes only: no non-analytic (LO-TO) correction"
    write_json_atomic(out / "phonons.json", res, indent=1)
    return res


def analyse(system: str, root=None) -> dict:
    """Fit what the finished jobs allow, queue the next stage, write ``reference/*.json``."""
    out = jobs_path(system, root).parent
    with Manifest.update(jobs_path(system, root)) as m:
        eos = _eos(system, m, out)
        if eos is not None and not _done(m, "elastic"):
            v0 = eos["V0_A3"]
            _queue_elastic(system, m, v0)
            _queue_phonons(system, m, v0)
        _elastic(system, m, out)
        _phonons(system, m, out)
    return summary(system, root)


def summary(system: str, root=None) -> dict:
    """Results written so far (``reference/*.json``)."""
    out = jobs_path(system, root).parent
    res = {}
    for name in ("eos", "elastic", "phonons", "repulsion"):
        p = out / f"{name}.json"
        if p.exists():
            d = json.loads(p.read_text())
            res[name] = {
                k: v for k, v in d.items() if k.endswith(("GPa", "A3", "eV", "prime", "THz"))
            }
    return res
