"""DFT reference properties of the crystals (docs/spec.md §2.4): resumable jobs of the labeller.

Jobs live in ``data/<system>/reference/jobs.json`` (a :class:`Manifest`) and run
through the same round-robin driver as the datasets. After each finished job
:func:`analyse` fits what is complete and writes ``data/<system>/reference/*.json``:

1. ``eos``: primitive cell, 9 volumes over +-6 % plus 0.80/0.85/0.90 V0 (repulsion),
   one fixed mesh (rule of docs/spec.md §2.1 on the unstrained primitive cell);
   Birch-Murnaghan fit (V0, E0, B0, B0') -> ``eos.json``; the compressed points
   are the short-range repulsion curve -> ``repulsion.json``.
2. Once the EOS is fitted, ``elastic`` jobs are queued: conventional cubic cell at
   V0, +-0.5 % uniaxial strain (C11, C12) and +-0.5 % engineering shear (C44, ions
   relaxed for Si, which has internal strain); Ag uses a 12x12x12 mesh
   (docs/spec.md §2.4), Si and LiF their rule mesh -> ``elastic.json``.
3. Also at V0: ``phonon`` jobs: phonopy finite displacements (0.01 A) on the 2x2x2
   supercell of the primitive cell plus the undisplaced supercell, whose residual
   forces are subtracted; frequencies at Gamma, X, L -> ``phonons.json`` (LiF: TO
   modes only, no non-analytic correction: pansim models are short-ranged). Set-up
   and analysis are the models' (:func:`pansim.phonons.harmonic_phonons`, on the
   stored forces).
4. With them, for 2-atom primitive cells (Si, LiF), the ``frozen_phonon`` check of
   docs/spec.md §2.4: the primitive cell at V0 (its rule mesh) with atom 0 displaced by
   +-0.01 A along x against the other sublattice; the Gamma optical frequency
   follows from the force constant and the reduced mass
   (:func:`frozen_phonon_frequency`). ``phonons.json`` reports it, phonopy's Gamma
   optical frequency and their difference. Ag (1 atom) has no optical mode.
5. ``contact`` (queued with the EOS, independent of it): the compressed
   nearest-neighbour contact of :mod:`workflows.repulsion` on the DFT side. The
   conventional cubic cell at the spec lattice constant (the cell ``pansim validate``
   scans), atom 0 moved straight toward its nearest neighbour so their distance runs
   over 0.60-1.00 of the nearest-neighbour distance in 13 steps, no relaxation; the
   cubic family's rule mesh, symmetry off for every point alike -> ``contact.json``,
   and ``repulsion`` in ``properties.json`` (energy rise in eV per cell, zero at the
   uncompressed point; force on the moved atom along the bond), analysed by the
   models' :func:`pansim.structures.contact_scan` on the stored results.

From whatever stages are complete, :func:`analyse` also writes
``properties.json``, the same results in the schema ``pansim validate`` reads
(:mod:`workflows.validate`), with their provenance (code, settings, meshes, which
stages are done). It is derived, never edited: the jobs' manifest is the source of
truth, the stage files and ``properties.json`` are rewritten from it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase import Atoms
from ase import units as ase_units

from pansim import structures as _structures
from pansim.data.labelers import atoms_to_dict, crystal_job, dict_to_atoms, job_hash
from pansim.data.manifest import Manifest, write_json_atomic
from pansim.data.settings import kmesh
from pansim.data.systems import CRYSTALS, crystal_cell, get_system
from pansim.fits import fit_birch_murnaghan, fit_columns
from pansim.phonons import DISPLACEMENT_A, SUPERCELL  # the models' phonon set-up

EV_A3_TO_GPA = 1.0 / ase_units.GPa  # eV/A^3 -> GPa
EOS_SCALES = tuple(np.round(np.linspace(0.94, 1.06, 9), 4)) + (0.80, 0.85, 0.90)
STRAIN = 0.005
ELASTIC_KPTS = {"ag": (12, 12, 12)}
COMPRESSED = (0.80, 0.85, 0.90)  # V/V0 of the validate schema's compressed points
STAGES = ("eos", "elastic", "frozen_phonon", "phonon", "contact")
#: distances of the contact scan, fractions of the nearest-neighbour distance
#: (the defaults of :func:`workflows.repulsion.repulsion_scan`: 0.6 to 1, 13 points)
CONTACT_FRACTIONS = _structures.CONTACT_FRACTIONS
CONTACT_INDEX = 0
THZ_TO_CM1 = 33.35640951981521
THZ_PER_SQRT_EV_A2_AMU = ase_units.s / (2 * np.pi * 1e12)  # sqrt(eV/A^2/amu) -> THz


def jobs_path(system: str, root=None) -> Path:
    """``data/<system>/reference/jobs.json``: the manifest of the reference-property jobs."""
    return get_system(system).reference_dir(root) / "jobs.json"


def _add(m: Manifest, key: str, job: dict, prov: dict) -> int:
    return int(m.add(key, job, prov, job_hash(job)))


def queue(system: str, root=None) -> int:
    """Queue the EOS (+ repulsion) jobs of ``system``; :func:`analyse` queues later stages."""
    s = CRYSTALS[system]
    prim = crystal_cell(system)
    kpts = kmesh(prim.cell, s.dk)
    added = 0
    with Manifest.update(jobs_path(system, root), {"system": system, "kind": "reference"}) as m:
        for scale in EOS_SCALES:
            atoms = prim.copy()
            atoms.set_cell(prim.cell * scale ** (1 / 3), scale_atoms=True)
            prov = {"stage": "eos", "volume_scale": float(scale), "kpts": list(kpts)}
            added += _add(m, f"eos-{scale:.4f}", crystal_job(atoms, s, kpts), prov)
        added += _queue_contact(system, m)
    return added


def contact_cells(system: str) -> tuple[dict, list[Atoms]]:
    """The cells of the contact scan: atom 0 of the conventional cell pushed toward its neighbour.

    Returns
    -------
    info : dict
        ``neighbour`` (index), ``r_nn_A``, ``a_A`` (spec lattice constant), ``fractions``.
    cells : list of Atoms
        One per fraction of :data:`CONTACT_FRACTIONS`, built exactly as
        :func:`workflows.repulsion.repulsion_scan` builds its ``contact`` points.
    """
    spec = get_system(system)
    a, conv = spec.a, spec.conventional()
    j, vec, cells = _structures.contact_cells(conv, CONTACT_INDEX, CONTACT_FRACTIONS)
    d_nn = float(np.linalg.norm(vec))
    info = {"neighbour": j, "r_nn_A": d_nn, "a_A": a, "fractions": list(CONTACT_FRACTIONS)}
    return info, cells


def _queue_contact(system: str, m: Manifest) -> int:
    """Queue the contact scan (``contact-<fraction>``) unless it is queued already."""
    if _stage(m, "contact"):
        return 0
    s = CRYSTALS[system]
    info, cells = contact_cells(system)
    kpts = kmesh(cells[-1].cell, s.dk)
    added = 0
    for f, atoms in zip(CONTACT_FRACTIONS, cells, strict=True):
        job = crystal_job(atoms, s, kpts, symmetry="off")
        job["stress"] = False
        prov = {
            "stage": "contact",
            "fraction": f,
            "r_A": f * info["r_nn_A"],
            "index": CONTACT_INDEX,
            "neighbour": info["neighbour"],
            "a_A": info["a_A"],
            "kpts": list(kpts),
            "symmetry": "off",
        }
        added += _add(m, f"contact-{f:.4f}", job, prov)
    return added


def _stage(m: Manifest, stage: str) -> dict[str, dict]:
    return {k: e for k, e in m.entries.items() if e["provenance"].get("stage") == stage}


def fit_eos(volumes: np.ndarray, energies: np.ndarray) -> dict:
    """Birch-Murnaghan fit; V0 (A^3/cell), E0 (eV/cell), B0 (GPa), B0'.

    The fit of the models' equation of state (:func:`pansim.fits.fit_birch_murnaghan`).
    """
    (e0, v0, b0, b0p), _ = fit_birch_murnaghan(np.asarray(volumes), np.asarray(energies))
    return {
        "V0_A3": float(v0),
        "E0_eV": float(e0),
        "B0_GPa": float(b0 * EV_A3_TO_GPA),
        "B0_prime": float(b0p),
    }


def compressed_energies(
    volumes: np.ndarray, energies: np.ndarray, v0: float, ratios=COMPRESSED
) -> list[float]:
    """E at ``ratios * v0`` by cubic interpolation through the 4 smallest-volume points.

    The EOS jobs sit at fixed fractions of the spec lattice constant's volume, not
    of the fitted V0 (they differ by a few 0.1 %); the validate schema wants E at
    exactly 0.80/0.85/0.90 V0. Units follow the inputs (A^3, eV).
    """
    order = np.argsort(volumes)[:4]
    coef = np.polyfit(volumes[order], energies[order], 3)
    return [float(np.polyval(coef, r * v0)) for r in ratios]


def _eos(system: str, m: Manifest, out: Path) -> dict | None:
    jobs = _stage(m, "eos")
    if not jobs or any(e["status"] != "done" for e in jobs.values()):
        return None
    near = [e for e in jobs.values() if e["provenance"]["volume_scale"] >= 0.94]
    vol = np.array([abs(np.linalg.det(e["job"]["atoms"]["cell"])) for e in near])
    en = np.array([e["result"]["energy"] for e in near])
    every = list(jobs.values())
    v_all = np.array([abs(np.linalg.det(e["job"]["atoms"]["cell"])) for e in every])
    e_all = np.array([e["result"]["energy"] for e in every])
    fit = fit_eos(vol, en)
    res = {
        "system": system,
        **fit,
        "n_atoms": len(near[0]["job"]["atoms"]["numbers"]),
        "points": sorted(zip(vol.tolist(), en.tolist(), strict=True)),
        "compressed": {
            "volume_ratio": list(COMPRESSED),
            "energy_eV": compressed_energies(v_all, e_all, fit["V0_A3"]),
            "method": "cubic through the 4 most compressed points, at ratio * fitted V0",
        },
        "kpts": near[0]["provenance"]["kpts"],
        "settings": near[0]["job"]["calc"],
    }
    write_json_atomic(out / "eos.json", res, indent=1)
    rep = [(e["provenance"]["volume_scale"], e["result"]["energy"]) for e in every]
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


def stored_results(rows: list[dict]):
    """``evaluate(cells) -> (energies, forces)`` of :func:`pansim.structures.contact_scan`.

    From the finished jobs ``rows``, in the order of the cells; each cell must be the
    structure its job computed (1e-8 A).
    """

    def evaluate(cells: list[Atoms]) -> tuple[np.ndarray, np.ndarray]:
        for e, atoms in zip(rows, cells, strict=True):
            if not _same_structure(dict_to_atoms(e["job"]["atoms"]), atoms):
                raise ValueError("a stored contact job is not the cell of this scan")
        energies = np.array([e["result"]["energy"] for e in rows], dtype=float)
        return energies, np.array([e["result"]["forces"] for e in rows], dtype=float)

    return evaluate


def _contact(system: str, m: Manifest, out: Path) -> dict | None:
    """The finished contact scan -> ``contact.json`` (None until every point is done).

    Analysed by :func:`pansim.structures.contact_scan`, the function of the models'
    scan (:func:`workflows.repulsion.repulsion_scan`), on the stored DFT results.
    """
    jobs = _stage(m, "contact")
    if not jobs or any(e["status"] != "done" for e in jobs.values()):
        return None
    rows = sorted(jobs.values(), key=lambda e: e["provenance"]["fraction"])
    prov, index = rows[0]["provenance"], rows[0]["provenance"]["index"]
    fractions = [e["provenance"]["fraction"] for e in rows]
    uncompressed = dict_to_atoms(rows[-1]["job"]["atoms"])  # fraction 1: the perfect cell
    # the jobs' own bond (of several equally near neighbours and images, the one they
    # approached): the moved atom went (1 - f) of it at fraction f
    moved = dict_to_atoms(rows[0]["job"]["atoms"]).positions[index]
    bond = (moved - uncompressed.positions[index]) / (1.0 - fractions[0])
    scan = _structures.contact_scan(
        uncompressed,
        stored_results(rows),
        index=index,
        fractions=fractions,
        toward=(prov["neighbour"], bond),
    )
    res = {
        "system": system,
        "mode": "contact",
        "index": scan.index,
        "neighbour": scan.neighbour,
        "a_A": prov["a_A"],
        "r_A": scan.r_A.tolist(),
        "energy_eV": scan.energy_eV.tolist(),
        "force_eV_per_A": scan.force_eV_per_A.tolist(),
        "kpts": rows[0]["provenance"]["kpts"],
        "settings": rows[0]["job"]["calc"],
        "note": "conventional cell at the spec lattice constant, atom `index` moved toward "
        "`neighbour`; energy in eV per cell relative to the uncompressed point",
    }
    write_json_atomic(out / "contact.json", res, indent=1)
    return res


def primitive_at(system: str, v0: float) -> Atoms:
    """Primitive cell scaled to the volume ``v0`` (A^3 per primitive cell)."""
    prim = crystal_cell(system)
    prim.set_cell(prim.cell * (v0 / prim.get_volume()) ** (1 / 3), scale_atoms=True)
    return prim


def _queue_elastic(system: str, m: Manifest, v0: float) -> None:
    s = CRYSTALS[system]
    prim = crystal_cell(system)
    a0 = s.lattice_constant * (v0 / prim.get_volume()) ** (1 / 3)
    conv = crystal_cell(system, a0, cubic=True)
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


#: key of the undisplaced phonon supercell computed without symmetry: its residual forces
RESIDUAL_KEY = "phonon-residual"


def _phonon_supercells(system: str, v0: float):
    """The primitive cell at ``v0`` and phonopy's undisplaced + displaced 2x2x2 supercells.

    The set-up of the models' phonons (:func:`pansim.phonons.displaced`).
    """
    from pansim.phonons import displaced, supercells

    prim = primitive_at(system, v0)
    cells = supercells(displaced(prim, SUPERCELL, DISPLACEMENT_A))
    return prim, cells[-1:] + cells[:-1]


def _queue_phonons(system: str, m: Manifest, v0: float) -> None:
    """Displaced supercells ``phonon-NN`` (N >= 1) and the undisplaced one, symmetry off.

    The undisplaced supercell runs with GPAW's symmetry switched off: with symmetry on,
    GPAW symmetrises its forces to exactly zero, so they cannot cancel the real-space
    grid's residual forces (about 2 meV/A) that the low-symmetry displaced supercells
    carry; uncorrected, those moved Si's Gamma optical mode from 15.2 to 16.4 THz
    (measured here against the frozen-phonon check, docs/spec.md §2.4).
    """
    s = CRYSTALS[system]
    prim, cells = _phonon_supercells(system, v0)
    kpts = kmesh(cells[0].cell, s.dk)
    for n, atoms in enumerate(cells):
        prov = {
            "stage": "phonon",
            "displacement": n,
            "n_displacements": len(cells) - 1,
            "unitcell": atoms_to_dict(prim),
            "kpts": list(kpts),
            "distance_A": DISPLACEMENT_A,
        }
        job = crystal_job(atoms, s, kpts)
        job["stress"] = False
        if n == 0:
            job["calc"]["symmetry"] = "off"
            prov["symmetry"] = "off (residual forces of the perfect supercell)"
            _add(m, RESIDUAL_KEY, job, prov)
            continue
        _add(m, f"phonon-{n:02d}", job, prov)


#: Voigt components under the cyclic relabelling x -> y -> z of a cubic crystal
_CYCLE = [2, 0, 1, 5, 3, 4]


def cubic_constants(stress: dict[str, np.ndarray], strain: float) -> tuple[float, float, float]:
    """C11, C12, C44 (eV/A^3) of a cubic crystal from its +-``strain`` xx and yz stresses.

    ``stress`` maps ``xxp``, ``xxm``, ``yzp``, ``yzm`` to 3x3 stresses (eV/A^3) of the
    cell strained by ``+-strain`` along xx and by ``eps_yz = eps_zy = +-strain/2``. The
    yy, zz, xz, xy columns are these relabelled (cubic symmetry), and the 6x6 matrix is
    fitted by :func:`pansim.fits.fit_columns`, the fit of the models' elastic constants.
    """

    def voigt(s: np.ndarray) -> np.ndarray:
        return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])

    xx = np.array([voigt(stress["xxm"]), voigt(stress["xxp"])])
    yz = np.array([voigt(stress["yzm"]), voigt(stress["yzp"])])
    yy, xz = xx[:, _CYCLE], yz[:, _CYCLE]
    zz, xy = yy[:, _CYCLE], xz[:, _CYCLE]
    c, _ = fit_columns(np.array([-strain, strain]), np.stack([xx, yy, zz, yz, xz, xy]))
    return float(c[0, 0]), float(0.5 * (c[1, 0] + c[2, 0])), float(c[3, 3])


def _elastic(system: str, m: Manifest, out: Path) -> dict | None:
    jobs = {
        e["provenance"]["component"] + ("p" if e["provenance"]["strain"] > 0 else "m"): e
        for e in _stage(m, "elastic").values()
    }
    if len(jobs) < 4 or any(e["status"] != "done" for e in jobs.values()):
        return None
    c11, c12, c44 = cubic_constants(
        {k: np.array(e["result"]["stress"]) for k, e in jobs.items()}, STRAIN
    )
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


def frozen_phonon_frequency(
    forces_plus: np.ndarray, forces_minus: np.ndarray, displacement: float, masses
) -> dict:
    """Gamma optical frequency of a 2-atom cell from a +-``displacement`` of atom 0 along x.

    With atom 0 moved by ``u`` against atom 1 the harmonic forces are
    ``F0 = -k u``, ``F1 = +k u`` (plus any residual force, the same in both runs),
    so the central difference ``k = [(F1 - F0)(+u) - (F1 - F0)(-u)]_x / (4 u)`` is
    free of residual forces and of even-order anharmonicity; the optical mode at
    Gamma has ``omega^2 = k / mu``, ``mu = m0 m1 / (m0 + m1)``.

    Parameters
    ----------
    forces_plus, forces_minus : array [2, 3]
        Forces (eV/A) with atom 0 displaced by ``+displacement`` and ``-displacement`` (A)
        along x.
    masses : sequence of 2 floats
        Atomic masses (amu).

    Returns
    -------
    dict
        ``force_constant_eV_A2``, ``reduced_mass_amu``, ``frequency_THz`` (negative:
        imaginary) and ``frequency_cm1``.
    """
    fp, fm = np.asarray(forces_plus, float), np.asarray(forces_minus, float)
    k = ((fp[1, 0] - fp[0, 0]) - (fm[1, 0] - fm[0, 0])) / (4 * displacement)
    mu = masses[0] * masses[1] / (masses[0] + masses[1])
    nu = float(np.sign(k) * np.sqrt(abs(k) / mu) * THZ_PER_SQRT_EV_A2_AMU)
    return {
        "force_constant_eV_A2": float(k),
        "reduced_mass_amu": float(mu),
        "frequency_THz": nu,
        "frequency_cm1": nu * THZ_TO_CM1,
    }


def _queue_frozen_phonon(system: str, m: Manifest, v0: float) -> None:
    s = CRYSTALS[system]
    prim = primitive_at(system, v0)
    if len(prim) != 2:
        return  # no optical mode to check (Ag: 1 atom)
    kpts = kmesh(prim.cell, s.dk)
    for sign, tag in ((1, "p"), (-1, "m")):
        atoms = prim.copy()
        atoms.positions[0, 0] += sign * DISPLACEMENT_A
        prov = {
            "stage": "frozen_phonon",
            "displacement_A": sign * DISPLACEMENT_A,
            "atom": 0,
            "direction": [1.0, 0.0, 0.0],
            "unitcell": atoms_to_dict(prim),
            "kpts": list(kpts),
        }
        job = crystal_job(atoms, s, kpts)
        job["stress"] = False
        _add(m, f"frozen-phonon-{tag}", job, prov)


def _frozen_phonon(m: Manifest) -> dict | None:
    jobs = _stage(m, "frozen_phonon")
    if len(jobs) < 2 or any(e["status"] != "done" for e in jobs.values()):
        return None
    plus, minus = jobs["frozen-phonon-p"], jobs["frozen-phonon-m"]
    prim = dict_to_atoms(plus["provenance"]["unitcell"])
    res = frozen_phonon_frequency(
        plus["result"]["forces"],
        minus["result"]["forces"],
        plus["provenance"]["displacement_A"],
        prim.get_masses(),
    )
    res.update(
        displacement_A=plus["provenance"]["displacement_A"],
        cell="primitive (2 atoms) at V0",
        kpts=plus["provenance"]["kpts"],
    )
    return res


def _same_structure(a: Atoms, b: Atoms, tol: float = 1e-8) -> bool:
    """Same atoms, cell and positions (A, to ``tol``)."""
    return (
        np.array_equal(a.numbers, b.numbers)
        and np.allclose(a.cell.array, b.cell.array, rtol=0, atol=tol)
        and np.allclose(a.positions, b.positions, rtol=0, atol=tol)
    )


def stored_forces(jobs: dict[str, dict]):
    """``forces(structures)`` of :func:`pansim.phonons.harmonic_phonons` from finished phonon jobs.

    The structures asked for are the displaced supercells (``phonon-01`` ...), then
    the undisplaced one (:data:`RESIDUAL_KEY`); each must be the structure its job
    computed (1e-8 A), so the stored forces belong to this set-up.
    """

    def forces(structures: list[Atoms]) -> np.ndarray:
        keys = [f"phonon-{k:02d}" for k in range(1, len(structures))] + [RESIDUAL_KEY]
        out = []
        for key, atoms in zip(keys, structures, strict=True):
            if key not in jobs:
                raise ValueError(f"no stored phonon job {key} for this set-up")
            if not _same_structure(dict_to_atoms(jobs[key]["job"]["atoms"]), atoms):
                raise ValueError(f"stored phonon job {key} is not the supercell of this set-up")
            out.append(np.asarray(jobs[key]["result"]["forces"], dtype=float))
        return np.array(out)

    return forces


def _phonopy(m: Manifest) -> dict | None:
    """The models' phonon analysis (:func:`pansim.phonons.harmonic_phonons`) on the DFT forces."""
    jobs = _stage(m, "phonon")
    if RESIDUAL_KEY not in jobs or any(e["status"] != "done" for e in jobs.values()):
        return None
    from pansim.phonons import harmonic_phonons

    first = jobs[RESIDUAL_KEY]["provenance"]
    prim = dict_to_atoms(first["unitcell"])  # masses: the frozen-phonon check's
    res = harmonic_phonons(
        prim, stored_forces(jobs), supercell=SUPERCELL, displacement=first["distance_A"]
    )
    if res.n_displacements != first["n_displacements"]:
        raise ValueError(f"{res.n_displacements} displacements, {first['n_displacements']} stored")
    points, qpoints = res.fields["high_symmetry_THz"], res.fields["high_symmetry_q"]
    return {
        "frequencies_THz": {q: points[q] for q in ("Gamma", "X", "L")},
        "q_points_reduced": {q: qpoints[q] for q in ("Gamma", "X", "L")},
        "high_symmetry_THz": points,
        "imaginary_modes": res.imaginary_modes,
        "analysis": "pansim.phonons.harmonic_phonons, the models' phonon analysis: "
        "frequencies at the labelled points of phonopy's band path",
        "residual_force_max_eV_A": float(np.abs(res.residual_forces).max()),
        "residual_forces": "undisplaced supercell, GPAW symmetry off, subtracted",
        "force_constants": "symmetrised (phonopy symmetrize_force_constants)",
        "distance_A": first["distance_A"],
        "supercell": "2x2x2 primitive",
        "kpts": first["kpts"],
        "n_atoms_primitive": len(prim),
    }


def _phonons(system: str, m: Manifest, out: Path) -> dict | None:
    """Phonopy's frequencies and the frozen-phonon check -> ``phonons.json`` (either complete)."""
    ph, frozen = _phonopy(m), _frozen_phonon(m)
    if ph is None and frozen is None:
        return None
    res = {"system": system, **(ph or {"frequencies_THz": None})}
    if frozen is not None or _stage(m, "frozen_phonon"):
        optical = max(ph["frequencies_THz"]["Gamma"]) if ph else None
        fp = frozen["frequency_THz"] if frozen else None
        res["frozen_phonon"] = frozen or "pending"
        res["gamma_optical_THz"] = {
            "phonopy": optical,
            "frozen_phonon": fp,
            "difference_THz": optical - fp if optical is not None and fp is not None else None,
        }
    elif ph["n_atoms_primitive"] == 1:
        res["frozen_phonon"] = "not applicable: 1-atom primitive cell, no optical mode"
    if system == "lif":
        res["note"] = "TO modes only: no non-analytic (LO-TO) correction"
    write_json_atomic(out / "phonons.json", res, indent=1)
    return res


def _queue_next(system: str, m: Manifest, v0: float) -> None:
    """Queue each stage that follows the EOS and has no jobs yet (old manifests included)."""
    for stage, queue_stage in (
        ("elastic", _queue_elastic),
        ("frozen_phonon", _queue_frozen_phonon),
        ("phonon", _queue_phonons),
    ):
        if not _stage(m, stage):
            queue_stage(system, m, v0)
    if _stage(m, "phonon") and RESIDUAL_KEY not in m.entries:
        _queue_phonons(system, m, v0)  # manifests from before the symmetry-off residual job


def analyse(system: str, root=None) -> dict:
    """Fit what the finished jobs allow, queue the next stages, write ``reference/*.json``.

    Also writes ``properties.json`` (the ``pansim validate`` schema) when any stage
    is complete.
    """
    out = jobs_path(system, root).parent
    with Manifest.update(jobs_path(system, root)) as m:
        eos = _eos(system, m, out)
        if eos is not None:
            _queue_next(system, m, eos["V0_A3"])
        results = {"eos": eos, "elastic": _elastic(system, m, out)}
        results["phonons"] = _phonons(system, m, out)
        _queue_contact(system, m)  # manifests from before the contact stage
        results["contact"] = _contact(system, m, out)
        props = validation_properties(system, m, results)
        if props is not None:
            write_json_atomic(properties_path(system, root), props, indent=1)
    return summary(system, root)


def properties_path(system: str, root=None) -> Path:
    """``data/<system>/reference/properties.json``: the results in the validate schema."""
    return jobs_path(system, root).parent / "properties.json"


def _stage_status(m: Manifest) -> dict[str, str]:
    status = {}
    for stage in STAGES:
        jobs = _stage(m, stage).values()
        if not jobs:
            status[stage] = "not queued"
        elif all(e["status"] == "done" for e in jobs):
            status[stage] = "done"
        else:
            n = sum(e["status"] == "done" for e in jobs)
            failed = sum(e["status"] == "failed" for e in jobs)
            status[stage] = f"{n}/{len(jobs)} done" + (f", {failed} failed" if failed else "")
    return status


def _provenance(m: Manifest) -> dict:
    done = [e for e in m.entries.values() if e["status"] == "done"]
    codes = sorted({f"{e['result'].get('code')} {e['result'].get('version')}" for e in done})
    settings = dict(done[0]["job"]["calc"]) if done else {}
    settings.pop("kpts", None)
    kpts = {}
    for e in done:
        kpts.setdefault(e["provenance"]["stage"], e["provenance"]["kpts"])
    return {
        "source": "pansim data reference (pansim/data/reference.py), GPAW jobs in jobs.json",
        "code": codes,
        "settings": settings,
        "kpts": kpts,
        "stages": _stage_status(m),
    }


def validation_properties(system: str, m: Manifest, results: dict) -> dict | None:
    """The complete stages in the ``pansim validate`` schema; None when none is complete.

    Units of the schema (:mod:`workflows.validate`): V0 A^3/atom, E0 and the
    compressed energies eV/atom, moduli GPa, frequencies THz (sorted per point).
    """
    props: dict = {"system": system, "reference": "DFT", "provenance": _provenance(m)}
    eos = results.get("eos")
    if eos is not None:
        n = eos["n_atoms"]
        props["eos"] = {
            "V0": eos["V0_A3"] / n,
            "E0": eos["E0_eV"] / n,
            "B0": eos["B0_GPa"],
            "B0_prime": eos["B0_prime"],
            "compressed": {
                "volume_ratio": eos["compressed"]["volume_ratio"],
                "energy": [e / n for e in eos["compressed"]["energy_eV"]],
            },
        }
    el = results.get("elastic")
    if el is not None:
        props["elastic"] = {k: el[f"{k}_GPa"] for k in ("C11", "C12", "C44")}
        props["elastic"].update(kpts=el["kpts"], note=el.get("note", ""))
    ph = results.get("phonons")
    if ph is not None:
        props["phonons"] = _phonon_properties(ph)
    contact = results.get("contact")
    if contact is not None:
        props["repulsion"] = {
            "r": contact["r_A"],
            "energy": contact["energy_eV"],
            "force": contact["force_eV_per_A"],
            "mode": "contact",
            "units": {"r": "A", "energy": "eV per cell, 0 at the uncompressed point",
                      "force": "eV/A along the bond, positive = repulsive"},
        }  # fmt: skip
    return props if {"eos", "elastic", "phonons", "repulsion"} & set(props) else None


def _phonon_properties(ph: dict) -> dict:
    out: dict = {}
    freqs = ph.get("frequencies_THz")
    if freqs:
        out.update(gamma_THz=freqs["Gamma"], X_THz=freqs["X"], L_THz=freqs["L"])
        out["n_atoms_primitive"] = ph["n_atoms_primitive"]
    optical = ph.get("gamma_optical_THz") or {}
    if optical.get("frozen_phonon") is not None:
        out["gamma_optical_frozen_phonon_THz"] = optical["frozen_phonon"]
        out["gamma_optical_difference_THz"] = optical["difference_THz"]
    if ph.get("note"):
        out["note"] = ph["note"]
    return out


def summary(system: str, root=None) -> dict:
    """Results written so far (``reference/*.json``)."""
    out = jobs_path(system, root).parent
    res = {}
    for name in ("eos", "elastic", "phonons", "repulsion", "contact"):
        p = out / f"{name}.json"
        if p.exists():
            d = json.loads(p.read_text())
            res[name] = {
                k: v for k, v in d.items() if k.endswith(("GPa", "A3", "eV", "prime", "THz"))
            }
    return res
